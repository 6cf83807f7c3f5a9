//! The proxy-wasm glue: each Envoy callback is handed to the host-free pipeline
//! (`crate::pipeline`), and the pipeline's host calls go to Envoy through `abi`, which
//! never panics.

mod abi;

use crate::pipeline::{Buffer, Exchange, Flow, HeaderMap, Host, Root, R};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use std::cell::RefCell;
use std::collections::HashMap;

proxy_wasm::main! {{
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
    proxy_wasm::set_root_context(|id| -> Box<dyn RootContext> { Box::new(WasmRoot(Root::new(id, &ENVOY))) });
}}

/// Forwards the `log` facade to `proxy_log`, ignoring failures (the SDK's logger unwraps).
struct HostLogger;
static LOGGER: HostLogger = HostLogger;

impl log::Log for HostLogger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        // proxy-wasm LogLevel: trace 0, debug 1, info 2, warn 3, error 4.
        let level = match record.level() {
            log::Level::Trace => 0,
            log::Level::Debug => 1,
            log::Level::Info => 2,
            log::Level::Warn => 3,
            log::Level::Error => 4,
        };
        abi::log(level, &record.args().to_string());
    }
    fn flush(&self) {}
}

thread_local! {
    /// Metric ids by name, defined on first use (the names come from finite sets:
    /// decisions, reason codes, outcomes). Envoy sums plugins that share a name.
    static METRICS: RefCell<HashMap<String, u32>> = RefCell::new(HashMap::new());
}

fn metric_id(name: &str, define: fn(&str) -> R<u32>) -> Option<u32> {
    METRICS.with(|m| {
        let mut ids = m.try_borrow_mut().ok()?;
        if let Some(id) = ids.get(name) {
            return Some(*id);
        }
        let id = define(name).ok()?;
        ids.insert(name.to_string(), id);
        Some(id)
    })
}

/// The pipeline's host: Envoy, through the hostcalls of `abi`.
struct Envoy;
static ENVOY: Envoy = Envoy;

fn map(m: HeaderMap) -> u32 {
    match m {
        HeaderMap::Request => abi::MAP_HTTP_REQUEST_HEADERS,
        HeaderMap::Response => abi::MAP_HTTP_RESPONSE_HEADERS,
        HeaderMap::ResponseTrailers => abi::MAP_HTTP_RESPONSE_TRAILERS,
        HeaderMap::CallResponse => abi::MAP_HTTP_CALL_RESPONSE_HEADERS,
    }
}

fn buffer(b: Buffer) -> u32 {
    match b {
        Buffer::RequestBody => abi::BUFFER_HTTP_REQUEST_BODY,
        Buffer::ResponseBody => abi::BUFFER_HTTP_RESPONSE_BODY,
        Buffer::CallResponseBody => abi::BUFFER_HTTP_CALL_RESPONSE_BODY,
        Buffer::PluginConfig => abi::BUFFER_PLUGIN_CONFIGURATION,
    }
}

impl Host for Envoy {
    fn now_nanos(&self) -> R<u64> {
        abi::now_nanos()
    }
    fn set_tick_period_ms(&self, ms: u32) -> R<()> {
        abi::set_tick_period_ms(ms)
    }
    fn get_buffer(&self, b: Buffer, start: usize, max: usize) -> R<Option<Vec<u8>>> {
        abi::get_buffer(buffer(b), start, max)
    }
    fn set_buffer(&self, b: Buffer, start: usize, size: usize, data: &[u8]) -> R<()> {
        abi::set_buffer(buffer(b), start, size, data)
    }
    fn get_header(&self, m: HeaderMap, name: &str) -> R<Option<String>> {
        abi::get_header(map(m), name)
    }
    fn get_headers(&self, m: HeaderMap) -> R<Vec<(String, String)>> {
        abi::get_headers(map(m))
    }
    fn set_header(&self, m: HeaderMap, name: &str, value: &str) -> R<()> {
        abi::set_header(map(m), name, value)
    }
    fn add_header(&self, m: HeaderMap, name: &str, value: &str) -> R<()> {
        abi::add_header(map(m), name, value)
    }
    fn remove_header(&self, m: HeaderMap, name: &str) -> R<()> {
        abi::remove_header(map(m), name)
    }
    fn get_property(&self, path: &[&str]) -> R<Option<Vec<u8>>> {
        abi::get_property(path)
    }
    fn set_property(&self, path: &[&str], value: &[u8]) -> R<()> {
        abi::set_property(path, value)
    }
    fn get_shared_data(&self, key: &str) -> R<Option<(Vec<u8>, u32)>> {
        abi::get_shared_data(key)
    }
    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> R<()> {
        abi::set_shared_data(key, value, cas)
    }
    fn count(&self, name: &str, by: u64) {
        if let Some(id) = metric_id(name, abi::define_counter) {
            let _ = abi::increment_metric(id, i64::try_from(by).unwrap_or(i64::MAX));
        }
    }
    fn gauge(&self, name: &str, value: u64) {
        if let Some(id) = metric_id(name, abi::define_gauge) {
            let _ = abi::record_metric(id, value);
        }
    }
    fn set_effective_context(&self, context_id: u32) -> R<()> {
        abi::set_effective_context(context_id)
    }
    fn resume_http_request(&self) -> R<()> {
        abi::resume_http_request()
    }
    fn send_local_response(
        &self,
        status: u32,
        details: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> R<()> {
        abi::send_local_response(status, details, headers, body)
    }
    fn http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout_ms: u32,
    ) -> R<u32> {
        abi::http_call_with_body(cluster, headers, body, timeout_ms)
    }
}

fn action(flow: Flow) -> Action {
    match flow {
        Flow::Continue => Action::Continue,
        Flow::Pause => Action::Pause,
    }
}

struct WasmRoot(Root);

impl Context for WasmRoot {
    fn on_http_call_response(&mut self, token_id: u32, _: usize, body_size: usize, _: usize) {
        self.0.on_call_response(token_id, body_size);
    }
}

impl RootContext for WasmRoot {
    fn on_configure(&mut self, _: usize) -> bool {
        self.0.on_configure()
    }
    fn on_tick(&mut self) {
        self.0.on_tick();
    }
    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Must never return None (the SDK panics); an unconfigured plugin denies everything.
        Some(Box::new(WasmExchange(self.0.new_exchange(context_id))))
    }
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct WasmExchange(Exchange);

impl Context for WasmExchange {
    fn on_http_call_response(&mut self, token_id: u32, _: usize, body_size: usize, _: usize) {
        self.0.on_call_response(token_id, body_size);
    }
}

impl HttpContext for WasmExchange {
    fn on_http_request_headers(&mut self, _: usize, end_of_stream: bool) -> Action {
        action(self.0.on_request_headers(end_of_stream))
    }
    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        action(self.0.on_request_body(body_size, end_of_stream))
    }
    fn on_http_request_trailers(&mut self, _: usize) -> Action {
        action(self.0.on_request_trailers())
    }
    fn on_http_response_headers(&mut self, _: usize, end_of_stream: bool) -> Action {
        action(self.0.on_response_headers(end_of_stream))
    }
    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        action(self.0.on_response_body(body_size, end_of_stream))
    }
    fn on_http_response_trailers(&mut self, _: usize) -> Action {
        action(self.0.on_response_trailers())
    }
    fn on_log(&mut self) {
        self.0.on_log();
    }
}
