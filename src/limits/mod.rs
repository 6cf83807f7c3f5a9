//! Limits: request and token rate limits (GCRA over a shared slot table) and the token usage read from responses.

pub mod ratelimit;
pub mod usage;
