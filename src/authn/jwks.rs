//! Remote JWKS shared by all worker VMs through the shared store.
//!
//! Two keys per JWKS source (cluster + authority + path), so the key space is bounded by the
//! config and plugins that use the same source share one fetch:
//! - `<base>/meta`: small JSON {version, fetched_at, fetching_until, last_attempt,
//!   last_forced, failures, retry_at}; doubles as the fetch lease, claimed with
//!   compare-and-swap;
//! - `<base>/doc`: the last good JWKS document, written only after it validated.
//!
//! Each VM keeps the parsed key set and re-reads `doc` only when `version` moves, so the
//! request path reads no shared data while the local copy is good.
//!
//! Single flight: whatever the reason (no key set yet, periodic refresh, unknown `kid`), at
//! most one fetch per source is in flight across requests, workers and plugins: the lease
//! (`fetching_until`) lasts the fetch timeout plus [`LEASE_MARGIN_S`], so a call whose answer
//! is lost cannot wedge it. After a failed fetch the next one waits (`retry_at`): 1 s,
//! doubling per consecutive failure up to [`MAX_BACKOFF_S`] (and never longer than the
//! refresh interval); a success resets it. A request that finds no usable key set and cannot
//! claim the lease is refused at once (503 `auth_unavailable`) rather than starting a fetch
//! of its own.

use crate::authn::jose::{JwkError, KeyCheck, KeySet};
use crate::config::{maps_only, RemoteJwks};
use crate::host::{SharedStore, StoreWrite};
use serde::{Deserialize, Serialize};
use std::rc::Rc;

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
struct Meta {
    version: u64,
    /// Time of the last successful fetch (0: never).
    fetched_at: u64,
    /// A fetch is in flight until then.
    fetching_until: u64,
    last_attempt: u64,
    /// Last fetch forced by an unknown kid.
    last_forced: u64,
    /// Consecutive failed fetches (0 after a success).
    failures: u32,
    /// No fetch starts before then (backoff after failures).
    retry_at: u64,
    /// Which [`KEY_CHECKS`] the stored document passed: a document stored by an older build
    /// (shared data outlives a VM reload) is checked in full again.
    checks: u32,
}

/// Version of the key checks a stored document has passed; bump when `jose` refuses more.
const KEY_CHECKS: u32 = 1;

/// Why a fetch is wanted; decides which rate limit applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchKind {
    /// No key set yet: the request cannot be decided without one.
    Bootstrap,
    /// Periodic refresh (from the tick) or past max staleness.
    Refresh,
    /// The token names a kid we do not have: keys may have rotated.
    UnknownKid,
}

/// State of the local copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    Missing,
    Fresh,
    /// Older than the refresh interval: still served, a refresh is due.
    Due,
    /// Older than max staleness: must not be used.
    Stale,
}

#[derive(Debug)]
struct Loaded {
    version: u64,
    fetched_at: u64,
    keys: Rc<KeySet>,
}

/// Bounded retries for CAS updates of `meta`; losing them all only skips an update.
const CAS_RETRIES: usize = 8;
/// The lease outlives the fetch timeout by this much: `now` has one-second resolution, and
/// the answer (or Envoy's timeout) must be handled before another worker may start a fetch.
pub const LEASE_MARGIN_S: u64 = 2;
/// Skipped keys named one by one in the log per fetch.
const MAX_LOGGED_SKIPS: usize = 8;
/// Longest wait between fetches after consecutive failures.
pub const MAX_BACKOFF_S: u64 = 30;

/// Wait after `failures` consecutive failures: 1, 2, 4, ... seconds, capped by
/// [`MAX_BACKOFF_S`] and by the refresh interval (an operator who asks for frequent refreshes
/// gets frequent retries).
pub fn backoff_s(failures: u32, refresh_interval_s: u64) -> u64 {
    if failures == 0 {
        return 0;
    }
    let doubling = 1u64 << failures.saturating_sub(1).min(16);
    doubling.min(MAX_BACKOFF_S).min(refresh_interval_s.max(1))
}

#[derive(Debug)]
pub struct RemoteKeys {
    pub source: RemoteJwks,
    meta_key: String,
    doc_key: String,
    local: Option<Loaded>,
}

/// Outcome of a fetch response, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchResult {
    Updated { keys: usize, skipped: usize },
    Rejected(String),
}

impl RemoteKeys {
    pub fn new(source: RemoteJwks) -> RemoteKeys {
        let authority = source.authority.clone().unwrap_or_else(|| source.cluster.clone());
        let id = fnv1a(format!("{}\n{}\n{}", source.cluster, authority, source.path).as_bytes());
        let base = format!("llm-warden/jwks/{id:016x}");
        RemoteKeys {
            meta_key: format!("{base}/meta"),
            doc_key: format!("{base}/doc"),
            source,
            local: None,
        }
    }

    pub fn authority(&self) -> &str {
        self.source.authority.as_deref().unwrap_or(&self.source.cluster)
    }

    /// Version of the local key set (0: none yet).
    pub fn version(&self) -> u64 {
        self.local.as_ref().map_or(0, |l| l.version)
    }

    pub fn keys(&self) -> Option<&Rc<KeySet>> {
        self.local.as_ref().map(|l| &l.keys)
    }

    /// Seconds since the last successful fetch, if any.
    pub fn age(&self, now: u64) -> Option<u64> {
        self.local.as_ref().map(|l| now.saturating_sub(l.fetched_at))
    }

    pub fn freshness(&self, now: u64) -> Freshness {
        match self.age(now) {
            None => Freshness::Missing,
            Some(age) if age > self.source.max_stale_s => Freshness::Stale,
            Some(age) if age >= self.source.refresh_interval_s => Freshness::Due,
            Some(_) => Freshness::Fresh,
        }
    }

    fn read_meta(&self, store: &dyn SharedStore) -> (Meta, Option<u32>) {
        match store.get(&self.meta_key) {
            Some((bytes, cas)) => (maps_only::from_slice(&bytes).unwrap_or_default(), Some(cas)),
            None => (Meta::default(), None),
        }
    }

    /// Pulls what other workers fetched. Cheap when nothing changed (one small read).
    pub fn sync(&mut self, store: &dyn SharedStore) {
        let (meta, _) = self.read_meta(store);
        if meta.version == 0 {
            return;
        }
        match &mut self.local {
            Some(l) if l.version == meta.version => {
                l.fetched_at = meta.fetched_at;
                return;
            }
            _ => {}
        }
        let Some((doc, _)) = store.get(&self.doc_key) else {
            return;
        };
        // The doc was validated before it was stored; a parse failure here means a foreign
        // writer, and the local copy stays.
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(&doc) else {
            return;
        };
        let check = if meta.checks >= KEY_CHECKS {
            KeyCheck::Revalidated
        } else {
            KeyCheck::Full
        };
        if let Ok((keys, _)) = KeySet::parse_with(&value, check) {
            if !keys.keys.is_empty() {
                self.local = Some(Loaded {
                    version: meta.version,
                    fetched_at: meta.fetched_at,
                    keys: Rc::new(keys),
                });
            }
        }
    }

    /// Claims the right to fetch now (the lease of this source). False while another fetch
    /// of the source is in flight (any worker, any reason), during the backoff after a
    /// failure, when the kind's own schedule says wait, or when the lease cannot be recorded.
    pub fn claim_fetch(&mut self, store: &dyn SharedStore, now: u64, kind: FetchKind) -> bool {
        for _ in 0..CAS_RETRIES {
            let (mut meta, cas) = self.read_meta(store);
            if now < meta.fetching_until || now < meta.retry_at {
                return false;
            }
            let allowed = match kind {
                // The request cannot be answered without keys.
                FetchKind::Bootstrap => true,
                FetchKind::Refresh => {
                    let age = now.saturating_sub(meta.fetched_at);
                    meta.fetched_at == 0
                        || age >= self.source.refresh_interval_s
                        || age > self.source.max_stale_s
                }
                FetchKind::UnknownKid => {
                    meta.last_forced == 0
                        || now.saturating_sub(meta.last_forced) >= self.source.unknown_kid_refetch_interval_s
                }
            };
            if !allowed {
                return false;
            }
            meta.fetching_until = now.saturating_add(self.lease_s());
            meta.last_attempt = now;
            if kind == FetchKind::UnknownKid {
                meta.last_forced = now;
            }
            let Ok(bytes) = serde_json::to_vec(&meta) else {
                return false;
            };
            match crate::host::write_shared(store, &self.meta_key, &bytes, cas, now.saturating_mul(1000)) {
                StoreWrite::Written => return true,
                StoreWrite::CasMismatch => continue,
                // Without a recorded lease nothing stops every other request from fetching
                // too; and the fetched keys could not be shared anyway (see on_fetch).
                StoreWrite::Failed => return false,
            }
        }
        false
    }

    /// How long a claimed fetch holds the lease.
    pub fn lease_s(&self) -> u64 {
        self.source
            .timeout_ms
            .div_ceil(1000)
            .saturating_add(LEASE_MARGIN_S)
    }

    /// Seconds until a fetch may start again (lease or backoff), 0 if it may start now. For
    /// tests and for a Retry-After hint.
    pub fn wait_s(&self, store: &dyn SharedStore, now: u64) -> u64 {
        let (meta, _) = self.read_meta(store);
        meta.fetching_until.max(meta.retry_at).saturating_sub(now)
    }

    /// Handles a fetch response (`status` None: the call failed or timed out). Only a valid
    /// document with at least one usable key replaces the last good set.
    pub fn on_fetch(
        &mut self,
        store: &dyn SharedStore,
        now: u64,
        status: Option<u16>,
        body: Option<&[u8]>,
    ) -> FetchResult {
        let result = self.validate_response(status, body);
        let ok = result.is_ok();
        if let Ok((bytes, _, skipped)) = &result {
            // Bounded: a hostile or broken document must not flood the log.
            for e in skipped.iter().take(MAX_LOGGED_SKIPS) {
                log::warn!(
                    "llm-warden: JWKS from cluster {:?} path {:?}: key [{}] skipped: {}",
                    self.source.cluster,
                    self.source.path,
                    e.index,
                    e.message
                );
            }
            if skipped.len() > MAX_LOGGED_SKIPS {
                log::warn!(
                    "llm-warden: JWKS from cluster {:?} path {:?}: {} more keys skipped",
                    self.source.cluster,
                    self.source.path,
                    skipped.len() - MAX_LOGGED_SKIPS
                );
            }
            if store.set(&self.doc_key, bytes.as_slice(), None) != StoreWrite::Written {
                return self.release(
                    store,
                    now,
                    false,
                    FetchResult::Rejected("shared store refused the key set".into()),
                );
            }
        }
        let outcome = match result {
            Ok((_, keys, skipped)) => FetchResult::Updated {
                keys,
                skipped: skipped.len(),
            },
            Err(e) => FetchResult::Rejected(e),
        };
        self.release(store, now, ok, outcome)
    }

    fn release(
        &mut self,
        store: &dyn SharedStore,
        now: u64,
        success: bool,
        outcome: FetchResult,
    ) -> FetchResult {
        for _ in 0..CAS_RETRIES {
            let (mut meta, cas) = self.read_meta(store);
            meta.fetching_until = 0;
            if success {
                meta.version = meta.version.wrapping_add(1).max(1);
                meta.fetched_at = now;
                meta.failures = 0;
                meta.retry_at = 0;
                meta.checks = KEY_CHECKS;
            } else {
                meta.failures = meta.failures.saturating_add(1);
                meta.retry_at = now.saturating_add(backoff_s(meta.failures, self.source.refresh_interval_s));
            }
            let Ok(bytes) = serde_json::to_vec(&meta) else {
                break;
            };
            match crate::host::write_shared(store, &self.meta_key, &bytes, cas, now.saturating_mul(1000)) {
                StoreWrite::CasMismatch => continue,
                _ => break,
            }
        }
        if success {
            self.sync(store);
        }
        outcome
    }

    /// The document to store (the keys that passed every check; refused ones are left out so
    /// that no VM reading it back needs to test them again), the number of usable keys and the
    /// keys skipped (with why).
    fn validate_response(
        &self,
        status: Option<u16>,
        body: Option<&[u8]>,
    ) -> Result<(Vec<u8>, usize, Vec<JwkError>), String> {
        match status {
            Some(200) => {}
            Some(s) => return Err(format!("JWKS endpoint answered HTTP {s}")),
            None => return Err("JWKS fetch failed (connection error or timeout)".into()),
        }
        let body = body.unwrap_or_default();
        if body.len() > self.source.max_bytes {
            return Err(format!(
                "JWKS response of {} bytes exceeds max_bytes {}",
                body.len(),
                self.source.max_bytes
            ));
        }
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|_| "JWKS response is not valid JSON".to_string())?;
        let (keys, errors) = KeySet::parse(&value)?;
        if keys.keys.is_empty() {
            return Err("JWKS response has no usable signing key".into());
        }
        // `errors` is in key order: one merge pass.
        let mut refused = errors.iter().map(|e| e.index).peekable();
        let passed: Vec<&serde_json::Value> = value
            .get("keys")
            .and_then(serde_json::Value::as_array)
            .map(|all| {
                all.iter()
                    .enumerate()
                    .filter(|(i, _)| {
                        if refused.peek() == Some(i) {
                            refused.next();
                            false
                        } else {
                            true
                        }
                    })
                    .map(|(_, k)| k)
                    .collect()
            })
            .unwrap_or_default();
        let stored = serde_json::to_vec(&serde_json::json!({ "keys": passed }))
            .map_err(|_| "cannot store the key set".to_string())?;
        Ok((stored, keys.keys.len(), errors))
    }
}

/// FNV-1a: a stable, dependency-free name for a JWKS source in shared-data keys.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::memory::MemStore;
    use crate::host::racing::RaceOnFirstAbsent;

    fn source() -> RemoteJwks {
        serde_json::from_value(serde_json::json!({"cluster": "idp", "path": "/jwks"})).unwrap()
    }

    #[test]
    fn two_workers_bootstrapping_one_source_make_one_fetch() {
        // Both read "no meta"; the second claims first. Without the creation lock the first
        // worker's blind write would claim the source a second time.
        let store = MemStore::default();
        let mut first = RemoteKeys::new(source());
        let mut second = RemoteKeys::new(source());
        let prefix = first.meta_key.clone();
        let second_claimed = std::cell::Cell::new(None);
        let racing = RaceOnFirstAbsent::new(&store, &prefix, |st| {
            second_claimed.set(Some(second.claim_fetch(st, 100, FetchKind::Bootstrap)));
        });
        let first_claimed = first.claim_fetch(&racing, 100, FetchKind::Bootstrap);
        assert!(racing.raced());
        assert_eq!((second_claimed.get(), first_claimed), (Some(true), false));
    }
}
