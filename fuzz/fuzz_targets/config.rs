//! Plugin config parsing and compilation: any bytes, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(cfg) = llm_warden::config::Config::parse(data) {
        let _ = llm_warden::authn::auth::Authenticator::new(&cfg);
    }
});
