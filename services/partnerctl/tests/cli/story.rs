//! The whole story with partnerctl only: a founder signs up, logs in,
//! enrolls, picks the account, adds users, updates the legal profile, and
//! merges a second company in.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::harness::{Ctl, PASSWORD, suite, text};

#[tokio::test]
async fn a_founder_enrolls_adds_users_and_merges_another_company_with_partnerctl_only()
-> anyhow::Result<()> {
    let suite = suite().await?;
    let contoso = Ctl::new(&suite)?;

    // Sign up, log out, log in again with the endpoints saved at sign-up.
    let email = contoso.sign_up("Contoso").await?;
    contoso.ok(&["logout"]).await?;
    let refused = contoso.run(&["me", "permissions"]).await?;
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    let login = contoso
        .run_with(
            &["login", "--email", &email, "--password-stdin"],
            &format!("{PASSWORD}\n"),
            false,
        )
        .await?;
    assert_eq!(login.code, 0, "{}", login.stderr);
    assert!(login.stdout.contains(&email), "{}", login.stdout);
    let home = text(&contoso.session()?, "/session/account")?;

    let enrolled = contoso.enroll("Contoso").await?;
    assert_eq!(text(&enrolled, "/legal_profile/legal_name")?, "Contoso SAS");
    assert_eq!(
        text(&enrolled, "/legal_profile/primary_contact/email")?,
        email
    );

    // The account picker: a second account, switch to it and back.
    let labs = contoso
        .json(&["accounts", "create", "Contoso Labs"])
        .await?;
    let labs_name = text(&labs, "/name")?;
    let accounts = contoso.json(&["accounts", "list"]).await?;
    let listed: Vec<String> = accounts["accounts"]
        .as_array()
        .context("no accounts list")?
        .iter()
        .filter_map(|m| {
            m.pointer("/account/name")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    assert!(
        listed.contains(&home) && listed.contains(&labs_name),
        "{listed:?}"
    );
    contoso.ok(&["accounts", "switch", "Contoso Labs"]).await?;
    let permissions = contoso.json(&["me", "permissions"]).await?;
    assert_eq!(text(&permissions, "/account")?, labs_name);
    let home_id = home.rsplit('/').next().unwrap_or_default();
    contoso.ok(&["accounts", "switch", home_id]).await?;
    assert_eq!(text(&contoso.session()?, "/session/account")?, home);

    // Users: one created, two imported from CSV.
    let created = contoso
        .json(&[
            "users",
            "create",
            "--email",
            "grace@contoso.com",
            "--given-name",
            "Grace",
            "--family-name",
            "Hopper",
            "--role",
            "referrals_admin",
        ])
        .await?;
    assert!(!text(&created, "/temporary_password")?.is_empty());
    let csv = contoso.dir.path().join("users.csv");
    std::fs::write(
        &csv,
        "email,given_name,family_name,roles\n\
         alan@contoso.com,Alan,Turing,referrals_user\n\
         edsger@contoso.com,Edsger,Dijkstra,report_viewer;referrals_user\n",
    )?;
    let csv_path = csv.to_string_lossy().into_owned();
    let imported = contoso.json(&["users", "import", &csv_path]).await?;
    assert_eq!(
        imported["users"].as_array().map(Vec::len),
        Some(2),
        "{imported}"
    );
    let members = contoso.json(&["users", "list"]).await?;
    let emails: Vec<&str> = members["members"]
        .as_array()
        .context("no members list")?
        .iter()
        .filter_map(|m| m.pointer("/user/email").and_then(Value::as_str))
        .collect();
    for wanted in [
        "grace@contoso.com",
        "alan@contoso.com",
        "edsger@contoso.com",
        &email,
    ] {
        assert!(emails.contains(&wanted), "{wanted} not in {emails:?}");
    }

    // The legal profile: two fields, the mask built from the flags.
    let updated = contoso
        .json(&[
            "profile",
            "legal",
            "update",
            "--legal-name",
            "Contoso International SAS",
            "--city",
            "Lyon",
            "--postal-code",
            "69001",
        ])
        .await?;
    assert_eq!(
        text(&updated, "/legal_profile/legal_name")?,
        "Contoso International SAS"
    );
    let legal = contoso.json(&["profile", "legal", "get"]).await?;
    assert_eq!(text(&legal, "/address/city")?, "Lyon");
    assert_eq!(text(&legal, "/address/line1")?, "1 Rue de Rivoli");

    // A second company, its own partnerctl.
    let fabrikam = Ctl::new(&suite)?;
    fabrikam.sign_up("Fabrikam").await?;
    let fabrikam_enrolled = fabrikam.enroll("Fabrikam").await?;
    let fabrikam_id = text(&fabrikam_enrolled, "/legal_profile/global_partner_id")?;
    let fabrikam_hq = text(&fabrikam_enrolled, "/headquarters/partner_id")?;

    // Contoso previews and invites; Fabrikam's admin accepts; Contoso confirms.
    let preview = contoso.json(&["merge", "preview", &fabrikam_id]).await?;
    assert_eq!(text(&preview, "/legal_name")?, "Fabrikam SAS");
    let invitation = contoso.json(&["merge", "invite", &fabrikam_id]).await?;
    let name = text(&invitation, "/name")?;
    let received = fabrikam.json(&["merge", "list"]).await?;
    assert!(received.to_string().contains(&name), "{received}");
    let id = name.rsplit('/').next().unwrap_or_default();
    let accepted = fabrikam.json(&["merge", "accept", id]).await?;
    assert_eq!(text(&accepted, "/state")?, "MERGE_STATE_ACCEPTED");
    let unacknowledged = contoso.run(&["merge", "confirm", &name]).await?;
    assert_eq!(unacknowledged.code, 6, "{}", unacknowledged.stderr);
    contoso.ok(&["merge", "confirm", &name, "--yes"]).await?;

    // Watch it complete.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let state = text(&contoso.json(&["merge", "get", &name]).await?, "/state")?;
        if state == "MERGE_STATE_COMPLETED" {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the merge is still {state} after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let locations = contoso.json(&["locations", "list"]).await?;
    assert!(locations.to_string().contains(&fabrikam_hq), "{locations}");
    suite.stop().await
}
