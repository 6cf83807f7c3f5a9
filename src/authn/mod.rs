//! Authentication: tokens (JOSE parsing and verification), claims, issuers and their key sets (JWKS single flight), the token cache and the identity handed upstream.

#[cfg(test)]
mod attack_tests;
pub mod auth;
#[cfg(test)]
mod auth_tests;
pub mod claims;
pub mod identity;
pub mod jose;
pub mod jwks;
pub mod token_cache;
