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

    /// The record as one JSON object, byte for byte what serde_json writes for it (the
    /// tests compare). Written by hand because it runs two or three times per call, and
    /// serde_json's serializer took about 58,000 instructions per record in the .wasm
    /// (callgrind, opt-level "z"): a quarter of the filter's cost per call.
    pub fn to_json(&self) -> String {
        let mut w = JsonWriter::default();
        w.str("ts", Some(&self.ts));
        w.str("request_id", self.request_id.as_deref());
        w.str("method", self.method.as_deref());
        w.str("path", self.path.as_deref());
        w.str("issuer", self.issuer.as_deref());
        w.str("iss", self.iss.as_deref());
        w.str("sub", self.sub.as_deref());
        w.str("client", self.client.as_deref());
        w.list("act", &self.act);
        w.str("jti", self.jti.as_deref());
        w.str("route", self.route.as_deref());
        w.str("policy", self.policy.as_deref());
        w.str("rule", self.rule.as_deref());
        w.str("action", self.action);
        w.str("model", self.model.as_deref());
        w.list("tools", &self.tools);
        w.str("blocked_tool", self.blocked_tool.as_deref());
        w.str("credential_source", self.credential_source);
        w.str("upstream_sub", self.upstream_sub.as_deref());
        w.str("guard_rule", self.guard_rule.as_deref());
        w.key("redactions");
        w.out.push('{');
        for (i, (name, n)) in self.redactions.iter().enumerate() {
            if i > 0 {
                w.out.push(',');
            }
            w.quoted(name);
            w.out.push(':');
            push_u64(&mut w.out, *n);
        }
        w.out.push('}');
        w.str("limit", self.limit.as_deref());
        w.num("remaining_requests", self.remaining_requests);
        w.num("remaining_tokens", self.remaining_tokens);
        w.num("tokens_used", self.tokens_used);
        w.str("decision", Some(self.decision));
        w.str("reason", Some(self.reason));
        w.num("status", Some(u64::from(self.status)));
        w.out.push('}');
        w.out
    }
}

/// Writes one JSON object's members in order; `to_json` closes it.
struct JsonWriter {
    out: String,
}

impl Default for JsonWriter {
    fn default() -> Self {
        // Most records fit: one allocation.
        JsonWriter {
            out: String::with_capacity(1024),
        }
    }
}

/// Decimal digits of `n`, without the formatting machinery.
fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    for d in digits.get(i..).unwrap_or_default() {
        out.push(char::from(*d));
    }
}

impl JsonWriter {
    fn key(&mut self, key: &str) {
        self.out.push(if self.out.is_empty() { '{' } else { ',' });
        self.quoted(key);
        self.out.push(':');
    }

    fn str(&mut self, key: &str, value: Option<&str>) {
        self.key(key);
        match value {
            Some(v) => self.quoted(v),
            None => self.out.push_str("null"),
        }
    }

    fn num(&mut self, key: &str, value: Option<u64>) {
        self.key(key);
        match value {
            Some(n) => push_u64(&mut self.out, n),
            None => self.out.push_str("null"),
        }
    }

    fn list(&mut self, key: &str, items: &[String]) {
        self.key(key);
        self.out.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.quoted(item);
        }
        self.out.push(']');
    }

    /// A JSON string, escaped as serde_json escapes: `"`, `\` and control characters only.
    fn quoted(&mut self, s: &str) {
        self.out.push('"');
        if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
            self.out.push_str(s);
            self.out.push('"');
            return;
        }
        let mut run = 0;
        for (i, b) in s.bytes().enumerate() {
            let escape = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
                0..=0x1f => "",
                _ => continue,
            };
            self.out.push_str(s.get(run..i).unwrap_or_default());
            if escape.is_empty() {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                self.out.push_str("\\u00");
                self.out
                    .push(char::from(HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0')));
                self.out
                    .push(char::from(HEX.get(usize::from(b & 15)).copied().unwrap_or(b'0')));
            } else {
                self.out.push_str(escape);
            }
            run = i + 1;
        }
        self.out.push_str(s.get(run..).unwrap_or_default());
        self.out.push('"');
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
    fn hand_written_json_is_what_serde_json_writes() {
        let awkward = "quote \" backslash \\ nl \n cr \r tab \t bs \u{8} ff \u{c} nul \u{0} us \u{1f} del \u{7f} é 日本 🦀 /";
        let claims = json!({"iss": awkward, "sub": "svc", "azp": "c", "jti": "j", "act": {"sub": awkward, "act": {"sub": "b"}}});
        let id = Identity::from_claims("idp", claims.as_object().cloned().unwrap(), Some(9));
        let mut full = AuditRecord::new(1_795_305_600_123, Reason::Ok, 200, Some(&id)).with_request(
            Some(awkward.into()),
            Some("POST".into()),
            Some("/v1/x"),
        );
        full.route = Some("r".into());
        full.policy = Some(awkward.into());
        full.rule = Some("rule".into());
        full.action = Some("chat");
        full.model = Some("m".into());
        full.tools = vec!["a".into(), awkward.into()];
        full.blocked_tool = Some("t".into());
        full.credential_source = Some("token_exchange");
        full.upstream_sub = Some("u".into());
        full.guard_rule = Some("g".into());
        full.redactions.insert("email".into(), 2);
        full.redactions.insert(awkward.into(), 1);
        full.limit = Some("rpm".into());
        full.remaining_requests = Some(0);
        full.remaining_tokens = Some(u64::MAX);
        full.tokens_used = Some(42);
        let empty = AuditRecord::new(0, Reason::BadSignature, 401, None);
        for r in [full, empty] {
            assert_eq!(r.to_json(), serde_json::to_string(&r).unwrap());
        }
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
