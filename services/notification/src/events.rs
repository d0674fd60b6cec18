//! The recipients projection: identity's user events become rows notification
//! can address, applied once (inbox) and order-tolerant (an older fact never
//! overwrites a newer one).

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use partnerhub_platform::bus::{Handler, HandlerError, IncomingMessage};
use partnerhub_proto::identity::v1::UserCreated;
use prost::Name;
use sqlx::PgConnection;
use uuid::Uuid;

/// The event types notification's events queue is bound to.
pub const SUBSCRIBED: &[&str] = &["partnerhub.identity.v1.UserCreated"];

/// Maintains `recipients` and `recipient_roles`.
#[derive(Debug, Clone, Copy)]
pub struct Recipients;

impl Handler for Recipients {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        message: &'a IncomingMessage,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            if message.message_type == UserCreated::full_name() {
                user_created(tx, message.decode()?).await
            } else {
                tracing::debug!(message_type = %message.message_type, "Ignored an event of no interest.");
                Ok(())
            }
        })
    }
}

async fn user_created(tx: &mut PgConnection, event: UserCreated) -> Result<(), HandlerError> {
    let user = id_of(&event.user, "users")?;
    let account = id_of(&event.account, "accounts")?;
    let time = event
        .create_time
        .and_then(|t| {
            DateTime::<Utc>::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0))
        })
        .ok_or_else(|| {
            HandlerError::Permanent(anyhow::anyhow!("UserCreated without create_time"))
        })?;
    sqlx::query(
        "INSERT INTO recipients (user_id, email, given_name, family_name, locale, source_time)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (user_id) DO UPDATE SET
             email = EXCLUDED.email, given_name = EXCLUDED.given_name,
             family_name = EXCLUDED.family_name, locale = EXCLUDED.locale,
             source_time = EXCLUDED.source_time
         WHERE recipients.source_time <= EXCLUDED.source_time",
    )
    .bind(user)
    .bind(&event.email)
    .bind(&event.given_name)
    .bind(&event.family_name)
    .bind(&event.locale)
    .bind(time)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO recipient_roles (account_id, user_id, roles, source_time)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (account_id, user_id) DO UPDATE SET
             roles = EXCLUDED.roles, source_time = EXCLUDED.source_time
         WHERE recipient_roles.source_time <= EXCLUDED.source_time",
    )
    .bind(account)
    .bind(user)
    .bind(&event.roles)
    .bind(time)
    .execute(&mut *tx)
    .await?;
    tracing::info!(%user, %account, "Recipient recorded.");
    Ok(())
}

fn id_of(name: &str, collection: &str) -> Result<Uuid, HandlerError> {
    partnerhub_platform::validate::resource_id(name, collection)
        .ok()
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| HandlerError::Permanent(anyhow::anyhow!("bad resource name {name:?}")))
}
