//! Starting the ICS poll state machine (infra/statemachines/ics-poll.asl.json)
//! now rather than at its next scheduled run.
//!
//! The machine takes no per-source input: its first task claims every due
//! source (`next_poll_at <= now`) and polls each. `resyncIcs` makes the
//! source due (`cal_store::sources::resync_ics`), so one execution started
//! after that commit polls it. The input below is only a note for whoever
//! reads the execution history.

use std::future::Future;

use aws_sdk_sfn::Client;
use serde_json::json;

use crate::error::AwsError;

/// Starts a poll of due sources.
pub trait PollStarter: Sync {
    /// Starts an execution on behalf of `source_id` (made due just before);
    /// returns the execution's ARN.
    fn start_poll(&self, source_id: &str) -> impl Future<Output = Result<String, AwsError>> + Send;
}

/// [`PollStarter`] on Step Functions `StartExecution`.
#[derive(Clone, Debug)]
pub struct StepFunctionsPollStarter {
    client: Client,
    state_machine_arn: String,
}

impl StepFunctionsPollStarter {
    /// Starts executions of `state_machine_arn`.
    pub fn new(client: Client, state_machine_arn: impl Into<String>) -> Self {
        StepFunctionsPollStarter { client, state_machine_arn: state_machine_arn.into() }
    }
}

impl PollStarter for StepFunctionsPollStarter {
    async fn start_poll(&self, source_id: &str) -> Result<String, AwsError> {
        // No execution name: each resync gets a fresh one. Two resyncs close
        // together start two executions; the second finds nothing due (the
        // first claimed the source) and ends in NothingDue.
        let input = json!({ "reason": "resyncIcs", "sourceId": source_id });
        let out = self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .input(input.to_string())
            .send()
            .await
            .map_err(|e| AwsError::call("StartExecution", &self.state_machine_arn, e))?;
        Ok(out.execution_arn().to_owned())
    }
}
