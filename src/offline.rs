//! Policies tested offline: `llm-warden test FILE` runs a file of cases (a request, an
//! optional scripted upstream answer, the expected outcome) through the same pipeline the
//! filter runs in Envoy, on the in-memory host, and `llm-warden explain` shows how one
//! request was decided, rule by rule.
//!
//! Tokens are minted by the runner: every configured issuer's keys are replaced, for the
//! run only, by an Ed25519 test key of the runner (and its algorithms by `EdDSA`), so a
//! case names claims instead of carrying a token. Signature checks themselves are tested
//! by the filter's own suites; these files test what a policy decides.

use crate::authz::policy::RuleTrace;
use crate::pipeline::mock::MockHost;
use crate::pipeline::{Exchange, Flow, Root};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// A policy test file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// The plugin config: a path (relative to the test file) or the config itself.
    pub config: Value,
    /// The pinned clock, Unix seconds (default: now).
    #[serde(default)]
    pub now: Option<u64>,
    pub cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub request: RequestSpec,
    /// What the upstream answers when the request is forwarded.
    #[serde(default)]
    pub response: Option<ResponseSpec>,
    #[serde(default)]
    pub expect: Expect,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    /// Default: POST with a body, GET without.
    #[serde(default)]
    pub method: Option<String>,
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Claims of a token the runner mints; `iss`, `aud`, `iat` and `exp` default to the
    /// issuer's and the clock's.
    #[serde(default)]
    pub claims: Option<Map<String, Value>>,
    /// The configured issuer (by name) whose test key signs; default: the first.
    #[serde(default)]
    pub issuer: Option<String>,
    /// A literal `authorization` value instead of minted claims (or none at all).
    #[serde(default)]
    pub authorization: Option<String>,
    /// JSON (sent serialized) or a string (sent as is).
    #[serde(default)]
    pub body: Option<Value>,
    /// The body ends with trailers instead of a last data frame.
    #[serde(default)]
    pub trailers: bool,
    /// Envoy's route name (`xds.route_name`), for routes that match on it.
    #[serde(default)]
    pub route_name: Option<String>,
    /// The client address (`source.address`, "10.20.1.2:5000"), for `source_cidrs`.
    #[serde(default)]
    pub source_address: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseSpec {
    #[serde(default = "ok_status")]
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body in one chunk: JSON (serialized) or a string.
    #[serde(default)]
    pub body: Option<Value>,
    /// The body in these chunks (instead of `body`).
    #[serde(default)]
    pub chunks: Option<Vec<String>>,
}

fn ok_status() -> u16 {
    200
}

/// What must hold; every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The status the client sees.
    pub status: Option<u16>,
    /// Whether the request reached the upstream.
    pub forwarded: Option<bool>,
    /// `error.code` of the filter's reply.
    pub error_code: Option<String>,
    pub decision: Option<String>,
    pub reason: Option<String>,
    pub policy: Option<String>,
    pub rule: Option<String>,
    /// Request headers as the upstream gets them; null: absent.
    #[serde(default)]
    pub upstream_headers: BTreeMap<String, Option<String>>,
    /// Response headers as the client gets them; null: absent.
    #[serde(default)]
    pub client_headers: BTreeMap<String, Option<String>>,
    #[serde(default)]
    pub body_contains: Vec<String>,
    #[serde(default)]
    pub body_excludes: Vec<String>,
    /// Redactions in the answer, by type (exactly these).
    pub redactions: Option<BTreeMap<String, u64>>,
    /// Fields the audit record must have, with these values.
    #[serde(default)]
    pub audit: Map<String, Value>,
}

/// What one case came to.
#[derive(Debug, Default)]
pub struct Outcome {
    pub status: u16,
    pub forwarded: bool,
    pub error_code: Option<String>,
    pub upstream_headers: Vec<(String, String)>,
    pub client_headers: Vec<(String, String)>,
    pub client_body: String,
    pub audit: Map<String, Value>,
    pub rule_traces: Vec<RuleTrace>,
}

impl Outcome {
    fn audit_text(&self, field: &str) -> Option<String> {
        match self.audit.get(field)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            v => Some(v.to_string()),
        }
    }

    /// One line: status, decision, reason, policy and rule.
    pub fn summary(&self) -> String {
        let f = |k: &str| self.audit_text(k).unwrap_or_else(|| "-".into());
        format!(
            "status {} ({}), decision {}, reason {}, policy {}, rule {}",
            self.status,
            if self.forwarded {
                "forwarded"
            } else {
                "not forwarded"
            },
            f("decision"),
            f("reason"),
            f("policy"),
            f("rule")
        )
    }
}

pub struct CaseResult {
    pub name: String,
    pub outcome: Outcome,
    /// Each expectation that did not hold: "field: expected X, got Y".
    pub failures: Vec<String>,
}

/// Reads JSON, or YAML when the text is not JSON. A YAML mapping that names a key twice is
/// refused (JSON duplicates are refused by the config parser, with their path).
pub fn parse_document(text: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => Ok(v),
        Err(json_err) => {
            if text.trim_start().starts_with(['{', '[']) {
                return Err(format!("invalid JSON: {json_err}"));
            }
            serde_norway::from_str::<crate::authn::jose::UniqueValue>(text)
                .map(|u| u.0)
                .map_err(|e| format!("invalid YAML: {e}"))
        }
    }
}

/// The runner's signing key for the issuer at `index` (test keys, never a secret).
fn test_key(index: usize) -> ed25519_dalek::SigningKey {
    let mut seed = [0x5au8; 32];
    seed[0] = u8::try_from(index % 256).unwrap_or(0);
    ed25519_dalek::SigningKey::from_bytes(&seed)
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The config with every issuer's keys replaced by the runner's test keys.
pub fn with_test_keys(mut config: Value) -> Value {
    if let Some(issuers) = config.get_mut("issuers").and_then(Value::as_array_mut) {
        for (i, issuer) in issuers.iter_mut().enumerate() {
            let Some(obj) = issuer.as_object_mut() else {
                continue;
            };
            let x = b64(test_key(i).verifying_key().as_bytes());
            let jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": format!("test-{i}"), "x": x});
            obj.insert("jwks".into(), json!({"inline": {"keys": [jwk]}}));
            if obj.contains_key("algorithms") {
                obj.insert("algorithms".into(), json!(["EdDSA"]));
            }
        }
    }
    config
}

fn mint(
    config: &Value,
    request: &RequestSpec,
    claims: &Map<String, Value>,
    now: u64,
) -> Result<String, String> {
    use ed25519_dalek::Signer;
    let issuers = config
        .get("issuers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let index = match &request.issuer {
        None => 0,
        Some(name) => issuers
            .iter()
            .position(|i| i.get("name").and_then(Value::as_str) == Some(name))
            .ok_or_else(|| format!("request.issuer: no issuer named {name:?}"))?,
    };
    let issuer = issuers
        .get(index)
        .ok_or("the config has no issuer to mint a token for")?;
    let mut full = claims.clone();
    let mut default = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            full.entry(k.to_string()).or_insert(v);
        }
    };
    default("iss", issuer.get("issuer").cloned());
    default("aud", issuer.get("audiences").and_then(|a| a.get(0)).cloned());
    default("iat", Some(json!(now.saturating_sub(10))));
    default("exp", Some(json!(now.saturating_add(300))));
    let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": format!("test-{index}")});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(Value::Object(full).to_string().as_bytes())
    );
    let sig = test_key(index).sign(input.as_bytes());
    Ok(format!("{input}.{}", b64(&sig.to_bytes())))
}

fn body_bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::String(s) => s.clone().into_bytes(),
        other => other.to_string().into_bytes(),
    }
}

/// One filter instance (one Envoy worker) on the in-memory host. Cases of a file run in
/// order on one instance: limits and caches carry over from case to case.
pub struct Harness {
    host: &'static MockHost,
    root: Root,
    config: Value,
    next_context: u32,
}

impl Harness {
    /// Configures the filter with `config` (keys replaced by test keys) at `now`.
    pub fn new(config: &Value, now: u64, explain: bool) -> Result<Harness, String> {
        let config = with_test_keys(config.clone());
        crate::config::Config::parse(config.to_string().as_bytes()).map_err(|e| e.to_string())?;
        let host = MockHost::leaked(now);
        *host.plugin_config.borrow_mut() = config.to_string().into_bytes();
        host.context.set(1);
        let mut root = Root::new(1, host);
        if explain {
            root.explain_rules();
        }
        if !root.on_configure() {
            return Err("the filter refused the config".into());
        }
        Ok(Harness {
            host,
            root,
            config,
            next_context: 1,
        })
    }

    fn now(&self) -> u64 {
        self.host.now_ns.get() / 1_000_000_000
    }

    /// Runs one request (and the scripted answer) through a new exchange.
    pub fn run(&mut self, request: &RequestSpec, response: Option<&ResponseSpec>) -> Result<Outcome, String> {
        self.next_context += 1;
        let context = self.next_context;
        let host = self.host;
        host.context.set(context);
        let body = request.body.as_ref().map(body_bytes);
        let method = request
            .method
            .clone()
            .unwrap_or_else(|| if body.is_some() { "POST" } else { "GET" }.into());
        let mut headers = vec![
            (":method".to_string(), method),
            (":path".to_string(), request.path.clone()),
            (":scheme".to_string(), "http".to_string()),
        ];
        let has = |name: &str| request.headers.keys().any(|k| k.eq_ignore_ascii_case(name));
        if !has(":authority") && !has("host") {
            headers.push((":authority".into(), "llm.test".into()));
        }
        if body.is_some() && !has("content-type") {
            headers.push(("content-type".into(), "application/json".into()));
        }
        for (k, v) in &request.headers {
            let k = if k.eq_ignore_ascii_case("host") {
                ":authority".into()
            } else {
                k.to_ascii_lowercase()
            };
            headers.push((k, v.clone()));
        }
        if let Some(claims) = &request.claims {
            let token = mint(&self.config, request, claims, self.now())?;
            headers.push(("authorization".into(), format!("Bearer {token}")));
        } else if let Some(a) = &request.authorization {
            headers.push(("authorization".into(), a.clone()));
        }
        host.with_stream(|s| s.request_headers = headers);
        {
            let mut inputs = host.inputs.borrow_mut();
            inputs.clear();
            if let Some(r) = &request.route_name {
                inputs.insert("xds.route_name".into(), r.clone().into_bytes());
            }
            if let Some(a) = &request.source_address {
                inputs.insert("source.address".into(), a.clone().into_bytes());
            }
        }
        let mut x = self.root.new_exchange(context);
        let mut flow = x.on_request_headers(body.is_none());
        if let (Some(body), true) = (&body, host.stream(context).reply.is_none()) {
            host.context.set(context);
            host.with_stream(|s| s.request_body = body.clone());
            flow = x.on_request_body(body.len(), !request.trailers);
            if request.trailers && host.stream(context).reply.is_none() {
                host.context.set(context);
                flow = x.on_request_trailers();
            }
        }
        let stream = host.stream(context);
        let forwarded = stream.reply.is_none() && (flow == Flow::Continue || stream.resumed > 0);
        let mut out = Outcome {
            forwarded,
            upstream_headers: if forwarded {
                stream.request_headers.clone()
            } else {
                Vec::new()
            },
            ..Outcome::default()
        };
        if forwarded {
            self.answer(&mut x, context, response, &mut out);
        }
        host.context.set(context);
        x.on_log();
        out.rule_traces = x.rule_traces().map(<[RuleTrace]>::to_vec).unwrap_or_default();
        let stream = host.stream(context);
        if let Some((status, headers, body)) = stream.reply {
            out.status = u16::try_from(status).unwrap_or(0);
            out.client_headers = headers;
            out.error_code = serde_json::from_str::<Value>(&body).ok().and_then(|v| {
                v.pointer("/error/code")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
            out.client_body = body;
        }
        let audit_key = self
            .config
            .pointer("/audit/filter_state_key")
            .and_then(Value::as_str)
            .unwrap_or("llm_warden.audit");
        if let Some(Ok(Value::Object(a))) = stream
            .properties
            .get(audit_key)
            .map(|b| serde_json::from_slice(b))
        {
            out.audit = a;
        }
        Ok(out)
    }

    /// Plays the upstream's answer through the response callbacks, as Envoy delivers them:
    /// a chunk the filter lets go reaches the client; a held one is re-delivered with the
    /// next (the buffer grows until the filter continues).
    fn answer(&self, x: &mut Exchange, context: u32, response: Option<&ResponseSpec>, out: &mut Outcome) {
        let host = self.host;
        let default = ResponseSpec::default();
        let r = response.unwrap_or(&default);
        let status = if response.is_some() { r.status } else { 200 };
        let mut headers = vec![(":status".to_string(), status.to_string())];
        headers.extend(r.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())));
        let chunks: Vec<Vec<u8>> = match (&r.chunks, &r.body) {
            (Some(c), _) => c.iter().map(|s| s.clone().into_bytes()).collect(),
            (None, Some(b)) => vec![body_bytes(b)],
            (None, None) => Vec::new(),
        };
        if !chunks.is_empty() && !headers.iter().any(|(k, _)| k == "content-type") {
            headers.push(("content-type".into(), "application/json".into()));
        }
        host.context.set(context);
        host.with_stream(|s| s.response_headers = headers);
        let _ = x.on_response_headers(chunks.is_empty());
        let mut client = Vec::new();
        let last = chunks.len().saturating_sub(1);
        for (i, chunk) in chunks.iter().enumerate() {
            host.context.set(context);
            let size = host.with_stream(|s| {
                s.response_body.extend_from_slice(chunk);
                s.response_body.len()
            });
            if x.on_response_body(size, i == last) == Flow::Continue {
                host.with_stream(|s| client.append(&mut s.response_body));
            }
        }
        let stream = host.stream(context);
        out.status = stream
            .response_headers
            .iter()
            .find(|(k, _)| k == ":status")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(status);
        out.client_headers = stream.response_headers;
        out.client_body = String::from_utf8_lossy(&client).into_owned();
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Every expectation of `e` that `o` does not meet.
pub fn check(e: &Expect, o: &Outcome) -> Vec<String> {
    let mut f = Vec::new();
    let mut want = |field: &str, expected: &dyn std::fmt::Debug, got: &dyn std::fmt::Debug, ok: bool| {
        if !ok {
            f.push(format!("{field}: expected {expected:?}, got {got:?}"));
        }
    };
    if let Some(s) = e.status {
        want("status", &s, &o.status, s == o.status);
    }
    if let Some(fw) = e.forwarded {
        want("forwarded", &fw, &o.forwarded, fw == o.forwarded);
    }
    if let Some(c) = &e.error_code {
        want("error_code", c, &o.error_code, o.error_code.as_ref() == Some(c));
    }
    for (field, expected) in [
        ("decision", &e.decision),
        ("reason", &e.reason),
        ("policy", &e.policy),
        ("rule", &e.rule),
    ] {
        if let Some(x) = expected {
            let got = o.audit_text(field);
            want(field, x, &got, got.as_ref() == Some(x));
        }
    }
    for (name, expected) in &e.upstream_headers {
        let got = header(&o.upstream_headers, name);
        let field = format!("upstream_headers.{name}");
        want(&field, expected, &got, got == expected.as_deref());
    }
    for (name, expected) in &e.client_headers {
        let got = header(&o.client_headers, name);
        let field = format!("client_headers.{name}");
        want(&field, expected, &got, got == expected.as_deref());
    }
    for s in &e.body_contains {
        want(
            "body_contains",
            s,
            &o.client_body,
            o.client_body.contains(s.as_str()),
        );
    }
    for s in &e.body_excludes {
        want(
            "body_excludes",
            s,
            &o.client_body,
            !o.client_body.contains(s.as_str()),
        );
    }
    if let Some(r) = &e.redactions {
        let got: BTreeMap<String, u64> = o
            .audit
            .get("redactions")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        want("redactions", r, &got, *r == got);
    }
    for (k, v) in &e.audit {
        let got = o.audit.get(k);
        let field = format!("audit.{k}");
        want(&field, v, &got, got == Some(v));
    }
    f
}

/// The config a test file names: inline, or a path relative to the file.
pub fn config_of(file: &TestFile, dir: &Path) -> Result<Value, String> {
    match &file.config {
        Value::String(p) => {
            let path = dir.join(p);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("config: cannot read {}: {e}", path.display()))?;
            parse_document(&text).map_err(|e| format!("config {}: {e}", path.display()))
        }
        Value::Object(_) => Ok(file.config.clone()),
        _ => Err("config: a path or an object".into()),
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs every case of a test file.
pub fn run_file(file: &TestFile, dir: &Path) -> Result<Vec<CaseResult>, String> {
    let config = config_of(file, dir)?;
    let mut h = Harness::new(&config, file.now.unwrap_or_else(unix_now), false)?;
    let mut results = Vec::new();
    for case in &file.cases {
        let (outcome, failures) = match h.run(&case.request, case.response.as_ref()) {
            Ok(o) => {
                let f = check(&case.expect, &o);
                (o, f)
            }
            Err(e) => (Outcome::default(), vec![e]),
        };
        results.push(CaseResult {
            name: case.name.clone(),
            outcome,
            failures,
        });
    }
    Ok(results)
}

/// Parses a test file (JSON or YAML).
pub fn parse_test_file(text: &str) -> Result<TestFile, String> {
    let v = parse_document(text)?;
    serde_json::from_value(v).map_err(|e| format!("test file: {e}"))
}

/// How one request is decided: the outcome, then each rule's verdict.
pub fn explain(config: &Value, request: &RequestSpec, now: Option<u64>) -> Result<String, String> {
    let mut h = Harness::new(config, now.unwrap_or_else(unix_now), true)?;
    let o = h.run(request, None)?;
    let mut text = format!("{}\n", o.summary());
    if let Some(code) = &o.error_code {
        text.push_str(&format!("error code: {code}\n"));
    }
    if o.rule_traces.is_empty() {
        text.push_str("no policy rule was evaluated (authentication, route or request refused first)\n");
    }
    for t in &o.rule_traces {
        text.push_str(&format!("  rule {:?}: {}\n", t.rule, t.verdict));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn config() -> Value {
        json!({"issuers": [{"name": "idp", "issuer": "https://idp.test", "audiences": ["llm-api"],
                "jwks": {"remote": {"cluster": "idp", "path": "/jwks"}}}],
               "authorization": {"routes": [{"match": {"path_prefix": "/"}, "policy": "p"}],
                 "policies": {"p": {"rules": [
                   {"name": "admins", "when": {"scopes": ["llm:admin"]}, "actions": ["*", "other"]},
                   {"name": "chat", "when": {"scopes": ["llm:chat"]}, "models": ["gpt-4o-mini"],
                    "limits": [{"name": "rpm", "requests": 2, "per": "minute"}]}]}}}})
    }

    fn file(cases: Value) -> TestFile {
        serde_json::from_value(json!({"config": config(), "now": NOW, "cases": cases})).unwrap()
    }

    fn chat(model: &str) -> Value {
        json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
    }

    #[test]
    fn cases_run_in_order_on_one_filter() {
        let f = file(json!([
            {"name": "allowed", "request": {"path": "/v1/chat/completions",
              "claims": {"sub": "alice", "scope": "llm:chat"}, "body": chat("gpt-4o-mini")},
             "response": {"body": {"choices": []}},
             "expect": {"status": 200, "forwarded": true, "rule": "chat",
                        "upstream_headers": {"x-warden-subject": "alice", "authorization": null}}},
            {"name": "model refused", "request": {"path": "/v1/chat/completions",
              "claims": {"sub": "alice", "scope": "llm:chat"}, "body": chat("gpt-4o")},
             "expect": {"status": 403, "forwarded": false, "error_code": "model_not_permitted"}},
            {"name": "second call within the limit", "request": {"path": "/v1/chat/completions",
              "claims": {"sub": "alice", "scope": "llm:chat"}, "body": chat("gpt-4o-mini")},
             "expect": {"status": 200}},
            {"name": "third is limited", "request": {"path": "/v1/chat/completions",
              "claims": {"sub": "alice", "scope": "llm:chat"}, "body": chat("gpt-4o-mini")},
             "expect": {"status": 429, "client_headers": {"retry-after": "30"}}},
            {"name": "no token", "request": {"path": "/v1/models"},
             "expect": {"status": 401, "forwarded": false}},
            {"name": "trailers end the body", "request": {"path": "/v1/chat/completions",
              "claims": {"sub": "bob", "scope": "llm:chat"}, "body": chat("gpt-4o"), "trailers": true},
             "expect": {"status": 403, "forwarded": false}}
        ]));
        let results = run_file(&f, Path::new(".")).unwrap();
        for r in &results {
            assert!(
                r.failures.is_empty(),
                "{}: {:?} ({})",
                r.name,
                r.failures,
                r.outcome.summary()
            );
        }
        assert_eq!(results.len(), 6);
    }

    #[test]
    fn a_wrong_expectation_is_reported_with_both_values() {
        let f = file(json!([{"name": "x", "request": {"path": "/v1/models"},
            "expect": {"status": 200, "error_code": "nope"}}]));
        let results = run_file(&f, Path::new(".")).unwrap();
        let failures = &results[0].failures;
        assert_eq!(failures.len(), 2, "{failures:?}");
        assert!(
            failures[0].starts_with("status: expected 200, got 401"),
            "{failures:?}"
        );
    }

    #[test]
    fn explain_names_each_rules_first_unmet_condition() {
        let request: RequestSpec = serde_json::from_value(json!({"path": "/v1/chat/completions",
            "claims": {"sub": "alice", "scope": "llm:chat"}, "body": chat("gpt-4o")}))
        .unwrap();
        let text = explain(&config(), &request, Some(NOW)).unwrap();
        assert!(text.starts_with("status 403"), "{text}");
        assert!(
            text.contains(
                "rule \"admins\": does not apply: when.scopes: the token lacks scope \"llm:admin\""
            ),
            "{text}"
        );
        assert!(
            text.contains("rule \"chat\": applies, refuses: model_not_permitted"),
            "{text}"
        );
    }

    #[test]
    fn unknown_fields_in_a_test_file_are_errors() {
        let err = parse_test_file(r#"{"config": {}, "cases": [], "extra": 1}"#)
            .err()
            .unwrap();
        assert!(err.contains("extra"), "{err}");
    }
}
