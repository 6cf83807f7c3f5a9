//! `make bench`: native redaction throughput (MB/s) on text with a realistic sprinkling of
//! secrets/PII, whole-body and streamed in small chunks, against a plain copy (passthrough).
//! Prints figures; asserts nothing.

use llm_warden::redact::{redact, Counts, Detectors, Replacement};
use llm_warden::redact_stream::{Redactor, TextStream};
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

fn main() {
    let text = corpus(4 * 1024 * 1024);
    let d = Detectors::all();
    let rep = Replacement::Tag;
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
}
