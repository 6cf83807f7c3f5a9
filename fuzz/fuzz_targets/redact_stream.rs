//! Streaming redaction fed in random chunks must equal redacting the whole text (no secret
//! may survive because of where a chunk boundary fell), and SSE redaction never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use llm_warden::redact::{redact, Counts, Detectors, Replacement};
use llm_warden::redact::stream::{Redactor, SseRedactor, TextStream};

fuzz_target!(|data: &[u8]| {
    let Some((&seed, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let d = Detectors::all();
    let rep = Replacement::Tag;
    // The same API given the whole text at once (equal to plain redaction but for a
    // truncated tail, which is withheld).
    let whole = {
        let mut c = Counts::new();
        let mut r = Redactor { detectors: &d, replacement: &rep, counts: &mut c };
        let mut s = TextStream::default();
        let mut o = r.push(&mut s, &text);
        o.push_str(&r.flush(&mut s));
        if llm_warden::redact::stream::partial_tail(&text).is_none() {
            assert_eq!(o, redact(&text, &d, &rep, &mut Counts::new()));
        }
        o
    };
    let mut counts = Counts::new();
    let mut r = Redactor { detectors: &d, replacement: &rep, counts: &mut counts };
    let mut s = TextStream::default();
    let mut out = String::new();
    let step = 1 + seed as usize % 17;
    let mut i = 0;
    while i < text.len() {
        let mut j = (i + step).min(text.len());
        while !text.is_char_boundary(j) {
            j += 1;
        }
        out.push_str(&r.push(&mut s, &text[i..j]));
        i = j;
    }
    out.push_str(&r.flush(&mut s));
    assert_eq!(out, whole, "chunked redaction differs from whole-text redaction");
    let mut sse = SseRedactor::default();
    let (a, b) = rest.split_at(rest.len() / 2);
    let _ = sse.feed(a, false, &mut r);
    let _ = sse.feed(b, true, &mut r);
});
