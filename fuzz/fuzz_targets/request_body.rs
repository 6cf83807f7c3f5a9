//! Request body extraction and the input guard: any body, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use llm_warden::inspect::guard::Guard;
use std::sync::OnceLock;

fuzz_target!(|data: &[u8]| {
    static GUARD: OnceLock<Guard> = OnceLock::new();
    let g = GUARD.get_or_init(|| Guard { rules: Guard::builtin(None).expect("rules"), include_system: true });
    if let Ok((obj, facts)) = llm_warden::authz::llm_request::parse_body(data) {
        let _ = facts.all_tools();
        let _ = g.check_body(&obj);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = g.check_text(text);
    }
});
