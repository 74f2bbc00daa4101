//! Usage counters per tenant per UTC day and calendar month, and the
//! message quotas they enforce — each change one atomic store step.
//!
//! Counters live in the tenant's counter groups `d:YYYYMMDD` and `m:YYYYMM`
//! (see [`TenantStore`]): every change goes to the day and the month at
//! once. A code request *reserves* its message before anything else
//! happens ([`reserve_message`]): one guarded add that counts
//! `messages_sent` and `otp_requested` only while both quotas allow; when a
//! later step refuses the request (a rate limit, a failed delivery) the
//! reservation is given back ([`count`] with negative deltas), so the
//! counters end exact whatever the concurrency.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::clock::{civil_from_days, days_from_civil, unix_secs};
use crate::store::{CounterAdd, CounterGuard, Guarded, StoreError, TenantStore};

/// How long day counters are kept (a little over a year).
pub const DAY_RETENTION: Duration = Duration::from_secs(400 * 86_400);
/// How long month counters are kept (a little over two years).
pub const MONTH_RETENTION: Duration = Duration::from_secs(800 * 86_400);
/// The longest range [`read_usage`] answers, in days.
pub const MAX_USAGE_DAYS: u64 = 366;

/// One usage counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsageField {
    /// Accepted code requests (answered 202).
    OtpRequested,
    /// Codes verified (a session started).
    OtpVerified,
    /// Wrong, expired or unknown codes, and codes burned by attempts.
    OtpFailed,
    /// Messages the notifier accepted.
    MessagesSent,
    /// Requests refused with 429 (rate limits and quotas).
    RateLimited,
}

impl UsageField {
    /// The counter's name, as in the usage report.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OtpRequested => "otp_requested",
            Self::OtpVerified => "otp_verified",
            Self::OtpFailed => "otp_failed",
            Self::MessagesSent => "messages_sent",
            Self::RateLimited => "rate_limited",
        }
    }
}

/// Every usage counter, in the order of a pending day's counts.
pub(crate) const USAGE_FIELDS: [UsageField; 5] = [
    UsageField::OtpRequested,
    UsageField::OtpVerified,
    UsageField::OtpFailed,
    UsageField::MessagesSent,
    UsageField::RateLimited,
];

/// A usage counter change that waited in the analytics aggregate, with the
/// name of its group.
pub(crate) struct PendingAdd {
    group: GroupName,
    field: UsageField,
    delta: i64,
    ttl: Duration,
}

impl PendingAdd {
    /// As a store change.
    pub(crate) fn add(&self) -> CounterAdd<'_> {
        CounterAdd {
            group: self.group.as_str(),
            field: self.field.as_str(),
            delta: self.delta,
            ttl: self.ttl,
        }
    }
}

/// The store changes of pending usage counts per day: each non-zero count
/// to its day's group and its month's.
pub(crate) fn pending_adds(days: &[(Day, [i64; USAGE_FIELDS.len()])]) -> Vec<PendingAdd> {
    let mut adds = Vec::new();
    for (day, counts) in days {
        for (field, delta) in USAGE_FIELDS.iter().zip(counts) {
            if *delta == 0 {
                continue;
            }
            for (group, ttl) in [
                (day.group(), DAY_RETENTION),
                (day.month_group(), MONTH_RETENTION),
            ] {
                adds.push(PendingAdd {
                    group,
                    field: *field,
                    delta: *delta,
                    ttl,
                });
            }
        }
    }
    adds
}

/// A UTC calendar day, as a day number since 1970-01-01.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Day(u64);

impl Day {
    /// The UTC day `at` falls on.
    pub fn of(at: SystemTime) -> Self {
        Self(unix_secs(at) / 86_400)
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u64> {
            let part = s.get(r)?;
            part.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| part.parse().ok())
                .flatten()
        };
        days_from_civil(num(0..4)?, num(5..7)?, num(8..10)?).map(Self)
    }

    /// `YYYY-MM-DD`.
    pub fn to_date(self) -> String {
        let (y, m, d) = civil_from_days(self.0);
        format!("{y:04}-{m:02}-{d:02}")
    }

    /// The next day.
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }

    /// The day's counter group, `d:YYYYMMDD` (built for every request of
    /// a tenant: on the stack).
    fn group(self) -> GroupName {
        let (y, m, d) = civil_from_days(self.0);
        GroupName::new(b'd', &[(y, 4), (m, 2), (d, 2)])
    }

    /// The month's counter group, `m:YYYYMM`.
    fn month_group(self) -> GroupName {
        let (y, m, _) = civil_from_days(self.0);
        GroupName::new(b'm', &[(y, 4), (m, 2)])
    }

    fn month_name(self) -> String {
        let (y, m, _) = civil_from_days(self.0);
        format!("{y:04}-{m:02}")
    }

    /// Seconds from `at` to the end of this day (UTC midnight).
    fn secs_to_end(self, at: SystemTime) -> u64 {
        ((self.0 + 1) * 86_400).saturating_sub(unix_secs(at)).max(1)
    }

    /// Seconds from `at` to the end of this day's month.
    fn secs_to_month_end(self, at: SystemTime) -> u64 {
        let (y, m, _) = civil_from_days(self.0);
        let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        let first_next = days_from_civil(ny, nm, 1).unwrap_or(self.0 + 31);
        (first_next * 86_400).saturating_sub(unix_secs(at)).max(1)
    }
}

/// A counter group's name, `<kind>:<digits>`, in a fixed buffer.
struct GroupName {
    buf: [u8; 12],
    len: usize,
}

impl GroupName {
    /// `kind`, `:`, then each number zero-padded to its width (years have
    /// four digits: `Day` covers 1970–9999).
    fn new(kind: u8, parts: &[(u64, usize)]) -> Self {
        let mut name = Self {
            buf: [0; 12],
            len: 2,
        };
        name.buf[0] = kind;
        name.buf[1] = b':';
        for &(mut n, width) in parts {
            for i in (0..width).rev() {
                if let Some(b) = name.buf.get_mut(name.len + i) {
                    *b = b'0' + u8::try_from(n % 10).unwrap_or(0);
                }
                n /= 10;
            }
            name.len = (name.len + width).min(name.buf.len());
        }
        name
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

/// The counters of one day or month.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UsageCounts {
    /// Accepted code requests.
    pub otp_requested: u64,
    /// Codes verified.
    pub otp_verified: u64,
    /// Failed verifications.
    pub otp_failed: u64,
    /// Messages sent.
    pub messages_sent: u64,
    /// Requests refused with 429.
    pub rate_limited: u64,
}

impl UsageCounts {
    fn from_fields(fields: &[(String, i64)]) -> Self {
        let mut c = Self::default();
        for (name, value) in fields {
            let v = u64::try_from(*value).unwrap_or(0);
            match name.as_str() {
                "otp_requested" => c.otp_requested = v,
                "otp_verified" => c.otp_verified = v,
                "otp_failed" => c.otp_failed = v,
                "messages_sent" => c.messages_sent = v,
                "rate_limited" => c.rate_limited = v,
                _ => {}
            }
        }
        c
    }
}

/// One day of a usage report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UsageDay {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    /// Its counters.
    #[serde(flatten)]
    pub counts: UsageCounts,
}

/// The month of a usage report: the calendar month of its last day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UsageMonth {
    /// `YYYY-MM` (UTC).
    pub month: String,
    /// Its counters so far.
    #[serde(flatten)]
    pub counts: UsageCounts,
}

/// `GET /admin/tenants/{id}/usage`: every day of a range, and the month.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UsageReport {
    /// Each day from the first to the last, in order.
    pub days: Vec<UsageDay>,
    /// The calendar month of the last day.
    pub month: UsageMonth,
}

/// Changes the usage counters of `tenant` by `changes`, for the day and the
/// month of `now`, in one atomic step.
pub async fn count<S: TenantStore>(
    store: &S,
    tenant: &str,
    changes: &[(UsageField, i64)],
    now: SystemTime,
) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    let day = Day::of(now);
    let (d, m) = (day.group(), day.month_group());
    let adds = adds(d.as_str(), m.as_str(), changes);
    store.add_counters(tenant, &adds, now).await
}

fn adds<'a>(d: &'a str, m: &'a str, changes: &[(UsageField, i64)]) -> Vec<CounterAdd<'a>> {
    changes
        .iter()
        .flat_map(|&(field, delta)| {
            [(d, DAY_RETENTION), (m, MONTH_RETENTION)].map(|(group, ttl)| CounterAdd {
                group,
                field: field.as_str(),
                delta,
                ttl,
            })
        })
        .collect()
}

/// Which quota a message would exceed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaPeriod {
    /// The UTC day's.
    Daily,
    /// The calendar month's.
    Monthly,
}

impl QuotaPeriod {
    /// The policy name in the `RateLimit` fields.
    pub fn policy(self) -> &'static str {
        match self {
            Self::Daily => "quota-daily",
            Self::Monthly => "quota-monthly",
        }
    }
}

/// One quota's state after a reservation: for the `RateLimit` fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaState {
    /// Which quota.
    pub period: QuotaPeriod,
    /// Messages allowed in the period.
    pub limit: u64,
    /// Messages left in the period.
    pub remaining: u64,
    /// Seconds until the period ends.
    pub reset_secs: u64,
}

/// The outcome of [`reserve_message`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reservation {
    /// Counted; the state of each configured quota.
    Reserved(Vec<QuotaState>),
    /// A quota is used up; nothing was counted but `rate_limited`. The
    /// state of each configured quota, the exhausted ones with 0 left.
    Exceeded(Vec<QuotaState>),
}

/// Reserves one message of `tenant` under its quotas (`daily`, `monthly`;
/// `None` is unlimited): counts `messages_sent` and `otp_requested` for the
/// day and the month only while both are below their quota, atomically.
/// When a quota refuses, counts `rate_limited` instead.
pub async fn reserve_message<S: TenantStore>(
    store: &S,
    tenant: &str,
    daily: Option<u64>,
    monthly: Option<u64>,
    now: SystemTime,
) -> Result<Reservation, StoreError> {
    let day = Day::of(now);
    let (d, m) = (day.group(), day.month_group());
    let (d, m) = (d.as_str(), m.as_str());
    let field = UsageField::MessagesSent.as_str();
    let mut quotas = Vec::new();
    let mut guards = Vec::new();
    for (period, limit, group, reset_secs) in [
        (QuotaPeriod::Daily, daily, d, day.secs_to_end(now)),
        (QuotaPeriod::Monthly, monthly, m, day.secs_to_month_end(now)),
    ] {
        if let Some(limit) = limit {
            quotas.push((period, limit, reset_secs));
            guards.push(CounterGuard {
                group,
                field,
                max: i64::try_from(limit).unwrap_or(i64::MAX),
            });
        }
    }
    let reserve = adds(
        d,
        m,
        &[(UsageField::MessagesSent, 1), (UsageField::OtpRequested, 1)],
    );
    let states = |values: &[i64]| -> Vec<QuotaState> {
        quotas
            .iter()
            .zip(values)
            .map(|(&(period, limit, reset_secs), &used)| QuotaState {
                period,
                limit,
                remaining: limit.saturating_sub(u64::try_from(used).unwrap_or(0)),
                reset_secs,
            })
            .collect()
    };
    match store
        .add_counters_within(tenant, &guards, &reserve, now)
        .await?
    {
        Guarded::Added(values) => Ok(Reservation::Reserved(states(&values))),
        Guarded::Refused(values) => {
            count(store, tenant, &[(UsageField::RateLimited, 1)], now).await?;
            Ok(Reservation::Exceeded(states(&values)))
        }
    }
}

/// The usage of `tenant` on every day from `from` to `to` (inclusive, at
/// most [`MAX_USAGE_DAYS`]), and of `to`'s month, in one store read.
pub async fn read_usage<S: TenantStore>(
    store: &S,
    tenant: &str,
    from: Day,
    to: Day,
    now: SystemTime,
) -> Result<UsageReport, StoreError> {
    let mut days = Vec::new();
    let mut day = from;
    while day <= to {
        days.push(day);
        day = day.next();
    }
    let mut groups: Vec<GroupName> = days.iter().map(|d| d.group()).collect();
    groups.push(to.month_group());
    let names: Vec<&str> = groups.iter().map(GroupName::as_str).collect();
    let mut read = store.counters(tenant, &names, now).await?;
    let month = read.pop().unwrap_or_default();
    let mut by_day: BTreeMap<Day, UsageCounts> = BTreeMap::new();
    for (day, fields) in days.iter().zip(&read) {
        by_day.insert(*day, UsageCounts::from_fields(fields));
    }
    Ok(UsageReport {
        days: by_day
            .into_iter()
            .map(|(day, counts)| UsageDay {
                date: day.to_date(),
                counts,
            })
            .collect(),
        month: UsageMonth {
            month: to.month_name(),
            counts: UsageCounts::from_fields(&month),
        },
    })
}

/// The `RateLimit-Policy` and `RateLimit` fields of `quotas` (policies
/// `"quota-daily"` / `"quota-monthly"`), for the responses of code requests.
pub(crate) fn quota_fields(
    quotas: &[QuotaState],
) -> Option<[(http::HeaderName, http::HeaderValue); 2]> {
    if quotas.is_empty() {
        return None;
    }
    let mut policy = String::with_capacity(40 * quotas.len());
    let mut limit = String::with_capacity(40 * quotas.len());
    let mut num = itoa::Buffer::new();
    for q in quotas {
        let window: u64 = match q.period {
            QuotaPeriod::Daily => 86_400,
            QuotaPeriod::Monthly => 31 * 86_400,
        };
        if !policy.is_empty() {
            policy.push_str(", ");
            limit.push_str(", ");
        }
        for (out, pairs) in [
            (&mut policy, [(";q=", q.limit), (";w=", window)]),
            (&mut limit, [(";r=", q.remaining), (";t=", q.reset_secs)]),
        ] {
            out.push('"');
            out.push_str(q.period.policy());
            out.push('"');
            for (key, value) in pairs {
                out.push_str(key);
                out.push_str(num.format(value));
            }
        }
    }
    Some([
        (
            crate::rate_limit::RATELIMIT_POLICY,
            http::HeaderValue::try_from(policy).ok()?,
        ),
        (
            crate::rate_limit::RATELIMIT,
            http::HeaderValue::try_from(limit).ok()?,
        ),
    ])
}

/// `429 quota_exceeded`: the exhausted quotas named as violated policies,
/// `Retry-After` until the later of their resets, the `RateLimit` fields.
pub(crate) fn quota_exceeded(quotas: &[QuotaState]) -> crate::error::Problem {
    let exhausted: Vec<&QuotaState> = quotas.iter().filter(|q| q.remaining == 0).collect();
    let wait = exhausted.iter().map(|q| q.reset_secs).max().unwrap_or(1);
    let mut problem = crate::error::Problem::new(
        http::StatusCode::TOO_MANY_REQUESTS,
        "quota_exceeded",
        "The message quota of this account is used up; retry after the period ends.",
    )
    .with_retry_after(Duration::from_secs(wait))
    .with_violated_policies(exhausted.iter().map(|q| q.period.policy()));
    for (name, value) in quota_fields(quotas).into_iter().flatten() {
        problem = problem.with_header(name, value);
    }
    problem
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn days_parse_print_and_group() {
        let day = Day::parse("2026-12-01").unwrap();
        assert_eq!(day.to_date(), "2026-12-01");
        assert_eq!(day.group().as_str(), "d:20261201");
        assert_eq!(day.month_group().as_str(), "m:202612");
        assert_eq!(
            Day::parse("1970-01-01").unwrap().group().as_str(),
            "d:19700101"
        );
        assert_eq!(
            Day::parse("9999-12-31").unwrap().group().as_str(),
            "d:99991231"
        );
        assert_eq!(day.month_name(), "2026-12");
        assert_eq!(Day::of(at(day.0 * 86_400 + 86_399)), day);
        assert_eq!(
            Day::parse("2024-02-29").unwrap().next().to_date(),
            "2024-03-01"
        );
        assert_eq!(
            Day::parse("2026-12-31").unwrap().next().to_date(),
            "2027-01-01"
        );
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-1-01",
            "26-12-01",
            "2026-12-01x",
            "1969-12-31",
            "2026-12-3a",
            "+026-12-01",
        ] {
            assert_eq!(Day::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn periods_end_at_utc_midnight_and_month_end() {
        let day = Day::parse("2026-12-31").unwrap();
        let noon = at(day.0 * 86_400 + 12 * 3600);
        assert_eq!(day.secs_to_end(noon), 12 * 3600);
        assert_eq!(day.secs_to_month_end(noon), 12 * 3600);
        let first = Day::parse("2026-02-01").unwrap();
        assert_eq!(first.secs_to_month_end(at(first.0 * 86_400)), 28 * 86_400);
    }
}
