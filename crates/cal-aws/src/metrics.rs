//! Custom CloudWatch metrics in the embedded metric format (EMF): one JSON
//! line on stdout per data point, which Lambda's log pipeline turns into a
//! metric without an API call (nothing to wait for, nothing to fail).

use std::io::Write;

use serde_json::json;

/// The namespace of every custom metric of this backend.
pub const NAMESPACE: &str = "Cal";

/// Writes one data point of the count metric `name` for `function`
/// (namespace [`NAMESPACE`], dimension `Function`) as an EMF line on stdout.
/// A zero is written too, so the metric exists before anything goes wrong.
pub fn emit_metric(function: &str, name: &str, value: u64) {
    let line = metric_line(function, name, value, crate::event::system_now().1);
    // One write per line, so it never interleaves with a log line.
    let _ = std::io::stdout().lock().write_all(format!("{line}\n").as_bytes());
}

/// The EMF line [`emit_metric`] writes, at `timestamp_ms` (Unix epoch).
pub fn metric_line(function: &str, name: &str, value: u64, timestamp_ms: i64) -> String {
    let mut line = json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function"]],
                "Metrics": [{ "Name": name, "Unit": "Count" }],
            }],
        },
        "Function": function,
    });
    line[name] = json!(value);
    line.to_string()
}

/// The running function's name (`AWS_LAMBDA_FUNCTION_NAME`, which the
/// alarms' dimensions name), or `fallback` outside Lambda.
pub fn function_name(fallback: &str) -> String {
    std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok().filter(|n| !n.is_empty()).unwrap_or_else(|| fallback.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metric_line_is_emf() {
        let line: serde_json::Value = serde_json::from_str(&metric_line("cal-OutboxRelay", "OutboxParked", 2, 1_900_000_000_000)).unwrap();
        assert_eq!(
            line,
            json!({
                "_aws": {
                    "Timestamp": 1_900_000_000_000_i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "Cal",
                        "Dimensions": [["Function"]],
                        "Metrics": [{ "Name": "OutboxParked", "Unit": "Count" }],
                    }],
                },
                "Function": "cal-OutboxRelay",
                "OutboxParked": 2,
            })
        );
    }
}
