//! The response-stream pipeline for SSE: one parse (`crate::inspect::sse`) feeding the tool-call
//! guard, the removal of a usage chunk the filter asked for on the client's behalf, and
//! redaction; the client gets the events re-framed canonically, exactly as inspected.

use crate::inspect::sse::{Event, Inspected, Parser};
pub use crate::inspect::stream_inspection::{StreamInspection, StreamOptions};
use crate::inspect::tool_calls::SseToolGuard;
use crate::redact::stream::{Redactor, SseRedactor};
use serde_json::Value;

/// True for the chunk `include_usage` adds: no choices, a usage object.
pub fn is_usage_only_chunk(v: &Value) -> bool {
    v.get("choices")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
        && v.get("usage").is_some_and(Value::is_object)
}

impl StreamInspection for SsePipeline {
    fn feed(
        &mut self,
        chunk: &[u8],
        end_of_stream: bool,
        allowed: &dyn Fn(&str) -> bool,
        redactor: Option<&mut Redactor>,
    ) -> Vec<u8> {
        SsePipeline::feed(self, chunk, end_of_stream, allowed, redactor)
    }
    fn blocked(&self) -> Option<&str> {
        SsePipeline::blocked(self)
    }
    fn uninspectable(&self) -> bool {
        SsePipeline::uninspectable(self)
    }
}

#[derive(Debug)]
pub struct SsePipeline {
    opts: StreamOptions,
    parser: Parser,
    guard: Option<SseToolGuard>,
    redactor: SseRedactor,
    /// Nothing more goes out (a block was enforced, or the stream was cut).
    ended: bool,
    uninspectable: bool,
}

impl SsePipeline {
    pub fn new(opts: StreamOptions) -> SsePipeline {
        SsePipeline {
            guard: opts
                .tool_calls
                .map(|(mode, _)| SseToolGuard::new(opts.endpoint, mode)),
            opts,
            parser: Parser::default(),
            redactor: SseRedactor::default(),
            ended: false,
            uninspectable: false,
        }
    }

    /// The forbidden tool the stream called (blocked, or only reported in monitor mode).
    pub fn blocked(&self) -> Option<&str> {
        self.guard.as_ref().and_then(SseToolGuard::blocked)
    }

    /// An event was too large to inspect: the stream was cut with an error event
    /// (audit reason `unparseable`).
    pub fn uninspectable(&self) -> bool {
        self.uninspectable
    }

    /// Takes the next upstream chunk (after credential scrubbing); returns the bytes to
    /// send the client now. `redactor` is the route's redactor when redaction is on.
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
        let mut parsed = self.parser.feed(chunk);
        if end_of_stream {
            if let Ok(events) = &mut parsed {
                match self.parser.finish() {
                    Ok(rest) => events.extend(rest),
                    Err(e) => parsed = Err(e),
                }
            }
        }
        let (events, oversized) = match parsed {
            Ok(events) => (events, false),
            Err(_) => (Vec::new(), true),
        };
        for e in events {
            self.event(e, allowed, redactor.as_deref_mut(), &mut out);
            if self.ended {
                return out;
            }
        }
        if oversized {
            self.uninspectable = true;
            self.ended = true;
            let replacement = match &mut self.guard {
                Some(g) => {
                    let tool = g.block_uninspectable();
                    g.replacement_events(&tool)
                }
                None => vec![Event::with_data(&String::from_utf8_lossy(
                    &crate::outcome::reason::withheld_body(crate::outcome::reason::Withheld::Unparseable),
                ))],
            };
            for e in replacement {
                self.redacted(e, redactor.as_deref_mut(), &mut out);
            }
            self.flush(redactor, &mut out, true);
            return out;
        }
        if end_of_stream {
            self.flush(redactor, &mut out, false);
        }
        out
    }

    fn event(
        &mut self,
        e: Event,
        allowed: &dyn Fn(&str) -> bool,
        mut redactor: Option<&mut Redactor>,
        out: &mut Vec<u8>,
    ) {
        let e = Inspected::new(e);
        if let (Some(g), Some((_, enforce))) = (&mut self.guard, self.opts.tool_calls) {
            if g.blocked().is_none() {
                if let Some(tool) = g.check_event(&e, allowed) {
                    if enforce {
                        self.ended = true;
                        for r in g.replacement_events(&tool) {
                            self.redacted(r, redactor.as_deref_mut(), out);
                        }
                        self.flush(redactor, out, true);
                        return;
                    }
                }
            }
        }
        if self.opts.strip_forced_usage && e.json.as_ref().is_some_and(is_usage_only_chunk) {
            return;
        }
        self.redacted_inspected(e, redactor, out);
    }

    fn redacted(&mut self, e: Event, redactor: Option<&mut Redactor>, out: &mut Vec<u8>) {
        self.redacted_inspected(Inspected::new(e), redactor, out)
    }

    fn redacted_inspected(&mut self, e: Inspected, redactor: Option<&mut Redactor>, out: &mut Vec<u8>) {
        match (self.opts.redaction, redactor) {
            (Some(enforce), Some(r)) => {
                let original = (!enforce).then(|| e.event.clone());
                let events = self.redactor.inspected(e, r);
                match original {
                    Some(e) => e.write_to(out),
                    None => events.iter().for_each(|e| e.write_to(out)),
                }
            }
            _ => e.event.write_to(out),
        }
    }

    /// Held text at the end: `cut` when the filter stopped the stream; otherwise the body
    /// ended, cleanly if the stream's own end marker came (see `SseRedactor::finish`).
    fn flush(&mut self, redactor: Option<&mut Redactor>, out: &mut Vec<u8>, cut: bool) {
        if let (Some(enforce), Some(r)) = (self.opts.redaction, redactor) {
            let held = if cut {
                self.redactor.finish_cut(r)
            } else {
                self.redactor.finish(r)
            };
            if enforce {
                held.iter().for_each(|e| e.write_to(out));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::llm_request::Endpoint;
    use crate::inspect::tool_calls::ForbiddenToolCall;
    use crate::redact::{Counts, Detectors, Replacement};
    use serde_json::json;

    fn opts() -> StreamOptions {
        StreamOptions {
            endpoint: Endpoint::ChatCompletions,
            tool_calls: Some((ForbiddenToolCall::Error, true)),
            redaction: Some(true),
            strip_forced_usage: false,
        }
    }

    fn only_search(t: &str) -> bool {
        t.starts_with("search")
    }

    /// Runs a body through the pipeline split at `cuts`.
    fn run(o: StreamOptions, body: &[u8], cuts: &[usize]) -> (String, Option<String>, Counts) {
        let d = Detectors::all();
        let rep = Replacement::Tag;
        let mut counts = Counts::new();
        let mut p = SsePipeline::new(o);
        let mut out = Vec::new();
        {
            let mut r = Redactor {
                detectors: &d,
                replacement: &rep,
                counts: &mut counts,
            };
            let mut last = 0;
            for &c in cuts.iter().chain(std::iter::once(&body.len())) {
                if c < last || c > body.len() || (c == last && c != body.len()) {
                    continue;
                }
                out.extend(p.feed(&body[last..c], c == body.len(), &only_search, Some(&mut r)));
                last = c;
            }
        }
        (
            String::from_utf8(out).unwrap(),
            p.blocked().map(str::to_string),
            counts,
        )
    }

    fn chunk(delta: Value) -> String {
        json!({"id": "c1", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": null}]})
        .to_string()
    }

    fn contents(sse: &str) -> String {
        crate::inspect::sse::Parser::default()
            .feed(sse.as_bytes())
            .unwrap()
            .iter()
            .filter_map(Event::data)
            .filter_map(|d| serde_json::from_str::<Value>(&d).ok())
            .filter_map(|v| {
                v.pointer("/choices/0/delta/content")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect()
    }

    #[test]
    fn cr_framing_with_a_secret_split_across_events() {
        let body = format!(
            "data: {}\r\rdata: {}\r\rdata: {}\r\rdata: [DONE]\r\r",
            chunk(json!({"content": "key AKIAIOSF"})),
            chunk(json!({"content": "ODNN7EXAMPLE ok"})),
            json!({"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        );
        for cut in 0..=body.len() {
            let (out, _, counts) = run(opts(), body.as_bytes(), &[cut]);
            assert!(!out.contains("IOSF") && !out.contains('\r'), "cut {cut}: {out}");
            assert_eq!(contents(&out), "key [REDACTED:aws_access_key] ok", "cut {cut}");
            assert_eq!(counts.get("aws_access_key"), Some(&1));
            assert!(out.ends_with("data: [DONE]\n\n"));
        }
    }

    #[test]
    fn n_r_n_framing_is_split_into_its_events() {
        let body = format!(
            "data: {}\n\r\ndata: {}\n\r\ndata: [DONE]\n\r\n",
            chunk(json!({"content": "mail jane.doe@exa"})),
            chunk(json!({"content": "mple.com now"})),
        );
        let (out, _, _) = run(opts(), body.as_bytes(), &[]);
        assert_eq!(contents(&out), "mail [REDACTED:email] now");
        // Two events (their held text flushed as a third before the end marker), not one.
        assert_eq!(out.matches("data: ").count(), 4, "{out}");
        assert!(!out.contains('\r'));
    }

    #[test]
    fn forbidden_tool_in_cr_framing_is_blocked_with_its_arguments() {
        let body = format!(
            "data: {}\r\rdata: {}\r\rdata: {}\r\r",
            chunk(json!({"content": "sure"})),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"name": "delete_db", "arguments": ""}}]})),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"table\": \"users\"}"}}]})),
        );
        for cut in 0..=body.len() {
            let (out, blocked, _) = run(opts(), body.as_bytes(), &[cut]);
            assert_eq!(blocked.as_deref(), Some("delete_db"));
            assert!(
                !out.contains("users") && !out.contains("\"name\":\"delete_db\""),
                "cut {cut}: {out}"
            );
            assert!(out.contains("tool_not_permitted") && out.ends_with("data: [DONE]\n\n"));
            assert_eq!(contents(&out), "sure");
        }
        // Monitor: reported, passed.
        let o = StreamOptions {
            tool_calls: Some((ForbiddenToolCall::Error, false)),
            ..opts()
        };
        let (out, blocked, _) = run(o, body.as_bytes(), &[]);
        assert_eq!(blocked.as_deref(), Some("delete_db"));
        assert!(out.contains("users"));
    }

    #[test]
    fn nan_logprobs_and_escaped_secret() {
        let body = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\\u0041KIAIOSFODNN7EXAMPLE \"},\"logprobs\":{\"content\":[{\"token\":\"x\",\"logprob\":-Infinity}]},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
        let (out, _, _) = run(opts(), body.as_bytes(), &[]);
        assert!(
            !out.contains("IOSFODNN") && out.contains("[REDACTED:aws_access_key]"),
            "{out}"
        );
        assert!(out.contains("-Infinity"), "other bytes untouched: {out}");
    }

    #[test]
    fn forced_usage_chunk_is_removed_and_a_requested_one_kept_byte_for_byte() {
        let usage = json!({"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})
        .to_string();
        let body = format!(
            "data: {}\n\ndata: {usage}\n\ndata: [DONE]\n\n",
            chunk(json!({"content": "hi"}))
        );
        // Redaction holds text back (and re-emits it later): compare without it.
        let plain = StreamOptions {
            redaction: None,
            ..opts()
        };
        let forced = StreamOptions {
            strip_forced_usage: true,
            ..plain
        };
        for cut in 0..=body.len() {
            let (out, _, _) = run(forced, body.as_bytes(), &[cut]);
            assert!(!out.contains("total_tokens"), "cut {cut}: {out}");
            assert_eq!(
                out,
                format!("data: {}\n\ndata: [DONE]\n\n", chunk(json!({"content": "hi"})))
            );
            let (out, _, _) = run(plain, body.as_bytes(), &[cut]);
            assert_eq!(out, body, "cut {cut}: asked for, so unchanged");
        }
        // The meter still reads it from the upstream bytes.
        let mut m = crate::limits::usage::UsageMeter::new(true);
        m.feed(body.as_bytes());
        assert_eq!(m.finish(), Some(5));
    }

    #[test]
    fn every_string_of_a_delta_event_is_redacted_and_monitor_changes_nothing() {
        let ev = json!({"id": "c1", "choices": [{"index": 0, "delta": {"content": "hi "},
            "logprobs": {"content": [{"token": "jane.doe@example.com"}]}, "finish_reason": "stop"}]});
        let body = format!("data: {ev}\r\rdata: [DONE]\r\r");
        let (out, _, counts) = run(opts(), body.as_bytes(), &[]);
        assert!(
            !out.contains("jane.doe") && out.contains("[REDACTED:email]"),
            "{out}"
        );
        assert_eq!(counts.get("email"), Some(&1));
        let monitor = StreamOptions {
            redaction: Some(false),
            ..opts()
        };
        let (out, _, counts) = run(monitor, body.as_bytes(), &[]);
        assert_eq!(
            out.as_bytes(),
            crate::inspect::sse::canonical(body.as_bytes()).unwrap()
        );
        assert_eq!(counts.get("email"), Some(&1));
    }

    #[test]
    fn property_output_is_independent_of_chunking() {
        let deltas = [
            "My card is 4111 ",
            "1111 11",
            "11 1111 and key AKIA",
            "IOSFODNN7EX",
            "AMPLE. Bye",
            " a@b.io ",
            "ok\n",
        ];
        let framings = ["\n\n", "\r\r", "\r\n\r\n", "\n\r\n", "\r\n\n"];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n.max(1) as u64) as usize
        };
        for _ in 0..60 {
            let mut body = String::new();
            for _ in 0..next(8) + 1 {
                let f = framings[next(framings.len())];
                body.push_str(&format!(
                    "data: {}{f}",
                    chunk(json!({"content": deltas[next(deltas.len())]}))
                ));
                if next(3) == 0 {
                    body.push_str(&format!(": ping{f}"));
                }
            }
            body.push_str("data: [DONE]\n\n");
            let (whole, _, _) = run(opts(), body.as_bytes(), &[]);
            for _ in 0..8 {
                let mut cuts: Vec<usize> = (0..next(6)).map(|_| next(body.len() + 1)).collect();
                cuts.sort_unstable();
                assert_eq!(
                    run(opts(), body.as_bytes(), &cuts).0,
                    whole,
                    "body {body:?} cuts {cuts:?}"
                );
            }
        }
    }

    #[test]
    fn oversized_event_cuts_the_stream() {
        let big = format!("data: {}", "x".repeat(crate::inspect::sse::MAX_EVENT + 1));
        let o = StreamOptions {
            tool_calls: None,
            ..opts()
        };
        let mut p = SsePipeline::new(o);
        let d = Detectors::all();
        let rep = Replacement::Tag;
        let mut counts = Counts::new();
        let mut r = Redactor {
            detectors: &d,
            replacement: &rep,
            counts: &mut counts,
        };
        let out = p.feed(big.as_bytes(), false, &only_search, Some(&mut r));
        assert!(String::from_utf8(out).unwrap().contains("uninspectable_response"));
        assert!(p.uninspectable());
        assert!(p
            .feed(b"data: more\n\n", true, &only_search, Some(&mut r))
            .is_empty());
    }
}
