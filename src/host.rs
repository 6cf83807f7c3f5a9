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
