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

/// RSA moduli that must be refused although they have a valid size: each gives the private
/// key away. Built once per test run from the test keys' primes.
pub struct WeakModuli {
    /// A 2048-bit (probable) prime.
    pub prime: rsa::BigUint,
    /// 65521 (the largest prime below 2^16) times a 2048-bit modulus.
    pub small_factor: rsa::BigUint,
    /// p * p for a 1024-bit prime p.
    pub square: rsa::BigUint,
    /// p * q with q the next prime after p: Fermat's method factors it in one step.
    pub close_primes: rsa::BigUint,
}

/// Fermat test with bases 2 and 3 after trial division: enough to find primes for tests.
fn probably_prime(n: &rsa::BigUint) -> bool {
    use rsa::BigUint;
    for p in [3u32, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47] {
        if (n % p) == BigUint::from(0u32) {
            return false;
        }
    }
    let m = n - 1u32;
    [2u32, 3]
        .iter()
        .all(|b| BigUint::from(*b).modpow(&m, n) == BigUint::from(1u32))
}

fn next_prime(from: &rsa::BigUint) -> rsa::BigUint {
    let mut c = from + 1u32;
    if (&c % 2u32) == rsa::BigUint::from(0u32) {
        c += 1u32;
    }
    while !probably_prime(&c) {
        c += 2u32;
    }
    c
}

pub fn weak_moduli() -> &'static WeakModuli {
    use rsa::traits::{PrivateKeyParts, PublicKeyParts};
    static W: OnceLock<WeakModuli> = OnceLock::new();
    W.get_or_init(|| {
        let k = &keys().rsa;
        let p = k.primes()[0].clone();
        // A 2048-bit modulus is far below 2^2048: the next prime has 2048 bits too.
        let prime = next_prime(k.n());
        WeakModuli {
            small_factor: k.n() * 65521u32,
            square: &p * &p,
            close_primes: &p * &next_prime(&p),
            prime,
        }
    })
}
