//! The `RateLimit-Policy` / `RateLimit` items and `Retry-After` of a
//! decision: one definition for [`RateLimitLayer`](super::RateLimitLayer)
//! and the OTP router, so the two never disagree on what `t` means.
//!
//! The fields follow draft-ietf-httpapi-ratelimit-headers-10: `t` is "the
//! number of seconds until additional quota associated with the quota policy
//! is made available" (§4.1.2). Under GCRA that is the time until one more
//! request is allowed — for a refused request exactly its `Retry-After`, so
//! `Retry-After` is never shorter than `t` (§6: it "SHOULD NOT reference a
//! point in time earlier than the reset parameter").

use std::time::Duration;

use http::header::HeaderName;
use http::{HeaderValue, Response};

use super::key::push_decimal;
use crate::clock::ceil_secs;
use crate::error::Problem;
use crate::future::Finish;
use crate::quota::{Quota, RateDecision};
use crate::stack_str::Text;

/// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers).
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit` (draft-ietf-httpapi-ratelimit-headers).
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// The `RateLimit-Policy` and `RateLimit` values for one response.
#[derive(Debug)]
pub(crate) struct RateLimitHeaders {
    pub(crate) policy: HeaderValue,
    pub(crate) limit: Option<HeaderValue>,
}

impl Finish for RateLimitHeaders {
    fn finish<B>(self, response: &mut Response<B>) {
        let headers = response.headers_mut();
        // `append`: a layer further out adds its own policies beside ours.
        headers.append(RATELIMIT_POLICY, self.policy);
        if let Some(limit) = self.limit {
            headers.append(RATELIMIT, limit);
        }
    }
}

/// `t`: whole seconds, rounded up, until `quota` makes one more request
/// available after `decision`.
pub(crate) fn reset_secs(quota: &Quota, decision: &RateDecision) -> u64 {
    if !decision.allowed {
        return ceil_secs(decision.retry_after);
    }
    // `reset_after` is the time until the bucket is full again; the bucket
    // refills one request per emission interval, so the first of the
    // `burst - 1 - remaining` requests still missing arrives that many
    // intervals before it is full.
    let missing = quota
        .burst()
        .saturating_sub(1)
        .saturating_sub(decision.remaining);
    let early_us = u64::from(missing).saturating_mul(quota.emission_interval_us());
    let full_us = u64::try_from(decision.reset_after.as_micros()).unwrap_or(u64::MAX);
    ceil_secs(Duration::from_micros(full_us.saturating_sub(early_us)))
}

/// `Retry-After` for a request refused by the `refused` decisions: the
/// longest of their `t`, and at least one second (a client told to wait
/// must never read `0`).
pub(crate) fn retry_after_secs<'a>(
    refused: impl IntoIterator<Item = (&'a Quota, &'a RateDecision)>,
) -> u64 {
    refused
        .into_iter()
        .map(|(quota, decision)| reset_secs(quota, decision))
        .max()
        .unwrap_or(1)
        .max(1)
}

/// Appends `"<name>";q=<limit>;w=<window seconds>` (a `RateLimit-Policy`
/// item) to `out`.
pub(crate) fn push_policy_item(out: &mut impl Text, name: &str, quota: &Quota) {
    // `fmt::Write` for `String` never fails; a `StackStr` notes an overflow.
    if !out.is_empty() {
        let _ = out.write_str(", ");
    }
    let _ = out.write_char('"');
    let _ = out.write_str(name);
    let _ = out.write_str("\";q=");
    push_decimal(out, u64::from(quota.limit()));
    let _ = out.write_str(";w=");
    push_decimal(out, ceil_secs(quota.period()).max(1));
}

/// Appends `<item_prefix><remaining>;t=<reset>` (a `RateLimit` item) to
/// `out`; `item_prefix` is `"<name>";r=`.
pub(crate) fn push_limit_item(
    out: &mut impl Text,
    item_prefix: &str,
    quota: &Quota,
    decision: &RateDecision,
) {
    if !out.is_empty() {
        let _ = out.write_str(", ");
    }
    let _ = out.write_str(item_prefix);
    push_decimal(out, u64::from(decision.remaining));
    let _ = out.write_str(";t=");
    push_decimal(out, reset_secs(quota, decision));
}

/// `429 rate_limited` for a request the named policies refused: the problem
/// names them (`"violated-policies"`) and carries their `RateLimit-Policy`
/// and `RateLimit` items and a `Retry-After` no shorter than any `t`.
pub(crate) fn refused(violated: &[(&str, &Quota, &RateDecision)]) -> Problem {
    let mut policy = String::new();
    let mut limit = String::new();
    for (name, quota, decision) in violated {
        push_policy_item(&mut policy, name, quota);
        push_limit_item(&mut limit, &format!("\"{name}\";r="), quota, decision);
    }
    let secs = retry_after_secs(violated.iter().map(|(_, q, d)| (*q, *d)));
    let mut problem = Problem::rate_limited(Duration::from_secs(secs))
        .with_violated_policies(violated.iter().map(|(name, _, _)| *name));
    for (name, value) in [(RATELIMIT_POLICY, policy), (RATELIMIT, limit)] {
        if let Ok(value) = HeaderValue::try_from(value) {
            problem = problem.with_header(name, value);
        }
    }
    problem
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::gcra;

    /// `t` is the first whole second at which one more request is allowed
    /// (than `remaining` says now); for a refused request it is also the
    /// `Retry-After`.
    #[test]
    fn reset_is_the_first_second_with_more_quota() {
        let quota = Quota::per_minute(3);
        let mut tat = None;
        let mut now_us = 0;
        // What one more request at `at` would be told.
        let peek = |tat, at| gcra(tat, at, &quota).1;
        for step in 0..300u64 {
            let (next, decision) = gcra(tat, now_us, &quota);
            let t = reset_secs(&quota, &decision);
            assert!(t >= 1, "step {step}");
            let at_t = now_us + t * 1_000_000;
            let before_t = at_t - 1_000_000;
            if decision.allowed {
                tat = next;
                // After this request, `remaining` more are allowed; at `t`
                // one more than that, one second earlier not yet.
                let later = peek(tat, at_t);
                assert!(
                    later.allowed && later.remaining >= decision.remaining,
                    "step {step}"
                );
                let earlier = peek(tat, before_t);
                assert!(
                    !earlier.allowed || earlier.remaining < decision.remaining,
                    "step {step}"
                );
            } else {
                assert_eq!(t, retry_after_secs([(&quota, &decision)]), "step {step}");
                assert!(peek(tat, at_t).allowed, "step {step}");
                assert!(!peek(tat, before_t).allowed, "step {step}");
            }
            now_us += 1_700_000 + step * 37_000;
        }
    }

    #[test]
    fn refused_problem_names_policies_and_carries_fields() {
        let quota = Quota::per_hour(1);
        let (tat, _) = gcra(None, 0, &quota);
        let (_, decision) = gcra(tat, 1_500_000, &quota);
        assert!(!decision.allowed);
        let problem = refused(&[("request_per_ip", &quota, &decision)]);
        assert_eq!(problem.retry_after(), Some(3599));
        assert_eq!(
            problem.member("violated-policies"),
            Some(&serde_json::json!(["request_per_ip"]))
        );
        let res = problem.into_response();
        assert_eq!(res.headers()["retry-after"], "3599");
        assert_eq!(
            res.headers()[RATELIMIT_POLICY],
            "\"request_per_ip\";q=1;w=3600"
        );
        assert_eq!(res.headers()[RATELIMIT], "\"request_per_ip\";r=0;t=3599");
        assert_eq!(res.headers()["cache-control"], "no-store");
    }
}
