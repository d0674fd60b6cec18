//! Shared helpers of profile's tests: a running suite, founders signed up
//! through identity, members with roles, clients of profile that send a
//! token, valid legal profiles and locations, events and status assertions.

#![allow(dead_code, clippy::expect_used, clippy::panic, clippy::unwrap_used)]

use std::time::Duration;

use partnerhub_proto::identity::v1::{
    ChangePasswordRequest, CreateUserRequest, Member, RoleAssignment, Session, SignInRequest,
    SignUpRequest, UpdateMemberRequest, auth_service_client::AuthServiceClient,
    member_service_client::MemberServiceClient,
};
use partnerhub_proto::profile::v1::{
    Address, Contact, EnrollRequest, EnrollResponse, LegalProfile, Location, ProgramKind,
    enrollment_service_client::EnrollmentServiceClient,
    identifier_service_client::IdentifierServiceClient,
    legal_profile_service_client::LegalProfileServiceClient,
    location_service_client::LocationServiceClient,
};
use partnerhub_testkit::{EventTap, Suite, TappedEvent, unique};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// A password that passes identity's policy.
pub const PASSWORD: &str = "analytical engine 1843";
/// How long the bus must stay quiet before a drain of the event tap ends.
pub const QUIET: Duration = Duration::from_secs(2);
/// Prefix of profile's event types.
pub const PROFILE_EVENTS: &str = "partnerhub.profile.v1.";

/// A running suite.
pub struct Harness {
    pub suite: Suite,
}

impl Harness {
    /// Starts the five services.
    pub async fn start() -> anyhow::Result<Self> {
        Ok(Self {
            suite: Suite::start().await?,
        })
    }

    /// A tap on every event of this suite's bus (start it before the calls
    /// whose events it should see).
    pub async fn tap(&self) -> anyhow::Result<EventTap> {
        EventTap::start(&self.suite.bus).await
    }

    /// A channel to identity.
    pub fn identity(&self) -> Channel {
        Suite::channel(self.suite.identity).expect("identity channel")
    }

    /// A channel to profile.
    pub fn profile(&self) -> Channel {
        Suite::channel(self.suite.profile).expect("profile channel")
    }

    /// AuthService client (public calls).
    pub fn auth(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.identity())
    }

    /// IdentifierService client without a token.
    pub fn anonymous_identifiers(&self) -> IdentifierServiceClient<Channel> {
        IdentifierServiceClient::new(self.profile())
    }

    fn actor(&self, email: &str, session: Session) -> Actor {
        Actor::from_session(self.identity(), self.profile(), email, session)
    }

    /// Signs a new founder up (Global admin, Admin agent, Owner of a new
    /// account).
    pub async fn sign_up(&self) -> anyhow::Result<Actor> {
        let email = format!("founder.{}@contoso.com", unique());
        let session = self
            .auth()
            .sign_up(SignUpRequest {
                email: email.clone(),
                given_name: "Ada".into(),
                family_name: "Lovelace".into(),
                password: PASSWORD.into(),
                account_display_name: "Contoso".into(),
                locale: "en-US".into(),
            })
            .await?
            .into_inner();
        Ok(self.actor(&email, session))
    }

    /// Signs a founder up and enrolls the account in the partner program with
    /// [`french_company`].
    pub async fn enrolled_founder(&self) -> anyhow::Result<(Actor, EnrollResponse)> {
        let founder = self.sign_up().await?;
        let enrolled = founder
            .enroll(french_company("Contoso France SAS"), ProgramKind::Partner)
            .await?;
        Ok((founder, enrolled))
    }

    /// Signs `email` in with `password`, optionally to `account`.
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        account: &str,
    ) -> Result<Actor, Status> {
        let session = self
            .auth()
            .sign_in(SignInRequest {
                email: email.into(),
                password: password.into(),
                account: account.into(),
            })
            .await?
            .into_inner();
        Ok(self.actor(email, session))
    }

    /// Creates a user with the `roles` in `by`'s account, changes the
    /// temporary password to [`PASSWORD`] and returns them signed in.
    pub async fn member_with(&self, by: &Actor, roles: &[&str]) -> anyhow::Result<Actor> {
        self.member_with_roles(by, roles.iter().map(|r| role(r)).collect())
            .await
    }

    /// Like [`Harness::member_with`], with role assignments (which may be
    /// limited to locations).
    pub async fn member_with_roles(
        &self,
        by: &Actor,
        roles: Vec<RoleAssignment>,
    ) -> anyhow::Result<Actor> {
        let email = format!("member.{}@contoso.com", unique());
        let created = by
            .members()
            .create_user(by.req(CreateUserRequest {
                parent: by.account.clone(),
                email: email.clone(),
                given_name: "Grace".into(),
                family_name: "Hopper".into(),
                roles,
                request_id: String::new(),
            }))
            .await?
            .into_inner();
        let first = self
            .sign_in(&email, &created.temporary_password, &by.account)
            .await?;
        let session = first
            .auth()
            .change_password(first.req(ChangePasswordRequest {
                current_password: created.temporary_password.clone(),
                new_password: PASSWORD.into(),
            }))
            .await?
            .into_inner();
        Ok(self.actor(&email, session))
    }

    /// Gives `member` exactly `roles` in `by`'s account (identity's
    /// UpdateMember) and signs them in again so that the new token carries
    /// them.
    pub async fn set_roles(
        &self,
        by: &Actor,
        member: &Actor,
        roles: Vec<RoleAssignment>,
    ) -> anyhow::Result<Actor> {
        by.members()
            .update_member(by.req(UpdateMemberRequest {
                member: Some(Member {
                    name: member.member_name(),
                    roles,
                    ..Member::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["roles".into()],
                }),
            }))
            .await?;
        Ok(self.sign_in(&member.email, PASSWORD, &by.account).await?)
    }

    /// Stops the suite.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.suite.stop().await
    }
}

/// A signed-in user with clients that send their token.
#[derive(Clone, Debug)]
pub struct Actor {
    /// Channel to identity.
    pub identity: Channel,
    /// Channel to profile.
    pub profile: Channel,
    pub email: String,
    /// `users/{id}`.
    pub user: String,
    /// `accounts/{id}`.
    pub account: String,
    pub token: String,
}

impl Actor {
    pub fn from_session(
        identity: Channel,
        profile: Channel,
        email: &str,
        session: Session,
    ) -> Self {
        Self {
            identity,
            profile,
            email: email.to_owned(),
            user: session.user.unwrap_or_default().name,
            account: session.account.unwrap_or_default().name,
            token: session.access_token.unwrap_or_default().token,
        }
    }

    /// `message` with this actor's bearer token.
    pub fn req<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let value =
            MetadataValue::try_from(format!("Bearer {}", self.token)).expect("token header");
        request.metadata_mut().insert("authorization", value);
        request
    }

    /// `accounts/{a}/members/{u}` of this actor in its account.
    pub fn member_name(&self) -> String {
        format!(
            "{}/members/{}",
            self.account,
            self.user.trim_start_matches("users/")
        )
    }

    /// `accounts/{a}/legalProfile` of this actor's account.
    pub fn legal_profile_name(&self) -> String {
        format!("{}/legalProfile", self.account)
    }

    pub fn auth(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.identity.clone())
    }
    pub fn members(&self) -> MemberServiceClient<Channel> {
        MemberServiceClient::new(self.identity.clone())
    }
    pub fn enrollment(&self) -> EnrollmentServiceClient<Channel> {
        EnrollmentServiceClient::new(self.profile.clone())
    }
    pub fn legal(&self) -> LegalProfileServiceClient<Channel> {
        LegalProfileServiceClient::new(self.profile.clone())
    }
    pub fn locations(&self) -> LocationServiceClient<Channel> {
        LocationServiceClient::new(self.profile.clone())
    }
    pub fn identifiers(&self) -> IdentifierServiceClient<Channel> {
        IdentifierServiceClient::new(self.profile.clone())
    }

    /// The request that enrolls this actor's account with `profile` in
    /// `program`, accepting the agreement.
    pub fn enroll_request(&self, profile: LegalProfile, program: ProgramKind) -> EnrollRequest {
        EnrollRequest {
            parent: self.account.clone(),
            legal_profile: Some(profile),
            program: program.into(),
            accept_agreement: true,
            request_id: String::new(),
        }
    }

    /// Enrolls this actor's account with `profile` in `program`.
    pub async fn enroll(
        &self,
        profile: LegalProfile,
        program: ProgramKind,
    ) -> Result<EnrollResponse, Status> {
        Ok(self
            .enrollment()
            .enroll(self.req(self.enroll_request(profile, program)))
            .await?
            .into_inner())
    }

    /// Adds a location [`location`] named `business_name` to this actor's
    /// account.
    pub async fn add_location(&self, business_name: &str) -> Result<Location, Status> {
        Ok(self
            .locations()
            .add_location(self.req(partnerhub_proto::profile::v1::AddLocationRequest {
                parent: self.account.clone(),
                location: Some(location(business_name)),
                request_id: String::new(),
            }))
            .await?
            .into_inner())
    }
}

/// A company-wide role assignment.
pub fn role(id: &str) -> RoleAssignment {
    RoleAssignment {
        role: id.into(),
        locations: vec![],
    }
}

/// A role assignment limited to `locations` (location ids).
pub fn scoped_role(id: &str, locations: &[&str]) -> RoleAssignment {
    RoleAssignment {
        role: id.into(),
        locations: locations.iter().map(|l| (*l).to_owned()).collect(),
    }
}

/// The location id: the last segment of `accounts/{a}/locations/{l}`.
pub fn location_id(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or_default()
}

/// A valid address in Paris.
pub fn paris() -> Address {
    Address {
        line1: "1 Rue de Rivoli".into(),
        line2: String::new(),
        city: "Paris".into(),
        state: String::new(),
        postal_code: "75001".into(),
        country: "FR".into(),
    }
}

/// A valid address in Lyon.
pub fn lyon() -> Address {
    Address {
        line1: "10 Place Bellecour".into(),
        line2: "Bâtiment B".into(),
        city: "Lyon".into(),
        state: String::new(),
        postal_code: "69002".into(),
        country: "FR".into(),
    }
}

/// A valid contact.
pub fn contact(given_name: &str, family_name: &str) -> Contact {
    Contact {
        given_name: given_name.into(),
        middle_name: String::new(),
        family_name: family_name.into(),
        email: format!(
            "{}.{}@contoso.fr",
            given_name.to_lowercase(),
            family_name.to_lowercase()
        ),
        phone: "+33123456789".into(),
    }
}

/// A valid legal profile of a French company named `legal_name`.
pub fn french_company(legal_name: &str) -> LegalProfile {
    LegalProfile {
        legal_name: legal_name.into(),
        address: Some(paris()),
        registration_id: "552 120 222".into(),
        primary_contact: Some(contact("Marie", "Curie")),
        ..LegalProfile::default()
    }
}

/// A valid location named `business_name` in Lyon.
pub fn location(business_name: &str) -> Location {
    Location {
        business_name: business_name.into(),
        address: Some(lyon()),
        contact: Some(contact("Pierre", "Curie")),
        ..Location::default()
    }
}

/// Whether `id` is a partner id: exactly 7 ASCII digits.
pub fn is_partner_id(id: &str) -> bool {
    id.len() == 7 && id.bytes().all(|b| b.is_ascii_digit())
}

/// The events of enrollment, the legal profile and locations (other
/// features' events, such as program status changes, are left out).
pub const LEGAL_EVENTS: &[&str] = &[
    "EnrollmentSubmitted",
    "LegalProfileChanged",
    "ContactsChanged",
    "LocationAdded",
];

/// Profile's enrollment, legal-profile and location events among `events`
/// ([`LEGAL_EVENTS`]), by type without the package, in arrival order.
pub fn profile_event_types(events: &[TappedEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| e.message_type.strip_prefix(PROFILE_EVENTS))
        .filter(|t| LEGAL_EVENTS.contains(t))
        .map(str::to_owned)
        .collect()
}

/// The events of type `M` among `events`, decoded, in arrival order.
pub fn decoded<M: prost::Message + prost::Name + Default>(events: &[TappedEvent]) -> Vec<M> {
    events
        .iter()
        .filter(|e| e.message_type == M::full_name())
        .map(|e| M::decode(e.payload.as_slice()).expect("decodable event"))
        .collect()
}

/// The code of a failed call (panics with the value on success).
pub fn code<T: std::fmt::Debug>(result: Result<T, Status>) -> Code {
    match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(s) => s.code(),
    }
}

/// The status of a failed call (panics with the value on success).
pub fn status<T: std::fmt::Debug>(result: Result<T, Status>) -> Status {
    match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(s) => s,
    }
}

/// The `ErrorInfo` reason of a status.
pub fn reason(status: &Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

/// The fields of the `BadRequest` of a status.
pub fn violated_fields(status: &Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// The description of the violation of `field` in the `BadRequest` of a
/// status (empty when there is none).
pub fn violation(status: &Status, field: &str) -> String {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .bad_request()
        .and_then(|b| {
            b.field_violations
                .iter()
                .find(|v| v.field == field)
                .map(|v| v.description.clone())
        })
        .unwrap_or_default()
}

/// A legal profile without the verification status it mirrors: verification
/// moves that in the background, so comparisons of what the partner
/// entered leave it out.
pub fn entered(mut profile: LegalProfile) -> LegalProfile {
    profile.verification_status = 0;
    profile.verification_sub_status = 0;
    profile
}
