//! The token store: file permissions, automatic renewal, logout.

use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use crate::harness::{Ctl, suite, text};

#[tokio::test]
async fn the_session_file_is_private_to_its_owner() -> anyhow::Result<()> {
    let suite = suite().await?;
    let ctl = Ctl::new(&suite)?;
    ctl.sign_up("Contoso").await?;
    let file = std::fs::metadata(ctl.session_file())?.permissions().mode() & 0o777;
    assert_eq!(file, 0o600, "session file mode {file:o}");
    let dir = std::fs::metadata(ctl.dir.path())?.permissions().mode() & 0o777;
    assert_eq!(dir, 0o700, "config directory mode {dir:o}");
    let session = ctl.session()?;
    assert!(!text(&session, "/session/refresh_token")?.is_empty());
    // Renewing rewrites the file: still 0600.
    let mut expired = session.clone();
    expired["session"]["access_token_expires"] = Value::from("2000-01-01T00:00:00Z");
    std::fs::write(ctl.session_file(), serde_json::to_vec(&expired)?)?;
    std::fs::set_permissions(ctl.session_file(), std::fs::Permissions::from_mode(0o644))?;
    ctl.ok(&["me", "permissions"]).await?;
    let file = std::fs::metadata(ctl.session_file())?.permissions().mode() & 0o777;
    assert_eq!(file, 0o600, "session file mode after renewal {file:o}");
    suite.stop().await
}

#[tokio::test]
async fn an_expired_access_token_is_renewed_before_the_call() -> anyhow::Result<()> {
    let suite = suite().await?;
    let ctl = Ctl::new(&suite)?;
    ctl.sign_up("Contoso").await?;
    let before = ctl.session()?;
    let mut expired = before.clone();
    expired["session"]["access_token_expires"] = Value::from("2000-01-01T00:00:00Z");
    std::fs::write(ctl.session_file(), serde_json::to_vec(&expired)?)?;

    let permissions = ctl.json(&["me", "permissions"]).await?;
    assert_eq!(
        text(&permissions, "/account")?,
        text(&before, "/session/account")?
    );
    let after = ctl.session()?;
    assert_ne!(
        text(&after, "/session/refresh_token")?,
        text(&before, "/session/refresh_token")?
    );
    assert_ne!(
        text(&after, "/session/access_token")?,
        text(&before, "/session/access_token")?
    );
    let expires = text(&after, "/session/access_token_expires")?;
    assert!(
        expires.parse::<chrono::DateTime<chrono::Utc>>()? > chrono::Utc::now(),
        "{expires}"
    );
    // The renewed pair works without another renewal.
    ctl.ok(&["roles", "list"]).await?;
    assert_eq!(ctl.session()?, after);
    suite.stop().await
}

#[tokio::test]
async fn a_token_the_server_refuses_is_renewed_and_the_call_made_again() -> anyhow::Result<()> {
    let suite = suite().await?;
    let ctl = Ctl::new(&suite)?;
    ctl.sign_up("Contoso").await?;
    let before = ctl.session()?;
    // Still valid by its expiry, but its signature is wrong: the server
    // answers UNAUTHENTICATED.
    let token = text(&before, "/session/access_token")?;
    let (unsigned, _) = token.rsplit_once('.').unwrap_or((&token, ""));
    let mut forged = before.clone();
    forged["session"]["access_token"] = Value::from(format!(
        "{unsigned}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    ));
    std::fs::write(ctl.session_file(), serde_json::to_vec(&forged)?)?;

    let members = ctl.json(&["users", "list"]).await?;
    assert_eq!(
        members["members"].as_array().map(Vec::len),
        Some(1),
        "{members}"
    );
    let after = ctl.session()?;
    assert_ne!(
        text(&after, "/session/refresh_token")?,
        text(&before, "/session/refresh_token")?
    );
    assert_ne!(
        text(&after, "/session/access_token")?,
        text(&forged, "/session/access_token")?
    );
    suite.stop().await
}

#[tokio::test]
async fn after_logout_the_session_is_gone_and_commands_say_so() -> anyhow::Result<()> {
    let suite = suite().await?;
    let ctl = Ctl::new(&suite)?;
    ctl.sign_up("Contoso").await?;
    let refresh_token = text(&ctl.session()?, "/session/refresh_token")?;
    ctl.ok(&["logout"]).await?;
    assert!(ctl.session()?["session"].is_null());
    let refused = ctl.run(&["users", "list", "--output", "json"]).await?;
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert_eq!(
        text(&refused.error_json()?, "/error/code")?,
        "NOT_LOGGED_IN"
    );
    // The refresh token was revoked at the server too: a session file put
    // back by hand cannot be renewed.
    let mut restored = ctl.session()?;
    restored["session"] = serde_json::json!({
        "user": "users/x", "email": "x@contoso.com", "account": "accounts/x",
        "account_display_name": "x", "access_token": "x.y.z",
        "access_token_expires": "2000-01-01T00:00:00Z", "refresh_token": refresh_token,
    });
    std::fs::write(ctl.session_file(), serde_json::to_vec(&restored)?)?;
    let expired = ctl.run(&["users", "list"]).await?;
    assert_eq!(expired.code, 3, "{}", expired.stderr);
    assert!(expired.stderr.contains("login"), "{}", expired.stderr);
    suite.stop().await
}

#[tokio::test]
async fn a_created_user_changes_the_temporary_password_before_anything_else() -> anyhow::Result<()>
{
    let suite = suite().await?;
    let admin = Ctl::new(&suite)?;
    admin.sign_up("Contoso").await?;
    let email = format!("grace.{}@contoso.com", partnerhub_testkit::unique());
    let created = admin
        .json(&[
            "users",
            "create",
            "--email",
            &email,
            "--given-name",
            "Grace",
            "--family-name",
            "Hopper",
            "--role",
            "global_admin",
        ])
        .await?;
    let temporary = text(&created, "/temporary_password")?;

    let grace = Ctl::new(&suite)?;
    let login = grace
        .run_with(
            &["login", "--email", &email, "--password-stdin"],
            &format!("{temporary}\n"),
            true,
        )
        .await?;
    assert_eq!(login.code, 0, "{}", login.stderr);
    assert!(
        login.stderr.contains("partnerctl password"),
        "{}",
        login.stderr
    );
    let refused = grace.run(&["users", "list"]).await?;
    assert_eq!(refused.code, 7, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("PASSWORD_CHANGE_REQUIRED"),
        "{}",
        refused.stderr
    );

    let new = "a password of her own 1906";
    let changed = grace
        .run_with(
            &["password", "--password-stdin"],
            &format!("{temporary}\n{new}\n"),
            false,
        )
        .await?;
    assert_eq!(changed.code, 0, "{}", changed.stderr);
    let members = grace.json(&["users", "list"]).await?;
    assert_eq!(
        members["members"].as_array().map(Vec::len),
        Some(2),
        "{members}"
    );
    suite.stop().await
}
