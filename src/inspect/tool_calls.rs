//! Tool calls in responses: the model may try to call a tool the caller was not granted
//! (e.g. one declared by an MCP server or injected into the prompt). JSON responses are
//! checked whole; SSE streams event by event, holding back only an incomplete event, so a
//! tool name split across chunks is still seen before anything of it is forwarded.

use crate::authz::llm_request::Endpoint;
use serde::Deserialize;
use serde_json::{json, Value};

/// `response_tool_calls.on_forbidden`: what replaces a response calling a tool the caller
/// was not granted.
#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForbiddenToolCall {
    /// Replace the response (or the rest of the stream) with an API error.
    #[default]
    Error,
    /// Replace it with a normal assistant message saying the tool call was blocked.
    Refusal,
}

/// Tool names a response (or one stream event) asks to call.
pub fn tool_names(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |n: Option<&str>| {
        if let Some(n) = n {
            out.push(n.to_string());
        }
    };
    // OpenAI chat: choices[].message|delta .tool_calls[].function.name (custom tools:
    // .custom.name) / .function_call.name
    if let Some(choices) = v.get("choices").and_then(Value::as_array) {
        for c in choices {
            for part in ["message", "delta"] {
                let Some(m) = c.get(part) else { continue };
                if let Some(calls) = m.get("tool_calls").and_then(Value::as_array) {
                    for call in calls {
                        push(call.pointer("/function/name").and_then(Value::as_str));
                        push(call.pointer("/custom/name").and_then(Value::as_str));
                    }
                }
                push(m.pointer("/function_call/name").and_then(Value::as_str));
            }
        }
    }
    // Responses API: output[] items (whole response), or one item in stream events.
    let mut items: Vec<&Value> = Vec::new();
    if let Some(output) = v.get("output").and_then(Value::as_array) {
        items.extend(output);
    }
    if let Some(output) = v.pointer("/response/output").and_then(Value::as_array) {
        items.extend(output);
    }
    if let Some(item) = v.get("item") {
        items.push(item);
    }
    for item in items {
        match item.get("type").and_then(Value::as_str) {
            Some("function_call") | Some("custom_tool_call") => {
                push(item.get("name").and_then(Value::as_str))
            }
            Some("mcp_call") => {
                let label = item.get("server_label").and_then(Value::as_str).unwrap_or("");
                push(Some(&format!("mcp:{label}")));
            }
            _ => {}
        }
    }
    // Anthropic: content[] blocks, or content_block in stream events.
    let mut blocks: Vec<&Value> = Vec::new();
    if let Some(content) = v.get("content").and_then(Value::as_array) {
        blocks.extend(content);
    }
    if let Some(block) = v.get("content_block") {
        blocks.push(block);
    }
    for b in blocks {
        match b.get("type").and_then(Value::as_str) {
            Some("tool_use") | Some("server_tool_use") => push(b.get("name").and_then(Value::as_str)),
            // MCP connector: granted per server, like OpenAI's mcp_call.
            Some("mcp_tool_use") => {
                let server = b.get("server_name").and_then(Value::as_str).unwrap_or("");
                push(Some(&format!("mcp:{server}")));
            }
            _ => {}
        }
    }
    out
}

fn blocked_message(tool: &str) -> String {
    let short: String = tool.chars().take(64).collect();
    format!("The model tried to call the tool {short:?}, which your token does not permit; the response was blocked.")
}

/// Outcome of checking a whole JSON response.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonVerdict {
    Pass,
    /// Replace status and body.
    Replace {
        status: u16,
        body: Vec<u8>,
        tool: String,
    },
}

pub fn check_json(
    body: &[u8],
    endpoint: Endpoint,
    allowed: &dyn Fn(&str) -> bool,
    mode: ForbiddenToolCall,
) -> JsonVerdict {
    // NaN / Infinity (vLLM logprobs) are read as Python's json reads them; a body no JSON
    // parser accepts (an error page) carries no tool call.
    let Some(v) = crate::inspect::json_text::parse_tolerant(body) else {
        return JsonVerdict::Pass;
    };
    let names = tool_names(&v).into_iter().chain(ollama_tool_names(&v));
    let Some(tool) = names.into_iter().find(|t| !allowed(t)) else {
        return JsonVerdict::Pass;
    };
    let message = blocked_message(&tool);
    let (status, out) = match mode {
        ForbiddenToolCall::Error => (403, error_body(endpoint, &message)),
        ForbiddenToolCall::Refusal => (200, refusal_body(endpoint, &v, &message)),
    };
    JsonVerdict::Replace {
        status,
        body: serde_json::to_vec(&out).unwrap_or_default(),
        tool,
    }
}

fn error_body(endpoint: Endpoint, message: &str) -> Value {
    match endpoint {
        Endpoint::Messages => {
            json!({"type": "error", "error": {"type": "permission_error", "message": message}})
        }
        _ => {
            json!({"error": {"message": message, "type": "permission_error", "param": null, "code": "tool_not_permitted"}})
        }
    }
}

/// A normal, successful response in the API's own shape that says the call was blocked.
fn refusal_body(endpoint: Endpoint, original: &Value, message: &str) -> Value {
    let mut v = original.clone();
    // Only objects are edited: `v[key] = ..` would panic on any other JSON value.
    let Some(obj) = v.as_object_mut() else {
        return error_body(endpoint, message);
    };
    match endpoint {
        Endpoint::Messages => {
            obj.insert("content".into(), json!([{"type": "text", "text": message}]));
            obj.insert("stop_reason".into(), json!("end_turn"));
        }
        Endpoint::Responses => {
            obj.insert(
                "output".into(),
                json!([{"type": "message", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": message, "annotations": []}]}]),
            );
        }
        _ => {
            if let Some(choices) = obj.get_mut("choices").and_then(Value::as_array_mut) {
                for c in choices.iter_mut().filter_map(Value::as_object_mut) {
                    c.insert("message".into(), json!({"role": "assistant", "content": message}));
                    c.insert("finish_reason".into(), json!("stop"));
                }
            }
        }
    }
    v
}

/// Events larger than this cannot be inspected: blocked (fail closed).
pub const MAX_PENDING_EVENT: usize = crate::inspect::sse::MAX_EVENT;

/// Inspects an SSE stream chunk by chunk.
#[derive(Debug)]
pub struct SseToolGuard {
    endpoint: Endpoint,
    mode: ForbiddenToolCall,
    parser: crate::inspect::sse::Parser,
    blocked: Option<String>,
    /// id/model of the stream, for a well-formed refusal chunk.
    chat_id: Option<String>,
    chat_model: Option<String>,
}

impl SseToolGuard {
    pub fn new(endpoint: Endpoint, mode: ForbiddenToolCall) -> SseToolGuard {
        SseToolGuard {
            endpoint,
            mode,
            parser: crate::inspect::sse::Parser::default(),
            blocked: None,
            chat_id: None,
            chat_model: None,
        }
    }

    /// The forbidden tool, once the stream was blocked.
    pub fn blocked(&self) -> Option<&str> {
        self.blocked.as_deref()
    }

    /// Takes the next chunk; returns what to forward now, in the canonical SSE framing
    /// (`crate::inspect::sse`), so the client parses exactly the events inspected. After a block,
    /// the rest of the upstream stream is dropped.
    pub fn feed(&mut self, chunk: &[u8], end_of_stream: bool, allowed: &dyn Fn(&str) -> bool) -> Vec<u8> {
        let mut out = Vec::new();
        if self.blocked.is_some() {
            return out;
        }
        let mut events = self.parser.feed(chunk);
        if end_of_stream {
            if let Ok(e) = &mut events {
                match self.parser.finish() {
                    Ok(rest) => e.extend(rest),
                    Err(o) => events = Err(o),
                }
            }
        }
        let Ok(events) = events else {
            // An event too large to hold cannot be inspected: blocked (fail closed).
            let tool = "(uninspectable event)".to_string();
            out.extend_from_slice(&self.replacement(&tool));
            self.blocked = Some(tool);
            return out;
        };
        for e in events {
            let e = crate::inspect::sse::Inspected::new(e);
            if let Some(tool) = self.forbidden_in(&e, allowed) {
                out.extend_from_slice(&self.replacement(&tool));
                self.blocked = Some(tool);
                return out;
            }
            e.event.write_to(&mut out);
        }
        out
    }

    /// Checks one parsed event: the forbidden tool it calls, if any (the stream is then
    /// blocked; send `replacement_events` instead of it and drop the rest).
    pub fn check_event(
        &mut self,
        e: &crate::inspect::sse::Inspected,
        allowed: &dyn Fn(&str) -> bool,
    ) -> Option<String> {
        if self.blocked.is_some() {
            return self.blocked.clone();
        }
        let tool = self.forbidden_in(e, allowed)?;
        self.blocked = Some(tool.clone());
        Some(tool)
    }

    /// Marks the stream blocked because it could not be inspected.
    pub fn block_uninspectable(&mut self) -> String {
        let tool = "(uninspectable event)".to_string();
        self.blocked = Some(tool.clone());
        tool
    }

    /// The events that replace the rest of a blocked stream.
    pub fn replacement_events(&self, tool: &str) -> Vec<crate::inspect::sse::Event> {
        let mut p = crate::inspect::sse::Parser::default();
        let mut events = p.feed(&self.replacement(tool)).unwrap_or_default();
        events.extend(p.finish().unwrap_or_default());
        events
    }

    fn forbidden_in(
        &mut self,
        event: &crate::inspect::sse::Inspected,
        allowed: &dyn Fn(&str) -> bool,
    ) -> Option<String> {
        // Python's json (the openai SDK) reads NaN / Infinity: so does `Inspected`. Data
        // that is not JSON cannot be read as a tool call by a client either.
        let v = event.json.as_ref()?;
        if self.chat_id.is_none() {
            self.chat_id = v.get("id").and_then(Value::as_str).map(str::to_string);
            self.chat_model = v.get("model").and_then(Value::as_str).map(str::to_string);
        }
        tool_names(v).into_iter().find(|t| !allowed(t))
    }

    fn replacement(&self, tool: &str) -> Vec<u8> {
        let message = blocked_message(tool);
        let text = match (self.mode, self.endpoint) {
            (ForbiddenToolCall::Refusal, Endpoint::ChatCompletions | Endpoint::Completions) => {
                let chunk = json!({"id": self.chat_id.as_deref().unwrap_or("chatcmpl-blocked"),
                    "object": "chat.completion.chunk", "created": 0,
                    "model": self.chat_model.as_deref().unwrap_or(""),
                    "choices": [{"index": 0, "delta": {"role": "assistant", "content": message}, "finish_reason": "stop"}]});
                format!("data: {chunk}\n\ndata: [DONE]\n\n")
            }
            (_, Endpoint::Messages) => format!(
                "event: error\ndata: {}\n\n",
                json!({"type": "error", "error": {"type": "permission_error", "message": message}})
            ),
            (_, Endpoint::Responses) => format!(
                "event: error\ndata: {}\n\n",
                json!({"type": "error", "code": "tool_not_permitted", "message": message, "param": null})
            ),
            _ => format!(
                "data: {}\n\ndata: [DONE]\n\n",
                error_body(self.endpoint, &message)
            ),
        };
        text.into_bytes()
    }
}

/// Tool names of an Ollama chat message (streamed line or whole response).
pub fn ollama_tool_names(v: &Value) -> Vec<String> {
    v.pointer("/message/tool_calls")
        .and_then(Value::as_array)
        .map(|calls| {
            calls
                .iter()
                .filter_map(|c| c.pointer("/function/name").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only_search(t: &str) -> bool {
        t.starts_with("search")
    }

    fn chat_chunk(delta: Value) -> String {
        format!(
            "data: {}\n\n",
            json!({"id": "c1", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": null}]})
        )
    }

    #[test]
    fn json_chat_tool_calls() {
        let ok = json!({"choices": [{"message": {"role": "assistant", "tool_calls": [
            {"id": "1", "type": "function", "function": {"name": "search_web", "arguments": "{}"}}]}}]});
        assert_eq!(
            check_json(
                ok.to_string().as_bytes(),
                Endpoint::ChatCompletions,
                &only_search,
                ForbiddenToolCall::Error
            ),
            JsonVerdict::Pass
        );
        let bad = json!({"choices": [{"message": {"role": "assistant", "tool_calls": [
            {"id": "1", "type": "function", "function": {"name": "delete_db", "arguments": "{}"}}]}, "finish_reason": "tool_calls"}]});
        match check_json(
            bad.to_string().as_bytes(),
            Endpoint::ChatCompletions,
            &only_search,
            ForbiddenToolCall::Error,
        ) {
            JsonVerdict::Replace { status, body, tool } => {
                assert_eq!((status, tool.as_str()), (403, "delete_db"));
                let v: Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(v["error"]["code"], "tool_not_permitted");
            }
            other => panic!("{other:?}"),
        }
        match check_json(
            bad.to_string().as_bytes(),
            Endpoint::ChatCompletions,
            &only_search,
            ForbiddenToolCall::Refusal,
        ) {
            JsonVerdict::Replace { status, body, .. } => {
                assert_eq!(status, 200);
                let v: Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(v["choices"][0]["finish_reason"], "stop");
                assert!(v["choices"][0]["message"].get("tool_calls").is_none());
                assert!(v["choices"][0]["message"]["content"]
                    .as_str()
                    .unwrap()
                    .contains("delete_db"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn json_responses_and_anthropic_shapes() {
        let responses = json!({"output": [{"type": "function_call", "name": "exec", "arguments": "{}"}]});
        assert_eq!(tool_names(&responses), vec!["exec"]);
        let mcp = json!({"output": [{"type": "mcp_call", "server_label": "github", "name": "x"}]});
        assert_eq!(tool_names(&mcp), vec!["mcp:github"]);
        let anthropic = json!({"content": [{"type": "text", "text": "hi"}, {"type": "tool_use", "id": "t", "name": "exec", "input": {}}]});
        assert_eq!(tool_names(&anthropic), vec!["exec"]);
        match check_json(
            anthropic.to_string().as_bytes(),
            Endpoint::Messages,
            &only_search,
            ForbiddenToolCall::Error,
        ) {
            JsonVerdict::Replace { body, .. } => {
                let v: Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(v["error"]["type"], "permission_error");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            check_json(
                b"<html>oops</html>",
                Endpoint::ChatCompletions,
                &only_search,
                ForbiddenToolCall::Error
            ),
            JsonVerdict::Pass
        );
    }

    #[test]
    fn calls_carry_the_names_their_declarations_are_granted_by() {
        // Chat custom tools are called through `custom`, not `function`.
        let custom = json!({"choices": [{"message": {"role": "assistant", "tool_calls": [
            {"id": "1", "type": "custom", "custom": {"name": "delete_db", "input": "x"}}]}}]});
        assert_eq!(tool_names(&custom), vec!["delete_db"]);
        let delta = json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "type": "custom", "custom": {"name": "rm"}}]}}]});
        assert_eq!(tool_names(&delta), vec!["rm"]);
        // Responses custom tool calls, by name.
        let custom = json!({"output": [{"type": "custom_tool_call", "name": "grammar", "input": "x"}]});
        assert_eq!(tool_names(&custom), vec!["grammar"]);
        // Anthropic MCP connector calls name their server: `mcp:<name>` as declared.
        let mcp = json!({"content": [{"type": "mcp_tool_use", "id": "m", "name": "echo", "server_name": "example-mcp", "input": {}}]});
        assert_eq!(tool_names(&mcp), vec!["mcp:example-mcp"]);
        let ev = json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "mcp_tool_use", "name": "drop", "server_name": "evil"}});
        assert_eq!(tool_names(&ev), vec!["mcp:evil"]);
        // Anthropic server tools are called by their fixed name.
        let st = json!({"content": [{"type": "server_tool_use", "id": "s", "name": "web_search", "input": {"query": "q"}}]});
        assert_eq!(tool_names(&st), vec!["web_search"]);
        match check_json(
            mcp.to_string().as_bytes(),
            Endpoint::Messages,
            &only_search,
            ForbiddenToolCall::Error,
        ) {
            JsonVerdict::Replace { tool, .. } => assert_eq!(tool, "mcp:example-mcp"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sse_passes_content_and_allowed_tools() {
        let mut g = SseToolGuard::new(Endpoint::ChatCompletions, ForbiddenToolCall::Error);
        let stream = [
            chat_chunk(json!({"role": "assistant", "content": "Hel"})),
            chat_chunk(json!({"content": "lo"})),
            chat_chunk(json!({"tool_calls": [{"index": 0, "id": "t", "function": {"name": "search_web", "arguments": ""}}]})),
            chat_chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"q\":1}"}}]})),
            "data: [DONE]\n\n".to_string(),
        ]
        .concat();
        let out = g.feed(stream.as_bytes(), true, &only_search);
        assert_eq!(String::from_utf8(out).unwrap(), stream);
        assert!(g.blocked().is_none());
    }

    #[test]
    fn sse_blocks_forbidden_tool_whatever_the_chunking() {
        let before = chat_chunk(json!({"role": "assistant", "content": "ok"}));
        let forbidden = chat_chunk(
            json!({"tool_calls": [{"index": 0, "id": "t", "function": {"name": "delete_db", "arguments": ""}}]}),
        );
        let after = chat_chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"table\":\"users\"}"}}]}),
        );
        let stream = format!("{before}{forbidden}{after}data: [DONE]\n\n");
        for split in 1..stream.len() {
            let mut g = SseToolGuard::new(Endpoint::ChatCompletions, ForbiddenToolCall::Error);
            let (a, b) = stream.as_bytes().split_at(split);
            let mut out = g.feed(a, false, &only_search);
            out.extend(g.feed(b, true, &only_search));
            let text = String::from_utf8(out).unwrap();
            assert!(
                !text.contains("delete_db\",\"arguments"),
                "split {split}: forbidden delta leaked"
            );
            assert!(!text.contains("users"), "split {split}: arguments leaked");
            assert!(text.starts_with(&before), "split {split}");
            assert!(
                text.contains("tool_not_permitted") && text.ends_with("data: [DONE]\n\n"),
                "split {split}: {text}"
            );
            assert_eq!(g.blocked(), Some("delete_db"));
        }
    }

    #[test]
    fn sse_refusal_mode_ends_chat_stream_normally() {
        let mut g = SseToolGuard::new(Endpoint::ChatCompletions, ForbiddenToolCall::Refusal);
        let forbidden =
            chat_chunk(json!({"tool_calls": [{"index": 0, "function": {"name": "rm", "arguments": ""}}]}));
        let text = String::from_utf8(g.feed(forbidden.as_bytes(), false, &only_search)).unwrap();
        let first = text.split("\n\n").next().unwrap().strip_prefix("data: ").unwrap();
        let v: Value = serde_json::from_str(first).unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(v["id"], "c1");
        assert!(text.ends_with("data: [DONE]\n\n"));
        assert!(
            g.feed(b"data: more\n\n", true, &only_search).is_empty(),
            "rest of stream dropped"
        );
    }

    #[test]
    fn sse_responses_and_anthropic_events() {
        let mut g = SseToolGuard::new(Endpoint::Responses, ForbiddenToolCall::Error);
        let ev = format!(
            "event: response.output_item.added\ndata: {}\n\n",
            json!({"type": "response.output_item.added", "item": {"type": "function_call", "name": "exec"}})
        );
        let out = String::from_utf8(g.feed(ev.as_bytes(), false, &only_search)).unwrap();
        assert!(out.starts_with("event: error\n") && out.contains("tool_not_permitted"));
        let mut g = SseToolGuard::new(Endpoint::Messages, ForbiddenToolCall::Error);
        let ev = format!(
            "event: content_block_start\r\ndata: {}\r\n\r\n",
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "name": "exec", "input": {}}})
        );
        let out = String::from_utf8(g.feed(ev.as_bytes(), false, &only_search)).unwrap();
        assert!(out.contains("permission_error"), "{out}");
        assert_eq!(g.blocked(), Some("exec"));
    }

    #[test]
    fn nonstandard_numbers_and_ollama_shape_are_inspected() {
        let body = br#"{"choices":[{"message":{"tool_calls":[{"function":{"name":"delete_db","arguments":"{}"}}]},"logprobs":{"content":[{"logprob":-Infinity}]}}]}"#;
        assert!(matches!(
            check_json(
                body,
                Endpoint::ChatCompletions,
                &only_search,
                ForbiddenToolCall::Error
            ),
            JsonVerdict::Replace { .. }
        ));
        let ollama = json!({"model": "llama3", "message": {"role": "assistant", "tool_calls": [{"function": {"name": "rm", "arguments": {}}}]}, "done": true});
        match check_json(
            ollama.to_string().as_bytes(),
            Endpoint::Other,
            &only_search,
            ForbiddenToolCall::Error,
        ) {
            JsonVerdict::Replace { tool, .. } => assert_eq!(tool, "rm"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sse_guard_reads_every_framing() {
        for sep in ["\n\n", "\r\r", "\r\n\r\n", "\n\r\n"] {
            let stream = format!(
                "data: {}{sep}data: {}{sep}",
                json!({"choices": [{"delta": {"content": "hi"}}]}),
                json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"name": "delete_db", "arguments": "{\"t\":\"users\"}"}}]}}]})
            );
            for split in 0..=stream.len() {
                let mut g = SseToolGuard::new(Endpoint::ChatCompletions, ForbiddenToolCall::Error);
                let (a, b) = stream.as_bytes().split_at(split);
                let mut out = g.feed(a, false, &only_search);
                out.extend(g.feed(b, true, &only_search));
                let text = String::from_utf8(out).unwrap();
                assert_eq!(g.blocked(), Some("delete_db"), "{sep:?} split {split}");
                assert!(
                    !text.contains("users") && !text.contains('\r'),
                    "{sep:?} split {split}: {text}"
                );
            }
        }
    }

    #[test]
    fn odd_json_shapes_never_panic() {
        for body in [
            &b"[1,2]"[..],
            b"\"str\"",
            b"{\"choices\": [1, \"x\", {\"message\": 5}]}",
            b"{\"content\": \"x\"}",
        ] {
            for ep in [Endpoint::ChatCompletions, Endpoint::Messages, Endpoint::Responses] {
                for mode in [ForbiddenToolCall::Error, ForbiddenToolCall::Refusal] {
                    let _ = check_json(body, ep, &|_| false, mode);
                }
            }
        }
        let weird = json!({"choices": [{"message": {"tool_calls": [{"function": {"name": "x"}}]}}, 7]});
        for ep in [Endpoint::ChatCompletions, Endpoint::Messages, Endpoint::Responses] {
            assert!(matches!(
                check_json(
                    weird.to_string().as_bytes(),
                    ep,
                    &|_| false,
                    ForbiddenToolCall::Refusal
                ),
                JsonVerdict::Replace { .. }
            ));
        }
    }

    #[test]
    fn oversized_event_fails_closed() {
        let mut g = SseToolGuard::new(Endpoint::ChatCompletions, ForbiddenToolCall::Error);
        let big = vec![b'x'; MAX_PENDING_EVENT + 10];
        let out = g.feed(&big, false, &only_search);
        assert!(String::from_utf8(out).unwrap().contains("tool_not_permitted"));
        assert!(g.blocked().is_some());
    }
}
