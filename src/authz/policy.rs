//! Authorization: routes choose a named policy; a policy's rules grant models, tools and
//! actions to identities that satisfy the rule's conditions. Deny by default: a request is
//! allowed only by a rule that grants everything it asks for.

use crate::authn::claims::Identity;
use crate::authz::llm_request::{BodyFacts, Endpoint, PathPattern, ToolChoice};
use crate::authz::request_path::CanonicalPath;
use crate::config_error::ConfigError;
pub use crate::inspect::tool_calls::ForbiddenToolCall;
use crate::limits::ratelimit::{KeyBy, Kind, Limit, LimitSpec, ModelScope, Period, SlotTable};
pub use crate::mode::Mode;
pub use crate::outcome::reason::Denial;
use crate::outcome::reason::RequestProblem;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;

// ---------- configuration ----------

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationConfig {
    /// First match wins; a request matching no route rule is denied.
    pub routes: Vec<RouteRule>,
    pub policies: BTreeMap<String, PolicyConfig>,
    #[serde(default)]
    pub model_from: ModelSource,
    #[serde(default)]
    pub request_body: BodyLimits,
    #[serde(default)]
    pub response_tool_calls: ResponseToolCalls,
    #[serde(default)]
    pub rate_limiting: RateLimiting,
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimiting {
    /// `monitor`: count and report (headers, audit), never block.
    #[serde(default)]
    pub mode: Mode,
    /// Size of the fixed counter table in Envoy shared data (bounded memory).
    #[serde(default = "default_slots")]
    pub slots: u64,
    /// Key prefix in shared data (default: the plugin name), so plugins never collide.
    pub namespace: Option<String>,
    /// Named model groups for limits with `"models": "group"`.
    #[serde(default)]
    pub model_groups: BTreeMap<String, Vec<String>>,
    /// Ask for usage on every streaming OpenAI chat/completions call (global mode: Envoy's
    /// ratelimit filter charges the exported usage, and streams only report it on request).
    /// Local token limits force it on the calls they cover regardless.
    #[serde(default)]
    pub force_stream_usage: bool,
    /// Output tokens a token limit reserves per choice for a call that sets no `max_tokens`
    /// (the model may produce more: the excess is charged after the call).
    #[serde(default = "default_max_tokens")]
    pub default_max_tokens: u64,
}

fn default_max_tokens() -> u64 {
    crate::limits::usage::DEFAULT_MAX_TOKENS
}

impl Default for RateLimiting {
    fn default() -> Self {
        RateLimiting {
            mode: Mode::Enforce,
            slots: default_slots(),
            namespace: None,
            model_groups: BTreeMap::new(),
            force_stream_usage: false,
            default_max_tokens: default_max_tokens(),
        }
    }
}

fn default_slots() -> u64 {
    16384
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitConfig {
    /// Limits with the same name (and key) share one counter, across rules too.
    pub name: String,
    pub requests: Option<u64>,
    pub tokens: Option<u64>,
    pub per: Period,
    /// sub, client, issuer or claim:<name>.
    #[serde(default = "by_sub")]
    pub by: String,
    #[serde(default)]
    pub models: ModelScope,
    /// Tokens only. Every token limit reserves the call's estimate before it goes upstream
    /// (prompt estimate + max_tokens × n) and settles it with the real usage after. false
    /// (default): admit while any budget is left, so one call may overdraw it by its
    /// reservation; true: admit only when the whole reservation fits.
    #[serde(default)]
    pub reserve: bool,
}

fn by_sub() -> String {
    "sub".into()
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    #[serde(rename = "match")]
    pub matcher: RouteMatch,
    pub policy: String,
}

/// All given fields must match. Globs use `*`.
#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteMatch {
    /// Envoy route name (`xds.route_name`; routes need a `name`).
    pub route_name: Option<String>,
    /// `:authority` without port, e.g. `llm.example.com` or `*.example.com`.
    pub host: Option<String>,
    /// A prefix of the canonical (decoded) path, compared case-insensitively like endpoint
    /// names; the query is not part of it.
    pub path_prefix: Option<String>,
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    #[serde(default)]
    pub mode: Mode,
    pub rules: Vec<RuleConfig>,
    /// Prompt-injection guard on what callers and tools send.
    pub guard: Option<GuardConfig>,
    /// External prompt classifier called after the guard passes (see `classifier`).
    pub classifier: Option<crate::inspect::classifier::ClassifierConfig>,
    /// Secret and PII redaction in responses.
    pub redaction: Option<RedactionConfig>,
    /// Short-lived upstream credential obtained per call (instead of a static provider key).
    pub upstream_credentials: Option<crate::upstream::credentials::CredentialConfig>,
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardConfig {
    /// `enforce` blocks, `monitor` only audits.
    #[serde(default)]
    pub mode: Mode,
    /// Built-in rule ids to use (default: all).
    pub builtin: Option<Vec<String>>,
    #[serde(default)]
    pub custom: Vec<CustomGuardRule>,
    #[serde(default)]
    pub on_block: OnBlock,
    /// Also check system/developer prompts.
    #[serde(default)]
    pub include_system: bool,
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomGuardRule {
    pub id: String,
    #[serde(default)]
    pub literals: Vec<String>,
    pub regex: Option<String>,
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBlock {
    /// 400 with code prompt_blocked and the rule id.
    #[default]
    Error,
    /// A normal completion saying the request was declined (clients don't break).
    Refusal,
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactionConfig {
    /// "secrets", "pii", or detector names (aws_access_key, email, payment_card, ...).
    #[serde(default = "default_detectors")]
    pub detectors: Vec<String>,
    #[serde(default)]
    pub custom: Vec<CustomRedaction>,
    /// `tag` ([REDACTED:type]) or `keyed_hash` ([REDACTED:type:hmac]).
    #[serde(default = "default_replacement")]
    pub replacement: String,
    /// Key for `keyed_hash`, base64, at least 16 bytes.
    pub hash_key_base64: Option<String>,
    /// `monitor`: count what would be redacted, change nothing.
    #[serde(default)]
    pub mode: Mode,
    /// A response redaction cannot parse (no or unknown content type, unparseable body):
    /// `withhold` (502, the default) or `as_text` (through the text redactor). Compressed
    /// responses are always withheld.
    #[serde(default)]
    pub uninspectable: crate::inspect::response::Uninspectable,
    /// Response headers whose values are redacted: absent = all but protocol metadata
    /// (content-type, date, rate-limit figures...); a list = exactly those names.
    pub response_headers: Option<Vec<String>>,
}

fn default_detectors() -> Vec<String> {
    vec!["secrets".into(), "pii".into()]
}
fn default_replacement() -> String {
    "tag".into()
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomRedaction {
    pub name: String,
    pub regex: String,
    /// How many whitespace-separated words one match can span (streaming hold-back).
    #[serde(default = "one")]
    pub max_words: usize,
}

fn one() -> usize {
    1
}

/// A compiled guard of one policy.
#[derive(Debug, Clone)]
pub struct GuardSpec {
    pub guard: crate::inspect::guard::Guard,
    pub mode: Mode,
    pub on_block: OnBlock,
}

/// Compiled redaction of one policy.
#[derive(Debug, Clone)]
pub struct RedactionSpec {
    pub detectors: crate::redact::Detectors,
    pub replacement: crate::redact::Replacement,
    pub mode: Mode,
    pub uninspectable: crate::inspect::response::Uninspectable,
    pub response_headers: crate::inspect::response::HeaderSelection,
}

impl RedactionSpec {
    /// A redactor for this redaction, counting into `counts`.
    pub fn redactor<'a>(
        &'a self,
        counts: &'a mut crate::redact::Counts,
    ) -> crate::redact::stream::Redactor<'a> {
        crate::redact::stream::Redactor {
            detectors: &self.detectors,
            replacement: &self.replacement,
            counts,
        }
    }
}

const SECRET_KINDS: [crate::redact::Kind; 11] = {
    use crate::redact::Kind::*;
    [
        AwsAccessKey,
        AwsSecretKey,
        GithubToken,
        OpenaiKey,
        AnthropicKey,
        SlackToken,
        StripeKey,
        GoogleApiKey,
        PrivateKey,
        Jwt,
        Password,
    ]
};
const PII_KINDS: [crate::redact::Kind; 6] = {
    use crate::redact::Kind::*;
    [Email, PaymentCard, UsSsn, Iban, Phone, Ipv4]
};

fn compile_guard(g: &GuardConfig, p: &str) -> Result<GuardSpec, ConfigError> {
    if let Some(ids) = &g.builtin {
        for (i, id) in ids.iter().enumerate() {
            if !crate::inspect::guard::BUILTIN.iter().any(|(b, _)| b == id) {
                return Err(cerr(
                    format!("{p}.builtin[{i}]"),
                    format!("no built-in rule {id:?}"),
                ));
            }
        }
    }
    let mut rules = crate::inspect::guard::Guard::builtin(g.builtin.as_deref()).map_err(|m| cerr(p, m))?;
    for (i, c) in g.custom.iter().enumerate() {
        let cp = format!("{p}.custom[{i}]");
        if c.id.is_empty() {
            return Err(cerr(format!("{cp}.id"), "must not be empty"));
        }
        match (&c.regex, c.literals.is_empty()) {
            (Some(re), true) => rules.push(
                crate::inspect::guard::Rule::regex(&c.id, &[re.as_str()])
                    .map_err(|m| cerr(format!("{cp}.regex"), m))?,
            ),
            (None, false) => rules.push(crate::inspect::guard::Rule::literal(&c.id, &c.literals)),
            _ => return Err(cerr(cp, "set either \"literals\" or \"regex\"")),
        }
    }
    Ok(GuardSpec {
        guard: crate::inspect::guard::Guard {
            rules,
            include_system: g.include_system,
        },
        mode: g.mode,
        on_block: g.on_block,
    })
}

fn compile_redaction(r: &RedactionConfig, p: &str) -> Result<RedactionSpec, ConfigError> {
    use crate::redact::{CustomPattern, Detectors, Kind, Replacement};
    let mut wanted: Vec<Kind> = Vec::new();
    for (i, d) in r.detectors.iter().enumerate() {
        match d.as_str() {
            "secrets" => wanted.extend(SECRET_KINDS),
            "pii" => wanted.extend(PII_KINDS),
            name => wanted.push(Kind::ALL.into_iter().find(|k| k.name() == name).ok_or_else(|| {
                cerr(
                    format!("{p}.detectors[{i}]"),
                    format!("unknown detector {name:?}"),
                )
            })?),
        }
    }
    // Sorted and deduplicated by walking the kinds in order: no sort routine instantiated
    // for Kind (3 KB of .wasm).
    let kinds: Vec<Kind> = Kind::ALL
        .into_iter()
        .chain([Kind::Custom])
        .filter(|k| wanted.contains(k))
        .collect();
    let mut custom = Vec::new();
    for (i, c) in r.custom.iter().enumerate() {
        let cp = format!("{p}.custom[{i}]");
        if c.name.is_empty() || !c.name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
            return Err(cerr(format!("{cp}.name"), "must be non-empty [A-Za-z0-9_]"));
        }
        if !(1..=16).contains(&c.max_words) {
            return Err(cerr(format!("{cp}.max_words"), "must be between 1 and 16"));
        }
        let regex = regex_lite::Regex::new(&c.regex)
            .map_err(|e| cerr(format!("{cp}.regex"), format!("invalid regex: {e}")))?;
        custom.push(CustomPattern {
            name: c.name.clone(),
            regex,
            max_runs: c.max_words,
        });
    }
    let replacement = match r.replacement.as_str() {
        "tag" => Replacement::Tag,
        "keyed_hash" => {
            use base64::Engine;
            let key = r
                .hash_key_base64
                .as_deref()
                .and_then(|k| base64::engine::general_purpose::STANDARD.decode(k.trim()).ok())
                .filter(|k| k.len() >= 16)
                .ok_or_else(|| {
                    cerr(
                        format!("{p}.hash_key_base64"),
                        "keyed_hash needs a base64 key of at least 16 bytes",
                    )
                })?;
            Replacement::KeyedHash(key)
        }
        _ => {
            return Err(cerr(
                format!("{p}.replacement"),
                "must be \"tag\" or \"keyed_hash\"",
            ))
        }
    };
    Ok(RedactionSpec {
        detectors: Detectors { kinds, custom },
        replacement,
        mode: r.mode,
        uninspectable: r.uninspectable,
        response_headers: crate::inspect::response::HeaderSelection::from_config(
            r.response_headers.as_deref(),
        ),
    })
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    /// Who the rule applies to, and under which conditions. Empty: every authenticated caller.
    #[serde(default)]
    pub when: When,
    /// Granted actions (globs): chat, completions, embeddings, responses, messages, models,
    /// images, speech, moderations. Default: all of these. `other` (an endpoint the filter
    /// does not understand) is granted only by the literal "other", never by a glob or the
    /// default; or, path by path, by `other_paths`.
    #[serde(default = "all")]
    pub actions: Vec<String>,
    /// Path globs on the canonical path granting action `other` there: `*` matches within a
    /// segment, `**` across segments; a trailing `/**` also matches the prefix itself
    /// (`/v1/files/**` grants `/v1/files` and everything under it). Case-sensitive.
    #[serde(default)]
    pub other_paths: Vec<String>,
    /// Granted models (exact names or globs). `*` stops at `/` (`meta-llama/*` grants
    /// `meta-llama/x`), `**` does not; a name with `..` or control characters matches
    /// nothing. Default: none.
    #[serde(default)]
    pub models: Vec<String>,
    /// Granted tools (globs). Default: none.
    #[serde(default)]
    pub tools: Vec<String>,
    pub max_tokens: Option<TokenCap>,
    /// Whether `stream: true` is allowed.
    #[serde(default = "yes")]
    pub streaming: bool,
    /// Rate limits on calls this rule grants; all must pass.
    #[serde(default)]
    pub limits: Vec<LimitConfig>,
}

fn all() -> Vec<String> {
    vec!["*".into()]
}
fn yes() -> bool {
    true
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// Every one of these scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// At least one of these scopes.
    #[serde(default)]
    pub any_scopes: Vec<String>,
    /// Configured issuer names (e.g. only the human IdP for admin routes).
    #[serde(default)]
    pub issuers: Vec<String>,
    /// The token's `aud` must contain one of these.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Subject globs.
    #[serde(default)]
    pub subjects: Vec<String>,
    /// Claim conditions; dotted names reach into objects (`org.tenant`).
    #[serde(default)]
    pub claims: BTreeMap<String, ValueMatch>,
    /// Any of these windows must contain the current time.
    #[serde(default)]
    pub time_windows: Vec<TimeWindow>,
    /// The client address must fall in one of these CIDRs.
    #[serde(default)]
    pub source_cidrs: Vec<String>,
    /// Request header conditions (lower-case names).
    #[serde(default)]
    pub headers: BTreeMap<String, ValueMatch>,
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum ValueMatch {
    Equals(Value),
    In(Vec<Value>),
    Prefix(String),
    Present(bool),
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeWindow {
    /// mon, tue, wed, thu, fri, sat, sun.
    pub days: Vec<String>,
    /// "HH:MM", inclusive.
    pub start: String,
    /// "HH:MM", exclusive; earlier than start means the window crosses midnight.
    pub end: String,
    /// "+HH:MM" / "-HH:MM" (default UTC).
    #[serde(default = "utc")]
    pub utc_offset: String,
}

fn utc() -> String {
    "+00:00".into()
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenCap {
    pub limit: u64,
    #[serde(default)]
    pub on_exceed: OnExceed,
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnExceed {
    #[default]
    Reject,
    /// Rewrite the request's cap down to the limit.
    Clamp,
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSource {
    /// Path templates with a `{model}` segment, e.g. `/openai/deployments/{model}/**`.
    #[serde(default)]
    pub path_patterns: Vec<String>,
    /// A request header naming the model (e.g. `x-model`), used when the body has none.
    pub header: Option<String>,
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyLimits {
    /// Larger request bodies on inspected routes are refused with 413.
    #[serde(default = "default_body_max")]
    pub max_bytes: usize,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits {
            max_bytes: default_body_max(),
        }
    }
}

fn default_body_max() -> usize {
    1024 * 1024
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseToolCalls {
    #[serde(default)]
    pub on_forbidden: ForbiddenToolCall,
}

// ---------- compiled form ----------

#[derive(Debug, Clone)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, p) = s.split_once('/').unwrap_or((s, ""));
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if p.is_empty() {
            max
        } else {
            p.parse::<u8>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("{s:?} has a bad prefix length"))?
        };
        Ok(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
struct Window {
    days: [bool; 7],
    start: u32,
    end: u32,
    offset_s: i64,
}

fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 24 && m < 60 && h * 60 + m <= 24 * 60 && h.to_string().len() <= 2 && m.to_string().len() <= 2)
        .then_some(h * 60 + m)
}

fn parse_offset(s: &str) -> Option<i64> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, s.get(1..)?),
        b'-' => (-1, s.get(1..)?),
        _ => return None,
    };
    let minutes = i64::from(parse_hhmm(rest)?);
    (minutes <= 14 * 60).then_some(sign * minutes * 60)
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Window {
    fn parse(w: &TimeWindow, p: &str) -> Result<Window, ConfigError> {
        let mut days = [false; 7];
        if w.days.is_empty() {
            return Err(cerr(format!("{p}.days"), "must list at least one day"));
        }
        for (i, d) in w.days.iter().enumerate() {
            let idx = DAYS
                .iter()
                .position(|x| x.eq_ignore_ascii_case(d))
                .ok_or_else(|| cerr(format!("{p}.days[{i}]"), "must be one of mon..sun"))?;
            if let Some(slot) = days.get_mut(idx) {
                *slot = true;
            }
        }
        let start = parse_hhmm(&w.start).ok_or_else(|| cerr(format!("{p}.start"), "must be HH:MM"))?;
        let end = parse_hhmm(&w.end).ok_or_else(|| cerr(format!("{p}.end"), "must be HH:MM"))?;
        let offset_s = parse_offset(&w.utc_offset)
            .ok_or_else(|| cerr(format!("{p}.utc_offset"), "must be +HH:MM or -HH:MM"))?;
        Ok(Window {
            days,
            start,
            end,
            offset_s,
        })
    }

    fn contains(&self, now_unix: u64) -> bool {
        let local = now_unix as i64 + self.offset_s;
        let day_index = local.div_euclid(86_400);
        let minute = (local.rem_euclid(86_400) / 60) as u32;
        // 1970-01-01 was a Thursday (index 3 with Monday = 0).
        let weekday = |d: i64| (d + 3).rem_euclid(7) as usize;
        let day_on = |d: i64| self.days.get(weekday(d)).copied().unwrap_or(false);
        if self.start <= self.end {
            day_on(day_index) && self.start <= minute && minute < self.end
        } else {
            // Crosses midnight: the early-morning part belongs to the previous day's window.
            (day_on(day_index) && minute >= self.start) || (day_on(day_index - 1) && minute < self.end)
        }
    }
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    when: When,
    windows: Vec<Window>,
    cidrs: Vec<Cidr>,
    actions: Vec<String>,
    other_paths: Vec<String>,
    models: Vec<String>,
    tools: Vec<String>,
    max_tokens: Option<TokenCap>,
    streaming: bool,
    limits: Vec<LimitSpec>,
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    pub mode: Mode,
    rules: Vec<Rule>,
    pub guard: Option<GuardSpec>,
    pub classifier: Option<crate::inspect::classifier::ClassifierSpec>,
    pub redaction: Option<RedactionSpec>,
    pub credentials: Option<crate::upstream::credentials::CredentialSpec>,
}

#[derive(Debug, Clone)]
pub struct Authorizer {
    routes: Vec<(RouteMatch, usize)>,
    policies: Vec<Policy>,
    pub model_patterns: Vec<PathPattern>,
    pub model_header: Option<String>,
    pub body_max_bytes: usize,
    pub on_forbidden_tool_call: ForbiddenToolCall,
    /// Header names the conditions read, so the adapter fetches only those.
    pub condition_headers: Vec<String>,
    /// Whether any rule has a `source_cidrs` condition (else the source address is not
    /// worth a hostcall per request).
    pub uses_source_ip: bool,
    pub rate_limit_mode: Mode,
    pub rate_limit_slots: u64,
    pub rate_limit_namespace: Option<String>,
    pub force_stream_usage: bool,
    /// Output cap a token reservation assumes when the request names none.
    pub default_max_tokens: u64,
    model_groups: Vec<(String, Vec<String>)>,
}

fn cerr(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        path: path.into(),
        message: message.into(),
    }
}

impl Authorizer {
    /// Compiles and validates; `issuer_names` are the configured issuers' names.
    pub fn new(cfg: &AuthorizationConfig, issuer_names: &[String]) -> Result<Authorizer, ConfigError> {
        let p = "authorization";
        if cfg.routes.is_empty() {
            return Err(cerr(format!("{p}.routes"), "at least one route rule is required"));
        }
        let names: Vec<&String> = cfg.policies.keys().collect();
        let mut routes = Vec::new();
        for (i, r) in cfg.routes.iter().enumerate() {
            let m = &r.matcher;
            if m.route_name.is_none() && m.host.is_none() && m.path_prefix.is_none() {
                return Err(cerr(
                    format!("{p}.routes[{i}].match"),
                    "needs route_name, host or path_prefix (use path_prefix \"/\" for all)",
                ));
            }
            if let Some(prefix) = &m.path_prefix {
                check_path_glob(prefix).map_err(|e| cerr(format!("{p}.routes[{i}].match.path_prefix"), e))?;
            }
            let idx = names.iter().position(|n| **n == r.policy).ok_or_else(|| {
                cerr(
                    format!("{p}.routes[{i}].policy"),
                    format!("no policy named {:?}", r.policy),
                )
            })?;
            routes.push((m.clone(), idx));
        }
        let mut policies = Vec::new();
        let mut condition_headers = Vec::new();
        for (name, pc) in &cfg.policies {
            let pp = format!("{p}.policies.{name}");
            if pc.rules.is_empty() {
                return Err(cerr(format!("{pp}.rules"), "at least one rule is required"));
            }
            let mut rules = Vec::new();
            for (j, rc) in pc.rules.iter().enumerate() {
                let rp = format!("{pp}.rules[{j}]");
                if rc.name.is_empty() {
                    return Err(cerr(format!("{rp}.name"), "must not be empty"));
                }
                if let Some((k, bad)) = rc
                    .when
                    .issuers
                    .iter()
                    .enumerate()
                    .find(|(_, n)| !issuer_names.contains(n))
                {
                    return Err(cerr(
                        format!("{rp}.when.issuers[{k}]"),
                        format!("no issuer named {bad:?}"),
                    ));
                }
                let windows = rc
                    .when
                    .time_windows
                    .iter()
                    .enumerate()
                    .map(|(k, w)| Window::parse(w, &format!("{rp}.when.time_windows[{k}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                let cidrs = rc
                    .when
                    .source_cidrs
                    .iter()
                    .enumerate()
                    .map(|(k, c)| Cidr::parse(c).map_err(|m| cerr(format!("{rp}.when.source_cidrs[{k}]"), m)))
                    .collect::<Result<Vec<_>, _>>()?;
                for h in rc.when.headers.keys() {
                    if h.is_empty() || h.chars().any(|c| c.is_ascii_uppercase()) {
                        return Err(cerr(
                            format!("{rp}.when.headers.{h}"),
                            "header names must be lower case",
                        ));
                    }
                    if !condition_headers.contains(h) {
                        condition_headers.push(h.clone());
                    }
                }
                let mut other_paths = Vec::new();
                for (k, g) in rc.other_paths.iter().enumerate() {
                    check_path_glob(g).map_err(|e| cerr(format!("{rp}.other_paths[{k}]"), e))?;
                    other_paths.push(g.clone());
                }
                if rc.max_tokens.is_some_and(|c| c.limit == 0) {
                    return Err(cerr(format!("{rp}.max_tokens.limit"), "must be greater than 0"));
                }
                let mut limits = Vec::new();
                for (k, lc) in rc.limits.iter().enumerate() {
                    let lp = format!("{rp}.limits[{k}]");
                    limits.push(compile_limit(lc, &lp)?);
                    if rc.limits.iter().take(k).any(|o| o.name == lc.name) {
                        return Err(cerr(format!("{lp}.name"), "duplicate limit name in this rule"));
                    }
                    if lc.models == ModelScope::Group && cfg.rate_limiting.model_groups.is_empty() {
                        return Err(cerr(
                            format!("{lp}.models"),
                            "\"group\" needs rate_limiting.model_groups",
                        ));
                    }
                }
                rules.push(Rule {
                    limits,
                    name: rc.name.clone(),
                    when: rc.when.clone(),
                    windows,
                    cidrs,
                    actions: rc.actions.clone(),
                    other_paths,
                    models: rc.models.clone(),
                    tools: rc.tools.clone(),
                    max_tokens: rc.max_tokens,
                    streaming: rc.streaming,
                });
            }
            let guard = pc
                .guard
                .as_ref()
                .map(|g| compile_guard(g, &format!("{pp}.guard")))
                .transpose()?;
            let classifier = pc
                .classifier
                .as_ref()
                .map(|c| crate::inspect::classifier::ClassifierSpec::compile(c, &format!("{pp}.classifier")))
                .transpose()?;
            let redaction = pc
                .redaction
                .as_ref()
                .map(|r| compile_redaction(r, &format!("{pp}.redaction")))
                .transpose()?;
            if pc
                .upstream_credentials
                .as_ref()
                .is_some_and(|c| c.source == crate::upstream::credentials::CredentialSource::Static)
            {
                log::warn!(
                    "llm-warden: policy {name:?} sends a static, long-lived upstream key; \
                     move to client_credentials or token_exchange"
                );
            }
            let credentials = pc
                .upstream_credentials
                .as_ref()
                .map(|c| {
                    crate::upstream::credentials::CredentialSpec::compile(
                        c,
                        &format!("{pp}.upstream_credentials"),
                        &|v| std::env::var(v).ok(),
                    )
                })
                .transpose()?;
            policies.push(Policy {
                name: name.clone(),
                mode: pc.mode,
                rules,
                guard,
                classifier,
                redaction,
                credentials,
            });
        }
        let model_patterns = cfg
            .model_from
            .path_patterns
            .iter()
            .enumerate()
            .map(|(i, s)| {
                PathPattern::parse(s).map_err(|m| cerr(format!("{p}.model_from.path_patterns[{i}]"), m))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(h) = &cfg.model_from.header {
            if h.is_empty() || h.chars().any(|c| c.is_ascii_uppercase()) {
                return Err(cerr(
                    format!("{p}.model_from.header"),
                    "must be a lower-case header name",
                ));
            }
        }
        if !(1024..=64 * 1024 * 1024).contains(&cfg.request_body.max_bytes) {
            return Err(cerr(
                format!("{p}.request_body.max_bytes"),
                "must be between 1024 and 67108864",
            ));
        }
        let rl = &cfg.rate_limiting;
        if !(64..=1_000_000).contains(&rl.slots) {
            return Err(cerr(
                format!("{p}.rate_limiting.slots"),
                "must be between 64 and 1000000",
            ));
        }
        if let Some(ns) = &rl.namespace {
            if ns.is_empty() || !ns.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
                return Err(cerr(
                    format!("{p}.rate_limiting.namespace"),
                    "must be non-empty [A-Za-z0-9._-]",
                ));
            }
        }
        Ok(Authorizer {
            rate_limit_mode: rl.mode,
            rate_limit_slots: rl.slots,
            rate_limit_namespace: rl.namespace.clone(),
            force_stream_usage: rl.force_stream_usage,
            default_max_tokens: rl.default_max_tokens,
            model_groups: rl
                .model_groups
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            routes,
            policies,
            model_patterns,
            model_header: cfg.model_from.header.clone(),
            body_max_bytes: cfg.request_body.max_bytes,
            on_forbidden_tool_call: cfg.response_tool_calls.on_forbidden,
            condition_headers,
            uses_source_ip: cfg
                .policies
                .values()
                .flat_map(|p| &p.rules)
                .any(|r| !r.when.source_cidrs.is_empty()),
        })
    }

    /// The policy for a request, by first matching route rule.
    pub fn route(
        &self,
        route_name: Option<&str>,
        host: Option<&str>,
        path: &CanonicalPath,
    ) -> Option<&Policy> {
        self.route_index(route_name, host, path)
            .and_then(|i| self.policies.get(i))
    }

    /// Index of the policy chosen by the first matching route rule.
    pub fn route_index(
        &self,
        route_name: Option<&str>,
        host: Option<&str>,
        path: &CanonicalPath,
    ) -> Option<usize> {
        let host = host.map(strip_port);
        self.routes
            .iter()
            .find(|(m, _)| {
                m.route_name
                    .as_deref()
                    .is_none_or(|g| route_name.is_some_and(|r| glob(g, r)))
                    && m.host.as_deref().is_none_or(|g| {
                        host.is_some_and(|h| glob(&g.to_ascii_lowercase(), &h.to_ascii_lowercase()))
                    })
                    && m.path_prefix.as_deref().is_none_or(|pre| {
                        path.as_str()
                            .as_bytes()
                            .get(..pre.len())
                            .is_some_and(|head| head.eq_ignore_ascii_case(pre.as_bytes()))
                    })
            })
            .map(|(_, i)| *i)
    }

    pub fn policy(&self, index: usize) -> Option<&Policy> {
        self.policies.get(index)
    }

    /// The counter table for local rate limits; `plugin` names the default namespace.
    pub fn slot_table(&self, plugin: &str) -> SlotTable {
        SlotTable::new(
            self.rate_limit_namespace.as_deref().unwrap_or(plugin),
            self.rate_limit_slots,
        )
    }

    /// The model's part of a counter key.
    pub fn model_key(&self, scope: ModelScope, model: Option<&str>) -> String {
        match (scope, model) {
            (ModelScope::Any, _) | (_, None) => String::new(),
            (ModelScope::Each, Some(m)) => m.to_string(),
            (ModelScope::Group, Some(m)) => self
                .model_groups
                .iter()
                .find(|(_, globs)| globs.iter().any(|g| model_glob(g, m)))
                .map_or_else(|| m.to_string(), |(g, _)| format!("group:{g}")),
        }
    }

    /// The model named outside the body: by the path (`model_from.path_patterns`) or the
    /// configured header. Where both (or several patterns) name one, they must agree: the
    /// upstream may route on any of them.
    pub fn model_outside_body(
        &self,
        path: &CanonicalPath,
        header: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<String>, RequestProblem> {
        let mut named = self
            .model_patterns
            .iter()
            .filter_map(|p| p.model_of(path))
            .chain(self.model_header.as_deref().and_then(header));
        let first = named.next();
        if named.any(|other| Some(&other) != first.as_ref()) {
            return Err(RequestProblem::ModelMismatch);
        }
        Ok(first)
    }
}

/// The model the upstream serves, once the body is parsed: the one named outside the body
/// (`Authorizer::model_outside_body`) and the body's `model` must be the same, else neither
/// can be trusted to be the one checked.
pub fn served_model(
    outside_body: Option<&str>,
    body: Option<&str>,
) -> Result<Option<String>, RequestProblem> {
    match (outside_body, body) {
        (Some(outside), Some(inside)) if outside != inside => Err(RequestProblem::ModelMismatch),
        (outside, inside) => Ok(inside.or(outside).map(str::to_string)),
    }
}

/// Why a path prefix or `other_paths` glob could never match a canonical path.
fn check_path_glob(pattern: &str) -> Result<(), &'static str> {
    if !pattern.starts_with('/') {
        return Err("must start with \"/\"");
    }
    if pattern.chars().any(|c| c.is_control() || "%?#;\\".contains(c)) {
        return Err("is matched against the decoded path: no %-escapes, \"?\", \"#\", \";\", \"\\\" or control characters");
    }
    if pattern.contains("//") || pattern.split('/').any(|s| s == "." || s == "..") {
        return Err("must not contain empty, \".\" or \"..\" segments");
    }
    Ok(())
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split(']').next().map_or(host, |h| h.trim_start_matches('['));
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    }
}

/// `*` matches any run of characters (including none); everything else is literal.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(c) if Some(c) == t.get(ti) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..).is_some_and(|rest| rest.iter().all(|c| *c == b'*'))
}

fn any_glob(patterns: &[String], text: &str) -> bool {
    patterns.iter().any(|g| glob(g, text))
}

/// Model globs: `*` matches any run of characters except `/` (`meta-llama/*` is needed for
/// `meta-llama/x`, and `org/*` never reaches `org/a/b`); `**` matches across `/`. A model
/// containing `..` or control characters matches nothing, not even its exact name: such a
/// name is a path trick, not a model.
pub fn model_glob(pattern: &str, model: &str) -> bool {
    !model.contains("..") && !model.chars().any(char::is_control) && slash_glob(pattern, model)
}

/// `other_paths` globs on the canonical path: `*` within a segment, `**` across segments, a
/// trailing `/**` also matching the prefix itself. A trailing `/` of the path is ignored.
pub fn path_glob(pattern: &str, path: &CanonicalPath) -> bool {
    let text = path.without_trailing_slash();
    let pattern = match pattern.strip_suffix('/') {
        Some(p) if !p.is_empty() => p,
        _ => pattern,
    };
    pattern.strip_suffix("/**").is_some_and(|prefix| prefix == text) || slash_glob(pattern, text)
}

/// Glob where `*` stops at `/` and `**` does not. Dynamic programming over the text, so a
/// pattern with many stars costs pattern × text steps, never an exponential backtrack.
fn slash_glob(pattern: &str, text: &str) -> bool {
    let t = text.as_bytes();
    // reach[j]: the pattern read so far matches exactly t[..j].
    let mut reach = vec![false; t.len() + 1];
    if let Some(r) = reach.first_mut() {
        *r = true;
    }
    let mut p = pattern.as_bytes();
    while let Some((&c, rest)) = p.split_first() {
        if c == b'*' {
            let stars = p.iter().take_while(|&&b| b == b'*').count();
            p = p.get(stars..).unwrap_or_default();
            let crosses_slash = stars >= 2;
            let mut carry = false;
            for (j, r) in reach.iter_mut().enumerate() {
                let after_slash = j.checked_sub(1).and_then(|k| t.get(k)) == Some(&b'/');
                if after_slash && !crosses_slash {
                    carry = false;
                }
                carry |= *r;
                *r = carry;
            }
        } else {
            p = rest;
            // Backwards, so reach[j - 1] is still the old value when reach[j] is computed.
            for j in (1..reach.len()).rev() {
                let k = j - 1;
                let v = reach.get(k).copied().unwrap_or(false) && t.get(k) == Some(&c);
                if let Some(r) = reach.get_mut(j) {
                    *r = v;
                }
            }
            if let Some(r) = reach.first_mut() {
                *r = false;
            }
        }
        if !reach.contains(&true) {
            return false;
        }
    }
    reach.last().copied().unwrap_or(false)
}

// ---------- evaluation ----------

/// What the request is, beyond the caller's identity.
pub struct RequestView<'a> {
    /// `Endpoint::of(path)`.
    pub endpoint: Endpoint,
    /// The canonical path, for `other_paths` grants.
    pub path: &'a CanonicalPath,
    pub source_ip: Option<IpAddr>,
    pub now_unix: u64,
    pub header: &'a dyn Fn(&str) -> Option<String>,
    /// Body facts (None when the endpoint has no JSON body).
    pub body: Option<&'a BodyFacts>,
    /// The model named by the path or header (`Authorizer::model_outside_body`).
    pub model_outside_body: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Decision {
    pub policy: Option<String>,
    pub rule: Option<String>,
    pub mode: Mode,
    /// None: allowed.
    pub denial: Option<Denial>,
    /// Set when the matched rule clamps max_tokens and the request asks for more (or none).
    pub clamp_to: Option<u64>,
    /// Tool globs of the granting rule, for checking tool calls in the response.
    pub granted_tools: Vec<String>,
    /// Names the request's granted declarations are called by (a server tool granted by
    /// type is called by its fixed name: `web_search_20250305` → `web_search`).
    pub granted_calls: Vec<String>,
    /// Rate limits of the granting rule.
    pub limits: Vec<LimitSpec>,
}

impl Decision {
    /// Whether the request goes through (monitor mode lets denials pass).
    pub fn passes(&self) -> bool {
        self.denial.is_none() || self.mode == Mode::Monitor
    }

    pub fn tool_allowed(&self, tool: &str) -> bool {
        any_glob(&self.granted_tools, tool) || self.granted_calls.iter().any(|c| c == tool)
    }
}

/// The first `when` condition of a rule that a request does not meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmet<'a> {
    Scope(&'a str),
    AnyScope,
    Issuer,
    Audience,
    Subject,
    Claim(&'a str),
    TimeWindow,
    SourceAddress,
    Header(&'a str),
}

impl std::fmt::Display for Unmet<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unmet::Scope(s) => write!(f, "when.scopes: the token lacks scope {s:?}"),
            Unmet::AnyScope => f.write_str("when.any_scopes: the token has none of them"),
            Unmet::Issuer => f.write_str("when.issuers: the token's issuer is not listed"),
            Unmet::Audience => f.write_str("when.audiences: no audience of the token is listed"),
            Unmet::Subject => f.write_str("when.subjects: the subject matches no pattern"),
            Unmet::Claim(c) => write!(f, "when.claims.{c}: the claim does not match"),
            Unmet::TimeWindow => f.write_str("when.time_windows: outside every window"),
            Unmet::SourceAddress => f.write_str("when.source_cidrs: the client address is outside them"),
            Unmet::Header(h) => write!(f, "when.headers.{h}: the header does not match"),
        }
    }
}

/// What one rule made of a request, for `llm-warden explain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTrace {
    pub rule: String,
    /// "grants", "does not apply: <first unmet condition>" or "applies, refuses: <code>".
    pub verdict: String,
}

impl Rule {
    fn applies_to(&self, id: &Identity, req: &RequestView) -> bool {
        self.first_unmet(id, req).is_none()
    }

    /// The first `when` condition this request does not meet (None: the rule applies).
    fn first_unmet(&self, id: &Identity, req: &RequestView) -> Option<Unmet<'_>> {
        let w = &self.when;
        let has = |s: &&String| id.scopes.iter().any(|x| x == *s);
        if let Some(missing) = w.scopes.iter().find(|s| !has(s)) {
            return Some(Unmet::Scope(missing));
        }
        if !w.any_scopes.is_empty() && !w.any_scopes.iter().any(|s| has(&s)) {
            return Some(Unmet::AnyScope);
        }
        if !w.issuers.is_empty() && !w.issuers.contains(&id.issuer_name) {
            return Some(Unmet::Issuer);
        }
        if !w.audiences.is_empty() {
            let ok = match id.claims.get("aud") {
                Some(Value::String(a)) => w.audiences.contains(a),
                Some(Value::Array(list)) => list
                    .iter()
                    .any(|a| a.as_str().is_some_and(|a| w.audiences.iter().any(|x| x == a))),
                _ => false,
            };
            if !ok {
                return Some(Unmet::Audience);
            }
        }
        if !w.subjects.is_empty() && !id.sub.as_deref().is_some_and(|s| any_glob(&w.subjects, s)) {
            return Some(Unmet::Subject);
        }
        for (path, m) in &w.claims {
            if !value_matches(claim_at(&id.claims, path), m) {
                return Some(Unmet::Claim(path));
            }
        }
        if !self.windows.is_empty() && !self.windows.iter().any(|win| win.contains(req.now_unix)) {
            return Some(Unmet::TimeWindow);
        }
        if !self.cidrs.is_empty()
            && !req
                .source_ip
                .is_some_and(|ip| self.cidrs.iter().any(|c| c.contains(ip)))
        {
            return Some(Unmet::SourceAddress);
        }
        for (name, m) in &w.headers {
            let v = (req.header)(name).map(Value::String);
            if !value_matches(v.as_ref(), m) {
                return Some(Unmet::Header(name));
            }
        }
        None
    }

    fn grants_action(&self, req: &RequestView) -> bool {
        match req.endpoint {
            // Deny by default: what the filter cannot inspect needs an explicit grant.
            Endpoint::Other => {
                self.actions.iter().any(|a| a == "other")
                    || self.other_paths.iter().any(|g| path_glob(g, req.path))
            }
            known => any_glob(&self.actions, known.action()),
        }
    }

    /// The first thing this rule does not grant, or Ok(clamp) when it grants everything.
    fn grants(&self, req: &RequestView) -> Result<Option<u64>, Denial> {
        if !self.grants_action(req) {
            return Err(Denial::ActionNotPermitted);
        }
        let body_model = req.body.and_then(|b| b.model.as_deref());
        let outside = req.model_outside_body.as_deref();
        // Both are checked (served_model refuses a disagreement before this): whichever the
        // upstream routes on was granted.
        for model in [body_model, outside].into_iter().flatten() {
            if !self.models.iter().any(|g| model_glob(g, model)) {
                return Err(Denial::ModelNotPermitted);
            }
        }
        // A JSON endpoint without a model could fall through to an upstream default model.
        if body_model.is_none()
            && outside.is_none()
            && req.endpoint.has_json_body()
            && !self.models.iter().any(|g| g == "*" || g == "**")
        {
            return Err(Denial::ModelRequired);
        }
        let Some(body) = req.body else {
            return Ok(None);
        };
        // Each tool by its id or an alias (built-ins: type, date-less family, fixed name).
        if let Some(tool) = body.first_tool_not_granted(&|name| any_glob(&self.tools, name)) {
            return Err(Denial::ToolNotPermitted(tool.to_string()));
        }
        if body.tool_choice == Some(ToolChoice::Required) && self.tools.is_empty() {
            return Err(Denial::ToolNotPermitted("(required)".into()));
        }
        if body.stream && !self.streaming {
            return Err(Denial::StreamingNotPermitted);
        }
        match self.max_tokens {
            None => Ok(None),
            Some(cap) => match (body.max_tokens, cap.on_exceed) {
                (Some(n), _) if n <= cap.limit => Ok(None),
                (Some(_), OnExceed::Reject) => Err(Denial::MaxTokensExceeded(cap.limit)),
                // Without a cap in the request the upstream default applies: set ours.
                (None, OnExceed::Reject) | (_, OnExceed::Clamp) => Ok(Some(cap.limit)),
            },
        }
    }
}

impl Policy {
    /// Whether any rule applies to this caller at all (checked before buffering a body, so
    /// callers without any grant are refused without reading it).
    pub fn applies_to_anyone(&self, id: &Identity, req: &RequestView) -> bool {
        self.rules.iter().any(|r| r.applies_to(id, req))
    }

    /// Every rule's verdict on this request, in order (the first that grants decides).
    pub fn explain(&self, id: &Identity, req: &RequestView) -> Vec<RuleTrace> {
        self.rules
            .iter()
            .map(|rule| RuleTrace {
                rule: rule.name.clone(),
                verdict: match rule.first_unmet(id, req) {
                    Some(unmet) => format!("does not apply: {unmet}"),
                    None => match rule.grants(req) {
                        Ok(_) => "grants".into(),
                        Err(d) => format!("applies, refuses: {}", d.code()),
                    },
                },
            })
            .collect()
    }

    pub fn decide(&self, id: &Identity, req: &RequestView) -> Decision {
        let mut first_failure: Option<(String, Denial)> = None;
        for rule in &self.rules {
            if !rule.applies_to(id, req) {
                continue;
            }
            match rule.grants(req) {
                Ok(clamp_to) => {
                    return Decision {
                        policy: Some(self.name.clone()),
                        rule: Some(rule.name.clone()),
                        mode: self.mode,
                        denial: None,
                        clamp_to,
                        granted_tools: rule.tools.clone(),
                        granted_calls: req.body.map(BodyFacts::call_names).unwrap_or_default(),
                        limits: rule.limits.clone(),
                    }
                }
                Err(d) => {
                    if first_failure.is_none() {
                        first_failure = Some((rule.name.clone(), d));
                    }
                }
            }
        }
        let (rule, denial) = match first_failure {
            Some((r, d)) => (Some(r), d),
            None => (None, Denial::InsufficientScope),
        };
        Decision {
            policy: Some(self.name.clone()),
            rule,
            mode: self.mode,
            denial: Some(denial),
            clamp_to: None,
            granted_tools: Vec::new(),
            granted_calls: Vec::new(),
            limits: Vec::new(),
        }
    }
}

/// The decision for a request that matched no route rule.
pub fn no_route() -> Decision {
    Decision {
        policy: None,
        rule: None,
        mode: Mode::Enforce,
        denial: Some(Denial::NoRoute),
        clamp_to: None,
        granted_tools: Vec::new(),
        granted_calls: Vec::new(),
        limits: Vec::new(),
    }
}

fn compile_limit(lc: &LimitConfig, lp: &str) -> Result<LimitSpec, ConfigError> {
    if lc.name.is_empty() {
        return Err(cerr(format!("{lp}.name"), "must not be empty"));
    }
    let (kind, amount) = match (lc.requests, lc.tokens) {
        (Some(n), None) => (Kind::Requests, n),
        (None, Some(n)) => (Kind::Tokens, n),
        _ => return Err(cerr(lp, "set exactly one of \"requests\" or \"tokens\"")),
    };
    if amount == 0 {
        return Err(cerr(
            format!(
                "{lp}.{}",
                if kind == Kind::Requests {
                    "requests"
                } else {
                    "tokens"
                }
            ),
            "must be greater than 0",
        ));
    }
    if lc.reserve && kind == Kind::Requests {
        return Err(cerr(format!("{lp}.reserve"), "applies to token limits only"));
    }
    let by = KeyBy::parse(&lc.by)
        .ok_or_else(|| cerr(format!("{lp}.by"), "must be sub, client, issuer or claim:<name>"))?;
    Ok(LimitSpec {
        limit: Limit {
            name: lc.name.clone(),
            kind,
            amount,
            period_ns: Period::nanos(lc.per),
        },
        by,
        models: lc.models,
        must_fit: lc.reserve,
    })
}

/// The caller attribute a limit counts by. Subject, client and claim values are names
/// within their issuer (`alice` of one IdP is not `alice` of another), so they are
/// qualified by the token's `iss`, length-prefixed so no issuer/value pair can spell
/// another: `<len(iss)>:<iss>/<value>`. An absent value is "" (such callers of one issuer
/// share a counter).
pub fn key_value(by: &KeyBy, id: &Identity) -> String {
    let value = match by {
        KeyBy::Issuer => return id.issuer_name.clone(),
        KeyBy::Subject => id.sub.clone().unwrap_or_default(),
        KeyBy::Client => id.client.clone().unwrap_or_default(),
        KeyBy::Claim(c) => match claim_at(&id.claims, c) {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => String::new(),
        },
    };
    format!("{}:{}/{value}", id.iss.len(), id.iss)
}

fn claim_at<'a>(claims: &'a serde_json::Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut v = claims.get(parts.next()?)?;
    for part in parts {
        v = v.get(part)?;
    }
    Some(v)
}

/// Matches a claim or header value; array claims match when any element does.
fn value_matches(v: Option<&Value>, m: &ValueMatch) -> bool {
    match (m, v) {
        (ValueMatch::Present(want), v) => v.is_some() == *want,
        (_, None) => false,
        (_, Some(Value::Array(items))) => items.iter().any(|i| scalar_matches(i, m)),
        (_, Some(v)) => scalar_matches(v, m),
    }
}

fn scalar_matches(v: &Value, m: &ValueMatch) -> bool {
    match m {
        ValueMatch::Equals(want) => v == want,
        ValueMatch::In(set) => set.contains(v),
        ValueMatch::Prefix(p) => v.as_str().is_some_and(|s| s.starts_with(p.as_str())),
        ValueMatch::Present(_) => true,
    }
}

/// Parses Envoy's `source.address` ("1.2.3.4:5678", "[::1]:80") into an IP.
pub fn parse_source_address(s: &str) -> Option<IpAddr> {
    s.parse::<std::net::SocketAddr>()
        .map(|a| a.ip())
        .ok()
        .or_else(|| s.parse().ok())
}
