//! A tenant's counters in the memory store: every group of one tenant in
//! one authoritative record, so a change of several groups — guards
//! included — is one atomic record step, and all of it happens or none.
//!
//! Groups expire on the caller's clock (`now`, in µs), like the Redis
//! store's; an expired group reads as empty and is dropped at the tenant's
//! next change. Groups are shared (`Arc`) between a record and its
//! successor, so a change copies only the groups it touches.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
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

/// Every counter group of one tenant.
#[derive(Clone, Default)]
pub(super) struct Counters {
    groups: HashMap<Arc<str>, Arc<Group>>,
}

/// What [`Counters::change`] decided.
pub(super) enum Change {
    /// Store these counters (every group live).
    Put(Counters),
    /// Nothing to store: a guard failed, or there was nothing to change.
    Keep,
}

impl Counters {
    fn group(&self, group: &str, now_us: u64) -> Option<&Group> {
        self.groups
            .get(group)
            .map(|g| &**g)
            .filter(|g| g.until_us > now_us)
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
        self.groups
            .values()
            .map(|g| g.until_us)
            .filter(|until| *until > now_us)
            .max()
    }

    /// Decides `adds` behind `guards` on `current` (`None`: a tenant
    /// without counters) at the caller's time `now`. Pure, so a record step
    /// may run it twice.
    pub(super) fn change(
        current: Option<&Self>,
        guards: &[CounterGuard<'_>],
        adds: &[CounterAdd<'_>],
        now: SystemTime,
    ) -> Result<(Change, Guarded), StoreError> {
        let now_us = unix_micros(now);
        let values = |c: Option<&Self>| -> Vec<i64> {
            guards
                .iter()
                .map(|g| c.map_or(0, |c| c.value(g.group, g.field, now_us)))
                .collect()
        };
        let before = values(current);
        if guards.iter().zip(&before).any(|(g, v)| *v >= g.max) {
            return Ok((Change::Keep, Guarded::Refused(before)));
        }
        if adds.is_empty() {
            return Ok((Change::Keep, Guarded::Added(before)));
        }
        // The live groups only: an expired one starts afresh.
        let mut next = Self {
            groups: current
                .into_iter()
                .flat_map(|c| &c.groups)
                .filter(|(_, g)| g.until_us > now_us)
                .map(|(name, g)| (name.clone(), g.clone()))
                .collect(),
        };
        for add in adds {
            let until_us = deadline_us(now_us, add.ttl);
            let group = match next.groups.get_mut(add.group) {
                Some(group) => group,
                None => next.groups.entry(add.group.into()).or_default(),
            };
            let group = Arc::make_mut(group);
            let value = group.fields.get(add.field).copied().unwrap_or(0);
            let value = counter_add(value, add.delta)?;
            group.fields.insert(add.field.into(), value);
            group.until_us = group.until_us.max(until_us);
        }
        let after = values(Some(&next));
        Ok((Change::Put(next), Guarded::Added(after)))
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

    fn put(c: Option<&Counters>, adds: &[CounterAdd<'_>], now: SystemTime) -> Counters {
        match Counters::change(c, &[], adds, now).unwrap().0 {
            Change::Put(next) => next,
            Change::Keep => panic!("nothing stored"),
        }
    }

    #[test]
    fn a_change_copies_only_the_groups_it_touches() {
        let c = put(None, &[add("a", "f", 1, 60), add("b", "f", 1, 60)], t(0));
        let next = put(Some(&c), &[add("a", "f", 1, 60)], t(1));
        assert!(!Arc::ptr_eq(&c.groups["a"], &next.groups["a"]));
        assert!(Arc::ptr_eq(&c.groups["b"], &next.groups["b"]));
        assert_eq!(c.read("a", us(1)), [("f".to_owned(), 1)]);
        assert_eq!(next.read("a", us(1)), [("f".to_owned(), 2)]);
    }

    #[test]
    fn expired_groups_are_dropped_and_start_afresh() {
        let c = put(None, &[add("a", "f", 5, 10), add("b", "f", 1, 100)], t(0));
        assert_eq!(c.until_us(us(0)), Some(us(100)));
        let next = put(Some(&c), &[add("b", "f", 1, 10)], t(10));
        assert!(!next.groups.contains_key("a"), "expired group kept");
        // The later deadline stays: a shorter ttl never shortens a group.
        assert_eq!(next.until_us(us(10)), Some(us(100)));
        let next = put(Some(&next), &[add("a", "f", 1, 10)], t(11));
        assert_eq!(next.read("a", us(11)), [("f".to_owned(), 1)]);
        assert_eq!(next.until_us(us(100)), None);
    }

    #[test]
    fn a_change_past_the_range_fails_whole() {
        let c = put(None, &[add("a", "f", 1, 60)], t(0));
        let max = crate::store::tenant::COUNTER_MAX;
        let r = Counters::change(
            Some(&c),
            &[],
            &[
                add("a", "f", 1, 60),
                add("a", "g", max, 60),
                add("a", "g", 1, 60),
            ],
            t(1),
        );
        assert!(matches!(r, Err(StoreError::Invalid(_))));
    }
}
