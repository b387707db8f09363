//! The poll starter through the real SDK against moto (AWS_ENDPOINT_URL; see
//! cal_aws::testing).

use cal_aws::testing::{create_state_machine, moto};
use cal_aws::{PollStarter, StepFunctionsPollStarter};

#[tokio::test]
async fn start_poll_starts_one_execution_of_the_machine() {
    let sdk = moto().await;
    let machine = create_state_machine(&sdk).await;
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let starter = StepFunctionsPollStarter::new(sfn.clone(), &machine);

    let execution = starter.start_poll("src_1").await.unwrap();
    let listed = sfn.list_executions().state_machine_arn(&machine).send().await.unwrap();
    let arns: Vec<&str> = listed.executions().iter().map(|e| e.execution_arn()).collect();
    assert_eq!(arns, [execution.as_str()]);
    // The input only notes why: the machine lists due sources itself.
    let described = sfn.describe_execution().execution_arn(&execution).send().await.unwrap();
    let input: serde_json::Value = serde_json::from_str(described.input().unwrap()).unwrap();
    assert_eq!(input, serde_json::json!({ "reason": "resyncIcs", "sourceId": "src_1" }));

    // A second resync starts a second execution (no name clash).
    starter.start_poll("src_1").await.unwrap();
    assert_eq!(sfn.list_executions().state_machine_arn(&machine).send().await.unwrap().executions().len(), 2);
}

#[tokio::test]
async fn a_missing_machine_is_an_error_naming_the_call() {
    let sdk = moto().await;
    let arn = "arn:aws:states:us-east-1:123456789012:stateMachine:not-there";
    let starter = StepFunctionsPollStarter::new(aws_sdk_sfn::Client::new(&sdk), arn);
    let err = starter.start_poll("src_1").await.unwrap_err();
    assert!(err.to_string().starts_with(&format!("StartExecution on {arn} failed")), "{err}");
}
