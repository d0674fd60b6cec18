//! Identity's consumer: verification asks it to suspend accounts rejected
//! for too long. Applied once (inbox); an account already suspended,
//! merged or disabled is left as it is.

use futures::future::BoxFuture;
use partnerhub_platform::bus::{Handler, HandlerError, IncomingMessage};
use partnerhub_proto::verification::v1::AccountSuspensionRequested;
use prost::Name;
use sqlx::PgConnection;

use crate::error::IdentityError;

/// The event types identity's events queue is bound to.
pub fn subscribed() -> Vec<String> {
    vec![AccountSuspensionRequested::full_name()]
}

/// Suspends accounts on verification's request.
#[derive(Debug, Clone, Copy)]
pub struct Suspensions;

impl Handler for Suspensions {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        message: &'a IncomingMessage,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            if message.message_type != AccountSuspensionRequested::full_name() {
                return Ok(());
            }
            let event: AccountSuspensionRequested = message.decode()?;
            let account = partnerhub_platform::bus::id_in(&event.account, "accounts")?;
            match crate::api::change_state(tx, account, "SUSPENDED", &event.reason, "verification")
                .await
            {
                Ok(row) => {
                    tracing::warn!(%account, state = %row.state, "Account suspended on verification's request.");
                    Ok(())
                }
                Err(IdentityError::Precondition { message, .. }) => {
                    tracing::info!(%account, %message, "Suspension request ignored.");
                    Ok(())
                }
                Err(IdentityError::NotFound { .. }) => {
                    tracing::warn!(%account, "Suspension requested for an unknown account.");
                    Ok(())
                }
                Err(e) => Err(HandlerError::Transient(anyhow::anyhow!("{e}"))),
            }
        })
    }
}
