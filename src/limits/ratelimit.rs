//! Local rate limits, shared by all worker VMs of one Envoy through shared data.
//!
//! Algorithm: GCRA (the generic cell rate algorithm, equivalent to a token bucket that
//! starts full). A limit of `amount` per `period` spends `period / amount` of "time credit"
//! per unit; the only state is the theoretical arrival time (TAT). A call costing `n` units
//! is admitted iff `max(TAT, now) + n*period/amount - now <= period`, and then TAT moves
//! there. Exact under concurrency: every update is a compare-and-swap on the slot, retried
//! a bounded number of times, so two workers can never both spend the last unit.
//!
//! Token limits reserve before the call and settle after it ([`reserve`], [`settle_call`]).
//! The reservation is the call's estimate (`usage::TokenEstimate`: prompt estimate +
//! output cap × choices), capped at the limit's amount. It is taken in the same CAS as the
//! admission check, so calls in flight on any worker see each other's reservations. The
//! check admits while some budget is left (default) or only when the whole reservation fits
//! (`reserve: true`). When the response ends, the reservation is replaced by the charge (the
//! reported usage, else an estimate of what passed): the difference is refunded or charged.
//! A charge beyond the budget leaves a debt the next calls wait out.
//!
//! Bound: the tokens reserved or charged to one counter within a period exceed its amount
//! by at most one reservation (the call admitted on the last of the budget), whatever the
//! number of workers or parallel calls: every admission sees all reservations before it.
//! With `reserve: true` the excess from admission is zero. Only a charge above its own
//! reservation (the prompt under-estimated, or output beyond the default cap of a call that
//! named none) adds to it, as a debt that blocks the counter until it is paid back.
//!
//! Memory is bounded whatever the number of identities (Envoy never deletes shared-data
//! keys): state lives in a fixed table of `slots` keys. A key hashes to two candidate slots;
//! it takes the slot holding its own hash, else one whose state has fully replenished (equal
//! to a fresh state), else the one closest to replenishing and inherits its TAT. Collisions
//! therefore only make limits stricter, never looser.

use crate::authn::claims::Identity;
use crate::host::{SharedStore, StoreWrite};
use crate::limits::usage::TokenEstimate;
use serde::Deserialize;

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Second,
    Minute,
    Hour,
    Day,
}

impl Period {
    pub fn nanos(self) -> u64 {
        match self {
            Period::Second => 1_000_000_000,
            Period::Minute => 60_000_000_000,
            Period::Hour => 3_600_000_000_000,
            Period::Day => 86_400_000_000_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Requests,
    Tokens,
}

/// One limit: `amount` requests or tokens per `period`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    pub name: String,
    pub kind: Kind,
    pub amount: u64,
    pub period_ns: u64,
}

impl Limit {
    /// Time credit `units` cost, in ns (u128: no overflow for any amount/period).
    fn cost_ns(&self, units: u64) -> u64 {
        let ns = u128::from(units) * u128::from(self.period_ns) / u128::from(self.amount.max(1));
        u64::try_from(ns).unwrap_or(u64::MAX)
    }

    fn units_of(&self, ns: u64) -> u64 {
        let u = u128::from(ns) * u128::from(self.amount) / u128::from(self.period_ns.max(1));
        u64::try_from(u).unwrap_or(u64::MAX)
    }
}

/// What a limit says after a check or charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    /// Until the bucket is full again.
    pub reset_ns: u64,
    /// When denied: until the call would be admitted.
    pub retry_after_ns: u64,
}

/// GCRA admission of `units` against state `tat` at `now`. `strict_balance`: admit iff at
/// least one whole unit of balance is left (the units may then overdraw it), else iff the
/// units fit. (A fraction of a unit refills within nanoseconds of any overdraft: counting
/// it would let a call in behind every reservation that took the whole budget.)
pub fn admit(limit: &Limit, tat: u64, now: u64, units: u64, strict_balance: bool) -> (Status, Option<u64>) {
    let base = tat.max(now);
    let new_tat = base.saturating_add(limit.cost_ns(units));
    let backlog = new_tat - now;
    let allowed = if strict_balance {
        (base - now).saturating_add(limit.cost_ns(1)) <= limit.period_ns
    } else {
        backlog <= limit.period_ns
    };
    if allowed {
        let remaining = limit.units_of(limit.period_ns.saturating_sub(backlog));
        let status = Status {
            allowed,
            limit: limit.amount,
            remaining,
            reset_ns: backlog,
            retry_after_ns: 0,
        };
        (status, Some(new_tat))
    } else {
        let current_backlog = base - now;
        // Admitted again once the balance (strict) or the whole call (else) fits.
        let wait = if strict_balance {
            current_backlog.saturating_add(limit.cost_ns(1))
        } else {
            backlog
        };
        let status = Status {
            allowed,
            limit: limit.amount,
            remaining: limit.units_of(limit.period_ns.saturating_sub(current_backlog)),
            reset_ns: current_backlog,
            retry_after_ns: wait.saturating_sub(limit.period_ns).max(1_000_000),
        };
        (status, None)
    }
}

/// Charges `units` unconditionally (real usage after the response); negative corrections
/// (a reservation larger than the usage) give credit back, never below `now`.
pub fn charge(limit: &Limit, tat: u64, now: u64, units: i64) -> u64 {
    let base = tat.max(now);
    if units >= 0 {
        base.saturating_add(limit.cost_ns(units.unsigned_abs()))
    } else {
        base.saturating_sub(limit.cost_ns(units.unsigned_abs())).max(now)
    }
}

/// Bounded CAS retries; losing them all is treated as "limited" (fail closed).
const CAS_RETRIES: usize = 16;

/// The fixed table of slots in shared data.
#[derive(Debug, Clone)]
pub struct SlotTable {
    prefix: String,
    slots: u64,
}

fn decode(v: &[u8]) -> Option<(u64, u64)> {
    let key = u64::from_le_bytes(v.get(0..8)?.try_into().ok()?);
    let tat = u64::from_le_bytes(v.get(8..16)?.try_into().ok()?);
    Some((key, tat))
}

fn encode(key: u64, tat: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&key.to_le_bytes());
    b[8..].copy_from_slice(&tat.to_le_bytes());
    b
}

/// FNV-1a over the parts with separators: the identity of one counter.
pub fn key_hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0u8)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    // 0 marks an empty slot.
    h.max(1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotError {
    /// CAS kept failing or the store refused a write.
    Contended,
}

impl SlotTable {
    pub fn new(namespace: &str, slots: u64) -> SlotTable {
        SlotTable {
            prefix: format!("llm-warden/rl/{namespace}/"),
            slots: slots.max(2),
        }
    }

    fn candidates(&self, key: u64) -> [u64; 2] {
        let a = key % self.slots;
        let mut b = (key.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15) % self.slots;
        if b == a {
            b = (a + 1) % self.slots;
        }
        [a, b]
    }

    /// Reads the state for `key`, lets `f` compute the new TAT (None: no write), writes it
    /// with CAS. Returns what `f` returned alongside.
    pub fn update<T>(
        &self,
        store: &dyn SharedStore,
        key: u64,
        now: u64,
        mut f: impl FnMut(u64) -> (T, Option<u64>),
    ) -> Result<T, SlotError> {
        for _ in 0..CAS_RETRIES {
            let [a, b] = self.candidates(key);
            let read = |slot: u64| {
                let k = format!("{}{slot}", self.prefix);
                let (state, cas) = match store.get(&k) {
                    Some((v, cas)) => (decode(&v).unwrap_or((0, 0)), Some(cas)),
                    None => ((0, 0), None),
                };
                (k, state, cas)
            };
            let (ka, (owner_a, tat_a), cas_a) = read(a);
            // The first candidate holding this key decides alone: the second is read only
            // when it does not (one shared-data read per call in the common case).
            let (slot_key, tat, cas) = if owner_a == key {
                (ka, tat_a, cas_a)
            } else {
                let (kb, (owner_b, tat_b), cas_b) = read(b);
                choose(key, now, (ka, owner_a, tat_a, cas_a), (kb, owner_b, tat_b, cas_b))
            };
            let (out, new_tat) = f(tat);
            let Some(new_tat) = new_tat else {
                return Ok(out);
            };
            match crate::host::write_shared(store, &slot_key, &encode(key, new_tat), cas, now / 1_000_000) {
                StoreWrite::Written => return Ok(out),
                StoreWrite::CasMismatch => continue,
                StoreWrite::Failed => return Err(SlotError::Contended),
            }
        }
        Err(SlotError::Contended)
    }
}

/// A slot as read: its key, owner, TAT and CAS version.
type SlotRead = (String, u64, u64, Option<u32>);

/// Which of two candidate slots a key uses when the first does not hold it: the second if
/// it does, else one that is empty or replenished, else (table under pressure) the one
/// closest to replenishing, which is the stricter to share.
fn choose(key: u64, now: u64, a: SlotRead, b: SlotRead) -> (String, u64, Option<u32>) {
    let ((ka, owner_a, tat_a, cas_a), (kb, owner_b, tat_b, cas_b)) = (a, b);
    if owner_b == key {
        (kb, tat_b, cas_b)
    } else if owner_a == 0 || tat_a <= now {
        (ka, 0, cas_a)
    } else if owner_b == 0 || tat_b <= now {
        (kb, 0, cas_b)
    } else if tat_a <= tat_b {
        (ka, tat_a, cas_a)
    } else {
        (kb, tat_b, cas_b)
    }
}

/// OpenAI's reset format: "12ms", "1s", "6m0s", "1h2m3s" (seconds rounded up).
pub fn format_reset(ns: u64) -> String {
    if ns < 1_000_000_000 {
        return format!("{}ms", ns.div_ceil(1_000_000));
    }
    let s = ns.div_ceil(1_000_000_000);
    let (h, m, s) = (s / 3600, (s % 3600) / 60, s % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::memory::MemStore;
    use std::cell::Cell;

    const S: u64 = 1_000_000_000;

    fn per_minute(amount: u64) -> Limit {
        Limit {
            name: "l".into(),
            kind: Kind::Requests,
            amount,
            period_ns: 60 * S,
        }
    }

    #[test]
    fn gcra_admits_exactly_the_limit_then_one_per_interval() {
        let l = per_minute(5);
        let mut tat = 0;
        let now = 1_000 * S;
        let mut admitted = 0;
        for _ in 0..20 {
            let (st, new) = admit(&l, tat, now, 1, false);
            if let Some(n) = new {
                tat = n;
                admitted += 1;
            } else {
                assert!(!st.allowed);
                assert_eq!(st.remaining, 0);
                assert_eq!(st.retry_after_ns, 12 * S, "one unit replenishes every 12 s");
            }
        }
        assert_eq!(admitted, 5);
        // Boundary: 1 ns before the interval elapses: still limited; at it: admitted.
        assert!(admit(&l, tat, now + 12 * S - 1, 1, false).1.is_none());
        assert!(admit(&l, tat, now + 12 * S, 1, false).1.is_some());
        // A full period later the bucket is full again.
        let (st, _) = admit(&l, tat, now + 60 * S, 1, false);
        assert_eq!(st.remaining, 4);
    }

    #[test]
    fn remaining_and_reset() {
        let l = per_minute(60);
        let (st, tat) = admit(&l, 0, 100 * S, 1, false);
        assert_eq!((st.remaining, st.reset_ns), (59, S));
        let (st, _) = admit(&l, tat.unwrap(), 100 * S, 10, false);
        assert_eq!((st.remaining, st.reset_ns), (49, 11 * S));
    }

    #[test]
    fn tokens_balance_check_and_debt() {
        let l = Limit {
            name: "t".into(),
            kind: Kind::Tokens,
            amount: 1000,
            period_ns: 60 * S,
        };
        let now = 500 * S;
        // Pre-check with nothing reserved: admitted while any balance is left.
        let (st, _) = admit(&l, 0, now, 0, true);
        assert!(st.allowed && st.remaining == 1000);
        // Real usage beyond the balance leaves a debt...
        let tat = charge(&l, 0, now, 1500);
        let (st, _) = admit(&l, tat, now, 0, true);
        assert!(!st.allowed);
        assert_eq!(
            st.retry_after_ns,
            30 * S + 60_000_000,
            "500 tokens of debt + 1 = 30.06 s"
        );
        // ...that is waited out, until a whole token is back (1000/min: one per 60 ms).
        assert!(!admit(&l, tat, now + 30 * S + 1, 0, true).0.allowed);
        assert!(!admit(&l, tat, now + 30 * S + 60_000_000 - 1, 0, true).0.allowed);
        assert!(admit(&l, tat, now + 30 * S + 60_000_000, 0, true).0.allowed);
        // Reservation larger than usage: the difference is given back.
        let reserved = charge(&l, 0, now, 800);
        let settled = charge(&l, reserved, now, -700);
        assert_eq!(settled, now + l.cost_ns(100));
        assert_eq!(charge(&l, now, now, -5000), now, "credit never goes below now");
    }

    #[test]
    fn huge_amounts_do_not_overflow() {
        let l = Limit {
            name: "t".into(),
            kind: Kind::Tokens,
            amount: u64::MAX,
            period_ns: Period::Day.nanos(),
        };
        let (st, _) = admit(&l, 0, 1, u64::MAX, false);
        assert!(st.allowed);
        let l = Limit { amount: 1, ..l };
        let (st, new) = admit(&l, u64::MAX - 5, 1, u64::MAX, false);
        assert!(!st.allowed && new.is_none());
    }

    #[test]
    fn two_workers_on_a_fresh_slot_both_count() {
        // Both read an empty slot; the second admits and writes first. Without the creation
        // lock the first worker's blind write would erase that hit: two admitted of one.
        let store = MemStore::default();
        let table = SlotTable::new("ns", 64);
        let l = per_minute(1);
        let now = 10 * S;
        let key = key_hash(&["ns", "l", "user"]);
        let admit_one = |st: &dyn SharedStore| {
            table
                .update(st, key, now, |tat| {
                    let (status, new) = admit(&l, tat, now, 1, false);
                    (status.allowed, new)
                })
                .unwrap()
        };
        let second = Cell::new(None);
        let racing = crate::host::racing::RaceOnFirstAbsent::new(&store, "", |st| {
            second.set(Some(admit_one(st)));
        });
        let first = admit_one(&racing);
        assert!(racing.raced());
        assert_eq!(
            (second.get(), first),
            (Some(true), false),
            "one of a limit of one"
        );
    }

    #[test]
    fn slot_table_counts_per_key_and_is_bounded() {
        let store = MemStore::default();
        let table = SlotTable::new("ns", 64);
        let l = per_minute(3);
        let now = 10 * S;
        let mut admitted = std::collections::HashMap::new();
        for user in 0..20 {
            let key = key_hash(&["ns", "l", &format!("user{user}")]);
            for _ in 0..5 {
                let ok = table
                    .update(&store, key, now, |tat| {
                        let (st, new) = admit(&l, tat, now, 1, false);
                        (st.allowed, new)
                    })
                    .unwrap();
                *admitted.entry(user).or_insert(0) += u32::from(ok);
            }
        }
        assert!(
            admitted.values().all(|n| *n <= 3),
            "collisions never loosen a limit"
        );
        assert!(
            admitted.values().filter(|n| **n == 3).count() >= 18,
            "{admitted:?}"
        );
        // Many more identities than slots: memory stays at the table size.
        for user in 0..10_000 {
            let key = key_hash(&["ns", "l", &format!("u{user}")]);
            let _ = table.update(&store, key, now, |tat| ((), admit(&l, tat, now, 1, false).1));
        }
        let slots = store
            .data
            .borrow()
            .keys()
            .filter(|k| !k.starts_with(crate::host::CREATE_LOCK_PREFIX))
            .count();
        assert!(slots <= 64, "{slots}");
    }

    /// A store whose writes fail with CasMismatch a given number of times (another worker
    /// writing in between).
    struct Contended {
        inner: MemStore,
        conflicts: Cell<u32>,
    }
    impl SharedStore for Contended {
        fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> StoreWrite {
            if self.conflicts.get() > 0 {
                self.conflicts.set(self.conflicts.get() - 1);
                // Simulate the competing write: bump the version.
                let cur = self
                    .inner
                    .get(key)
                    .map(|(v, _)| v)
                    .unwrap_or_else(|| encode(0, 0).to_vec());
                self.inner.set(key, &cur, None);
                return StoreWrite::CasMismatch;
            }
            self.inner.set(key, value, cas)
        }
    }

    #[test]
    fn cas_conflicts_retry_then_fail_closed() {
        let l = per_minute(10);
        let key = key_hash(&["k"]);
        let table = SlotTable::new("ns", 16);
        let store = Contended {
            inner: MemStore::default(),
            conflicts: Cell::new(3),
        };
        let ok = table.update(&store, key, S, |tat| {
            let (st, new) = admit(&l, tat, S, 1, false);
            (st.allowed, new)
        });
        assert_eq!(ok, Ok(true), "a few conflicts are retried");
        store.conflicts.set(1000);
        let r = table.update(&store, key, S, |tat| ((), admit(&l, tat, S, 1, false).1));
        assert_eq!(r, Err(SlotError::Contended));
    }

    #[test]
    fn interleaved_workers_never_over_admit() {
        // Two "workers" share one store; each read-compute-write may be interrupted by the
        // other. CAS makes the total exact.
        let store = MemStore::default();
        let table = SlotTable::new("ns", 16);
        let l = per_minute(7);
        let key = key_hash(&["shared"]);
        let mut total = 0;
        for i in 0..40 {
            let now = S + i;
            let ok = table
                .update(&store, key, now, |tat| {
                    // The other worker slips in a write between our read and our write.
                    if i % 3 == 0 {
                        let _ = table.update(&store, key_hash(&["other"]), now, |t| {
                            ((), admit(&l, t, now, 1, false).1)
                        });
                    }
                    let (st, new) = admit(&l, tat, now, 1, false);
                    (st.allowed, new)
                })
                .unwrap();
            total += u32::from(ok);
        }
        assert_eq!(total, 7);
    }

    #[test]
    fn reset_format() {
        assert_eq!(format_reset(12_000_000), "12ms");
        assert_eq!(format_reset(1), "1ms");
        assert_eq!(format_reset(S), "1s");
        assert_eq!(format_reset(360 * S), "6m0s");
        assert_eq!(format_reset(3723 * S), "1h2m3s");
        assert_eq!(format_reset(1_500_000_000), "2s");
    }
}

// ---------- limits of a rule, applied to one call ----------

/// Which caller attribute a limit counts by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyBy {
    Subject,
    Client,
    Issuer,
    Claim(String),
}

impl KeyBy {
    pub fn parse(s: &str) -> Option<KeyBy> {
        match s {
            "sub" => Some(KeyBy::Subject),
            "client" => Some(KeyBy::Client),
            "issuer" => Some(KeyBy::Issuer),
            _ => s
                .strip_prefix("claim:")
                .filter(|c| !c.is_empty())
                .map(|c| KeyBy::Claim(c.to_string())),
        }
    }
}

/// How the model enters the counter key.
#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelScope {
    /// One counter per model.
    #[default]
    Each,
    /// One counter for all models.
    Any,
    /// One counter per model group (`rate_limiting.model_groups`); ungrouped models count alone.
    Group,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitSpec {
    pub limit: Limit,
    pub by: KeyBy,
    pub models: ModelScope,
    /// Tokens: admit only when the whole reservation fits the remaining budget (else while
    /// any budget is left). Either way the reservation is taken before the call.
    pub must_fit: bool,
}

/// A token limit to settle with the real usage when the response ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub limit: Limit,
    pub key: u64,
    pub reserved: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admission {
    /// The estimate the reservations were taken from (kept to compute the charge).
    pub estimate: TokenEstimate,
    pub allowed: bool,
    /// The first limit that said no (also set in monitor mode, where the call still passes).
    pub denied_by: Option<String>,
    pub retry_after_ns: u64,
    /// The most restrictive request and token limits, for the x-ratelimit-* headers.
    pub requests: Option<Status>,
    pub tokens: Option<Status>,
    pub pending: Vec<Pending>,
}

impl Admission {
    /// Tokens reserved for this call: the largest reservation on any of its token limits
    /// (each capped at its limit's amount). None when no token limit applies or the call
    /// was refused (a refusal keeps nothing reserved).
    pub fn tokens_reserved(&self) -> Option<u64> {
        self.pending.iter().map(|p| p.reserved).max()
    }
}

/// The token figures of a settled call, for metrics and the audit record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settlement {
    /// See [`Admission::tokens_reserved`].
    pub tokens_reserved: Option<u64>,
    /// What the call was charged in the end (its usage, or the estimate that replaced it).
    pub tokens_charged: u64,
}

fn tighter(current: Option<Status>, new: Status) -> Option<Status> {
    match current {
        Some(c) if c.remaining <= new.remaining => Some(c),
        _ => Some(new),
    }
}

/// Applies every limit of the granting rule before the call; all must pass. Request limits
/// take one unit; token limits reserve `estimate.reservation()` (capped at the limit's
/// amount). `key_of` names the counter of a spec. In enforce mode a denial refunds what the
/// earlier limits took. Settle an allowed call with [`settle_call`] when it ends.
pub fn reserve(
    table: &SlotTable,
    store: &dyn SharedStore,
    now: u64,
    specs: &[LimitSpec],
    key_of: &dyn Fn(&LimitSpec) -> u64,
    estimate: &TokenEstimate,
    enforce: bool,
) -> Admission {
    let mut a = Admission {
        allowed: true,
        estimate: *estimate,
        ..Admission::default()
    };
    let mut admitted_requests: Vec<(Limit, u64)> = Vec::new();
    for spec in specs {
        let key = key_of(spec);
        let l = &spec.limit;
        // (units, admit while any balance is left rather than only when the units fit)
        let (units, while_balance) = match l.kind {
            Kind::Requests => (1, false),
            Kind::Tokens => (estimate.reservation().min(l.amount), !spec.must_fit),
        };
        let result = table.update(store, key, now, |tat| {
            let (status, new_tat) = admit(l, tat, now, units, while_balance);
            // Admitted while budget is left, a call reports the budget before its own
            // reservation (provisional: replaced by its usage when it ends), as the balance
            // check before reservations did; a reservation that had to fit is reported as
            // taken, as `reserve: true` always did.
            let status = match (l.kind, status.allowed && while_balance) {
                (Kind::Tokens, true) => admit(l, tat, now, 0, true).0,
                _ => status,
            };
            (status, new_tat.filter(|_| units > 0))
        });
        let status = match result {
            Ok(s) => s,
            Err(SlotError::Contended) => Status {
                allowed: false,
                limit: l.amount,
                remaining: 0,
                reset_ns: 0,
                retry_after_ns: 1_000_000_000,
            },
        };
        match l.kind {
            Kind::Requests => a.requests = tighter(a.requests, status),
            Kind::Tokens => a.tokens = tighter(a.tokens, status),
        }
        if status.allowed {
            match l.kind {
                Kind::Requests => admitted_requests.push((l.clone(), key)),
                Kind::Tokens => a.pending.push(Pending {
                    limit: l.clone(),
                    key,
                    reserved: units,
                }),
            }
            continue;
        }
        if a.denied_by.is_none() {
            a.denied_by = Some(l.name.clone());
            a.retry_after_ns = status.retry_after_ns;
        }
        if enforce {
            a.allowed = false;
            break;
        }
    }
    if !a.allowed {
        // Give back what this refused call took from the limits that admitted it.
        for (l, key) in &admitted_requests {
            let _ = table.update(store, *key, now, |tat| ((), Some(charge(l, tat, now, -1))));
        }
        settle(table, store, now, &a.pending, 0);
        a.pending.clear();
    }
    a
}

/// OpenAI's `x-ratelimit-*` response headers for the most restrictive limits.
pub fn headers(a: &Admission) -> Vec<(String, String)> {
    let mut h = Vec::new();
    for (suffix, status) in [("requests", a.requests), ("tokens", a.tokens)] {
        if let Some(s) = status {
            h.push((format!("x-ratelimit-limit-{suffix}"), s.limit.to_string()));
            h.push((format!("x-ratelimit-remaining-{suffix}"), s.remaining.to_string()));
            h.push((format!("x-ratelimit-reset-{suffix}"), format_reset(s.reset_ns)));
        }
    }
    h
}

/// Value of a descriptor header whose fact is unknown (no model, unread body, a token
/// without a string subject). Envoy's ratelimit filter drops a descriptor when one of its
/// headers is missing, so an absent fact would make the call uncounted.
pub const UNKNOWN: &str = "-";

/// Header-name suffixes (after the identity prefix) of the rate-limit descriptor headers.
pub const RL_ISSUER: &str = "rl-issuer";
pub const RL_SUBJECT: &str = "rl-subject";
pub const RL_CLIENT: &str = "rl-client";
pub const RL_MODEL: &str = "rl-model";

fn descriptor_value(v: Option<&str>) -> String {
    match v {
        None | Some("") => UNKNOWN.to_string(),
        // A real value never reads as the placeholder, so "unknown" has a counter of its own.
        Some(v) if v == UNKNOWN => "%2D".to_string(),
        Some(v) => crate::authn::identity::header_safe(v, None),
    }
}

/// Request headers for Envoy's ratelimit filter (global mode), set on every call that goes
/// upstream, each always present: `<prefix>rl-issuer` (the token's `iss`; subjects and
/// clients are names within it), `<prefix>rl-subject`, `<prefix>rl-client`,
/// `<prefix>rl-model`, with [`UNKNOWN`] for an absent fact. Values are header-safe
/// (percent-encoded outside printable ASCII).
pub fn descriptor_headers(prefix: &str, id: &Identity, model: Option<&str>) -> Vec<(String, String)> {
    [
        (RL_ISSUER, Some(id.iss.as_str())),
        (RL_SUBJECT, id.sub.as_deref()),
        (RL_CLIENT, id.client.as_deref()),
        (RL_MODEL, model),
    ]
    .into_iter()
    .map(|(suffix, v)| (format!("{prefix}{suffix}"), descriptor_value(v)))
    .collect()
}

/// The 429 for a refused call: OpenAI-shaped, with Retry-After and the limit headers.
pub fn limited_reply(a: &Admission) -> crate::outcome::reason::Reply {
    let kind = if a.requests.is_some_and(|r| !r.allowed) {
        "requests"
    } else {
        "tokens"
    };
    let limit = if kind == "requests" { a.requests } else { a.tokens }.map_or(0, |s| s.limit);
    let retry_s = a.retry_after_ns.div_ceil(1_000_000_000).max(1);
    let message = format!(
        "Rate limit reached on {kind} (limit {limit}). Please try again in {}.",
        format_reset(a.retry_after_ns)
    );
    let mut headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("retry-after".to_string(), retry_s.to_string()),
    ];
    headers.extend(self::headers(a));
    crate::outcome::reason::Reply {
        status: 429,
        headers,
        body: serde_json::json!({"error": {"message": message, "type": kind, "param": null,
            "code": "rate_limit_exceeded"}})
        .to_string(),
    }
}

/// Settles a call when its response ends: each token limit's reservation is replaced by
/// `charged` (from `UsageMeter::charge`, or `usage::Charge::unmetered`). Call once per
/// admitted call; a refused call has nothing to settle.
pub fn settle_call(
    table: &SlotTable,
    store: &dyn SharedStore,
    now: u64,
    admission: &Admission,
    charged: u64,
) -> Settlement {
    settle(table, store, now, &admission.pending, charged);
    Settlement {
        tokens_reserved: admission.tokens_reserved(),
        tokens_charged: charged,
    }
}

/// Charges the real usage (minus what was reserved) to the token limits of a call.
pub fn settle(table: &SlotTable, store: &dyn SharedStore, now: u64, pending: &[Pending], used: u64) {
    for p in pending {
        let delta = i64::try_from(used).unwrap_or(i64::MAX) - i64::try_from(p.reserved).unwrap_or(i64::MAX);
        if delta != 0 {
            let _ = table.update(store, p.key, now, |tat| {
                ((), Some(charge(&p.limit, tat, now, delta)))
            });
        }
    }
}

#[cfg(test)]
mod admission_tests {
    use super::*;
    use crate::host::memory::MemStore;
    use std::cell::Cell;

    const S: u64 = 1_000_000_000;

    fn spec(name: &str, kind: Kind, amount: u64, must_fit: bool) -> LimitSpec {
        LimitSpec {
            limit: Limit {
                name: name.into(),
                kind,
                amount,
                period_ns: 60 * S,
            },
            by: KeyBy::Subject,
            models: ModelScope::Each,
            must_fit,
        }
    }

    #[test]
    fn all_limits_must_pass_and_denial_refunds() {
        let store = MemStore::default();
        let table = SlotTable::new("t", 64);
        let specs = [
            spec("wide", Kind::Requests, 100, false),
            spec("narrow", Kind::Requests, 2, false),
        ];
        let key = |s: &LimitSpec| key_hash(&[&s.limit.name, "alice"]);
        for i in 0..5 {
            let a = reserve(&table, &store, S, &specs, &key, &TokenEstimate::flat(0), true);
            assert_eq!(a.allowed, i < 2, "call {i}");
            if !a.allowed {
                assert_eq!(a.denied_by.as_deref(), Some("narrow"));
                assert_eq!(a.requests.map(|r| r.remaining), Some(0));
            }
        }
        // The refused calls were refunded to "wide": only the 2 admitted calls count.
        let a = reserve(
            &table,
            &store,
            S,
            &specs[..1],
            &key,
            &TokenEstimate::flat(0),
            true,
        );
        assert_eq!(a.requests.map(|r| r.remaining), Some(97));
    }

    #[test]
    fn monitor_mode_counts_but_never_blocks() {
        let store = MemStore::default();
        let table = SlotTable::new("t", 64);
        let specs = [spec("one", Kind::Requests, 1, false)];
        let key = |_: &LimitSpec| 7;
        assert!(
            reserve(&table, &store, S, &specs, &key, &TokenEstimate::flat(0), false)
                .denied_by
                .is_none()
        );
        let a = reserve(&table, &store, S, &specs, &key, &TokenEstimate::flat(0), false);
        assert!(a.allowed);
        assert_eq!(a.denied_by.as_deref(), Some("one"));
    }

    #[test]
    fn token_limits_check_balance_then_settle_usage() {
        let store = MemStore::default();
        let table = SlotTable::new("t", 64);
        let specs = [spec("tpm", Kind::Tokens, 100, false)];
        let key = |_: &LimitSpec| 9;
        let a = reserve(&table, &store, S, &specs, &key, &TokenEstimate::flat(0), true);
        assert!(a.allowed && a.tokens.map(|t| t.remaining) == Some(100));
        settle(&table, &store, S, &a.pending, 150);
        let a = reserve(&table, &store, S, &specs, &key, &TokenEstimate::flat(0), true);
        assert!(!a.allowed, "150 of 100 tokens used: in debt");
        assert_eq!(
            a.retry_after_ns,
            30 * S + 600_000_000,
            "50 tokens of debt + 1 at 0.6 s each"
        );
    }

    #[test]
    fn reservations_are_corrected_by_real_usage() {
        let store = MemStore::default();
        let table = SlotTable::new("t", 64);
        let specs = [spec("tpm", Kind::Tokens, 1000, true)];
        let key = |_: &LimitSpec| 11;
        let a = reserve(&table, &store, S, &specs, &key, &TokenEstimate::flat(600), true);
        assert!(a.allowed);
        assert_eq!(a.tokens.map(|t| t.remaining), Some(400));
        let b = reserve(&table, &store, S, &specs, &key, &TokenEstimate::flat(600), true);
        assert!(!b.allowed, "600 more do not fit while 600 are reserved");
        settle(&table, &store, S, &a.pending, 100);
        let c = reserve(&table, &store, S, &specs, &key, &TokenEstimate::flat(600), true);
        assert!(c.allowed, "only 100 were really used");
        assert_eq!(c.tokens.map(|t| t.remaining), Some(300));
    }

    #[test]
    fn key_by_parsing() {
        assert_eq!(KeyBy::parse("sub"), Some(KeyBy::Subject));
        assert_eq!(KeyBy::parse("claim:tenant"), Some(KeyBy::Claim("tenant".into())));
        assert_eq!(KeyBy::parse("claim:"), None);
        assert_eq!(KeyBy::parse("ip"), None);
    }

    use crate::limits::usage::{Charge, TokenEstimate, UsageMeter};

    fn est(prompt: u64, max_tokens: u64, n: u64) -> TokenEstimate {
        TokenEstimate {
            prompt,
            output_cap: max_tokens,
            choices: n,
            cap_requested: true,
        }
    }

    #[test]
    fn token_limits_reserve_the_whole_estimate() {
        let store = MemStore::default();
        let table = SlotTable::new("t", 64);
        let specs = [spec("tpm", Kind::Tokens, 1000, false)];
        let key = |_: &LimitSpec| 21;
        // prompt 20 + 100 × n 3 = 320 reserved before the call.
        let a = reserve(&table, &store, S, &specs, &key, &est(20, 100, 3), true);
        assert!(a.allowed);
        assert_eq!(a.tokens_reserved(), Some(320));
        // The headers' remaining figure leaves out the call's own (provisional) reservation.
        assert_eq!(a.tokens.map(|t| t.remaining), Some(1000));
        // While it is in flight, others see it: 680 left, then 360, 40, then refused.
        let mut admitted = 1;
        for left in [680, 360, 40, 0, 0] {
            let b = reserve(&table, &store, S, &specs, &key, &est(20, 100, 3), true);
            assert_eq!(b.tokens.map(|t| t.remaining), Some(left));
            if b.allowed {
                admitted += 1;
            } else {
                assert_eq!(b.tokens_reserved(), None, "a refusal keeps nothing reserved");
                assert_eq!(b.denied_by.as_deref(), Some("tpm"));
            }
        }
        assert_eq!(
            admitted, 4,
            "admitted while budget is left: 1000 / 320 rounded up"
        );
        // Settling the first with its real usage (18) refunds the rest of its reservation.
        let st = settle_call(&table, &store, S, &a, 18);
        assert_eq!(
            st,
            Settlement {
                tokens_reserved: Some(320),
                tokens_charged: 18
            }
        );
        let probe = reserve(&table, &store, S, &specs, &key, &TokenEstimate::default(), true);
        assert_eq!(probe.tokens.map(|t| t.remaining), Some(1000 - 18 - 3 * 320));
        // A charge above the reservation is charged too (debt).
        let store = MemStore::default();
        let a = reserve(&table, &store, S, &specs, &key, &est(10, 10, 1), true);
        settle_call(&table, &store, S, &a, 1500);
        let b = reserve(&table, &store, S, &specs, &key, &est(10, 10, 1), true);
        assert!(!b.allowed);
        assert_eq!(
            b.retry_after_ns,
            30 * S + 60_000_000,
            "500 tokens of debt + 1 = 30.06 s"
        );
    }

    #[test]
    fn must_fit_admits_only_whole_reservations() {
        let store = MemStore::default();
        let table = SlotTable::new("t", 64);
        let specs = [spec("tpm", Kind::Tokens, 1000, true)];
        let key = |_: &LimitSpec| 22;
        let ok: Vec<bool> = (0..5)
            .map(|_| reserve(&table, &store, S, &specs, &key, &est(20, 300, 1), true).allowed)
            .collect();
        assert_eq!(
            ok,
            [true, true, true, false, false],
            "3 × 320 fit in 1000, a 4th does not"
        );
    }

    #[test]
    fn reservation_never_exceeds_the_limit() {
        let table = SlotTable::new("t", 64);
        let key = |_: &LimitSpec| 23;
        for must_fit in [false, true] {
            let store = MemStore::default();
            let specs = [spec("tpm", Kind::Tokens, 1000, must_fit)];
            // No max_tokens: a default cap of 4096 would never fit a 1000 budget; the
            // reservation is capped at the budget, so the call passes against a full bucket.
            let big = est(50, 4096, 1);
            let a = reserve(&table, &store, S, &specs, &key, &big, true);
            assert!(a.allowed);
            assert_eq!(a.tokens_reserved(), Some(1000));
            assert!(!reserve(&table, &store, S, &specs, &key, &big, true).allowed);
            settle_call(&table, &store, S, &a, 0);
            // Refunded in full: a full bucket again.
            assert!(reserve(&table, &store, S, &specs, &key, &big, true).allowed);
        }
    }

    /// A store shared by simulated workers: before a write lands, other workers may run
    /// whole reservations of their own in between (the write then fails its CAS and the
    /// writer re-reads), as when worker threads race on Envoy's shared data.
    struct Racing<'a> {
        inner: MemStore,
        step: Cell<u64>,
        busy: Cell<bool>,
        others: &'a dyn Fn(&dyn SharedStore),
    }
    impl SharedStore for Racing<'_> {
        fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> StoreWrite {
            let n = self
                .step
                .get()
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.step.set(n);
            if !self.busy.get() && (n >> 33).is_multiple_of(3) {
                self.busy.set(true);
                (self.others)(&self.inner);
                self.busy.set(false);
            }
            self.inner.set(key, value, cas)
        }
    }

    #[test]
    fn parallel_reservations_exceed_a_limit_by_at_most_one() {
        // 4 workers × 30 calls of varying size race for one 1000-token counter, nothing
        // settles (all in flight): what is reserved stays within amount + one reservation.
        for must_fit in [false, true] {
            let table = SlotTable::new("t", 64);
            let specs = [spec("tpm", Kind::Tokens, 1000, must_fit)];
            let key = |_: &LimitSpec| 24;
            let reserved = Cell::new(0u64);
            let largest = Cell::new(0u64);
            let call = Cell::new(0u64);
            let one_call = |store: &dyn SharedStore| {
                let i = call.get();
                call.set(i + 1);
                let e = est(10 + i % 7, 50 + (i * 37) % 300, 1);
                largest.set(largest.get().max(e.reservation()));
                let a = reserve(&table, store, S, &specs, &key, &e, true);
                reserved.set(reserved.get() + a.tokens_reserved().unwrap_or(0));
            };
            let store = Racing {
                inner: MemStore::default(),
                step: Cell::new(7),
                busy: Cell::new(false),
                others: &|s: &dyn SharedStore| one_call(s),
            };
            for _ in 0..120 {
                one_call(&store);
            }
            let total = reserved.get();
            if must_fit {
                assert!((1000 - largest.get()..=1000).contains(&total), "{total}");
            } else {
                assert!(total >= 1000, "the budget is used up: {total}");
                assert!(
                    total < 1000 + largest.get(),
                    "{total} vs one reservation {}",
                    largest.get()
                );
            }
            assert!(call.get() > 120, "the workers did interleave");
        }
    }

    #[test]
    fn cut_stream_settles_at_least_the_prompt() {
        let store = MemStore::default();
        let table = SlotTable::new("t", 64);
        let specs = [spec("tpm", Kind::Tokens, 1000, false)];
        let key = |_: &LimitSpec| 25;
        let e = est(40, 500, 1);
        let a = reserve(&table, &store, S, &specs, &key, &e, true);
        let mut meter = UsageMeter::new(true);
        meter.feed(b"data: {\"choices\": [{\"delta\": {\"content\": \"abcdefgh\"}}]}\n\n");
        let charge = meter.charge(&a.estimate, false);
        assert_eq!(charge.tokens, 42);
        let st = settle_call(&table, &store, S, &a, charge.tokens);
        assert_eq!((st.tokens_reserved, st.tokens_charged), (Some(540), 42));
        let probe = reserve(&table, &store, S, &specs, &key, &TokenEstimate::default(), true);
        assert_eq!(probe.tokens.map(|t| t.remaining), Some(958));
        // An unmetered response keeps its whole reservation.
        let a = reserve(&table, &store, S, &specs, &key, &e, true);
        settle_call(&table, &store, S, &a, Charge::unmetered(&a.estimate).tokens);
        let probe = reserve(&table, &store, S, &specs, &key, &TokenEstimate::default(), true);
        assert_eq!(probe.tokens.map(|t| t.remaining), Some(418));
    }

    #[test]
    fn a_flat_estimate_is_reserved_whole() {
        let store = MemStore::default();
        let table = SlotTable::new("t", 64);
        let specs = [spec("tpm", Kind::Tokens, 100, false)];
        let key = |_: &LimitSpec| 26;
        let a = reserve(&table, &store, S, &specs, &key, &TokenEstimate::flat(60), true);
        assert_eq!((a.allowed, a.tokens_reserved()), (true, Some(60)));
        assert_eq!(a.estimate, TokenEstimate::flat(60));
    }

    fn who(iss: &str, sub: Option<&str>) -> Identity {
        let mut claims = serde_json::json!({"iss": iss, "azp": "cli", "tenant": "acme"});
        if let Some(s) = sub {
            claims["sub"] = s.into();
        }
        Identity::from_claims("idp", claims.as_object().cloned().unwrap(), None)
    }

    #[test]
    fn counters_are_per_issuer() {
        use crate::authz::policy::key_value;
        let a = who("https://a.example", Some("alice"));
        let b = who("https://b.example", Some("alice"));
        for by in [KeyBy::Subject, KeyBy::Client, KeyBy::Claim("tenant".into())] {
            assert_ne!(key_value(&by, &a), key_value(&by, &b), "{by:?}");
        }
        assert_eq!(key_value(&KeyBy::Subject, &a), "17:https://a.example/alice");
        assert_eq!(
            key_value(&KeyBy::Issuer, &a),
            "idp",
            "issuer keys keep their shape"
        );
        // No issuer/subject pair spells another.
        let x = who("https://a", Some("b/c"));
        let y = who("https://a/b", Some("c"));
        assert_ne!(key_value(&KeyBy::Subject, &x), key_value(&KeyBy::Subject, &y));
        // Alice of issuer A exhausting her limit leaves alice of issuer B untouched.
        let store = MemStore::default();
        let table = SlotTable::new("t", 64);
        let specs = [spec("rpm", Kind::Requests, 2, false)];
        let call = |id: &Identity| {
            let key = |s: &LimitSpec| key_hash(&[&s.limit.name, &key_value(&s.by, id), "m"]);
            reserve(&table, &store, S, &specs, &key, &TokenEstimate::default(), true).allowed
        };
        assert_eq!([call(&a), call(&a), call(&a)], [true, true, false]);
        assert!(call(&b));
    }

    #[test]
    fn descriptor_headers_are_always_present() {
        let h = descriptor_headers(
            "x-warden-",
            &who("https://a.example", Some("alice")),
            Some("gpt-4o"),
        );
        assert_eq!(
            h,
            [
                ("x-warden-rl-issuer".to_string(), "https://a.example".to_string()),
                ("x-warden-rl-subject".into(), "alice".into()),
                ("x-warden-rl-client".into(), "cli".into()),
                ("x-warden-rl-model".into(), "gpt-4o".into()),
            ]
        );
        // No subject, no model (GET /v1/models, unread body): placeholders, never missing.
        let mut anon = who("https://a.example", None);
        anon.client = None;
        let h = descriptor_headers("x-warden-", &anon, None);
        assert_eq!(h.len(), 4);
        assert!(h.iter().skip(1).all(|(_, v)| v == UNKNOWN), "{h:?}");
        // A real value never reads as the placeholder or smuggles a header.
        let odd = who("https://a.example", Some("-"));
        let h = descriptor_headers("p-", &odd, Some("m\r\nx: 1"));
        assert_eq!(h[1].1, "%2D");
        assert_eq!(h[3].1, "m%0D%0Ax: 1");
        assert_eq!(descriptor_headers("p-", &odd, Some(""))[3].1, UNKNOWN);
    }
}
