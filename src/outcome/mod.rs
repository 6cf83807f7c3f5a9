//! What the caller and the logs see: every reply (errors with their status and headers) and the bounded audit record.

pub mod audit;
pub mod reason;
