//! Registered-claim checks (RFC 7519 §4.1) and the verified identity derived from claims.

use crate::outcome::reason::Reason;
use serde_json::{Map, Value};

/// Time and audience rules of one issuer.
#[derive(Debug, Clone)]
pub struct ClaimRules {
    pub audiences: Vec<String>,
    pub require_exp: bool,
    /// Without `iat`, only the remaining lifetime (`exp - now`) can be bounded.
    pub require_iat: bool,
    pub clock_skew_s: u64,
    pub max_lifetime_s: u64,
}

/// A NumericDate: JSON number of seconds, possibly fractional; negative or non-numeric is
/// malformed rather than "far in the past".
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, Reason> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(u) = n.as_u64() {
                Ok(Some(u))
            } else {
                match n.as_f64() {
                    Some(f) if (0.0..1.0e15).contains(&f) => Ok(Some(f.floor() as u64)),
                    _ => Err(Reason::BadClaim),
                }
            }
        }
        Some(_) => Err(Reason::BadClaim),
    }
}

/// Checks exp, nbf, iat, lifetime and audience. Returns `exp` for the verified-token cache.
pub fn validate(claims: &Map<String, Value>, rules: &ClaimRules, now: u64) -> Result<Option<u64>, Reason> {
    let skew = rules.clock_skew_s;
    let exp = numeric_date(claims, "exp")?;
    let nbf = numeric_date(claims, "nbf")?;
    let iat = numeric_date(claims, "iat")?;
    match exp {
        None if rules.require_exp => return Err(Reason::MissingExp),
        Some(exp) if now >= exp.saturating_add(skew) => return Err(Reason::Expired),
        _ => {}
    }
    if let Some(nbf) = nbf {
        if now.saturating_add(skew) < nbf {
            return Err(Reason::NotYetValid);
        }
    }
    match iat {
        None if rules.require_iat => return Err(Reason::MissingIat),
        Some(iat) if iat > now.saturating_add(skew) => return Err(Reason::IssuedInFuture),
        _ => {}
    }
    // Only short-lived tokens get in: the whole lifetime from issuance, or, without iat, what
    // remains of it. A token without exp (when allowed) has no lifetime to bound.
    if let Some(exp) = exp {
        let lifetime = match iat {
            Some(iat) => exp.saturating_sub(iat),
            None => exp.saturating_sub(now),
        };
        if lifetime > rules.max_lifetime_s {
            return Err(Reason::LifetimeTooLong);
        }
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => rules.audiences.iter().any(|x| x == a),
        Some(Value::Array(list)) => list
            .iter()
            .any(|v| v.as_str().is_some_and(|a| rules.audiences.iter().any(|x| x == a))),
        _ => false,
    };
    if !aud_ok {
        return Err(Reason::AudienceMismatch);
    }
    Ok(exp)
}

/// Claims that name the caller, its client or the token: identity, authorization and
/// revocation compare them as strings, so any other JSON type (a number `sub` would match
/// no revoked subject) or an empty string is a malformed token, not a missing claim.
pub const IDENTITY_CLAIMS: [&str; 5] = ["iss", "sub", "jti", "azp", "client_id"];

fn identifier(v: &Value) -> Result<(), Reason> {
    match v {
        Value::String(s) if !s.is_empty() => Ok(()),
        _ => Err(Reason::BadClaim),
    }
}

/// Type checks of the identity claims, the `act` delegation chain included (every level must
/// be an object whose `sub`, when present, is a non-empty string). Absent claims are fine.
pub fn check_identity_claims(claims: &Map<String, Value>) -> Result<(), Reason> {
    for name in IDENTITY_CLAIMS {
        if let Some(v) = claims.get(name) {
            identifier(v)?;
        }
    }
    // serde_json's recursion limit bounds the depth of a parsed document.
    let mut act = claims.get("act");
    while let Some(a) = act {
        let Value::Object(a) = a else {
            return Err(Reason::BadClaim);
        };
        for name in IDENTITY_CLAIMS {
            if let Some(v) = a.get(name) {
                identifier(v)?;
            }
        }
        act = a.get("act");
    }
    Ok(())
}

/// Who the caller is, as verified. Built once per token and kept in the token cache.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// Name of the configured issuer that vouched for the token.
    pub issuer_name: String,
    pub iss: String,
    pub sub: Option<String>,
    /// The OAuth client: `azp`, else `client_id`.
    pub client: Option<String>,
    pub scopes: Vec<String>,
    /// RFC 8693 delegation chain from the `act` claim: the current actor first, then the
    /// actors it acted for.
    pub actors: Vec<String>,
    pub jti: Option<String>,
    pub exp: Option<u64>,
    /// All claims, for the authorization layer.
    pub claims: Map<String, Value>,
}

/// Deeper `act` nesting is cut off: the chain is for audit and headers, and unbounded
/// nesting is a cheap way to inflate every record.
pub const MAX_ACTOR_DEPTH: usize = 8;

impl Identity {
    pub fn from_claims(issuer_name: &str, claims: Map<String, Value>, exp: Option<u64>) -> Identity {
        let string = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_string);
        let client = string("azp").or_else(|| string("client_id"));
        let mut scopes: Vec<String> = Vec::new();
        match claims.get("scope") {
            Some(Value::String(s)) => scopes.extend(s.split_whitespace().map(str::to_string)),
            Some(Value::Array(a)) => scopes.extend(a.iter().filter_map(Value::as_str).map(str::to_string)),
            _ => {}
        }
        match claims.get("scp") {
            Some(Value::String(s)) => scopes.extend(s.split_whitespace().map(str::to_string)),
            Some(Value::Array(a)) => scopes.extend(a.iter().filter_map(Value::as_str).map(str::to_string)),
            _ => {}
        }
        scopes.dedup();
        let mut actors = Vec::new();
        let mut act = claims.get("act");
        while let Some(Value::Object(a)) = act {
            if actors.len() >= MAX_ACTOR_DEPTH {
                break;
            }
            if let Some(sub) = a.get("sub").and_then(Value::as_str) {
                actors.push(sub.to_string());
            }
            act = a.get("act");
        }
        Identity {
            issuer_name: issuer_name.to_string(),
            iss: string("iss").unwrap_or_default(),
            sub: string("sub"),
            client,
            scopes,
            actors,
            jti: string("jti"),
            exp,
            claims,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules() -> ClaimRules {
        ClaimRules {
            audiences: vec!["llm".into(), "other".into()],
            require_exp: true,
            require_iat: false,
            clock_skew_s: 60,
            max_lifetime_s: 3600,
        }
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn accepts_fresh_short_token() {
        let c = claims(json!({"aud": "llm", "iat": NOW - 10, "exp": NOW + 600}));
        assert_eq!(validate(&c, &rules(), NOW), Ok(Some(NOW + 600)));
    }

    #[test]
    fn audience_string_or_array() {
        let c = claims(json!({"aud": ["x", "other"], "exp": NOW + 60}));
        assert!(validate(&c, &rules(), NOW).is_ok());
        let c = claims(json!({"aud": ["x", "y"], "exp": NOW + 60}));
        assert_eq!(validate(&c, &rules(), NOW), Err(Reason::AudienceMismatch));
        let c = claims(json!({"exp": NOW + 60}));
        assert_eq!(validate(&c, &rules(), NOW), Err(Reason::AudienceMismatch));
        let c = claims(json!({"aud": 5, "exp": NOW + 60}));
        assert_eq!(validate(&c, &rules(), NOW), Err(Reason::AudienceMismatch));
    }

    #[test]
    fn exp_with_skew() {
        let c = claims(json!({"aud": "llm", "exp": NOW - 30}));
        assert!(validate(&c, &rules(), NOW).is_ok(), "inside 60 s skew");
        let c = claims(json!({"aud": "llm", "exp": NOW - 60}));
        assert_eq!(validate(&c, &rules(), NOW), Err(Reason::Expired));
    }

    #[test]
    fn exp_required_by_default() {
        let c = claims(json!({"aud": "llm"}));
        assert_eq!(validate(&c, &rules(), NOW), Err(Reason::MissingExp));
        let mut r = rules();
        r.require_exp = false;
        assert_eq!(validate(&c, &r, NOW), Ok(None));
    }

    #[test]
    fn nbf_and_iat_in_future() {
        let c = claims(json!({"aud": "llm", "exp": NOW + 600, "nbf": NOW + 61}));
        assert_eq!(validate(&c, &rules(), NOW), Err(Reason::NotYetValid));
        let c = claims(json!({"aud": "llm", "exp": NOW + 600, "nbf": NOW + 59}));
        assert!(validate(&c, &rules(), NOW).is_ok());
        let c = claims(json!({"aud": "llm", "exp": NOW + 600, "iat": NOW + 120}));
        assert_eq!(validate(&c, &rules(), NOW), Err(Reason::IssuedInFuture));
    }

    #[test]
    fn long_lived_tokens_refused() {
        let c = claims(json!({"aud": "llm", "iat": NOW - 10, "exp": NOW - 10 + 3601}));
        assert_eq!(validate(&c, &rules(), NOW), Err(Reason::LifetimeTooLong));
        // Without iat, the remaining lifetime is bounded instead.
        let c = claims(json!({"aud": "llm", "exp": NOW + 7200}));
        assert_eq!(validate(&c, &rules(), NOW), Err(Reason::LifetimeTooLong));
    }

    #[test]
    fn malformed_dates() {
        for bad in [json!("tomorrow"), json!(-5), json!(true), json!(1e300)] {
            let c = claims(json!({"aud": "llm", "exp": bad}));
            assert_eq!(validate(&c, &rules(), NOW), Err(Reason::BadClaim));
        }
        let c = claims(json!({"aud": "llm", "exp": (NOW + 10) as f64 + 0.5}));
        assert_eq!(validate(&c, &rules(), NOW), Ok(Some(NOW + 10)));
    }

    #[test]
    fn identity_from_claims() {
        let c = claims(json!({
            "iss": "https://idp", "sub": "alice", "azp": "cli", "client_id": "ignored",
            "scope": "models:read  chat", "jti": "j1",
            "act": {"sub": "agent-7", "act": {"sub": "orchestrator"}}
        }));
        let id = Identity::from_claims("idp", c, Some(5));
        assert_eq!(id.sub.as_deref(), Some("alice"));
        assert_eq!(id.client.as_deref(), Some("cli"));
        assert_eq!(id.scopes, vec!["models:read", "chat"]);
        assert_eq!(id.actors, vec!["agent-7", "orchestrator"]);
        assert_eq!(id.jti.as_deref(), Some("j1"));
        let id = Identity::from_claims(
            "idp",
            claims(json!({"client_id": "svc", "scp": ["a", "b"]})),
            None,
        );
        assert_eq!(id.client.as_deref(), Some("svc"));
        assert_eq!(id.scopes, vec!["a", "b"]);
    }

    #[test]
    fn actor_chain_is_bounded() {
        let mut act = json!({"sub": "deepest"});
        for i in 0..50 {
            act = json!({"sub": format!("a{i}"), "act": act});
        }
        let id = Identity::from_claims("idp", claims(json!({"act": act})), None);
        assert_eq!(id.actors.len(), MAX_ACTOR_DEPTH);
        assert_eq!(id.actors.first().map(String::as_str), Some("a49"));
    }

    #[test]
    fn require_iat() {
        let c = claims(json!({"aud": "llm", "exp": NOW + 600}));
        assert_eq!(validate(&c, &rules(), NOW), Ok(Some(NOW + 600)));
        let mut r = rules();
        r.require_iat = true;
        assert_eq!(validate(&c, &r, NOW), Err(Reason::MissingIat));
        let c = claims(json!({"aud": "llm", "exp": NOW + 600, "iat": NOW}));
        assert_eq!(validate(&c, &r, NOW), Ok(Some(NOW + 600)));
        // A malformed iat stays a bad claim, required or not.
        let c = claims(json!({"aud": "llm", "exp": NOW + 600, "iat": "now"}));
        assert_eq!(validate(&c, &r, NOW), Err(Reason::BadClaim));
    }

    #[test]
    fn identity_claim_types() {
        assert_eq!(check_identity_claims(&claims(json!({}))), Ok(()));
        let good = json!({"iss": "i", "sub": "s", "jti": "j", "azp": "a", "client_id": "c",
            "act": {"sub": "x", "act": {"sub": "y", "iss": "z"}}, "other": 5});
        assert_eq!(check_identity_claims(&claims(good)), Ok(()));
        for name in IDENTITY_CLAIMS {
            for bad in [
                json!(1),
                json!(null),
                json!([]),
                json!({}),
                json!(false),
                json!(""),
            ] {
                let c = claims(json!({ name: bad.clone() }));
                assert_eq!(check_identity_claims(&c), Err(Reason::BadClaim), "{name}={bad}");
                let c = claims(json!({"act": {"sub": "x", "act": { name: bad.clone() }}}));
                assert_eq!(
                    check_identity_claims(&c),
                    Err(Reason::BadClaim),
                    "act.act.{name}={bad}"
                );
            }
        }
        for bad in [json!("x"), json!(1), json!(null), json!([{"sub": "x"}])] {
            let c = claims(json!({ "act": bad.clone() }));
            assert_eq!(check_identity_claims(&c), Err(Reason::BadClaim), "act={bad}");
        }
    }
}
