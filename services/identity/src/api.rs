//! Identity's gRPC services: decode, validate, apply, answer.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use partnerhub_platform::auth::{AUDIENCE, Claims, ISSUER, PrincipalKind, caller, roles};
use partnerhub_platform::error::FieldViolation;
use partnerhub_platform::time::timestamp;
use partnerhub_platform::{outbox, validate};
use partnerhub_proto::identity::v1::{
    self as pb, AccessToken, Account, AccountCreated, GetAccountRequest, GetJwksRequest,
    GetJwksResponse, SignInRequest, SignInResponse, SignUpRequest, SignUpResponse, User,
    UserCreated, account_service_server::AccountService, auth_service_server::AuthService,
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::domain;
use crate::error::IdentityError;
use crate::keys::Keys;
use crate::store::{self, AccountRow, NewUser, UserRow};

/// `cloudEvents_source` of identity's events.
pub const SOURCE: &str = "//partnerhub/identity";

/// State shared by identity's handlers.
#[derive(Debug, Clone)]
pub struct Identity {
    pool: PgPool,
    keys: Arc<Keys>,
    token_ttl: Duration,
}

impl Identity {
    /// Handlers over `pool`, signing with `keys`.
    pub fn new(pool: PgPool, keys: Arc<Keys>, token_ttl: Duration) -> Self {
        Self {
            pool,
            keys,
            token_ttl,
        }
    }

    async fn issue(
        &self,
        user: Uuid,
        account: Uuid,
        roles: Vec<String>,
    ) -> Result<AccessToken, IdentityError> {
        let now = Utc::now();
        let expires = now + self.token_ttl;
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: user.to_string(),
            kind: PrincipalKind::User,
            acc: Some(account.to_string()),
            roles,
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

    async fn sign_up(&self, req: SignUpRequest) -> Result<SignUpResponse, IdentityError> {
        domain::check_sign_up(&req).map_err(IdentityError::Invalid)?;
        let password_hash = crate::password::hash(req.password.clone()).await?;
        let email_normalized = domain::normalize_email(&req.email);
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

        let mut tx = self.pool.begin().await?;
        let user = store::insert_user(
            &mut tx,
            &NewUser {
                id: Uuid::now_v7(),
                email: req.email.trim(),
                email_normalized: &email_normalized,
                given_name: &req.given_name,
                family_name: &req.family_name,
                locale,
                password_hash: &password_hash,
            },
        )
        .await?
        .ok_or(IdentityError::EmailTaken)?;
        let account =
            store::insert_account(&mut tx, Uuid::now_v7(), &display_name, user.id).await?;
        store::insert_membership(&mut tx, account.id, user.id, &roles).await?;
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
            },
        )
        .await?;
        tx.commit().await?;
        tracing::info!(user = %user.id, account = %account.id, "Signed up.");

        let access_token = self.issue(user.id, account.id, roles).await?;
        Ok(SignUpResponse {
            user: Some(user_message(&user)),
            account: Some(account_message(&account)),
            access_token: Some(access_token),
        })
    }

    async fn sign_in(&self, req: SignInRequest) -> Result<SignInResponse, IdentityError> {
        let mut violations = Vec::new();
        if req.email.is_empty() || req.email.len() > 254 {
            violations.push(FieldViolation::new(
                "email",
                "is required (at most 254 characters)",
            ));
        }
        if req.password.is_empty() || req.password.chars().count() > 128 {
            violations.push(FieldViolation::new(
                "password",
                "is required (at most 128 characters)",
            ));
        }
        let account_id = if req.account.is_empty() {
            None
        } else {
            match validate::resource_id(&req.account, "accounts") {
                Ok(id) => id.parse::<Uuid>().ok(),
                Err(e) => {
                    violations.push(FieldViolation::new("account", e));
                    None
                }
            }
        };
        if !violations.is_empty() {
            return Err(IdentityError::Invalid(violations));
        }
        let user = store::user_by_email(&self.pool, &domain::normalize_email(&req.email)).await?;
        let ok =
            crate::password::verify(req.password, user.as_ref().map(|u| u.password_hash.clone()))
                .await?;
        let user = match user {
            Some(user) if ok => user,
            _ => return Err(IdentityError::InvalidCredentials),
        };
        let (account, roles) = store::membership(&self.pool, user.id, account_id)
            .await?
            .ok_or_else(|| IdentityError::AccountNotFound(req.account.clone()))?;
        if account.state != "ACTIVE" {
            return Err(IdentityError::AccountUnavailable(
                account.state.to_lowercase(),
            ));
        }
        let access_token = self.issue(user.id, account.id, roles).await?;
        Ok(SignInResponse {
            user: Some(user_message(&user)),
            account: Some(account_message(&account)),
            access_token: Some(access_token),
        })
    }
}

fn user_message(user: &UserRow) -> User {
    User {
        name: format!("users/{}", user.id),
        email: user.email.clone(),
        given_name: user.given_name.clone(),
        family_name: user.family_name.clone(),
        locale: user.locale.clone(),
    }
}

fn account_message(account: &AccountRow) -> Account {
    let state = match account.state.as_str() {
        "ACTIVE" => pb::AccountState::Active,
        "SUSPENDED" => pb::AccountState::Suspended,
        "MERGED" => pb::AccountState::Merged,
        "DISABLED" => pb::AccountState::Disabled,
        _ => pb::AccountState::Unspecified,
    };
    Account {
        name: format!("accounts/{}", account.id),
        display_name: account.display_name.clone(),
        state: state.into(),
        create_time: Some(timestamp(account.created_at)),
    }
}

#[tonic::async_trait]
impl AuthService for Identity {
    async fn sign_up(
        &self,
        request: Request<SignUpRequest>,
    ) -> Result<Response<SignUpResponse>, Status> {
        Ok(Response::new(
            Identity::sign_up(self, request.into_inner()).await?,
        ))
    }

    async fn sign_in(
        &self,
        request: Request<SignInRequest>,
    ) -> Result<Response<SignInResponse>, Status> {
        Ok(Response::new(
            Identity::sign_in(self, request.into_inner()).await?,
        ))
    }

    async fn get_jwks(
        &self,
        _request: Request<GetJwksRequest>,
    ) -> Result<Response<GetJwksResponse>, Status> {
        let keys = self.keys.jwks().await.map_err(IdentityError::Internal)?;
        Ok(Response::new(GetJwksResponse { keys }))
    }
}

#[tonic::async_trait]
impl AccountService for Identity {
    async fn get_account(
        &self,
        request: Request<GetAccountRequest>,
    ) -> Result<Response<Account>, Status> {
        let caller = caller(&request)?;
        let name = &request.get_ref().name;
        let id = validate::resource_id(name, "accounts")
            .map_err(|e| IdentityError::Invalid(vec![FieldViolation::new("name", e)]))?;
        caller.require(roles::perm::ACCOUNTS_READ, id)?;
        let id: Uuid = id
            .parse()
            .map_err(|_| IdentityError::AccountNotFound(name.clone()))?;
        let account = store::account(&self.pool, id)
            .await
            .map_err(IdentityError::from)?
            .ok_or_else(|| IdentityError::AccountNotFound(name.clone()))?;
        Ok(Response::new(account_message(&account)))
    }
}
