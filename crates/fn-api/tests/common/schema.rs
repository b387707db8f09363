//! The fields of infra/schema.graphql's root types, read with a real
//! GraphQL parser (`graphql-parser`), so descriptions, comments and
//! directives never fool a text scan.

use std::collections::BTreeSet;

use graphql_parser::schema::{Definition, TypeDefinition, TypeExtension};

/// The schema's text.
pub fn text() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/schema.graphql");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `(parent, field)` of every field of the root `Query` and `Mutation`
/// types (extensions included).
pub fn root_fields() -> BTreeSet<(String, String)> {
    let text = text();
    let doc = graphql_parser::parse_schema::<String>(&text).unwrap_or_else(|e| panic!("infra/schema.graphql: {e}"));
    let mut out = BTreeSet::new();
    for def in &doc.definitions {
        let (name, fields) = match def {
            Definition::TypeDefinition(TypeDefinition::Object(o)) => (&o.name, &o.fields),
            Definition::TypeExtension(TypeExtension::Object(o)) => (&o.name, &o.fields),
            _ => continue,
        };
        if name == "Query" || name == "Mutation" {
            out.extend(fields.iter().map(|f| (name.clone(), f.name.clone())));
        }
    }
    out
}
