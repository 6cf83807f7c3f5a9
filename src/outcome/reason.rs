//! Why a call was allowed or denied: a stable code for audit records and metrics, and what
//! the caller is told (deliberately less: no hint of which check or key failed).

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    Ok,
    MissingToken,
    TokenTooLarge,
    MalformedToken,
    UnsupportedAlg,
    ForbiddenHeader,
    UnknownIssuer,
    AlgNotAllowed,
    UnknownKey,
    AmbiguousKey,
    BadSignature,
    BadClaim,
    MissingExp,
    /// The issuer requires `iat` (`require_iat`) and the token has none.
    MissingIat,
    Expired,
    NotYetValid,
    IssuedInFuture,
    LifetimeTooLong,
    AudienceMismatch,
    Revoked,
    JwksUnavailable,
}

impl Reason {
    /// Stable snake_case code used in audit records, logs and metrics.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Ok => "ok",
            Reason::MissingToken => "missing_token",
            Reason::TokenTooLarge => "token_too_large",
            Reason::MalformedToken => "malformed_token",
            Reason::UnsupportedAlg => "unsupported_alg",
            Reason::ForbiddenHeader => "forbidden_header",
            Reason::UnknownIssuer => "unknown_issuer",
            Reason::AlgNotAllowed => "alg_not_allowed",
            Reason::UnknownKey => "unknown_key",
            Reason::AmbiguousKey => "ambiguous_key",
            Reason::BadSignature => "bad_signature",
            Reason::BadClaim => "bad_claim",
            Reason::MissingExp => "missing_exp",
            Reason::MissingIat => "missing_iat",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::IssuedInFuture => "issued_in_future",
            Reason::LifetimeTooLong => "lifetime_too_long",
            Reason::AudienceMismatch => "audience_mismatch",
            Reason::Revoked => "revoked",
            Reason::JwksUnavailable => "jwks_unavailable",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            Reason::Ok => 200,
            Reason::JwksUnavailable => 503,
            _ => 401,
        }
    }
}

/// A local reply: status, headers and an OpenAI-shaped JSON body
/// (`{"error":{"message","type","param","code"}}`) that the OpenAI SDKs parse.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

fn error_body(message: &str, kind: &str, code: &str) -> String {
    serde_json::json!({
        "error": {"message": message, "type": kind, "param": null, "code": code}
    })
    .to_string()
}

/// The reply for a denial. `realm` has been validated as a safe quoted-string.
pub fn denial_reply(reason: Reason, realm: &str) -> Reply {
    // (client-facing message, OpenAI error code, RFC 6750 error attribute)
    let (message, code, rfc6750) = match reason {
        // RFC 6750 §3.1: no error attribute when the request carried no credentials.
        Reason::MissingToken => (
            "Missing bearer token. Send 'Authorization: Bearer <token>'.",
            "missing_token",
            None,
        ),
        Reason::Expired => (
            "The access token has expired.",
            "token_expired",
            Some("invalid_token"),
        ),
        Reason::NotYetValid | Reason::IssuedInFuture => (
            "The access token is not valid yet.",
            "invalid_token",
            Some("invalid_token"),
        ),
        Reason::AudienceMismatch => (
            "The access token was not issued for this service.",
            "invalid_token",
            Some("invalid_token"),
        ),
        Reason::LifetimeTooLong => (
            "The access token's lifetime exceeds what this service accepts; use a short-lived token.",
            "invalid_token",
            Some("invalid_token"),
        ),
        Reason::Revoked => (
            "The access token has been revoked.",
            "token_revoked",
            Some("invalid_token"),
        ),
        Reason::TokenTooLarge | Reason::MalformedToken => (
            "The access token is malformed.",
            "invalid_token",
            Some("invalid_request"),
        ),
        Reason::JwksUnavailable => {
            return Reply {
                status: 503,
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("retry-after".into(), "5".into()),
                ],
                body: error_body(
                    "Authentication is temporarily unavailable. Retry later.",
                    "server_error",
                    "auth_unavailable",
                ),
            }
        }
        _ => (
            "The access token is invalid.",
            "invalid_token",
            Some("invalid_token"),
        ),
    };
    let challenge = match rfc6750 {
        None => format!("Bearer realm=\"{realm}\""),
        Some(e) => format!("Bearer realm=\"{realm}\", error=\"{e}\", error_description=\"{message}\""),
    };
    Reply {
        status: if rfc6750 == Some("invalid_request") {
            401
        } else {
            reason.status()
        },
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("www-authenticate".into(), challenge),
        ],
        body: error_body(message, "invalid_request_error", code),
    }
}

/// Percent-encodes everything outside printable ASCII, plus '%' itself and the list
/// separator, so values cannot smuggle CR/LF or split a list.
pub fn header_safe(value: &str, separator: Option<char>) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        let c = b as char;
        let plain = (0x20..0x7f).contains(&b) && c != '%' && Some(c) != separator;
        if plain {
            out.push(c);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Why authorization failed: each maps to a 403 message saying what is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    NoRoute,
    InsufficientScope,
    ActionNotPermitted,
    ModelRequired,
    ModelNotPermitted,
    ToolNotPermitted(String),
    StreamingNotPermitted,
    MaxTokensExceeded(u64),
}

impl Denial {
    pub fn code(&self) -> &'static str {
        match self {
            Denial::NoRoute => "route_not_permitted",
            Denial::InsufficientScope => "insufficient_scope",
            Denial::ActionNotPermitted => "action_not_permitted",
            Denial::ModelRequired => "model_required",
            Denial::ModelNotPermitted => "model_not_permitted",
            Denial::ToolNotPermitted(_) => "tool_not_permitted",
            Denial::StreamingNotPermitted => "streaming_not_permitted",
            Denial::MaxTokensExceeded(_) => "max_tokens_exceeded",
        }
    }

    /// What the caller is told: what is missing, never which rule or policy said so.
    pub fn message(&self) -> String {
        match self {
            Denial::NoRoute => "This route is not open to any caller.".into(),
            Denial::InsufficientScope => "Your token does not grant access to this route.".into(),
            Denial::ActionNotPermitted => "Your token does not permit this operation.".into(),
            Denial::ModelRequired => "The request must name a model.".into(),
            Denial::ModelNotPermitted => "The requested model is not permitted for your token.".into(),
            Denial::ToolNotPermitted(t) => {
                format!("The tool {:?} is not permitted for your token.", truncate(t, 64))
            }
            Denial::StreamingNotPermitted => "Streaming is not permitted for your token.".into(),
            Denial::MaxTokensExceeded(n) => format!("max_tokens may be at most {n} for your token."),
        }
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Why a response could not be inspected (the audit reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withheld {
    Compressed,
    UnknownContentType,
    Unparseable,
}

impl Withheld {
    pub fn reason(self) -> &'static str {
        match self {
            Withheld::Compressed => "compressed",
            Withheld::UnknownContentType => "unknown_content_type",
            Withheld::Unparseable => "unparseable",
        }
    }
}

/// The status and body sent instead of a withheld response (OpenAI error shape; the
/// reason goes to the audit record, not to the client).
pub const WITHHELD_STATUS: u16 = 502;

pub fn withheld_body(problem: Withheld) -> Vec<u8> {
    let _ = problem;
    serde_json::json!({"error": {"message": "The upstream response could not be inspected and was withheld.",
        "type": "server_error", "param": null, "code": "uninspectable_response"}})
    .to_string()
    .into_bytes()
}

/// 403 for an authenticated caller the policy does not allow (RFC 6750 insufficient_scope).
pub fn forbidden_reply(denial: &Denial, realm: &str) -> Reply {
    let message = denial.message();
    Reply {
        status: 403,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            (
                "www-authenticate".into(),
                format!(
                    "Bearer realm=\"{realm}\", error=\"insufficient_scope\", error_description=\"{}\"",
                    header_safe(&message, Some('"'))
                ),
            ),
        ],
        body: error_body(&message, "permission_error", denial.code()),
    }
}

/// Problems with the request itself (size, encoding, JSON, path, model): 413, 415, 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestProblem {
    TooLarge(usize),
    Compressed,
    NotJson,
    BadField(&'static str),
    /// The path could be read differently by the upstream (see `request_path`).
    AmbiguousPath(crate::authz::request_path::PathProblem),
    /// The path, the model header and the body name different models.
    ModelMismatch,
    /// The JSON body names a member twice in one object.
    DuplicateMember,
}

impl RequestProblem {
    pub fn code(&self) -> &'static str {
        match self {
            RequestProblem::TooLarge(_) => "request_too_large",
            RequestProblem::Compressed => "unsupported_content_encoding",
            RequestProblem::NotJson => "invalid_json",
            RequestProblem::BadField(_) => "invalid_request",
            RequestProblem::AmbiguousPath(_) => "ambiguous_path",
            RequestProblem::ModelMismatch => "model_mismatch",
            RequestProblem::DuplicateMember => "duplicate_member",
        }
    }

    pub fn reply(&self) -> Reply {
        let (status, message) = match self {
            RequestProblem::TooLarge(max) => (413, format!("The request body exceeds {max} bytes.")),
            RequestProblem::Compressed => (
                415,
                "Compressed request bodies are not accepted; send the JSON body uncompressed.".to_string(),
            ),
            RequestProblem::NotJson => (400, "The request body must be a JSON object.".to_string()),
            RequestProblem::BadField(f) => (400, format!("The request field {f:?} has an invalid value.")),
            RequestProblem::AmbiguousPath(p) => (
                400,
                format!(
                    "The request path is ambiguous: {}. Send the path in its plain form.",
                    p.describe()
                ),
            ),
            RequestProblem::DuplicateMember => (
                400,
                "The request body names the same member twice in one object; send each once.".to_string(),
            ),
            RequestProblem::ModelMismatch => (
                400,
                "The request names different models in its path, headers and body; name one model."
                    .to_string(),
            ),
        };
        let param = match self {
            RequestProblem::BadField(f) => serde_json::Value::String((*f).to_string()),
            RequestProblem::ModelMismatch => serde_json::Value::String("model".to_string()),
            _ => serde_json::Value::Null,
        };
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::json!({"error": {"message": message, "type": "invalid_request_error",
                "param": param, "code": self.code()}})
            .to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's table of authentication failures, row by row.
    #[test]
    fn authentication_failures_match_the_readme_table() {
        let table = [
            (
                Reason::MissingToken,
                401,
                "missing_token",
                "Missing bearer token.",
                None,
            ),
            (
                Reason::Expired,
                401,
                "token_expired",
                "The access token has expired.",
                Some("invalid_token"),
            ),
            (
                Reason::NotYetValid,
                401,
                "invalid_token",
                "The access token is not valid yet.",
                Some("invalid_token"),
            ),
            (
                Reason::IssuedInFuture,
                401,
                "invalid_token",
                "The access token is not valid yet.",
                Some("invalid_token"),
            ),
            (
                Reason::AudienceMismatch,
                401,
                "invalid_token",
                "The access token was not issued for this service.",
                Some("invalid_token"),
            ),
            (
                Reason::LifetimeTooLong,
                401,
                "invalid_token",
                "The access token's lifetime exceeds",
                Some("invalid_token"),
            ),
            (
                Reason::Revoked,
                401,
                "token_revoked",
                "The access token has been revoked.",
                Some("invalid_token"),
            ),
            (
                Reason::MalformedToken,
                401,
                "invalid_token",
                "The access token is malformed.",
                Some("invalid_request"),
            ),
            (
                Reason::TokenTooLarge,
                401,
                "invalid_token",
                "The access token is malformed.",
                Some("invalid_request"),
            ),
            (
                Reason::BadSignature,
                401,
                "invalid_token",
                "The access token is invalid.",
                Some("invalid_token"),
            ),
            (
                Reason::UnknownKey,
                401,
                "invalid_token",
                "The access token is invalid.",
                Some("invalid_token"),
            ),
            (
                Reason::UnknownIssuer,
                401,
                "invalid_token",
                "The access token is invalid.",
                Some("invalid_token"),
            ),
            (
                Reason::AlgNotAllowed,
                401,
                "invalid_token",
                "The access token is invalid.",
                Some("invalid_token"),
            ),
            (
                Reason::JwksUnavailable,
                503,
                "auth_unavailable",
                "Authentication is temporarily unavailable.",
                None,
            ),
        ];
        for (reason, status, code, message, attribute) in table {
            let r = denial_reply(reason, "llm-warden");
            let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(r.status, status, "{reason:?}");
            assert_eq!(body["error"]["code"], code, "{reason:?}");
            assert!(
                body["error"]["message"].as_str().unwrap().starts_with(message),
                "{reason:?}"
            );
            let challenge = r
                .headers
                .iter()
                .find(|(k, _)| k == "www-authenticate")
                .map(|(_, v)| v.as_str());
            match (reason, attribute) {
                (Reason::JwksUnavailable, _) => {
                    assert_eq!(challenge, None);
                    assert!(r.headers.iter().any(|(k, v)| k == "retry-after" && v == "5"));
                }
                (_, None) => assert_eq!(challenge, Some("Bearer realm=\"llm-warden\"")),
                (_, Some(a)) => {
                    let c = challenge.unwrap();
                    assert!(
                        c.starts_with(&format!(
                            "Bearer realm=\"llm-warden\", error=\"{a}\", error_description=\""
                        )),
                        "{c}"
                    );
                    assert!(
                        !c.contains("bad_signature") && !c.contains("unknown_key"),
                        "no internal reason: {c}"
                    );
                }
            }
        }
    }

    use serde_json::Value;

    fn header<'a>(r: &'a Reply, name: &str) -> Option<&'a str> {
        r.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn missing_token_challenge_has_no_error_attribute() {
        let r = denial_reply(Reason::MissingToken, "llm-warden");
        assert_eq!(r.status, 401);
        assert_eq!(
            header(&r, "www-authenticate"),
            Some("Bearer realm=\"llm-warden\"")
        );
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["error"]["code"], "missing_token");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert!(body["error"]["message"].is_string());
        assert!(body["error"]["param"].is_null());
    }

    #[test]
    fn invalid_token_challenge() {
        let r = denial_reply(Reason::BadSignature, "r");
        assert_eq!(r.status, 401);
        let h = header(&r, "www-authenticate").unwrap();
        assert!(
            h.starts_with("Bearer realm=\"r\", error=\"invalid_token\""),
            "{h}"
        );
        // The caller is not told which check failed.
        assert!(!r.body.contains("signature"));
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["error"]["code"], "invalid_token");
    }

    #[test]
    fn forbidden_is_403_insufficient_scope() {
        let r = forbidden_reply(&Denial::ModelNotPermitted, "llm");
        assert_eq!(r.status, 403);
        let h = header(&r, "www-authenticate").unwrap();
        assert!(
            h.starts_with("Bearer realm=\"llm\", error=\"insufficient_scope\""),
            "{h}"
        );
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["error"]["code"], "model_not_permitted");
        assert_eq!(body["error"]["type"], "permission_error");
    }

    #[test]
    fn request_problems() {
        assert_eq!(RequestProblem::TooLarge(10).reply().status, 413);
        assert_eq!(RequestProblem::Compressed.reply().status, 415);
        assert_eq!(RequestProblem::NotJson.reply().status, 400);
        let r = RequestProblem::BadField("model").reply();
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!((r.status, body["error"]["param"].as_str()), (400, Some("model")));
    }

    #[test]
    fn ambiguous_path_and_model_mismatch_are_400_invalid_request_errors() {
        let r = RequestProblem::AmbiguousPath(crate::authz::request_path::PathProblem::EncodedSlash).reply();
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(r.status, 400);
        assert_eq!(body["error"]["code"], "ambiguous_path");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert!(body["error"]["param"].is_null());
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("percent-encoded"));
        let r = RequestProblem::ModelMismatch.reply();
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(r.status, 400);
        assert_eq!(body["error"]["code"], "model_mismatch");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["param"], "model");
        // Neither names the models: they may be anything the caller sent.
        assert!(!r.body.contains("gpt"));
    }

    #[test]
    fn expired_and_revoked_codes() {
        let r = denial_reply(Reason::Expired, "r");
        assert!(r.body.contains("\"token_expired\""));
        let r = denial_reply(Reason::Revoked, "r");
        assert!(r.body.contains("\"token_revoked\""));
    }

    #[test]
    fn jwks_unavailable_is_503_without_challenge() {
        let r = denial_reply(Reason::JwksUnavailable, "r");
        assert_eq!(r.status, 503);
        assert!(header(&r, "www-authenticate").is_none());
        assert_eq!(header(&r, "retry-after"), Some("5"));
        assert!(r.body.contains("auth_unavailable"));
    }

    #[test]
    fn every_denial_is_401_or_503() {
        use Reason::*;
        for r in [
            MissingToken,
            TokenTooLarge,
            MalformedToken,
            UnsupportedAlg,
            ForbiddenHeader,
            UnknownIssuer,
            AlgNotAllowed,
            UnknownKey,
            AmbiguousKey,
            BadSignature,
            BadClaim,
            MissingExp,
            MissingIat,
            Expired,
            NotYetValid,
            IssuedInFuture,
            LifetimeTooLong,
            AudienceMismatch,
            Revoked,
            JwksUnavailable,
        ] {
            let reply = denial_reply(r, "x");
            assert!(reply.status == 401 || reply.status == 503, "{r:?}");
            assert!(serde_json::from_str::<Value>(&reply.body).is_ok());
        }
    }
}
