//! Profile's tax and payout profiles through the gRPC API against the real
//! suite: the tax profile first, numbers sealed at rest and masked unless
//! the caller may see them, the bank rules, the hold switch and who may read.

mod common;

use common::{Actor, Harness, code, reason, status, violated_fields};
use partnerhub_proto::profile::v1::{
    CreatePayoutProfileRequest, CreateTaxProfileRequest, GetPayoutProfileRequest,
    GetTaxProfileRequest, ListPayoutProfilesRequest, ListProfileActivityRequest, PayoutMethod,
    PayoutProfile, PayoutSettings, ReviewStatus, SetPayoutHoldRequest, TaxEntityType, TaxForm,
    TaxProfile, UpdatePayoutProfileRequest, payout_service_client::PayoutServiceClient,
    profile_activity_service_client::ProfileActivityServiceClient,
};
use prost_types::FieldMask;
use sqlx::PgPool;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// A valid French IBAN, in its electronic form.
const IBAN: &str = "FR7630006000011234567890189";
/// Its BBAN (the IBAN without country and check digits).
const BBAN: &str = "30006000011234567890189";
/// A SWIFT/BIC code of a French bank.
const SWIFT: &str = "BNPAFRPP";
/// The French company's taxpayer identification number.
const TIN: &str = "FR40303265045";

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

fn payouts(actor: &Actor) -> PayoutServiceClient<Channel> {
    PayoutServiceClient::new(actor.profile.clone())
}

/// A W-8BEN-E of a French corporation.
fn french_tax_profile() -> TaxProfile {
    TaxProfile {
        entity_type: TaxEntityType::Corporation.into(),
        tax_form: TaxForm::W8benE.into(),
        country: "FR".into(),
        tax_identifier: TIN.into(),
        ..TaxProfile::default()
    }
}

async fn create_tax(actor: &Actor, profile: TaxProfile) -> Result<TaxProfile, Status> {
    Ok(payouts(actor)
        .create_tax_profile(actor.req(CreateTaxProfileRequest {
            parent: actor.account.clone(),
            tax_profile: Some(profile),
        }))
        .await?
        .into_inner())
}

async fn get_tax(actor: &Actor, account: &str) -> Result<TaxProfile, Status> {
    Ok(payouts(actor)
        .get_tax_profile(actor.req(GetTaxProfileRequest {
            name: format!("{account}/taxProfile"),
        }))
        .await?
        .into_inner())
}

/// A bank payout profile with [`IBAN`] and [`SWIFT`].
fn french_bank() -> PayoutProfile {
    PayoutProfile {
        method: PayoutMethod::BankAccount.into(),
        account_holder_name: "Contoso France SAS".into(),
        iban: IBAN.into(),
        swift_bic: SWIFT.into(),
        bank_country: "FR".into(),
        ..PayoutProfile::default()
    }
}

async fn create_payout(actor: &Actor, profile: PayoutProfile) -> Result<PayoutProfile, Status> {
    Ok(payouts(actor)
        .create_payout_profile(actor.req(CreatePayoutProfileRequest {
            parent: actor.account.clone(),
            payout_profile: Some(profile),
            request_id: String::new(),
        }))
        .await?
        .into_inner())
}

async fn get_payout(actor: &Actor, name: &str) -> Result<PayoutProfile, Status> {
    Ok(payouts(actor)
        .get_payout_profile(actor.req(GetPayoutProfileRequest { name: name.into() }))
        .await?
        .into_inner())
}

async fn list_payouts(actor: &Actor, account: &str) -> Result<Vec<PayoutProfile>, Status> {
    Ok(payouts(actor)
        .list_payout_profiles(actor.req(ListPayoutProfilesRequest {
            parent: account.into(),
        }))
        .await?
        .into_inner()
        .payout_profiles)
}

async fn update_payout(
    actor: &Actor,
    profile: PayoutProfile,
    paths: &[&str],
) -> Result<PayoutProfile, Status> {
    Ok(payouts(actor)
        .update_payout_profile(actor.req(UpdatePayoutProfileRequest {
            payout_profile: Some(profile),
            update_mask: mask(paths),
        }))
        .await?
        .into_inner())
}

async fn set_hold(actor: &Actor, account: &str, hold: bool) -> Result<PayoutSettings, Status> {
    Ok(payouts(actor)
        .set_payout_hold(actor.req(SetPayoutHoldRequest {
            name: format!("{account}/payoutSettings"),
            hold_payouts: hold,
        }))
        .await?
        .into_inner())
}

/// Whether `value` is a masked number ending with `last4`: only `*` before
/// the last four characters.
fn masked_ending(value: &str, last4: &str) -> bool {
    value.len() > 4 && value.ends_with(last4) && value[..value.len() - 4].chars().all(|c| c == '*')
}

/// The rows of `table` as JSON text.
async fn rows_as_text(pool: &PgPool, table: &str) -> anyhow::Result<Vec<String>> {
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT row_to_json(t)::text FROM {table} t"
    )))
    .fetch_all(pool)
    .await?)
}

/// Whether `needle` occurs in `haystack`.
fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every activity of `actor`'s account, newest first.
async fn all_activity(actor: &Actor) -> anyhow::Result<Vec<(String, String, String)>> {
    let mut client = ProfileActivityServiceClient::new(actor.profile.clone());
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_profile_activity(actor.req(ListProfileActivityRequest {
                parent: actor.account.clone(),
                page_size: 100,
                page_token: token.clone(),
            }))
            .await?
            .into_inner();
        out.extend(
            page.activities
                .into_iter()
                .map(|a| (a.action, a.old_value, a.new_value)),
        );
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        token = page.next_page_token;
    }
}

#[tokio::test]
async fn tax_profile_comes_first_and_numbers_are_sealed() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (founder, _) = h.enrolled_founder().await?;
    let incentives_user = h.member_with(&founder, &["incentives_user"]).await?;
    let incentives_admin = h.member_with(&founder, &["incentives_admin"]).await?;

    // No payout profile before the tax profile.
    let early = status(create_payout(&founder, french_bank()).await);
    assert_eq!(
        (early.code(), reason(&early)),
        (Code::FailedPrecondition, "TAX_PROFILE_REQUIRED".to_owned())
    );
    assert_eq!(
        code(get_tax(&founder, &founder.account).await),
        Code::NotFound
    );

    // A W-9 is for US persons only.
    let w9 = status(
        create_tax(
            &founder,
            TaxProfile {
                tax_form: TaxForm::W9.into(),
                ..french_tax_profile()
            },
        )
        .await,
    );
    assert_eq!(w9.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&w9), ["tax_profile.tax_form"]);
    // Individuals file a W-8BEN, not a W-8BEN-E.
    let individual = status(
        create_tax(
            &founder,
            TaxProfile {
                entity_type: TaxEntityType::Individual.into(),
                ..french_tax_profile()
            },
        )
        .await,
    );
    assert_eq!(violated_fields(&individual), ["tax_profile.tax_form"]);

    let tax = create_tax(&founder, french_tax_profile()).await?;
    assert_eq!(tax.name, format!("{}/taxProfile", founder.account));
    assert_eq!(tax.status(), ReviewStatus::Submitted);
    assert_eq!(tax.tax_form(), TaxForm::W8benE);
    assert_eq!(tax.entity_type(), TaxEntityType::Corporation);
    assert_eq!(tax.country, "FR");
    // A Global admin holds profile.payout.sensitive.read.
    assert_eq!(tax.tax_identifier, TIN);
    assert!(!tax.masked);
    let twice = status(create_tax(&founder, french_tax_profile()).await);
    assert_eq!(twice.code(), Code::AlreadyExists);
    let masked_tax = get_tax(&incentives_user, &founder.account).await?;
    assert!(masked_tax.masked);
    assert!(
        masked_ending(&masked_tax.tax_identifier, "5045"),
        "{}",
        masked_tax.tax_identifier
    );

    // The bank payout profile.
    let created = create_payout(&founder, french_bank()).await?;
    assert!(
        created
            .name
            .starts_with(&format!("{}/payoutProfiles/", founder.account)),
        "{}",
        created.name
    );
    assert_eq!(created.method(), PayoutMethod::BankAccount);
    assert_eq!(created.status(), ReviewStatus::Submitted);
    assert_eq!(created.iban, IBAN);
    assert!(!created.masked);
    assert_eq!(created.swift_bic, SWIFT);
    assert_eq!(created.bank_country, "FR");
    assert_eq!(created.account_holder_name, "Contoso France SAS");
    assert_eq!(created.account_number, "");

    // Who sees the number: the founder and the incentives admin in full…
    for full in [&founder, &incentives_admin] {
        let read = get_payout(full, &created.name).await?;
        assert_eq!(read.iban, IBAN, "{}", full.email);
        assert!(!read.masked);
        assert_eq!(list_payouts(full, &founder.account).await?, vec![read]);
        assert_eq!(get_tax(full, &founder.account).await?.tax_identifier, TIN);
    }
    // …the incentives user masked, only the last four shown.
    let masked = get_payout(&incentives_user, &created.name).await?;
    assert!(masked.masked);
    assert!(masked_ending(&masked.iban, "0189"), "{}", masked.iban);
    assert_eq!(
        masked
            .iban
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .count(),
        4,
        "{}",
        masked.iban
    );
    assert_eq!(masked.swift_bic, SWIFT);
    assert_eq!(
        list_payouts(&incentives_user, &founder.account).await?,
        vec![masked.clone()]
    );
    // The incentives user only reads.
    assert_eq!(
        code(create_payout(&incentives_user, french_bank()).await),
        Code::PermissionDenied
    );

    // At rest, neither the IBAN nor the TIN is in clear, in any column.
    let pool = h.suite.pool("profile").await?;
    let clear: [&str; 3] = [IBAN, BBAN, TIN];
    for table in ["payout_profiles", "tax_profiles"] {
        let rows = rows_as_text(&pool, table).await?;
        assert_eq!(rows.len(), 1, "{table}");
        for row in &rows {
            for value in clear {
                assert!(
                    !row.contains(value),
                    "{table} holds {value} in clear: {row}"
                );
            }
        }
    }
    let sealed: Vec<u8> = sqlx::query_scalar("SELECT number_sealed FROM payout_profiles")
        .fetch_one(&pool)
        .await?;
    let tin_sealed: Vec<u8> = sqlx::query_scalar("SELECT tin_sealed FROM tax_profiles")
        .fetch_one(&pool)
        .await?;
    for value in clear {
        assert!(!contains_bytes(&sealed, value.as_bytes()));
        assert!(!contains_bytes(&tin_sealed, value.as_bytes()));
    }
    // Nor anywhere else the service keeps data: the activity log, the
    // idempotency replies and the outbox.
    for table in ["activity", "idempotency", "outbox"] {
        for row in rows_as_text(&pool, table).await? {
            for value in clear {
                assert!(!row.contains(value), "{table} holds {value}: {row}");
            }
        }
    }
    let blobs: Vec<Option<Vec<u8>>> =
        sqlx::query_scalar("SELECT response FROM idempotency UNION ALL SELECT payload FROM outbox")
            .fetch_all(&pool)
            .await?;
    for blob in blobs.into_iter().flatten() {
        for value in clear {
            assert!(!contains_bytes(&blob, value.as_bytes()), "{value}");
        }
    }
    pool.close().await;
    h.stop().await
}

#[tokio::test]
async fn payouts_follow_the_legal_country_and_only_readers_see_them() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (founder, _) = h.enrolled_founder().await?;
    create_tax(&founder, french_tax_profile()).await?;

    // The account is French: a German IBAN, a bad IBAN, another bank country
    // and a German bank are refused.
    let cases: [(PayoutProfile, &str); 6] = [
        (
            PayoutProfile {
                iban: "DE89370400440532013000".into(),
                ..french_bank()
            },
            "payout_profile.iban",
        ),
        (
            PayoutProfile {
                iban: "FR7630006000011234567890188".into(),
                ..french_bank()
            },
            "payout_profile.iban",
        ),
        (
            PayoutProfile {
                bank_country: "DE".into(),
                ..french_bank()
            },
            "payout_profile.bank_country",
        ),
        (
            PayoutProfile {
                swift_bic: "DEUTDEFF".into(),
                ..french_bank()
            },
            "payout_profile.swift_bic",
        ),
        (
            PayoutProfile {
                swift_bic: "BNP1".into(),
                ..french_bank()
            },
            "payout_profile.swift_bic",
        ),
        (
            PayoutProfile {
                method: PayoutMethod::Paypal.into(),
                paypal_email: "not an email".into(),
                iban: String::new(),
                swift_bic: String::new(),
                ..french_bank()
            },
            "payout_profile.paypal_email",
        ),
    ];
    for (profile, field) in cases {
        let refused = status(create_payout(&founder, profile.clone()).await);
        assert_eq!(refused.code(), Code::InvalidArgument, "{profile:?}");
        assert_eq!(violated_fields(&refused), [field], "{profile:?}");
    }
    let both = status(
        create_payout(
            &founder,
            PayoutProfile {
                account_number: "12345678".into(),
                ..french_bank()
            },
        )
        .await,
    );
    assert_eq!(both.code(), Code::InvalidArgument);
    assert!(list_payouts(&founder, &founder.account).await?.is_empty());

    // PayPal with a valid email; the bank account with spaces in its IBAN.
    let paypal = create_payout(
        &founder,
        PayoutProfile {
            method: PayoutMethod::Paypal.into(),
            paypal_email: "payouts@contoso.fr".into(),
            ..PayoutProfile::default()
        },
    )
    .await?;
    assert_eq!(paypal.method(), PayoutMethod::Paypal);
    assert_eq!(paypal.paypal_email, "payouts@contoso.fr");
    assert!(!paypal.masked);
    let bank = create_payout(
        &founder,
        PayoutProfile {
            iban: "FR76 3000 6000 0112 3456 7890 189".into(),
            bank_country: String::new(),
            ..french_bank()
        },
    )
    .await?;
    assert_eq!(bank.iban, IBAN);
    assert_eq!(bank.bank_country, "FR");

    // Updating only the holder keeps the sealed IBAN readable.
    let renamed = update_payout(
        &founder,
        PayoutProfile {
            account_holder_name: "Contoso Europe SAS".into(),
            ..bank.clone()
        },
        &["account_holder_name"],
    )
    .await?;
    assert_eq!(renamed.account_holder_name, "Contoso Europe SAS");
    assert_eq!(renamed.iban, IBAN);
    assert_ne!(renamed.etag, bank.etag);
    let read = get_payout(&founder, &bank.name).await?;
    assert_eq!(read.iban, IBAN);
    assert!(!read.masked);
    assert_eq!(read.account_holder_name, "Contoso Europe SAS");
    // A stale etag is refused and changes nothing.
    let stale = status(
        update_payout(
            &founder,
            PayoutProfile {
                account_holder_name: "Contoso Stale SAS".into(),
                ..bank.clone()
            },
            &["account_holder_name"],
        )
        .await,
    );
    assert_eq!(
        (stale.code(), reason(&stale)),
        (Code::Aborted, "ETAG_MISMATCH".to_owned())
    );
    // An update goes through the same rules as a creation.
    let german = status(
        update_payout(
            &founder,
            PayoutProfile {
                iban: "DE89370400440532013000".into(),
                ..renamed.clone()
            },
            &["iban"],
        )
        .await,
    );
    assert_eq!(violated_fields(&german), ["payout_profile.iban"]);
    let not_maskable = status(
        update_payout(
            &founder,
            PayoutProfile {
                bank_country: "DE".into(),
                ..renamed.clone()
            },
            &["bank_country"],
        )
        .await,
    );
    assert_eq!(violated_fields(&not_maskable), ["update_mask"]);
    assert_eq!(get_payout(&founder, &bank.name).await?, renamed);

    // The hold switch.
    let held = set_hold(&founder, &founder.account, true).await?;
    assert!(held.hold_payouts);
    assert_eq!(held.name, format!("{}/payoutSettings", founder.account));
    let pool = h.suite.pool("profile").await?;
    let account: uuid::Uuid = founder.account.trim_start_matches("accounts/").parse()?;
    let stored = |pool: PgPool| async move {
        sqlx::query_scalar::<_, bool>("SELECT hold_payouts FROM profiles WHERE account_id = $1")
            .bind(account)
            .fetch_one(&pool)
            .await
    };
    assert!(stored(pool.clone()).await?);
    let released = set_hold(&founder, &founder.account, false).await?;
    assert!(!released.hold_payouts);
    assert!(!stored(pool.clone()).await?);
    pool.close().await;

    // A role without profile.payout.read reads nothing.
    let reporter = h.member_with(&founder, &["report_viewer"]).await?;
    assert_eq!(
        code(get_payout(&reporter, &bank.name).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(list_payouts(&reporter, &founder.account).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(get_tax(&reporter, &founder.account).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(set_hold(&reporter, &founder.account, true).await),
        Code::PermissionDenied
    );

    // Another account finds nothing, not even under its own account name.
    let (stranger, _) = h.enrolled_founder().await?;
    let disguised = bank.name.replace(&founder.account, &stranger.account);
    for name in [&bank.name, &disguised] {
        assert_eq!(code(get_payout(&stranger, name).await), Code::NotFound);
        assert_eq!(
            code(
                update_payout(
                    &stranger,
                    PayoutProfile {
                        name: name.clone(),
                        account_holder_name: "Fabrikam SAS".into(),
                        etag: String::new(),
                        ..renamed.clone()
                    },
                    &["account_holder_name"],
                )
                .await
            ),
            Code::NotFound
        );
    }
    assert_eq!(
        code(list_payouts(&stranger, &founder.account).await),
        Code::NotFound
    );
    assert_eq!(
        code(get_tax(&stranger, &founder.account).await),
        Code::NotFound
    );
    assert_eq!(
        code(set_hold(&stranger, &founder.account, true).await),
        Code::NotFound
    );
    assert!(list_payouts(&stranger, &stranger.account).await?.is_empty());

    // The activity log shows the payout changes, never the clear IBAN.
    let activity = all_activity(&founder).await?;
    let actions: Vec<_> = activity.iter().map(|(a, _, _)| a.as_str()).collect();
    for expected in [
        "tax_profile.created",
        "payout_profile.created",
        "payout_profile.updated",
        "payouts.hold_changed",
    ] {
        assert!(actions.contains(&expected), "{expected}: {actions:?}");
    }
    for (action, old, new) in &activity {
        for value in [IBAN, BBAN, TIN] {
            assert!(
                !old.contains(value) && !new.contains(value),
                "{action} shows {value}: {old} {new}"
            );
        }
    }
    let created_bank = activity
        .iter()
        .filter(|(a, _, _)| a == "payout_profile.created")
        .any(|(_, _, new)| new.contains("0189"));
    assert!(created_bank, "{activity:?}");
    h.stop().await
}
