//! Removing what a run declared on the broker: a namespace's exchanges and
//! every queue of its services (main, retry and dead-letter, and the
//! queues' dead-letter exchanges), since quorum queues do not expire by
//! themselves.

use anyhow::Context;
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::{Connection, ConnectionProperties};
use partnerhub_platform::bus::{BusConfig, QueueKind};

/// Deletes the exchanges and the queues of `services` in `config`'s namespace.
pub async fn delete_namespace(config: &BusConfig, services: &[&str]) -> anyhow::Result<()> {
    let connection = Connection::connect(&config.url, ConnectionProperties::default())
        .await
        .context("cannot reach RabbitMQ to clean up")?;
    for service in services {
        for kind in [QueueKind::Events, QueueKind::Commands] {
            let queue = config.queue(service, kind);
            for name in [
                queue.clone(),
                format!("{queue}.retry"),
                format!("{queue}.dead"),
            ] {
                // A channel per deletion: a refused one closes its channel.
                let channel = connection.create_channel().await?;
                let _ = channel
                    .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                    .await;
            }
            let channel = connection.create_channel().await?;
            let _ = channel
                .exchange_delete(
                    config.dead_letter_exchange(&queue).as_str().into(),
                    ExchangeDeleteOptions::default(),
                )
                .await;
        }
    }
    for exchange in [config.events_exchange(), config.commands_exchange()] {
        let channel = connection.create_channel().await?;
        let _ = channel
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = connection.close(200, "bench cleanup".into()).await;
    Ok(())
}
