//! Native tests of every authentication rule, with keys generated in the tests.

use crate::authn::auth::{Authenticator, Verdict};
use crate::config::Config;
use crate::host::memory::MemStore;
use crate::outcome::reason::Reason;
use crate::test_keys::{b64, keys};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

const ISS: &str = "https://idp.test";
const NOW: u64 = 1_800_000_000;

fn rsa_jwk(key: &rsa::RsaPrivateKey, kid: &str) -> Value {
    use rsa::traits::PublicKeyParts;
    json!({"kty": "RSA", "kid": kid, "use": "sig", "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be())})
}

fn p256_jwk(kid: &str) -> Value {
    let p = keys().p256.verifying_key().to_encoded_point(false);
    json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": b64(p.x().unwrap()), "y": b64(p.y().unwrap())})
}

fn p384_jwk(kid: &str) -> Value {
    let p = keys().p384.verifying_key().to_encoded_point(false);
    json!({"kty": "EC", "crv": "P-384", "kid": kid, "x": b64(p.x().unwrap()), "y": b64(p.y().unwrap())})
}

fn ed_jwk(kid: &str) -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(keys().ed.verifying_key().as_bytes())})
}

fn all_jwks() -> Value {
    json!({"keys": [rsa_jwk(&keys().rsa, "rsa"), p256_jwk("p256"), p384_jwk("p384"), ed_jwk("ed")]})
}

const HMAC_SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-hmac";

fn sign(alg: &str, input: &[u8]) -> Vec<u8> {
    use sha2::{Sha256, Sha384, Sha512};
    let k = keys();
    match alg {
        "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" => sign_rsa(&k.rsa, alg, input),
        "ES256" => {
            use p256::ecdsa::signature::Signer;
            let s: p256::ecdsa::Signature = k.p256.sign(input);
            s.to_bytes().to_vec()
        }
        "ES384" => {
            use p384::ecdsa::signature::Signer;
            let s: p384::ecdsa::Signature = k.p384.sign(input);
            s.to_bytes().to_vec()
        }
        "EdDSA" => {
            use ed25519_dalek::Signer;
            k.ed.sign(input).to_bytes().to_vec()
        }
        "HS256" | "HS384" | "HS512" => {
            use hmac::{Hmac, Mac};
            macro_rules! mac {
                ($h:ty) => {{
                    let mut m = Hmac::<$h>::new_from_slice(HMAC_SECRET).unwrap();
                    m.update(input);
                    m.finalize().into_bytes().to_vec()
                }};
            }
            match alg {
                "HS256" => mac!(Sha256),
                "HS384" => mac!(Sha384),
                _ => mac!(Sha512),
            }
        }
        other => panic!("no signer for {other}"),
    }
}

fn sign_rsa(key: &rsa::RsaPrivateKey, alg: &str, input: &[u8]) -> Vec<u8> {
    use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
    use sha2::{Sha256, Sha384, Sha512};
    let mut rng = rand_core::OsRng;
    match alg {
        "RS256" => rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone())
            .sign(input)
            .to_vec(),
        "RS384" => rsa::pkcs1v15::SigningKey::<Sha384>::new(key.clone())
            .sign(input)
            .to_vec(),
        "RS512" => rsa::pkcs1v15::SigningKey::<Sha512>::new(key.clone())
            .sign(input)
            .to_vec(),
        "PS256" => rsa::pss::SigningKey::<Sha256>::new(key.clone())
            .sign_with_rng(&mut rng, input)
            .to_vec(),
        "PS384" => rsa::pss::SigningKey::<Sha384>::new(key.clone())
            .sign_with_rng(&mut rng, input)
            .to_vec(),
        _ => rsa::pss::SigningKey::<Sha512>::new(key.clone())
            .sign_with_rng(&mut rng, input)
            .to_vec(),
    }
}

fn kid_for(alg: &str) -> &'static str {
    match alg {
        "ES256" => "p256",
        "ES384" => "p384",
        "EdDSA" => "ed",
        _ => "rsa",
    }
}

fn claims() -> Value {
    json!({"iss": ISS, "aud": "llm-api", "sub": "alice", "iat": NOW - 10, "exp": NOW + 300, "jti": "jti-1"})
}

fn token_with(header: Value, claims: Value, signer_alg: &str) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = sign(signer_alg, input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

fn token(alg: &str, claims: Value) -> String {
    token_with(
        json!({"alg": alg, "typ": "JWT", "kid": kid_for(alg)}),
        claims,
        alg,
    )
}

fn config(issuer_extra: Value) -> Config {
    let mut issuer = json!({"name": "idp", "issuer": ISS, "audiences": ["llm-api"],
        "jwks": {"inline": all_jwks()}});
    if let (Some(obj), Some(extra)) = (issuer.as_object_mut(), issuer_extra.as_object()) {
        for (k, v) in extra {
            obj.insert(k.clone(), v.clone());
        }
    }
    Config::parse(json!({"issuers": [issuer]}).to_string().as_bytes()).unwrap()
}

fn authenticator(issuer_extra: Value) -> Authenticator {
    Authenticator::new(&config(issuer_extra)).unwrap()
}

fn run(auth: &mut Authenticator, token: &str, now: u64) -> Verdict {
    let header = format!("Bearer {token}");
    auth.authenticate(Some(&header), now, &MemStore::default(), true)
}

fn reason(v: &Verdict) -> Reason {
    match v {
        Verdict::Allow(_) => Reason::Ok,
        Verdict::Deny { reason, .. } => *reason,
        Verdict::Fetch { .. } => panic!("unexpected fetch"),
    }
}

fn check(extra: Value, token: &str) -> Reason {
    reason(&run(&mut authenticator(extra), token, NOW))
}

#[test]
fn every_asymmetric_algorithm_verifies() {
    for alg in [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
    ] {
        assert_eq!(check(json!({}), &token(alg, claims())), Reason::Ok, "{alg}");
    }
}

#[test]
fn hmac_only_with_explicit_secret() {
    let secret = STANDARD.encode(HMAC_SECRET);
    for alg in ["HS256", "HS384", "HS512"] {
        let t = token_with(json!({"alg": alg}), claims(), alg);
        assert_eq!(
            check(json!({"hmac_secret_base64": secret}), &t),
            Reason::Ok,
            "{alg}"
        );
        assert_eq!(
            check(json!({}), &t),
            Reason::AlgNotAllowed,
            "{alg} without secret"
        );
    }
}

#[test]
fn rsa_public_key_as_hmac_secret_is_refused() {
    // The classic RS256 -> HS256 confusion: sign with the public key's bytes as HMAC secret.
    use hmac::{Hmac, Mac};
    let pem = rsa_jwk(&keys().rsa, "rsa").to_string();
    let header = json!({"alg": "HS256", "kid": "rsa"});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims().to_string().as_bytes())
    );
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(pem.as_bytes()).unwrap();
    m.update(input.as_bytes());
    let t = format!("{input}.{}", b64(&m.finalize().into_bytes()));
    assert_eq!(check(json!({}), &t), Reason::AlgNotAllowed);
}

#[test]
fn alg_none_in_any_spelling_is_refused() {
    for alg in ["none", "None", "NONE", "nOnE", ""] {
        let input = format!(
            "{}.{}",
            b64(json!({"alg": alg}).to_string().as_bytes()),
            b64(claims().to_string().as_bytes())
        );
        assert_eq!(
            check(json!({}), &format!("{input}.")),
            Reason::UnsupportedAlg,
            "{alg:?}"
        );
    }
    let no_alg = format!(
        "{}.{}.",
        b64(b"{\"typ\":\"JWT\"}"),
        b64(claims().to_string().as_bytes())
    );
    assert_eq!(check(json!({}), &no_alg), Reason::UnsupportedAlg);
}

#[test]
fn alg_must_fit_the_key() {
    // ES256 header naming the RSA key.
    let t = token_with(json!({"alg": "ES256", "kid": "rsa"}), claims(), "ES256");
    assert_eq!(check(json!({}), &t), Reason::AlgNotAllowed);
    // A JWK that pins RS256 does not verify PS256.
    let mut pinned = rsa_jwk(&keys().rsa, "rsa");
    pinned["alg"] = json!("RS256");
    let extra = json!({"jwks": {"inline": {"keys": [pinned]}}});
    assert_eq!(check(extra.clone(), &token("RS256", claims())), Reason::Ok);
    assert_eq!(check(extra, &token("PS256", claims())), Reason::AlgNotAllowed);
    // An issuer's algorithm allow-list.
    assert_eq!(
        check(json!({"algorithms": ["ES256"]}), &token("RS256", claims())),
        Reason::AlgNotAllowed
    );
}

#[test]
fn key_bearing_and_crit_headers_are_refused() {
    for (k, v) in [
        ("jku", json!("https://evil/jwks")),
        ("x5u", json!("https://evil/cert")),
        ("x5c", json!(["MIIB"])),
        ("jwk", rsa_jwk(&keys().rsa, "rsa")),
        ("crit", json!(["exp"])),
        ("crit", json!([])),
    ] {
        let mut h = json!({"alg": "RS256", "kid": "rsa"});
        h[k] = v;
        assert_eq!(
            check(json!({}), &token_with(h, claims(), "RS256")),
            Reason::ForbiddenHeader,
            "{k}"
        );
    }
}

#[test]
fn oversized_tokens_are_refused_before_parsing() {
    let big = claims();
    let mut big = big.as_object().cloned().unwrap();
    big.insert("pad".into(), json!("x".repeat(17 * 1024)));
    let t = token("RS256", Value::Object(big));
    assert_eq!(check(json!({}), &t), Reason::TokenTooLarge);
}

#[test]
fn bad_signature_and_tampering() {
    let t = token("ES256", claims());
    let mut parts: Vec<String> = t.split('.').map(String::from).collect();
    let mut forged = claims();
    forged["sub"] = json!("admin");
    parts[1] = b64(forged.to_string().as_bytes());
    assert_eq!(check(json!({}), &parts.join(".")), Reason::BadSignature);
    // Signed by another RSA key under the same kid.
    let input = format!(
        "{}.{}",
        b64(json!({"alg": "RS256", "kid": "rsa"}).to_string().as_bytes()),
        b64(claims().to_string().as_bytes())
    );
    let t = format!(
        "{input}.{}",
        b64(&sign_rsa(&keys().rsa2, "RS256", input.as_bytes()))
    );
    assert_eq!(check(json!({}), &t), Reason::BadSignature);
    // A DER-encoded ECDSA signature is not the JWS form.
    use p256::ecdsa::signature::Signer;
    let input = format!(
        "{}.{}",
        b64(json!({"alg": "ES256", "kid": "p256"}).to_string().as_bytes()),
        b64(claims().to_string().as_bytes())
    );
    let s: p256::ecdsa::Signature = keys().p256.sign(input.as_bytes());
    let t = format!("{input}.{}", b64(s.to_der().as_bytes()));
    assert_eq!(check(json!({}), &t), Reason::BadSignature);
}

#[test]
fn malformed_tokens() {
    let good = token("EdDSA", claims());
    let parts: Vec<&str> = good.split('.').collect();
    for bad in [
        "abc".to_string(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{good}.extra"),
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}", parts[0], "!!!", parts[2]),
        format!("{}.{}.{}", b64(b"[1,2]"), parts[1], parts[2]),
    ] {
        assert_eq!(check(json!({}), &bad), Reason::MalformedToken, "{bad}");
    }
    // Duplicate members: two parsers could disagree on which `sub` is real.
    let dup_claims = format!(
        "{{\"iss\":\"{ISS}\",\"aud\":\"llm-api\",\"exp\":{},\"sub\":\"a\",\"sub\":\"admin\"}}",
        NOW + 60
    );
    let input = format!(
        "{}.{}",
        b64(json!({"alg": "EdDSA", "kid": "ed"}).to_string().as_bytes()),
        b64(dup_claims.as_bytes())
    );
    let t = format!("{input}.{}", b64(&sign("EdDSA", input.as_bytes())));
    assert_eq!(check(json!({}), &t), Reason::MalformedToken);
}

#[test]
fn issuer_must_be_configured() {
    let mut c = claims();
    c["iss"] = json!("https://other");
    assert_eq!(check(json!({}), &token("RS256", c)), Reason::UnknownIssuer);
    let mut c = claims();
    c.as_object_mut().unwrap().remove("iss");
    assert_eq!(check(json!({}), &token("RS256", c)), Reason::UnknownIssuer);
}

#[test]
fn claim_rules_apply() {
    let cases = [
        (json!({"aud": "someone-else"}), Reason::AudienceMismatch),
        (json!({"aud": ["a", "llm-api"]}), Reason::Ok),
        (json!({"exp": NOW - 61}), Reason::Expired),
        (json!({"exp": null}), Reason::MissingExp),
        (json!({"nbf": NOW + 120}), Reason::NotYetValid),
        (json!({"iat": NOW + 120}), Reason::IssuedInFuture),
        (
            json!({"iat": NOW - 100, "exp": NOW + 3600}),
            Reason::LifetimeTooLong,
        ),
    ];
    for (patch, expected) in cases {
        let mut c = claims();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        assert_eq!(check(json!({}), &token("RS256", c)), expected, "{patch}");
    }
    // Configurable: skew and lifetime.
    let mut c = claims();
    c["exp"] = json!(NOW - 61);
    assert_eq!(
        check(json!({"clock_skew_s": 120}), &token("RS256", c)),
        Reason::Ok
    );
    let mut c = claims();
    c["exp"] = json!(NOW + 7000);
    assert_eq!(
        check(json!({"max_lifetime_s": 7200}), &token("RS256", c)),
        Reason::Ok
    );
}

#[test]
fn token_without_kid_needs_exactly_one_fitting_key() {
    let no_kid = token_with(json!({"alg": "ES256"}), claims(), "ES256");
    assert_eq!(check(json!({}), &no_kid), Reason::Ok, "only one P-256 key");
    let two_rsa =
        json!({"jwks": {"inline": {"keys": [rsa_jwk(&keys().rsa, "a"), rsa_jwk(&keys().rsa2, "b")]}}});
    let no_kid = token_with(json!({"alg": "RS256"}), claims(), "RS256");
    assert_eq!(check(two_rsa, &no_kid), Reason::AmbiguousKey);
    let unknown = token_with(json!({"alg": "RS256", "kid": "nope"}), claims(), "RS256");
    assert_eq!(check(json!({}), &unknown), Reason::UnknownKey);
}

#[test]
fn revocation_by_jti_and_subject() {
    let t = token("EdDSA", claims());
    assert_eq!(
        check(json!({"revoked": {"jtis": ["jti-1"]}}), &t),
        Reason::Revoked
    );
    assert_eq!(
        check(json!({"revoked": {"subjects": ["alice"]}}), &t),
        Reason::Revoked
    );
    assert_eq!(check(json!({"revoked": {"subjects": ["bob"]}}), &t), Reason::Ok);
}

#[test]
fn cache_skips_verification_but_not_expiry_or_revocation() {
    let mut auth = authenticator(json!({}));
    let t = token("RS256", claims());
    assert_eq!(reason(&run(&mut auth, &t, NOW)), Reason::Ok);
    assert_eq!(auth.signature_checks, 1);
    assert_eq!(reason(&run(&mut auth, &t, NOW + 1)), Reason::Ok);
    assert_eq!(auth.signature_checks, 1, "repeat token must be a cache hit");
    assert_eq!(auth.cached_tokens(), 1);
    // Revocation is checked on every hit.
    auth.issuers[0].revoked_jtis.insert("jti-1".into());
    assert_eq!(reason(&run(&mut auth, &t, NOW + 2)), Reason::Revoked);
    auth.issuers[0].revoked_jtis.clear();
    // Expiry too (exp + 60 s skew).
    assert_eq!(reason(&run(&mut auth, &t, NOW + 300 + 60)), Reason::Expired);
    assert_eq!(auth.signature_checks, 1);
    // A tampered copy is not a hit.
    let tampered = format!("{}x", &t[..t.len() - 1]);
    assert_ne!(reason(&run(&mut auth, &tampered, NOW)), Reason::Ok);
}

#[test]
fn cache_is_bounded() {
    let mut auth = Authenticator::new(
        &Config::parse(
            json!({"issuers": [{"name": "idp", "issuer": ISS, "audiences": ["llm-api"],
            "jwks": {"inline": all_jwks()}}], "token_cache": {"max_entries": 3}})
            .to_string()
            .as_bytes(),
        )
        .unwrap(),
    )
    .unwrap();
    for i in 0..10 {
        let mut c = claims();
        c["jti"] = json!(format!("j{i}"));
        assert_eq!(reason(&run(&mut auth, &token("EdDSA", c), NOW)), Reason::Ok);
        assert!(auth.cached_tokens() <= 3);
    }
}

#[test]
fn cache_collision_is_a_miss_and_verifies_again() {
    let mut auth = authenticator(json!({}));
    auth.force_cache_collisions();
    let alice = token("EdDSA", claims());
    let mut c = claims();
    c["sub"] = json!("bob");
    c["jti"] = json!("jti-2");
    let bob = token("EdDSA", c);
    let subject = |v: &Verdict| match v {
        Verdict::Allow(id) => id.sub.clone(),
        other => panic!("expected allow, got {other:?}"),
    };
    assert_eq!(subject(&run(&mut auth, &alice, NOW)).as_deref(), Some("alice"));
    assert_eq!(auth.signature_checks, 1);
    assert_eq!(subject(&run(&mut auth, &alice, NOW)).as_deref(), Some("alice"));
    assert_eq!(auth.signature_checks, 1, "the identical token is a hit");
    // Same cache key, other token: never alice's identity, verified on its own.
    assert_eq!(subject(&run(&mut auth, &bob, NOW)).as_deref(), Some("bob"));
    assert_eq!(auth.signature_checks, 2);
    // A forged token under the colliding key is verified, and fails.
    let (alice_signed, _) = alice.rsplit_once('.').unwrap();
    let (_, bob_signature) = bob.rsplit_once('.').unwrap();
    let forged = format!("{alice_signed}.{bob_signature}");
    assert_eq!(reason(&run(&mut auth, &forged, NOW)), Reason::BadSignature);
    assert_eq!(auth.signature_checks, 3);
    // bob took the key: alice is verified again, not served bob's entry.
    assert_eq!(subject(&run(&mut auth, &alice, NOW)).as_deref(), Some("alice"));
    assert_eq!(auth.signature_checks, 4);
    assert_eq!(auth.cached_tokens(), 1);
}

#[test]
fn tokens_over_the_cache_cap_are_verified_every_time() {
    use crate::authn::token_cache::MAX_CACHED_TOKEN_BYTES;
    let mut auth = authenticator(json!({}));
    let mut c = claims();
    c["pad"] = json!("p".repeat(MAX_CACHED_TOKEN_BYTES));
    let long = token("EdDSA", c);
    assert!(long.len() > MAX_CACHED_TOKEN_BYTES && long.len() < 16384);
    for i in 1..=3 {
        assert_eq!(reason(&run(&mut auth, &long, NOW)), Reason::Ok);
        assert_eq!(auth.signature_checks, i);
        assert_eq!(auth.tokens_too_long_to_cache, i);
    }
    assert_eq!(auth.cached_tokens(), 0);
    // Revocation and expiry still apply to it, as to any token.
    auth.issuers[0].revoked_jtis.insert("jti-1".into());
    assert_eq!(reason(&run(&mut auth, &long, NOW)), Reason::Revoked);
    // A token at the cap is cached as usual.
    let short = token("EdDSA", claims());
    assert!(short.len() <= MAX_CACHED_TOKEN_BYTES);
    auth.issuers[0].revoked_jtis.clear();
    assert_eq!(reason(&run(&mut auth, &short, NOW)), Reason::Ok);
    assert_eq!(reason(&run(&mut auth, &short, NOW)), Reason::Ok);
    assert_eq!(auth.signature_checks, 5);
    assert_eq!(auth.tokens_too_long_to_cache, 4);
    assert_eq!(auth.cached_tokens(), 1);
}

#[test]
fn token_extraction() {
    let auth = authenticator(json!({}));
    assert_eq!(auth.extract_token(Some("bearer abc")), Ok("abc"));
    assert_eq!(auth.extract_token(Some("BEARER   abc  ")), Ok("abc"));
    assert_eq!(
        auth.extract_token(Some("Basic dXNlcjpwYXNz")),
        Err(Reason::MissingToken)
    );
    assert_eq!(auth.extract_token(Some("Bearer ")), Err(Reason::MissingToken));
    assert_eq!(auth.extract_token(None), Err(Reason::MissingToken));
    let cfg = Config::parse(
        json!({"issuers": [{"name": "idp", "issuer": ISS, "audiences": ["a"], "jwks": {"inline": all_jwks()}}],
               "token": {"header": "x-api-token", "prefix": ""}})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    let auth = Authenticator::new(&cfg).unwrap();
    assert_eq!(auth.extract_token(Some("abc")), Ok("abc"));
}

#[test]
fn identity_of_allowed_call() {
    let mut c = claims();
    c["azp"] = json!("cli");
    c["scope"] = json!("chat embeddings");
    c["act"] = json!({"sub": "agent-7", "act": {"sub": "planner"}});
    match run(&mut authenticator(json!({})), &token("ES384", c), NOW) {
        Verdict::Allow(id) => {
            assert_eq!(id.sub.as_deref(), Some("alice"));
            assert_eq!(id.client.as_deref(), Some("cli"));
            assert_eq!(id.scopes, vec!["chat", "embeddings"]);
            assert_eq!(id.actors, vec!["agent-7", "planner"]);
            assert_eq!(id.issuer_name, "idp");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn denied_identity_only_after_signature_verified() {
    let mut c = claims();
    c["exp"] = json!(NOW - 1000);
    match run(&mut authenticator(json!({})), &token("RS256", c.clone()), NOW) {
        Verdict::Deny {
            reason: Reason::Expired,
            identity: Some(id),
        } => assert_eq!(id.sub.as_deref(), Some("alice")),
        other => panic!("{other:?}"),
    }
    let t = token("RS256", c);
    let forged = format!("{}AAAA", &t[..t.len() - 4]);
    match run(&mut authenticator(json!({})), &forged, NOW) {
        Verdict::Deny { identity: None, .. } => {}
        other => panic!("{other:?}"),
    }
}

// ---- remote JWKS ----

fn remote_auth(extra: Value) -> Authenticator {
    let mut remote = json!({"cluster": "jwks", "path": "/jwks.json", "refresh_interval_s": 60, "max_stale_s": 600,
        "unknown_kid_refetch_interval_s": 30});
    for (k, v) in extra.as_object().unwrap() {
        remote[k] = v.clone();
    }
    Authenticator::new(
        &Config::parse(
            json!({"issuers": [{"name": "idp", "issuer": ISS, "audiences": ["llm-api"], "jwks": {"remote": remote}}]})
                .to_string()
                .as_bytes(),
        )
        .unwrap(),
    )
    .unwrap()
}

/// The JWKS endpoint answers 200 with `keys`.
fn serve(
    auth: &mut Authenticator,
    store: &MemStore,
    at: u64,
    keys: &[Value],
) -> crate::authn::jwks::FetchResult {
    auth.on_fetch(0, at, store, Some(200), Some(&doc(keys)))
}

fn doc(keys: &[Value]) -> Vec<u8> {
    json!({ "keys": keys }).to_string().into_bytes()
}

fn auth_at(auth: &mut Authenticator, store: &MemStore, t: &str, now: u64, may_fetch: bool) -> Verdict {
    auth.authenticate(Some(&format!("Bearer {t}")), now, store, may_fetch)
}

#[test]
fn remote_keys_are_fetched_then_shared_between_workers() {
    let store = MemStore::default();
    let mut worker_a = remote_auth(json!({}));
    let mut worker_b = remote_auth(json!({}));
    let t = token("RS256", claims());
    assert!(matches!(
        auth_at(&mut worker_a, &store, &t, NOW, true),
        Verdict::Fetch { issuer: 0 }
    ));
    let r = serve(&mut worker_a, &store, NOW, &[rsa_jwk(&keys().rsa, "rsa")]);
    assert_eq!(
        r,
        crate::authn::jwks::FetchResult::Updated { keys: 1, skipped: 0 }
    );
    assert_eq!(
        reason(&auth_at(&mut worker_a, &store, &t, NOW, false)),
        Reason::Ok
    );
    // Worker B finds the keys in the shared store: no fetch of its own.
    assert_eq!(reason(&auth_at(&mut worker_b, &store, &t, NOW, true)), Reason::Ok);
    assert!(
        worker_b.tick(NOW + 1, &store).is_empty(),
        "fresh keys need no refresh"
    );
}

#[test]
fn missing_keys_without_fetch_fail_closed_with_503() {
    let store = MemStore::default();
    let mut auth = remote_auth(json!({}));
    let t = token("RS256", claims());
    assert_eq!(
        reason(&auth_at(&mut auth, &store, &t, NOW, false)),
        Reason::JwksUnavailable
    );
    assert_eq!(
        crate::outcome::reason::denial_reply(Reason::JwksUnavailable, "r").status,
        503
    );
}

#[test]
fn refresh_is_claimed_by_one_worker_and_rate_limited() {
    let store = MemStore::default();
    let mut a = remote_auth(json!({}));
    let mut b = remote_auth(json!({}));
    serve(&mut a, &store, NOW, &[rsa_jwk(&keys().rsa, "rsa")]);
    assert!(a.tick(NOW + 30, &store).is_empty());
    assert_eq!(a.tick(NOW + 60, &store), vec![0], "due after refresh_interval_s");
    assert!(b.tick(NOW + 60, &store).is_empty(), "lease held by worker A");
    // A failed fetch keeps the old keys and backs off before the next try (1 s, then 2 s).
    a.on_fetch(0, NOW + 60, &store, Some(500), None);
    assert!(b.tick(NOW + 60, &store).is_empty());
    assert_eq!(b.tick(NOW + 61, &store), vec![0]);
    b.on_fetch(0, NOW + 61, &store, Some(500), None);
    assert!(a.tick(NOW + 62, &store).is_empty());
    assert_eq!(a.tick(NOW + 63, &store), vec![0]);
}

#[test]
fn stale_keys_serve_until_max_staleness_then_503() {
    let store = MemStore::default();
    let mut auth = remote_auth(json!({}));
    serve(&mut auth, &store, NOW, &[rsa_jwk(&keys().rsa, "rsa")]);
    let mut c = claims();
    c["iat"] = json!(NOW);
    c["exp"] = json!(NOW + 900);
    let t = token("RS256", c);
    // JWKS down: every refresh fails, keys keep serving up to max_stale_s (600 s).
    for at in [NOW + 100, NOW + 300, NOW + 590] {
        auth.tick(at, &store);
        auth.on_fetch(0, at, &store, None, None);
        assert_eq!(
            reason(&auth_at(&mut auth, &store, &t, at, false)),
            Reason::Ok,
            "at +{}",
            at - NOW
        );
    }
    assert_eq!(
        reason(&auth_at(&mut auth, &store, &t, NOW + 601, false)),
        Reason::JwksUnavailable
    );
    // With fetching allowed the request asks for a fetch, and a success restores service.
    assert!(matches!(
        auth_at(&mut auth, &store, &t, NOW + 602, true),
        Verdict::Fetch { .. }
    ));
    serve(&mut auth, &store, NOW + 602, &[rsa_jwk(&keys().rsa, "rsa")]);
    assert_eq!(
        reason(&auth_at(&mut auth, &store, &t, NOW + 602, false)),
        Reason::Ok
    );
}

#[test]
fn unknown_kid_refetches_at_most_once_per_interval() {
    let store = MemStore::default();
    let mut auth = remote_auth(json!({}));
    serve(&mut auth, &store, NOW, &[rsa_jwk(&keys().rsa, "rsa")]);
    let rotated = token("ES256", claims());
    assert!(matches!(
        auth_at(&mut auth, &store, &rotated, NOW + 1, true),
        Verdict::Fetch { .. }
    ));
    serve(&mut auth, &store, NOW + 1, &[rsa_jwk(&keys().rsa, "rsa")]);
    assert_eq!(
        reason(&auth_at(&mut auth, &store, &rotated, NOW + 1, false)),
        Reason::UnknownKey
    );
    // Within the interval a random kid cannot force more fetches.
    assert_eq!(
        reason(&auth_at(&mut auth, &store, &rotated, NOW + 10, true)),
        Reason::UnknownKey
    );
    // After it, the rotated key set is picked up.
    assert!(matches!(
        auth_at(&mut auth, &store, &rotated, NOW + 31, true),
        Verdict::Fetch { .. }
    ));
    serve(
        &mut auth,
        &store,
        NOW + 31,
        &[rsa_jwk(&keys().rsa, "rsa"), p256_jwk("p256")],
    );
    assert_eq!(
        reason(&auth_at(&mut auth, &store, &rotated, NOW + 31, false)),
        Reason::Ok
    );
}

#[test]
fn bad_jwks_responses_never_replace_good_keys() {
    let store = MemStore::default();
    let mut auth = remote_auth(json!({"max_bytes": 2048}));
    serve(&mut auth, &store, NOW, &[rsa_jwk(&keys().rsa, "rsa")]);
    let huge = json!({"keys": [rsa_jwk(&keys().rsa, "rsa")], "padding": "x".repeat(4096)})
        .to_string()
        .into_bytes();
    let cases: Vec<(Option<u16>, Vec<u8>)> = vec![
        (Some(200), b"not json".to_vec()),
        (Some(200), b"{\"keys\": []}".to_vec()),
        (Some(200), b"{\"nokeys\": 1}".to_vec()),
        (
            Some(200),
            doc(&[json!({"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "tiny"})]),
        ),
        (Some(200), huge),
        (Some(404), doc(&[p256_jwk("p256")])),
        (None, vec![]),
    ];
    for (status, body) in cases {
        let r = auth.on_fetch(0, NOW + 5, &store, status, Some(&body));
        assert!(
            matches!(r, crate::authn::jwks::FetchResult::Rejected(_)),
            "{status:?} {}",
            String::from_utf8_lossy(&body)
        );
    }
    assert_eq!(
        reason(&auth_at(
            &mut auth,
            &store,
            &token("RS256", claims()),
            NOW + 6,
            false
        )),
        Reason::Ok
    );
}

#[test]
fn removed_key_invalidates_cached_tokens() {
    let store = MemStore::default();
    let mut auth = remote_auth(json!({}));
    serve(
        &mut auth,
        &store,
        NOW,
        &[rsa_jwk(&keys().rsa, "rsa"), p256_jwk("p256")],
    );
    let t = token("RS256", claims());
    assert_eq!(reason(&auth_at(&mut auth, &store, &t, NOW, false)), Reason::Ok);
    // The RSA key is withdrawn (compromised): the cached token must not keep working.
    serve(&mut auth, &store, NOW + 1, &[p256_jwk("p256")]);
    assert_eq!(
        reason(&auth_at(&mut auth, &store, &t, NOW + 2, false)),
        Reason::UnknownKey
    );
}

// ---- JWK parsing ----

#[test]
fn unsafe_jwks_are_refused_in_config() {
    use rsa::traits::PrivateKeyParts;
    let small = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 1024).unwrap();
    let mut private = rsa_jwk(&keys().rsa, "p");
    private["d"] = json!(b64(&keys().rsa.d().to_bytes_be()));
    let mut off_curve = p256_jwk("c");
    off_curve["y"] = json!(b64(&[7u8; 32]));
    for (key, needle) in [
        (rsa_jwk(&small, "s"), "1024 bits"),
        (private, "private"),
        (off_curve, "not on the curve"),
        (json!({"kty": "oct", "k": "c2VjcmV0"}), "private or symmetric"),
        (
            json!({"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"}),
            "unsupported EC curve",
        ),
    ] {
        let cfg = json!({"issuers": [{"name": "i", "issuer": ISS, "audiences": ["a"],
            "jwks": {"inline": {"keys": [ed_jwk("ok"), key]}}}]});
        let e = Config::parse(cfg.to_string().as_bytes()).unwrap_err();
        assert_eq!(e.path, "issuers[0].jwks.inline.keys[1]");
        assert!(e.message.contains(needle), "{e}");
    }
}

// ---- config errors name the field path ----

#[test]
fn config_errors_name_the_field_path() {
    let base = |issuer: Value| json!({"issuers": [issuer]}).to_string();
    let cases = [
        (
            base(json!({"name": "i", "issuer": ISS, "audiences": ["a"], "jwks": {"remote": {"clustr": "x", "path": "/j"}}})),
            "issuers[0].jwks.remote.clustr",
            "unknown field `clustr`",
        ),
        (base(json!({"name": "i", "issuer": ISS, "audiences": [], "jwks": {"inline": all_jwks()}})), "issuers[0].audiences", "at least one"),
        (
            base(json!({"name": "i", "issuer": ISS, "audiences": ["a"], "jwks": {"inline": all_jwks()}, "algorithms": ["RS256", "HS256"]})),
            "issuers[0].algorithms[1]",
            "hmac_secret_base64",
        ),
        (
            base(json!({"name": "i", "issuer": ISS, "audiences": ["a"], "jwks": {"inline": all_jwks()}, "algorithms": ["none"]})),
            "issuers[0].algorithms[0]",
            "unknown variant",
        ),
        (base(json!({"name": "i", "issuer": ISS, "audiences": ["a"]})), "issuers[0].jwks", "required"),
        (
            base(json!({"name": "i", "issuer": ISS, "audiences": ["a"], "hmac_secret_base64": "c2hvcnQ="})),
            "issuers[0].hmac_secret_base64",
            "at least 32 bytes",
        ),
        (
            base(json!({"name": "i", "issuer": ISS, "audiences": ["a"], "jwks": {"remote": {"cluster": "c", "path": "/j", "refresh_interval_s": 600, "max_stale_s": 60}}})),
            "issuers[0].jwks.remote.max_stale_s",
            "at least refresh_interval_s",
        ),
        ("{\"issuers\": [], \"extra\": 1}".to_string(), "extra", "unknown field"),
        ("{\"issuers\": []}".to_string(), "issuers", "at least one issuer"),
        (
            json!({"issuers": [{"name": "i", "issuer": ISS, "audiences": ["a"], "jwks": {"inline": all_jwks()}}], "token": {"max_bytes": "big"}}).to_string(),
            "token.max_bytes",
            "invalid type",
        ),
        ("not json".to_string(), "", "expected"),
        // A struct is an object: serde_json would also read it as an array of its fields.
        (
            json!({"issuers": [{"name": "i", "issuer": ISS, "audiences": ["a"], "jwks": {"inline": all_jwks()}}], "token": ["authorization", "Bearer ", 8192]}).to_string(),
            "token",
            "invalid type: sequence, expected struct TokenSource",
        ),
        (base(json!(["i", ISS, ["a"]])), "issuers[0]", "invalid type: sequence, expected struct"),
        // Pretty-printed (positions on later lines), a missing field (reported on its
        // object), a key holding an escaped quote, a map key.
        (
            serde_json::to_string_pretty(&json!({"issuers": [{"name": "i", "issuer": ISS, "audiences": ["a"],
                "jwks": {"remote": {"cluster": "c", "path": "/j", "x\\\"y": 1}}}]}))
            .unwrap(),
            "issuers[0].jwks.remote.x\\\"y",
            "unknown field",
        ),
        (base(json!({"name": "i", "audiences": ["a"], "jwks": {"inline": all_jwks()}})), "issuers[0]", "missing field `issuer`"),
        (
            json!({"issuers": [{"name": "i", "issuer": ISS, "audiences": ["a"], "jwks": {"inline": all_jwks()}}],
                "authorization": {"routes": [], "policies": {"p-1": {"rules": [{"name": "r", "modelz": ["*"]}]}}}})
            .to_string(),
            "authorization.policies.p-1.rules[0].modelz",
            "unknown field `modelz`",
        ),
    ];
    for (doc, path, needle) in cases {
        let e = Config::parse(doc.as_bytes()).unwrap_err();
        assert_eq!(e.path, path, "{doc} -> {e}");
        assert!(e.message.contains(needle), "{e}");
        assert!(e.to_string().starts_with(path));
    }
}

#[test]
fn minimal_config_gets_safe_defaults() {
    let cfg = config(json!({}));
    assert_eq!(cfg.token.header, "authorization");
    assert_eq!(cfg.token.max_bytes, 16 * 1024);
    assert!(!cfg.token.forward);
    let issuer = &cfg.issuers[0];
    assert!(issuer.require_exp);
    assert_eq!(issuer.clock_skew_s, 60);
    assert_eq!(issuer.max_lifetime_s, 3600);
    assert!(!issuer.allowed_algorithms().iter().any(|a| a.is_hmac()));
}

// ---- never panic on input ----

/// xorshift64*: a tiny deterministic PRNG so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &str) -> String {
    let mut bytes = input.as_bytes().to_vec();
    const ALPHABET: &[u8] = b".-_=+/ AZaz09{}\":,\\\0\xff\xc3";
    for _ in 0..=rng.below(4) {
        match rng.below(5) {
            0 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] = ALPHABET[rng.below(ALPHABET.len())];
            }
            1 if !bytes.is_empty() => {
                bytes.truncate(rng.below(bytes.len()));
            }
            2 => {
                let i = rng.below(bytes.len() + 1);
                bytes.insert(i, ALPHABET[rng.below(ALPHABET.len())]);
            }
            3 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes.remove(i);
            }
            _ => {
                let i = rng.below(bytes.len() + 1);
                let j = rng.below(bytes.len() + 1);
                let (a, b) = (i.min(j), i.max(j));
                let chunk = bytes[a..b].to_vec();
                bytes.splice(a..a, chunk);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn mutated_tokens_never_panic_and_never_pass_unsigned() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut auth = authenticator(json!({"hmac_secret_base64": STANDARD.encode(HMAC_SECRET)}));
    let seeds: Vec<String> = ["RS256", "PS384", "ES256", "ES384", "EdDSA"]
        .iter()
        .map(|a| token(a, claims()))
        .chain([token_with(json!({"alg": "HS256"}), claims(), "HS256")])
        .collect();
    let mut allowed = 0;
    for i in 0..6000 {
        let seed = &seeds[i % seeds.len()];
        let t = mutate(&mut rng, seed);
        let header = format!("Bearer {t}");
        if let Verdict::Allow(_) = auth.authenticate(Some(&header), NOW, &MemStore::default(), true) {
            // Only a mutation that leaves signing input and signature intact may pass
            // (e.g. one that only touched trailing whitespace).
            assert_eq!(t.trim(), seed.as_str(), "a modified token was accepted");
            allowed += 1;
        }
    }
    assert!(allowed < 6000);
}

#[test]
fn mutated_configs_never_panic() {
    let mut rng = Rng(0xc0ff_ee00_1234_5678);
    let good = json!({"issuers": [{"name": "i", "issuer": ISS, "audiences": ["a"],
        "jwks": {"inline": {"keys": [ed_jwk("e"), p256_jwk("p")]}},
        "revoked": {"jtis": ["x"]}}],
        "token": {"max_bytes": 4096}})
    .to_string();
    let mut accepted = 0;
    for _ in 0..4000 {
        let doc = mutate(&mut rng, &good);
        if let Ok(cfg) = Config::parse(doc.as_bytes()) {
            accepted += 1;
            assert!(Authenticator::new(&cfg).is_ok());
        }
    }
    assert!(accepted < 4000);
}

#[test]
fn random_jwks_documents_never_panic() {
    let mut rng = Rng(0x1111_2222_3333_4444);
    let good =
        json!({"keys": [rsa_jwk(&keys().rsa, "r"), p256_jwk("p"), p384_jwk("q"), ed_jwk("e")]}).to_string();
    let store = MemStore::default();
    let mut auth = remote_auth(json!({}));
    for i in 0..3000 {
        let doc = mutate(&mut rng, &good);
        let _ = auth.on_fetch(0, NOW + i, &store, Some(200), Some(doc.as_bytes()));
    }
}

// ---- claims and keys (issue 13, item 8) ----

fn without(mut c: Value, name: &str) -> Value {
    c.as_object_mut().unwrap().remove(name);
    c
}

#[test]
fn require_iat_refuses_tokens_without_iat() {
    let no_iat = without(claims(), "iat");
    let t = token("EdDSA", no_iat.clone());
    assert_eq!(check(json!({}), &t), Reason::Ok, "iat is optional by default");
    assert_eq!(check(json!({"require_iat": true}), &t), Reason::MissingIat);
    assert_eq!(
        check(json!({"require_iat": true}), &token("EdDSA", claims())),
        Reason::Ok
    );
    // Without iat only what remains of the lifetime is bounded: exp - now <= max_lifetime_s.
    let mut late = no_iat;
    late["exp"] = json!(NOW + 3600);
    assert_eq!(check(json!({}), &token("EdDSA", late.clone())), Reason::Ok);
    late["exp"] = json!(NOW + 3601);
    assert_eq!(check(json!({}), &token("EdDSA", late)), Reason::LifetimeTooLong);
    let reply = crate::outcome::reason::denial_reply(Reason::MissingIat, "r");
    assert_eq!(reply.status, 401);
    assert!(reply.body.contains("\"invalid_token\""));
    assert_eq!(Reason::MissingIat.code(), "missing_iat");
    assert!(!config(json!({})).issuers[0].require_iat);
}

/// JSON values that are not a usable identifier.
fn not_identifiers() -> Vec<Value> {
    vec![
        json!(12345),
        json!(12345.0),
        json!(-1),
        json!(null),
        json!(true),
        json!(["alice"]),
        json!({"id": "alice"}),
        json!(""),
    ]
}

#[test]
fn identity_claims_must_be_non_empty_strings() {
    for name in ["sub", "jti", "azp", "client_id"] {
        for bad in not_identifiers() {
            let mut c = claims();
            c[name] = bad.clone();
            match run(&mut authenticator(json!({})), &token("ES256", c), NOW) {
                // Refused after the signature verified, so the audit may name the token.
                Verdict::Deny {
                    reason: Reason::BadClaim,
                    identity: Some(_),
                } => {}
                other => panic!("{name} = {bad}: {other:?}"),
            }
        }
    }
}

#[test]
fn non_string_iss_is_a_bad_claim() {
    for bad in not_identifiers() {
        let mut c = claims();
        c["iss"] = bad.clone();
        let expected = if bad == json!("") {
            Reason::UnknownIssuer
        } else {
            Reason::BadClaim
        };
        match run(&mut authenticator(json!({})), &token("ES256", c), NOW) {
            // No issuer can vouch for it: refused before any key is used.
            Verdict::Deny {
                reason,
                identity: None,
            } => assert_eq!(reason, expected, "iss = {bad}"),
            other => panic!("iss = {bad}: {other:?}"),
        }
    }
    // An issuer name inside an array is not the issuer.
    let mut c = claims();
    c["iss"] = json!([ISS]);
    assert_eq!(check(json!({}), &token("ES256", c)), Reason::BadClaim);
}

#[test]
fn numeric_subject_or_jti_cannot_escape_revocation() {
    let revoked = json!({"revoked": {"subjects": ["12345"], "jtis": ["777"]}});
    let mut c = claims();
    c["sub"] = json!("12345");
    assert_eq!(
        check(revoked.clone(), &token("EdDSA", c.clone())),
        Reason::Revoked
    );
    for sub in [
        json!(12345),
        json!(12345.0),
        json!(["12345"]),
        json!({"sub": "12345"}),
    ] {
        c["sub"] = sub.clone();
        assert_eq!(
            check(revoked.clone(), &token("EdDSA", c.clone())),
            Reason::BadClaim,
            "{sub}"
        );
    }
    let mut c = claims();
    c["jti"] = json!(777);
    assert_eq!(check(revoked.clone(), &token("EdDSA", c)), Reason::BadClaim);
    // Nothing from a refused token lands in the verified-token cache.
    let mut auth = authenticator(revoked);
    let mut c = claims();
    c["sub"] = json!(12345);
    let t = token("EdDSA", c);
    assert_eq!(reason(&run(&mut auth, &t, NOW)), Reason::BadClaim);
    assert_eq!(reason(&run(&mut auth, &t, NOW + 1)), Reason::BadClaim);
    assert_eq!(auth.cached_tokens(), 0);
}

#[test]
fn actor_chain_must_be_well_typed() {
    for good in [
        json!({"sub": "agent"}),
        json!({"sub": "agent", "iss": "https://agents", "act": {"sub": "planner"}}),
        // An actor named by its client only: nothing of the wrong type.
        json!({"client_id": "orchestrator"}),
    ] {
        let mut c = claims();
        c["act"] = good.clone();
        assert_eq!(check(json!({}), &token("EdDSA", c)), Reason::Ok, "{good}");
    }
    for bad in [
        json!("agent"),
        json!(7),
        json!(null),
        json!(["agent"]),
        json!({"sub": 7}),
        json!({"sub": ""}),
        json!({"sub": null}),
        json!({"sub": "a", "act": "b"}),
        json!({"sub": "a", "act": {"sub": ["b"]}}),
        json!({"sub": "a", "act": {"sub": "b", "act": {"client_id": 9}}}),
    ] {
        let mut c = claims();
        c["act"] = bad.clone();
        assert_eq!(check(json!({}), &token("EdDSA", c)), Reason::BadClaim, "{bad}");
    }
}

#[test]
fn valid_tokens_with_all_identity_claims_still_pass() {
    let mut c = claims();
    c["azp"] = json!("cli");
    c["client_id"] = json!("cli");
    c["scope"] = json!("chat");
    c["act"] = json!({"sub": "agent-7"});
    // Claims outside the identity set keep any JSON type.
    c["tenant"] = json!({"id": 5});
    c["uid"] = json!(5);
    c["groups"] = json!(["a", 1]);
    for alg in ["RS256", "PS256", "ES256", "ES384", "EdDSA"] {
        assert_eq!(check(json!({}), &token(alg, c.clone())), Reason::Ok, "{alg}");
    }
}

// ---- RSA key strength ----

fn rsa_jwk_from(n: &rsa::BigUint, e: u32, kid: &str) -> Value {
    json!({"kty": "RSA", "kid": kid, "use": "sig", "n": b64(&n.to_bytes_be()),
        "e": b64(&rsa::BigUint::from(e).to_bytes_be())})
}

fn weak_rsa_jwks() -> Vec<(Value, &'static str)> {
    use rsa::traits::PublicKeyParts;
    let w = crate::test_keys::weak_moduli();
    let n = keys().rsa.n().clone();
    vec![
        (rsa_jwk_from(&w.prime, 65537, "prime"), "is prime"),
        (rsa_jwk_from(&w.small_factor, 65537, "small"), "small factor"),
        (rsa_jwk_from(&w.square, 65537, "square"), "perfect square"),
        (rsa_jwk_from(&w.close_primes, 65537, "close"), "Fermat"),
        (rsa_jwk_from(&n, 1, "e1"), "exponent"),
        (rsa_jwk_from(&n, 2, "e2"), "exponent"),
        (rsa_jwk_from(&n, 65536, "even"), "exponent"),
        (rsa_jwk_from(&(n.clone() >> 1usize), 65537, "short"), "2047 bits"),
    ]
}

#[test]
fn weak_rsa_keys_are_config_errors_naming_the_key() {
    for (key, needle) in weak_rsa_jwks() {
        let cfg = json!({"issuers": [{"name": "i", "issuer": ISS, "audiences": ["a"],
            "jwks": {"inline": {"keys": [ed_jwk("ok"), key.clone()]}}}]});
        let e = Config::parse(cfg.to_string().as_bytes()).unwrap_err();
        assert_eq!(e.path, "issuers[0].jwks.inline.keys[1]", "{key}");
        assert!(e.message.contains(needle), "{needle}: {e}");
    }
    // e = 3 is small but sound; the test keys (2048 bits, e = 65537) pass.
    use rsa::traits::PublicKeyParts;
    let e3 = rsa_jwk_from(keys().rsa.n(), 3, "e3");
    let cfg = json!({"issuers": [{"name": "i", "issuer": ISS, "audiences": ["a"],
        "jwks": {"inline": {"keys": [e3, rsa_jwk(&keys().rsa, "r"), rsa_jwk(&keys().rsa2, "r2")]}}}]});
    assert!(Config::parse(cfg.to_string().as_bytes()).is_ok());
}

#[test]
fn weak_rsa_keys_in_a_remote_jwks_are_skipped() {
    let store = MemStore::default();
    let mut auth = remote_auth(json!({}));
    let weak: Vec<Value> = weak_rsa_jwks().into_iter().map(|(k, _)| k).collect();
    let mut all = vec![rsa_jwk(&keys().rsa, "rsa")];
    all.extend(weak.iter().cloned());
    assert_eq!(
        serve(&mut auth, &store, NOW, &all),
        crate::authn::jwks::FetchResult::Updated {
            keys: 1,
            skipped: weak.len()
        }
    );
    assert_eq!(
        reason(&auth_at(&mut auth, &store, &token("RS256", claims()), NOW, false)),
        Reason::Ok
    );
    let set = auth.remote(0).and_then(|r| r.keys()).unwrap();
    assert!(set.contains_kid("rsa") && !set.contains_kid("prime") && !set.contains_kid("small"));
    // A JWKS of weak keys only has no usable key: refused, the last good set stays.
    let r = serve(&mut auth, &store, NOW + 1, &weak);
    assert!(matches!(r, crate::authn::jwks::FetchResult::Rejected(_)), "{r:?}");
    assert!(auth.remote(0).and_then(|r| r.keys()).unwrap().contains_kid("rsa"));
}

/// The shared-store entries of the (only) remote JWKS: (meta key, doc key).
fn jwks_store_keys(store: &MemStore) -> (String, String) {
    let data = store.data.borrow();
    let find = |suffix: &str| data.keys().find(|k| k.ends_with(suffix)).cloned().unwrap();
    (find("/meta"), find("/doc"))
}

#[test]
fn stored_jwks_from_an_older_build_is_checked_in_full() {
    use crate::host::SharedStore;
    let store = MemStore::default();
    let mut a = remote_auth(json!({}));
    serve(&mut a, &store, NOW, &[rsa_jwk(&keys().rsa, "rsa")]);
    // An older build (shared data outlives a VM reload) stored a weak key, with a meta record
    // that knows nothing of key checks, backoff or failures.
    let (meta_key, doc_key) = jwks_store_keys(&store);
    let prime = weak_rsa_jwks().remove(0).0;
    store.set(&doc_key, &doc(&[rsa_jwk(&keys().rsa, "rsa"), prime]), None);
    let old_meta = json!({"version": 7, "fetched_at": NOW, "fetching_until": 0, "last_attempt": NOW,
        "last_forced": 0});
    store.set(&meta_key, old_meta.to_string().as_bytes(), None);
    let mut b = remote_auth(json!({}));
    assert_eq!(
        reason(&auth_at(&mut b, &store, &token("RS256", claims()), NOW + 1, true)),
        Reason::Ok
    );
    let set = b.remote(0).and_then(|r| r.keys()).unwrap();
    assert!(set.contains_kid("rsa") && !set.contains_kid("prime"));
}

// ---- one JWKS fetch at a time ----

#[test]
fn cold_issuer_fetches_once_across_requests_and_workers() {
    let store = MemStore::default();
    let mut a = remote_auth(json!({}));
    let mut b = remote_auth(json!({}));
    let t = token("RS256", claims());
    assert!(matches!(
        auth_at(&mut a, &store, &t, NOW, true),
        Verdict::Fetch { issuer: 0 }
    ));
    // While that fetch is in flight no other request, worker or tick starts one.
    for (worker, name) in [(&mut a, "a"), (&mut b, "b")] {
        for dt in 0..3 {
            assert_eq!(
                reason(&auth_at(worker, &store, &t, NOW + dt, true)),
                Reason::JwksUnavailable,
                "worker {name} at +{dt}"
            );
            assert!(worker.tick(NOW + dt, &store).is_empty());
        }
    }
    serve(&mut a, &store, NOW + 2, &[rsa_jwk(&keys().rsa, "rsa")]);
    assert_eq!(reason(&auth_at(&mut b, &store, &t, NOW + 2, true)), Reason::Ok);
    assert_eq!(reason(&auth_at(&mut a, &store, &t, NOW + 2, true)), Reason::Ok);
}

#[test]
fn failed_fetches_back_off_exponentially_and_success_resets() {
    let store = MemStore::default();
    let mut a = remote_auth(json!({"refresh_interval_s": 300, "max_stale_s": 600}));
    let mut b = remote_auth(json!({"refresh_interval_s": 300, "max_stale_s": 600}));
    let mut c = claims();
    c["exp"] = json!(NOW + 3500);
    let t = token("RS256", c);
    let mut now = NOW;
    let mut gaps = Vec::new();
    for _ in 0..8 {
        // Exactly one worker gets to fetch; the other requests are refused until the backoff
        // has passed.
        let mut waited = 0;
        loop {
            let worker = if waited % 2 == 0 { &mut a } else { &mut b };
            match auth_at(worker, &store, &t, now, true) {
                Verdict::Fetch { .. } => break,
                v => assert_eq!(reason(&v), Reason::JwksUnavailable),
            }
            assert!(a.tick(now, &store).is_empty() && b.tick(now, &store).is_empty());
            now += 1;
            waited += 1;
            assert!(waited <= 30, "backoff beyond 30 s");
        }
        gaps.push(waited);
        a.on_fetch(0, now, &store, None, None); // connection error, or dispatch failed
    }
    assert_eq!(gaps, vec![0, 1, 2, 4, 8, 16, 30, 30]);
    // The JWKS is back: the next allowed fetch restores service and resets the backoff.
    now += 30;
    assert!(matches!(
        auth_at(&mut b, &store, &t, now, true),
        Verdict::Fetch { .. }
    ));
    serve(&mut b, &store, now, &[rsa_jwk(&keys().rsa, "rsa")]);
    assert_eq!(reason(&auth_at(&mut a, &store, &t, now, true)), Reason::Ok);
    // A later failed refresh waits 1 s again, and the keys keep serving meanwhile.
    now += 300;
    assert_eq!(a.tick(now, &store), vec![0]);
    a.on_fetch(0, now, &store, Some(503), None);
    assert!(b.tick(now, &store).is_empty());
    assert_eq!(reason(&auth_at(&mut b, &store, &t, now, true)), Reason::Ok);
    assert_eq!(b.tick(now + 1, &store), vec![0]);
}

#[test]
fn backoff_schedule_is_bounded() {
    use crate::authn::jwks::backoff_s;
    let s: Vec<u64> = (0..9).map(|f| backoff_s(f, 300)).collect();
    assert_eq!(s, vec![0, 1, 2, 4, 8, 16, 30, 30, 30]);
    assert_eq!(backoff_s(u32::MAX, 300), 30);
    // Never longer than the refresh interval the operator asked for.
    assert_eq!(backoff_s(5, 10), 10);
    assert_eq!(backoff_s(5, 1), 1);
}

#[test]
fn a_lost_fetch_cannot_wedge_the_lease() {
    let store = MemStore::default();
    let mut a = remote_auth(json!({"timeout_ms": 5000}));
    let mut b = remote_auth(json!({"timeout_ms": 5000}));
    let t = token("RS256", claims());
    assert!(matches!(
        auth_at(&mut a, &store, &t, NOW, true),
        Verdict::Fetch { .. }
    ));
    assert_eq!(
        a.remote(0).unwrap().lease_s(),
        5 + crate::authn::jwks::LEASE_MARGIN_S
    );
    assert_eq!(a.remote(0).unwrap().wait_s(&store, NOW), 7);
    // Its answer never comes: once the lease (timeout + margin) is over, another may fetch.
    assert_eq!(
        reason(&auth_at(&mut b, &store, &t, NOW + 6, true)),
        Reason::JwksUnavailable
    );
    assert!(matches!(
        auth_at(&mut b, &store, &t, NOW + 7, true),
        Verdict::Fetch { .. }
    ));
}

#[test]
fn no_fetch_without_a_recorded_lease() {
    use crate::host::{SharedStore, StoreWrite};
    /// A host whose shared data refuses every write.
    struct ReadOnly;
    impl SharedStore for ReadOnly {
        fn get(&self, _: &str) -> Option<(Vec<u8>, u32)> {
            None
        }
        fn set(&self, _: &str, _: &[u8], _: Option<u32>) -> StoreWrite {
            StoreWrite::Failed
        }
    }
    let mut a = remote_auth(json!({}));
    let t = token("RS256", claims());
    let v = a.authenticate(Some(&format!("Bearer {t}")), NOW, &ReadOnly, true);
    assert_eq!(reason(&v), Reason::JwksUnavailable);
    assert!(a.tick(NOW + 1, &ReadOnly).is_empty());
}

#[test]
fn unknown_kid_refetch_waits_for_the_fetch_in_flight() {
    let store = MemStore::default();
    let mut a = remote_auth(json!({}));
    let mut b = remote_auth(json!({}));
    serve(&mut a, &store, NOW, &[rsa_jwk(&keys().rsa, "rsa")]);
    assert_eq!(a.tick(NOW + 60, &store), vec![0], "periodic refresh claimed");
    let rotated = token("ES256", claims());
    assert_eq!(
        reason(&auth_at(&mut b, &store, &rotated, NOW + 61, true)),
        Reason::UnknownKey
    );
    serve(
        &mut a,
        &store,
        NOW + 61,
        &[rsa_jwk(&keys().rsa, "rsa"), p256_jwk("p256")],
    );
    assert_eq!(
        reason(&auth_at(&mut b, &store, &rotated, NOW + 61, true)),
        Reason::Ok
    );
}
