//! Turning a decision to notify into rows: a mail delivery (queued, or
//! suppressed with its reason) and an in-portal notification. Both are
//! written in the caller's transaction, once per source × recipient ×
//! message however often the source arrives.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use partnerhub_platform::bus::HandlerError;
use partnerhub_platform::crypto::Sealer;
use partnerhub_platform::outbox;
use partnerhub_platform::time::timestamp;
use partnerhub_proto::notification::v1::{Category, Kind, NotificationSuppressed};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::catalog::Message;
use crate::projection::{Address, Target};
use crate::templates::{RenderError, Rendered, Templates};

/// Channel woken when a delivery is queued.
pub const WAKE_CHANNEL: &str = "partnerhub_deliveries";
/// Source name of notification's events.
pub const SOURCE: &str = "notification";

/// Why a notification could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The database failed (try again).
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A template failed (a bug: retrying will not help).
    #[error(transparent)]
    Render(#[from] RenderError),
    /// Sealing failed.
    #[error("sealing failed: {0}")]
    Seal(String),
}

impl From<OutboundError> for HandlerError {
    fn from(e: OutboundError) -> Self {
        match e {
            OutboundError::Database(e) => HandlerError::Transient(e.into()),
            other => HandlerError::Permanent(other.into()),
        }
    }
}

/// One mail to write.
#[derive(Debug)]
pub struct Mail<'a> {
    /// What caused it (`event:{id}`, `command:{key}`): with the recipient
    /// and the message, the deduplication key.
    pub source_key: &'a str,
    /// The message.
    pub message: &'static Message,
    /// The account it concerns, if any.
    pub account: Option<Uuid>,
    /// Template parameters.
    pub params: &'a BTreeMap<String, String>,
    /// Which address of a user it goes to (for the suppression reason when
    /// there is none).
    pub address: Address,
}

/// An in-portal notification to write.
#[derive(Debug)]
pub struct Portal {
    /// Kind.
    pub kind: Kind,
    /// For actions: the key that resolves it (`verification`,
    /// `merge:{id}:answer`); a user has at most one open action per key.
    pub action_key: Option<String>,
    /// When a mandatory action is due.
    pub due: Option<DateTime<Utc>>,
    /// Portal path.
    pub link: String,
}

/// Writes deliveries and notifications.
#[derive(Debug)]
pub struct Outbound {
    /// The templates.
    pub templates: Templates,
    /// Seals rendered mail at rest (it may carry a token).
    pub sealer: Arc<Sealer>,
}

/// Why a mail to `target` must not be sent, if so.
pub fn suppression(target: &Target, message: &Message, address: Address) -> Option<String> {
    let email = target.email.trim();
    if email.is_empty() {
        return Some(match address {
            Address::Alternate => {
                "NO_ALTERNATE_EMAIL: billing notices go to the alternate email, and none is set"
                    .to_owned()
            }
            _ => "NO_ADDRESS: the recipient has no email".to_owned(),
        });
    }
    if target.unverified {
        return Some(
            "ALTERNATE_EMAIL_UNVERIFIED: billing notices go to the alternate email only once its owner verified it"
                .to_owned(),
        );
    }
    let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    if domain == "onmicrosoft.com" || domain.ends_with(".onmicrosoft.com") {
        return Some(
            "ONMICROSOFT_DOMAIN: mail is never sent to onmicrosoft.com addresses".to_owned(),
        );
    }
    if matches!(
        message.category,
        Category::Transactional | Category::Promotional
    ) {
        let category = short(message.category.as_str_name(), "CATEGORY_");
        let workspace = short(message.workspace.as_str_name(), "WORKSPACE_");
        if target.category_opt_outs.iter().any(|c| c == category) {
            return Some(format!(
                "OPTED_OUT: the recipient turned off {category} mail"
            ));
        }
        if target.workspace_opt_outs.iter().any(|w| w == workspace) {
            return Some(format!(
                "OPTED_OUT: the recipient turned off mail of the {workspace} workspace"
            ));
        }
    }
    None
}

/// An enum value's name without its prefix (`CATEGORY_ACTION` → `ACTION`).
pub fn short<'a>(name: &'a str, prefix: &str) -> &'a str {
    name.strip_prefix(prefix).unwrap_or(name)
}

/// `accounts/{a}/deliveries/{d}` (`accounts/-/…` without an account).
pub fn delivery_name(account: Option<Uuid>, id: Uuid) -> String {
    match account {
        Some(a) => format!("accounts/{a}/deliveries/{id}"),
        None => format!("accounts/-/deliveries/{id}"),
    }
}

impl Outbound {
    /// Queues `mail` to `target`, or records why it is suppressed. Returns
    /// the delivery, or `None` when this source already produced it.
    pub async fn mail(
        &self,
        tx: &mut PgConnection,
        mail: &Mail<'_>,
        target: &Target,
    ) -> Result<Option<Uuid>, OutboundError> {
        let id = Uuid::now_v7();
        let recipient_key = match target.user {
            Some(user) => user.to_string(),
            None => target.email.trim().to_lowercase(),
        };
        let suppressed = suppression(target, mail.message, mail.address);
        let (locale, sealed) = if suppressed.is_some() {
            (Templates::resolve_locale(&target.locale).to_owned(), None)
        } else {
            let rendered = self.templates.render(
                mail.message.id,
                &target.locale,
                mail.params,
                &target.name,
            )?;
            let plain =
                serde_json::to_vec(&rendered).map_err(|e| OutboundError::Seal(e.to_string()))?;
            let sealed = self
                .sealer
                .seal(&plain, id.as_bytes())
                .map_err(OutboundError::Seal)?;
            (rendered.locale, Some(sealed))
        };
        let status = if suppressed.is_some() {
            "SUPPRESSED"
        } else {
            "QUEUED"
        };
        let inserted: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO deliveries (id, source_key, recipient_key, template, recipient, user_id,
                 account_id, locale, status, last_error, sealed_kid, sealed)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (source_key, recipient_key, template) DO NOTHING
             RETURNING id",
        )
        .bind(id)
        .bind(mail.source_key)
        .bind(&recipient_key)
        .bind(mail.message.id)
        .bind(target.email.trim())
        .bind(target.user)
        .bind(mail.account)
        .bind(&locale)
        .bind(status)
        .bind(suppressed.as_deref().unwrap_or(""))
        .bind(sealed.as_ref().map(|(kid, _)| kid.as_str()))
        .bind(sealed.as_ref().map(|(_, bytes)| bytes.as_slice()))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = inserted else {
            tracing::debug!(
                source = mail.source_key,
                template = mail.message.id,
                "Delivery already recorded."
            );
            return Ok(None);
        };
        let name = delivery_name(mail.account, id);
        match suppressed {
            Some(reason) => {
                tracing::info!(delivery = %name, template = mail.message.id, reason = %reason, "Mail suppressed.");
                outbox::publish_event(
                    tx,
                    SOURCE,
                    &name,
                    &NotificationSuppressed {
                        delivery: name.clone(),
                        template: mail.message.id.to_owned(),
                        user: target
                            .user
                            .map(|u| format!("users/{u}"))
                            .unwrap_or_default(),
                        reason: reason.split(':').next().unwrap_or_default().to_owned(),
                        suppress_time: Some(timestamp(Utc::now())),
                    },
                )
                .await?;
            }
            None => {
                tracing::info!(delivery = %name, template = mail.message.id, "Mail queued.");
                sqlx::query("SELECT pg_notify($1, '')")
                    .bind(WAKE_CHANNEL)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        Ok(Some(id))
    }

    /// Writes an in-portal notification for `target` (a user). Returns
    /// whether it was new.
    #[allow(clippy::too_many_arguments)]
    pub async fn notify(
        &self,
        tx: &mut PgConnection,
        source_key: &str,
        message: &'static Message,
        target: &Target,
        account: Option<Uuid>,
        params: &BTreeMap<String, String>,
        portal: &Portal,
        event_time: DateTime<Utc>,
    ) -> Result<bool, OutboundError> {
        let Some(user) = target.user else {
            return Ok(false);
        };
        let Rendered {
            subject, summary, ..
        } = self
            .templates
            .render(message.id, &target.locale, params, &target.name)?;
        // Born resolved when the fact that ends it is already known.
        let already_resolved = match (&portal.action_key, account) {
            (Some(key), Some(account)) => {
                sqlx::query_scalar::<_, bool>(
                    "SELECT EXISTS (SELECT 1 FROM resolved_actions
                 WHERE account_id = $1 AND action_key = $2 AND event_time >= $3)",
                )
                .bind(account)
                .bind(key)
                .bind(event_time)
                .fetch_one(&mut *tx)
                .await?
            }
            _ => false,
        };
        let inserted = sqlx::query(
            "INSERT INTO notifications (id, user_id, account_id, kind, workspace, title, body,
                 template, source_key, action_key, due_at, link, event_time, resolved_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                 CASE WHEN $14 THEN now() END)
             ON CONFLICT DO NOTHING",
        )
        .bind(Uuid::now_v7())
        .bind(user)
        .bind(account)
        .bind(short(portal.kind.as_str_name(), "KIND_"))
        .bind(short(message.workspace.as_str_name(), "WORKSPACE_"))
        .bind(&subject)
        .bind(&summary)
        .bind(message.id)
        .bind(source_key)
        .bind(&portal.action_key)
        .bind(portal.due)
        .bind(&portal.link)
        .bind(event_time)
        .bind(already_resolved)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        Ok(inserted)
    }

    /// Resolves the open actions `action_key` of `account` created by facts
    /// no newer than `event_time`, and remembers the resolution for actions
    /// whose creating fact arrives later.
    pub async fn resolve(
        &self,
        tx: &mut PgConnection,
        account: Uuid,
        action_key: &str,
        event_time: DateTime<Utc>,
    ) -> Result<u64, OutboundError> {
        sqlx::query(
            "INSERT INTO resolved_actions (account_id, action_key, event_time) VALUES ($1, $2, $3)
             ON CONFLICT (account_id, action_key) DO UPDATE
             SET event_time = greatest(resolved_actions.event_time, EXCLUDED.event_time)",
        )
        .bind(account)
        .bind(action_key)
        .bind(event_time)
        .execute(&mut *tx)
        .await?;
        let resolved = sqlx::query(
            "UPDATE notifications SET resolved_at = now()
             WHERE account_id = $1 AND action_key = $2 AND resolved_at IS NULL AND event_time <= $3",
        )
        .bind(account)
        .bind(action_key)
        .bind(event_time)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        Ok(resolved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog;

    fn target(email: &str) -> Target {
        Target::address(email, "Ann", "en-US")
    }

    #[test]
    fn onmicrosoft_addresses_are_suppressed_in_any_case() {
        let welcome = catalog::find("identity.welcome").unwrap();
        for email in [
            "ann@contoso.onmicrosoft.com",
            "ann@CONTOSO.OnMicrosoft.COM",
            "ann@onmicrosoft.com",
        ] {
            let reason = suppression(&target(email), welcome, Address::Preferred).unwrap();
            assert!(
                reason.starts_with("ONMICROSOFT_DOMAIN"),
                "{email}: {reason}"
            );
        }
        assert_eq!(
            suppression(
                &target("ann@onmicrosoft.com.contoso.com"),
                welcome,
                Address::Preferred
            ),
            None
        );
        assert_eq!(
            suppression(
                &target("ann@notonmicrosoft.com"),
                welcome,
                Address::Preferred
            ),
            None
        );
    }

    #[test]
    fn an_unverified_alternate_email_is_suppressed() {
        let overdue = catalog::find("billing.invoice_overdue").unwrap();
        let mut unproved = target("billing@contoso.com");
        unproved.unverified = true;
        let reason = suppression(&unproved, overdue, Address::Alternate).unwrap();
        assert!(reason.starts_with("ALTERNATE_EMAIL_UNVERIFIED"), "{reason}");
        assert_eq!(
            suppression(&target("billing@contoso.com"), overdue, Address::Alternate),
            None
        );
    }

    #[test]
    fn opt_outs_apply_to_transactional_and_promotional_mail_only() {
        let welcome = catalog::find("identity.welcome").unwrap();
        let reset = catalog::find("identity.password_reset").unwrap();
        let mut opted_out = target("ann@contoso.com");
        opted_out.category_opt_outs = vec!["TRANSACTIONAL".into(), "SECURITY".into()];
        assert!(
            suppression(&opted_out, welcome, Address::Preferred)
                .unwrap()
                .starts_with("OPTED_OUT")
        );
        assert_eq!(suppression(&opted_out, reset, Address::SignIn), None);
        let mut workspace = target("ann@contoso.com");
        workspace.workspace_opt_outs = vec!["ACCOUNT_SETTINGS".into()];
        assert!(suppression(&workspace, welcome, Address::Preferred).is_some());
        let received = catalog::find("merge.invitation_received").unwrap();
        assert_eq!(suppression(&workspace, received, Address::Preferred), None);
    }

    #[test]
    fn a_missing_alternate_email_says_so() {
        let overdue = catalog::find("billing.invoice_overdue").unwrap();
        let reason = suppression(&target(""), overdue, Address::Alternate).unwrap();
        assert!(reason.starts_with("NO_ALTERNATE_EMAIL"), "{reason}");
    }
}
