//! Busy time and bookable slots (SEMANTICS.md §3–§4), for one provider and
//! for several at once (`all_of` / `any_of`).

use serde::{Deserialize, Serialize, Serializer};

use crate::availability::{Availability, BookingParams, Exception, MAX_DURATION_MIN, WeeklyRule};
use crate::intervals;
use crate::policy::{BookingPolicy, PolicyCheck};
use crate::time::{Instant, Interval, SECS_PER_DAY, Zone};

/// Default step between slot starts, in minutes.
pub const DEFAULT_STEP_MIN: u32 = 30;

/// The longest range one query may ask about, in days: a year, so a
/// booking window of up to a year is visible in one query, and no more, so
/// one request cannot ask for millennia (docs/decisions.md, "Limits").
pub const MAX_RANGE_DAYS: i64 = 366;
/// The most step-grid points (range ÷ step) one query may walk: a leap year
/// at a 5-minute step. Work and memory grow with this number, not with the
/// slots found, so it is checked before anything is computed.
pub const MAX_GRID_POINTS: i64 = 366 * 24 * 60 / 5;
/// The most slots one answer may hold. About 150 bytes each as JSON, so an
/// answer stays far below AppSync's 5 MB response limit.
pub const MAX_SLOTS_PER_ANSWER: usize = 10_000;

/// Why a feasibility query was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeasibilityError {
    #[error("`to` ({to}) is before `from` ({from})")]
    ToBeforeFrom { from: Instant, to: Instant },
    #[error("{duration} min is below the minimum duration of every window in the range (smallest minimum: {minimum} min)")]
    DurationBelowMinimum { duration: u32, minimum: u32 },
    #[error("must be between {min} and {max} minutes, got {got}")]
    MinutesOutOfRange { field: &'static str, min: u32, max: u32, got: i64 },
    #[error("the range may span at most {max_days} days, got {got_days}")]
    RangeTooLong { max_days: i64, got_days: i64 },
    #[error("the range holds {got} step-grid points (range / step); at most {max}: ask for a shorter range or a larger step")]
    TooManyGridPoints { max: i64, got: i64 },
    #[error("the answer would hold more than {max} slots: ask for a shorter range or a larger step")]
    TooManySlots { max: usize },
}

impl FeasibilityError {
    /// The query field the error is about, for messages that name it.
    pub fn field(&self) -> &'static str {
        match self {
            FeasibilityError::ToBeforeFrom { .. } => "to",
            FeasibilityError::DurationBelowMinimum { .. } => "duration_min",
            FeasibilityError::MinutesOutOfRange { field, .. } => field,
            FeasibilityError::RangeTooLong { .. } | FeasibilityError::TooManySlots { .. } => "to",
            FeasibilityError::TooManyGridPoints { .. } => "step_min",
        }
    }
}

/// Status of a booked event; only `confirmed` is busy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    Confirmed,
    Cancelled,
}

impl EventStatus {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "confirmed" => Some(EventStatus::Confirmed),
            "cancelled" => Some(EventStatus::Cancelled),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            EventStatus::Confirmed => "confirmed",
            EventStatus::Cancelled => "cancelled",
        }
    }
}

/// Status of a hold; only `active` (and unexpired) is busy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HoldStatus {
    Active,
    Released,
    Converted,
    Expired,
}

impl HoldStatus {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "active" => Some(HoldStatus::Active),
            "released" => Some(HoldStatus::Released),
            "converted" => Some(HoldStatus::Converted),
            "expired" => Some(HoldStatus::Expired),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            HoldStatus::Active => "active",
            HoldStatus::Released => "released",
            HoldStatus::Converted => "converted",
            HoldStatus::Expired => "expired",
        }
    }

    /// The status in effect at `now` of a hold stored as `self` that
    /// expires at `expires_at` (SEMANTICS.md §3): an `active` hold whose
    /// expiry has come (`expires_at <= now`) is `expired`, sweeper or not,
    /// so a hold that expires exactly at `now` is already free time.
    ///
    /// The one statement of that rule. Busy time ([`HoldBusy::blocks_at`]),
    /// the state machine ([`crate::holds::conversion`],
    /// [`crate::holds::release`]) and the store (its records, its calendar
    /// cache, the holds a booking write marks, the sweeper) all ask it or
    /// [`HoldStatus::ran_out_unmarked`]; where SQL must say it, it says
    /// [`hold_ran_out_sql`], kept next to this so the two change together.
    pub fn at(self, expires_at: Instant, now: Instant) -> HoldStatus {
        match self {
            HoldStatus::Active if expires_at <= now => HoldStatus::Expired,
            status => status,
        }
    }

    /// Stored `active`, but expired at `now` ([`HoldStatus::at`]): free
    /// time that is still to be marked `expired`, by the sweeper or by the
    /// next booking write of its provider.
    pub fn ran_out_unmarked(self, expires_at: Instant, now: Instant) -> bool {
        self == HoldStatus::Active && self.at(expires_at, now) == HoldStatus::Expired
    }
}

/// [`HoldStatus::ran_out_unmarked`] as a SQL predicate over a row of
/// `cal.hold` (its columns `status` and `expires_at`), `now` being an SQL
/// expression for the instant (a parameter such as `$1`):
/// `status = 'active' and expires_at <= $1`. The store builds every
/// statement that marks or sweeps expired holds with it; its tests check
/// that Postgres and [`HoldStatus::at`] agree at the boundary.
pub fn hold_ran_out_sql(now: &str) -> String {
    format!("status = 'active' and expires_at <= {now}")
}

/// A booked event as far as busy time is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventBusy {
    pub event_id: String,
    pub user_id: String,
    /// The role it was booked as: whose policy buffers it and whose limits
    /// it counts toward (SEMANTICS.md §8); `None`: neither.
    pub role_code: Option<String>,
    pub interval: Interval,
    pub status: EventStatus,
}

/// A hold as far as busy time is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldBusy {
    pub hold_id: String,
    pub user_id: String,
    /// As for [`EventBusy::role_code`].
    pub role_code: Option<String>,
    pub interval: Interval,
    pub expires_at: Instant,
    pub status: HoldStatus,
}

impl HoldBusy {
    /// Active and not yet expired at `now`: a hold expiring exactly at `now`
    /// is already free, sweeper or not (SEMANTICS.md §3).
    pub fn blocks_at(&self, now: Instant) -> bool {
        self.status.at(self.expires_at, now) == HoldStatus::Active
    }
}

/// Everything the engine needs to know about one provider.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProviderCalendar {
    pub weekly_rules: Vec<WeeklyRule>,
    pub exceptions: Vec<Exception>,
    pub events: Vec<EventBusy>,
    pub holds: Vec<HoldBusy>,
    /// Busy time imported from the provider's external calendars; always applies.
    pub external_busy: Vec<Interval>,
    /// Buffers and limits per `(user_id, role_code)`, at most one each (§8).
    pub policies: Vec<BookingPolicy>,
}

/// Which booking a [`Booking`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BookingId<'a> {
    Event { event_id: &'a str },
    Hold { hold_id: &'a str, expires_at: Instant },
}

/// A confirmed event or an active, unexpired hold: what blocks time, is
/// buffered and counts toward limits (SEMANTICS.md §3, §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Booking<'a> {
    pub id: BookingId<'a>,
    pub interval: Interval,
    pub role_code: Option<&'a str>,
}

impl ProviderCalendar {
    /// The bookings of `user_id` that hold time at `now`: confirmed events,
    /// then active holds that have not expired.
    pub fn bookings<'a>(&'a self, user_id: &'a str, now: Instant) -> impl Iterator<Item = Booking<'a>> + 'a {
        let events = self.events.iter().filter(move |e| e.user_id == user_id && e.status == EventStatus::Confirmed).map(|e| Booking {
            id: BookingId::Event { event_id: &e.event_id },
            interval: e.interval,
            role_code: e.role_code.as_deref(),
        });
        let holds = self.holds.iter().filter(move |h| h.user_id == user_id && h.blocks_at(now)).map(|h| Booking {
            id: BookingId::Hold { hold_id: &h.hold_id, expires_at: h.expires_at },
            interval: h.interval,
            role_code: h.role_code.as_deref(),
        });
        events.chain(holds)
    }

    /// Busy time of `user_id` at `now` as a set (SEMANTICS.md §3).
    pub fn busy(&self, user_id: &str, now: Instant) -> Vec<Interval> {
        let bookings = self.bookings(user_id, now).map(|b| b.interval);
        intervals::merge(bookings.chain(self.external_busy.iter().copied()).collect())
    }

    /// The calendar as a reschedule of `event_id` sees it: that event is not
    /// busy, buffered or counted (§5, §8).
    pub fn without_event(&self, event_id: &str) -> ProviderCalendar {
        let mut own = self.clone();
        own.events.retain(|e| e.event_id != event_id);
        own
    }
}

/// Validated step, in minutes (1..=1440).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepMinutes(u32);

impl StepMinutes {
    pub fn new(minutes: i64) -> Result<Self, FeasibilityError> {
        if (1..=1440).contains(&minutes) {
            Ok(StepMinutes(minutes as u32))
        } else {
            Err(FeasibilityError::MinutesOutOfRange { field: "step_min", min: 1, max: 1440, got: minutes })
        }
    }

    pub const fn get(self) -> u32 {
        self.0
    }
}

impl Default for StepMinutes {
    fn default() -> Self {
        StepMinutes(DEFAULT_STEP_MIN)
    }
}

/// The time range and slot shape of a query, shared by single- and
/// multi-provider queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotRange {
    from: Instant,
    to: Instant,
    duration_min: Option<u32>,
    step: StepMinutes,
}

impl SlotRange {
    /// `to < from` is an error; `to == from` is valid and yields nothing.
    /// A range over [`MAX_RANGE_DAYS`] or [`MAX_GRID_POINTS`] is refused.
    pub fn new(from: Instant, to: Instant, duration_min: Option<i64>, step: StepMinutes) -> Result<Self, FeasibilityError> {
        if to < from {
            return Err(FeasibilityError::ToBeforeFrom { from, to });
        }
        let secs = to.unix() - from.unix();
        if secs > MAX_RANGE_DAYS * SECS_PER_DAY {
            // Whole days, rounded up, so "366.5 days" never reads as 366.
            let got_days = (secs + SECS_PER_DAY - 1) / SECS_PER_DAY;
            return Err(FeasibilityError::RangeTooLong { max_days: MAX_RANGE_DAYS, got_days });
        }
        let grid_points = secs / (i64::from(step.get()) * 60);
        if grid_points > MAX_GRID_POINTS {
            return Err(FeasibilityError::TooManyGridPoints { max: MAX_GRID_POINTS, got: grid_points });
        }
        let duration_min = duration_min
            .map(|d| {
                if (1..=i64::from(MAX_DURATION_MIN)).contains(&d) {
                    Ok(d as u32)
                } else {
                    Err(FeasibilityError::MinutesOutOfRange { field: "duration_min", min: 1, max: MAX_DURATION_MIN, got: d })
                }
            })
            .transpose()?;
        Ok(SlotRange { from, to, duration_min, step })
    }

    pub const fn from(&self) -> Instant {
        self.from
    }

    pub const fn to(&self) -> Instant {
        self.to
    }

    pub const fn duration_min(&self) -> Option<u32> {
        self.duration_min
    }

    pub const fn step(&self) -> StepMinutes {
        self.step
    }
}

/// One provider's slot query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotQuery {
    pub user_id: String,
    pub role_code: String,
    pub range: SlotRange,
}

/// A bookable slot, rendered locally in `zone`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Slot {
    pub start: Instant,
    pub end: Instant,
    pub zone: Zone,
}

impl Slot {
    /// The start in the slot's zone with its offset.
    pub fn start_local(&self) -> String {
        self.zone.render(self.start)
    }
}

impl Serialize for Slot {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Slot", 3)?;
        st.serialize_field("start", &self.start)?;
        st.serialize_field("end", &self.end)?;
        st.serialize_field("start_local", &self.start_local())?;
        st.end()
    }
}

/// The answer to a slot query: the slots, and the free ranges (availability
/// − busy, clipped to the query, not cut by lead time or booking window)
/// for a preview calendar.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SlotAnswer {
    pub slots: Vec<Slot>,
    pub free: Vec<Interval>,
}

/// A start instant that passes every rule except the duration, with what is
/// needed to finish the decision for any duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Candidate {
    start: Instant,
    /// Strictest parameters of the windows containing `start`.
    governing: BookingParams,
    /// The latest end a slot starting here may have: the end of the free
    /// range containing `start`, or earlier where a buffer (§8) begins.
    room_end: Instant,
    /// Zone of the first window (by start, end, zone) containing `start` on
    /// whose step grid it lies.
    zone: Zone,
}

impl Candidate {
    /// Whether a slot of `minutes` starting here is allowed and fits.
    fn fits(&self, minutes: u32) -> bool {
        minutes >= self.governing.min_duration_min && self.start.plus_minutes(minutes.into()) <= self.room_end
    }
}

/// One provider's evaluated calendar for a range: candidates, free time and
/// the minimum duration used to validate a requested one.
#[derive(Clone, Debug)]
struct Evaluation {
    candidates: Vec<Candidate>,
    free: Vec<Interval>,
    /// Smallest minimum duration among windows sharing an instant with the
    /// query range; `None` when no window does.
    smallest_minimum: Option<u32>,
}

impl Evaluation {
    fn check_duration(&self, range: &SlotRange) -> Result<(), FeasibilityError> {
        match (range.duration_min, self.smallest_minimum) {
            (Some(duration), Some(minimum)) if duration < minimum => {
                Err(FeasibilityError::DurationBelowMinimum { duration, minimum })
            }
            _ => Ok(()),
        }
    }
}

/// Bookable slots of one provider (SEMANTICS.md §4). Deterministic: the same
/// inputs give the same output.
pub fn bookable_slots(query: &SlotQuery, calendar: &ProviderCalendar, now: Instant) -> Result<SlotAnswer, FeasibilityError> {
    let range = &query.range;
    let eval = evaluate(&query.user_id, &query.role_code, calendar, range, now);
    eval.check_duration(range)?;
    let slots = eval
        .candidates
        .iter()
        .filter_map(|c| {
            let minutes = range.duration_min.unwrap_or(c.governing.min_duration_min);
            c.fits(minutes).then(|| Slot { start: c.start, end: c.start.plus_minutes(minutes.into()), zone: c.zone })
        })
        .collect();
    let slots = at_most(slots)?;
    Ok(SlotAnswer { slots, free: intervals::clip(&eval.free, range.from, range.to) })
}

/// `slots`, if there are at most [`MAX_SLOTS_PER_ANSWER`].
fn at_most<T>(slots: Vec<T>) -> Result<Vec<T>, FeasibilityError> {
    if slots.len() > MAX_SLOTS_PER_ANSWER { Err(FeasibilityError::TooManySlots { max: MAX_SLOTS_PER_ANSWER }) } else { Ok(slots) }
}

fn evaluate(user_id: &str, role_code: &str, calendar: &ProviderCalendar, range: &SlotRange, now: Instant) -> Evaluation {
    let (from, to) = (range.from, range.to);
    // Slots start before `to` but may run past it through touching windows:
    // build windows far enough beyond `to` to hold the longest possible slot.
    let longest_minimum = calendar
        .weekly_rules
        .iter()
        .filter(|r| r.user_id == user_id && r.role_code == role_code && r.active)
        .map(|r| r.params.min_duration_min)
        .chain([BookingParams::default().min_duration_min, range.duration_min.unwrap_or(0)])
        .max()
        .unwrap_or_default();
    let horizon = to.plus_minutes(longest_minimum.into());
    let avail = Availability::build(user_id, role_code, &calendar.weekly_rules, &calendar.exceptions, from, horizon);
    let busy = calendar.busy(user_id, now);
    let free = intervals::subtract(&avail.available, &busy);
    let mut policy = PolicyCheck::new(user_id, role_code, calendar, now);

    let in_query = |iv: &Interval| iv.start() < to && from < iv.end();
    let smallest_minimum = avail
        .windows
        .iter()
        .filter(|w| in_query(&w.interval))
        .map(|w| w.params.min_duration_min)
        .min();

    let step_secs = i64::from(range.step.get()) * 60;
    let mut starts = Vec::new();
    for w in avail.windows.iter().filter(|w| in_query(&w.interval)) {
        let lo = w.interval.start().max(from);
        let hi = w.interval.end().min(to);
        let first = free.partition_point(|f| f.end() <= lo);
        for f in free[first..].iter().take_while(|f| f.start() < hi) {
            grid_points(w.zone, f.start().max(lo), f.end().min(hi), step_secs, &mut starts);
        }
    }
    starts.sort_unstable();
    starts.dedup();

    let candidates = starts
        .into_iter()
        .filter_map(|t| {
            let mut governing: Option<BookingParams> = None;
            let mut zone = None;
            for w in avail.windows_containing(t) {
                governing = Some(governing.map_or(w.params, |g| g.strictest(w.params)));
                if zone.is_none() && on_grid(w.zone, t, step_secs) {
                    zone = Some(w.zone);
                }
            }
            let (governing, zone) = (governing?, zone?);
            let earliest = now.plus_secs(i64::from(governing.lead_time_hours) * 3600);
            let latest = now.plus_secs(i64::from(governing.booking_window_days) * SECS_PER_DAY);
            if t < earliest || t > latest {
                return None;
            }
            let room_end = policy.room_until(t, intervals::containing(&free, t)?.end())?;
            if !policy.within_limits(t) {
                return None;
            }
            Some(Candidate { start: t, governing, room_end, zone })
        })
        .collect();
    Evaluation { candidates, free, smallest_minimum }
}

/// Whether `t` shows a whole multiple of the step after local midnight
/// in `zone` (seconds zero).
pub(crate) fn on_grid(zone: Zone, t: Instant, step_secs: i64) -> bool {
    let local = t.unix() + i64::from(zone.offset_at(t));
    local.rem_euclid(SECS_PER_DAY) % step_secs == 0
}

/// Appends every instant in `[a, b)` whose wall-clock time in `zone` lies on
/// the step grid of its local day. Wall-clock times that do not exist are
/// skipped; in a repeated hour both instants are produced.
fn grid_points(zone: Zone, a: Instant, b: Instant, step_secs: i64, out: &mut Vec<Instant>) {
    let mut t = a;
    while t < b {
        let offset = zone.offset_at(t);
        let sod = (t.unix() + i64::from(offset)).rem_euclid(SECS_PER_DAY);
        // Next grid point of this local day, or the next local midnight.
        let next = (sod + step_secs - 1) / step_secs * step_secs;
        let candidate = t.plus_secs(next.min(SECS_PER_DAY) - sod);
        if candidate >= b {
            break;
        }
        if zone.offset_at(candidate) != offset {
            // A transition lies in (t, candidate]: no grid point before it
            // was skipped, so carry on from the first instant after it.
            t = zone.first_change(t, candidate);
            continue;
        }
        out.push(candidate);
        t = candidate.plus_secs(1);
    }
}

/// How several providers combine. Serde reads `all_of` and the GraphQL
/// enum value `ALL_OF` alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    /// Every listed provider is free for the whole slot.
    #[serde(alias = "ALL_OF")]
    AllOf,
    /// At least one is; the answer says which.
    #[serde(alias = "ANY_OF")]
    AnyOf,
}

/// A provider taking part in a multi-provider query.
#[derive(Clone, Copy, Debug)]
pub struct Participant<'a> {
    pub user_id: &'a str,
    pub role_code: &'a str,
    pub calendar: &'a ProviderCalendar,
}

/// A slot of a multi-provider query with the providers free for it, in the
/// order they were listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CommonSlot {
    #[serde(flatten)]
    pub slot: Slot,
    pub providers: Vec<String>,
}

/// The answer to a multi-provider query; `free` is the intersection
/// (`all_of`) or union (`any_of`) of the providers' free ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CommonAnswer {
    pub slots: Vec<CommonSlot>,
    pub free: Vec<Interval>,
}

/// A refusal of a multi-provider query, naming the provider by position
/// (`None`: the query as a whole, e.g. an answer over the size limit).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {source}", self.path(""))]
pub struct ParticipantError {
    pub index: Option<usize>,
    #[source]
    pub source: FeasibilityError,
}

impl ParticipantError {
    /// The field's path, the providers' list being `list`:
    /// `list[1].duration_min`, or `to` for the whole query.
    pub fn path(&self, list: &str) -> String {
        match self.index {
            Some(i) => format!("{list}[{i}].{}", self.source.field()),
            None => self.source.field().to_owned(),
        }
    }
}

/// Slots for several providers at once: one group of a party query
/// ([`party_slots`]), so the two can never disagree.
///
/// Each provider's rules apply to it alone: a common slot starts on every
/// provider's step grid (in each one's zones), satisfies each one's lead
/// time, booking window, minimum duration, buffers and limits, and lies in
/// each one's free time. Without a requested duration an `all_of` slot
/// lasts the largest of the providers' governing minimums; an `any_of` slot
/// lasts each free provider's own minimum (one entry per distinct
/// `(start, end)`).
///
/// A requested duration below every minimum is an error for `all_of` if any
/// provider refuses it, for `any_of` only if all who have windows do.
/// Local renderings use the first listed provider's zone that offers the slot.
pub fn common_slots(mode: Combine, participants: &[Participant<'_>], range: &SlotRange, now: Instant) -> Result<CommonAnswer, ParticipantError> {
    let group = PartyGroup { mode, members: participants.to_vec() };
    let answer = party_slots(std::slice::from_ref(&group), range, now)
        .map_err(|e| ParticipantError { index: e.at.map(|at| at.member), source: e.source })?;
    let slots = answer
        .slots
        .into_iter()
        .map(|s| CommonSlot { slot: s.slot, providers: s.parties.into_iter().next().unwrap_or_default() })
        .collect();
    Ok(CommonAnswer { slots, free: answer.free })
}

/// One group of a party query (SEMANTICS.md §9): every member (`all_of`)
/// or at least one (`any_of`), each with its own role and calendar.
#[derive(Clone, Debug)]
pub struct PartyGroup<'a> {
    pub mode: Combine,
    pub members: Vec<Participant<'a>>,
}

/// A slot of a party query: per group, the members that take part, in the
/// listed order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartySlot {
    #[serde(flatten)]
    pub slot: Slot,
    pub parties: Vec<Vec<String>>,
}

/// The answer to a party query; `free` is the intersection over the groups
/// of the intersection (`all_of`) or union (`any_of`) of their members' free
/// ranges, clipped to the query.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PartyAnswer {
    pub slots: Vec<PartySlot>,
    pub free: Vec<Interval>,
}

/// Where in a party query a refusal lies: group, its mode, member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberAt {
    pub group: usize,
    pub mode: Combine,
    pub member: usize,
}

/// A refusal of a party query naming the member (`None`: the query as a
/// whole, e.g. an answer over the size limit).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {source}", self.path("parties"))]
pub struct PartyError {
    pub at: Option<MemberAt>,
    #[source]
    pub source: FeasibilityError,
}

impl PartyError {
    /// The field's path, the groups' list being `list`:
    /// `list[1].any_of[0].duration_min`, or `to` for the whole query.
    pub fn path(&self, list: &str) -> String {
        match self.at {
            Some(at) => format!("{list}[{}].{}[{}].{}", at.group, at.mode.key(), at.member, self.source.field()),
            None => self.source.field().to_owned(),
        }
    }
}

impl Combine {
    /// The document's key for this mode: `all_of` or `any_of`.
    pub const fn key(self) -> &'static str {
        match self {
            Combine::AllOf => "all_of",
            Combine::AnyOf => "any_of",
        }
    }
}

/// Slots for a party query (SEMANTICS.md §9): a slot is offered when every
/// group is satisfied, each member under its own rules, policy, step grid,
/// governing values and busy time.
///
/// With a `duration`, an `all_of` group needs every member to fit it and
/// names them all; an `any_of` group needs one and names every member that
/// fits. Without one, a slot takes every `all_of` member and one member per
/// `any_of` group and lasts the largest governing minimum among those
/// taken; each `(start, end)` is listed once, naming per `any_of` group the
/// members that can be taken for exactly that slot. `start_local` is in the
/// zone of the first member named.
///
/// The duration is refused per group: an `all_of` group refuses when any
/// member does (§4), an `any_of` group only when every member with windows
/// in the range does; the error names the first refusing member.
pub fn party_slots(groups: &[PartyGroup<'_>], range: &SlotRange, now: Instant) -> Result<PartyAnswer, PartyError> {
    let evals: Vec<Vec<Evaluation>> = groups
        .iter()
        .map(|g| g.members.iter().map(|p| evaluate(p.user_id, p.role_code, p.calendar, range, now)).collect())
        .collect();
    for (group, (g, members)) in groups.iter().zip(&evals).enumerate() {
        let checks: Vec<Result<(), FeasibilityError>> = members.iter().map(|e| e.check_duration(range)).collect();
        let Some(member) = checks.iter().position(Result::is_err) else { continue };
        let refuses = match g.mode {
            Combine::AllOf => true,
            Combine::AnyOf => {
                let refused = checks.iter().filter(|c| c.is_err()).count();
                refused == members.iter().filter(|e| e.smallest_minimum.is_some()).count()
            }
        };
        if refuses {
            let source = checks[member].clone().expect_err("a refusal");
            return Err(PartyError { at: Some(MemberAt { group, mode: g.mode, member }), source });
        }
    }

    // Only the first `all_of` member's starts can satisfy its group; with
    // no `all_of` group, every start anyone offers is a candidate.
    let starts: Vec<Instant> = match groups.iter().position(|g| g.mode == Combine::AllOf && !g.members.is_empty()) {
        Some(g) => evals[g][0].candidates.iter().map(|c| c.start).collect(),
        None => {
            let mut all: Vec<Instant> = evals.iter().flatten().flat_map(|e| e.candidates.iter().map(|c| c.start)).collect();
            all.sort_unstable();
            all.dedup();
            all
        }
    };
    let mut slots = Vec::new();
    // Per group, each member's candidate at `t`, reused across starts.
    let mut found: Vec<Vec<Option<Candidate>>> = evals.iter().map(|m| vec![None; m.len()]).collect();
    let mut lengths: Vec<u32> = Vec::new();
    'start: for t in starts {
        for ((g, members), slot) in groups.iter().zip(&evals).zip(&mut found) {
            for (e, c) in members.iter().zip(slot.iter_mut()) {
                *c = e.candidates.binary_search_by_key(&t, |c| c.start).ok().map(|i| e.candidates[i]);
                if c.is_none() && g.mode == Combine::AllOf {
                    continue 'start;
                }
            }
            if g.mode == Combine::AnyOf && slot.iter().all(Option::is_none) {
                continue 'start;
            }
        }
        let taken_all = |f: &mut dyn FnMut(&Candidate)| {
            for (g, slot) in groups.iter().zip(&found) {
                if g.mode == Combine::AllOf {
                    slot.iter().flatten().for_each(&mut *f);
                }
            }
        };
        let mut all_of_minimum: Option<u32> = None;
        taken_all(&mut |c| all_of_minimum = Some(all_of_minimum.unwrap_or(0).max(c.governing.min_duration_min)));
        lengths.clear();
        match range.duration_min {
            Some(d) => lengths.push(d),
            None => {
                lengths.extend(all_of_minimum);
                for (g, slot) in groups.iter().zip(&found) {
                    if g.mode == Combine::AnyOf {
                        let floor = all_of_minimum.unwrap_or(0);
                        lengths.extend(slot.iter().flatten().map(|c| c.governing.min_duration_min).filter(|m| *m >= floor));
                    }
                }
                lengths.sort_unstable();
                lengths.dedup();
            }
        }
        for &minutes in &lengths {
            let mut all_fit = true;
            taken_all(&mut |c| all_fit &= c.fits(minutes));
            if !all_fit {
                continue;
            }
            if let Some(slot) = party_slot(groups, &found, t, minutes, range.duration_min.is_some() || all_of_minimum == Some(minutes)) {
                slots.push(slot);
            }
        }
    }

    let slots = at_most(slots).map_err(|source| PartyError { at: None, source })?;
    let free = evals
        .into_iter()
        .zip(groups)
        .map(|(members, g)| {
            let frees = members.into_iter().map(|e| e.free);
            match g.mode {
                Combine::AllOf => frees.reduce(|a, b| intervals::intersect(&a, &b)).unwrap_or_default(),
                Combine::AnyOf => intervals::merge(frees.flatten().collect()),
            }
        })
        .reduce(|a, b| intervals::intersect(&a, &b))
        .unwrap_or_default();
    Ok(PartyAnswer { slots, free: intervals::clip(&free, range.from, range.to) })
}

/// The slot `[t, t + minutes)` of a party query whose `all_of` members all
/// fit it, if every `any_of` group can take part; `attained` says the length
/// is already someone's due (a requested duration, or the `all_of`
/// minimum), else a member taken must have exactly this minimum.
fn party_slot(groups: &[PartyGroup<'_>], found: &[Vec<Option<Candidate>>], t: Instant, minutes: u32, attained: bool) -> Option<PartySlot> {
    let fitting = |slot: &[Option<Candidate>]| slot.iter().flatten().filter(|c| c.fits(minutes)).count();
    let exact = |slot: &[Option<Candidate>]| slot.iter().flatten().any(|c| c.fits(minutes) && c.governing.min_duration_min == minutes);
    let any_of = |i: usize| groups[i].mode == Combine::AnyOf;
    if (0..groups.len()).any(|i| any_of(i) && fitting(&found[i]) == 0) {
        return None;
    }
    let exact_in: Vec<bool> = (0..groups.len()).map(|i| any_of(i) && exact(&found[i])).collect();
    if !attained && !exact_in.contains(&true) {
        return None;
    }
    let mut zone = None;
    let mut parties = Vec::with_capacity(groups.len());
    for (i, (g, slot)) in groups.iter().zip(found).enumerate() {
        // Without a length due elsewhere, the group that sets it may only
        // take members whose own minimum is that length.
        let only_exact = !attained && !exact_in.iter().enumerate().any(|(j, e)| *e && j != i);
        let mut names = Vec::new();
        for (p, c) in g.members.iter().zip(slot) {
            let Some(c) = c else { continue };
            let takes_part = match g.mode {
                Combine::AllOf => true,
                Combine::AnyOf => c.fits(minutes) && (!only_exact || c.governing.min_duration_min == minutes),
            };
            if takes_part {
                zone.get_or_insert(c.zone);
                names.push(p.user_id.to_owned());
            }
        }
        parties.push(names);
    }
    Some(PartySlot { slot: Slot { start: t, end: t.plus_minutes(minutes.into()), zone: zone? }, parties })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Instant {
        Instant::parse(s).unwrap()
    }

    #[test]
    fn a_hold_that_expires_exactly_now_is_expired_and_free() {
        let expires = at("2026-03-01T12:10:00Z");
        let before = at("2026-03-01T12:09:59Z");
        let (active, released) = (HoldStatus::Active, HoldStatus::Released);
        assert_eq!(active.at(expires, before), HoldStatus::Active);
        assert_eq!(active.at(expires, expires), HoldStatus::Expired, "SEMANTICS.md §3: expiring at now is free");
        assert!(active.ran_out_unmarked(expires, expires) && !active.ran_out_unmarked(expires, before));
        // Only an active hold changes with time.
        assert_eq!(released.at(expires, expires), HoldStatus::Released);
        assert!(!HoldStatus::Expired.ran_out_unmarked(expires, expires));
        let iv = Interval::new(at("2026-03-02T10:00:00Z"), at("2026-03-02T11:00:00Z")).unwrap();
        let hold = HoldBusy { hold_id: "h".into(), user_id: "u".into(), role_code: None, interval: iv, expires_at: expires, status: active };
        assert!(hold.blocks_at(before) && !hold.blocks_at(expires));
        assert_eq!(hold_ran_out_sql("$12"), "status = 'active' and expires_at <= $12");
    }

    #[test]
    fn a_range_is_bounded_in_days_and_in_grid_points_before_any_work() {
        let step = |m| StepMinutes::new(m).unwrap();
        let range = |from, to, s| SlotRange::new(at(from), at(to), None, step(s));
        // 366 days exactly is fine; a second more is not.
        assert!(range("2028-01-01T00:00:00Z", "2029-01-01T00:00:00Z", 5).is_ok());
        assert_eq!(
            range("2028-01-01T00:00:00Z", "2029-01-01T00:00:01Z", 30).unwrap_err(),
            FeasibilityError::RangeTooLong { max_days: 366, got_days: 367 }
        );
        let e = range("0001-01-01T00:00:00Z", "9999-12-31T00:00:00Z", 30).unwrap_err();
        assert_eq!(e.field(), "to");
        // Grid points: a leap year at 5 minutes is the most; 4 minutes is over.
        let e = range("2028-01-01T00:00:00Z", "2029-01-01T00:00:00Z", 4).unwrap_err();
        assert_eq!(e, FeasibilityError::TooManyGridPoints { max: MAX_GRID_POINTS, got: 131_760 });
        assert_eq!(e.field(), "step_min");
        // A short range at a 1-minute step is fine.
        assert!(range("2028-01-01T00:00:00Z", "2028-02-01T00:00:00Z", 1).is_ok());
    }

    #[test]
    fn an_answer_over_the_slot_limit_is_refused_not_cut() {
        assert_eq!(at_most(vec![0u8; MAX_SLOTS_PER_ANSWER]).map(|v| v.len()), Ok(MAX_SLOTS_PER_ANSWER));
        assert_eq!(at_most(vec![0u8; MAX_SLOTS_PER_ANSWER + 1]), Err(FeasibilityError::TooManySlots { max: MAX_SLOTS_PER_ANSWER }));
    }
}
