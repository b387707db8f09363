//! template.yaml, infra/schema.graphql and the router agree: every field has
//! exactly one resolver in the template and one handler in the router, and
//! every function's `Binary` is a binary of this workspace.

use std::collections::BTreeSet;
use std::path::Path;

mod common;

use fn_api::Field;

fn repo(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `(TypeName, FieldName)` of every AWS::AppSync::Resolver in the template.
fn template_resolvers(template: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut in_resolver = false;
    let mut type_name = None;
    for line in template.lines() {
        let t = line.trim();
        if t.starts_with("Type: ") {
            in_resolver = t == "Type: AWS::AppSync::Resolver";
            type_name = None;
        } else if in_resolver {
            if let Some(v) = t.strip_prefix("TypeName: ") {
                type_name = Some(v.to_owned());
            } else if let Some(v) = t.strip_prefix("FieldName: ") {
                out.push((type_name.clone().expect("TypeName before FieldName"), v.to_owned()));
            }
        }
    }
    out
}

#[test]
fn every_schema_field_has_one_template_resolver_and_one_router_entry() {
    let resolvers = template_resolvers(&repo("template.yaml"));
    let unique: BTreeSet<_> = resolvers.iter().cloned().collect();
    assert_eq!(unique.len(), resolvers.len(), "a field has two resolvers");
    let schema = common::schema::root_fields();
    let router: BTreeSet<_> = Field::ALL.iter().map(|f| (f.name().0.to_owned(), f.name().1.to_owned())).collect();
    assert_eq!(unique, schema, "template resolvers vs schema");
    assert_eq!(router, schema, "router vs schema");
}

#[test]
fn every_function_binary_is_built_by_this_workspace() {
    let template = repo("template.yaml");
    let binaries: Vec<&str> = template.lines().filter_map(|l| l.trim().strip_prefix("Binary: ")).collect();
    assert!(binaries.len() >= 7, "{binaries:?}");
    let workspace = repo("Cargo.toml");
    for bin in binaries {
        let manifest = format!("crates/{bin}/Cargo.toml");
        assert!(workspace.contains(&format!("\"crates/{bin}\"")), "{bin} is not a workspace member");
        let text = repo(&manifest);
        let named = text.contains(&format!("name = \"{bin}\""));
        assert!(named, "{manifest} builds no binary named {bin}");
        assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../{bin}/src/main.rs")).exists(), "{bin} has no main.rs");
    }
}

/// Every resolver turns `fn_api::respond`'s two shapes back into GraphQL:
/// `{"data": …}` is the field's value, `{"error": {"type", "message"}}` a
/// GraphQL error of that type; a function error (INTERNAL) stays one.
#[test]
fn every_resolver_maps_the_answer_envelope_of_respond() {
    let template = repo("template.yaml");
    let resolvers = template_resolvers(&template).len();
    let responses: Vec<&str> =
        template.lines().filter_map(|l| l.trim().strip_prefix("ResponseMappingTemplate: ")).collect();
    assert_eq!(responses.len(), resolvers, "one response template per resolver");
    let first = responses[0];
    assert!(responses.iter().all(|r| *r == first), "every resolver has the same response template");
    for part in [
        "$util.error($ctx.error.message, $ctx.error.type)",
        "$util.error($ctx.result.error.message, $ctx.result.error.type)",
        "$util.toJson($ctx.result.data)",
    ] {
        assert!(first.contains(part), "{first} lacks {part}");
    }
    assert!(!template.contains("RequestMappingTemplate"), "the request stays the direct-resolver event");
}
