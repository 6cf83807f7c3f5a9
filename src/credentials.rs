//! Just-in-time upstream credentials: instead of one static provider key for every caller,
//! the filter obtains a short-lived credential per upstream (OAuth2 client credentials,
//! RFC 6749 §4.4) or per caller (OAuth2 token exchange, RFC 8693: the caller's verified
//! token is exchanged, the gateway authenticates as the actor). Credentials are cached in
//! shared data until shortly before they expire; per-caller ones live in a fixed table of
//! slots (bounded memory). A static key from the proxy's environment is a flagged fallback.

use crate::config::ConfigError;
use crate::host::{SharedStore, StoreWrite};
use serde::{Deserialize, Serialize};

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
    /// How the upstream expects it: `authorization` (Bearer), `api-key`, `x-api-key`.
    #[serde(default = "default_header")]
    pub header: String,
    /// Refresh this long before expiry.
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
    pub authority: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

fn default_timeout() -> u64 {
    3000
}

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
    pub header: String,
    pub refresh_before_s: u64,
    /// Shared-data key prefix of this source.
    cache_prefix: String,
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

impl CredentialSpec {
    /// `env` reads the proxy's environment (std::env in the filter; a map in tests).
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
        let id = crate::ratelimit::key_hash(&[
            c.source.name(),
            c.token_endpoint.as_ref().map_or("", |e| e.cluster.as_str()),
            c.token_endpoint.as_ref().map_or("", |e| e.path.as_str()),
            &client_id,
            &c.scopes.join(" "),
            c.audience.as_deref().unwrap_or(""),
        ]);
        Ok(CredentialSpec {
            source: c.source,
            endpoint: c.token_endpoint.clone(),
            client_id,
            client_secret,
            static_key,
            scopes: c.scopes.clone(),
            audience: c.audience.clone(),
            header: c.header.clone(),
            refresh_before_s: c.refresh_before_s,
            cache_prefix: format!("llm-warden/cred/{id:016x}"),
        })
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
                fields.push((
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:access_token".into(),
                ));
            }
            _ => fields.push(("grant_type", "client_credentials".into())),
        }
        if !self.scopes.is_empty() {
            fields.push(("scope", self.scopes.join(" ")));
        }
        if let Some(a) = &self.audience {
            fields.push(("audience", a.clone()));
        }
        let body = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", form(v)))
            .collect::<Vec<_>>()
            .join("&");
        (headers, body)
    }

    /// Shared-data key for this source (and, for token exchange, this caller's slot).
    fn key(&self, caller: Option<u64>) -> String {
        match caller {
            Some(h) => format!("{}/x/{}", self.cache_prefix, h % EXCHANGE_SLOTS),
            None => self.cache_prefix.clone(),
        }
    }

    /// A cached credential still good for `refresh_before_s` more seconds.
    pub fn cached(&self, store: &dyn SharedStore, now: u64, caller: Option<u64>) -> Option<String> {
        let (bytes, _) = store.get(&self.key(caller))?;
        let c: Cached = serde_json::from_slice(&bytes).ok()?;
        (c.caller == caller.unwrap_or(0) && c.expires_at > now.saturating_add(self.refresh_before_s))
            .then_some(c.token)
    }

    pub fn store(
        &self,
        store: &dyn SharedStore,
        now: u64,
        caller: Option<u64>,
        token: &str,
        expires_in: u64,
    ) -> bool {
        let c = Cached {
            caller: caller.unwrap_or(0),
            token: token.to_string(),
            expires_at: now.saturating_add(expires_in),
        };
        let Ok(bytes) = serde_json::to_vec(&c) else {
            return false;
        };
        store.set(&self.key(caller), &bytes, None) == StoreWrite::Written
    }
}

/// Per-caller exchanged tokens live in this many slots per source (Envoy never deletes
/// shared-data keys); a collision only costs a new exchange.
pub const EXCHANGE_SLOTS: u64 = 4096;

#[derive(Serialize, Deserialize)]
struct Cached {
    /// Hash of the caller's token (0 for a per-source credential).
    caller: u64,
    token: String,
    expires_at: u64,
}

/// Identifies a caller's token for the exchange cache without keeping the token.
pub fn caller_hash(token: &str) -> u64 {
    let h = crate::token_cache::hash_token(token);
    u64::from_le_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]).max(1)
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

/// A token endpoint's answer: the access token and its lifetime.
pub fn parse_token_response(status: Option<u16>, body: &[u8]) -> Result<(String, u64), String> {
    if status != Some(200) {
        return Err(format!(
            "token endpoint answered {}",
            status.map_or("nothing".into(), |s| s.to_string())
        ));
    }
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| "token response is not JSON".to_string())?;
    let token = v
        .get("access_token")
        .and_then(serde_json::Value::as_str)
        .filter(|t| !t.is_empty() && t.len() <= 16 * 1024 && t.bytes().all(|b| (0x21..0x7f).contains(&b)))
        .ok_or("token response has no usable access_token")?;
    // A missing lifetime is treated as short: the credential is fetched again soon.
    let expires_in = v
        .get("expires_in")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(60)
        .min(86_400);
    Ok((token.to_string(), expires_in))
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
            "KEY" => Some("sk-static-123".into()),
            _ => None,
        }
    }

    fn spec(v: serde_json::Value) -> Result<CredentialSpec, ConfigError> {
        CredentialSpec::compile(&serde_json::from_value(v).unwrap(), "c", &env)
    }

    fn cc() -> CredentialSpec {
        spec(json!({"source": "client_credentials", "client_id": "gateway",
            "client_secret_env": "SECRET", "scopes": ["llm.invoke", "models.read"], "audience": "https://llm",
            "token_endpoint": {"cluster": "idp", "path": "/token"}}))
        .unwrap()
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
    fn caching_with_refresh_ahead() {
        let store = MemStore::default();
        let s = cc();
        assert_eq!(s.cached(&store, 1000, None), None);
        assert!(s.store(&store, 1000, None, "tok-1", 300));
        assert_eq!(s.cached(&store, 1100, None).as_deref(), Some("tok-1"));
        assert_eq!(s.cached(&store, 1239, None).as_deref(), Some("tok-1"));
        assert_eq!(s.cached(&store, 1240, None), None, "refreshed 60 s before expiry");
        // Per-caller slots: another caller never gets this caller's token.
        let a = caller_hash("token-a");
        let b = caller_hash("token-b");
        s.store(&store, 1000, Some(a), "xa", 300);
        assert_eq!(s.cached(&store, 1000, Some(a)).as_deref(), Some("xa"));
        assert_eq!(s.cached(&store, 1000, Some(b)), None);
        let collide = a + EXCHANGE_SLOTS; // same slot, other caller
        assert_eq!(s.cached(&store, 1000, Some(collide)), None);
    }

    #[test]
    fn token_responses() {
        assert_eq!(
            parse_token_response(Some(200), br#"{"access_token":"abc","expires_in":120}"#),
            Ok(("abc".into(), 120))
        );
        assert_eq!(
            parse_token_response(Some(200), br#"{"access_token":"abc"}"#),
            Ok(("abc".into(), 60))
        );
        assert!(parse_token_response(Some(401), b"{}").is_err());
        assert!(parse_token_response(None, b"").is_err());
        assert!(
            parse_token_response(Some(200), br#"{"access_token":"a b\r\nx"}"#).is_err(),
            "no header injection"
        );
        assert!(parse_token_response(Some(200), b"<html>").is_err());
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
