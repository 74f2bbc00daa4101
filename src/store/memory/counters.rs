//! A tenant's counters in the memory store: every group of one tenant in
//! one authoritative record, so a change of several groups — guards
//! included — is one atomic record step, and all of it happens or none.
//!
//! Groups expire on the caller's clock (`now`, in µs), like the Redis
//! store's; an expired group reads as empty, starts afresh when changed,
//! and is dropped at the first change after the earliest deadline. A change
//! is made in place (`RecordTable::modify`): no copy of the tenant's groups,
//! and no allocation for a counter that exists.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use crate::clock::unix_micros;
use crate::store::tenant::{counter_add, deadline_us};
use crate::store::{CounterAdd, CounterGuard, Guarded, StoreError};

/// One counter group: its counters, sorted by field, and its deadline.
#[derive(Clone, Default)]
struct Group {
    fields: BTreeMap<Box<str>, i64>,
    until_us: u64,
}

/// Every counter group of one tenant, changed in place.
#[derive(Clone, Default)]
pub(super) struct Counters {
    groups: HashMap<Box<str>, Group>,
    /// The latest deadline of any group (the record's backstop TTL).
    latest_us: u64,
    /// The earliest deadline of any group: when expired groups are dropped.
    sweep_at_us: u64,
}

impl Counters {
    fn group(&self, group: &str, now_us: u64) -> Option<&Group> {
        self.groups.get(group).filter(|g| g.until_us > now_us)
    }

    fn value(&self, group: &str, field: &str, now_us: u64) -> i64 {
        self.group(group, now_us)
            .and_then(|g| g.fields.get(field))
            .copied()
            .unwrap_or(0)
    }

    /// The counters of `group` as of `now_us`, sorted by field.
    pub(super) fn read(&self, group: &str, now_us: u64) -> Vec<(String, i64)> {
        self.group(group, now_us).map_or_else(Vec::new, |g| {
            g.fields.iter().map(|(f, v)| (f.to_string(), *v)).collect()
        })
    }

    /// The latest deadline of a group, if any group is live at `now_us`.
    pub(super) fn until_us(&self, now_us: u64) -> Option<u64> {
        (self.latest_us > now_us).then_some(self.latest_us)
    }

    fn guard_values(&self, guards: &[CounterGuard<'_>], now_us: u64) -> Vec<i64> {
        guards
            .iter()
            .map(|g| self.value(g.group, g.field, now_us))
            .collect()
    }

    /// Applies `adds` behind `guards` at the caller's time `now`, in place
    /// and all or nothing: every new value is decided (and checked against
    /// the counter range) before the first one is written. Answers whether
    /// anything changed, with the guards' values.
    pub(super) fn apply(
        &mut self,
        guards: &[CounterGuard<'_>],
        adds: &[CounterAdd<'_>],
        now: SystemTime,
    ) -> Result<(bool, Guarded), StoreError> {
        let now_us = unix_micros(now);
        let before = self.guard_values(guards, now_us);
        if guards.iter().zip(&before).any(|(g, v)| *v >= g.max) {
            return Ok((false, Guarded::Refused(before)));
        }
        if adds.is_empty() {
            return Ok((false, Guarded::Added(before)));
        }
        let mut planned = Vec::with_capacity(adds.len());
        for (i, add) in adds.iter().enumerate() {
            // An earlier change of the same counter in this call counts.
            let base = adds[..i]
                .iter()
                .zip(&planned)
                .rev()
                .find(|(a, _)| a.group == add.group && a.field == add.field)
                .map_or_else(|| self.value(add.group, add.field, now_us), |(_, v)| *v);
            planned.push(counter_add(base, add.delta)?);
        }
        if self.sweep_at_us <= now_us {
            self.groups.retain(|_, g| g.until_us > now_us);
            self.sweep_at_us = self
                .groups
                .values()
                .map(|g| g.until_us)
                .min()
                .unwrap_or(u64::MAX);
        }
        for (add, value) in adds.iter().zip(planned) {
            let group = match self.groups.get_mut(add.group) {
                Some(group) => group,
                None => self.groups.entry(add.group.into()).or_default(),
            };
            if group.until_us <= now_us {
                // Expired, not yet swept: it starts afresh.
                *group = Group::default();
            }
            match group.fields.get_mut(add.field) {
                Some(counter) => *counter = value,
                None => {
                    group.fields.insert(add.field.into(), value);
                }
            }
            group.until_us = group.until_us.max(deadline_us(now_us, add.ttl));
            self.latest_us = self.latest_us.max(group.until_us);
            self.sweep_at_us = self.sweep_at_us.min(group.until_us);
        }
        Ok((true, Guarded::Added(self.guard_values(guards, now_us))))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    fn us(secs: u64) -> u64 {
        unix_micros(t(secs))
    }

    fn add<'a>(group: &'a str, field: &'a str, delta: i64, ttl: u64) -> CounterAdd<'a> {
        CounterAdd {
            group,
            field,
            delta,
            ttl: Duration::from_secs(ttl),
        }
    }

    fn put(c: &mut Counters, adds: &[CounterAdd<'_>], now: SystemTime) {
        assert!(c.apply(&[], adds, now).unwrap().0, "nothing stored");
    }

    #[test]
    fn changes_add_up_and_repeat_within_a_call() {
        let mut c = Counters::default();
        put(&mut c, &[add("a", "f", 1, 60), add("b", "f", 1, 60)], t(0));
        put(&mut c, &[add("a", "f", 1, 60), add("a", "f", 3, 60)], t(1));
        assert_eq!(c.read("a", us(1)), [("f".to_owned(), 5)]);
        assert_eq!(c.read("b", us(1)), [("f".to_owned(), 1)]);
    }

    #[test]
    fn expired_groups_are_dropped_and_start_afresh() {
        let mut c = Counters::default();
        put(&mut c, &[add("a", "f", 5, 10), add("b", "f", 1, 100)], t(0));
        assert_eq!(c.until_us(us(0)), Some(us(100)));
        put(&mut c, &[add("b", "f", 1, 10)], t(10));
        assert!(!c.groups.contains_key("a"), "expired group kept");
        // The later deadline stays: a shorter ttl never shortens a group.
        assert_eq!(c.until_us(us(10)), Some(us(100)));
        put(&mut c, &[add("a", "f", 1, 10)], t(11));
        assert_eq!(c.read("a", us(11)), [("f".to_owned(), 1)]);
        assert_eq!(c.until_us(us(100)), None);
    }

    #[test]
    fn a_refused_or_failing_change_changes_nothing() {
        let mut c = Counters::default();
        put(&mut c, &[add("a", "f", 1, 60)], t(0));
        let guard = CounterGuard {
            group: "a",
            field: "f",
            max: 1,
        };
        let (changed, g) = c.apply(&[guard], &[add("a", "g", 1, 60)], t(1)).unwrap();
        assert!(!changed);
        assert_eq!(g, Guarded::Refused(vec![1]));
        let max = crate::store::tenant::COUNTER_MAX;
        let r = c.apply(
            &[],
            &[
                add("a", "f", 1, 60),
                add("a", "g", max, 60),
                add("a", "g", 1, 60),
            ],
            t(1),
        );
        assert!(matches!(r, Err(StoreError::Invalid(_))));
        assert_eq!(c.read("a", us(1)), [("f".to_owned(), 1)], "nothing written");
    }
}
