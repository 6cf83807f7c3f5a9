//! What to do with a response before any of it reaches the client: which parser inspects it
//! (JSON, SSE, NDJSON, text), or why it is withheld (compressed, unknown content type,
//! unparseable), given the controls active on the route; and the redaction of response
//! header values.
//!
//! Defaults (fail closed, but never for a control that only observes):
//! - tool-call inspection: an uninspectable response is always withheld (text redaction
//!   cannot see a tool call, and SDKs parse JSON/SSE whatever the content type says);
//! - redaction (enforce): withheld, unless the policy sets `redaction.uninspectable:
//!   "as_text"`, which passes it through the text redactor (a compressed body is still
//!   withheld: its bytes are not text);
//! - monitor modes and usage metering alone never withhold (they change nothing).

pub use crate::outcome::reason::{withheld_body, Withheld, WITHHELD_STATUS};
use crate::redact::stream::Redactor;
use serde::Deserialize;

/// How a body is inspected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Sse,
    /// One JSON object per line (`application/x-ndjson`, `application/jsonl`, Ollama).
    Ndjson,
    Text,
}

/// `redaction.uninspectable`: what redaction does with a response it cannot parse.
#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Uninspectable {
    /// 502 `uninspectable_response` (the default).
    #[default]
    Withhold,
    /// Redact it as plain text (a secret split by the format's framing may pass).
    AsText,
}

/// The response controls active on the route.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Controls {
    /// Redaction is on; `enforce` false in monitor mode.
    pub redaction: Option<RedactionControl>,
    /// Tool calls are inspected; Some(false) in monitor mode.
    pub tool_calls: Option<bool>,
    /// Token usage is read from the response.
    pub usage: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RedactionControl {
    pub enforce: bool,
    pub uninspectable: Uninspectable,
}

/// The decision for one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// No control needs the body (or it has none).
    Pass,
    /// Inspect it with this parser.
    Inspect(Format),
    /// Replace it with `withheld_body` (status 502) and audit the reason.
    Withhold(Withheld),
    /// Redact it as text (config `as_text`, or a monitor that only counts); the reason is
    /// for the audit record. Tool calls are not inspected (none is active enforcing).
    AsText(Withheld),
    /// Let it through unchanged although a monitoring control could not inspect it: audit
    /// the reason as a would-be withhold.
    PassUninspected(Withheld),
}

/// The format a content type names; None for absent, `application/octet-stream` and
/// anything unknown.
pub fn format_of(content_type: Option<&str>) -> Option<Format> {
    let essence = content_type?.split(';').next()?.trim().to_ascii_lowercase();
    let (kind, sub) = essence.split_once('/')?;
    match (kind, sub) {
        ("text", "event-stream") => Some(Format::Sse),
        ("application", "x-ndjson" | "ndjson" | "jsonl" | "x-jsonl" | "jsonlines" | "x-jsonlines") => {
            Some(Format::Ndjson)
        }
        ("application" | "text", "json") => Some(Format::Json),
        ("application", s) if s.ends_with("+json") => Some(Format::Json),
        ("text", s) if !s.is_empty() => Some(Format::Text),
        _ => None,
    }
}

/// True when a `content-encoding` header means the bytes are not the body itself.
pub fn is_compressed(content_encoding: Option<&str>) -> bool {
    content_encoding.is_some_and(|e| {
        e.split(',')
            .map(str::trim)
            .any(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity"))
    })
}

/// Decides, at response headers, how the body is inspected. `has_body` is false when the
/// headers ended the response (or the status has no body: 204, 304, HEAD): nothing to see.
pub fn plan(
    controls: Controls,
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    has_body: bool,
) -> Plan {
    let inspecting = controls.redaction.is_some() || controls.tool_calls.is_some();
    if !has_body || !inspecting {
        // Usage alone is read as the body passes (never held): an unreadable one has none.
        return Plan::Pass;
    }
    let problem = if is_compressed(content_encoding) {
        Withheld::Compressed
    } else {
        match format_of(content_type) {
            // A model server declares its JSON and streams as such; text (error pages,
            // Envoy's local replies) is redacted, not checked for tool calls.
            Some(Format::Text) => return text_plan(controls),
            Some(f) => return Plan::Inspect(f),
            None => Withheld::UnknownContentType,
        }
    };
    uninspectable(controls, problem)
}

fn text_plan(controls: Controls) -> Plan {
    match controls.redaction {
        Some(_) => Plan::Inspect(Format::Text),
        None => Plan::Pass,
    }
}

/// What to do with a body a control cannot parse (at headers, or found unparseable later).
pub fn uninspectable(controls: Controls, problem: Withheld) -> Plan {
    if controls.tool_calls == Some(true) {
        return Plan::Withhold(problem);
    }
    match controls.redaction {
        Some(r) if r.enforce => match (r.uninspectable, problem) {
            (Uninspectable::AsText, Withheld::Compressed) | (Uninspectable::Withhold, _) => {
                Plan::Withhold(problem)
            }
            (Uninspectable::AsText, _) => Plan::AsText(problem),
        },
        // Monitor: count what text redaction finds, change nothing.
        Some(_) if problem != Withheld::Compressed => Plan::AsText(problem),
        _ => Plan::PassUninspected(problem),
    }
}

/// What redaction does with a whole JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyOutcome {
    /// Send it as it is (nothing found, or monitor mode: the counts are in the redactor).
    Unchanged,
    /// Send this instead (same status; set content-length).
    Replace(Vec<u8>),
    /// Not JSON and the policy withholds what it cannot parse: send `withheld_body`.
    Withhold(Withheld),
}

/// Redacts a JSON (or `+json`) response body: string values with escapes decoded, other
/// bytes untouched, `NaN`/`Infinity` accepted. A body that is not JSON is withheld, or
/// redacted as text with `uninspectable: "as_text"` (and in monitor mode, counted so).
pub fn redact_json_response(body: &[u8], control: RedactionControl, r: &mut Redactor) -> BodyOutcome {
    if body.iter().all(u8::is_ascii_whitespace) {
        return BodyOutcome::Unchanged;
    }
    let out = match crate::redact::stream::redact_json_body(body, r) {
        Some(out) => out,
        None => {
            let controls = Controls {
                redaction: Some(control),
                ..Controls::default()
            };
            match uninspectable(controls, Withheld::Unparseable) {
                Plan::Withhold(w) => return BodyOutcome::Withhold(w),
                _ => r.text(&String::from_utf8_lossy(body)).into_bytes(),
            }
        }
    };
    if control.enforce && out != body {
        BodyOutcome::Replace(out)
    } else {
        BodyOutcome::Unchanged
    }
}

/// Which response headers have their values redacted (`redaction.response_headers`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum HeaderSelection {
    /// Every header but `SAFE_HEADERS` (the default).
    #[default]
    AllButSafe,
    /// Exactly these (lowercase names).
    Only(Vec<String>),
}

/// Headers whose values are protocol metadata, never free text from the model or the
/// upstream's application: left alone by default (redacting `content-length` or `date`
/// would only break the response).
pub const SAFE_HEADERS: [&str; 22] = [
    ":status",
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "date",
    "server",
    "vary",
    "cache-control",
    "expires",
    "age",
    "etag",
    "last-modified",
    "accept-ranges",
    "alt-svc",
    "strict-transport-security",
    "retry-after",
    "x-request-id",
    "x-envoy-upstream-service-time",
    "openai-processing-ms",
];

/// Header name prefixes left alone by default (rate-limit figures look like phone numbers).
pub const SAFE_HEADER_PREFIXES: [&str; 3] = ["x-ratelimit-", "ratelimit-", "anthropic-ratelimit-"];

impl HeaderSelection {
    pub fn from_config(names: Option<&[String]>) -> HeaderSelection {
        match names {
            None => HeaderSelection::AllButSafe,
            Some(list) => HeaderSelection::Only(list.iter().map(|n| n.to_ascii_lowercase()).collect()),
        }
    }

    pub fn checks(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        match self {
            HeaderSelection::AllButSafe => {
                !SAFE_HEADERS.contains(&name.as_str())
                    && !SAFE_HEADER_PREFIXES.iter().any(|p| name.starts_with(p))
            }
            HeaderSelection::Only(list) => list.contains(&name),
        }
    }
}

/// One header to rewrite: remove every value of `name`, then add `values` (in order).
/// Multi-valued headers keep their other values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderRewrite {
    pub name: String,
    pub values: Vec<String>,
}

/// Redacts the selected response header values with the route's detectors (counting into
/// the redactor). Returns only the headers that changed. The caller applies them in
/// enforce mode and ignores them (having counted) in monitor mode.
pub fn redact_headers(
    headers: &[(String, String)],
    selection: &HeaderSelection,
    r: &mut Redactor,
) -> Vec<HeaderRewrite> {
    let mut out: Vec<HeaderRewrite> = Vec::new();
    let mut changed: Vec<String> = Vec::new();
    for (name, value) in headers {
        if !selection.checks(name) {
            continue;
        }
        let redacted = r.text(value);
        if redacted != *value {
            changed.push(name.to_ascii_lowercase());
        }
    }
    changed.dedup();
    for name in changed.iter() {
        if out.iter().any(|h| &h.name == name) {
            continue;
        }
        let values = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| {
                // Counted once above; the rewrite itself must not count again.
                let mut scratch = crate::redact::Counts::new();
                let mut quiet = Redactor {
                    detectors: r.detectors,
                    replacement: r.replacement,
                    counts: &mut scratch,
                };
                quiet.text(v)
            })
            .collect();
        out.push(HeaderRewrite {
            name: name.clone(),
            values,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::{Counts, Detectors, Replacement};

    const REDACT: Controls = Controls {
        redaction: Some(RedactionControl {
            enforce: true,
            uninspectable: Uninspectable::Withhold,
        }),
        tool_calls: None,
        usage: false,
    };

    #[test]
    fn content_types() {
        assert_eq!(
            format_of(Some("text/event-stream; charset=utf-8")),
            Some(Format::Sse)
        );
        assert_eq!(format_of(Some("Application/X-NDJSON")), Some(Format::Ndjson));
        assert_eq!(format_of(Some("application/jsonl")), Some(Format::Ndjson));
        assert_eq!(format_of(Some("application/json")), Some(Format::Json));
        assert_eq!(format_of(Some("application/problem+json")), Some(Format::Json));
        assert_eq!(format_of(Some("text/plain")), Some(Format::Text));
        assert_eq!(format_of(None), None);
        assert_eq!(format_of(Some("application/octet-stream")), None);
        assert_eq!(format_of(Some("garbage")), None);
        assert!(is_compressed(Some("gzip")) && is_compressed(Some("identity, br")));
        assert!(!is_compressed(Some("identity")) && !is_compressed(None) && !is_compressed(Some("")));
    }

    #[test]
    fn absent_content_type_is_withheld_where_it_must_be() {
        let tools = Controls {
            tool_calls: Some(true),
            ..Controls::default()
        };
        for ct in [None, Some("application/octet-stream"), Some("weird/thing")] {
            assert_eq!(
                plan(REDACT, ct, None, true),
                Plan::Withhold(Withheld::UnknownContentType)
            );
            assert_eq!(
                plan(tools, ct, None, true),
                Plan::Withhold(Withheld::UnknownContentType)
            );
            let as_text = Controls {
                redaction: Some(RedactionControl {
                    enforce: true,
                    uninspectable: Uninspectable::AsText,
                }),
                ..Controls::default()
            };
            assert_eq!(
                plan(as_text, ct, None, true),
                Plan::AsText(Withheld::UnknownContentType)
            );
            // Tool inspection wins over as_text.
            let both = Controls {
                tool_calls: Some(true),
                ..as_text
            };
            assert_eq!(
                plan(both, ct, None, true),
                Plan::Withhold(Withheld::UnknownContentType)
            );
            // Usage alone, or no body: pass.
            let usage = Controls {
                usage: true,
                ..Controls::default()
            };
            assert_eq!(plan(usage, ct, None, true), Plan::Pass);
            assert_eq!(plan(REDACT, ct, None, false), Plan::Pass);
        }
        assert_eq!(plan(tools, Some("text/plain"), None, true), Plan::Pass);
        assert_eq!(
            plan(REDACT, Some("text/plain"), None, true),
            Plan::Inspect(Format::Text)
        );
        assert_eq!(
            plan(REDACT, Some("application/json"), Some("gzip"), true),
            Plan::Withhold(Withheld::Compressed)
        );
        let monitor = Controls {
            redaction: Some(RedactionControl::default()),
            tool_calls: Some(false),
            usage: false,
        };
        assert_eq!(
            plan(monitor, None, None, true),
            Plan::AsText(Withheld::UnknownContentType)
        );
        assert_eq!(
            plan(monitor, None, Some("br"), true),
            Plan::PassUninspected(Withheld::Compressed)
        );
        assert_eq!(
            plan(monitor, Some("text/event-stream"), None, true),
            Plan::Inspect(Format::Sse)
        );
        let v: serde_json::Value = serde_json::from_slice(&withheld_body(Withheld::Compressed)).unwrap();
        assert_eq!(v["error"]["code"], "uninspectable_response");
    }

    #[test]
    fn json_bodies_with_nonstandard_numbers_and_escapes() {
        let d = Detectors::all();
        let rep = Replacement::Tag;
        let mut counts = Counts::new();
        let mut r = Redactor {
            detectors: &d,
            replacement: &rep,
            counts: &mut counts,
        };
        let control = RedactionControl {
            enforce: true,
            uninspectable: Uninspectable::Withhold,
        };
        let body = br#"{"choices":[{"message":{"content":"key AKIAIOSFODNN7EXAMPLE"},"logprobs":{"content":[{"token":"k","logprob":-Infinity},{"logprob":NaN}]}}]}"#;
        assert_eq!(
            redact_json_response(body, control, &mut r),
            BodyOutcome::Replace(
                br#"{"choices":[{"message":{"content":"key [REDACTED:aws_access_key]"},"logprobs":{"content":[{"token":"k","logprob":-Infinity},{"logprob":NaN}]}}]}"#.to_vec()
            )
        );
        assert_eq!(
            redact_json_response(br#"{"a": "fine", "n": Infinity}"#, control, &mut r),
            BodyOutcome::Unchanged
        );
        assert_eq!(
            redact_json_response(b"  ", control, &mut r),
            BodyOutcome::Unchanged
        );
        assert_eq!(
            redact_json_response(b"<html>a@b.io</html>", control, &mut r),
            BodyOutcome::Withhold(Withheld::Unparseable)
        );
        let as_text = RedactionControl {
            uninspectable: Uninspectable::AsText,
            ..control
        };
        assert_eq!(
            redact_json_response(b"<html>a@b.io</html>", as_text, &mut r),
            BodyOutcome::Replace(b"<html>[REDACTED:email]</html>".to_vec())
        );
        let monitor = RedactionControl {
            enforce: false,
            ..control
        };
        let before = r.counts.get("aws_access_key").copied();
        assert_eq!(
            redact_json_response(body, monitor, &mut r),
            BodyOutcome::Unchanged
        );
        assert_eq!(r.counts.get("aws_access_key").copied(), before.map(|n| n + 1));
        assert_eq!(
            redact_json_response(b"<html>", monitor, &mut r),
            BodyOutcome::Unchanged
        );
    }

    #[test]
    fn header_values_are_redacted() {
        let d = Detectors::all();
        let rep = Replacement::Tag;
        let mut counts = Counts::new();
        let mut r = Redactor {
            detectors: &d,
            replacement: &rep,
            counts: &mut counts,
        };
        let h = |n: &str, v: &str| (n.to_string(), v.to_string());
        let headers = [
            h("content-type", "application/json"),
            h("x-debug", "key=AKIAIOSFODNN7EXAMPLE"),
            h("X-Debug", "fine"),
            h("x-ratelimit-remaining-tokens", "4155552671"),
            h("date", "Tue, 01 Dec 2026 21:02:37 GMT"),
            h("x-owner", "jane.doe@example.com"),
        ];
        let edits = redact_headers(&headers, &HeaderSelection::AllButSafe, &mut r);
        assert_eq!(
            edits,
            [
                HeaderRewrite {
                    name: "x-debug".into(),
                    values: vec!["key=[REDACTED:aws_access_key]".into(), "fine".into()]
                },
                HeaderRewrite {
                    name: "x-owner".into(),
                    values: vec!["[REDACTED:email]".into()]
                },
            ]
        );
        assert_eq!(r.counts.get("aws_access_key"), Some(&1));
        assert_eq!(r.counts.get("email"), Some(&1));
        let only = HeaderSelection::from_config(Some(&["X-Owner".to_string()]));
        let edits = redact_headers(&headers, &only, &mut r);
        assert_eq!(edits.len(), 1);
        assert_eq!(edits[0].name, "x-owner");
    }
}
