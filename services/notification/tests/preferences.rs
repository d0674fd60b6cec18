//! Notification preferences, end to end: defaults from identity's
//! projection, refusals that name every bad field at once, etags and update
//! masks, the effect of an opt-out and of the email language on real mail,
//! and a notification email that takes effect only once its mailed token is
//! verified by the user it was mailed to.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{
    MAIL_WAIT, error_reason, link_token, make_primary_contact, my_notifications, notifications,
    publisher, refusal, ts, violated_fields, wait_delivery, wait_notification_where,
    wait_projected,
};
use partnerhub_proto::merge::v1::MergeInvitationRejected;
use partnerhub_proto::notification::v1::{
    Category, ChangeNotificationEmailRequest, DeliveryStatus, GetPreferencesRequest, Kind,
    Preferences, UpdatePreferencesRequest, VerifyNotificationEmailRequest,
};
use partnerhub_proto::profile::v1::{ProgramKind, ProgramStatusChanged};
use partnerhub_proto::verification::v1::{Status, SubStatus, VerificationStatusChanged};
use partnerhub_testkit::clients::{sign_up, sign_up_in};
use partnerhub_testkit::{Company, PORTAL_URL, Publisher, Suite, bearer, unique};
use tonic::Code;
use uuid::Uuid;

const ME: &str = "users/me/preferences";

async fn get(suite: &Suite, token: &str, name: &str) -> Result<Preferences, tonic::Status> {
    notifications(suite)
        .get_preferences(
            bearer(
                token,
                GetPreferencesRequest {
                    name: name.to_owned(),
                },
            )
            .unwrap(),
        )
        .await
        .map(tonic::Response::into_inner)
}

async fn update(
    suite: &Suite,
    token: &str,
    preferences: Preferences,
    mask: &[&str],
) -> Result<Preferences, tonic::Status> {
    notifications(suite)
        .update_preferences(
            bearer(
                token,
                UpdatePreferencesRequest {
                    preferences: Some(preferences),
                    update_mask: (!mask.is_empty()).then(|| prost_types::FieldMask {
                        paths: mask.iter().map(|p| (*p).to_owned()).collect(),
                    }),
                },
            )
            .unwrap(),
        )
        .await
        .map(tonic::Response::into_inner)
}

async fn change_email(
    suite: &Suite,
    token: &str,
    name: &str,
    email: &str,
) -> Result<Preferences, tonic::Status> {
    notifications(suite)
        .change_notification_email(
            bearer(
                token,
                ChangeNotificationEmailRequest {
                    name: name.to_owned(),
                    email: email.to_owned(),
                },
            )
            .unwrap(),
        )
        .await
        .map(tonic::Response::into_inner)
}

async fn verify_email(
    suite: &Suite,
    token: &str,
    name: &str,
    mailed: &str,
) -> Result<Preferences, tonic::Status> {
    notifications(suite)
        .verify_notification_email(
            bearer(
                token,
                VerifyNotificationEmailRequest {
                    name: name.to_owned(),
                    token: mailed.to_owned(),
                },
            )
            .unwrap(),
        )
        .await
        .map(tonic::Response::into_inner)
}

/// Asserts `result` is INVALID_ARGUMENT naming exactly `fields`.
fn assert_invalid<T: std::fmt::Debug>(result: Result<T, tonic::Status>, fields: &[&str]) {
    let status = result.expect_err("a refusal");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(violated_fields(&status), fields, "{status:?}");
}

/// A signed-up founder (a Global admin) who is also the primary contact of
/// their account, whose welcome mail was taken and whom notification knows.
/// The account is not enrolled, so verification opens no case of its own:
/// the verification events of the test are the only ones.
async fn known_company(suite: &Suite, name: &str) -> Company {
    let company = sign_up(suite, name).await.unwrap();
    suite.smtp.next_to(&company.email, MAIL_WAIT).await.unwrap(); // welcome
    wait_projected(suite, &company, "").await;
    make_primary_contact(suite, &company).await;
    company
}

/// A signed-up founder (a Global admin, no enrollment: verification never
/// starts on its own) whose welcome mail was taken and whom notification
/// knows.
async fn known_founder(suite: &Suite, name: &str) -> Company {
    let founder = sign_up(suite, name).await.unwrap();
    suite.smtp.next_to(&founder.email, MAIL_WAIT).await.unwrap(); // welcome
    wait_projected(suite, &founder, "").await;
    founder
}

/// Publishes that `company`'s `program` became QUALIFIED: an action mail
/// to its Global admins only, at their preferred address.
async fn qualified(bus: &Publisher, company: &Company, program: ProgramKind) {
    let event = ProgramStatusChanged {
        account: company.account.clone(),
        program: program.into(),
        old_status: "PROGRAM_STATUS_PENDING".into(),
        new_status: "PROGRAM_STATUS_QUALIFIED".into(),
        change_time: Some(ts(Utc::now())),
    };
    bus.event("profile", &company.account, &event)
        .await
        .unwrap();
}

#[tokio::test]
async fn defaults_follow_the_sign_up_locale() {
    let suite = Suite::start().await.unwrap();
    let marie = sign_up_in(&suite, "Fabrikam", "fr-FR").await.unwrap();
    let ada = sign_up(&suite, "Contoso").await.unwrap();
    // The welcome mails mean notification knows both.
    suite.smtp.next_to(&marie.email, MAIL_WAIT).await.unwrap();
    suite.smtp.next_to(&ada.email, MAIL_WAIT).await.unwrap();

    let defaults = get(&suite, &marie.token, ME).await.unwrap();
    assert_eq!(defaults.name, format!("{}/preferences", marie.user));
    assert_eq!(defaults.email_language, "fr-FR");
    assert_eq!(defaults.job_title, "");
    assert_eq!(defaults.notification_email, "");
    assert_eq!(defaults.pending_notification_email, "");
    assert!(defaults.email_opt_outs.is_empty());
    assert!(defaults.workspace_opt_outs.is_empty());
    assert!(!defaults.in_portal_opt_out);
    assert!(!defaults.etag.is_empty());
    // By the user's own name, the same.
    let by_name = get(&suite, &marie.token, &defaults.name).await.unwrap();
    assert_eq!(by_name, defaults);

    let english = get(&suite, &ada.token, ME).await.unwrap();
    assert_eq!(english.email_language, "en-US");
    assert_eq!(english.name, format!("{}/preferences", ada.user));
    suite.stop().await.unwrap();
}

#[tokio::test]
async fn a_refused_update_names_every_bad_field_and_changes_nothing() {
    let suite = Suite::start().await.unwrap();
    let ada = sign_up(&suite, "Contoso").await.unwrap();
    suite.smtp.next_to(&ada.email, MAIL_WAIT).await.unwrap(); // welcome
    let before = get(&suite, &ada.token, ME).await.unwrap();
    let bad = Preferences {
        name: ME.into(),
        email_opt_outs: vec![
            Category::Action as i32,
            Category::Security as i32,
            Category::Unspecified as i32,
        ],
        in_portal_opt_out: true,
        email_language: "de-DE".into(),
        job_title: "x".repeat(101),
        ..Preferences::default()
    };
    // The mask names every bad field, and one that does not exist.
    let all_bad = update(
        &suite,
        &ada.token,
        bad.clone(),
        &[
            "job_title",
            "email_language",
            "email_opt_outs",
            "in_portal_opt_out",
            "nope",
        ],
    )
    .await;
    assert_invalid(
        all_bad,
        &[
            "preferences.email_language",
            "preferences.email_opt_outs[0]",
            "preferences.email_opt_outs[1]",
            "preferences.email_opt_outs[2]",
            "preferences.in_portal_opt_out",
            "preferences.job_title",
            "update_mask",
        ],
    );
    // No mask: every field is updated, so every field is checked.
    assert_invalid(
        update(&suite, &ada.token, bad.clone(), &[]).await,
        &[
            "preferences.email_language",
            "preferences.email_opt_outs[0]",
            "preferences.email_opt_outs[1]",
            "preferences.email_opt_outs[2]",
            "preferences.in_portal_opt_out",
            "preferences.job_title",
        ],
    );
    // A workspace that does not exist.
    assert_invalid(
        update(
            &suite,
            &ada.token,
            Preferences {
                name: ME.into(),
                workspace_opt_outs: vec![0, 77],
                ..Preferences::default()
            },
            &["workspace_opt_outs"],
        )
        .await,
        &[
            "preferences.workspace_opt_outs[0]",
            "preferences.workspace_opt_outs[1]",
        ],
    );
    let missing = refusal(
        notifications(&suite)
            .update_preferences(bearer(&ada.token, UpdatePreferencesRequest::default()).unwrap())
            .await,
    );
    assert_eq!(missing.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&missing), vec!["preferences"]);

    assert_eq!(get(&suite, &ada.token, ME).await.unwrap(), before);
    suite.stop().await.unwrap();
}

#[tokio::test]
async fn an_update_is_stored_checked_against_its_etag_and_limited_to_its_mask() {
    let suite = Suite::start().await.unwrap();
    let ada = sign_up(&suite, "Contoso").await.unwrap();
    suite.smtp.next_to(&ada.email, MAIL_WAIT).await.unwrap(); // welcome
    let before = get(&suite, &ada.token, ME).await.unwrap();
    // A title is stored as given: padding is refused, not trimmed.
    assert_invalid(
        update(
            &suite,
            &ada.token,
            Preferences {
                name: ME.into(),
                job_title: "  Partner manager ".into(),
                ..Preferences::default()
            },
            &["job_title"],
        )
        .await,
        &["preferences.job_title"],
    );

    let updated = update(
        &suite,
        &ada.token,
        Preferences {
            name: ME.into(),
            job_title: "Partner manager".into(),
            email_language: "fr-fr".into(),
            email_opt_outs: vec![Category::Transactional as i32],
            etag: before.etag.clone(),
            ..Preferences::default()
        },
        &[],
    )
    .await
    .unwrap();
    assert_eq!(updated.name, format!("{}/preferences", ada.user));
    assert_eq!(updated.job_title, "Partner manager");
    assert_eq!(updated.email_language, "fr-FR", "the canonical locale");
    assert_eq!(updated.email_opt_outs, vec![Category::Transactional as i32]);
    assert!(updated.workspace_opt_outs.is_empty());
    assert!(!updated.in_portal_opt_out);
    assert_ne!(updated.etag, before.etag);
    assert!(updated.update_time.is_some());
    assert_eq!(get(&suite, &ada.token, ME).await.unwrap(), updated);

    // The etag read before the change is stale.
    let stale = update(
        &suite,
        &ada.token,
        Preferences {
            name: ME.into(),
            job_title: "Intern".into(),
            email_language: "en-US".into(),
            etag: before.etag.clone(),
            ..Preferences::default()
        },
        &[],
    )
    .await
    .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted, "{stale:?}");
    assert_eq!(error_reason(&stale), "ETAG_MISMATCH");
    assert_eq!(get(&suite, &ada.token, ME).await.unwrap(), updated);

    // Only the masked field changes; the others, empty or invalid here,
    // are neither checked nor stored.
    let masked = update(
        &suite,
        &ada.token,
        Preferences {
            name: ME.into(),
            job_title: "Chief partner officer".into(),
            email_language: String::new(),
            etag: updated.etag.clone(),
            ..Preferences::default()
        },
        &["job_title"],
    )
    .await
    .unwrap();
    assert_eq!(masked.job_title, "Chief partner officer");
    assert_eq!(masked.email_language, "fr-FR");
    assert_eq!(masked.email_opt_outs, vec![Category::Transactional as i32]);
    assert_ne!(masked.etag, updated.etag);

    // Opting back in (without an etag: last write wins).
    let opted_in = update(
        &suite,
        &ada.token,
        Preferences {
            name: ME.into(),
            ..Preferences::default()
        },
        &["email_opt_outs"],
    )
    .await
    .unwrap();
    assert!(opted_in.email_opt_outs.is_empty());
    assert_eq!(opted_in.job_title, "Chief partner officer");
    suite.stop().await.unwrap();
}

#[tokio::test]
async fn an_opt_out_suppresses_transactional_mail_but_not_actions_which_come_in_the_chosen_language()
 {
    let suite = Suite::start().await.unwrap();
    let ada = known_company(&suite, "Contoso").await;
    let bus = publisher(&suite).await;
    update(
        &suite,
        &ada.token,
        Preferences {
            name: ME.into(),
            email_language: "fr-FR".into(),
            email_opt_outs: vec![Category::Transactional as i32],
            ..Preferences::default()
        },
        &["email_language", "email_opt_outs"],
    )
    .await
    .unwrap();

    // A transactional mail: Fabrikam refused Contoso's merge invitation.
    let invitee = format!("accounts/{}", Uuid::now_v7());
    bus.event(
        "merge",
        &ada.account,
        &MergeInvitationRejected {
            merge_invitation: format!("{}/mergeInvitations/{}", ada.account, Uuid::now_v7()),
            initiator: ada.account.clone(),
            invitee,
            actor: String::new(),
            change_time: Some(ts(Utc::now())),
            reason: "Not now".into(),
        },
    )
    .await
    .unwrap();
    let suppressed = wait_delivery(
        &suite,
        &ada.token,
        &ada.account,
        "merge.invitation_rejected",
        &ada.email,
        DeliveryStatus::Suppressed,
    )
    .await;
    assert!(
        suppressed.last_error.starts_with("OPTED_OUT"),
        "{}",
        suppressed.last_error
    );
    assert_eq!(suppressed.user, ada.user);
    assert_eq!(suppressed.attempts, 0);
    // In the portal it is still shown, in French.
    let shown = wait_notification_where(&suite, &ada.token, "rejected merge", |n| {
        n.link == "/account/merges"
    })
    .await;
    assert_eq!(shown.kind, Kind::Transactional as i32);
    assert!(shown.title.contains("a refusé"), "{}", shown.title);

    // An action mail still comes, in French.
    bus.event(
        "verification",
        &ada.account,
        &VerificationStatusChanged {
            account: ada.account.clone(),
            old_status: Status::None.into(),
            status: Status::Pending.into(),
            sub_status: SubStatus::Entry.into(),
            verification: format!("{}/verifications/{}", ada.account, Uuid::now_v7()),
            change_time: Some(ts(Utc::now())),
        },
    )
    .await
    .unwrap();
    let action = suite.smtp.next_to(&ada.email, MAIL_WAIT).await.unwrap();
    assert_eq!(action.content_language.as_deref(), Some("fr-FR"));
    assert!(
        action.subject.contains("Vérification du compte Contoso"),
        "{}",
        action.subject
    );
    assert!(action.text.starts_with("Bonjour") || action.text.contains("Bonjour"));
    let in_portal = wait_notification_where(&suite, &ada.token, "verification action", |n| {
        n.kind == Kind::MandatoryAction as i32
    })
    .await;
    assert!(
        in_portal.title.contains("Vérification"),
        "{}",
        in_portal.title
    );
    // The merge mail was never sent: the welcome and the action only.
    suite
        .smtp
        .expect_none_to(&ada.email, Duration::from_millis(500))
        .await
        .unwrap();
    assert_eq!(suite.smtp.count_to(&ada.email), 2);
    suite.stop().await.unwrap();
}

#[tokio::test]
async fn a_notification_email_is_used_once_verified_by_its_own_user() {
    let suite = Suite::start().await.unwrap();
    let ada = known_founder(&suite, "Contoso").await;
    let bob = sign_up(&suite, "Fabrikam").await.unwrap();
    suite.smtp.next_to(&bob.email, MAIL_WAIT).await.unwrap(); // welcome
    let bus = publisher(&suite).await;
    let new_address = format!("ada.notify.{}@contoso.com", unique());

    let pending = change_email(&suite, &ada.token, ME, &new_address)
        .await
        .unwrap();
    assert_eq!(pending.pending_notification_email, new_address);
    assert_eq!(pending.notification_email, "");
    let mail = suite.smtp.next_to(&new_address, MAIL_WAIT).await.unwrap();
    assert!(!mail.is_for(&ada.email));
    let token = link_token(&mail.text, "/preferences/verify-email");
    assert_eq!(link_token(&mail.html, "/preferences/verify-email"), token);
    assert!(token.len() >= 32, "a high-entropy token: {token}");
    assert!(
        mail.text
            .contains(&format!("{PORTAL_URL}/preferences/verify-email?token=")),
        "{}",
        mail.text
    );
    assert_eq!(get(&suite, &ada.token, ME).await.unwrap(), pending);

    // Until it is verified, mail goes to the sign-in email.
    qualified(&bus, &ada, ProgramKind::Partner).await;
    let action = suite.smtp.next_to(&ada.email, MAIL_WAIT).await.unwrap();
    assert!(action.subject.contains("agreement"), "{}", action.subject);
    suite
        .smtp
        .expect_none_to(&new_address, Duration::from_millis(500))
        .await
        .unwrap();

    // Wrong tokens.
    assert_invalid(
        verify_email(&suite, &ada.token, ME, "not-the-token").await,
        &["token"],
    );
    assert_invalid(verify_email(&suite, &ada.token, ME, "").await, &["token"]);
    let bob_address = format!("bob.notify.{}@fabrikam.com", unique());
    change_email(&suite, &bob.token, ME, &bob_address)
        .await
        .unwrap();
    let bob_mail = suite.smtp.next_to(&bob_address, MAIL_WAIT).await.unwrap();
    let bob_token = link_token(&bob_mail.text, "/preferences/verify-email");
    assert_invalid(
        verify_email(&suite, &ada.token, ME, &bob_token).await,
        &["token"],
    );
    assert_eq!(get(&suite, &ada.token, ME).await.unwrap(), pending);

    // The right one, once.
    let verified = verify_email(&suite, &ada.token, ME, &token).await.unwrap();
    assert_eq!(verified.notification_email, new_address);
    assert_eq!(verified.pending_notification_email, "");
    assert_ne!(verified.etag, pending.etag);
    assert_eq!(get(&suite, &ada.token, ME).await.unwrap(), verified);
    assert_invalid(
        verify_email(&suite, &ada.token, ME, &token).await,
        &["token"],
    );
    // Ada's attempt did not use Bob's token up.
    let bobs = verify_email(&suite, &bob.token, ME, &bob_token)
        .await
        .unwrap();
    assert_eq!(bobs.notification_email, bob_address);

    // Now mail goes to the new address only.
    qualified(&bus, &ada, ProgramKind::Referrals).await;
    let action = suite.smtp.next_to(&new_address, MAIL_WAIT).await.unwrap();
    assert!(action.subject.contains("Referrals"), "{}", action.subject);
    assert!(!action.is_for(&ada.email));
    suite
        .smtp
        .expect_none_to(&ada.email, Duration::from_millis(800))
        .await
        .unwrap();

    // Refused addresses.
    let onmicrosoft = format!("ada.{}@contoso.onmicrosoft.com", unique());
    assert_invalid(
        change_email(&suite, &ada.token, ME, &onmicrosoft).await,
        &["email"],
    );
    for malformed in ["not an address", "ada@", "ada@localhost"] {
        assert_invalid(
            change_email(&suite, &ada.token, ME, malformed).await,
            &["email"],
        );
    }
    assert_eq!(get(&suite, &ada.token, ME).await.unwrap(), verified);

    // Empty: back to the sign-in email at once.
    let reset = change_email(&suite, &ada.token, ME, "").await.unwrap();
    assert_eq!(reset.notification_email, "");
    assert_eq!(reset.pending_notification_email, "");
    qualified(&bus, &ada, ProgramKind::CspIndirectReseller).await;
    suite.smtp.next_to(&ada.email, MAIL_WAIT).await.unwrap();
    suite
        .smtp
        .expect_none_to(&new_address, Duration::from_millis(500))
        .await
        .unwrap();
    assert_eq!(
        my_notifications(&suite, &ada.token)
            .await
            .iter()
            .filter(|n| n.kind == Kind::MandatoryAction as i32)
            .count(),
        3
    );
    suite.stop().await.unwrap();
}

#[tokio::test]
async fn another_users_preferences_are_out_of_reach() {
    let suite = Suite::start().await.unwrap();
    let ada = sign_up(&suite, "Contoso").await.unwrap();
    let bob = sign_up(&suite, "Fabrikam").await.unwrap();
    suite.smtp.next_to(&ada.email, MAIL_WAIT).await.unwrap(); // welcome
    suite.smtp.next_to(&bob.email, MAIL_WAIT).await.unwrap(); // welcome
    let before = get(&suite, &ada.token, ME).await.unwrap();
    let adas = format!("{}/preferences", ada.user);

    let read = get(&suite, &bob.token, &adas).await.unwrap_err();
    assert_eq!(read.code(), Code::NotFound, "{read:?}");
    let changed = update(
        &suite,
        &bob.token,
        Preferences {
            name: adas.clone(),
            job_title: "Hacked".into(),
            email_language: "en-US".into(),
            ..Preferences::default()
        },
        &["job_title"],
    )
    .await
    .unwrap_err();
    assert_eq!(changed.code(), Code::NotFound, "{changed:?}");
    let redirected = change_email(&suite, &bob.token, &adas, "bob@fabrikam.com")
        .await
        .unwrap_err();
    assert_eq!(redirected.code(), Code::NotFound, "{redirected:?}");
    let verified = verify_email(&suite, &bob.token, &adas, "whatever")
        .await
        .unwrap_err();
    assert_eq!(verified.code(), Code::NotFound, "{verified:?}");
    suite
        .smtp
        .expect_none_to("bob@fabrikam.com", Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(get(&suite, &ada.token, ME).await.unwrap(), before);

    assert_invalid(get(&suite, &bob.token, "users/me").await, &["name"]);
    let anonymous = notifications(&suite)
        .get_preferences(GetPreferencesRequest { name: ME.into() })
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    suite.stop().await.unwrap();
}

#[tokio::test]
async fn a_new_notification_email_is_mailed_at_most_every_few_minutes() {
    let suite = Suite::start().await.unwrap();
    let ada = sign_up(&suite, "Contoso").await.unwrap();
    let change = |email: String| {
        let suite = &suite;
        let token = ada.token.clone();
        async move {
            notifications(suite)
                .change_notification_email(
                    bearer(
                        &token,
                        ChangeNotificationEmailRequest {
                            name: ME.into(),
                            email,
                        },
                    )
                    .unwrap(),
                )
                .await
        }
    };
    change(format!("first.{}@contoso.com", unique()))
        .await
        .unwrap();
    let again = change(format!("second.{}@contoso.com", unique()))
        .await
        .expect_err("a second mail at once");
    assert_eq!(again.code(), Code::ResourceExhausted);
    assert_eq!(error_reason(&again), "EMAIL_CHANGE_TOO_SOON");
    let delay = partnerhub_testkit::errors::retry_delay(&again).expect("RetryInfo");
    assert!(
        delay > Duration::from_secs(200) && delay <= Duration::from_secs(300),
        "{delay:?}"
    );
    // Going back to the sign-in email mails nothing and is always allowed.
    change(String::new()).await.unwrap();
    suite.stop().await.unwrap();
}
