//! `make bench-auth`: native cost of authenticating one request, per algorithm (first-seen
//! token: full signature verification) and for a verified-token cache hit. Prints figures;
//! asserts nothing about time. Built with the release profile (opt-level "z"), as shipped.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use llm_warden::authn::auth::{Authenticator, Verdict};
use llm_warden::config::Config;
use llm_warden::host::memory::MemStore;
use serde_json::{json, Value};
use std::hint::black_box;
use std::time::Instant;

const ISS: &str = "https://bench.idp";
const NOW: u64 = 1_800_000_000;
const HMAC: &[u8] = b"bench-hmac-secret-bench-hmac-secret!!";

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

fn main() {
    let mut rng = rand_core::OsRng;
    let rsa_key = rsa::RsaPrivateKey::new(&mut rng, 2048).expect("rsa keygen");
    let p256_key = p256::ecdsa::SigningKey::random(&mut rng);
    let p384_key = p384::ecdsa::SigningKey::random(&mut rng);
    let ed_key = ed25519_dalek::SigningKey::generate(&mut rng);

    use rsa::traits::PublicKeyParts;
    let p256_pt = p256_key.verifying_key().to_encoded_point(false);
    let p384_pt = p384_key.verifying_key().to_encoded_point(false);
    let jwks = json!({"keys": [
        {"kty": "RSA", "kid": "rsa", "n": b64(&rsa_key.n().to_bytes_be()), "e": b64(&rsa_key.e().to_bytes_be())},
        {"kty": "EC", "crv": "P-256", "kid": "p256", "x": b64(p256_pt.x().unwrap()), "y": b64(p256_pt.y().unwrap())},
        {"kty": "EC", "crv": "P-384", "kid": "p384", "x": b64(p384_pt.x().unwrap()), "y": b64(p384_pt.y().unwrap())},
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64(ed_key.verifying_key().as_bytes())},
    ]});

    let sign = |alg: &str, input: &[u8]| -> Vec<u8> {
        use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
        use sha2::Sha256;
        match alg {
            "RS256" => rsa::pkcs1v15::SigningKey::<Sha256>::new(rsa_key.clone())
                .sign(input)
                .to_vec(),
            "PS256" => rsa::pss::SigningKey::<Sha256>::new(rsa_key.clone())
                .sign_with_rng(&mut rand_core::OsRng, input)
                .to_vec(),
            "ES256" => {
                let s: p256::ecdsa::Signature = p256_key.sign(input);
                s.to_bytes().to_vec()
            }
            "ES384" => {
                let s: p384::ecdsa::Signature = p384_key.sign(input);
                s.to_bytes().to_vec()
            }
            "EdDSA" => ed25519_dalek::Signer::sign(&ed_key, input).to_bytes().to_vec(),
            _ => {
                use hmac::{Hmac, Mac};
                let mut m = Hmac::<Sha256>::new_from_slice(HMAC).expect("hmac");
                m.update(input);
                m.finalize().into_bytes().to_vec()
            }
        }
    };
    let token = |alg: &str, kid: Option<&str>| -> String {
        let mut header = json!({"alg": alg, "typ": "JWT"});
        if let Some(k) = kid {
            header["kid"] = json!(k);
        }
        let claims = json!({"iss": ISS, "aud": "llm-api", "sub": "bench-user", "iat": NOW, "exp": NOW + 600,
            "jti": "bench", "scope": "chat embeddings", "azp": "bench-client"});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = sign(alg, input.as_bytes());
        format!("Bearer {input}.{}", b64(&sig))
    };
    let authenticator = |cache: usize| -> Authenticator {
        let cfg: Value = json!({"issuers": [{"name": "bench", "issuer": ISS, "audiences": ["llm-api"],
            "jwks": {"inline": jwks}, "hmac_secret_base64": STANDARD.encode(HMAC)}],
            "token_cache": {"max_entries": cache}});
        Authenticator::new(&Config::parse(cfg.to_string().as_bytes()).expect("config")).expect("auth")
    };

    println!(
        "llm-warden native auth cost (release profile, opt-level z), {} cores",
        num_cpus()
    );
    println!("{:<28} {:>12} {:>12}", "case", "us/request", "requests/s");
    let cases = [
        ("RS256", Some("rsa")),
        ("PS256", Some("rsa")),
        ("ES256", Some("p256")),
        ("ES384", Some("p384")),
        ("EdDSA", Some("ed")),
        ("HS256", None),
    ];
    let mut results = Vec::new();
    for (alg, kid) in cases {
        let header = token(alg, kid);
        let mut auth = authenticator(0); // cache off: every call verifies the signature
        let us = measure(|| run(&mut auth, &header));
        println!(
            "{:<28} {:>12.2} {:>12.0}",
            format!("{alg} first-seen"),
            us,
            1e6 / us
        );
        results.push((alg, us));
    }
    let header = token("RS256", Some("rsa"));
    let mut auth = authenticator(4096);
    run(&mut auth, &header);
    let hit = measure(|| run(&mut auth, &header));
    println!("{:<28} {:>12.2} {:>12.0}", "cache hit (any alg)", hit, 1e6 / hit);
    for (alg, us) in results {
        println!(
            "  {alg}: a cache hit is {:.0}x cheaper than a first-seen token",
            us / hit
        );
    }
}

fn run(auth: &mut Authenticator, header: &str) {
    match auth.authenticate(Some(black_box(header)), NOW, &MemStore::default(), false) {
        Verdict::Allow(id) => {
            black_box(id);
        }
        other => panic!("bench token refused: {other:?}"),
    }
}

/// Median of 7 rounds of ~200 ms each, in microseconds per call.
fn measure(mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut calibrate = 0u64;
    while start.elapsed().as_millis() < 50 {
        f();
        calibrate += 1;
    }
    let per_round = (calibrate * 4).max(1);
    let mut rounds: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_round {
                f();
            }
            t.elapsed().as_secs_f64() * 1e6 / per_round as f64
        })
        .collect();
    rounds.sort_by(|a, b| a.total_cmp(b));
    rounds[3]
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
