//! LLM token usage read from responses as they pass (never held back): OpenAI `usage` in
//! JSON and in the final SSE chunk, Responses API `response.completed`, Anthropic
//! `message_start` / `message_delta`, Ollama `prompt_eval_count` / `eval_count`.
//!
//! Also the token estimates that stand in for usage where none is reported yet: the
//! reservation a call takes before it goes upstream ([`TokenEstimate`]) and the charge for a
//! response that ended without usage ([`UsageMeter::charge`]).

use crate::authz::llm_request::Endpoint;
use serde_json::{Map, Value};

/// JSON responses are parsed whole up to this size; beyond it, only the tail is searched
/// for the `usage` object (which OpenAI-style APIs put last).
pub const MAX_JSON: usize = 8 * 1024 * 1024;
const TAIL: usize = 64 * 1024;

/// Output cap reserved for a call that names none (`max_tokens` absent), unless configured
/// (`rate_limiting.default_max_tokens`).
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Token estimate of text, without a tokenizer: one token per 4 ASCII bytes (rounded up),
/// plus one per non-ASCII character. English BPE tokens average about 4 characters, and CJK
/// characters are about one token each, where bytes / 4 would count only 0.75. Counted on
/// raw bytes (a UTF-8 lead byte is one character), so it never fails and needs no decoding.
pub fn text_tokens(bytes: &[u8]) -> u64 {
    let mut ascii: u64 = 0;
    let mut wide: u64 = 0;
    for &b in bytes {
        if b < 0x80 {
            ascii += 1;
        } else if b >= 0xC0 {
            wide += 1;
        }
    }
    ascii.div_ceil(4).saturating_add(wide)
}

/// What a call may consume, estimated before it goes upstream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenEstimate {
    /// The prompt: [`text_tokens`] of the whole request body (JSON keys, tool schemas and
    /// punctuation included: an over-estimate for most prompts, refunded at settlement).
    pub prompt: u64,
    /// Output tokens per choice: the request's `max_tokens` (or `max_completion_tokens`,
    /// `max_output_tokens`, Ollama's `options.num_predict`), else the configured default.
    pub output_cap: u64,
    /// Choices generated: the larger of `n` and `best_of` (1 when absent).
    pub choices: u64,
    /// Whether `output_cap` is the request's own (the upstream cannot exceed it) rather than
    /// the default (which it may).
    pub cap_requested: bool,
}

impl TokenEstimate {
    /// The estimate for a request whose body was read. `max_tokens` is
    /// `BodyFacts::max_tokens`; `default_cap` applies when the request names no cap.
    /// Embeddings produce no output tokens.
    pub fn of_request(
        endpoint: Endpoint,
        body: &[u8],
        obj: &Map<String, Value>,
        max_tokens: Option<u64>,
        default_cap: u64,
    ) -> TokenEstimate {
        let requested = max_tokens.or_else(|| {
            obj.get("options")
                .and_then(|o| o.get("num_predict"))
                .and_then(Value::as_u64)
        });
        let (output_cap, cap_requested) = match (endpoint, requested) {
            (Endpoint::Embeddings, _) => (0, true),
            (_, Some(n)) => (n, true),
            (_, None) => (default_cap, false),
        };
        TokenEstimate {
            prompt: text_tokens(body),
            output_cap,
            choices: choices(obj),
            cap_requested,
        }
    }

    /// A flat estimate (no output part, no known cap), e.g. for a caller that computed its
    /// own figure.
    pub fn flat(tokens: u64) -> TokenEstimate {
        TokenEstimate {
            prompt: tokens,
            output_cap: 0,
            choices: 1,
            cap_requested: false,
        }
    }

    /// The most output the upstream may produce: the cap times the choices.
    pub fn output_max(&self) -> u64 {
        self.output_cap.saturating_mul(self.choices.max(1))
    }

    /// Tokens to reserve before the call: prompt + output cap × choices.
    pub fn reservation(&self) -> u64 {
        self.prompt.saturating_add(self.output_max())
    }

    /// What a response consumed, given what the meter saw. Reported usage wins. Without it:
    /// a complete reply that carried no output (an error, Envoy's own 429) is charged
    /// nothing; anything else is charged the prompt estimate plus the output that passed
    /// (capped at the request's own output cap), so never less than the prompt.
    pub fn charge(&self, reported: Option<u64>, output_estimate: u64, complete: bool) -> Charge {
        if let Some(tokens) = reported {
            return Charge {
                tokens,
                basis: ChargeBasis::Reported,
            };
        }
        if complete && output_estimate == 0 {
            return Charge {
                tokens: 0,
                basis: ChargeBasis::Nothing,
            };
        }
        let output = if self.cap_requested {
            output_estimate.min(self.output_max())
        } else {
            output_estimate
        };
        Charge {
            tokens: self.prompt.saturating_add(output),
            basis: ChargeBasis::Estimated,
        }
    }
}

/// The larger of `n` and `best_of` (OpenAI chat/completions/legacy completions; vLLM), at
/// least 1. Values that are not positive integers count as 1: the upstream refuses them.
pub fn choices(obj: &Map<String, Value>) -> u64 {
    ["n", "best_of"]
        .iter()
        .filter_map(|k| obj.get(*k).and_then(Value::as_u64))
        .max()
        .unwrap_or(1)
        .max(1)
}

/// Where a charge comes from, for metrics and the audit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeBasis {
    /// The upstream's own usage figure.
    Reported,
    /// No usage: prompt estimate + the output that passed.
    Estimated,
    /// The response could not be metered (compressed, not JSON): the whole reservation.
    Reserved,
    /// A complete reply without usage or output (an error): nothing.
    Nothing,
}

impl ChargeBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            ChargeBasis::Reported => "reported",
            ChargeBasis::Estimated => "estimated",
            ChargeBasis::Reserved => "reserved",
            ChargeBasis::Nothing => "nothing",
        }
    }
}

/// The tokens a call is charged when its response ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charge {
    pub tokens: u64,
    pub basis: ChargeBasis,
}

impl Charge {
    /// For a response the filter could not meter: the reservation stays charged.
    pub fn unmetered(estimate: &TokenEstimate) -> Charge {
        Charge {
            tokens: estimate.reservation(),
            basis: ChargeBasis::Reserved,
        }
    }
}

#[derive(Debug, Default)]
pub struct UsageMeter {
    sse: bool,
    body: Vec<u8>,
    tail: Vec<u8>,
    overflow: bool,
    /// Bytes fed in all (for the estimate of a body too large to keep).
    seen: u64,
    sse_parser: crate::inspect::sse::Parser,
    total: Option<u64>,
    input: Option<u64>,
    output: Option<u64>,
    /// Estimated output tokens of the content that passed (parsed events or body).
    streamed: u64,
    /// Estimated tokens of what passed but could not be parsed: counts only when the
    /// response was cut (a complete reply we cannot parse is an error page, not output).
    unparsed: u64,
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

/// Ollama's native API reports usage as top-level counts on its final (`done`) object.
fn ollama_total(v: &Value) -> Option<u64> {
    let prompt = tokens(v, "prompt_eval_count");
    let output = tokens(v, "eval_count");
    (prompt.is_some() || output.is_some()).then(|| prompt.unwrap_or(0).saturating_add(output.unwrap_or(0)))
}

/// Members that are framing, not generated text: not counted in an output estimate.
/// `logprobs` repeat the content; `usage` and `error` are not output.
const NOT_OUTPUT: &[&str] = &[
    "id",
    "object",
    "model",
    "created",
    "created_at",
    "system_fingerprint",
    "service_tier",
    "type",
    "role",
    "finish_reason",
    "stop_reason",
    "status",
    "item_id",
    "usage",
    "error",
    "logprobs",
    "top_logprobs",
    "done_reason",
];

/// Output estimate of a response object or event: [`text_tokens`] of its string values
/// outside the framing members.
pub fn content_tokens(v: &Value) -> u64 {
    let mut total: u64 = 0;
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => total = total.saturating_add(text_tokens(s.as_bytes())),
            Value::Array(items) => stack.extend(items),
            Value::Object(o) => stack.extend(
                o.iter()
                    .filter(|(k, _)| !NOT_OUTPUT.contains(&k.as_str()))
                    .map(|(_, v)| v),
            ),
            _ => {}
        }
    }
    total
}

impl UsageMeter {
    pub fn new(sse: bool) -> UsageMeter {
        UsageMeter {
            sse,
            ..UsageMeter::default()
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        self.seen = self.seen.saturating_add(chunk.len() as u64);
        if self.sse {
            // The same spec-conformant parser the redactor and the tool-call guard use.
            match self.sse_parser.feed(chunk) {
                Ok(events) => events.iter().for_each(|e| self.sse_event(e)),
                // An event over the bound carries no usage we could read: start afresh so
                // the usage chunk after it still counts, and estimate what passed.
                Err(_) => {
                    self.unparsed = self.unparsed.saturating_add(text_tokens(chunk));
                    self.sse_parser = crate::inspect::sse::Parser::default();
                }
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

    /// Reads the usage of one parsed SSE event (see `crate::inspect::sse`).
    pub fn sse_event(&mut self, event: &crate::inspect::sse::Event) {
        if let Some(data) = event.data() {
            self.event_data(&data);
        }
    }

    /// One event's `data` (its `data:` lines joined), for a caller with its own SSE parser.
    pub fn event_data(&mut self, data: &str) {
        match crate::inspect::json_text::parse_tolerant(data.as_bytes()).ok_or(()) {
            Ok(v) => self.event_value(&v),
            Err(_) if data.trim().is_empty() || data.trim() == "[DONE]" => {}
            Err(_) => self.unparsed = self.unparsed.saturating_add(text_tokens(data.as_bytes())),
        }
    }

    /// One parsed event (an SSE event's data, an NDJSON line), for a caller with its own
    /// stream parser.
    pub fn event_value(&mut self, v: &Value) {
        let kind = v.get("type").and_then(Value::as_str);
        // Responses API: only `*.delta` events carry new text; `*.done` and
        // `response.completed` repeat what the deltas sent.
        let repeats = kind.is_some_and(|t| t.starts_with("response.") && !t.ends_with(".delta"));
        if !repeats {
            self.streamed = self.streamed.saturating_add(content_tokens(v));
        }
        match kind {
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
                if let Some(t) = v.get("usage").and_then(usage_total).or_else(|| ollama_total(v)) {
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
        if !self.overflow && !self.body.is_empty() {
            let body = std::mem::take(&mut self.body);
            if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                self.streamed = content_tokens(&v);
                self.total = v.get("usage").and_then(usage_total).or_else(|| ollama_total(&v));
                return self.total;
            }
            // NDJSON (Ollama's native streams): one object per line.
            let mut parsed_any = false;
            for line in body.split(|b| *b == b'\n') {
                if let Ok(v @ Value::Object(_)) = serde_json::from_slice::<Value>(line) {
                    parsed_any = true;
                    self.event_value(&v);
                }
            }
            if !parsed_any {
                self.unparsed = text_tokens(&body);
            }
        } else if self.overflow {
            // Too large to keep (and so not an error page): bytes / 4 of all that passed.
            self.streamed = self.seen.div_ceil(4);
        }
        if self.total.is_some() {
            return self.total;
        }
        // Large or unparseable body (e.g. vLLM's NaN logprobs): find the last `"usage"`
        // member in the tail and parse the object after it.
        let tail = String::from_utf8_lossy(&self.tail);
        let at = tail.rfind("\"usage\"")?;
        let rest = tail.get(at + 7..)?.trim_start().strip_prefix(':')?;
        let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
        self.total = stream.next()?.ok().as_ref().and_then(usage_total);
        self.total
    }

    /// Estimated output tokens of the content that passed so far (parsed events or body),
    /// for a response that ends without usage.
    pub fn output_estimate(&self) -> u64 {
        self.streamed
    }

    /// The tokens to charge for this response: its usage, else an estimate (see
    /// [`TokenEstimate::charge`]). `complete`: the response reached its end (false: cut by
    /// the upstream, or the client left).
    pub fn charge(&mut self, estimate: &TokenEstimate, complete: bool) -> Charge {
        let reported = self.finish();
        let output = if complete {
            self.streamed
        } else {
            self.streamed.saturating_add(self.unparsed)
        };
        estimate.charge(reported, output, complete)
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

    #[test]
    fn text_estimate() {
        assert_eq!(text_tokens(b""), 0);
        assert_eq!(text_tokens(b"abcd"), 1);
        assert_eq!(text_tokens(b"abcde"), 2);
        assert_eq!(text_tokens("中文".as_bytes()), 2, "one token per CJK character");
        assert_eq!(text_tokens("ab é".as_bytes()), 2);
        // Never panics on bytes that are not UTF-8.
        assert_eq!(text_tokens(&[0xff, 0x80, 0x80]), 1);
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn reservation_is_prompt_plus_cap_times_choices() {
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 100, "n": 3});
        let bytes = body.to_string();
        let e = TokenEstimate::of_request(
            Endpoint::ChatCompletions,
            bytes.as_bytes(),
            &obj(body),
            Some(100),
            4096,
        );
        assert_eq!(e.prompt, text_tokens(bytes.as_bytes()));
        assert_eq!((e.output_cap, e.choices, e.cap_requested), (100, 3, true));
        assert_eq!(e.reservation(), e.prompt + 300);
        // best_of beats n when larger; no max_tokens: the configured default cap.
        let body = json!({"model": "m", "prompt": "x", "n": 2, "best_of": 5});
        let e = TokenEstimate::of_request(Endpoint::Completions, b"{}", &obj(body), None, 256);
        assert_eq!((e.output_cap, e.choices, e.cap_requested), (256, 5, false));
        assert_eq!(e.reservation(), 1 + 256 * 5);
        // Ollama's cap; embeddings generate nothing.
        let body = json!({"model": "m", "options": {"num_predict": 64}});
        let e = TokenEstimate::of_request(Endpoint::ChatCompletions, b"", &obj(body), None, 4096);
        assert_eq!(e.output_cap, 64);
        let e = TokenEstimate::of_request(Endpoint::Embeddings, b"abcdefgh", &Map::new(), None, 4096);
        assert_eq!(e.reservation(), 2);
        // Odd values never panic and never shrink the reservation below one choice.
        for n in [json!(0), json!(-3), json!("5"), json!(1.5), json!(null)] {
            assert_eq!(choices(&obj(json!({"n": n}))), 1);
        }
        let huge = TokenEstimate {
            prompt: u64::MAX,
            output_cap: u64::MAX,
            choices: u64::MAX,
            cap_requested: true,
        };
        assert_eq!(huge.reservation(), u64::MAX);
    }

    #[test]
    fn charge_rules() {
        let e = TokenEstimate {
            prompt: 50,
            output_cap: 100,
            choices: 2,
            cap_requested: true,
        };
        let c = |r, o, complete| e.charge(r, o, complete);
        assert_eq!(
            c(Some(7), 999, false),
            Charge {
                tokens: 7,
                basis: ChargeBasis::Reported
            }
        );
        assert_eq!(
            c(None, 0, true),
            Charge {
                tokens: 0,
                basis: ChargeBasis::Nothing
            }
        );
        assert_eq!(
            c(None, 0, false),
            Charge {
                tokens: 50,
                basis: ChargeBasis::Estimated
            },
            "never less than the prompt"
        );
        assert_eq!(c(None, 30, true).tokens, 80);
        assert_eq!(
            c(None, 10_000, false).tokens,
            250,
            "capped at the request's own cap × n"
        );
        let uncapped = TokenEstimate {
            cap_requested: false,
            ..e
        };
        assert_eq!(
            uncapped.charge(None, 10_000, false).tokens,
            10_050,
            "the default cap binds nothing"
        );
        assert_eq!(
            Charge::unmetered(&e),
            Charge {
                tokens: 250,
                basis: ChargeBasis::Reserved
            }
        );
        assert_eq!(ChargeBasis::Estimated.as_str(), "estimated");
    }

    fn chunk(content: &str) -> String {
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
                "system_fingerprint": "fp_1", "choices": [{"index": 0, "delta": {"role": "assistant", "content": content},
                "finish_reason": null, "logprobs": {"content": [{"token": content}]}}]})
        )
    }

    #[test]
    fn cut_stream_is_charged_from_what_passed() {
        let e = TokenEstimate {
            prompt: 20,
            output_cap: 4096,
            choices: 1,
            cap_requested: false,
        };
        let mut m = UsageMeter::new(true);
        for _ in 0..10 {
            m.feed(chunk("word").as_bytes());
        }
        // Cut inside an event: the partial event counts too (as text).
        m.feed(b"data: {\"choices\": [{\"delta\": {\"content\": \"partial text");
        assert_eq!(
            m.output_estimate(),
            10,
            "content only: framing, role and logprobs excluded"
        );
        let charge = m.charge(&e, false);
        assert_eq!(charge.basis, ChargeBasis::Estimated);
        assert!(charge.tokens >= 20 + 10 && charge.tokens < 20 + 30, "{charge:?}");
        // The same stream ending normally without usage: prompt + output, no partial part.
        let mut m = UsageMeter::new(true);
        m.feed(format!("{}data: [DONE]\n\n", chunk("word")).as_bytes());
        assert_eq!(m.charge(&e, true).tokens, 21);
        // With the usage chunk the figure is the upstream's.
        let mut m = UsageMeter::new(true);
        let usage = json!({"choices": [], "usage": {"total_tokens": 99}});
        m.feed(format!("{}data: {usage}\n\n", chunk("word")).as_bytes());
        assert_eq!(
            m.charge(&e, false),
            Charge {
                tokens: 99,
                basis: ChargeBasis::Reported
            }
        );
        // Cut before any byte: the prompt.
        assert_eq!(UsageMeter::new(true).charge(&e, false).tokens, 20);
    }

    #[test]
    fn complete_replies_without_usage_or_output_cost_nothing() {
        let e = TokenEstimate::flat(17);
        let mut m = UsageMeter::new(false);
        m.feed(br#"{"error": {"message": "upstream failure", "type": "server_error"}}"#);
        assert_eq!(
            m.charge(&e, true),
            Charge {
                tokens: 0,
                basis: ChargeBasis::Nothing
            }
        );
        // Envoy's own 429 (empty) and local reply text (not JSON).
        assert_eq!(UsageMeter::new(false).charge(&e, true).tokens, 0);
        let mut m = UsageMeter::new(false);
        m.feed(b"upstream connect error or disconnect/reset before headers");
        assert_eq!(m.charge(&e, true).tokens, 0);
        // The same text cut mid-way is charged: it may be output we could not parse.
        let mut m = UsageMeter::new(false);
        m.feed(b"{\"choices\": [{\"message\": {\"content\": \"a long answer that was cut");
        assert!(m.charge(&e, false).tokens > 17);
        // A complete JSON reply without usage but with output: prompt + output.
        let mut m = UsageMeter::new(false);
        m.feed(
            json!({"id": "x", "choices": [{"message": {"role": "assistant", "content": "abcdefgh"}}]})
                .to_string()
                .as_bytes(),
        );
        assert_eq!(m.charge(&e, true).tokens, 17 + 2);
    }

    #[test]
    fn unparseable_json_still_yields_its_usage() {
        // vLLM emits NaN/-Infinity logprobs, which serde_json refuses: the tail search finds usage.
        let body = r#"{"choices": [{"logprobs": {"top": [NaN, -Infinity]}, "message": {"content": "hi"}}], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}"#;
        assert_eq!(meter(false, &[body]), Some(7));
        // Pretty-printed: lines such as `1,` parse alone, yet the usage is still found.
        let pretty = "{\n\"choices\": [\n1,\nNaN\n],\n\"usage\": {\"total_tokens\": 9}\n}";
        assert_eq!(meter(false, &[pretty]), Some(9));
    }

    #[test]
    fn ollama_native_usage() {
        let done = json!({"model": "llama3", "message": {"role": "assistant", "content": "hi"}, "done": true,
            "prompt_eval_count": 26, "eval_count": 290});
        assert_eq!(meter(false, &[&done.to_string()]), Some(316));
        let line = json!({"model": "llama3", "message": {"role": "assistant", "content": "hello there"}, "done": false});
        let ndjson = format!("{line}\n{line}\n{done}\n");
        assert_eq!(meter(false, &[&ndjson[..30], &ndjson[30..]]), Some(316));
        let mut m = UsageMeter::new(false);
        m.feed(format!("{line}\n{line}\n").as_bytes());
        assert_eq!(m.finish(), None, "cut before the done line");
        assert_eq!(m.output_estimate(), 6);
    }

    #[test]
    fn responses_done_events_are_not_counted_twice() {
        let ev = |v: Value| format!("event: x\ndata: {v}\n\n");
        let stream = [
            ev(json!({"type": "response.created", "response": {"output": []}})),
            ev(json!({"type": "response.output_text.delta", "item_id": "msg_1", "delta": "abcdefgh"})),
            ev(json!({"type": "response.output_text.done", "item_id": "msg_1", "text": "abcdefgh"})),
        ]
        .concat();
        let mut m = UsageMeter::new(true);
        m.feed(stream.as_bytes());
        assert_eq!(m.finish(), None);
        assert_eq!(m.output_estimate(), 2);
        // Anthropic text deltas.
        let mut m = UsageMeter::new(true);
        m.feed(ev(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "abcd"}})).as_bytes());
        assert_eq!(m.output_estimate(), 1);
    }

    #[test]
    fn external_parsers_feed_events() {
        // The SSE/NDJSON parser of the stream transforms may feed the meter what it parsed.
        let mut m = UsageMeter::new(true);
        m.event_data(&json!({"choices": [{"delta": {"content": "abcd"}}]}).to_string());
        m.event_data("[DONE]");
        m.event_value(&json!({"choices": [], "usage": {"total_tokens": 12}}));
        assert_eq!(m.output_estimate(), 1);
        assert_eq!(m.finish(), Some(12));
        let mut m = UsageMeter::new(true);
        m.event_data("plain text, not json");
        let e = TokenEstimate::flat(1);
        assert_eq!(m.charge(&e, true).tokens, 0, "unparsed data counts only when cut");
    }
}
