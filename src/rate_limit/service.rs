//! The [`RateLimit`] service: counts each request under the layer's
//! policies and refuses, or passes it on with the `RateLimit` headers.

#[cfg(feature = "moka")]
use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::request::Parts;
use http::{HeaderValue, Request, Response};
use tower::{Layer, Service};

use super::fields::{RateLimitHeaders, push_limit_item, retry_after_secs};
use super::future::ResponseFuture;
use super::key::write_store_key;
use super::layer::{MissingKey, Policy, RateLimitBuilder, RateLimitLayer, Shared};
use crate::body::ResponseBody;
use crate::error::Problem;
use crate::events::EventKind;
use crate::future::{Checked, Finish, LayerFuture};
use crate::quota::{Quota, RateDecision};
#[cfg(feature = "moka")]
use crate::stack_str::StackStr;
use crate::stack_str::Text;
#[cfg(feature = "moka")]
use crate::store::MemoryStore;
use crate::store::{Limit, RateStore};

impl<S, St> Layer<S> for RateLimitLayer<St> {
    type Service = RateLimit<S, St>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service built by [`RateLimitLayer`].
pub struct RateLimit<S, St> {
    inner: S,
    shared: Arc<Shared<St>>,
}

impl<S: Clone, St> Clone for RateLimit<S, St> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: fmt::Debug, St: fmt::Debug> fmt::Debug for RateLimit<S, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .field("store", &self.shared.store)
            .field("policies", &self.shared.policies)
            .finish()
    }
}

impl<S, St> RateLimit<S, St> {
    /// Wraps `inner` with the policies of `layer`.
    pub fn new(inner: S, layer: &RateLimitLayer<St>) -> Self {
        layer.layer(inner)
    }

    inner_service_accessors!();
}

impl<S, St: RateStore> RateLimit<S, St> {
    /// A layer builder counting in `store` (same as
    /// [`RateLimitLayer::builder`]).
    pub fn layer(store: St) -> RateLimitBuilder<St> {
        RateLimitLayer::builder(store)
    }
}

impl<S, St, ReqBody, ResBody> Service<Request<ReqBody>> for RateLimit<S, St>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    St: RateStore,
    ReqBody: Send + 'static,
    ResBody: 'static,
{
    refusing_service_items!(ResBody);

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let shared = &self.shared;
        let (parts, body) = req.into_parts();
        let now_us = shared.clock.now_us();
        // One policy over the in-memory store (the common case): the key and
        // the `RateLimit` value are built on the stack, the decision is taken
        // here and the inner service called right away.
        #[cfg(feature = "moka")]
        if let ([policy], Some(memory)) = (&*shared.policies, as_memory(&shared.store)) {
            let mut key = StoreKey::new();
            match policy_key(&mut key, policy, &parts) {
                Err(problem) => return decided(refusal(shared, problem, String::new(), &parts)),
                Ok(false) => {
                    let headers = headers(shared, None);
                    return pass(self.inner.call(Request::from_parts(parts, body)), headers);
                }
                Ok(true) => {}
            }
            let decision = key
                .as_bytes()
                .and_then(|key| memory.hit_now(key, &policy.quota, now_us));
            if let Some(decision) = decision {
                if !decision.allowed {
                    return decided(refuse_all(shared, &[(policy, &decision)], &parts, now_us));
                }
                let mut value = LimitValue::new();
                push_item(&mut value, policy, &decision);
                let value = match value.as_bytes() {
                    Some(value) => HeaderValue::from_bytes(value).ok(),
                    None => limit_value(ratelimit_of(policy, &decision)),
                };
                let headers = headers(shared, value);
                return pass(self.inner.call(Request::from_parts(parts, body)), headers);
            }
            // The table is full (or the key did not fit): the general path
            // below answers, through `hit_all`.
        }
        let keys = match plan(&shared.policies, &parts) {
            Ok(keys) => keys,
            Err(problem) => return decided(refusal(shared, problem, String::new(), &parts)),
        };
        // One key left (other policies skipped): count without waiting while
        // the store can (the in-memory store always can), and call the inner
        // service right here.
        if let [(index, key)] = keys.as_slice() {
            let policy = &shared.policies[*index];
            if let Some(decision) = hit_now(&shared.store, key, &policy.quota, now_us) {
                if !decision.allowed {
                    return decided(refuse_all(shared, &[(policy, &decision)], &parts, now_us));
                }
                let headers = headers(shared, limit_value(ratelimit_of(policy, &decision)));
                return pass(self.inner.call(Request::from_parts(parts, body)), headers);
            }
        }
        if keys.is_empty() {
            let headers = headers(shared, None);
            return pass(self.inner.call(Request::from_parts(parts, body)), headers);
        }
        // Several policies, decided together: a request one of them refuses
        // spends none of the others. Without waiting while the store can.
        if keys.len() > 1
            && let Some(decisions) = hit_all_now(&shared.store, &limits(shared, &keys), now_us)
        {
            return match settle(shared, &keys, &decisions) {
                Ok(ratelimit) => {
                    let headers = headers(shared, limit_value(ratelimit));
                    pass(self.inner.call(Request::from_parts(parts, body)), headers)
                }
                Err(refused) => decided(refuse_all(shared, &refused, &parts, now_us)),
            };
        }
        // The store needs I/O: take the ready inner service, leave a clone.
        let req = Request::from_parts(parts, body);
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = Arc::clone(shared);
        let now = UNIX_EPOCH + Duration::from_micros(now_us);
        ResponseFuture::new(LayerFuture::checking(async move {
            let ratelimit = match shared.store.hit_all(&limits(&shared, &keys), now).await {
                Ok(decisions) => match settle(&shared, &keys, &decisions) {
                    Ok(ratelimit) => ratelimit,
                    Err(refused) => {
                        let (parts, _) = req.into_parts();
                        return Checked::Decided(refuse_all(&shared, &refused, &parts, now_us));
                    }
                },
                Err(error) if shared.fail_open => {
                    tracing::warn!(
                        %error,
                        "rate limit store failed; letting the request through (fail open)"
                    );
                    String::new()
                }
                Err(error) => {
                    tracing::error!(
                        %error,
                        "rate limit store failed; refusing the request (fail closed)"
                    );
                    let (parts, _) = req.into_parts();
                    let problem = Problem::store_unavailable();
                    return Checked::Decided(refusal(&shared, problem, String::new(), &parts));
                }
            };
            Checked::Pass(inner.call(req), headers(&shared, limit_value(ratelimit)))
        }))
    }
}

fn decided<F, B>(response: Response<ResponseBody<B>>) -> ResponseFuture<F, B> {
    ResponseFuture::new(LayerFuture::decided(response))
}

fn pass<F, B>(future: F, headers: RateLimitHeaders) -> ResponseFuture<F, B> {
    ResponseFuture::new(LayerFuture::inner(future, headers))
}

/// The store limits of `keys`, in policy order.
fn limits<'a, St>(shared: &'a Shared<St>, keys: &'a [(usize, String)]) -> Vec<Limit<'a>> {
    keys.iter()
        .map(|(index, key)| Limit {
            key,
            quota: &shared.policies[*index].quota,
        })
        .collect()
}

/// The `RateLimit` value for `decisions` when every policy allowed, else the
/// refusing policies (for [`refuse_all`]).
fn settle<'a, St>(
    shared: &'a Shared<St>,
    keys: &[(usize, String)],
    decisions: &'a [RateDecision],
) -> Result<String, Vec<(&'a Policy, &'a RateDecision)>> {
    let refused: Vec<_> = keys
        .iter()
        .zip(decisions)
        .filter(|(_, d)| !d.allowed)
        .map(|((index, _), d)| (&shared.policies[*index], d))
        .collect();
    if !refused.is_empty() {
        return Err(refused);
    }
    let mut ratelimit = String::with_capacity(keys.len() * 32);
    for ((index, _), decision) in keys.iter().zip(decisions) {
        push_item(&mut ratelimit, &shared.policies[*index], decision);
    }
    Ok(ratelimit)
}

/// The 429 for the request with `parts` the `refused` policies refused at
/// `now_us`: every one of them named, counted and reported to the event
/// sink, `Retry-After` the longest wait among them.
fn refuse_all<St, B>(
    shared: &Shared<St>,
    refused: &[(&Policy, &RateDecision)],
    parts: &Parts,
    now_us: u64,
) -> Response<ResponseBody<B>> {
    let mut ratelimit = String::new();
    let reporter = shared.refusal.reporter(parts);
    let at = SystemTime::UNIX_EPOCH + Duration::from_micros(now_us);
    for (policy, decision) in refused {
        push_item(&mut ratelimit, policy, decision);
        tracing::debug!(policy = %policy.name, "rate_limit.exceeded");
        metrics::counter!(
            "tower_otp_rate_limit_exceeded_total",
            "policy" => policy.name.to_string()
        )
        .increment(1);
        if let Some(reporter) = &reporter {
            reporter.emit(EventKind::RateLimitExceeded, at, |event| {
                event.policy = Some(Arc::clone(&policy.name));
            });
        }
    }
    let retry_after = retry_after_secs(refused.iter().map(|(p, d)| (&p.quota, *d)));
    let problem = Problem::rate_limited(Duration::from_secs(retry_after))
        .with_violated_policies(refused.iter().map(|(p, _)| &*p.name));
    refusal(shared, problem, ratelimit, parts)
}

/// The store keys to count this request under, in policy order, or the
/// refusal when a rejecting policy finds no key.
fn plan(policies: &[Policy], parts: &Parts) -> Result<Vec<(usize, String)>, Problem> {
    let mut keys = Vec::with_capacity(policies.len());
    for (index, policy) in policies.iter().enumerate() {
        let mut key = String::with_capacity(policy.key_prefix.len() + 44);
        if policy_key(&mut key, policy, parts)? {
            keys.push((index, key));
        }
    }
    Ok(keys)
}

/// A store key on the stack: `rl:`, a policy name of at most 64 bytes, and
/// an address (at most 43) or `#` and a 43-byte hash fit in 112.
#[cfg(feature = "moka")]
type StoreKey = StackStr<128>;

/// A one-policy `RateLimit` value on the stack: the `"<name>";r=` prefix
/// (at most 68 bytes), two decimals of at most 20 and `;t=` fit in 111.
#[cfg(feature = "moka")]
type LimitValue = StackStr<128>;

/// Writes the store key `policy` counts this request under to `out`:
/// `Ok(false)` when it has none and the policy skips such requests, the
/// refusal when the policy rejects them.
fn policy_key(out: &mut impl Text, policy: &Policy, parts: &Parts) -> Result<bool, Problem> {
    if write_store_key(out, &policy.key_prefix, &policy.extractor, parts) {
        return Ok(true);
    }
    match policy.missing {
        MissingKey::Reject => {
            tracing::debug!(policy = %policy.name, "rate limit key missing; refusing");
            Err(policy.extractor.missing())
        }
        MissingKey::Skip => Ok(false),
        // `!` cannot occur in a policy name, so this never collides
        // with `rl:<name>:<value>`. (`fmt::Write` for `String` never fails;
        // a `StackStr` notes an overflow itself.)
        MissingKey::Shared => {
            let _ = write!(out, "rl:{}!shared", policy.name);
            Ok(true)
        }
    }
}

/// Appends `"name";r=<remaining>;t=<seconds until more quota>` to `out`.
fn push_item(out: &mut impl Text, policy: &Policy, decision: &RateDecision) {
    push_limit_item(out, &policy.item_prefix, &policy.quota, decision);
}

/// The `RateLimit` value of one allowed policy, as a `String`.
fn ratelimit_of(policy: &Policy, decision: &RateDecision) -> String {
    let mut ratelimit = String::with_capacity(policy.item_prefix.len() + 16);
    push_item(&mut ratelimit, policy, decision);
    ratelimit
}

/// `ratelimit` as a header value; `None` when there is none.
fn limit_value(ratelimit: String) -> Option<HeaderValue> {
    // `try_from(String)` takes the buffer over instead of copying it.
    (!ratelimit.is_empty())
        .then(|| HeaderValue::try_from(ratelimit).ok())
        .flatten()
}

fn headers<St>(shared: &Shared<St>, limit: Option<HeaderValue>) -> RateLimitHeaders {
    RateLimitHeaders {
        policy: shared.policy_header.clone(),
        limit,
    }
}

/// The layer's answer to the request with `parts`, refused for `problem`:
/// the app's rejection (or problem+json), then every policy in
/// `RateLimit-Policy` and the `ratelimit` items.
fn refusal<St, B>(
    shared: &Shared<St>,
    problem: Problem,
    ratelimit: String,
    parts: &Parts,
) -> Response<ResponseBody<B>> {
    let mut res = shared.refusal.respond(problem, parts);
    headers(shared, limit_value(ratelimit)).finish(&mut res);
    res
}

/// `store` as the in-memory store, if it is one (a type check the compiler
/// folds away).
#[cfg(feature = "moka")]
fn as_memory<St: 'static>(store: &St) -> Option<&MemoryStore> {
    (store as &dyn Any).downcast_ref::<MemoryStore>()
}

/// The decision without a future, when `store` is the in-memory store;
/// `None` when it needs I/O.
#[cfg_attr(not(feature = "moka"), allow(unused_variables))]
fn hit_now<St: 'static>(store: &St, key: &str, quota: &Quota, now_us: u64) -> Option<RateDecision> {
    #[cfg(feature = "moka")]
    if let Some(memory) = as_memory(store) {
        return memory.hit_now(key, quota, now_us);
    }
    None
}

/// [`hit_now`] for several limits, decided together.
#[cfg_attr(not(feature = "moka"), allow(unused_variables))]
fn hit_all_now<St: 'static>(
    store: &St,
    limits: &[Limit<'_>],
    now_us: u64,
) -> Option<Vec<RateDecision>> {
    #[cfg(feature = "moka")]
    if let Some(memory) = as_memory(store) {
        return memory.hit_all_now(limits, now_us);
    }
    None
}

#[cfg(all(test, feature = "moka"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::convert::Infallible;
    use std::time::Duration;

    use bytes::Bytes;
    use http::StatusCode;
    use http::header::RETRY_AFTER;
    use http_body_util::{BodyExt, Full};
    use tower::{ServiceExt, service_fn};

    use super::*;
    use crate::client_ip::{ClientIp, ClientIpKey};
    use crate::clock::ManualClock;
    use crate::quota::Quota;
    use crate::rate_limit::key::push_decimal;
    use crate::rate_limit::{ByClientIp, ByHeader, RATELIMIT, RATELIMIT_POLICY};
    use crate::store::MemoryStore;

    type Res = Response<ResponseBody<Full<Bytes>>>;

    fn service(
        layer: &RateLimitLayer<MemoryStore>,
    ) -> impl Service<Request<()>, Response = Res, Error = Infallible, Future: Send> + Clone + use<>
    {
        layer.layer(service_fn(|req: Request<()>| async move {
            let status = if req.uri().path() == "/missing" {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::OK
            };
            let mut res = Response::new(Full::new(Bytes::from_static(b"inner")));
            *res.status_mut() = status;
            Ok::<_, Infallible>(res)
        }))
    }

    fn from(ip: &str) -> Request<()> {
        let mut req = Request::new(());
        req.extensions_mut().insert(ClientIp(ip.parse().unwrap()));
        req
    }

    async fn send(
        svc: &(impl Service<Request<()>, Response = Res, Error = Infallible> + Clone),
        req: Request<()>,
    ) -> Res {
        svc.clone().oneshot(req).await.unwrap()
    }

    async fn code(res: Res) -> String {
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
        doc["code"].as_str().unwrap().to_owned()
    }

    fn per_ip(limit: u32, clock: &ManualClock) -> RateLimitLayer<MemoryStore> {
        RateLimitLayer::builder(MemoryStore::new())
            .limit("ip", Quota::per_minute(limit), ByClientIp)
            .clock(clock.clone())
            .build()
            .unwrap()
    }

    #[test]
    fn push_decimal_writes_every_width() {
        for n in [0, 7, 10, 99, 100, 4_294_967_295, u64::MAX] {
            let mut out = String::from("x=");
            push_decimal(&mut out, n);
            assert_eq!(out, format!("x={n}"));
            let mut stack = StackStr::<32>::new();
            stack.push_str("x=");
            push_decimal(&mut stack, n);
            assert_eq!(stack.as_str(), Some(out.as_str()));
        }
    }

    /// The stack-built `RateLimit` value of the one-policy fast path is
    /// byte for byte the `String` one, and the `format!` spelling of the
    /// item, for edge values; the longest policy name fits.
    #[test]
    fn limit_value_on_the_stack_equals_the_string_one() {
        let long = "n".repeat(64);
        for name in ["ip", long.as_str()] {
            let policy = Policy::new(name, Quota::per_second(1), ByClientIp);
            for (remaining, reset_after) in [
                (0, Duration::ZERO),
                (1, Duration::from_micros(1)),
                (u32::MAX, Duration::from_secs(u64::MAX)),
            ] {
                let decision = RateDecision {
                    allowed: true,
                    remaining,
                    retry_after: Duration::ZERO,
                    reset_after,
                };
                let t = crate::rate_limit::fields::reset_secs(&policy.quota, &decision);
                let mut stack = LimitValue::new();
                push_item(&mut stack, &policy, &decision);
                let string = ratelimit_of(&policy, &decision);
                assert_eq!(string, format!("\"{name}\";r={remaining};t={t}"));
                assert_eq!(stack.as_bytes(), Some(string.as_bytes()));
            }
        }
    }

    /// The stack-built store key equals the `String` one, for the longest
    /// policy name and the longest address key.
    #[test]
    fn store_key_on_the_stack_equals_the_string_one() {
        let long = "n".repeat(64);
        let v6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        for (name, client) in [("ip", "192.0.2.1"), (long.as_str(), v6)] {
            let policy = Policy::new(
                name,
                Quota::per_second(1),
                ClientIpKey::builder().ipv6_prefix(128).build().unwrap(),
            );
            let (parts, ()) = from(client).into_parts();
            let mut stack = StoreKey::new();
            let mut string = String::new();
            assert!(policy_key(&mut stack, &policy, &parts).unwrap());
            assert!(policy_key(&mut string, &policy, &parts).unwrap());
            assert_eq!(stack.as_bytes(), Some(string.as_bytes()));
            let address = if client == v6 {
                format!("{v6}/128")
            } else {
                client.to_owned()
            };
            assert_eq!(string, format!("rl:{name}:{address}"));
        }
    }

    #[tokio::test]
    async fn allows_then_refuses_with_429_and_headers() {
        let clock = ManualClock::default();
        let svc = service(&per_ip(2, &clock));
        let res = send(&svc, from("192.0.2.1")).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[RATELIMIT_POLICY], "\"ip\";q=2;w=60");
        assert_eq!(res.headers()[RATELIMIT], "\"ip\";r=1;t=30");
        let res = send(&svc, from("192.0.2.1")).await;
        // `t`: one more request is allowed in 30 s (draft -10 §4.1.2).
        assert_eq!(res.headers()[RATELIMIT], "\"ip\";r=0;t=30");
        clock.advance(Duration::from_millis(500));
        let res = send(&svc, from("192.0.2.1")).await;
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()[RETRY_AFTER], "30"); // 29.5 s rounded up
        assert_eq!(res.headers()[RATELIMIT_POLICY], "\"ip\";q=2;w=60");
        assert_eq!(res.headers()[RATELIMIT], "\"ip\";r=0;t=30");
        assert_eq!(res.headers()["cache-control"], "no-store");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(doc["code"], "rate_limited");
        assert_eq!(doc["violated-policies"], serde_json::json!(["ip"]));
        // Another client is not affected.
        assert_eq!(send(&svc, from("192.0.2.2")).await.status(), StatusCode::OK);
        // The quota refills.
        clock.advance(Duration::from_secs(30));
        assert_eq!(send(&svc, from("192.0.2.1")).await.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn retry_after_is_never_zero() {
        let clock = ManualClock::default();
        let svc = service(&per_ip(1, &clock));
        send(&svc, from("192.0.2.1")).await;
        clock.advance(Duration::from_micros(59_999_999));
        let res = send(&svc, from("192.0.2.1")).await;
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()[RETRY_AFTER], "1");
        assert_eq!(res.headers()[RATELIMIT], "\"ip\";r=0;t=1");
    }

    /// The `t` of every `RateLimit` item of a 429, whatever the quota and
    /// timing, is no longer than its `Retry-After`, and the request is
    /// allowed again after `Retry-After`.
    #[tokio::test]
    async fn retry_after_is_never_shorter_than_reset() {
        for quota in [
            Quota::per_minute(2),
            Quota::per_second(2),
            Quota::per_hour(5).with_burst(2),
            Quota::per_minute(10).with_burst(10),
        ] {
            let clock = ManualClock::default();
            let layer = RateLimitLayer::builder(MemoryStore::new())
                .limit("ip", quota, ByClientIp)
                .clock(clock.clone())
                .build()
                .unwrap();
            let svc = service(&layer);
            let mut refusals = 0;
            for step in 0..60u64 {
                let res = send(&svc, from("192.0.2.1")).await;
                if res.status() == StatusCode::TOO_MANY_REQUESTS {
                    refusals += 1;
                    let retry: u64 = res.headers()[RETRY_AFTER]
                        .to_str()
                        .unwrap()
                        .parse()
                        .unwrap();
                    let item = res.headers()[RATELIMIT].to_str().unwrap().to_owned();
                    let t: u64 = item.rsplit("t=").next().unwrap().parse().unwrap();
                    assert!(
                        retry >= t,
                        "{quota:?}: Retry-After {retry} < t={t} ({item})"
                    );
                    clock.advance(Duration::from_secs(retry));
                    let again = send(&svc, from("192.0.2.1")).await;
                    assert_eq!(again.status(), StatusCode::OK, "{quota:?} after {retry} s");
                } else {
                    assert_eq!(res.status(), StatusCode::OK);
                }
                clock.advance(Duration::from_millis(97 + step * 13));
            }
            assert!(refusals > 0, "{quota:?} was never refused");
        }
    }

    #[tokio::test]
    async fn inner_responses_keep_status_and_get_headers() {
        let clock = ManualClock::default();
        let svc = service(&per_ip(5, &clock));
        let mut req = from("192.0.2.1");
        *req.uri_mut() = "/missing".parse().unwrap();
        let res = send(&svc, req).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert_eq!(res.headers()[RATELIMIT], "\"ip\";r=4;t=12");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "inner");
    }

    /// A service with a 1/s `burst` policy by client IP and a 100/hour
    /// `tenant` policy by `x-tenant`, the tenant one first when asked.
    fn two_policies(
        tenant_first: bool,
    ) -> (
        impl Service<Request<()>, Response = Res, Error = Infallible, Future: Send> + Clone,
        ManualClock,
    ) {
        let clock = ManualClock::default();
        let tenant = ByHeader::new("x-tenant").unwrap();
        let builder = RateLimitLayer::builder(MemoryStore::new());
        let builder = if tenant_first {
            builder.limit("tenant", Quota::per_hour(100), tenant).limit(
                "burst",
                Quota::per_second(1),
                ByClientIp,
            )
        } else {
            builder
                .limit("burst", Quota::per_second(1), ByClientIp)
                .limit("tenant", Quota::per_hour(100), tenant)
        };
        let layer = builder.clock(clock.clone()).build().unwrap();
        (service(&layer), clock)
    }

    fn tenant_request() -> Request<()> {
        let mut r = from("192.0.2.1");
        r.headers_mut()
            .insert("x-tenant", HeaderValue::from_static("acme"));
        r
    }

    #[tokio::test]
    async fn several_policies_over_memory_call_the_inner_service_in_place() {
        // `hit_all_now`: the inner service is called inside `call`, not in a
        // boxed future polled later.
        let called = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = Arc::clone(&called);
        let layer = RateLimitLayer::builder(MemoryStore::new())
            .limit("burst", Quota::per_second(1), ByClientIp)
            .limit(
                "tenant",
                Quota::per_hour(100),
                ByHeader::new("x-tenant").unwrap(),
            )
            .build()
            .unwrap();
        let mut svc = layer.layer(service_fn(move |_req: Request<()>| {
            seen.store(true, std::sync::atomic::Ordering::SeqCst);
            async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))) }
        }));
        let fut = svc.ready().await.unwrap().call(tenant_request());
        assert!(called.load(std::sync::atomic::Ordering::SeqCst));
        assert_eq!(fut.await.unwrap().status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn one_policy_over_memory_calls_the_inner_service_in_place() {
        // `MemoryStore::hit_now`, reached through the type check: no boxed
        // future, so the inner service has run when `call` returns.
        let called = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = Arc::clone(&called);
        let layer = RateLimitLayer::builder(MemoryStore::new())
            .limit("ip", Quota::per_second(1), ByClientIp)
            .build()
            .unwrap();
        let mut svc = layer.layer(service_fn(move |_req: Request<()>| {
            seen.store(true, std::sync::atomic::Ordering::SeqCst);
            async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))) }
        }));
        let fut = svc.ready().await.unwrap().call(from("192.0.2.1"));
        assert!(called.load(std::sync::atomic::Ordering::SeqCst));
        assert_eq!(fut.await.unwrap().status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn several_policies_are_listed_and_decided_together() {
        let (svc, clock) = two_policies(false);
        let req = tenant_request;
        let res = send(&svc, req()).await;
        assert_eq!(
            res.headers()[RATELIMIT_POLICY],
            "\"burst\";q=1;w=1, \"tenant\";q=100;w=3600"
        );
        assert_eq!(
            res.headers()[RATELIMIT],
            "\"burst\";r=0;t=1, \"tenant\";r=99;t=36"
        );
        let res = send(&svc, req()).await;
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        // The tenant policy was not counted for the refused request.
        assert_eq!(res.headers()[RATELIMIT], "\"burst\";r=0;t=1");
        clock.advance(Duration::from_secs(1));
        let res = send(&svc, req()).await;
        assert_eq!(
            res.headers()[RATELIMIT],
            "\"burst\";r=0;t=1, \"tenant\";r=98;t=35"
        );
    }

    #[tokio::test]
    async fn a_request_refused_by_a_later_policy_spends_no_earlier_one() {
        // The tenant budget comes first: before policies were decided
        // together, each request the burst policy refused still spent it.
        let (svc, clock) = two_policies(true);
        let req = tenant_request;
        assert_eq!(send(&svc, req()).await.status(), StatusCode::OK);
        for _ in 0..5 {
            let res = send(&svc, req()).await;
            assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(res.headers()[RATELIMIT], "\"burst\";r=0;t=1");
        }
        clock.advance(Duration::from_secs(1));
        let res = send(&svc, req()).await;
        assert_eq!(res.status(), StatusCode::OK);
        // One counted request before, this one now: 98 left, not 93.
        assert!(
            res.headers()[RATELIMIT]
                .to_str()
                .unwrap()
                .starts_with("\"tenant\";r=98;"),
            "{:?}",
            res.headers()[RATELIMIT]
        );
    }

    #[tokio::test]
    async fn stacked_layers_append_their_headers() {
        let clock = ManualClock::default();
        let outer = RateLimitLayer::builder(MemoryStore::new())
            .limit("outer", Quota::per_minute(10), ByClientIp)
            .clock(clock.clone())
            .build()
            .unwrap();
        let svc = outer.layer(service(&per_ip(5, &clock)));
        let res = svc.oneshot(from("192.0.2.1")).await.unwrap();
        let policies: Vec<_> = res.headers().get_all(RATELIMIT_POLICY).iter().collect();
        assert_eq!(policies, ["\"ip\";q=5;w=60", "\"outer\";q=10;w=60"]);
        assert_eq!(res.headers().get_all(RATELIMIT).iter().count(), 2);
    }

    #[tokio::test]
    async fn missing_key_policies() {
        let clock = ManualClock::default();
        // Default: fail closed.
        let res = send(&service(&per_ip(5, &clock)), Request::new(())).await;
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(res.headers()[RATELIMIT_POLICY], "\"ip\";q=5;w=60");
        assert_eq!(code(res).await, "client_ip_unavailable");

        let header = |missing| {
            RateLimitLayer::builder(MemoryStore::new())
                .policy(
                    Policy::new(
                        "key",
                        Quota::per_minute(1),
                        ByHeader::new("x-api-key").unwrap(),
                    )
                    .on_missing_key(missing),
                )
                .clock(clock.clone())
                .build()
                .unwrap()
        };
        let res = send(&service(&header(MissingKey::Reject)), Request::new(())).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert_eq!(code(res).await, "rate_limit_key_missing");

        let skip = service(&header(MissingKey::Skip));
        for _ in 0..3 {
            let res = send(&skip, Request::new(())).await;
            assert_eq!(res.status(), StatusCode::OK);
            assert!(res.headers().get(RATELIMIT).is_none());
        }

        let shared = service(&header(MissingKey::Shared));
        assert_eq!(
            send(&shared, Request::new(())).await.status(),
            StatusCode::OK
        );
        assert_eq!(
            send(&shared, Request::new(())).await.status(),
            StatusCode::TOO_MANY_REQUESTS
        );
    }

    #[tokio::test]
    async fn closure_extractor_keys_on_an_extension() {
        #[derive(Clone)]
        struct Tenant(&'static str);
        let clock = ManualClock::default();
        let layer = RateLimitLayer::builder(MemoryStore::new())
            .limit("tenant", Quota::per_minute(1), |parts: &Parts| {
                parts.extensions.get::<Tenant>().map(|t| t.0.to_owned())
            })
            .clock(clock)
            .build()
            .unwrap();
        let svc = service(&layer);
        let req = |t| {
            let mut r = Request::new(());
            r.extensions_mut().insert(Tenant(t));
            r
        };
        assert_eq!(send(&svc, req("a")).await.status(), StatusCode::OK);
        assert_eq!(send(&svc, req("b")).await.status(), StatusCode::OK);
        assert_eq!(
            send(&svc, req("a")).await.status(),
            StatusCode::TOO_MANY_REQUESTS
        );
    }

    #[test]
    fn invalid_configuration_is_refused() {
        let b = || RateLimitLayer::builder(MemoryStore::new());
        assert!(b().build().is_err());
        assert!(
            b().limit("a b", Quota::per_minute(1), ByClientIp)
                .build()
                .is_err()
        );
        assert!(
            b().limit("ip", Quota::per_minute(0), ByClientIp)
                .build()
                .is_err()
        );
        let err = b()
            .limit("ip", Quota::per_minute(1), ByClientIp)
            .limit("ip", Quota::per_hour(1), ByClientIp)
            .build()
            .unwrap_err();
        assert!(err.reason.contains("twice"), "{err}");
    }

    /// A plain-text refusal that also tries to set its own wait.
    fn text_refusal(problem: &Problem, _: &Parts) -> Response<crate::error::FullBody> {
        let policies = problem
            .member("violated-policies")
            .map(ToString::to_string)
            .unwrap_or_default();
        let body = format!("{} {policies}", problem.code());
        let mut res = Response::new(Full::new(Bytes::from(body)));
        *res.status_mut() = problem.status();
        res.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("0"));
        res
    }

    #[tokio::test]
    async fn a_custom_rejection_shapes_the_429_and_keeps_the_rate_limit_fields() {
        let clock = ManualClock::default();
        let layer = RateLimitLayer::builder(MemoryStore::new())
            .limit("ip", Quota::per_minute(1), ByClientIp)
            .clock(clock.clone())
            .rejection(text_refusal)
            .build()
            .unwrap();
        let svc = service(&layer);
        assert_eq!(send(&svc, from("192.0.2.1")).await.status(), StatusCode::OK);
        let res = send(&svc, from("192.0.2.1")).await;
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()[RETRY_AFTER], "60");
        assert_eq!(res.headers()[RATELIMIT_POLICY], "\"ip\";q=1;w=60");
        assert_eq!(res.headers()[RATELIMIT], "\"ip\";r=0;t=60");
        assert_eq!(
            res.extensions().get::<Problem>().map(Problem::code),
            Some("rate_limited")
        );
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "rate_limited [\"ip\"]");
        // Every refusal goes through it: a missing key too.
        let res = send(&svc, Request::new(())).await;
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "client_ip_unavailable ");
    }

    #[tokio::test]
    async fn an_outer_layer_sees_why_the_request_was_refused() {
        let clock = ManualClock::default();
        let svc = tower::ServiceBuilder::new()
            .map_response(|res: Res| {
                let why = res.extensions().get::<Problem>().cloned();
                (res.status(), why)
            })
            .service(service(&per_ip(1, &clock)));
        let (status, why) = svc.clone().oneshot(from("192.0.2.1")).await.unwrap();
        assert_eq!((status, why.is_none()), (StatusCode::OK, true));
        let (status, why) = svc.clone().oneshot(from("192.0.2.1")).await.unwrap();
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        let why = why.unwrap();
        assert_eq!(why.code(), "rate_limited");
        assert_eq!(why.retry_after(), Some(60));
        assert_eq!(
            why.member("violated-policies"),
            Some(&serde_json::json!(["ip"]))
        );
        let (status, why) = svc.oneshot(Request::new(())).await.unwrap();
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(why.unwrap().code(), "client_ip_unavailable");
    }

    #[tokio::test]
    async fn each_refusing_policy_is_reported_as_an_event() {
        use crate::clock::Clock;
        use crate::events::{EventKind, MemorySink};

        let clock = ManualClock::default();
        let sink = MemorySink::new();
        let layer = RateLimitLayer::builder(MemoryStore::new())
            .limit("burst", Quota::per_minute(1), ByClientIp)
            .limit(
                "tenant",
                Quota::per_minute(1),
                ByHeader::new("x-tenant").unwrap(),
            )
            .clock(clock.clone())
            .events(sink.clone())
            .build()
            .unwrap();
        let svc = service(&layer);
        let req = || {
            let mut r = tenant_request();
            r.headers_mut()
                .insert("x-request-id", HeaderValue::from_static("r-1"));
            r
        };
        assert_eq!(send(&svc, req()).await.status(), StatusCode::OK);
        assert!(sink.events().is_empty(), "an allowed request is no event");
        assert_eq!(
            send(&svc, req()).await.status(),
            StatusCode::TOO_MANY_REQUESTS
        );
        let events = sink.events();
        let policies: Vec<_> = events.iter().map(|e| e.policy.as_deref()).collect();
        assert_eq!(policies, [Some("burst"), Some("tenant")]);
        for e in &events {
            assert_eq!(e.kind, EventKind::RateLimitExceeded);
            assert_eq!(e.kind.as_str(), "rate_limit.exceeded");
            assert_eq!(e.request_id.as_deref(), Some("r-1"));
            assert_eq!(e.client_ip, Some("192.0.2.1".parse().unwrap()));
            assert_eq!(e.at, clock.now());
        }
        // One policy, decided in place: the same event.
        let one = RateLimitLayer::builder(MemoryStore::new())
            .limit("ip", Quota::per_minute(1), ByClientIp)
            .clock(clock.clone())
            .events(sink.clone())
            .build()
            .unwrap();
        let svc = service(&one);
        send(&svc, from("192.0.2.9")).await;
        send(&svc, from("192.0.2.9")).await;
        let last = sink.events().pop().unwrap();
        assert_eq!(last.policy.as_deref(), Some("ip"));
        assert_eq!(last.client_ip, Some("192.0.2.9".parse().unwrap()));
    }

    #[tokio::test]
    async fn accessors_reach_the_inner_service() {
        let clock = ManualClock::default();
        let mut svc = RateLimit::new(7u8, &per_ip(1, &clock));
        assert_eq!(*svc.get_ref(), 7);
        *svc.get_mut() = 8;
        assert_eq!(svc.into_inner(), 8);
    }
}
