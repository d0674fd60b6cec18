//! The bus against the real RabbitMQ and PostgreSQL of the machine: a message
//! delivered twice has one effect, and a message that always fails lands in
//! the dead-letter queue after the configured number of attempts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use lapin::options::{BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::AMQPValue;
use lapin::{Connection, ConnectionProperties};
use partnerhub_platform::bus::{
    ATTEMPT_HEADER, Bus, BusConfig, Consumer, Handler, HandlerError, IncomingMessage,
    OutgoingMessage, QueueKind,
};
use partnerhub_testkit::{AMQP_URL, bus_config, database_url, delete_exchanges, eventually};
use sqlx::{PgConnection, PgPool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const PROBE: &str = "partnerhub.test.v1.Probe";
const GATE: &[u8] = b"gate";
const POISON: &[u8] = b"poison";

/// Records each applied message in `effects`; fails every time when told to.
/// A message whose payload is `gate` waits for `gate` to be notified; one
/// whose payload is `poison` can never be applied.
struct Recorder {
    calls: Arc<AtomicU32>,
    always_fail: Arc<AtomicBool>,
    gate: Arc<Notify>,
}

impl Handler for Recorder {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        message: &'a IncomingMessage,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if message.payload == GATE {
                self.gate.notified().await;
            }
            sqlx::query("INSERT INTO effects (message_id) VALUES ($1)")
                .bind(&message.id)
                .execute(&mut *tx)
                .await?;
            if message.payload == POISON {
                return Err(HandlerError::Permanent(anyhow::anyhow!("poison")));
            }
            if self.always_fail.load(Ordering::SeqCst) {
                return Err(HandlerError::Transient(anyhow::anyhow!(
                    "downstream is down"
                )));
            }
            Ok(())
        })
    }
}

struct Harness {
    pool: PgPool,
    bus: BusConfig,
    calls: Arc<AtomicU32>,
    failing: Arc<AtomicBool>,
    gate: Arc<Notify>,
    stop: CancellationToken,
}

async fn start(always_fail: bool) -> anyhow::Result<Harness> {
    partnerhub_testkit::init_logging();
    let url = database_url("platform");
    let pool = partnerhub_platform::db::prepare(
        &url,
        4,
        &sqlx::migrate::Migrator::with_migrations(vec![]),
    )
    .await?;
    sqlx::query("CREATE TABLE effects (message_id TEXT NOT NULL)")
        .execute(&pool)
        .await?;
    let mut config = bus_config(AMQP_URL);
    config.batch = config.prefetch;
    let bus = Bus::new(config.clone());
    let calls = Arc::new(AtomicU32::new(0));
    let failing = Arc::new(AtomicBool::new(always_fail));
    let gate = Arc::new(Notify::new());
    let consumer = Consumer {
        service: "probe",
        kind: QueueKind::Events,
        routing_keys: vec![PROBE.to_owned()],
        handler: Arc::new(Recorder {
            calls: calls.clone(),
            always_fail: failing.clone(),
            gate: gate.clone(),
        }),
    };
    let stop = CancellationToken::new();
    bus.spawn(vec![consumer], pool.clone(), stop.clone());
    let probe = bus.clone();
    eventually(Duration::from_secs(10), || {
        let connected = probe.is_connected();
        async move { connected.then_some(()) }
    })
    .await?;
    Ok(Harness {
        pool,
        bus: config,
        calls,
        failing,
        gate,
        stop,
    })
}

async fn publish(
    config: &BusConfig,
    message: &OutgoingMessage,
    times: usize,
) -> anyhow::Result<()> {
    publish_all(config, &vec![message; times]).await
}

/// Publishes `messages` in order, each confirmed.
async fn publish_all(config: &BusConfig, messages: &[&OutgoingMessage]) -> anyhow::Result<()> {
    let connection = Connection::connect(AMQP_URL, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    for message in messages {
        let confirm = channel
            .basic_publish(
                config.events_exchange().into(),
                PROBE.into(),
                BasicPublishOptions::default(),
                &message.payload,
                // Messages name their producer; with one shared user, it.
                message
                    .properties()
                    .with_user_id(config.user().as_str().into()),
            )
            .await?
            .await?;
        assert!(confirm.is_ack());
    }
    connection.close(200, "done".into()).await?;
    Ok(())
}

fn probe() -> OutgoingMessage {
    probe_with(b"")
}

fn probe_with(payload: &[u8]) -> OutgoingMessage {
    OutgoingMessage {
        id: uuid::Uuid::now_v7(),
        message_type: PROBE.into(),
        source: "//partnerhub/test".into(),
        subject: "probes/1".into(),
        time: chrono::Utc::now(),
        payload: payload.to_vec(),
        traceparent: None,
        tracestate: None,
    }
}

async fn effects(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM effects")
        .fetch_one(pool)
        .await
        .unwrap_or(-1)
}

#[tokio::test]
async fn a_message_delivered_twice_has_one_effect() -> anyhow::Result<()> {
    let h = start(false).await?;
    publish(&h.bus, &probe(), 2).await?;
    let calls = h.calls.clone();
    eventually(Duration::from_secs(10), || {
        let n = calls.load(Ordering::SeqCst);
        async move { (n >= 1).then_some(()) }
    })
    .await?;
    // Give the duplicate every chance to be applied too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(effects(&h.pool).await, 1, "the duplicate was applied twice");
    let inbox: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox")
        .fetch_one(&h.pool)
        .await?;
    assert_eq!(inbox, 1);
    h.stop.cancel();
    delete_exchanges(h.bus);
    Ok(())
}

#[tokio::test]
async fn a_message_that_always_fails_is_dead_lettered_after_max_attempts() -> anyhow::Result<()> {
    let h = start(true).await?;
    publish(&h.bus, &probe(), 1).await?;
    let dead = first_dead_letter(&h.bus).await?;
    assert_eq!(h.calls.load(Ordering::SeqCst), h.bus.max_attempts);
    let attempt = dead
        .delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(ATTEMPT_HEADER).cloned());
    assert_eq!(
        attempt,
        Some(AMQPValue::LongLongInt(i64::from(h.bus.max_attempts)))
    );
    assert_eq!(effects(&h.pool).await, 0, "failed attempts must roll back");
    h.stop.cancel();
    delete_exchanges(h.bus);
    Ok(())
}

#[tokio::test]
async fn dead_letters_are_listed_in_place_and_replayed_once_the_cause_is_fixed()
-> anyhow::Result<()> {
    use partnerhub_platform::bus::dead;
    let h = start(true).await?;
    let message = probe();
    publish(&h.bus, &message, 1).await?;
    let listed = eventually(Duration::from_secs(15), || {
        let bus = h.bus.clone();
        async move {
            let found = dead::list(&bus, "probe", QueueKind::Events, 10)
                .await
                .ok()?;
            (!found.is_empty()).then_some(found)
        }
    })
    .await?;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].message_id, message.id.to_string());
    assert_eq!(listed[0].message_type, PROBE);
    assert_eq!(listed[0].attempts, i64::from(h.bus.max_attempts));
    assert!(
        listed[0].last_error.contains("downstream is down"),
        "{:?}",
        listed[0]
    );
    // Listing took nothing away.
    assert_eq!(
        dead::list(&h.bus, "probe", QueueKind::Events, 10)
            .await?
            .len(),
        1
    );

    // The cause is fixed: the replayed message is applied once.
    h.failing.store(false, Ordering::SeqCst);
    assert_eq!(
        dead::replay(&h.bus, "probe", QueueKind::Events, 10).await?,
        1
    );
    eventually(Duration::from_secs(15), || {
        let pool = h.pool.clone();
        async move { (effects(&pool).await == 1).then_some(()) }
    })
    .await?;
    assert!(
        dead::list(&h.bus, "probe", QueueKind::Events, 10)
            .await?
            .is_empty()
    );
    assert_eq!(
        dead::replay(&h.bus, "probe", QueueKind::Events, 10).await?,
        0
    );
    h.stop.cancel();
    delete_exchanges(h.bus);
    Ok(())
}

/// The first message of the probe's dead-letter queue, taken off it.
async fn first_dead_letter(bus: &BusConfig) -> anyhow::Result<lapin::message::BasicGetMessage> {
    let connection = Connection::connect(AMQP_URL, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    let dead_queue = format!("{}.dead", bus.queue("probe", QueueKind::Events));
    let dead = eventually(Duration::from_secs(15), || {
        let channel = channel.clone();
        let queue = dead_queue.clone();
        async move {
            channel
                .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
                .await
                .ok()
                .flatten()
        }
    })
    .await?;
    connection.close(200, "done".into()).await?;
    Ok(dead)
}

/// Waits until `calls` reached `n`.
async fn calls_reach(calls: &Arc<AtomicU32>, n: u32) -> anyhow::Result<()> {
    eventually(Duration::from_secs(15), || {
        let seen = calls.load(Ordering::SeqCst);
        async move { (seen >= n).then_some(()) }
    })
    .await
}

/// Asserts `effects` holds exactly `n` rows, none for the same message.
async fn assert_each_applied_once(pool: &PgPool, n: i64) -> anyhow::Result<()> {
    let (rows, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT message_id) FROM effects")
            .fetch_one(pool)
            .await?;
    assert_eq!((rows, distinct), (n, n), "an effect was applied twice");
    Ok(())
}

/// Waits until `effects` holds `n` rows.
async fn effects_reach(pool: &PgPool, n: i64) -> anyhow::Result<()> {
    eventually(Duration::from_secs(20), || async move {
        (effects(pool).await >= n).then_some(())
    })
    .await
}

#[tokio::test]
async fn deliveries_in_hand_share_a_transaction_and_a_failing_one_is_set_apart()
-> anyhow::Result<()> {
    let h = start(false).await?;
    let ids = |messages: &[OutgoingMessage]| {
        messages
            .iter()
            .map(|m| m.id.to_string())
            .collect::<Vec<_>>()
    };

    // While the handler holds a first message, ten more arrive: they are in
    // hand together when it is released, and commit in fewer transactions
    // than messages (one, unless the broker split them).
    publish(&h.bus, &probe_with(GATE), 1).await?;
    calls_reach(&h.calls, 1).await?;
    let good: Vec<_> = (0..10).map(|_| probe()).collect();
    publish_all(&h.bus, &good.iter().collect::<Vec<_>>()).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.gate.notify_one();
    effects_reach(&h.pool, 11).await?;
    let transactions: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT xmin::text) FROM effects WHERE message_id = ANY($1)",
    )
    .bind(ids(&good))
    .fetch_one(&h.pool)
    .await?;
    assert!(
        transactions < good.len() as i64,
        "{transactions} transactions for {} messages in hand",
        good.len()
    );

    // Again, with a message that can never be applied in the middle: the
    // others are applied exactly once, it is dead-lettered, and none of its
    // effects stays.
    let before = h.calls.load(Ordering::SeqCst);
    publish(&h.bus, &probe_with(GATE), 1).await?;
    calls_reach(&h.calls, before + 1).await?;
    let poison = probe_with(POISON);
    let mut batch: Vec<_> = (0..4).map(|_| probe()).collect();
    batch.push(poison.clone());
    batch.extend((0..5).map(|_| probe()));
    publish_all(&h.bus, &batch.iter().collect::<Vec<_>>()).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.gate.notify_one();
    effects_reach(&h.pool, 11 + 1 + 9).await?;

    let dead = first_dead_letter(&h.bus).await?;
    assert_eq!(dead.delivery.data, POISON);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_each_applied_once(&h.pool, 21).await?;
    let poisoned: i64 = sqlx::query_scalar("SELECT count(*) FROM effects WHERE message_id = $1")
        .bind(poison.id.to_string())
        .fetch_one(&h.pool)
        .await?;
    assert_eq!(poisoned, 0, "the failing message left an effect");
    h.stop.cancel();
    delete_exchanges(h.bus);
    Ok(())
}

#[tokio::test]
async fn concurrent_consumers_go_on_while_one_is_held_and_apply_each_message_once()
-> anyhow::Result<()> {
    let h = start(false).await?;
    assert!(h.bus.consumers > 1, "the default runs several consumers");
    // One consumer is held by the gate; the others apply what follows. (The
    // broker hands the held one its share too, up to its prefetch: those
    // wait with it. With a single consumer, all would.)
    publish(&h.bus, &probe_with(GATE), 1).await?;
    calls_reach(&h.calls, 1).await?;
    let more: Vec<_> = (0..20).map(|_| probe()).collect();
    publish_all(&h.bus, &more.iter().collect::<Vec<_>>()).await?;
    effects_reach(&h.pool, 10).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let applied = effects(&h.pool).await;
    assert!(
        (10..=20).contains(&applied),
        "{applied} of 20 applied while one consumer was held"
    );
    h.gate.notify_one();
    effects_reach(&h.pool, 21).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_each_applied_once(&h.pool, 21).await?;
    h.stop.cancel();
    delete_exchanges(h.bus);
    Ok(())
}
