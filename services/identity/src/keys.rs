//! The Ed25519 keys that sign access tokens. Private keys are sealed with
//! AES-256-GCM under the deployment's key-encryption key and stored in the
//! database, so replicas share them; each key signs for `key_rotation`, then
//! a new one takes over and the old public key keeps verifying until every
//! token it signed has expired.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use futures::future::BoxFuture;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use partnerhub_platform::auth::{Claims, KeySource};
use partnerhub_platform::crypto::Sealer;
use partnerhub_proto::identity::v1::Jwk;
use sqlx::PgPool;
use tokio::sync::Mutex;

/// Id of the key-encryption key in the keyring (one key: the stored
/// format, nonce and ciphertext bound to the `kid`, has no key id).
const KEK_ID: &str = "kek";

/// The signing key in use.
struct Active {
    kid: String,
    key: EncodingKey,
    retire_after: DateTime<Utc>,
}

/// Signing keys of identity.
pub struct Keys {
    pool: PgPool,
    sealer: Sealer,
    rotation: Duration,
    token_ttl: Duration,
    active: Mutex<Option<Active>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").finish_non_exhaustive()
    }
}

impl Keys {
    /// Keys sealed under `kek`; an active key is found or made on first use.
    pub fn new(pool: PgPool, kek: [u8; 32], rotation: Duration, token_ttl: Duration) -> Arc<Self> {
        Arc::new(Self {
            pool,
            sealer: Sealer::single(KEK_ID, kek),
            rotation,
            token_ttl,
            active: Mutex::new(None),
        })
    }

    /// A random key-encryption key, for a single process without one
    /// configured.
    pub fn ephemeral_kek() -> [u8; 32] {
        Sealer::random_key()
    }

    /// Signs `claims` with the active key (rotating it when due).
    pub async fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        let mut active = self.active.lock().await;
        let due = active.as_ref().is_none_or(|a| a.retire_after <= Utc::now());
        if due {
            *active = Some(self.find_or_create().await?);
        }
        let Some(active) = active.as_ref() else {
            anyhow::bail!("no signing key");
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(active.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &active.key)?)
    }

    /// The public keys that still verify tokens.
    pub async fn jwks(&self) -> anyhow::Result<Vec<Jwk>> {
        let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT kid, public_key FROM signing_keys WHERE expires_at > now() ORDER BY created_at DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(kid, public)| Jwk {
                kid,
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                x: URL_SAFE_NO_PAD.encode(public),
                alg: "EdDSA".into(),
                key_use: "sig".into(),
            })
            .collect())
    }

    /// The newest key that is still signing and that this deployment's KEK
    /// can open, or a new one.
    async fn find_or_create(&self) -> anyhow::Result<Active> {
        let rows: Vec<(String, Vec<u8>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT kid, sealed_secret, retire_after FROM signing_keys
             WHERE retire_after > now() ORDER BY created_at DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        for (kid, sealed, retire_after) in rows {
            if let Some(secret) = self.open(&kid, &sealed) {
                return active(kid, &secret, retire_after);
            }
        }
        self.create().await
    }

    async fn create(&self) -> anyhow::Result<Active> {
        let signing = SigningKey::generate(&mut rand::rngs::OsRng);
        let kid = uuid::Uuid::now_v7().simple().to_string();
        let now = Utc::now();
        let retire_after = now + self.rotation;
        // Verifiable until the last token it signed has expired, plus a day.
        let expires_at = retire_after + self.token_ttl + Duration::from_secs(86_400);
        let sealed = self.seal(&kid, &signing.to_bytes())?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, public_key, sealed_secret, retire_after, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&kid)
        .bind(signing.verifying_key().to_bytes().to_vec())
        .bind(sealed)
        .bind(retire_after)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        tracing::info!(%kid, "Created a new token signing key.");
        active(kid, &signing.to_bytes(), retire_after)
    }

    fn seal(&self, kid: &str, secret: &[u8; 32]) -> anyhow::Result<Vec<u8>> {
        let (_, sealed) = self
            .sealer
            .seal(secret, kid.as_bytes())
            .map_err(|e| anyhow::anyhow!("cannot seal the signing key: {e}"))?;
        Ok(sealed)
    }

    fn open(&self, kid: &str, sealed: &[u8]) -> Option<[u8; 32]> {
        self.sealer
            .open(KEK_ID, sealed, kid.as_bytes())?
            .try_into()
            .ok()
    }
}

fn active(kid: String, secret: &[u8; 32], retire_after: DateTime<Utc>) -> anyhow::Result<Active> {
    let der = SigningKey::from_bytes(secret)
        .to_pkcs8_der()
        .map_err(|e| anyhow::anyhow!("pkcs8: {e}"))?;
    Ok(Active {
        kid,
        key: EncodingKey::from_ed_der(der.as_bytes()),
        retire_after,
    })
}

/// Identity verifies its own tokens from its own key store.
#[derive(Debug, Clone)]
pub struct LocalKeys(pub Arc<Keys>);

impl KeySource for LocalKeys {
    fn fetch(&self) -> BoxFuture<'_, anyhow::Result<Vec<Jwk>>> {
        Box::pin(self.0.jwks())
    }
}
