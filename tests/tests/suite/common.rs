//! Helpers shared by the suite tests (the testkit's clients, named as the
//! tests use them).

pub use partnerhub_testkit::bearer as with_token;
use partnerhub_testkit::{Company, Suite, clients};

/// Signs a new founder up through identity.
pub async fn sign_up(suite: &Suite) -> anyhow::Result<Company> {
    clients::sign_up(suite, "Contoso").await
}
