//! Shared helpers of identity's tests: a running suite, signed-up founders,
//! clients with a token, and status assertions.

#![allow(dead_code, clippy::expect_used, clippy::panic, clippy::unwrap_used)]

use std::time::Duration;

use partnerhub_proto::identity::v1::{
    CreateUserRequest, RoleAssignment, Session, SignInRequest, SignUpRequest,
    account_service_client::AccountServiceClient, activity_service_client::ActivityServiceClient,
    auth_service_client::AuthServiceClient, member_service_client::MemberServiceClient,
    role_service_client::RoleServiceClient, self_service_client::SelfServiceClient,
};
use partnerhub_testkit::{MailTap, Suite, SuiteOptions, unique};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// A password that passes the policy.
pub const PASSWORD: &str = "analytical engine 1843";
/// The secret of the test service account.
pub const SERVICE_SECRET: &str = "service account secret 42";

/// A running suite and a tap on the mails identity sends.
pub struct Harness {
    pub suite: Suite,
    pub mail: MailTap,
}

impl Harness {
    /// Starts the suite and the mail tap.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(SuiteOptions::default()).await
    }

    /// Starts the suite with `options` and the mail tap.
    pub async fn start_with(options: SuiteOptions) -> anyhow::Result<Self> {
        let suite = Suite::start_with(options).await?;
        let mail = MailTap::start(&suite.bus).await?;
        Ok(Self { suite, mail })
    }

    /// Starts the suite with a service account `ops` (secret [`SERVICE_SECRET`])
    /// holding `permissions`.
    pub async fn with_service_account(permissions: &[&str]) -> anyhow::Result<Self> {
        let secret_hash = partnerhub_identity::password::hash(SERVICE_SECRET.into()).await?;
        Self::start_with(SuiteOptions {
            service_accounts: vec![partnerhub_identity::config::ServiceAccount {
                client_id: "ops".into(),
                secret_hash,
                permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
            }],
            ..SuiteOptions::default()
        })
        .await
    }

    /// A token of the `ops` service account.
    pub async fn service_token(&self) -> anyhow::Result<String> {
        let response = self
            .auth()
            .issue_service_token(partnerhub_proto::identity::v1::IssueServiceTokenRequest {
                client_id: "ops".into(),
                client_secret: SERVICE_SECRET.into(),
            })
            .await?
            .into_inner();
        Ok(response.access_token.unwrap_or_default().token)
    }

    /// A channel to identity.
    pub fn channel(&self) -> Channel {
        Suite::channel(self.suite.identity).expect("identity channel")
    }

    /// AuthService client (public calls).
    pub fn auth(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.channel())
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
        Ok(Actor::from_session(self.channel(), &email, session))
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
        Ok(Actor::from_session(self.channel(), email, session))
    }

    /// Creates a user with `roles` in `by`'s account, changes the temporary
    /// password to [`PASSWORD`] and signs them in.
    pub async fn member_with(&self, by: &Actor, roles: &[&str]) -> anyhow::Result<Actor> {
        let email = format!("member.{}@contoso.com", unique());
        let created = by
            .members()
            .create_user(by.req(CreateUserRequest {
                parent: by.account.clone(),
                email: email.clone(),
                given_name: "Grace".into(),
                family_name: "Hopper".into(),
                roles: roles.iter().map(|r| role(r)).collect(),
                request_id: String::new(),
            }))
            .await?
            .into_inner();
        let first = self
            .sign_in(&email, &created.temporary_password, "")
            .await?;
        let session = first
            .auth()
            .change_password(
                first.req(partnerhub_proto::identity::v1::ChangePasswordRequest {
                    current_password: created.temporary_password.clone(),
                    new_password: PASSWORD.into(),
                }),
            )
            .await?
            .into_inner();
        Ok(Actor::from_session(self.channel(), &email, session))
    }

    /// Stops the suite.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.mail.close().await;
        self.suite.stop().await
    }
}

/// A signed-in user with clients that send their token.
#[derive(Clone, Debug)]
pub struct Actor {
    pub channel: Channel,
    pub email: String,
    /// `users/{id}`.
    pub user: String,
    /// `accounts/{id}`.
    pub account: String,
    pub token: String,
    pub refresh_token: String,
}

impl Actor {
    pub fn from_session(channel: Channel, email: &str, session: Session) -> Self {
        Self {
            channel,
            email: email.to_owned(),
            user: session.user.unwrap_or_default().name,
            account: session.account.unwrap_or_default().name,
            token: session.access_token.unwrap_or_default().token,
            refresh_token: session.refresh_token,
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

    /// This actor's request, but with another bearer token.
    pub fn with_token<T>(token: &str, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let value = MetadataValue::try_from(format!("Bearer {token}")).expect("token header");
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

    pub fn auth(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.channel.clone())
    }
    pub fn accounts(&self) -> AccountServiceClient<Channel> {
        AccountServiceClient::new(self.channel.clone())
    }
    pub fn members(&self) -> MemberServiceClient<Channel> {
        MemberServiceClient::new(self.channel.clone())
    }
    pub fn me(&self) -> SelfServiceClient<Channel> {
        SelfServiceClient::new(self.channel.clone())
    }
    pub fn roles(&self) -> RoleServiceClient<Channel> {
        RoleServiceClient::new(self.channel.clone())
    }
    pub fn activity(&self) -> ActivityServiceClient<Channel> {
        ActivityServiceClient::new(self.channel.clone())
    }
    pub fn invitations(
        &self,
    ) -> partnerhub_proto::identity::v1::invitation_service_client::InvitationServiceClient<Channel>
    {
        partnerhub_proto::identity::v1::invitation_service_client::InvitationServiceClient::new(
            self.channel.clone(),
        )
    }
}

/// A company-wide role assignment.
pub fn role(id: &str) -> RoleAssignment {
    RoleAssignment {
        role: id.into(),
        locations: vec![],
    }
}

/// The code of a failed call (panics with the value on success).
pub fn code<T: std::fmt::Debug>(result: Result<T, Status>) -> Code {
    match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(s) => s.code(),
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

/// How long to wait for a mail.
pub const MAIL_WAIT: Duration = Duration::from_secs(10);
