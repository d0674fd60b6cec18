//! Helpers shared by the suite tests (the testkit's clients, named as the
//! tests use them).

pub use partnerhub_testkit::bearer as with_token;
use partnerhub_testkit::{Company, Suite, clients};

/// Signs a new founder up through identity.
pub async fn sign_up(suite: &Suite) -> anyhow::Result<Company> {
    clients::sign_up(suite, "Contoso").await
}

/// The first mail to `to` whose subject contains `needle`; other mails to
/// `to` stay for later (services mail independently, in no set order).
pub async fn mail_about(
    suite: &Suite,
    to: &str,
    needle: &str,
) -> anyhow::Result<partnerhub_testkit::ReceivedMail> {
    suite
        .smtp
        .next_matching(
            to,
            |mail| mail.subject.contains(needle),
            std::time::Duration::from_secs(30),
        )
        .await
        .map_err(|e| e.context(format!("no mail to {to} about {needle:?}")))
}
