//! One audit record per request: who (the verified identity chain), what was decided and
//! why. It never holds a token, signature, key or request body.

use crate::claims::Identity;
use crate::reason::Reason;
use serde::Serialize;

/// Stable prefix of audit lines in Envoy's log, for log shippers to match on.
pub const LOG_PREFIX: &str = "llm-warden-audit ";

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditRecord {
    /// RFC 3339 UTC with milliseconds.
    pub ts: String,
    pub request_id: Option<String>,
    pub method: Option<String>,
    /// Path without query string (queries may carry secrets).
    pub path: Option<String>,
    /// Configured issuer name that vouched for the caller.
    pub issuer: Option<String>,
    pub iss: Option<String>,
    pub sub: Option<String>,
    pub client: Option<String>,
    /// Delegation chain from `act`, current actor first.
    pub act: Vec<String>,
    pub jti: Option<String>,
    /// Envoy route name (`xds.route_name`).
    pub route: Option<String>,
    pub policy: Option<String>,
    pub rule: Option<String>,
    /// API operation (chat, embeddings, ...).
    pub action: Option<&'static str>,
    pub model: Option<String>,
    /// Tools the request declared or forced.
    pub tools: Vec<String>,
    /// A tool the response tried to call and that was blocked (or would be, in monitor mode).
    pub blocked_tool: Option<String>,
    /// Where the upstream credential came from (client_credentials, token_exchange, static).
    pub credential_source: Option<&'static str>,
    /// Subject of the obtained upstream credential: caller -> gateway -> upstream subject.
    pub upstream_sub: Option<String>,
    /// The prompt-guard rule that matched (never the prompt text).
    pub guard_rule: Option<String>,
    /// Redactions in the response, by type.
    pub redactions: std::collections::BTreeMap<String, u64>,
    /// The rate limit that refused the call (or would have, in monitor mode).
    pub limit: Option<String>,
    pub remaining_requests: Option<u64>,
    pub remaining_tokens: Option<u64>,
    /// Tokens charged from the response's usage.
    pub tokens_used: Option<u64>,
    /// allow, deny, or would_deny (monitor mode).
    pub decision: &'static str,
    pub reason: &'static str,
    pub status: u16,
}

impl AuditRecord {
    pub fn new(now_ms: u64, reason: Reason, status: u16, identity: Option<&Identity>) -> AuditRecord {
        AuditRecord {
            ts: rfc3339_millis(now_ms),
            request_id: None,
            method: None,
            path: None,
            issuer: identity.map(|i| i.issuer_name.clone()),
            iss: identity.map(|i| i.iss.clone()),
            sub: identity.and_then(|i| i.sub.clone()),
            client: identity.and_then(|i| i.client.clone()),
            act: identity.map(|i| i.actors.clone()).unwrap_or_default(),
            jti: identity.and_then(|i| i.jti.clone()),
            route: None,
            policy: None,
            rule: None,
            action: None,
            model: None,
            tools: Vec::new(),
            blocked_tool: None,
            credential_source: None,
            upstream_sub: None,
            guard_rule: None,
            redactions: std::collections::BTreeMap::new(),
            limit: None,
            remaining_requests: None,
            remaining_tokens: None,
            tokens_used: None,
            decision: if reason == Reason::Ok { "allow" } else { "deny" },
            reason: reason.code(),
            status,
        }
    }

    pub fn with_request(
        mut self,
        request_id: Option<String>,
        method: Option<String>,
        path: Option<&str>,
    ) -> Self {
        self.request_id = request_id;
        self.method = method;
        self.path = path.map(|p| p.split(['?', '#']).next().unwrap_or_default().to_string());
        self
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

/// Formats Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (days-from-civil inverse, after
/// Howard Hinnant's algorithm), without pulling in a date crate.
pub fn rfc3339_millis(ms: u64) -> String {
    let secs = ms / 1000;
    let millis = ms % 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{d:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats_time() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339_millis(1_795_305_600_000), "2026-11-22T00:00:00.000Z");
    }

    #[test]
    fn record_for_allowed_call() {
        let claims = json!({"iss": "https://idp", "sub": "svc", "client_id": "c", "jti": "j",
            "act": {"sub": "agent"}});
        let id = Identity::from_claims("idp", claims.as_object().cloned().unwrap(), None);
        let r = AuditRecord::new(0, Reason::Ok, 200, Some(&id)).with_request(
            Some("rid".into()),
            Some("POST".into()),
            Some("/v1/chat/completions?api_key=secret"),
        );
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["decision"], "allow");
        assert_eq!(v["reason"], "ok");
        assert_eq!(v["sub"], "svc");
        assert_eq!(v["act"], json!(["agent"]));
        assert_eq!(v["path"], "/v1/chat/completions");
        assert!(!r.to_json().contains("secret"));
    }

    #[test]
    fn record_for_denied_call() {
        let r = AuditRecord::new(0, Reason::BadSignature, 401, None);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["decision"], "deny");
        assert_eq!(v["reason"], "bad_signature");
        assert_eq!(v["status"], 401);
        assert!(v["sub"].is_null());
    }
}
