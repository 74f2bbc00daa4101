//! Usage and quotas of a tenant's requests (multi-tenant mode only; a
//! single app's requests touch none of this).

use http::StatusCode;

use super::router::Call;
use super::subject::SubjectResolver;
use crate::error::Problem;
use crate::events::EventKind;
use crate::notify::Notifier;
use crate::store::Store;
use crate::tenant::usage::{self, QuotaState, Reservation, UsageField};

impl<S: Store, N: Notifier, R: SubjectResolver> Call<S, N, R> {
    /// Reserves one message under the tenant's quotas before anything is
    /// counted or sent: `429 quota_exceeded` when one is used up (nothing
    /// else happens), `503` when the store fails. Answers the quotas' state
    /// for the response's `RateLimit` fields; nothing for a single app.
    pub(super) async fn reserve_message(&self) -> Result<Vec<QuotaState>, Problem> {
        let Some(tenant) = &self.site.tenant else {
            return Ok(Vec::new());
        };
        let q = self.site.quotas;
        match usage::reserve_message(&self.store, tenant, q.daily, q.monthly, self.now()).await {
            Ok(Reservation::Reserved(states)) => Ok(states),
            Ok(Reservation::Exceeded(states)) => {
                self.event(EventKind::QuotaExceeded, None, None);
                Err(usage::quota_exceeded(&states))
            }
            Err(e) => Err(self.store_failed(&e)),
        }
    }

    /// Gives back the reservation of a code request that `refusal` ended
    /// (a rate limit, a failed delivery); a `429` counts as `rate_limited`.
    pub(super) async fn release_message(&self, refusal: &Problem) {
        let mut changes = vec![
            (UsageField::MessagesSent, -1),
            (UsageField::OtpRequested, -1),
        ];
        if refusal.status() == StatusCode::TOO_MANY_REQUESTS {
            changes.push((UsageField::RateLimited, 1));
        }
        self.count_usage(&changes).await;
    }

    /// Counts a verification's outcome in the tenant's usage.
    pub(super) async fn count_verification(&self, outcome: Result<(), &Problem>) {
        let field = match outcome {
            Ok(()) => UsageField::OtpVerified,
            Err(p) if matches!(p.code(), "invalid_code" | "too_many_attempts") => {
                UsageField::OtpFailed
            }
            Err(p) if p.status() == StatusCode::TOO_MANY_REQUESTS => UsageField::RateLimited,
            Err(_) => return,
        };
        self.count_usage(&[(field, 1)]).await;
    }

    /// Changes the tenant's usage counters; a failure is logged (the
    /// request's own outcome stands).
    async fn count_usage(&self, changes: &[(UsageField, i64)]) {
        let Some(tenant) = &self.site.tenant else {
            return;
        };
        if let Err(e) = usage::count(&self.store, tenant, changes, self.now()).await {
            metrics::counter!("tower_otp_usage_errors_total").increment(1);
            tracing::error!(target: "tower_otp", tenant = %tenant, error = %e, "usage counters not updated");
        }
    }
}

/// Adds the quotas' `RateLimit` fields to `response`.
pub(super) fn add_quota_fields<B>(response: &mut http::Response<B>, quotas: &[QuotaState]) {
    for (name, value) in usage::quota_fields(quotas).into_iter().flatten() {
        response.headers_mut().insert(name, value);
    }
}
