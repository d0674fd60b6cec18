//! A whole story that handles every kind of secret: sign-ups and sign-ins
//! (passwords, access and refresh tokens), a refresh, an invitation and a
//! password reset (mailed tokens), enrollment and the email-ownership token,
//! tax and bank numbers, a service token and a merge. Returns what it used.

use std::time::Duration;

use partnerhub_proto::identity::v1::{
    AcceptInvitationRequest, CompletePasswordResetRequest, Invitation, InviteUsersRequest,
    IssueServiceTokenRequest, RefreshTokenRequest, RequestPasswordResetRequest, RoleAssignment,
    Session, SignInRequest, auth_service_client::AuthServiceClient,
    member_service_client::MemberServiceClient,
};
use partnerhub_proto::merge::v1::{
    AcceptMergeInvitationRequest, ConfirmMergeRequest, CreateMergeInvitationRequest,
    GetMergeInvitationRequest, MergeState, merge_service_client::MergeServiceClient,
};
use partnerhub_proto::profile::v1::{
    CreatePayoutProfileRequest, CreateTaxProfileRequest, PayoutMethod, PayoutProfile, ProgramKind,
    TaxEntityType, TaxForm, TaxProfile, payout_service_client::PayoutServiceClient,
};
use partnerhub_proto::verification::v1::{
    ConfirmEmailOwnershipRequest, verification_service_client::VerificationServiceClient,
};
use partnerhub_testkit::clients::{self, FOUNDER_PASSWORD};
use partnerhub_testkit::{
    MERGE_CLIENT_ID, MERGE_CLIENT_SECRET, PORTAL_URL, Suite, bearer, eventually, unique,
};

/// A valid French IBAN.
pub const IBAN: &str = "FR7630006000011234567890189";
/// Its BBAN (the IBAN without country and check digits).
pub const BBAN: &str = "30006000011234567890189";
/// A French company's taxpayer identification number.
pub const TIN: &str = "FR40303265045";

/// The secrets a story used, by kind, as text.
#[derive(Debug, Default)]
pub struct Used {
    /// Passwords typed.
    pub passwords: Vec<String>,
    /// Access tokens issued (users and a service account).
    pub access_tokens: Vec<String>,
    /// Refresh tokens issued.
    pub refresh_tokens: Vec<String>,
    /// Tokens mailed: invitation, password reset, email ownership.
    pub mailed: Vec<(&'static str, String)>,
    /// Service account secrets.
    pub client_secrets: Vec<String>,
}

impl Used {
    fn session(&mut self, session: Session) {
        if let Some(access) = session.access_token {
            self.access_tokens.push(access.token);
        }
        self.refresh_tokens.push(session.refresh_token);
    }
}

/// The token in the first link to `path` in the next mail to `to` that
/// has one (other mails to `to` are left for later).
async fn mailed_token(suite: &Suite, to: &str, path: &str) -> anyhow::Result<String> {
    let link = format!("{PORTAL_URL}{path}");
    let mail = suite
        .smtp
        .next_matching(to, |m| m.text.contains(&link), Duration::from_secs(30))
        .await
        .map_err(|e| e.context(format!("no mail to {to} with a link to {path}")))?;
    let at = mail.text.find(&link).unwrap_or_default();
    let token: String = mail.text[at + link.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    anyhow::ensure!(token.len() >= 40, "short token in {}", mail.text);
    Ok(token)
}

/// Runs the story on `suite`.
pub async fn run(suite: &Suite) -> anyhow::Result<Used> {
    let mut used = Used {
        passwords: vec![FOUNDER_PASSWORD.to_owned()],
        client_secrets: vec![MERGE_CLIENT_SECRET.to_owned()],
        ..Used::default()
    };
    let contoso = clients::enrolled(suite, "Contoso", ProgramKind::Partner).await?;
    let fabrikam = clients::enrolled(suite, "Fabrikam", ProgramKind::Partner).await?;
    used.access_tokens
        .extend([contoso.token.clone(), fabrikam.token.clone()]);
    let mut auth = AuthServiceClient::new(Suite::channel(suite.identity)?);

    // Sign in and refresh.
    let signed_in = auth
        .sign_in(SignInRequest {
            email: contoso.email.clone(),
            password: FOUNDER_PASSWORD.into(),
            account: String::new(),
        })
        .await?
        .into_inner();
    let refresh_token = signed_in.refresh_token.clone();
    used.session(signed_in);
    let refreshed = auth
        .refresh_token(RefreshTokenRequest { refresh_token })
        .await?
        .into_inner();
    let token = refreshed.access_token.clone().unwrap_or_default().token;
    used.session(refreshed);

    // The primary contact's email-ownership token.
    let ownership = mailed_token(suite, &contoso.email, "/verification/email?token=").await?;
    VerificationServiceClient::new(Suite::channel(suite.verification)?)
        .confirm_email_ownership(ConfirmEmailOwnershipRequest {
            token: ownership.clone(),
            account: contoso.account.clone(),
        })
        .await?;
    used.mailed.push(("email ownership", ownership));

    // An invitation, accepted with a password of the invitee's own.
    let invitee = format!("new.hire.{}@contoso.com", unique());
    MemberServiceClient::new(Suite::channel(suite.identity)?)
        .invite_users(bearer(
            &token,
            InviteUsersRequest {
                parent: contoso.account.clone(),
                invitations: vec![Invitation {
                    email: invitee.clone(),
                    roles: vec![RoleAssignment {
                        role: "referrals_user".into(),
                        locations: Vec::new(),
                    }],
                    ..Invitation::default()
                }],
                request_id: String::new(),
            },
        )?)
        .await?;
    let invitation = mailed_token(suite, &invitee, "/invitations/accept?token=").await?;
    let invitee_password = format!("invitee passphrase {}", unique());
    let accepted = MemberServiceClient::new(Suite::channel(suite.identity)?)
        .accept_invitation(AcceptInvitationRequest {
            token: invitation.clone(),
            given_name: "Grace".into(),
            family_name: "Hopper".into(),
            password: invitee_password.clone(),
        })
        .await?
        .into_inner();
    used.session(accepted);
    used.passwords.push(invitee_password);
    used.mailed.push(("invitation", invitation));

    // A password reset, then a sign-in with the new password.
    auth.request_password_reset(RequestPasswordResetRequest {
        email: contoso.email.clone(),
    })
    .await?;
    let reset = mailed_token(suite, &contoso.email, "/password/reset?token=").await?;
    let new_password = format!("reset passphrase {}", unique());
    auth.complete_password_reset(CompletePasswordResetRequest {
        token: reset.clone(),
        new_password: new_password.clone(),
    })
    .await?;
    used.mailed.push(("password reset", reset));
    let again = auth
        .sign_in(SignInRequest {
            email: contoso.email.clone(),
            password: new_password.clone(),
            account: String::new(),
        })
        .await?
        .into_inner();
    let token = again.access_token.clone().unwrap_or_default().token;
    used.session(again);
    used.passwords.push(new_password);

    // Tax and bank numbers.
    let mut payouts = PayoutServiceClient::new(Suite::channel(suite.profile)?);
    payouts
        .create_tax_profile(bearer(
            &token,
            CreateTaxProfileRequest {
                parent: contoso.account.clone(),
                tax_profile: Some(TaxProfile {
                    entity_type: TaxEntityType::Corporation.into(),
                    tax_form: TaxForm::W8benE.into(),
                    country: "FR".into(),
                    tax_identifier: TIN.into(),
                    ..TaxProfile::default()
                }),
            },
        )?)
        .await?;
    payouts
        .create_payout_profile(bearer(
            &token,
            CreatePayoutProfileRequest {
                parent: contoso.account.clone(),
                payout_profile: Some(PayoutProfile {
                    method: PayoutMethod::BankAccount.into(),
                    account_holder_name: "Contoso France SAS".into(),
                    iban: IBAN.into(),
                    swift_bic: "BNPAFRPP".into(),
                    bank_country: "FR".into(),
                    ..PayoutProfile::default()
                }),
                request_id: String::new(),
            },
        )?)
        .await?;

    // A service token, as merge gets one.
    let service = auth
        .issue_service_token(IssueServiceTokenRequest {
            client_id: MERGE_CLIENT_ID.into(),
            client_secret: MERGE_CLIENT_SECRET.into(),
        })
        .await?
        .into_inner();
    used.access_tokens
        .push(service.access_token.unwrap_or_default().token);

    // A merge of Fabrikam into Contoso, run by the saga with its service
    // token.
    let mut merge = MergeServiceClient::new(Suite::channel(suite.merge)?);
    let invitation = merge
        .create_merge_invitation(bearer(
            &token,
            CreateMergeInvitationRequest {
                parent: contoso.account.clone(),
                partner_id: fabrikam.global_id.clone(),
                request_id: String::new(),
            },
        )?)
        .await?
        .into_inner();
    merge
        .accept_merge_invitation(bearer(
            &fabrikam.token,
            AcceptMergeInvitationRequest {
                name: invitation.name.clone(),
            },
        )?)
        .await?;
    merge
        .confirm_merge(bearer(
            &token,
            ConfirmMergeRequest {
                name: invitation.name.clone(),
                acknowledge_irreversible: true,
            },
        )?)
        .await?;
    eventually(Duration::from_secs(30), || {
        let (mut merge, name, token) = (merge.clone(), invitation.name.clone(), token.clone());
        async move {
            let m = merge
                .get_merge_invitation(bearer(&token, GetMergeInvitationRequest { name }).ok()?)
                .await
                .ok()?
                .into_inner();
            (m.state() == MergeState::Completed).then_some(())
        }
    })
    .await
    .map_err(|e| e.context("the merge never completed"))?;
    Ok(used)
}
