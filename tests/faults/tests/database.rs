//! PostgreSQL crashes (stopped with `-m immediate`) under load and comes
//! back: the services report NOT_SERVING while it is down, SERVING again
//! without a restart, no acknowledged write is lost, and every event the
//! committed writes produced reaches every consumer exactly once.

use std::time::Duration;

use partnerhub_faults::deployment::SERVICES;
use partnerhub_faults::load::{self, WriteStream};
use partnerhub_faults::{Deployment, Size, counts, figure};
use tonic_health::pb::health_check_response::ServingStatus;

const TEST: &str = "database";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_crash_loses_no_acknowledged_write() -> anyhow::Result<()> {
    let size = Size::from_env();
    let writes = size.pick(600, 10_000);
    // The full run keeps the database down longer than a message's whole
    // retry budget: an unreachable database must not spend attempts.
    let down_for = Duration::from_secs(size.pick(5, 60));
    let deployment = Deployment::start().await?;
    let companies = load::companies(&deployment, 16).await?;
    let before = counts::versions(&deployment, &companies).await?;

    let stream = WriteStream::start(
        deployment.channel("profile")?,
        &companies,
        writes,
        Duration::from_millis(200),
    );
    stream
        .wait_done(writes / 3, Duration::from_secs(300))
        .await?;
    tokio::task::block_in_place(|| deployment.postgres.crash())?;
    let crashed_at = std::time::Instant::now();
    // Every service notices and says so.
    for name in SERVICES {
        partnerhub_faults::wait_for(
            &format!("{name} never reported NOT_SERVING with the database down"),
            Duration::from_secs(15),
            || async {
                matches!(deployment.health(name).await, Ok(ServingStatus::NotServing)).then_some(())
            },
        )
        .await?;
    }
    let noticed = crashed_at.elapsed();
    tokio::time::sleep(down_for.saturating_sub(noticed)).await;
    tokio::task::block_in_place(|| deployment.postgres.start_again())?;
    let restarted_at = std::time::Instant::now();
    deployment.wait_all_serving(Duration::from_secs(60)).await?;
    let recovered = restarted_at.elapsed();

    let (log, took) = stream.finish().await?;
    let after = counts::versions(&deployment, &companies).await?;
    let names = counts::legal_names(&deployment, &companies).await?;
    figure(TEST, "writes", writes);
    figure(TEST, "acknowledged", log.acked.len());
    figure(TEST, "failed while the database was down", log.failed.len());
    figure(TEST, "faults injected", 1);
    figure(
        TEST,
        "database down (s)",
        format!("{:.1}", down_for.as_secs_f64()),
    );
    figure(
        TEST,
        "all NOT_SERVING within (s)",
        format!("{:.1}", noticed.as_secs_f64()),
    );
    figure(
        TEST,
        "all SERVING again within (s)",
        format!("{:.1}", recovered.as_secs_f64()),
    );
    figure(TEST, "took (s)", format!("{:.1}", took.as_secs_f64()));

    // Every acknowledged write is in the database: each moved its
    // company's version by one, and a company whose last call succeeded
    // shows that call's name.
    for (i, company) in companies.iter().enumerate() {
        let grown = after[&company.account_id] - before[&company.account_id];
        let acked = log.acked_for(i) as i64;
        anyhow::ensure!(
            grown >= acked,
            "company {i}: {acked} writes acknowledged but the version grew by {grown}"
        );
        let last_ack = log.acked.iter().rposition(|w| w.company == i);
        let last_fail = log.failed.iter().rposition(|f| f.company == i);
        if let (Some(a), None) = (last_ack, last_fail) {
            anyhow::ensure!(
                names[&company.account_id] == log.acked[a].name,
                "company {i}: last acknowledged name {:?} but {:?} stored",
                log.acked[a].name,
                names[&company.account_id]
            );
        }
    }
    let codes: std::collections::BTreeSet<String> =
        log.failed.iter().map(|f| format!("{:?}", f.code)).collect();
    figure(TEST, "failure codes", format!("{codes:?}"));
    anyhow::ensure!(
        log.failed
            .iter()
            .all(|f| f.code == tonic::Code::Unavailable),
        "a failure that is not UNAVAILABLE: {:?}",
        log.failed
            .iter()
            .find(|f| f.code != tonic::Code::Unavailable)
    );

    // The events of every committed write (acknowledged or not) arrive.
    let events: i64 = after.iter().map(|(id, v)| v - before[id]).sum();
    counts::report_exactly_once(
        TEST,
        &deployment,
        &companies,
        events,
        Duration::from_secs(size.pick(300, 900)),
        "delivery finished after the last write (s)",
    )
    .await?;
    Ok(())
}
