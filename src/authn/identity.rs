//! Verified identity headers sent upstream. Claim values are attacker-influenced text even
//! when signed (a user may pick their own display name), so they are encoded to safe header
//! values.

use crate::authn::claims::Identity;

/// Header-name suffixes we set; all client-sent headers with the prefix are removed first.
pub const SUBJECT: &str = "subject";
pub const ISSUER: &str = "issuer";
pub const CLIENT: &str = "client";
pub const SCOPES: &str = "scopes";
pub const ACTOR_CHAIN: &str = "actor-chain";

pub use crate::outcome::reason::header_safe;

/// Header names compared the way upstream stacks may read them: case-insensitive, and `_`
/// the same as `-` (CGI/WSGI-style servers map one to the other).
fn folded(name: &str) -> String {
    name.chars()
        .map(|c| if c == '_' { '-' } else { c.to_ascii_lowercase() })
        .collect()
}

/// Whether a client-sent header could pass for one of our identity headers upstream.
pub fn spoofs_prefix(name: &str, prefix: &str) -> bool {
    !prefix.is_empty() && folded(name).starts_with(&folded(prefix))
}

/// Whether a client-sent header carries a credential meant for this proxy, which must never
/// travel upstream: `Proxy-Authorization` in any spelling (the proxy is its addressee).
pub fn proxy_credential(name: &str) -> bool {
    folded(name) == "proxy-authorization"
}

/// The headers to add for a verified caller, in a stable order.
pub fn identity_headers(prefix: &str, id: &Identity) -> Vec<(String, String)> {
    let mut h = Vec::with_capacity(5);
    if let Some(sub) = &id.sub {
        h.push((format!("{prefix}{SUBJECT}"), header_safe(sub, None)));
    }
    h.push((format!("{prefix}{ISSUER}"), header_safe(&id.iss, None)));
    if let Some(client) = &id.client {
        h.push((format!("{prefix}{CLIENT}"), header_safe(client, None)));
    }
    if !id.scopes.is_empty() {
        let scopes: Vec<String> = id.scopes.iter().map(|s| header_safe(s, Some(' '))).collect();
        h.push((format!("{prefix}{SCOPES}"), scopes.join(" ")));
    }
    if !id.actors.is_empty() {
        let actors: Vec<String> = id.actors.iter().map(|a| header_safe(a, Some(','))).collect();
        h.push((format!("{prefix}{ACTOR_CHAIN}"), actors.join(",")));
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_cannot_inject_headers() {
        assert_eq!(header_safe("a\r\nx-admin: 1", None), "a%0D%0Ax-admin: 1");
        assert_eq!(header_safe("100%", None), "100%25");
        assert_eq!(header_safe("é", None), "%C3%A9");
        assert_eq!(header_safe("a,b", Some(',')), "a%2Cb");
    }

    #[test]
    fn prefix_spoofing_in_every_spelling() {
        for name in [
            "x-warden-subject",
            "X-WARDEN-SUBJECT",
            "x_warden_subject",
            "X_Warden-Subject",
        ] {
            assert!(spoofs_prefix(name, "x-warden-"), "{name}");
        }
        assert!(spoofs_prefix("x-warden-", "X_WARDEN-"));
        assert!(!spoofs_prefix("x-wardens", "x-warden-"));
        assert!(!spoofs_prefix("authorization", "x-warden-"));
        assert!(!spoofs_prefix("anything", ""));
        assert!(proxy_credential("Proxy-Authorization"));
        assert!(proxy_credential("proxy_authorization"));
        assert!(!proxy_credential("authorization"));
    }

    #[test]
    fn headers_for_identity() {
        let claims = json!({"iss": "https://idp", "sub": "alice", "azp": "cli", "scope": "a b",
            "act": {"sub": "agent,1", "act": {"sub": "orch"}}});
        let id = Identity::from_claims("idp", claims.as_object().cloned().unwrap(), None);
        let h = identity_headers("x-warden-", &id);
        let get = |k: &str| h.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("x-warden-subject").as_deref(), Some("alice"));
        assert_eq!(get("x-warden-issuer").as_deref(), Some("https://idp"));
        assert_eq!(get("x-warden-client").as_deref(), Some("cli"));
        assert_eq!(get("x-warden-scopes").as_deref(), Some("a b"));
        assert_eq!(get("x-warden-actor-chain").as_deref(), Some("agent%2C1,orch"));
    }
}
