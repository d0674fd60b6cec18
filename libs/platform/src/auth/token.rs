//! Access tokens: EdDSA JWTs issued by identity and verified locally by every
//! service with identity's JWK set, cached by `kid` and refreshed when a token
//! names a key the cache does not know.

use std::collections::HashMap;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use partnerhub_proto::identity::v1::Jwk;
use serde::{Deserialize, Serialize};

use super::caller::Caller;
use super::revocation::Revocations;
use super::verified::VerifiedTokens;
use tokio::sync::{Mutex, RwLock};

/// `iss` of every access token.
pub const ISSUER: &str = "partnerhub-identity";
/// `aud` of every access token.
pub const AUDIENCE: &str = "partnerhub";
/// Verified tokens remembered per verifier (one per service).
const VERIFIED_TOKENS_CACHED: usize = 10_000;

/// Who a token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// A person.
    User,
    /// A service account (client credentials).
    Service,
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// User id or service account id.
    pub sub: String,
    /// User or service account.
    pub kind: PrincipalKind,
    /// Active account id (users); absent for service accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acc: Option<String>,
    /// Role ids in the active account (users).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Location scopes: role id → location ids it is limited to (roles not
    /// listed apply to the whole company).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub scopes: std::collections::BTreeMap<String, Vec<String>>,
    /// Domain of the user's sign-in email (their own directory tenant's
    /// domain), lower case.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dom: String,
    /// Password change required: the token allows only ChangePassword and
    /// SignOut.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pcr: bool,
    /// Platform permissions (service accounts).
    #[serde(default)]
    pub perms: Vec<String>,
    /// Session id (users): the refresh-token family the token belongs to.
    /// Ending the session (sign-out, password change, reset, reuse,
    /// removal, suspension) refuses every access token that carries it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sid: String,
    /// Permissions version: bumps when role definitions change.
    #[serde(default)]
    pub pv: u32,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// Token id.
    pub jti: String,
}

/// Why a token was refused. Deliberately coarse towards clients.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Not a well-formed, correctly signed, current token of ours.
    #[error("invalid access token")]
    Invalid,
    /// The signing key is unknown even after refreshing the key set.
    #[error("unknown signing key")]
    UnknownKey,
    /// The key set could not be fetched.
    #[error("signing keys unavailable: {0}")]
    KeysUnavailable(String),
    /// The token's session has ended (or a user token names none).
    #[error("session ended")]
    SessionEnded,
    /// The token's account is suspended, merged or disabled.
    #[error("account not active")]
    AccountNotActive,
    /// Whether the session is live could not be learnt (the revocation feed
    /// is down and identity does not answer).
    #[error("session check unavailable: {0}")]
    SessionCheckUnavailable(String),
}

/// Where the verifying keys come from: identity's `GetJwks` over gRPC, or
/// identity's own key store inside identity.
pub trait KeySource: Send + Sync + 'static {
    /// Fetches the current key set.
    fn fetch(&self) -> BoxFuture<'_, anyhow::Result<Vec<Jwk>>>;
}

/// Verifies access tokens against a cached key set.
pub struct TokenVerifier {
    source: Arc<dyn KeySource>,
    keys: RwLock<HashMap<String, DecodingKey>>,
    last_refresh: Mutex<Option<Instant>>,
    min_refresh_interval: Duration,
    validation: Validation,
    verified: VerifiedTokens,
    revocations: Option<Arc<Revocations>>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier").finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// A verifier that refreshes at most once per second when it meets an
    /// unknown `kid`.
    pub fn new(source: Arc<dyn KeySource>) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 30;
        Self {
            source,
            keys: RwLock::new(HashMap::new()),
            last_refresh: Mutex::new(None),
            min_refresh_interval: Duration::from_secs(1),
            verified: VerifiedTokens::new(VERIFIED_TOKENS_CACHED, validation.leeway),
            validation,
            revocations: None,
        }
    }

    /// Also refuses tokens of ended sessions and of accounts that are not
    /// active, as `revocations` knows them, on every call (cached tokens
    /// included).
    #[must_use]
    pub fn with_revocations(mut self, revocations: Arc<Revocations>) -> Self {
        self.revocations = Some(revocations);
        self
    }

    /// Verifies signature, issuer, audience and expiry, and returns the
    /// claims. A token verified before is only checked for expiry until the
    /// key set changes.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        self.verified_as(token, VerifiedTokens::get, |cache, claims, kid| {
            cache.insert(token, &claims, kid);
            claims
        })
        .await
    }

    /// Verifies `token` as [`TokenVerifier::verify`] does and returns its
    /// caller, built once per token and shared by every call presenting it.
    pub async fn caller(&self, token: &str) -> Result<Caller, TokenError> {
        let caller = self
            .verified_as(token, VerifiedTokens::caller, |cache, claims, kid| {
                cache.insert(token, &claims, kid)
            })
            .await?;
        if let Some(revocations) = &self.revocations {
            revocations.admit(token, &caller).await?;
        }
        Ok(caller)
    }

    /// What `cached` remembers of `token`, or what `fresh` makes of its
    /// claims once the signature is checked.
    async fn verified_as<T>(
        &self,
        token: &str,
        cached: impl FnOnce(&VerifiedTokens, &str) -> Option<T>,
        fresh: impl FnOnce(&VerifiedTokens, Claims, String) -> T,
    ) -> Result<T, TokenError> {
        if token.len() > 8 * 1024 {
            return Err(TokenError::Invalid);
        }
        if let Some(known) = cached(&self.verified, token) {
            return Ok(known);
        }
        let (claims, kid) = self.verify_signed(token).await?;
        Ok(fresh(&self.verified, claims, kid))
    }

    /// The claims of a correctly signed token, and the `kid` that signed it.
    async fn verify_signed(&self, token: &str) -> Result<(Claims, String), TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Invalid);
        }
        let kid = header.kid.ok_or(TokenError::Invalid)?;
        if let Some(claims) = self.verify_with_cached(token, &kid).await? {
            return Ok((claims, kid));
        }
        self.refresh().await?;
        let claims = self
            .verify_with_cached(token, &kid)
            .await?
            .ok_or(TokenError::UnknownKey)?;
        Ok((claims, kid))
    }

    async fn verify_with_cached(
        &self,
        token: &str,
        kid: &str,
    ) -> Result<Option<Claims>, TokenError> {
        let keys = self.keys.read().await;
        let Some(key) = keys.get(kid) else {
            return Ok(None);
        };
        jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map(|data| Some(data.claims))
            .map_err(|_| TokenError::Invalid)
    }

    /// Reloads the key set, at most once per `min_refresh_interval` (tokens
    /// with made-up `kid`s must not turn into a flood of JWKS calls).
    async fn refresh(&self) -> Result<(), TokenError> {
        let mut last = self.last_refresh.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.min_refresh_interval) {
            return Ok(());
        }
        let jwks = self
            .source
            .fetch()
            .await
            .map_err(|e| TokenError::KeysUnavailable(format!("{e:#}")))?;
        let mut fresh = HashMap::new();
        for jwk in jwks {
            if let Some(key) = decoding_key(&jwk) {
                fresh.insert(jwk.kid, key);
            }
        }
        // Tokens verified with a key that is still published stay verified:
        // a token naming an unknown `kid` must not cost every other caller
        // its cached verification.
        self.verified.retain_keys(|kid| fresh.contains_key(kid));
        *self.keys.write().await = fresh;
        *last = Some(Instant::now());
        Ok(())
    }
}

/// A decoding key from an Ed25519 JWK; anything else is skipped.
fn decoding_key(jwk: &Jwk) -> Option<DecodingKey> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&jwk.x)
        .ok()?;
    // jsonwebtoken slices the first 32 bytes: refuse anything else up front.
    if jwk.kty != "OKP" || jwk.crv != "Ed25519" || raw.len() != 32 {
        return None;
    }
    DecodingKey::from_ed_components(&jwk.x).ok()
}

/// Fetches identity's key set over gRPC.
#[derive(Debug, Clone)]
pub struct GrpcKeySource {
    channel: tonic::transport::Channel,
}

impl GrpcKeySource {
    /// A source that calls identity at `url` (connected lazily).
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let channel = tonic::transport::Endpoint::from_shared(url.to_owned())?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .connect_lazy();
        Ok(Self { channel })
    }
}

impl KeySource for GrpcKeySource {
    fn fetch(&self) -> BoxFuture<'_, anyhow::Result<Vec<Jwk>>> {
        Box::pin(async move {
            use partnerhub_proto::identity::v1::{
                GetJwksRequest, auth_service_client::AuthServiceClient,
            };
            let mut client = AuthServiceClient::new(self.channel.clone());
            let response = client.get_jwks(GetJwksRequest {}).await?;
            Ok(response.into_inner().keys)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use base64::Engine;
    use ed25519_dalek::SigningKey;
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    use jsonwebtoken::{EncodingKey, Header};

    use super::*;

    /// One key, its JWK served by a counting source.
    struct CountingKeys {
        jwk: Jwk,
        fetches: AtomicUsize,
    }

    impl KeySource for CountingKeys {
        fn fetch(&self) -> BoxFuture<'_, anyhow::Result<Vec<Jwk>>> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            let jwk = self.jwk.clone();
            Box::pin(async move { Ok(vec![jwk]) })
        }
    }

    fn claims() -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: "u".into(),
            kind: PrincipalKind::User,
            acc: Some("A".into()),
            roles: vec![],
            scopes: Default::default(),
            dom: String::new(),
            pcr: false,
            sid: "s".into(),
            perms: vec![],
            pv: 1,
            iat: now,
            exp: now + 600,
            jti: uuid::Uuid::new_v4().to_string(),
        }
    }

    fn sign(key: &SigningKey, kid: &str) -> anyhow::Result<String> {
        let der = key
            .to_pkcs8_der()
            .map_err(|e| anyhow::anyhow!("pkcs8: {e}"))?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.to_owned());
        Ok(jsonwebtoken::encode(
            &header,
            &claims(),
            &EncodingKey::from_ed_der(der.as_bytes()),
        )?)
    }

    #[tokio::test]
    async fn a_burst_of_unknown_kids_neither_evicts_verified_tokens_nor_floods_the_jwks()
    -> anyhow::Result<()> {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let source = Arc::new(CountingKeys {
            jwk: Jwk {
                kid: "good".into(),
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                x: base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(key.verifying_key().to_bytes()),
                alg: "EdDSA".into(),
                key_use: "sig".into(),
            },
            fetches: AtomicUsize::new(0),
        });
        let verifier = TokenVerifier::new(source.clone());
        let good = sign(&key, "good")?;
        verifier.caller(&good).await?;
        assert!(verifier.verified.holds(&good));
        // An attacker's stream of tokens naming made-up keys, spread over
        // more than one refresh interval.
        for round in 0..3 {
            for i in 0..100 {
                let forged = sign(&key, &format!("random-{round}-{i}"))?;
                assert!(matches!(
                    verifier.caller(&forged).await,
                    Err(TokenError::UnknownKey)
                ));
            }
            if round < 2 {
                tokio::time::sleep(Duration::from_millis(600)).await;
            }
        }
        assert!(
            verifier.verified.holds(&good),
            "the verified token was evicted"
        );
        let fetches = source.fetches.load(Ordering::SeqCst);
        assert!(fetches <= 3, "{fetches} JWKS fetches for 300 unknown kids");
        Ok(())
    }
}
