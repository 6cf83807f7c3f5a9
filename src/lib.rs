//! llm-warden: a zero-trust proxy-wasm filter for LLM inference endpoints.
//!
//! Everything except `adapter` is host-free core logic, unit-tested natively; `adapter` is
//! the thin proxy-wasm shim, compiled only for wasm32.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo
    )
)]

pub mod audit;
pub mod auth;
pub mod claims;
pub mod classifier;
pub mod config;
pub mod credentials;
pub mod guard;
pub mod guard_fold;
mod guard_rules;
pub mod guard_text;
pub mod host;
pub mod identity;
pub mod jose;
pub mod json_text;
pub mod jwks;
pub mod llm_request;
pub mod lowercase;
pub mod ndjson;
pub mod policy;
pub mod ratelimit;
pub mod reason;
pub mod redact;
pub mod redact_stream;
pub mod request_path;
pub mod response;
pub mod sse;
pub mod sse_pipeline;
pub mod token_cache;
pub mod tool_calls;
pub mod tool_decls;
pub mod usage;

#[cfg(test)]
mod attack_tests;
#[cfg(test)]
mod auth_tests;
#[cfg(test)]
mod policy_tests;
#[cfg(test)]
mod test_keys;

#[cfg(target_arch = "wasm32")]
mod adapter;
