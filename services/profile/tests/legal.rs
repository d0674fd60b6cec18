//! Profile's enrollment, legal profile, locations and partner lookup, through
//! the gRPC API against the real suite (PostgreSQL and RabbitMQ), with the
//! events they emit.

mod common;

use common::{
    Actor, Harness, code, contact, decoded, entered, french_company, is_partner_id, location,
    location_id, paris, profile_event_types, reason, scoped_role, status, violated_fields,
    violation,
};
use partnerhub_proto::profile::v1::{
    AddLocationRequest, Address, ContactsChanged, DeleteLocationRequest, EnrollRequest,
    EnrollmentSubmitted, GetLegalProfileRequest, GetLocationRequest, LegalProfile,
    LegalProfileChanged, ListLocationsRequest, Location, LocationAdded, LookupPartnerRequest,
    ProgramKind, UpdateLegalProfileRequest, UpdateLegalProfileResponse, UpdateLocationRequest,
};
use partnerhub_proto::verification::v1::Status as VerificationStatus;
use partnerhub_testkit::unique;
use prost_types::FieldMask;
use tonic::{Code, Status};

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

async fn get_legal(actor: &Actor, name: &str) -> Result<LegalProfile, Status> {
    Ok(actor
        .legal()
        .get_legal_profile(actor.req(GetLegalProfileRequest { name: name.into() }))
        .await?
        .into_inner())
}

async fn update_legal(
    actor: &Actor,
    profile: LegalProfile,
    paths: &[&str],
) -> Result<UpdateLegalProfileResponse, Status> {
    Ok(actor
        .legal()
        .update_legal_profile(actor.req(UpdateLegalProfileRequest {
            legal_profile: Some(profile),
            update_mask: mask(paths),
        }))
        .await?
        .into_inner())
}

async fn list_locations(
    actor: &Actor,
    parent: &str,
    page_size: i32,
    page_token: &str,
) -> Result<(Vec<Location>, String), Status> {
    let page = actor
        .locations()
        .list_locations(actor.req(ListLocationsRequest {
            parent: parent.into(),
            page_size,
            page_token: page_token.into(),
        }))
        .await?
        .into_inner();
    Ok((page.locations, page.next_page_token))
}

async fn get_location(actor: &Actor, name: &str) -> Result<Location, Status> {
    Ok(actor
        .locations()
        .get_location(actor.req(GetLocationRequest { name: name.into() }))
        .await?
        .into_inner())
}

async fn update_location(
    actor: &Actor,
    location: Location,
    paths: &[&str],
) -> Result<Location, Status> {
    Ok(actor
        .locations()
        .update_location(actor.req(UpdateLocationRequest {
            location: Some(location),
            update_mask: mask(paths),
        }))
        .await?
        .into_inner())
}

async fn delete_location(actor: &Actor, name: &str, confirm: &str) -> Result<(), Status> {
    actor
        .locations()
        .delete_location(actor.req(DeleteLocationRequest {
            name: name.into(),
            confirm_partner_id: confirm.into(),
            etag: String::new(),
        }))
        .await?;
    Ok(())
}

async fn lookup(
    actor: &Actor,
    partner_id: &str,
) -> Result<partnerhub_proto::profile::v1::LookupPartnerResponse, Status> {
    Ok(actor
        .identifiers()
        .lookup_partner(actor.req(LookupPartnerRequest {
            partner_id: partner_id.into(),
        }))
        .await?
        .into_inner())
}

#[tokio::test]
async fn enroll_assigns_partner_ids_and_a_headquarters_location() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let founder = h.sign_up().await?;
    let mut tap = h.tap().await?;
    let request = EnrollRequest {
        request_id: format!("enroll-{}", unique()),
        ..founder.enroll_request(french_company("Contoso France SAS"), ProgramKind::Partner)
    };
    let first = founder
        .enrollment()
        .enroll(founder.req(request.clone()))
        .await?
        .into_inner();
    assert!(first.warnings.is_empty(), "{:?}", first.warnings);
    let profile = first.legal_profile.clone().unwrap_or_default();
    assert_eq!(profile.name, founder.legal_profile_name());
    assert!(
        is_partner_id(&profile.global_partner_id),
        "{}",
        profile.global_partner_id
    );
    assert_eq!(profile.legal_name, "Contoso France SAS");
    assert_eq!(profile.address, Some(paris()));
    assert_eq!(profile.primary_contact, Some(contact("Marie", "Curie")));
    assert!(!profile.etag.is_empty());
    let hq = first.headquarters.clone().unwrap_or_default();
    assert!(hq.headquarters);
    assert!(
        hq.name
            .starts_with(&format!("{}/locations/", founder.account)),
        "{}",
        hq.name
    );
    assert!(is_partner_id(&hq.partner_id), "{}", hq.partner_id);
    assert_ne!(hq.partner_id, profile.global_partner_id);
    assert_eq!(hq.business_name, profile.legal_name);
    assert_eq!(hq.address, profile.address);
    assert_eq!(hq.contact, profile.primary_contact);

    let events = tap.drain(common::QUIET).await?;
    let submitted = decoded::<EnrollmentSubmitted>(&events);
    assert_eq!(submitted.len(), 1, "{:?}", profile_event_types(&events));
    let event = &submitted[0];
    assert_eq!(event.account, founder.account);
    assert_eq!(event.legal_name, "Contoso France SAS");
    assert_eq!(event.global_partner_id, profile.global_partner_id);
    assert_eq!(event.headquarters, hq.name);
    assert_eq!(event.program(), ProgramKind::Partner);
    assert_eq!(event.address, Some(paris()));
    assert_eq!(event.registration_id, "552 120 222");

    assert_eq!(
        entered(get_legal(&founder, &founder.legal_profile_name()).await?),
        entered(profile)
    );
    let (locations, _) = list_locations(&founder, &founder.account, 0, "").await?;
    assert_eq!(locations, vec![hq.clone()]);

    // Enrolled once: a second enrollment is refused…
    let again = status(
        founder
            .enroll(french_company("Contoso Bis SARL"), ProgramKind::Partner)
            .await,
    );
    assert_eq!(
        (again.code(), reason(&again)),
        (Code::AlreadyExists, "ALREADY_ENROLLED".to_owned())
    );
    // …a retry of the first one replays its answer and changes nothing…
    let replayed = founder
        .enrollment()
        .enroll(founder.req(request.clone()))
        .await?
        .into_inner();
    assert_eq!(replayed, first);
    // …and its request id with another request is refused.
    let reused = status(
        founder
            .enrollment()
            .enroll(founder.req(EnrollRequest {
                legal_profile: Some(french_company("Contoso Ter SAS")),
                ..request.clone()
            }))
            .await,
    );
    assert_eq!(
        (reused.code(), reason(&reused)),
        (Code::InvalidArgument, "REQUEST_ID_REUSED".to_owned())
    );
    let (locations, _) = list_locations(&founder, &founder.account, 0, "").await?;
    assert_eq!(locations.len(), 1);
    let events = tap.drain(common::QUIET).await?;
    assert!(
        decoded::<EnrollmentSubmitted>(&events).is_empty(),
        "{:?}",
        profile_event_types(&events)
    );

    // Racing enrollments of one account: one wins, the other is refused…
    let other = h.sign_up().await?;
    let (x, y) = tokio::join!(
        other.enroll(french_company("Fabrikam SAS"), ProgramKind::Partner),
        other.enroll(french_company("Fabrikam Bis SAS"), ProgramKind::Partner),
    );
    let mut codes = [
        x.as_ref().map_or_else(Status::code, |_| Code::Ok),
        y.as_ref().map_or_else(Status::code, |_| Code::Ok),
    ];
    codes.sort_by_key(|c| *c as i32);
    assert_eq!(codes, [Code::Ok, Code::AlreadyExists], "{x:?} {y:?}");
    let (locations, _) = list_locations(&other, &other.account, 0, "").await?;
    assert_eq!(locations.len(), 1);
    // …and racing retries of one request get one answer.
    let third = h.sign_up().await?;
    let retried = EnrollRequest {
        request_id: format!("enroll-{}", unique()),
        ..third.enroll_request(french_company("Northwind SAS"), ProgramKind::Partner)
    };
    let (mut c1, mut c2) = (third.enrollment(), third.enrollment());
    let (x, y) = tokio::join!(
        c1.enroll(third.req(retried.clone())),
        c2.enroll(third.req(retried.clone())),
    );
    assert_eq!(x?.into_inner(), y?.into_inner());
    let events = tap.drain(common::QUIET).await?;
    let submitted = decoded::<EnrollmentSubmitted>(&events);
    let mut accounts: Vec<_> = submitted.iter().map(|e| e.account.as_str()).collect();
    accounts.sort_unstable();
    let mut expected = [other.account.as_str(), third.account.as_str()];
    expected.sort_unstable();
    assert_eq!(accounts, expected);
    tap.close().await;
    h.stop().await
}

#[tokio::test]
async fn enroll_validates_every_field_at_once() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let founder = h.sign_up().await?;
    let broken = |country: &str| {
        let mut profile = french_company("Ἀθηνᾶ Α.Ε.");
        profile.address = Some(Address {
            line1: "   ".into(),
            country: country.into(),
            ..paris()
        });
        profile.registration_id = String::new();
        profile.primary_contact = Some(partnerhub_proto::profile::v1::Contact {
            email: String::new(),
            ..contact("Marie", "Curie")
        });
        EnrollRequest {
            accept_agreement: false,
            ..founder.enroll_request(profile, ProgramKind::Partner)
        }
    };

    let bad_country = status(founder.enrollment().enroll(founder.req(broken("XX"))).await);
    assert_eq!(bad_country.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&bad_country),
        [
            "legal_profile.legal_name",
            "legal_profile.address.line1",
            "legal_profile.address.country",
            "legal_profile.primary_contact.email",
            "accept_agreement",
        ]
    );

    // A valid country that needs a registration id: the error names the id.
    let russian = status(founder.enrollment().enroll(founder.req(broken("RU"))).await);
    assert_eq!(russian.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&russian),
        [
            "legal_profile.legal_name",
            "legal_profile.address.line1",
            "legal_profile.registration_id",
            "legal_profile.primary_contact.email",
            "accept_agreement",
        ]
    );
    let description = violation(&russian, "legal_profile.registration_id");
    assert!(description.contains("INN"), "{description}");

    // Names that cannot be a company's.
    for name in ["LLC", "Inc.", "A", "--"] {
        let refused = status(
            founder
                .enroll(french_company(name), ProgramKind::Partner)
                .await,
        );
        assert_eq!(refused.code(), Code::InvalidArgument, "{name}");
        assert_eq!(
            violated_fields(&refused),
            ["legal_profile.legal_name"],
            "{name}"
        );
    }
    // Nothing was enrolled.
    assert_eq!(
        code(get_legal(&founder, &founder.legal_profile_name()).await),
        Code::NotFound
    );

    // A name that looks like a web domain goes through, with a warning.
    let enrolled = founder
        .enroll(french_company("contoso.com"), ProgramKind::Partner)
        .await?;
    assert_eq!(enrolled.warnings.len(), 1, "{:?}", enrolled.warnings);
    assert!(
        enrolled.warnings[0].contains("web domain"),
        "{:?}",
        enrolled.warnings
    );
    assert_eq!(
        enrolled.legal_profile.unwrap_or_default().legal_name,
        "contoso.com"
    );
    h.stop().await
}

#[tokio::test]
async fn csp_enrollment_takes_a_global_admin() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let founder = h.sign_up().await?;
    let admin = h.member_with(&founder, &["account_admin"]).await?;
    let denied = status(
        admin
            .enroll(
                french_company("Contoso France SAS"),
                ProgramKind::CspDirectBill,
            )
            .await,
    );
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    let missing = status(get_legal(&founder, &founder.legal_profile_name()).await);
    assert_eq!(
        (missing.code(), reason(&missing)),
        (Code::NotFound, "NOT_ENROLLED".to_owned())
    );
    assert_eq!(
        code(list_locations(&founder, &founder.account, 0, "").await),
        Code::NotFound
    );
    let enrolled = founder
        .enroll(
            french_company("Contoso France SAS"),
            ProgramKind::CspDirectBill,
        )
        .await?;
    let profile = enrolled.legal_profile.unwrap_or_default();
    assert!(is_partner_id(&profile.global_partner_id));
    // The account admin now sees what the Global admin enrolled.
    assert_eq!(
        entered(get_legal(&admin, &admin.legal_profile_name()).await?),
        entered(profile)
    );
    h.stop().await
}

#[tokio::test]
async fn update_legal_profile_emits_changes_only_for_verified_fields() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let founder = h.sign_up().await?;
    let mut tap = h.tap().await?;
    let mut company = french_company("Contoso France SAS");
    // France needs no registration id.
    company.registration_id = String::new();
    let enrolled = founder.enroll(company, ProgramKind::Partner).await?;
    tap.drain(common::QUIET).await?;
    let original = enrolled.legal_profile.unwrap_or_default();

    // The legal name: verified, so LegalProfileChanged with that field only.
    let renamed = update_legal(
        &founder,
        LegalProfile {
            legal_name: "Contoso Europe SAS".into(),
            ..original.clone()
        },
        &["legal_name"],
    )
    .await?
    .legal_profile
    .unwrap_or_default();
    assert_eq!(renamed.legal_name, "Contoso Europe SAS");
    assert_ne!(renamed.etag, original.etag);
    let events = tap.drain(common::QUIET).await?;
    assert_eq!(
        profile_event_types(&events),
        ["LegalProfileChanged"],
        "a name change is not a contacts change"
    );
    let changed = decoded::<LegalProfileChanged>(&events);
    assert_eq!(changed[0].changed_fields, ["legal_name"]);
    assert_eq!(changed[0].legal_name, "Contoso Europe SAS");
    assert_eq!(changed[0].account, founder.account);

    // The security contact alone: no verification, only the contacts.
    let security = contact("Alan", "Turing");
    let secured = update_legal(
        &founder,
        LegalProfile {
            security_contact: Some(security.clone()),
            ..renamed.clone()
        },
        &["security_contact"],
    )
    .await?
    .legal_profile
    .unwrap_or_default();
    assert_eq!(secured.security_contact, Some(security.clone()));
    assert_eq!(secured.legal_name, "Contoso Europe SAS");
    let events = tap.drain(common::QUIET).await?;
    assert_eq!(profile_event_types(&events), ["ContactsChanged"]);
    let contacts = decoded::<ContactsChanged>(&events);
    assert_eq!(contacts[0].security_contact, Some(security.clone()));
    assert_eq!(contacts[0].primary_contact, original.primary_contact);

    // The primary contact: verified and a contact.
    let primary = contact("Irene", "Joliot");
    let moved = update_legal(
        &founder,
        LegalProfile {
            primary_contact: Some(primary.clone()),
            ..secured.clone()
        },
        &["primary_contact"],
    )
    .await?
    .legal_profile
    .unwrap_or_default();
    assert_eq!(moved.primary_contact, Some(primary.clone()));
    let events = tap.drain(common::QUIET).await?;
    let mut types = profile_event_types(&events);
    types.sort();
    assert_eq!(types, ["ContactsChanged", "LegalProfileChanged"]);
    let changed = decoded::<LegalProfileChanged>(&events);
    assert_eq!(changed[0].changed_fields, ["primary_contact"]);
    assert_eq!(changed[0].primary_contact, Some(primary.clone()));
    let contacts = decoded::<ContactsChanged>(&events);
    assert_eq!(contacts[0].primary_contact, Some(primary.clone()));
    assert_eq!(contacts[0].security_contact, Some(security));

    // A stale etag is refused.
    let stale = status(
        update_legal(
            &founder,
            LegalProfile {
                legal_name: "Contoso Stale SAS".into(),
                ..secured.clone()
            },
            &["legal_name"],
        )
        .await,
    );
    assert_eq!(
        (stale.code(), reason(&stale)),
        (Code::Aborted, "ETAG_MISMATCH".to_owned())
    );

    // The mask must name known fields.
    for paths in [
        &[][..],
        &["verification_status"][..],
        &["global_partner_id"][..],
        &["legal_name", "nickname"][..],
    ] {
        let refused = status(update_legal(&founder, moved.clone(), paths).await);
        assert_eq!(refused.code(), Code::InvalidArgument, "{paths:?}");
        assert_eq!(violated_fields(&refused), ["update_mask"], "{paths:?}");
    }
    let no_mask = status(
        founder
            .legal()
            .update_legal_profile(founder.req(UpdateLegalProfileRequest {
                legal_profile: Some(moved.clone()),
                update_mask: None,
            }))
            .await,
    );
    assert_eq!(no_mask.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&no_mask), ["update_mask"]);

    // Moving to a country that requires a registration id needs one.
    let moscow = Address {
        line1: "Tverskaya 1".into(),
        line2: String::new(),
        city: "Moskva".into(),
        state: String::new(),
        postal_code: "125009".into(),
        country: "RU".into(),
    };
    let to_russia = LegalProfile {
        address: Some(moscow.clone()),
        ..moved.clone()
    };
    let refused = status(update_legal(&founder, to_russia.clone(), &["address"]).await);
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&refused), ["legal_profile.registration_id"]);
    assert!(
        violation(&refused, "legal_profile.registration_id").contains("INN"),
        "{refused:?}"
    );
    let refused =
        status(update_legal(&founder, to_russia.clone(), &["address", "registration_id"]).await);
    assert_eq!(violated_fields(&refused), ["legal_profile.registration_id"]);

    // A change to the same value changes nothing verified.
    let same = update_legal(&founder, moved.clone(), &["legal_name"])
        .await?
        .legal_profile
        .unwrap_or_default();
    // Refused calls and no-op changes emitted nothing.
    let events = tap.drain(common::QUIET).await?;
    assert!(
        profile_event_types(&events).is_empty(),
        "{:?}",
        profile_event_types(&events)
    );

    // With the id, the move goes through and only the address is rechecked.
    let russian = update_legal(
        &founder,
        LegalProfile {
            registration_id: "7707083893".into(),
            etag: same.etag.clone(),
            ..to_russia
        },
        &["address", "registration_id"],
    )
    .await?
    .legal_profile
    .unwrap_or_default();
    assert_eq!(russian.address, Some(moscow));
    assert_eq!(russian.registration_id, "7707083893");
    let events = tap.drain(common::QUIET).await?;
    assert_eq!(profile_event_types(&events), ["LegalProfileChanged"]);
    assert_eq!(
        decoded::<LegalProfileChanged>(&events)[0].changed_fields,
        ["address"]
    );

    let now = get_legal(&founder, &founder.legal_profile_name()).await?;
    assert_eq!(now, russian);
    assert_eq!(now.legal_name, "Contoso Europe SAS");
    assert_eq!(now.primary_contact, Some(primary));
    assert_eq!(now.global_partner_id, original.global_partner_id);
    tap.close().await;
    h.stop().await
}

#[tokio::test]
async fn security_contact_needs_a_global_admin() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (founder, _) = h.enrolled_founder().await?;
    let compliance = h.member_with(&founder, &["compliance_admin"]).await?;
    let account_admin = h.member_with(&founder, &["account_admin"]).await?;
    let name = founder.legal_profile_name();

    let current = get_legal(&compliance, &name).await?;
    let renamed = update_legal(
        &compliance,
        LegalProfile {
            legal_name: "Contoso Compliance SAS".into(),
            ..current
        },
        &["legal_name"],
    )
    .await?
    .legal_profile
    .unwrap_or_default();
    assert_eq!(renamed.legal_name, "Contoso Compliance SAS");

    let with_security = LegalProfile {
        legal_name: "Contoso Sneaky SAS".into(),
        security_contact: Some(contact("Alan", "Turing")),
        ..renamed.clone()
    };
    for member in [&compliance, &account_admin] {
        for paths in [
            &["security_contact"][..],
            &["legal_name", "security_contact"][..],
        ] {
            let denied = status(update_legal(member, with_security.clone(), paths).await);
            assert_eq!(denied.code(), Code::PermissionDenied, "{paths:?}");
        }
    }
    // Nothing of the refused calls was applied.
    assert_eq!(get_legal(&founder, &name).await?, renamed);

    let secured = update_legal(&founder, with_security, &["security_contact"])
        .await?
        .legal_profile
        .unwrap_or_default();
    assert_eq!(secured.security_contact, Some(contact("Alan", "Turing")));
    assert_eq!(secured.legal_name, "Contoso Compliance SAS");
    h.stop().await
}

#[tokio::test]
async fn view_only_roles_read_but_cannot_change() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (founder, enrolled) = h.enrolled_founder().await?;
    let hq = enrolled.headquarters.clone().unwrap_or_default();
    let viewer = h.member_with(&founder, &["mpn_partner_admin"]).await?;
    let reporter = h.member_with(&founder, &["report_viewer"]).await?;
    let name = founder.legal_profile_name();

    let profile = get_legal(&viewer, &name).await?;
    assert_eq!(
        Some(entered(profile.clone())),
        enrolled.legal_profile.map(entered)
    );
    let (locations, _) = list_locations(&viewer, &viewer.account, 0, "").await?;
    assert_eq!(locations, vec![hq.clone()]);
    assert_eq!(get_location(&viewer, &hq.name).await?, hq);

    let denied = status(
        update_legal(
            &viewer,
            LegalProfile {
                legal_name: "Contoso Viewer SAS".into(),
                ..profile.clone()
            },
            &["legal_name"],
        )
        .await,
    );
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(
        code(viewer.add_location("Contoso Lyon").await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            update_location(
                &viewer,
                Location {
                    business_name: "Contoso Viewer".into(),
                    ..hq.clone()
                },
                &["business_name"],
            )
            .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code(delete_location(&viewer, &hq.name, &hq.partner_id).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            viewer
                .enroll(french_company("Contoso Viewer SAS"), ProgramKind::Partner)
                .await
        ),
        Code::PermissionDenied
    );

    // Without the read permission, not even reading.
    assert_eq!(
        code(get_legal(&reporter, &name).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(list_locations(&reporter, &reporter.account, 0, "").await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(get_location(&reporter, &hq.name).await),
        Code::PermissionDenied
    );

    // Nothing changed.
    assert_eq!(get_legal(&founder, &name).await?, profile);
    let (locations, _) = list_locations(&founder, &founder.account, 0, "").await?;
    assert_eq!(locations, vec![hq]);
    h.stop().await
}

#[tokio::test]
async fn locations_add_update_delete_rules() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let founder = h.sign_up().await?;
    let mut tap = h.tap().await?;
    let enrolled = founder
        .enroll(french_company("Contoso France SAS"), ProgramKind::Partner)
        .await?;
    tap.drain(common::QUIET).await?;
    let global = enrolled.legal_profile.unwrap_or_default().global_partner_id;
    let hq = enrolled.headquarters.unwrap_or_default();

    let lyon = founder.add_location("Contoso Lyon").await?;
    assert!(is_partner_id(&lyon.partner_id), "{}", lyon.partner_id);
    assert_ne!(lyon.partner_id, hq.partner_id);
    assert_ne!(lyon.partner_id, global);
    assert!(!lyon.headquarters);
    assert!(
        lyon.name
            .starts_with(&format!("{}/locations/", founder.account)),
        "{}",
        lyon.name
    );
    assert_eq!(lyon.business_name, "Contoso Lyon");
    assert_eq!(lyon.address, location("x").address);
    let events = tap.drain(common::QUIET).await?;
    assert_eq!(profile_event_types(&events), ["LocationAdded"]);
    let added = &decoded::<LocationAdded>(&events)[0];
    assert_eq!(added.account, founder.account);
    assert_eq!(added.location, lyon.name);
    assert_eq!(added.partner_id, lyon.partner_id);
    assert_eq!(added.business_name, "Contoso Lyon");
    assert_eq!(added.address, lyon.address);

    // Adding checks the location like a legal profile.
    let refused = status(
        founder
            .locations()
            .add_location(founder.req(AddLocationRequest {
                parent: founder.account.clone(),
                location: Some(Location {
                    business_name: "LLC".into(),
                    address: Some(Address {
                        country: "XX".into(),
                        ..paris()
                    }),
                    contact: None,
                    ..Location::default()
                }),
                request_id: String::new(),
            }))
            .await,
    );
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&refused),
        [
            "location.business_name",
            "location.address.country",
            "location.contact"
        ]
    );

    let add_lille = AddLocationRequest {
        parent: founder.account.clone(),
        location: Some(location("Contoso Lille")),
        request_id: format!("lille-{}", unique()),
    };
    let lille = founder
        .locations()
        .add_location(founder.req(add_lille.clone()))
        .await?
        .into_inner();
    // A retry replays the answer: no second location, no second event.
    let replayed = founder
        .locations()
        .add_location(founder.req(add_lille))
        .await?
        .into_inner();
    assert_eq!(replayed, lille);
    let events = tap.drain(common::QUIET).await?;
    assert_eq!(profile_event_types(&events), ["LocationAdded"]);
    let (all, next) = list_locations(&founder, &founder.account, 0, "").await?;
    assert!(next.is_empty());
    let names: Vec<_> = all.iter().map(|l| l.name.clone()).collect();
    assert_eq!(names, [hq.name.as_str(), &lyon.name, &lille.name]);
    // One at a time, the pages give the same list.
    let mut paged = Vec::new();
    let mut token = String::new();
    for _ in 0..10 {
        let (page, next) = list_locations(&founder, &founder.account, 1, &token).await?;
        assert!(page.len() <= 1);
        paged.extend(page.into_iter().map(|l| l.name));
        if next.is_empty() {
            break;
        }
        token = next;
    }
    assert_eq!(paged, names);
    for (page_size, page_token, field) in [(-1, "", "page_size"), (1, "not a token", "page_token")]
    {
        let refused =
            status(list_locations(&founder, &founder.account, page_size, page_token).await);
        assert_eq!(refused.code(), Code::InvalidArgument, "{field}");
        assert_eq!(violated_fields(&refused), [field]);
    }

    // Updates carry the etag read.
    let renamed = update_location(
        &founder,
        Location {
            business_name: "Contoso Lyon Part-Dieu".into(),
            ..lyon.clone()
        },
        &["business_name"],
    )
    .await?;
    assert_eq!(renamed.business_name, "Contoso Lyon Part-Dieu");
    assert_eq!(renamed.partner_id, lyon.partner_id);
    assert_eq!(renamed.address, lyon.address);
    assert_ne!(renamed.etag, lyon.etag);
    let stale = status(
        update_location(
            &founder,
            Location {
                business_name: "Contoso Stale".into(),
                ..lyon.clone()
            },
            &["business_name"],
        )
        .await,
    );
    assert_eq!(
        (stale.code(), reason(&stale)),
        (Code::Aborted, "ETAG_MISMATCH".to_owned())
    );
    let refused = status(update_location(&founder, renamed.clone(), &["partner_id"]).await);
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&refused), ["update_mask"]);
    assert_eq!(get_location(&founder, &lyon.name).await?, renamed);

    // Deleting needs the partner id typed, and never the headquarters.
    let wrong = status(delete_location(&founder, &lyon.name, &hq.partner_id).await);
    assert_eq!(wrong.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&wrong), ["confirm_partner_id"]);
    let headquarters = status(delete_location(&founder, &hq.name, &hq.partner_id).await);
    assert_eq!(
        (headquarters.code(), reason(&headquarters)),
        (Code::FailedPrecondition, "HEADQUARTERS".to_owned())
    );
    let stale = status(
        founder
            .locations()
            .delete_location(founder.req(DeleteLocationRequest {
                name: lyon.name.clone(),
                confirm_partner_id: lyon.partner_id.clone(),
                etag: lyon.etag.clone(),
            }))
            .await,
    );
    assert_eq!(stale.code(), Code::Aborted);
    founder
        .locations()
        .delete_location(founder.req(DeleteLocationRequest {
            name: lyon.name.clone(),
            confirm_partner_id: lyon.partner_id.clone(),
            etag: renamed.etag.clone(),
        }))
        .await?;
    assert_eq!(
        code(get_location(&founder, &lyon.name).await),
        Code::NotFound
    );
    assert_eq!(
        code(delete_location(&founder, &lyon.name, &lyon.partner_id).await),
        Code::NotFound
    );
    let (left, _) = list_locations(&founder, &founder.account, 0, "").await?;
    let left: Vec<_> = left.into_iter().map(|l| l.name).collect();
    assert_eq!(left, [hq.name.as_str(), &lille.name]);

    // The deleted location's partner id stays taken: still a location id.
    assert_eq!(lookup(&founder, &global).await?.location_count, 2);
    let still = status(lookup(&founder, &lyon.partner_id).await);
    assert_eq!(
        (still.code(), reason(&still)),
        (Code::InvalidArgument, "LOCATION_PARTNER_ID".to_owned())
    );
    let pool = h.suite.pool("profile").await?;
    let kept: (String, Option<uuid::Uuid>) =
        sqlx::query_as("SELECT kind, location_id::uuid FROM partner_ids WHERE partner_id = $1")
            .bind(lyon.partner_id.parse::<i32>()?)
            .fetch_one(&pool)
            .await?;
    assert_eq!(kept.0, "LOCATION");
    assert_eq!(
        kept.1.map(|id| id.to_string()).as_deref(),
        Some(common::location_id(&lyon.name))
    );
    let marseille = founder.add_location("Contoso Marseille").await?;
    for taken in [&global, &hq.partner_id, &lyon.partner_id, &lille.partner_id] {
        assert_ne!(&marseille.partner_id, taken);
    }
    pool.close().await;

    // The last location stays.
    delete_location(&founder, &lille.name, &lille.partner_id).await?;
    delete_location(&founder, &marseille.name, &marseille.partner_id).await?;
    let last = status(delete_location(&founder, &hq.name, &hq.partner_id).await);
    assert_eq!(last.code(), Code::FailedPrecondition);
    assert!(
        ["LAST_LOCATION", "HEADQUARTERS"].contains(&reason(&last).as_str()),
        "{last:?}"
    );
    assert_eq!(get_location(&founder, &hq.name).await?, hq);
    tap.close().await;
    h.stop().await
}

#[tokio::test]
async fn location_scoped_roles_see_only_their_locations() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (founder, enrolled) = h.enrolled_founder().await?;
    let hq = enrolled.headquarters.unwrap_or_default();
    let a = founder.add_location("Contoso Lyon").await?;
    let b = founder.add_location("Contoso Lille").await?;

    let member = h.member_with(&founder, &["referrals_user"]).await?;
    // Company-wide, the role reads every location.
    let (all, _) = list_locations(&member, &member.account, 0, "").await?;
    assert_eq!(all.len(), 3);

    let member = h
        .set_roles(
            &founder,
            &member,
            vec![scoped_role("referrals_user", &[location_id(&a.name)])],
        )
        .await?;
    let (mine, next) = list_locations(&member, &member.account, 0, "").await?;
    assert_eq!(mine, vec![a.clone()]);
    assert!(next.is_empty());
    let (page, next) = list_locations(&member, &member.account, 1, "").await?;
    assert_eq!(page, vec![a.clone()]);
    assert!(next.is_empty(), "no page beyond the only visible location");
    assert_eq!(get_location(&member, &a.name).await?, a);
    for other in [&b, &hq] {
        let denied = status(get_location(&member, &other.name).await);
        assert_eq!(denied.code(), Code::PermissionDenied, "{}", other.name);
    }
    // Reading locations never gave the legal profile.
    assert_eq!(
        code(get_legal(&member, &member.legal_profile_name()).await),
        Code::PermissionDenied
    );
    h.stop().await
}

#[tokio::test]
async fn lookup_partner_resolves_global_ids_and_refuses_location_ids() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (founder, enrolled) = h.enrolled_founder().await?;
    let profile = enrolled.legal_profile.unwrap_or_default();
    let hq = enrolled.headquarters.unwrap_or_default();
    let added = founder.add_location("Contoso Lyon").await?;
    // Any signed-in user of any account may look a partner up (merges start
    // from another account).
    let stranger = h.sign_up().await?;

    for who in [&founder, &stranger] {
        let found = lookup(who, &profile.global_partner_id).await?;
        assert_eq!(found.account, founder.account);
        assert_eq!(found.legal_name, "Contoso France SAS");
        assert_eq!(found.country, "FR");
        assert_eq!(found.location_count, 2);
    }

    for location in [&hq.partner_id, &added.partner_id] {
        let refused = status(lookup(&stranger, location).await);
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert_eq!(reason(&refused), "LOCATION_PARTNER_ID");
        assert_eq!(violated_fields(&refused), ["partner_id"]);
    }

    let taken = [
        &profile.global_partner_id,
        &hq.partner_id,
        &added.partner_id,
    ];
    let unknown = (1_000_000..)
        .map(|n: i32| n.to_string())
        .find(|id| !taken.contains(&id))
        .unwrap_or_default();
    let missing = status(lookup(&stranger, &unknown).await);
    assert_eq!(missing.code(), Code::NotFound, "{unknown}");

    for malformed in ["12", "", "12345678", "abcdefg", "-123456"] {
        let refused = status(lookup(&stranger, malformed).await);
        assert_eq!(refused.code(), Code::InvalidArgument, "{malformed:?}");
        assert_eq!(violated_fields(&refused), ["partner_id"], "{malformed:?}");
    }

    let anonymous = status(
        h.anonymous_identifiers()
            .lookup_partner(LookupPartnerRequest {
                partner_id: profile.global_partner_id.clone(),
            })
            .await,
    );
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    h.stop().await
}

#[tokio::test]
async fn a_token_for_one_account_never_reaches_another_accounts_profile() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (a, _) = h.enrolled_founder().await?;
    let (b, b_enrolled) = h.enrolled_founder().await?;
    let b_hq = b_enrolled.headquarters.unwrap_or_default();
    let b_added = b.add_location("Contoso Lyon").await?;
    let b_profile = get_legal(&b, &b.legal_profile_name()).await?;
    let (b_locations, _) = list_locations(&b, &b.account, 0, "").await?;
    // B's location ids under A's account name.
    let disguised = format!("{}/locations/{}", a.account, location_id(&b_added.name));

    let not_found = |result: Result<(), Status>, what: &str| match result {
        Err(s) if s.code() == Code::NotFound => {}
        other => panic!("{what}: expected NOT_FOUND, got {other:?}"),
    };
    not_found(
        a.enrollment()
            .enroll(a.req(EnrollRequest {
                parent: b.account.clone(),
                ..a.enroll_request(french_company("Contoso Hijack SAS"), ProgramKind::Partner)
            }))
            .await
            .map(drop),
        "Enroll",
    );
    not_found(
        get_legal(&a, &b.legal_profile_name()).await.map(drop),
        "GetLegalProfile",
    );
    not_found(
        update_legal(
            &a,
            LegalProfile {
                legal_name: "Contoso Hijack SAS".into(),
                ..b_profile.clone()
            },
            &["legal_name"],
        )
        .await
        .map(drop),
        "UpdateLegalProfile",
    );
    not_found(
        list_locations(&a, &b.account, 0, "").await.map(drop),
        "ListLocations",
    );
    for name in [&b_hq.name, &b_added.name, &disguised] {
        not_found(get_location(&a, name).await.map(drop), "GetLocation");
        not_found(
            update_location(
                &a,
                Location {
                    name: name.clone(),
                    business_name: "Contoso Hijack".into(),
                    ..b_added.clone()
                },
                &["business_name"],
            )
            .await
            .map(drop),
            "UpdateLocation",
        );
        not_found(
            delete_location(&a, name, &b_added.partner_id).await,
            "DeleteLocation",
        );
    }
    not_found(
        a.locations()
            .add_location(a.req(AddLocationRequest {
                parent: b.account.clone(),
                location: Some(location("Contoso Hijack")),
                request_id: String::new(),
            }))
            .await
            .map(drop),
        "AddLocation",
    );

    // B is as it was.
    assert_eq!(
        entered(get_legal(&b, &b.legal_profile_name()).await?),
        entered(b_profile)
    );
    let (now, _) = list_locations(&b, &b.account, 0, "").await?;
    assert_eq!(now, b_locations);
    h.stop().await
}

#[tokio::test]
async fn legal_name_is_frozen_after_authorization_for_direct_bill() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let mut tap = h.tap().await?;
    let direct = h.sign_up().await?;
    direct
        .enroll(
            french_company("Contoso Direct SAS"),
            ProgramKind::CspDirectBill,
        )
        .await?;
    let (partner, _) = h.enrolled_founder().await?;
    // Let whatever the enrollments set off settle before authorizing.
    tap.drain(common::QUIET).await?;
    tap.close().await;

    // Authorized by verification (set in the database: the mirroring of
    // verification's status comes with a later feature).
    let pool = h.suite.pool("profile").await?;
    for actor in [&direct, &partner] {
        let account: uuid::Uuid = actor.account.trim_start_matches("accounts/").parse()?;
        let updated = sqlx::query(
            "UPDATE profiles SET verification_status = 'AUTHORIZED' WHERE account_id = $1",
        )
        .bind(account)
        .execute(&pool)
        .await?
        .rows_affected();
        assert_eq!(updated, 1);
    }
    pool.close().await;

    let frozen = get_legal(&direct, &direct.legal_profile_name()).await?;
    assert_eq!(frozen.verification_status(), VerificationStatus::Authorized);
    let refused = status(
        update_legal(
            &direct,
            LegalProfile {
                legal_name: "Contoso Renamed SAS".into(),
                ..frozen.clone()
            },
            &["legal_name"],
        )
        .await,
    );
    assert_eq!(
        (refused.code(), reason(&refused)),
        (Code::FailedPrecondition, "LEGAL_NAME_FROZEN".to_owned())
    );
    assert_eq!(
        get_legal(&direct, &direct.legal_profile_name()).await?,
        frozen
    );

    let open = get_legal(&partner, &partner.legal_profile_name()).await?;
    assert_eq!(open.verification_status(), VerificationStatus::Authorized);
    let renamed = update_legal(
        &partner,
        LegalProfile {
            legal_name: "Contoso Renamed SAS".into(),
            ..open
        },
        &["legal_name"],
    )
    .await?
    .legal_profile
    .unwrap_or_default();
    assert_eq!(renamed.legal_name, "Contoso Renamed SAS");
    h.stop().await
}

/// Profile replicas listening for the `profiles_changed` trigger's
/// notifications in this suite's database.
async fn cache_listeners(pool: &sqlx::PgPool) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND query LIKE 'LISTEN \"partnerhub_profiles\"%'",
    )
    .fetch_one(pool)
    .await?)
}

/// Renames a company straight in the database without the trigger's
/// notification (as if it were lost), so only an uncached read sees it.
async fn rename_quietly(
    pool: &sqlx::PgPool,
    account: uuid::Uuid,
    name: &str,
) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE profiles SET legal_name = $2 WHERE account_id = $1")
        .bind(account)
        .bind(name)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

#[tokio::test]
async fn legal_profile_reads_are_cached_per_replica_and_every_write_reaches_every_replica()
-> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (founder, _) = h.enrolled_founder().await?;
    let name = founder.legal_profile_name();
    let account: uuid::Uuid = founder.account.trim_start_matches("accounts/").parse()?;
    let replica = h
        .suite
        .start_profile_replica("k9:HxwdHhscGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=")
        .await?;
    let other = Actor {
        profile: partnerhub_testkit::Suite::channel(replica.addr)?,
        ..founder.clone()
    };
    let pool = h.suite.pool("profile").await?;
    let listening = |n: i64| {
        let pool = pool.clone();
        async move {
            partnerhub_testkit::eventually(std::time::Duration::from_secs(10), || {
                let pool = pool.clone();
                async move { (cache_listeners(&pool).await.ok()? == n).then_some(()) }
            })
            .await
        }
    };
    listening(2).await?;
    // LISTEN is visible a moment before the cache goes live.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    // Both replicas read and keep the row: a change that sends no
    // notification is not seen, which proves the reads come from memory.
    let first = get_legal(&founder, &name).await?;
    assert_eq!(get_legal(&other, &name).await?, first);
    rename_quietly(&pool, account, "Quietly Renamed SAS").await?;
    for actor in [&founder, &other] {
        assert_eq!(get_legal(actor, &name).await?.legal_name, first.legal_name);
    }

    // A write through one replica: that replica reads it at once, the other
    // as soon as the notification arrives.
    let renamed = update_legal(
        &founder,
        LegalProfile {
            legal_name: "Contoso Renamed SAS".into(),
            ..first.clone()
        },
        &["legal_name"],
    )
    .await?
    .legal_profile
    .unwrap_or_default();
    assert_eq!(get_legal(&founder, &name).await?, renamed);
    let seen = |actor: Actor, wanted: &'static str| {
        let name = name.clone();
        async move {
            partnerhub_testkit::eventually(std::time::Duration::from_secs(5), || {
                let (actor, name) = (actor.clone(), name.clone());
                async move {
                    let now = get_legal(&actor, &name).await.ok()?;
                    (now.legal_name == wanted).then_some(now)
                }
            })
            .await
        }
    };
    assert_eq!(
        seen(other.clone(), "Contoso Renamed SAS").await?.etag,
        renamed.etag
    );

    // A write outside the API (another service version, an operator) is
    // seen by both through the trigger.
    sqlx::query("UPDATE profiles SET legal_name = 'Renamed In SQL SAS' WHERE account_id = $1")
        .bind(account)
        .execute(&pool)
        .await?;
    seen(founder.clone(), "Renamed In SQL SAS").await?;
    seen(other.clone(), "Renamed In SQL SAS").await?;

    // Notifications sent while a listener is away are lost: a replica that
    // lost its listener forgets everything and reads the database until it
    // listens again.
    rename_quietly(&pool, account, "Renamed While Away SAS").await?;
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND query LIKE 'LISTEN \"partnerhub_profiles\"%'",
    )
    .execute(&pool)
    .await?;
    seen(founder.clone(), "Renamed While Away SAS").await?;
    seen(other.clone(), "Renamed While Away SAS").await?;
    listening(2).await?;

    pool.close().await;
    replica.stop().await?;
    h.stop().await
}
