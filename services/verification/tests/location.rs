//! A new location is verified on its own: its business against the
//! directory and, in covered countries, its address; each check's moves are
//! events.

mod common;

use common::{by_duns, check_of, enroll, wait_cases, wait_event};
use partnerhub_proto::profile::v1::location_service_client::LocationServiceClient;
use partnerhub_proto::profile::v1::{AddLocationRequest, Address, Contact, Location};
use partnerhub_proto::verification::v1::{CheckKind, CheckStatus, CheckStatusChanged};
use partnerhub_testkit::{EventTap, Suite, bearer};

#[tokio::test]
async fn a_new_location_opens_a_case_of_its_own() {
    let suite = Suite::start().await.unwrap();
    let mut tap = EventTap::start(&suite.bus).await.unwrap();
    let contoso = enroll(&suite, "Contoso", by_duns("Contoso SAS")).await;
    wait_cases(&suite, &contoso, 1).await;

    // Wingtip Toys is in the directory at this address; the city is typed
    // in small letters, which the Hungarian postal format capitalises.
    let added = LocationServiceClient::new(Suite::channel(suite.profile).unwrap())
        .add_location(
            bearer(
                &contoso.token,
                AddLocationRequest {
                    parent: contoso.account.clone(),
                    location: Some(Location {
                        business_name: "Wingtip Toys Kft.".into(),
                        address: Some(Address {
                            line1: "Andrássy út 60".into(),
                            city: "budapest".into(),
                            postal_code: "1062".into(),
                            country: "HU".into(),
                            ..Address::default()
                        }),
                        contact: Some(Contact {
                            given_name: "Ada".into(),
                            family_name: "Lovelace".into(),
                            email: contoso.email.clone(),
                            ..Contact::default()
                        }),
                        ..Location::default()
                    }),
                    request_id: String::new(),
                },
            )
            .unwrap(),
        )
        .await
        .unwrap()
        .into_inner();

    let cases = wait_cases(&suite, &contoso, 2).await;
    let case = &cases[0];
    assert_eq!(case.trigger, "LOCATION");
    assert_eq!(case.location, added.name);
    let mut kinds: Vec<CheckKind> = case.checks.iter().map(|c| c.kind()).collect();
    kinds.sort();
    assert_eq!(kinds, vec![CheckKind::Business, CheckKind::Address]);
    let business = check_of(&case.checks, CheckKind::Business);
    assert_eq!(business.status(), CheckStatus::Passed, "{business:?}");
    let address = check_of(&case.checks, CheckKind::Address);
    assert_eq!(address.status(), CheckStatus::ActionRequired, "{address:?}");
    let suggested = address.suggested_address.clone().unwrap_or_default();
    assert_eq!(suggested.city, "Budapest");
    assert_eq!(suggested.postal_code, "1062");

    // Each check's opening is an event naming it.
    let event: CheckStatusChanged = wait_event(
        &mut tap,
        "partnerhub.verification.v1.CheckStatusChanged",
        |e: &CheckStatusChanged| e.check == address.name,
    )
    .await;
    assert_eq!(event.status(), CheckStatus::ActionRequired);
    assert_eq!(event.reason, "ADDRESS_NOT_STANDARD");

    // The enrollment's case is untouched by the location's.
    let enrollment = &cases[1];
    assert_eq!(enrollment.trigger, "ENROLLMENT");
    assert!(
        enrollment.checks.iter().all(|c| c.reason != "SUPERSEDED"),
        "{enrollment:?}"
    );
    tap.close().await;
    suite.stop().await.unwrap();
}
