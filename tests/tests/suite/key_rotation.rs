//! Keys rotate without downtime. Signing keys: while a retired key's tokens
//! are still valid, identity publishes both keys, services accept both, and
//! new tokens carry the new `kid`. Profile's encryption keys: a replica with
//! `[k2, k1]` starts beside the one with `[k1]`, reads what `k1` sealed and
//! seals new values with `k2`; the `[k1]` replica stops while calls keep
//! succeeding; a `[k2]` replica then reads the new values. Notification's
//! keys: mail queued under `[k1]` is sent by a `[k2, k1]` replica, mail
//! queued by that one under `k2` is sent by a `[k2]` replica.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use partnerhub_proto::identity::v1::{
    GetJwksRequest, RequestPasswordResetRequest, auth_service_client::AuthServiceClient,
};
use partnerhub_proto::profile::v1::{
    CreatePayoutProfileRequest, CreateTaxProfileRequest, GetLegalProfileRequest,
    GetPayoutProfileRequest, PayoutMethod, PayoutProfile, ProgramKind, TaxEntityType, TaxForm,
    TaxProfile, legal_profile_service_client::LegalProfileServiceClient,
    payout_service_client::PayoutServiceClient,
};
use partnerhub_testkit::clients;
use partnerhub_testkit::{Company, PROFILE_TEST_KEYS, Suite, SuiteOptions, eventually};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::common::with_token;

/// A French IBAN, sealed under the first key.
const OLD_IBAN: &str = "FR7630006000011234567890189";
/// Another French IBAN (payouts stay in the legal country), sealed under
/// the second key.
const NEW_IBAN: &str = "FR1420041010050500013M02606";
/// The second key (profile's test key is `t1`).
const K2: &str = "k2:HxwdHhscGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=";

/// The `kid` in a JWT's header.
fn kid(token: &str) -> anyhow::Result<String> {
    let header = token.split('.').next().unwrap_or_default();
    let json: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header)?)?;
    Ok(json["kid"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn old_tokens_keep_working_while_new_ones_use_the_new_signing_key() -> anyhow::Result<()> {
    let suite = Suite::start_with(SuiteOptions {
        identity_key_rotation: Some(Duration::from_secs(2)),
        ..SuiteOptions::default()
    })
    .await?;
    suite.wait_serving().await?;
    let before = clients::enrolled(&suite, "Contoso", ProgramKind::Partner).await?;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let after = clients::sign_up(&suite, "Fabrikam").await?;
    let (old_kid, new_kid) = (kid(&before.token)?, kid(&after.token)?);
    assert_ne!(old_kid, new_kid, "the new token is signed by the new key");

    // Both keys are published while the old one's tokens are valid.
    let jwks = AuthServiceClient::new(Suite::channel(suite.identity)?)
        .get_jwks(GetJwksRequest {})
        .await?
        .into_inner();
    let kids: Vec<&str> = jwks.keys.iter().map(|k| k.kid.as_str()).collect();
    assert!(
        kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()),
        "{kids:?}"
    );
    // Profile, which cached only the old key, accepts both tokens.
    let mut legal = LegalProfileServiceClient::new(Suite::channel(suite.profile)?);
    for company in [&before, &after] {
        let name = format!("{}/legalProfile", company.account);
        let answer = legal
            .get_legal_profile(with_token(&company.token, GetLegalProfileRequest { name })?)
            .await;
        // Fabrikam is not enrolled: NOT_FOUND, but authenticated.
        let code = answer.err().map(|s| s.code());
        assert!(
            code.is_none() || code == Some(tonic::Code::NotFound),
            "{code:?}"
        );
    }
    suite.stop().await
}

/// A payout profile with `iban` for `company`, through `profile`.
async fn create_payout(
    profile: std::net::SocketAddr,
    company: &Company,
    iban: &str,
    swift_bic: &str,
) -> anyhow::Result<String> {
    let created = PayoutServiceClient::new(Suite::channel(profile)?)
        .create_payout_profile(with_token(
            &company.token,
            CreatePayoutProfileRequest {
                parent: company.account.clone(),
                payout_profile: Some(PayoutProfile {
                    method: PayoutMethod::BankAccount.into(),
                    account_holder_name: "Contoso SAS".into(),
                    iban: iban.into(),
                    swift_bic: swift_bic.into(),
                    bank_country: iban[..2].into(),
                    ..PayoutProfile::default()
                }),
                request_id: String::new(),
            },
        )?)
        .await?
        .into_inner();
    Ok(created.name)
}

/// The payout profile `name` as `company` reads it through `profile`.
async fn read_payout(
    profile: std::net::SocketAddr,
    company: &Company,
    name: &str,
) -> anyhow::Result<PayoutProfile> {
    Ok(PayoutServiceClient::new(Suite::channel(profile)?)
        .get_payout_profile(with_token(
            &company.token,
            GetPayoutProfileRequest { name: name.into() },
        )?)
        .await?
        .into_inner())
}

/// The key id stored with each payout profile, by id.
async fn key_ids(suite: &Suite) -> anyhow::Result<Vec<(String, String)>> {
    let pool = suite.pool("profile").await?;
    let rows = sqlx::query_as("SELECT id::text, key_id FROM payout_profiles ORDER BY created_at")
        .fetch_all(&pool)
        .await?;
    pool.close().await;
    Ok(rows)
}

#[tokio::test]
async fn profile_encryption_keys_rotate_while_calls_keep_succeeding() -> anyhow::Result<()> {
    let mut suite = Suite::start().await?;
    suite.wait_serving().await?;
    let company = clients::enrolled(&suite, "Contoso", ProgramKind::Partner).await?;
    PayoutServiceClient::new(Suite::channel(suite.profile)?)
        .create_tax_profile(with_token(
            &company.token,
            CreateTaxProfileRequest {
                parent: company.account.clone(),
                tax_profile: Some(TaxProfile {
                    entity_type: TaxEntityType::Corporation.into(),
                    tax_form: TaxForm::W8benE.into(),
                    country: "FR".into(),
                    tax_identifier: "FR40303265045".into(),
                    ..TaxProfile::default()
                }),
            },
        )?)
        .await?;
    // Written under [k1] (the suite's `t1`).
    let k1 = PROFILE_TEST_KEYS;
    let old = create_payout(suite.profile, &company, OLD_IBAN, "BNPAFRPP").await?;

    // A replica with [k2, k1] starts beside it; both serve.
    let both = suite.start_profile_replica(&format!("{K2},{k1}")).await?;
    assert_eq!(read_payout(both.addr, &company, &old).await?.iban, OLD_IBAN);
    let new = create_payout(both.addr, &company, NEW_IBAN, "PSSTFRPPXXX").await?;
    assert_eq!(read_payout(both.addr, &company, &new).await?.iban, NEW_IBAN);
    let ids = key_ids(&suite).await?;
    let kids: Vec<&str> = ids.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(kids, ["t1", "k2"], "old value under k1, new under k2");

    // The [k1] replica stops while a client keeps calling the new one.
    let stop = Arc::new(AtomicBool::new(false));
    let caller = {
        let (stop, company, old) = (stop.clone(), company.clone(), old.clone());
        let addr = both.addr;
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, 0u32);
            while !stop.load(Ordering::Relaxed) {
                match read_payout(addr, &company, &old).await {
                    Ok(p) if p.iban == OLD_IBAN => ok += 1,
                    _ => failed += 1,
                }
            }
            (ok, failed)
        })
    };
    suite.stop_service("profile").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = caller.await?;
    assert!(
        ok > 0 && failed == 0,
        "{ok} calls succeeded, {failed} failed"
    );

    // Once every value is under k2, a replica with [k2] alone reads the new
    // value; the old one, whose key it no longer has, is shown masked,
    // never wrong.
    let only = suite.start_profile_replica(K2).await?;
    assert_eq!(read_payout(only.addr, &company, &new).await?.iban, NEW_IBAN);
    let unreadable = read_payout(only.addr, &company, &old).await?;
    assert!(
        unreadable.masked && unreadable.iban.ends_with("0189") && unreadable.iban.starts_with('*'),
        "{unreadable:?}"
    );
    both.stop().await?;
    only.stop().await?;
    suite.stop().await
}

/// Asks identity to mail `email` a password-reset token.
async fn request_reset(suite: &Suite, email: &str) -> anyhow::Result<()> {
    AuthServiceClient::new(Suite::channel(suite.identity)?)
        .request_password_reset(RequestPasswordResetRequest {
            email: email.into(),
        })
        .await?;
    Ok(())
}

/// Waits until the reset mail to `email` was tried at least once and is
/// still queued (the relay refused it).
async fn tried_and_queued(suite: &Suite, email: &str) -> anyhow::Result<()> {
    let pool = suite.pool("notification").await?;
    eventually(Duration::from_secs(20), || async {
        let row: Option<(i32, String)> = sqlx::query_as(
            "SELECT attempts, status FROM deliveries
             WHERE recipient = $1 AND template = 'identity.password_reset'",
        )
        .bind(email)
        .fetch_optional(&pool)
        .await
        .ok()?;
        row.filter(|(attempts, status)| *attempts >= 1 && status == "QUEUED")
            .map(drop)
    })
    .await?;
    pool.close().await;
    Ok(())
}

/// The key id sealing the queued reset mail to `email`.
async fn sealed_with(suite: &Suite, email: &str) -> anyhow::Result<Option<String>> {
    let pool = suite.pool("notification").await?;
    let kid = sqlx::query_scalar(
        "SELECT sealed_kid FROM deliveries
         WHERE recipient = $1 AND template = 'identity.password_reset' AND status = 'QUEUED'",
    )
    .bind(email)
    .fetch_optional(&pool)
    .await?
    .flatten();
    pool.close().await;
    Ok(kid)
}

/// Waits for the reset mail to `email` and checks it carries its link.
async fn reset_mail_arrives(suite: &Suite, email: &str) -> anyhow::Result<()> {
    let mail = suite.smtp.next_to(email, Duration::from_secs(30)).await?;
    anyhow::ensure!(
        mail.text.contains("/password/reset?token="),
        "not the reset mail: {}",
        mail.subject
    );
    Ok(())
}

#[tokio::test]
async fn notification_encryption_keys_rotate_without_losing_queued_mail() -> anyhow::Result<()> {
    let mut suite = Suite::start_with(SuiteOptions {
        notification_max_attempts: Some(50),
        ..SuiteOptions::default()
    })
    .await?;
    suite.wait_serving().await?;
    let first = clients::sign_up(&suite, "Contoso").await?;
    let second = clients::sign_up(&suite, "Fabrikam").await?;
    for company in [&first, &second] {
        // The welcome mail.
        suite
            .smtp
            .next_to(&company.email, Duration::from_secs(30))
            .await?;
    }

    // A mail queued under [k1] while the relay refuses it; the [k1]
    // replica stops before it could send it.
    suite.smtp.fail_next(5, 451, "try again later");
    request_reset(&suite, &first.email).await?;
    tried_and_queued(&suite, &first.email).await?;
    suite.stop_notification().await?;
    assert_eq!(
        sealed_with(&suite, &first.email).await?.as_deref(),
        Some("t1")
    );

    // A [k2, k1] replica opens it and sends it; what it queues itself is
    // sealed with k2.
    let both = suite
        .start_notification_replica(&format!("{K2},{PROFILE_TEST_KEYS}"))
        .await?;
    reset_mail_arrives(&suite, &first.email).await?;
    suite.smtp.fail_next(5, 451, "try again later");
    request_reset(&suite, &second.email).await?;
    tried_and_queued(&suite, &second.email).await?;
    both.stop().await?;
    assert_eq!(
        sealed_with(&suite, &second.email).await?.as_deref(),
        Some("k2")
    );

    // A [k2] replica alone sends what k2 sealed.
    let only = suite.start_notification_replica(K2).await?;
    reset_mail_arrives(&suite, &second.email).await?;
    only.stop().await?;
    suite.stop().await
}
