//! The `partnerhub` binary itself: `serve all` comes up SERVING on all five
//! ports and exits 0 on SIGTERM.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use partnerhub_testkit::{AMQP_URL, Suite, bus_config, database_url, delete_exchanges, eventually};
use tonic_health::pb::health_check_response::ServingStatus;

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[tokio::test]
async fn serve_all_reports_serving_and_sigterm_exits_zero() -> anyhow::Result<()> {
    let names = [
        "identity",
        "profile",
        "verification",
        "notification",
        "merge",
    ];
    let mut command = Command::new(env!("CARGO_BIN_EXE_partnerhub"));
    command
        .args(["serve", "all"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut ports = Vec::new();
    for name in names {
        let port = free_port()?;
        let upper = name.to_uppercase();
        let url = database_url(name);
        command.env(
            format!("PARTNERHUB_{upper}_LISTEN"),
            format!("127.0.0.1:{port}"),
        );
        command.env(format!("PARTNERHUB_{upper}_DATABASE_URL"), url);
        ports.push(port);
    }
    command.env(
        "PARTNERHUB_IDENTITY_URL",
        format!("http://127.0.0.1:{}", ports[0]),
    );
    let bus = bus_config(AMQP_URL);
    command.env("PARTNERHUB_AMQP_NAMESPACE", &bus.namespace);
    let mut child = command.spawn()?;

    for port in &ports {
        let addr = format!("127.0.0.1:{port}").parse()?;
        eventually(Duration::from_secs(60), || async move {
            matches!(Suite::health(addr).await, Ok(ServingStatus::Serving)).then_some(())
        })
        .await?;
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    assert!(status.success());
    let exit = eventually(Duration::from_secs(30), || {
        let done = child.try_wait().ok().flatten();
        async move { done }
    })
    .await?;
    delete_exchanges(bus);
    assert_eq!(exit.code(), Some(0), "partnerhub exited with {exit:?}");
    Ok(())
}
