//! The router is exhaustive against infra/schema.graphql: every field of
//! `type Query` and `type Mutation` is in `Field::ALL` under its parent, and
//! nothing else is. No database needed.

use std::collections::BTreeSet;

use fn_api::Field;
use serde_json::json;

/// `(parent, field)` of every field of the schema's `type Query` and
/// `type Mutation` blocks: a plain text parse (strip `#` comments and
/// `"…"` descriptions, then the name before `(` or `:` of each field).
fn schema_fields() -> BTreeSet<(String, String)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/schema.graphql");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut fields = BTreeSet::new();
    for parent in ["Query", "Mutation"] {
        let head = format!("type {parent} ");
        let start = text.find(&head).unwrap_or_else(|| panic!("no `type {parent}` in the schema"));
        let open = start + text[start..].find('{').unwrap();
        let close = open + text[open..].find("\n}").unwrap();
        let body = &text[open + 1..close];
        let mut in_block_string = false;
        for line in body.lines() {
            let line = line.split('#').next().unwrap().trim();
            // Block descriptions (`"""…"""`, possibly over several lines).
            if in_block_string {
                in_block_string = !line.contains("\"\"\"");
                continue;
            }
            if let Some(rest) = line.strip_prefix("\"\"\"") {
                in_block_string = !rest.contains("\"\"\"");
                continue;
            }
            if line.is_empty() || line.starts_with('"') {
                continue;
            }
            let end = line.find(['(', ':']).unwrap_or_else(|| panic!("cannot read the field in {line:?}"));
            let name = line[..end].trim();
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "odd field name {name:?} in {line:?}");
            fields.insert((parent.to_owned(), name.to_owned()));
        }
    }
    fields
}

#[test]
fn the_router_has_exactly_the_schemas_query_and_mutation_fields() {
    let schema = schema_fields();
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
