//! Token parsing and verification: any header value, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use llm_warden::authn::auth::{Authenticator, Verdict};
use llm_warden::config::Config;
use llm_warden::host::memory::MemStore;
use std::cell::RefCell;

const CONFIG: &str = r#"{"issuers": [
  {"name": "a", "issuer": "https://a", "audiences": ["llm"], "jwks": {"inline": {"keys": [
    {"kty": "EC", "crv": "P-256", "x": "KCRdpOee00L0g9lt63-iA0uUszYhNa9KwAfEE_MFJS4", "y": "0t26hL3KcUp9c5c_1mJiPzz6unrmGjH-TLoQHrq-K-M", "kid": "es256"},
    {"kty": "OKP", "crv": "Ed25519", "x": "Rw80NXl7M7WPuKXU4ypFyN5EPkDpFBp28859ggK_lRA", "kid": "eddsa"}]}}},
  {"name": "h", "issuer": "https://h", "audiences": ["llm"], "hmac_secret_base64": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="},
  {"name": "r", "issuer": "https://r", "audiences": ["llm"], "jwks": {"remote": {"cluster": "j", "path": "/j"}}}
]}"#;

thread_local! {
    static AUTH: RefCell<Authenticator> =
        RefCell::new(Authenticator::new(&Config::parse(CONFIG.as_bytes()).expect("config")).expect("auth"));
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    AUTH.with(|a| {
        let mut a = a.borrow_mut();
        for header in [text.to_string(), format!("Bearer {text}")] {
            // Without the private keys nothing can verify: an Allow would be a bypass.
            if let Verdict::Allow(_) = a.authenticate(Some(&header), 1_800_000_000, &MemStore::default(), true) {
                panic!("unsigned input accepted: {header:?}");
            }
        }
    });
});
