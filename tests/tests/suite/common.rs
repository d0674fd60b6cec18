//! Helpers shared by the suite tests.

use partnerhub_proto::identity::v1::{
    Session, SignUpRequest, auth_service_client::AuthServiceClient,
};
use partnerhub_testkit::{Suite, unique};
use tonic::metadata::MetadataValue;

/// A signed-up user with their account and token.
pub struct Founder {
    pub user_id: String,
    pub account_id: String,
    pub token: String,
}

/// Signs a new user up through identity.
pub async fn sign_up(suite: &Suite) -> anyhow::Result<Founder> {
    let mut auth = AuthServiceClient::new(Suite::channel(suite.identity)?);
    let response: Session = auth
        .sign_up(SignUpRequest {
            email: format!("ada.{}@contoso.com", unique()),
            given_name: "Ada".into(),
            family_name: "Lovelace".into(),
            password: "analytical engine 1843".into(),
            account_display_name: "Contoso".into(),
            locale: "en-US".into(),
        })
        .await?
        .into_inner();
    let id = |name: &str| name.rsplit('/').next().unwrap_or_default().to_owned();
    Ok(Founder {
        user_id: id(&response.user.unwrap_or_default().name),
        account_id: id(&response.account.unwrap_or_default().name),
        token: response.access_token.unwrap_or_default().token,
    })
}

/// `request` with `authorization: Bearer <token>`.
pub fn with_token<T>(token: &str, message: T) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {token}"))?,
    );
    Ok(request)
}
