//! Policy config compilation and evaluation: any JSON, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use llm_warden::authn::claims::Identity;
use llm_warden::authz::llm_request::{parse_body, Endpoint};
use llm_warden::authz::policy::{served_model, AuthorizationConfig, Authorizer, RequestView};
use llm_warden::authz::request_path::canonical;

fuzz_target!(|data: &[u8]| {
    let Ok(cfg) = serde_json::from_slice::<AuthorizationConfig>(data) else { return };
    let Ok(a) = Authorizer::new(&cfg, &["idp".to_string()]) else { return };
    let claims = serde_json::json!({"sub": "s", "scope": "a b", "aud": ["x"], "tenant": "t"});
    let id = Identity::from_claims("idp", claims.as_object().cloned().unwrap_or_default(), None);
    let (_, facts) = parse_body(br#"{"model":"m","tools":[{"name":"t"}],"stream":true,"max_tokens":9}"#).expect("body");
    let header = |_: &str| Some("v".to_string());
    for raw in ["/", "/v1/chat/completions", "/openai/deployments/m/chat/completions", "/v1/files/x"] {
        let Ok(path) = canonical(raw) else { return };
        let Ok(outside) = a.model_outside_body(&path, header) else { continue };
        let _ = served_model(outside.as_deref(), facts.model.as_deref());
        if let Some(p) = a.route(Some("r"), Some("h:1"), &path) {
            let view = RequestView {
                endpoint: Endpoint::of(&path),
                path: &path,
                source_ip: "10.0.0.1".parse().ok(),
                now_unix: 1_800_000_000,
                header: &header,
                body: Some(&facts),
                model_outside_body: outside,
            };
            let d = p.decide(&id, &view);
            let _ = d.tool_allowed("t");
        }
    }
});
