//! Size probe: verify an RS256, ES256 or EdDSA compact JWS with claims parsed, either with the
//! crypto crates directly (our jose.rs style) or through jwt-compact.
use std::collections::HashMap;

fn input(ptr: *const u8, len: usize) -> &'static [u8] {
    unsafe { std::slice::from_raw_parts(ptr, len) }
}

#[cfg(not(feature = "viajc"))]
fn verify(token: &str, key: &[u8], alg: u8) -> bool {
    use base64::Engine;
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s)) = (parts.next(), parts.next(), parts.next()) else { return false };
    let Ok(hdr) = b.decode(h) else { return false };
    let Ok(_hv) = serde_json::from_slice::<HashMap<String, serde_json::Value>>(&hdr) else { return false };
    let Ok(cl) = b.decode(c) else { return false };
    let Ok(_cv) = serde_json::from_slice::<HashMap<String, serde_json::Value>>(&cl) else { return false };
    let Ok(sig) = b.decode(s) else { return false };
    let msg = &token.as_bytes()[..h.len() + 1 + c.len()];
    match alg {
        0 => {
            use rsa::pkcs1v15::{Signature, VerifyingKey};
            use rsa::signature::Verifier;
            let Ok(k) = rsa::RsaPublicKey::new(rsa::BigUint::from_bytes_be(key), rsa::BigUint::from(65537u32)) else { return false };
            let vk = VerifyingKey::<sha2::Sha256>::new(k);
            let Ok(sg) = Signature::try_from(sig.as_slice()) else { return false };
            vk.verify(msg, &sg).is_ok()
        }
        1 => {
            use p256::ecdsa::signature::Verifier;
            let Ok(vk) = p256::ecdsa::VerifyingKey::from_sec1_bytes(key) else { return false };
            let Ok(sg) = p256::ecdsa::Signature::from_slice(&sig) else { return false };
            vk.verify(msg, &sg).is_ok()
        }
        _ => {
            let Ok(kb) = <[u8; 32]>::try_from(key) else { return false };
            let Ok(vk) = ed25519_dalek::VerifyingKey::from_bytes(&kb) else { return false };
            let Ok(sg) = ed25519_dalek::Signature::from_slice(&sig) else { return false };
            vk.verify_strict(msg, &sg).is_ok()
        }
    }
}

#[cfg(feature = "viajc")]
fn verify(token: &str, key: &[u8], alg: u8) -> bool {
    use jwt_compact::{alg::*, AlgorithmExt, UntrustedToken};
    type Claims = HashMap<String, serde_json::Value>;
    let Ok(t) = UntrustedToken::new(token) else { return false };
    match alg {
        0 => {
            let Ok(k) = rsa::RsaPublicKey::new(rsa::BigUint::from_bytes_be(key), rsa::BigUint::from(65537u32)) else { return false };
            Rsa::rs256().validator::<Claims>(&k).validate(&t).is_ok()
        }
        1 => {
            let Ok(vk) = p256::ecdsa::VerifyingKey::from_sec1_bytes(key) else { return false };
            Es256.validator::<Claims>(&vk).validate(&t).is_ok()
        }
        _ => {
            let Ok(kb) = <[u8; 32]>::try_from(key) else { return false };
            let Ok(vk) = ed25519_dalek::VerifyingKey::from_bytes(&kb) else { return false };
            Ed25519.validator::<Claims>(&vk).validate(&t).is_ok()
        }
    }
}

#[no_mangle]
pub extern "C" fn probe(tp: *const u8, tl: usize, kp: *const u8, kl: usize, alg: u8) -> u32 {
    let Ok(t) = std::str::from_utf8(input(tp, tl)) else { return 2 };
    verify(t, input(kp, kl), alg) as u32
}
