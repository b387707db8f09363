//! The statements of `create_hold`, assembled once per process.
//!
//! The hot path is one read statement then one conditional write, so the
//! write carries everything in one statement, and which parts it carries
//! depends on four switches ([`WriteSwitches`]): sixteen statements. Every
//! statement built here, each combination of switches, is written out under
//! `tests/golden/sql/` and checked by a test (`crate::golden_sql`), so a
//! reviewer reads what runs and sees every change to it in a diff.

use cal_core::feasibility::hold_ran_out_sql;

use super::records::HOLD_RECORD;
use super::{HOLD_CREATED, HOLD_EXPIRED};
use crate::calendar::{ReadParts, ReadShape, read_sql, renumber_params, union_branch};

/// Creates the version row of a provider that has none (version 0 means
/// "nothing written", with or without the row).
pub(crate) const ENSURE_VERSION_SQL: &str =
    "insert into cal.provider_version (user_id, version) values ($1, 0) on conflict (user_id) do nothing";

/// How the write takes the provider's lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProviderLock {
    /// Try it (`pg_try_advisory_xact_lock`); a write that finds it taken
    /// waits for the holder with a shared lock, then loses.
    Try,
    /// Queue for it (`pg_advisory_xact_lock`): for a request that lost
    /// many times.
    Queue,
}

impl ProviderLock {
    /// The lock as an expression, true once held.
    fn sql(self) -> &'static str {
        match self {
            ProviderLock::Try => "pg_try_advisory_xact_lock(hashtextextended('cal.provider:' || $1, 0))",
            ProviderLock::Queue => "(select true from pg_advisory_xact_lock(hashtextextended('cal.provider:' || $1, 0)))",
        }
    }
}

/// What a hold's write statement does besides the write itself ([`write_sql`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WriteSwitches {
    /// How it takes the provider's lock.
    pub(crate) lock: ProviderLock,
    /// Marks the holds `$17` that ran out `expired`, with their outbox rows
    /// (payloads `$18`).
    pub(crate) mark_ran_out: bool,
    /// A write that finds the version moved brings a loser's answer: the
    /// key and busy time (the read's `$3`–`$5` after the write's own).
    pub(crate) loser_answer: bool,
    /// Takes the customer's lock and counts their holds first (`since` and
    /// `max` the last two parameters).
    pub(crate) customer_limit: bool,
}

impl WriteSwitches {
    /// Every combination, in the order of [`WriteSwitches::index`].
    pub(crate) fn all() -> impl Iterator<Item = WriteSwitches> {
        (0..16).map(|i| WriteSwitches {
            lock: if i & 8 != 0 { ProviderLock::Queue } else { ProviderLock::Try },
            mark_ran_out: i & 4 != 0,
            loser_answer: i & 2 != 0,
            customer_limit: i & 1 != 0,
        })
    }

    /// The position of this combination among [`WriteSwitches::all`].
    fn index(self) -> usize {
        usize::from(self.lock == ProviderLock::Queue) << 3
            | usize::from(self.mark_ran_out) << 2
            | usize::from(self.loser_answer) << 1
            | usize::from(self.customer_limit)
    }

    /// The statement's golden file's name, e.g. `hold_write-try_lock-mark_ran_out`: the
    /// lock, then each switch that is on.
    #[cfg(test)]
    pub(crate) fn name(self) -> String {
        let mut name = String::from(match self.lock {
            ProviderLock::Try => "hold_write-try_lock",
            ProviderLock::Queue => "hold_write-queue_lock",
        });
        for (on, part) in
            [(self.mark_ran_out, "-mark_ran_out"), (self.loser_answer, "-loser_answer"), (self.customer_limit, "-customer_limit")]
        {
            if on {
                name.push_str(part);
            }
        }
        name
    }
}

impl WriteSwitches {
    /// What the statement does, in a sentence (the golden file's header).
    #[cfg(test)]
    pub(crate) fn description(self) -> String {
        let mut parts = vec![match self.lock {
            ProviderLock::Try => "The hold write: tries the provider's lock (finding it taken, waits for its holder and loses)".to_owned(),
            ProviderLock::Queue => "The hold write: queues for the provider's lock".to_owned(),
        }];
        if self.customer_limit {
            let since = 17 + if self.mark_ran_out { 2 } else { 0 } + if self.loser_answer { 3 } else { 0 };
            parts.push(format!(
                "first takes the customer's lock and counts their holds since ${since}, writing nothing at ${} or more",
                since + 1
            ));
        }
        if self.mark_ran_out {
            parts.push("marks the holds $17 that ran out expired, with their outbox rows ($18)".to_owned());
        }
        if self.loser_answer {
            parts.push("when the version had moved, brings the key and busy time as a loser's answer".to_owned());
        }
        format!("{}.", parts.join("; "))
    }
}

/// The statements of `create_hold`.
pub(crate) struct HoldStatements {
    /// The first read: version, rules, exceptions, then the key and,
    /// unless it has a hold, the busy time ([`read_sql`]).
    pub(crate) first_read: String,
    /// A loser's read: the key and, unless it has a hold, the busy time.
    pub(crate) loser_read: String,
    /// `$1`'s version (null: no row) on every row, with the hold of the key
    /// `$2` (one row of nulls if none).
    pub(crate) version_and_key: String,
    /// The writes ([`write_sql`]), by [`WriteSwitches::index`].
    writes: [String; 16],
}

impl HoldStatements {
    /// The statements, built on first use.
    pub(crate) fn get() -> &'static HoldStatements {
        static SQL: std::sync::OnceLock<HoldStatements> = std::sync::OnceLock::new();
        SQL.get_or_init(|| {
            let mut writes = WriteSwitches::all().map(write_sql);
            HoldStatements {
                first_read: read_sql(ReadShape { keyed: true, rules: true }, HOLD_RECORD),
                loser_read: read_sql(ReadShape { keyed: true, rules: false }, HOLD_RECORD),
                version_and_key: format!(
                    "select (select version from cal.provider_version where user_id = $1) as version, k.*
             from (select 1) as one left join (
                 select {HOLD_RECORD} from cal.hold where user_id = $1 and idempotency_key = $2
             ) as k on true"
                ),
                writes: std::array::from_fn(|_| writes.next().expect("sixteen combinations")),
            }
        })
    }

    /// The write with `switches`.
    pub(crate) fn write(&self, switches: WriteSwitches) -> &str {
        &self.writes[switches.index()]
    }
}

/// The write of `write_hold` with `switches`, taking the provider's lock
/// as [`WriteSwitches::lock`] says (an expression, true once held). Each step reads the one before it, which
/// makes the order certain: the version as of the statement's start (if it
/// is no longer `$13`, the write lost: it takes no lock, so a crowd that
/// lost a race does not queue for it); the provider's lock (the advisory
/// lock every booking writer of a provider takes first); the version bumped
/// only if it is
/// still `$13` (an UPDATE re-reads the row's newest version after any wait,
/// and locks it against the provider's other writers); then, if `expire`,
/// the holds `$17` that ran out marked (`mark_ran_out`); the hold inserted; the outbox rows (the
/// expired holds' first, their payloads `$18`). An error (the exclusion
/// constraint) undoes all of it. If the lock was taken, it waits for the
/// holder to finish with a shared lock (granted to every such waiter at
/// once), so the statements after it see its work.
///
/// The ids are made by the caller (`$14` the hold's, `$15` its outbox
/// event's), so its payload `$16` is whole before the statement runs.
///
/// If `loser_answer`, a write that finds the version moved brings a loser's
/// answer (the key and busy time of its statement's snapshot, already as
/// new as the change), which saves it a statement. It costs every write
/// some executor work, so only a write after a fresh read, which a race
/// makes a loser most often, asks for it.
///
/// If `customer_limit`, before anything else the write calls
/// `cal.lock_customer_holds_since($3, since)` (migrations/0005), which
/// takes the customer's advisory lock (held to the end of the statement's
/// transaction, so one customer's limited holds are written one after
/// another, whatever their providers) and only then counts the customer's
/// holds since `since`. The count is in the function, not in this
/// statement, because a statement reads the snapshot it started with: one
/// that waited for the lock would not see the holds committed meanwhile; a
/// VOLATILE function's query takes a fresh snapshot, after the lock. At
/// `max` or more the write takes no other lock and writes nothing, and
/// says so in the column `allowed`. `since` and `max` are the statement's
/// last two parameters. The customer's lock is always taken before the
/// provider's, never the other way round, so the two cannot deadlock.
fn write_sql(switches: WriteSwitches) -> String {
    let WriteSwitches { lock, mark_ran_out: expire, loser_answer: answered, customer_limit: limited } = switches;
    let lock = lock.sql();
    // Marked only if they ran out by the write's `now` (`$12`), whatever
    // the read that found them said: the rule of `HoldStatus::at`.
    let ran_out = hold_ran_out_sql("$12");
    let (marked, after_marked, expired_events, after_expired) = if expire {
        (
            format!(
                "marked as (
                 update cal.hold set status = 'expired', updated_at = $12
                 where hold_id = any($17::text[]) and user_id = $1 and {ran_out}
                   and exists (select 1 from bumped)
                 returning hold_id
             ), "
            ),
            " where (select count(*) from marked) >= 0",
            format!(
                "expired_events as (
                     insert into cal.outbox (event_type, user_id, payload)
                     select '{HOLD_EXPIRED}', $1, p.payload
                     from unnest($17::text[], $18::jsonb[]) with ordinality as p(hold_id, payload, n)
                     join marked using (hold_id)
                     where exists (select 1 from h)
                     order by p.n
                     returning outbox_id
                 ), "
            ),
            " where (select count(*) from expired_events) >= 0",
        )
    } else {
        (String::new(), "", String::new(), "")
    };
    // The outcome first (`w`): the hold, if written. Then, only if the
    // version had moved before the statement began (then it took no lock),
    // the key and busy time as of that moment, read as a loser's answer
    // ([`read_sql`]; its parameters after this statement's own).
    let (allowed, refused, allowed_column) = if limited {
        let since = 17 + if expire { 2 } else { 0 } + if answered { 3 } else { 0 };
        (
            format!(
                "allowed as (
                     select cal.lock_customer_holds_since($3, ${since}) < ${} as ok
                 ), ",
                since + 1
            ),
            "when not (select ok from allowed) then false ",
            "(select ok from allowed) as allowed,",
        )
    } else {
        (String::new(), "", "")
    };
    let lead = format!(
        "{allowed_column} (select got from advisory) as got, (select version from bumped) as new_version,
         case {refused}when (select got from advisory) or not (select v from current) then false
              else (select true from pg_advisory_xact_lock_shared(hashtextextended('cal.provider:' || $1, 0)))
         end as waited,"
    );
    let lead = lead.as_str();
    let from_h = "from (select 1) as one left join h on true";
    let tail = if answered {
        // The read's $3–$5 go after our own parameters; its key $6 is our $10.
        let first = if expire { 19 } else { 17 };
        let nulls = if limited { "null, null, null, null," } else { "null, null, null," };
        let loser_answer = ReadParts::new(ReadShape { keyed: true, rules: false }, HOLD_RECORD, "not (select v from current)", nulls);
        let end = loser_answer.finish(&union_branch(lead, "w", HOLD_RECORD, from_h, true));
        let end = renumber_params(&end, |n| match n {
            3..=5 => first + n - 3,
            6 => 10,
            n => n,
        });
        format!(", {end}")
    } else {
        // The outcome alone, no wider than the hold.
        format!(" select {lead} 'w' as row_kind, h.* {from_h}")
    };
    format!(
        "with {allowed}current as (
             select exists (select 1 from cal.provider_version where user_id = $1 and version = $13) as v
         ), advisory as (
             select case {refused}when (select v from current) then {lock} else false end as got
         ), bumped as (
             update cal.provider_version set version = version + 1, updated_at = now()
             where user_id = $1 and version = $13 and (select got from advisory)
             returning version
         ), {marked}h as (
             insert into cal.hold (hold_id, user_id, role_code, customer_id, start_at, end_at, kind, mode,
                                   status, expires_at, event_id, idempotency_key, request_fingerprint,
                                   created_at, updated_at)
             select $14, $1, $2, $3, $4, $5, $6, $7, 'active', $8, $9, $10, $11, $12, $12
             from bumped{after_marked}
             returning {HOLD_RECORD}
         ), {expired_events}created_event as (
             insert into cal.outbox (event_id, event_type, user_id, payload)
             select $15::text::uuid, '{HOLD_CREATED}', $1, $16::jsonb
             from h{after_expired}
         ){tail}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_combination_of_switches_has_its_own_place_and_name() {
        let all: Vec<WriteSwitches> = WriteSwitches::all().collect();
        for (i, switches) in all.iter().enumerate() {
            assert_eq!(switches.index(), i, "{switches:?}");
        }
        let mut names: Vec<String> = all.iter().map(|s| s.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 16);
        let sql = HoldStatements::get();
        let limited = WriteSwitches { lock: ProviderLock::Queue, mark_ran_out: false, loser_answer: false, customer_limit: true };
        assert!(sql.write(limited).contains("cal.lock_customer_holds_since"));
        assert!(sql.write(limited).contains("pg_advisory_xact_lock("));
    }
}
