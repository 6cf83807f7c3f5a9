//! What a response-stream inspection (SSE events, NDJSON lines) is given and offers: a leaf
//! both pipelines implement, so neither depends on the other.

use crate::authz::llm_request::Endpoint;
use crate::inspect::tool_calls::ForbiddenToolCall;
use crate::redact::stream::Redactor;

/// The controls a response stream passes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamOptions {
    pub endpoint: Endpoint,
    /// Tool calls are inspected: the mode of a block, and false in monitor mode (the block
    /// is reported, the stream passes).
    pub tool_calls: Option<(ForbiddenToolCall, bool)>,
    /// Redaction is on; false in monitor mode (counted, not changed).
    pub redaction: Option<bool>,
    /// The filter set `stream_options.include_usage` itself: the final usage-only chunk
    /// (`choices: []` with `usage`) is removed from what the client sees. Its usage still
    /// reaches the meter, which reads the upstream bytes.
    pub strip_forced_usage: bool,
}

/// A response stream inspected frame by frame (SSE events, NDJSON lines): what the adapter
/// needs of either.
pub trait StreamInspection {
    /// Takes the next upstream chunk; returns the bytes to send the client now.
    fn feed(
        &mut self,
        chunk: &[u8],
        end_of_stream: bool,
        allowed: &dyn Fn(&str) -> bool,
        redactor: Option<&mut Redactor>,
    ) -> Vec<u8>;
    /// The forbidden tool the stream called (blocked, or only reported in monitor mode).
    fn blocked(&self) -> Option<&str>;
    /// A frame was too large to inspect: the stream was cut with an error.
    fn uninspectable(&self) -> bool;
}
