//! Channels to the five services, the bearer-token interceptor, and the
//! session that renews its access token by itself: shortly before it
//! expires, and once more when a server answers UNAUTHENTICATED.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use partnerhub_proto::identity::v1::{
    RefreshTokenRequest, Session as SessionMessage, auth_service_client::AuthServiceClient,
};
use tonic::Code;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::config::{Endpoints, Session, Store, Stored};
use crate::error::{CliError, CliResult};
use crate::output::Printer;

/// An access token is renewed when it has less than this left.
const RENEW_BEFORE: Duration = Duration::from_secs(30);
/// Longest a call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The services partnerctl talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// Accounts, users, roles, tokens.
    Identity,
    /// Legal profile, locations, programs.
    Profile,
    /// Company verification.
    Verification,
    /// Notifications.
    Notification,
    /// Account merges.
    Merge,
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Debug, Clone, Default)]
pub struct Bearer(Arc<Mutex<Option<AsciiMetadataValue>>>);

impl Bearer {
    fn set(&self, token: &str) -> anyhow::Result<()> {
        let value = MetadataValue::try_from(format!("Bearer {token}"))
            .context("the stored access token is not valid header text")?;
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(value);
        }
        Ok(())
    }
}

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = self.0.lock().ok().and_then(|slot| slot.clone()) {
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

/// A channel that sends the bearer token.
pub type Authed = InterceptedService<Channel, Bearer>;

/// Everything a command needs: where the services are, the session, how
/// to print.
#[derive(Debug)]
pub struct Context {
    /// How results are printed.
    pub printer: Printer,
    /// The endpoints in force (flags and environment over the saved ones).
    pub endpoints: Endpoints,
    store: Store,
    session: Option<Session>,
    bearer: Bearer,
    channels: HashMap<Service, Channel>,
}

impl Context {
    /// A context over `store`, whose session (if any) is `session`.
    pub fn new(
        printer: Printer,
        endpoints: Endpoints,
        store: Store,
        session: Option<Session>,
    ) -> Self {
        Self {
            printer,
            endpoints,
            store,
            session,
            bearer: Bearer::default(),
            channels: HashMap::new(),
        }
    }

    /// The signed-in session, or exit code 3.
    pub fn session(&self) -> CliResult<&Session> {
        self.session.as_ref().ok_or_else(|| {
            CliError::NotLoggedIn("not logged in: run `partnerctl login` first".into())
        })
    }

    /// The active account, `accounts/{account}`.
    pub fn account(&self) -> CliResult<String> {
        Ok(self.session()?.account.clone())
    }

    /// A channel to `service` without credentials (sign-up, sign-in).
    pub fn channel(&mut self, service: Service) -> CliResult<Channel> {
        if let Some(channel) = self.channels.get(&service) {
            return Ok(channel.clone());
        }
        let url = self.url(service).to_owned();
        let channel = Endpoint::from_shared(url.clone())
            .map_err(|e| CliError::usage(format!("{url} is not a valid endpoint URL: {e}")))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(CALL_TIMEOUT)
            .connect_lazy();
        self.channels.insert(service, channel.clone());
        Ok(channel)
    }

    fn url(&self, service: Service) -> &str {
        let e = &self.endpoints;
        match service {
            Service::Identity => &e.identity,
            Service::Profile => &e.profile,
            Service::Verification => &e.verification,
            Service::Notification => &e.notification,
            Service::Merge => &e.merge,
        }
    }

    /// Calls `f` on `service` with the bearer token and `message`. The
    /// access token is renewed first when about to expire, and the call is
    /// made once more after a renewal when the server answers
    /// UNAUTHENTICATED.
    pub async fn call<T, R, F, Fut>(&mut self, service: Service, message: T, f: F) -> CliResult<R>
    where
        T: Clone,
        F: Fn(Authed, T) -> Fut,
        Fut: Future<Output = Result<tonic::Response<R>, tonic::Status>>,
    {
        let session = self.session()?.clone();
        if session.access_token_expires
            - chrono::Duration::from_std(RENEW_BEFORE).unwrap_or_default()
            <= Utc::now()
        {
            self.renew(&session).await?;
        } else {
            self.bearer.set(&session.access_token)?;
        }
        let channel = self.channel(service)?;
        let first = InterceptedService::new(channel, self.bearer.clone());
        let result = match f(first, message.clone()).await {
            Err(status) if status.code() == Code::Unauthenticated => {
                let used = self.session()?.clone();
                self.renew(&used).await?;
                let channel = self.channel(service)?;
                f(
                    InterceptedService::new(channel, self.bearer.clone()),
                    message,
                )
                .await
            }
            result => result,
        };
        result
            .map(tonic::Response::into_inner)
            .map_err(|status| self.locate(service, status).into())
    }

    /// `status`, naming the endpoint when it could not be reached (a
    /// transport failure carries no more than "tcp connect error").
    pub fn locate(&self, service: Service, status: tonic::Status) -> tonic::Status {
        if status.code() == Code::Unavailable && status.details().is_empty() {
            let message = format!(
                "{} ({service:?} at {})",
                status.message(),
                self.url(service)
            );
            return tonic::Status::unavailable(message);
        }
        status
    }

    /// Replaces the access token `used` with a new pair. Under the store's
    /// lock: when another process already renewed it, its pair is taken
    /// instead of spending the (then spent) refresh token again.
    async fn renew(&mut self, used: &Session) -> CliResult<()> {
        let _lock = self.store.lock()?;
        let mut stored = self.store.load()?;
        if let Some(current) = &stored.session
            && current.refresh_token != used.refresh_token
            && current.user == used.user
        {
            let current = current.clone();
            self.bearer.set(&current.access_token)?;
            self.session = Some(current);
            return Ok(());
        }
        let channel = self.channel(Service::Identity)?;
        let renewed = AuthServiceClient::new(channel)
            .refresh_token(RefreshTokenRequest {
                refresh_token: used.refresh_token.clone(),
            })
            .await;
        let message = match renewed {
            Ok(response) => response.into_inner(),
            Err(status) if status.code() == Code::Unauthenticated => {
                return Err(CliError::NotLoggedIn(format!(
                    "the session expired ({}): run `partnerctl login` again",
                    status.message()
                )));
            }
            Err(status) => return Err(self.locate(Service::Identity, status).into()),
        };
        let session = session_from(message)?;
        self.bearer.set(&session.access_token)?;
        stored.session = Some(session.clone());
        self.store.save(&stored)?;
        self.session = Some(session);
        Ok(())
    }

    /// Stores a new session (login, sign-up, account switch) with the
    /// endpoints in force.
    pub fn save_session(&mut self, message: SessionMessage) -> CliResult<Session> {
        let _lock = self.store.lock()?;
        let session = session_from(message)?;
        self.store.save(&Stored {
            endpoints: Some(self.endpoints.clone()),
            session: Some(session.clone()),
        })?;
        self.session = Some(session.clone());
        Ok(session)
    }

    /// Forgets the session (logout); the endpoints stay saved.
    pub fn forget_session(&mut self) -> CliResult<()> {
        let _lock = self.store.lock()?;
        self.store.save(&Stored {
            endpoints: Some(self.endpoints.clone()),
            session: None,
        })?;
        self.session = None;
        Ok(())
    }
}

/// The stored form of a session message.
fn session_from(message: SessionMessage) -> anyhow::Result<Session> {
    let token = message
        .access_token
        .context("the server sent a session without an access token")?;
    let expires = token
        .expire_time
        .and_then(|t| {
            DateTime::<Utc>::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0))
        })
        .context("the server sent an access token without an expiry")?;
    let user = message.user.unwrap_or_default();
    let account = message.account.unwrap_or_default();
    Ok(Session {
        user: user.name,
        email: user.email,
        given_name: user.given_name,
        family_name: user.family_name,
        account: account.name,
        account_display_name: account.display_name,
        access_token: token.token,
        access_token_expires: expires,
        refresh_token: message.refresh_token,
        password_change_required: message.password_change_required,
    })
}

/// Calls `$client::$method` on service `$service` with the session's bearer
/// token: `rpc!(ctx, Identity, MemberServiceClient::get_member, request)`.
macro_rules! rpc {
    ($ctx:expr, $service:ident, $client:ident :: $method:ident, $request:expr) => {
        $ctx.call(
            $crate::client::Service::$service,
            $request,
            |channel, request| async move { $client::new(channel).$method(request).await },
        )
    };
}
pub(crate) use rpc;
