//! The same text gives the same output in a JSON body, an SSE stream, an NDJSON stream and a
//! plain-text body, through the public entry points the adapter calls, however the text is
//! split into deltas and the body into network chunks; and that output is whole-text
//! redaction (a clean end emits the last word, whatever it looks like).

use llm_warden::authz::llm_request::Endpoint;
use llm_warden::inspect::ndjson::NdjsonPipeline;
use llm_warden::inspect::response::{redact_json_response, BodyOutcome, RedactionControl};
use llm_warden::inspect::sse_pipeline::{SsePipeline, StreamOptions};
use llm_warden::redact::stream::{Redactor, TextStream};
use llm_warden::redact::{redact, Counts, Detectors, Replacement};
use serde_json::{json, Value};

fn opts(endpoint: Endpoint) -> StreamOptions {
    StreamOptions {
        endpoint,
        tool_calls: None,
        redaction: Some(true),
        strip_forced_usage: false,
    }
}

/// Feeds `body` cut at `cuts` (byte offsets) to `feed`, the last chunk with end_of_stream.
fn chunked(body: &[u8], cuts: &[usize], mut feed: impl FnMut(&[u8], bool) -> Vec<u8>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut last = 0;
    for &c in cuts.iter().chain(std::iter::once(&body.len())) {
        if c < last || c > body.len() || (c == last && c != body.len()) {
            continue;
        }
        out.extend(feed(&body[last..c], c == body.len()));
        last = c;
    }
    out
}

fn pieces<'a>(text: &'a str, splits: &[usize]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut last = 0;
    for &s in splits {
        if s > last && s < text.len() && text.is_char_boundary(s) {
            out.push(&text[last..s]);
            last = s;
        }
    }
    out.push(&text[last..]);
    out
}

fn json_body(text: &str) -> String {
    let d = Detectors::all();
    let mut counts = Counts::new();
    let mut r = Redactor {
        detectors: &d,
        replacement: &Replacement::Tag,
        counts: &mut counts,
    };
    let body = json!({"id": "c1", "object": "chat.completion", "choices": [{"index": 0,
        "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]})
    .to_string();
    let control = RedactionControl {
        enforce: true,
        ..RedactionControl::default()
    };
    let out = match redact_json_response(body.as_bytes(), control, &mut r) {
        BodyOutcome::Unchanged => body.into_bytes(),
        BodyOutcome::Replace(b) => b,
        BodyOutcome::Withhold(w) => panic!("withheld: {w:?}"),
    };
    let v: Value = serde_json::from_slice(&out).unwrap();
    v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string()
}

fn sse(text: &str, splits: &[usize], cuts: &[usize]) -> String {
    let mut body = String::new();
    for d in pieces(text, splits) {
        body.push_str(&format!(
            "data: {}\n\n",
            json!({"id": "c1", "object": "chat.completion.chunk", "model": "m",
                "choices": [{"index": 0, "delta": {"content": d}, "finish_reason": null}]})
        ));
    }
    body.push_str(&format!(
        "data: {}\n\ndata: [DONE]\n\n",
        json!({"id": "c1", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    ));
    let d = Detectors::all();
    let mut counts = Counts::new();
    let mut r = Redactor {
        detectors: &d,
        replacement: &Replacement::Tag,
        counts: &mut counts,
    };
    let mut p = SsePipeline::new(opts(Endpoint::ChatCompletions));
    let out = chunked(body.as_bytes(), cuts, |c, end| {
        p.feed(c, end, &|_| true, Some(&mut r))
    });
    let out = String::from_utf8(out).unwrap();
    assert!(out.ends_with("data: [DONE]\n\n"), "{out}");
    out.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .filter_map(|v| {
            v.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect()
}

fn ndjson(text: &str, splits: &[usize], cuts: &[usize]) -> String {
    let mut body = String::new();
    for d in pieces(text, splits) {
        body.push_str(&json!({"model": "m", "created_at": "t", "message": {"role": "assistant", "content": d}, "done": false}).to_string());
        body.push('\n');
    }
    body.push_str(&json!({"model": "m", "created_at": "t", "message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop"}).to_string());
    body.push('\n');
    let d = Detectors::all();
    let mut counts = Counts::new();
    let mut r = Redactor {
        detectors: &d,
        replacement: &Replacement::Tag,
        counts: &mut counts,
    };
    let mut p = NdjsonPipeline::new(opts(Endpoint::ChatCompletions));
    let out = chunked(body.as_bytes(), cuts, |c, end| {
        p.feed(c, end, &|_| true, Some(&mut r))
    });
    let out = String::from_utf8(out).unwrap();
    out.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter_map(|v| {
            v.pointer("/message/content")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect()
}

fn plain(text: &str, cuts: &[usize]) -> String {
    let d = Detectors::all();
    let mut counts = Counts::new();
    let mut r = Redactor {
        detectors: &d,
        replacement: &Replacement::Tag,
        counts: &mut counts,
    };
    let mut s = TextStream::default();
    let out = chunked(text.as_bytes(), cuts, |c, end| {
        let mut o = r.push_bytes(&mut s, c);
        if end {
            o.push_str(&r.flush(&mut s));
        }
        o.into_bytes()
    });
    String::from_utf8(out).unwrap()
}

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
    fn cuts(&mut self, len: usize, most: usize) -> Vec<usize> {
        let mut c: Vec<usize> = (0..self.below(most + 1)).map(|_| self.below(len + 1)).collect();
        c.sort_unstable();
        c
    }
}

const WORDS: [&str; 16] = [
    "the",
    "model",
    "said",
    "ok.",
    "données",
    "日本語",
    "\n",
    "see:",
    "(x)",
    "1.2.3",
    "2024-01-15",
    "—",
    "\"quoted\"",
    "back\\slash",
    "tab\there",
    "password",
];

const VALUES: [&str; 22] = [
    "AKIAIOSFODNN7EXAMPLE",
    "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd",
    "4111 1111 1111 1111",
    "(5555-5555-5555-4444)",
    "123 45 6789",
    "DE89 3704 0044 0532 0130 00",
    "jane.doe@example.co.uk",
    "logo@2x.png",
    "+44 20 7946 0958",
    "+1 (415) 555-0100",
    "020 7946 0958",
    "10.1.2.3",
    "psk=\"Qlc-zc!6arlvI^5\"",
    "postgres://app:s3cr3t-P4ss@db.example.com/app",
    "the temporary password is Xk7#pQ2m",
    "Das Passwort lautet Tmp4821-Qz",
    "密码是Tiger1345*",
    "12345678901234",
    "4111 1111 11",
    "jane.doe@exam",
    "AKIAIOSFOD",
    "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg\n-----END EC PRIVATE KEY-----",
];

#[test]
fn same_text_same_output_in_every_format() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..300 {
        let mut text = String::new();
        for _ in 0..rng.below(25) + 1 {
            if rng.below(3) == 0 {
                text.push_str(VALUES[rng.below(VALUES.len())]);
            } else {
                text.push_str(WORDS[rng.below(WORDS.len())]);
            }
            text.push(if rng.below(5) == 0 { '\n' } else { ' ' });
        }
        // Half the texts end on a value (a long number, a cut-looking address) with no space.
        if round % 2 == 0 {
            text.push_str(VALUES[rng.below(VALUES.len())]);
        }
        let expected = redact(&text, &Detectors::all(), &Replacement::Tag, &mut Counts::new());
        assert_eq!(json_body(&text), expected, "json, text {text:?}");
        for _ in 0..3 {
            let splits = rng.cuts(text.len(), 8);
            let sse_cuts = rng.cuts(text.len() * 2 + 400, 10);
            let nd_cuts = rng.cuts(text.len() * 2 + 300, 10);
            let text_cuts = rng.cuts(text.len(), 10);
            assert_eq!(
                sse(&text, &splits, &sse_cuts),
                expected,
                "sse, text {text:?} splits {splits:?} cuts {sse_cuts:?}"
            );
            assert_eq!(
                ndjson(&text, &splits, &nd_cuts),
                expected,
                "ndjson, text {text:?} splits {splits:?} cuts {nd_cuts:?}"
            );
            assert_eq!(
                plain(&text, &text_cuts),
                expected,
                "text, {text:?} cuts {text_cuts:?}"
            );
        }
    }
}

#[test]
fn a_stream_ending_on_a_long_number_emits_it_in_every_format() {
    let text = "Your order number is 12345678901234";
    assert_eq!(json_body(text), text);
    assert_eq!(sse(text, &[26], &[]), text);
    assert_eq!(ndjson(text, &[26], &[]), text);
    assert_eq!(plain(text, &[30]), text);
}
