//! The contract between `infra/statemachines/ics-poll.asl.json` and this
//! function: walking the state machine on the sample payloads of
//! `events/ics-poller/`, each Task's Parameters build exactly the input the
//! handler accepts (and the event files hold), and each ResultSelector finds
//! what the handler answers. No AWS: the few ASL path rules used here are
//! evaluated by hand.

use std::path::PathBuf;

use fn_ics_poller::{ListDueOutput, PollOutcome, PollStatus, Task};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load(path: &str) -> Value {
    let p = root().join(path);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A reference path (`$.a.b`, `$$.Map.Item.Value.x`, `$`) on `input`
/// (or on `context` for `$$`).
fn path<'a>(p: &str, input: &'a Value, context: &'a Value) -> &'a Value {
    let (mut at, rest) = match p.strip_prefix("$$") {
        Some(rest) => (context, rest),
        None => (input, p.strip_prefix('$').unwrap_or_else(|| panic!("not a path: {p}"))),
    };
    for key in rest.split('.').filter(|k| !k.is_empty()) {
        at = at.get(key).unwrap_or_else(|| panic!("path {p}: no {key:?} in {at}"));
    }
    at
}

/// Payload template rendering: `"key.$": "path"` becomes `"key": value`.
fn render(template: &Value, input: &Value, context: &Value) -> Value {
    match template {
        Value::Object(fields) => {
            let mut out = Map::new();
            for (k, v) in fields {
                match k.strip_suffix(".$") {
                    Some(name) => {
                        let p = v.as_str().unwrap_or_else(|| panic!("{k} is not a path"));
                        out.insert(name.to_owned(), path(p, input, context).clone());
                    }
                    None => {
                        out.insert(k.clone(), render(v, input, context));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| render(v, input, context)).collect()),
        other => other.clone(),
    }
}

/// `ResultPath`: where a state's result goes in its input.
fn place(input: &Value, result_path: &str, result: Value) -> Value {
    let mut out = input.clone();
    let keys: Vec<&str> = result_path.strip_prefix("$.").expect("a $.field ResultPath").split('.').collect();
    let mut at = &mut out;
    for k in &keys[..keys.len() - 1] {
        at = at.as_object_mut().unwrap().entry(k.to_string()).or_insert(json!({}));
    }
    at.as_object_mut().unwrap().insert(keys[keys.len() - 1].to_owned(), result);
    out
}

/// Deserializes strictly and checks it serializes back to the same JSON.
fn round_trip<T: DeserializeOwned + Serialize>(value: &Value, what: &str) -> T {
    let typed: T = serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{what}: {e}\n{value}"));
    assert_eq!(&serde_json::to_value(&typed).unwrap(), value, "{what} round-trips");
    typed
}

/// What `lambda:invoke` returns: the function's answer under `Payload`.
fn invoke_result(answer: &Value) -> Value {
    json!({"ExecutedVersion": "$LATEST", "Payload": answer, "StatusCode": 200, "SdkHttpMetadata": {"HttpStatusCode": 200}})
}

fn assert_invokes_poller(task: &Value, name: &str) {
    assert_eq!(task["Type"], "Task", "{name}");
    assert_eq!(task["Resource"], "arn:aws:states:::lambda:invoke", "{name}");
    assert_eq!(task["Parameters"]["FunctionName"], "${PollerFunctionArn}", "{name}: via DefinitionSubstitutions");
    let retried: Vec<&str> =
        task["Retry"][0]["ErrorEquals"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for e in ["Lambda.ServiceException", "Lambda.TooManyRequestsException", "States.Timeout", "STORE_UNAVAILABLE"] {
        assert!(retried.contains(&e), "{name} retries {e}");
    }
    assert!(
        !retried.contains(&"INVALID_TASK") && !retried.contains(&"States.ALL"),
        "{name}: a contract bug is not retried"
    );
}

#[test]
fn the_state_machine_builds_exactly_the_task_inputs_the_handler_takes() {
    let asl = load("infra/statemachines/ics-poll.asl.json");
    let states = &asl["States"];
    let no_context = json!({});

    // ListDue, on the schedule's event.
    let start = load("events/ics-poller/scheduled-event.json");
    assert_eq!(asl["StartAt"], "ListDue");
    let list_due = &states["ListDue"];
    assert_invokes_poller(list_due, "ListDue");
    let payload = render(&list_due["Parameters"], &start, &no_context)["Payload"].clone();
    assert_eq!(
        payload,
        load("events/ics-poller/list-due.json"),
        "events/ics-poller/list-due.json is what ListDue sends"
    );
    let task: Task = round_trip(&payload, "ListDue payload");
    assert!(matches!(task, Task::ListDue(ref t) if t.limit == Some(100)), "{task:?}");

    // Its answer, through ResultSelector and ResultPath.
    let answer = load("events/ics-poller/list-due.output.json");
    let listed: ListDueOutput = round_trip(&answer, "list_due answer");
    assert_eq!(listed.count, listed.sources.len());
    let selected = render(&list_due["ResultSelector"], &invoke_result(&answer), &no_context);
    let state = place(&start, list_due["ResultPath"].as_str().unwrap(), selected);
    assert!(state.to_string().len() < 2048, "the state stays small");

    // AnyDue → PollEach.
    let choice = &states[list_due["Next"].as_str().unwrap()];
    assert_eq!(choice["Type"], "Choice");
    let rule = &choice["Choices"][0];
    assert!(path(rule["Variable"].as_str().unwrap(), &state, &no_context).as_u64().unwrap() > 0);
    let map = &states[rule["Next"].as_str().unwrap()];
    assert_eq!(map["Type"], "Map");
    assert_eq!(map["MaxConcurrency"], 10);
    let items = path(map["ItemsPath"].as_str().unwrap(), &state, &no_context).as_array().unwrap().clone();
    assert_eq!(items.len(), 2);

    // Each item, through ItemSelector, into Poll's Parameters.
    let processor = &map["ItemProcessor"];
    let poll = &processor["States"][processor["StartAt"].as_str().unwrap()];
    assert_invokes_poller(poll, "Poll");
    for (i, item) in items.iter().enumerate() {
        let context = json!({"Map": {"Item": {"Index": i, "Value": item}}});
        let item_input = render(&map["ItemSelector"], &state, &context);
        let payload = render(&poll["Parameters"], &item_input, &no_context)["Payload"].clone();
        let task: Task = round_trip(&payload, "Poll payload");
        match task {
            Task::Poll(p) => assert_eq!(p.source_id, listed.sources[i].source_id),
            other => panic!("{other:?}"),
        }
        if i == 0 {
            assert_eq!(payload, load("events/ics-poller/poll.json"), "events/ics-poller/poll.json is what Poll sends");
        }
    }

    // Every poll answer the function gives passes Poll's ResultSelector.
    for (file, status) in [
        ("ok", PollStatus::Ok),
        ("unchanged", PollStatus::Unchanged),
        ("error", PollStatus::Error),
        ("skipped", PollStatus::Skipped),
    ] {
        let answer = load(&format!("events/ics-poller/poll.output.{file}.json"));
        let outcome: PollOutcome = round_trip(&answer, file);
        assert_eq!(outcome.status, status);
        assert_eq!(outcome.error.is_some(), status == PollStatus::Error, "{file}: error only with status error");
        let selected = render(&poll["ResultSelector"], &invoke_result(&answer), &no_context);
        assert_eq!(selected, json!({"sourceId": outcome.source_id, "status": answer["status"]}));
    }

    // A crash (after Retry) is caught for every error and becomes a result
    // of the same shape, so the Map never fails because of one feed.
    let catch = &poll["Catch"][0];
    assert_eq!(catch["ErrorEquals"], json!(["States.ALL"]));
    let crashed_state = &processor["States"][catch["Next"].as_str().unwrap()];
    assert_eq!(crashed_state["Type"], "Pass");
    let item_input = json!({"sourceId": listed.sources[0].source_id});
    let failure = json!({"Error": "STORE_UNAVAILABLE", "Cause": "{\"errorMessage\":\"store: database error\"}"});
    let caught = place(&item_input, catch["ResultPath"].as_str().unwrap(), failure);
    let crashed = render(&crashed_state["Parameters"], &caught, &no_context);
    assert_eq!(
        crashed,
        json!({"sourceId": listed.sources[0].source_id, "status": "crashed", "error": "STORE_UNAVAILABLE"})
    );
}

#[test]
fn no_url_ever_enters_the_state_machine() {
    // Every key the definition reads or writes, and every sample payload:
    // ids only.
    let texts = [
        std::fs::read_to_string(root().join("infra/statemachines/ics-poll.asl.json")).unwrap(),
        load("events/ics-poller/list-due.output.json").to_string(),
        load("events/ics-poller/poll.json").to_string(),
    ];
    for t in texts {
        let lower = t.to_ascii_lowercase();
        assert!(!lower.contains("\"url") && !lower.contains("http://") && !lower.contains("https://"), "{t}");
    }
    // The poll task refuses a URL outright.
    let with_url = json!({"action": "poll", "sourceId": "src_1", "url": "https://example.com/x.ics"});
    assert!(serde_json::from_value::<Task>(with_url).is_err());
}
