//! Rate limits on public RPCs (the ones callable without a token: sign-up,
//! sign-in, password reset, invitation and email-ownership tokens, service
//! tokens) and on the few authenticated RPCs that could be used to walk an
//! id space (LookupPartner). Three keyed GCRA limiters, in memory, per
//! process:
//!
//! - per client address and method, enforced by [`RateLimitLayer`] in the
//!   server's tower stack for every public `partnerhub.*` method;
//! - per email address (or client id) and method, enforced by the handler
//!   with [`limit_target`] once it has decoded the request;
//! - per signed-in caller and per account and method, enforced by the
//!   handler with [`limit_caller`] once the caller is known (a second user
//!   of the same account shares the account's allowance).
//!
//! A refusal is RESOURCE_EXHAUSTED with `ErrorInfo` reason `RATE_LIMITED` and
//! a `RetryInfo` delay. The client address is the peer of the connection or,
//! when that peer is a trusted proxy, the last untrusted hop of
//! `x-forwarded-for`. Addresses are limited by [`address_key`]: an IPv4
//! address (IPv4-mapped IPv6 included) alone, an IPv6 address with its whole
//! /64, the block one subscriber gets.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use ipnet::IpNet;
use tonic::Status;
use tonic::transport::server::TcpConnectInfo;
use tonic_types::{ErrorDetails, StatusExt};
use tower::{Layer, Service};

use crate::auth::{AccessRules, Caller, Rule};
use crate::config::{ConfigError, Env, parse};

/// The `ErrorInfo` reason of a refusal.
pub const REASON: &str = "RATE_LIMITED";

/// Public methods left out: identity's public keys are fetched by every
/// service (at most once a second each, see `TokenVerifier`), cost one
/// indexed read, and refusing them would break token verification for
/// everyone behind the same address.
const UNLIMITED: &[&str] = &["/partnerhub.identity.v1.AuthService/GetJwks"];

/// How many calls a key may make: a burst of `burst`, then one more every
/// `every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    /// Calls allowed at once.
    pub burst: NonZeroU32,
    /// Time for one call to come back.
    pub every: Duration,
}

impl Allowance {
    /// `per_minute` calls per minute, all of them allowed at once.
    pub fn per_minute(per_minute: NonZeroU32) -> Self {
        Self {
            burst: per_minute,
            every: Duration::from_secs(60) / per_minute.get(),
        }
    }

    /// `per_hour` units per hour, all of them allowed at once.
    pub fn per_hour(per_hour: NonZeroU32) -> Self {
        Self {
            burst: per_hour,
            every: Duration::from_secs(3600) / per_hour.get(),
        }
    }

    fn quota(self) -> Quota {
        Quota::with_period(self.every.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(self.burst)
    }
}

/// Rate-limit settings of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitSettings {
    /// Calls of one public method from one client address.
    pub per_address: Allowance,
    /// Calls of one public method naming one email address (or service
    /// client id).
    pub per_email: Allowance,
    /// Calls of one caller-limited method ([`limit_caller`]) by one user,
    /// and by one account's users together.
    pub per_caller: Allowance,
    /// Proxies whose `x-forwarded-for` is believed (addresses or CIDR
    /// blocks).
    pub trusted_proxies: Vec<IpNet>,
}

/// Default calls per minute per address and public method.
pub const DEFAULT_PER_ADDRESS_PER_MINUTE: u32 = 30;
/// Default calls per minute per email address and public method.
pub const DEFAULT_PER_EMAIL_PER_MINUTE: u32 = 5;
/// Default calls per minute per caller (and per account) of a
/// caller-limited method.
pub const DEFAULT_PER_CALLER_PER_MINUTE: u32 = 10;

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            per_address: Allowance::per_minute(
                NonZeroU32::new(DEFAULT_PER_ADDRESS_PER_MINUTE).unwrap_or(NonZeroU32::MIN),
            ),
            per_email: Allowance::per_minute(
                NonZeroU32::new(DEFAULT_PER_EMAIL_PER_MINUTE).unwrap_or(NonZeroU32::MIN),
            ),
            per_caller: Allowance::per_minute(
                NonZeroU32::new(DEFAULT_PER_CALLER_PER_MINUTE).unwrap_or(NonZeroU32::MIN),
            ),
            trusted_proxies: Vec::new(),
        }
    }
}

impl RateLimitSettings {
    /// Reads `PARTNERHUB_RATE_LIMIT_PER_ADDRESS_PER_MINUTE`,
    /// `PARTNERHUB_RATE_LIMIT_PER_EMAIL_PER_MINUTE`,
    /// `PARTNERHUB_RATE_LIMIT_PER_CALLER_PER_MINUTE` and
    /// `PARTNERHUB_RATE_LIMIT_TRUSTED_PROXIES` (comma-separated addresses or
    /// CIDR blocks).
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let per_minute = |key: &str, default: u32| -> Result<Allowance, ConfigError> {
            let n: u32 = parse(env, key, default)?;
            NonZeroU32::new(n)
                .map(Allowance::per_minute)
                .ok_or_else(|| ConfigError {
                    variable: key.to_owned(),
                    problem: "must be at least 1".into(),
                })
        };
        let key = "PARTNERHUB_RATE_LIMIT_TRUSTED_PROXIES";
        let trusted_proxies = env
            .get(key)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                parse_net(s).ok_or_else(|| ConfigError {
                    variable: key.to_owned(),
                    problem: format!("{s:?} is neither an IP address nor a CIDR block"),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            per_address: per_minute(
                "PARTNERHUB_RATE_LIMIT_PER_ADDRESS_PER_MINUTE",
                DEFAULT_PER_ADDRESS_PER_MINUTE,
            )?,
            per_email: per_minute(
                "PARTNERHUB_RATE_LIMIT_PER_EMAIL_PER_MINUTE",
                DEFAULT_PER_EMAIL_PER_MINUTE,
            )?,
            per_caller: per_minute(
                "PARTNERHUB_RATE_LIMIT_PER_CALLER_PER_MINUTE",
                DEFAULT_PER_CALLER_PER_MINUTE,
            )?,
            trusted_proxies,
        })
    }
}

fn parse_net(s: &str) -> Option<IpNet> {
    IpNet::from_str(s)
        .ok()
        .or_else(|| IpAddr::from_str(s).ok().map(IpNet::from))
}

/// How many checks between two sweeps of idle keys.
const SWEEP_EVERY: u64 = 4096;

/// The key an address is limited under: an IPv4 address as itself (an
/// IPv4-mapped IPv6 address, `::ffff:a.b.c.d`, as that IPv4 address), an
/// IPv6 address as its /64 (a subscriber gets a whole /64 and may use any
/// of its 2^64 addresses, so a per-/128 key would let one client rotate
/// without end).
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
    }
}

/// The three keyed limiters of a process.
pub struct RateLimiter {
    by_address: DefaultKeyedRateLimiter<(String, IpAddr)>,
    by_target: DefaultKeyedRateLimiter<(String, String)>,
    by_caller: DefaultKeyedRateLimiter<(String, String)>,
    trusted_proxies: Vec<IpNet>,
    checks: AtomicU64,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("trusted_proxies", &self.trusted_proxies)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// Limiters for `settings`.
    pub fn new(settings: &RateLimitSettings) -> Self {
        Self {
            by_address: governor::RateLimiter::keyed(settings.per_address.quota()),
            by_target: governor::RateLimiter::keyed(settings.per_email.quota()),
            by_caller: governor::RateLimiter::keyed(settings.per_caller.quota()),
            trusted_proxies: settings.trusted_proxies.clone(),
            checks: AtomicU64::new(0),
        }
    }

    /// The client's address: `peer`, or when `peer` is a trusted proxy, the
    /// last hop of `x-forwarded-for` (read right to left) that is not one.
    /// IPv4-mapped IPv6 addresses (a dual-stack listener's view of an IPv4
    /// peer) are read as the IPv4 address they carry.
    pub fn client_address(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        let trusted = |ip: &IpAddr| self.trusted_proxies.iter().any(|n| n.contains(ip));
        let mut client = peer.to_canonical();
        let hops = forwarded_for
            .iter()
            .flat_map(|h| h.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in hops.into_iter().rev() {
            if !trusted(&client) {
                break;
            }
            // A hop that does not parse was written by the client: the
            // last trusted proxy is as far as the chain can be believed.
            match hop.parse::<IpAddr>() {
                Ok(ip) => client = ip.to_canonical(),
                Err(_) => break,
            }
        }
        client
    }

    /// One call of `method` from `client` (limited under
    /// [`address_key`]`(client)`).
    pub fn check_address(&self, method: &str, client: IpAddr) -> Result<(), Status> {
        self.sweep();
        self.by_address
            .check_key(&(method.to_owned(), address_key(client)))
            .map_err(|not_until| {
                refusal(
                    "address",
                    "too many requests from this address; retry later",
                    not_until.wait_time_from(DefaultClock::default().now()),
                )
            })
    }

    /// One call of `method` naming `target` (an email address, compared
    /// without case and surrounding spaces).
    pub fn check_target(&self, method: &str, target: &str) -> Result<(), Status> {
        let target = target.trim().to_lowercase();
        if target.is_empty() {
            return Ok(());
        }
        self.sweep();
        self.by_target
            .check_key(&(method.to_owned(), target))
            .map_err(|not_until| {
                refusal(
                    "email",
                    "too many requests for this email address; retry later",
                    not_until.wait_time_from(DefaultClock::default().now()),
                )
            })
    }

    /// One call of `method` by every one of `keys` (the caller's resource
    /// name and its account): each key has its own allowance, and the call
    /// is refused when any of them is spent.
    pub fn check_caller(&self, method: &str, keys: &[String]) -> Result<(), Status> {
        self.sweep();
        for key in keys {
            self.by_caller
                .check_key(&(method.to_owned(), key.clone()))
                .map_err(|not_until| {
                    refusal(
                        "caller",
                        "too many requests from this user or account; retry later",
                        not_until.wait_time_from(DefaultClock::default().now()),
                    )
                })?;
        }
        Ok(())
    }

    /// Forgets keys whose allowance is whole again, now and then, so memory
    /// stays bounded by recent callers.
    fn sweep(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.by_address.retain_recent();
            self.by_address.shrink_to_fit();
            self.by_target.retain_recent();
            self.by_target.shrink_to_fit();
            self.by_caller.retain_recent();
            self.by_caller.shrink_to_fit();
        }
    }
}

/// A budget of work units per key (an account, say), refilled over time:
/// `burst` units at once, one more every `every`. In memory per process.
pub struct Budget {
    limiter: DefaultKeyedRateLimiter<String>,
    burst: NonZeroU32,
    checks: AtomicU64,
}

impl std::fmt::Debug for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget")
            .field("burst", &self.burst)
            .finish_non_exhaustive()
    }
}

/// Why a [`Budget`] refused units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverBudget {
    /// Not now: enough units come back after this wait.
    Wait(Duration),
    /// Never: more units than the whole budget (`burst`) at once.
    TooMany(NonZeroU32),
}

impl Budget {
    /// A budget of `allowance` per key.
    pub fn new(allowance: Allowance) -> Self {
        Self {
            limiter: governor::RateLimiter::keyed(allowance.quota()),
            burst: allowance.burst,
            checks: AtomicU64::new(0),
        }
    }

    /// Spends `units` of `key`'s budget, all or none.
    pub fn spend(&self, key: &str, units: u32) -> Result<(), OverBudget> {
        let Some(units) = NonZeroU32::new(units) else {
            return Ok(());
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        match self.limiter.check_key_n(&key.to_owned(), units) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(OverBudget::Wait(
                not_until.wait_time_from(DefaultClock::default().now()) + Duration::from_millis(1),
            )),
            Err(_) => Err(OverBudget::TooMany(self.burst)),
        }
    }
}

/// RESOURCE_EXHAUSTED with `RetryInfo` (rounded up to the millisecond) and
/// `ErrorInfo` reason [`REASON`] whose metadata `limit` says which limit
/// (`address`, `email` or `caller`).
fn refusal(limit: &str, message: &str, wait: Duration) -> Status {
    let wait = Duration::from_millis(wait.as_millis() as u64 + 1);
    tracing::debug!(
        limit,
        retry_after_ms = wait.as_millis() as u64,
        "Rate limited a call."
    );
    let mut details = ErrorDetails::new();
    details
        .set_error_info(
            REASON,
            crate::error::ERROR_DOMAIN,
            HashMap::from([("limit".to_owned(), limit.to_owned())]),
        )
        .set_retry_info(Some(wait));
    Status::with_error_details(tonic::Code::ResourceExhausted, message, details)
}

/// What the layer leaves in every `partnerhub.*` call's extensions for its
/// handler.
#[derive(Clone, Debug)]
pub struct Admitted {
    limiter: Arc<RateLimiter>,
    method: String,
    /// Whether the method is public (limited per address and per target).
    public: bool,
    /// The client's address as the limiter saw it.
    pub client: IpAddr,
}

/// Limits the call per `target` (an email address or client id the request
/// names) when it is a public call the server's [`RateLimitLayer`] admitted;
/// other calls are not limited here.
pub fn limit_target<T>(request: &tonic::Request<T>, target: &str) -> Result<(), Status> {
    match request.extensions().get::<Admitted>() {
        Some(admitted) if admitted.public => {
            admitted.limiter.check_target(&admitted.method, target)
        }
        _ => Ok(()),
    }
}

/// Limits the call per `caller` (its resource name) and per the caller's
/// account, each with the `per_caller` allowance: for authenticated methods
/// that answer about other accounts and could be used to walk an id space.
/// Calls that did not pass the server's [`RateLimitLayer`] are not limited.
pub fn limit_caller<T>(request: &tonic::Request<T>, caller: &Caller) -> Result<(), Status> {
    let Some(admitted) = request.extensions().get::<Admitted>() else {
        return Ok(());
    };
    let mut keys = vec![caller.resource_name()];
    if let Some(account) = &caller.account {
        keys.push(format!("accounts/{account}"));
    }
    admitted.limiter.check_caller(&admitted.method, &keys)
}

/// The client's address as the rate limiter saw it (the last untrusted hop
/// behind trusted proxies), for audit records; `None` outside the server's
/// stack.
pub fn client_address<T>(request: &tonic::Request<T>) -> Option<IpAddr> {
    request.extensions().get::<Admitted>().map(|a| a.client)
}

/// The tower layer limiting every public `partnerhub.*` method per client
/// address.
#[derive(Clone, Debug)]
pub struct RateLimitLayer {
    limiter: Arc<RateLimiter>,
    limited: Arc<HashSet<String>>,
}

impl RateLimitLayer {
    /// A layer limiting the public methods of `rules` with `settings`.
    pub fn new(settings: &RateLimitSettings, rules: &AccessRules) -> Self {
        let limited = rules
            .methods()
            .filter(|(path, rule)| {
                *rule == Some(&Rule::Public)
                    && path.starts_with("/partnerhub.")
                    && !UNLIMITED.contains(path)
            })
            .map(|(path, _)| path.to_owned())
            .collect();
        Self {
            limiter: Arc::new(RateLimiter::new(settings)),
            limited: Arc::new(limited),
        }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = Limited<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Limited {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`RateLimitLayer`].
#[derive(Clone, Debug)]
pub struct Limited<S> {
    inner: S,
    layer: RateLimitLayer,
}

impl<S, B> Service<http::Request<B>> for Limited<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The clone that was polled ready is the one that must be called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let method = request.uri().path();
        if method.starts_with("/partnerhub.") {
            let public = self.layer.limited.contains(method);
            let method = method.to_owned();
            let limiter = self.layer.limiter.clone();
            let client = client_of(&limiter, &request);
            if public && let Err(status) = limiter.check_address(&method, client) {
                return Box::pin(async move { Ok(status.into_http()) });
            }
            request.extensions_mut().insert(Admitted {
                limiter,
                method,
                public,
                client,
            });
        }
        Box::pin(inner.call(request))
    }
}

/// The client address of `request` (unspecified when the transport does not
/// say, which then shares one allowance).
fn client_of<B>(limiter: &RateLimiter, request: &http::Request<B>) -> IpAddr {
    let peer = request
        .extensions()
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let forwarded: Vec<&str> = request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    limiter.client_address(peer, &forwarded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(trusted: &str) -> RateLimiter {
        let env = HashMap::from([(
            "PARTNERHUB_RATE_LIMIT_TRUSTED_PROXIES".to_owned(),
            trusted.to_owned(),
        )]);
        RateLimiter::new(&RateLimitSettings::from_env(&env).unwrap_or_default())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([255, 255, 255, 255]))
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let l = limiter("10.0.0.0/8, 192.168.1.1");
        // An untrusted peer: its header is ignored.
        assert_eq!(
            l.client_address(ip("203.0.113.9"), &["1.2.3.4"]),
            ip("203.0.113.9")
        );
        // Through two trusted proxies: the last untrusted hop, not the
        // left-most (which the client may have forged).
        assert_eq!(
            l.client_address(ip("10.1.2.3"), &["6.6.6.6, 198.51.100.7", "192.168.1.1"]),
            ip("198.51.100.7")
        );
        // A garbage hop stops the walk at the last trusted proxy.
        assert_eq!(
            l.client_address(ip("10.1.2.3"), &["198.51.100.7, not-an-ip"]),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn a_refusal_says_when_to_retry() {
        let l = limiter("");
        let client = ip("198.51.100.7");
        for _ in 0..DEFAULT_PER_ADDRESS_PER_MINUTE {
            assert!(l.check_address("/m", client).is_ok());
        }
        let refused = l.check_address("/m", client).err();
        let code = refused.as_ref().map(Status::code);
        assert_eq!(code, Some(tonic::Code::ResourceExhausted));
        let details = refused.map(|s| s.get_error_details());
        let delay = details
            .as_ref()
            .and_then(|d| d.retry_info())
            .and_then(|r| r.retry_delay);
        assert!(delay.is_some_and(|d| d > Duration::ZERO && d <= Duration::from_secs(3)));
        // Another method and another address have their own allowance.
        assert!(l.check_address("/other", client).is_ok());
        assert!(l.check_address("/m", ip("198.51.100.8")).is_ok());
    }

    #[test]
    fn targets_compare_without_case() {
        let l = limiter("");
        for _ in 0..DEFAULT_PER_EMAIL_PER_MINUTE {
            assert!(l.check_target("/m", "Ada@Example.com").is_ok());
        }
        assert!(l.check_target("/m", " ada@example.com ").is_err());
        assert!(l.check_target("/m", "").is_ok());
    }

    #[test]
    fn ipv6_addresses_share_their_64_and_mapped_ipv4_is_ipv4() {
        // Two /128s of one /64 are one key; another /64 is another.
        assert_eq!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:2:ffff:ffff:ffff:fffe"))
        );
        assert_eq!(
            address_key(ip("2001:db8:1:2:abcd::9")),
            ip("2001:db8:1:2::")
        );
        assert_ne!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:3::1"))
        );
        // IPv4 stays per address, mapped or not.
        assert_eq!(address_key(ip("198.51.100.7")), ip("198.51.100.7"));
        assert_eq!(address_key(ip("::ffff:198.51.100.7")), ip("198.51.100.7"));
        assert_ne!(
            address_key(ip("198.51.100.7")),
            address_key(ip("198.51.100.8"))
        );
        assert_eq!(address_key(ip("::1")), ip("::"));
    }

    #[test]
    fn a_64_has_one_allowance_and_ipv4_one_per_address() {
        let l = limiter("");
        // Spent from one /128, refused from every other /128 of its /64.
        for n in 0..DEFAULT_PER_ADDRESS_PER_MINUTE {
            assert!(
                l.check_address("/m", ip(&format!("2001:db8:7::{:x}", n + 1)))
                    .is_ok()
            );
        }
        assert!(l.check_address("/m", ip("2001:db8:7::dead:beef")).is_err());
        assert!(l.check_address("/m", ip("2001:db8:8::1")).is_ok());
        // An IPv4 address and its mapped form share one allowance.
        for _ in 0..DEFAULT_PER_ADDRESS_PER_MINUTE {
            assert!(l.check_address("/m", ip("203.0.113.5")).is_ok());
        }
        assert!(l.check_address("/m", ip("::ffff:203.0.113.5")).is_err());
        assert!(l.check_address("/m", ip("203.0.113.6")).is_ok());
    }

    #[test]
    fn a_mapped_proxy_address_is_trusted_as_ipv4() {
        let l = limiter("10.0.0.0/8");
        assert_eq!(
            l.client_address(ip("::ffff:10.1.2.3"), &["::ffff:198.51.100.7"]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn callers_and_their_account_have_one_allowance_each() {
        let l = limiter("");
        let keys = |user: &str| vec![format!("users/{user}"), "accounts/a".to_owned()];
        for _ in 0..DEFAULT_PER_CALLER_PER_MINUTE {
            assert!(l.check_caller("/m", &keys("u1")).is_ok());
        }
        let refused = l.check_caller("/m", &keys("u1")).err();
        let limit = refused
            .as_ref()
            .map(|s| s.get_error_details())
            .and_then(|d| d.error_info().map(|i| i.metadata.get("limit").cloned()))
            .flatten();
        assert_eq!(limit.as_deref(), Some("caller"));
        // Another user of the same account: the account's allowance is spent.
        assert!(l.check_caller("/m", &keys("u2")).is_err());
        // Another account, and another method, have their own.
        assert!(
            l.check_caller("/m", &["users/u3".to_owned(), "accounts/b".to_owned()])
                .is_ok()
        );
        assert!(l.check_caller("/other", &keys("u1")).is_ok());
    }

    #[test]
    fn a_budget_is_spent_all_or_none_per_key() {
        let budget = Budget::new(Allowance::per_hour(
            NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
        ));
        assert_eq!(budget.spend("a", 6), Ok(()));
        // Four are left: eight are refused whole, with the wait for them.
        let refused = budget.spend("a", 8);
        assert!(
            matches!(refused, Err(OverBudget::Wait(d)) if d > Duration::from_secs(60)),
            "{refused:?}"
        );
        assert_eq!(budget.spend("a", 4), Ok(()));
        assert!(budget.spend("a", 1).is_err());
        assert_eq!(budget.spend("b", 10), Ok(()));
        assert_eq!(budget.spend("c", 0), Ok(()));
        assert!(matches!(budget.spend("c", 11), Err(OverBudget::TooMany(n)) if n.get() == 10));
    }

    #[test]
    fn zero_and_bad_proxies_are_refused_by_name() {
        let env = HashMap::from([(
            "PARTNERHUB_RATE_LIMIT_PER_EMAIL_PER_MINUTE".to_owned(),
            "0".to_owned(),
        )]);
        let err = RateLimitSettings::from_env(&env).err().map(|e| e.variable);
        assert_eq!(
            err.as_deref(),
            Some("PARTNERHUB_RATE_LIMIT_PER_EMAIL_PER_MINUTE")
        );
        let env = HashMap::from([(
            "PARTNERHUB_RATE_LIMIT_TRUSTED_PROXIES".to_owned(),
            "10.0.0.0/8,proxy".to_owned(),
        )]);
        assert!(RateLimitSettings::from_env(&env).is_err());
    }
}
