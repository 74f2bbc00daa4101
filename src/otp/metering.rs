//! Usage and quotas of a tenant's requests (multi-tenant mode only; a
//! single app's requests touch none of this).
//!
//! A tenant with a quota has each message *reserved* before anything is
//! counted or sent — one guarded store step, so concurrent requests never
//! pass the quota — and given back when a later step refuses the request.
//! Every other usage count (a tenant without quotas, verification
//! outcomes, refusals) waits in this instance's analytics aggregate and
//! reaches the store with its next flush, in the same atomic step as the
//! analytics: no store call on the request path for it.

use http::StatusCode;

use super::router::Call;
use super::subject::SubjectResolver;
use crate::error::Problem;
use crate::events::EventKind;
use crate::notify::Notifier;
use crate::store::Store;
use crate::tenant::usage::{self, QuotaState, Reservation, UsageField};

/// How a code request's message is counted.
pub(super) enum Metered {
    /// A single app: not at all.
    App,
    /// A tenant without quotas: with the next flush, once the outcome is known.
    Deferred,
    /// Reserved under the tenant's quotas (their state, for the response).
    Reserved(Vec<QuotaState>),
}

impl<S: Store, N: Notifier, R: SubjectResolver> Call<S, N, R> {
    /// Meters a code request before anything is counted or sent: under
    /// quotas, `429 quota_exceeded` when one is used up (nothing else
    /// happens) or `503` when the store fails.
    pub(super) async fn meter_request(&self) -> Result<Metered, Problem> {
        let Some(tenant) = &self.site.tenant else {
            return Ok(Metered::App);
        };
        let q = self.site.quotas;
        if q.daily.is_none() && q.monthly.is_none() {
            return Ok(Metered::Deferred);
        }
        match usage::reserve_message(&self.store, tenant, q.daily, q.monthly, self.now()).await {
            Ok(Reservation::Reserved(states)) => Ok(Metered::Reserved(states)),
            Ok(Reservation::Exceeded(states)) => {
                self.event(EventKind::QuotaExceeded, None, None);
                Err(usage::quota_exceeded(&states))
            }
            Err(e) => Err(self.store_failed(&e)),
        }
    }

    /// Counts how the metered code request ended: sent, or refused by a
    /// later step (a `429` counts as `rate_limited`; a reservation is given
    /// back at once).
    pub(super) async fn settle_request(&self, metered: &Metered, outcome: Result<(), &Problem>) {
        let limited = outcome.is_err_and(|p| p.status() == StatusCode::TOO_MANY_REQUESTS);
        match (metered, outcome) {
            (Metered::App, _) | (Metered::Reserved(_), Ok(())) => {}
            (Metered::Deferred, Ok(())) => {
                self.count(UsageField::MessagesSent, 1);
                self.count(UsageField::OtpRequested, 1);
            }
            (Metered::Deferred, Err(_)) => {
                if limited {
                    self.count(UsageField::RateLimited, 1);
                }
            }
            (Metered::Reserved(_), Err(_)) => {
                let mut changes = vec![
                    (UsageField::MessagesSent, -1),
                    (UsageField::OtpRequested, -1),
                ];
                if limited {
                    changes.push((UsageField::RateLimited, 1));
                }
                let (Some(tenant), now) = (&self.site.tenant, self.now()) else {
                    return;
                };
                if let Err(e) = usage::count(&self.store, tenant, &changes, now).await {
                    metrics::counter!("tower_otp_usage_errors_total").increment(1);
                    tracing::error!(target: "tower_otp", tenant = %tenant, error = %e, "a refused request's message reservation was not given back");
                }
            }
        }
    }

    /// Counts a verification's outcome in the tenant's usage.
    pub(super) fn count_verification(&self, outcome: Result<(), &Problem>) {
        let field = match outcome {
            Ok(()) => UsageField::OtpVerified,
            Err(p) if matches!(p.code(), "invalid_code" | "too_many_attempts") => {
                UsageField::OtpFailed
            }
            Err(p) if p.status() == StatusCode::TOO_MANY_REQUESTS => UsageField::RateLimited,
            Err(_) => return,
        };
        self.count(field, 1);
    }

    /// A usage change with the next flush (nothing for a single app).
    fn count(&self, field: UsageField, delta: i64) {
        if let Some(tenants) = &self.tenants {
            tenants.count(&self.site, field, delta);
        }
    }
}

/// Adds the quotas' `RateLimit` fields to `response`.
pub(super) fn add_quota_fields<B>(response: &mut http::Response<B>, metered: &Metered) {
    if let Metered::Reserved(quotas) = metered {
        for (name, value) in usage::quota_fields(quotas).into_iter().flatten() {
            response.headers_mut().insert(name, value);
        }
    }
}
