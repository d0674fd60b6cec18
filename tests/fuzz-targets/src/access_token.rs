//! Access-token verification with a fixed key set (one Ed25519 key, kid
//! `fuzz-key`). The first byte picks the mode:
//!
//! - 0: the rest is the token, as a client would send it. Property: an
//!   accepted token carries a valid signature of that key over its first two
//!   parts, and current claims of our issuer and audience.
//! - 1: the rest is the claims JSON, signed correctly with the usual header.
//!   Property: accepted claims are exactly the payload's, of our issuer and
//!   audience, not expired.
//! - 2: the rest is `header\nclaims`, both JSON, signed correctly. Property:
//!   only an EdDSA header naming our key is accepted.

use std::sync::{Arc, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier};
use futures::future::BoxFuture;
use partnerhub_platform::auth::{AUDIENCE, Claims, ISSUER, KeySource, TokenVerifier};
use partnerhub_proto::identity::v1::Jwk;

use crate::{selector, split_once, text};

/// The `kid` of the only key.
pub const KID: &str = "fuzz-key";
/// The header identity puts on its tokens (with [`KID`]).
pub const HEADER: &str = r#"{"typ":"JWT","alg":"EdDSA","kid":"fuzz-key"}"#;
/// Seconds of clock skew the verifier tolerates.
const LEEWAY: i64 = 30;

/// The fixed signing key (its secret is no secret: it signs fuzz inputs).
pub fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[0x5a; 32])
}

/// A key set of one key.
struct FixedKeys;

impl KeySource for FixedKeys {
    fn fetch(&self) -> BoxFuture<'_, anyhow::Result<Vec<Jwk>>> {
        let x = URL_SAFE_NO_PAD.encode(signing_key().verifying_key().as_bytes());
        Box::pin(async move {
            Ok(vec![Jwk {
                kid: KID.into(),
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                x,
                alg: "EdDSA".into(),
                key_use: "sig".into(),
            }])
        })
    }
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    verifier: TokenVerifier,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| Fixture {
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a Tokio runtime for the verifier"),
        verifier: TokenVerifier::new(Arc::new(FixedKeys)),
    })
}

/// The claims of `token` when the verifier (with the fixed key set) accepts
/// it.
pub fn verify(token: &str) -> Option<Claims> {
    let f = fixture();
    f.runtime.block_on(f.verifier.verify(token)).ok()
}

/// `header.payload.signature`, signed with [`signing_key`].
pub fn sign(header: &[u8], payload: &[u8]) -> String {
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = signing_key().sign(signed.as_bytes());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// Verifies a token made from `data`.
pub fn run(data: &[u8]) {
    let (mode, rest) = selector(data);
    match mode % 3 {
        0 => from_client(&text(rest)),
        1 => signed_claims(rest),
        _ => signed_header_and_claims(&text(rest)),
    }
}

fn current(claims: &Claims) {
    assert_eq!(claims.iss, ISSUER);
    assert_eq!(claims.aud, AUDIENCE);
    let now = chrono::Utc::now().timestamp();
    assert!(
        claims.exp.saturating_add(LEEWAY) >= now,
        "an expired token was accepted: {claims:?}"
    );
}

fn from_client(token: &str) {
    let Some(claims) = verify(token) else {
        return;
    };
    current(&claims);
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts.as_slice() else {
        panic!("a token of {} parts was accepted", parts.len());
    };
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .ok()
        .and_then(|bytes| Signature::from_slice(&bytes).ok())
        .unwrap_or_else(|| panic!("accepted with an unreadable signature: {token:?}"));
    let message = format!("{header}.{payload}");
    assert!(
        signing_key()
            .verifying_key()
            .verify(message.as_bytes(), &signature)
            .is_ok(),
        "accepted without our signature: {token:?}"
    );
}

fn signed_claims(payload: &[u8]) {
    let Some(claims) = verify(&sign(HEADER.as_bytes(), payload)) else {
        return;
    };
    current(&claims);
    let parsed: Claims = serde_json::from_slice(payload)
        .unwrap_or_else(|e| panic!("accepted claims that do not parse ({e}): {payload:?}"));
    assert_eq!(parsed, claims, "the claims returned are not the payload's");
}

fn signed_header_and_claims(input: &str) {
    let (header, payload) = split_once(input, '\n');
    let Some(claims) = verify(&sign(header.as_bytes(), payload.as_bytes())) else {
        return;
    };
    current(&claims);
    let header: serde_json::Value = serde_json::from_str(header)
        .unwrap_or_else(|e| panic!("accepted a header that does not parse ({e}): {header:?}"));
    assert_eq!(header["alg"], "EdDSA", "accepted header {header}");
    assert_eq!(header["kid"], KID, "accepted header {header}");
}
