//! Identity's gRPC services: decode, validate, apply, answer. One module per
//! service; what they share lives here.

mod accounts;

pub(crate) use accounts::change_state;
mod activity;
mod auth;
mod invitations;
mod me;
mod members;
mod roles;
mod sessions;

pub use sessions::LocalSessions;

use std::sync::Arc;

use chrono::Utc;
use partnerhub_platform::auth::{AUDIENCE, Caller, Claims, ISSUER, PrincipalKind};
use partnerhub_platform::rate_limit::{Allowance, Budget, OverBudget};
use partnerhub_platform::time::timestamp;
use partnerhub_platform::{idempotency, outbox, validate};
use partnerhub_proto::identity::v1::{self as pb, AccessToken, Account, Member, Session, User};
use partnerhub_proto::notification::v1::SendMail;
use prost::Message;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::config::Config;
use crate::domain::{authority, secrets};
use crate::error::{IdentityError, Result};
use crate::keys::Keys;
use crate::store::{AccountRow, MemberRow, UserRow, accounts::Membership, tokens};

/// `cloudEvents_source` of identity's events and commands.
pub const SOURCE: &str = "//partnerhub/identity";

/// State shared by identity's handlers.
#[derive(Debug, Clone)]
pub struct Identity {
    pool: PgPool,
    keys: Arc<Keys>,
    config: Arc<Config>,
    /// Users each account may still create with a hashed temporary
    /// password (argon2 work an account may spend on bulk creation).
    created_users: Arc<Budget>,
}

impl Identity {
    /// Handlers over `pool`, signing with `keys`.
    pub fn new(pool: PgPool, keys: Arc<Keys>, config: Arc<Config>) -> Self {
        let created_users = Arc::new(Budget::new(Allowance::per_hour(
            config.created_users_per_hour,
        )));
        Self {
            pool,
            keys,
            config,
            created_users,
        }
    }

    /// Spends `count` of `account`'s budget of created users: beyond it,
    /// RESOURCE_EXHAUSTED with RetryInfo (reason `USER_CREATION_BUDGET`), or
    /// INVALID_ARGUMENT when `count` exceeds the whole hourly budget.
    fn spend_created_users(&self, account: Uuid, count: usize) -> Result<()> {
        let units = u32::try_from(count).unwrap_or(u32::MAX);
        match self.created_users.spend(&account.to_string(), units) {
            Ok(()) => Ok(()),
            Err(OverBudget::Wait(wait)) => Err(IdentityError::Status(
                partnerhub_platform::error::rate_limited(
                    "USER_CREATION_BUDGET",
                    format!(
                        "this account created too many users lately; {count} more fit in \
                         {} s (at most {} per hour)",
                        wait.as_secs().max(1),
                        self.config.created_users_per_hour
                    ),
                    wait,
                ),
            )),
            Err(OverBudget::TooMany(per_hour)) => Err(IdentityError::field(
                "csv",
                format!("creates {count} users; an account may create at most {per_hour} per hour"),
            )),
        }
    }

    /// Signs an access token for a user in an account.
    async fn access_token(
        &self,
        user: &UserRow,
        membership: &Membership,
        session: Uuid,
    ) -> Result<AccessToken> {
        let now = Utc::now();
        let expires = now + self.config.access_token_ttl;
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: user.id.to_string(),
            kind: PrincipalKind::User,
            acc: Some(membership.account.id.to_string()),
            roles: membership.roles.clone(),
            scopes: membership.scopes.0.clone(),
            pcr: user.must_change_password,
            dom: user
                .email
                .rsplit_once('@')
                .map(|(_, d)| d.to_lowercase())
                .unwrap_or_default(),
            sid: session.to_string(),
            perms: Vec::new(),
            pv: 1,
            iat: now.timestamp(),
            exp: expires.timestamp(),
            jti: Uuid::new_v4().to_string(),
        };
        Ok(AccessToken {
            token: self.keys.sign(&claims).await?,
            expire_time: Some(timestamp(expires)),
        })
    }

    /// A new session: a refresh token in `family` (a new family when `None`)
    /// stored hashed, and an access token.
    async fn session(
        &self,
        conn: &mut PgConnection,
        user: &UserRow,
        membership: &Membership,
        family: Option<Uuid>,
    ) -> Result<Session> {
        if membership.account.state != "ACTIVE" {
            return Err(IdentityError::AccountUnavailable(
                membership.account.state.to_lowercase(),
            ));
        }
        let refresh = secrets::token();
        let expires = Utc::now() + self.config.refresh_token_ttl;
        let family = family.unwrap_or_else(Uuid::now_v7);
        tokens::insert_refresh(
            conn,
            &secrets::hash(&refresh),
            family,
            user.id,
            membership.account.id,
            expires,
        )
        .await?;
        Ok(Session {
            user: Some(user_message(user)),
            account: Some(account_message(&membership.account)),
            access_token: Some(self.access_token(user, membership, family).await?),
            refresh_token: refresh,
            password_change_required: user.must_change_password,
        })
    }
}

/// The resource name of whoever calls.
fn actor(caller: &Caller) -> String {
    caller.resource_name()
}

/// The caller's user id; service accounts have none.
fn caller_user(caller: &Caller) -> Result<Uuid> {
    caller
        .user_id()
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| IdentityError::Precondition {
            reason: "USER_REQUIRED",
            message: "this call is for signed-in users, not service accounts".into(),
        })
}

/// Parses `accounts/{id}` in `field`.
fn account_id(field: &str, name: &str) -> Result<Uuid> {
    let id = validate::resource_id(name, "accounts").map_err(|e| IdentityError::field(field, e))?;
    id.parse()
        .map_err(|_| IdentityError::field(field, "must be an account name"))
}

/// Parses `accounts/{a}/members/{u}`.
fn member_name(name: &str) -> Result<(Uuid, Uuid)> {
    let bad = || IdentityError::field("name", "must be `accounts/{account}/members/{user}`");
    let rest = name.strip_prefix("accounts/").ok_or_else(bad)?;
    let (account, user) = rest.split_once("/members/").ok_or_else(bad)?;
    Ok((
        account.parse().map_err(|_| bad())?,
        user.parse().map_err(|_| bad())?,
    ))
}

/// Claims a `request_id` for `scope`; `Some(response)` replays a stored one.
async fn replay<M: Message + Default>(
    conn: &mut PgConnection,
    scope: &str,
    request_id: &str,
    request: &impl Message,
) -> Result<Option<M>> {
    Ok(idempotency::replay(conn, scope, request_id, request).await?)
}

/// Stores the response of a claimed `request_id`.
async fn remember(
    conn: &mut PgConnection,
    scope: &str,
    request_id: &str,
    response: &impl Message,
) -> Result<()> {
    Ok(idempotency::remember(conn, scope, request_id, response).await?)
}

/// Queues a mail for the notification service (a command: it may carry a
/// token, so it never goes on the events exchange).
async fn send_mail(conn: &mut PgConnection, mail: SendMail) -> Result<()> {
    let subject = if mail.user.is_empty() {
        mail.account.clone()
    } else {
        mail.user.clone()
    };
    outbox::send_command(conn, SOURCE, "notification", &subject, &mail).await?;
    Ok(())
}

fn user_message(user: &UserRow) -> User {
    User {
        name: format!("users/{}", user.id),
        email: user.email.clone(),
        given_name: user.given_name.clone(),
        family_name: user.family_name.clone(),
        locale: user.locale.clone(),
        alternate_email: user.alternate_email.clone().unwrap_or_default(),
        home_account: user
            .home_account_id
            .map(|a| format!("accounts/{a}"))
            .unwrap_or_default(),
    }
}

fn account_state(state: &str) -> pb::AccountState {
    match state {
        "ACTIVE" => pb::AccountState::Active,
        "SUSPENDED" => pb::AccountState::Suspended,
        "MERGED" => pb::AccountState::Merged,
        "DISABLED" => pb::AccountState::Disabled,
        _ => pb::AccountState::Unspecified,
    }
}

fn account_message(account: &AccountRow) -> Account {
    Account {
        name: format!("accounts/{}", account.id),
        display_name: account.display_name.clone(),
        state: account_state(&account.state).into(),
        create_time: Some(timestamp(account.created_at)),
        merged_into: account
            .merged_into
            .map(|a| format!("accounts/{a}"))
            .unwrap_or_default(),
    }
}

#[allow(deprecated)] // INVITED rows no longer exist; the mapping stays total.
fn member_state(state: &str) -> pb::MemberState {
    match state {
        "ACTIVE" => pb::MemberState::Active,
        "INVITED" => pb::MemberState::Invited,
        "DELETED" => pb::MemberState::Deleted,
        _ => pb::MemberState::Unspecified,
    }
}

fn member_message(row: &MemberRow) -> Member {
    Member {
        name: format!("accounts/{}/members/{}", row.account_id, row.user.id),
        user: Some(user_message(&row.user)),
        roles: authority::assignments(&row.roles, &row.scopes.0),
        state: member_state(&row.state).into(),
        create_time: Some(timestamp(row.member_since)),
        password_change_required: row.user.must_change_password,
        etag: partnerhub_platform::etag::of(row.version),
    }
}
