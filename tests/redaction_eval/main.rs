//! Redaction figures on the evaluation set in this folder (see README.md): strict recall per
//! type (every byte of the value inside a redacted span) and precision per detected type
//! (a redacted span that touches no labelled value is a false positive), for the dev split
//! (tuned on) and the frozen test split. Prints the figures and the misses; asserts only the
//! floor the frozen test split meets.
//!
//! `cargo test --test redaction_eval -- --nocapture` shows the figures.

mod formats;

use llm_warden::redact::{Detectors, Match};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Default)]
struct Tally {
    values: u64,
    found: u64,
}

#[derive(Default)]
struct Figures {
    /// By labelled type (password also by family: password/config, password/url, ...).
    recall: BTreeMap<String, Tally>,
    /// By detected kind: (spans, spans touching a labelled value).
    precision: BTreeMap<String, (u64, u64)>,
    misses: Vec<String>,
    false_positives: Vec<String>,
    records: u64,
}

const SECRET_TYPES: [&str; 11] = [
    "aws_access_key",
    "aws_secret_key",
    "github_token",
    "openai_key",
    "anthropic_key",
    "slack_token",
    "stripe_key",
    "google_api_key",
    "private_key",
    "jwt",
    "password",
];

fn covered(matches: &[Match], start: usize, end: usize) -> bool {
    // Matches are sorted and non-overlapping: walk them over [start, end).
    let mut at = start;
    for m in matches {
        if m.start <= at && m.end > at {
            at = m.end;
        }
        if at >= end {
            return true;
        }
    }
    at >= end
}

fn evaluate(split: &str) -> Figures {
    let path = format!(
        "{}/tests/redaction_eval/{split}.jsonl",
        env!("CARGO_MANIFEST_DIR")
    );
    let data = std::fs::read_to_string(&path).expect("evaluation set");
    let detectors = Detectors::all();
    let mut f = Figures::default();
    for line in data.lines() {
        let r: Value = serde_json::from_str(line).expect("record");
        let text = r["text"].as_str().expect("text");
        let family = r["family"].as_str().unwrap_or("");
        let matches = detectors.find(text);
        let mut spans = Vec::new();
        for v in r["values"].as_array().expect("values") {
            let (typ, value) = (v["type"].as_str().unwrap(), v["value"].as_str().unwrap());
            let start = text.find(value).expect("value in text");
            let end = start + value.len();
            spans.push((start, end));
            let keys = if typ == "password" {
                vec![typ.to_string(), format!("password/{family}")]
            } else {
                vec![typ.to_string()]
            };
            let hit = covered(&matches, start, end);
            for k in keys {
                let t = f.recall.entry(k).or_default();
                t.values += 1;
                t.found += u64::from(hit);
            }
            if !hit {
                let got: Vec<String> = matches
                    .iter()
                    .map(|m| format!("{}:{:?}", m.kind.name(), &text[m.start..m.end]))
                    .collect();
                f.misses.push(format!(
                    "{} {typ}/{family} {value:?} in {text:?} got {got:?}",
                    r["id"]
                ));
            }
        }
        for m in &matches {
            let e = f.precision.entry(m.kind.name().to_string()).or_default();
            e.0 += 1;
            if spans.iter().any(|(s, e)| m.start < *e && m.end > *s) {
                e.1 += 1;
            } else {
                f.false_positives.push(format!(
                    "{} {}:{:?} in {text:?}",
                    r["id"],
                    m.kind.name(),
                    &text[m.start..m.end]
                ));
            }
        }
        f.records += 1;
    }
    f
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

/// (secret recall, PII recall, precision) over all types.
fn report(split: &str, f: &Figures) -> (f64, f64, f64) {
    println!("== {split} split: {} records", f.records);
    println!("{:<22} {:>7} {:>7} {:>8}", "type", "values", "found", "recall");
    let (mut s, mut p) = ((0, 0), (0, 0));
    for (k, t) in &f.recall {
        println!(
            "{k:<22} {:>7} {:>7} {:>8.4}",
            t.values,
            t.found,
            ratio(t.found, t.values)
        );
        if k.contains('/') {
            continue;
        }
        let acc = if SECRET_TYPES.contains(&k.as_str()) {
            &mut s
        } else {
            &mut p
        };
        acc.0 += t.found;
        acc.1 += t.values;
    }
    println!(
        "{:<22} {:>7} {:>7} {:>9}",
        "detected kind", "spans", "true", "precision"
    );
    let (mut spans, mut good) = (0, 0);
    for (k, (n, ok)) in &f.precision {
        println!("{k:<22} {n:>7} {ok:>7} {:>9.4}", ratio(*ok, *n));
        spans += n;
        good += ok;
    }
    let figures = (ratio(s.0, s.1), ratio(p.0, p.1), ratio(good, spans));
    println!(
        "secret recall {:.4} ({}/{}), PII recall {:.4} ({}/{}), precision {:.4} ({good}/{spans})",
        figures.0, s.0, s.1, figures.1, p.0, p.1, figures.2
    );
    for m in &f.misses {
        println!("MISS {m}");
    }
    for m in &f.false_positives {
        println!("FALSE POSITIVE {m}");
    }
    figures
}

#[test]
fn redaction_figures_on_the_evaluation_set() {
    let dev = evaluate("dev");
    report("dev", &dev);
    let test = evaluate("test");
    let (secret, pii, precision) = report("test", &test);
    // The floor the frozen test split meets (the targets; figures in README.md).
    assert!(secret >= 1.0, "secret recall {secret}");
    assert!(pii >= 0.99, "PII recall {pii}");
    assert!(precision >= 0.99, "precision {precision}");
}
