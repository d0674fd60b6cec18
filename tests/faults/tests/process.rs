//! Process faults: consumers SIGKILLed in the middle of a backlog and
//! restarted lose no event and apply none twice; SIGTERM under load drains:
//! no call in flight fails, and the process exits 0.

use std::time::Duration;

use partnerhub_faults::load::{self, WriteStream};
use partnerhub_faults::{Deployment, Size, counts, figure};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_killed_mid_batch_lose_nothing_and_apply_nothing_twice() -> anyhow::Result<()> {
    const TEST: &str = "sigkill";
    let size = Size::from_env();
    let writes = size.pick(600, 10_000);
    let mut deployment = Deployment::start().await?;
    let companies = load::companies(&deployment, 16).await?;
    let before = counts::versions(&deployment, &companies).await?;

    // A backlog: the consumers are down while the writes happen.
    deployment.kill("verification").await?;
    deployment.kill("notification").await?;
    let stream = WriteStream::start(
        deployment.channel("profile")?,
        &companies,
        writes,
        Duration::from_millis(100),
    );
    let (log, took) = stream.finish().await?;
    anyhow::ensure!(
        log.failed.is_empty(),
        "writes failed: {:?}",
        log.failed.first()
    );
    let events = counts::events_since(&deployment, &companies, &before).await?;
    anyhow::ensure!(
        events == log.acked.len() as i64,
        "{events} events for {} writes",
        log.acked.len()
    );

    // Each consumer is killed again while it works through the backlog.
    let mut kills = 2;
    let mut killed_at = Vec::new();
    for (name, applied) in [
        (
            "verification",
            (|a: counts::Applied| a.verification_inbox) as fn(counts::Applied) -> i64,
        ),
        ("notification", |a: counts::Applied| a.notification_inbox),
    ] {
        deployment.restart(name).await?;
        let mark = events / 3;
        let seen = partnerhub_faults::wait_for(
            &format!("{name} never reached {mark} events"),
            Duration::from_secs(300),
            || async {
                let n = applied(counts::applied(&deployment).await.ok()?);
                (n >= mark).then_some(n)
            },
        )
        .await?;
        deployment.kill(name).await?;
        kills += 1;
        let at = applied(counts::applied(&deployment).await?);
        anyhow::ensure!(
            at < events,
            "{name} had finished the backlog ({at}) before the kill"
        );
        killed_at.push(format!("{name} at {at}/{events} (seen {seen})"));
        deployment.restart(name).await?;
    }
    let (applied, delivered_in) = counts::expect_exactly_once(
        &deployment,
        &companies,
        events,
        Duration::from_secs(size.pick(300, 1200)),
    )
    .await?;
    figure(TEST, "writes", writes);
    figure(TEST, "acknowledged", log.acked.len());
    figure(
        TEST,
        "write rate (per s)",
        format!("{:.0}", log.acked.len() as f64 / took.as_secs_f64()),
    );
    figure(TEST, "SIGKILLs", kills);
    figure(TEST, "killed mid-batch", killed_at.join("; "));
    figure(TEST, "events checked per consumer", events);
    figure(TEST, "applied", format!("{applied:?}"));
    figure(
        TEST,
        "backlog drained after restart (s)",
        format!("{:.1}", delivered_in.as_secs_f64()),
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_fails_no_call_in_flight() -> anyhow::Result<()> {
    const TEST: &str = "sigterm";
    let size = Size::from_env();
    let writes = size.pick(600, 10_000);
    let mut deployment = Deployment::start().await?;
    let companies = load::companies(&deployment, 16).await?;
    let before = counts::versions(&deployment, &companies).await?;
    // No cap that the stream could reach before the signal: it stops when
    // told to.
    let stream = WriteStream::start(
        deployment.channel("profile")?,
        &companies,
        writes * 100,
        Duration::from_millis(100),
    );

    // A consumer drains: it finishes the message in hand and exits 0.
    stream
        .wait_done(writes / 4, Duration::from_secs(300))
        .await?;
    let consumer_clean = deployment.terminate("verification").await?;
    anyhow::ensure!(consumer_clean, "verification did not exit 0 after SIGTERM");
    deployment.restart("verification").await?;

    // The service taking the calls drains them. SIGTERM arrives with calls
    // in flight, and writers go on issuing for a while: within the shutdown
    // delay (1 s here) the service, already NOT_SERVING, still answers them.
    stream
        .wait_done(writes / 2, Duration::from_secs(300))
        .await?;
    let at_signal = stream.done();
    deployment.send_sigterm("profile").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stream.stop_issuing();
    let profile_clean = deployment.wait_exit("profile").await?;
    let (log, _) = stream.finish().await?;
    let after_signal = log.acked.len() + log.failed.len() - at_signal;
    figure(TEST, "writes", log.acked.len() + log.failed.len());
    figure(TEST, "calls finished after SIGTERM", after_signal);
    anyhow::ensure!(
        after_signal > 16,
        "only {after_signal} calls after SIGTERM: the delay was not exercised"
    );
    figure(TEST, "failed", log.failed.len());
    figure(TEST, "SIGTERMs", 2);
    anyhow::ensure!(
        log.failed.is_empty(),
        "calls failed on SIGTERM: {:?}",
        &log.failed[..log.failed.len().min(5)]
    );
    anyhow::ensure!(profile_clean, "profile did not exit 0 after SIGTERM");

    deployment.restart("profile").await?;
    let events = counts::events_since(&deployment, &companies, &before).await?;
    anyhow::ensure!(
        events == log.acked.len() as i64,
        "{events} events for {} writes",
        log.acked.len()
    );
    let (applied, _) = counts::expect_exactly_once(
        &deployment,
        &companies,
        events,
        Duration::from_secs(size.pick(300, 900)),
    )
    .await?;
    figure(TEST, "events checked per consumer", events);
    figure(TEST, "applied", format!("{applied:?}"));
    Ok(())
}
