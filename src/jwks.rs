//! Remote JWKS shared by all worker VMs through the shared store.
//!
//! Two keys per JWKS source (cluster + authority + path), so the key space is bounded by the
//! config and plugins that use the same source share one fetch:
//! - `<base>/meta`: small JSON {version, fetched_at, fetching_until, last_attempt,
//!   last_forced}; doubles as the fetch lease, claimed with compare-and-swap;
//! - `<base>/doc`: the last good JWKS document, written only after it validated.
//!
//! Each VM keeps the parsed key set and re-reads `doc` only when `version` moves, so the
//! request path reads no shared data while the local copy is good.

use crate::config::RemoteJwks;
use crate::host::{SharedStore, StoreWrite};
use crate::jose::KeySet;
use serde::{Deserialize, Serialize};
use std::rc::Rc;

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
struct Meta {
    version: u64,
    /// Time of the last successful fetch (0: never).
    fetched_at: u64,
    /// A fetch is in flight until then.
    fetching_until: u64,
    last_attempt: u64,
    /// Last fetch forced by an unknown kid.
    last_forced: u64,
}

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
/// After a failed fetch, wait at least this long (capped by the refresh interval) before the
/// next periodic attempt, so a dead JWKS server is not hammered by every worker.
const RETRY_AFTER_FAILURE_S: u64 = 5;

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
            Some((bytes, cas)) => (serde_json::from_slice(&bytes).unwrap_or_default(), Some(cas)),
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
        if let Ok((keys, _)) = KeySet::parse(&value) {
            if !keys.keys.is_empty() {
                self.local = Some(Loaded {
                    version: meta.version,
                    fetched_at: meta.fetched_at,
                    keys: Rc::new(keys),
                });
            }
        }
    }

    /// Claims the right to fetch now. Returns false when another worker is fetching or the
    /// kind's rate limit says wait. Bootstrap requests may fetch even while another fetch is
    /// in flight: they cannot be answered without keys.
    pub fn claim_fetch(&mut self, store: &dyn SharedStore, now: u64, kind: FetchKind) -> bool {
        for _ in 0..CAS_RETRIES {
            let (mut meta, cas) = self.read_meta(store);
            let in_flight = now < meta.fetching_until;
            let allowed = match kind {
                FetchKind::Bootstrap => meta.fetched_at == 0 || !in_flight,
                FetchKind::Refresh => {
                    let age = now.saturating_sub(meta.fetched_at);
                    let backoff = RETRY_AFTER_FAILURE_S.min(self.source.refresh_interval_s).max(1);
                    !in_flight
                        && (meta.fetched_at == 0
                            || age >= self.source.refresh_interval_s
                            || age > self.source.max_stale_s)
                        && now.saturating_sub(meta.last_attempt) >= backoff
                }
                FetchKind::UnknownKid => {
                    !in_flight
                        && (meta.last_forced == 0
                            || now.saturating_sub(meta.last_forced)
                                >= self.source.unknown_kid_refetch_interval_s)
                }
            };
            if !allowed {
                return false;
            }
            let timeout_s = self.source.timeout_ms.div_ceil(1000).saturating_add(1);
            meta.fetching_until = now.saturating_add(timeout_s);
            meta.last_attempt = now;
            if kind == FetchKind::UnknownKid {
                meta.last_forced = now;
            }
            let Ok(bytes) = serde_json::to_vec(&meta) else {
                return false;
            };
            match store.set(&self.meta_key, &bytes, cas) {
                StoreWrite::Written => return true,
                StoreWrite::CasMismatch => continue,
                // Cannot record the lease: a bootstrap request still needs its keys.
                StoreWrite::Failed => return kind == FetchKind::Bootstrap,
            }
        }
        false
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
        let ok = matches!(result, Ok((_, _, _)));
        if let Ok((bytes, _, _)) = &result {
            if store.set(&self.doc_key, bytes, None) != StoreWrite::Written {
                return self.release(
                    store,
                    now,
                    false,
                    FetchResult::Rejected("shared store refused the key set".into()),
                );
            }
        }
        let outcome = match result {
            Ok((_, keys, skipped)) => FetchResult::Updated { keys, skipped },
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
            }
            let Ok(bytes) = serde_json::to_vec(&meta) else {
                break;
            };
            match store.set(&self.meta_key, &bytes, cas) {
                StoreWrite::CasMismatch => continue,
                _ => break,
            }
        }
        if success {
            self.sync(store);
        }
        outcome
    }

    #[allow(clippy::type_complexity)]
    fn validate_response<'b>(
        &self,
        status: Option<u16>,
        body: Option<&'b [u8]>,
    ) -> Result<(&'b [u8], usize, usize), String> {
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
        Ok((body, keys.keys.len(), errors.len()))
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
