//! Mail commands: other services ask for a templated mail that may carry a
//! secret (an invitation, reset or email-ownership token). They arrive on
//! notification's own commands queue and become deliveries like any other.

use std::sync::Arc;

use futures::future::BoxFuture;
use partnerhub_platform::bus::{Handler, HandlerError, IncomingMessage};
use partnerhub_proto::notification::v1::SendMail;
use prost::Name;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::catalog;
use crate::outbound::{Mail, Outbound};
use crate::projection::{self, Address, Target, id_of};

/// Notification's commands handler.
#[derive(Debug, Clone)]
pub struct MailCommands {
    outbound: Arc<Outbound>,
}

impl MailCommands {
    /// A handler writing through `outbound`.
    pub fn new(outbound: Arc<Outbound>) -> Self {
        Self { outbound }
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        message: &IncomingMessage,
    ) -> Result<(), HandlerError> {
        if message.message_type != SendMail::full_name() {
            return Err(HandlerError::Permanent(anyhow::anyhow!(
                "notification takes no command {:?}",
                message.message_type
            )));
        }
        let command: SendMail = message.decode()?;
        let key = if command.dedup_key.is_empty() {
            &message.id
        } else {
            &command.dedup_key
        };
        let source_key = format!("command:{key}");
        let user = match command.user.as_str() {
            "" => None,
            name => Some(id_of(name, "users")?),
        };
        let account = match command.account.as_str() {
            "" => None,
            name => Some(id_of(name, "accounts")?),
        };
        let Some(entry) = catalog::find(&command.template) else {
            // A producer's bug: keep a visible record rather than a dead
            // letter nobody reads.
            record_unknown(tx, &source_key, &command, user, account).await?;
            return Ok(());
        };
        // The producer chose the address (a token must reach exactly it);
        // a known user's name and language are used when it is theirs.
        let mut target = Target::address(&command.to, "", &command.locale);
        // The user it is for: named by the producer, or else the member of
        // the account the address belongs to (a primary contact who is a
        // user reads in their own language).
        let user = match (user, account) {
            (Some(user), _) => Some(user),
            (None, Some(account)) => projection::member_by_email(tx, account, &command.to).await?,
            (None, None) => None,
        };
        if let Some(user) = user
            && let Some(known) = projection::user_target(tx, user, Address::SignIn).await?
        {
            target.user = Some(user);
            target.name = known.name;
            target.locale = known.locale;
        }
        if target.locale.is_empty() {
            target.locale = command.locale.clone();
        }
        let params = command.params.clone().into_iter().collect();
        let mail = Mail {
            source_key: &source_key,
            message: entry,
            account,
            params: &params,
            address: Address::SignIn,
        };
        self.outbound.mail(tx, &mail, &target).await?;
        Ok(())
    }
}

async fn record_unknown(
    tx: &mut PgConnection,
    source_key: &str,
    command: &SendMail,
    user: Option<Uuid>,
    account: Option<Uuid>,
) -> Result<(), HandlerError> {
    tracing::error!(template = %command.template, "A mail command names an unknown template.");
    sqlx::query(
        "INSERT INTO deliveries (id, source_key, recipient_key, template, recipient, user_id,
             account_id, locale, status, last_error)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'FAILED', $9)
         ON CONFLICT (source_key, recipient_key, template) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(source_key)
    .bind(command.to.trim().to_lowercase())
    .bind(&command.template)
    .bind(command.to.trim())
    .bind(user)
    .bind(account)
    .bind(&command.locale)
    .bind(format!(
        "UNKNOWN_TEMPLATE: no message {:?}",
        command.template
    ))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

impl Handler for MailCommands {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        message: &'a IncomingMessage,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(self.apply(tx, message))
    }
}
