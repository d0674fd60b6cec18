//! Ending sessions: refresh tokens are revoked in the caller's transaction
//! and `SessionsEnded` goes out through the outbox, so every service refuses
//! the sessions' access tokens within seconds (see
//! `partnerhub_platform::auth::revocation`). Also the checks of a token's
//! session against the database: `CheckSession`, SwitchAccount, and
//! identity's own verifier.

use chrono::Utc;
use futures::future::BoxFuture;
use partnerhub_platform::auth::{Caller, PrincipalKind, SessionCheck, TokenError};
use partnerhub_platform::outbox;
use partnerhub_platform::time::timestamp;
use partnerhub_proto::identity::v1::SessionsEnded;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::SOURCE;
use crate::error::{IdentityError, Result};
use crate::store::{accounts, tokens};

/// Whose sessions end.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ending {
    /// One session (refresh-token family) of a user.
    Session { family: Uuid, user: Uuid },
    /// Every session of a user.
    User(Uuid),
    /// A user's sessions in one account.
    UserInAccount { user: Uuid, account: Uuid },
    /// Every session in an account.
    Account(Uuid),
}

/// Ends the sessions of `ending` for `reason` (a `SessionsEnded` reason) in
/// the caller's transaction.
pub(crate) async fn end(conn: &mut PgConnection, ending: Ending, reason: &str) -> Result<()> {
    let (sessions, user, account) = match ending {
        Ending::Session { family, user } => {
            (tokens::revoke_family(conn, family).await?, Some(user), None)
        }
        Ending::User(user) => (
            tokens::revoke_user(conn, user, None).await?,
            Some(user),
            None,
        ),
        Ending::UserInAccount { user, account } => (
            tokens::revoke_user_in_account(conn, user, account).await?,
            Some(user),
            Some(account),
        ),
        Ending::Account(account) => (
            tokens::revoke_account(conn, account).await?,
            None,
            Some(account),
        ),
    };
    if sessions.is_empty() {
        return Ok(());
    }
    let user = user.map(|u| format!("users/{u}")).unwrap_or_default();
    let account = account.map(|a| format!("accounts/{a}")).unwrap_or_default();
    let subject = if user.is_empty() { &account } else { &user };
    outbox::publish_event(
        conn,
        SOURCE,
        subject,
        &SessionsEnded {
            sessions: sessions.iter().map(Uuid::to_string).collect(),
            user: user.clone(),
            account: account.clone(),
            reason: reason.to_owned(),
            end_time: Some(timestamp(Utc::now())),
        },
    )
    .await?;
    Ok(())
}

/// Whether `caller`'s session is live and its account active, by the
/// database: `Err(SessionEnded)` or `Err(AccountNotActive)` when not.
pub(crate) async fn check(conn: &mut PgConnection, caller: &Caller) -> Result<(), TokenError> {
    if caller.kind == PrincipalKind::Service {
        // Service accounts have no session.
        return Ok(());
    }
    let Some(family) = caller.session.parse::<Uuid>().ok() else {
        return Err(TokenError::SessionEnded);
    };
    let unavailable = |e: sqlx::Error| TokenError::SessionCheckUnavailable(e.to_string());
    if let Some(account) = caller.account.as_deref().and_then(|a| a.parse().ok()) {
        let active = accounts::get(conn, account)
            .await
            .map_err(unavailable)?
            .is_some_and(|a| a.state == "ACTIVE");
        if !active {
            return Err(TokenError::AccountNotActive);
        }
    }
    if !tokens::session_live(conn, family)
        .await
        .map_err(unavailable)?
    {
        return Err(TokenError::SessionEnded);
    }
    Ok(())
}

/// [`check`] as an identity error (UNAUTHENTICATED with the same reasons
/// the auth layer gives).
pub(crate) async fn require_live(conn: &mut PgConnection, caller: &Caller) -> Result<()> {
    check(conn, caller)
        .await
        .map_err(|e| IdentityError::Status(partnerhub_platform::auth::token_refusal(e)))
}

/// Identity's own verifier asks its database.
#[derive(Debug, Clone)]
pub struct LocalSessions(pub PgPool);

impl SessionCheck for LocalSessions {
    fn check<'a>(
        &'a self,
        _token: &'a str,
        caller: &'a Caller,
    ) -> BoxFuture<'a, Result<(), TokenError>> {
        Box::pin(async move {
            let mut conn = self
                .0
                .acquire()
                .await
                .map_err(|e| TokenError::SessionCheckUnavailable(e.to_string()))?;
            check(&mut conn, caller).await
        })
    }
}
