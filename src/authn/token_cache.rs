//! Bounded cache of verified tokens, so repeat tokens skip signature verification.
//! Keyed by a keyed fast hash of the exact token (SipHash with a per-cache random key, so
//! a client cannot aim collisions at it); a lookup is a hit only if the token stored in the
//! entry equals the presented one, compared in constant time, so a collision is a miss.
//! Tokens longer than [`MAX_CACHED_TOKEN_BYTES`] are never cached, which bounds what an entry
//! holds. Entries expire at the token's `exp`. Callers still check expiry, revocation and
//! that the signing key is still trusted on every hit.

use crate::authn::claims::Identity;
use crate::authn::jose::Alg;
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::rc::Rc;
use subtle::ConstantTimeEq;

/// Longest token the cache keeps (4 KiB). Real IdP access tokens are 0.5 to 2 KiB, so this
/// leaves room for large claim sets, while a full cache holds at most `max_entries` times
/// 4 KiB of tokens. Longer tokens are verified on every call.
pub const MAX_CACHED_TOKEN_BYTES: usize = 4096;

/// Where a token's entry lives: the keyed hash of the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey(u64);

#[derive(Debug, Clone)]
pub struct CachedToken {
    pub identity: Rc<Identity>,
    pub issuer: usize,
    pub alg: Alg,
    pub kid: Option<String>,
    /// Key set version the token was verified against (0 for inline/HMAC keys).
    pub key_version: u64,
}

#[derive(Debug)]
struct Entry {
    /// The exact token, so a hash collision never serves another token's identity.
    token: Box<str>,
    verified: CachedToken,
}

#[derive(Debug, Default)]
pub struct TokenCache {
    capacity: usize,
    /// Random key, drawn once per cache (WASI `random_get` in Envoy).
    hasher: RandomState,
    entries: HashMap<CacheKey, Entry>,
    /// Insertion order for FIFO eviction; may hold keys already removed.
    order: VecDeque<CacheKey>,
    /// Tests only: every token gets this key, to force collisions.
    #[cfg(test)]
    forced_key: Option<u64>,
}

impl TokenCache {
    pub fn new(capacity: usize) -> TokenCache {
        TokenCache {
            capacity,
            hasher: RandomState::new(),
            entries: HashMap::new(),
            order: VecDeque::new(),
            #[cfg(test)]
            forced_key: None,
        }
    }

    /// Tests only: give every token the same key, as if all hashes collided.
    #[cfg(test)]
    pub fn force_collisions(&mut self) {
        self.forced_key = Some(0);
    }

    /// The token's key; None when the token cannot be cached (cache off, or the token is
    /// longer than [`MAX_CACHED_TOKEN_BYTES`]).
    pub fn key(&self, token: &str) -> Option<CacheKey> {
        if self.capacity == 0 || token.len() > MAX_CACHED_TOKEN_BYTES {
            return None;
        }
        #[cfg(test)]
        if let Some(forced) = self.forced_key {
            return Some(CacheKey(forced));
        }
        Some(CacheKey(self.hasher.hash_one(token.as_bytes())))
    }

    /// The entry for exactly `token`. An entry under the same key for another token (a
    /// collision) is a miss.
    pub fn get(&self, key: CacheKey, token: &str) -> Option<&CachedToken> {
        let entry = self.entries.get(&key)?;
        if same_token(entry.token.as_bytes(), token.as_bytes()) {
            Some(&entry.verified)
        } else {
            None
        }
    }

    pub fn remove(&mut self, key: CacheKey) {
        self.entries.remove(&key);
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Remembers `token` as verified. On a collision the newer token takes the key.
    pub fn insert(&mut self, key: CacheKey, token: &str, verified: CachedToken, now: u64) {
        if self.capacity == 0 || token.len() > MAX_CACHED_TOKEN_BYTES {
            return;
        }
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            // First drop what has expired, then the oldest entries.
            self.entries
                .retain(|_, e| e.verified.identity.exp.is_none_or(|exp| exp > now));
            self.order.retain(|k| self.entries.contains_key(k));
            while self.entries.len() >= self.capacity {
                match self.order.pop_front() {
                    Some(old) => {
                        self.entries.remove(&old);
                    }
                    None => break,
                }
            }
        }
        let entry = Entry {
            token: token.into(),
            verified,
        };
        if self.entries.insert(key, entry).is_none() {
            self.order.push_back(key);
        }
        // Keep the order queue from growing past the map by stale duplicates.
        if self.order.len() > self.capacity.saturating_mul(2) {
            self.order.retain(|k| self.entries.contains_key(k));
        }
    }
}

/// Constant-time equality (the length is not secret): the difference of all bytes, eight at
/// a time, is folded into one word without branching on the data, then `subtle` compares
/// that word. `subtle`'s slice comparison goes byte by byte behind an optimization barrier,
/// several times the cost for a 1 KiB token.
fn same_token(stored: &[u8], presented: &[u8]) -> bool {
    if stored.len() != presented.len() {
        return false;
    }
    let mut stored_words = stored.chunks_exact(8);
    let mut presented_words = presented.chunks_exact(8);
    let mut diff = 0u64;
    for (s, p) in (&mut stored_words).zip(&mut presented_words) {
        let (Ok(s), Ok(p)) = (<[u8; 8]>::try_from(s), <[u8; 8]>::try_from(p)) else {
            return false;
        };
        diff |= u64::from_le_bytes(s) ^ u64::from_le_bytes(p);
    }
    for (s, p) in stored_words.remainder().iter().zip(presented_words.remainder()) {
        diff |= u64::from(s ^ p);
    }
    bool::from(diff.ct_eq(&0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn verified(sub: &str, exp: Option<u64>) -> CachedToken {
        let mut claims = Map::new();
        claims.insert("sub".into(), sub.into());
        CachedToken {
            identity: Rc::new(Identity::from_claims("idp", claims, exp)),
            issuer: 0,
            alg: Alg::EdDSA,
            kid: None,
            key_version: 0,
        }
    }

    fn put(cache: &mut TokenCache, token: &str, sub: &str) {
        let key = cache.key(token).unwrap();
        cache.insert(key, token, verified(sub, None), 0);
    }

    fn subject(cache: &TokenCache, token: &str) -> Option<String> {
        let key = cache.key(token)?;
        cache.get(key, token).and_then(|t| t.identity.sub.clone())
    }

    #[test]
    fn hit_needs_the_identical_token() {
        let mut cache = TokenCache::new(8);
        put(&mut cache, "aaa.bbb.ccc", "alice");
        assert_eq!(subject(&cache, "aaa.bbb.ccc").as_deref(), Some("alice"));
        assert_eq!(subject(&cache, "aaa.bbb.ccd"), None);
        assert_eq!(subject(&cache, "aaa.bbb.cc"), None);
        assert_eq!(subject(&cache, "aaa.bbb.ccc "), None);
        assert_eq!(subject(&cache, ""), None);
    }

    #[test]
    fn comparison_sees_every_byte() {
        let token: Vec<u8> = (0..=255u8).cycle().take(1029).collect();
        assert!(same_token(&token, &token));
        for i in 0..token.len() {
            let mut other = token.clone();
            other[i] ^= 0x01;
            assert!(!same_token(&token, &other), "byte {i}");
        }
        assert!(!same_token(&token, &token[..1028]));
        assert!(same_token(b"", b""));
        assert!(!same_token(b"a", b""));
    }

    #[test]
    fn collision_is_a_miss() {
        let mut cache = TokenCache::new(8);
        cache.force_collisions();
        put(&mut cache, "token-a", "alice");
        let key_b = cache.key("token-b").unwrap();
        assert_eq!(cache.key("token-a"), Some(key_b), "the keys collide");
        assert!(cache.get(key_b, "token-b").is_none(), "another token's entry");
        assert_eq!(subject(&cache, "token-a").as_deref(), Some("alice"));
        // The newer token takes the key; the older one is then a miss.
        put(&mut cache, "token-b", "bob");
        assert_eq!(cache.len(), 1);
        assert_eq!(subject(&cache, "token-b").as_deref(), Some("bob"));
        assert_eq!(subject(&cache, "token-a"), None);
    }

    #[test]
    fn tokens_over_the_cap_are_not_cached() {
        let mut cache = TokenCache::new(8);
        let at_cap = "a".repeat(MAX_CACHED_TOKEN_BYTES);
        let over_cap = "a".repeat(MAX_CACHED_TOKEN_BYTES + 1);
        assert!(cache.key(&over_cap).is_none());
        put(&mut cache, &at_cap, "alice");
        assert_eq!(subject(&cache, &at_cap).as_deref(), Some("alice"));
        // Even with a key obtained otherwise, an over-cap token is never stored.
        let key = cache.key(&at_cap).unwrap();
        cache.insert(key, &over_cap, verified("mallory", None), 0);
        assert_eq!(subject(&cache, &at_cap).as_deref(), Some("alice"));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn cache_off_keys_nothing() {
        let cache = TokenCache::new(0);
        assert!(cache.key("aaa.bbb.ccc").is_none());
    }

    #[test]
    fn eviction_stays_bounded() {
        let mut cache = TokenCache::new(3);
        for i in 0..50 {
            put(&mut cache, &format!("token-{i}"), "s");
            assert!(cache.len() <= 3);
            assert!(cache.order.len() <= 6);
        }
        // FIFO: the newest three remain.
        for i in 47..50 {
            assert!(subject(&cache, &format!("token-{i}")).is_some());
        }
        assert!(subject(&cache, "token-46").is_none());
        // Re-inserting a present token does not evict another.
        put(&mut cache, "token-49", "s");
        assert_eq!(cache.len(), 3);
        assert!(subject(&cache, "token-47").is_some());
    }

    #[test]
    fn expired_entries_go_first() {
        let mut cache = TokenCache::new(2);
        let a = cache.key("a").unwrap();
        cache.insert(a, "a", verified("s", None), 0);
        let b = cache.key("b").unwrap();
        cache.insert(b, "b", verified("s", Some(10)), 0);
        let c = cache.key("c").unwrap();
        cache.insert(c, "c", verified("s", None), 20);
        assert!(subject(&cache, "a").is_some(), "the expired entry went instead");
        assert!(subject(&cache, "b").is_none());
        assert!(subject(&cache, "c").is_some());
    }
}
