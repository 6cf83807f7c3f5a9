//! What the pipeline needs from the proxy, one method per capability. The proxy-wasm adapter
//! implements it over Envoy's hostcalls (`src/adapter/abi.rs`); `mock::MockHost` implements
//! it in memory for native tests of whole exchanges.

/// A host status other than success (the ABI's numeric status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostError(pub u32);

pub type R<T> = Result<T, HostError>;

/// The status a compare-and-swap write answers when the key moved on.
pub const STATUS_CAS_MISMATCH: u32 = 8;

/// The header maps an exchange reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderMap {
    Request,
    Response,
    ResponseTrailers,
    /// The headers of the answer to an outgoing call (JWKS, token endpoint, classifier).
    CallResponse,
}

/// The byte buffers an exchange reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Buffer {
    RequestBody,
    ResponseBody,
    /// The body of the answer to an outgoing call.
    CallResponseBody,
    PluginConfig,
}

/// Whether the proxy goes on with the stream after a callback or holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Pause,
}

pub trait Host {
    fn now_nanos(&self) -> R<u64>;
    fn set_tick_period_ms(&self, ms: u32) -> R<()>;
    /// Up to `max` bytes of `buffer` from `start`; None when the buffer does not exist.
    fn get_buffer(&self, buffer: Buffer, start: usize, max: usize) -> R<Option<Vec<u8>>>;
    /// Replaces `size` bytes of `buffer` from `start` with `data`.
    fn set_buffer(&self, buffer: Buffer, start: usize, size: usize, data: &[u8]) -> R<()>;
    fn get_header(&self, map: HeaderMap, name: &str) -> R<Option<String>>;
    fn get_headers(&self, map: HeaderMap) -> R<Vec<(String, String)>>;
    fn set_header(&self, map: HeaderMap, name: &str, value: &str) -> R<()>;
    fn add_header(&self, map: HeaderMap, name: &str, value: &str) -> R<()>;
    fn remove_header(&self, map: HeaderMap, name: &str) -> R<()>;
    fn get_property(&self, path: &[&str]) -> R<Option<Vec<u8>>>;
    fn set_property(&self, path: &[&str], value: &[u8]) -> R<()>;
    /// Shared data: the value and its CAS version, None when never written.
    fn get_shared_data(&self, key: &str) -> R<Option<(Vec<u8>, u32)>>;
    /// `cas` 0 writes unconditionally; otherwise `STATUS_CAS_MISMATCH` if the key moved on.
    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> R<()>;
    /// Adds to the counter `name` (defined on first use).
    fn count(&self, name: &str, by: u64);
    /// Sets the gauge `name` (defined on first use).
    fn gauge(&self, name: &str, value: u64);
    /// Later calls act on the exchange `context_id` (a held request resumed from the tick).
    fn set_effective_context(&self, context_id: u32) -> R<()>;
    fn resume_http_request(&self) -> R<()>;
    fn send_local_response(&self, status: u32, details: &str, headers: &[(&str, &str)], body: &[u8])
        -> R<()>;
    /// Starts an outgoing call; its answer comes back to the context that made it.
    fn http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout_ms: u32,
    ) -> R<u32>;
}
