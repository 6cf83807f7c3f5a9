//! The canonical request path: any `:path`, never a panic; an accepted path holds nothing
//! a server could read as structure the filter did not see.
#![no_main]
use libfuzzer_sys::fuzz_target;
use llm_warden::authz::llm_request::{Endpoint, PathPattern};
use llm_warden::authz::request_path::canonical;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    let Ok(path) = canonical(raw) else { return };
    let s = path.as_str();
    assert!(s.starts_with('/'));
    assert!(!s.contains("//") && !s.chars().any(|c| c.is_control() || "\\;?#%".contains(c)), "{raw:?}");
    assert!(path.segments().all(|seg| seg != "." && seg != ".."), "{raw:?}");
    let _ = Endpoint::of(&path).action();
    if let Ok(p) = PathPattern::parse("/openai/deployments/{model}/**") {
        let _ = p.model_of(&path);
    }
});
