//! The cost of authentication: token verification per call (signature,
//! claims, caller and rule lookup, as the auth layer does it) and sign-ins
//! per second per core (one argon2id verification each).
//!
//! Run: `cargo bench -p partnerhub-identity --bench auth`

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use futures::future::BoxFuture;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use partnerhub_platform::auth::{
    AUDIENCE, AccessRules, Caller, Claims, ISSUER, KeySource, PrincipalKind, TokenVerifier,
};
use partnerhub_proto::identity::v1::Jwk;

struct StaticKeys(Vec<Jwk>);

impl KeySource for StaticKeys {
    fn fetch(&self) -> BoxFuture<'_, anyhow::Result<Vec<Jwk>>> {
        let keys = self.0.clone();
        Box::pin(async move { Ok(keys) })
    }
}

fn token(signing: &SigningKey) -> anyhow::Result<String> {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        sub: uuid::Uuid::now_v7().to_string(),
        kind: PrincipalKind::User,
        acc: Some(uuid::Uuid::now_v7().to_string()),
        roles: vec!["global_admin".into(), "admin_agent".into(), "owner".into()],
        scopes: Default::default(),
        pcr: false,
        dom: "contoso.com".into(),
        sid: uuid::Uuid::now_v7().to_string(),
        perms: vec![],
        pv: 1,
        iat: now,
        exp: now + 900,
        jti: uuid::Uuid::new_v4().to_string(),
    };
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("bench".into());
    let key = EncodingKey::from_ed_der(
        signing
            .to_pkcs8_der()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .as_bytes(),
    );
    Ok(jsonwebtoken::encode(&header, &claims, &key)?)
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let signing = SigningKey::generate(&mut rand::rngs::OsRng);
        let jwk = Jwk {
            kid: "bench".into(),
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(signing.verifying_key().to_bytes()),
            alg: "EdDSA".into(),
            key_use: "sig".into(),
        };
        let verifier = TokenVerifier::new(Arc::new(StaticKeys(vec![jwk])));
        let rules = AccessRules::builtin();
        let path = "/partnerhub.profile.v1.LegalProfileService/GetLegalProfile";
        let token = token(&signing)?;
        verifier.verify(&token).await?; // warm the key cache

        let calls = 20_000u32;
        let started = Instant::now();
        for _ in 0..calls {
            // As the auth layer: the caller is built once per token and shared.
            let caller: Caller = verifier.caller(&token).await?;
            let rule = rules.rule(path);
            std::hint::black_box((caller, rule));
        }
        let per_call = started.elapsed() / calls;

        let hash = partnerhub_identity::password::hash("analytical engine 1843".into()).await?;
        let sign_ins = 30u32;
        let started = Instant::now();
        for _ in 0..sign_ins {
            // One sign-in is one argon2id verification on one core.
            let ok = partnerhub_identity::password::verify(
                "analytical engine 1843".into(),
                Some(hash.clone()),
            )
            .await?;
            assert!(ok);
        }
        let per_sign_in = started.elapsed() / sign_ins;
        let per_second = Duration::from_secs(1).as_secs_f64() / per_sign_in.as_secs_f64();

        println!("{:<46} {:>12}", "measure", "value");
        println!(
            "{:<46} {:>9.1} µs",
            "token verification + caller + rule, per call",
            per_call.as_secs_f64() * 1e6
        );
        println!(
            "{:<46} {:>9.0} /s",
            "auth checks per second per core",
            1.0 / per_call.as_secs_f64()
        );
        println!(
            "{:<46} {:>9.1} ms",
            "argon2id verification (one sign-in)",
            per_sign_in.as_secs_f64() * 1e3
        );
        println!(
            "{:<46} {:>9.1} /s",
            "sign-ins per second per core", per_second
        );
        println!(
            "{:<46} {:>9.0} ×",
            "one sign-in costs this many auth checks",
            per_sign_in.as_secs_f64() / per_call.as_secs_f64()
        );
        Ok(())
    })
}
