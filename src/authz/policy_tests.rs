//! Policy evaluation: globs, routes, default deny, ABAC conditions with a fixed clock, caps.

use crate::authn::claims::Identity;
use crate::authz::llm_request::{parse_body, BodyFacts, Endpoint};
use crate::authz::policy::key_value;
use crate::authz::policy::*;
use crate::authz::request_path::{canonical, CanonicalPath};
use crate::outcome::reason::RequestProblem;
use serde_json::{json, Value};

fn authorizer(cfg: Value) -> Authorizer {
    let cfg: AuthorizationConfig = serde_json::from_value(cfg).unwrap();
    Authorizer::new(&cfg, &["workloads".to_string(), "humans".to_string()]).unwrap()
}

fn identity(issuer: &str, claims: Value) -> Identity {
    Identity::from_claims(issuer, claims.as_object().cloned().unwrap(), None)
}

fn facts(body: Value) -> BodyFacts {
    parse_body(body.to_string().as_bytes()).unwrap().1
}

/// 2026-11-23 is a Monday; 10:30 UTC.
const MONDAY_1030_UTC: u64 = 1_795_429_800;

fn no_headers(_: &str) -> Option<String> {
    None
}

/// A canonical path that lives as long as the test (views borrow it).
fn path(raw: &str) -> &'static CanonicalPath {
    Box::leak(Box::new(canonical(raw).unwrap()))
}

fn view<'a>(
    endpoint: Endpoint,
    body: Option<&'a BodyFacts>,
    header: &'a dyn Fn(&str) -> Option<String>,
) -> RequestView<'a> {
    view_at("/", endpoint, body, header)
}

fn view_at<'a>(
    raw_path: &str,
    endpoint: Endpoint,
    body: Option<&'a BodyFacts>,
    header: &'a dyn Fn(&str) -> Option<String>,
) -> RequestView<'a> {
    RequestView {
        endpoint,
        path: path(raw_path),
        source_ip: "10.1.2.3".parse().ok(),
        now_unix: MONDAY_1030_UTC,
        header,
        body,
        model_outside_body: None,
    }
}

fn base() -> Value {
    json!({
        "routes": [
            {"match": {"route_name": "admin*"}, "policy": "admin"},
            {"match": {"path_prefix": "/v1/"}, "policy": "inference"}
        ],
        "policies": {
            "inference": {"rules": [
                {"name": "analysts", "when": {"scopes": ["llm:chat"], "claims": {"department": {"in": ["analytics", "ds"]}}},
                 "models": ["gpt-4o-mini", "llama-3-*"], "tools": ["search_*"], "max_tokens": {"limit": 1024}},
                {"name": "agents", "when": {"issuers": ["workloads"], "any_scopes": ["agent", "llm:agent"]},
                 "models": ["*"], "tools": ["*"], "streaming": false,
                 "max_tokens": {"limit": 256, "on_exceed": "clamp"}}
            ]},
            "admin": {"rules": [
                {"name": "humans-admin", "when": {"issuers": ["humans"], "audiences": ["llm-admin"], "scopes": ["llm:admin"]},
                 "other_paths": ["/admin/**"]}
            ]}
        }
    })
}

fn analyst() -> Identity {
    identity(
        "humans",
        json!({"sub": "ana", "aud": "llm-api", "scope": "llm:chat", "department": "analytics"}),
    )
}

#[test]
fn glob_matching() {
    assert!(glob("*", ""));
    assert!(glob("llama-3-*", "llama-3-70b"));
    assert!(!glob("llama-3-*", "llama-2-70b"));
    assert!(glob("*-mini", "gpt-4o-mini"));
    assert!(glob("a*b*c", "aXXbYYc"));
    assert!(!glob("a*b*c", "aXXbYY"));
    assert!(glob("exact", "exact"));
    assert!(!glob("exact", "exactly"));
    assert!(glob("**", "anything"));
}

#[test]
fn routes_by_name_host_prefix_and_default_deny() {
    let a = authorizer(json!({
        "routes": [
            {"match": {"route_name": "admin"}, "policy": "p"},
            {"match": {"host": "*.internal", "path_prefix": "/v1/"}, "policy": "p"}
        ],
        "policies": {"p": {"rules": [{"name": "r"}]}}
    }));
    assert!(a.route(Some("admin"), None, path("/x")).is_some());
    assert!(a
        .route(None, Some("llm.internal:8443"), path("/v1/chat/completions"))
        .is_some());
    assert!(a.route(None, Some("LLM.INTERNAL"), path("/v1/x")).is_some());
    assert!(a.route(None, Some("llm.public"), path("/v1/x")).is_none());
    assert!(a.route(None, Some("llm.internal"), path("/v2/x")).is_none());
    assert_eq!(no_route().denial, Some(Denial::NoRoute));
}

#[test]
fn allowed_model_and_tools() {
    let a = authorizer(base());
    let p = a.route(None, None, path("/v1/chat/completions")).unwrap();
    let f = facts(json!({"model": "llama-3-8b", "tools": [{"name": "search_web"}], "max_tokens": 100}));
    let d = p.decide(
        &analyst(),
        &view(Endpoint::ChatCompletions, Some(&f), &no_headers),
    );
    assert_eq!(d.denial, None);
    assert_eq!(d.rule.as_deref(), Some("analysts"));
    assert!(d.tool_allowed("search_docs"));
    assert!(!d.tool_allowed("delete_db"));
}

#[test]
fn forbidden_model_tool_stream_and_caps() {
    let a = authorizer(base());
    let p = a.route(None, None, path("/v1/chat/completions")).unwrap();
    let decide = |id: &Identity, body: Value| {
        let f = facts(body);
        p.decide(id, &view(Endpoint::ChatCompletions, Some(&f), &no_headers))
            .denial
    };
    assert_eq!(
        decide(&analyst(), json!({"model": "gpt-4o", "max_tokens": 1})),
        Some(Denial::ModelNotPermitted)
    );
    assert_eq!(
        decide(
            &analyst(),
            json!({"model": "gpt-4o-mini", "max_tokens": 1, "tools": [{"name": "shell"}]})
        ),
        Some(Denial::ToolNotPermitted("shell".into()))
    );
    // A forced tool counts even if not declared.
    assert_eq!(
        decide(
            &analyst(),
            json!({"model": "gpt-4o-mini", "max_tokens": 1, "tool_choice": {"type": "tool", "name": "shell"}})
        ),
        Some(Denial::ToolNotPermitted("shell".into()))
    );
    assert_eq!(
        decide(
            &analyst(),
            json!({"model": "gpt-4o-mini", "tool_choice": "required", "max_tokens": 1})
        ),
        None,
        "analysts may use search_* tools"
    );
    assert_eq!(
        decide(&analyst(), json!({"model": "gpt-4o-mini", "max_tokens": 5000})),
        Some(Denial::MaxTokensExceeded(1024))
    );
    assert_eq!(
        decide(&analyst(), json!({"messages": []})),
        Some(Denial::ModelRequired)
    );
    let agent = identity("workloads", json!({"sub": "bot", "scope": "agent"}));
    assert_eq!(
        decide(&agent, json!({"model": "x", "stream": true})),
        Some(Denial::StreamingNotPermitted)
    );
}

#[test]
fn clamp_and_missing_cap() {
    let a = authorizer(base());
    let p = a.route(None, None, path("/v1/chat/completions")).unwrap();
    let agent = identity("workloads", json!({"sub": "bot", "scope": "agent"}));
    let f = facts(json!({"model": "anything", "max_tokens": 9999}));
    let d = p.decide(&agent, &view(Endpoint::ChatCompletions, Some(&f), &no_headers));
    assert_eq!((d.denial, d.clamp_to), (None, Some(256)));
    let f = facts(json!({"model": "anything", "max_tokens": 10}));
    assert_eq!(
        p.decide(&agent, &view(Endpoint::ChatCompletions, Some(&f), &no_headers))
            .clamp_to,
        None
    );
    // Reject-mode cap with no max_tokens in the request: set the cap explicitly.
    let f = facts(json!({"model": "gpt-4o-mini"}));
    let d = p.decide(
        &analyst(),
        &view(Endpoint::ChatCompletions, Some(&f), &no_headers),
    );
    assert_eq!((d.denial, d.clamp_to), (None, Some(1024)));
}

#[test]
fn default_deny_for_callers_without_a_rule() {
    let a = authorizer(base());
    let p = a.route(None, None, path("/v1/chat/completions")).unwrap();
    let nobody = identity("humans", json!({"sub": "x", "scope": "profile"}));
    let f = facts(json!({"model": "gpt-4o-mini"}));
    let req = view(Endpoint::ChatCompletions, Some(&f), &no_headers);
    assert!(!p.applies_to_anyone(&nobody, &req));
    let d = p.decide(&nobody, &req);
    assert_eq!(d.denial, Some(Denial::InsufficientScope));
    assert_eq!(d.rule, None);
    // Wrong department: claim condition fails.
    let other_dept = identity(
        "humans",
        json!({"sub": "y", "scope": "llm:chat", "department": "sales"}),
    );
    assert_eq!(
        p.decide(&other_dept, &req).denial,
        Some(Denial::InsufficientScope)
    );
}

#[test]
fn inference_token_never_opens_admin_route() {
    let a = authorizer(base());
    let admin = a
        .route(Some("admin-models"), None, path("/admin/models"))
        .unwrap();
    let req = view_at("/admin/models", Endpoint::Other, None, &no_headers);
    // Even an inference token holding the admin scope: wrong issuer and audience.
    let workload = identity(
        "workloads",
        json!({"sub": "bot", "aud": "llm-api", "scope": "agent llm:admin"}),
    );
    assert_eq!(
        admin.decide(&workload, &req).denial,
        Some(Denial::InsufficientScope)
    );
    let human_wrong_aud = identity(
        "humans",
        json!({"sub": "op", "aud": "llm-api", "scope": "llm:admin"}),
    );
    assert_eq!(
        admin.decide(&human_wrong_aud, &req).denial,
        Some(Denial::InsufficientScope)
    );
    let human_admin = identity(
        "humans",
        json!({"sub": "op", "aud": ["llm-admin"], "scope": "llm:admin"}),
    );
    assert_eq!(admin.decide(&human_admin, &req).denial, None);
}

fn one_rule(when: Value) -> Authorizer {
    authorizer(json!({"routes": [{"match": {"path_prefix": "/"}, "policy": "p"}],
        "policies": {"p": {"rules": [{"name": "r", "when": when, "models": ["*"]}]}}}))
}

fn allowed_at(
    a: &Authorizer,
    id: &Identity,
    now: u64,
    ip: &str,
    header: &dyn Fn(&str) -> Option<String>,
) -> bool {
    let p = a.route(None, None, path("/v1/models")).unwrap();
    let req = RequestView {
        endpoint: Endpoint::Models,
        path: path("/v1/models"),
        source_ip: ip.parse().ok(),
        now_unix: now,
        header,
        body: None,
        model_outside_body: None,
    };
    p.decide(id, &req).denial.is_none()
}

#[test]
fn claim_conditions_equals_in_prefix_nested_and_arrays() {
    let a = one_rule(
        json!({"claims": {"tenant": {"equals": "acme"}, "org.unit": {"in": ["r&d", "ml"]},
        "groups": {"equals": "llm-users"}, "email": {"prefix": "svc-"}}}),
    );
    let good = identity(
        "humans",
        json!({"tenant": "acme", "org": {"unit": "ml"}, "groups": ["staff", "llm-users"], "email": "svc-1@x"}),
    );
    assert!(allowed_at(&a, &good, MONDAY_1030_UTC, "10.0.0.1", &no_headers));
    for (k, v) in [
        ("tenant", json!("evil")),
        ("org", json!({"unit": "sales"})),
        ("groups", json!(["staff"])),
        ("email", json!("me@x")),
    ] {
        let mut c = good.claims.clone();
        c.insert(k.into(), v);
        let id = Identity::from_claims("humans", c, None);
        assert!(
            !allowed_at(&a, &id, MONDAY_1030_UTC, "10.0.0.1", &no_headers),
            "{k}"
        );
    }
    let mut c = good.claims.clone();
    c.remove("tenant");
    assert!(!allowed_at(
        &a,
        &Identity::from_claims("humans", c, None),
        MONDAY_1030_UTC,
        "10.0.0.1",
        &no_headers
    ));
}

#[test]
fn weekly_time_window_with_offset() {
    // Office hours Mon-Fri 09:00-18:00 in UTC+02:00.
    let a = one_rule(
        json!({"time_windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00", "utc_offset": "+02:00"}]}),
    );
    let id = analyst();
    let at = |secs: u64| allowed_at(&a, &id, secs, "10.0.0.1", &no_headers);
    assert!(at(MONDAY_1030_UTC), "12:30 local Monday");
    assert!(!at(MONDAY_1030_UTC - 4 * 3600), "08:30 local Monday");
    assert!(at(MONDAY_1030_UTC - 3 * 3600 - 1800), "09:00 local is inclusive");
    assert!(!at(MONDAY_1030_UTC + 5 * 3600 + 1800), "18:00 local is exclusive");
    assert!(!at(MONDAY_1030_UTC - 2 * 86_400), "Saturday");
    // Overnight window Fri 22:00 - 02:00 UTC belongs to Friday.
    let night = one_rule(json!({"time_windows": [{"days": ["fri"], "start": "22:00", "end": "02:00"}]}));
    let friday_2300 = MONDAY_1030_UTC - 3 * 86_400 + 12 * 3600 + 1800;
    let at = |secs: u64| allowed_at(&night, &id, secs, "10.0.0.1", &no_headers);
    assert!(at(friday_2300));
    assert!(
        at(friday_2300 + 2 * 3600),
        "Saturday 01:00 is still Friday's window"
    );
    assert!(!at(friday_2300 + 3 * 3600), "Saturday 02:00");
    assert!(
        !at(friday_2300 - 86_400 + 2 * 3600),
        "Friday 01:00 belongs to Thursday's window"
    );
}

#[test]
fn source_cidrs() {
    let a = one_rule(json!({"source_cidrs": ["10.0.0.0/8", "2001:db8::/32", "192.168.1.7"]}));
    let id = analyst();
    let at = |ip: &str| allowed_at(&a, &id, MONDAY_1030_UTC, ip, &no_headers);
    assert!(at("10.200.0.1"));
    assert!(at("::ffff:10.1.1.1"), "IPv4-mapped IPv6");
    assert!(at("2001:db8:1::5"));
    assert!(at("192.168.1.7"));
    assert!(!at("192.168.1.8"));
    assert!(!at("11.0.0.1"));
    assert!(!at("not an ip"));
    assert_eq!(parse_source_address("127.0.0.1:5555"), "127.0.0.1".parse().ok());
    assert_eq!(parse_source_address("[::1]:80"), "::1".parse().ok());
    let zero = Cidr::parse("0.0.0.0/0").unwrap();
    assert!(zero.contains("8.8.8.8".parse().unwrap()));
}

#[test]
fn header_conditions() {
    let a = one_rule(
        json!({"headers": {"x-env": {"in": ["prod", "staging"]}, "x-team": {"present": true}, "x-debug": {"present": false}}}),
    );
    let id = analyst();
    let h = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    };
    assert!(allowed_at(
        &a,
        &id,
        MONDAY_1030_UTC,
        "1.1.1.1",
        &h(&[("x-env", "prod"), ("x-team", "ml")])
    ));
    assert!(!allowed_at(
        &a,
        &id,
        MONDAY_1030_UTC,
        "1.1.1.1",
        &h(&[("x-env", "dev"), ("x-team", "ml")])
    ));
    assert!(!allowed_at(
        &a,
        &id,
        MONDAY_1030_UTC,
        "1.1.1.1",
        &h(&[("x-env", "prod")])
    ));
    assert!(!allowed_at(
        &a,
        &id,
        MONDAY_1030_UTC,
        "1.1.1.1",
        &h(&[("x-env", "prod"), ("x-team", "a"), ("x-debug", "1")])
    ));
    assert_eq!(a.condition_headers, vec!["x-debug", "x-env", "x-team"]);
}

#[test]
fn monitor_mode_passes_but_records_denial() {
    let mut cfg = base();
    cfg["policies"]["inference"]["mode"] = json!("monitor");
    let a = authorizer(cfg);
    let p = a.route(None, None, path("/v1/chat/completions")).unwrap();
    let f = facts(json!({"model": "gpt-4o"}));
    let d = p.decide(
        &analyst(),
        &view(Endpoint::ChatCompletions, Some(&f), &no_headers),
    );
    assert_eq!(d.denial, Some(Denial::ModelNotPermitted));
    assert!(d.passes());
}

#[test]
fn model_from_path_or_header() {
    let a = authorizer(json!({"routes": [{"match": {"path_prefix": "/"}, "policy": "p"}],
        "policies": {"p": {"rules": [{"name": "r", "models": ["gpt-4o"]}]}},
        "model_from": {"path_patterns": ["/openai/deployments/{model}/**"], "header": "x-model"}}));
    assert_eq!(
        a.model_outside_body(path("/openai/deployments/gpt-4o/chat/completions"), no_headers),
        Ok(Some("gpt-4o".into()))
    );
    let hdr = |n: &str| (n == "x-model").then(|| "llama".to_string());
    assert_eq!(
        a.model_outside_body(path("/v1/chat/completions"), hdr),
        Ok(Some("llama".into()))
    );
    let p = a
        .route(None, None, path("/openai/deployments/gpt-4o/chat/completions"))
        .unwrap();
    let f = facts(json!({"messages": []}));
    let mut req = view(Endpoint::ChatCompletions, Some(&f), &no_headers);
    req.model_outside_body = Some("gpt-4o".into());
    assert_eq!(p.decide(&analyst(), &req).denial, None);
    req.model_outside_body = Some("gpt-5".into());
    assert_eq!(p.decide(&analyst(), &req).denial, Some(Denial::ModelNotPermitted));
}

#[test]
fn actions() {
    let a = authorizer(json!({"routes": [{"match": {"path_prefix": "/"}, "policy": "p"}],
        "policies": {"p": {"rules": [{"name": "embed-only", "actions": ["embeddings", "models"], "models": ["*"]}]}}}));
    let p = a.route(None, None, path("/")).unwrap();
    let f = facts(json!({"model": "e5"}));
    assert_eq!(
        p.decide(&analyst(), &view(Endpoint::Embeddings, Some(&f), &no_headers))
            .denial,
        None
    );
    assert_eq!(
        p.decide(
            &analyst(),
            &view(Endpoint::ChatCompletions, Some(&f), &no_headers)
        )
        .denial,
        Some(Denial::ActionNotPermitted)
    );
}

#[test]
fn denial_messages_say_what_is_missing_not_policy_internals() {
    for d in [
        Denial::ModelNotPermitted,
        Denial::InsufficientScope,
        Denial::ToolNotPermitted("x".repeat(500)),
    ] {
        let m = d.message();
        assert!(
            !m.contains("analysts") && !m.contains("policy") && m.len() < 200,
            "{m}"
        );
    }
}

#[test]
fn config_errors_name_paths() {
    let check = |cfg: Value, path: &str| {
        let cfg: AuthorizationConfig = serde_json::from_value(cfg).unwrap();
        let e = Authorizer::new(&cfg, &["workloads".to_string()]).unwrap_err();
        assert_eq!(e.path, path, "{e}");
    };
    let with_rule = |rule: Value| json!({"routes": [{"match": {"path_prefix": "/"}, "policy": "p"}], "policies": {"p": {"rules": [rule]}}});
    check(json!({"routes": [], "policies": {}}), "authorization.routes");
    check(
        json!({"routes": [{"match": {}, "policy": "p"}], "policies": {"p": {"rules": [{"name": "r"}]}}}),
        "authorization.routes[0].match",
    );
    check(
        json!({"routes": [{"match": {"path_prefix": "/"}, "policy": "nope"}], "policies": {"p": {"rules": [{"name": "r"}]}}}),
        "authorization.routes[0].policy",
    );
    check(
        with_rule(json!({"name": "r", "when": {"issuers": ["ghost"]}})),
        "authorization.policies.p.rules[0].when.issuers[0]",
    );
    check(
        with_rule(json!({"name": "r", "when": {"source_cidrs": ["10.0.0.0/33"]}})),
        "authorization.policies.p.rules[0].when.source_cidrs[0]",
    );
    check(
        with_rule(
            json!({"name": "r", "when": {"time_windows": [{"days": ["funday"], "start": "09:00", "end": "10:00"}]}}),
        ),
        "authorization.policies.p.rules[0].when.time_windows[0].days[0]",
    );
    check(
        with_rule(
            json!({"name": "r", "when": {"time_windows": [{"days": ["mon"], "start": "9am", "end": "10:00"}]}}),
        ),
        "authorization.policies.p.rules[0].when.time_windows[0].start",
    );
    check(
        with_rule(json!({"name": "r", "when": {"headers": {"X-Env": {"equals": "a"}}}})),
        "authorization.policies.p.rules[0].when.headers.X-Env",
    );
    check(
        with_rule(json!({"name": "r", "max_tokens": {"limit": 0}})),
        "authorization.policies.p.rules[0].max_tokens.limit",
    );
}

#[test]
fn limits_compile_and_config_errors_name_paths() {
    let with_limits = |limits: Value| {
        json!({"routes": [{"match": {"path_prefix": "/"}, "policy": "p"}],
               "policies": {"p": {"rules": [{"name": "r", "models": ["*"], "limits": limits}]}},
               "rate_limiting": {"model_groups": {"large": ["gpt-4o*", "llama-3-70b*"]}}})
    };
    let a = authorizer(with_limits(json!([
        {"name": "rpm", "requests": 30, "per": "minute"},
        {"name": "tpd", "tokens": 100000, "per": "day", "by": "claim:tenant", "models": "group", "reserve": true}
    ])));
    let p = a.route(None, None, path("/")).unwrap();
    let f = facts(json!({"model": "gpt-4o-mini"}));
    let d = p.decide(
        &analyst(),
        &view(Endpoint::ChatCompletions, Some(&f), &no_headers),
    );
    assert_eq!(d.limits.len(), 2);
    assert_eq!(d.limits[1].limit.period_ns, 86_400_000_000_000);
    assert_eq!(
        a.model_key(crate::limits::ratelimit::ModelScope::Group, Some("gpt-4o-mini")),
        "group:large"
    );
    assert_eq!(
        a.model_key(crate::limits::ratelimit::ModelScope::Group, Some("phi-3")),
        "phi-3"
    );
    assert_eq!(
        a.model_key(crate::limits::ratelimit::ModelScope::Any, Some("phi-3")),
        ""
    );
    let tenant = identity("humans", json!({"sub": "x", "tenant": "acme"}));
    let iss = &tenant.iss;
    assert_eq!(
        key_value(&d.limits[1].by, &tenant),
        format!("{}:{iss}/acme", iss.len())
    );

    let check = |limits: Value, path: &str| {
        let cfg: AuthorizationConfig = serde_json::from_value(with_limits(limits)).unwrap();
        let e = Authorizer::new(&cfg, &[]).unwrap_err();
        assert_eq!(e.path, path, "{e}");
    };
    let rp = "authorization.policies.p.rules[0].limits";
    check(
        json!([{"name": "x", "requests": 1, "tokens": 1, "per": "minute"}]),
        &format!("{rp}[0]"),
    );
    check(json!([{"name": "x", "per": "minute"}]), &format!("{rp}[0]"));
    check(
        json!([{"name": "x", "requests": 0, "per": "minute"}]),
        &format!("{rp}[0].requests"),
    );
    check(
        json!([{"name": "x", "requests": 5, "per": "minute", "by": "ip"}]),
        &format!("{rp}[0].by"),
    );
    check(
        json!([{"name": "x", "requests": 5, "per": "minute", "reserve": true}]),
        &format!("{rp}[0].reserve"),
    );
    check(
        json!([{"name": "x", "requests": 5, "per": "minute"}, {"name": "x", "tokens": 5, "per": "minute"}]),
        &format!("{rp}[1].name"),
    );
    let bad_period: Result<AuthorizationConfig, _> = serde_json::from_value(with_limits(
        json!([{"name": "x", "requests": 5, "per": "fortnight"}]),
    ));
    assert!(bad_period.is_err());
}

fn one_policy(rules: Value) -> Authorizer {
    authorizer(json!({"routes": [{"match": {"path_prefix": "/"}, "policy": "p"}],
        "policies": {"p": {"rules": rules}}}))
}

fn other_allowed(a: &Authorizer, raw_path: &str) -> Option<Denial> {
    let p = a.route(None, None, path(raw_path)).unwrap();
    let endpoint = Endpoint::of(path(raw_path));
    assert_eq!(endpoint, Endpoint::Other, "{raw_path}");
    p.decide(&analyst(), &view_at(raw_path, endpoint, None, &no_headers))
        .denial
}

#[test]
fn other_is_denied_by_default_and_by_any_glob() {
    for actions in [
        None,
        Some(json!(["*"])),
        Some(json!(["o*"])),
        Some(json!(["*", "chat"])),
    ] {
        let mut rule = json!({"name": "r", "models": ["*"]});
        if let Some(a) = &actions {
            rule["actions"] = a.clone();
        }
        let a = one_policy(json!([rule]));
        assert_eq!(
            other_allowed(&a, "/v1/files"),
            Some(Denial::ActionNotPermitted),
            "{actions:?}"
        );
        if actions == Some(json!(["o*"])) {
            continue;
        }
        // Known endpoints keep their meaning under the same rule.
        let f = facts(json!({"model": "m"}));
        let p = a.route(None, None, path("/v1/chat/completions")).unwrap();
        let d = p.decide(
            &analyst(),
            &view_at(
                "/v1/chat/completions",
                Endpoint::ChatCompletions,
                Some(&f),
                &no_headers,
            ),
        );
        assert_eq!(d.denial, None, "{actions:?}");
    }
}

#[test]
fn other_is_granted_by_the_literal_action() {
    let a = one_policy(json!([{"name": "r", "actions": ["chat", "other"]}]));
    assert_eq!(other_allowed(&a, "/v1/files"), None);
    assert_eq!(other_allowed(&a, "/admin/models/reload"), None);
    let p = a.route(None, None, path("/")).unwrap();
    assert_eq!(
        p.decide(&analyst(), &view(Endpoint::Embeddings, None, &no_headers))
            .denial,
        Some(Denial::ActionNotPermitted)
    );
}

#[test]
fn other_is_granted_path_by_path() {
    let a = one_policy(json!([{"name": "files", "actions": ["embeddings"],
        "other_paths": ["/v1/files/**", "/v1/batches/*/cancel", "/health"]}]));
    for ok in [
        "/v1/files",
        "/v1/files/",
        "/v1/files/file-abc",
        "/v1/files/file-abc/content",
        "/v1/batches/b1/cancel",
        "/health",
        "/health/",
    ] {
        assert_eq!(other_allowed(&a, ok), None, "{ok}");
    }
    for denied in [
        "/v1/filesx",
        "/v1/batches",
        "/v1/batches/b1/x/cancel",
        "/v1/batches/b1/cancel/x",
        "/healthz",
        // Grants are never widened by case.
        "/V1/FILES/x",
        "/Health",
    ] {
        assert_eq!(
            other_allowed(&a, denied),
            Some(Denial::ActionNotPermitted),
            "{denied}"
        );
    }
    // A path grant is a grant of `other` only: it never opens a known endpoint.
    let wide = one_policy(json!([{"name": "r", "actions": [], "models": ["*"], "other_paths": ["/**"]}]));
    assert_eq!(other_allowed(&wide, "/anything/at/all"), None);
    let f = facts(json!({"model": "m"}));
    let p = wide.route(None, None, path("/v1/chat/completions")).unwrap();
    assert_eq!(
        p.decide(
            &analyst(),
            &view_at(
                "/v1/chat/completions",
                Endpoint::ChatCompletions,
                Some(&f),
                &no_headers
            )
        )
        .denial,
        Some(Denial::ActionNotPermitted)
    );
}

#[test]
fn new_json_endpoints_are_granted_by_default_actions_and_model_checked() {
    let a = one_policy(json!([{"name": "r", "models": ["dall-e-3", "tts-1", "omni-moderation-*"]}]));
    let p = a.route(None, None, path("/")).unwrap();
    for (endpoint, good, bad) in [
        (Endpoint::ImageGenerations, "dall-e-3", "gpt-image-1"),
        (Endpoint::Speech, "tts-1", "tts-1-hd"),
        (
            Endpoint::Moderations,
            "omni-moderation-latest",
            "text-moderation-stable",
        ),
    ] {
        let f = facts(json!({"model": good}));
        assert_eq!(
            p.decide(&analyst(), &view(endpoint, Some(&f), &no_headers))
                .denial,
            None
        );
        let f = facts(json!({"model": bad}));
        assert_eq!(
            p.decide(&analyst(), &view(endpoint, Some(&f), &no_headers))
                .denial,
            Some(Denial::ModelNotPermitted)
        );
        let f = facts(json!({"input": "x"}));
        assert_eq!(
            p.decide(&analyst(), &view(endpoint, Some(&f), &no_headers))
                .denial,
            Some(Denial::ModelRequired)
        );
    }
    let only_chat = one_policy(json!([{"name": "r", "actions": ["chat"], "models": ["*"]}]));
    let p = only_chat.route(None, None, path("/")).unwrap();
    let f = facts(json!({"model": "dall-e-3"}));
    assert_eq!(
        p.decide(
            &analyst(),
            &view(Endpoint::ImageGenerations, Some(&f), &no_headers)
        )
        .denial,
        Some(Denial::ActionNotPermitted)
    );
}

#[test]
fn model_globs_never_cross_slash_dots_or_controls() {
    assert!(model_glob("*", "gpt-4o"));
    assert!(!model_glob("*", "meta-llama/Llama-3-8B"));
    assert!(model_glob("meta-llama/*", "meta-llama/Llama-3-8B"));
    assert!(!model_glob("meta-llama/*", "meta-llama/x/y"));
    assert!(!model_glob("meta-*", "meta-llama/x"));
    assert!(model_glob("**", "meta-llama/x/y"));
    assert!(model_glob("meta-llama/**", "meta-llama/x/y"));
    assert!(model_glob("*/*", "org/model"));
    assert!(model_glob("meta-llama/Llama-3-8B", "meta-llama/Llama-3-8B"));
    assert!(model_glob("a*b*c*d", "aXbYcZd"));
    assert!(!model_glob("a*b*c*d", "aXbYc/Zd"));
    for bad in ["a/../b", "..", "x..y", "gpt-4o\n", "gpt\u{0}", "gpt\u{7f}"] {
        assert!(!model_glob("**", bad), "{bad:?}");
        assert!(!model_glob(bad, bad), "{bad:?} exact");
    }
    // Many stars: linear work per star, not an exponential backtrack.
    let long = "a".repeat(5000);
    assert!(!model_glob(&format!("{}b", "*a".repeat(40)), &long));
    // The general glob (routes, tools, subjects) is unchanged: `*` crosses `/` there.
    assert!(glob(
        "spiffe://example.com/ns/rag/*",
        "spiffe://example.com/ns/rag/sa/x"
    ));
}

#[test]
fn model_grants_apply_to_slash_names_only_explicitly() {
    let a = one_policy(json!([{"name": "r", "models": ["*", "meta-llama/*"]}]));
    let p = a.route(None, None, path("/")).unwrap();
    let decide = |m: &str| {
        let f = facts(json!({"model": m}));
        p.decide(
            &analyst(),
            &view(Endpoint::ChatCompletions, Some(&f), &no_headers),
        )
        .denial
    };
    assert_eq!(decide("gpt-4o"), None);
    assert_eq!(decide("meta-llama/Llama-3-8B"), None);
    assert_eq!(decide("mistralai/Mistral-7B"), Some(Denial::ModelNotPermitted));
    assert_eq!(decide("meta-llama/../admin"), Some(Denial::ModelNotPermitted));
    assert_eq!(decide("gpt-4o\r\nx: y"), Some(Denial::ModelNotPermitted));
}

#[test]
fn both_models_are_checked_when_path_and_body_name_one() {
    let a = one_policy(json!([{"name": "r", "models": ["gpt-4o-mini"]}]));
    let p = a.route(None, None, path("/")).unwrap();
    let f = facts(json!({"model": "gpt-4o-mini"}));
    let mut req = view(Endpoint::ChatCompletions, Some(&f), &no_headers);
    req.model_outside_body = Some("gpt-4o".into());
    // served_model refuses this first; the policy alone still never grants the other model.
    assert_eq!(p.decide(&analyst(), &req).denial, Some(Denial::ModelNotPermitted));
}

#[test]
fn models_named_in_several_places_must_agree() {
    let a = authorizer(json!({"routes": [{"match": {"path_prefix": "/"}, "policy": "p"}],
        "policies": {"p": {"rules": [{"name": "r", "models": ["*"]}]}},
        "model_from": {"path_patterns": ["/openai/deployments/{model}/**", "/*/deployments/{model}/**"],
                       "header": "x-model"}}));
    let azure = path("/openai/deployments/gpt-4o/chat/completions");
    let header = |v: &'static str| move |n: &str| (n == "x-model").then(|| v.to_string());
    assert_eq!(
        a.model_outside_body(azure, header("gpt-4o")),
        Ok(Some("gpt-4o".into()))
    );
    assert_eq!(
        a.model_outside_body(azure, header("gpt-4o-mini")),
        Err(RequestProblem::ModelMismatch)
    );
    assert_eq!(a.model_outside_body(azure, no_headers), Ok(Some("gpt-4o".into())));
    assert_eq!(
        a.model_outside_body(path("/v1/chat/completions"), header("m")),
        Ok(Some("m".into()))
    );
    assert_eq!(
        a.model_outside_body(path("/v1/chat/completions"), no_headers),
        Ok(None)
    );

    assert_eq!(served_model(None, None), Ok(None));
    assert_eq!(served_model(Some("a"), None), Ok(Some("a".into())));
    assert_eq!(served_model(None, Some("b")), Ok(Some("b".into())));
    assert_eq!(served_model(Some("a"), Some("a")), Ok(Some("a".into())));
    assert_eq!(
        served_model(Some("a"), Some("b")),
        Err(RequestProblem::ModelMismatch)
    );
    // Exact: an upstream that compares case-insensitively would serve one of them unchecked.
    assert_eq!(
        served_model(Some("gpt-4o"), Some("GPT-4o")),
        Err(RequestProblem::ModelMismatch)
    );
}

#[test]
fn route_prefixes_match_the_canonical_path_case_insensitively() {
    let a = authorizer(json!({
        "routes": [
            {"match": {"path_prefix": "/admin/"}, "policy": "admin"},
            {"match": {"path_prefix": "/model/anthropic.claude-v2:1/"}, "policy": "admin"},
            {"match": {"path_prefix": "/"}, "policy": "open"}
        ],
        "policies": {"admin": {"rules": [{"name": "a", "actions": ["other"], "when": {"scopes": ["llm:admin"]}}]},
                     "open": {"rules": [{"name": "o", "actions": ["other"]}]}}}));
    let admin_index = a.route_index(None, None, path("/admin/x"));
    assert!(admin_index.is_some());
    for variant in [
        "/ADMIN/x",
        "/Admin/x",
        "/model/anthropic.claude-v2%3A1/invoke",
        "/admin/x?y=1",
    ] {
        assert_eq!(a.route_index(None, None, path(variant)), admin_index, "{variant}");
    }
    assert_ne!(a.route_index(None, None, path("/administrator")), admin_index);
}

#[test]
fn path_globs_and_prefixes_that_could_never_match_are_config_errors() {
    let check = |cfg: Value, path: &str| {
        let cfg: AuthorizationConfig = serde_json::from_value(cfg).unwrap();
        let e = Authorizer::new(&cfg, &[]).unwrap_err();
        assert_eq!(e.path, path, "{e}");
    };
    let with_other = |g: &str| {
        json!({"routes": [{"match": {"path_prefix": "/"}, "policy": "p"}],
               "policies": {"p": {"rules": [{"name": "r", "other_paths": ["/ok/**", g]}]}}})
    };
    for bad in [
        "v1/files",
        "/v1/files%2F*",
        "/a?b",
        "/a;b",
        "/a\\b",
        "/a//b",
        "/a/../b",
        "/a/./b",
    ] {
        check(
            with_other(bad),
            "authorization.policies.p.rules[0].other_paths[1]",
        );
    }
    check(
        json!({"routes": [{"match": {"path_prefix": "/a%3Ab/"}, "policy": "p"}],
               "policies": {"p": {"rules": [{"name": "r"}]}}}),
        "authorization.routes[0].match.path_prefix",
    );
}
