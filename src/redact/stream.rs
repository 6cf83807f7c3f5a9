//! Redaction of response bodies: JSON (string values decoded, redacted, re-encoded in place
//! by `crate::inspect::json_text`), plain text, and SSE streams where text arrives in deltas (parsed
//! by `crate::inspect::sse`, re-emitted in its canonical framing).
//!
//! Streams: each text field of each choice (content, reasoning, tool-call arguments, ...) is
//! a `TextStream`. Its text is emitted only up to the start of the last K whitespace-
//! separated runs, K being the widest span of any enabled detector, and never inside a
//! possible match (nor an unterminated private-key block). So a secret split across any
//! number of events or network chunks is redacted as a whole, and the output does not depend
//! on how the body was chunked. Held text is flushed at the end of its field or stream: a
//! clean end (the body's framing, `[DONE]`, `message_stop`, `response.completed`, a
//! `finish_reason`, NDJSON `done`) flushes it exactly as whole-text redaction would, so JSON,
//! SSE, NDJSON and text agree; only a stream cut without its terminator (or stopped by the
//! filter) withholds a trailing partial secret as `[REDACTED:partial]`.

use crate::redact::{count, Counts, Detectors, Match, Replacement};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Held text beyond this is released (redacted as far as it can be inspected) so memory
/// stays bounded; an unterminated private key block that large is redacted whole.
pub const MAX_HOLD: usize = 64 * 1024;

#[derive(Debug, Default, Clone)]
pub struct TextStream {
    /// The last emitted character (left context for the detectors' word boundaries),
    /// then the text not yet emitted. Kept in one buffer so a scan needs no copy.
    buf: String,
    /// Length of the context character at the start of `buf` (0 before any output).
    ctx_len: usize,
    /// Bytes of a UTF-8 character cut by a chunk boundary, completed by the next chunk.
    pending: Vec<u8>,
}

impl TextStream {
    /// The text not yet emitted.
    fn held(&self) -> &str {
        self.buf.get(self.ctx_len..).unwrap_or_default()
    }
}

pub struct Redactor<'a> {
    pub detectors: &'a Detectors,
    pub replacement: &'a Replacement,
    pub counts: &'a mut Counts,
}

/// Where a chunk stops being complete UTF-8: the start of a character cut short at its end.
fn complete_utf8_len(bytes: &[u8]) -> usize {
    let len = bytes.len();
    // A character is at most 4 bytes: look at the last 3 for the lead of a cut one.
    for back in 1..=len.min(3) {
        let b = bytes.get(len - back).copied().unwrap_or(0);
        if b & 0xC0 == 0x80 {
            continue; // continuation byte: keep looking for the lead
        }
        let needed = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if needed > back { len - back } else { len };
    }
    len
}

impl<'a> Redactor<'a> {
    pub fn text(&mut self, text: &str) -> String {
        crate::redact::redact(text, self.detectors, self.replacement, self.counts)
    }

    /// Redacts the held text up to `cut` (relative to the held text) given the matches of
    /// a scan of the whole buffer; keeps the rest held.
    fn emit(&mut self, stream: &mut TextStream, matches: &[Match], cut: usize, all: bool) -> String {
        let off = stream.ctx_len;
        let mut cut = off + cut;
        if !all {
            // Never cut through a match, nor between a match and the context it needs.
            for m in matches {
                if m.ctx < cut && m.end > cut {
                    cut = cut.min(m.ctx.max(off));
                }
            }
        }
        let mut out = String::with_capacity(cut - off.min(cut) + 64);
        let mut last = off;
        for m in matches.iter().filter(|m| m.start >= off && m.end <= cut) {
            out.push_str(stream.buf.get(last..m.start).unwrap_or_default());
            self.replacement
                .render_into(&mut out, m, stream.buf.get(m.start..m.end).unwrap_or_default());
            count(self.counts, m.label.as_deref().unwrap_or(m.kind.name()));
            last = m.end;
        }
        out.push_str(stream.buf.get(last..cut).unwrap_or_default());
        // Keep the last emitted character as the context of what stays held.
        let ctx_start = stream
            .buf
            .get(..cut)
            .and_then(|p| p.char_indices().next_back())
            .map_or(cut, |(i, _)| i);
        stream.buf.drain(..ctx_start);
        stream.ctx_len = cut - ctx_start;
        out
    }

    /// Appends a chunk of bytes (a network chunk of a text body): a UTF-8 character cut
    /// by the chunk boundary waits for the rest of it instead of becoming U+FFFD.
    pub fn push_bytes(&mut self, stream: &mut TextStream, chunk: &[u8]) -> String {
        let joined: Cow<[u8]> = if stream.pending.is_empty() {
            Cow::Borrowed(chunk)
        } else {
            let mut v = std::mem::take(&mut stream.pending);
            v.extend_from_slice(chunk);
            Cow::Owned(v)
        };
        let complete = complete_utf8_len(&joined);
        stream.pending = joined.get(complete..).unwrap_or_default().to_vec();
        let bytes = joined.get(..complete).unwrap_or_default();
        // `from_utf8` first: its ASCII fast path is several times quicker than the lossy
        // decoder's, which is only needed for invalid input.
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => Cow::Borrowed(t),
            Err(_) => String::from_utf8_lossy(bytes),
        };
        self.push(stream, &text)
    }

    /// Appends a delta; returns the text that is now safe to emit.
    pub fn push(&mut self, stream: &mut TextStream, delta: &str) -> String {
        stream.buf.push_str(delta);
        let scan = self.detectors.scan(&stream.buf);
        let held = stream.held();
        let mut cut = start_of_last_runs(held, self.detectors.hold_runs());
        let open_block = scan.open_block.map(|b| b.saturating_sub(stream.ctx_len));
        if let Some(pk) = open_block {
            cut = cut.min(pk);
        }
        if held.len() > MAX_HOLD {
            if let Some(pk) = open_block {
                // A private key block this long: redact everything from its start.
                let before = self.emit(stream, &scan.matches, pk, true);
                let name = crate::redact::Kind::PrivateKey.name();
                count(self.counts, name);
                stream.buf.truncate(stream.ctx_len);
                return format!("{before}[REDACTED:{name}]");
            }
            // Release all but the last MAX_HOLD / 2 bytes even without a safe cut.
            let mut forced = held.len() - MAX_HOLD / 2;
            while !held.is_char_boundary(forced) {
                forced -= 1;
            }
            cut = cut.max(forced);
        }
        self.emit(stream, &scan.matches, cut, false)
    }

    /// The text ended cleanly (the body's framing completed, or the stream's own end: SSE
    /// `[DONE]`, `message_stop`, `response.completed`, a choice's `finish_reason`, NDJSON
    /// `done: true`): everything still held, redacted exactly as the whole text would be, so a
    /// stream gives what a JSON body with the same text gives.
    pub fn flush(&mut self, stream: &mut TextStream) -> String {
        self.take_pending(stream);
        let scan = self.detectors.scan(&stream.buf);
        let len = stream.held().len();
        self.emit(stream, &scan.matches, len, true)
    }

    /// The bytes of a character cut by the last chunk, as U+FFFD (the body ended inside it).
    fn take_pending(&mut self, stream: &mut TextStream) {
        if !stream.pending.is_empty() {
            let rest = String::from_utf8_lossy(&std::mem::take(&mut stream.pending)).into_owned();
            stream.buf.push_str(&rest);
        }
    }

    /// The stream was cut (it ended without its terminator, or the filter stopped it):
    /// everything still held, redacted, except that a trailing run that looks like the start
    /// of a secret cut short is withheld as `[REDACTED:partial]`, so no part of a secret
    /// reaches the client, even a truncated one.
    pub fn flush_cut(&mut self, stream: &mut TextStream) -> String {
        self.take_pending(stream);
        let scan = self.detectors.scan(&stream.buf);
        let len = stream.held().len();
        if let Some(start) = partial_tail(stream.held()) {
            // A match inside the tail means it was complete after all.
            let complete = scan.matches.iter().any(|m| m.end > stream.ctx_len + start);
            if !complete {
                let mut out = self.emit(stream, &scan.matches, start, true);
                stream.buf.truncate(stream.ctx_len);
                count(self.counts, "partial");
                out.push_str("[REDACTED:partial]");
                return out;
            }
        }
        self.emit(stream, &scan.matches, len, true)
    }

    /// Redacts every string value of a JSON document (keys are left alone).
    pub fn json_value(&mut self, v: &mut Value) {
        match v {
            Value::String(s) => {
                let r = self.text(s);
                if r != *s {
                    *s = r;
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| self.json_value(x)),
            Value::Object(o) => o.values_mut().for_each(|x| self.json_value(x)),
            _ => {}
        }
    }
}

/// Start of a trailing run (no whitespace after it) that could be a truncated secret.
pub fn partial_tail(text: &str) -> Option<usize> {
    if text.ends_with(|c: char| c.is_whitespace()) {
        return None;
    }
    let mut start = text.rfind(|c: char| c.is_whitespace()).map_or(0, |i| i + 1);
    let numeric = |r: &str| !r.is_empty() && r.chars().all(|c| c.is_ascii_digit() || "-.()+".contains(c));
    // A number cut short may span several runs ("4111 1111 11"): take them all.
    if numeric(text.get(start..).unwrap_or_default()) {
        loop {
            let before = text.get(..start).unwrap_or_default().trim_end();
            let prev = before.rfind(|c: char| c.is_whitespace()).map_or(0, |i| i + 1);
            if before.is_empty() || !numeric(before.get(prev..).unwrap_or_default()) {
                break;
            }
            start = prev;
        }
    }
    let run = text.get(start..)?;
    let trimmed = run.trim_start_matches(|c: char| "\"'([{<:=".contains(c));
    const PREFIXES: [&str; 14] = [
        "AKIA",
        "ASIA",
        "ghp_",
        "gho_",
        "ghu_",
        "ghs_",
        "ghr_",
        "github_pat_",
        "sk-",
        "xox",
        "xapp-",
        "sk_live_",
        "AIza",
        "eyJ",
    ];
    let digits = trimmed.chars().filter(char::is_ascii_digit).count();
    let suspicious = trimmed.contains('@')
        || PREFIXES.iter().any(|p| trimmed.starts_with(p))
        || trimmed.starts_with("-----BEGIN")
        || (digits >= 6
            && trimmed
                .chars()
                .all(|c| c.is_ascii_digit() || "-. ()+".contains(c)));
    suspicious.then_some(start)
}

/// Byte index where the last `runs` whitespace-separated runs begin (0 if fewer).
pub fn start_of_last_runs(text: &str, runs: usize) -> usize {
    let b = text.as_bytes();
    let mut i = b.len();
    let mut seen = 0;
    while i > 0 {
        // Skip trailing whitespace, then one run.
        while i > 0 && b.get(i - 1).is_some_and(u8::is_ascii_whitespace) {
            i -= 1;
        }
        if i == 0 {
            break;
        }
        while i > 0 && !b.get(i - 1).is_some_and(u8::is_ascii_whitespace) {
            i -= 1;
        }
        seen += 1;
        if seen >= runs {
            return i;
        }
    }
    0
}

/// A JSON body with its string values redacted (escapes decoded first, so `\u0041KIA...`
/// is seen), every other byte as the upstream sent it; `NaN` / `Infinity` / `-Infinity`
/// number tokens are accepted. None when the body is not JSON (the caller withholds it or
/// redacts it as text, see `crate::inspect::response`).
pub fn redact_json_body(body: &[u8], r: &mut Redactor) -> Option<Vec<u8>> {
    let out = crate::inspect::json_text::rewrite_strings(body, &mut |_, s| Some(r.text(s)))?;
    Some(out.unwrap_or_else(|| body.to_vec()))
}

/// Identifies one text field of one stream item (choice / tool call / content block).
type FieldKey = String;

/// How a stream's held text is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The text ended cleanly: flushed as the whole text would be redacted.
    Clean,
    /// The stream was cut: a trailing partial secret is withheld.
    Cut,
}

/// Streaming redaction of an SSE body.
#[derive(Debug, Default)]
pub struct SseRedactor {
    parser: crate::inspect::sse::Parser,
    failed: bool,
    fields: BTreeMap<FieldKey, TextStream>,
    /// Events whose data is plain text (not JSON): one text stream across them, so a value
    /// split over two events is still caught.
    plain: TextStream,
    /// A template chunk (id, model, ...) for synthesized flush events (OpenAI shape).
    template: Option<Value>,
    /// The stream's own end was seen (`[DONE]`, `message_stop`, `response.completed`, ...):
    /// the end of the body is a clean end, not a cut.
    terminated: bool,
}

/// Event types after which a stream has ended cleanly.
const TERMINAL_EVENTS: [&str; 5] = [
    "message_stop",
    "response.completed",
    "response.incomplete",
    "response.failed",
    "response.done",
];

/// The last key of every pointer `delta_fields` returns.
const DELTA_LEAVES: [&str; 9] = [
    "content",
    "reasoning_content",
    "reasoning",
    "refusal",
    "text",
    "arguments",
    "partial_json",
    "thinking",
    "delta",
];

/// Where a delta lives in an event: JSON pointer of the string, and its field key.
fn delta_fields(v: &Value) -> Vec<(String, FieldKey)> {
    let mut out = Vec::new();
    if let Some(choices) = v.get("choices").and_then(Value::as_array) {
        for (ci, c) in choices.iter().enumerate() {
            let idx = c.get("index").and_then(Value::as_u64).unwrap_or(ci as u64);
            for f in ["content", "reasoning_content", "reasoning", "refusal"] {
                if c.pointer(&format!("/delta/{f}")).is_some_and(Value::is_string) {
                    out.push((format!("/choices/{ci}/delta/{f}"), format!("c{idx}/{f}")));
                }
            }
            if c.get("text").is_some_and(Value::is_string) {
                out.push((format!("/choices/{ci}/text"), format!("c{idx}/text")));
            }
            if let Some(calls) = c.pointer("/delta/tool_calls").and_then(Value::as_array) {
                for (ti, call) in calls.iter().enumerate() {
                    let tidx = call.get("index").and_then(Value::as_u64).unwrap_or(ti as u64);
                    if call.pointer("/function/arguments").is_some_and(Value::is_string) {
                        out.push((
                            format!("/choices/{ci}/delta/tool_calls/{ti}/function/arguments"),
                            format!("c{idx}/tool{tidx}"),
                        ));
                    }
                }
            }
        }
    }
    match v.get("type").and_then(Value::as_str) {
        // Anthropic: content_block_delta {index, delta: {text | partial_json | thinking}}
        Some("content_block_delta") => {
            let idx = v.get("index").and_then(Value::as_u64).unwrap_or(0);
            for f in ["text", "partial_json", "thinking"] {
                if v.pointer(&format!("/delta/{f}")).is_some_and(Value::is_string) {
                    out.push((format!("/delta/{f}"), format!("a{idx}/{f}")));
                }
            }
        }
        // Responses API text and argument deltas.
        Some(t) if t.ends_with(".delta") && v.get("delta").is_some_and(Value::is_string) => {
            let item = v.get("item_id").and_then(Value::as_str).unwrap_or("");
            let part = v.get("content_index").and_then(Value::as_u64).unwrap_or(0);
            out.push(("/delta".into(), format!("r{item}/{part}/{t}")));
        }
        _ => {}
    }
    out
}

/// Events that end a field: the held text of matching keys must go out before them.
fn ends_fields(v: &Value) -> Option<String> {
    match v.get("type").and_then(Value::as_str) {
        Some("content_block_stop") => Some(format!(
            "a{}/",
            v.get("index").and_then(Value::as_u64).unwrap_or(0)
        )),
        Some(t) if t.ends_with(".done") => v.get("item_id").and_then(Value::as_str).map(|i| format!("r{i}/")),
        _ => None,
    }
}

impl SseRedactor {
    /// Takes the next chunk of the body; returns the bytes to forward now, in the canonical
    /// SSE framing (see `crate::inspect::sse`).
    pub fn feed(&mut self, chunk: &[u8], end_of_stream: bool, r: &mut Redactor) -> Vec<u8> {
        let mut out = Vec::new();
        if self.failed {
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
        let (events, oversized) = match events {
            Ok(e) => (e, false),
            Err(_) => (Vec::new(), true),
        };
        for e in events {
            for ev in self.event(e, r) {
                ev.write_to(&mut out);
            }
        }
        if oversized {
            // An event too large to hold cannot be inspected: what is held goes out
            // redacted, then the stream ends with an error event (fail closed).
            for ev in self.flush_all("", r, End::Cut) {
                ev.write_to(&mut out);
            }
            crate::inspect::sse::Event::with_data(&String::from_utf8_lossy(
                &crate::outcome::reason::withheld_body(crate::outcome::reason::Withheld::Unparseable),
            ))
            .write_to(&mut out);
            self.failed = true;
            return out;
        }
        if end_of_stream {
            for ev in self.finish(r) {
                ev.write_to(&mut out);
            }
        }
        out
    }

    /// The body ended: the held text of every field, as synthesized delta events. After the
    /// stream's own end marker that is a clean flush; without it the stream was cut and a
    /// trailing partial secret is withheld (see `Redactor::flush_cut`).
    pub fn finish(&mut self, r: &mut Redactor) -> Vec<crate::inspect::sse::Event> {
        let end = if self.terminated { End::Clean } else { End::Cut };
        self.flush_all("", r, end)
    }

    /// The filter stops the stream (a blocked tool call, an uninspectable event): held text
    /// goes out as for a cut stream.
    pub fn finish_cut(&mut self, r: &mut Redactor) -> Vec<crate::inspect::sse::Event> {
        self.flush_all("", r, End::Cut)
    }

    /// The stream's own end marker was seen.
    pub fn terminated(&self) -> bool {
        self.terminated
    }

    /// The stream held an event too large to inspect and was cut.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Redacts one parsed event; returns the events to emit in its place (held text of
    /// ending fields first, as synthesized delta events).
    pub fn event(
        &mut self,
        e: crate::inspect::sse::Event,
        r: &mut Redactor,
    ) -> Vec<crate::inspect::sse::Event> {
        self.inspected(crate::inspect::sse::Inspected::new(e), r)
    }

    /// `event`, for an event whose data was already read.
    pub fn inspected(
        &mut self,
        inspected: crate::inspect::sse::Inspected,
        r: &mut Redactor,
    ) -> Vec<crate::inspect::sse::Event> {
        use crate::inspect::sse::Field;
        let crate::inspect::sse::Inspected {
            event: mut e,
            data,
            json,
        } = inspected;
        // The other fields reach a raw reader too (an `id` comes back as Last-Event-ID).
        for (_, value) in e.fields.iter_mut().filter(|(f, _)| *f != Field::Data) {
            let redacted = r.text(value);
            if redacted != *value {
                *value = redacted;
            }
        }
        let Some(data) = data else {
            return vec![e];
        };
        if data.trim() == "[DONE]" {
            // Held text goes out before the end marker.
            self.terminated = true;
            let mut out = self.flush_all("", r, End::Clean);
            out.push(e);
            return out;
        }
        let Some(v) = json else {
            let emitted = r.push(&mut self.plain, &data);
            if emitted != data {
                e.set_data(&emitted);
            }
            return vec![e];
        };
        let mut out = Vec::new();
        if v.get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| TERMINAL_EVENTS.contains(&t))
        {
            // Held text goes out before the end event.
            self.terminated = true;
            out = self.flush_all("", r, End::Clean);
        } else if let Some(prefix_key) = ends_fields(&v) {
            out = self.flush_all(&prefix_key, r, End::Clean);
        }
        let fields: BTreeMap<String, FieldKey> = delta_fields(&v).into_iter().collect();
        if !fields.is_empty() && self.template.is_none() && v.get("choices").is_some() {
            self.template = Some(v.clone());
        }
        let finishing: Vec<u64> = v
            .get("choices")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter(|c| c.get("finish_reason").is_some_and(|f| !f.is_null()))
                    .filter_map(|c| c.get("index").and_then(Value::as_u64))
                    .collect()
            })
            .unwrap_or_default();
        let streams = &mut self.fields;
        let rewritten = crate::inspect::json_text::rewrite_strings(data.as_bytes(), &mut |path, s| {
            // Building the pointer of every string costs; only a delta's leaf can match.
            let leaf = matches!(path.last(), Some(crate::inspect::json_text::Seg::Key(k)) if DELTA_LEAVES.contains(&k.as_ref()));
            let key = leaf
                .then(|| fields.get(&crate::inspect::json_text::pointer(path)))
                .flatten();
            let Some(key) = key else {
                // Not a delta: redacted whole (e.g. response.completed, message_start).
                return Some(r.text(s));
            };
            let stream = streams.entry(key.clone()).or_default();
            let mut emitted = r.push(stream, s);
            // The choice ends here: nothing of it may stay held.
            if finishing.iter().any(|i| key.starts_with(&format!("c{i}/"))) {
                emitted.push_str(&r.flush(stream));
            }
            Some(emitted)
        });
        match rewritten {
            Some(Some(new)) => e.set_data(&String::from_utf8_lossy(&new)),
            Some(None) => {}
            // serde_json read it but the walker did not (cannot happen for valid JSON):
            // never pass it as inspected.
            None => e.set_data(&r.text(&data)),
        }
        out.push(e);
        out
    }

    /// Held text of the fields whose key starts with `prefix`, as synthesized delta events
    /// in the stream's own shape.
    fn flush_all(&mut self, prefix: &str, r: &mut Redactor, end: End) -> Vec<crate::inspect::sse::Event> {
        let mut out = Vec::new();
        if prefix.is_empty() {
            let text = match end {
                End::Clean => r.flush(&mut self.plain),
                End::Cut => r.flush_cut(&mut self.plain),
            };
            if !text.is_empty() {
                let mut e = crate::inspect::sse::Event::default();
                e.set_data(&text);
                out.push(e);
            }
        }
        let keys: Vec<String> = self
            .fields
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        for key in keys {
            let Some(stream) = self.fields.get_mut(&key) else {
                continue;
            };
            let text = match end {
                End::Clean => r.flush(stream),
                End::Cut => r.flush_cut(stream),
            };
            if text.is_empty() {
                continue;
            }
            if let Some(ev) = self.synthesize(&key, text) {
                out.push(ev);
            }
        }
        out
    }

    fn synthesize(&self, key: &str, text: String) -> Option<crate::inspect::sse::Event> {
        let (item, field) = key.split_once('/')?;
        let data_event = |event: Option<&str>, v: Value| {
            let mut e = crate::inspect::sse::Event::default();
            if let Some(name) = event {
                e.fields
                    .push((crate::inspect::sse::Field::Event, name.to_string()));
            }
            e.set_data(&v.to_string());
            e
        };
        if let Some(idx) = item.strip_prefix('c') {
            let idx: u64 = idx.parse().ok()?;
            let mut v = self
                .template
                .clone()
                .unwrap_or_else(|| serde_json::json!({"object": "chat.completion.chunk"}));
            let choice = if let Some(t) = field.strip_prefix("tool") {
                serde_json::json!({"index": idx, "delta": {"tool_calls": [{"index": t.parse::<u64>().unwrap_or(0), "function": {"arguments": text}}]}, "finish_reason": null})
            } else if field == "text" {
                serde_json::json!({"index": idx, "text": text, "finish_reason": null})
            } else {
                serde_json::json!({"index": idx, "delta": { field: text }, "finish_reason": null})
            };
            if let Some(o) = v.as_object_mut() {
                o.insert("choices".into(), serde_json::json!([choice]));
                o.remove("usage");
            }
            return Some(data_event(None, v));
        }
        if let Some(idx) = item.strip_prefix('a') {
            let idx: u64 = idx.parse().ok()?;
            let kind = match field {
                "partial_json" => "input_json_delta",
                "thinking" => "thinking_delta",
                _ => "text_delta",
            };
            let v = serde_json::json!({"type": "content_block_delta", "index": idx, "delta": {"type": kind, field: text}});
            return Some(data_event(Some("content_block_delta"), v));
        }
        if item.starts_with('r') {
            let mut parts = key.strip_prefix('r')?.splitn(3, '/');
            let (item_id, content_index, kind) = (parts.next()?, parts.next()?, parts.next()?);
            let v = serde_json::json!({"type": kind, "item_id": item_id,
                "content_index": content_index.parse::<u64>().unwrap_or(0), "delta": text});
            return Some(data_event(Some(kind), v));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::{redact, Detectors};
    use serde_json::json;

    fn redactor<'a>(d: &'a Detectors, rep: &'a Replacement, counts: &'a mut Counts) -> Redactor<'a> {
        Redactor {
            detectors: d,
            replacement: rep,
            counts,
        }
    }

    fn stream_text(text: &str, cuts: &[usize]) -> String {
        stream_text_ending(text, cuts, End::Clean)
    }

    fn stream_text_ending(text: &str, cuts: &[usize], end: End) -> String {
        let d = Detectors::all();
        let rep = Replacement::Tag;
        let mut counts = Counts::new();
        let mut r = redactor(&d, &rep, &mut counts);
        let mut s = TextStream::default();
        let mut out = String::new();
        let mut last = 0;
        for &c in cuts.iter().chain(std::iter::once(&text.len())) {
            if c <= last || !text.is_char_boundary(c) {
                continue;
            }
            out.push_str(&r.push(&mut s, &text[last..c]));
            last = c;
        }
        out.push_str(&match end {
            End::Clean => r.flush(&mut s),
            End::Cut => r.flush_cut(&mut s),
        });
        out
    }

    /// The whole text in one push: what the chunked runs must equal. A clean end gives
    /// plain whole-text redaction, whatever the text ends with.
    fn whole(text: &str) -> String {
        let whole = stream_text(text, &[]);
        assert_eq!(
            whole,
            redact(text, &Detectors::all(), &Replacement::Tag, &mut Counts::new())
        );
        whole
    }

    const SAMPLE: &str = "Contact jane.doe@example.com or call +1 415 555 2671. Card 4111 1111 1111 1111, \
IBAN DE89 3704 0044 0532 0130 00. Key AKIAIOSFODNN7EXAMPLE and password = 'correct-horse-battery'. \
-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\nkqhkiG9w0BAQEF\n-----END PRIVATE KEY----- bye 10.0.0.1 end";

    #[test]
    fn every_split_gives_the_whole_text_result() {
        let expected = whole(SAMPLE);
        assert!(!expected.contains("4111") && !expected.contains("jane.doe") && !expected.contains("MIIEvQ"));
        for cut in 0..SAMPLE.len() {
            assert_eq!(stream_text(SAMPLE, &[cut]), expected, "cut at {cut}");
        }
        // Tiny deltas, like token streaming.
        let every: Vec<usize> = (0..SAMPLE.len()).step_by(3).collect();
        assert_eq!(stream_text(SAMPLE, &every), expected);
    }

    /// xorshift for reproducible random bodies and chunkings.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    #[test]
    fn property_output_is_independent_of_chunking() {
        let secrets = [
            "AKIAIOSFODNN7EXAMPLE",
            "ghp_0123456789abcdefghijklmnopqrstuvwxyz",
            "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd",
            "4111 1111 1111 1111",
            "5555-5555-5555-4444",
            "123-45-6789",
            "DE89 3704 0044 0532 0130 00",
            "a.b@example.org",
            "(415) 555-2671",
            "192.168.1.20",
            "password: hunter2hunter2",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg\n-----END EC PRIVATE KEY-----",
        ];
        let words = [
            "the",
            "model",
            "said",
            "ok.",
            "données",
            "\n",
            "  ",
            "see:",
            "(x)",
            "1.2.3",
            "2024-01-15",
            "—",
        ];
        let mut rng = Rng(0x1234_5678_9abc_def1);
        for _ in 0..400 {
            let mut body = String::new();
            for _ in 0..rng.below(40) + 5 {
                if rng.below(5) == 0 {
                    body.push_str(secrets[rng.below(secrets.len())]);
                } else {
                    body.push_str(words[rng.below(words.len())]);
                }
                body.push(if rng.below(4) == 0 { '\n' } else { ' ' });
            }
            let expected = whole(&body);
            for _ in 0..5 {
                let mut cuts: Vec<usize> = (0..rng.below(12)).map(|_| rng.below(body.len())).collect();
                cuts.sort_unstable();
                assert_eq!(stream_text(&body, &cuts), expected, "body {body:?} cuts {cuts:?}");
            }
        }
    }

    fn sse_chat(deltas: &[&str]) -> String {
        let mut s = String::new();
        for d in deltas {
            s.push_str(&format!(
                "data: {}\n\n",
                json!({"id": "c", "object": "chat.completion.chunk", "model": "m",
                "choices": [{"index": 0, "delta": {"content": d}, "finish_reason": null}]})
            ));
        }
        s.push_str(&format!(
            "data: {}\n\n",
            json!({"id": "c", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        ));
        s.push_str("data: [DONE]\n\n");
        s
    }

    fn content_of(sse: &str) -> String {
        sse.split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter_map(|v| {
                v.pointer("/choices/0/delta/content")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect()
    }

    fn run_sse(body: &str, cuts: &[usize]) -> String {
        let d = Detectors::all();
        let rep = Replacement::Tag;
        let mut counts = Counts::new();
        let mut r = redactor(&d, &rep, &mut counts);
        let mut s = SseRedactor::default();
        let mut out = Vec::new();
        let mut last = 0;
        for &c in cuts.iter().chain(std::iter::once(&body.len())) {
            if c <= last {
                continue;
            }
            out.extend(s.feed(&body.as_bytes()[last..c], c == body.len(), &mut r));
            last = c;
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn sse_secret_split_across_events_and_chunks_never_leaks() {
        let deltas = [
            "My card is 4111 ",
            "1111 11",
            "11 1111 and key AKIA",
            "IOSFODNN7EX",
            "AMPLE. Bye",
        ];
        let body = sse_chat(&deltas);
        for cut in (1..body.len()).step_by(7) {
            let out = run_sse(&body, &[cut]);
            assert!(
                !out.contains("4111") && !out.contains("1111 1111"),
                "cut {cut}: {out}"
            );
            assert!(!out.contains("IOSFODNN") && !out.contains("AKIA"), "cut {cut}");
            assert_eq!(
                content_of(&out),
                "My card is [REDACTED:payment_card] and key [REDACTED:aws_access_key]. Bye"
            );
            assert!(out.ends_with("data: [DONE]\n\n"));
            for ev in out.split("\n\n").filter(|e| !e.is_empty()) {
                let data = ev.strip_prefix("data: ").unwrap();
                assert!(
                    data == "[DONE]" || serde_json::from_str::<Value>(data).is_ok(),
                    "invalid event {ev}"
                );
            }
        }
    }

    #[test]
    fn sse_tool_arguments_and_anthropic_and_responses() {
        let ev = |v: Value| format!("data: {v}\n\n");
        let body = [
            ev(json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"name": "send", "arguments": "{\"to\": \"bob@exa"}}]}}]})),
            ev(json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "mple.com\"}"}}]}, "finish_reason": null}]})),
            ev(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})),
            "data: [DONE]\n\n".to_string(),
        ]
        .concat();
        let out = run_sse(&body, &[]);
        assert!(!out.contains("bob@") && out.contains("[REDACTED:email]"), "{out}");
        let anthropic = format!(
            "event: content_block_delta\ndata: {}\n\nevent: content_block_delta\ndata: {}\n\nevent: content_block_stop\ndata: {}\n\n",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ssn 123-4"}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "5-6789 ok"}}),
            json!({"type": "content_block_stop", "index": 0})
        );
        let out = run_sse(&anthropic, &[]);
        assert!(
            !out.contains("6789") && out.contains("[REDACTED:us_ssn]"),
            "{out}"
        );
        assert!(out.find("[REDACTED:us_ssn]").unwrap() < out.find("content_block_stop").unwrap());
        let responses = format!(
            "event: response.output_text.delta\ndata: {}\n\nevent: response.output_text.done\ndata: {}\n\nevent: response.completed\ndata: {}\n\n",
            json!({"type": "response.output_text.delta", "item_id": "m1", "content_index": 0, "delta": "mail a@b.io"}),
            json!({"type": "response.output_text.done", "item_id": "m1", "content_index": 0, "text": "mail a@b.io"}),
            json!({"type": "response.completed", "response": {"output": [{"content": [{"text": "mail a@b.io"}]}]}})
        );
        let out = run_sse(&responses, &[]);
        assert!(!out.contains("a@b.io"), "{out}");
        assert_eq!(out.matches("[REDACTED:email]").count(), 3);
    }

    #[test]
    fn json_bodies_stay_valid() {
        let d = Detectors::all();
        let rep = Replacement::Tag;
        let mut counts = Counts::new();
        let mut r = redactor(&d, &rep, &mut counts);
        let body = json!({"choices": [{"message": {"content": "card 4111111111111111", "tool_calls": [
            {"function": {"name": "email", "arguments": "{\"to\":\"x@y.com\"}"}}]}}], "usage": {"total_tokens": 5}});
        let out = redact_json_body(body.to_string().as_bytes(), &mut r).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v["choices"][0]["message"]["content"],
            "card [REDACTED:payment_card]"
        );
        assert_eq!(
            v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"to\":\"[REDACTED:email]\"}"
        );
        assert_eq!(v["usage"]["total_tokens"], 5);
        assert_eq!(counts.get("payment_card"), Some(&1));
        assert!(redact_json_body(b"not json", &mut redactor(&d, &rep, &mut Counts::new())).is_none());
    }

    #[test]
    fn a_clean_end_emits_the_last_word() {
        for text in [
            "mail jane.doe@exam",
            "order 4111 1111 11",
            "total 123456789",
            "key AKIAIOSFOD",
        ] {
            for cut in 0..text.len() {
                assert_eq!(stream_text(text, &[cut]), text, "{text:?} cut {cut}");
            }
        }
        // SSE ended by [DONE] on a long number: the last word goes out, as in a JSON body.
        let out = run_sse(&sse_chat(&["Your order number is 1234", "5678901234"]), &[]);
        assert_eq!(content_of(&out), "Your order number is 12345678901234");
        // Without [DONE] (nor a finish_reason) the stream was cut: the tail is withheld.
        let cut_body = format!(
            "data: {}\n\n",
            json!({"choices": [{"index": 0, "delta": {"content": "order 1234 5678 9012"}, "finish_reason": null}]})
        );
        let out = run_sse(&cut_body, &[]);
        assert_eq!(content_of(&out), "order [REDACTED:partial]");
        // Anthropic's message_stop and the Responses API's response.completed end cleanly.
        let anthropic = format!(
            "event: content_block_delta\ndata: {}\n\nevent: message_stop\ndata: {}\n\n",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ref 98765432101"}}),
            json!({"type": "message_stop"})
        );
        let out = run_sse(&anthropic, &[]);
        assert!(
            out.contains("ref 98765432101") && !out.contains("partial"),
            "{out}"
        );
        assert!(out.find("98765432101").unwrap() < out.find("message_stop").unwrap());
        let responses = format!(
            "event: response.output_text.delta\ndata: {}\n\nevent: response.completed\ndata: {}\n\n",
            json!({"type": "response.output_text.delta", "item_id": "m1", "content_index": 0, "delta": "ref 98765432101"}),
            json!({"type": "response.completed", "response": {}})
        );
        let out = run_sse(&responses, &[]);
        assert!(
            out.contains("ref 98765432101") && !out.contains("partial"),
            "{out}"
        );
    }

    #[test]
    fn truncated_secret_at_the_end_is_withheld() {
        for (text, out) in [
            ("mail jane.doe@exam", "mail [REDACTED:partial]"),
            ("key AKIAIOSFOD", "key [REDACTED:partial]"),
            ("card 4111 1111 11", "card [REDACTED:partial]"),
            ("all good here", "all good here"),
            ("done at 10:30", "done at 10:30"),
            ("mail a@b.io", "mail [REDACTED:email]"),
        ] {
            for cut in 0..text.len() {
                assert_eq!(
                    stream_text_ending(text, &[cut], End::Cut),
                    out,
                    "{text:?} cut {cut}"
                );
            }
        }
    }

    #[test]
    fn a_character_cut_by_a_chunk_boundary_is_not_mangled() {
        let text = "Grüße, 日本語 and 🦀 from jane.doe@example.com — ok";
        let d = Detectors::all();
        let rep = Replacement::Tag;
        let expected = redact(text, &d, &rep, &mut Counts::new());
        for cut in 0..=text.len() {
            let mut counts = Counts::new();
            let mut r = redactor(&d, &rep, &mut counts);
            let mut s = TextStream::default();
            let (a, b) = text.as_bytes().split_at(cut);
            let mut out = r.push_bytes(&mut s, a);
            out.push_str(&r.push_bytes(&mut s, b));
            out.push_str(&r.flush(&mut s));
            assert_eq!(out, expected, "cut at byte {cut}");
        }
        // A body that ends inside a character: the stray bytes become U+FFFD, nothing is lost.
        let mut counts = Counts::new();
        let mut r = redactor(&d, &rep, &mut counts);
        let mut s = TextStream::default();
        let mut out = r.push_bytes(&mut s, "ok ".as_bytes());
        out.push_str(&r.push_bytes(&mut s, &"🦀".as_bytes()[..2]));
        out.push_str(&r.flush(&mut s));
        assert_eq!(out, "ok \u{FFFD}");
    }

    #[test]
    fn a_large_chunk_is_released_but_for_the_last_runs() {
        // Envoy can hand over a whole 1 MiB body at once: only the last few runs may stay
        // held (for a secret continuing in the next chunk), not MAX_HOLD / 2 bytes.
        let d = Detectors::all();
        let rep = Replacement::Tag;
        let mut counts = Counts::new();
        let mut r = redactor(&d, &rep, &mut counts);
        let mut s = TextStream::default();
        let body = "the model summarised the report for jane.doe@example.com today. ".repeat(4000);
        let out = r.push(&mut s, &body);
        assert!(s.held().len() < 100, "held {} bytes", s.held().len());
        // The last address is within the held runs, redacted with the next chunk or at the end.
        assert_eq!(r.counts.get("email"), Some(&3999));
        assert!(out.len() + s.held().len() < body.len() && !out.contains("jane.doe"));
    }

    #[test]
    fn hold_back_is_bounded() {
        let d = Detectors::all();
        let rep = Replacement::Tag;
        let mut counts = Counts::new();
        let mut r = redactor(&d, &rep, &mut counts);
        let mut s = TextStream::default();
        let mut emitted = 0;
        for _ in 0..200 {
            emitted += r.push(&mut s, &"x".repeat(1000)).len();
            assert!(s.held().len() <= MAX_HOLD + 1000);
        }
        assert!(emitted > 100_000);
        // An unterminated private key that never ends is redacted whole, not leaked.
        let mut s = TextStream::default();
        let mut out = r.push(&mut s, "-----BEGIN PRIVATE KEY-----\n");
        for _ in 0..100 {
            out.push_str(&r.push(&mut s, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC\n"));
        }
        out.push_str(&r.push(&mut s, &"A".repeat(MAX_HOLD)));
        out.push_str(&r.flush(&mut s));
        assert!(!out.contains("MIIEvQ"), "key material leaked");
    }
}
