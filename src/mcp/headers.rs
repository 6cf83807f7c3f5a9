//! `Mcp-Method` / `Mcp-Name` request headers against the JSON-RPC body (2026-07-28
//! `basic/transports/streamable-http`, "Request Metadata" and "Server Validation"): the
//! filter never authorizes a body that its headers contradict, since a load balancer or the
//! server may act on the header while we checked the body.
//!
//! - A present header must equal the body's value exactly (values are case-sensitive):
//!   `Mcp-Method` the `method`, `Mcp-Name` the `params.name` (or `params.uri`; for a
//!   `completion/complete`, its `ref.name` / `ref.uri`). `Mcp-Name` on a message with no such
//!   value is a mismatch.
//! - `Mcp-Name` may be `=?base64?<standard Base64 of UTF-8>?=`: decoded before comparing.
//!   A header value with a character outside visible ASCII, space and tab is malformed.
//! - From revision 2026-07-28 (`MCP-Protocol-Version`), `Mcp-Method` is required on every
//!   request and `Mcp-Name` on `tools/call`, `resources/read` and `prompts/get`; before it,
//!   clients do not send them and only present headers are checked.
//! - A batch (which 2026-07-28 does not allow at all: refused there): a present header must
//!   match every message in the batch; a response entry (no method) matches no
//!   `Mcp-Method`. So one header can never stand for a batch mixing methods or names.
//! - `MCP-Protocol-Version`, when the body also carries
//!   `params._meta["io.modelcontextprotocol/protocolVersion"]` (2026-07-28), must equal it.
//!
//! A mismatch is 400 with JSON-RPC error -32020 (`HeaderMismatch`), keeping the id of a
//! single message; the message never echoes header or body values.

use crate::mcp::jsonrpc::{Body, Call, Message, Method, Refusal, Revision, RpcError, Target};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

/// The MCP request headers, as received (None: absent).
#[derive(Debug, Clone, Copy, Default)]
pub struct McpHeaders<'a> {
    /// `Mcp-Method`.
    pub method: Option<&'a str>,
    /// `Mcp-Name`.
    pub name: Option<&'a str>,
    /// `MCP-Protocol-Version`: decides the revision, and must equal the body's
    /// `params._meta["io.modelcontextprotocol/protocolVersion"]` when both are present.
    pub protocol_version: Option<&'a str>,
}

/// Longest `Mcp-Session-Id` accepted (the specification sets no bound; ours keeps audit
/// records and shared-data keys small).
pub const MAX_SESSION_ID: usize = 512;

/// Whether an `Mcp-Session-Id` value is well-formed (2025-11-25 `basic/transports`: visible
/// ASCII 0x21..=0x7E only), so it can be logged and keyed on as is.
pub fn is_valid_session_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_SESSION_ID && id.bytes().all(|b| (0x21..=0x7E).contains(&b))
}

/// RFC 9110 field-value characters (visible ASCII, space, tab).
fn is_field_value(v: &str) -> bool {
    v.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

/// The `Mcp-Name` value after the Base64 sentinel, if any, is decoded.
fn decoded_name(raw: &str) -> Result<String, &'static str> {
    if !is_field_value(raw) {
        return Err("Mcp-Name contains invalid characters");
    }
    match raw.strip_prefix("=?base64?").and_then(|r| r.strip_suffix("?=")) {
        Some(b64) => STANDARD
            .decode(b64)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or("Mcp-Name is not valid Base64 of UTF-8"),
        None => Ok(raw.to_string()),
    }
}

/// The body value `Mcp-Name` mirrors.
fn name_source(call: &Call) -> Option<&str> {
    if let Some(t) = &call.target {
        return Some(match t {
            Target::Tool(n) | Target::Resource(n) | Target::Prompt(n) => n.as_str(),
        });
    }
    ["name", "uri"]
        .iter()
        .find_map(|k| call.params.get(*k).and_then(Value::as_str))
}

fn name_required(method: Method) -> bool {
    matches!(
        method,
        Method::ToolsCall | Method::ResourcesRead | Method::PromptsGet
    )
}

fn check_message(
    m: &Message,
    method: Option<&str>,
    name: Option<&str>,
    protocol_version: Option<&str>,
    revision: Revision,
) -> Result<(), &'static str> {
    let call = match m {
        Message::Request { call, .. } | Message::Notification(call) => Some(call),
        // Malformed messages are refused by `jsonrpc::verdict` anyway.
        Message::Invalid { .. } => return Ok(()),
        Message::Response { .. } => None,
    };
    let required = revision == Revision::From2026_07_28 && matches!(m, Message::Request { .. });
    match (method, call) {
        (Some(h), Some(c)) if h == c.method_name => {}
        (Some(_), _) => return Err("Mcp-Method does not match the request body"),
        (None, Some(_)) if required => return Err("Mcp-Method is required"),
        (None, _) => {}
    }
    match (name, call) {
        (Some(h), Some(c)) if Some(h) == name_source(c) => {}
        (Some(_), _) => return Err("Mcp-Name does not match the request body"),
        (None, Some(c)) if required && name_required(c.method) => return Err("Mcp-Name is required"),
        (None, _) => {}
    }
    let body_version = call
        .and_then(|c| c.params.get("_meta"))
        .and_then(|meta| meta.get("io.modelcontextprotocol/protocolVersion"));
    if let (Some(h), Some(b)) = (protocol_version, body_version) {
        if b.as_str() != Some(h.trim()) {
            return Err("MCP-Protocol-Version does not match the request body");
        }
    }
    Ok(())
}

/// Checks the headers against a parsed body: None when they agree, else the 400 to send.
pub fn check(body: &Body, headers: McpHeaders) -> Option<Refusal> {
    let revision = Revision::from_header(headers.protocol_version);
    let refuse = |why: &str, id: &Value| {
        Some(Refusal::single(
            &RpcError::header_mismatch(why),
            id,
            true,
            revision,
        ))
    };
    if let Some(m) = headers.method {
        if !is_field_value(m) {
            return refuse("Mcp-Method contains invalid characters", &Value::Null);
        }
    }
    let name = match headers.name.map(decoded_name).transpose() {
        Ok(n) => n,
        Err(why) => return refuse(why, &Value::Null),
    };
    match body {
        Body::Single(m) => {
            let id = match m {
                Message::Request { id, .. } | Message::Invalid { id, .. } => id.clone(),
                _ => Value::Null,
            };
            check_message(
                m,
                headers.method,
                name.as_deref(),
                headers.protocol_version,
                revision,
            )
            .err()
            .and_then(|why| refuse(why, &id))
        }
        Body::Batch(_) if revision == Revision::From2026_07_28 => Some(Refusal::single(
            &RpcError::invalid_request("batches are not part of this protocol revision"),
            &Value::Null,
            true,
            revision,
        )),
        Body::Batch(ms) => ms
            .iter()
            .find_map(|m| {
                check_message(
                    m,
                    headers.method,
                    name.as_deref(),
                    headers.protocol_version,
                    revision,
                )
                .err()
            })
            .and_then(|why| refuse(why, &Value::Null)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::jsonrpc::{code, parse_body};

    const CALL: &str =
        r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"get_weather","arguments":{}}}"#;
    const OLD: Revision = Revision::UpTo2025_11_25;
    const NEW: Revision = Revision::From2026_07_28;

    fn run(body: &str, method: Option<&str>, name: Option<&str>, revision: Revision) -> Option<Refusal> {
        let protocol_version = match revision {
            Revision::UpTo2025_11_25 => None,
            Revision::From2026_07_28 => Some("2026-07-28"),
        };
        let headers = McpHeaders {
            method,
            name,
            protocol_version,
        };
        check(&parse_body(body.as_bytes()).unwrap(), headers)
    }

    fn body_of(r: &Refusal) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn matching_or_absent_headers_pass() {
        assert_eq!(run(CALL, Some("tools/call"), Some("get_weather"), NEW), None);
        assert_eq!(run(CALL, Some("tools/call"), Some("get_weather"), OLD), None);
        assert_eq!(run(CALL, None, None, OLD), None);
        assert_eq!(run(CALL, Some("tools/call"), None, OLD), None);
        let read = r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///projects/a.json"}}"#;
        assert_eq!(
            run(read, Some("resources/read"), Some("file:///projects/a.json"), NEW),
            None
        );
        let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        assert_eq!(run(list, Some("tools/list"), None, NEW), None);
    }

    #[test]
    fn mismatches_are_400_with_header_mismatch_and_the_id() {
        for (method, name) in [
            (Some("tools/list"), Some("get_weather")),
            (Some("Tools/Call"), Some("get_weather")),
            (Some("tools/call "), Some("get_weather")),
            (Some("tools/call"), Some("delete_all")),
            (Some("tools/call"), Some("Get_Weather")),
            (None, Some("get_weather ")),
        ] {
            let r = run(CALL, method, name, OLD).unwrap_or_else(|| panic!("{method:?} {name:?}"));
            assert_eq!(r.status, 400);
            let v = body_of(&r);
            assert_eq!(v["error"]["code"], code::HEADER_MISMATCH);
            assert_eq!(v["id"], 9);
            // Neither value is echoed.
            let text = v.to_string();
            assert!(
                !text.contains("delete_all") && !text.contains("get_weather"),
                "{text}"
            );
        }
    }

    #[test]
    fn required_from_2026_07_28() {
        assert!(run(CALL, None, Some("get_weather"), NEW).is_some());
        assert!(run(CALL, Some("tools/call"), None, NEW).is_some());
        let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        assert!(run(list, None, None, NEW).is_some());
        // Notifications: no header requirement is defined.
        assert_eq!(
            run(
                r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
                None,
                None,
                NEW
            ),
            None
        );
    }

    #[test]
    fn a_name_header_on_a_method_without_a_name_is_a_mismatch() {
        let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        assert!(run(list, Some("tools/list"), Some("x"), OLD).is_some());
        let complete = r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p"}}}"#;
        assert_eq!(run(complete, Some("completion/complete"), Some("p"), OLD), None);
        assert!(run(complete, Some("completion/complete"), Some("q"), OLD).is_some());
    }

    #[test]
    fn base64_names_are_decoded() {
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"Hello, 世界"}}"#;
        assert_eq!(
            run(
                body,
                Some("tools/call"),
                Some("=?base64?SGVsbG8sIOS4lueVjA==?="),
                NEW
            ),
            None
        );
        assert!(run(body, Some("tools/call"), Some("=?base64?SGVsbG8=?="), NEW).is_some());
        assert!(run(body, Some("tools/call"), Some("=?base64?!!!?="), NEW).is_some());
        // Base64 of invalid UTF-8.
        assert!(run(body, Some("tools/call"), Some("=?base64?/w==?="), NEW).is_some());
        // The sentinel is case-sensitive: an uppercase one is a plain value.
        let plain = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"=?BASE64?eA==?="}}"#;
        assert_eq!(run(plain, Some("tools/call"), Some("=?BASE64?eA==?="), NEW), None);
        // A literal name that looks like the sentinel must itself be encoded.
        let literal = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"=?base64?eA==?="}}"#;
        assert!(run(literal, Some("tools/call"), Some("=?base64?eA==?="), NEW).is_some());
    }

    #[test]
    fn invalid_characters_are_refused() {
        assert!(run(CALL, Some("tools/call\u{1}"), None, OLD).is_some());
        assert!(run(CALL, Some("tools/call"), Some("get_weather\r\nX-Evil: 1"), OLD).is_some());
        // A non-ASCII name must come Base64-encoded.
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ｇet"}}"#;
        assert!(run(body, Some("tools/call"), Some("ｇet"), OLD).is_some());
    }

    #[test]
    fn batches() {
        let same = r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"a"}}]"#;
        assert_eq!(run(same, Some("tools/call"), Some("a"), OLD), None);
        assert_eq!(run(same, None, None, OLD), None);
        let mixed = r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"b"}}]"#;
        let r = run(mixed, Some("tools/call"), Some("a"), OLD).unwrap();
        assert_eq!(r.status, 400);
        assert_eq!(body_of(&r)["id"], Value::Null);
        assert_eq!(run(mixed, Some("tools/call"), None, OLD), None);
        let with_response =
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":"s","result":{}}]"#;
        assert!(run(with_response, Some("ping"), None, OLD).is_some());
        // 2026-07-28 has no batches.
        let r = run(same, Some("tools/call"), Some("a"), NEW).unwrap();
        assert_eq!(body_of(&r)["error"]["code"], code::INVALID_REQUEST);
        assert_eq!(r.status, 400);
    }

    #[test]
    fn a_response_body_matches_no_method_header() {
        let resp = r#"{"jsonrpc":"2.0","id":"s","result":{}}"#;
        assert!(run(resp, Some("tools/call"), None, OLD).is_some());
        assert_eq!(run(resp, None, None, NEW), None);
    }

    #[test]
    fn protocol_version_header_against_the_body() {
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
        let headers = |v: &'static str| McpHeaders {
            method: Some("tools/list"),
            name: None,
            protocol_version: Some(v),
        };
        let parsed = parse_body(body.as_bytes()).unwrap();
        assert_eq!(check(&parsed, headers("2026-07-28")), None);
        let r = check(&parsed, headers("2027-01-01")).unwrap();
        assert_eq!(
            (r.status, body_of(&r)["error"]["code"].as_i64()),
            (400, Some(code::HEADER_MISMATCH))
        );
        // Older clients send no _meta version: nothing to compare.
        assert_eq!(
            run(
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
                Some("tools/list"),
                None,
                NEW
            ),
            None
        );
        // A non-string body version never matches.
        let odd = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":20260728}}}"#;
        assert!(check(&parse_body(odd.as_bytes()).unwrap(), headers("2026-07-28")).is_some());
    }

    #[test]
    fn session_ids() {
        assert!(is_valid_session_id("c1a48a90797c48f8b4ae35c399b9df3f"));
        assert!(is_valid_session_id("!~"));
        for bad in [
            "",
            "a b",
            "a\r\nb",
            "é",
            "a\u{0}",
            &"x".repeat(MAX_SESSION_ID + 1),
        ] {
            assert!(!is_valid_session_id(bad), "{bad:?}");
        }
        assert!(is_valid_session_id(&"x".repeat(MAX_SESSION_ID)));
    }
}
