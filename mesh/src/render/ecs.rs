//! `--format ecs`: one service's Amazon ECS task definition (JSON, the `RegisterTaskDefinition` request
//! shape: `aws ecs register-task-definition --cli-input-json file://NAME.ecs.json`), Fargate, `awsvpc`
//! (containers of a task share `localhost`, which the loopback-only agent and app need).
//!
//! The containers are [`super::workload`]'s: `entragate-render` (not essential, must exit 0), then the
//! agent (callers) and Envoy once it has (`dependsOn ... SUCCESS`), then the app once the agent is
//! `HEALTHY` and Envoy started. All share the task volume `entragate-run` at `/run/entragate`; the
//! entragate containers run as uid 10001 on a read-only root file system.
//! `executionRoleArn` lets ECS pull private ECR images (and write logs); `taskRoleArn` is the caller's
//! identity for `secretsmanager:GetSecretValue` (a callee needs no AWS permission, so none is required).
//!
//! The render container reads the policy at [`POLICY_PATH`]: build the bootstrap image for the task
//! `FROM entragate-bootstrap` with the reviewed `mesh.yaml` copied there (docs/deploy.md).

use super::workload::{
    self, Workload, WorkloadOptions, AGENT_CONTAINER, APP_CONTAINER, ENVOY_CONTAINER,
    RENDER_CONTAINER, RUNTIME_UID, RUN_DIR, RUN_VOLUME,
};
use crate::policy::Service;
use serde_json::{json, Value};

/// Where the task's bootstrap image holds the policy.
pub const POLICY_PATH: &str = "/etc/entragate/mesh.yaml";

#[derive(Clone, Debug)]
pub struct EcsOptions {
    pub workload: WorkloadOptions,
    /// Role ECS uses to pull the images and write logs.
    pub execution_role_arn: String,
    /// The task's own role; required for a caller (the agent reads its secret with it).
    pub task_role_arn: Option<String>,
}

pub fn render(service: &Service, options: &EcsOptions) -> Result<String, String> {
    let plan = workload::plan(service, &options.workload, POLICY_PATH)?;
    check_role("--execution-role-arn", &options.execution_role_arn)?;
    if let Some(arn) = &options.task_role_arn {
        check_role("--task-role-arn", arn)?;
    } else if plan.agent.is_some() {
        return Err(format!(
            "`{}` calls other services: its task needs --task-role-arn (a role allowed \
             secretsmanager:GetSecretValue on its secret)",
            service.name
        ));
    }
    let mut task = json!({
        "family": service.name,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "512",
        "memory": "1024",
        "executionRoleArn": options.execution_role_arn,
        "volumes": [{ "name": RUN_VOLUME }],
        "containerDefinitions": containers(&plan, &options.workload),
    });
    if let (Some(arn), Value::Object(map)) = (&options.task_role_arn, &mut task) {
        map.insert("taskRoleArn".into(), json!(arn));
    }
    let mut out = serde_json::to_string_pretty(&task)
        .map_err(|e| format!("cannot write the task definition: {e}"))?;
    out.push('\n');
    Ok(out)
}

fn check_role(flag: &str, arn: &str) -> Result<(), String> {
    // arn:PARTITION:iam::ACCOUNT:role/NAME (partitions aws, aws-us-gov, aws-cn).
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5].starts_with("role/")
        && parts[5].len() > "role/".len();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{flag} {arn:?} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)"
        ))
    }
}

fn mount(read_only: bool) -> Value {
    json!([{ "sourceVolume": RUN_VOLUME, "containerPath": RUN_DIR, "readOnly": read_only }])
}

fn depends(container: &str, condition: &str) -> Value {
    json!({ "containerName": container, "condition": condition })
}

fn containers(plan: &Workload, options: &WorkloadOptions) -> Vec<Value> {
    let user = RUNTIME_UID.to_string();
    let mut list = vec![json!({
        "name": RENDER_CONTAINER,
        "image": options.bootstrap_image,
        "essential": false,
        "user": user,
        "readonlyRootFilesystem": true,
        "command": plan.render_args,
        "mountPoints": mount(false),
    })];
    let mut app_depends = vec![depends(ENVOY_CONTAINER, "START")];
    if let Some(agent) = &plan.agent {
        let mut health = vec!["CMD".to_string()];
        health.extend(agent.health_command.iter().cloned());
        list.push(json!({
            "name": AGENT_CONTAINER,
            "image": options.bootstrap_image,
            "essential": true,
            "user": user,
        "readonlyRootFilesystem": true,
            "command": agent.args,
            "mountPoints": mount(true),
            "dependsOn": [depends(RENDER_CONTAINER, "SUCCESS")],
            "healthCheck": {
                "command": health,
                "interval": 10,
                "timeout": 5,
                "retries": 3,
                "startPeriod": 30
            },
        }));
        app_depends.push(depends(AGENT_CONTAINER, "HEALTHY"));
    }
    let mut envoy = json!({
        "name": ENVOY_CONTAINER,
        "image": options.envoy_image,
        "essential": true,
        "user": user,
        "readonlyRootFilesystem": true,
        "command": std::iter::once("envoy".to_string()).chain(plan.envoy_args.iter().cloned()).collect::<Vec<_>>(),
        "mountPoints": mount(true),
        "dependsOn": [depends(RENDER_CONTAINER, "SUCCESS")],
    });
    if let (Some(port), Value::Object(map)) = (plan.inbound_port, &mut envoy) {
        map.insert(
            "portMappings".into(),
            json!([{ "name": "inbound", "containerPort": port, "protocol": "tcp" }]),
        );
    }
    list.push(envoy);
    list.push(json!({
        "name": APP_CONTAINER,
        "image": options.app_image,
        "essential": true,
        "dependsOn": app_depends,
    }));
    list
}
