//! One audit record per request: who (the verified identity chain), what was decided and
//! why. It never holds a token, signature, key or request body.
//!
//! Records are bounded, because parts of them come from callers (one refused request
//! naming 14,000 tools wrote 3.5 MB to the log):
//! - every string is cut to [`MAX_STRING_BYTES`] (`path` to [`MAX_PATH_BYTES`]) at a char
//!   boundary;
//! - `tools`, `act` and `redactions` keep their first [`MAX_LIST_ENTRIES`] entries and count
//!   the rest in `tools_truncated`, `act_truncated` and `redactions_truncated`, so a request
//!   named `tools.len() + tools_truncated` tools;
//! - the serialized record is at most [`MAX_RECORD_BYTES`]. A record still over that sheds,
//!   in this order, until it fits: `tools` entries from the last, `redactions` entries from
//!   the last name, `act` entries from the last (the earliest delegator), whole optional
//!   strings in [`DROP_ORDER`], and last `request_id`, `issuer`, `iss` and `sub` cut to
//!   [`LAST_RESORT_BYTES`] (then `ts` and the strings the code writes, `action`,
//!   `credential_source`, `withheld`, `decision` and `reason`, should one ever be that
//!   long). Those fields, `status` and every number always stay;
//! - `truncated` names, in record order, each field that was cut or dropped; it is empty
//!   when the record is whole.
//!
//! Fields may be assigned directly: [`AuditRecord::to_json`] applies every cap. The setters
//! store values already capped, so the usual record is written in one pass.

use crate::authn::claims::Identity;
use crate::outcome::reason::Reason;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Stable prefix of audit lines in Envoy's log, for log shippers to match on.
pub const LOG_PREFIX: &str = "llm-warden-audit ";

/// Entries kept in each list field (`tools`, `act`, `redactions`).
pub const MAX_LIST_ENTRIES: usize = 32;
/// Bytes kept of each string, list entries and redaction names included, except `path`.
pub const MAX_STRING_BYTES: usize = 256;
/// Bytes kept of `path`.
pub const MAX_PATH_BYTES: usize = 1024;
/// Bytes of the whole serialized record, at most.
pub const MAX_RECORD_BYTES: usize = 8 * 1024;
/// What `request_id`, `issuer`, `iss` and `sub` are cut to when nothing else is left to shed.
pub const LAST_RESORT_BYTES: usize = 64;
/// Optional strings that a record over [`MAX_RECORD_BYTES`] drops (nulls), first first: the
/// most caller-controlled and the least telling go first.
pub const DROP_ORDER: [&str; 13] = [
    "client_request_id",
    "upstream_sub",
    "guard_rule",
    "limit",
    "rule",
    "policy",
    "route",
    "model",
    "blocked_tool",
    "jti",
    "client",
    "path",
    "method",
];

/// Names of the fields that can be cut, in record order (`truncated` follows it).
const CUTTABLE_IN_ORDER: &[&str] = &[
    "ts",
    "request_id",
    "method",
    "path",
    "issuer",
    "iss",
    "sub",
    "client",
    "act",
    "jti",
    "route",
    "policy",
    "rule",
    "action",
    "model",
    "tools",
    "blocked_tool",
    "credential_source",
    "upstream_sub",
    "guard_rule",
    "redactions",
    "limit",
    "decision",
    "reason",
    "client_request_id",
    "withheld",
];

/// Upper bound of a record's size besides its strings and list entries: member names,
/// punctuation, `null`s and numbers at 20 digits (a test checks it), redaction counts aside.
const FIXED_BYTES: usize = 1024;

/// What was decided about a call, as the record and the metrics name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    Deny,
    /// A monitor-mode policy, limit or guard would have refused it.
    WouldDeny,
    /// The client left while the request was held: nothing went upstream.
    Abandoned,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
            Decision::WouldDeny => "would_deny",
            Decision::Abandoned => "abandoned",
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditRecord {
    /// RFC 3339 UTC with milliseconds.
    pub ts: String,
    /// Envoy's id for the request: the `request.id` property, the `x-request-id` Envoy's
    /// connection manager settled on (its own for edge requests unless the listener keeps
    /// external ids). The filter never fills it from a header it reads itself.
    pub request_id: Option<String>,
    pub method: Option<String>,
    /// Path without query string (queries may carry secrets).
    pub path: Option<String>,
    /// Configured issuer name that vouched for the caller.
    pub issuer: Option<String>,
    pub iss: Option<String>,
    pub sub: Option<String>,
    pub client: Option<String>,
    /// Delegation chain from `act`, current actor first.
    pub act: Vec<String>,
    pub jti: Option<String>,
    /// Envoy route name (`xds.route_name`).
    pub route: Option<String>,
    pub policy: Option<String>,
    pub rule: Option<String>,
    /// API operation (chat, embeddings, ...).
    pub action: Option<&'static str>,
    pub model: Option<String>,
    /// Tools the request declared or forced.
    pub tools: Vec<String>,
    /// A tool the response tried to call and that was blocked (or would be, in monitor mode).
    pub blocked_tool: Option<String>,
    /// Where the upstream credential came from (client_credentials, token_exchange, static).
    pub credential_source: Option<&'static str>,
    /// Subject of the obtained upstream credential: caller -> gateway -> upstream subject.
    pub upstream_sub: Option<String>,
    /// The prompt-guard rule that matched (never the prompt text).
    pub guard_rule: Option<String>,
    /// Redactions in the response, by type.
    pub redactions: BTreeMap<String, u64>,
    /// The rate limit that refused the call (or would have, in monitor mode).
    pub limit: Option<String>,
    pub remaining_requests: Option<u64>,
    pub remaining_tokens: Option<u64>,
    /// Tokens the response's usage reported.
    pub tokens_used: Option<u64>,
    pub decision: Decision,
    pub reason: &'static str,
    pub status: u16,
    /// The `x-request-id` header the filter received, when it differs from `request_id`
    /// (see [`AuditRecord::with_client_request_id`]): caller-controlled, for reference only.
    pub client_request_id: Option<String>,
    /// Why the response was withheld from the client (`compressed`, `unknown_content_type`,
    /// `unparseable`, ...); null when it was not.
    pub withheld: Option<&'static str>,
    /// Tokens reserved against the token limits before the upstream call.
    pub tokens_reserved: Option<u64>,
    /// Tokens finally charged to the token limits (from usage, or estimated when the response
    /// reported none).
    pub tokens_charged: Option<u64>,
    /// `tools` entries cut by the caps.
    pub tools_truncated: u64,
    /// `act` entries cut by the caps.
    pub act_truncated: u64,
    /// `redactions` entries cut by the caps.
    pub redactions_truncated: u64,
    /// Fields cut or dropped to fit the caps, in record order; empty when the record is whole.
    pub truncated: Vec<&'static str>,
}

impl AuditRecord {
    pub fn new(now_ms: u64, reason: Reason, status: u16, identity: Option<&Identity>) -> AuditRecord {
        let mut record = AuditRecord {
            ts: rfc3339_millis(now_ms),
            request_id: None,
            method: None,
            path: None,
            issuer: None,
            iss: None,
            sub: None,
            client: None,
            act: Vec::new(),
            jti: None,
            route: None,
            policy: None,
            rule: None,
            action: None,
            model: None,
            tools: Vec::new(),
            blocked_tool: None,
            credential_source: None,
            upstream_sub: None,
            guard_rule: None,
            redactions: BTreeMap::new(),
            limit: None,
            remaining_requests: None,
            remaining_tokens: None,
            tokens_used: None,
            decision: if reason == Reason::Ok {
                Decision::Allow
            } else {
                Decision::Deny
            },
            reason: reason.code(),
            status,
            client_request_id: None,
            withheld: None,
            tokens_reserved: None,
            tokens_charged: None,
            tools_truncated: 0,
            act_truncated: 0,
            redactions_truncated: 0,
            truncated: Vec::new(),
        };
        if let Some(id) = identity {
            record.set_text(Text::Issuer, Some(&id.issuer_name));
            record.set_text(Text::Iss, Some(&id.iss));
            record.set_text(Text::Sub, id.sub.as_deref());
            record.set_text(Text::Client, id.client.as_deref());
            record.set_text(Text::Jti, id.jti.as_deref());
            record.set_act(id.actors.iter().map(String::as_str));
        }
        record
    }

    /// `request_id` is Envoy's id for the request: the adapter passes the `request.id`
    /// property, never a header the client sent.
    pub fn with_request(
        mut self,
        request_id: Option<String>,
        method: Option<String>,
        path: Option<&str>,
    ) -> Self {
        self.set_text(Text::RequestId, request_id.as_deref());
        self.set_text(Text::Method, method.as_deref());
        let path = path.map(|p| p.split(['?', '#']).next().unwrap_or_default());
        self.set_text(Text::Path, path);
        self
    }

    /// Records the `x-request-id` header the filter received as `client_request_id`, when it
    /// differs from `request_id` (call after [`AuditRecord::with_request`]). Envoy's own id
    /// stays in `request_id` either way.
    pub fn with_client_request_id(mut self, header: Option<&str>) -> Self {
        let differs = header.filter(|h| Some(cut(h, MAX_STRING_BYTES)) != self.request_id.as_deref());
        self.set_text(Text::ClientRequestId, differs);
        self
    }

    /// Sets a string field, cut to its cap (noted in `truncated` when cut).
    pub fn set_text(&mut self, field: Text, value: Option<&str>) {
        let value = value.map(|v| {
            if v.len() > field.cap() {
                mark(&mut self.truncated, field.name());
            }
            cut(v, field.cap()).to_string()
        });
        *self.text_mut(field) = value;
    }

    /// Sets `tools`: the first [`MAX_LIST_ENTRIES`], each capped; the rest only counted.
    pub fn set_tools<'a>(&mut self, tools: impl IntoIterator<Item = &'a str>) {
        let (kept, dropped, shortened) = capped_list(tools);
        self.tools = kept;
        self.tools_truncated = dropped;
        unmark(&mut self.truncated, "tools");
        if dropped > 0 || shortened {
            mark(&mut self.truncated, "tools");
        }
    }

    /// Sets `act` (current actor first) like [`AuditRecord::set_tools`].
    pub fn set_act<'a>(&mut self, actors: impl IntoIterator<Item = &'a str>) {
        let (kept, dropped, shortened) = capped_list(actors);
        self.act = kept;
        self.act_truncated = dropped;
        unmark(&mut self.truncated, "act");
        if dropped > 0 || shortened {
            mark(&mut self.truncated, "act");
        }
    }

    /// Sets `redactions`: the first [`MAX_LIST_ENTRIES`] names (in name order), each capped
    /// (names that then coincide add up); the rest only counted.
    pub fn set_redactions(&mut self, counts: BTreeMap<String, u64>) {
        let (kept, dropped, shortened) = capped_counts(counts.iter().map(|(k, n)| (k.as_str(), *n)));
        self.redactions = kept;
        self.redactions_truncated = dropped;
        unmark(&mut self.truncated, "redactions");
        if dropped > 0 || shortened {
            mark(&mut self.truncated, "redactions");
        }
    }

    /// The record as one JSON object of at most [`MAX_RECORD_BYTES`], byte for byte what
    /// serde_json writes for [`AuditRecord::bounded`] (the tests compare). Written by hand
    /// because it runs two or three times per call, and serde_json's serializer took about
    /// 58,000 instructions per record in the .wasm (callgrind, opt-level "z"): a quarter of
    /// the filter's cost per call.
    pub fn to_json(&self) -> String {
        match self.json_if_within_caps() {
            Some(json) => json,
            None => self.fitted().1,
        }
    }

    /// The record as [`AuditRecord::to_json`] writes it: itself when within every cap, else
    /// a copy cut to fit (module docs).
    pub fn bounded(&self) -> Cow<'_, AuditRecord> {
        match self.json_if_within_caps() {
            Some(_) => Cow::Borrowed(self),
            None => Cow::Owned(self.fitted().0),
        }
    }

    /// The JSON in one pass into one buffer, when no cap applies; None when one does.
    fn json_if_within_caps(&self) -> Option<String> {
        let text_bytes = self.text_bytes_within_caps()?;
        // The text alone is more: no need to write it to know.
        if text_bytes > MAX_RECORD_BYTES {
            return None;
        }
        let json = self.write_json((text_bytes + FIXED_BYTES).min(MAX_RECORD_BYTES));
        (json.len() <= MAX_RECORD_BYTES).then_some(json)
    }

    /// Bytes of the record's strings and list entries, unescaped, with their quotes and
    /// separators (so at most their serialized size), when every field is within its cap;
    /// None when one is not.
    fn text_bytes_within_caps(&self) -> Option<usize> {
        if self.ts.len() > MAX_STRING_BYTES {
            return None;
        }
        let mut size = self.ts.len();
        for field in Text::ALL {
            let value = self.text(field).unwrap_or_default();
            if value.len() > field.cap() {
                return None;
            }
            size += value.len();
        }
        for value in [
            self.action,
            self.credential_source,
            self.withheld,
            Some(self.decision.as_str()),
            Some(self.reason),
        ]
        .into_iter()
        .flatten()
        {
            if value.len() > MAX_STRING_BYTES {
                return None;
            }
            size += value.len();
        }
        for list in [&self.tools, &self.act] {
            if list.len() > MAX_LIST_ENTRIES {
                return None;
            }
            for item in list {
                if item.len() > MAX_STRING_BYTES {
                    return None;
                }
                size += item.len() + 3;
            }
        }
        if self.redactions.len() > MAX_LIST_ENTRIES {
            return None;
        }
        for name in self.redactions.keys() {
            if name.len() > MAX_STRING_BYTES {
                return None;
            }
            size += name.len() + 4;
        }
        size += self.truncated.iter().map(|n| n.len() + 3).sum::<usize>();
        Some(size)
    }

    /// A copy within every cap, and its JSON.
    fn fitted(&self) -> (AuditRecord, String) {
        let mut record = self.capped();
        loop {
            let json = record.write_json(MAX_RECORD_BYTES);
            if json.len() <= MAX_RECORD_BYTES || !record.shed(json.len() - MAX_RECORD_BYTES) {
                return (record, json);
            }
        }
    }

    /// A copy with every field within its own cap (the total is not checked). Copies only
    /// what it keeps.
    fn capped(&self) -> AuditRecord {
        let mut r = AuditRecord::new(0, Reason::Ok, self.status, None);
        r.truncated = self.truncated.clone();
        for field in Text::ALL {
            r.set_text(field, self.text(field));
        }
        if self.ts.len() > MAX_STRING_BYTES {
            mark(&mut r.truncated, "ts");
        }
        r.ts = cut(&self.ts, MAX_STRING_BYTES).to_string();
        let mut constant = |name: &'static str, value: &'static str| {
            if value.len() > MAX_STRING_BYTES {
                mark(&mut r.truncated, name);
            }
            cut(value, MAX_STRING_BYTES)
        };
        let action = self.action.map(|v| constant("action", v));
        let credential_source = self.credential_source.map(|v| constant("credential_source", v));
        let withheld = self.withheld.map(|v| constant("withheld", v));
        let reason = constant("reason", self.reason);
        r.decision = self.decision;
        (r.action, r.credential_source, r.withheld, r.reason) = (action, credential_source, withheld, reason);

        let (tools, dropped, shortened) = capped_list(self.tools.iter().map(String::as_str));
        r.tools = tools;
        r.tools_truncated = self.tools_truncated.saturating_add(dropped);
        if dropped > 0 || shortened {
            mark(&mut r.truncated, "tools");
        }
        let (act, dropped, shortened) = capped_list(self.act.iter().map(String::as_str));
        r.act = act;
        r.act_truncated = self.act_truncated.saturating_add(dropped);
        if dropped > 0 || shortened {
            mark(&mut r.truncated, "act");
        }
        let (redactions, dropped, shortened) =
            capped_counts(self.redactions.iter().map(|(k, n)| (k.as_str(), *n)));
        r.redactions = redactions;
        r.redactions_truncated = self.redactions_truncated.saturating_add(dropped);
        if dropped > 0 || shortened {
            mark(&mut r.truncated, "redactions");
        }
        r.remaining_requests = self.remaining_requests;
        r.remaining_tokens = self.remaining_tokens;
        r.tokens_used = self.tokens_used;
        r.tokens_reserved = self.tokens_reserved;
        r.tokens_charged = self.tokens_charged;
        r
    }

    /// Sheds, in the documented order, about `excess` bytes of serialized record (what it
    /// adds to `truncated` and the counts is not reckoned: the caller measures again).
    /// False when nothing was left to shed.
    fn shed(&mut self, excess: usize) -> bool {
        let mut saved = 0;
        while saved < excess {
            if let Some(tool) = self.tools.pop() {
                saved += quoted_len(&tool) + 1;
                self.tools_truncated = self.tools_truncated.saturating_add(1);
                mark(&mut self.truncated, "tools");
            } else if let Some((name, n)) = self.redactions.pop_last() {
                saved += quoted_len(&name) + 2 + digits(n);
                self.redactions_truncated = self.redactions_truncated.saturating_add(1);
                mark(&mut self.truncated, "redactions");
            } else if let Some(actor) = self.act.pop() {
                saved += quoted_len(&actor) + 1;
                self.act_truncated = self.act_truncated.saturating_add(1);
                mark(&mut self.truncated, "act");
            } else if let Some((name, value)) = self.drop_next_text() {
                saved += quoted_len(&value).saturating_sub(4);
                mark(&mut self.truncated, name);
            } else if let Some((name, n)) = self.cut_next_kept() {
                saved += n;
                mark(&mut self.truncated, name);
            } else {
                break;
            }
        }
        saved > 0
    }

    /// Nulls the first string of [`DROP_ORDER`] still set; its name and value.
    fn drop_next_text(&mut self) -> Option<(&'static str, String)> {
        Text::DROPPED_FIRST_FIRST
            .into_iter()
            .find_map(|field| self.text_mut(field).take().map(|v| (field.name(), v)))
    }

    /// Cuts the first kept string still over [`LAST_RESORT_BYTES`]: the identity, then the
    /// ones the code writes (only reached if those were ever long); its name and the bytes
    /// saved.
    fn cut_next_kept(&mut self) -> Option<(&'static str, usize)> {
        fn cut_owned(value: &mut String) -> usize {
            let before = quoted_len(value);
            let keep = cut(value, LAST_RESORT_BYTES).len();
            value.truncate(keep);
            before.saturating_sub(quoted_len(value))
        }
        fn cut_constant(value: &mut &'static str) -> usize {
            let before = quoted_len(value);
            *value = cut(value, LAST_RESORT_BYTES);
            before.saturating_sub(quoted_len(value))
        }
        let identity = [Text::RequestId, Text::Issuer, Text::Iss, Text::Sub]
            .into_iter()
            .find_map(|field| {
                let value = self
                    .text_mut(field)
                    .as_mut()
                    .filter(|v| v.len() > LAST_RESORT_BYTES)?;
                Some((field.name(), cut_owned(value)))
            });
        if identity.is_some() {
            return identity;
        }
        if self.ts.len() > LAST_RESORT_BYTES {
            return Some(("ts", cut_owned(&mut self.ts)));
        }
        let constants = [
            ("action", self.action.as_mut()),
            ("credential_source", self.credential_source.as_mut()),
            ("withheld", self.withheld.as_mut()),
            ("reason", Some(&mut self.reason)),
        ];
        constants.into_iter().find_map(|(name, value)| {
            let value = value.filter(|v| v.len() > LAST_RESORT_BYTES)?;
            Some((name, cut_constant(value)))
        })
    }

    fn write_json(&self, capacity: usize) -> String {
        let mut w = JsonWriter {
            out: String::with_capacity(capacity),
        };
        w.str("ts", Some(&self.ts));
        w.str("request_id", self.request_id.as_deref());
        w.str("method", self.method.as_deref());
        w.str("path", self.path.as_deref());
        w.str("issuer", self.issuer.as_deref());
        w.str("iss", self.iss.as_deref());
        w.str("sub", self.sub.as_deref());
        w.str("client", self.client.as_deref());
        w.list("act", &self.act);
        w.str("jti", self.jti.as_deref());
        w.str("route", self.route.as_deref());
        w.str("policy", self.policy.as_deref());
        w.str("rule", self.rule.as_deref());
        w.str("action", self.action);
        w.str("model", self.model.as_deref());
        w.list("tools", &self.tools);
        w.str("blocked_tool", self.blocked_tool.as_deref());
        w.str("credential_source", self.credential_source);
        w.str("upstream_sub", self.upstream_sub.as_deref());
        w.str("guard_rule", self.guard_rule.as_deref());
        w.key("redactions");
        w.out.push('{');
        for (i, (name, n)) in self.redactions.iter().enumerate() {
            if i > 0 {
                w.out.push(',');
            }
            w.quoted(name);
            w.out.push(':');
            push_u64(&mut w.out, *n);
        }
        w.out.push('}');
        w.str("limit", self.limit.as_deref());
        w.num("remaining_requests", self.remaining_requests);
        w.num("remaining_tokens", self.remaining_tokens);
        w.num("tokens_used", self.tokens_used);
        w.str("decision", Some(self.decision.as_str()));
        w.str("reason", Some(self.reason));
        w.num("status", Some(u64::from(self.status)));
        w.str("client_request_id", self.client_request_id.as_deref());
        w.str("withheld", self.withheld);
        w.num("tokens_reserved", self.tokens_reserved);
        w.num("tokens_charged", self.tokens_charged);
        w.num("tools_truncated", Some(self.tools_truncated));
        w.num("act_truncated", Some(self.act_truncated));
        w.num("redactions_truncated", Some(self.redactions_truncated));
        w.list("truncated", &self.truncated);
        w.out.push('}');
        w.out
    }

    fn text(&self, field: Text) -> Option<&str> {
        match field {
            Text::RequestId => self.request_id.as_deref(),
            Text::Method => self.method.as_deref(),
            Text::Path => self.path.as_deref(),
            Text::Issuer => self.issuer.as_deref(),
            Text::Iss => self.iss.as_deref(),
            Text::Sub => self.sub.as_deref(),
            Text::Client => self.client.as_deref(),
            Text::Jti => self.jti.as_deref(),
            Text::Route => self.route.as_deref(),
            Text::Policy => self.policy.as_deref(),
            Text::Rule => self.rule.as_deref(),
            Text::Model => self.model.as_deref(),
            Text::BlockedTool => self.blocked_tool.as_deref(),
            Text::UpstreamSub => self.upstream_sub.as_deref(),
            Text::GuardRule => self.guard_rule.as_deref(),
            Text::Limit => self.limit.as_deref(),
            Text::ClientRequestId => self.client_request_id.as_deref(),
        }
    }

    fn text_mut(&mut self, field: Text) -> &mut Option<String> {
        match field {
            Text::RequestId => &mut self.request_id,
            Text::Method => &mut self.method,
            Text::Path => &mut self.path,
            Text::Issuer => &mut self.issuer,
            Text::Iss => &mut self.iss,
            Text::Sub => &mut self.sub,
            Text::Client => &mut self.client,
            Text::Jti => &mut self.jti,
            Text::Route => &mut self.route,
            Text::Policy => &mut self.policy,
            Text::Rule => &mut self.rule,
            Text::Model => &mut self.model,
            Text::BlockedTool => &mut self.blocked_tool,
            Text::UpstreamSub => &mut self.upstream_sub,
            Text::GuardRule => &mut self.guard_rule,
            Text::Limit => &mut self.limit,
            Text::ClientRequestId => &mut self.client_request_id,
        }
    }
}

/// The record's optional string fields (those [`AuditRecord::set_text`] sets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    RequestId,
    Method,
    Path,
    Issuer,
    Iss,
    Sub,
    Client,
    Jti,
    Route,
    Policy,
    Rule,
    Model,
    BlockedTool,
    UpstreamSub,
    GuardRule,
    Limit,
    ClientRequestId,
}

impl Text {
    const ALL: [Text; 17] = [
        Text::RequestId,
        Text::Method,
        Text::Path,
        Text::Issuer,
        Text::Iss,
        Text::Sub,
        Text::Client,
        Text::Jti,
        Text::Route,
        Text::Policy,
        Text::Rule,
        Text::Model,
        Text::BlockedTool,
        Text::UpstreamSub,
        Text::GuardRule,
        Text::Limit,
        Text::ClientRequestId,
    ];

    /// [`DROP_ORDER`] as fields (a test checks they agree).
    const DROPPED_FIRST_FIRST: [Text; 13] = [
        Text::ClientRequestId,
        Text::UpstreamSub,
        Text::GuardRule,
        Text::Limit,
        Text::Rule,
        Text::Policy,
        Text::Route,
        Text::Model,
        Text::BlockedTool,
        Text::Jti,
        Text::Client,
        Text::Path,
        Text::Method,
    ];

    /// Bytes kept of the field.
    pub fn cap(self) -> usize {
        if self == Text::Path {
            MAX_PATH_BYTES
        } else {
            MAX_STRING_BYTES
        }
    }

    /// The field's name in the record.
    pub fn name(self) -> &'static str {
        match self {
            Text::RequestId => "request_id",
            Text::Method => "method",
            Text::Path => "path",
            Text::Issuer => "issuer",
            Text::Iss => "iss",
            Text::Sub => "sub",
            Text::Client => "client",
            Text::Jti => "jti",
            Text::Route => "route",
            Text::Policy => "policy",
            Text::Rule => "rule",
            Text::Model => "model",
            Text::BlockedTool => "blocked_tool",
            Text::UpstreamSub => "upstream_sub",
            Text::GuardRule => "guard_rule",
            Text::Limit => "limit",
            Text::ClientRequestId => "client_request_id",
        }
    }
}

/// `s` cut to at most `max` bytes, at a char boundary.
fn cut(s: &str, max: usize) -> &str {
    s.get(..s.floor_char_boundary(max)).unwrap_or_default()
}

/// The first [`MAX_LIST_ENTRIES`] items, each cut to [`MAX_STRING_BYTES`]; how many more
/// there were; whether an item was cut.
fn capped_list<'a>(items: impl IntoIterator<Item = &'a str>) -> (Vec<String>, u64, bool) {
    let mut items = items.into_iter();
    let mut kept = Vec::new();
    let mut shortened = false;
    for item in items.by_ref().take(MAX_LIST_ENTRIES) {
        shortened |= item.len() > MAX_STRING_BYTES;
        kept.push(cut(item, MAX_STRING_BYTES).to_string());
    }
    let dropped = items.fold(0u64, |n, _| n.saturating_add(1));
    (kept, dropped, shortened)
}

/// Like [`capped_list`] for named counts; names that coincide once cut add up.
fn capped_counts<'a>(counts: impl IntoIterator<Item = (&'a str, u64)>) -> (BTreeMap<String, u64>, u64, bool) {
    let mut kept = BTreeMap::new();
    let mut dropped = 0u64;
    let mut shortened = false;
    for (name, n) in counts {
        let short = cut(name, MAX_STRING_BYTES);
        shortened |= short.len() < name.len();
        if let Some(total) = kept.get_mut(short) {
            *total = u64::saturating_add(*total, n);
        } else if kept.len() < MAX_LIST_ENTRIES {
            kept.insert(short.to_string(), n);
        } else {
            dropped = dropped.saturating_add(1);
        }
    }
    (kept, dropped, shortened)
}

/// Adds `field` to `marks`, keeping record order.
fn mark(marks: &mut Vec<&'static str>, field: &'static str) {
    if marks.contains(&field) {
        return;
    }
    let rank = |f: &str| {
        CUTTABLE_IN_ORDER
            .iter()
            .position(|c| *c == f)
            .unwrap_or(usize::MAX)
    };
    let at = marks
        .iter()
        .position(|m| rank(m) > rank(field))
        .unwrap_or(marks.len());
    marks.insert(at, field);
}

fn unmark(marks: &mut Vec<&'static str>, field: &str) {
    marks.retain(|m| *m != field);
}

/// Length of `s` as a JSON string, quotes included (what `JsonWriter::quoted` writes).
fn quoted_len(s: &str) -> usize {
    2 + s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// Writes one JSON object's members in order; `write_json` closes it.
struct JsonWriter {
    out: String,
}

/// Decimal digits of `n`, without the formatting machinery.
fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    for d in digits.get(i..).unwrap_or_default() {
        out.push(char::from(*d));
    }
}

impl JsonWriter {
    /// Member names are this file's literals, none needing escapes: written as they are.
    fn key(&mut self, key: &str) {
        self.out.push_str(if self.out.is_empty() { "{\"" } else { ",\"" });
        self.out.push_str(key);
        self.out.push_str("\":");
    }

    fn str(&mut self, key: &str, value: Option<&str>) {
        self.key(key);
        match value {
            Some(v) => self.quoted(v),
            None => self.out.push_str("null"),
        }
    }

    fn num(&mut self, key: &str, value: Option<u64>) {
        self.key(key);
        match value {
            Some(n) => push_u64(&mut self.out, n),
            None => self.out.push_str("null"),
        }
    }

    fn list(&mut self, key: &str, items: &[impl AsRef<str>]) {
        self.key(key);
        self.out.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.quoted(item.as_ref());
        }
        self.out.push(']');
    }

    /// A JSON string, escaped as serde_json escapes: `"`, `\` and control characters only.
    fn quoted(&mut self, s: &str) {
        self.out.push('"');
        if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
            self.out.push_str(s);
            self.out.push('"');
            return;
        }
        let mut run = 0;
        for (i, b) in s.bytes().enumerate() {
            let escape = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
                0..=0x1f => "",
                _ => continue,
            };
            self.out.push_str(s.get(run..i).unwrap_or_default());
            if escape.is_empty() {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                self.out.push_str("\\u00");
                self.out
                    .push(char::from(HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0')));
                self.out
                    .push(char::from(HEX.get(usize::from(b & 15)).copied().unwrap_or(b'0')));
            } else {
                self.out.push_str(escape);
            }
            run = i + 1;
        }
        self.out.push_str(s.get(run..).unwrap_or_default());
        self.out.push('"');
    }
}

/// Formats Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (days-from-civil inverse, after
/// Howard Hinnant's algorithm), without pulling in a date crate.
pub fn rfc3339_millis(ms: u64) -> String {
    let secs = ms / 1000;
    let millis = ms % 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{d:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn identity() -> Identity {
        let claims = json!({"iss": "https://idp", "sub": "svc", "client_id": "c", "jti": "j",
            "act": {"sub": "agent"}});
        Identity::from_claims("idp", claims.as_object().cloned().unwrap(), None)
    }

    fn parsed(r: &AuditRecord) -> Value {
        serde_json::from_str(&r.to_json()).unwrap()
    }

    /// The record's JSON is serde_json's for what `bounded` says was written, and fits.
    fn assert_bounded_and_exact(r: &AuditRecord) -> String {
        let json = r.to_json();
        assert!(json.len() <= MAX_RECORD_BYTES, "{} bytes", json.len());
        assert_eq!(json, serde_json::to_string(&r.bounded()).unwrap());
        // Writing the bounded record again changes nothing.
        assert_eq!(r.bounded().to_json(), json);
        assert!(matches!(r.bounded().bounded(), Cow::Borrowed(_)));
        json
    }

    #[test]
    fn formats_time() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339_millis(1_795_305_600_000), "2026-11-22T00:00:00.000Z");
    }

    #[test]
    fn record_for_allowed_call() {
        let claims = json!({"iss": "https://idp", "sub": "svc", "client_id": "c", "jti": "j",
            "act": {"sub": "agent"}});
        let id = Identity::from_claims("idp", claims.as_object().cloned().unwrap(), None);
        let r = AuditRecord::new(0, Reason::Ok, 200, Some(&id)).with_request(
            Some("rid".into()),
            Some("POST".into()),
            Some("/v1/chat/completions?api_key=secret"),
        );
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["decision"], "allow");
        assert_eq!(v["reason"], "ok");
        assert_eq!(v["sub"], "svc");
        assert_eq!(v["act"], json!(["agent"]));
        assert_eq!(v["path"], "/v1/chat/completions");
        assert!(!r.to_json().contains("secret"));
    }

    #[test]
    fn hand_written_json_is_what_serde_json_writes() {
        let awkward = "quote \" backslash \\ nl \n cr \r tab \t bs \u{8} ff \u{c} nul \u{0} us \u{1f} del \u{7f} é 日本 🦀 /";
        let claims = json!({"iss": awkward, "sub": "svc", "azp": "c", "jti": "j", "act": {"sub": awkward, "act": {"sub": "b"}}});
        let id = Identity::from_claims("idp", claims.as_object().cloned().unwrap(), Some(9));
        let mut full = AuditRecord::new(1_795_305_600_123, Reason::Ok, 200, Some(&id)).with_request(
            Some(awkward.into()),
            Some("POST".into()),
            Some("/v1/x"),
        );
        full.route = Some("r".into());
        full.policy = Some(awkward.into());
        full.rule = Some("rule".into());
        full.action = Some("chat");
        full.model = Some("m".into());
        full.tools = vec!["a".into(), awkward.into()];
        full.blocked_tool = Some("t".into());
        full.credential_source = Some("token_exchange");
        full.upstream_sub = Some("u".into());
        full.guard_rule = Some("g".into());
        full.redactions.insert("email".into(), 2);
        full.redactions.insert(awkward.into(), 1);
        full.limit = Some("rpm".into());
        full.remaining_requests = Some(0);
        full.remaining_tokens = Some(u64::MAX);
        full.tokens_used = Some(42);
        full.client_request_id = Some(awkward.into());
        full.withheld = Some(awkward);
        full.tokens_reserved = Some(1_000);
        full.tokens_charged = Some(u64::MAX);
        full.tools_truncated = 3;
        full.act_truncated = u64::MAX;
        full.redactions_truncated = 0;
        full.truncated = vec!["tools", "act"];
        let empty = AuditRecord::new(0, Reason::BadSignature, 401, None);
        for r in [full, empty] {
            assert!(matches!(r.bounded(), Cow::Borrowed(_)), "within every cap");
            assert_eq!(r.to_json(), serde_json::to_string(&r).unwrap());
        }
    }

    #[test]
    fn record_for_denied_call() {
        let r = AuditRecord::new(0, Reason::BadSignature, 401, None);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["decision"], "deny");
        assert_eq!(v["reason"], "bad_signature");
        assert_eq!(v["status"], 401);
        assert!(v["sub"].is_null());
    }

    #[test]
    fn fourteen_thousand_tools_stay_under_the_cap_and_are_counted() {
        let names: Vec<String> = (0..14_000)
            .map(|i| format!("tool_{i:05}_{}", "x".repeat(240)))
            .collect();
        let mut r = AuditRecord::new(1_795_305_600_000, Reason::Ok, 403, Some(&identity())).with_request(
            Some("rid".into()),
            Some("POST".into()),
            Some("/v1/chat/completions"),
        );
        (r.decision, r.reason) = (Decision::Deny, "tool_not_permitted");
        r.set_tools(names.iter().map(String::as_str));
        assert_eq!(r.tools.len(), MAX_LIST_ENTRIES);
        assert_eq!(r.tools_truncated, 14_000 - MAX_LIST_ENTRIES as u64);
        let json = assert_bounded_and_exact(&r);
        let v: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["decision"], "deny");
        assert_eq!(v["reason"], "tool_not_permitted");
        assert_eq!(
            (v["issuer"].as_str(), v["iss"].as_str(), v["sub"].as_str()),
            (Some("idp"), Some("https://idp"), Some("svc"))
        );
        assert_eq!(v["request_id"], "rid");
        assert_eq!(v["status"], 403);
        let listed = v["tools"].as_array().unwrap().len() as u64;
        assert_eq!(listed + v["tools_truncated"].as_u64().unwrap(), 14_000);
        assert_eq!(v["truncated"], json!(["tools"]));
        // The first tools are the ones kept.
        assert_eq!(v["tools"][0], names[0].as_str());

        // Assigned directly, without the setter: to_json caps it all the same.
        let mut direct = AuditRecord::new(0, Reason::BadSignature, 403, Some(&identity()));
        direct.tools = names.clone();
        let v: Value = serde_json::from_str(&assert_bounded_and_exact(&direct)).unwrap();
        let listed = v["tools"].as_array().unwrap().len() as u64;
        assert_eq!(listed + v["tools_truncated"].as_u64().unwrap(), 14_000);
        assert_eq!(v["decision"], "deny");
    }

    #[test]
    fn worst_case_record_fits_and_keeps_decision_reason_identity_and_counts() {
        // Control characters escape to six bytes each: the most a byte can cost.
        let huge = "\u{1}".repeat(100_000);
        let leaked: &'static str = Box::leak("\u{2}".repeat(1_000).into_boxed_str());
        let mut r = AuditRecord::new(u64::MAX / 2, Reason::Ok, 200, None);
        for field in Text::ALL {
            *r.text_mut(field) = Some(huge.clone());
        }
        r.ts = huge.clone();
        r.action = Some(leaked);
        r.credential_source = Some(leaked);
        r.withheld = Some(leaked);
        r.reason = leaked;
        let entry = "\u{1}".repeat(1_000);
        r.tools = vec![entry.clone(); 14_000];
        r.act = vec![entry.clone(); 100];
        r.redactions = (0..1_000).map(|i| (format!("{i:04}{entry}"), u64::MAX)).collect();
        r.remaining_requests = Some(u64::MAX);
        r.remaining_tokens = Some(u64::MAX);
        r.tokens_used = Some(u64::MAX);
        r.tokens_reserved = Some(u64::MAX);
        r.tokens_charged = Some(u64::MAX);
        let json = assert_bounded_and_exact(&r);
        let v: Value = serde_json::from_str(&json).unwrap();
        for kept in ["ts", "decision", "reason", "request_id", "issuer", "iss", "sub"] {
            assert!(v[kept].as_str().is_some_and(|s| !s.is_empty()), "{kept} kept");
        }
        assert_eq!(v["status"], 200);
        assert_eq!(v["tokens_charged"], u64::MAX);
        let b = r.bounded();
        assert_eq!(b.tools.len() as u64 + b.tools_truncated, 14_000);
        assert_eq!(b.act.len() as u64 + b.act_truncated, 100);
        assert_eq!(b.redactions.len() as u64 + b.redactions_truncated, 1_000);
        for dropped in DROP_ORDER {
            assert!(v[dropped].is_null(), "{dropped} dropped");
            assert!(b.truncated.contains(&dropped));
        }
        assert_eq!(b.request_id.as_ref().map(String::len), Some(LAST_RESORT_BYTES));
    }

    #[test]
    fn oversize_record_sheds_tools_then_redactions_then_act() {
        let long = |c: char| c.to_string().repeat(MAX_STRING_BYTES);
        let mut r = AuditRecord::new(0, Reason::Ok, 200, Some(&identity()));
        r.set_tools(
            (0..MAX_LIST_ENTRIES)
                .map(|_| long('t'))
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str),
        );
        let names = (0..MAX_LIST_ENTRIES).map(|i| (format!("{i:02}{}", &long('r')[2..]), 1));
        r.set_redactions(names.collect());
        r.set_act(["a1", "a2"]);
        r.set_text(Text::Model, Some("gpt"));
        assert!(r.truncated.is_empty(), "each field is within its own cap");
        let v: Value = serde_json::from_str(&assert_bounded_and_exact(&r)).unwrap();
        assert_eq!(v["tools"], json!([]));
        assert_eq!(v["tools_truncated"], MAX_LIST_ENTRIES);
        let kept = v["redactions"].as_object().unwrap().len();
        assert!(kept > 0 && kept < MAX_LIST_ENTRIES, "{kept} redactions kept");
        assert_eq!(
            kept as u64 + v["redactions_truncated"].as_u64().unwrap(),
            MAX_LIST_ENTRIES as u64
        );
        // The first names are the ones kept.
        assert!(v["redactions"]
            .as_object()
            .unwrap()
            .contains_key(&format!("00{}", &long('r')[2..])));
        assert_eq!(v["act"], json!(["a1", "a2"]));
        assert_eq!(v["model"], "gpt");
        assert_eq!(v["truncated"], json!(["tools", "redactions"]));
    }

    #[test]
    fn strings_are_cut_at_char_boundaries() {
        let wide = "日".repeat(400); // 3 bytes each
        let mut r = AuditRecord::new(0, Reason::Ok, 200, None).with_request(
            Some(wide.clone()),
            None,
            Some(&format!("/{wide}?q={wide}")),
        );
        r.set_text(Text::Model, Some(&wide));
        r.set_text(Text::Sub, Some("short"));
        assert_eq!(r.request_id.as_ref().map(String::len), Some(255));
        assert_eq!(r.model.as_ref().map(String::len), Some(255));
        assert_eq!(r.path.as_ref().map(String::len), Some(1 + 341 * 3));
        assert_eq!(r.truncated, vec!["request_id", "path", "model"]);
        assert_eq!(r.sub.as_deref(), Some("short"));
        let json = assert_bounded_and_exact(&r);
        assert!(!json.contains("q="));
        // Direct assignment is cut when written.
        let mut direct = AuditRecord::new(0, Reason::Ok, 200, None);
        direct.blocked_tool = Some(format!("{}é{}", "a".repeat(MAX_STRING_BYTES - 1), "a".repeat(10)));
        direct.redactions.insert("x".repeat(300), 2);
        direct.redactions.insert(format!("{}y", "x".repeat(300)), 3);
        let v: Value = serde_json::from_str(&assert_bounded_and_exact(&direct)).unwrap();
        assert_eq!(
            v["blocked_tool"].as_str().map(str::len),
            Some(MAX_STRING_BYTES - 1)
        );
        // Two names that coincide once cut add up.
        assert_eq!(v["redactions"], json!({ "x".repeat(MAX_STRING_BYTES): 5 }));
        assert_eq!(v["truncated"], json!(["blocked_tool", "redactions"]));
    }

    #[test]
    fn setters_replace_their_counts() {
        let mut r = AuditRecord::new(0, Reason::Ok, 200, None);
        let many: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        r.set_tools(many.iter().map(String::as_str));
        assert_eq!((r.tools.len(), r.tools_truncated), (MAX_LIST_ENTRIES, 8));
        assert_eq!(r.truncated, vec!["tools"]);
        r.set_tools(["a"]);
        assert_eq!((r.tools.len(), r.tools_truncated), (1, 0));
        assert!(r.truncated.is_empty());
        r.set_redactions((0..33).map(|i| (format!("k{i:02}"), 1)).collect());
        assert_eq!(
            (r.redactions.len(), r.redactions_truncated),
            (MAX_LIST_ENTRIES, 1)
        );
        assert!(!r.redactions.contains_key("k32"));
        assert_bounded_and_exact(&r);
    }

    #[test]
    fn client_request_id_is_kept_apart_from_envoys() {
        let with = |envoy: Option<&str>, header: Option<&str>| {
            AuditRecord::new(0, Reason::Ok, 200, None)
                .with_request(envoy.map(str::to_string), None, None)
                .with_client_request_id(header)
        };
        let r = with(Some("envoy-uuid"), Some("client \"chosen\"\n"));
        assert_eq!(r.request_id.as_deref(), Some("envoy-uuid"));
        assert_eq!(r.client_request_id.as_deref(), Some("client \"chosen\"\n"));
        assert_bounded_and_exact(&r);
        assert_eq!(with(Some("same"), Some("same")).client_request_id, None);
        assert_eq!(with(Some("envoy"), None).client_request_id, None);
        assert_eq!(with(None, Some("c")).client_request_id.as_deref(), Some("c"));
        assert_eq!(with(None, Some("c")).request_id, None);
        let long = with(None, Some(&"z".repeat(5_000)));
        assert_eq!(
            long.client_request_id.as_ref().map(String::len),
            Some(MAX_STRING_BYTES)
        );
        assert_eq!(long.truncated, vec!["client_request_id"]);
    }

    #[test]
    fn response_side_fields_and_other_decisions() {
        let mut r = AuditRecord::new(0, Reason::Ok, 0, Some(&identity()));
        r.decision = Decision::Abandoned;
        r.reason = "client_gone";
        r.withheld = Some("unknown_content_type");
        r.tokens_reserved = Some(1_100);
        r.tokens_charged = Some(130);
        r.tokens_used = Some(130);
        let v = parsed(&r);
        assert_eq!(
            (v["decision"].as_str(), v["reason"].as_str()),
            (Some("abandoned"), Some("client_gone"))
        );
        assert_eq!(v["withheld"], "unknown_content_type");
        assert_eq!(
            (v["tokens_reserved"].as_u64(), v["tokens_charged"].as_u64()),
            (Some(1_100), Some(130))
        );
        assert_eq!(v["truncated"], json!([]));
        assert_eq!(v["tools_truncated"], 0);
        assert_bounded_and_exact(&r);
        let empty = parsed(&AuditRecord::new(0, Reason::Ok, 200, None));
        assert!(
            empty["withheld"].is_null()
                && empty["tokens_reserved"].is_null()
                && empty["client_request_id"].is_null()
        );
    }

    #[test]
    fn new_fields_come_last_and_existing_order_is_kept() {
        let mut r = AuditRecord::new(0, Reason::Ok, 200, Some(&identity()));
        r.model = Some("m".into());
        let json = r.to_json();
        let positions: Vec<usize> = CUTTABLE_IN_ORDER
            .iter()
            .chain(
                [
                    "tools_truncated",
                    "act_truncated",
                    "redactions_truncated",
                    "truncated",
                ]
                .iter(),
            )
            .map(|name| {
                json.find(&format!("\"{name}\":"))
                    .unwrap_or_else(|| panic!("{name} missing"))
            })
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{json}");
        assert!(json.find("\"status\":").unwrap() < json.find("\"client_request_id\":").unwrap());
        assert!(json.ends_with(",\"truncated\":[]}"));
    }

    #[test]
    fn drop_order_names_its_fields() {
        let names: Vec<&str> = Text::DROPPED_FIRST_FIRST.iter().map(|t| t.name()).collect();
        assert_eq!(names, DROP_ORDER);
        for t in Text::ALL {
            assert!(CUTTABLE_IN_ORDER.contains(&t.name()));
        }
    }

    #[test]
    fn quoted_len_is_what_serde_json_writes() {
        for s in [
            "",
            "plain",
            "quote \" back \\ nl \n cr \r tab \t \u{8}\u{c}\u{0}\u{1f}\u{7f} é 日本 🦀 /",
        ] {
            assert_eq!(quoted_len(s), serde_json::to_string(s).unwrap().len(), "{s:?}");
        }
        assert_eq!(
            (digits(0), digits(9), digits(10), digits(u64::MAX)),
            (1, 1, 2, 20)
        );
    }

    #[test]
    fn fixed_bytes_bounds_everything_but_strings_and_entries() {
        let mut r = AuditRecord::new(u64::MAX / 4, Reason::Ok, u16::MAX, None);
        for field in Text::ALL {
            *r.text_mut(field) = Some(String::new());
        }
        (r.action, r.credential_source, r.withheld, r.reason) = (Some(""), Some(""), Some(""), "");
        r.remaining_requests = Some(u64::MAX);
        r.remaining_tokens = Some(u64::MAX);
        r.tokens_used = Some(u64::MAX);
        r.tokens_reserved = Some(u64::MAX);
        r.tokens_charged = Some(u64::MAX);
        r.tools_truncated = u64::MAX;
        r.act_truncated = u64::MAX;
        r.redactions_truncated = u64::MAX;
        let ts = r.ts.len();
        assert!(r.to_json().len() <= FIXED_BYTES + ts, "{}", r.to_json().len());
        let mut nulls = AuditRecord::new(0, Reason::Ok, 200, None);
        nulls.remaining_requests = Some(u64::MAX);
        assert!(nulls.to_json().len() <= FIXED_BYTES);
    }
}
