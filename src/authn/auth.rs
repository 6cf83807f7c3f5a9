//! Authentication of one request: token extraction, verified-token cache, JOSE checks,
//! key selection (with JWKS fetch when needed), claim rules and revocation.

use crate::authn::claims::{self, ClaimRules, Identity};
use crate::authn::jose::{self, Alg, KeyMaterial, KeySelection, KeySet, ParseError};
use crate::authn::jwks::{FetchKind, FetchResult, Freshness, RemoteKeys};
use crate::authn::token_cache::{CachedToken, TokenCache};
use crate::config::{Config, ConfigError, JwksSource, TokenSource};
use crate::host::{DispatchError, HttpCaller, SharedStore};
use crate::outcome::reason::Reason;
use serde_json::Value;
use std::collections::HashSet;
use std::rc::Rc;

pub enum KeySource {
    /// HMAC-only issuer.
    None,
    Inline(Rc<KeySet>),
    Remote(RemoteKeys),
}

pub struct IssuerRuntime {
    pub name: String,
    pub iss: String,
    pub rules: ClaimRules,
    pub algorithms: Vec<Alg>,
    pub hmac: Option<KeyMaterial>,
    pub keys: KeySource,
    pub revoked_jtis: HashSet<String>,
    pub revoked_subjects: HashSet<String>,
}

impl IssuerRuntime {
    fn revoked(&self, id: &Identity) -> bool {
        id.jti.as_ref().is_some_and(|j| self.revoked_jtis.contains(j))
            || id.sub.as_ref().is_some_and(|s| self.revoked_subjects.contains(s))
    }
}

/// What to do with the request.
#[derive(Debug)]
pub enum Verdict {
    Allow(Rc<Identity>),
    /// `identity` is set only when the signature verified (e.g. expired or revoked tokens),
    /// so audit records never name an unverified subject.
    Deny {
        reason: Reason,
        identity: Option<Rc<Identity>>,
    },
    /// Keys of issuer `issuer` must be fetched first; the fetch lease is already claimed.
    /// The adapter dispatches the fetch, holds the request, feeds the response to
    /// [`Authenticator::on_fetch`] and calls [`Authenticator::authenticate`] again with
    /// `may_fetch = false`.
    Fetch {
        issuer: usize,
    },
}

fn deny(reason: Reason) -> Verdict {
    Verdict::Deny {
        reason,
        identity: None,
    }
}

enum KeyState {
    Ready(Rc<KeySet>, u64),
    Fetch,
    Unavailable,
}

pub struct Authenticator {
    pub token: TokenSource,
    pub realm: String,
    pub issuers: Vec<IssuerRuntime>,
    cache: TokenCache,
    /// Signature verifications performed (cache misses that reached the crypto).
    pub signature_checks: u64,
    /// Calls whose token was too long to cache (over `MAX_CACHED_TOKEN_BYTES`) while the
    /// cache is on: they are verified every time.
    pub tokens_too_long_to_cache: u64,
}

impl Authenticator {
    pub fn new(config: &Config) -> Result<Authenticator, ConfigError> {
        let mut issuers = Vec::with_capacity(config.issuers.len());
        for (i, ic) in config.issuers.iter().enumerate() {
            let hmac = ic
                .hmac_secret()
                .map_err(|e| ConfigError {
                    path: format!("issuers[{i}].{}", e.path),
                    message: e.message,
                })?
                .map(KeyMaterial::Hmac);
            let keys = match &ic.jwks {
                None => KeySource::None,
                Some(JwksSource::Inline(doc)) => {
                    let (set, _) = KeySet::parse(doc).map_err(|m| ConfigError {
                        path: format!("issuers[{i}].jwks.inline"),
                        message: m,
                    })?;
                    KeySource::Inline(Rc::new(set))
                }
                Some(JwksSource::Remote(r)) => KeySource::Remote(RemoteKeys::new(r.clone())),
            };
            issuers.push(IssuerRuntime {
                name: ic.name.clone(),
                iss: ic.issuer.clone(),
                rules: ClaimRules {
                    audiences: ic.audiences.clone(),
                    require_exp: ic.require_exp,
                    require_iat: ic.require_iat,
                    clock_skew_s: ic.clock_skew_s,
                    max_lifetime_s: ic.max_lifetime_s,
                },
                algorithms: ic.allowed_algorithms(),
                hmac,
                keys,
                revoked_jtis: ic.revoked.jtis.iter().cloned().collect(),
                revoked_subjects: ic.revoked.subjects.iter().cloned().collect(),
            });
        }
        Ok(Authenticator {
            token: config.token.clone(),
            realm: config.realm.clone(),
            issuers,
            cache: TokenCache::new(config.token_cache.max_entries),
            signature_checks: 0,
            tokens_too_long_to_cache: 0,
        })
    }

    pub fn cached_tokens(&self) -> usize {
        self.cache.len()
    }

    fn cache_enabled(&self) -> bool {
        self.cache.capacity() > 0
    }

    /// Tests only: every token gets the same cache key, as if all hashes collided.
    #[cfg(test)]
    pub(crate) fn force_cache_collisions(&mut self) {
        self.cache.force_collisions();
    }

    /// The token from the configured header value, after the scheme prefix.
    pub fn extract_token<'a>(&self, header: Option<&'a str>) -> Result<&'a str, Reason> {
        let raw = header.ok_or(Reason::MissingToken)?.trim();
        let prefix = self.token.prefix.as_str();
        let token = if prefix.is_empty() {
            raw
        } else {
            let head = raw.get(..prefix.len()).ok_or(Reason::MissingToken)?;
            if !head.eq_ignore_ascii_case(prefix) {
                // Another scheme (Basic, ...) carries no bearer credential (RFC 6750 §3.1).
                return Err(Reason::MissingToken);
            }
            raw.get(prefix.len()..).ok_or(Reason::MissingToken)?.trim()
        };
        if token.is_empty() {
            return Err(Reason::MissingToken);
        }
        if token.len() > self.token.max_bytes {
            return Err(Reason::TokenTooLarge);
        }
        Ok(token)
    }

    /// Decides one request from the value of the token header.
    pub fn authenticate(
        &mut self,
        header: Option<&str>,
        now: u64,
        store: &dyn SharedStore,
        may_fetch: bool,
    ) -> Verdict {
        let token = match self.extract_token(header) {
            Ok(t) => t,
            Err(reason) => return deny(reason),
        };
        let cache_key = self.cache.key(token);
        if cache_key.is_none() && self.cache_enabled() {
            self.tokens_too_long_to_cache = self.tokens_too_long_to_cache.saturating_add(1);
        }
        if let Some(key) = cache_key {
            if let Some(hit) = self.cache.get(key, token).cloned() {
                match self.check_cached(&hit, now, store, may_fetch) {
                    Some(verdict) => return verdict,
                    // The key set changed since: verify again from scratch.
                    None => self.cache.remove(key),
                }
            }
        }
        let jws = match jose::parse_compact(token) {
            Ok(j) => j,
            Err(ParseError::Malformed) => return deny(Reason::MalformedToken),
            Err(ParseError::UnsupportedAlg) => return deny(Reason::UnsupportedAlg),
            Err(ParseError::ForbiddenHeader) => return deny(Reason::ForbiddenHeader),
        };
        let iss = match jws.claims.get("iss") {
            Some(Value::String(iss)) => iss.as_str(),
            // Present but not a string: malformed, and no issuer can vouch for it.
            Some(_) => return deny(Reason::BadClaim),
            None => return deny(Reason::UnknownIssuer),
        };
        let Some(idx) = self.issuers.iter().position(|i| i.iss == iss) else {
            return deny(Reason::UnknownIssuer);
        };
        let Some(issuer) = self.issuers.get_mut(idx) else {
            return deny(Reason::UnknownIssuer);
        };
        if !issuer.algorithms.contains(&jws.alg) {
            return deny(Reason::AlgNotAllowed);
        }

        let mut key_version = 0;
        let verified = if jws.alg.is_hmac() {
            match &issuer.hmac {
                Some(secret) => {
                    self.signature_checks += 1;
                    jose::verify(jws.alg, secret, jws.signing_input, &jws.signature)
                }
                None => return deny(Reason::AlgNotAllowed),
            }
        } else {
            let (mut keys, version) = match key_state(issuer, now, store, may_fetch) {
                KeyState::Ready(k, v) => (k, v),
                KeyState::Fetch => return Verdict::Fetch { issuer: idx },
                KeyState::Unavailable => return deny(Reason::JwksUnavailable),
            };
            key_version = version;
            if matches!(keys.select(jws.kid.as_deref(), jws.alg), KeySelection::UnknownKid) {
                if let KeySource::Remote(r) = &mut issuer.keys {
                    // Another worker may already hold the rotated keys.
                    r.sync(store);
                    if let Some(k) = r.keys() {
                        keys = k.clone();
                        key_version = r.version();
                    }
                    if matches!(keys.select(jws.kid.as_deref(), jws.alg), KeySelection::UnknownKid) {
                        if may_fetch && r.claim_fetch(store, now, FetchKind::UnknownKid) {
                            return Verdict::Fetch { issuer: idx };
                        }
                        return deny(Reason::UnknownKey);
                    }
                }
            }
            let selection = keys.select(jws.kid.as_deref(), jws.alg);
            match selection {
                KeySelection::Found(key) => {
                    self.signature_checks += 1;
                    jose::verify(jws.alg, &key.material, jws.signing_input, &jws.signature)
                }
                KeySelection::UnknownKid => return deny(Reason::UnknownKey),
                KeySelection::AlgMismatch => return deny(Reason::AlgNotAllowed),
                KeySelection::Ambiguous => return deny(Reason::AmbiguousKey),
            }
        };
        if !verified {
            return deny(Reason::BadSignature);
        }

        let alg = jws.alg;
        let kid = jws.kid.clone();
        let claims_map = jws.claims;
        let checked = claims::check_identity_claims(&claims_map)
            .and_then(|()| claims::validate(&claims_map, &issuer.rules, now));
        let exp = match checked {
            Ok(exp) => exp,
            Err(reason) => {
                let identity = Rc::new(Identity::from_claims(&issuer.name, claims_map, None));
                return Verdict::Deny {
                    reason,
                    identity: Some(identity),
                };
            }
        };
        let identity = Rc::new(Identity::from_claims(&issuer.name, claims_map, exp));
        if issuer.revoked(&identity) {
            return Verdict::Deny {
                reason: Reason::Revoked,
                identity: Some(identity),
            };
        }
        if let Some(key) = cache_key {
            self.cache.insert(
                key,
                token,
                CachedToken {
                    identity: identity.clone(),
                    issuer: idx,
                    alg,
                    kid,
                    key_version,
                },
                now,
            );
        }
        Verdict::Allow(identity)
    }

    /// A cache hit still passes expiry, revocation and key-trust checks. None: the entry is
    /// no longer usable as is (key set changed) and the token must be verified again.
    fn check_cached(
        &mut self,
        hit: &CachedToken,
        now: u64,
        store: &dyn SharedStore,
        may_fetch: bool,
    ) -> Option<Verdict> {
        let issuer = self.issuers.get_mut(hit.issuer)?;
        if let Some(exp) = hit.identity.exp {
            if now >= exp.saturating_add(issuer.rules.clock_skew_s) {
                return Some(Verdict::Deny {
                    reason: Reason::Expired,
                    identity: Some(hit.identity.clone()),
                });
            }
        }
        if issuer.revoked(&hit.identity) {
            return Some(Verdict::Deny {
                reason: Reason::Revoked,
                identity: Some(hit.identity.clone()),
            });
        }
        if hit.alg.is_hmac() {
            return Some(Verdict::Allow(hit.identity.clone()));
        }
        match key_state(issuer, now, store, may_fetch) {
            KeyState::Ready(_, version) if version == hit.key_version => {
                Some(Verdict::Allow(hit.identity.clone()))
            }
            KeyState::Ready(_, _) => None,
            KeyState::Fetch => Some(Verdict::Fetch { issuer: hit.issuer }),
            KeyState::Unavailable => Some(deny(Reason::JwksUnavailable)),
        }
    }

    /// Periodic work: pull keys other workers fetched and claim due refreshes. Returns the
    /// issuers whose fetch this worker must dispatch now.
    pub fn tick(&mut self, now: u64, store: &dyn SharedStore) -> Vec<usize> {
        let mut due = Vec::new();
        for (i, issuer) in self.issuers.iter_mut().enumerate() {
            if let KeySource::Remote(r) = &mut issuer.keys {
                r.sync(store);
                let kind = match r.freshness(now) {
                    Freshness::Fresh => continue,
                    Freshness::Missing => FetchKind::Refresh,
                    Freshness::Due | Freshness::Stale => FetchKind::Refresh,
                };
                if r.claim_fetch(store, now, kind) {
                    due.push(i);
                }
            }
        }
        due
    }

    /// The remote source of an issuer, for the adapter to dispatch its fetch.
    pub fn remote(&self, issuer: usize) -> Option<&RemoteKeys> {
        match self.issuers.get(issuer).map(|i| &i.keys) {
            Some(KeySource::Remote(r)) => Some(r),
            _ => None,
        }
    }

    /// Starts the JWKS fetch of `issuer` through the host.
    pub fn dispatch_fetch(&self, issuer: usize, http: &dyn HttpCaller) -> Result<u32, DispatchError> {
        let remote = self.remote(issuer).ok_or(DispatchError(0))?;
        http.get(
            &remote.source.cluster,
            remote.authority(),
            &remote.source.path,
            remote.source.timeout_ms,
        )
    }

    pub fn on_fetch(
        &mut self,
        issuer: usize,
        now: u64,
        store: &dyn SharedStore,
        status: Option<u16>,
        body: Option<&[u8]>,
    ) -> FetchResult {
        match self.issuers.get_mut(issuer).map(|i| &mut i.keys) {
            Some(KeySource::Remote(r)) => r.on_fetch(store, now, status, body),
            _ => FetchResult::Rejected("issuer has no remote JWKS".into()),
        }
    }
}

fn key_state(issuer: &mut IssuerRuntime, now: u64, store: &dyn SharedStore, may_fetch: bool) -> KeyState {
    match &mut issuer.keys {
        KeySource::None => KeyState::Ready(Rc::new(KeySet::default()), 0),
        KeySource::Inline(k) => KeyState::Ready(k.clone(), 0),
        KeySource::Remote(r) => {
            let mut fresh = r.freshness(now);
            if matches!(fresh, Freshness::Missing | Freshness::Stale) {
                r.sync(store);
                fresh = r.freshness(now);
            }
            match (fresh, r.keys()) {
                (Freshness::Fresh | Freshness::Due, Some(k)) => KeyState::Ready(k.clone(), r.version()),
                (Freshness::Stale, _) => {
                    if may_fetch && r.claim_fetch(store, now, FetchKind::Refresh) {
                        KeyState::Fetch
                    } else {
                        KeyState::Unavailable
                    }
                }
                _ => {
                    if may_fetch && r.claim_fetch(store, now, FetchKind::Bootstrap) {
                        KeyState::Fetch
                    } else {
                        KeyState::Unavailable
                    }
                }
            }
        }
    }
}
