//! Revocation: access tokens of ended sessions and of accounts that are not
//! active are refused by every service within seconds, not when they expire.
//!
//! Identity publishes the facts (`SessionsEnded`, `AccountStateChanged`)
//! through its outbox. Every process (every replica of every service) reads
//! them from a queue of its own — exclusive, auto-deleted, named
//! `<namespace>.<service>.revocations.<uuid>` so it stays within the
//! service's broker permissions — because a service's durable queue is shared
//! by its replicas and each message reaches only one of them. The facts feed
//! an in-memory set (session id → remembered until every token of it has
//! expired; account id → not active) that the auth layer consults on every
//! call, cached tokens included.
//!
//! The gap: a fact published while this process's feed was not bound is
//! never delivered to it. So a token is trusted on the feed alone only if it
//! was issued after the feed (re)connected (its session can only end later,
//! and that end reaches the feed). Any other token — issued before the
//! current connection, or met while the feed is down — is checked once with
//! identity (`SessionCheck`: identity's `CheckSession` with the token itself
//! as the credential, or identity's own database inside identity): once per
//! feed connection, and at most every [`DOWN_RECHECK`] while the feed is
//! down. If identity cannot answer either, the call is refused with
//! UNAVAILABLE: a revoked token is never accepted for lack of news.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Connection, ConnectionProperties};
use partnerhub_proto::identity::v1::{AccountState, AccountStateChanged, SessionsEnded};
use prost::{Message, Name};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::caller::Caller;
use super::token::{PrincipalKind, TokenError};
use crate::bus::{BusConfig, IncomingMessage, declare_exchanges};

/// How long an ended session is remembered: the longest access-token
/// lifetime identity may be configured with (3600 s), its verification
/// leeway (30 s) and a margin.
const REMEMBER_SESSION_SECS: i64 = 3600 + 30 + 60;
/// Clock difference tolerated between identity (which sets `iat`) and this
/// process (which dates the feed's connection); the verifier's leeway.
const SKEW_SECS: i64 = 30;
/// While the feed is down, how long identity's answer about one token is
/// trusted before the token is checked again.
pub const DOWN_RECHECK: Duration = Duration::from_secs(2);
/// After identity could not answer about a token, how long the calls that
/// waited for that answer are refused without asking again.
const UNAVAILABLE_BACKOFF: Duration = Duration::from_millis(500);
/// Heartbeat of the feed's connection: a connection that died silently is
/// noticed after about two missed beats.
const FEED_HEARTBEAT_SECS: u16 = 5;
/// Per-token answers of identity remembered.
const VOUCHES_CACHED: usize = 20_000;
/// Longest wait on one step with the broker.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Asks whether a token's session is live and its account active, with the
/// authority of identity's database.
pub trait SessionCheck: Send + Sync + 'static {
    /// `Ok` when live; `Err(SessionEnded)` or `Err(AccountNotActive)` when
    /// not; another error when it cannot tell.
    fn check<'a>(
        &'a self,
        token: &'a str,
        caller: &'a Caller,
    ) -> BoxFuture<'a, Result<(), TokenError>>;
}

/// Whether the feed is bound, since when (seconds since the epoch), and
/// which connection it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feed {
    Down,
    Live { epoch: u64, since: i64 },
}

#[derive(Debug)]
struct Known {
    /// Ended session → when to forget it (seconds since the epoch).
    sessions: HashMap<String, i64>,
    /// Accounts that are suspended, merged or disabled.
    inactive: HashSet<String>,
    feed: Feed,
    epochs: u64,
}

/// Identity's answer about one token.
#[derive(Debug, Clone, Copy)]
struct Vouch {
    /// The feed connection the answer counts for (none: asked while down).
    epoch: Option<u64>,
    /// When the question was asked.
    asked: Instant,
    /// The token's expiry (to drop the entry).
    expires: i64,
    /// `Some` when identity refused the token for its account's state.
    refused: Option<()>,
    /// Identity could not answer (the calls waiting for this answer fail
    /// fast instead of asking one after another).
    unavailable: bool,
}

/// The revocation set of one process; see the module docs.
pub struct Revocations {
    known: RwLock<Known>,
    vouches: Mutex<HashMap<[u8; 32], Vouch>>,
    /// Tokens being checked with identity now (one question per token).
    asking: Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>,
    check: Arc<dyn SessionCheck>,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocations").finish_non_exhaustive()
    }
}

impl Revocations {
    /// An empty set whose feed is down; tokens are checked with `check`
    /// until [`feed`] binds.
    pub fn new(check: Arc<dyn SessionCheck>) -> Self {
        Self {
            known: RwLock::new(Known {
                sessions: HashMap::new(),
                inactive: HashSet::new(),
                feed: Feed::Down,
                epochs: 0,
            }),
            vouches: Mutex::new(HashMap::new()),
            asking: Mutex::new(HashMap::new()),
            check,
        }
    }

    /// Session `sid` has ended.
    pub fn session_ended(&self, sid: &str) {
        let now = now();
        if let Ok(mut known) = self.known.write() {
            if known.sessions.len() % 1024 == 1023 {
                known.sessions.retain(|_, until| *until >= now);
            }
            known
                .sessions
                .insert(sid.to_owned(), now + REMEMBER_SESSION_SECS);
        }
    }

    /// Account `account` (its id) is active or not.
    pub fn account_state(&self, account: &str, active: bool) {
        if let Ok(mut known) = self.known.write() {
            if active {
                known.inactive.remove(account);
            } else {
                known.inactive.insert(account.to_owned());
            }
        }
    }

    /// The feed is bound from now on: a new connection.
    pub fn feed_up(&self) -> u64 {
        let Ok(mut known) = self.known.write() else {
            return 0;
        };
        known.epochs += 1;
        let epoch = known.epochs;
        known.feed = Feed::Live {
            epoch,
            since: now(),
        };
        epoch
    }

    /// The feed is not bound (facts may be missed from now on).
    pub fn feed_down(&self) {
        if let Ok(mut known) = self.known.write() {
            known.feed = Feed::Down;
        }
    }

    /// Whether the feed is bound.
    pub fn is_live(&self) -> bool {
        self.known
            .read()
            .is_ok_and(|k| matches!(k.feed, Feed::Live { .. }))
    }

    /// Admits `caller` (verified from `token`) unless its session ended or
    /// its account is not active; see the module docs for when identity is
    /// asked.
    pub async fn admit(&self, token: &str, caller: &Caller) -> Result<(), TokenError> {
        if caller.kind == PrincipalKind::Service {
            return Ok(());
        }
        if caller.session.is_empty() {
            // Every user token names its session since sessions were bound;
            // one that does not cannot be revoked and is refused.
            return Err(TokenError::SessionEnded);
        }
        let feed = {
            let known = self
                .known
                .read()
                .map_err(|_| TokenError::SessionCheckUnavailable("poisoned".into()))?;
            if caller
                .account
                .as_deref()
                .is_some_and(|a| known.inactive.contains(a))
            {
                return Err(TokenError::AccountNotActive);
            }
            if known.sessions.contains_key(&caller.session) {
                return Err(TokenError::SessionEnded);
            }
            known.feed
        };
        if let Feed::Live { since, .. } = feed
            && caller.issued_at > since + SKEW_SECS
        {
            return Ok(());
        }
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(answer) = self.cached(&key, feed) {
            return answer;
        }
        // One question per token at a time: calls that present the same
        // token meanwhile wait for its answer instead of asking too (a busy
        // client's token would otherwise send hundreds of questions to
        // identity when the feed reconnects or goes down).
        let gate = {
            let mut asking = self
                .asking
                .lock()
                .map_err(|_| TokenError::SessionCheckUnavailable("poisoned".into()))?;
            asking.retain(|_, gate| Arc::strong_count(gate) > 1);
            Arc::clone(asking.entry(key).or_default())
        };
        let _turn = gate.lock().await;
        if let Some(answer) = self.cached(&key, feed) {
            return answer;
        }
        let asked = Instant::now();
        let outcome = self.check.check(token, caller).await;
        let epoch = match feed {
            Feed::Live { epoch, .. } => Some(epoch),
            Feed::Down => None,
        };
        match outcome {
            Ok(()) => {
                self.vouch(key, epoch, asked, caller.expires_at, None);
                Ok(())
            }
            Err(TokenError::SessionEnded) => {
                self.session_ended(&caller.session);
                Err(TokenError::SessionEnded)
            }
            Err(TokenError::AccountNotActive) => {
                // Not recorded as the account's state: an event that made
                // it active again may already have been applied.
                self.vouch(key, epoch, asked, caller.expires_at, Some(()));
                Err(TokenError::AccountNotActive)
            }
            Err(e) => {
                self.mark_unavailable(key, asked, caller.expires_at);
                Err(e)
            }
        }
    }

    /// Identity's remembered answer about the token `key`, if it still
    /// counts under `feed`.
    fn cached(&self, key: &[u8; 32], feed: Feed) -> Option<Result<(), TokenError>> {
        let vouch = self.vouches.lock().ok().and_then(|v| v.get(key).copied())?;
        let recent = vouch.asked.elapsed() < DOWN_RECHECK;
        if vouch.unavailable {
            return (vouch.asked.elapsed() < UNAVAILABLE_BACKOFF).then(|| {
                Err(TokenError::SessionCheckUnavailable(
                    "identity could not tell just now".into(),
                ))
            });
        }
        if vouch.refused.is_some() && recent {
            return Some(Err(TokenError::AccountNotActive));
        }
        let good = match feed {
            Feed::Live { epoch, .. } => vouch.epoch == Some(epoch) || recent,
            Feed::Down => recent,
        };
        (vouch.refused.is_none() && good).then_some(Ok(()))
    }

    fn mark_unavailable(&self, key: [u8; 32], asked: Instant, expires: i64) {
        if let Ok(mut vouches) = self.vouches.lock() {
            vouches.insert(
                key,
                Vouch {
                    epoch: None,
                    asked,
                    expires,
                    refused: None,
                    unavailable: true,
                },
            );
        }
    }

    fn vouch(
        &self,
        key: [u8; 32],
        epoch: Option<u64>,
        asked: Instant,
        expires: i64,
        refused: Option<()>,
    ) {
        let Ok(mut vouches) = self.vouches.lock() else {
            return;
        };
        if vouches.len() >= VOUCHES_CACHED {
            let now = now();
            vouches.retain(|_, v| v.expires + SKEW_SECS >= now);
            if vouches.len() >= VOUCHES_CACHED {
                // Forgetting answers only costs questions.
                vouches.clear();
            }
        }
        vouches.insert(
            key,
            Vouch {
                epoch,
                asked,
                expires,
                refused,
                unavailable: false,
            },
        );
    }

    /// Applies one fact from the feed; unknown types are ignored.
    pub fn apply(&self, message_type: &str, payload: &[u8]) {
        if message_type == SessionsEnded::full_name() {
            let Ok(event) = SessionsEnded::decode(payload) else {
                tracing::warn!("Undecodable SessionsEnded on the revocation feed.");
                return;
            };
            for sid in &event.sessions {
                self.session_ended(sid);
            }
        } else if message_type == AccountStateChanged::full_name() {
            let Ok(event) = AccountStateChanged::decode(payload) else {
                tracing::warn!("Undecodable AccountStateChanged on the revocation feed.");
                return;
            };
            let Some(account) = event.account.strip_prefix("accounts/") else {
                return;
            };
            let active = event.new_state == i32::from(AccountState::Active);
            self.account_state(account, active);
        }
    }
}

/// The routing keys of the revocation facts.
pub fn revocation_keys() -> Vec<String> {
    vec![SessionsEnded::full_name(), AccountStateChanged::full_name()]
}

/// The name of this process's revocation queue for `service`.
fn queue_name(config: &BusConfig, service: &str) -> String {
    format!(
        "{}.{service}.revocations.{}",
        config.namespace,
        uuid::Uuid::new_v4().simple()
    )
}

/// Keeps `revocations` fed until `stop`: connects (with a short heartbeat),
/// declares an exclusive auto-delete queue bound to the revocation facts,
/// consumes it, and reconnects with backoff after any loss. The feed is
/// marked live only once the queue is bound and consumed, and down as soon
/// as the connection is lost.
pub async fn feed(
    config: BusConfig,
    service: &'static str,
    revocations: Arc<Revocations>,
    stop: CancellationToken,
) {
    let mut delay = Duration::from_millis(100);
    while !stop.is_cancelled() {
        let subscribed = tokio::time::timeout(STEP_TIMEOUT, subscribe(&config, service)).await;
        match subscribed {
            Ok(Ok((connection, consumer))) => {
                delay = Duration::from_millis(100);
                let epoch = revocations.feed_up();
                tracing::info!(service, epoch, "Revocation feed bound.");
                listen(&connection, consumer, &revocations, &stop).await;
                revocations.feed_down();
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    connection.close(200, "revocation feed stopping".into()),
                )
                .await;
                if !stop.is_cancelled() {
                    tracing::warn!(
                        service,
                        "Revocation feed lost; tokens are checked with identity until it is back."
                    );
                }
            }
            failed => {
                let error = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".to_owned(),
                };
                tracing::warn!(service, %error, retry_in_ms = delay.as_millis() as u64, "Cannot bind the revocation feed; retrying.");
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
    revocations.feed_down();
}

async fn subscribe(
    config: &BusConfig,
    service: &'static str,
) -> anyhow::Result<(Connection, lapin::Consumer)> {
    let mut uri: lapin::uri::AMQPUri = config
        .url
        .parse()
        .map_err(|e| anyhow::anyhow!("bad AMQP URL: {e}"))?;
    if uri.query.heartbeat.is_none() {
        uri.query.heartbeat = Some(FEED_HEARTBEAT_SECS);
    }
    let properties = ConnectionProperties::default().with_connection_name(
        format!("partnerhub-{service}-revocations-{}", std::process::id()).into(),
    );
    let connection = Connection::connect_uri(uri, properties).await?;
    let channel = connection.create_channel().await?;
    declare_exchanges(&channel, config).await?;
    let queue = queue_name(config, service);
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(LongString::from("classic")),
    );
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            arguments,
        )
        .await?;
    for key in revocation_keys() {
        channel
            .queue_bind(
                queue.as_str().into(),
                config.events_exchange().as_str().into(),
                ShortString::from(key.as_str()),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    let consumer = channel
        .basic_consume(
            queue.as_str().into(),
            format!("{queue}-feed").into(),
            BasicConsumeOptions {
                no_ack: true,
                exclusive: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok((connection, consumer))
}

async fn listen(
    connection: &Connection,
    mut consumer: lapin::Consumer,
    revocations: &Revocations,
    stop: &CancellationToken,
) {
    let mut check = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            next = consumer.next() => match next {
                Some(Ok(delivery)) => match IncomingMessage::from_delivery(&delivery) {
                    Ok(message) => revocations.apply(&message.message_type, &message.payload),
                    Err(e) => tracing::warn!(error = %e, "Unreadable message on the revocation feed."),
                },
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "Revocation feed failed.");
                    return;
                }
                None => return,
            },
            _ = check.tick() => {
                if !connection.status().connected() {
                    return;
                }
            }
        }
    }
}

/// Asks identity's `CheckSession` over gRPC, with the token being checked
/// as the credential (no service credentials needed; the answer concerns
/// that token only).
#[derive(Debug, Clone)]
pub struct GrpcSessionCheck {
    channel: tonic::transport::Channel,
}

impl GrpcSessionCheck {
    /// A check that calls identity at `url` (connected lazily).
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let channel = tonic::transport::Endpoint::from_shared(url.to_owned())?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(3))
            .connect_lazy();
        Ok(Self { channel })
    }
}

impl SessionCheck for GrpcSessionCheck {
    fn check<'a>(
        &'a self,
        token: &'a str,
        _caller: &'a Caller,
    ) -> BoxFuture<'a, Result<(), TokenError>> {
        Box::pin(async move {
            use partnerhub_proto::identity::v1::{
                CheckSessionRequest, auth_service_client::AuthServiceClient,
            };
            let mut request = tonic::Request::new(CheckSessionRequest {});
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|_| TokenError::Invalid)?;
            request.metadata_mut().insert("authorization", value);
            match AuthServiceClient::new(self.channel.clone())
                .check_session(request)
                .await
            {
                Ok(_) => Ok(()),
                Err(status) if status.code() == tonic::Code::Unauthenticated => {
                    Err(match reason(&status).as_str() {
                        "ACCOUNT_NOT_ACTIVE" => TokenError::AccountNotActive,
                        "SESSION_ENDED" => TokenError::SessionEnded,
                        _ => TokenError::Invalid,
                    })
                }
                Err(status) => Err(TokenError::SessionCheckUnavailable(format!(
                    "{:?}: {}",
                    status.code(),
                    status.message()
                ))),
            }
        })
    }
}

/// The `ErrorInfo` reason of a status.
fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Claims;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Identity's answer, counted.
    struct Answer(Result<(), ()>, AtomicUsize);

    impl SessionCheck for Answer {
        fn check<'a>(
            &'a self,
            _token: &'a str,
            _caller: &'a Caller,
        ) -> BoxFuture<'a, Result<(), TokenError>> {
            self.1.fetch_add(1, Ordering::SeqCst);
            let answer = self.0.map_err(|()| TokenError::SessionEnded);
            Box::pin(async move { answer })
        }
    }

    fn user(sid: &str, account: &str, iat: i64) -> Caller {
        Caller::from_claims(Claims {
            iss: String::new(),
            aud: String::new(),
            sub: "u".into(),
            kind: PrincipalKind::User,
            acc: Some(account.into()),
            roles: vec![],
            scopes: Default::default(),
            dom: String::new(),
            pcr: false,
            sid: sid.into(),
            perms: vec![],
            pv: 1,
            iat,
            exp: iat + 900,
            jti: String::new(),
        })
    }

    #[tokio::test]
    async fn facts_refuse_tokens_and_identity_vouches_once_per_connection() {
        let answer = Arc::new(Answer(Ok(()), AtomicUsize::new(0)));
        let set = Revocations::new(answer.clone());
        let old = user("s1", "A", now() - 600);
        // Feed down: identity is asked, and its answer is trusted briefly.
        assert!(set.admit("t1", &old).await.is_ok());
        assert!(set.admit("t1", &old).await.is_ok());
        assert_eq!(answer.1.load(Ordering::SeqCst), 1);
        // A new connection: a token issued before it is asked about again,
        // once.
        set.feed_up();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(set.admit("t1", &old).await.is_ok());
        assert_eq!(answer.1.load(Ordering::SeqCst), 1, "recent answer reused");
        // A token issued after the feed bound needs no question.
        let fresh = user("s2", "A", now() + SKEW_SECS + 1);
        assert!(set.admit("t2", &fresh).await.is_ok());
        assert_eq!(answer.1.load(Ordering::SeqCst), 1);
        // Facts refuse at once.
        set.apply(
            &SessionsEnded::full_name(),
            &SessionsEnded {
                sessions: vec!["s2".into()],
                ..SessionsEnded::default()
            }
            .encode_to_vec(),
        );
        assert!(matches!(
            set.admit("t2", &fresh).await,
            Err(TokenError::SessionEnded)
        ));
        set.apply(
            &AccountStateChanged::full_name(),
            &AccountStateChanged {
                account: "accounts/A".into(),
                new_state: AccountState::Suspended.into(),
                ..AccountStateChanged::default()
            }
            .encode_to_vec(),
        );
        assert!(matches!(
            set.admit("t1", &old).await,
            Err(TokenError::AccountNotActive)
        ));
        set.account_state("A", true);
        assert!(set.admit("t1", &old).await.is_ok());
        // A user token without a session is refused.
        assert!(set.admit("t3", &user("", "A", now())).await.is_err());
    }

    #[tokio::test]
    async fn an_ended_session_learnt_from_identity_is_remembered() {
        let answer = Arc::new(Answer(Err(()), AtomicUsize::new(0)));
        let set = Revocations::new(answer.clone());
        let old = user("s1", "A", now() - 600);
        assert!(set.admit("t1", &old).await.is_err());
        assert!(set.admit("t1", &old).await.is_err());
        assert_eq!(answer.1.load(Ordering::SeqCst), 1);
    }
}
