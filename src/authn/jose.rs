//! JOSE primitives: compact JWS parsing with a strict header policy, JWK parsing and
//! signature verification. Cryptography comes from the RustCrypto crates; this module only
//! decides *which* key and algorithm may be used, and refuses everything ambiguous.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::fmt;

/// Signature algorithms we accept (RFC 7518 names). `none` is deliberately absent.
#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
pub enum Alg {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
    HS256,
    HS384,
    HS512,
}

impl Alg {
    pub const ASYMMETRIC: [Alg; 9] = [
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::EdDSA,
    ];

    /// Exact, case-sensitive match as RFC 7515 requires; "none", "None", "nOnE" all fail here.
    pub fn from_name(name: &str) -> Option<Alg> {
        Some(match name {
            "RS256" => Alg::RS256,
            "RS384" => Alg::RS384,
            "RS512" => Alg::RS512,
            "PS256" => Alg::PS256,
            "PS384" => Alg::PS384,
            "PS512" => Alg::PS512,
            "ES256" => Alg::ES256,
            "ES384" => Alg::ES384,
            "EdDSA" => Alg::EdDSA,
            "HS256" => Alg::HS256,
            "HS384" => Alg::HS384,
            "HS512" => Alg::HS512,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::EdDSA => "EdDSA",
            Alg::HS256 => "HS256",
            Alg::HS384 => "HS384",
            Alg::HS512 => "HS512",
        }
    }

    pub fn is_hmac(self) -> bool {
        matches!(self, Alg::HS256 | Alg::HS384 | Alg::HS512)
    }
}

/// Why a token could not even be parsed; mapped to the `malformed_token` family of reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not three base64url segments, bad base64, or not a JSON object.
    Malformed,
    /// `alg` is missing, `none`, or not one we implement.
    UnsupportedAlg,
    /// A header that would let the token pick its own key (jku, x5u, x5c, jwk) or a `crit`
    /// extension we do not understand.
    ForbiddenHeader,
}

/// A compact JWS split and decoded, not yet verified.
#[derive(Debug)]
pub struct UntrustedJws<'a> {
    pub alg: Alg,
    pub kid: Option<String>,
    pub claims: Map<String, Value>,
    /// `base64url(header) || '.' || base64url(payload)`: the bytes the signature covers.
    pub signing_input: &'a [u8],
    pub signature: Vec<u8>,
}

/// Header parameters that make the token name its own verification key; honouring any of
/// them lets an attacker supply the key. We refuse the token outright rather than ignore them.
const KEY_BEARING_HEADERS: [&str; 4] = ["jku", "x5u", "x5c", "jwk"];

pub fn parse_compact(token: &str) -> Result<UntrustedJws<'_>, ParseError> {
    let mut parts = token.split('.');
    let (Some(h64), Some(p64), Some(s64), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::Malformed);
    };
    let header_bytes = URL_SAFE_NO_PAD.decode(h64).map_err(|_| ParseError::Malformed)?;
    let header = parse_unique_object(&header_bytes).map_err(|_| ParseError::Malformed)?;

    let alg = match header.get("alg") {
        Some(Value::String(name)) => Alg::from_name(name).ok_or(ParseError::UnsupportedAlg)?,
        _ => return Err(ParseError::UnsupportedAlg),
    };
    if KEY_BEARING_HEADERS.iter().any(|k| header.contains_key(*k)) {
        return Err(ParseError::ForbiddenHeader);
    }
    // RFC 7515 §4.1.11: a recipient must reject a token whose `crit` lists an extension it
    // does not understand. We understand none, and an empty or ill-typed `crit` is invalid.
    if header.contains_key("crit") {
        return Err(ParseError::ForbiddenHeader);
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(ParseError::Malformed),
    };

    let payload = URL_SAFE_NO_PAD.decode(p64).map_err(|_| ParseError::Malformed)?;
    let claims = parse_unique_object(&payload).map_err(|_| ParseError::Malformed)?;
    let signature = URL_SAFE_NO_PAD.decode(s64).map_err(|_| ParseError::Malformed)?;
    let signing_len = h64.len() + 1 + p64.len();
    let signing_input = token.as_bytes().get(..signing_len).ok_or(ParseError::Malformed)?;
    Ok(UntrustedJws {
        alg,
        kid,
        claims,
        signing_input,
        signature,
    })
}

/// Parses a JSON object and rejects duplicate member names at any depth: with duplicates,
/// two parsers can disagree on which `alg`/`sub`/`exp` is the real one, or which `act.sub`
/// or nested claim (`claim:org.role` in a policy) the token carries.
pub fn parse_unique_object(bytes: &[u8]) -> Result<Map<String, Value>, serde_json::Error> {
    struct UniqueObject(Map<String, Value>);
    impl<'de> Deserialize<'de> for UniqueObject {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = UniqueObject;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<UniqueObject, A::Error> {
                    unique_map(access).map(UniqueObject)
                }
            }
            d.deserialize_map(V)
        }
    }
    serde_json::from_slice::<UniqueObject>(bytes).map(|u| u.0)
}

fn unique_map<'de, A: MapAccess<'de>>(mut access: A) -> Result<Map<String, Value>, A::Error> {
    let mut map = Map::new();
    while let Some((k, UniqueValue(v))) = access.next_entry::<String, UniqueValue>()? {
        if map.contains_key(&k) {
            return Err(serde::de::Error::custom("duplicate member"));
        }
        map.insert(k, v);
    }
    Ok(map)
}

/// A JSON value whose objects, however deep, have no duplicate member names (from any
/// serde format: the YAML the CLI reads too).
pub struct UniqueValue(pub Value);

impl<'de> Deserialize<'de> for UniqueValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UniqueValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<UniqueValue, E> {
                Ok(UniqueValue(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<UniqueValue, E> {
                Ok(UniqueValue(Value::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<UniqueValue, E> {
                Ok(UniqueValue(Value::from(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<UniqueValue, E> {
                Ok(UniqueValue(Value::from(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<UniqueValue, E> {
                Ok(UniqueValue(Value::String(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<UniqueValue, E> {
                Ok(UniqueValue(Value::String(v)))
            }
            fn visit_unit<E>(self) -> Result<UniqueValue, E> {
                Ok(UniqueValue(Value::Null))
            }
            fn visit_none<E>(self) -> Result<UniqueValue, E> {
                Ok(UniqueValue(Value::Null))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<UniqueValue, D::Error> {
                UniqueValue::deserialize(d)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueValue, A::Error> {
                let mut items = Vec::new();
                while let Some(UniqueValue(v)) = seq.next_element::<UniqueValue>()? {
                    items.push(v);
                }
                Ok(UniqueValue(Value::Array(items)))
            }
            fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<UniqueValue, A::Error> {
                unique_map(access).map(|m| UniqueValue(Value::Object(m)))
            }
        }
        d.deserialize_any(V)
    }
}

/// A public (or, for HS*, shared) verification key.
#[derive(Clone)]
pub enum KeyMaterial {
    Rsa(rsa::RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
    Hmac(Vec<u8>),
}

impl fmt::Debug for KeyMaterial {
    // Never print key bytes (an HMAC secret above all).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyMaterial::Rsa(_) => "Rsa",
            KeyMaterial::P256(_) => "P256",
            KeyMaterial::P384(_) => "P384",
            KeyMaterial::Ed25519(_) => "Ed25519",
            KeyMaterial::Hmac(_) => "Hmac(<redacted>)",
        })
    }
}

impl KeyMaterial {
    /// Whether this key's type can verify `alg` (the algorithm/key-type binding that stops
    /// RS/HS confusion and curve swaps).
    pub fn fits(&self, alg: Alg) -> bool {
        match self {
            KeyMaterial::Rsa(_) => matches!(
                alg,
                Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512
            ),
            KeyMaterial::P256(_) => alg == Alg::ES256,
            KeyMaterial::P384(_) => alg == Alg::ES384,
            KeyMaterial::Ed25519(_) => alg == Alg::EdDSA,
            KeyMaterial::Hmac(_) => alg.is_hmac(),
        }
    }
}

/// One verification key of a key set.
#[derive(Debug, Clone)]
pub struct Jwk {
    pub kid: Option<String>,
    /// The JWK's own `alg`, if it pins one: the token's alg must then equal it.
    pub alg: Option<Alg>,
    pub material: KeyMaterial,
}

impl Jwk {
    pub fn accepts(&self, alg: Alg) -> bool {
        self.material.fits(alg) && self.alg.is_none_or(|a| a == alg)
    }
}

#[derive(Debug, Clone, Default)]
pub struct KeySet {
    pub keys: Vec<Jwk>,
}

/// Why a JWK was refused; reported with its index so operators can fix their key set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwkError {
    pub index: usize,
    pub message: String,
}

pub const MIN_RSA_BITS: usize = 2048;
pub const MAX_RSA_BITS: usize = 8192;

impl KeySet {
    /// Parses a JWKS document (`{"keys":[...]}`). Keys marked for encryption are skipped;
    /// every other key that cannot be used is reported. The caller decides whether a partial
    /// set is acceptable (inline config: no; remote: yes, if at least one key is usable).
    pub fn parse(doc: &Value) -> Result<(KeySet, Vec<JwkError>), String> {
        KeySet::parse_with(doc, KeyCheck::Full)
    }

    pub fn parse_with(doc: &Value, check: KeyCheck) -> Result<(KeySet, Vec<JwkError>), String> {
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| "a JWKS must be an object with a \"keys\" array".to_string())?;
        let mut set = KeySet::default();
        let mut errors = Vec::new();
        for (index, key) in keys.iter().enumerate() {
            match parse_jwk(key, check) {
                Ok(Some(jwk)) => set.keys.push(jwk),
                Ok(None) => {}
                Err(message) => errors.push(JwkError { index, message }),
            }
        }
        Ok((set, errors))
    }

    /// Key selection: by `kid` when the token names one, otherwise only when exactly one key
    /// of the set fits the algorithm.
    pub fn select(&self, kid: Option<&str>, alg: Alg) -> KeySelection<'_> {
        match kid {
            Some(kid) => {
                let mut named = self.keys.iter().filter(|k| k.kid.as_deref() == Some(kid));
                match named.find(|k| k.accepts(alg)) {
                    Some(k) => KeySelection::Found(k),
                    None => {
                        if self.keys.iter().any(|k| k.kid.as_deref() == Some(kid)) {
                            KeySelection::AlgMismatch
                        } else {
                            KeySelection::UnknownKid
                        }
                    }
                }
            }
            None => {
                let mut fitting = self.keys.iter().filter(|k| k.accepts(alg));
                match (fitting.next(), fitting.next()) {
                    (Some(k), None) => KeySelection::Found(k),
                    (None, _) => KeySelection::UnknownKid,
                    (Some(_), Some(_)) => KeySelection::Ambiguous,
                }
            }
        }
    }

    pub fn contains_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

#[derive(Debug)]
pub enum KeySelection<'a> {
    Found(&'a Jwk),
    /// No key with that kid (or, without kid, none fitting the alg): maybe keys rotated.
    UnknownKid,
    /// The kid exists but its type or pinned alg does not fit the token's alg.
    AlgMismatch,
    /// No kid and more than one key fits.
    Ambiguous,
}

fn b64_field(key: &Value, name: &str) -> Result<Vec<u8>, String> {
    let s = key
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing string member \"{name}\""))?;
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| format!("member \"{name}\" is not unpadded base64url"))
}

/// How much checking a key set gets: everything when it comes from outside (config, JWKS
/// endpoint). A document this plugin validated itself (the config already parsed, or the
/// JWKS a worker stored after validating it) skips the modulus tests, which cost a few ms
/// per RSA key: every worker re-reads the stored document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCheck {
    Full,
    Revalidated,
}

/// Smallest accepted public exponent. Even exponents and e = 1 are not RSA.
pub const MIN_RSA_EXPONENT: u32 = 3;
/// Trial division covers every prime below this bound.
pub const SMALL_FACTOR_BOUND: u32 = 1 << 16;
/// Steps of Fermat's method: finds the factors of a modulus whose two primes are close
/// together (the "Fermat factorable" keys of broken generators).
const FERMAT_STEPS: u32 = 4;

fn check_rsa_exponent(e: &rsa::BigUint) -> Result<(), String> {
    let odd = e.to_bytes_be().last().is_some_and(|b| b & 1 == 1);
    if !odd || *e < rsa::BigUint::from(MIN_RSA_EXPONENT) {
        return Err(format!(
            "RSA public exponent must be odd and at least {MIN_RSA_EXPONENT}"
        ));
    }
    Ok(())
}

/// Refuses moduli that give the private key away: a prime modulus (anyone can compute the
/// private exponent), a modulus with a small factor, or one Fermat's method factors at once.
/// The size has been checked before.
fn check_rsa_modulus(n: &rsa::BigUint, check: KeyCheck) -> Result<(), String> {
    if check == KeyCheck::Revalidated {
        return Ok(());
    }
    let bytes = n.to_bytes_be();
    let digest = {
        use sha2::{Digest, Sha256};
        <[u8; 32]>::from(Sha256::digest(&bytes))
    };
    // A JWKS refresh brings the same keys again and again: a modulus that passed once is
    // not tested again by this VM.
    if PASSED_MODULI.with(|p| p.try_borrow().is_ok_and(|p| p.contains(&digest))) {
        return Ok(());
    }
    check_rsa_modulus_uncached(n, &bytes)?;
    PASSED_MODULI.with(|p| {
        if let Ok(mut p) = p.try_borrow_mut() {
            if p.len() >= PASSED_MODULI_MAX {
                p.remove(0);
            }
            p.push(digest);
        }
    });
    Ok(())
}

/// Moduli (SHA-256) that passed [`check_rsa_modulus`]; a small FIFO.
const PASSED_MODULI_MAX: usize = 64;
thread_local! {
    static PASSED_MODULI: std::cell::RefCell<Vec<[u8; 32]>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn check_rsa_modulus_uncached(n: &rsa::BigUint, bytes: &[u8]) -> Result<(), String> {
    if let Some(p) = small_factor(bytes) {
        return Err(format!(
            "RSA modulus has a small factor (below {SMALL_FACTOR_BOUND}): {p}"
        ));
    }
    // Fermat test, base 2: a prime always passes it; a product of two large primes passes
    // only with negligible probability (and would then be refused, never wrongly accepted).
    let one = rsa::BigUint::from(1u32);
    let two = rsa::BigUint::from(2u32);
    if two.modpow(&(n.clone() - 1u32), n) == one {
        return Err("RSA modulus is prime (or a base-2 pseudoprime), not a product of two primes".into());
    }
    let root = n.sqrt();
    let mut a = root.clone();
    if &a * &a == *n {
        return Err("RSA modulus is a perfect square".into());
    }
    for _ in 0..FERMAT_STEPS {
        a += 1u32;
        let b2 = &a * &a - n;
        let b = b2.sqrt();
        if &b * &b == b2 {
            return Err("RSA modulus factors by Fermat's method (its primes are too close together)".into());
        }
    }
    Ok(())
}

/// The smallest prime factor below [`SMALL_FACTOR_BOUND`] of the big-endian number, if any.
/// Primes are grouped into products below 2^32 so one pass over the number serves several.
fn small_factor(be: &[u8]) -> Option<u32> {
    let primes = small_primes();
    let mut group: Vec<u32> = Vec::new();
    let mut product: u64 = 1;
    let check = |group: &[u32], product: u64| -> Option<u32> {
        let r = rem_u32(be, product);
        group.iter().copied().find(|p| r.is_multiple_of(u64::from(*p)))
    };
    for p in primes {
        let next = product.saturating_mul(u64::from(p));
        if next > u64::from(u32::MAX) {
            if let Some(f) = check(&group, product) {
                return Some(f);
            }
            group.clear();
            product = u64::from(p);
        } else {
            product = next;
        }
        group.push(p);
    }
    check(&group, product)
}

/// `n mod m` for a big-endian `n` and `m < 2^32`.
fn rem_u32(be: &[u8], m: u64) -> u64 {
    if m == 0 {
        return 0;
    }
    let mut r: u64 = 0;
    // The head shorter than 4 bytes first, then whole 32-bit words: r < 2^32, so r << 32
    // plus a word never overflows.
    let head = be.len() % 4;
    let (first, words) = be.split_at(head);
    for b in first {
        r = ((r << 8) | u64::from(*b)) % m;
    }
    for w in words.chunks_exact(4) {
        let word = w.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        r = ((r << 32) | word) % m;
    }
    r
}

/// The primes below [`SMALL_FACTOR_BOUND`] (sieve of Eratosthenes; about 6500 of them).
fn small_primes() -> Vec<u32> {
    let bound = SMALL_FACTOR_BOUND as usize;
    let mut composite = vec![false; bound];
    let mut primes = Vec::with_capacity(6600);
    for i in 2..bound {
        if composite.get(i).copied().unwrap_or(true) {
            continue;
        }
        primes.push(i as u32);
        let mut j = i.saturating_mul(i);
        while j < bound {
            if let Some(c) = composite.get_mut(j) {
                *c = true;
            }
            j += i;
        }
    }
    primes
}

/// Ok(None): a key we skip on purpose (encryption keys).
fn parse_jwk(key: &Value, check: KeyCheck) -> Result<Option<Jwk>, String> {
    if !key.is_object() {
        return Err("a key must be a JSON object".into());
    }
    if key.get("d").is_some() || key.get("k").is_some() {
        // A private or symmetric key published in a JWKS is a leak, not a verification key.
        return Err("private or symmetric key material (\"d\"/\"k\") is not accepted".into());
    }
    match key.get("use") {
        None => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(Value::String(u)) if u == "enc" => return Ok(None),
        Some(_) => return Err("\"use\" must be \"sig\" or \"enc\"".into()),
    }
    if let Some(ops) = key.get("key_ops") {
        let verifies = ops
            .as_array()
            .is_some_and(|a| a.iter().any(|o| o.as_str() == Some("verify")));
        if !verifies {
            return Ok(None);
        }
    }
    let kid = match key.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err("\"kid\" must be a string".into()),
    };
    let alg = match key.get("alg") {
        None => None,
        Some(Value::String(a)) => {
            Some(Alg::from_name(a).ok_or_else(|| format!("unsupported \"alg\" {a:?}"))?)
        }
        Some(_) => return Err("\"alg\" must be a string".into()),
    };
    let kty = key.get("kty").and_then(Value::as_str).unwrap_or("");
    let material = match kty {
        "RSA" => {
            let n = b64_field(key, "n")?;
            let e = b64_field(key, "e")?;
            let n = rsa::BigUint::from_bytes_be(&n);
            let bits = n.bits();
            if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                return Err(format!(
                    "RSA modulus of {bits} bits is outside {MIN_RSA_BITS}..={MAX_RSA_BITS}"
                ));
            }
            let e = rsa::BigUint::from_bytes_be(&e);
            check_rsa_exponent(&e)?;
            check_rsa_modulus(&n, check)?;
            let pk = rsa::RsaPublicKey::new_with_max_size(n, e, MAX_RSA_BITS)
                .map_err(|_| "invalid RSA public key".to_string())?;
            KeyMaterial::Rsa(pk)
        }
        "EC" => {
            let crv = key.get("crv").and_then(Value::as_str).unwrap_or("");
            let x = b64_field(key, "x")?;
            let y = b64_field(key, "y")?;
            match crv {
                "P-256" => {
                    if x.len() != 32 || y.len() != 32 {
                        return Err("P-256 coordinates must be 32 bytes".into());
                    }
                    let (Ok(xa), Ok(ya)) = (
                        <[u8; 32]>::try_from(x.as_slice()),
                        <[u8; 32]>::try_from(y.as_slice()),
                    ) else {
                        return Err("EC coordinates have the wrong length".into());
                    };
                    let point = p256::EncodedPoint::from_affine_coordinates(
                        &p256::FieldBytes::from(xa),
                        &p256::FieldBytes::from(ya),
                        false,
                    );
                    // from_encoded_point checks the point is on the curve (invalid-curve attacks).
                    let vk = p256::ecdsa::VerifyingKey::from_encoded_point(&point)
                        .map_err(|_| "P-256 point is not on the curve".to_string())?;
                    KeyMaterial::P256(vk)
                }
                "P-384" => {
                    if x.len() != 48 || y.len() != 48 {
                        return Err("P-384 coordinates must be 48 bytes".into());
                    }
                    let (Ok(xa), Ok(ya)) = (
                        <[u8; 48]>::try_from(x.as_slice()),
                        <[u8; 48]>::try_from(y.as_slice()),
                    ) else {
                        return Err("EC coordinates have the wrong length".into());
                    };
                    let point = p384::EncodedPoint::from_affine_coordinates(
                        &p384::FieldBytes::from(xa),
                        &p384::FieldBytes::from(ya),
                        false,
                    );
                    let vk = p384::ecdsa::VerifyingKey::from_encoded_point(&point)
                        .map_err(|_| "P-384 point is not on the curve".to_string())?;
                    KeyMaterial::P384(vk)
                }
                other => return Err(format!("unsupported EC curve {other:?}")),
            }
        }
        "OKP" => {
            let crv = key.get("crv").and_then(Value::as_str).unwrap_or("");
            if crv != "Ed25519" {
                return Err(format!("unsupported OKP curve {crv:?}"));
            }
            let x = b64_field(key, "x")?;
            let bytes: [u8; 32] = x
                .as_slice()
                .try_into()
                .map_err(|_| "Ed25519 key must be 32 bytes".to_string())?;
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                .map_err(|_| "invalid Ed25519 public key".to_string())?;
            if vk.is_weak() {
                return Err("weak (small-order) Ed25519 key".into());
            }
            KeyMaterial::Ed25519(vk)
        }
        other => return Err(format!("unsupported key type {other:?}")),
    };
    let jwk = Jwk { kid, alg, material };
    if let Some(a) = jwk.alg {
        if !jwk.material.fits(a) {
            return Err(format!("\"alg\" {} does not fit the key type", a.name()));
        }
    }
    Ok(Some(jwk))
}

/// Verifies `signature` over `input` with `key` under `alg`. False on any mismatch; never
/// panics on malformed signatures.
pub fn verify(alg: Alg, key: &KeyMaterial, input: &[u8], signature: &[u8]) -> bool {
    use rsa::{Pkcs1v15Sign, Pss};
    use sha2::{Digest, Sha256, Sha384, Sha512};
    match (key, alg) {
        (KeyMaterial::Rsa(pk), _) => {
            use rsa::traits::PublicKeyParts;
            if signature.len() != pk.size() {
                return false;
            }
            let result = match alg {
                Alg::RS256 => pk.verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(input), signature),
                Alg::RS384 => pk.verify(Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(input), signature),
                Alg::RS512 => pk.verify(Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(input), signature),
                // RFC 7518 §3.5: MGF1 with the same hash, salt length = hash length.
                Alg::PS256 => pk.verify(Pss::new::<Sha256>(), &Sha256::digest(input), signature),
                Alg::PS384 => pk.verify(Pss::new::<Sha384>(), &Sha384::digest(input), signature),
                Alg::PS512 => pk.verify(Pss::new::<Sha512>(), &Sha512::digest(input), signature),
                _ => return false,
            };
            result.is_ok()
        }
        (KeyMaterial::P256(vk), Alg::ES256) => {
            use p256::ecdsa::signature::Verifier;
            // JWS uses the fixed-width r||s form, never DER.
            match p256::ecdsa::Signature::from_slice(signature) {
                Ok(sig) if signature.len() == 64 => vk.verify(input, &sig).is_ok(),
                _ => false,
            }
        }
        (KeyMaterial::P384(vk), Alg::ES384) => {
            use p384::ecdsa::signature::Verifier;
            match p384::ecdsa::Signature::from_slice(signature) {
                Ok(sig) if signature.len() == 96 => vk.verify(input, &sig).is_ok(),
                _ => false,
            }
        }
        (KeyMaterial::Ed25519(vk), Alg::EdDSA) => match ed25519_dalek::Signature::from_slice(signature) {
            // verify_strict rejects small-order keys/R and non-canonical S.
            Ok(sig) => vk.verify_strict(input, &sig).is_ok(),
            Err(_) => false,
        },
        (KeyMaterial::Hmac(secret), _) => {
            use hmac::{Hmac, Mac};
            macro_rules! check {
                ($h:ty) => {
                    match Hmac::<$h>::new_from_slice(secret) {
                        // verify_slice compares in constant time.
                        Ok(mut mac) => {
                            mac.update(input);
                            mac.verify_slice(signature).is_ok()
                        }
                        Err(_) => false,
                    }
                };
            }
            match alg {
                Alg::HS256 => check!(Sha256),
                Alg::HS384 => check!(Sha384),
                Alg::HS512 => check!(Sha512),
                _ => false,
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::BigUint;

    #[test]
    fn small_primes_are_the_primes_below_the_bound() {
        let p = small_primes();
        assert_eq!(p.len(), 6542);
        assert_eq!(p.first(), Some(&2));
        assert_eq!(p.last(), Some(&65521));
        assert!(p.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn remainder_of_big_numbers() {
        let n = BigUint::parse_bytes(b"123456789012345678901234567890123456789", 10).unwrap();
        for m in [1u64, 2, 3, 65521, 4_294_967_291, u64::from(u32::MAX)] {
            let want = (&n % BigUint::from(m)).to_bytes_be();
            let got = BigUint::from(rem_u32(&n.to_bytes_be(), m)).to_bytes_be();
            assert_eq!(got, want, "mod {m}");
        }
        assert_eq!(rem_u32(&[], 7), 0);
        assert_eq!(rem_u32(&[9], 0), 0);
    }

    #[test]
    fn small_factors_are_found_at_any_position() {
        use rsa::traits::PublicKeyParts;
        let n = crate::test_keys::keys().rsa.n().clone();
        assert_eq!(small_factor(&n.to_bytes_be()), None);
        for p in [3u32, 5, 251, 257, 4099, 65519, 65521] {
            assert_eq!(small_factor(&(&n * p).to_bytes_be()), Some(p), "{p}");
        }
        assert_eq!(
            small_factor(&(&n * 65537u32).to_bytes_be()),
            None,
            "above the bound"
        );
    }

    #[test]
    fn modulus_and_exponent_checks() {
        use rsa::traits::PublicKeyParts;
        let k = crate::test_keys::keys();
        let w = crate::test_keys::weak_moduli();
        assert_eq!(check_rsa_modulus(k.rsa.n(), KeyCheck::Full), Ok(()));
        assert_eq!(check_rsa_modulus(k.rsa2.n(), KeyCheck::Full), Ok(()));
        for (n, needle) in [
            (&w.prime, "is prime"),
            (&w.small_factor, "small factor"),
            (&w.square, "perfect square"),
            (&w.close_primes, "Fermat"),
        ] {
            let e = check_rsa_modulus(n, KeyCheck::Full).unwrap_err();
            assert!(e.contains(needle), "{e}");
            // Failures are not remembered as passes.
            assert!(check_rsa_modulus(n, KeyCheck::Full).is_err());
            // Documents this plugin stored itself are not tested again.
            assert_eq!(check_rsa_modulus(n, KeyCheck::Revalidated), Ok(()));
        }
        for e in [0u32, 1, 2, 4, 65536] {
            assert!(check_rsa_exponent(&BigUint::from(e)).is_err(), "{e}");
        }
        for e in [3u32, 17, 65537] {
            assert_eq!(check_rsa_exponent(&BigUint::from(e)), Ok(()), "{e}");
        }
    }

    #[test]
    fn duplicate_members_are_refused_at_any_depth() {
        assert!(parse_unique_object(br#"{"a":1,"a":2}"#).is_err());
        assert!(parse_unique_object(br#"{"act":{"sub":"a","sub":"admin"}}"#).is_err());
        assert!(parse_unique_object(br#"{"x":[{"k":1},{"k":1,"k":2}]}"#).is_err());
        // The same name in different objects is fine, and values parse as serde_json's do.
        let doc = br#"{"a":{"k":1},"b":{"k":-2,"f":1.5,"s":"\u00e9","n":null,"t":[true,{}],"big":18446744073709551615}}"#;
        let want: Value = serde_json::from_slice(doc).unwrap();
        assert_eq!(Value::Object(parse_unique_object(doc).unwrap()), want);
        assert!(parse_unique_object(b"[1]").is_err());
        assert!(parse_unique_object(b"{\"a\":1e400}").is_err());
    }
}
