//! `calctl ics expand` (CALCTL.md): the poller's parser on one file, and
//! `calctl event ics`'s attachment comes from `EventRecord::invite`.

use std::io::Write;

use cal_core::ics_in::{ImportLimits, import};
use cal_core::{Instant, Zone};

use crate::CliError;

/// Prints every busy occurrence of `path` overlapping `[from, to)` as one
/// JSON object per line, sorted by start; warnings go to stderr with their
/// line. A rejected file is [`CliError::Rejected`] (exit 3).
pub fn expand(path: &str, from: &str, to: &str, tz: Option<&str>) -> Result<(), CliError> {
    let instant = |flag: &str, v: &str| Instant::parse(v).map_err(|e| CliError::Usage(format!("--{flag}: {e}")));
    let (from, to) = (instant("from", from)?, instant("to", to)?);
    if to < from {
        return Err(CliError::Usage(format!("--to: {to} is before --from {from}")));
    }
    let zone = match tz {
        Some(name) => Zone::parse(name).map_err(|e| CliError::Usage(format!("--tz: {e}")))?,
        None => Zone::UTC,
    };
    let body = std::fs::read(path).map_err(|e| CliError::Usage(format!("{path}: {e}")))?;
    let imported = import(&body, zone, from, to, ImportLimits::default()).map_err(CliError::Rejected)?;
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    for w in &imported.warnings {
        let _ = writeln!(err, "calctl: warning: line {}: {}", w.line, w.message);
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // A struct keeps CALCTL.md's key order: start, end, uid, summary.
    #[derive(serde::Serialize)]
    struct Line<'a> {
        start: Instant,
        end: Instant,
        uid: &'a str,
        summary: &'a str,
    }
    for b in &imported.busy {
        let line = Line { start: b.start, end: b.end, uid: &b.uid, summary: &b.summary };
        writeln!(out, "{}", serde_json::to_string(&line).map_err(anyhow::Error::from)?).map_err(anyhow::Error::from)?;
    }
    Ok(())
}
