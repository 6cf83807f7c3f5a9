//! The request pipeline, host-free: Envoy's callbacks arrive as events on an [`Exchange`]
//! (one per request) or on the plugin's [`Root`]; everything they need from the proxy goes
//! through the [`Host`] trait. The proxy-wasm adapter is glue over it, and native tests
//! drive whole exchanges through `mock::MockHost`.

mod exchange;
pub mod host;
#[cfg(any(test, feature = "cli"))]
pub mod mock;
#[cfg(test)]
mod tests;

pub use exchange::{Exchange, Root};
pub use host::{Buffer, Flow, HeaderMap, Host, HostError, R};
