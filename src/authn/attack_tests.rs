//! JWT attack matrix (in the spirit of Wycheproof and published JWT attacks). Every case
//! must be refused, or, where the input is a legitimate variant, yield the same identity.

use crate::authn::auth::{Authenticator, Verdict};
use crate::config::Config;
use crate::host::memory::MemStore;
use crate::outcome::reason::Reason;
use crate::test_keys::{b64, keys};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};

const ISS: &str = "https://idp.test";
const NOW: u64 = 1_800_000_000;

fn jwks() -> Value {
    use rsa::traits::PublicKeyParts;
    let k = keys();
    let p = k.p256.verifying_key().to_encoded_point(false);
    json!({"keys": [
        {"kty": "RSA", "kid": "rsa", "n": b64(&k.rsa.n().to_bytes_be()), "e": b64(&k.rsa.e().to_bytes_be())},
        {"kty": "EC", "crv": "P-256", "kid": "ec", "x": b64(p.x().unwrap()), "y": b64(p.y().unwrap())},
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64(keys().ed.verifying_key().as_bytes())}
    ]})
}

fn auth() -> Authenticator {
    let cfg = json!({"issuers": [{"name": "idp", "issuer": ISS, "audiences": ["llm"], "jwks": {"inline": jwks()}}]});
    Authenticator::new(&Config::parse(cfg.to_string().as_bytes()).unwrap()).unwrap()
}

fn claims() -> Value {
    json!({"iss": ISS, "aud": "llm", "sub": "alice", "iat": NOW, "exp": NOW + 300})
}

fn input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

fn hs256(secret: &[u8], header: Value) -> String {
    use hmac::{Hmac, Mac};
    let i = input(&header, &claims());
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    m.update(i.as_bytes());
    format!("{i}.{}", b64(&m.finalize().into_bytes()))
}

fn verdict(token: &str) -> Verdict {
    auth().authenticate(Some(&format!("Bearer {token}")), NOW, &MemStore::default(), false)
}

fn refused(token: &str) -> Reason {
    match verdict(token) {
        Verdict::Allow(_) => panic!("accepted: {token}"),
        Verdict::Deny { reason, .. } => reason,
        Verdict::Fetch { .. } => panic!("fetch"),
    }
}

fn es256(header: Value) -> (String, p256::ecdsa::Signature) {
    use p256::ecdsa::signature::Signer;
    let i = input(&header, &claims());
    let sig: p256::ecdsa::Signature = keys().p256.sign(i.as_bytes());
    (format!("{i}.{}", b64(&sig.to_bytes())), sig)
}

#[test]
fn alg_none_every_spelling() {
    for alg in [
        "none",
        "None",
        "NONE",
        "nOnE",
        "noNe",
        "none ",
        " none",
        "none\u{0}",
        "",
    ] {
        let t = format!("{}.", input(&json!({"alg": alg}), &claims()));
        assert!(
            matches!(refused(&t), Reason::UnsupportedAlg | Reason::MalformedToken),
            "{alg:?}"
        );
        let t2 = format!("{}.AAAA", input(&json!({"alg": alg}), &claims()));
        refused(&t2);
    }
    refused(&format!("{}.", input(&json!({"alg": null}), &claims())));
    refused(&format!("{}.", input(&json!({"alg": ["RS256"]}), &claims())));
}

#[test]
fn hs256_signed_with_public_keys_in_every_encoding() {
    use p256::pkcs8::EncodePublicKey;
    use rsa::pkcs1::EncodeRsaPublicKey;
    use rsa::traits::PublicKeyParts;
    let k = keys();
    let rsa_pub = k.rsa.to_public_key();
    let ec_pub = *k.p256.verifying_key();
    let mut secrets: Vec<Vec<u8>> = vec![
        rsa_pub
            .to_public_key_pem(Default::default())
            .unwrap()
            .into_bytes(),
        rsa_pub.to_public_key_der().unwrap().as_bytes().to_vec(),
        rsa_pub.to_pkcs1_pem(Default::default()).unwrap().into_bytes(),
        rsa_pub.to_pkcs1_der().unwrap().as_bytes().to_vec(),
        rsa_pub.n().to_bytes_be(),
        ec_pub.to_public_key_pem(Default::default()).unwrap().into_bytes(),
        ec_pub.to_encoded_point(false).as_bytes().to_vec(),
        ec_pub.to_encoded_point(true).as_bytes().to_vec(),
        k.ed.verifying_key().as_bytes().to_vec(),
    ];
    for key in jwks()["keys"].as_array().unwrap() {
        secrets.push(key.to_string().into_bytes());
    }
    for secret in &secrets {
        for kid in [None, Some("rsa"), Some("ec"), Some("ed")] {
            let mut h = json!({"alg": "HS256"});
            if let Some(kid) = kid {
                h["kid"] = json!(kid);
            }
            assert_eq!(refused(&hs256(secret, h)), Reason::AlgNotAllowed);
        }
    }
}

#[test]
fn wrong_key_type_for_kid() {
    // An ES256 token naming the RSA and the Ed25519 key; an EdDSA token naming the EC key.
    let (t, _) = es256(json!({"alg": "ES256", "kid": "rsa"}));
    assert_eq!(refused(&t), Reason::AlgNotAllowed);
    let (t, _) = es256(json!({"alg": "ES256", "kid": "ed"}));
    assert_eq!(refused(&t), Reason::AlgNotAllowed);
    let i = input(&json!({"alg": "EdDSA", "kid": "ec"}), &claims());
    let sig = ed25519_dalek::Signer::sign(&keys().ed, i.as_bytes());
    assert_eq!(
        refused(&format!("{i}.{}", b64(&sig.to_bytes()))),
        Reason::AlgNotAllowed
    );
}

#[test]
fn bit_flips_in_every_segment() {
    let (good, _) = es256(json!({"alg": "ES256", "kid": "ec"}));
    assert!(matches!(verdict(&good), Verdict::Allow(_)));
    let parts: Vec<&str> = good.split('.').collect();
    for seg in 0..3 {
        let bytes = URL_SAFE_NO_PAD.decode(parts[seg]).unwrap();
        for byte in 0..bytes.len() {
            for bit in [0u8, 3, 7] {
                let mut flipped = bytes.clone();
                flipped[byte] ^= 1 << bit;
                let mut p: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
                p[seg] = b64(&flipped);
                assert!(
                    !matches!(verdict(&p.join(".")), Verdict::Allow(_)),
                    "segment {seg} byte {byte} bit {bit}"
                );
            }
        }
    }
}

#[test]
fn encodings_padding_and_shapes() {
    let (good, _) = es256(json!({"alg": "ES256", "kid": "ec"}));
    let parts: Vec<&str> = good.split('.').collect();
    // Standard alphabet and padding are not base64url.
    let std_sig = STANDARD.encode(URL_SAFE_NO_PAD.decode(parts[2]).unwrap());
    refused(&format!("{}.{}.{}", parts[0], parts[1], std_sig));
    refused(&format!("{}.{}.{}==", parts[0], parts[1], parts[2]));
    refused(&format!("{}.{}.{} ", parts[0], parts[1], parts[2]).replace(' ', "%20"));
    // JWE-shaped (5 parts) and JWE headers.
    refused(&format!("{good}.AAAA.BBBB"));
    refused(&format!(
        "{}.",
        input(&json!({"alg": "RSA-OAEP", "enc": "A256GCM"}), &claims())
    ));
    refused(&format!(
        "{}.",
        input(&json!({"alg": "dir", "enc": "A128GCM"}), &claims())
    ));
    // A nested JWT as payload (cty: JWT): the payload is not a claims object.
    use p256::ecdsa::signature::Signer;
    let h = json!({"alg": "ES256", "kid": "ec", "cty": "JWT"});
    let nested = format!("{}.{}", b64(h.to_string().as_bytes()), b64(good.as_bytes()));
    let sig: p256::ecdsa::Signature = keys().p256.sign(nested.as_bytes());
    assert_eq!(
        refused(&format!("{nested}.{}", b64(&sig.to_bytes()))),
        Reason::MalformedToken
    );
    // Duplicate members in the header.
    let dup = format!(
        "{}.{}",
        b64(br#"{"alg":"ES256","kid":"ec","alg":"none"}"#),
        b64(claims().to_string().as_bytes())
    );
    let sig: p256::ecdsa::Signature = keys().p256.sign(dup.as_bytes());
    assert_eq!(
        refused(&format!("{dup}.{}", b64(&sig.to_bytes()))),
        Reason::MalformedToken
    );
    // Huge and empty.
    refused(&"a".repeat(20_000));
    refused("..");
    refused(".");
}

#[test]
fn signature_malleability() {
    use p256::elliptic_curve::ops::Neg;
    let (good, sig) = es256(json!({"alg": "ES256", "kid": "ec"}));
    let base = match verdict(&good) {
        Verdict::Allow(id) => id,
        other => panic!("{other:?}"),
    };
    // High-S: (r, n - s) is a valid ECDSA signature (IdPs do produce them): accepted, but it
    // can only ever carry the same, signed claims.
    let (r, s) = sig.split_scalars();
    let high = p256::ecdsa::Signature::from_scalars(r, s.as_ref().neg()).unwrap();
    let i = good.rsplit_once('.').unwrap().0;
    match verdict(&format!("{i}.{}", b64(&high.to_bytes()))) {
        Verdict::Allow(id) => assert_eq!(id.sub, base.sub),
        other => panic!("high-S refused: {other:?}"),
    }
    // DER is not the JWS signature form.
    refused(&format!("{i}.{}", b64(sig.to_der().as_bytes())));
    // Ed25519 with a non-canonical S (S + L) is refused by strict verification.
    let ei = input(&json!({"alg": "EdDSA", "kid": "ed"}), &claims());
    let esig = ed25519_dalek::Signer::sign(&keys().ed, ei.as_bytes()).to_bytes();
    assert!(matches!(
        verdict(&format!("{ei}.{}", b64(&esig))),
        Verdict::Allow(_)
    ));
    let l: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut s_plus_l = esig;
    let mut carry = 0u16;
    for k in 0..32 {
        let v = u16::from(s_plus_l[32 + k]) + u16::from(l[k]) + carry;
        s_plus_l[32 + k] = (v & 0xff) as u8;
        carry = v >> 8;
    }
    assert_eq!(refused(&format!("{ei}.{}", b64(&s_plus_l))), Reason::BadSignature);
}

/// Issue 13 item 8: identity claims that are not strings must not slip past string-keyed
/// checks (revocation, subject rules, rate-limit keys). Signed with a trusted key throughout:
/// the attacker is a caller whose IdP lets them shape a claim.
#[test]
fn identity_type_confusion_is_refused() {
    use ed25519_dalek::Signer;
    let cfg = json!({"issuers": [{"name": "idp", "issuer": ISS, "audiences": ["llm"], "jwks": {"inline": jwks()},
        "revoked": {"subjects": ["1001", "mallory"], "jtis": ["42"]}}]});
    let mut auth = Authenticator::new(&Config::parse(cfg.to_string().as_bytes()).unwrap()).unwrap();
    let mut decide = |c: Value| {
        let i = input(&json!({"alg": "EdDSA", "kid": "ed"}), &c);
        let t = format!("{i}.{}", b64(&keys().ed.sign(i.as_bytes()).to_bytes()));
        match auth.authenticate(Some(&format!("Bearer {t}")), NOW, &MemStore::default(), false) {
            Verdict::Allow(_) => Reason::Ok,
            Verdict::Deny { reason, .. } => reason,
            Verdict::Fetch { .. } => panic!("fetch"),
        }
    };
    let with = |k: &str, v: Value| {
        let mut c = claims();
        c[k] = v;
        c
    };
    assert_eq!(decide(with("sub", json!("1001"))), Reason::Revoked);
    for (k, v) in [
        ("sub", json!(1001)),
        ("sub", json!(1001.0)),
        ("sub", json!(1.001e3)),
        ("sub", json!(["1001"])),
        ("sub", json!({"": "1001"})),
        ("sub", json!(["mallory", "alice"])),
        ("jti", json!(42)),
        ("jti", json!(["42"])),
        ("azp", json!({"client": "x"})),
        ("client_id", json!(0)),
        ("iss", json!([ISS])),
        ("iss", json!({"iss": ISS})),
        ("act", json!({"sub": 1001})),
        ("act", json!([{"sub": "mallory"}])),
    ] {
        assert_ne!(decide(with(k, v.clone())), Reason::Ok, "{k} = {v}");
    }
    // Case and whitespace variants are other subjects (RFC 7519 StringOrURI compares
    // exactly); they are still strings, so they pass type checks.
    assert_eq!(decide(with("sub", json!("Mallory"))), Reason::Ok);
}
