//! The only things the core needs from its host. The proxy-wasm adapter implements them over
//! Envoy's hostcalls; tests implement them in memory.

/// Wall-clock time as the proxy sees it.
pub trait Clock {
    fn now_unix_secs(&self) -> u64;
    fn now_unix_millis(&self) -> u64 {
        self.now_unix_secs().saturating_mul(1000)
    }
}

/// Outcome of a compare-and-swap write to the shared store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreWrite {
    Written,
    /// Someone else wrote since our read: re-read and retry (bounded) or give up.
    CasMismatch,
    /// The host refused for another reason; treated like a failed write, never a panic.
    Failed,
}

/// A process-wide key/value store shared by all worker VMs (Envoy's shared data).
/// Keys are never deleted by Envoy, so callers must use a bounded key space.
pub trait SharedStore {
    /// The value and its CAS token, or None when the key was never written.
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    /// Writes `value`; with `cas = Some(c)` only if the key is still at version `c`.
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> StoreWrite;
}

/// The prefix of the creation locks (see [`write_shared`]); the adapter seeds them at
/// configure, before any worker serves a request.
pub const CREATE_LOCK_PREFIX: &str = "llm-warden/create-lock/";
/// Creations are serialised per stripe (by the key's hash), not globally: a holder that is
/// descheduled on a loaded host delays only the keys of its stripe.
const CREATE_LOCK_STRIPES: u64 = 64;
/// A creation lock is held for one get and one set; a holder that never released it (a
/// trapped VM) loses it after this long.
const CREATE_LOCK_HOLD_MS: u64 = 1_000;
/// Reads of a held lock before giving up (the caller's own bounded retry loop goes on).
const CREATE_LOCK_SPINS: usize = 1_024;

/// The lock that serialises the creation of `key`.
pub fn create_lock_key(key: &str) -> String {
    // FNV-1a: stable across workers and processes (the stripe must be the same for all).
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{CREATE_LOCK_PREFIX}{}", hash % CREATE_LOCK_STRIPES)
}

/// Writes `value` at `key`, which the caller read at version `cas` (None: it found no key).
///
/// Envoy's compare-and-swap does not guard a key that does not exist yet: two workers that
/// both read "absent" would both write, and one write would be lost (two token calls for one
/// cold credential, a rate-limit hit never counted, two JWKS fetches). So a key is created
/// only while holding its stripe's lock, itself a key taken and released with CAS within
/// this call; a key that appeared meanwhile answers `CasMismatch`, and the caller re-reads
/// and retries.
pub fn write_shared(
    store: &dyn SharedStore,
    key: &str,
    value: &[u8],
    cas: Option<u32>,
    now_ms: u64,
) -> StoreWrite {
    if cas.is_some() {
        return store.set(key, value, cas);
    }
    let lock = create_lock_key(key);
    match take_create_lock(store, &lock, now_ms) {
        StoreWrite::Written => {}
        busy_or_failed => return busy_or_failed,
    }
    let out = if store.get(key).is_some() {
        StoreWrite::CasMismatch
    } else {
        store.set(key, value, None)
    };
    // Unconditional: while the lock is held (and not expired) nobody else writes it.
    store.set(&lock, b"0", None);
    out
}

/// Creates the creation locks that do not exist. Racy itself, which is why the adapter
/// calls it at configure, before the first request of the process.
pub fn seed_create_lock(store: &dyn SharedStore) {
    for stripe in 0..CREATE_LOCK_STRIPES {
        let lock = format!("{CREATE_LOCK_PREFIX}{stripe}");
        if store.get(&lock).is_none() {
            store.set(&lock, b"0", None);
        }
    }
}

/// Written: the lock is ours. CasMismatch: held by another worker all along. Failed: the
/// store refuses writes (the caller's own failure path applies, as for any write).
fn take_create_lock(store: &dyn SharedStore, lock: &str, now_ms: u64) -> StoreWrite {
    for _ in 0..CREATE_LOCK_SPINS {
        let Some((held, cas)) = store.get(lock) else {
            if store.set(lock, b"0", None) == StoreWrite::Failed {
                return StoreWrite::Failed;
            }
            continue;
        };
        let held_until = std::str::from_utf8(&held)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        if held_until > now_ms {
            continue;
        }
        let until = now_ms.saturating_add(CREATE_LOCK_HOLD_MS).max(1);
        match store.set(lock, until.to_string().as_bytes(), Some(cas)) {
            StoreWrite::CasMismatch => continue,
            taken_or_failed => return taken_or_failed,
        }
    }
    StoreWrite::CasMismatch
}

/// The host refused to start an outgoing call (e.g. unknown cluster); carries its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchError(pub u32);

/// An outgoing HTTP GET through a named Envoy cluster. The response arrives asynchronously;
/// the adapter routes it back by the returned call id.
pub trait HttpCaller {
    fn get(&self, cluster: &str, authority: &str, path: &str, timeout_ms: u64) -> Result<u32, DispatchError>;
}

/// An in-process store with Envoy's shared-data contract (CAS versions, unconditional write
/// with `None`), for tests, benchmarks and fuzzing of the core outside Envoy.
pub mod memory {
    use super::{SharedStore, StoreWrite};
    use std::cell::RefCell;
    use std::collections::HashMap;

    #[derive(Default)]
    pub struct MemStore {
        pub data: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    }

    impl SharedStore for MemStore {
        fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            self.data.try_borrow().ok()?.get(key).cloned()
        }
        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> StoreWrite {
            let Ok(mut d) = self.data.try_borrow_mut() else {
                return StoreWrite::Failed;
            };
            let current = d.get(key).map_or(0, |(_, c)| *c);
            if cas.is_some_and(|c| c != current) {
                return StoreWrite::CasMismatch;
            }
            d.insert(key.to_string(), (value.to_vec(), current.wrapping_add(1)));
            StoreWrite::Written
        }
    }
}

/// A store for tests of the cross-worker races Envoy's shared data allows.
#[cfg(test)]
pub mod racing {
    use super::memory::MemStore;
    use super::{SharedStore, StoreWrite};
    use std::cell::RefCell;

    /// The first time a read of a key under `prefix` finds nothing, runs `other` (a second
    /// worker's whole operation on the same data) before answering: the interleaving in which
    /// creating an absent key without the creation lock loses a write.
    /// Another worker's operation, run once in the middle of this one.
    pub type OtherWorker<'a> = Box<dyn FnOnce(&MemStore) + 'a>;

    pub struct RaceOnFirstAbsent<'a> {
        pub inner: &'a MemStore,
        pub prefix: &'a str,
        pub other: RefCell<Option<OtherWorker<'a>>>,
    }

    impl<'a> RaceOnFirstAbsent<'a> {
        pub fn new(inner: &'a MemStore, prefix: &'a str, other: impl FnOnce(&MemStore) + 'a) -> Self {
            RaceOnFirstAbsent {
                inner,
                prefix,
                other: RefCell::new(Some(Box::new(other))),
            }
        }

        pub fn raced(&self) -> bool {
            self.other.borrow().is_none()
        }
    }

    impl SharedStore for RaceOnFirstAbsent<'_> {
        fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            let found = self.inner.get(key);
            if found.is_none() && key.starts_with(self.prefix) {
                let other = self.other.borrow_mut().take();
                if let Some(f) = other {
                    f(self.inner);
                }
            }
            found
        }
        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> StoreWrite {
            self.inner.set(key, value, cas)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::memory::MemStore;
    use super::racing::RaceOnFirstAbsent;
    use super::*;

    #[test]
    fn a_key_created_meanwhile_is_not_overwritten() {
        let store = MemStore::default();
        let racing = RaceOnFirstAbsent::new(&store, "k", |s| {
            assert_eq!(
                write_shared(s, "k", b"second worker", None, 5),
                StoreWrite::Written
            );
        });
        assert!(racing.get("k").is_none() && racing.raced());
        // The first worker read "absent" before the second created the key: its blind write
        // must not replace the second worker's value.
        assert_eq!(
            write_shared(&racing, "k", b"first worker", None, 5),
            StoreWrite::CasMismatch
        );
        assert_eq!(store.get("k").unwrap().0, b"second worker");
    }

    #[test]
    fn a_plain_write_of_an_absent_key_loses_the_other_write() {
        // Why write_shared exists: Envoy's CAS (modelled by MemStore) does not guard absence.
        let store = MemStore::default();
        let racing = RaceOnFirstAbsent::new(&store, "k", |s| {
            s.set("k", b"second worker", None);
        });
        assert!(racing.get("k").is_none());
        assert_eq!(racing.set("k", b"first worker", None), StoreWrite::Written);
        assert_eq!(store.get("k").unwrap().0, b"first worker");
    }

    #[test]
    fn a_held_lock_refuses_creation_until_it_expires() {
        let store = MemStore::default();
        seed_create_lock(&store);
        let lock = create_lock_key("k");
        store.set(&lock, b"2000", None); // held by a worker that never released it
        assert_eq!(
            write_shared(&store, "k", b"v", None, 1_999),
            StoreWrite::CasMismatch
        );
        assert!(store.get("k").is_none());
        assert_eq!(write_shared(&store, "k", b"v", None, 2_000), StoreWrite::Written);
        assert_eq!(store.get(&lock).unwrap().0, b"0", "released");
        // An existing key is a plain CAS write: no lock involved.
        store.set(&lock, b"9999", None);
        let (_, cas) = store.get("k").unwrap();
        assert_eq!(write_shared(&store, "k", b"w", Some(cas), 0), StoreWrite::Written);
        assert_eq!(
            write_shared(&store, "k", b"x", Some(cas), 0),
            StoreWrite::CasMismatch
        );
    }

    #[test]
    fn seeding_keeps_an_existing_lock() {
        let store = MemStore::default();
        let lock = create_lock_key("k");
        store.set(&lock, b"77", None);
        seed_create_lock(&store);
        assert_eq!(store.get(&lock).unwrap().0, b"77");
        let locks = store
            .data
            .borrow()
            .keys()
            .filter(|k| k.starts_with(CREATE_LOCK_PREFIX))
            .count();
        assert_eq!(locks as u64, CREATE_LOCK_STRIPES);
    }
}
