//! What profile does with other services' events: it mirrors the
//! verification status into the legal profile and moves programs with it,
//! and suspends or resumes programs with the account.

use futures::future::BoxFuture;
use partnerhub_platform::bus::{Handler, HandlerError, IncomingMessage};
use partnerhub_proto::identity::v1::{AccountState, AccountStateChanged};
use partnerhub_proto::profile::v1::ProgramKind;
use partnerhub_proto::verification::v1::{Status as VerificationState, VerificationStatusChanged};
use prost::Name;
use sqlx::PgConnection;

use crate::domain::programs;
use crate::store;

/// The event types profile's events queue is bound to.
pub fn subscribed() -> Vec<String> {
    vec![
        VerificationStatusChanged::full_name(),
        AccountStateChanged::full_name(),
    ]
}

/// Applies verification and account-state events.
#[derive(Debug, Clone, Copy)]
pub struct Mirror;

impl Handler for Mirror {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        message: &'a IncomingMessage,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            if message.message_type == VerificationStatusChanged::full_name() {
                verification_changed(tx, message.decode()?).await
            } else if message.message_type == AccountStateChanged::full_name() {
                account_state_changed(tx, message.decode()?).await
            } else {
                Ok(())
            }
        })
    }
}

async fn verification_changed(
    tx: &mut PgConnection,
    event: VerificationStatusChanged,
) -> Result<(), HandlerError> {
    let account = partnerhub_platform::bus::id_in(&event.account, "accounts")?;
    let status = event
        .status()
        .as_str_name()
        .trim_start_matches("STATUS_")
        .to_owned();
    let sub_status = event
        .sub_status()
        .as_str_name()
        .trim_start_matches("SUB_STATUS_")
        .to_owned();
    let at = event
        .change_time
        .as_ref()
        .and_then(partnerhub_platform::time::from_timestamp)
        .unwrap_or_else(chrono::Utc::now);
    if !store::set_verification(tx, account, &status, &sub_status, at).await? {
        // Not enrolled here (yet), already mirrored, or older than what is:
        // nothing changes.
        return Ok(());
    }
    let decided = match event.status() {
        VerificationState::Authorized => Some(true),
        VerificationState::Rejected => Some(false),
        _ => None,
    };
    let Some(authorized) = decided else {
        return Ok(());
    };
    // A decision made while the account is suspended applies to the status
    // its programs will return to.
    for (kind, saved) in store::suspended_programs(tx, account).await? {
        let program = ProgramKind::from_str_name(&kind).unwrap_or(ProgramKind::Unspecified);
        let accepted = store::has_agreement(tx, account, programs::agreement(program).0).await?;
        if let Some(next) = programs::after_verification(&saved, authorized, accepted) {
            store::set_status_after_suspension(tx, account, &kind, next).await?;
        }
    }
    for program in store::programs(tx, account).await? {
        let kind = ProgramKind::from_str_name(&program.kind).unwrap_or(ProgramKind::Unspecified);
        let accepted = store::has_agreement(tx, account, programs::agreement(kind).0).await?;
        let Some(next) = programs::after_verification(&program.status, authorized, accepted) else {
            continue;
        };
        if let Some(old) = store::set_program_status(tx, account, &program.kind, next).await? {
            crate::api::program_status_changed(tx, account, &program.kind, &old, next)
                .await
                .map_err(|e| HandlerError::Transient(anyhow::anyhow!("{e}")))?;
        }
    }
    Ok(())
}

async fn account_state_changed(
    tx: &mut PgConnection,
    event: AccountStateChanged,
) -> Result<(), HandlerError> {
    let account = partnerhub_platform::bus::id_in(&event.account, "accounts")?;
    let changed = match event.new_state() {
        AccountState::Suspended => store::suspend_programs(tx, account)
            .await?
            .into_iter()
            .map(|(kind, old)| (kind, old, "SUSPENDED".to_owned()))
            .collect::<Vec<_>>(),
        AccountState::Active => store::resume_programs(tx, account)
            .await?
            .into_iter()
            .map(|(kind, new)| (kind, "SUSPENDED".to_owned(), new))
            .collect(),
        _ => Vec::new(),
    };
    for (kind, old, new) in changed {
        crate::api::program_status_changed(tx, account, &kind, &old, &new)
            .await
            .map_err(|e| HandlerError::Transient(anyhow::anyhow!("{e}")))?;
    }
    Ok(())
}
