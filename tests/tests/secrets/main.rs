//! Secrets never leak: a whole story runs while every log line of the process
//! (TRACE for partnerhub, DEBUG for libraries) and every message on the
//! events and commands exchanges is captured; then every secret the story
//! used is searched for there and in every stored row. Its own test binary,
//! so that it owns the process's log subscriber.

mod at_rest;
mod capture;
mod scan;
mod story;

use std::time::Duration;

use base64::Engine;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use partnerhub_platform::crypto::Sealer;
use partnerhub_testkit::{IDENTITY_TEST_KEK, PROFILE_TEST_KEYS, Suite};

use capture::{BusTap, LogBuffer, Tapped};
use scan::{Secret, hits};
use story::{BBAN, IBAN, TIN, Used};

/// Every secret of the story, with the keys of the deployment: identity's
/// signing keys (opened from the database with the test KEK), the KEK, and
/// the key sealing profile's numbers and notification's queued mail.
async fn secrets_of(suite: &Suite, used: &Used) -> anyhow::Result<Vec<Secret>> {
    let mut secrets = Vec::new();
    for (i, p) in used.passwords.iter().enumerate() {
        secrets.push(Secret::text("password", format!("#{i}"), p));
    }
    for (i, s) in used.client_secrets.iter().enumerate() {
        secrets.push(Secret::text("client secret", format!("#{i}"), s));
    }
    for (i, t) in used.access_tokens.iter().enumerate() {
        secrets.push(Secret::jwt("access token", format!("#{i}"), t));
    }
    for (i, t) in used.refresh_tokens.iter().enumerate() {
        secrets.push(Secret::text("refresh token", format!("#{i}"), t));
    }
    for (what, t) in &used.mailed {
        secrets.push(Secret::text("mailed token", *what, t));
    }
    for (what, n) in [("IBAN", IBAN), ("BBAN", BBAN), ("tax number", TIN)] {
        secrets.push(Secret::text("bank or tax number", what, n));
    }
    let pool = suite.pool("identity").await?;
    let keys: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT kid, sealed_secret FROM signing_keys")
            .fetch_all(&pool)
            .await?;
    pool.close().await;
    anyhow::ensure!(!keys.is_empty(), "identity stored no signing key");
    let kek = Sealer::single("kek", IDENTITY_TEST_KEK);
    for (kid, sealed) in keys {
        let seed: [u8; 32] = kek
            .open("kek", &sealed, kid.as_bytes())
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| anyhow::anyhow!("signing key {kid} does not open with the KEK"))?;
        let der = SigningKey::from_bytes(&seed)
            .to_pkcs8_der()
            .map_err(|e| anyhow::anyhow!("pkcs8: {e}"))?;
        secrets.push(Secret::key("signing key", kid.clone(), &seed));
        secrets.push(Secret::key("signing key (PKCS#8)", kid, der.as_bytes()));
    }
    secrets.push(Secret::key(
        "key-encryption key",
        "identity",
        &IDENTITY_TEST_KEK,
    ));
    for (kid, b64) in PROFILE_TEST_KEYS
        .split(',')
        .filter_map(|k| k.split_once(':'))
    {
        let raw = base64::engine::general_purpose::STANDARD.decode(b64)?;
        secrets.push(Secret::key("encryption key", kid, &raw));
    }
    let short: Vec<_> = secrets.iter().filter(|s| s.shortest_form() < 12).collect();
    anyhow::ensure!(
        short.is_empty(),
        "needles too short to mean anything: {short:?}"
    );
    Ok(secrets)
}

/// The places a message shows: its payload and its properties (headers).
fn places(messages: &[Tapped]) -> Vec<(String, &[u8])> {
    messages
        .iter()
        .flat_map(|m| {
            let at = format!("{} {}", m.exchange, m.routing_key);
            [
                (format!("{at} payload"), m.payload.as_slice()),
                (format!("{at} headers"), m.properties.as_bytes()),
            ]
        })
        .collect()
}

#[tokio::test]
async fn no_secret_leaks_into_messages_logs_or_stored_rows() -> anyhow::Result<()> {
    let logs = LogBuffer::install()?;
    let suite = Suite::start().await?;
    suite.wait_serving().await?;
    let mut tap = BusTap::start(&suite.bus).await?;

    let used = story::run(&suite).await?;
    let secrets = secrets_of(&suite, &used).await?;
    let messages = tap.drain(Duration::from_secs(3)).await?;
    tap.close().await;
    let lines = logs.lines()?;

    let commands_exchange = suite.bus.commands_exchange();
    let (commands, events): (Vec<Tapped>, Vec<Tapped>) = messages
        .into_iter()
        .partition(|m| m.exchange == commands_exchange);

    // The capture saw what it must: the services' own TRACE/DEBUG lines,
    // events of the story, and the mail commands.
    anyhow::ensure!(
        lines
            .iter()
            .any(|l| l.contains("partnerhub_platform") && l.contains("Serving.")),
        "the log capture missed the services' logs"
    );
    anyhow::ensure!(
        lines
            .iter()
            .any(|l| l.contains("DEBUG") && l.contains("Call finished.")),
        "the log capture missed DEBUG lines"
    );
    anyhow::ensure!(
        events.iter().any(|e| e.message_type_is("MergeCompleted")),
        "the tap missed the story's events"
    );

    // Events and logs: no secret at all.
    let in_events = hits(&secrets, places(&events));
    let in_logs = hits(
        &secrets,
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| (format!("log line {i}"), l.as_bytes())),
    );
    // Commands: mail commands to notification carry the mailed tokens by
    // design (point-to-point, to the one service that sends them); nothing
    // else, and nowhere else.
    let in_commands = hits(&secrets, places(&commands));
    let (by_design, in_commands): (Vec<_>, Vec<_>) = in_commands
        .into_iter()
        .partition(|(s, at)| s.starts_with("mailed token") && at.ends_with("notification payload"));
    for (what, _) in &used.mailed {
        anyhow::ensure!(
            by_design
                .iter()
                .any(|(s, _)| s == &format!("mailed token {what}")),
            "the {what} token was not seen in a mail command: the scan is blind"
        );
    }

    // At rest: no secret in any row, numbers sealed, passwords argon2id,
    // tokens hashed.
    let (rows, in_rows) = at_rest::scan_databases(&suite, &secrets).await?;
    let sealed_rows = at_rest::numbers_are_sealed(&suite, &[IBAN, TIN]).await?;
    let password_hashes = at_rest::passwords_are_argon2id(&suite).await?;
    let mailed = |what: &str| {
        used.mailed
            .iter()
            .filter(|(w, _)| *w == what)
            .map(|(_, t)| t.as_str())
            .collect::<Vec<_>>()
    };
    // Invitation tokens live in `invitations`, whose hash is cleared when the
    // invitation is accepted (the story accepts it): the scan above proves
    // no row holds one in clear.
    at_rest::tokens_are_hashed(
        &suite,
        "identity",
        "one_time_tokens",
        &mailed("password reset"),
    )
    .await?;
    let refresh: Vec<&str> = used.refresh_tokens.iter().map(String::as_str).collect();
    at_rest::tokens_are_hashed(&suite, "identity", "refresh_tokens", &refresh).await?;
    at_rest::tokens_are_hashed(
        &suite,
        "verification",
        "email_tokens",
        &mailed("email ownership"),
    )
    .await?;

    println!(
        "secrets scan: {} secrets; {} events and {} commands ({} mailed tokens in mail commands by design); \
         {} log lines; {} stored rows; {} payout/tax rows checked for 6-digit runs; {} argon2id hashes",
        secrets.len(),
        events.len(),
        commands.len(),
        by_design.len(),
        lines.len(),
        rows,
        sealed_rows,
        password_hashes,
    );
    anyhow::ensure!(in_events.is_empty(), "secrets in events: {in_events:?}");
    anyhow::ensure!(
        in_commands.is_empty(),
        "secrets in commands: {in_commands:?}"
    );
    anyhow::ensure!(in_logs.is_empty(), "secrets in logs: {in_logs:?}");
    anyhow::ensure!(in_rows.is_empty(), "secrets stored in clear: {in_rows:?}");
    suite.stop().await
}

impl Tapped {
    /// Whether its type (routing key) ends with `name`.
    fn message_type_is(&self, name: &str) -> bool {
        self.routing_key.ends_with(name)
    }
}
