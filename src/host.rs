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

#[cfg(test)]
pub mod testing {
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;

    pub struct FixedClock(pub Cell<u64>);
    impl FixedClock {
        pub fn at(secs: u64) -> Self {
            FixedClock(Cell::new(secs))
        }
        pub fn advance(&self, secs: u64) {
            self.0.set(self.0.get() + secs);
        }
    }
    impl Clock for FixedClock {
        fn now_unix_secs(&self) -> u64 {
            self.0.get()
        }
    }

    #[derive(Default)]
    pub struct MemStore {
        pub data: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    }
    impl SharedStore for MemStore {
        fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            self.data.borrow().get(key).cloned()
        }
        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> StoreWrite {
            let mut d = self.data.borrow_mut();
            let current = d.get(key).map(|(_, c)| *c).unwrap_or(0);
            if let Some(c) = cas {
                if c != current {
                    return StoreWrite::CasMismatch;
                }
            }
            d.insert(key.to_string(), (value.to_vec(), current + 1));
            StoreWrite::Written
        }
    }
}
