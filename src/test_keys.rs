//! Signing keys for the native tests, generated once per test run (RSA generation is slow).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::sync::OnceLock;

pub fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

/// One signing key per family (two RSA keys, for "signed by another key" cases).
pub struct Keys {
    pub rsa: rsa::RsaPrivateKey,
    pub rsa2: rsa::RsaPrivateKey,
    pub p256: p256::ecdsa::SigningKey,
    pub p384: p384::ecdsa::SigningKey,
    pub ed: ed25519_dalek::SigningKey,
}

pub fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| {
        let mut rng = rand_core::OsRng;
        Keys {
            rsa: rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap(),
            rsa2: rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap(),
            p256: p256::ecdsa::SigningKey::random(&mut rng),
            p384: p384::ecdsa::SigningKey::random(&mut rng),
            ed: ed25519_dalek::SigningKey::generate(&mut rng),
        }
    })
}
