//! NDJSON response streams (`application/x-ndjson`, `application/jsonl`; Ollama's native
//! `/api/chat` and `/api/generate`): one JSON object per line, lines are the frames. A line
//! is inspected whole (however the network split it), for tool calls
//! (`message.tool_calls[].function.name`) and redaction; the text deltas
//! (`message.content`, `response`, thinking) stream through the text redactor like SSE
//! deltas, so a secret split across lines is caught too. Usage is the final `done: true`
//! line's `prompt_eval_count + eval_count`.

use crate::inspect::stream_inspection::{StreamInspection, StreamOptions};
use crate::redact::stream::{End, Redactor, TextStream};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub use crate::inspect::tool_calls::ollama_tool_names;

/// Tokens of an Ollama final line (`done: true`): prompt plus generated.
pub fn ollama_usage(v: &Value) -> Option<u64> {
    if v.get("done").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    let p = v.get("prompt_eval_count").and_then(Value::as_u64);
    let e = v.get("eval_count").and_then(Value::as_u64);
    match (p, e) {
        (None, None) => None,
        (p, e) => Some(p.unwrap_or(0).saturating_add(e.unwrap_or(0))),
    }
}

/// Splits a byte stream into lines (LF, with an optional CR before it).
#[derive(Debug, Default)]
pub struct Lines {
    partial: Vec<u8>,
    failed: bool,
}

impl Lines {
    /// Complete lines of the next chunk (without line ends). Err when a line exceeds
    /// `crate::inspect::sse::MAX_EVENT`.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Vec<u8>>, crate::inspect::sse::Oversized> {
        if self.failed {
            return Err(crate::inspect::sse::Oversized);
        }
        let mut out = Vec::new();
        let mut rest = chunk;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(i);
            self.partial.extend_from_slice(head);
            let mut line = std::mem::take(&mut self.partial);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            out.push(line);
            rest = tail.get(1..).unwrap_or_default();
        }
        self.partial.extend_from_slice(rest);
        if self.partial.len() > crate::inspect::sse::MAX_EVENT {
            self.failed = true;
            return Err(crate::inspect::sse::Oversized);
        }
        Ok(out)
    }

    /// The last line, if the stream did not end with a line end.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        let mut line = std::mem::take(&mut self.partial);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        (!line.is_empty()).then_some(line)
    }
}

/// Usage of an NDJSON stream, read as it passes (never held).
#[derive(Debug, Default)]
pub struct NdjsonMeter {
    lines: Lines,
    total: Option<u64>,
}

impl NdjsonMeter {
    pub fn feed(&mut self, chunk: &[u8]) {
        match self.lines.feed(chunk) {
            Ok(lines) => lines.iter().for_each(|l| self.line(l)),
            Err(_) => self.lines = Lines::default(),
        }
    }

    fn line(&mut self, line: &[u8]) {
        if let Some(t) = crate::inspect::json_text::parse_tolerant(line)
            .as_ref()
            .and_then(ollama_usage)
        {
            self.total = Some(t);
        }
    }

    pub fn finish(&mut self) -> Option<u64> {
        if let Some(l) = self.lines.finish() {
            self.line(&l);
        }
        self.total
    }
}

/// Text fields that arrive as deltas, one per line.
const DELTA_POINTERS: [&str; 4] = ["/message/content", "/message/thinking", "/response", "/thinking"];

/// The NDJSON counterpart of `crate::inspect::sse_pipeline::SsePipeline`.
#[derive(Debug)]
pub struct NdjsonPipeline {
    opts: StreamOptions,
    lines: Lines,
    fields: BTreeMap<&'static str, TextStream>,
    /// model / created_at of the stream, for synthesized lines.
    template: Option<(Value, Value)>,
    blocked: Option<String>,
    ended: bool,
    uninspectable: bool,
    /// The `done: true` line came: the end of the body is a clean end, not a cut.
    done: bool,
}

impl NdjsonPipeline {
    pub fn new(opts: StreamOptions) -> NdjsonPipeline {
        NdjsonPipeline {
            opts,
            lines: Lines::default(),
            fields: BTreeMap::new(),
            template: None,
            blocked: None,
            ended: false,
            uninspectable: false,
            done: false,
        }
    }

    pub fn blocked(&self) -> Option<&str> {
        self.blocked.as_deref()
    }

    pub fn uninspectable(&self) -> bool {
        self.uninspectable
    }

    /// Takes the next upstream chunk; returns the lines to send now (each ending in LF).
    pub fn feed(
        &mut self,
        chunk: &[u8],
        end_of_stream: bool,
        allowed: &dyn Fn(&str) -> bool,
        mut redactor: Option<&mut Redactor>,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        let (mut lines, oversized) = match self.lines.feed(chunk) {
            Ok(l) => (l, false),
            Err(_) => (Vec::new(), true),
        };
        if end_of_stream && !oversized {
            lines.extend(self.lines.finish());
        }
        for line in lines {
            self.line(&line, allowed, redactor.as_deref_mut(), &mut out);
            if self.ended {
                return out;
            }
        }
        if oversized {
            self.uninspectable = true;
            self.ended = true;
            if let Some(r) = redactor.as_deref_mut() {
                self.flush(&[], r, &mut out, End::Cut);
            }
            out.extend(self.error_line("The upstream response could not be inspected and was withheld."));
            return out;
        }
        if end_of_stream {
            if let Some(r) = redactor {
                // Without the `done` line the stream was cut.
                let end = if self.done { End::Clean } else { End::Cut };
                self.flush(&[], r, &mut out, end);
            }
        }
        out
    }

    fn redacting(&self) -> Option<bool> {
        self.opts.redaction
    }

    fn line(
        &mut self,
        line: &[u8],
        allowed: &dyn Fn(&str) -> bool,
        redactor: Option<&mut Redactor>,
        out: &mut Vec<u8>,
    ) {
        let parsed = crate::inspect::json_text::parse_tolerant(line);
        if let (Some(v), Some((mode, enforce))) = (&parsed, self.opts.tool_calls) {
            if self.blocked.is_none() {
                let names = ollama_tool_names(v)
                    .into_iter()
                    .chain(crate::inspect::tool_calls::tool_names(v));
                if let Some(tool) = names.into_iter().find(|t| !allowed(t)) {
                    self.blocked = Some(tool.clone());
                    if enforce {
                        self.ended = true;
                        if let Some(r) = redactor {
                            self.flush(&[], r, out, End::Cut);
                        }
                        out.extend(self.replacement(&tool, mode));
                        return;
                    }
                }
            }
        }
        let (Some(enforce), Some(r)) = (self.redacting(), redactor) else {
            out.extend_from_slice(line);
            out.push(b'\n');
            return;
        };
        let redacted = match &parsed {
            None => {
                // Not JSON: a client's parser fails on it; a raw reader sees text.
                let text = String::from_utf8_lossy(line);
                r.text(&text).into_bytes()
            }
            Some(v) => self.json_line(line, v, r, out, enforce),
        };
        if enforce {
            out.extend_from_slice(&redacted);
        } else {
            out.extend_from_slice(line);
        }
        out.push(b'\n');
    }

    fn json_line(
        &mut self,
        line: &[u8],
        v: &Value,
        r: &mut Redactor,
        out: &mut Vec<u8>,
        enforce: bool,
    ) -> Vec<u8> {
        if self.template.is_none() && v.get("model").is_some() {
            self.template = Some((
                v.get("model").cloned().unwrap_or(Value::Null),
                v.get("created_at").cloned().unwrap_or(Value::Null),
            ));
        }
        let present: Vec<&'static str> = DELTA_POINTERS
            .into_iter()
            .filter(|p| v.pointer(p).is_some_and(Value::is_string))
            .collect();
        let done = v.get("done").and_then(Value::as_bool) == Some(true);
        if done {
            // Held text of fields this final line lacks goes out before it.
            self.done = true;
            let mut flushed = Vec::new();
            self.flush(&present, r, &mut flushed, End::Clean);
            if enforce {
                out.extend(flushed);
            }
        }
        let streams = &mut self.fields;
        let rewritten = crate::inspect::json_text::rewrite_strings(line, &mut |path, s| {
            let ptr = crate::inspect::json_text::pointer(path);
            let Some(key) = present.iter().find(|p| **p == ptr) else {
                return Some(r.text(s));
            };
            let stream = streams.entry(key).or_default();
            let mut emitted = r.push(stream, s);
            if done {
                emitted.push_str(&r.flush(stream));
            }
            Some(emitted)
        });
        match rewritten {
            Some(Some(new)) => new,
            Some(None) => line.to_vec(),
            None => r.text(&String::from_utf8_lossy(line)).into_bytes(),
        }
    }

    /// Emits the held text of every field not in `except`, as synthesized lines.
    fn flush(&mut self, except: &[&str], r: &mut Redactor, out: &mut Vec<u8>, end: End) {
        let keys: Vec<&'static str> = self
            .fields
            .keys()
            .copied()
            .filter(|k| !except.contains(k))
            .collect();
        for key in keys {
            let Some(stream) = self.fields.get_mut(key) else {
                continue;
            };
            let text = match end {
                End::Clean => r.flush(stream),
                End::Cut => r.flush_cut(stream),
            };
            if text.is_empty() || self.opts.redaction != Some(true) {
                continue;
            }
            let (model, created) = self.template.clone().unwrap_or((Value::Null, Value::Null));
            let mut v = json!({"model": model, "created_at": created});
            if let Some(o) = v.as_object_mut() {
                match key.strip_prefix("/message/") {
                    Some(f) => {
                        o.insert("message".into(), json!({"role": "assistant", f: text}));
                    }
                    None => {
                        o.insert(key.trim_start_matches('/').into(), Value::String(text));
                    }
                }
                o.insert("done".into(), Value::Bool(false));
            }
            out.extend(v.to_string().into_bytes());
            out.push(b'\n');
        }
    }

    fn error_line(&self, message: &str) -> Vec<u8> {
        let mut l = json!({ "error": message }).to_string().into_bytes();
        l.push(b'\n');
        l
    }

    fn replacement(&self, tool: &str, mode: crate::inspect::tool_calls::ForbiddenToolCall) -> Vec<u8> {
        let short: String = tool.chars().take(64).collect();
        let message =
            format!("The model tried to call the tool {short:?}, which your token does not permit; the response was blocked.");
        match mode {
            crate::inspect::tool_calls::ForbiddenToolCall::Error => self.error_line(&message),
            crate::inspect::tool_calls::ForbiddenToolCall::Refusal => {
                let (model, created) = self.template.clone().unwrap_or((Value::Null, Value::Null));
                let mut l = json!({"model": model, "created_at": created,
                    "message": {"role": "assistant", "content": message}, "done": true, "done_reason": "stop"})
                .to_string()
                .into_bytes();
                l.push(b'\n');
                l
            }
        }
    }
}

impl StreamInspection for NdjsonPipeline {
    fn feed(
        &mut self,
        chunk: &[u8],
        end_of_stream: bool,
        allowed: &dyn Fn(&str) -> bool,
        redactor: Option<&mut Redactor>,
    ) -> Vec<u8> {
        NdjsonPipeline::feed(self, chunk, end_of_stream, allowed, redactor)
    }
    fn blocked(&self) -> Option<&str> {
        NdjsonPipeline::blocked(self)
    }
    fn uninspectable(&self) -> bool {
        NdjsonPipeline::uninspectable(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::llm_request::Endpoint;
    use crate::inspect::tool_calls::ForbiddenToolCall;
    use crate::redact::{Counts, Detectors, Replacement};

    fn opts() -> StreamOptions {
        StreamOptions {
            endpoint: Endpoint::Other,
            tool_calls: Some((ForbiddenToolCall::Error, true)),
            redaction: Some(true),
            strip_forced_usage: false,
        }
    }

    fn run(o: StreamOptions, body: &[u8], cuts: &[usize]) -> (String, Option<String>) {
        let d = Detectors::all();
        let rep = Replacement::Tag;
        let mut counts = Counts::new();
        let mut r = Redactor {
            detectors: &d,
            replacement: &rep,
            counts: &mut counts,
        };
        let mut p = NdjsonPipeline::new(o);
        let mut out = Vec::new();
        let mut last = 0;
        for &c in cuts.iter().chain(std::iter::once(&body.len())) {
            if c < last || c > body.len() || (c == last && c != body.len()) {
                continue;
            }
            out.extend(p.feed(
                &body[last..c],
                c == body.len(),
                &|t| t.starts_with("search"),
                Some(&mut r),
            ));
            last = c;
        }
        (String::from_utf8(out).unwrap(), p.blocked().map(str::to_string))
    }

    fn chat_line(content: &str, done: bool) -> String {
        let mut v = json!({"model": "llama3", "created_at": "2026-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": content}, "done": done});
        if done {
            v["prompt_eval_count"] = json!(26);
            v["eval_count"] = json!(290);
        }
        format!("{v}\n")
    }

    fn content(out: &str) -> String {
        out.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| {
                v.pointer("/message/content")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect()
    }

    #[test]
    fn secret_split_across_chunks_and_lines() {
        let body = [
            chat_line("my key AKIAIOSF", false),
            chat_line("ODNN7EXAMPLE and ", false),
            chat_line("", true),
        ]
        .concat();
        for cut in 0..=body.len() {
            let (out, _) = run(opts(), body.as_bytes(), &[cut]);
            assert!(!out.contains("IOSF"), "cut {cut}: {out}");
            assert_eq!(content(&out), "my key [REDACTED:aws_access_key] and ");
            let last: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
            assert_eq!(last["done"], true);
        }
        // A secret inside one line split by the network, in /api/generate's shape.
        let body = "{\"model\":\"m\",\"response\":\"mail jane.doe@example.com\",\"done\":true}\n";
        for cut in 0..=body.len() {
            let (out, _) = run(opts(), body.as_bytes(), &[cut]);
            assert_eq!(
                out,
                "{\"model\":\"m\",\"response\":\"mail [REDACTED:email]\",\"done\":true}\n"
            );
        }
    }

    #[test]
    fn forbidden_ollama_tool_call() {
        let call = json!({"model": "llama3", "message": {"role": "assistant", "content": "",
            "tool_calls": [{"function": {"name": "delete_db", "arguments": {"table": "users"}}}]}, "done": false});
        let body = format!("{}{call}\n{}", chat_line("ok ", false), chat_line("", true));
        let (out, blocked) = run(opts(), body.as_bytes(), &[]);
        assert_eq!(blocked.as_deref(), Some("delete_db"));
        assert!(!out.contains("users"), "{out}");
        assert!(out.ends_with("permit; the response was blocked.\"}\n"), "{out}");
        let ok = json!({"message": {"tool_calls": [{"function": {"name": "search_web"}}]}, "done": true});
        assert_eq!(run(opts(), format!("{ok}\n").as_bytes(), &[]).1, None);
    }

    #[test]
    fn usage_from_the_final_line() {
        let body = [chat_line("hi", false), chat_line("", true)].concat();
        for cut in 0..=body.len() {
            let mut m = NdjsonMeter::default();
            m.feed(&body.as_bytes()[..cut]);
            m.feed(&body.as_bytes()[cut..]);
            assert_eq!(m.finish(), Some(316));
        }
        assert_eq!(ollama_usage(&json!({"done": false, "eval_count": 3})), None);
    }

    #[test]
    fn property_output_is_independent_of_chunking() {
        let deltas = [
            "card 4111 ",
            "1111 1111 ",
            "1111 ok ",
            "a@b.",
            "io ",
            "AKIA",
            "IOSFODNN7EXAMPLE ",
            "fine\n",
        ];
        let mut seed = 0x1234_5678_9abc_def1u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n.max(1) as u64) as usize
        };
        for _ in 0..80 {
            let mut body = String::new();
            for _ in 0..next(8) {
                body.push_str(&chat_line(deltas[next(deltas.len())], false));
            }
            body.push_str(&chat_line("", true));
            let whole = run(opts(), body.as_bytes(), &[]).0;
            let text = content(&whole);
            assert!(
                !text.contains("AKIAIOSFODNN7EXAMPLE") && !text.contains("4111 1111 1111 1111"),
                "{whole}"
            );
            for _ in 0..8 {
                let mut cuts: Vec<usize> = (0..next(6)).map(|_| next(body.len() + 1)).collect();
                cuts.sort_unstable();
                assert_eq!(run(opts(), body.as_bytes(), &cuts).0, whole, "cuts {cuts:?}");
            }
        }
    }
}
