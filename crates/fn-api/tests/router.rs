//! The router is exhaustive against infra/schema.graphql: every field of
//! `type Query` and `type Mutation` is in `Field::ALL` under its parent, and
//! nothing else is. No database needed.

use std::collections::BTreeSet;

mod common;

use fn_api::Field;
use serde_json::json;

#[test]
fn the_router_has_exactly_the_schemas_query_and_mutation_fields() {
    let schema = common::schema::root_fields();
    assert!(schema.len() > 20, "the parse found too little: {schema:?}");
    let router: BTreeSet<(String, String)> =
        Field::ALL.iter().map(|f| (f.name().0.to_owned(), f.name().1.to_owned())).collect();
    let only_schema: Vec<_> = schema.difference(&router).collect();
    let only_router: Vec<_> = router.difference(&schema).collect();
    assert!(only_schema.is_empty() && only_router.is_empty(), "schema only: {only_schema:?}; router only: {only_router:?}");
    assert_eq!(router.len(), Field::ALL.len(), "Field::ALL lists a field twice");
}

#[test]
fn field_parse_round_trips_and_refuses_the_wrong_parent() {
    for f in Field::ALL {
        let (parent, name) = f.name();
        assert_eq!(Field::parse(parent, name), Some(f));
        let other = if parent == "Query" { "Mutation" } else { "Query" };
        assert_eq!(Field::parse(other, name), None, "{name} under {other}");
    }
    assert_eq!(Field::parse("Subscription", "bookableSlots"), None);
}

#[tokio::test]
async fn an_unknown_field_is_refused_before_any_database_work() {
    // A pool that could never connect: the router must refuse first.
    let deps = fn_api::Deps {
        pool: cal_store::pool_from_url("postgres://nobody@127.0.0.1:1/none", 1).unwrap(),
        feed_base_url: "https://feeds.example.test/feeds".into(),
        limits: fn_api::Limits::default(),
        services: fn_api::ServiceRoles::default(),
        clock: std::sync::Arc::new(|| cal_core::Instant::from_unix(0)),
        cache: None,
        calendars: Default::default(),
        sync: None,
        polls: None,
    };
    let event = json!({
        "arguments": {}, "identity": null, "source": null, "prev": null, "stash": {},
        "request": {"headers": {}, "domainName": null},
        "info": {"selectionSetList": [], "selectionSetGraphQL": "", "parentTypeName": "Query",
                 "fieldName": "deleteEverything", "variables": {}}
    });
    let e = fn_api::handle(&deps, event).await.unwrap_err();
    assert_eq!(e.kind, cal_core::ErrorType::Validation);
    assert_eq!(e.message, "info.fieldName: unknown field Query.deleteEverything");
}
