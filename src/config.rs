//! Plugin configuration: the JSON Envoy passes as `configuration` (Istio's `pluginConfig`
//! arrives as the same JSON). Unknown fields are errors and every error names its field path.

use crate::authn::jose::{Alg, KeySet};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

pub use crate::config_error::ConfigError;

pub(crate) mod maps_only;

fn err(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        path: path.into(),
        message: message.into(),
    }
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Trusted token issuers; a token from any other issuer is refused.
    pub issuers: Vec<IssuerConfig>,
    #[serde(default)]
    pub token: TokenSource,
    #[serde(default)]
    pub identity_headers: IdentityHeaders,
    #[serde(default)]
    pub audit: AuditConfig,
    #[serde(default)]
    pub token_cache: TokenCacheConfig,
    /// Realm named in `WWW-Authenticate` challenges.
    #[serde(default = "default_realm")]
    pub realm: String,
    /// Per-route policies; without this section every authenticated call is let through.
    pub authorization: Option<crate::authz::policy::AuthorizationConfig>,
}

fn default_realm() -> String {
    "llm-warden".into()
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSource {
    /// Request header carrying the token (lower case).
    #[serde(default = "default_token_header")]
    pub header: String,
    /// Scheme prefix before the token, matched case-insensitively; empty for a bare token.
    #[serde(default = "default_token_prefix")]
    pub prefix: String,
    /// Larger tokens are refused before any parsing.
    #[serde(default = "default_token_max_bytes")]
    pub max_bytes: usize,
    /// Pass the caller's credential on to the upstream (default: strip it).
    #[serde(default)]
    pub forward: bool,
}

impl Default for TokenSource {
    fn default() -> Self {
        TokenSource {
            header: default_token_header(),
            prefix: default_token_prefix(),
            max_bytes: default_token_max_bytes(),
            forward: false,
        }
    }
}

fn default_token_header() -> String {
    "authorization".into()
}
fn default_token_prefix() -> String {
    "Bearer ".into()
}
fn default_token_max_bytes() -> usize {
    16 * 1024
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityHeaders {
    /// Prefix of the verified identity headers sent upstream. Client-sent headers with this
    /// prefix are always removed, so the upstream can trust them.
    #[serde(default = "default_identity_prefix")]
    pub prefix: String,
}

impl Default for IdentityHeaders {
    fn default() -> Self {
        IdentityHeaders {
            prefix: default_identity_prefix(),
        }
    }
}

fn default_identity_prefix() -> String {
    "x-warden-".into()
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Write each record to Envoy's log (info level, prefix `llm-warden-audit `).
    #[serde(default = "yes")]
    pub log: bool,
    /// Filter-state key; Envoy exposes it as `wasm.<key>` to access logs.
    #[serde(default = "default_audit_key")]
    pub filter_state_key: String,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            log: true,
            filter_state_key: default_audit_key(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_audit_key() -> String {
    "llm_warden.audit".into()
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenCacheConfig {
    /// Verified tokens kept per worker so repeat tokens skip signature verification;
    /// 0 disables the cache.
    #[serde(default = "default_cache_entries")]
    pub max_entries: usize,
}

impl Default for TokenCacheConfig {
    fn default() -> Self {
        TokenCacheConfig {
            max_entries: default_cache_entries(),
        }
    }
}

fn default_cache_entries() -> usize {
    4096
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// Short label for logs, metrics and audit records.
    pub name: String,
    /// Exact `iss` claim value.
    pub issuer: String,
    /// Accepted `aud` values; the token must carry at least one of them.
    pub audiences: Vec<String>,
    pub jwks: Option<JwksSource>,
    /// Base64 shared secret. Only an issuer configured with one accepts HS256/384/512.
    pub hmac_secret_base64: Option<String>,
    /// Allowed algorithms (default: all asymmetric ones, plus HS* with an HMAC secret).
    pub algorithms: Option<Vec<Alg>>,
    #[serde(default = "yes")]
    pub require_exp: bool,
    /// Refuse tokens without `iat` (audit reason `missing_iat`). Without `iat` a token's
    /// whole lifetime is unknown: only what remains of it, `exp - now`, is held to
    /// `max_lifetime_s`, so a long-lived token is accepted near its end. Default false.
    #[serde(default)]
    pub require_iat: bool,
    #[serde(default = "default_skew")]
    pub clock_skew_s: u64,
    /// Longest accepted lifetime: `exp - iat`, or without `iat` the remaining `exp - now`
    /// (set `require_iat` to refuse such tokens).
    #[serde(default = "default_max_lifetime")]
    pub max_lifetime_s: u64,
    #[serde(default)]
    pub revoked: Revocation,
}

fn default_skew() -> u64 {
    60
}
fn default_max_lifetime() -> u64 {
    3600
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    /// Revoked token ids (`jti`).
    #[serde(default)]
    pub jtis: Vec<String>,
    /// Revoked subjects (`sub`): every token of theirs is refused.
    #[serde(default)]
    pub subjects: Vec<String>,
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum JwksSource {
    /// A JWKS document (`{"keys": [...]}`) in the config itself.
    Inline(Value),
    Remote(RemoteJwks),
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteJwks {
    /// Envoy cluster that serves the JWKS.
    pub cluster: String,
    pub path: String,
    /// `:authority` of the fetch (default: the cluster name).
    pub authority: Option<String>,
    #[serde(default = "default_refresh")]
    pub refresh_interval_s: u64,
    /// After this long without a successful fetch, calls fail closed with 503.
    #[serde(default = "default_max_stale")]
    pub max_stale_s: u64,
    /// An unknown `kid` triggers at most one refetch per this interval.
    #[serde(default = "default_kid_refetch")]
    pub unknown_kid_refetch_interval_s: u64,
    #[serde(default = "default_fetch_timeout")]
    pub timeout_ms: u64,
    /// Larger responses are refused and never replace the last good key set.
    #[serde(default = "default_jwks_max_bytes")]
    pub max_bytes: usize,
}

fn default_refresh() -> u64 {
    300
}
fn default_max_stale() -> u64 {
    6 * 3600
}
fn default_kid_refetch() -> u64 {
    30
}
fn default_fetch_timeout() -> u64 {
    5000
}
fn default_jwks_max_bytes() -> usize {
    64 * 1024
}

pub const MIN_HMAC_SECRET_BYTES: usize = 32;

impl Config {
    /// Parses and validates; the error names the first offending field path.
    pub fn parse(bytes: &[u8]) -> Result<Config, ConfigError> {
        Config::compile(bytes).map(|(config, _)| config)
    }

    /// Parses, validates and compiles the authorization section once: the filter keeps
    /// the compiled [`crate::authz::policy::Authorizer`] that validation built.
    pub fn compile(bytes: &[u8]) -> Result<(Config, Option<crate::authz::policy::Authorizer>), ConfigError> {
        // A member named twice has two meanings (parsers keep the first or the last): refused,
        // with the path of the second.
        if let Err(e) = crate::authn::jose::parse_unique_object(bytes) {
            if e.to_string().starts_with("duplicate member") {
                return Err(err(
                    path_at(bytes, error_offset(bytes, e.line(), e.column())),
                    "duplicate member: this name appears twice in its object",
                ));
            }
        }
        let mut de = serde_json::Deserializer::from_slice(bytes);
        // structs as objects only: see maps_only.rs
        let read = Config::deserialize(maps_only::MapsOnly(&mut de));
        let config: Config = read.map_err(|e: serde_json::Error| {
            err(
                path_at(bytes, error_offset(bytes, e.line(), e.column())),
                strip_position(&e.to_string()),
            )
        })?;
        de.end().map_err(|e| err("", strip_position(&e.to_string())))?;
        let authorizer = config.validate()?;
        Ok((config, authorizer))
    }

    fn validate(&self) -> Result<Option<crate::authz::policy::Authorizer>, ConfigError> {
        if self.issuers.is_empty() {
            return Err(err("issuers", "at least one issuer is required"));
        }
        for (i, iss) in self.issuers.iter().enumerate() {
            let p = format!("issuers[{i}]");
            iss.validate(&p)?;
            if self.issuers.iter().take(i).any(|o| o.name == iss.name) {
                return Err(err(format!("{p}.name"), "duplicate issuer name"));
            }
            if self.issuers.iter().take(i).any(|o| o.issuer == iss.issuer) {
                return Err(err(format!("{p}.issuer"), "duplicate issuer"));
            }
        }
        let t = &self.token;
        if t.header.is_empty() || !is_header_name(&t.header) {
            return Err(err("token.header", "must be a lower-case HTTP header name"));
        }
        if !(256..=1024 * 1024).contains(&t.max_bytes) {
            return Err(err("token.max_bytes", "must be between 256 and 1048576"));
        }
        if t.prefix.chars().any(|c| c.is_control()) {
            return Err(err("token.prefix", "must not contain control characters"));
        }
        let prefix = &self.identity_headers.prefix;
        if !prefix.starts_with("x-") || prefix.len() < 3 || !is_header_name(prefix) {
            return Err(err(
                "identity_headers.prefix",
                "must be a lower-case header name prefix starting with \"x-\"",
            ));
        }
        if t.header.starts_with(prefix.as_str()) {
            return Err(err(
                "token.header",
                "must not start with identity_headers.prefix (it would be stripped)",
            ));
        }
        let key = &self.audit.filter_state_key;
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(err("audit.filter_state_key", "must be non-empty [A-Za-z0-9._-]"));
        }
        if self.token_cache.max_entries > 1_000_000 {
            return Err(err("token_cache.max_entries", "must be at most 1000000"));
        }
        let authorizer = match &self.authorization {
            Some(a) => {
                let names: Vec<String> = self.issuers.iter().map(|i| i.name.clone()).collect();
                Some(crate::authz::policy::Authorizer::new(a, &names)?)
            }
            None => None,
        };
        if self.realm.is_empty()
            || self
                .realm
                .chars()
                .any(|c| c == '"' || c == '\\' || !(' '..='~').contains(&c))
        {
            return Err(err(
                "realm",
                "must be printable ASCII without quotes or backslashes",
            ));
        }
        Ok(authorizer)
    }
}

impl IssuerConfig {
    fn validate(&self, p: &str) -> Result<(), ConfigError> {
        if self.name.is_empty()
            || self.name.len() > 64
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(err(
                format!("{p}.name"),
                "must be 1-64 characters of [A-Za-z0-9_-]",
            ));
        }
        if self.issuer.is_empty() {
            return Err(err(format!("{p}.issuer"), "must not be empty"));
        }
        if self.audiences.is_empty() {
            return Err(err(
                format!("{p}.audiences"),
                "at least one audience is required (a token minted for another service must not get in)",
            ));
        }
        if let Some((j, _)) = self.audiences.iter().enumerate().find(|(_, a)| a.is_empty()) {
            return Err(err(format!("{p}.audiences[{j}]"), "must not be empty"));
        }
        let secret = self
            .hmac_secret()
            .map_err(|e| err(format!("{p}.{}", e.path), e.message))?;
        if self.jwks.is_none() && secret.is_none() {
            return Err(err(
                format!("{p}.jwks"),
                "required unless hmac_secret_base64 is set",
            ));
        }
        if let Some(algs) = &self.algorithms {
            if algs.is_empty() {
                return Err(err(format!("{p}.algorithms"), "must list at least one algorithm"));
            }
            if let Some((j, a)) = algs.iter().enumerate().find(|(_, a)| a.is_hmac()) {
                if secret.is_none() {
                    return Err(err(
                        format!("{p}.algorithms[{j}]"),
                        format!("{} needs hmac_secret_base64 on this issuer", a.name()),
                    ));
                }
            }
        }
        if self.max_lifetime_s == 0 {
            return Err(err(format!("{p}.max_lifetime_s"), "must be greater than 0"));
        }
        if self.clock_skew_s > 600 {
            return Err(err(format!("{p}.clock_skew_s"), "must be at most 600"));
        }
        match &self.jwks {
            None => {}
            Some(JwksSource::Inline(doc)) => {
                let pj = format!("{p}.jwks.inline");
                let (set, errors) = KeySet::parse(doc).map_err(|m| err(&pj, m))?;
                if let Some(e) = errors.first() {
                    return Err(err(format!("{pj}.keys[{}]", e.index), &e.message));
                }
                if set.keys.is_empty() {
                    return Err(err(pj, "no usable signing key"));
                }
            }
            Some(JwksSource::Remote(r)) => {
                let pr = format!("{p}.jwks.remote");
                if r.cluster.is_empty() {
                    return Err(err(format!("{pr}.cluster"), "must not be empty"));
                }
                if !r.path.starts_with('/') {
                    return Err(err(format!("{pr}.path"), "must start with \"/\""));
                }
                if r.refresh_interval_s == 0 {
                    return Err(err(format!("{pr}.refresh_interval_s"), "must be greater than 0"));
                }
                if r.max_stale_s < r.refresh_interval_s {
                    return Err(err(
                        format!("{pr}.max_stale_s"),
                        "must be at least refresh_interval_s",
                    ));
                }
                if !(1..=60_000).contains(&r.timeout_ms) {
                    return Err(err(format!("{pr}.timeout_ms"), "must be between 1 and 60000"));
                }
                if !(256..=1024 * 1024).contains(&r.max_bytes) {
                    return Err(err(format!("{pr}.max_bytes"), "must be between 256 and 1048576"));
                }
            }
        }
        Ok(())
    }

    /// The decoded HMAC secret, if configured.
    pub fn hmac_secret(&self) -> Result<Option<Vec<u8>>, ConfigError> {
        let Some(b64) = &self.hmac_secret_base64 else {
            return Ok(None);
        };
        let bytes = STANDARD
            .decode(b64.trim())
            .map_err(|_| err("hmac_secret_base64", "is not valid base64"))?;
        if bytes.len() < MIN_HMAC_SECRET_BYTES {
            return Err(err(
                "hmac_secret_base64",
                format!("must decode to at least {MIN_HMAC_SECRET_BYTES} bytes"),
            ));
        }
        Ok(Some(bytes))
    }

    /// Algorithms this issuer accepts.
    pub fn allowed_algorithms(&self) -> Vec<Alg> {
        match &self.algorithms {
            Some(a) => a.clone(),
            None => {
                let mut v = Alg::ASYMMETRIC.to_vec();
                if self.hmac_secret_base64.is_some() {
                    v.extend([Alg::HS256, Alg::HS384, Alg::HS512]);
                }
                v
            }
        }
    }
}

fn is_header_name(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// serde_json appends " at line 1 column 57"; the path already says where.
/// Byte offset of serde_json's error position (1-based line, 1-based column of the last
/// byte read).
fn error_offset(json: &[u8], line: usize, column: usize) -> usize {
    let line_start = if line <= 1 {
        0
    } else {
        json.iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(line - 2)
            .map_or(json.len(), |(i, _)| i + 1)
    };
    (line_start + column).saturating_sub(1)
}

/// The field path (`issuers[0].jwks.remote`) of what a JSON parser reads at byte `pos`:
/// the subject of a deserialization error there. A key read up to `pos` is part of it (an
/// unknown or badly typed field); an object closed at `pos` is not (a missing field is
/// reported on the object). Tracking the path here instead of wrapping the deserializer
/// (serde_path_to_error) keeps 60 KB of duplicated deserialization code out of the .wasm.
fn path_at(json: &[u8], pos: usize) -> String {
    enum Frame {
        Object(Option<String>),
        Array(usize),
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut expecting_key = false;
    let mut i = 0;
    while let Some(&b) = json.get(i).filter(|_| i <= pos) {
        match b {
            b'{' => {
                stack.push(Frame::Object(None));
                expecting_key = true;
            }
            b'[' => stack.push(Frame::Array(0)),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object(_)) => expecting_key = true,
                Some(Frame::Array(n)) => *n += 1,
                None => {}
            },
            b'"' => {
                let start = i + 1;
                i = start;
                while let Some(&c) = json.get(i) {
                    match c {
                        b'\\' => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
                if expecting_key {
                    if let Some(Frame::Object(key)) = stack.last_mut() {
                        // Decoded, escapes and all, as the deserializer saw it.
                        let quoted = json.get(start - 1..=i).unwrap_or_default();
                        *key = Some(serde_json::from_slice(quoted).unwrap_or_else(|_| {
                            String::from_utf8_lossy(json.get(start..i).unwrap_or_default()).into_owned()
                        }));
                    }
                    expecting_key = false;
                }
            }
            _ => {}
        }
        i += 1;
    }
    let mut path = String::new();
    for frame in &stack {
        match frame {
            Frame::Object(Some(key)) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Frame::Object(None) => {}
            Frame::Array(n) => path.push_str(&format!("[{n}]")),
        }
    }
    path
}

fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message.get(..i).unwrap_or(message).to_string(),
        None => message.to_string(),
    }
}
