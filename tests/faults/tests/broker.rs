//! Broker faults during a stream of writes: every RabbitMQ connection
//! closed, then the RabbitMQ application stopped and started. Writes keep
//! succeeding (their events wait in the outbox), and once the broker is
//! back every event reaches every consumer exactly once in effect, with no
//! dead letter.

use std::time::Duration;

use partnerhub_faults::load::{self, WriteStream};
use partnerhub_faults::{Deployment, Size, counts, figure};
use tonic_health::pb::health_check_response::ServingStatus;

const TEST: &str = "broker";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_connections_and_a_stopped_broker_lose_no_event() -> anyhow::Result<()> {
    let size = Size::from_env();
    let writes = size.pick(1_000, 10_000);
    let deployment = Deployment::start().await?;
    let companies = load::companies(&deployment, 16).await?;
    let before = counts::versions(&deployment, &companies).await?;
    let baseline = counts::applied(&deployment).await?;
    anyhow::ensure!(baseline.verification_cases == 0, "{baseline:?}");

    // Paced in the quick run (about 30 writes a second) so that the writes
    // outlast the faults, which take rabbitmqctl seconds each.
    let stream = WriteStream::paced(
        deployment.channel("profile")?,
        &companies,
        writes,
        Duration::from_millis(100),
        Duration::from_millis(size.pick(500, 0)),
    );
    let mut faults = 0;

    // Fault 1: every connection of the node closed under the services' feet.
    stream
        .wait_done(writes / 4, Duration::from_secs(300))
        .await?;
    tokio::task::block_in_place(|| deployment.rabbit.close_all_connections())?;
    faults += 1;

    // Fault 2: the RabbitMQ application stopped for a while, then started.
    stream
        .wait_done(writes / 2, Duration::from_secs(300))
        .await?;
    tokio::task::block_in_place(|| deployment.rabbit.stop_app())?;
    faults += 1;
    let profile_reported = partnerhub_faults::wait_for(
        "profile never reported NOT_SERVING with the broker down",
        Duration::from_secs(15),
        || async {
            matches!(
                deployment.health("profile").await,
                Ok(ServingStatus::NotServing)
            )
            .then_some(())
        },
    )
    .await;
    let written_while_down = stream.done();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let written_while_down = stream.done() - written_while_down;
    tokio::task::block_in_place(|| deployment.rabbit.start_app())?;
    profile_reported?;
    anyhow::ensure!(
        written_while_down > 0,
        "the broker was not down during the writes ({written_while_down} while down)"
    );

    let (log, took) = stream.finish().await?;
    deployment.wait_all_serving(Duration::from_secs(60)).await?;
    let events = counts::events_since(&deployment, &companies, &before).await?;

    figure(TEST, "writes", writes);
    figure(TEST, "acknowledged", log.acked.len());
    figure(TEST, "failed", log.failed.len());
    figure(
        TEST,
        "writes while the broker was down (3 s)",
        written_while_down,
    );
    figure(
        TEST,
        "write rate (per s)",
        format!("{:.0}", log.acked.len() as f64 / took.as_secs_f64()),
    );
    figure(TEST, "faults injected", faults);
    anyhow::ensure!(
        log.failed.is_empty(),
        "writes failed: {:?}",
        &log.failed[..log.failed.len().min(5)]
    );
    anyhow::ensure!(
        events == log.acked.len() as i64,
        "{events} events written for {} acknowledged writes",
        log.acked.len()
    );

    counts::report_exactly_once(
        TEST,
        &deployment,
        &companies,
        events,
        Duration::from_secs(size.pick(300, 900)),
        "delivery finished after the last write (s)",
    )
    .await?;
    figure(TEST, "dead letters", 0);
    Ok(())
}
