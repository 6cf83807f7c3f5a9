//! Just-in-time upstream credentials: instead of one static provider key for every caller,
//! the filter obtains a short-lived credential per upstream (OAuth2 client credentials,
//! RFC 6749 §4.4) or per caller (OAuth2 token exchange, RFC 8693: the caller's verified
//! token is exchanged, the gateway authenticates as the actor). A static key from the
//! proxy's environment is a flagged fallback.
//!
//! Credentials are cached in shared data under a key derived from everything that selects
//! them (see [`CredentialSpec::key`]); per-caller ones live in a fixed table of slots per
//! source (Envoy never deletes shared-data keys). Each key's record is also a small state
//! machine that makes token-endpoint calls single flight: [`CredentialSpec::begin`] answers
//! `Cached`, `Fetch` (this request holds the lease and calls), `Wait` (another request is
//! calling: re-check with the read-only [`CredentialSpec::poll`]) or `Backoff` (recent
//! failures: fail fast without a call);
//! [`CredentialSpec::complete`] records the answer and releases the lease. A lease expires
//! on its own (timeout + margin), so a lost call cannot wedge a key.

use crate::config::maps_only;
use crate::config_error::ConfigError;
use crate::host::{SharedStore, StoreWrite};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    /// `client_credentials`, `token_exchange`, or `static` (transitional: long-lived).
    pub source: CredentialSource,
    /// Token endpoint, reached through an Envoy cluster (not for `static`).
    pub token_endpoint: Option<TokenEndpoint>,
    /// OAuth client id of the gateway.
    pub client_id: Option<String>,
    /// Environment variable (Envoy `vm_config.environment_variables`, Istio `vmConfig.env`)
    /// holding the client secret; secrets never live in the plugin config.
    pub client_secret_env: Option<String>,
    /// Environment variable holding the static key (source `static`).
    pub static_key_env: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub audience: Option<String>,
    /// RFC 8707 resource indicator sent as `resource` (the upstream the credential is for).
    pub resource: Option<String>,
    /// How the upstream expects it: `authorization` (Bearer), `api-key`, `x-api-key`.
    #[serde(default = "default_header")]
    pub header: String,
    /// Refresh this long before expiry, but never earlier than at 80% of the credential's
    /// lifetime (short-lived credentials are still cached).
    #[serde(default = "default_refresh_before")]
    pub refresh_before_s: u64,
}

fn default_header() -> String {
    "authorization".into()
}
fn default_refresh_before() -> u64 {
    60
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum CredentialSource {
    ClientCredentials,
    TokenExchange,
    Static,
}

impl CredentialSource {
    pub fn name(self) -> &'static str {
        match self {
            CredentialSource::ClientCredentials => "client_credentials",
            CredentialSource::TokenExchange => "token_exchange",
            CredentialSource::Static => "static",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TokenEndpoint {
    pub cluster: String,
    pub path: String,
    /// `:authority` of the token request (default: the cluster name).
    pub authority: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

fn default_timeout() -> u64 {
    3000
}

impl TokenEndpoint {
    /// The `:authority` the token request is sent with.
    pub fn authority(&self) -> &str {
        self.authority.as_deref().unwrap_or(&self.cluster)
    }
}

/// Lifetime given to a credential whose token response has no `expires_in`.
pub const DEFAULT_LIFETIME_S: u64 = 300;
/// Longer lifetimes are cut to this: the credential is fetched again at least daily.
pub const MAX_LIFETIME_S: u64 = 86_400;
/// Credentials living less than this are used (and cached for 80% of their life), but
/// flagged in [`TokenAnswer::short_lived`] so the operator sees an IdP misconfiguration.
pub const SHORT_LIFETIME_S: u64 = 10;
/// A lease outlives the token call's timeout by this much before another request may call.
pub const LEASE_MARGIN_MS: u64 = 1000;
/// Backoff after the second and later consecutive failures: 1 s, 2 s, 4 s, … up to this.
pub const MAX_BACKOFF_MS: u64 = 30_000;
/// Per-caller exchanged tokens live in this many slots per source (Envoy never deletes
/// shared-data keys); a collision only costs a new exchange.
pub const EXCHANGE_SLOTS: u64 = 4096;
/// Compare-and-swap rounds before giving up on a contended record.
const CAS_ATTEMPTS: usize = 4;

/// Compiled, with secrets read from the environment at configure time.
#[derive(Clone)]
pub struct CredentialSpec {
    pub source: CredentialSource,
    pub endpoint: Option<TokenEndpoint>,
    client_id: String,
    client_secret: String,
    static_key: String,
    scopes: Vec<String>,
    audience: Option<String>,
    resource: Option<String>,
    pub header: String,
    pub refresh_before_s: u64,
    /// Digest of everything that selects this source's credential (see [`Self::key`]).
    selection: [u8; 32],
}

impl std::fmt::Debug for CredentialSpec {
    // Secrets stay out of every debug print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialSpec")
            .field("source", &self.source)
            .field("header", &self.header)
            .finish()
    }
}

fn cerr(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        path: path.into(),
        message: message.into(),
    }
}

/// SHA-256 over length-prefixed parts, so no two part lists give the same input.
/// SHA-256 of the caller's token, the part of an exchanged credential's binding that ties it
/// to that very token (stored in shared data, so a collision-resistant digest).
fn caller_token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The verified caller whose token is exchanged (RFC 8693).
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// Name of the configured issuer that verified the token.
    pub issuer_name: &'a str,
    /// The token's verified `iss`.
    pub iss: &'a str,
    /// The token's verified `sub`.
    pub sub: Option<&'a str>,
    /// The caller's token itself (only its digest is kept).
    pub token: &'a str,
}

/// Where a credential is cached and what it must have been obtained for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialKey {
    /// Shared-data key (bounded: one per source, or one of [`EXCHANGE_SLOTS`] per source).
    store_key: String,
    /// Full digest of the selection (and caller); a record is used only if it matches, so
    /// a slot shared by two callers or a 64-bit prefix collision never serves a credential.
    binding: String,
}

impl CredentialKey {
    pub fn store_key(&self) -> &str {
        &self.store_key
    }
}

/// The lease a [`Begin::Fetch`] hands out; give it back to [`CredentialSpec::complete`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    id: u64,
    /// False when the record could not be claimed (store failure, or the slot is busy for
    /// another caller): the call happens anyway, unrecorded.
    recorded: bool,
}

/// What a request needing a credential does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// Attach this credential and go.
    Cached(String),
    /// This request calls the token endpoint, then passes the answer to `complete`.
    Fetch(Lease),
    /// Another request is calling: hold, re-check with `poll` (until `wait_deadline_ms`).
    Wait,
    /// The token endpoint failed recently: answer 503 now, without a call.
    Backoff { retry_after_s: u64 },
}

/// What [`CredentialSpec::poll`] finds for a waiting request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll {
    /// Attach this credential and resume the request.
    Ready(String),
    /// Still being fetched: keep waiting (until `wait_deadline_ms`).
    Pending,
    /// The awaited fetch ended without a credential: answer 503.
    Failed,
}

/// The shared-data record of one cache key: the credential and the single-flight state.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
struct Record {
    #[serde(rename = "b")]
    binding: String,
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    /// From here on the next request refreshes (ms since the epoch).
    #[serde(rename = "r", default)]
    refresh_at: u64,
    /// Until here the credential still serves requests while a refresh is in flight or
    /// backing off; always before its expiry.
    #[serde(rename = "u", default)]
    usable_until: u64,
    #[serde(rename = "l", default, skip_serializing_if = "Option::is_none")]
    lease: Option<LeaseRecord>,
    /// Lease ids handed out so far (the next lease is this + 1).
    #[serde(rename = "n", default)]
    leases: u64,
    /// Consecutive failed fetches.
    #[serde(rename = "f", default)]
    failures: u32,
    #[serde(rename = "bo", default)]
    backoff_until: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
struct LeaseRecord {
    id: u64,
    until: u64,
}

impl Record {
    fn live_lease(&self, now_ms: u64) -> Option<LeaseRecord> {
        self.lease.filter(|l| l.until > now_ms)
    }
    fn fresh(&self, now_ms: u64) -> Option<&str> {
        self.token.as_deref().filter(|_| now_ms < self.refresh_at)
    }
    fn usable(&self, now_ms: u64) -> Option<&str> {
        self.token.as_deref().filter(|_| now_ms < self.usable_until)
    }
}

fn read(store: &dyn SharedStore, key: &CredentialKey) -> (Option<Record>, Option<u32>) {
    match store.get(&key.store_key) {
        // A record of another format (older filter) is no record; it is overwritten.
        Some((bytes, cas)) => (maps_only::from_slice(&bytes).ok(), Some(cas)),
        None => (None, None),
    }
}

fn write(
    store: &dyn SharedStore,
    key: &CredentialKey,
    rec: &Record,
    cas: Option<u32>,
    now_ms: u64,
) -> StoreWrite {
    match serde_json::to_vec(rec) {
        Ok(bytes) => crate::host::write_shared(store, &key.store_key, &bytes, cas, now_ms),
        Err(_) => StoreWrite::Failed,
    }
}

/// Backoff after `failures` consecutive failures: none after the first (one immediate
/// retry absorbs a blip), then 1 s doubling up to [`MAX_BACKOFF_MS`].
pub fn backoff_ms(failures: u32) -> u64 {
    match failures {
        0 | 1 => 0,
        n => 1000u64
            .checked_shl(n.saturating_sub(2).min(16))
            .unwrap_or(MAX_BACKOFF_MS)
            .min(MAX_BACKOFF_MS),
    }
}

impl CredentialSpec {
    /// `env` reads the proxy's environment (std::env in the filter; a map in tests). `p` is
    /// the config path of this source, which names its policy.
    pub fn compile(
        c: &CredentialConfig,
        p: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<CredentialSpec, ConfigError> {
        let need_env = |field: &str, var: &Option<String>| -> Result<String, ConfigError> {
            let var = var
                .as_deref()
                .ok_or_else(|| cerr(format!("{p}.{field}"), "required for this source"))?;
            env(var).filter(|v| !v.is_empty()).ok_or_else(|| {
                cerr(
                    format!("{p}.{field}"),
                    format!("environment variable {var} is not set"),
                )
            })
        };
        let (client_id, client_secret, static_key) = match c.source {
            CredentialSource::Static => (
                String::new(),
                String::new(),
                need_env("static_key_env", &c.static_key_env)?,
            ),
            _ => {
                if c.token_endpoint.is_none() {
                    return Err(cerr(format!("{p}.token_endpoint"), "required for this source"));
                }
                let id = c
                    .client_id
                    .clone()
                    .filter(|i| !i.is_empty())
                    .ok_or_else(|| cerr(format!("{p}.client_id"), "required"))?;
                (
                    id,
                    need_env("client_secret_env", &c.client_secret_env)?,
                    String::new(),
                )
            }
        };
        if let Some(e) = &c.token_endpoint {
            if !e.path.starts_with('/') {
                return Err(cerr(format!("{p}.token_endpoint.path"), "must start with \"/\""));
            }
            if e.cluster.is_empty() {
                return Err(cerr(format!("{p}.token_endpoint.cluster"), "must not be empty"));
            }
        }
        if !matches!(c.header.as_str(), "authorization" | "api-key" | "x-api-key") {
            return Err(cerr(
                format!("{p}.header"),
                "must be authorization, api-key or x-api-key",
            ));
        }
        let mut spec = CredentialSpec {
            source: c.source,
            endpoint: c.token_endpoint.clone(),
            client_id,
            client_secret,
            static_key,
            scopes: c.scopes.clone(),
            audience: c.audience.clone(),
            resource: c.resource.clone(),
            header: c.header.clone(),
            refresh_before_s: c.refresh_before_s,
            selection: [0; 32],
        };
        spec.selection = spec.selection_digest(p);
        Ok(spec)
    }

    /// Everything that selects the credential: the policy (its config path), where the
    /// token request goes (cluster, authority, path) and the token request itself minus
    /// the caller's token: client authentication (client id and secret), grant type, token
    /// types, scope, audience, resource. Whatever changes what the IdP is asked for changes
    /// the key, so two tenants never share a credential.
    fn selection_digest(&self, policy_path: &str) -> [u8; 32] {
        let (headers, body) = self.token_request(None);
        let ep = self.endpoint.as_ref();
        let mut parts: Vec<&[u8]> = vec![
            b"llm-warden/cred/v2",
            policy_path.as_bytes(),
            self.source.name().as_bytes(),
            ep.map_or("", |e| e.cluster.as_str()).as_bytes(),
            ep.map_or("", |e| e.authority()).as_bytes(),
            ep.map_or("", |e| e.path.as_str()).as_bytes(),
            body.as_bytes(),
        ];
        for (k, v) in &headers {
            parts.push(k.as_bytes());
            parts.push(v.as_bytes());
        }
        digest(&parts)
    }

    /// The cache key of this source's credential; for token exchange, of `caller`'s
    /// exchanged credential. The caller part binds the configured issuer, the verified
    /// `iss` and `sub` and a digest of the caller's token: two tokens of one subject may
    /// carry different scopes or audiences, so an exchange is reused only for the very
    /// token it was made for (and never across issuers, even for an equal `sub`). None for
    /// token exchange without a caller.
    pub fn key(&self, caller: Option<&Caller<'_>>) -> Option<CredentialKey> {
        let prefix = format!("llm-warden/cred2/{}", hex(self.selection.get(..8)?));
        if self.source != CredentialSource::TokenExchange {
            return Some(CredentialKey {
                store_key: prefix,
                binding: hex(&self.selection),
            });
        }
        let c = caller?;
        let token = caller_token_digest(c.token);
        let (has_sub, sub): (&[u8], &[u8]) = match c.sub {
            Some(s) => (b"1", s.as_bytes()),
            None => (b"0", b""),
        };
        let bound = digest(&[
            &self.selection,
            c.issuer_name.as_bytes(),
            c.iss.as_bytes(),
            has_sub,
            sub,
            &token,
        ]);
        Some(self.slot_key(&prefix, bound))
    }

    fn slot_key(&self, prefix: &str, bound: [u8; 32]) -> CredentialKey {
        let mut first = [0u8; 8];
        first.copy_from_slice(bound.get(..8).unwrap_or(&[0; 8]));
        CredentialKey {
            store_key: format!("{prefix}/x/{}", u64::from_le_bytes(first) % EXCHANGE_SLOTS),
            binding: hex(&bound),
        }
    }

    /// How long a request that got [`Begin::Wait`] at `waiting_since_ms` may keep waiting
    /// before it is answered 503: one token call's timeout plus the lease margin (by then
    /// the caller it waits for has answered or lost its lease).
    pub fn wait_deadline_ms(&self, waiting_since_ms: u64) -> u64 {
        waiting_since_ms
            .saturating_add(self.endpoint.as_ref().map_or(0, |e| e.timeout_ms))
            .saturating_add(LEASE_MARGIN_MS)
    }

    /// A cached credential that needs no refresh yet (read-only, one shared-data read).
    pub fn lookup(&self, store: &dyn SharedStore, key: &CredentialKey, now_ms: u64) -> Option<String> {
        let (rec, _) = read(store, key);
        rec.filter(|r| r.binding == key.binding)?
            .fresh(now_ms)
            .map(str::to_string)
    }

    /// The next step for a request needing `key`'s credential (one shared-data read, plus a
    /// CAS write when it claims the lease). Only `Fetch` changes anything, so calling it
    /// again is harmless; waiting requests use [`Self::poll`], which never starts a call.
    pub fn begin(&self, store: &dyn SharedStore, key: &CredentialKey, now_ms: u64) -> Begin {
        let timeout = self.endpoint.as_ref().map_or(0, |e| e.timeout_ms);
        for _ in 0..CAS_ATTEMPTS {
            let (rec, cas) = read(store, key);
            let mut next = match rec {
                Some(r) if r.binding == key.binding => {
                    if let Some(t) = r.fresh(now_ms) {
                        return Begin::Cached(t.to_string());
                    }
                    let usable = r.usable(now_ms).map(|t| Begin::Cached(t.to_string()));
                    if r.live_lease(now_ms).is_some() {
                        return usable.unwrap_or(Begin::Wait);
                    }
                    if r.backoff_until > now_ms {
                        let left = r.backoff_until.saturating_sub(now_ms);
                        return usable.unwrap_or(Begin::Backoff {
                            retry_after_s: left.div_ceil(1000).max(1),
                        });
                    }
                    r
                }
                // Another caller's slot, busy: call without disturbing its single flight.
                Some(r) if r.live_lease(now_ms).is_some() => {
                    return Begin::Fetch(Lease {
                        id: 0,
                        recorded: false,
                    })
                }
                // Nothing, or another caller's idle slot: ours now.
                _ => Record {
                    binding: key.binding.clone(),
                    ..Record::default()
                },
            };
            let id = next.leases.saturating_add(1);
            next.leases = id;
            next.lease = Some(LeaseRecord {
                id,
                until: now_ms.saturating_add(timeout).saturating_add(LEASE_MARGIN_MS),
            });
            match write(store, key, &next, cas, now_ms) {
                StoreWrite::Written => return Begin::Fetch(Lease { id, recorded: true }),
                StoreWrite::CasMismatch => continue,
                StoreWrite::Failed => {
                    return Begin::Fetch(Lease {
                        id: 0,
                        recorded: false,
                    })
                }
            }
        }
        // Others keep writing this record: one of them is fetching; look again later.
        Begin::Wait
    }

    /// Re-check of a request that got [`Begin::Wait`] (read-only, one shared-data read; it
    /// never starts a call): `Ready` once the awaited call cached a credential, `Pending`
    /// while a call is in flight for `key`, `Failed` when none is and no credential came
    /// (the awaited call failed, or its lease expired): answer 503.
    pub fn poll(&self, store: &dyn SharedStore, key: &CredentialKey, now_ms: u64) -> Poll {
        let (rec, _) = read(store, key);
        let Some(r) = rec.filter(|r| r.binding == key.binding) else {
            return Poll::Failed;
        };
        if let Some(t) = r.usable(now_ms) {
            return Poll::Ready(t.to_string());
        }
        if r.live_lease(now_ms).is_some() {
            Poll::Pending
        } else {
            Poll::Failed
        }
    }

    /// Records the token endpoint's answer for `key` and releases `lease`. A credential is
    /// cached (refresh at 80% of its life at the latest); a failure counts towards backoff.
    /// The fetching request uses its own answer whatever happens here.
    pub fn complete(
        &self,
        store: &dyn SharedStore,
        key: &CredentialKey,
        lease: Lease,
        answer: &Result<TokenAnswer, TokenError>,
        now_ms: u64,
    ) {
        for _ in 0..CAS_ATTEMPTS {
            let (rec, cas) = read(store, key);
            let mine = rec.as_ref().filter(|r| r.binding == key.binding).cloned();
            let foreign_busy = rec
                .as_ref()
                .is_some_and(|r| r.binding != key.binding && r.live_lease(now_ms).is_some());
            let mut next = match (answer, mine) {
                (Ok(_), _) if foreign_busy => return,
                (Ok(a), mine) => {
                    let mut r = mine.unwrap_or_else(|| Record {
                        binding: key.binding.clone(),
                        ..Record::default()
                    });
                    self.fill(&mut r, a, now_ms);
                    r.failures = 0;
                    r.backoff_until = 0;
                    r
                }
                // Nothing of ours to record a failure on.
                (Err(_), None) => return,
                (Err(_), Some(mut r)) => {
                    r.failures = r.failures.saturating_add(1);
                    r.backoff_until = r.backoff_until.max(now_ms.saturating_add(backoff_ms(r.failures)));
                    r
                }
            };
            if lease.recorded && next.lease.is_some_and(|l| l.id == lease.id) {
                next.lease = None;
            }
            match write(store, key, &next, cas, now_ms) {
                StoreWrite::CasMismatch => continue,
                StoreWrite::Written | StoreWrite::Failed => return,
            }
        }
    }

    /// Releases `lease` without an answer (the request went away before its call
    /// returned), so waiting requests need not wait for the lease to expire.
    pub fn abandon(&self, store: &dyn SharedStore, key: &CredentialKey, lease: Lease) {
        if !lease.recorded {
            return;
        }
        for _ in 0..CAS_ATTEMPTS {
            let (Some(mut r), cas) = read(store, key) else {
                return;
            };
            if r.binding != key.binding || r.lease.is_none_or(|l| l.id != lease.id) {
                return;
            }
            r.lease = None;
            // The record exists here (cas is Some), so no creation and no clock is needed.
            if write(store, key, &r, cas, 0) != StoreWrite::CasMismatch {
                return;
            }
        }
    }

    /// Puts `a` into `r`: refresh `refresh_before_s` before expiry but at 80% of the
    /// lifetime at the latest; still usable halfway between refresh and expiry.
    fn fill(&self, r: &mut Record, a: &TokenAnswer, now_ms: u64) {
        let life = a.lifetime_s.saturating_mul(1000);
        let ahead = self.refresh_before_s.saturating_mul(1000).min(life / 5);
        let expires = now_ms.saturating_add(life);
        r.token = Some(a.token.clone());
        r.refresh_at = expires.saturating_sub(ahead);
        r.usable_until = expires.saturating_sub(ahead / 2);
    }

    /// The header to send upstream for `credential`.
    pub fn header_value(&self, credential: &str) -> (String, String) {
        match self.header.as_str() {
            "authorization" => ("authorization".into(), format!("Bearer {credential}")),
            other => (other.to_string(), credential.to_string()),
        }
    }

    pub fn static_key(&self) -> Option<&str> {
        (self.source == CredentialSource::Static).then_some(self.static_key.as_str())
    }

    /// The token request: headers (client authentication) and form body.
    pub fn token_request(&self, subject_token: Option<&str>) -> (Vec<(String, String)>, String) {
        use base64::Engine;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            form(&self.client_id),
            form(&self.client_secret)
        ));
        let headers = vec![
            (
                "content-type".to_string(),
                "application/x-www-form-urlencoded".to_string(),
            ),
            ("authorization".to_string(), format!("Basic {basic}")),
            ("accept".to_string(), "application/json".to_string()),
        ];
        let mut fields: Vec<(&str, String)> = Vec::new();
        match self.source {
            CredentialSource::TokenExchange => {
                fields.push((
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange".into(),
                ));
                fields.push(("subject_token", subject_token.unwrap_or_default().to_string()));
                fields.push((
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:jwt".into(),
                ));
                fields.push(("requested_token_type", ACCESS_TOKEN_TYPE.into()));
            }
            _ => fields.push(("grant_type", "client_credentials".into())),
        }
        if !self.scopes.is_empty() {
            fields.push(("scope", self.scopes.join(" ")));
        }
        if let Some(a) = &self.audience {
            fields.push(("audience", a.clone()));
        }
        if let Some(r) = &self.resource {
            fields.push(("resource", r.clone()));
        }
        let body = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", form(v)))
            .collect::<Vec<_>>()
            .join("&");
        (headers, body)
    }
}

/// application/x-www-form-urlencoded value encoding.
fn form(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// A usable token-endpoint answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenAnswer {
    pub token: String,
    /// Seconds, between 1 and [`MAX_LIFETIME_S`].
    pub lifetime_s: u64,
    /// No `expires_in`: [`DEFAULT_LIFETIME_S`] was assumed.
    pub lifetime_defaulted: bool,
    /// Under [`SHORT_LIFETIME_S`]: used, but worth a metric.
    pub short_lived: bool,
}

/// Why a token-endpoint answer was refused. Messages name no token or secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a 200 (None: no answer at all, e.g. timeout or reset).
    Status(Option<u16>),
    NotJson,
    NoAccessToken,
    /// `token_type` is not `Bearer`, or `issued_token_type` is not an access token.
    NotAnAccessToken,
    /// `expires_in` is not a number of seconds ≥ 1.
    BadLifetime,
}

impl TokenError {
    /// Counter name for this kind of failure.
    pub fn metric(self) -> &'static str {
        match self {
            TokenError::Status(_) => "llm_warden.credentials.token_error.status",
            TokenError::NotJson => "llm_warden.credentials.token_error.not_json",
            TokenError::NoAccessToken => "llm_warden.credentials.token_error.no_access_token",
            TokenError::NotAnAccessToken => "llm_warden.credentials.token_error.token_type",
            TokenError::BadLifetime => "llm_warden.credentials.token_error.expires_in",
        }
    }
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::Status(Some(s)) => write!(f, "token endpoint answered {s}"),
            TokenError::Status(None) => write!(f, "token endpoint answered nothing"),
            TokenError::NotJson => write!(f, "token response is not JSON"),
            TokenError::NoAccessToken => write!(f, "token response has no usable access_token"),
            TokenError::NotAnAccessToken => {
                write!(f, "token response is not a Bearer access token")
            }
            TokenError::BadLifetime => write!(f, "token response has an unusable expires_in"),
        }
    }
}

/// `expires_in` as seconds: a JSON number (integer or float, truncated) or a string of
/// decimal digits (optionally with a fraction); missing or null gets
/// [`DEFAULT_LIFETIME_S`]; anything under 1 s (zero, negative) or not a number is refused;
/// more than [`MAX_LIFETIME_S`] is cut to it. Returns (seconds, defaulted).
fn lifetime(v: Option<&serde_json::Value>) -> Result<(u64, bool), TokenError> {
    use serde_json::Value;
    let seconds = match v {
        None | Some(Value::Null) => return Ok((DEFAULT_LIFETIME_S, true)),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => {
            let s = s.trim();
            let (int, frac) = s.split_once('.').unwrap_or((s, ""));
            let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
            if int.is_empty() || !digits(int) || !digits(frac) || s.ends_with('.') {
                return Err(TokenError::BadLifetime);
            }
            // Whole seconds from the digits (a fraction is truncated below anyway): no
            // float parse, whose decimal-to-float code and tables cost the .wasm 18 KB.
            let whole = int.bytes().fold(0u64, |acc, b| {
                acc.saturating_mul(10)
                    .saturating_add(u64::from(b.wrapping_sub(b'0')))
            });
            Some(whole as f64)
        }
        Some(_) => None,
    }
    .filter(|f| f.is_finite() && *f >= 1.0)
    .ok_or(TokenError::BadLifetime)?;
    let capped = seconds.min(MAX_LIFETIME_S as f64);
    // In range by the filter and the cap: the cast truncates a fraction, nothing else.
    Ok((capped as u64, false))
}

/// A token endpoint's answer (RFC 6749 §5.1, RFC 8693 §2.2.1). Only a Bearer access token
/// is usable: `token_type` must be `Bearer` (case-insensitive; it is required, so a missing
/// one is refused; `N_A`, `mac`, `DPoP` are refused), and `issued_token_type`, when present
/// (token exchange), must be `urn:ietf:params:oauth:token-type:access_token`, which is what
/// the exchange requests.
pub fn parse_token_answer(status: Option<u16>, body: &[u8]) -> Result<TokenAnswer, TokenError> {
    if status != Some(200) {
        return Err(TokenError::Status(status));
    }
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| TokenError::NotJson)?;
    let token = v
        .get("access_token")
        .and_then(serde_json::Value::as_str)
        .filter(|t| !t.is_empty() && t.len() <= 16 * 1024 && t.bytes().all(|b| (0x21..0x7f).contains(&b)))
        .ok_or(TokenError::NoAccessToken)?;
    let bearer = v
        .get("token_type")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case("bearer"));
    let issued_ok = match v.get("issued_token_type") {
        None => true,
        Some(t) => t.as_str() == Some(ACCESS_TOKEN_TYPE),
    };
    if !bearer || !issued_ok {
        return Err(TokenError::NotAnAccessToken);
    }
    let (lifetime_s, lifetime_defaulted) = lifetime(v.get("expires_in"))?;
    Ok(TokenAnswer {
        token: token.to_string(),
        lifetime_s,
        lifetime_defaulted,
        short_lived: lifetime_s < SHORT_LIFETIME_S,
    })
}

/// The reply when no upstream credential could be had: the request is never sent without it.
pub fn unavailable_reply() -> crate::outcome::reason::Reply {
    crate::outcome::reason::Reply {
        status: 503,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("retry-after".into(), "5".into()),
        ],
        body: serde_json::json!({"error": {"message": "The upstream credential could not be obtained. Retry later.",
            "type": "server_error", "param": null, "code": "upstream_credential_unavailable"}})
        .to_string(),
    }
}

/// The subject of an obtained JWT credential, for the audit chain (it is our own token
/// from our token endpoint; nothing is decided on it).
pub fn credential_subject(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("sub")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::memory::MemStore;
    use serde_json::json;

    fn env(name: &str) -> Option<String> {
        match name {
            "SECRET" => Some("s3cr&t =".into()),
            "SECRET_B" => Some("other-secret".into()),
            "KEY" => Some("sk-static-123".into()),
            _ => None,
        }
    }

    fn spec_at(v: serde_json::Value, path: &str) -> Result<CredentialSpec, ConfigError> {
        CredentialSpec::compile(&serde_json::from_value(v).unwrap(), path, &env)
    }

    fn spec(v: serde_json::Value) -> Result<CredentialSpec, ConfigError> {
        spec_at(v, "c")
    }

    fn cc_json() -> serde_json::Value {
        json!({"source": "client_credentials", "client_id": "gateway",
            "client_secret_env": "SECRET", "scopes": ["llm.invoke", "models.read"], "audience": "https://llm",
            "token_endpoint": {"cluster": "idp", "path": "/token"}})
    }

    fn cc() -> CredentialSpec {
        spec(cc_json()).unwrap()
    }

    fn with(mut base: serde_json::Value, field: &str, value: serde_json::Value) -> serde_json::Value {
        base[field] = value;
        base
    }

    fn answer(token: &str, lifetime_s: u64) -> Result<TokenAnswer, TokenError> {
        Ok(TokenAnswer {
            token: token.into(),
            lifetime_s,
            lifetime_defaulted: false,
            short_lived: lifetime_s < SHORT_LIFETIME_S,
        })
    }

    /// Fetches (as the single caller) and caches `token` for `s` under `key`.
    fn fill(s: &CredentialSpec, store: &MemStore, key: &CredentialKey, token: &str, now: u64) {
        let Begin::Fetch(lease) = s.begin(store, key, now) else {
            panic!("expected to fetch")
        };
        s.complete(store, key, lease, &answer(token, 300), now);
    }

    #[test]
    fn two_workers_cold_on_one_credential_make_one_call() {
        // Both read "no record"; the second claims the lease before the first writes. Envoy's
        // CAS does not guard an absent key, so without the creation lock both would fetch.
        let s = cc();
        let key = s.key(None).unwrap();
        let store = MemStore::default();
        let second = std::cell::RefCell::new(None);
        let racing = crate::host::racing::RaceOnFirstAbsent::new(&store, &key.store_key, |st| {
            *second.borrow_mut() = Some(s.begin(st, &key, 1_000));
        });
        let first = s.begin(&racing, &key, 1_000);
        assert!(racing.raced());
        drop(racing);
        let second = second.into_inner().unwrap();
        assert!(
            matches!(second, Begin::Fetch(Lease { recorded: true, .. })),
            "{second:?}"
        );
        assert!(matches!(first, Begin::Wait), "{first:?}");
    }

    #[test]
    fn client_credentials_request() {
        let (headers, body) = cc().token_request(None);
        assert_eq!(
            body,
            "grant_type=client_credentials&scope=llm.invoke+models.read&audience=https%3A%2F%2Fllm"
        );
        let auth = headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .unwrap()
            .1
            .clone();
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(
            decoded, b"gateway:s3cr%26t+%3D",
            "RFC 6749 2.3.1: form-encoded before Basic"
        );
        let s = spec(with(cc_json(), "resource", json!("https://llm/v1"))).unwrap();
        assert!(s
            .token_request(None)
            .1
            .ends_with("&resource=https%3A%2F%2Fllm%2Fv1"));
    }

    #[test]
    fn token_exchange_request() {
        let s = spec(
            json!({"source": "token_exchange", "client_id": "gw", "client_secret_env": "SECRET",
            "token_endpoint": {"cluster": "idp", "path": "/token"}}),
        )
        .unwrap();
        let (_, body) = s.token_request(Some("eyJ.caller.tok"));
        assert!(body.starts_with("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=eyJ.caller.tok&"));
        assert!(body.contains("subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt"));
    }

    #[test]
    fn config_errors() {
        let e = spec(
            json!({"source": "client_credentials", "client_id": "g", "client_secret_env": "NOPE",
            "token_endpoint": {"cluster": "idp", "path": "/token"}}),
        )
        .unwrap_err();
        assert_eq!(e.path, "c.client_secret_env");
        assert!(e.message.contains("NOPE is not set"));
        let e =
            spec(json!({"source": "client_credentials", "client_id": "g", "client_secret_env": "SECRET"}))
                .unwrap_err();
        assert_eq!(e.path, "c.token_endpoint");
        let e = spec(json!({"source": "static", "static_key_env": "KEY", "header": "cookie"})).unwrap_err();
        assert_eq!(e.path, "c.header");
        let s = spec(json!({"source": "static", "static_key_env": "KEY", "header": "api-key"})).unwrap();
        assert_eq!(
            s.header_value(s.static_key().unwrap()),
            ("api-key".into(), "sk-static-123".into())
        );
        assert!(
            !format!("{s:?}").contains("sk-static"),
            "secrets never in debug output"
        );
    }

    #[test]
    fn every_selecting_field_is_in_the_key() {
        let base = cc().key(None).unwrap();
        assert_eq!(cc().key(None).unwrap(), base, "stable across compiles");
        let ep = |f: &str, v: serde_json::Value| {
            let mut e = json!({"cluster": "idp", "path": "/token"});
            e[f] = v;
            with(cc_json(), "token_endpoint", e)
        };
        let variants = [
            (
                "policy",
                spec_at(cc_json(), "authorization.policies.other.upstream_credentials"),
            ),
            ("cluster", spec(ep("cluster", json!("idp2")))),
            ("authority", spec(ep("authority", json!("tenant-b.idp.example")))),
            ("path", spec(ep("path", json!("/realms/b/token")))),
            ("client_id", spec(with(cc_json(), "client_id", json!("tenant-b")))),
            (
                "client secret",
                spec(with(cc_json(), "client_secret_env", json!("SECRET_B"))),
            ),
            ("scope", spec(with(cc_json(), "scopes", json!(["llm.invoke"])))),
            (
                "audience",
                spec(with(cc_json(), "audience", json!("https://other"))),
            ),
            (
                "resource",
                spec(with(cc_json(), "resource", json!("https://llm/v1"))),
            ),
        ];
        for (what, s) in variants {
            let k = s.unwrap().key(None).unwrap();
            assert_ne!(k.store_key, base.store_key, "{what} changes the shared-data key");
            assert_ne!(k.binding, base.binding, "{what} changes the binding");
        }
        // The authority defaults to the cluster name (what the request is sent with).
        assert_eq!(
            spec(ep("authority", json!("idp"))).unwrap().key(None).unwrap(),
            base
        );
        // The grant type: an exchange source is keyed apart even with the same client.
        let x = spec(with(cc_json(), "source", json!("token_exchange"))).unwrap();
        let caller = Caller {
            issuer_name: "idp",
            iss: "https://idp",
            sub: Some("alice"),
            token: "t",
        };
        assert!(!x
            .key(Some(&caller))
            .unwrap()
            .store_key
            .starts_with(&base.store_key));
        assert_eq!(x.key(None), None, "an exchange needs a caller");
    }

    #[test]
    fn two_tenants_on_one_idp_cluster_never_share_a_credential() {
        let store = MemStore::default();
        let a = spec_at(cc_json(), "authorization.policies.tenant-a.upstream_credentials").unwrap();
        let b_cfg = with(
            with(cc_json(), "client_id", json!("tenant-b")),
            "audience",
            json!("https://llm-b"),
        );
        let b = spec_at(b_cfg, "authorization.policies.tenant-b.upstream_credentials").unwrap();
        let (ka, kb) = (a.key(None).unwrap(), b.key(None).unwrap());
        fill(&a, &store, &ka, "cred-a", 1_000_000);
        assert_eq!(a.begin(&store, &ka, 1_000_100), Begin::Cached("cred-a".into()));
        assert!(
            matches!(b.begin(&store, &kb, 1_000_100), Begin::Fetch(_)),
            "tenant b fetches its own"
        );
        assert_eq!(b.lookup(&store, &kb, 1_000_100), None);
        // Even a record under b's shared-data key made for a is never served to b.
        let forged = CredentialKey {
            store_key: kb.store_key.clone(),
            binding: ka.binding.clone(),
        };
        let store2 = MemStore::default();
        fill(&a, &store2, &forged, "cred-a", 1_000_000);
        assert_eq!(b.lookup(&store2, &kb, 1_000_100), None);
        assert!(matches!(b.begin(&store2, &kb, 1_000_100), Begin::Fetch(_)));
    }

    #[test]
    fn exchanged_credentials_are_per_issuer_subject_and_token() {
        let store = MemStore::default();
        let x = spec(with(cc_json(), "source", json!("token_exchange"))).unwrap();
        let alice_a = Caller {
            issuer_name: "corp",
            iss: "https://corp.example",
            sub: Some("alice"),
            token: "tok-1",
        };
        // Same `sub` (and even the same token bytes) from another issuer.
        let alice_b = Caller {
            issuer_name: "partner",
            iss: "https://partner.example",
            ..alice_a
        };
        let same_name_other_iss = Caller {
            iss: "https://corp.example/other",
            ..alice_a
        };
        let other_token = Caller {
            token: "tok-2",
            ..alice_a
        };
        let no_sub = Caller { sub: None, ..alice_a };
        let empty_sub = Caller {
            sub: Some(""),
            ..alice_a
        };
        let ka = x.key(Some(&alice_a)).unwrap();
        fill(&x, &store, &ka, "x-alice-corp", 5_000);
        assert_eq!(x.lookup(&store, &ka, 5_000).as_deref(), Some("x-alice-corp"));
        for c in [alice_b, same_name_other_iss, other_token, no_sub] {
            let k = x.key(Some(&c)).unwrap();
            assert_ne!(k.binding, ka.binding);
            assert_eq!(x.lookup(&store, &k, 5_000), None, "{c:?}");
            assert!(matches!(x.begin(&store, &k, 5_000), Begin::Fetch(_)));
        }
        assert_ne!(x.key(Some(&no_sub)), x.key(Some(&empty_sub)));
    }

    #[test]
    fn callers_sharing_a_slot_never_see_each_others_credential() {
        let x = spec(with(cc_json(), "source", json!("token_exchange"))).unwrap();
        let caller = |t: &'static str| Caller {
            issuer_name: "idp",
            iss: "https://idp",
            sub: Some("same"),
            token: t,
        };
        let first = x.key(Some(&caller("t-0"))).unwrap();
        let tokens: Vec<String> = (1..20_000).map(|i| format!("t-{i}")).collect();
        let other = tokens
            .iter()
            .map(|t| {
                x.key(Some(&Caller {
                    token: t,
                    ..caller("")
                }))
                .unwrap()
            })
            .find(|k| k.store_key == first.store_key)
            .expect("a slot collision among 20000 tokens");
        let store = MemStore::default();
        fill(&x, &store, &first, "x-first", 1_000);
        assert_eq!(x.lookup(&store, &other, 1_000), None);
        // The other caller takes the idle slot over; the first caller then fetches again.
        fill(&x, &store, &other, "x-other", 1_000);
        assert_eq!(x.lookup(&store, &first, 1_000), None);
        // While one caller's fetch is in flight, the other fetches unrecorded, and its
        // answer does not disturb the first's lease.
        let Begin::Fetch(lease) = x.begin(&store, &first, 2_000) else {
            panic!()
        };
        let Begin::Fetch(unrecorded) = x.begin(&store, &other, 2_000) else {
            panic!()
        };
        assert!(!unrecorded.recorded);
        x.complete(&store, &other, unrecorded, &answer("x-other-2", 300), 2_100);
        assert_eq!(x.begin(&store, &first, 2_200), Begin::Wait);
        x.complete(&store, &first, lease, &answer("x-first-2", 300), 2_300);
        assert_eq!(x.begin(&store, &first, 2_400), Begin::Cached("x-first-2".into()));
    }

    fn ok_body(expires_in: serde_json::Value) -> Vec<u8> {
        let mut v = json!({"access_token": "abc", "token_type": "Bearer"});
        if !expires_in.is_null() {
            v["expires_in"] = expires_in;
        }
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn odd_expires_in_answers() {
        let life = |v: serde_json::Value| parse_token_answer(Some(200), &ok_body(v)).map(|a| a.lifetime_s);
        assert_eq!(life(json!(3600)), Ok(3600));
        assert_eq!(life(json!("3600")), Ok(3600));
        assert_eq!(life(json!(" 3600 ")), Ok(3600));
        assert_eq!(life(json!(3600.0)), Ok(3600));
        assert_eq!(life(json!(3600.9)), Ok(3600));
        assert_eq!(life(json!("3600.5")), Ok(3600));
        assert_eq!(life(json!("1.999")), Ok(1));
        assert_eq!(life(json!(5)), Ok(5));
        assert_eq!(life(json!(1e12)), Ok(MAX_LIFETIME_S), "huge is capped");
        assert_eq!(life(json!(u64::MAX)), Ok(MAX_LIFETIME_S));
        assert_eq!(life(json!("99999999999999999999999")), Ok(MAX_LIFETIME_S));
        for bad in [
            json!(-5),
            json!(-0.5),
            json!(0),
            json!(0.5),
            json!("0"),
            // Under 1 s even where a float parse would round it up to 1.0.
            json!("0.99999999999999999"),
            json!("-5"),
            json!("+5"),
            json!("1e3"),
            json!("inf"),
            json!("NaN"),
            json!("5."),
            json!(".5"),
            json!(""),
            json!("soon"),
            json!(true),
            json!([300]),
            json!({"s": 300}),
        ] {
            assert_eq!(life(bad.clone()), Err(TokenError::BadLifetime), "{bad}");
        }
        let missing = parse_token_answer(Some(200), &ok_body(json!(null))).unwrap();
        assert_eq!(
            (missing.lifetime_s, missing.lifetime_defaulted),
            (DEFAULT_LIFETIME_S, true)
        );
        let explicit_null = parse_token_answer(
            Some(200),
            br#"{"access_token":"abc","token_type":"Bearer","expires_in":null}"#,
        )
        .unwrap();
        assert_eq!(explicit_null.lifetime_s, DEFAULT_LIFETIME_S);
        assert!(
            parse_token_answer(Some(200), &ok_body(json!(5)))
                .unwrap()
                .short_lived
        );
        assert!(
            !parse_token_answer(Some(200), &ok_body(json!(10)))
                .unwrap()
                .short_lived
        );
        // A number JSON cannot hold as f64 is not JSON serde accepts: refused as such.
        assert!(parse_token_answer(
            Some(200),
            br#"{"access_token":"abc","token_type":"Bearer","expires_in":1e400}"#
        )
        .is_err());
    }

    #[test]
    fn only_bearer_access_tokens_are_accepted() {
        let parse = |v: serde_json::Value| parse_token_answer(Some(200), &serde_json::to_vec(&v).unwrap());
        let tok = |extra: serde_json::Value| {
            let mut v = json!({"access_token": "abc", "expires_in": 300});
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            v
        };
        assert!(parse(tok(json!({"token_type": "Bearer"}))).is_ok());
        assert!(
            parse(tok(json!({"token_type": "bearer"}))).is_ok(),
            "case-insensitive"
        );
        assert!(parse(tok(
            json!({"token_type": "Bearer", "issued_token_type": ACCESS_TOKEN_TYPE})
        ))
        .is_ok());
        for bad in [
            json!({}),
            json!({"token_type": "mac"}),
            json!({"token_type": "DPoP"}),
            json!({"token_type": "N_A", "issued_token_type": ACCESS_TOKEN_TYPE}),
            json!({"token_type": "N_A", "issued_token_type": "urn:ietf:params:oauth:token-type:id_token"}),
            json!({"token_type": "Bearer", "issued_token_type": "urn:ietf:params:oauth:token-type:refresh_token"}),
            json!({"token_type": "Bearer", "issued_token_type": "urn:ietf:params:oauth:token-type:jwt"}),
            json!({"token_type": ["Bearer"]}),
        ] {
            assert_eq!(
                parse(tok(bad.clone())),
                Err(TokenError::NotAnAccessToken),
                "{bad}"
            );
        }
        assert_eq!(
            TokenError::NotAnAccessToken.metric(),
            "llm_warden.credentials.token_error.token_type"
        );
    }

    #[test]
    fn token_responses() {
        let ok = parse_token_answer(
            Some(200),
            br#"{"access_token":"abc","token_type":"Bearer","expires_in":120}"#,
        )
        .unwrap();
        assert_eq!((ok.token.as_str(), ok.lifetime_s), ("abc", 120));
        assert_eq!(
            parse_token_answer(Some(401), b"{}"),
            Err(TokenError::Status(Some(401)))
        );
        assert_eq!(parse_token_answer(None, b""), Err(TokenError::Status(None)));
        assert_eq!(
            parse_token_answer(Some(200), br#"{"access_token":"a b\r\nx","token_type":"Bearer"}"#),
            Err(TokenError::NoAccessToken),
            "no header injection"
        );
        assert_eq!(parse_token_answer(Some(200), b"<html>"), Err(TokenError::NotJson));
        let msg = parse_token_answer(Some(200), br#"{"access_token":"sekrit","token_type":"mac"}"#)
            .unwrap_err()
            .to_string();
        assert!(!msg.contains("sekrit"), "errors never carry the token");
    }

    #[test]
    fn refresh_at_80_percent_of_short_lives() {
        let store = MemStore::default();
        let s = cc(); // refresh_before_s 60
        let k = s.key(None).unwrap();
        let Begin::Fetch(lease) = s.begin(&store, &k, 0) else {
            panic!()
        };
        s.complete(&store, &k, lease, &answer("short", 5), 0);
        assert_eq!(s.begin(&store, &k, 3_999), Begin::Cached("short".into()));
        assert!(
            matches!(s.begin(&store, &k, 4_000), Begin::Fetch(_)),
            "refresh at 4 s"
        );
        // While that refresh is in flight, the old one still serves (to 4.5 s), then waits.
        assert_eq!(s.begin(&store, &k, 4_400), Begin::Cached("short".into()));
        assert_eq!(s.begin(&store, &k, 4_500), Begin::Wait);
        // A long life refreshes refresh_before_s before expiry.
        let store = MemStore::default();
        let Begin::Fetch(lease) = s.begin(&store, &k, 0) else {
            panic!()
        };
        s.complete(&store, &k, lease, &answer("long", 3600), 0);
        assert_eq!(s.lookup(&store, &k, 3_539_999).as_deref(), Some("long"));
        assert_eq!(s.lookup(&store, &k, 3_540_000), None);
        // 10 requests 0.1 s apart on a 5 s credential: one fetch.
        let store = MemStore::default();
        let mut fetches = 0;
        for i in 0..10 {
            if let Begin::Fetch(l) = s.begin(&store, &k, 10_000 + i * 100) {
                fetches += 1;
                s.complete(&store, &k, l, &answer("five", 5), 10_000 + i * 100);
            }
        }
        assert_eq!(fetches, 1);
    }

    #[test]
    fn single_flight_one_fetch_serves_every_waiter() {
        let store = MemStore::default();
        let s = cc(); // timeout 3000 ms
        let k = s.key(None).unwrap();
        let steps: Vec<Begin> = (0..8).map(|_| s.begin(&store, &k, 1_000)).collect();
        assert_eq!(steps.iter().filter(|b| matches!(b, Begin::Fetch(_))).count(), 1);
        assert_eq!(steps.iter().filter(|b| **b == Begin::Wait).count(), 7);
        let Some(Begin::Fetch(lease)) = steps.first().cloned() else {
            panic!()
        };
        assert_eq!(
            s.begin(&store, &k, 1_500),
            Begin::Wait,
            "idempotent while waiting"
        );
        s.complete(&store, &k, lease, &answer("one", 300), 1_600);
        for _ in 0..7 {
            assert_eq!(s.begin(&store, &k, 1_700), Begin::Cached("one".into()));
        }
        assert_eq!(s.wait_deadline_ms(1_000), 1_000 + 3_000 + LEASE_MARGIN_MS);
    }

    #[test]
    fn waiting_requests_poll_without_calling() {
        let store = MemStore::default();
        let s = cc();
        let k = s.key(None).unwrap();
        assert_eq!(s.poll(&store, &k, 0), Poll::Failed, "nothing in flight");
        let Begin::Fetch(lease) = s.begin(&store, &k, 0) else {
            panic!()
        };
        assert_eq!(s.begin(&store, &k, 10), Begin::Wait);
        for now in [20, 100, 3_999] {
            assert_eq!(s.poll(&store, &k, now), Poll::Pending);
        }
        assert_eq!(s.poll(&store, &k, 4_000), Poll::Failed, "the lease expired");
        s.complete(&store, &k, lease, &answer("late", 300), 4_100);
        assert_eq!(s.poll(&store, &k, 4_200), Poll::Ready("late".into()));
        // The awaited call fails: waiters fail too, even though the next request may retry.
        let store = MemStore::default();
        let Begin::Fetch(lease) = s.begin(&store, &k, 0) else {
            panic!()
        };
        s.complete(&store, &k, lease, &Err(TokenError::Status(Some(500))), 50);
        assert_eq!(s.poll(&store, &k, 60), Poll::Failed);
        // Polls never claim the lease.
        assert!(matches!(s.begin(&store, &k, 70), Begin::Fetch(_)));
    }

    #[test]
    fn a_lost_call_cannot_wedge_a_key() {
        let store = MemStore::default();
        let s = cc();
        let k = s.key(None).unwrap();
        let Begin::Fetch(lost) = s.begin(&store, &k, 0) else {
            panic!()
        };
        assert_eq!(s.begin(&store, &k, 3_999), Begin::Wait);
        let Begin::Fetch(second) = s.begin(&store, &k, 4_000) else {
            panic!("lease expires at timeout + margin")
        };
        // The lost call answering late does not release the new holder's lease.
        s.complete(&store, &k, lost, &Err(TokenError::Status(None)), 4_100);
        assert_eq!(s.begin(&store, &k, 4_200), Begin::Wait);
        s.complete(&store, &k, second, &answer("two", 300), 4_300);
        assert_eq!(s.begin(&store, &k, 4_400), Begin::Cached("two".into()));
        // A holder that goes away gives its lease back.
        let store = MemStore::default();
        let Begin::Fetch(gone) = s.begin(&store, &k, 0) else {
            panic!()
        };
        s.abandon(&store, &k, gone);
        assert!(matches!(s.begin(&store, &k, 1), Begin::Fetch(_)));
    }

    #[test]
    fn errors_back_off_exponentially() {
        assert_eq!(
            (1..=9).map(backoff_ms).collect::<Vec<_>>(),
            [0, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        assert_eq!(backoff_ms(u32::MAX), MAX_BACKOFF_MS);
        let store = MemStore::default();
        let s = cc();
        let k = s.key(None).unwrap();
        let fail = |now: u64| {
            let Begin::Fetch(l) = s.begin(&store, &k, now) else {
                panic!("expected a fetch at {now}")
            };
            s.complete(&store, &k, l, &Err(TokenError::Status(Some(503))), now);
        };
        fail(0);
        fail(10); // one immediate retry absorbs a blip
        assert_eq!(s.begin(&store, &k, 20), Begin::Backoff { retry_after_s: 1 });
        assert_eq!(s.begin(&store, &k, 1_009), Begin::Backoff { retry_after_s: 1 });
        fail(1_010);
        assert_eq!(s.begin(&store, &k, 2_000), Begin::Backoff { retry_after_s: 2 });
        let Begin::Fetch(l) = s.begin(&store, &k, 3_010) else {
            panic!()
        };
        s.complete(&store, &k, l, &answer("back", 300), 3_020);
        assert_eq!(s.begin(&store, &k, 3_030), Begin::Cached("back".into()));
        // Success reset the count: the next failure allows an immediate retry again.
        let late = 3_020 + 240_000;
        fail(late);
        assert!(matches!(s.begin(&store, &k, late + 1), Begin::Fetch(_)));
    }

    #[test]
    fn a_valid_credential_serves_during_backoff() {
        let store = MemStore::default();
        let s = cc();
        let k = s.key(None).unwrap();
        fill(&s, &store, &k, "old", 0);
        // In the refresh window (240 s..270 s usable), refreshes fail twice.
        for now in [240_000, 240_010] {
            let Begin::Fetch(l) = s.begin(&store, &k, now) else {
                panic!()
            };
            s.complete(&store, &k, l, &Err(TokenError::Status(Some(500))), now);
        }
        assert_eq!(s.begin(&store, &k, 240_020), Begin::Cached("old".into()));
        assert_eq!(
            s.begin(&store, &k, 270_000),
            Begin::Fetch(Lease {
                id: 4,
                recorded: true
            })
        );
    }

    /// A store whose every conditional write loses the race, or that refuses writes.
    struct Hostile(StoreWrite, MemStore);
    impl SharedStore for Hostile {
        fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            self.1.get(key)
        }
        fn set(&self, _: &str, _: &[u8], _: Option<u32>) -> StoreWrite {
            self.0
        }
    }

    #[test]
    fn store_trouble_never_blocks_or_wedges() {
        let s = cc();
        let k = s.key(None).unwrap();
        let contended = Hostile(StoreWrite::CasMismatch, MemStore::default());
        assert_eq!(s.begin(&contended, &k, 0), Begin::Wait);
        let broken = Hostile(StoreWrite::Failed, MemStore::default());
        let Begin::Fetch(l) = s.begin(&broken, &k, 0) else {
            panic!()
        };
        assert!(!l.recorded);
        s.complete(&broken, &k, l, &answer("x", 300), 0);
        s.abandon(&broken, &k, l);
        // Garbage in the slot (an older record format) is overwritten.
        let store = MemStore::default();
        store.set(
            k.store_key(),
            b"{\"caller\":0,\"token\":\"old\",\"expires_at\":9}",
            None,
        );
        assert_eq!(s.lookup(&store, &k, 0), None);
        fill(&s, &store, &k, "new", 0);
        assert_eq!(s.lookup(&store, &k, 0).as_deref(), Some("new"));
    }

    #[test]
    fn subject_of_obtained_token() {
        use base64::Engine;
        let p = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"sub":"svc-upstream","act":{"sub":"gw"}}"#);
        assert_eq!(
            credential_subject(&format!("h.{p}.s")).as_deref(),
            Some("svc-upstream")
        );
        assert_eq!(credential_subject("opaque-token"), None);
    }
}
