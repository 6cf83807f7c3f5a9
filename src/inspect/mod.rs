//! Inspection of what flows through: the input guard (rules, folding, decoders), the
//! external classifier, response formats (SSE, NDJSON, JSON text), the response plan and
//! the response tool-call guard.

pub mod classifier;
pub mod guard;
pub mod guard_fold;
mod guard_rules;
pub mod guard_text;
pub mod json_text;
pub mod lowercase;
pub mod ndjson;
pub mod response;
pub mod sse;
pub mod sse_pipeline;
pub mod stream_inspection;
pub mod tool_calls;
