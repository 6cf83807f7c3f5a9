//! The MCP part of an audit record: method, target, and a SHA-256 digest of the arguments,
//! never the arguments themselves (they may hold secrets or personal data). Two calls with
//! the same arguments, in any key order or spacing, have the same digest.
//!
//! Canonical form digested: JSON without whitespace, object keys sorted by their UTF-8
//! bytes (which is code point order), strings escaped as serde_json writes them, numbers as
//! serde_json writes them (so `1` and `1.0` differ, as they do for the tool). This is not
//! RFC 8785 (which sorts by UTF-16 units and reformats numbers); it only needs to be stable.

use crate::mcp::jsonrpc::Call;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Target names longer than this are cut in the record (a name is client input).
pub const MAX_TARGET_CHARS: usize = 256;

/// Nesting beyond this is digested as a marker (the parser already bounds depth at 128).
const MAX_DEPTH: usize = 160;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct McpCallAudit {
    /// The method as sent.
    pub method: String,
    /// `tool`, `resource` or `prompt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_kind: Option<&'static str>,
    /// The tool name, resource URI or prompt name (at most `MAX_TARGET_CHARS` characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Lowercase hex SHA-256 of the canonical `params.arguments`, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments_sha256: Option<String>,
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

impl McpCallAudit {
    pub fn of(call: &Call) -> McpCallAudit {
        McpCallAudit {
            method: truncate(&call.method_name, MAX_TARGET_CHARS),
            target_kind: call.target.as_ref().map(|t| t.kind()),
            target: call.target.as_ref().map(|t| truncate(t.name(), MAX_TARGET_CHARS)),
            arguments_sha256: call.params.get("arguments").map(arguments_digest),
        }
    }
}

fn canonical(v: &Value, depth: usize, out: &mut Vec<u8>) {
    if depth > MAX_DEPTH {
        out.extend_from_slice(b"\"<too deep>\"");
        return;
    }
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_unstable();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(&Value::String(k.clone()), depth, out);
                out.push(b':');
                if let Some(item) = m.get(k) {
                    canonical(item, depth + 1, out);
                }
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(item, depth + 1, out);
            }
            out.push(b']');
        }
        scalar => {
            // Scalars serialize infallibly.
            if let Ok(bytes) = serde_json::to_vec(scalar) {
                out.extend(bytes);
            }
        }
    }
}

/// Lowercase hex SHA-256 of the canonical serialization of `arguments`.
pub fn arguments_digest(arguments: &Value) -> String {
    let mut bytes = Vec::new();
    canonical(arguments, 0, &mut bytes);
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::jsonrpc::{parse_body, Body, Message};
    use serde_json::json;

    fn call(body: &str) -> Call {
        match parse_body(body.as_bytes()).unwrap() {
            Body::Single(Message::Request { call, .. }) => call,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn digest_ignores_key_order_and_spacing() {
        let a = call(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"b":[1,{"y":2,"x":1}],"a":"s"}}}"#,
        );
        let b = call(
            r#"{ "jsonrpc":"2.0", "id":2, "method":"tools/call", "params":{ "arguments": { "a" : "s", "b" : [ 1, { "x":1, "y":2 } ] }, "name":"t" } }"#,
        );
        assert_eq!(
            McpCallAudit::of(&a).arguments_sha256,
            McpCallAudit::of(&b).arguments_sha256
        );
        // The canonical text is what we expect, and its digest is SHA-256 of it.
        let mut out = Vec::new();
        canonical(&json!({"b":[1,{"y":2,"x":1}],"a":"s"}), 0, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":"s","b":[1,{"x":1,"y":2}]}"#
        );
        assert_eq!(
            arguments_digest(&json!({})),
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }

    #[test]
    fn digest_distinguishes_values() {
        let d = |v: Value| arguments_digest(&v);
        assert_ne!(d(json!({"a":1})), d(json!({"a":"1"})));
        assert_ne!(d(json!({"a":1})), d(json!({"a":1.0})));
        assert_ne!(d(json!({"a":[1,2]})), d(json!({"a":[2,1]})));
        assert_ne!(d(json!({"a":"x\"y"})), d(json!({"a\"":"y"})));
        assert_ne!(d(json!({"é":1})), d(json!({"e":1})));
    }

    #[test]
    fn record_holds_no_argument_values() {
        let c = call(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"send_mail","arguments":{"password":"hunter2"}}}"#,
        );
        let record = serde_json::to_string(&McpCallAudit::of(&c)).unwrap();
        assert!(!record.contains("hunter2"), "{record}");
        let v: Value = serde_json::from_str(&record).unwrap();
        assert_eq!(v["method"], "tools/call");
        assert_eq!(v["target_kind"], "tool");
        assert_eq!(v["target"], "send_mail");
        assert_eq!(v["arguments_sha256"].as_str().unwrap().len(), 64);
    }

    #[test]
    fn records_of_other_calls() {
        let c = call(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
        assert_eq!(
            serde_json::to_value(McpCallAudit::of(&c)).unwrap(),
            json!({"method":"tools/list"})
        );
        let c = call(r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///a"}}"#);
        assert_eq!(
            serde_json::to_value(McpCallAudit::of(&c)).unwrap(),
            json!({"method":"resources/read","target_kind":"resource","target":"file:///a"})
        );
        let long = "x".repeat(10_000);
        let c = call(&format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{{"name":"{long}","arguments":{{}}}}}}"#
        ));
        let a = McpCallAudit::of(&c);
        assert_eq!(a.target.unwrap().chars().count(), MAX_TARGET_CHARS);
        assert!(a.arguments_sha256.is_some());
    }

    #[test]
    fn deep_values_do_not_overflow() {
        let mut v = json!(1);
        for _ in 0..10_000 {
            v = Value::Array(vec![v]);
        }
        assert_eq!(arguments_digest(&v).len(), 64);
        // Dropping a deep Value recurses in serde_json: leak it in the test instead.
        std::mem::forget(v);
    }
}
