//! Who may call what (schema.graphql's header, `fn_api`'s `may_see`,
//! `is_or_admin` and the admin-only conversions): every field × every kind
//! of caller, through `handle`, with the field's own payload.
//!
//! Each field gets a seeded database; refused callers go first and must
//! leave the outbox untouched, then every allowed caller sends the same
//! payload (on a database of its own where a repeat could not succeed).

mod common;

use cal_core::ErrorType;
use common::{Api, CUSTOMER, PROVIDER, ROLE, Who, assert_err, hold_args};
use fn_api::Field;
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Allowed,
    /// Someone else's hold or event reads as none (`null`).
    Hidden,
    /// Someone else's record named by id looks like no record at all, so ids
    /// cannot be probed (the schema's "not yours: the two look the same").
    NotFound,
    Forbidden,
}

use Outcome::{Allowed, Forbidden, Hidden, NotFound};

/// The matrix. The fixture's holds and event are prov-ana's (the provider)
/// with cust-ben (the customer); prov-cara is another provider.
fn expected(field: Field, who: Who) -> Outcome {
    use Field::*;
    if matches!(who, Who::Nobody | Who::ForeignService) {
        return Forbidden;
    }
    let admin = matches!(who, Who::Admin | Who::Service);
    // Sees the fixture's holds and event: their provider (in the provider
    // group), their customer (in the customer group), an admin.
    let sees = admin || matches!(who, Who::Provider | Who::Customer);
    match field {
        // A provider's own calendar, rules, sources and feed: the provider
        // (in the `provider` group) or an admin.
        WeeklyRules | Exceptions | ExternalCalendars | PutWeeklyRule | DeleteWeeklyRule | CopyWeekday
        | UpsertException | DeleteException | AddVacation | ConnectIcs | DisconnectIcs | ResyncIcs | CreateFeed
        | RotateFeed | RevokeFeed | CalendarConnections | StartCalendarConnect | SetSyncedCalendar
        | ResyncCalendarConnection | DisconnectCalendar | BookingPolicies | PutBookingPolicy | DeleteBookingPolicy => {
            if admin || who == Who::Provider { Allowed } else { Forbidden }
        }
        // Anyone signed in.
        BookableSlots | CommonSlots => Allowed,
        // Customers (and admins) hold time; providers in the provider group only do not.
        CreateHold | RequestBooking => {
            if admin || matches!(who, Who::Customer | Who::OtherCustomer) { Allowed } else { Forbidden }
        }
        // The event's or hold's provider, its customer, or an admin.
        RescheduleCandidates | EventIcs | ReleaseHold => {
            if sees { Allowed } else { NotFound }
        }
        Hold | Event => {
            if sees { Allowed } else { Hidden }
        }
        // The provider answers a request; its customer may see it but not answer it.
        AcceptRequest | DeclineRequest => match who {
            _ if admin => Allowed,
            Who::Provider => Allowed,
            Who::Customer => Forbidden,
            _ => NotFound,
        },
        // The order service (or an admin) converts, moves and cancels.
        ConfirmHold | RescheduleEvent | CancelEvent => {
            if admin { Allowed } else { Forbidden }
        }
    }
}

/// Mutations a second caller cannot repeat with the same payload (the row is
/// gone, or the idempotency key now belongs to another customer's request):
/// each allowed caller gets a database of its own.
fn needs_fresh_database(field: Field) -> bool {
    use Field::*;
    matches!(
        field,
        DeleteWeeklyRule | DeleteException | DisconnectIcs | DisconnectCalendar | DeleteBookingPolicy | CreateHold | RequestBooking
    )
}

async fn run_field(field: Field) -> Vec<String> {
    let name = field.name().1;
    let mut failures = Vec::new();
    let shared = Api::with_fixture().await;

    // Refused callers first, on the untouched fixture: they must write nothing.
    let before = shared.0.outbox_len().await;
    for who in Who::ALL.into_iter().filter(|w| expected(field, *w) != Allowed) {
        let mut event = shared.1.event(name);
        event["identity"] = who.identity();
        let got = shared.0.call(event).await;
        let fine = match (expected(field, who), &got) {
            (Forbidden, Err(e)) => e.kind == ErrorType::Forbidden,
            (NotFound, Err(e)) => e.kind == ErrorType::NotFound,
            (Hidden, Ok(v)) => v.is_null(),
            _ => false,
        };
        if !fine {
            failures.push(format!("{name} as {who:?}: expected {:?}, got {got:?}", expected(field, who)));
        }
    }
    let after = shared.0.outbox_len().await;
    if after != before {
        failures.push(format!("{name}: refused calls wrote {} outbox rows", after - before));
    }

    // Allowed callers: the same payload answers each of them.
    for who in Who::ALL.into_iter().filter(|w| expected(field, *w) == Allowed) {
        let own;
        let (api, fx) = if needs_fresh_database(field) {
            own = Api::with_fixture().await;
            (&own.0, &own.1)
        } else {
            (&shared.0, &shared.1)
        };
        let mut event = fx.event(name);
        event["identity"] = who.identity();
        match api.call(event).await {
            Ok(Value::Null) => failures.push(format!("{name} as {who:?}: allowed but got null")),
            Ok(_) => {}
            Err(e) => failures.push(format!("{name} as {who:?}: expected Ok, got {e}")),
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_field_for_every_kind_of_caller() {
    let mut tasks = tokio::task::JoinSet::new();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(6));
    for field in Field::ALL {
        let gate = gate.clone();
        tasks.spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            run_field(field).await
        });
    }
    let mut failures = Vec::new();
    while let Some(r) = tasks.join_next().await {
        failures.extend(r.unwrap());
    }
    failures.sort();
    assert!(failures.is_empty(), "{} authorization failures:\n{}", failures.len(), failures.join("\n"));
}

#[tokio::test]
async fn a_customer_holds_only_for_themselves_and_never_an_admin_hold() {
    let api = Api::new().await;
    let mut args = hold_args("2030-03-04T08:00:00Z", "2030-03-04T09:00:00Z", "for-dora");
    args["input"]["customerId"] = json!("cust-dora");
    assert_err(api.call_as(Who::Customer, "createHold", args.clone()).await, ErrorType::Forbidden);
    assert_err(api.call_as(Who::Customer, "requestBooking", args.clone()).await, ErrorType::Forbidden);
    // Naming oneself is fine; an admin or the order service may name anyone.
    args["input"]["customerId"] = json!(CUSTOMER);
    assert_eq!(api.ok(Who::Customer, "createHold", args.clone()).await["customerId"], CUSTOMER);
    let mut for_dora = hold_args("2030-03-04T10:00:00Z", "2030-03-04T11:00:00Z", "svc-for-dora");
    for_dora["input"]["customerId"] = json!("cust-dora");
    assert_eq!(api.ok(Who::Service, "createHold", for_dora).await["customerId"], "cust-dora");

    // ADMIN holds are for admins: not a customer's, not even the provider's own.
    let mut block = hold_args("2030-03-04T12:00:00Z", "2030-03-04T13:00:00Z", "block");
    block["input"]["kind"] = json!("ADMIN");
    assert_err(api.call_as(Who::Customer, "createHold", block.clone()).await, ErrorType::Forbidden);
    assert_err(api.call_as(Who::Provider, "createHold", block.clone()).await, ErrorType::Forbidden);
    let held = api.ok(Who::Admin, "createHold", block).await;
    assert_eq!((held["kind"].as_str(), held["customerId"].as_str()), (Some("ADMIN"), None));
}

#[tokio::test]
async fn a_reschedule_hold_needs_a_caller_who_may_see_the_event() {
    let (api, fx) = Api::with_fixture().await;
    let mut args = hold_args("2030-03-05T08:00:00Z", "2030-03-05T09:00:00Z", "move-it");
    args["input"]["kind"] = json!("RESCHEDULE");
    args["input"]["eventId"] = json!(fx.event_id);
    // Another customer cannot tell the event exists; a provider does not book at all.
    assert_err(api.call_as(Who::OtherCustomer, "createHold", args.clone()).await, ErrorType::NotFound);
    assert_err(api.call_as(Who::OtherProvider, "createHold", args.clone()).await, ErrorType::Forbidden);
    let held = api.ok(Who::Customer, "createHold", args).await;
    assert_eq!((held["kind"].as_str(), held["eventId"].as_str()), (Some("RESCHEDULE"), Some(fx.event_id.as_str())));
}

#[tokio::test]
async fn groups_as_one_string_and_a_subject_without_groups_are_read_correctly() {
    let api = Api::new().await;
    let args = json!({"userId": PROVIDER, "roleCode": ROLE});
    // Some token shapes carry the groups as one string: "admin" among them is an admin.
    let mut event = common::request(Who::Admin, "weeklyRules", args.clone());
    event["identity"]["claims"]["cognito:groups"] = json!("customer admin");
    assert!(api.call(event).await.is_ok());
    // A user in no group is no admin: only their own data.
    let mut event = common::request(Who::OtherProvider, "weeklyRules", args.clone());
    event["identity"]["claims"].as_object_mut().unwrap().remove("cognito:groups");
    assert_err(api.call(event).await, ErrorType::Forbidden);
    // An identity with neither a subject nor an ARN is no identity.
    let mut event = common::request(Who::Provider, "weeklyRules", args);
    event["identity"] = json!({"sourceIp": ["203.0.113.24"], "defaultAuthStrategy": "ALLOW"});
    assert_err(api.call(event).await, ErrorType::Forbidden);
}
