//! The shipped RabbitMQ definitions (`deploy/rabbitmq/definitions.json`)
//! imported into a fresh virtual host: the five services run the enrollment
//! story with one user each, and a user that reaches beyond its service is
//! refused.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use lapin::options::{BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use partnerhub_proto::profile::v1::ProgramKind;
use partnerhub_testkit::{DeploymentBus, Suite, SuiteOptions, clients, unique};

use crate::common::mail_about;

const SERVICES: [&str; 5] = [
    "identity",
    "profile",
    "verification",
    "notification",
    "merge",
];

fn rabbitmqctl(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("rabbitmqctl").args(args).output()?;
    anyhow::ensure!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Imports the shipped definitions into `vhost` and gives every user
/// `password`.
fn import(vhost: &str, password: &str) -> anyhow::Result<Vec<String>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/rabbitmq/definitions.json"
    );
    let mut definitions: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    for (_, list) in definitions.as_object_mut().into_iter().flatten() {
        for item in list.as_array_mut().into_iter().flatten() {
            if item.get("vhost").is_some() {
                item["vhost"] = vhost.into();
            }
        }
    }
    definitions["vhosts"] = serde_json::json!([{ "name": vhost }]);
    let users: Vec<String> = definitions["users"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u["name"].as_str().map(str::to_owned))
        .collect();
    let file = std::env::temp_dir().join(format!("{vhost}.json"));
    std::fs::write(&file, serde_json::to_vec(&definitions)?)?;
    rabbitmqctl(&["import_definitions", &file.to_string_lossy()])?;
    std::fs::remove_file(&file).ok();
    for user in &users {
        rabbitmqctl(&["change_password", user, password])?;
    }
    // The import is asynchronous: wait for the last permission.
    for _ in 0..50 {
        if rabbitmqctl(&["list_permissions", "-p", vhost])?.contains("partnerhub-merge") {
            return Ok(users);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    anyhow::bail!("the definitions never appeared in {vhost}")
}

fn url(user: &str, password: &str, vhost: &str) -> String {
    format!("amqp://{user}:{password}@127.0.0.1:5672/{vhost}")
}

#[tokio::test]
async fn the_story_runs_with_one_user_per_service_and_no_user_reaches_beyond_its_own()
-> anyhow::Result<()> {
    let vhost = format!("ph-test-{}", unique());
    let password = unique();
    import(&vhost, &password)?;
    let urls: HashMap<&'static str, String> = SERVICES
        .iter()
        .map(|s| (*s, url(&format!("partnerhub-{s}"), &password, &vhost)))
        .collect();
    let outcome = async {
        let suite = Suite::start_with(SuiteOptions {
            deployment_bus: Some(DeploymentBus {
                namespace: "partnerhub".into(),
                urls: urls.clone(),
                ..DeploymentBus::default()
            }),
            ..SuiteOptions::default()
        })
        .await?;
        suite.wait_serving().await?;

        // The story: identity's events reach notification; profile's reach
        // verification, whose mail command reaches notification.
        let contoso = clients::enrolled(&suite, "Contoso", ProgramKind::Partner).await?;
        mail_about(&suite, &contoso.email, "Welcome").await?;
        mail_about(&suite, &contoso.email, "Confirm the primary contact email").await?;

        // Identity may not read notification's mail commands.
        let identity =
            Connection::connect(&urls["identity"], ConnectionProperties::default()).await?;
        let channel = identity.create_channel().await?;
        let refused = channel
            .basic_consume(
                "partnerhub.notification.commands".into(),
                "intruder".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await;
        assert!(
            format!("{:?}", refused.err()).contains("ACCESS_REFUSED"),
            "identity read notification's commands"
        );

        // Profile may not publish identity's events.
        let profile =
            Connection::connect(&urls["profile"], ConnectionProperties::default()).await?;
        let channel = profile.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let forged = async {
            channel
                .basic_publish(
                    "partnerhub.events".into(),
                    "partnerhub.identity.v1.UserCreated".into(),
                    BasicPublishOptions::default(),
                    b"forged",
                    BasicProperties::default(),
                )
                .await?
                .await
        }
        .await;
        assert!(
            format!("{forged:?}").contains("ACCESS_REFUSED"),
            "profile published identity's event: {forged:?}"
        );
        // The billing system may publish its own events only.
        let billing = Connection::connect(
            &url("partnerhub-billing", &password, &vhost),
            ConnectionProperties::default(),
        )
        .await?;
        let channel = billing.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let own = channel
            .basic_publish(
                "partnerhub.events".into(),
                "partnerhub.billing.v1.PaymentLate".into(),
                BasicPublishOptions::default(),
                b"",
                BasicProperties::default(),
            )
            .await?
            .await?;
        assert!(own.is_ack());
        for connection in [identity, profile, billing] {
            let _ = connection.close(200, "done".into()).await;
        }
        suite.stop().await
    }
    .await;
    rabbitmqctl(&["delete_vhost", &vhost])?;
    outcome
}
