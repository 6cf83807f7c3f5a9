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

// One folder per stage of a request; the pipeline runs them, the adapter hosts it.
pub mod authn;
pub mod authz;
pub mod inspect;
pub mod limits;
pub mod mcp;
pub mod outcome;
pub mod pipeline;
pub mod redact;
pub mod upstream;

// Foundations every stage uses: the config document, its errors, enforce/monitor, the
// host traits.
pub mod config;
pub mod config_error;
pub mod host;
pub mod mode;

#[cfg(any(test, feature = "cli"))]
pub mod offline;

#[cfg(test)]
mod test_keys;

#[cfg(target_arch = "wasm32")]
mod adapter;
