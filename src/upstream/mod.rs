//! What the upstream gets instead of the caller's token: just-in-time credentials.

pub mod credentials;
