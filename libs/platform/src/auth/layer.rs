//! The tower layer that authenticates every call and enforces the RPC's
//! declared access rule before the handler runs. Fails closed: a method with
//! no rule is refused.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tonic::Code;
use tower::{Layer, Service};

use super::caller::{Caller, denied};
use super::rules::{AccessRules, Rule};
use super::token::{TokenError, TokenVerifier};
use crate::error::refused;

/// What a token whose password must change may still call.
const PASSWORD_CHANGE_PATHS: &[&str] = &[
    "/partnerhub.identity.v1.AuthService/ChangePassword",
    "/partnerhub.identity.v1.AuthService/SignOut",
];

/// Authenticates and authorizes calls; see the module docs.
#[derive(Clone)]
pub struct AuthLayer {
    rules: Arc<AccessRules>,
    verifier: Arc<TokenVerifier>,
}

impl AuthLayer {
    /// A layer enforcing `rules`, verifying tokens with `verifier`.
    pub fn new(rules: Arc<AccessRules>, verifier: Arc<TokenVerifier>) -> Self {
        Self { rules, verifier }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth {
            inner,
            rules: self.rules.clone(),
            verifier: self.verifier.clone(),
        }
    }
}

/// The service made by [`AuthLayer`].
#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    rules: Arc<AccessRules>,
    verifier: Arc<TokenVerifier>,
}

impl<S, B> Service<http::Request<B>> for Auth<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The clone that was polled ready is the one that must be called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let rules = self.rules.clone();
        let verifier = self.verifier.clone();
        let path = request.uri().path().to_owned();
        let token = bearer(&request).map(str::to_owned);
        Box::pin(async move {
            match authorize(&rules, &verifier, &path, token.as_deref()).await {
                Ok(Some(caller)) => {
                    request.extensions_mut().insert(caller);
                    inner.call(request).await
                }
                Ok(None) => inner.call(request).await,
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}

async fn authorize(
    rules: &AccessRules,
    verifier: &TokenVerifier,
    path: &str,
    token: Option<&str>,
) -> Result<Option<Caller>, tonic::Status> {
    let Some(rule) = rules.rule(path) else {
        tracing::warn!(%path, "Refused a call to a method without an access rule.");
        return Err(refused(
            Code::PermissionDenied,
            "NO_ACCESS_RULE",
            "this method declares no access rule and is refused",
        ));
    };
    if *rule == Rule::Public {
        return Ok(None);
    }
    let token = token.ok_or_else(|| {
        refused(
            Code::Unauthenticated,
            "UNAUTHENTICATED",
            "this call needs `authorization: Bearer <access token>`",
        )
    })?;
    let caller = verifier.caller(token).await.map_err(token_refusal)?;
    if caller.password_change_required && !PASSWORD_CHANGE_PATHS.contains(&path) {
        return Err(crate::error::failed_precondition(
            "PASSWORD_CHANGE_REQUIRED",
            "password",
            "the password is temporary: change it with ChangePassword first",
        ));
    }
    if let Rule::Permission(permission) = rule
        && !caller.has(permission)
        && !caller.has_platform(permission)
    {
        return Err(denied(permission));
    }
    Ok(Some(caller))
}

/// The answer to a refused token: UNAUTHENTICATED with a reason
/// (`INVALID_TOKEN`, `SESSION_ENDED`, `ACCOUNT_NOT_ACTIVE`), or UNAVAILABLE
/// when it could not be verified now.
pub fn token_refusal(e: TokenError) -> tonic::Status {
    match e {
        TokenError::KeysUnavailable(cause) => {
            tracing::warn!(%cause, "Cannot verify tokens: signing keys unavailable.");
            refused(
                Code::Unavailable,
                "KEYS_UNAVAILABLE",
                "token verification is temporarily unavailable",
            )
        }
        TokenError::SessionCheckUnavailable(cause) => {
            tracing::warn!(%cause, "Cannot tell whether a session is live: revocation feed down and identity unreachable.");
            refused(
                Code::Unavailable,
                "SESSION_CHECK_UNAVAILABLE",
                "token verification is temporarily unavailable",
            )
        }
        TokenError::Invalid | TokenError::UnknownKey => refused(
            Code::Unauthenticated,
            "INVALID_TOKEN",
            "the access token is invalid or expired",
        ),
        TokenError::SessionEnded => refused(
            Code::Unauthenticated,
            "SESSION_ENDED",
            "the session of this access token has ended; sign in again",
        ),
        TokenError::AccountNotActive => refused(
            Code::Unauthenticated,
            "ACCOUNT_NOT_ACTIVE",
            "the account of this access token is suspended or merged",
        ),
    }
}

fn bearer<B>(request: &http::Request<B>) -> Option<&str> {
    let value = request.headers().get(http::header::AUTHORIZATION)?;
    let value = value.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}
