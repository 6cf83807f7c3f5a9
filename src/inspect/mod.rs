//! Inspection of what flows through: the external classifier, response formats (SSE, NDJSON, JSON text), the response plan and the response tool-call guard.

pub mod classifier;
pub mod json_text;
pub mod ndjson;
pub mod response;
pub mod sse;
pub mod sse_pipeline;
pub mod stream_inspection;
pub mod tool_calls;
