'use strict';
// End to end through GraphQL: a client → amplify-appsync-simulator (Cognito
// user pools + IAM, infra/schema.graphql) → fn-api under `cargo lambda
// watch` → a throwaway Postgres. Run by scripts/e2e.sh (`make e2e`), which
// starts all of that and sets GRAPHQL_URL.
//
// The provider is set up through the API itself, with dates relative to now
// (fn-api uses the real clock). The tests run in order and share what the
// earlier ones booked; each says which earlier result it needs.

const { test: nodeTest } = require('node:test');
const assert = require('node:assert/strict');

const GRAPHQL_URL = process.env.GRAPHQL_URL;
if (!GRAPHQL_URL) throw new Error('GRAPHQL_URL is not set (run through scripts/e2e.sh / make e2e)');

// Ids unique to this run: a rerun on the same database starts clean.
const run = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
const PROVIDER = `e2e-prov-${run}`;
const ROLE = 'photographer';
const TZ = 'Europe/Berlin';
const CUSTOMER_A = `e2e-cust-a-${run}`;
const CUSTOMER_B = `e2e-cust-b-${run}`;
const ADMIN = `e2e-admin-${run}`;

// Cognito ID tokens as the simulator takes them: it decodes the payload
// without checking the signature and wants a cognito-idp issuer.
const b64url = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
function cognito(sub, groups) {
  const now = Math.floor(Date.now() / 1000);
  return `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({
    sub,
    iss: 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_e2e',
    aud: 'e2e-client',
    token_use: 'id',
    'cognito:username': sub,
    'cognito:groups': groups,
    iat: now,
    exp: now + 3600,
  })}.`;
}
// An IAM (SigV4) caller: the simulator reads only the access key id, which
// simulator.js maps to the order service's role.
const SERVICE = 'AWS4-HMAC-SHA256 Credential=ASIAE2ESERVICE/20260101/us-east-1/appsync/aws4_request, ' +
  'SignedHeaders=content-type;host;x-amz-date, Signature=0000';

const as = {
  provider: cognito(PROVIDER, ['provider']),
  customerA: cognito(CUSTOMER_A, ['customer']),
  customerB: cognito(CUSTOMER_B, ['customer']),
  admin: cognito(ADMIN, ['admin']),
  service: SERVICE,
};

async function gql(authorization, query, variables = {}) {
  const headers = { 'content-type': 'application/json' };
  if (authorization) headers.authorization = authorization;
  const res = await fetch(GRAPHQL_URL, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  const body = await res.json();
  return { status: res.status, ...body };
}

// The data of a request that must succeed.
async function ok(authorization, query, variables) {
  const r = await gql(authorization, query, variables);
  assert.equal(r.errors, undefined, `unexpected GraphQL errors: ${JSON.stringify(r.errors)}`);
  assert.equal(r.status, 200);
  return r.data;
}

// The resolver's error of a request that must fail. graphql-js adds a
// "Cannot return null for non-nullable field" error for the same path; the
// one from the resolver is the one with an errorType.
async function fails(authorization, query, variables, errorType) {
  const r = await gql(authorization, query, variables);
  assert.ok(Array.isArray(r.errors), `expected errors, got ${JSON.stringify(r)}`);
  const typed = r.errors.filter((e) => e.errorType);
  assert.equal(typed.length, 1, `expected one typed error, got ${JSON.stringify(r.errors)}`);
  assert.equal(typed[0].errorType, errorType, `expected ${errorType}, got ${JSON.stringify(typed[0])}`);
  assert.equal(r.data, null);
  return typed[0];
}

const RULE = `ruleId userId roleCode weekdayMask startLocal endLocal timezone minDurationMin leadTimeHours bookingWindowDays active`;
const HOLD = `holdId userId roleCode customerId start end kind mode status expiresAt eventId convertedEventId`;
const EVENT = `eventId userId roleCode customerId start end status sequence icsUid timezone`;

const PUT_RULE = `mutation Put($userId: ID!, $input: WeeklyRuleInput!) { putWeeklyRule(userId: $userId, input: $input) { ${RULE} } }`;
const SLOTS = `query Slots($input: SlotQueryInput!) { bookableSlots(input: $input) { slots { start end startLocal } free { start end } } }`;
const CREATE_HOLD = `mutation Hold($input: CreateHoldInput!) { createHold(input: $input) { ${HOLD} } }`;
const REQUEST_BOOKING = `mutation Req($input: CreateHoldInput!) { requestBooking(input: $input) { ${HOLD} } }`;

const ruleInput = (over = {}) => ({
  roleCode: ROLE,
  weekdayMask: 127, // every day
  startLocal: '08:00',
  endLocal: '20:00',
  timezone: TZ,
  minDurationMin: 60,
  leadTimeHours: 24,
  bookingWindowDays: 30,
  ...over,
});

// One UTC day two days ahead: past the 24 h lead time, well inside the
// window, and Berlin's 08:00–20:00 lies inside it whatever the season.
const DAY = 24 * 3600 * 1000;
const from = new Date(Math.floor((Date.now() + 2 * DAY) / DAY) * DAY);
const to = new Date(from.getTime() + DAY);
const iso = (d) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
const range = { userId: PROVIDER, roleCode: ROLE, from: iso(from), to: iso(to) };

async function slotsFor(authorization) {
  return (await ok(authorization, SLOTS, { input: range })).bookableSlots;
}
const overlaps = (a, b) => Date.parse(a.start) < Date.parse(b.end) && Date.parse(b.start) < Date.parse(a.end);

// Shared between the tests, in order.
const state = {};
// No call should take long once the function is warm (scripts/e2e.sh warms it).
const test = (name, fn) => nodeTest(name, { timeout: 120000 }, fn);

test('a provider sets up their week through the API (putWeeklyRule, weeklyRules)', async () => {
  const { putWeeklyRule: rule } = await ok(as.provider, PUT_RULE, { userId: PROVIDER, input: ruleInput() });
  assert.ok(rule.ruleId);
  assert.equal(rule.userId, PROVIDER);
  assert.equal(rule.timezone, TZ);
  assert.equal(rule.weekdayMask, 127);
  assert.equal(rule.active, true);
  const { weeklyRules } = await ok(as.provider, `query R($u: ID!) { weeklyRules(userId: $u) { ${RULE} } }`, { u: PROVIDER });
  assert.deepEqual(weeklyRules.map((r) => r.ruleId), [rule.ruleId]);
  state.ruleId = rule.ruleId;

  const page = await slotsFor(as.customerA);
  // 08:00–20:00 local, 60 min on a 30 min step: 23 starts.
  assert.equal(page.slots.length, 23, JSON.stringify(page.slots.map((s) => s.startLocal)));
  assert.match(page.slots[0].startLocal, /T08:00:00\+0[12]:00$/);
  assert.equal(page.free.length, 1);
  state.slots = page.slots;
});

test('Instant Book: bookableSlots → createHold → confirmHold (admin) → the slot is gone', async () => {
  assert.ok(state.slots, 'needs the set-up test');
  const slot = state.slots[4]; // 10:00 local
  state.booked = slot;
  const input = { userId: PROVIDER, roleCode: ROLE, start: slot.start, end: slot.end, idempotencyKey: `ib-${run}` };
  const { createHold: hold } = await ok(as.customerA, CREATE_HOLD, { input });
  assert.equal(hold.status, 'ACTIVE');
  assert.equal(hold.mode, 'INSTANT');
  assert.equal(hold.kind, 'CHECKOUT');
  assert.equal(hold.customerId, CUSTOMER_A, 'a customer holds for themselves');
  assert.equal(hold.start, slot.start);
  assert.ok(Date.parse(hold.expiresAt) > Date.now());

  // A retry with the same key is the same hold.
  const { createHold: again } = await ok(as.customerA, CREATE_HOLD, { input });
  assert.equal(again.holdId, hold.holdId);

  // Only admins (the order service) confirm.
  await fails(as.customerA, `mutation C($h: ID!) { confirmHold(holdId: $h) { eventId } }`, { h: hold.holdId }, 'FORBIDDEN');
  const { confirmHold: event } = await ok(as.admin, `mutation C($h: ID!) { confirmHold(holdId: $h) { ${EVENT} } }`, { h: hold.holdId });
  assert.equal(event.status, 'CONFIRMED');
  assert.equal(event.sequence, 0);
  assert.equal(event.start, slot.start);
  assert.equal(event.end, slot.end);
  assert.equal(event.customerId, CUSTOMER_A);
  assert.equal(event.timezone, TZ);
  state.event = event;

  const { hold: converted } = await ok(as.customerA, `query H($h: ID!) { hold(holdId: $h) { ${HOLD} } }`, { h: hold.holdId });
  assert.equal(converted.status, 'CONVERTED');
  assert.equal(converted.convertedEventId, event.eventId);

  const page = await slotsFor(as.customerB);
  assert.ok(!page.slots.some((s) => overlaps(s, slot)), `${slot.start} is still offered`);
  assert.ok(page.slots.length > 0, 'the rest of the day is still offered');
});

test('CONFLICT: holding the booked time fails with nearby alternatives', async () => {
  assert.ok(state.booked, 'needs the Instant Book test');
  const slot = state.booked;
  const err = await fails(as.customerB, CREATE_HOLD, {
    input: { userId: PROVIDER, roleCode: ROLE, start: slot.start, end: slot.end, idempotencyKey: `late-${run}` },
  }, 'CONFLICT');
  const marker = 'alternatives: [';
  assert.ok(err.message.includes(marker), err.message);
  const alternatives = JSON.parse(err.message.slice(err.message.indexOf(marker) + marker.length - 1));
  assert.ok(Array.isArray(alternatives) && alternatives.length >= 1 && alternatives.length <= 3, err.message);
  for (const alt of alternatives) {
    assert.ok(alt.start && alt.end && alt.start_local, JSON.stringify(alt));
    assert.equal(Date.parse(alt.end) - Date.parse(alt.start), Date.parse(slot.end) - Date.parse(slot.start));
    assert.ok(!overlaps(alt, slot), `alternative ${alt.start} overlaps the booked time`);
  }
});

test('eventIcs: the booked event as a METHOD:REQUEST iCalendar attachment', async () => {
  assert.ok(state.event, 'needs the Instant Book test');
  const { eventIcs } = await ok(as.customerA, `query I($e: ID!) { eventIcs(eventId: $e) { eventId method filename contentType ics } }`, { e: state.event.eventId });
  assert.equal(eventIcs.eventId, state.event.eventId);
  assert.equal(eventIcs.method, 'REQUEST');
  assert.match(eventIcs.contentType, /^text\/calendar/);
  const ics = eventIcs.ics;
  assert.ok(ics.startsWith('BEGIN:VCALENDAR\r\n'), ics.slice(0, 80));
  assert.ok(ics.includes('\r\nMETHOD:REQUEST\r\n'), ics);
  assert.ok(ics.includes('\r\nBEGIN:VEVENT\r\n'), ics);
  assert.ok(ics.includes(`UID:${state.event.icsUid}`), ics);
  assert.ok(ics.trimEnd().endsWith('END:VCALENDAR'), ics);
  // Someone else's event looks like no event at all (schema: NOT_FOUND,
  // "or not yours: the two look the same").
  const err = await fails(as.customerB, `query I($e: ID!) { eventIcs(eventId: $e) { ics } }`, { e: state.event.eventId }, 'NOT_FOUND');
  assert.ok(!err.message.includes(CUSTOMER_A), err.message);
});

test('Request-to-Book decline: requestBooking → declineRequest by the provider → the slot is offered again', async () => {
  assert.ok(state.slots, 'needs the set-up test');
  const slot = state.slots[12]; // 14:00 local, clear of the booked 10:00
  const { requestBooking: req } = await ok(as.customerB, REQUEST_BOOKING, {
    input: { userId: PROVIDER, roleCode: ROLE, start: slot.start, end: slot.end, idempotencyKey: `rtb-${run}` },
  });
  assert.equal(req.mode, 'REQUEST');
  assert.equal(req.status, 'ACTIVE');
  assert.equal(req.customerId, CUSTOMER_B);
  // The request holds the time while the provider decides.
  assert.ok(!(await slotsFor(as.customerA)).slots.some((s) => overlaps(s, slot)), 'a requested slot is not offered');

  // Only the provider (or an admin) answers.
  await fails(as.customerB, `mutation D($h: ID!) { declineRequest(holdId: $h) { holdId } }`, { h: req.holdId }, 'FORBIDDEN');
  const { declineRequest: declined } = await ok(as.provider, `mutation D($h: ID!) { declineRequest(holdId: $h) { ${HOLD} } }`, { h: req.holdId });
  assert.equal(declined.holdId, req.holdId);
  assert.equal(declined.status, 'RELEASED');

  const page = await slotsFor(as.customerA);
  assert.ok(page.slots.some((s) => s.start === slot.start && s.end === slot.end), `${slot.start} is not offered again`);
});

test('Reschedule: rescheduleCandidates → a RESCHEDULE hold by the customer → rescheduleEvent (admin): same UID, SEQUENCE 1, old time free', async () => {
  assert.ok(state.slots, 'needs the set-up test');
  const slot = state.slots[8]; // 12:00 local
  const input = { userId: PROVIDER, roleCode: ROLE, start: slot.start, end: slot.end, idempotencyKey: `rs-book-${run}` };
  const { createHold: hold } = await ok(as.customerA, CREATE_HOLD, { input });
  const { confirmHold: event } = await ok(as.admin, `mutation C($h: ID!) { confirmHold(holdId: $h) { ${EVENT} } }`, { h: hold.holdId });

  // Where it could move: its own time does not count against it.
  const CANDIDATES = `query R($e: ID!, $f: AWSDateTime!, $t: AWSDateTime!) { rescheduleCandidates(eventId: $e, from: $f, to: $t) { slots { start end } } }`;
  const { rescheduleCandidates: cands } = await ok(as.customerA, CANDIDATES, { e: event.eventId, f: range.from, t: range.to });
  const target = cands.slots.find((s) => Date.parse(s.start) === Date.parse(slot.start) + 30 * 60 * 1000);
  assert.ok(target, `12:30 (overlapping the event's own time) is a candidate: ${JSON.stringify(cands.slots.map((s) => s.start))}`);

  const { createHold: move } = await ok(as.customerA, CREATE_HOLD, {
    input: { userId: PROVIDER, roleCode: ROLE, start: target.start, end: target.end, kind: 'RESCHEDULE', eventId: event.eventId, idempotencyKey: `rs-move-${run}` },
  });
  assert.equal(move.kind, 'RESCHEDULE');
  await fails(as.customerA, `mutation M($e: ID!, $h: ID!) { rescheduleEvent(eventId: $e, holdId: $h) { eventId } }`, { e: event.eventId, h: move.holdId }, 'FORBIDDEN');
  const { rescheduleEvent: moved } = await ok(as.admin, `mutation M($e: ID!, $h: ID!) { rescheduleEvent(eventId: $e, holdId: $h) { ${EVENT} } }`, { e: event.eventId, h: move.holdId });
  assert.equal(moved.eventId, event.eventId);
  assert.equal(moved.icsUid, event.icsUid);
  assert.equal(moved.sequence, 1);
  assert.equal(moved.start, target.start);
  const { eventIcs } = await ok(as.customerA, `query I($e: ID!) { eventIcs(eventId: $e) { method ics } }`, { e: event.eventId });
  assert.ok(eventIcs.ics.includes('\r\nSEQUENCE:1\r\n') && eventIcs.method === 'REQUEST', eventIcs.ics);
  // 12:00–12:30 is free again; 12:30 onwards is taken.
  const page = await slotsFor(as.customerB);
  assert.ok(!page.slots.some((s) => overlaps(s, target)), `${target.start} is still offered`);
  const freed = { start: slot.start, end: target.start };
  assert.ok(page.free.some((f) => Date.parse(f.start) <= Date.parse(freed.start) && Date.parse(freed.end) <= Date.parse(f.end)), 'the old time is free');
});

test('the schema is valid GraphQL (graphql-js, with AppSync scalars and directives declared)', async () => {
  const { buildSchema } = require('graphql');
  const fs = require('node:fs');
  const path = require('node:path');
  const prelude = ['AWSDate', 'AWSTime', 'AWSDateTime', 'AWSTimestamp', 'AWSEmail', 'AWSJSON', 'AWSURL', 'AWSPhone', 'AWSIPAddress']
    .map((s) => `scalar ${s}`).join('\n') + `
directive @aws_api_key on FIELD_DEFINITION | OBJECT
directive @aws_iam on FIELD_DEFINITION | OBJECT
directive @aws_oidc on FIELD_DEFINITION | OBJECT
directive @aws_lambda on FIELD_DEFINITION | OBJECT
directive @aws_cognito_user_pools(cognito_groups: [String]) on FIELD_DEFINITION | OBJECT
directive @aws_auth(cognito_groups: [String]) on FIELD_DEFINITION
directive @aws_subscribe(mutations: [String]) on FIELD_DEFINITION
`;
  const sdl = fs.readFileSync(path.join(__dirname, '..', 'infra', 'schema.graphql'), 'utf8');
  const schema = buildSchema(prelude + sdl);
  assert.equal(Object.keys(schema.getQueryType().getFields()).length, 11);
  assert.equal(Object.keys(schema.getMutationType().getFields()).length, 26);
});

test('FORBIDDEN: a customer cannot change a provider\'s weekly rules', async () => {
  const err = await fails(as.customerA, PUT_RULE, { userId: PROVIDER, input: ruleInput({ startLocal: '00:00', endLocal: '00:00' }) }, 'FORBIDDEN');
  assert.ok(err.message.length > 0);
  assert.deepEqual(err.path, ['putWeeklyRule']);
  const { weeklyRules } = await ok(as.provider, `query R($u: ID!) { weeklyRules(userId: $u) { ruleId startLocal } }`, { u: PROVIDER });
  assert.deepEqual(weeklyRules, [{ ruleId: state.ruleId, startLocal: '08:00:00' }]);
});

test('VALIDATION: a bad timezone is named by its field path', async () => {
  const err = await fails(as.provider, PUT_RULE, { userId: PROVIDER, input: ruleInput({ timezone: 'Mars/Olympus_Mons' }) }, 'VALIDATION');
  assert.ok(err.message.startsWith('input.timezone'), err.message);
  assert.ok(err.message.includes('Mars/Olympus_Mons'), err.message);
});

test('IAM: a service cancels the event; the attachment becomes METHOD:CANCEL and the time is free again', async () => {
  assert.ok(state.event, 'needs the Instant Book test');
  const { cancelEvent: cancelled } = await ok(as.service, `mutation X($e: ID!) { cancelEvent(eventId: $e) { ${EVENT} } }`, { e: state.event.eventId });
  assert.equal(cancelled.status, 'CANCELLED');
  assert.equal(cancelled.sequence, 1);
  assert.equal(cancelled.icsUid, state.event.icsUid);
  const { eventIcs } = await ok(as.customerA, `query I($e: ID!) { eventIcs(eventId: $e) { method ics } }`, { e: state.event.eventId });
  assert.equal(eventIcs.method, 'CANCEL');
  assert.ok(eventIcs.ics.includes('\r\nMETHOD:CANCEL\r\n'), eventIcs.ics);
  const page = await slotsFor(as.customerB);
  assert.ok(page.slots.some((s) => s.start === state.booked.start), `${state.booked.start} is not offered again`);
});

test('the simulator refuses a request without credentials', async () => {
  const r = await gql(null, SLOTS, { input: range });
  assert.equal(r.status, 401);
  assert.match(JSON.stringify(r.errors), /UnauthorizedException/);
});
