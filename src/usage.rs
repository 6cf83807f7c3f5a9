//! LLM token usage read from responses as they pass (never held back): OpenAI `usage` in
//! JSON and in the final SSE chunk, Responses API `response.completed`, Anthropic
//! `message_start` / `message_delta`.

use serde_json::Value;

/// JSON responses are parsed whole up to this size; beyond it, only the tail is searched
/// for the `usage` object (which OpenAI-style APIs put last).
pub const MAX_JSON: usize = 8 * 1024 * 1024;
const TAIL: usize = 64 * 1024;

#[derive(Debug, Default)]
pub struct UsageMeter {
    sse: bool,
    body: Vec<u8>,
    tail: Vec<u8>,
    overflow: bool,
    sse_parser: crate::sse::Parser,
    total: Option<u64>,
    input: Option<u64>,
    output: Option<u64>,
}

fn tokens(v: &Value, field: &str) -> Option<u64> {
    v.get(field).and_then(Value::as_u64)
}

/// Total tokens of a `usage` object in any of the three shapes.
pub fn usage_total(usage: &Value) -> Option<u64> {
    if let Some(t) = tokens(usage, "total_tokens") {
        return Some(t);
    }
    let parts = [
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
    ];
    let found: Vec<u64> = parts.iter().filter_map(|f| tokens(usage, f)).collect();
    (!found.is_empty()).then(|| found.iter().sum())
}

impl UsageMeter {
    pub fn new(sse: bool) -> UsageMeter {
        UsageMeter {
            sse,
            ..UsageMeter::default()
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        if self.sse {
            // The same spec-conformant parser the redactor and the tool-call guard use.
            match self.sse_parser.feed(chunk) {
                Ok(events) => events.iter().for_each(|e| self.sse_event(e)),
                // An event over the bound carries no usage we could read: start afresh so
                // the usage chunk after it still counts.
                Err(_) => self.sse_parser = crate::sse::Parser::default(),
            }
            return;
        }
        if !self.overflow && self.body.len() + chunk.len() <= MAX_JSON {
            self.body.extend_from_slice(chunk);
        } else {
            self.overflow = true;
            self.body = Vec::new();
        }
        self.tail.extend_from_slice(chunk);
        if self.tail.len() > TAIL {
            let cut = self.tail.len() - TAIL;
            self.tail.drain(..cut);
        }
    }

    /// Reads the usage of one parsed SSE event (see `crate::sse`).
    pub fn sse_event(&mut self, event: &crate::sse::Event) {
        let Some(data) = event.data() else {
            return;
        };
        let Some(v) = crate::json_text::parse_tolerant(data.as_bytes()) else {
            return;
        };
        match v.get("type").and_then(Value::as_str) {
            Some("response.completed") | Some("response.incomplete") => {
                if let Some(t) = v.pointer("/response/usage").and_then(usage_total) {
                    self.total = Some(t);
                }
            }
            Some("message_start") => {
                if let Some(u) = v.pointer("/message/usage") {
                    self.input = usage_total(&json_without(u, "output_tokens"));
                    self.output = tokens(u, "output_tokens");
                }
            }
            Some("message_delta") => {
                if let Some(o) = v.pointer("/usage/output_tokens").and_then(Value::as_u64) {
                    self.output = Some(o);
                }
            }
            _ => {
                if let Some(t) = v.get("usage").and_then(usage_total) {
                    self.total = Some(t);
                }
            }
        }
    }

    /// Tokens used, once the response is complete; None when the response carried none.
    pub fn finish(&mut self) -> Option<u64> {
        if self.sse {
            for e in self.sse_parser.finish().unwrap_or_default() {
                self.sse_event(&e);
            }
            return self.total.or(match (self.input, self.output) {
                (None, None) => None,
                (i, o) => Some(i.unwrap_or(0) + o.unwrap_or(0)),
            });
        }
        if !self.overflow {
            if let Ok(v) = serde_json::from_slice::<Value>(&self.body) {
                return v.get("usage").and_then(usage_total);
            }
            return None;
        }
        // Large body: find the last `"usage"` member in the tail and parse the object after it.
        let tail = String::from_utf8_lossy(&self.tail);
        let at = tail.rfind("\"usage\"")?;
        let rest = tail.get(at + 7..)?.trim_start().strip_prefix(':')?;
        let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
        stream.next()?.ok().as_ref().and_then(usage_total)
    }
}

fn json_without(v: &Value, field: &str) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove(field);
    }
    v
}

/// For a streaming OpenAI chat/completions request under a token limit: ask for the final
/// usage chunk so the call cannot dodge the charge. Returns true when the body changed.
pub fn require_stream_usage(obj: &mut serde_json::Map<String, Value>) -> bool {
    let wants = obj.get("stream").and_then(Value::as_bool) == Some(true);
    if !wants {
        return false;
    }
    let opts = obj
        .entry("stream_options")
        .or_insert_with(|| Value::Object(serde_json::Map::new()));
    match opts.as_object_mut() {
        Some(o) if o.get("include_usage") == Some(&Value::Bool(true)) => false,
        Some(o) => {
            o.insert("include_usage".into(), Value::Bool(true));
            true
        }
        None => {
            *opts = serde_json::json!({"include_usage": true});
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meter(sse: bool, chunks: &[&str]) -> Option<u64> {
        let mut m = UsageMeter::new(sse);
        for c in chunks {
            m.feed(c.as_bytes());
        }
        m.finish()
    }

    #[test]
    fn json_shapes() {
        let openai =
            json!({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}})
                .to_string();
        assert_eq!(meter(false, &[&openai[..10], &openai[10..]]), Some(12));
        let responses =
            json!({"output": [], "usage": {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}})
                .to_string();
        assert_eq!(meter(false, &[&responses]), Some(7));
        let anthropic = json!({"content": [], "usage": {"input_tokens": 10, "output_tokens": 20, "cache_read_input_tokens": 5}}).to_string();
        assert_eq!(meter(false, &[&anthropic]), Some(35));
        assert_eq!(meter(false, &["{\"error\": {\"message\": \"bad\"}}"]), None);
        assert_eq!(meter(false, &["not json"]), None);
    }

    #[test]
    fn huge_json_uses_the_tail() {
        let big = json!({"data": [{"embedding": vec![0.123456; 1_200_000]}], "usage": {"prompt_tokens": 8, "total_tokens": 8}}).to_string();
        assert!(big.len() > MAX_JSON);
        let chunks: Vec<&str> = big
            .as_bytes()
            .chunks(65536)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        assert_eq!(meter(false, &chunks), Some(8));
    }

    #[test]
    fn openai_stream_final_usage_chunk() {
        let c1 = format!("data: {}\n\n", json!({"choices": [{"delta": {"content": "hi"}}]}));
        let c2 = format!(
            "data: {}\n\n",
            json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})
        );
        let all = format!("{c1}{c2}data: [DONE]\n\n");
        for split in 1..all.len() {
            assert_eq!(
                meter(true, &[&all[..split], &all[split..]]),
                Some(5),
                "split {split}"
            );
        }
        assert_eq!(meter(true, &[&c1, "data: [DONE]\n\n"]), None, "no usage chunk");
        // CR framing (valid SSE, read by the SDKs) is charged too.
        let cr = all.replace("\n\n", "\r\r");
        for split in 1..cr.len() {
            assert_eq!(
                meter(true, &[&cr[..split], &cr[split..]]),
                Some(5),
                "split {split}"
            );
        }
    }

    #[test]
    fn responses_and_anthropic_streams() {
        let r = format!(
            "event: response.created\ndata: {}\n\nevent: response.completed\ndata: {}\n\n",
            json!({"type": "response.created"}),
            json!({"type": "response.completed", "response": {"usage": {"input_tokens": 4, "output_tokens": 6, "total_tokens": 10}}})
        );
        assert_eq!(meter(true, &[&r]), Some(10));
        let a = format!(
            "event: message_start\ndata: {}\n\nevent: message_delta\ndata: {}\n\nevent: message_delta\ndata: {}\n\n",
            json!({"type": "message_start", "message": {"usage": {"input_tokens": 25, "output_tokens": 1}}}),
            json!({"type": "message_delta", "usage": {"output_tokens": 10}}),
            json!({"type": "message_delta", "usage": {"output_tokens": 15}})
        );
        assert_eq!(meter(true, &[&a]), Some(40), "input + latest cumulative output");
    }

    #[test]
    fn include_usage_is_forced_on_streams() {
        let mut o = json!({"stream": true}).as_object().cloned().unwrap();
        assert!(require_stream_usage(&mut o));
        assert_eq!(o["stream_options"]["include_usage"], true);
        assert!(!require_stream_usage(&mut o), "already set");
        let mut o = json!({"stream": true, "stream_options": {"include_usage": false}})
            .as_object()
            .cloned()
            .unwrap();
        assert!(require_stream_usage(&mut o));
        assert_eq!(o["stream_options"]["include_usage"], true);
        let mut o = json!({"stream": false}).as_object().cloned().unwrap();
        assert!(!require_stream_usage(&mut o));
        let mut o = json!({"stream": true, "stream_options": 5})
            .as_object()
            .cloned()
            .unwrap();
        assert!(require_stream_usage(&mut o));
    }
}
