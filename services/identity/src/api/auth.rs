//! AuthService: sign-up, sign-in, sessions, passwords, service tokens, keys.

use std::net::IpAddr;

use chrono::Utc;
use partnerhub_platform::auth::{AUDIENCE, Caller, Claims, ISSUER, PrincipalKind, caller, roles};
use partnerhub_platform::outbox;
use partnerhub_platform::rate_limit::{client_address, limit_target};
use partnerhub_platform::time::timestamp;
use partnerhub_platform::validate::{self, Violations};
use partnerhub_proto::identity::v1::{
    AccessToken, AccountCreated, ChangePasswordRequest, CheckSessionRequest, CheckSessionResponse,
    CompletePasswordResetRequest, CompletePasswordResetResponse, GetJwksRequest, GetJwksResponse,
    IssueServiceTokenRequest, IssueServiceTokenResponse, PasswordChanged, RefreshTokenRequest,
    RequestPasswordResetRequest, RequestPasswordResetResponse, Session, SignInRequest,
    SignOutRequest, SignOutResponse, SignUpRequest, SwitchAccountRequest, UserCreated,
    auth_service_server::AuthService,
};
use partnerhub_proto::notification::v1::SendMail;
use sqlx::PgConnection;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::sessions::{self, Ending};
use super::{Identity, SOURCE, account_id, caller_user, send_mail};
use crate::domain::{self, lockout, secrets};
use crate::error::{IdentityError, Result};
use crate::password;
use crate::store::{accounts, activity, members, tokens};

impl Identity {
    async fn sign_up(&self, req: SignUpRequest) -> Result<Session> {
        domain::check_sign_up(&req).map_err(IdentityError::Invalid)?;
        let password_hash = password::hash(req.password.clone()).await?;
        let locale = if req.locale.is_empty() {
            "en-US"
        } else {
            req.locale.as_str()
        };
        let display_name = if req.account_display_name.is_empty() {
            domain::default_display_name(&req.email)
        } else {
            req.account_display_name.clone()
        };
        let roles: Vec<String> = roles::FOUNDER_ROLES
            .iter()
            .map(|r| (*r).to_owned())
            .collect();
        let user_id = Uuid::now_v7();

        let mut tx = self.pool.begin().await?;
        let account = accounts::insert(&mut tx, Uuid::now_v7(), &display_name, user_id).await?;
        let user = members::insert_user(
            &mut tx,
            &members::NewUser {
                id: user_id,
                email: req.email.trim(),
                given_name: &req.given_name,
                family_name: &req.family_name,
                locale,
                password_hash: Some(&password_hash),
                home_account: Some(account.id),
                must_change_password: false,
            },
        )
        .await?
        .ok_or(IdentityError::EmailTaken)?;
        members::upsert_membership(
            &mut tx,
            account.id,
            user.id,
            &roles,
            &Default::default(),
            "ACTIVE",
        )
        .await?;
        let account_name = format!("accounts/{}", account.id);
        let user_name = format!("users/{}", user.id);
        outbox::publish_event(
            &mut tx,
            SOURCE,
            &account_name,
            &AccountCreated {
                account: account_name.clone(),
                display_name: account.display_name.clone(),
                created_by: user_name.clone(),
                create_time: Some(timestamp(account.created_at)),
            },
        )
        .await?;
        outbox::publish_event(
            &mut tx,
            SOURCE,
            &user_name,
            &UserCreated {
                user: user_name.clone(),
                account: account_name.clone(),
                email: user.email.clone(),
                given_name: user.given_name.clone(),
                family_name: user.family_name.clone(),
                locale: user.locale.clone(),
                roles: roles.clone(),
                create_time: Some(timestamp(user.created_at)),
                created_by: user_name.clone(),
            },
        )
        .await?;
        let membership = accounts::Membership {
            account,
            roles,
            scopes: Default::default(),
        };
        let session = self.session(&mut tx, &user, &membership, None).await?;
        tx.commit().await?;
        tracing::info!(user = %user.id, account = %membership.account.id, "Signed up.");
        Ok(session)
    }

    async fn sign_in(&self, req: SignInRequest, client: Option<IpAddr>) -> Result<Session> {
        let mut v = Violations::new();
        if req.email.is_empty() || req.email.len() > 254 {
            v.add("email", "is required (at most 254 characters)");
        }
        if req.password.is_empty() || req.password.chars().count() > 128 {
            v.add("password", "is required (at most 128 characters)");
        }
        let account = if req.account.is_empty() {
            None
        } else {
            match account_id("account", &req.account) {
                Ok(id) => Some(id),
                Err(IdentityError::Invalid(mut f)) => {
                    f.drain(..).for_each(|f| v.add(f.field, f.description));
                    None
                }
                Err(e) => return Err(e),
            }
        };
        if !v.is_empty() {
            return Err(IdentityError::Invalid(v.into_vec()));
        }
        let email = domain::normalize_email(&req.email);
        let mut conn = self.pool.acquire().await?;
        if let Some(until) = tokens::locked_until(&mut conn, &email).await? {
            let wait = (until - Utc::now()).to_std().unwrap_or_default();
            return Err(IdentityError::LockedOut(wait));
        }
        let user = members::user_by_email(&mut conn, &email)
            .await?
            .filter(|u| u.deleted_at.is_none());
        // An unknown email costs the same argon2 verification as a known one.
        let stored = user.as_ref().and_then(|u| u.password_hash.clone());
        let ok = password::verify(req.password, stored).await?;
        let user = match user {
            Some(user) if ok => user,
            user => {
                failed_attempt(&mut conn, &email, user.as_ref(), Attempt::SignIn, client).await?;
                return Err(IdentityError::InvalidCredentials);
            }
        };
        tokens::clear_failures(&mut conn, &email).await?;
        let membership = accounts::membership(&mut conn, user.id, account)
            .await?
            .ok_or_else(|| match account {
                Some(_) => IdentityError::not_found("account", req.account.clone()),
                None => IdentityError::Precondition {
                    reason: "NO_ACCOUNT",
                    message: "the user is not an active member of any account".into(),
                },
            })?;
        let session = self.session(&mut conn, &user, &membership, None).await?;
        sign_in_activity(
            &mut conn,
            membership.account.id,
            user.id,
            "sign_in.succeeded",
            serde_json::json!({
                "account": format!("accounts/{}", membership.account.id),
                "client": client.map(|c| c.to_string()),
            }),
        )
        .await?;
        Ok(session)
    }

    async fn refresh(&self, req: RefreshTokenRequest) -> Result<Session> {
        if req.refresh_token.is_empty() || req.refresh_token.len() > 200 {
            return Err(IdentityError::field("refresh_token", "is required"));
        }
        let hash = secrets::hash(&req.refresh_token);
        let mut tx = self.pool.begin().await?;
        let row = tokens::lock_refresh(&mut tx, &hash)
            .await?
            .ok_or(IdentityError::InvalidRefreshToken)?;
        if row.revoked_at.is_some() || row.expires_at <= Utc::now() {
            return Err(IdentityError::InvalidRefreshToken);
        }
        if row.used_at.is_some() {
            // A spent token came back: someone holds a copy. End the session.
            let session = Ending::Session {
                family: row.family_id,
                user: row.user_id,
            };
            sessions::end(&mut tx, session, "refresh_token_reused").await?;
            tx.commit().await?;
            tracing::warn!(user = %row.user_id, "Refresh token reused; revoked its session.");
            return Err(IdentityError::InvalidRefreshToken);
        }
        // A family revoked while this token was being issued stays ended.
        if !tokens::session_live(&mut tx, row.family_id).await? {
            return Err(IdentityError::InvalidRefreshToken);
        }
        tokens::spend_refresh(&mut tx, &hash).await?;
        let user = members::user(&mut tx, row.user_id)
            .await?
            .filter(|u| u.deleted_at.is_none());
        let membership = accounts::membership(&mut tx, row.user_id, Some(row.account_id)).await?;
        let ending = Ending::Session {
            family: row.family_id,
            user: row.user_id,
        };
        let (Some(user), Some(membership)) = (user, membership) else {
            sessions::end(&mut tx, ending, "user_unavailable").await?;
            tx.commit().await?;
            return Err(IdentityError::InvalidRefreshToken);
        };
        let session = self
            .session(&mut tx, &user, &membership, Some(row.family_id))
            .await;
        if session.is_err() {
            sessions::end(&mut tx, ending, "user_unavailable").await?;
            tx.commit().await?;
            return session;
        }
        tx.commit().await?;
        session
    }

    async fn switch_account(&self, caller: &Caller, req: SwitchAccountRequest) -> Result<Session> {
        let user_id = caller_user(caller)?;
        let account = account_id("account", &req.account)?;
        let mut conn = self.pool.acquire().await?;
        // Only a live session may open another: a token whose session ended
        // (sign-out, password change, reset, reuse) must not mint a new one.
        sessions::require_live(&mut conn, caller).await?;
        let user = members::user(&mut conn, user_id)
            .await?
            .ok_or(IdentityError::InvalidCredentials)?;
        let membership = accounts::membership(&mut conn, user_id, Some(account))
            .await?
            .ok_or_else(|| IdentityError::not_found("account", req.account.clone()))?;
        self.session(&mut conn, &user, &membership, None).await
    }

    async fn change_password(
        &self,
        user_id: Uuid,
        account: Option<&str>,
        req: ChangePasswordRequest,
        client: Option<IpAddr>,
    ) -> Result<Session> {
        let mut v = Violations::new();
        if req.current_password.is_empty() {
            v.add("current_password", "is required");
        }
        v.check("new_password", domain::password(&req.new_password));
        if req.new_password == req.current_password {
            v.add("new_password", "must differ from the current password");
        }
        if !v.is_empty() {
            return Err(IdentityError::Invalid(v.into_vec()));
        }
        let mut conn = self.pool.acquire().await?;
        let user = members::user(&mut conn, user_id)
            .await?
            .ok_or(IdentityError::InvalidCredentials)?;
        // Guessing the current password counts toward the sign-in lock-out,
        // and a locked user is refused here as at sign-in.
        let email = domain::normalize_email(&user.email);
        if let Some(until) = tokens::locked_until(&mut conn, &email).await? {
            let wait = (until - Utc::now()).to_std().unwrap_or_default();
            return Err(IdentityError::LockedOut(wait));
        }
        if !password::verify(req.current_password, user.password_hash.clone()).await? {
            failed_attempt(
                &mut conn,
                &email,
                Some(&user),
                Attempt::ChangePassword,
                client,
            )
            .await?;
            return Err(IdentityError::field("current_password", "is incorrect"));
        }
        let hash = password::hash(req.new_password).await?;
        drop(conn);
        let account = account.and_then(|a| a.parse::<Uuid>().ok());
        let mut tx = self.pool.begin().await?;
        members::set_password(&mut tx, user_id, &hash, false).await?;
        sessions::end(&mut tx, Ending::User(user_id), "password_changed").await?;
        tokens::clear_failures(&mut tx, &email).await?;
        password_changed(
            &mut tx,
            user_id,
            "self",
            &format!("users/{user_id}"),
            account,
        )
        .await?;
        let user = members::user(&mut tx, user_id)
            .await?
            .ok_or(IdentityError::InvalidCredentials)?;
        let membership = accounts::membership(&mut tx, user_id, account)
            .await?
            .ok_or_else(|| IdentityError::Precondition {
                reason: "NO_ACCOUNT",
                message: "the user is not an active member of any account".into(),
            })?;
        let session = self.session(&mut tx, &user, &membership, None).await?;
        tx.commit().await?;
        Ok(session)
    }

    async fn request_reset(&self, req: RequestPasswordResetRequest) -> Result<()> {
        validate::email(&req.email).map_err(|e| IdentityError::field("email", e))?;
        let mut tx = self.pool.begin().await?;
        let user = members::user_by_email(&mut tx, &req.email).await?;
        if let Some(user) = user.filter(|u| u.deleted_at.is_none() && u.password_hash.is_some()) {
            let token = secrets::token();
            let expires = Utc::now() + self.config.reset_token_ttl;
            tokens::insert_one_time(
                &mut tx,
                &secrets::hash(&token),
                tokens::Purpose::PasswordReset,
                user.id,
                None,
                expires,
            )
            .await?;
            send_mail(
                &mut tx,
                SendMail {
                    template: "identity.password_reset".into(),
                    to: user.email.clone(),
                    locale: user.locale.clone(),
                    params: [
                        ("token".to_owned(), token),
                        ("given_name".to_owned(), user.given_name.clone()),
                        (
                            "expires_minutes".to_owned(),
                            (self.config.reset_token_ttl.as_secs() / 60).to_string(),
                        ),
                    ]
                    .into(),
                    user: format!("users/{}", user.id),
                    account: String::new(),
                    dedup_key: format!("password_reset:{}", Uuid::now_v7()),
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn complete_reset(&self, req: CompletePasswordResetRequest) -> Result<()> {
        let mut v = Violations::new();
        if req.token.is_empty() || req.token.len() > 200 {
            v.add("token", "is required");
        }
        v.check("new_password", domain::password(&req.new_password));
        if !v.is_empty() {
            return Err(IdentityError::Invalid(v.into_vec()));
        }
        // The token first (one indexed lookup of its SHA-256): a junk token
        // costs no argon2 work. Only a live token's new password is hashed,
        // and the spent token rolls back if hashing fails.
        let mut tx = self.pool.begin().await?;
        let row = tokens::spend_one_time(
            &mut tx,
            &secrets::hash(&req.token),
            tokens::Purpose::PasswordReset,
        )
        .await?
        .ok_or(IdentityError::InvalidToken("token"))?;
        let user = members::user(&mut tx, row.user_id)
            .await?
            .ok_or(IdentityError::InvalidToken("token"))?;
        let hash = password::hash(req.new_password).await?;
        members::set_password(&mut tx, user.id, &hash, false).await?;
        sessions::end(&mut tx, Ending::User(user.id), "password_reset").await?;
        tokens::clear_failures(&mut tx, &domain::normalize_email(&user.email)).await?;
        password_changed(
            &mut tx,
            user.id,
            "reset_token",
            &format!("users/{}", user.id),
            user.home_account_id,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn service_token(
        &self,
        req: IssueServiceTokenRequest,
    ) -> Result<IssueServiceTokenResponse> {
        let mut v = Violations::new();
        if req.client_id.is_empty() || req.client_id.len() > 100 {
            v.add("client_id", "is required (at most 100 characters)");
        }
        if req.client_secret.is_empty() || req.client_secret.len() > 200 {
            v.add("client_secret", "is required (at most 200 characters)");
        }
        v.finish()?;
        let account = self
            .config
            .service_accounts
            .iter()
            .find(|a| a.client_id == req.client_id);
        let ok =
            password::verify(req.client_secret, account.map(|a| a.secret_hash.clone())).await?;
        let account = match account {
            Some(a) if ok => a,
            _ => return Err(IdentityError::InvalidCredentials),
        };
        let now = Utc::now();
        let expires = now + self.config.access_token_ttl;
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: account.client_id.clone(),
            kind: PrincipalKind::Service,
            acc: None,
            roles: Vec::new(),
            scopes: Default::default(),
            pcr: false,
            dom: String::new(),
            sid: String::new(),
            perms: account.permissions.clone(),
            pv: 1,
            iat: now.timestamp(),
            exp: expires.timestamp(),
            jti: Uuid::new_v4().to_string(),
        };
        Ok(IssueServiceTokenResponse {
            access_token: Some(AccessToken {
                token: self.keys.sign(&claims).await?,
                expire_time: Some(timestamp(expires)),
            }),
            permissions: account.permissions.clone(),
        })
    }
}

/// What a failed password check was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    /// SignIn.
    SignIn,
    /// ChangePassword's current password.
    ChangePassword,
}

/// Counts a failed password check toward the email's lock-out (sign-in and
/// ChangePassword share one counter), locks the email when the failures
/// reach the threshold, and records the failure and the lock-out in the
/// user's home account (an unknown email has no account to record in).
async fn failed_attempt(
    conn: &mut PgConnection,
    email: &str,
    user: Option<&crate::store::UserRow>,
    attempt: Attempt,
    client: Option<IpAddr>,
) -> Result<()> {
    let failures = tokens::record_failure(conn, email).await?;
    let locked = lockout::delay(failures);
    if let Some(delay) = locked {
        tokens::lock_email(conn, email, Utc::now() + delay).await?;
        tracing::warn!(
            failures,
            ?attempt,
            "Locked an email out after repeated failed password checks."
        );
    }
    let Some((user, home)) = user.and_then(|u| u.home_account_id.map(|h| (u, h))) else {
        return Ok(());
    };
    let client = client.map(|c| c.to_string());
    let action = match attempt {
        Attempt::SignIn => "sign_in.failed",
        Attempt::ChangePassword => "password.change_failed",
    };
    sign_in_activity(
        conn,
        home,
        user.id,
        action,
        serde_json::json!({ "failures": failures, "client": client }),
    )
    .await?;
    if let Some(delay) = locked {
        sign_in_activity(
            conn,
            home,
            user.id,
            "sign_in.locked_out",
            serde_json::json!({
                "failures": failures,
                "locked_seconds": delay.as_secs(),
                "after": match attempt {
                    Attempt::SignIn => "sign_in",
                    Attempt::ChangePassword => "change_password",
                },
                "client": client,
            }),
        )
        .await?;
    }
    Ok(())
}

/// Records a sign-in event about `user` in `account`'s activity. The actor
/// is the user whose credentials were presented (for a failure, whoever
/// presented them claimed to be that user).
async fn sign_in_activity(
    conn: &mut PgConnection,
    account: Uuid,
    user: Uuid,
    action: &str,
    new: serde_json::Value,
) -> Result<()> {
    let user_name = format!("users/{user}");
    activity::record(
        conn,
        activity::Entry {
            account,
            actor: &user_name,
            action,
            target: &user_name,
            old: None,
            new: Some(new),
        },
    )
    .await?;
    Ok(())
}

/// Emits `PasswordChanged` and records it in the account's activity.
pub(super) async fn password_changed(
    conn: &mut PgConnection,
    user: Uuid,
    method: &str,
    by: &str,
    account: Option<Uuid>,
) -> Result<()> {
    let user_name = format!("users/{user}");
    outbox::publish_event(
        conn,
        SOURCE,
        &user_name,
        &PasswordChanged {
            user: user_name.clone(),
            method: method.into(),
            changed_by: by.into(),
            change_time: Some(timestamp(Utc::now())),
        },
    )
    .await?;
    if let Some(account) = account {
        activity::record(
            conn,
            activity::Entry {
                account,
                actor: by,
                action: "password.changed",
                target: &user_name,
                old: None,
                new: Some(serde_json::json!({ "method": method })),
            },
        )
        .await?;
    }
    Ok(())
}

#[tonic::async_trait]
impl AuthService for Identity {
    async fn sign_up(&self, request: Request<SignUpRequest>) -> Result<Response<Session>, Status> {
        limit_target(&request, &request.get_ref().email)?;
        Ok(Response::new(
            Identity::sign_up(self, request.into_inner()).await?,
        ))
    }

    async fn sign_in(&self, request: Request<SignInRequest>) -> Result<Response<Session>, Status> {
        limit_target(&request, &request.get_ref().email)?;
        let client = client_address(&request);
        Ok(Response::new(
            Identity::sign_in(self, request.into_inner(), client).await?,
        ))
    }

    async fn refresh_token(
        &self,
        request: Request<RefreshTokenRequest>,
    ) -> Result<Response<Session>, Status> {
        Ok(Response::new(self.refresh(request.into_inner()).await?))
    }

    async fn sign_out(
        &self,
        request: Request<SignOutRequest>,
    ) -> Result<Response<SignOutResponse>, Status> {
        let caller = caller(&request)?;
        let user = caller_user(caller)?;
        let token = &request.get_ref().refresh_token;
        if token.is_empty() || token.len() > 200 {
            return Err(IdentityError::field("refresh_token", "is required").into());
        }
        let mut tx = self.pool.begin().await.map_err(IdentityError::from)?;
        if let Some(row) = tokens::lock_refresh(&mut tx, &secrets::hash(token))
            .await
            .map_err(IdentityError::from)?
            .filter(|r| r.user_id == user)
        {
            let session = Ending::Session {
                family: row.family_id,
                user,
            };
            sessions::end(&mut tx, session, "sign_out").await?;
        }
        tx.commit().await.map_err(IdentityError::from)?;
        Ok(Response::new(SignOutResponse {}))
    }

    async fn switch_account(
        &self,
        request: Request<SwitchAccountRequest>,
    ) -> Result<Response<Session>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            Identity::switch_account(self, &caller, request.into_inner()).await?,
        ))
    }

    async fn check_session(
        &self,
        request: Request<CheckSessionRequest>,
    ) -> Result<Response<CheckSessionResponse>, Status> {
        let caller = caller(&request)?;
        let mut conn = self.pool.acquire().await.map_err(IdentityError::from)?;
        sessions::require_live(&mut conn, caller).await?;
        Ok(Response::new(CheckSessionResponse {}))
    }

    async fn get_jwks(
        &self,
        _request: Request<GetJwksRequest>,
    ) -> Result<Response<GetJwksResponse>, Status> {
        let keys = self.keys.jwks().await.map_err(IdentityError::Internal)?;
        Ok(Response::new(GetJwksResponse { keys }))
    }

    async fn change_password(
        &self,
        request: Request<ChangePasswordRequest>,
    ) -> Result<Response<Session>, Status> {
        let caller = caller(&request)?;
        let user = caller_user(caller)?;
        let account = caller.account.clone();
        let client = client_address(&request);
        Ok(Response::new(
            Identity::change_password(self, user, account.as_deref(), request.into_inner(), client)
                .await?,
        ))
    }

    async fn request_password_reset(
        &self,
        request: Request<RequestPasswordResetRequest>,
    ) -> Result<Response<RequestPasswordResetResponse>, Status> {
        limit_target(&request, &request.get_ref().email)?;
        self.request_reset(request.into_inner()).await?;
        Ok(Response::new(RequestPasswordResetResponse {}))
    }

    async fn complete_password_reset(
        &self,
        request: Request<CompletePasswordResetRequest>,
    ) -> Result<Response<CompletePasswordResetResponse>, Status> {
        self.complete_reset(request.into_inner()).await?;
        Ok(Response::new(CompletePasswordResetResponse {}))
    }

    async fn issue_service_token(
        &self,
        request: Request<IssueServiceTokenRequest>,
    ) -> Result<Response<IssueServiceTokenResponse>, Status> {
        limit_target(&request, &request.get_ref().client_id)?;
        Ok(Response::new(
            self.service_token(request.into_inner()).await?,
        ))
    }
}
