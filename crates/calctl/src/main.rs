//! `calctl`: the operator and developer command line (the CALCTL.md contract: its stable forms).
//!
//! It calls the same core and store functions as the Lambdas; it never
//! re-implements a rule. Exit codes: see [`EXIT_CODES`].

#![forbid(unsafe_code)]

mod booking;
mod db;
mod ics;
mod render;

use std::io::Read;
use std::process::ExitCode;

use cal_core::ErrorType;
use cal_core::error::ErrorChain;
use cal_core::slots_document::{self, DocumentAnswer, InputError};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

/// The exit codes and the error output, as `calctl --help` shows them.
const EXIT_CODES: &str = "\
Exit codes:
  0  ok (an idempotent repeat, e.g. cancelling a cancelled event, is ok)
  1  unexpected failure (INTERNAL)
  2  bad input: VALIDATION, NOT_FOUND, IDEMPOTENCY_MISMATCH, or a bad command line
  3  rejected calendar file
  4  CONFLICT: the time was taken (a lost race); the error lists nearby alternatives
  5  HOLD_EXPIRED or HOLD_RELEASED: the hold can no longer be booked

Errors: one line on stderr, `calctl: TYPE: message`. With --json, stdout also
gets the error as one JSON object: {\"errorType\":\"CONFLICT\",\"message\":\"…\",
\"alternatives\":[{\"start\":\"…Z\",\"end\":\"…Z\",\"start_local\":\"…\"}]}
(alternatives only for CONFLICT).";

#[derive(Parser, Debug)]
#[command(name = "calctl", version, about = "Operate and debug the calendar suite", after_help = EXIT_CODES)]
struct Cli {
    /// Print JSON instead of a table or picture.
    #[arg(long, global = true)]
    json: bool,
    /// Postgres URL (else DATABASE_URL).
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Apply the migrations in migrations/ (idempotent).
    Migrate,
    /// Replace the demo provider's data with a fresh demo week.
    SeedDemo,
    /// Bookable slots: offline from a JSON document (--input), or from the database.
    Slots(SlotsArgs),
    /// Why a span is or is not bookable (SEMANTICS.md §10), offline from a JSON document; prints JSON.
    Explain(ExplainArgs),
    /// Holds (SEMANTICS.md §5): create, confirm (book) and release.
    #[command(subcommand)]
    Hold(HoldCommand),
    /// Booked events: reschedule onto a reschedule hold, cancel, the e-mail attachment.
    #[command(subcommand)]
    Event(EventCommand),
    /// iCalendar files, read the way the ICS poller reads them.
    #[command(subcommand)]
    Ics(IcsCommand),
    /// Two-way sync connections (Google, Microsoft 365): list, inspect, resync.
    #[command(subcommand)]
    Sync(SyncCommand),
}

#[derive(Subcommand, Debug)]
enum SyncCommand {
    /// A provider's connections with their status, calendars and last errors.
    List(SyncListArgs),
    /// One connection with its calendars.
    Show(SyncConnectionArgs),
    /// Make a full read of the connection's blocking calendars due now (the renewer queues it).
    Resync(SyncConnectionArgs),
}

#[derive(Args, Debug)]
struct SyncListArgs {
    /// The provider.
    #[arg(long)]
    user: String,
}

#[derive(Args, Debug)]
struct SyncConnectionArgs {
    /// The connection (`con_…`).
    connection_id: String,
}

#[derive(Subcommand, Debug)]
enum IcsCommand {
    /// Print every busy occurrence overlapping [--from, --to) as JSON lines, sorted by start.
    Expand(IcsExpandArgs),
}

#[derive(Args, Debug)]
struct IcsExpandArgs {
    /// The iCalendar file.
    file: String,
    /// Start of the window (RFC 3339).
    #[arg(long)]
    from: String,
    /// End of the window (RFC 3339).
    #[arg(long)]
    to: String,
    /// The provider's zone for floating and all-day times (default UTC).
    #[arg(long)]
    tz: Option<String>,
}

#[derive(Subcommand, Debug)]
enum HoldCommand {
    /// Create a hold (idempotent per --user and --idempotency-key); prints the hold.
    Create(HoldCreateArgs),
    /// Book a hold: it becomes a confirmed event (a reschedule hold moves its event); idempotent.
    Confirm(HoldIdArgs),
    /// Release an active hold; releasing a released hold changes nothing.
    Release(HoldIdArgs),
}

#[derive(Subcommand, Debug)]
enum EventCommand {
    /// Move the event to the time of its reschedule hold (same UID, sequence + 1).
    Reschedule(EventRescheduleArgs),
    /// Cancel the event (sequence + 1); cancelling a cancelled event changes nothing.
    Cancel(EventIdArgs),
    /// Print the event's e-mail attachment (METHOD:REQUEST, or CANCEL once cancelled).
    Ics(EventIdArgs),
}

#[derive(Args, Debug)]
struct HoldCreateArgs {
    /// The provider.
    #[arg(long)]
    user: String,
    /// The provider's role, e.g. photographer.
    #[arg(long)]
    role: String,
    /// Start of the held time (RFC 3339).
    #[arg(long)]
    start: String,
    /// End of the held time (RFC 3339).
    #[arg(long)]
    end: String,
    #[arg(long, value_enum)]
    kind: KindArg,
    /// The event a reschedule hold moves (reschedule only).
    #[arg(long = "event", value_name = "EVENT_ID")]
    event: Option<String>,
    /// Instant Book (default) or Request-to-Book.
    #[arg(long, value_enum)]
    mode: Option<ModeArg>,
    /// Minutes until the hold expires (default 10 instant, 1440 request).
    #[arg(long)]
    ttl_min: Option<i64>,
    /// Step grid the start must lie on (default 30).
    #[arg(long)]
    step_min: Option<i64>,
    /// The customer the hold is for.
    #[arg(long)]
    customer: Option<String>,
    /// Retrying with the same key returns the same hold.
    #[arg(long)]
    idempotency_key: String,
    #[command(flatten)]
    clock: Clock,
}

#[derive(Args, Debug)]
struct HoldIdArgs {
    hold_id: String,
    #[command(flatten)]
    clock: Clock,
}

#[derive(Args, Debug)]
struct EventRescheduleArgs {
    event_id: String,
    /// The reschedule hold (created with --kind reschedule --event EVENT_ID).
    #[arg(long = "hold", value_name = "HOLD_ID")]
    hold: String,
    #[command(flatten)]
    clock: Clock,
}

#[derive(Args, Debug)]
struct EventIdArgs {
    event_id: String,
    #[command(flatten)]
    clock: Clock,
}

/// `--now`, as `slots` has it.
#[derive(Args, Debug)]
struct Clock {
    /// Act as if it were this instant (RFC 3339) instead of the clock; for debugging.
    #[arg(long)]
    now: Option<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum KindArg {
    Checkout,
    Reschedule,
    Admin,
}

impl From<KindArg> for cal_core::HoldKind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::Checkout => cal_core::HoldKind::Checkout,
            KindArg::Reschedule => cal_core::HoldKind::Reschedule,
            KindArg::Admin => cal_core::HoldKind::Admin,
        }
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ModeArg {
    Instant,
    Request,
}

impl From<ModeArg> for cal_core::HoldMode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Instant => cal_core::HoldMode::Instant,
            ModeArg::Request => cal_core::HoldMode::Request,
        }
    }
}

#[derive(Args, Debug)]
struct SlotsArgs {
    /// Evaluate one JSON document (a file, or - for stdin) without a database; prints JSON.
    #[arg(long, value_name = "FILE|-", conflicts_with_all = ["user", "role", "from", "to"])]
    input: Option<String>,
    #[arg(long, required_unless_present = "input")]
    user: Option<String>,
    #[arg(long, required_unless_present = "input")]
    role: Option<String>,
    /// Start of the range (RFC 3339).
    #[arg(long, required_unless_present = "input")]
    from: Option<String>,
    /// End of the range (RFC 3339).
    #[arg(long, required_unless_present = "input")]
    to: Option<String>,
    #[arg(long)]
    duration_min: Option<i64>,
    #[arg(long)]
    step_min: Option<i64>,
    /// Evaluate as if it were this instant (RFC 3339) instead of the clock; for debugging.
    #[arg(long)]
    now: Option<String>,
}

#[derive(Args, Debug)]
struct ExplainArgs {
    /// The `slots --input` document (a file, or - for stdin); its query's user_id and role_code.
    #[arg(long, value_name = "FILE|-")]
    input: String,
    /// Start of the span (RFC 3339).
    #[arg(long)]
    start: String,
    /// End of the span (RFC 3339); the span lasts whole minutes.
    #[arg(long)]
    end: String,
    /// Step grid the start must lie on (default 30).
    #[arg(long)]
    step_min: Option<i64>,
}

/// A failure with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
enum CliError {
    /// Bad input: names the field or line. Exit 2.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A command line that cannot be run as given. Exit 2.
    #[error("{0}")]
    Usage(String),
    /// A calendar file that is not iCalendar or is over a limit. Exit 3.
    #[error(transparent)]
    Rejected(cal_core::ics_in::Rejection),
    /// The store refused or failed; the exit code follows its stable type.
    #[error(transparent)]
    Store(#[from] cal_store::StoreError),
    /// Anything unexpected. Exit 1.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl CliError {
    /// The stable type of any failure.
    fn error_type(&self) -> ErrorType {
        match self {
            CliError::Input(_) | CliError::Usage(_) => ErrorType::Validation,
            CliError::Rejected(_) => ErrorType::Rejected,
            CliError::Store(err) => err.error_type(),
            CliError::Other(_) => ErrorType::Internal,
        }
    }

    /// The exit code, by the stable type ([`EXIT_CODES`]).
    fn exit_code(&self) -> u8 {
        match self.error_type() {
            ErrorType::Validation | ErrorType::NotFound | ErrorType::IdempotencyMismatch => 2,
            ErrorType::Rejected => 3,
            ErrorType::Conflict => 4,
            ErrorType::HoldExpired | ErrorType::HoldReleased => 5,
            ErrorType::Forbidden | ErrorType::IdempotencyInProgress | ErrorType::RateLimited | ErrorType::Internal => 1,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json_out = cli.json;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line on stderr that says what was wrong and where; with
            // --json, the same as a document on stdout for scripts.
            eprintln!("calctl: {}", one_line(&e));
            if json_out {
                println!("{}", json_error(&e));
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// The alternatives a `CONFLICT` carries, if this is one.
fn conflict_alternatives(e: &CliError) -> Option<&[cal_core::Slot]> {
    match e {
        CliError::Store(cal_store::StoreError::Booking(b)) => b.alternatives(),
        _ => None,
    }
}

/// `{"errorType", "message"[, "alternatives"]}`: the client-safe message only
/// (an INTERNAL failure's causes stay on the stderr line).
fn json_error(e: &CliError) -> serde_json::Value {
    let message = match e {
        CliError::Other(_) => "unexpected failure".to_owned(),
        other => other.to_string().replace('\n', " "),
    };
    let mut doc = json!({"errorType": e.error_type(), "message": message});
    if let Some(alternatives) = conflict_alternatives(e) {
        doc["alternatives"] = json!(alternatives);
    }
    doc
}

fn one_line(e: &CliError) -> String {
    match e {
        CliError::Other(err) => ErrorChain(err.as_ref()).to_string().replace('\n', " "),
        // The stable type first, then the client-safe message; internals of
        // an INTERNAL failure (the database's own words) follow its cause chain.
        CliError::Store(err) => {
            let mut line = match err.error_type() {
                ErrorType::Internal => format!("{}: {}", ErrorType::Internal, ErrorChain(err)),
                t => format!("{t}: {err}"),
            };
            if let Some(alternatives) = conflict_alternatives(e) {
                line.push_str("; alternatives: ");
                if alternatives.is_empty() {
                    line.push_str("none nearby");
                } else {
                    let list: Vec<String> = alternatives.iter().map(|s| format!("{}–{}", s.start, s.end)).collect();
                    line.push_str(&list.join(", "));
                }
            }
            line.replace('\n', " ")
        }
        other => other.to_string().replace('\n', " "),
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    let url = cli.database_url.as_deref();
    let json_out = cli.json;
    if let Command::Slots(SlotsArgs { input: Some(path), .. }) = &cli.command {
        return slots_offline(path);
    }
    if let Command::Explain(args) = &cli.command {
        return explain_offline(args);
    }
    if let Command::Ics(IcsCommand::Expand(a)) = &cli.command {
        return ics::expand(&a.file, &a.from, &a.to, a.tz.as_deref());
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(anyhow::Error::from)?;
    runtime.block_on(async move {
        match cli.command {
            Command::Migrate => db::migrate(url, json_out).await,
            Command::SeedDemo => db::seed_demo(url, now(None)?, json_out).await,
            Command::Slots(args) => {
                let now = now(args.now.as_deref())?;
                db::slots(url, &args, now, json_out).await
            }
            Command::Hold(HoldCommand::Create(args)) => {
                let now = now(args.clock.now.as_deref())?;
                booking::create_hold(url, &args, now, json_out).await
            }
            Command::Hold(HoldCommand::Confirm(args)) => {
                booking::confirm_hold(url, &args.hold_id, now(args.clock.now.as_deref())?, json_out).await
            }
            Command::Hold(HoldCommand::Release(args)) => {
                booking::release_hold(url, &args.hold_id, now(args.clock.now.as_deref())?, json_out).await
            }
            Command::Event(EventCommand::Reschedule(args)) => {
                let now = now(args.clock.now.as_deref())?;
                booking::reschedule_event(url, &args.event_id, &args.hold, now, json_out).await
            }
            Command::Event(EventCommand::Cancel(args)) => {
                booking::cancel_event(url, &args.event_id, now(args.clock.now.as_deref())?, json_out).await
            }
            Command::Event(EventCommand::Ics(args)) => {
                booking::event_ics(url, &args.event_id, now(args.clock.now.as_deref())?, json_out).await
            }
            Command::Sync(SyncCommand::List(args)) => db::sync_list(url, &args.user, json_out).await,
            Command::Sync(SyncCommand::Show(args)) => db::sync_show(url, &args.connection_id, json_out).await,
            Command::Sync(SyncCommand::Resync(args)) => db::sync_resync(url, &args.connection_id, json_out).await,
            Command::Ics(_) | Command::Explain(_) => unreachable!("handled before the runtime starts"),
        }
    })
}

/// The clock, or `--now` when given.
fn now(flag: Option<&str>) -> Result<cal_core::Instant, CliError> {
    match flag {
        Some(text) => cal_core::Instant::parse(text).map_err(|e| CliError::Usage(format!("--now: {e}"))),
        None => Ok(cal_core::Instant::from_unix(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(anyhow::Error::from)?
            .as_secs() as i64)),
    }
}

/// `calctl slots --input FILE|-`: always JSON (CALCTL.md).
fn slots_offline(path: &str) -> Result<(), CliError> {
    let text = read_input(path)?;
    let doc = slots_document::slots_document(&text)?;
    let answer = slots_document::answer(&doc)?;
    let json = match &answer {
        DocumentAnswer::One(a) => serde_json::to_string_pretty(a),
        DocumentAnswer::Many(a) => serde_json::to_string_pretty(a),
        DocumentAnswer::Parties(a) => serde_json::to_string_pretty(a),
    }
    .map_err(anyhow::Error::from)?;
    println!("{json}");
    Ok(())
}

/// `calctl explain --input FILE|- --start ISO --end ISO [--step-min N]`:
/// SEMANTICS.md §10 as one line of JSON (CALCTL.md).
fn explain_offline(args: &ExplainArgs) -> Result<(), CliError> {
    let instant = |flag: &str, text: &str| cal_core::Instant::parse(text).map_err(|e| InputError::new(flag, e));
    let (start, end) = (instant("--start", &args.start)?, instant("--end", &args.end)?);
    let span = cal_core::explain::span(start, end).map_err(|e| InputError::new("--end", e))?;
    let step = match args.step_min {
        Some(s) => cal_core::StepMinutes::new(s).map_err(|e| InputError::new("--step-min", e))?,
        None => cal_core::StepMinutes::default(),
    };
    let doc = slots_document::explain_document(&read_input(&args.input)?)?;
    let answer = cal_core::explain::explain(&doc.user_id, &doc.role_code, span, step, &doc.calendar, doc.now);
    println!("{}", serde_json::to_string(&answer).map_err(anyhow::Error::from)?);
    Ok(())
}

fn read_input(path: &str) -> Result<String, CliError> {
    let mut buf = Vec::new();
    let read = if path == "-" {
        std::io::stdin().read_to_end(&mut buf).map(|_| ())
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut buf)).map(|_| ())
    };
    read.map_err(|e| InputError::new("input", slots_document::FieldProblem::Unreadable(format!("{path}: {e}"))))?;
    String::from_utf8(buf).map_err(|e| InputError::new("input", slots_document::FieldProblem::Unreadable(format!("not UTF-8: {e}"))).into())
}
