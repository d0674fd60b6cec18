//! Row 5: what the auth layer does per call (verify the token with the key
//! set fetched from the suite's identity, build the caller, look the rule up,
//! check the permission), and sign-ins per second on one core (one argon2id
//! verification each).

use std::sync::Arc;
use std::time::{Duration, Instant};

use partnerhub_platform::auth::{AccessRules, Caller, GrpcKeySource, Rule, TokenVerifier};

const PATH: &str = "/partnerhub.profile.v1.LegalProfileService/GetLegalProfile";

/// Mean time of one auth check over `calls` checks of `token`.
pub async fn per_call(identity_url: &str, token: &str, calls: u32) -> anyhow::Result<Duration> {
    let verifier = TokenVerifier::new(Arc::new(GrpcKeySource::new(identity_url)?));
    let rules = AccessRules::builtin();
    verifier.caller(token).await?; // fetch the key set once
    let started = Instant::now();
    for _ in 0..calls {
        // As the auth layer: the caller is built once per token and shared.
        let caller: Caller = verifier.caller(token).await?;
        let allowed = match rules.rule(PATH) {
            Some(Rule::Permission(permission)) => caller.has(permission),
            _ => false,
        };
        anyhow::ensure!(allowed, "the bench token may not read legal profiles");
    }
    Ok(started.elapsed() / calls.max(1))
}

/// Sign-ins per second on one core: `rounds` argon2id verifications in a row.
pub async fn sign_ins_per_second(rounds: u32) -> anyhow::Result<f64> {
    let password = partnerhub_testkit::clients::FOUNDER_PASSWORD;
    let hash = partnerhub_identity::password::hash(password.into()).await?;
    let started = Instant::now();
    for _ in 0..rounds {
        let ok = partnerhub_identity::password::verify(password.into(), Some(hash.clone())).await?;
        anyhow::ensure!(ok, "the password did not verify");
    }
    Ok(f64::from(rounds) / started.elapsed().as_secs_f64())
}
