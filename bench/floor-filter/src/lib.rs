//! The floor for llm-warden's kind of per-call work, measured by `make bench-instructions`:
//! on the request headers, through the same hostcalls llm-warden uses for that work,
//! - read the request headers once (`proxy_get_header_map_pairs`),
//! - remove one (`proxy_remove_header_map_value`: the bearer token) and add three
//!   (`proxy_add_header_map_value`: identity headers),
//! - one shared-data get and one CAS set (`proxy_get_shared_data`, `proxy_set_shared_data`:
//!   a rate-limit counter),
//! - one filter-state write of about 300 bytes (`proxy_set_property`: the audit record),
//! - one log call (`proxy_log`, at info like the audit line).
//!
//! Nothing else: no parsing, no policy. What the module itself computes is kept trivial, so
//! the figure is the host's and the SDK's price for this work.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel, MapType};

proxy_wasm::main! {{
    proxy_wasm::set_http_context(|_, _| -> Box<dyn HttpContext> { Box::new(Floor) });
}}

const SLOT_KEY: &str = "floor.slot.0";
const STATE_KEY: &str = "floor.audit";

/// A 300-byte record shaped like llm-warden's audit record (its size is what the host copies).
const RECORD: &[u8; 300] =
    b"{\"v\":1,\"decision\":\"allow\",\"reason\":\"ok\",\"issuer\":\"https://bench.local\",\
\"subject\":\"bench\",\"route\":\"inference\",\"policy\":\"p\",\"rule\":\"chat\",\
\"action\":\"chat\",\"model\":\"mock-gpt\",\"stream\":false,\"tools\":[],\"limits\":[{\"name\":\"rpm\",\
\"remaining\":999999999}],\"status\":200,\"request_id\":\"00000000-0000-0000-0000000\"}";

struct Floor;

impl Context for Floor {}

impl HttpContext for Floor {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        let headers = hostcalls::get_map(MapType::HttpRequestHeaders).unwrap_or_default();
        let token_len = headers
            .iter()
            .find(|(name, _)| name == "authorization")
            .map_or(0, |(_, value)| value.len());
        let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, "authorization");

        // A counter in shared data: read with its CAS, write back guarded by it.
        let calls = match hostcalls::get_shared_data(SLOT_KEY) {
            Ok((value, cas)) => {
                let count = value
                    .and_then(|v| v.get(..8).and_then(|b| b.try_into().ok()))
                    .map_or(0, u64::from_le_bytes)
                    .wrapping_add(1);
                // One worker: a CAS mismatch cannot happen here; llm-warden would retry.
                let _ = hostcalls::set_shared_data(SLOT_KEY, Some(&count.to_le_bytes()), cas);
                count
            }
            Err(_) => 0,
        };

        let _ = hostcalls::add_map_value(MapType::HttpRequestHeaders, "x-auth-subject", "bench");
        let _ = hostcalls::add_map_value(
            MapType::HttpRequestHeaders,
            "x-auth-issuer",
            "https://bench.local",
        );
        // The bench checks this one: the count shows the CAS write landed.
        let _ = hostcalls::add_map_value(MapType::HttpRequestHeaders, "x-auth-calls", &calls.to_string());

        let _ = hostcalls::set_property(vec![STATE_KEY], Some(RECORD));
        let _ = hostcalls::log(
            LogLevel::Info,
            if token_len > 0 {
                "floor: call"
            } else {
                "floor: no token"
            },
        );
        Action::Continue
    }
}
