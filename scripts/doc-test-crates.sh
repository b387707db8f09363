#!/usr/bin/env bash
# Prints the workspace crates whose sources hold a doc test: a doc comment's
# code fence that opens Rust code (bare, `rust`, `no_run`, `should_panic`,
# `compile_fail`, `ignore`), not `text` or another language. `make test` runs
# `cargo test --doc` for these only: an empty doc-test run is noise.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
find crates/*/src -name '*.rs' -print0 |
    xargs -0 awk '
        FNR == 1 { open = 0 }
        /^[ \t]*\/\/[\/!][ \t]*```/ {
            info = $0
            sub(/^[^`]*```[ \t]*/, "", info)
            if (!open) {
                open = 1
                if (info == "" || info ~ /^(rust|no_run|should_panic|compile_fail|ignore)([ ,].*)?$/) print FILENAME
            } else {
                open = 0
            }
        }' |
    cut -d/ -f2 | sort -u
