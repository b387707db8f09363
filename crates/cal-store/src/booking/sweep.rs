//! The hold sweeper's work: holds whose time ran out are free time at once
//! (`cal_core::feasibility::HoldStatus::at`); marking them `expired`, with
//! their `cal.hold.expired` events, is bookkeeping that can come later.

use cal_core::feasibility::hold_ran_out_sql;
use cal_core::time::Instant;

use super::HOLD_EXPIRED;
use super::records::{HOLD_RECORD, HoldRecord};
use crate::db::{Begin, Executor};
use crate::error::StoreError;
use crate::outbox;

/// The hold sweeper's work: marks up to `batch` active holds whose time ran
/// out as `expired`, writing `cal.hold.expired` for each, in one transaction.
/// `FOR UPDATE SKIP LOCKED` lets several sweepers (and bookings holding a
/// hold's row) run at once without waiting on each other. Correctness never
/// depends on it: an expired hold is free time whether swept or not.
pub async fn sweep_expired_holds(db: &mut impl Begin, now: Instant, batch: i64) -> Result<Vec<HoldRecord>, StoreError> {
    let tx = db.begin().await?;
    let rows = tx.query(&sweep_sql(), &[&now.to_chrono(), &batch.max(1)]).await?;
    let mut swept = Vec::with_capacity(rows.len());
    for row in &rows {
        let hold = HoldRecord::from_row(row)?;
        outbox::bump_version(&tx, &hold.user_id).await?;
        outbox::enqueue(&tx, HOLD_EXPIRED, &hold.user_id, &hold.payload()).await?;
        swept.push(hold);
    }
    tx.commit().await?;
    Ok(swept)
}

/// The sweeper's statement over `$1 now, $2 batch`: the oldest holds that
/// ran out ([`hold_ran_out_sql`]) and no other sweeper or booking has
/// locked, marked `expired`.
pub(crate) fn sweep_sql() -> String {
    let ran_out = hold_ran_out_sql("$1");
    format!(
        "update cal.hold set status = 'expired', updated_at = $1
                 where hold_id in (select hold_id from cal.hold
                                   where {ran_out}
                                   order by expires_at, hold_id limit $2
                                   for update skip locked)
                 returning {HOLD_RECORD}"
    )
}
