//! MCP (Model Context Protocol) core: host-free pieces the pipeline calls for an MCP route.
//! Nothing here knows Envoy; every function takes bytes or parsed values and never panics.
//!
//! Which specification revision each rule follows (modelcontextprotocol.io/specification):
//! - `jsonrpc`: messages per 2025-11-25 `basic/index` (request ids are strings or integers,
//!   never null; params are objects); batches per JSON-RPC 2.0 and MCP 2025-03-26 (2025-06-18
//!   removed them; we parse them so a batch is authorized call by call, never forwarded
//!   unread). HTTP statuses per 2025-11-25 `basic/transports` (Streamable HTTP), except
//!   `Method not found` as 404 and header mismatch as 400 / -32020, which are 2026-07-28.
//! - `grants`: our own policy model (the specification leaves authorization of individual
//!   tools to the server); targets are `params.name` / `params.uri` per 2025-11-25
//!   `server/tools`, `server/resources`, `server/prompts`, `server/utilities/completion`.
//! - `lists`: result shapes of `tools/list`, `resources/list`, `resources/templates/list`,
//!   `prompts/list` and cursors per 2025-11-25 (`server/*`, `server/utilities/pagination`).
//! - `headers`: `Mcp-Method` / `Mcp-Name`, the Base64 sentinel and `MCP-Protocol-Version`
//!   versus `_meta` per 2026-07-28 `basic/transports/streamable-http` ("Request Metadata",
//!   "Server Validation"); `Mcp-Session-Id` syntax per 2025-11-25 `basic/transports`.
//! - `metadata`: RFC 9728 protected-resource metadata and RFC 6750 challenges, as 2025-11-25
//!   `basic/authorization` requires of an MCP server.
//! - `audit`: ours (a digest of the arguments, never the arguments).
//!
//! The order the pipeline calls them in, for a POST to an MCP route (after authentication
//! and the session-level decision: this caller may use this route at all):
//! 1. `jsonrpc::parse_body(body)`; Err → `Refusal::single(&err, &Value::Null, false, rev)`.
//! 2. `headers::check(&body, McpHeaders { .. })`; Some(refusal) → send it (400).
//! 3. `jsonrpc::verdict(&body, rev, |call| grants.allows(call, server).map_err(|d| d.to_rpc_error()))`;
//!    Some(refusal) → send it, nothing is forwarded; audit each call (`audit::McpCallAudit::of`).
//! 4. Forward; keep `lists::PendingLists::of(&body)` for the answer, and filter it with
//!    `lists::filter_json` or `lists::SseListFilter`, keeping what `grants.shows` allows.
//!
//! `metadata::ProtectedResource` answers the well-known path and gives the
//! `WWW-Authenticate` values of the 401 / 403 the pipeline sends before step 1.

pub mod audit;
pub mod grants;
pub mod headers;
pub mod jsonrpc;
pub mod lists;
pub mod metadata;

#[cfg(test)]
mod flow_tests {
    //! The four steps together, as the pipeline will run them.
    use super::audit::McpCallAudit;
    use super::grants::McpGrantsConfig;
    use super::headers::{self, McpHeaders};
    use super::jsonrpc::{self, Body, Message, Revision};
    use super::lists::{self, Filtered, PendingLists};
    use serde_json::{json, Value};

    fn grants() -> super::grants::McpGrants {
        let c: McpGrantsConfig = serde_json::from_value(json!({
            "tools": [{"name": "get_weather", "arguments": [{"pointer": "/city", "in": ["Paris", "Rome"]}]}]
        }))
        .unwrap();
        c.compile("rules[0].mcp").unwrap()
    }

    /// Steps 1-3: None to forward, else (status, answer).
    fn request(body: &str, headers: McpHeaders) -> Option<(u16, Value)> {
        let rev = Revision::from_header(headers.protocol_version);
        let g = grants();
        let parsed = match jsonrpc::parse_body(body.as_bytes()) {
            Ok(b) => b,
            Err(e) => {
                let r = jsonrpc::Refusal::single(&e, &Value::Null, false, rev);
                return Some((r.status, serde_json::from_slice(&r.body).unwrap()));
            }
        };
        if let Some(r) = headers::check(&parsed, headers) {
            return Some((r.status, serde_json::from_slice(&r.body).unwrap()));
        }
        let r = jsonrpc::verdict(&parsed, rev, |call| {
            let decision = g.allows(call, None);
            let record = McpCallAudit::of(call);
            assert!(!serde_json::to_string(&record).unwrap().contains("Paris"));
            decision.map_err(|d| d.to_rpc_error())
        })?;
        Some((r.status, serde_json::from_slice(&r.body).unwrap()))
    }

    #[test]
    fn allowed_denied_and_malformed_calls() {
        let none = McpHeaders::default();
        let call = |id: u32, city: &str| {
            json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"get_weather","arguments":{"city":city}}}).to_string()
        };
        assert_eq!(request(&call(1, "Paris"), none), None);
        let (status, answer) = request(&call(2, "Berlin"), none).unwrap();
        assert_eq!(status, 200);
        assert_eq!(answer["id"], 2);
        assert_eq!(
            answer["error"]["data"],
            json!({"reason":"argument_not_permitted","pointer":"/city"})
        );
        let (status, answer) = request(
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"rm"}}"#,
            none,
        )
        .unwrap();
        assert_eq!(
            (status, answer["error"]["data"]["reason"].as_str()),
            (200, Some("tool_not_permitted"))
        );
        let (status, answer) = request("{oops", none).unwrap();
        assert_eq!((status, answer["error"]["code"].as_i64()), (400, Some(-32700)));
        // Headers naming an allowed tool over a body calling another: refused before grants.
        let lying = McpHeaders {
            method: Some("tools/call"),
            name: Some("get_weather"),
            protocol_version: None,
        };
        let (status, answer) = request(
            r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"rm"}}"#,
            lying,
        )
        .unwrap();
        assert_eq!(
            (status, answer["error"]["code"].as_i64(), answer["id"].as_i64()),
            (400, Some(-32020), Some(4))
        );
        // Session-level methods pass with no grant at all.
        assert_eq!(
            request(r#"{"jsonrpc":"2.0","id":5,"method":"tools/list"}"#, none),
            None
        );
        assert_eq!(
            request(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, none),
            None
        );
    }

    #[test]
    fn batch_mixing_allowed_and_denied() {
        let body = format!(
            "[{},{}]",
            json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_weather","arguments":{"city":"Rome"}}}),
            json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_weather","arguments":{"city":"Oslo"}}})
        );
        let (status, answer) = request(&body, McpHeaders::default()).unwrap();
        assert_eq!(status, 200);
        assert_eq!(answer[0]["error"]["data"]["reason"], "batch_refused");
        assert_eq!(answer[1]["error"]["data"]["reason"], "argument_not_permitted");
    }

    #[test]
    fn list_answers_show_only_granted_tools() {
        let g = grants();
        let Ok(body @ Body::Single(Message::Request { .. })) = jsonrpc::parse_body(
            br#"{"jsonrpc":"2.0","id":"l","method":"tools/list","params":{"cursor":"c1"}}"#,
        ) else {
            panic!()
        };
        let pending = PendingLists::of(&body);
        let answer = br#"{"jsonrpc":"2.0","id":"l","result":{"tools":[{"name":"get_weather"},{"name":"rm"}],"nextCursor":"c2"}}"#;
        let Filtered::Rewritten(out) = lists::filter_json(answer, &pending, &mut |t| g.shows(t, None)) else {
            panic!()
        };
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v["result"],
            json!({"tools":[{"name":"get_weather"}],"nextCursor":"c2"})
        );
        let mut sse = lists::SseListFilter::new(pending);
        let mut out = sse
            .feed(b"event: message\ndata: ", &mut |t| g.shows(t, None))
            .unwrap();
        out.extend(sse.feed(&answer[..], &mut |t| g.shows(t, None)).unwrap());
        out.extend(sse.finish(&mut |t| g.shows(t, None)).unwrap());
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("event: message\ndata: {") && !text.contains("\"rm\""),
            "{text}"
        );
    }
}
