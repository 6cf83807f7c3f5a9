//! External prompt classifier (optional, per policy): after the built-in guard passes, the
//! prompt text is sent through an Envoy cluster to a guardrail service and the request is
//! held until it answers. Two protocols: OpenAI-compatible moderation (`/v1/moderations`)
//! and Hugging Face text-embeddings-inference `/predict` (how Prompt Guard or DeBERTa
//! injection classifiers are usually served).
//!
//! Host-free: this module builds the call, reads the answer and decides; the adapter
//! dispatches, holds the request and keeps a [`VerdictCache`] per policy and worker.

use crate::config_error::ConfigError;
use crate::inspect::lowercase;
use crate::mode::Mode;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};

/// Largest classifier answer read; anything longer is treated as garbage.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Most inputs in one call (the default client batch limit of TEI; moderation APIs take as
/// many).
pub const MAX_INPUTS: usize = 32;
/// Most verdicts a worker keeps per policy.
pub const MAX_CACHE_ENTRIES: usize = 100_000;
/// Longest label kept from an answer (labels reach audit records and error bodies).
const MAX_LABEL_CHARS: usize = 64;

// ---------- configuration ----------

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// OpenAI-compatible `POST /v1/moderations`: `{"model","input":[...]}` answered with
    /// `{"results":[{"flagged","categories","category_scores"}]}`.
    OpenaiModeration,
    /// Hugging Face text-embeddings-inference `POST /predict`: `{"inputs":[...]}` answered
    /// with `[[{"label","score"}...]...]` (or a flat list for one input).
    TeiPredict,
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// The classifier is slow, failing or answers garbage: refuse with 503
    /// `guard_unavailable` (fail closed).
    #[default]
    Deny,
    /// ... or let the request through (fail open), counted and logged.
    Allow,
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierConfig {
    pub protocol: Protocol,
    /// Envoy cluster of the classifier service.
    pub cluster: String,
    /// Request path (default `/v1/moderations` or `/predict` by protocol).
    pub path: Option<String>,
    /// `:authority` of the call (default: the cluster name).
    pub authority: Option<String>,
    /// How long the request is held for the answer; past it, `on_error` applies.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Score at or above which a label counts as unsafe (0..=1). `tei_predict`: default 0.5.
    /// `openai_moderation`: absent means the service's own verdict (`categories`, `flagged`).
    pub threshold: Option<f64>,
    /// Labels (TEI) or categories (moderation) that count as unsafe, matched without regard
    /// to case. Required for `tei_predict` (e.g. `["INJECTION","JAILBREAK"]`); for
    /// `openai_moderation` empty means every category.
    #[serde(default)]
    pub labels: Vec<String>,
    /// `model` of moderation requests (e.g. `omni-moderation-latest`); not sent if absent.
    pub model: Option<String>,
    #[serde(default)]
    pub on_error: OnError,
    /// `monitor`: call and audit `would_deny`, never block.
    #[serde(default)]
    pub mode: Mode,
    /// Verdicts remembered per worker, keyed by the SHA-256 of the text sent (0: no cache).
    #[serde(default = "default_cache_entries")]
    pub cache_entries: usize,
    /// Most characters sent. Longer prompts send their first and last `max_chars / 2`
    /// characters; the middle is not classified.
    #[serde(default = "default_max_chars")]
    pub max_chars: usize,
    /// The text sent is split into inputs of at most this many characters (one batch call),
    /// so a model with a short context window sees all of it.
    #[serde(default = "default_chunk_chars")]
    pub chunk_chars: usize,
    /// Also classify system/developer prompts (default: only what callers and tools send).
    #[serde(default)]
    pub include_system: bool,
}

fn default_timeout_ms() -> u64 {
    500
}
fn default_cache_entries() -> usize {
    1024
}
fn default_max_chars() -> usize {
    16_384
}
fn default_chunk_chars() -> usize {
    2_000
}

// ---------- compiled form ----------

/// A policy's compiled classifier.
#[derive(Debug, Clone)]
pub struct ClassifierSpec {
    pub protocol: Protocol,
    pub cluster: String,
    pub path: String,
    pub authority: String,
    pub timeout_ms: u64,
    pub threshold: Option<f64>,
    /// Lower-cased.
    pub labels: Vec<String>,
    pub model: Option<String>,
    pub on_error: OnError,
    pub mode: Mode,
    pub cache_entries: usize,
    pub max_chars: usize,
    pub chunk_chars: usize,
    pub include_system: bool,
}

fn cerr(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        path: path.into(),
        message: message.into(),
    }
}

impl ClassifierSpec {
    /// Validates `c` (found at config path `p`).
    pub fn compile(c: &ClassifierConfig, p: &str) -> Result<ClassifierSpec, ConfigError> {
        if c.cluster.is_empty() {
            return Err(cerr(format!("{p}.cluster"), "must not be empty"));
        }
        let path = c.path.clone().unwrap_or_else(|| {
            match c.protocol {
                Protocol::OpenaiModeration => "/v1/moderations",
                Protocol::TeiPredict => "/predict",
            }
            .to_string()
        });
        if !path.starts_with('/') {
            return Err(cerr(format!("{p}.path"), "must start with /"));
        }
        if c.timeout_ms == 0 || c.timeout_ms > 60_000 {
            return Err(cerr(format!("{p}.timeout_ms"), "must be between 1 and 60000"));
        }
        if let Some(t) = c.threshold {
            if !(t > 0.0 && t <= 1.0) {
                return Err(cerr(
                    format!("{p}.threshold"),
                    "must be greater than 0 and at most 1",
                ));
            }
        }
        if c.protocol == Protocol::TeiPredict && c.labels.is_empty() {
            return Err(cerr(
                format!("{p}.labels"),
                "tei_predict needs the unsafe label names, e.g. [\"INJECTION\", \"JAILBREAK\"]",
            ));
        }
        if let Some((i, _)) = c.labels.iter().enumerate().find(|(_, l)| l.trim().is_empty()) {
            return Err(cerr(format!("{p}.labels[{i}]"), "must not be empty"));
        }
        if c.max_chars == 0 {
            return Err(cerr(format!("{p}.max_chars"), "must be greater than 0"));
        }
        if c.chunk_chars == 0 {
            return Err(cerr(format!("{p}.chunk_chars"), "must be greater than 0"));
        }
        // A capped text is at most max_chars + 1 characters (head, newline, tail).
        if c.max_chars.saturating_add(1).div_ceil(c.chunk_chars) > MAX_INPUTS {
            return Err(cerr(
                format!("{p}.chunk_chars"),
                format!("max_chars / chunk_chars would send more than {MAX_INPUTS} inputs in one call"),
            ));
        }
        if c.cache_entries > MAX_CACHE_ENTRIES {
            return Err(cerr(
                format!("{p}.cache_entries"),
                format!("at most {MAX_CACHE_ENTRIES}"),
            ));
        }
        let threshold = match c.protocol {
            Protocol::TeiPredict => Some(c.threshold.unwrap_or(0.5)),
            Protocol::OpenaiModeration => c.threshold,
        };
        Ok(ClassifierSpec {
            protocol: c.protocol,
            cluster: c.cluster.clone(),
            path,
            authority: c.authority.clone().unwrap_or_else(|| c.cluster.clone()),
            timeout_ms: c.timeout_ms,
            threshold,
            labels: c.labels.iter().map(|l| lowercase::to_lowercase(l)).collect(),
            model: c.model.clone(),
            on_error: c.on_error,
            mode: c.mode,
            cache_entries: c.cache_entries,
            max_chars: c.max_chars,
            chunk_chars: c.chunk_chars,
            include_system: c.include_system,
        })
    }

    /// The text to classify, capped at `max_chars`; None when the body carries no prompt
    /// text (nothing to ask about).
    pub fn prompt_text(&self, body: &Map<String, Value>) -> Option<String> {
        let mut texts: Vec<&str> = Vec::new();
        prompt_texts(body, self.include_system, &mut texts);
        let joined = texts
            .into_iter()
            .filter(|t| !t.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        (!joined.trim().is_empty()).then(|| cap_chars(&joined, self.max_chars))
    }

    /// The classifier call for `text`: headers (pseudo-headers included) and JSON body.
    pub fn request(&self, text: &str) -> ClassifierRequest {
        let inputs = chunks(text, self.chunk_chars);
        let body = match self.protocol {
            Protocol::OpenaiModeration => {
                let mut o = Map::new();
                if let Some(m) = &self.model {
                    o.insert("model".into(), Value::String(m.clone()));
                }
                o.insert("input".into(), json!(inputs));
                Value::Object(o)
            }
            Protocol::TeiPredict => json!({"inputs": inputs, "truncate": true}),
        };
        ClassifierRequest {
            headers: vec![
                (":method".into(), "POST".into()),
                (":path".into(), self.path.clone()),
                (":authority".into(), self.authority.clone()),
                ("content-type".into(), "application/json".into()),
                ("accept".into(), "application/json".into()),
            ],
            body: body.to_string().into_bytes(),
        }
    }

    /// Reads the classifier's answer: `status` None means no answer (timeout, reset).
    pub fn read_answer(&self, status: Option<u16>, body: &[u8]) -> Result<Verdict, ClassifierError> {
        match status {
            None => return Err(ClassifierError::NoAnswer),
            Some(200) => {}
            Some(s) => return Err(ClassifierError::Status(s)),
        }
        if body.len() > MAX_ANSWER_BYTES {
            return Err(ClassifierError::Garbage("answer too large"));
        }
        let v: Value =
            serde_json::from_slice(body).map_err(|_| ClassifierError::Garbage("answer is not JSON"))?;
        match self.protocol {
            Protocol::OpenaiModeration => self.read_moderation(&v),
            Protocol::TeiPredict => self.read_tei(&v),
        }
    }

    fn read_moderation(&self, v: &Value) -> Result<Verdict, ClassifierError> {
        let results = v
            .get("results")
            .and_then(Value::as_array)
            .filter(|r| !r.is_empty())
            .ok_or(ClassifierError::Garbage("no results"))?;
        // The worst (label, score) over every result (one per input chunk).
        let mut worst: Option<(String, f64)> = None;
        for r in results {
            let flagged = r
                .get("flagged")
                .and_then(Value::as_bool)
                .ok_or(ClassifierError::Garbage("result without flagged"))?;
            let scores = r.get("category_scores").and_then(Value::as_object);
            let categories = r.get("categories").and_then(Value::as_object);
            let score_of = |name: &str| scores.and_then(|s| s.get(name)).and_then(Value::as_f64);
            let hit: Option<(String, f64)> = match self.threshold {
                Some(t) => {
                    let scores = scores.ok_or(ClassifierError::Garbage("result without category_scores"))?;
                    let mut best: Option<(String, f64)> = None;
                    for (name, s) in scores {
                        let s = s
                            .as_f64()
                            .filter(|s| s.is_finite())
                            .ok_or(ClassifierError::Garbage("category score is not a number"))?;
                        if self.counts(name) && s >= t && best.as_ref().is_none_or(|(_, b)| s > *b) {
                            best = Some((name.clone(), s));
                        }
                    }
                    best
                }
                None => {
                    // The service's own verdict, per category when it names them.
                    let marked: Vec<&String> = categories
                        .map(|c| {
                            c.iter()
                                .filter(|(n, on)| on.as_bool() == Some(true) && self.counts(n))
                                .map(|(n, _)| n)
                                .collect()
                        })
                        .unwrap_or_default();
                    if let Some(best) = marked.iter().max_by(|a, b| {
                        score_of(a)
                            .unwrap_or(0.0)
                            .partial_cmp(&score_of(b).unwrap_or(0.0))
                            .unwrap_or(std::cmp::Ordering::Equal)
                    }) {
                        Some(((*best).clone(), score_of(best).unwrap_or(1.0)))
                    } else if flagged && self.labels.is_empty() {
                        Some(("flagged".to_string(), 1.0))
                    } else if !self.labels.is_empty() && categories.is_none() {
                        return Err(ClassifierError::Garbage("result without categories"));
                    } else {
                        None
                    }
                }
            };
            if let Some((name, s)) = hit {
                if worst.as_ref().is_none_or(|(_, w)| s > *w) {
                    worst = Some((name, s));
                }
            }
        }
        Ok(self.verdict(worst))
    }

    fn read_tei(&self, v: &Value) -> Result<Verdict, ClassifierError> {
        let outer = v
            .as_array()
            .ok_or(ClassifierError::Garbage("answer is not a list"))?;
        if outer.is_empty() {
            return Err(ClassifierError::Garbage("empty answer"));
        }
        // One input: [{label, score}...]; a batch: [[{label, score}...]...].
        let batch: Vec<&Vec<Value>> = if outer.iter().all(Value::is_array) {
            outer.iter().filter_map(Value::as_array).collect()
        } else {
            vec![outer]
        };
        let t = self.threshold.unwrap_or(0.5);
        let mut worst: Option<(String, f64)> = None;
        for preds in batch {
            if preds.is_empty() {
                return Err(ClassifierError::Garbage("empty prediction"));
            }
            for p in preds {
                let label = p
                    .get("label")
                    .and_then(Value::as_str)
                    .ok_or(ClassifierError::Garbage("prediction without label"))?;
                let score = p
                    .get("score")
                    .and_then(Value::as_f64)
                    .filter(|s| s.is_finite())
                    .ok_or(ClassifierError::Garbage("prediction without score"))?;
                if self.counts(label) && score >= t && worst.as_ref().is_none_or(|(_, w)| score > *w) {
                    worst = Some((label.to_string(), score));
                }
            }
        }
        Ok(self.verdict(worst))
    }

    fn counts(&self, label: &str) -> bool {
        let label = lowercase::to_lowercase(label);
        self.labels.is_empty() || self.labels.contains(&label)
    }

    fn verdict(&self, worst: Option<(String, f64)>) -> Verdict {
        match worst {
            None => Verdict::Allow,
            Some((label, _)) => Verdict::Block {
                label: safe_label(&label),
            },
        }
    }

    /// What to do with an answer (or its absence): the one place the mode and `on_error`
    /// are applied.
    pub fn resolve(&self, answer: &Result<Verdict, ClassifierError>) -> Resolution {
        let monitor = self.mode == Mode::Monitor;
        match answer {
            Ok(Verdict::Allow) => Resolution::Allow,
            Ok(Verdict::Block { label }) if monitor => Resolution::WouldBlock { rule: rule_id(label) },
            Ok(Verdict::Block { label }) => Resolution::Block { rule: rule_id(label) },
            Err(e) => match (self.on_error, monitor) {
                (OnError::Allow, _) => Resolution::FailOpen { error: e.clone() },
                (OnError::Deny, true) => Resolution::WouldFail { error: e.clone() },
                (OnError::Deny, false) => Resolution::FailClosed { error: e.clone() },
            },
        }
    }
}

/// The classifier call to dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassifierRequest {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The classifier's decision on a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// The unsafe label with the highest score at or above the threshold.
    Block {
        label: String,
    },
}

/// Why the classifier gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClassifierError {
    /// The call could not be dispatched (unknown cluster, no healthy host).
    Unreachable,
    /// No answer: the timeout passed or the connection failed.
    NoAnswer,
    /// An answer other than 200.
    Status(u16),
    /// 200 with a body in neither protocol's shape.
    Garbage(&'static str),
}

impl ClassifierError {
    /// The metric suffix (`llm_warden.classifier.error.<kind>`).
    pub fn kind(&self) -> &'static str {
        match self {
            ClassifierError::Unreachable => "unreachable",
            ClassifierError::NoAnswer => "no_answer",
            ClassifierError::Status(_) => "status",
            ClassifierError::Garbage(_) => "garbage",
        }
    }
}

impl std::fmt::Display for ClassifierError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClassifierError::Unreachable => write!(f, "classifier cluster unreachable"),
            ClassifierError::NoAnswer => write!(f, "no answer from the classifier (timeout or reset)"),
            ClassifierError::Status(s) => write!(f, "classifier answered {s}"),
            ClassifierError::Garbage(why) => write!(f, "unreadable classifier answer: {why}"),
        }
    }
}

/// What the adapter does with the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Go on (rate limit, then release).
    Allow,
    /// Refuse with the guard's reply (400 `prompt_blocked`, rule `rule`).
    Block { rule: String },
    /// Monitor mode: audit `would_deny` with `rule`, go on.
    WouldBlock { rule: String },
    /// `on_error: deny`: refuse with [`unavailable_reply`] (503 `guard_unavailable`).
    FailClosed { error: ClassifierError },
    /// `on_error: deny` in monitor mode: audit `would_deny` `guard_unavailable`, go on.
    WouldFail { error: ClassifierError },
    /// `on_error: allow`: go on, counted and logged.
    FailOpen { error: ClassifierError },
}

impl Resolution {
    /// Whether the request goes on.
    pub fn proceeds(&self) -> bool {
        !matches!(self, Resolution::Block { .. } | Resolution::FailClosed { .. })
    }

    /// The metric suffix (`llm_warden.classifier.<outcome>`).
    pub fn outcome(&self) -> &'static str {
        match self {
            Resolution::Allow => "allowed",
            Resolution::Block { .. } => "blocked",
            Resolution::WouldBlock { .. } => "monitored",
            Resolution::FailClosed { .. } => "error_denied",
            Resolution::WouldFail { .. } => "error_monitored",
            Resolution::FailOpen { .. } => "error_allowed",
        }
    }

    /// The audit `guard_rule`, when a label was found unsafe.
    pub fn rule(&self) -> Option<&str> {
        match self {
            Resolution::Block { rule } | Resolution::WouldBlock { rule } => Some(rule),
            _ => None,
        }
    }

    /// The audit reason, when the request is (or would be) refused.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            Resolution::Block { .. } | Resolution::WouldBlock { .. } => Some("prompt_blocked"),
            Resolution::FailClosed { .. } | Resolution::WouldFail { .. } => Some(UNAVAILABLE),
            _ => None,
        }
    }

    pub fn error(&self) -> Option<&ClassifierError> {
        match self {
            Resolution::FailClosed { error }
            | Resolution::WouldFail { error }
            | Resolution::FailOpen { error } => Some(error),
            _ => None,
        }
    }
}

/// The audit reason and reply code when the classifier gave no usable answer.
pub const UNAVAILABLE: &str = "guard_unavailable";

/// The audit `guard_rule` of a classifier label.
pub fn rule_id(label: &str) -> String {
    format!("classifier:{label}")
}

/// 503 when the classifier failed and the policy fails closed (no internal detail).
pub fn unavailable_reply() -> crate::outcome::reason::Reply {
    crate::outcome::reason::Reply {
        status: 503,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("retry-after".into(), "1".into()),
        ],
        body: json!({"error": {"message": "The prompt classifier is unavailable. Retry later.",
            "type": "server_error", "param": null, "code": UNAVAILABLE}})
        .to_string(),
    }
}

/// A label from the service, reduced to characters safe in audit records, metric-like
/// names and error bodies.
fn safe_label(label: &str) -> String {
    let s: String = label
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/' | '.'))
        .take(MAX_LABEL_CHARS)
        .collect();
    if s.is_empty() {
        "unlabeled".into()
    } else {
        s
    }
}

/// At most `max` characters: the whole text, or its first and last `max / 2` characters
/// (attacks hide at either end of padding; the middle of an over-long prompt is not sent).
fn cap_chars(text: &str, max: usize) -> String {
    let n = text.chars().count();
    if n <= max {
        return text.to_string();
    }
    let head = max / 2;
    let tail = max - head;
    let mut out: String = text.chars().take(head).collect();
    out.push('\n');
    out.extend(text.chars().skip(n - tail));
    out
}

/// `text` in pieces of at most `size` characters (at least one piece).
fn chunks(text: &str, size: usize) -> Vec<String> {
    let size = size.max(1);
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut len = 0;
    for c in text.chars() {
        if len == size {
            out.push(std::mem::take(&mut cur));
            len = 0;
        }
        cur.push(c);
        len += 1;
    }
    if !cur.is_empty() || out.is_empty() {
        out.push(cur);
    }
    out
}

/// Prompt strings in the body shapes the filter parses (chat, Anthropic messages,
/// completions, Responses API, embeddings): what callers and tools send, not the model's
/// own earlier turns; system prompts only with `include_system`.
fn prompt_texts<'a>(body: &'a Map<String, Value>, include_system: bool, out: &mut Vec<&'a str>) {
    let skip_role =
        |role: &str| role == "assistant" || (matches!(role, "system" | "developer") && !include_system);
    if include_system {
        collect(body.get("system"), out); // Anthropic top-level system
        collect(body.get("instructions"), out); // Responses API
    }
    if let Some(msgs) = body.get("messages").and_then(Value::as_array) {
        for m in msgs {
            let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
            if !skip_role(role) {
                collect(m.get("content"), out);
            }
        }
    }
    collect(body.get("prompt"), out); // completions
    collect(body.get("suffix"), out);
    match body.get("input") {
        Some(Value::Array(items)) => {
            for it in items {
                match it {
                    Value::String(s) => out.push(s),
                    _ => {
                        let role = it.get("role").and_then(Value::as_str).unwrap_or("user");
                        if !skip_role(role) {
                            collect(it.get("content"), out);
                            collect(it.get("output"), out); // function_call_output
                        }
                    }
                }
            }
        }
        other => collect(other, out),
    }
}

/// Strings of a content value: a string, or parts carrying `text`, `content` or `output`
/// (text, input_text, tool_result, document with text source...).
fn collect<'a>(v: Option<&'a Value>, out: &mut Vec<&'a str>) {
    match v {
        Some(Value::String(s)) => out.push(s),
        Some(Value::Array(parts)) => {
            for p in parts {
                match p {
                    Value::String(s) => out.push(s),
                    Value::Object(o) => {
                        if let Some(Value::String(t)) = o.get("text") {
                            out.push(t);
                        }
                        collect(o.get("content"), out);
                        collect(o.get("output"), out);
                        // Anthropic document with a text source.
                        if let Some(Value::Object(src)) = o.get("source") {
                            if src.get("type").and_then(Value::as_str) == Some("text") {
                                collect(src.get("data"), out);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

// ---------- per-worker cache ----------

/// The cache key of a text: its SHA-256.
pub fn cache_key(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Verdicts by text hash, bounded: the oldest entry goes when a new one would exceed the
/// bound (first in, first out). Only verdicts are kept, never errors, never the text.
#[derive(Debug, Clone, Default)]
pub struct VerdictCache {
    capacity: usize,
    entries: HashMap<[u8; 32], Verdict>,
    order: VecDeque<[u8; 32]>,
}

impl VerdictCache {
    pub fn new(capacity: usize) -> VerdictCache {
        VerdictCache {
            capacity,
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub fn get(&self, key: &[u8; 32]) -> Option<&Verdict> {
        self.entries.get(key)
    }

    pub fn put(&mut self, key: [u8; 32], verdict: Verdict) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.insert(key, verdict).is_none() {
            self.order.push_back(key);
        }
        while self.entries.len() > self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.entries.remove(&old);
                }
                None => break,
            }
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(v: Value) -> Result<ClassifierSpec, ConfigError> {
        let c: ClassifierConfig = serde_json::from_value(v).map_err(|e| cerr("c", e.to_string()))?;
        ClassifierSpec::compile(&c, "c")
    }

    fn tei() -> ClassifierSpec {
        cfg(json!({"protocol": "tei_predict", "cluster": "pg", "labels": ["INJECTION", "JAILBREAK"]}))
            .unwrap()
    }

    fn moderation(extra: Value) -> ClassifierSpec {
        let mut v =
            json!({"protocol": "openai_moderation", "cluster": "mod", "model": "omni-moderation-latest"});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        cfg(v).unwrap()
    }

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn config_defaults_and_errors() {
        let s = tei();
        assert_eq!(s.path, "/predict");
        assert_eq!(s.authority, "pg");
        assert_eq!(s.timeout_ms, 500);
        assert_eq!(s.threshold, Some(0.5));
        assert_eq!(s.on_error, OnError::Deny);
        assert_eq!(s.mode, Mode::Enforce);
        assert_eq!(s.cache_entries, 1024);
        assert_eq!(s.labels, vec!["injection", "jailbreak"]);
        let m = moderation(json!({}));
        assert_eq!(m.path, "/v1/moderations");
        assert_eq!(m.threshold, None);
        let bad = |v: Value, path: &str| {
            let e = cfg(v).unwrap_err();
            assert!(e.path.contains(path), "{} {}", e.path, e.message);
        };
        bad(json!({"protocol": "tei_predict", "cluster": "pg"}), "c.labels");
        bad(
            json!({"protocol": "tei_predict", "cluster": "", "labels": ["X"]}),
            "c.cluster",
        );
        bad(
            json!({"protocol": "tei_predict", "cluster": "pg", "labels": ["X"], "threshold": 1.5}),
            "c.threshold",
        );
        bad(
            json!({"protocol": "tei_predict", "cluster": "pg", "labels": ["X"], "threshold": 0}),
            "c.threshold",
        );
        bad(
            json!({"protocol": "tei_predict", "cluster": "pg", "labels": ["X"], "timeout_ms": 0}),
            "c.timeout_ms",
        );
        bad(
            json!({"protocol": "tei_predict", "cluster": "pg", "labels": ["X"], "path": "predict"}),
            "c.path",
        );
        bad(
            json!({"protocol": "tei_predict", "cluster": "pg", "labels": [" "]}),
            "c.labels[0]",
        );
        bad(
            json!({"protocol": "tei_predict", "cluster": "pg", "labels": ["X"], "max_chars": 0}),
            "c.max_chars",
        );
        bad(
            json!({"protocol": "tei_predict", "cluster": "pg", "labels": ["X"], "chunk_chars": 100}),
            "c.chunk_chars",
        );
        bad(
            json!({"protocol": "tei_predict", "cluster": "pg", "labels": ["X"], "cache_entries": 100_001}),
            "c.cache_entries",
        );
        let most = cfg(json!({"protocol": "tei_predict", "cluster": "pg", "labels": ["X"], "max_chars": 3199, "chunk_chars": 100})).unwrap();
        let text = most
            .prompt_text(&body(json!({"prompt": "x".repeat(10_000)})))
            .unwrap();
        assert_eq!(chunks(&text, most.chunk_chars).len(), MAX_INPUTS);
        // Unknown fields and protocols are errors.
        bad(
            json!({"protocol": "tei_predict", "cluster": "pg", "labels": ["X"], "labelz": []}),
            "c",
        );
        bad(json!({"protocol": "llama_guard", "cluster": "pg"}), "c");
        bad(
            json!({"protocol": "tei_predict", "cluster": "pg", "labels": ["X"], "on_error": "ignore"}),
            "c",
        );
    }

    #[test]
    fn policy_config_compiles_the_classifier_with_its_path_in_errors() {
        use crate::authz::policy::{AuthorizationConfig, Authorizer};
        let auth = |clf: Value| {
            let cfg: AuthorizationConfig = serde_json::from_value(json!({
                "routes": [{"match": {"path_prefix": "/"}, "policy": "p"}],
                "policies": {"p": {"rules": [{"name": "all", "models": ["*"]}], "classifier": clf}}
            }))
            .map_err(|e| cerr("serde", e.to_string()))?;
            Authorizer::new(&cfg, &[])
        };
        let a = auth(json!({"protocol": "tei_predict", "cluster": "pg", "labels": ["INJECTION"]})).unwrap();
        let spec = a.policy(0).unwrap().classifier.as_ref().unwrap();
        assert_eq!(spec.cluster, "pg");
        let e = auth(json!({"protocol": "tei_predict", "cluster": "pg"})).unwrap_err();
        assert_eq!(e.path, "authorization.policies.p.classifier.labels");
        let e = auth(json!({"protocol": "tei_predict", "cluster": "pg", "labels": ["X"], "extra": 1}))
            .unwrap_err();
        assert!(e.message.contains("unknown field"), "{}", e.message);
        // Absent: no classifier.
        let cfg: AuthorizationConfig = serde_json::from_value(json!({
            "routes": [{"match": {"path_prefix": "/"}, "policy": "p"}],
            "policies": {"p": {"rules": [{"name": "all", "models": ["*"]}]}}
        }))
        .unwrap();
        assert!(Authorizer::new(&cfg, &[])
            .unwrap()
            .policy(0)
            .unwrap()
            .classifier
            .is_none());
    }

    #[test]
    fn prompt_text_reads_callers_and_tools_not_the_model_or_system() {
        let s = tei();
        let b = body(json!({"model": "m", "messages": [
            {"role": "system", "content": "SYSTEM"},
            {"role": "user", "content": [{"type": "text", "text": "part one"}, {"type": "text", "text": "part two"}]},
            {"role": "assistant", "content": "ASSISTANT"},
            {"role": "tool", "content": "tool out"},
            {"role": "user", "content": [{"type": "tool_result", "content": [{"type": "text", "text": "nested"}]},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc text"}}]}
        ]}));
        assert_eq!(
            s.prompt_text(&b).unwrap(),
            "part one\npart two\ntool out\nnested\ndoc text"
        );
        let with_system = ClassifierSpec {
            include_system: true,
            ..tei()
        };
        assert!(with_system.prompt_text(&b).unwrap().starts_with("SYSTEM\n"));
        // Completions, Responses API and embeddings shapes.
        assert_eq!(
            s.prompt_text(&body(json!({"prompt": "p", "suffix": "s"})))
                .unwrap(),
            "p\ns"
        );
        assert_eq!(
            s.prompt_text(&body(
                json!({"input": [{"role": "user", "content": [{"type": "input_text", "text": "r"}]},
                {"type": "function_call_output", "output": "fo"}, "plain"]})
            ))
            .unwrap(),
            "r\nfo\nplain"
        );
        assert_eq!(s.prompt_text(&body(json!({"input": "one"}))).unwrap(), "one");
        // Nothing to classify.
        assert_eq!(
            s.prompt_text(&body(
                json!({"model": "m", "messages": [{"role": "user", "content": "  "}]})
            )),
            None
        );
        assert_eq!(s.prompt_text(&body(json!({"model": "m"}))), None);
    }

    #[test]
    fn long_prompts_send_head_and_tail() {
        let s = ClassifierSpec {
            max_chars: 10,
            ..tei()
        };
        let text = s
            .prompt_text(&body(json!({"prompt": "aaaaaaaaaaXXXXXXXXXXbbbbbbbbbé"})))
            .unwrap();
        assert_eq!(text, "aaaaa\nbbbbé");
        // Characters, not bytes: never splits a code point.
        assert_eq!(cap_chars("ééé", 2), "é\né");
        assert_eq!(cap_chars("short", 10), "short");
    }

    #[test]
    fn requests_in_each_protocol() {
        let s = ClassifierSpec {
            chunk_chars: 4,
            ..tei()
        };
        let r = s.request("abcdefghij");
        assert!(r.headers.contains(&(":path".into(), "/predict".into())));
        assert!(r.headers.contains(&(":method".into(), "POST".into())));
        assert!(r.headers.contains(&(":authority".into(), "pg".into())));
        assert!(r
            .headers
            .contains(&("content-type".into(), "application/json".into())));
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v, json!({"inputs": ["abcd", "efgh", "ij"], "truncate": true}));
        let m = moderation(json!({"authority": "mod.example"}));
        let r = m.request("hello");
        assert!(r.headers.contains(&(":authority".into(), "mod.example".into())));
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v, json!({"model": "omni-moderation-latest", "input": ["hello"]}));
        let no_model = cfg(json!({"protocol": "openai_moderation", "cluster": "mod"})).unwrap();
        let v: Value = serde_json::from_slice(&no_model.request("x").body).unwrap();
        assert_eq!(v, json!({"input": ["x"]}));
        assert_eq!(chunks("", 3), vec![""]);
        assert_eq!(chunks("ééé", 2), vec!["éé", "é"]);
    }

    fn ans(s: &ClassifierSpec, v: Value) -> Result<Verdict, ClassifierError> {
        s.read_answer(Some(200), v.to_string().as_bytes())
    }

    fn block(label: &str) -> Result<Verdict, ClassifierError> {
        Ok(Verdict::Block { label: label.into() })
    }

    #[test]
    fn tei_answers() {
        let s = tei();
        // Flat (one input) and nested (batch) lists.
        assert_eq!(
            ans(
                &s,
                json!([{"label": "INJECTION", "score": 0.97}, {"label": "BENIGN", "score": 0.03}])
            ),
            block("INJECTION")
        );
        assert_eq!(
            ans(
                &s,
                json!([{"label": "BENIGN", "score": 0.99}, {"label": "INJECTION", "score": 0.01}])
            ),
            Ok(Verdict::Allow)
        );
        assert_eq!(
            ans(
                &s,
                json!([[{"label": "BENIGN", "score": 0.99}], [{"label": "jailbreak", "score": 0.6}, {"label": "INJECTION", "score": 0.55}]])
            ),
            block("jailbreak"),
            "any chunk; the highest unsafe score names the label"
        );
        // Threshold: at or above.
        let strict = ClassifierSpec {
            threshold: Some(0.9),
            ..tei()
        };
        assert_eq!(
            ans(&strict, json!([{"label": "INJECTION", "score": 0.89}])),
            Ok(Verdict::Allow)
        );
        assert_eq!(
            ans(&strict, json!([{"label": "INJECTION", "score": 0.9}])),
            block("INJECTION")
        );
        // A label not configured never blocks.
        assert_eq!(
            ans(&s, json!([{"label": "TOXIC", "score": 1.0}])),
            Ok(Verdict::Allow)
        );
        // Garbage and wrong shapes.
        for g in [
            json!({"label": "INJECTION", "score": 0.9}),
            json!([]),
            json!([[]]),
            json!([{"label": "INJECTION"}]),
            json!([{"score": 0.9}]),
            json!([{"label": 1, "score": 0.9}]),
            json!([{"label": "INJECTION", "score": "0.9"}]),
            json!({"error": "overloaded"}),
            json!(null),
        ] {
            assert!(
                matches!(ans(&s, g.clone()), Err(ClassifierError::Garbage(_))),
                "{g}"
            );
        }
        assert!(matches!(
            s.read_answer(Some(200), b"<html>"),
            Err(ClassifierError::Garbage(_))
        ));
        assert!(matches!(
            s.read_answer(Some(200), b""),
            Err(ClassifierError::Garbage(_))
        ));
        let huge = vec![b' '; MAX_ANSWER_BYTES + 1];
        assert!(matches!(
            s.read_answer(Some(200), &huge),
            Err(ClassifierError::Garbage(_))
        ));
        assert_eq!(s.read_answer(None, b""), Err(ClassifierError::NoAnswer));
        assert_eq!(s.read_answer(Some(500), b"[]"), Err(ClassifierError::Status(500)));
        assert_eq!(s.read_answer(Some(429), b""), Err(ClassifierError::Status(429)));
    }

    #[test]
    fn moderation_answers() {
        let flagged = json!({"id": "modr-1", "model": "omni", "results": [{"flagged": true,
            "categories": {"violence": true, "harassment": false, "self-harm": true},
            "category_scores": {"violence": 0.7, "harassment": 0.2, "self-harm": 0.9}}]});
        let clean = json!({"results": [{"flagged": false, "categories": {"violence": false},
            "category_scores": {"violence": 0.01}}]});
        // The service's own verdict.
        let s = moderation(json!({}));
        assert_eq!(ans(&s, flagged.clone()), block("self-harm"));
        assert_eq!(ans(&s, clean.clone()), Ok(Verdict::Allow));
        assert_eq!(ans(&s, json!({"results": [{"flagged": true}]})), block("flagged"));
        // Only the configured categories.
        let violence = moderation(json!({"labels": ["Violence"]}));
        assert_eq!(ans(&violence, flagged.clone()), block("violence"));
        let hate = moderation(json!({"labels": ["hate"]}));
        assert_eq!(ans(&hate, flagged.clone()), Ok(Verdict::Allow));
        assert!(matches!(
            ans(&hate, json!({"results": [{"flagged": true}]})),
            Err(ClassifierError::Garbage(_))
        ));
        // Our own threshold on the scores.
        let t = moderation(json!({"threshold": 0.5}));
        assert_eq!(ans(&t, flagged.clone()), block("self-harm"));
        let t = moderation(json!({"threshold": 0.95}));
        assert_eq!(ans(&t, flagged.clone()), Ok(Verdict::Allow));
        let t = moderation(json!({"threshold": 0.1, "labels": ["harassment"]}));
        assert_eq!(ans(&t, flagged.clone()), block("harassment"));
        // One result per input chunk: any of them.
        let two = json!({"results": [clean["results"][0].clone(), flagged["results"][0].clone()]});
        assert_eq!(ans(&s, two), block("self-harm"));
        // Garbage.
        for g in [
            json!({"results": []}),
            json!({"results": {}}),
            json!({"flagged": true}),
            json!({"results": [{"categories": {}}]}),
            json!([{"label": "x", "score": 1}]),
        ] {
            assert!(
                matches!(ans(&s, g.clone()), Err(ClassifierError::Garbage(_))),
                "{g}"
            );
        }
        let t = moderation(json!({"threshold": 0.5}));
        assert!(matches!(
            ans(&t, json!({"results": [{"flagged": false}]})),
            Err(ClassifierError::Garbage(_))
        ));
        assert!(matches!(
            ans(
                &t,
                json!({"results": [{"flagged": false, "category_scores": {"x": "high"}}]})
            ),
            Err(ClassifierError::Garbage(_))
        ));
    }

    #[test]
    fn labels_from_the_service_are_made_safe() {
        let s = moderation(json!({}));
        let v = ans(
            &s,
            json!({"results": [{"flagged": true, "categories": {"bad\"label\n<x>": true}}]}),
        );
        assert_eq!(v, block("badlabelx"));
        let v = ans(
            &s,
            json!({"results": [{"flagged": true, "categories": {"\u{1F600}": true}}]}),
        );
        assert_eq!(v, block("unlabeled"));
        let long = "a".repeat(500);
        let v = ans(
            &s,
            json!({"results": [{"flagged": true, "categories": {long: true}}]}),
        );
        assert_eq!(v, block(&"a".repeat(MAX_LABEL_CHARS)));
    }

    #[test]
    fn resolution_by_mode_and_on_error() {
        let enforce = tei();
        let blocked = block("INJECTION");
        assert_eq!(
            enforce.resolve(&blocked),
            Resolution::Block {
                rule: "classifier:INJECTION".into()
            }
        );
        assert!(!enforce.resolve(&blocked).proceeds());
        assert_eq!(enforce.resolve(&blocked).reason(), Some("prompt_blocked"));
        assert_eq!(enforce.resolve(&blocked).rule(), Some("classifier:INJECTION"));
        assert_eq!(enforce.resolve(&Ok(Verdict::Allow)), Resolution::Allow);
        let err = Err(ClassifierError::NoAnswer);
        let r = enforce.resolve(&err);
        assert_eq!(r.outcome(), "error_denied");
        assert!(!r.proceeds());
        assert_eq!(r.reason(), Some("guard_unavailable"));
        let open = ClassifierSpec {
            on_error: OnError::Allow,
            ..tei()
        };
        assert!(open.resolve(&err).proceeds());
        assert_eq!(open.resolve(&err).outcome(), "error_allowed");
        assert_eq!(open.resolve(&err).reason(), None);
        let monitor = ClassifierSpec {
            mode: Mode::Monitor,
            ..tei()
        };
        let r = monitor.resolve(&blocked);
        assert!(r.proceeds());
        assert_eq!(r.outcome(), "monitored");
        assert_eq!(r.rule(), Some("classifier:INJECTION"));
        let r = monitor.resolve(&err);
        assert!(r.proceeds());
        assert_eq!(r.outcome(), "error_monitored");
        assert_eq!(r.error().map(ClassifierError::kind), Some("no_answer"));
    }

    #[test]
    fn unavailable_reply_is_openai_shaped_and_says_nothing_internal() {
        let r = unavailable_reply();
        assert_eq!(r.status, 503);
        let v: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["error"]["code"], "guard_unavailable");
        assert_eq!(v["error"]["type"], "server_error");
        assert!(v["error"]["param"].is_null());
    }

    #[test]
    fn cache_is_bounded_first_in_first_out() {
        let mut c = VerdictCache::new(2);
        let (a, b, d) = (cache_key("a"), cache_key("b"), cache_key("d"));
        assert_ne!(a, b);
        assert_eq!(cache_key("a"), a);
        c.put(a, Verdict::Allow);
        c.put(b, Verdict::Block { label: "X".into() });
        c.put(a, Verdict::Allow); // a refresh is not a new entry
        assert_eq!(c.len(), 2);
        c.put(d, Verdict::Allow);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(&a), None, "the oldest went");
        assert_eq!(c.get(&b), Some(&Verdict::Block { label: "X".into() }));
        assert_eq!(c.get(&d), Some(&Verdict::Allow));
        for i in 0..1000 {
            c.put(cache_key(&i.to_string()), Verdict::Allow);
        }
        assert_eq!(c.len(), 2);
        let mut off = VerdictCache::new(0);
        off.put(a, Verdict::Allow);
        assert!(off.is_empty());
    }
}
