//! `make bench`: native redaction throughput (MB/s) on text with a realistic sprinkling of
//! secrets/PII, whole-body and streamed in small chunks, against a plain copy (passthrough).
//! Prints figures; asserts nothing.

use llm_warden::authz::llm_request::Endpoint;
use llm_warden::authz::policy::ForbiddenToolCall;
use llm_warden::inspect::sse_pipeline::{SsePipeline, StreamOptions};
use llm_warden::redact::stream::{Redactor, SseRedactor, TextStream};
use llm_warden::redact::{redact, Counts, Detectors, Replacement};
use std::hint::black_box;
use std::time::Instant;

fn corpus(bytes: usize) -> String {
    let words = [
        "the",
        "model",
        "returns",
        "a",
        "summary",
        "of",
        "quarterly",
        "revenue",
        "growth,",
        "and",
        "notes",
        "that",
        "2024-01-15",
        "v1.2.3",
        "customers",
        "requested",
        "features.",
        "\n",
    ];
    let secrets = [
        "jane.doe@example.com",
        "4111 1111 1111 1111",
        "AKIAIOSFODNN7EXAMPLE",
        "+1 415 555 2671",
        "192.168.1.20",
        "password=hunter2hunter2",
    ];
    let mut s = String::with_capacity(bytes + 64);
    let mut i = 0usize;
    while s.len() < bytes {
        if i.is_multiple_of(97) {
            s.push_str(secrets[(i / 97) % secrets.len()]);
        } else {
            s.push_str(words[i % words.len()]);
        }
        s.push(' ');
        i += 1;
    }
    s
}

fn mb_per_s(bytes: usize, f: impl Fn()) -> f64 {
    f();
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    bytes as f64 / best / 1e6
}

/// An OpenAI chat stream of `events` content deltas (a few words each) taken from `text`.
fn sse_body(text: &str, events: usize) -> Vec<u8> {
    let mut out = String::new();
    let mut words = text.split(' ');
    for _ in 0..events {
        let delta: Vec<&str> = words.by_ref().take(3).collect();
        let chunk = serde_json::json!({"id": "chatcmpl-1", "object": "chat.completion.chunk",
            "created": 1, "model": "m", "choices": [{"index": 0, "delta": {"content": format!("{} ", delta.join(" "))},
            "finish_reason": null}]});
        out.push_str(&format!("data: {chunk}\n\n"));
    }
    out.push_str("data: [DONE]\n\n");
    out.into_bytes()
}

/// Nanoseconds per event to redact an SSE stream delivered in network chunks of `chunk`
/// bytes: with the redactor alone, or (`pipeline`) through the whole response pipeline
/// (one parse, tool-call guard, redaction).
fn sse_ns_per_event(
    body: &[u8],
    events: usize,
    chunk: usize,
    pipeline: bool,
    d: &Detectors,
    rep: &Replacement,
) -> f64 {
    let run = || {
        let mut counts = Counts::new();
        let mut r = Redactor {
            detectors: d,
            replacement: rep,
            counts: &mut counts,
        };
        let mut s = SseRedactor::default();
        let mut p = SsePipeline::new(StreamOptions {
            endpoint: Endpoint::ChatCompletions,
            tool_calls: Some((ForbiddenToolCall::Error, true)),
            redaction: Some(true),
            strip_forced_usage: true,
        });
        let mut out = 0;
        let parts: Vec<&[u8]> = body.chunks(chunk).collect();
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            out += if pipeline {
                p.feed(part, last, &|_| true, Some(&mut r)).len()
            } else {
                s.feed(part, last, &mut r).len()
            };
        }
        black_box(out);
    };
    run();
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        run();
        best = best.min(t.elapsed().as_secs_f64());
    }
    best * 1e9 / events as f64
}

fn main() {
    let text = corpus(4 * 1024 * 1024);
    let d = Detectors::all();
    let rep = Replacement::Tag;
    if std::env::var_os("SSE_ONLY").is_some() {
        // One pass over the SSE stream only, for a stable instruction count on a busy
        // machine: `SSE_ONLY=1 valgrind --tool=callgrind target/release/deps/redact-*`.
        let body = sse_body(&text, 20_000);
        let parts: Vec<&[u8]> = body.chunks(1024).collect();
        let mut counts = Counts::new();
        let mut r = Redactor {
            detectors: &d,
            replacement: &rep,
            counts: &mut counts,
        };
        let mut s = SseRedactor::default();
        let mut out = 0;
        // `SSE_ONLY=setup`: the same without the redaction, to subtract.
        if std::env::var_os("SSE_ONLY").is_some_and(|v| v == "setup") {
            return;
        }
        for (i, part) in parts.iter().enumerate() {
            out += s.feed(part, i + 1 == parts.len(), &mut r).len();
        }
        black_box(out);
        return;
    }
    let copy = mb_per_s(text.len(), || {
        black_box(text.clone());
    });
    let whole = mb_per_s(text.len(), || {
        black_box(redact(&text, &d, &rep, &mut Counts::new()));
    });
    let streamed = |chunk: usize| {
        mb_per_s(text.len(), || {
            let mut counts = Counts::new();
            let mut r = Redactor {
                detectors: &d,
                replacement: &rep,
                counts: &mut counts,
            };
            let mut s = TextStream::default();
            let mut out = 0;
            let bytes = text.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                let mut j = (i + chunk).min(bytes.len());
                while !text.is_char_boundary(j) {
                    j += 1;
                }
                out += r.push(&mut s, &text[i..j]).len();
                i = j;
            }
            out += r.flush(&mut s).len();
            black_box(out);
        })
    };
    println!("llm-warden redaction throughput (native, release profile, all detectors, 4 MiB text)");
    println!("{:<40} {:>10.0} MB/s", "passthrough (copy)", copy);
    println!("{:<40} {:>10.0} MB/s", "whole body", whole);
    println!(
        "{:<40} {:>10.0} MB/s",
        "streamed, 16 KiB chunks",
        streamed(16 * 1024)
    );
    println!("{:<40} {:>10.0} MB/s", "streamed, 256 B chunks", streamed(256));
    let events = 20_000;
    let body = sse_body(&text, events);
    println!(
        "SSE chat stream, {events} content-delta events ({} bytes)",
        body.len()
    );
    for chunk in [64usize, 1024, 16 * 1024] {
        println!(
            "{:<40} {:>10.0} ns/event",
            format!("SSE redaction, {chunk} B chunks"),
            sse_ns_per_event(&body, events, chunk, false, &d, &rep)
        );
    }
    for chunk in [64usize, 1024, 16 * 1024] {
        println!(
            "{:<40} {:>10.0} ns/event",
            format!("SSE pipeline (tools+redact), {chunk} B"),
            sse_ns_per_event(&body, events, chunk, true, &d, &rep)
        );
    }
}
