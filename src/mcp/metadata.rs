//! OAuth 2.0 Protected Resource Metadata (RFC 9728) for an MCP route, and the Bearer
//! challenges that point clients to it (RFC 6750 §3, RFC 9728 §5.1), as 2025-11-25
//! `basic/authorization` requires of an MCP server:
//! - the document is served at `/.well-known/oauth-protected-resource` with the resource's
//!   path appended (RFC 9728 §3.1: `https://h/mcp` → `/.well-known/oauth-protected-resource/mcp`)
//!   and at the root form, which MCP clients try next;
//! - a 401 carries `WWW-Authenticate: Bearer resource_metadata="<document URL>"` (plus
//!   `scope` when known, and `error="invalid_token"` when a token was sent but refused);
//! - insufficient scope is a 403 with `error="insufficient_scope"`, the `scope` needed and
//!   `resource_metadata` (step-up authorization).
//!
//! Header injection: every configured value that reaches a header is checked at compile
//! (URLs: visible ASCII without `"`, `\`, query or fragment; scopes: RFC 6749 scope-tokens),
//! and scopes given at challenge time are re-checked (invalid ones are left out), so a quoted
//! string can never be closed early or a header line split.

use crate::config_error::ConfigError;
use serde::Deserialize;
use serde_json::{Map, Value};

pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

fn default_bearer_methods() -> Vec<String> {
    vec!["header".to_string()]
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtectedResourceConfig {
    /// This MCP server's resource identifier: the URL clients use (`https://mcp.example.com/mcp`),
    /// the value tokens must carry in `aud` (RFC 8707). https, or http on a loopback host.
    pub resource: String,
    /// Issuer URLs of the authorization servers that issue tokens for it (at least one).
    pub authorization_servers: Vec<String>,
    /// Scopes clients may request (RFC 6749 scope-tokens).
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    /// How tokens may be sent: `header`, `body`, `query`. Default `["header"]`.
    #[serde(default = "default_bearer_methods")]
    pub bearer_methods_supported: Vec<String>,
}

/// The compiled metadata: the document, where it is served, and the challenge values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedResource {
    document: Vec<u8>,
    metadata_url: String,
    /// The path-suffixed well-known path, when the resource has a path.
    suffixed_path: Option<String>,
}

/// RFC 6749 §3.3 scope-token: `%x21 / %x23-5B / %x5D-7E`, at least one (no space, `"`, `\`).
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

struct Url<'a> {
    /// `scheme://authority`.
    origin: &'a str,
    /// The path, empty or starting with `/`.
    path: &'a str,
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host == "127.0.0.1" || host == "[::1]"
}

fn parse_url<'a>(url: &'a str, path: &str) -> Result<Url<'a>, ConfigError> {
    let fail = |message: &str| ConfigError {
        path: path.to_string(),
        message: message.to_string(),
    };
    if !url
        .bytes()
        .all(|b| (0x21..=0x7E).contains(&b) && b != b'"' && b != b'\\')
    {
        return Err(fail(
            "must be visible ASCII without spaces, quotes or backslashes",
        ));
    }
    if url.contains(['?', '#']) {
        return Err(fail("must have no query or fragment"));
    }
    let (scheme, rest) = if let Some(r) = url.strip_prefix("https://") {
        ("https", r)
    } else if let Some(r) = url.strip_prefix("http://") {
        ("http", r)
    } else {
        return Err(fail("must be an https URL"));
    };
    let authority_len = rest.find('/').unwrap_or(rest.len());
    let authority = rest.get(..authority_len).unwrap_or_default();
    let url_path = rest.get(authority_len..).unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(fail("must name a host (and no user information)"));
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((_, after)) => (
                authority.get(..authority.len() - after.len()).unwrap_or_default(),
                after,
            ),
            None => return Err(fail("has an invalid IPv6 host")),
        },
        None => match authority.rsplit_once(':') {
            Some((h, _)) => (h, authority.get(h.len()..).unwrap_or_default()),
            None => (authority, ""),
        },
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if host.is_empty() || host == "[]" || !port_ok {
        return Err(fail("has an invalid host or port"));
    }
    if scheme == "http" && !is_loopback(host) {
        return Err(fail("must be an https URL (http only for localhost)"));
    }
    let origin = url.get(..scheme.len() + 3 + authority_len).unwrap_or(url);
    Ok(Url {
        origin,
        path: url_path,
    })
}

impl ProtectedResourceConfig {
    /// Validates and compiles; `path` is this object's field path.
    pub fn compile(&self, path: &str) -> Result<ProtectedResource, ConfigError> {
        let resource = parse_url(&self.resource, &format!("{path}.resource"))?;
        if self.authorization_servers.is_empty() {
            return Err(ConfigError {
                path: format!("{path}.authorization_servers"),
                message: "needs at least one authorization server".to_string(),
            });
        }
        for (i, s) in self.authorization_servers.iter().enumerate() {
            parse_url(s, &format!("{path}.authorization_servers[{i}]"))?;
        }
        for (i, s) in self.scopes_supported.iter().enumerate() {
            if !is_scope_token(s) {
                return Err(ConfigError {
                    path: format!("{path}.scopes_supported[{i}]"),
                    message: "must be a scope token (visible ASCII without spaces, quotes or backslashes)"
                        .to_string(),
                });
            }
        }
        if self.bearer_methods_supported.is_empty() {
            return Err(ConfigError {
                path: format!("{path}.bearer_methods_supported"),
                message: "must not be empty".to_string(),
            });
        }
        for (i, m) in self.bearer_methods_supported.iter().enumerate() {
            let dup = self.bearer_methods_supported.iter().take(i).any(|o| o == m);
            if !["header", "body", "query"].contains(&m.as_str()) || dup {
                return Err(ConfigError {
                    path: format!("{path}.bearer_methods_supported[{i}]"),
                    message: "must be one of header, body, query, each once".to_string(),
                });
            }
        }
        // RFC 9728 §3.1: a terminating slash right after the host is removed.
        let resource_path = if resource.path == "/" { "" } else { resource.path };
        let suffixed_path = (!resource_path.is_empty()).then(|| format!("{WELL_KNOWN}{resource_path}"));
        let metadata_url = format!("{}{WELL_KNOWN}{resource_path}", resource.origin);

        let strings = |v: &[String]| Value::Array(v.iter().cloned().map(Value::String).collect());
        let mut doc = Map::new();
        doc.insert("resource".into(), Value::String(self.resource.clone()));
        doc.insert(
            "authorization_servers".into(),
            strings(&self.authorization_servers),
        );
        if !self.scopes_supported.is_empty() {
            doc.insert("scopes_supported".into(), strings(&self.scopes_supported));
        }
        doc.insert(
            "bearer_methods_supported".into(),
            strings(&self.bearer_methods_supported),
        );
        let document = serde_json::to_vec(&Value::Object(doc)).map_err(|_| ConfigError {
            path: path.to_string(),
            message: "cannot be serialized".to_string(),
        })?;
        Ok(ProtectedResource {
            document,
            metadata_url,
            suffixed_path,
        })
    }
}

fn scope_param(scopes: &[&str]) -> Option<String> {
    let valid: Vec<&str> = scopes.iter().copied().filter(|s| is_scope_token(s)).collect();
    (!valid.is_empty()).then(|| valid.join(" "))
}

impl ProtectedResource {
    /// The document to serve (200, `Content-Type: application/json`).
    pub fn document(&self) -> &[u8] {
        &self.document
    }

    /// The document's URL (the `resource_metadata` of challenges).
    pub fn metadata_url(&self) -> &str {
        &self.metadata_url
    }

    /// Whether a request path (query ignored) asks for the document.
    pub fn is_metadata_path(&self, request_path: &str) -> bool {
        let path = request_path.split('?').next().unwrap_or_default();
        path == WELL_KNOWN || self.suffixed_path.as_deref() == Some(path)
    }

    /// `WWW-Authenticate` of a 401: `invalid_token` when a token was sent and refused (with
    /// no token, RFC 6750 §3.1 says no error code); `scopes` the scopes to request.
    pub fn unauthorized(&self, invalid_token: bool, scopes: &[&str]) -> String {
        let mut v = format!("Bearer resource_metadata=\"{}\"", self.metadata_url);
        if let Some(s) = scope_param(scopes) {
            v.push_str(&format!(", scope=\"{s}\""));
        }
        if invalid_token {
            v.push_str(", error=\"invalid_token\"");
        }
        v
    }

    /// `WWW-Authenticate` of a 403 for insufficient scope: `scopes` the scopes the request
    /// needs (include those already held that stay needed, 2025-11-25 "Scope Challenge
    /// Handling").
    pub fn insufficient_scope(&self, scopes: &[&str]) -> String {
        let mut v = "Bearer error=\"insufficient_scope\"".to_string();
        if let Some(s) = scope_param(scopes) {
            v.push_str(&format!(", scope=\"{s}\""));
        }
        v.push_str(&format!(", resource_metadata=\"{}\"", self.metadata_url));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(v: Value) -> ProtectedResourceConfig {
        serde_json::from_value(v).unwrap()
    }

    fn compiled(resource: &str) -> ProtectedResource {
        config(json!({"resource": resource, "authorization_servers": ["https://auth.example.com"]}))
            .compile("mcp.protected_resource")
            .unwrap()
    }

    fn error_path(v: Value) -> String {
        config(v).compile("pr").unwrap_err().path
    }

    #[test]
    fn document_and_urls() {
        let pr = config(json!({
            "resource": "https://mcp.example.com/public/mcp",
            "authorization_servers": ["https://auth.example.com/tenant1"],
            "scopes_supported": ["files:read", "files:write"]
        }))
        .compile("pr")
        .unwrap();
        let doc: Value = serde_json::from_slice(pr.document()).unwrap();
        assert_eq!(
            doc,
            json!({
                "resource": "https://mcp.example.com/public/mcp",
                "authorization_servers": ["https://auth.example.com/tenant1"],
                "scopes_supported": ["files:read", "files:write"],
                "bearer_methods_supported": ["header"]
            })
        );
        assert_eq!(
            pr.metadata_url(),
            "https://mcp.example.com/.well-known/oauth-protected-resource/public/mcp"
        );
        assert!(pr.is_metadata_path("/.well-known/oauth-protected-resource/public/mcp"));
        assert!(pr.is_metadata_path("/.well-known/oauth-protected-resource"));
        assert!(pr.is_metadata_path("/.well-known/oauth-protected-resource?x=1"));
        for other in [
            "/.well-known/oauth-protected-resource/public",
            "/.well-known/oauth-protected-resource/public/mcp/",
            "/.well-known/oauth-protected-resource/",
            "/.well-known/oauth-protected-resourcex",
            "/.WELL-KNOWN/oauth-protected-resource",
            "/public/mcp",
            "",
        ] {
            assert!(!pr.is_metadata_path(other), "{other}");
        }
        // No scopes: the field is left out.
        let doc: Value = serde_json::from_slice(compiled("https://h/mcp").document()).unwrap();
        assert!(doc.get("scopes_supported").is_none());
    }

    #[test]
    fn a_resource_without_path_has_only_the_root_form() {
        for r in [
            "https://mcp.example.com",
            "https://mcp.example.com/",
            "https://mcp.example.com:8443",
        ] {
            let pr = compiled(r);
            assert!(
                pr.metadata_url()
                    .ends_with("/.well-known/oauth-protected-resource"),
                "{r}"
            );
            assert!(pr.metadata_url().starts_with("https://mcp.example.com"), "{r}");
            assert!(pr.is_metadata_path(WELL_KNOWN));
            assert!(!pr.is_metadata_path("/.well-known/oauth-protected-resource/"));
        }
        assert_eq!(
            compiled("http://127.0.0.1:10000/mcp").metadata_url(),
            "http://127.0.0.1:10000/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            compiled("http://[::1]:8080/mcp").metadata_url(),
            "http://[::1]:8080/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            compiled("https://[2001:db8::1]/mcp").metadata_url(),
            "https://[2001:db8::1]/.well-known/oauth-protected-resource/mcp"
        );
    }

    #[test]
    fn challenges() {
        let pr = compiled("https://mcp.example.com/mcp");
        let url = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
        assert_eq!(
            pr.unauthorized(false, &[]),
            format!("Bearer resource_metadata=\"{url}\"")
        );
        assert_eq!(
            pr.unauthorized(true, &["files:read"]),
            format!("Bearer resource_metadata=\"{url}\", scope=\"files:read\", error=\"invalid_token\"")
        );
        assert_eq!(
            pr.insufficient_scope(&["files:read", "files:write"]),
            format!("Bearer error=\"insufficient_scope\", scope=\"files:read files:write\", resource_metadata=\"{url}\"")
        );
    }

    #[test]
    fn challenge_scopes_cannot_inject() {
        let pr = compiled("https://mcp.example.com/mcp");
        for evil in ["a\" , error=\"x", "a\r\nSet-Cookie: s=1", "a b", "a\\", "", "é"] {
            let v = pr.insufficient_scope(&[evil, "ok"]);
            assert!(v.contains("scope=\"ok\""), "{v}");
            assert!(!v.contains('\r') && !v.contains('\n') && !v.contains('\\'), "{v}");
            assert_eq!(v.matches('"').count(), 6, "{v}");
        }
        assert_eq!(
            pr.insufficient_scope(&["a b"]),
            format!(
                "Bearer error=\"insufficient_scope\", resource_metadata=\"{}\"",
                pr.metadata_url()
            )
        );
    }

    #[test]
    fn config_values_that_could_inject_are_refused() {
        for resource in [
            "https://mcp.example.com/\"mcp",
            "https://mcp.example.com/mcp\r\nX: y",
            "https://mcp.example.com/m cp",
            "https://mcp.example.com/m\\cp",
            "https://mcp.example.com/é",
            "https://mcp.example.com/mcp?x=1",
            "https://mcp.example.com/mcp#f",
            "https://user@mcp.example.com/mcp",
            "https:///mcp",
            "https://h:x/mcp",
            "ftp://mcp.example.com",
            "mcp.example.com/mcp",
            "http://mcp.example.com/mcp",
            "http://127.0.0.1.evil.com/mcp",
            "",
        ] {
            let path = error_path(json!({"resource": resource, "authorization_servers": ["https://a"]}));
            assert_eq!(path, "pr.resource", "{resource:?}");
        }
        assert_eq!(
            error_path(json!({"resource": "https://h", "authorization_servers": []})),
            "pr.authorization_servers"
        );
        assert_eq!(
            error_path(
                json!({"resource": "https://h", "authorization_servers": ["https://a", "https://b\""]})
            ),
            "pr.authorization_servers[1]"
        );
        assert_eq!(
            error_path(
                json!({"resource": "https://h", "authorization_servers": ["https://a"], "scopes_supported": ["ok", "a b"]})
            ),
            "pr.scopes_supported[1]"
        );
        assert_eq!(
            error_path(
                json!({"resource": "https://h", "authorization_servers": ["https://a"], "scopes_supported": ["a\"b"]})
            ),
            "pr.scopes_supported[0]"
        );
        assert_eq!(
            error_path(
                json!({"resource": "https://h", "authorization_servers": ["https://a"], "bearer_methods_supported": ["cookie"]})
            ),
            "pr.bearer_methods_supported[0]"
        );
        assert_eq!(
            error_path(
                json!({"resource": "https://h", "authorization_servers": ["https://a"], "bearer_methods_supported": ["header", "header"]})
            ),
            "pr.bearer_methods_supported[1]"
        );
        assert_eq!(
            error_path(
                json!({"resource": "https://h", "authorization_servers": ["https://a"], "bearer_methods_supported": []})
            ),
            "pr.bearer_methods_supported"
        );
        assert!(serde_json::from_value::<ProtectedResourceConfig>(
            json!({"resource": "https://h", "authorization_servers": ["https://a"], "extra": 1})
        )
        .is_err());
    }

    #[test]
    fn scope_tokens() {
        for ok in ["files:read", "a", "!#$%&'()*+,-./:;<=>?@[]^_`{|}~"] {
            assert!(is_scope_token(ok), "{ok}");
        }
        for bad in ["", "a b", "a\"", "a\\", "é", "a\t", "a\n"] {
            assert!(!is_scope_token(bad), "{bad:?}");
        }
    }
}
