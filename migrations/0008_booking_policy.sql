-- 0008: booking policies (SEMANTICS.md §8): buffers around a provider's
-- bookings of a role and limits on how many start per local day and ISO week.
--
-- One row per (user_id, role_code); no row means no buffers and no limits.
-- The checks mirror cal-core's `BookingPolicy::try_from` (policy.rs:
-- MAX_BUFFER_MIN = 1440, limits at least 1 or null), so a row the database
-- takes is a row the engine reads: a bad row would fail every slot query and
-- hold of the provider. The zone is IANA, checked by the application, as
-- cal.weekly_rule's.
--
-- A change bumps cal.provider_version in its transaction (cal-store
-- rules::put_policy), like every change to what a hold's check reads: so the
-- optimistic hold write, which compares the version under the provider's
-- lock, never stores a hold checked against an older policy.

create table cal.booking_policy (
  user_id text not null,                       -- provider
  role_code text not null,                     -- the role its bookings are made for
  timezone text not null,                      -- whose local days and ISO weeks the limits count
  buffer_before_min int not null default 0,
  buffer_after_min int not null default 0,
  max_per_day int,                             -- null: no limit
  max_per_week int,                            -- null: no limit
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint booking_policy_pk primary key (user_id, role_code),
  constraint booking_policy_buffer_before_min_ck check (buffer_before_min between 0 and 1440),
  constraint booking_policy_buffer_after_min_ck check (buffer_after_min between 0 and 1440),
  constraint booking_policy_max_per_day_ck check (max_per_day is null or max_per_day >= 1),
  constraint booking_policy_max_per_week_ck check (max_per_week is null or max_per_week >= 1)
);
