//! Helpers shared by the suite tests (the testkit's clients, named as the
//! tests use them).

pub use partnerhub_testkit::bearer as with_token;
use partnerhub_testkit::{Company, Suite, clients};

/// Signs a new founder up through identity.
pub async fn sign_up(suite: &Suite) -> anyhow::Result<Company> {
    clients::sign_up(suite, "Contoso").await
}

/// The next mail to `to` whose subject contains `needle`, skipping others.
pub async fn mail_about(
    suite: &Suite,
    to: &str,
    needle: &str,
) -> anyhow::Result<partnerhub_testkit::ReceivedMail> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let mail = suite
            .smtp
            .next_to(to, left)
            .await
            .map_err(|e| e.context(format!("no mail to {to} about {needle:?}")))?;
        if mail.subject.contains(needle) {
            return Ok(mail);
        }
    }
}
