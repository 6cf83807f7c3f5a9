//! Bounded cache of verified tokens, so repeat tokens skip signature verification.
//! Keyed by SHA-256 of the exact token (bounded memory whatever the token size); entries
//! expire at the token's `exp`. Callers still check expiry, revocation and that the signing
//! key is still trusted on every hit.

use crate::authn::claims::Identity;
use crate::authn::jose::Alg;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

pub type TokenHash = [u8; 32];

#[derive(Debug, Clone)]
pub struct CachedToken {
    pub identity: Rc<Identity>,
    pub issuer: usize,
    pub alg: Alg,
    pub kid: Option<String>,
    /// Key set version the token was verified against (0 for inline/HMAC keys).
    pub key_version: u64,
}

#[derive(Debug, Default)]
pub struct TokenCache {
    capacity: usize,
    entries: HashMap<TokenHash, CachedToken>,
    /// Insertion order for FIFO eviction; may hold hashes already removed.
    order: VecDeque<TokenHash>,
}

pub fn hash_token(token: &str) -> TokenHash {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.as_bytes()).into()
}

impl TokenCache {
    pub fn new(capacity: usize) -> TokenCache {
        TokenCache {
            capacity,
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub fn get(&self, hash: &TokenHash) -> Option<&CachedToken> {
        self.entries.get(hash)
    }

    pub fn remove(&mut self, hash: &TokenHash) {
        self.entries.remove(hash);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn insert(&mut self, hash: TokenHash, entry: CachedToken, now: u64) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity {
            // First drop what has expired, then the oldest entries.
            self.entries
                .retain(|_, e| e.identity.exp.is_none_or(|exp| exp > now));
            self.order.retain(|h| self.entries.contains_key(h));
            while self.entries.len() >= self.capacity {
                match self.order.pop_front() {
                    Some(old) => {
                        self.entries.remove(&old);
                    }
                    None => break,
                }
            }
        }
        if self.entries.insert(hash, entry).is_none() {
            self.order.push_back(hash);
        }
        // Keep the order queue from growing past the map by stale duplicates.
        if self.order.len() > self.capacity.saturating_mul(2) {
            self.order.retain(|h| self.entries.contains_key(h));
        }
    }
}
