//! Every non-public RPC of every service refuses a bad access token with
//! UNAUTHENTICATED: none at all, expired, signed by another Ed25519 key
//! (under identity's `kid` or an unknown one), `alg: none`, HS256 keyed with
//! identity's public key, another audience or issuer, a payload changed
//! under a kept signature, a cut signature, a refresh token, and garbage.
//! The same RPCs accept a token minted with identity's real key from the
//! same claims, so each refusal is the defect's doing.
//!
//! A reused refresh token revoking its family is proven in identity's own
//! tests (`refresh_tokens_rotate_and_a_reused_one_revokes_the_whole_family`
//! in `services/identity/tests/auth.rs`); a suspended account's refresh
//! token and sign-in are refused there too (access tokens are stateless and
//! live out their short lifetime).

use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use partnerhub_identity::keys::Keys;
use partnerhub_platform::auth::Claims;
use partnerhub_proto::identity::v1::{SignInRequest, auth_service_client::AuthServiceClient};
use partnerhub_testkit::clients::FOUNDER_PASSWORD;
use partnerhub_testkit::{Company, IDENTITY_TEST_KEK, Suite};
use tonic::Code;

use crate::common::sign_up;
use crate::rpcs::{self, Descriptors};

/// The three dot-separated parts of a compact JWT.
fn parts(token: &str) -> anyhow::Result<[&str; 3]> {
    let mut it = token.split('.');
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some(h), Some(p), Some(s), None) => Ok([h, p, s]),
        _ => anyhow::bail!("not a compact JWT: {token}"),
    }
}

/// The decoded JSON of a base64url part.
fn json_of(part: &str) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part)?)?)
}

/// A JWT with the given header and claims and a raw signature, by hand.
fn compact(header: &serde_json::Value, claims: &serde_json::Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
    )
}

/// Signs `claims` with a fresh Ed25519 key that identity never published.
fn sign_with_stranger(claims: &Claims, kid: &str) -> anyhow::Result<String> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let der = key
        .to_pkcs8_der()
        .map_err(|e| anyhow::anyhow!("pkcs8: {e}"))?;
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    Ok(jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_ed_der(der.as_bytes()),
    )?)
}

/// Identity's public key for `kid`, raw bytes, from its JWK set.
async fn public_key(suite: &Suite, kid: &str) -> anyhow::Result<Vec<u8>> {
    let keys = AuthServiceClient::new(Suite::channel(suite.identity)?)
        .get_jwks(partnerhub_proto::identity::v1::GetJwksRequest {})
        .await?
        .into_inner()
        .keys;
    let jwk = keys
        .iter()
        .find(|k| k.kid == kid)
        .with_context(|| format!("no JWK for {kid}"))?;
    Ok(URL_SAFE_NO_PAD.decode(&jwk.x)?)
}

/// A refresh token of `company`'s founder (from a fresh sign-in).
async fn refresh_token(suite: &Suite, company: &Company) -> anyhow::Result<String> {
    Ok(AuthServiceClient::new(Suite::channel(suite.identity)?)
        .sign_in(SignInRequest {
            email: company.email.clone(),
            password: FOUNDER_PASSWORD.into(),
            account: String::new(),
        })
        .await?
        .into_inner()
        .refresh_token)
}

/// Each bad token by what is wrong with it (`None`: no token at all).
async fn bad_tokens(
    suite: &Suite,
    keys: &Keys,
    founder: &Company,
    other: &Company,
) -> anyhow::Result<Vec<(&'static str, Option<String>)>> {
    let [header, payload, signature] = parts(&founder.token)?;
    let header = json_of(header)?;
    let kid = header["kid"].as_str().context("no kid")?.to_owned();
    let claims: Claims = serde_json::from_value(json_of(payload)?)?;
    let now = chrono::Utc::now().timestamp();
    let with = |change: &dyn Fn(&mut Claims)| {
        let mut c = claims.clone();
        c.iat = now;
        c.exp = now + 600;
        change(&mut c);
        c
    };
    let mut tampered = json_of(payload)?;
    tampered["acc"] = other.account_id().into();
    let hs256 = {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(kid.clone());
        let secret = public_key(suite, &kid).await?;
        jsonwebtoken::encode(&h, &with(&|_| {}), &EncodingKey::from_secret(&secret))?
    };
    let unsigned = serde_json::json!({ "alg": "none", "typ": "JWT", "kid": kid });
    Ok(vec![
        ("no token", None),
        (
            "expired",
            Some(
                keys.sign(&with(&|c| {
                    c.iat = now - 4000;
                    c.exp = now - 3600;
                }))
                .await?,
            ),
        ),
        (
            "another audience",
            Some(
                keys.sign(&with(&|c| c.aud = "partnerhub-admin".into()))
                    .await?,
            ),
        ),
        (
            "another issuer",
            Some(
                keys.sign(&with(&|c| c.iss = "evil-identity".into()))
                    .await?,
            ),
        ),
        (
            "another key, same kid",
            Some(sign_with_stranger(&with(&|_| {}), &kid)?),
        ),
        (
            "another key, unknown kid",
            Some(sign_with_stranger(
                &with(&|_| {}),
                &uuid::Uuid::new_v4().simple().to_string(),
            )?),
        ),
        (
            "alg none",
            Some(compact(
                &unsigned,
                &serde_json::to_value(with(&|_| {}))?,
                "",
            )),
        ),
        ("HS256 keyed with the public key", Some(hs256)),
        (
            "payload changed, signature kept",
            Some(compact(&header, &tampered, signature)),
        ),
        (
            "signature cut short",
            Some(founder.token[..founder.token.len() - 4].to_owned()),
        ),
        ("refresh token", Some(refresh_token(suite, founder).await?)),
        ("garbage", Some("not.a.jwt".to_owned())),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_non_public_rpc_refuses_every_kind_of_bad_token() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    suite.wait_serving().await?;
    let founder = sign_up(&suite).await?;
    let other = sign_up(&suite).await?;
    let keys = Keys::new(
        suite.pool("identity").await?,
        IDENTITY_TEST_KEK,
        Duration::from_secs(30 * 86_400),
        Duration::from_secs(900),
    );
    let tokens = bad_tokens(&suite, &keys, &founder, &other).await?;
    // Control: the same claims signed by identity's real key pass.
    let claims: Claims = serde_json::from_value(json_of(parts(&founder.token)?[1])?)?;
    let good = keys
        .sign(&Claims {
            iat: chrono::Utc::now().timestamp(),
            exp: chrono::Utc::now().timestamp() + 600,
            ..claims
        })
        .await?;

    let descriptors = Descriptors::builtin()?;
    let mut tried = 0;
    let mut covered = 0;
    let mut bad = Vec::new();
    for rpc in descriptors.rpcs().into_iter().filter(|r| !r.is_public()) {
        let channel = rpc.channel(&suite)?;
        let control = rpcs::call(&channel, &rpc.path, Some(&good), Vec::new()).await?;
        if let Err(status) = &control
            && status.code() == Code::Unauthenticated
        {
            bad.push(format!("{} refused a valid token: {status:?}", rpc.path));
        }
        for (kind, token) in &tokens {
            let outcome = rpcs::call(&channel, &rpc.path, token.as_deref(), Vec::new()).await?;
            tried += 1;
            let code = outcome.as_ref().err().map(tonic::Status::code);
            if code != Some(Code::Unauthenticated) {
                bad.push(format!("{} with {kind}: {code:?}", rpc.path));
            }
        }
        covered += 1;
    }
    println!(
        "bad tokens: {covered} RPCs x {} token kinds = {tried} calls",
        tokens.len()
    );
    assert!(covered >= 60, "only {covered} non-public RPCs");
    assert!(
        bad.is_empty(),
        "{} of {tried} calls were not refused as they should be:\n{}",
        bad.len(),
        bad.join("\n")
    );
    suite.stop().await
}
