//! What a script sees: JSON output, exit codes, field violations; and the
//! completion scripts.

use crate::harness::{Ctl, suite, text};

#[tokio::test]
async fn bad_input_exits_6_with_every_field_violation() -> anyhow::Result<()> {
    let suite = suite().await?;
    let ctl = Ctl::new(&suite)?;
    ctl.sign_up("Contoso").await?;
    let args = [
        "users",
        "create",
        "--email",
        "not-an-email",
        "--given-name",
        " ",
        "--family-name",
        "Hopper",
        "--role",
        "no_such_role",
    ];
    let refused = ctl
        .run(&[&args[..], &["--output", "json"]].concat())
        .await?;
    assert_eq!(refused.code, 6, "{}", refused.stderr);
    assert!(refused.stdout.is_empty(), "{}", refused.stdout);
    let error = refused.error_json()?;
    assert_eq!(text(&error, "/error/code")?, "INVALID_ARGUMENT");
    let fields: Vec<String> = error["error"]["field_violations"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|f| f["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    for wanted in ["email", "given_name"] {
        assert!(
            fields.iter().any(|f| f.contains(wanted)),
            "{wanted} not in {fields:?}"
        );
    }
    // The same for people, on stderr.
    let refused = ctl.run(&args).await?;
    assert_eq!(refused.code, 6);
    assert!(
        refused.stderr.contains("INVALID_ARGUMENT"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("field email"), "{}", refused.stderr);
    suite.stop().await
}

#[tokio::test]
async fn exit_codes_tell_usage_not_found_and_conflict_apart() -> anyhow::Result<()> {
    let suite = suite().await?;
    let ctl = Ctl::new(&suite)?;
    let not_logged_in = ctl.run(&["roles", "list"]).await?;
    assert_eq!(not_logged_in.code, 3, "{}", not_logged_in.stderr);
    ctl.sign_up("Contoso").await?;

    let usage = ctl
        .run(&["users", "create", "--email", "a@contoso.com"])
        .await?;
    assert_eq!(usage.code, 2, "{}", usage.stderr);
    let not_found = ctl.run(&["roles", "show", "no_such_role"]).await?;
    assert_eq!(not_found.code, 5, "{}", not_found.stderr);
    ctl.enroll("Contoso").await?;
    let stale = ctl
        .run(&[
            "profile",
            "legal",
            "update",
            "--legal-name",
            "Contoso Group SAS",
            "--etag",
            "W/\"stale\"",
        ])
        .await?;
    assert_eq!(stale.code, 7, "{}", stale.stderr);
    let twice = ctl
        .run(&[
            "profile",
            "enroll",
            "--legal-name",
            "Contoso SAS",
            "--line1",
            "1 Rue de Rivoli",
            "--city",
            "Paris",
            "--postal-code",
            "75001",
            "--country",
            "FR",
            "--accept-agreement",
        ])
        .await?;
    assert_eq!(twice.code, 7, "{}", twice.stderr);
    suite.stop().await
}

#[tokio::test]
async fn json_output_is_the_response_with_every_field() -> anyhow::Result<()> {
    let suite = suite().await?;
    let ctl = Ctl::new(&suite)?;
    let email = ctl.sign_up("Contoso").await?;
    let roles = ctl.json(&["roles", "list"]).await?;
    let global_admin = roles["roles"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["id"] == "global_admin"))
        .cloned()
        .unwrap_or_default();
    assert!(
        global_admin["permissions"]
            .as_array()
            .is_some_and(|p| !p.is_empty()),
        "{roles}"
    );
    assert!(
        global_admin["family"]
            .as_str()
            .is_some_and(|f| f.starts_with("ROLE_FAMILY_"))
    );
    let members = ctl.json(&["users", "list"]).await?;
    assert_eq!(text(&members, "/members/0/user/email")?, email);
    assert_eq!(text(&members, "/members/0/state")?, "MEMBER_STATE_ACTIVE");
    assert_eq!(text(&members, "/next_page_token")?, "");
    // A table for people: the same member, not JSON.
    let table = ctl.ok(&["users", "list"]).await?;
    assert!(
        table.stdout.contains(&email) && table.json().is_err(),
        "{}",
        table.stdout
    );
    suite.stop().await
}

#[tokio::test]
async fn completions_print_for_each_shell() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    for shell in ["bash", "zsh", "fish"] {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_partnerctl"))
            .args(["completions", shell])
            .env("PARTNERCTL_CONFIG_DIR", dir.path())
            .output()
            .await?;
        assert!(output.status.success(), "{shell}: {output:?}");
        let script = String::from_utf8(output.stdout)?;
        assert!(
            script.contains("partnerctl") && script.contains("merge"),
            "{shell}: {script}"
        );
    }
    Ok(())
}
