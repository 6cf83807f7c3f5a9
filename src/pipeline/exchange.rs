//! One exchange (a request and its response) from the first header to the log callback,
//! and the per-plugin root (configure, tick, JWKS fetches, credential waiters). Host-free:
//! everything the proxy does for it goes through [`Host`].

use super::host::{Buffer, Flow, HeaderMap, Host, HostError, STATUS_CAS_MISMATCH};
use crate::authn::auth::{Authenticator, Verdict};
use crate::authn::claims::Identity;
use crate::authn::identity::{self, identity_headers};
use crate::authn::jwks::FetchResult;
use crate::authz::llm_request::{self, BodyError, BodyFacts, Endpoint};
use crate::authz::policy::{
    key_value, no_route, parse_source_address, Authorizer, Decision, Mode, RequestView,
};
use crate::authz::request_path::{self, CanonicalPath};
use crate::config::Config;
use crate::host::{Clock, DispatchError, HttpCaller, SharedStore, StoreWrite};
use crate::inspect::classifier::{self, ClassifierError, ClassifierSpec, Resolution, VerdictCache};
use crate::inspect::ndjson::NdjsonPipeline;
use crate::inspect::response::{self, BodyOutcome, Format, Plan, Withheld};
use crate::inspect::sse_pipeline::{SsePipeline, StreamInspection, StreamOptions};
use crate::inspect::tool_calls::{self, JsonVerdict};
use crate::limits::ratelimit::{self, Admission, SlotTable};
use crate::limits::usage::{self, UsageMeter};
use crate::outcome::audit::{AuditRecord, Decision as AuditDecision, Text, LOG_PREFIX};
use crate::outcome::reason::{denial_reply, forbidden_reply, Reason, Reply, RequestProblem};
use crate::redact::stream::{Redactor, TextStream};
use crate::redact::Counts;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

thread_local! {
    /// Requests on this worker waiting for another request's token-endpoint call.
    static WAITERS: RefCell<Vec<Rc<RefCell<Waiter>>>> = const { RefCell::new(Vec::new()) };
}

/// A request held for a credential another request is fetching (single flight). The root's
/// tick polls the cache and resumes or refuses it; the request adopts the outcome at its
/// next callback.
struct Waiter {
    context_id: u32,
    spec: crate::upstream::credentials::CredentialSpec,
    key: crate::upstream::credentials::CredentialKey,
    deadline_ms: u64,
    outcome: Option<Result<String, ()>>,
}

/// The audit reason (and reply code) when no upstream credential could be had.
const UNAVAILABLE: &str = "upstream_credential_unavailable";

/// Tick period while requests wait for a credential.
const WAIT_TICK_MS: u32 = 50;

struct HostStore(&'static dyn Host);

impl SharedStore for HostStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.0.get_shared_data(key).ok().flatten()
    }
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> StoreWrite {
        match self.0.set_shared_data(key, value, cas.unwrap_or(0)) {
            Ok(()) => StoreWrite::Written,
            Err(HostError(STATUS_CAS_MISMATCH)) => StoreWrite::CasMismatch,
            Err(_) => StoreWrite::Failed,
        }
    }
}

/// Per-plugin settings the HTTP contexts need besides the authenticator.
struct Settings {
    identity_prefix: String,
    token_header: String,
    forward_token: bool,
    audit_log: bool,
    audit_key: String,
    realm: String,
    /// Keep every rule's verdict per decision (`llm-warden explain`; never in the filter).
    explain: bool,
}

struct Plugin {
    auth: RefCell<Authenticator>,
    authz: Option<Authorizer>,
    /// Local rate-limit counters, namespaced by plugin name.
    slots: Option<SlotTable>,
    settings: Settings,
    /// Classifier verdicts of this worker, per policy index (dropped with the config).
    classifier_caches: RefCell<HashMap<usize, VerdictCache>>,
}

pub struct Root {
    id: u32,
    host: &'static dyn Host,
    /// Exchanges keep every rule's verdict (set by the offline tools before configure).
    explain: bool,
    remote: bool,
    plugin: Option<Rc<Plugin>>,
    /// In-flight periodic JWKS fetches: call id -> issuer index.
    fetches: HashMap<u32, usize>,
}

const TICK_MS: u32 = 1000;
/// Filter state with the call's total tokens (`%FILTER_STATE(wasm.llm_warden.tokens:PLAIN)%`),
/// for Envoy's ratelimit filter `hits_addend` in global mode.
const USAGE_KEY: &str = "llm_warden.tokens";

impl Root {
    pub fn new(id: u32, host: &'static dyn Host) -> Root {
        Root {
            id,
            host,
            explain: false,
            remote: false,
            plugin: None,
            fetches: HashMap::new(),
        }
    }

    /// Exchanges created after the next configure keep every rule's verdict.
    pub fn explain_rules(&mut self) {
        self.explain = true;
    }

    fn configure(&mut self) -> Result<(), String> {
        let bytes = self
            .host
            .get_buffer(Buffer::PluginConfig, 0, usize::MAX)
            .map_err(|e| format!("cannot read plugin configuration (host status {})", e.0))?
            .unwrap_or_default();
        if bytes.is_empty() {
            return Err("plugin configuration is empty; see README for the format".into());
        }
        let (config, authz) = Config::compile(&bytes).map_err(|e| e.to_string())?;
        // Before any request: creating shared-data keys is serialised on this lock.
        crate::host::seed_create_lock(&HostStore(self.host));
        let auth = Authenticator::new(&config).map_err(|e| e.to_string())?;
        let remote = auth
            .issuers
            .iter()
            .any(|i| matches!(i.keys, crate::authn::auth::KeySource::Remote(_)));
        self.plugin = Some(Rc::new(Plugin {
            auth: RefCell::new(auth),
            classifier_caches: RefCell::new(HashMap::new()),
            slots: authz.as_ref().map(|a| {
                let plugin_name = self
                    .host
                    .get_property(&["plugin_name"])
                    .ok()
                    .flatten()
                    .and_then(|b| String::from_utf8(b).ok())
                    .unwrap_or_else(|| "llm-warden".into());
                a.slot_table(&plugin_name)
            }),
            authz,
            settings: Settings {
                identity_prefix: config.identity_headers.prefix.clone(),
                token_header: config.token.header.clone(),
                forward_token: config.token.forward,
                audit_log: config.audit.log,
                audit_key: config.audit.filter_state_key.clone(),
                realm: config.realm.clone(),
                explain: self.explain,
            },
        }));
        self.remote = remote;
        if remote {
            self.host
                .set_tick_period_ms(TICK_MS)
                .map_err(|e| format!("cannot set tick period (host status {})", e.0))?;
        }
        Ok(())
    }
}

impl Root {
    /// Resumes waiting requests whose credential arrived; refuses those whose awaited call
    /// failed or whose wait ran out.
    fn release_waiters(&mut self) {
        let now = now_ms(self.host).unwrap_or(0);
        let waiters = WAITERS.with(|w| {
            w.try_borrow_mut()
                .map(|mut v| std::mem::take(&mut *v))
                .unwrap_or_default()
        });
        if waiters.is_empty() {
            return;
        }
        let mut still = Vec::new();
        for waiter in waiters {
            let Ok(mut w) = waiter.try_borrow_mut() else {
                continue;
            };
            let poll = w.spec.poll(&HostStore(self.host), &w.key, now);
            let outcome = match poll {
                crate::upstream::credentials::Poll::Ready(t) => Ok(t),
                crate::upstream::credentials::Poll::Pending if now < w.deadline_ms => {
                    drop(w);
                    still.push(waiter);
                    continue;
                }
                _ => Err(()),
            };
            if self.host.set_effective_context(w.context_id).is_err() {
                continue; // the request is gone
            }
            match &outcome {
                Ok(t) => {
                    let (name, value) = w.spec.header_value(t);
                    let _ = self.host.set_header(HeaderMap::Request, &name, &value);
                    let _ = self.host.remove_header(HeaderMap::Request, "accept-encoding");
                    let _ = self.host.resume_http_request();
                }
                Err(()) => {
                    self.host.count("llm_warden.credentials.failed", 1);
                    send_local(
                        self.host,
                        &crate::upstream::credentials::unavailable_reply(),
                        UNAVAILABLE,
                    );
                }
            }
            w.outcome = Some(outcome);
        }
        let _ = self.host.set_effective_context(self.id);
        let empty = still.is_empty();
        WAITERS.with(|w| {
            if let Ok(mut v) = w.try_borrow_mut() {
                v.extend(still);
            }
        });
        if empty {
            let _ = self
                .host
                .set_tick_period_ms(if self.remote { TICK_MS } else { 0 });
        }
    }
}

impl Root {
    /// The answer to a JWKS fetch the tick started.
    pub fn on_call_response(&mut self, token_id: u32, body_size: usize) {
        let Some(issuer) = self.fetches.remove(&token_id) else {
            return;
        };
        let Some(plugin) = &self.plugin else {
            return;
        };
        let Ok(mut auth) = plugin.auth.try_borrow_mut() else {
            return;
        };
        let (status, body) = read_fetch_response(
            self.host,
            body_size,
            auth.remote(issuer).map_or(0, |r| r.source.max_bytes),
        );
        let now = now_ms(self.host).unwrap_or(0) / 1000;
        let result = auth.on_fetch(issuer, now, &HostStore(self.host), status, body.as_deref());
        log_fetch(self.host, &auth, issuer, &result);
    }
}

impl Root {
    pub fn on_configure(&mut self) -> bool {
        let started = self.host.now_nanos().unwrap_or(0);
        match self.configure() {
            Ok(()) => {
                let took_us = self.host.now_nanos().unwrap_or(0).saturating_sub(started) / 1000;
                log::info!(
                    "llm-warden {}: configured in {took_us} us",
                    env!("CARGO_PKG_VERSION")
                );
                true
            }
            Err(message) => {
                log::error!("llm-warden: invalid configuration: {message}");
                false
            }
        }
    }

    pub fn on_tick(&mut self) {
        self.release_waiters();
        let Some(plugin) = self.plugin.clone() else {
            return;
        };
        let Some(now) = now_ms(self.host).map(|m| m / 1000) else {
            return;
        };
        let Ok(mut auth) = plugin.auth.try_borrow_mut() else {
            return;
        };
        for issuer in &auth.issuers {
            if let crate::authn::auth::KeySource::Remote(r) = &issuer.keys {
                if let Some(age) = r.age(now) {
                    self.host
                        .gauge(&format!("llm_warden.jwks.age_seconds.{}", issuer.name), age);
                }
            }
        }
        for issuer in auth.tick(now, &HostStore(self.host)) {
            match dispatch_fetch(self.host, &auth, issuer) {
                Ok(call) => {
                    self.fetches.insert(call, issuer);
                }
                Err(()) => {
                    let result = auth.on_fetch(issuer, now, &HostStore(self.host), None, None);
                    log_fetch(self.host, &auth, issuer, &result);
                }
            }
        }
    }

    /// A new exchange; an unconfigured plugin (failed configure) denies everything.
    pub fn new_exchange(&self, context_id: u32) -> Exchange {
        let mut h = Exchange::new(self.plugin.clone(), self.host);
        h.context_id = context_id;
        h
    }
}

struct HostHttp(&'static dyn Host);

impl HttpCaller for HostHttp {
    fn get(&self, cluster: &str, authority: &str, path: &str, timeout_ms: u64) -> Result<u32, DispatchError> {
        let headers = [
            (":method", "GET"),
            (":path", path),
            (":authority", authority),
            ("accept", "application/json"),
        ];
        let timeout = u32::try_from(timeout_ms).unwrap_or(u32::MAX);
        self.0
            .http_call(cluster, &headers, None, timeout)
            .map_err(|e| DispatchError(e.0))
    }
}

struct HostClock(&'static dyn Host);

impl Clock for HostClock {
    fn now_unix_secs(&self) -> u64 {
        self.now_unix_millis() / 1000
    }
    /// 0 when the host cannot tell the time; callers treat that as "cannot decide".
    fn now_unix_millis(&self) -> u64 {
        self.0.now_nanos().map_or(0, |n| n / 1_000_000)
    }
}

fn now_ms(h: &'static dyn Host) -> Option<u64> {
    Some(HostClock(h).now_unix_millis()).filter(|ms| *ms > 0)
}

fn dispatch_fetch(h: &'static dyn Host, auth: &Authenticator, issuer: usize) -> Result<u32, ()> {
    auth.dispatch_fetch(issuer, &HostHttp(h)).map_err(|e| {
        let cluster = auth.remote(issuer).map_or("?", |r| r.source.cluster.as_str());
        log::warn!(
            "llm-warden: cannot dispatch JWKS fetch to cluster {cluster:?} (host status {})",
            e.0
        );
    })
}

fn read_fetch_response(
    h: &'static dyn Host,
    body_size: usize,
    max_bytes: usize,
) -> (Option<u16>, Option<Vec<u8>>) {
    let status = h
        .get_header(HeaderMap::CallResponse, ":status")
        .ok()
        .flatten()
        .and_then(|s| s.parse::<u16>().ok());
    // Read at most one byte past the limit: enough to know it is too large.
    let want = body_size.min(max_bytes.saturating_add(1));
    let body = if want == 0 {
        Some(Vec::new())
    } else {
        h.get_buffer(Buffer::CallResponseBody, 0, want).ok().flatten()
    };
    (status, body)
}

fn log_fetch(h: &'static dyn Host, auth: &Authenticator, issuer: usize, result: &FetchResult) {
    let name = auth.issuers.get(issuer).map_or("?", |i| i.name.as_str());
    h.count(
        match result {
            FetchResult::Updated { .. } => "llm_warden.jwks.fetch.ok",
            FetchResult::Rejected(_) => "llm_warden.jwks.fetch.failed",
        },
        1,
    );
    match result {
        FetchResult::Updated { keys, skipped } => {
            log::info!("llm-warden: JWKS for issuer {name:?} updated: {keys} keys ({skipped} skipped)")
        }
        FetchResult::Rejected(why) => {
            log::warn!("llm-warden: JWKS fetch for issuer {name:?} failed, keeping last good keys: {why}")
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Start,
    /// Headers held while a JWKS fetch for this request is in flight.
    AwaitingKeys,
    /// Headers held until the JSON body is complete and authorized.
    AwaitingBody,
    /// Authorized; held until the upstream credential is attached (never sent without it).
    AwaitingCredential,
    /// Guard passed; body and trailers held until the external classifier answers.
    AwaitingClassifier,
    Forwarded,
    Replied,
}

enum ResponseInspection {
    Off,
    /// Whole JSON body held (headers too) and checked at the end.
    Json,
    /// Held and discarded as it arrives; the withheld reply replaces it at the end.
    Withheld(Withheld),
    /// Event streams (SSE, or NDJSON for Ollama): one parse feeding the tool-call guard, the
    /// forced-usage removal and redaction; frames re-emitted canonically.
    Stream(Box<dyn StreamInspection>),
    /// Other text bodies: streamed redaction.
    Text(TextStream),
}

pub struct Exchange {
    context_id: u32,
    host: &'static dyn Host,
    /// Held for another request's token call.
    waiter: Option<Rc<RefCell<Waiter>>>,
    /// The lease of this request's own token call.
    credential_lease: Option<(
        crate::upstream::credentials::CredentialKey,
        crate::upstream::credentials::Lease,
    )>,
    plugin: Option<Rc<Plugin>>,
    audit: Option<AuditRecord>,
    /// A JWKS fetch this request waits for: (call id, issuer index).
    pending: Option<(u32, usize)>,
    phase: Phase,
    identity: Option<Rc<Identity>>,
    endpoint: Endpoint,
    /// The canonical request path: every decision on the path reads this.
    path: CanonicalPath,
    policy: Option<usize>,
    model_outside_body: Option<String>,
    request_ended: bool,
    body_size: usize,
    body_complete: bool,
    decision: Option<Decision>,
    response: ResponseInspection,
    admission: Option<Admission>,
    meter: Option<UsageMeter>,
    settled: bool,
    /// The call's token estimate (reservation, and the charge when no usage comes back).
    token_estimate: usage::TokenEstimate,
    /// The model named by the body or outside it, for the descriptor headers.
    call_model: Option<String>,
    redactions: Counts,
    /// The request declared or forced tools: only then can a response call one.
    declared_tools: bool,
    /// Token usage is needed (local token limits or export for global limits).
    meter_usage: bool,
    /// The caller's token, kept only for a token exchange, never forwarded or logged.
    caller_token: Option<String>,
    /// A token-endpoint call this request waits for.
    credential_call: Option<u32>,
    /// The classifier call this request waits for, and the cache key of the text it sent.
    classifier_call: Option<(u32, [u8; 32])>,
    /// The parsed body while the classifier decides.
    held: Option<HeldBody>,
    /// The upstream credential sent: scrubbed from anything flowing back to the client.
    scrub: Option<CredentialScrub>,
    /// The request headers as they arrived.
    request_headers: Vec<(String, String)>,
    /// The client address, read only when a rule has a source condition.
    source_ip: Option<std::net::IpAddr>,
    /// The response body's size at its last callback (a held body is re-read at trailers).
    response_body_size: usize,
    /// The filter set `stream_options.include_usage` itself: the client never asked for the
    /// usage chunk, so it is removed from the stream it sees.
    forced_usage: bool,
    /// Detectors for a streamed response when an upstream credential was attached: the
    /// credential (caught across events) plus the policy's own when it enforces.
    stream_detectors: Option<(crate::redact::Detectors, crate::redact::Replacement)>,
    /// Every rule's verdict at the last decision, kept only when the root explains.
    rule_traces: Option<Vec<crate::authz::policy::RuleTrace>>,
    /// The audit record's JSON as last written to filter state; None once it changed.
    audit_json: Option<String>,
}

/// Removes the upstream credential from response bodies (a backend echoing headers must
/// not hand it to the caller), holding back just enough bytes to catch a split copy.
struct CredentialScrub {
    needle: Vec<u8>,
    held: Vec<u8>,
}

impl CredentialScrub {
    fn feed(&mut self, chunk: &[u8], end: bool) -> Vec<u8> {
        let mut data = std::mem::take(&mut self.held);
        data.extend_from_slice(chunk);
        let mut out = Vec::with_capacity(data.len());
        let n = self.needle.len();
        let mut i = 0;
        while i < data.len() {
            if n > 0 && data.get(i..i + n) == Some(self.needle.as_slice()) {
                out.extend_from_slice(b"[REDACTED:upstream_credential]");
                i += n;
            } else if !end
                && n > 0
                && i + n > data.len()
                && self.needle.starts_with(data.get(i..).unwrap_or_default())
            {
                // Could be the start of a copy split across chunks: hold it.
                self.held = data.get(i..).unwrap_or_default().to_vec();
                break;
            } else {
                out.push(data.get(i).copied().unwrap_or_default());
                i += 1;
            }
        }
        out
    }
}

/// What authorization computed from the body, kept while the classifier decides.
struct HeldBody {
    obj: serde_json::Map<String, serde_json::Value>,
    facts: BodyFacts,
    clamp: Option<u64>,
    token_limited: bool,
}

enum CredStep {
    Ready,
    Pending,
    Failed,
}

/// Why a request does not go on now: it was answered, or it waits (for a call, a body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Replied,
    Held,
}

/// A stage of a phase: Ok goes on to the next stage.
type Stage<T = ()> = Result<T, Stop>;

/// What authorization needs next.
enum Step {
    Forward,
    NeedBody,
    Replied,
}

fn property_text(h: &'static dyn Host, path: &[&str]) -> Option<String> {
    h.get_property(path)
        .ok()
        .flatten()
        .and_then(|b| String::from_utf8(b).ok())
}

impl Exchange {
    /// A request header as the request arrived (read once, in one hostcall).
    fn request_header(&self, name: &str) -> Option<String> {
        self.request_headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    fn new(plugin: Option<Rc<Plugin>>, host: &'static dyn Host) -> Exchange {
        Exchange {
            context_id: 0,
            host,
            waiter: None,
            credential_lease: None,
            plugin,
            audit: None,
            pending: None,
            phase: Phase::Start,
            identity: None,
            endpoint: Endpoint::Other,
            path: CanonicalPath::default(),
            policy: None,
            model_outside_body: None,
            request_ended: false,
            body_size: 0,
            body_complete: false,
            decision: None,
            response: ResponseInspection::Off,
            admission: None,
            meter: None,
            settled: false,
            token_estimate: usage::TokenEstimate::default(),
            call_model: None,
            redactions: Counts::new(),
            declared_tools: false,
            meter_usage: false,
            caller_token: None,
            credential_call: None,
            classifier_call: None,
            held: None,
            scrub: None,
            request_headers: Vec::new(),
            source_ip: None,
            response_body_size: 0,
            forced_usage: false,
            stream_detectors: None,
            rule_traces: None,
            audit_json: None,
        }
    }

    /// Authentication, then authorization on headers. Returns the headers-phase action.
    fn start(&mut self, may_fetch: bool) -> Flow {
        match self.authentication_phase(may_fetch) {
            Ok(Step::Forward) if self.release() => Flow::Continue,
            Ok(Step::NeedBody) => {
                self.phase = Phase::AwaitingBody;
                Flow::Pause
            }
            _ => Flow::Pause,
        }
    }

    /// The authentication phase, in order: drop what the client must not send, verify the
    /// token (holding for keys when they must be fetched), hand the identity upstream, then
    /// the headers phase.
    fn authentication_phase(&mut self, may_fetch: bool) -> Stage<Step> {
        let Some(plugin) = self.plugin.clone() else {
            // on_configure failed for this root: nothing is let through.
            self.deny(Reason::JwksUnavailable, None, "llm-warden");
            return Err(Stop::Replied);
        };
        let s = &plugin.settings;
        strip_client_headers(self.host, &s.identity_prefix, &self.request_headers);
        let Some(now_ms) = now_ms(self.host) else {
            self.deny(Reason::JwksUnavailable, None, &s.realm);
            return Err(Stop::Replied);
        };
        let identity = self.authenticate(&plugin, now_ms, may_fetch)?;
        self.forward_identity(s, &identity)?;
        self.record(now_ms, Reason::Ok, 200, Some(&identity));
        self.identity = Some(identity.clone());
        self.headers_phase(&plugin, &identity, now_ms / 1000)
    }

    /// The caller's identity from its token; holds the request while the issuer's keys are
    /// fetched (`may_fetch`), refuses it otherwise.
    fn authenticate(&mut self, plugin: &Plugin, now_ms: u64, may_fetch: bool) -> Stage<Rc<Identity>> {
        let s = &plugin.settings;
        let header = self.request_header(&s.token_header);
        if let Some(h) = &header {
            if let Ok(auth) = plugin.auth.try_borrow() {
                self.caller_token = auth.extract_token(Some(h)).ok().map(str::to_string);
            }
        }
        let verdict = match plugin.auth.try_borrow_mut() {
            Ok(mut auth) => {
                let store = HostStore(self.host);
                let v = auth.authenticate(header.as_deref(), now_ms / 1000, &store, may_fetch);
                if let Verdict::Fetch { issuer } = v {
                    match dispatch_fetch(self.host, &auth, issuer) {
                        Ok(call) => {
                            self.pending = Some((call, issuer));
                            self.phase = Phase::AwaitingKeys;
                            return Err(Stop::Held);
                        }
                        Err(()) => {
                            let result = auth.on_fetch(issuer, now_ms / 1000, &store, None, None);
                            log_fetch(self.host, &auth, issuer, &result);
                            auth.authenticate(header.as_deref(), now_ms / 1000, &store, false)
                        }
                    }
                } else {
                    v
                }
            }
            Err(_) => Verdict::Deny {
                reason: Reason::JwksUnavailable,
                identity: None,
            },
        };
        match verdict {
            Verdict::Allow(identity) => Ok(identity),
            Verdict::Deny { reason, identity } => {
                self.deny(reason, identity.as_deref(), &s.realm);
                Err(Stop::Replied)
            }
            // Only returned with may_fetch; handled above.
            Verdict::Fetch { .. } => {
                self.deny(Reason::JwksUnavailable, None, &s.realm);
                Err(Stop::Replied)
            }
        }
    }

    /// The caller's token stays here (unless configured otherwise); its identity goes
    /// upstream in our headers, or the request does not go at all.
    fn forward_identity(&mut self, s: &Settings, identity: &Identity) -> Stage {
        if !s.forward_token {
            let _ = self.host.remove_header(HeaderMap::Request, &s.token_header);
        }
        // Added, not replaced: strip_client_headers removed every header under the prefix.
        for (name, value) in identity_headers(&s.identity_prefix, identity) {
            if self.host.add_header(HeaderMap::Request, &name, &value).is_err() {
                // Forwarding without the identity the upstream relies on is not safe.
                self.deny(Reason::JwksUnavailable, Some(identity), &s.realm);
                return Err(Stop::Replied);
            }
        }
        Ok(())
    }

    fn view<'a>(
        &'a self,
        now: u64,
        body: Option<&'a BodyFacts>,
        header: &'a dyn Fn(&str) -> Option<String>,
    ) -> RequestView<'a> {
        RequestView {
            endpoint: self.endpoint,
            path: &self.path,
            source_ip: self.source_ip,
            now_unix: now,
            header,
            body,
            model_outside_body: self.model_outside_body.clone(),
        }
    }

    /// The headers phase after authentication, in order: one canonical path, the request's
    /// context (client address, route, model outside the body), the route's policy, then
    /// either the body phase (JSON endpoints) or the decision and the rate limit.
    fn headers_phase(&mut self, plugin: &Plugin, identity: &Identity, now: u64) -> Stage<Step> {
        // Every request, with or without an authorization section: a path the upstream could
        // read differently from the filter is never forwarded.
        self.canonicalize_path()?;
        let Some(authz) = &plugin.authz else {
            return Ok(Step::Forward);
        };
        let route = self.read_request_context(authz)?;
        let Some(policy_idx) = authz.route_index(
            route.as_deref(),
            self.request_header(":authority").as_deref(),
            &self.path,
        ) else {
            self.enforce(no_route(), &plugin.settings.realm)?;
            return Ok(Step::Forward);
        };
        self.policy = Some(policy_idx);
        let (_, policy) = self.routed_policy(plugin)?;
        if policy.redaction.is_some() {
            // Responses are redacted: the upstream must answer uncompressed.
            let _ = self.host.remove_header(HeaderMap::Request, "accept-encoding");
        }
        if self.needs_body() {
            return self.await_body(plugin, authz, policy, identity, now);
        }
        let decision = self.decide(plugin, policy, identity, now, None);
        self.enforce(decision, &plugin.settings.realm)?;
        Ok(self.rate_limit(plugin, identity, None))
    }

    fn canonicalize_path(&mut self) -> Stage {
        let raw_path = self.request_header(":path").unwrap_or_default();
        match request_path::canonical(&raw_path) {
            Ok(path) => {
                self.endpoint = Endpoint::of(&path);
                self.path = path;
                Ok(())
            }
            Err(problem) => Err(self.problem_stop(RequestProblem::AmbiguousPath(problem))),
        }
    }

    /// The client address (only when a rule reads it), the model named outside the body
    /// (400 when ambiguous) and the route name, noted in the audit record.
    fn read_request_context(&mut self, authz: &Authorizer) -> Stage<Option<String>> {
        if authz.uses_source_ip {
            self.source_ip =
                property_text(self.host, &["source", "address"]).and_then(|a| parse_source_address(&a));
        }
        let route = property_text(self.host, &["xds", "route_name"]);
        self.model_outside_body = match authz.model_outside_body(&self.path, |n| self.request_header(n)) {
            Ok(model) => model,
            Err(problem) => return Err(self.problem_stop(problem)),
        };
        self.audit_json = None;
        if let Some(a) = &mut self.audit {
            a.route = route.clone();
            a.action = Some(self.endpoint.action());
            a.model = self.model_outside_body.clone();
        }
        Ok(route)
    }

    /// Any method can carry a body (PUT, PATCH, DELETE...): a body on a JSON endpoint is
    /// always read; only a body-less GET/HEAD-style request is decided on headers.
    fn needs_body(&self) -> bool {
        let method = self.request_header(":method").unwrap_or_default();
        let carries_body = !self.request_ended || method.eq_ignore_ascii_case("POST");
        self.endpoint.has_json_body() && carries_body
    }

    /// Before holding for a body: refuse what cannot be read (compressed, declared too
    /// large, absent) and callers no rule applies to, without reading it.
    fn await_body(
        &mut self,
        plugin: &Plugin,
        authz: &Authorizer,
        policy: &crate::authz::policy::Policy,
        identity: &Identity,
        now: u64,
    ) -> Stage<Step> {
        let encoded = self
            .request_header("content-encoding")
            .is_some_and(|e| !e.eq_ignore_ascii_case("identity"));
        if encoded {
            return Err(self.problem_stop(RequestProblem::Compressed));
        }
        let declared = self
            .request_header("content-length")
            .and_then(|l| l.trim().parse::<usize>().ok());
        if declared.is_some_and(|l| l > authz.body_max_bytes) {
            return Err(self.problem_stop(RequestProblem::TooLarge(authz.body_max_bytes)));
        }
        let no_rule_applies = {
            let header = |n: &str| self.request_header(n);
            let view = self.view(now, None, &header);
            policy.mode == Mode::Enforce && !policy.applies_to_anyone(identity, &view)
        };
        if no_rule_applies {
            let decision = self.decide(plugin, policy, identity, now, None);
            self.enforce(decision, &plugin.settings.realm)?;
        }
        if self.request_ended {
            return Err(self.problem_stop(RequestProblem::NotJson));
        }
        // The upstream must answer uncompressed so tool calls can be inspected.
        let _ = self.host.remove_header(HeaderMap::Request, "accept-encoding");
        Ok(Step::NeedBody)
    }

    /// Applies the granting rule's rate limits: 429 when one refuses (unless monitoring).
    fn rate_limit(&mut self, plugin: &Plugin, identity: &Identity, facts: Option<&BodyFacts>) -> Step {
        let (Some(authz), Some(table), Some(decision)) = (&plugin.authz, &plugin.slots, &self.decision)
        else {
            return Step::Forward;
        };
        if decision.limits.is_empty() {
            return Step::Forward;
        }
        let Ok(now_ns) = self.host.now_nanos() else {
            return Step::Forward;
        };
        let model = facts
            .and_then(|f| f.model.clone())
            .or_else(|| self.model_outside_body.clone());
        let key_of = |spec: &ratelimit::LimitSpec| {
            ratelimit::key_hash(&[
                &spec.limit.name,
                &key_value(&spec.by, identity),
                &authz.model_key(spec.models, model.as_deref()),
            ])
        };
        let enforce = decision.mode == Mode::Enforce && authz.rate_limit_mode == Mode::Enforce;
        let admission = ratelimit::reserve(
            table,
            &HostStore(self.host),
            now_ns,
            &decision.limits,
            &key_of,
            &self.token_estimate,
            enforce,
        );
        self.audit_json = None;
        if let Some(a) = &mut self.audit {
            a.remaining_requests = admission.requests.map(|s| s.remaining);
            a.remaining_tokens = admission.tokens.map(|s| s.remaining);
            a.limit = admission.denied_by.clone();
            if admission.denied_by.is_some() && a.decision == AuditDecision::Allow {
                a.decision = if admission.allowed {
                    AuditDecision::WouldDeny
                } else {
                    AuditDecision::Deny
                };
                a.reason = "rate_limited";
            }
        }
        let allowed = admission.allowed;
        self.host.count(
            match (admission.allowed, admission.denied_by.is_some()) {
                (true, false) => "llm_warden.ratelimit.allowed",
                (true, true) => "llm_warden.ratelimit.would_limit",
                (false, _) => "llm_warden.ratelimit.limited",
            },
            1,
        );
        let reply = (!allowed).then(|| ratelimit::limited_reply(&admission));
        self.admission = Some(admission);
        match reply {
            Some(reply) => {
                self.audit_json = None;
                if let Some(a) = &mut self.audit {
                    a.status = 429;
                }
                self.send(&reply, "rate_limited");
                Step::Replied
            }
            None => Step::Forward,
        }
    }

    /// Acts on a policy decision; records it in the audit record.
    fn apply(&mut self, decision: Decision, realm: &str) -> Step {
        self.audit_json = None;
        if let Some(a) = &mut self.audit {
            a.policy = decision.policy.clone();
            a.rule = decision.rule.clone();
        }
        let step = match &decision.denial {
            None => Step::Forward,
            Some(d) if decision.mode == Mode::Monitor => {
                self.audit_json = None;
                if let Some(a) = &mut self.audit {
                    a.decision = AuditDecision::WouldDeny;
                    a.reason = d.code();
                }
                Step::Forward
            }
            Some(d) => {
                self.refuse(&forbidden_reply(d, realm), d.code());
                Step::Replied
            }
        };
        self.decision = Some(decision);
        step
    }

    fn problem_stop(&mut self, problem: RequestProblem) -> Stop {
        self.problem(problem);
        Stop::Replied
    }

    fn problem(&mut self, problem: RequestProblem) -> Step {
        self.refuse(&problem.reply(), problem.code());
        Step::Replied
    }

    /// Records a refusal in the audit record and sends its reply.
    fn refuse(&mut self, reply: &Reply, reason: &'static str) {
        self.audit_json = None;
        if let Some(a) = &mut self.audit {
            a.decision = AuditDecision::Deny;
            a.reason = reason;
            a.status = reply.status;
        }
        self.send(reply, reason);
    }

    /// Reads the complete request body and authorizes it. True: let the request go on.
    fn authorize_body(&mut self) -> bool {
        self.body_phase().is_ok()
    }

    /// The body phase, in order: read, parse, model agreement, the policy's decision on the
    /// body, token planning, the prompt guard, the classifier, then the headers phase's
    /// remainder (rate limit, credential) in `proceed`.
    fn body_phase(&mut self) -> Stage {
        let (plugin, identity) = self.caller()?;
        let authz = plugin.authz.as_ref().ok_or(Stop::Held)?;
        let body = self.read_request_body(authz.body_max_bytes)?;
        let (obj, facts) = self.parse_request_body(&body)?;
        self.note_body_facts(&facts);
        let (policy_idx, policy) = self.routed_policy(&plugin)?;
        let now = now_ms(self.host).unwrap_or(0) / 1000;
        let decision = self.decide(&plugin, policy, &identity, now, Some(&facts));
        let (clamp, token_limited) = self.plan_tokens(authz, &decision, &body, &obj, &facts);
        self.enforce(decision, &plugin.settings.realm)?;
        if let Some(spec) = policy.guard.as_ref() {
            self.guard_prompt(spec, &obj, &facts, now)?;
        }
        let mut held = HeldBody {
            obj,
            facts,
            clamp,
            token_limited,
        };
        if let Some(spec) = authz.policy(policy_idx).and_then(|p| p.classifier.clone()) {
            held = self
                .classify(&plugin, policy_idx, &spec, held)
                .ok_or(Stop::Held)?;
        }
        if self.proceed(&plugin, &identity, held) {
            Ok(())
        } else {
            Err(Stop::Held)
        }
    }

    /// The plugin and the authenticated caller (both exist once authentication passed).
    fn caller(&self) -> Stage<(Rc<Plugin>, Rc<Identity>)> {
        match (self.plugin.clone(), self.identity.clone()) {
            (Some(p), Some(i)) => Ok((p, i)),
            _ => Err(Stop::Held),
        }
    }

    /// The whole body, or 413 when it grew past the limit.
    fn read_request_body(&mut self, max_bytes: usize) -> Stage<Vec<u8>> {
        if self.body_size > max_bytes {
            return Err(self.problem_stop(RequestProblem::TooLarge(max_bytes)));
        }
        Ok(self
            .host
            .get_buffer(Buffer::RequestBody, 0, self.body_size)
            .ok()
            .flatten()
            .unwrap_or_default())
    }

    /// The body as JSON and the facts policies read; 400 for anything ambiguous, and when
    /// the model it names disagrees with the path or header the upstream routes on.
    fn parse_request_body(
        &mut self,
        body: &[u8],
    ) -> Stage<(serde_json::Map<String, serde_json::Value>, BodyFacts)> {
        let (obj, mut facts) = match llm_request::parse_body(body) {
            Ok(parsed) => parsed,
            Err(BodyError::NotJson) => return Err(self.problem_stop(RequestProblem::NotJson)),
            Err(BodyError::BadField(f)) => return Err(self.problem_stop(RequestProblem::BadField(f))),
            Err(BodyError::DuplicateMember) => return Err(self.problem_stop(RequestProblem::DuplicateMember)),
        };
        if !obj.contains_key("stream") && Endpoint::ollama_native(&self.path) {
            // Ollama streams unless told not to: the streaming grant applies.
            facts.stream = true;
        }
        // The model the upstream serves is the one checked: path, header and body agree.
        if let Err(problem) =
            crate::authz::policy::served_model(self.model_outside_body.as_deref(), facts.model.as_deref())
        {
            return Err(self.problem_stop(problem));
        }
        Ok((obj, facts))
    }

    fn note_body_facts(&mut self, facts: &BodyFacts) {
        self.declared_tools = !facts.all_tools().is_empty() || facts.tool_choice.is_some();
        self.audit_json = None;
        if let Some(a) = &mut self.audit {
            let model = facts.model.as_deref().or(self.model_outside_body.as_deref());
            a.set_text(Text::Model, model);
            a.set_tools(facts.all_tools());
        }
    }

    /// The policy the route chose; refused when there is none.
    fn routed_policy<'p>(&mut self, plugin: &'p Plugin) -> Stage<(usize, &'p crate::authz::policy::Policy)> {
        let routed = self
            .policy
            .and_then(|i| plugin.authz.as_ref()?.policy(i).map(|p| (i, p)));
        match routed {
            Some(found) => Ok(found),
            None => {
                self.enforce(no_route(), &plugin.settings.realm)?;
                Err(Stop::Replied)
            }
        }
    }

    /// The policy's decision on this request (and every rule's verdict when explaining).
    fn decide(
        &mut self,
        plugin: &Plugin,
        policy: &crate::authz::policy::Policy,
        identity: &Identity,
        now: u64,
        body: Option<&BodyFacts>,
    ) -> Decision {
        let header = |n: &str| self.request_header(n);
        let view = self.view(now, body, &header);
        let traces = plugin.settings.explain.then(|| policy.explain(identity, &view));
        let decision = policy.decide(identity, &view);
        self.rule_traces = traces;
        decision
    }

    /// What the call may cost in tokens: the clamp the grant imposes, whether usage must be
    /// metered, the reservation. Returns (clamp, token-limited).
    fn plan_tokens(
        &mut self,
        authz: &Authorizer,
        decision: &Decision,
        body: &[u8],
        obj: &serde_json::Map<String, serde_json::Value>,
        facts: &BodyFacts,
    ) -> (Option<u64>, bool) {
        let clamp = decision.clamp_to.filter(|_| decision.denial.is_none());
        let token_limited = authz.force_stream_usage
            || decision
                .limits
                .iter()
                .any(|l| l.limit.kind == ratelimit::Kind::Tokens);
        self.meter_usage = token_limited;
        // The clamp lowers (or sets) max_tokens: reserve what the upstream will be asked.
        let max_tokens = match clamp {
            Some(cap) => Some(facts.max_tokens.map_or(cap, |m| m.min(cap))),
            None => facts.max_tokens,
        };
        self.token_estimate =
            usage::TokenEstimate::of_request(self.endpoint, body, obj, max_tokens, authz.default_max_tokens);
        self.call_model = facts.model.clone().or_else(|| self.model_outside_body.clone());
        (clamp, token_limited)
    }

    /// Acts on a decision: Ok when the request may go on (granted, or monitored).
    fn enforce(&mut self, decision: Decision, realm: &str) -> Stage {
        match self.apply(decision, realm) {
            Step::Forward => Ok(()),
            Step::NeedBody | Step::Replied => Err(Stop::Replied),
        }
    }

    /// The input guard on the prompt: blocks (or, monitoring, records) an injection.
    fn guard_prompt(
        &mut self,
        spec: &crate::authz::policy::GuardSpec,
        obj: &serde_json::Map<String, serde_json::Value>,
        facts: &BodyFacts,
        now: u64,
    ) -> Stage {
        let Some(rule) = spec.guard.check_body(obj) else {
            return Ok(());
        };
        let rule = rule.to_string();
        let monitor = spec.mode == Mode::Monitor;
        self.host.count(
            &format!(
                "llm_warden.guard.{rule}.{}",
                if monitor { "monitored" } else { "blocked" }
            ),
            1,
        );
        self.audit_json = None;
        if let Some(a) = &mut self.audit {
            a.guard_rule = Some(rule.clone());
            if a.decision == AuditDecision::Allow {
                a.decision = if monitor {
                    AuditDecision::WouldDeny
                } else {
                    AuditDecision::Deny
                };
                a.reason = "prompt_blocked";
            }
        }
        if monitor {
            return Ok(());
        }
        let reply = crate::inspect::guard::blocked_reply(
            &rule,
            spec.on_block == crate::authz::policy::OnBlock::Refusal,
            self.endpoint,
            facts.model.as_deref(),
            facts.stream,
            now,
        );
        self.audit_json = None;
        if let Some(a) = &mut self.audit {
            a.status = reply.status;
        }
        self.send(&reply, "prompt_blocked");
        Err(Stop::Replied)
    }

    /// The policy's external classifier: a cached verdict decides at once; otherwise the call
    /// is dispatched and the request held until it answers. Some: the request goes on now.
    fn classify(
        &mut self,
        plugin: &Plugin,
        policy: usize,
        spec: &ClassifierSpec,
        held: HeldBody,
    ) -> Option<HeldBody> {
        let Some(text) = spec.prompt_text(&held.obj) else {
            return Some(held); // no prompt text: nothing to classify
        };
        let key = classifier::cache_key(&text);
        let cached = plugin
            .classifier_caches
            .try_borrow()
            .ok()
            .and_then(|c| c.get(&policy)?.get(&key).cloned());
        if let Some(verdict) = cached {
            self.host.count("llm_warden.classifier.cache_hit", 1);
            return self.classified(spec, &Ok(verdict), held);
        }
        let call = spec.request(&text);
        let headers: Vec<(&str, &str)> = call
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let timeout = u32::try_from(spec.timeout_ms).unwrap_or(u32::MAX);
        match self
            .host
            .http_call(&spec.cluster, &headers, Some(&call.body), timeout)
        {
            Ok(id) => {
                self.classifier_call = Some((id, key));
                self.held = Some(held);
                self.phase = Phase::AwaitingClassifier;
                None
            }
            Err(_) => self.classified(spec, &Err(ClassifierError::Unreachable), held),
        }
    }

    /// The classifier's answer arrived (or its timeout passed): cache it, act on it, and
    /// resume the request if it goes on.
    fn on_classifier_answer(&mut self, key: [u8; 32], status: Option<u16>, body: Option<Vec<u8>>) {
        let (Some(held), Some(plugin), Some(identity)) =
            (self.held.take(), self.plugin.clone(), self.identity.clone())
        else {
            return;
        };
        let Some((policy, spec)) = self
            .policy
            .and_then(|i| Some((i, plugin.authz.as_ref()?.policy(i)?.classifier.clone()?)))
        else {
            return;
        };
        let answer = match body {
            Some(b) => spec.read_answer(status, &b),
            None => Err(ClassifierError::NoAnswer),
        };
        if let (Ok(verdict), Ok(mut caches)) = (&answer, plugin.classifier_caches.try_borrow_mut()) {
            caches
                .entry(policy)
                .or_insert_with(|| VerdictCache::new(spec.cache_entries))
                .put(key, verdict.clone());
        }
        if let Some(held) = self.classified(&spec, &answer, held) {
            if self.proceed(&plugin, &identity, held) {
                let _ = self.host.resume_http_request();
            }
        }
    }

    /// Acts on a classifier answer (block, fail closed, or go on), with audit and metrics.
    fn classified(
        &mut self,
        spec: &ClassifierSpec,
        answer: &Result<classifier::Verdict, ClassifierError>,
        held: HeldBody,
    ) -> Option<HeldBody> {
        let resolution = spec.resolve(answer);
        self.host
            .count(&format!("llm_warden.classifier.{}", resolution.outcome()), 1);
        if let Some(e) = resolution.error() {
            self.host
                .count(&format!("llm_warden.classifier.error.{}", e.kind()), 1);
            log::warn!("llm-warden: {e} ({})", resolution.outcome());
        }
        self.audit_json = None;
        if let Some(a) = &mut self.audit {
            if let Some(rule) = resolution.rule() {
                a.guard_rule = Some(rule.to_string());
            }
            if let Some(reason) = resolution.reason() {
                if a.decision == AuditDecision::Allow {
                    a.decision = if resolution.proceeds() {
                        AuditDecision::WouldDeny
                    } else {
                        AuditDecision::Deny
                    };
                    a.reason = reason;
                }
            }
        }
        match &resolution {
            Resolution::Block { rule } => {
                let now = now_ms(self.host).unwrap_or(0) / 1000;
                let reply = crate::inspect::guard::blocked_reply(
                    rule,
                    false,
                    self.endpoint,
                    held.facts.model.as_deref(),
                    held.facts.stream,
                    now,
                );
                self.audit_json = None;
                if let Some(a) = &mut self.audit {
                    a.status = reply.status;
                }
                self.send(&reply, "prompt_blocked");
                None
            }
            Resolution::FailClosed { .. } => {
                self.refuse(&classifier::unavailable_reply(), classifier::UNAVAILABLE);
                None
            }
            _ => Some(held),
        }
    }

    /// Everything after the prompt checks: rate limit, body rewrite, release.
    fn proceed(&mut self, plugin: &Plugin, identity: &Identity, held: HeldBody) -> bool {
        let HeldBody {
            mut obj,
            facts,
            clamp,
            token_limited,
        } = held;
        if !matches!(self.rate_limit(plugin, identity, Some(&facts)), Step::Forward) {
            return false;
        }
        let mut changed = false;
        if let Some(cap) = clamp {
            llm_request::clamp_max_tokens(&mut obj, cap);
            changed = true;
        }
        if token_limited && matches!(self.endpoint, Endpoint::ChatCompletions | Endpoint::Completions) {
            // Usage must come back on streams too, or a stream would never be charged.
            self.forced_usage = usage::require_stream_usage(&mut obj);
            changed |= self.forced_usage;
        }
        if changed {
            let new_body = serde_json::to_vec(&obj).unwrap_or_default();
            if self
                .host
                .set_buffer(Buffer::RequestBody, 0, self.body_size, &new_body)
                .is_err()
            {
                self.problem(RequestProblem::BadField("max_tokens"));
                return false;
            }
            let _ = self
                .host
                .set_header(HeaderMap::Request, "content-length", &new_body.len().to_string());
        }
        if let Some(model) = facts.model.as_deref().or(self.model_outside_body.as_deref()) {
            // For Envoy's own ratelimit filter (global mode): the model as a request header.
            let name = format!("{}model", plugin.settings.identity_prefix);
            let _ = self
                .host
                .set_header(HeaderMap::Request, &name, &identity::header_safe(model, None));
        }
        self.release()
    }

    /// The decision is final and allows the call: attach the upstream credential, then let
    /// the request go. True: forward now; false: held for the credential, or refused.
    fn release(&mut self) -> bool {
        // Global mode: descriptor headers on every call, placeholders for unknown facts.
        if let (Some(plugin), Some(identity)) = (self.plugin.clone(), self.identity.clone()) {
            let model = self
                .call_model
                .clone()
                .or_else(|| self.model_outside_body.clone());
            for (name, value) in
                ratelimit::descriptor_headers(&plugin.settings.identity_prefix, &identity, model.as_deref())
            {
                let _ = self.host.set_header(HeaderMap::Request, &name, &value);
            }
        }
        self.publish_audit();
        match self.attach_credential() {
            CredStep::Ready => {
                self.phase = Phase::Forwarded;
                true
            }
            CredStep::Pending => {
                self.phase = Phase::AwaitingCredential;
                false
            }
            CredStep::Failed => false,
        }
    }

    /// Sets the upstream credential of the route's policy: from the cache, or by pausing
    /// the request on a call to the token endpoint. Fails closed with 503.
    fn attach_credential(&mut self) -> CredStep {
        let Some(plugin) = self.plugin.clone() else {
            return CredStep::Ready;
        };
        let Some(spec) = self
            .policy
            .and_then(|i| plugin.authz.as_ref()?.policy(i)?.credentials.clone())
        else {
            return CredStep::Ready;
        };
        self.audit_json = None;
        if let Some(a) = &mut self.audit {
            a.credential_source = Some(spec.source.name());
        }
        if let Some(key) = spec.static_key() {
            self.host.count("llm_warden.credentials.static_long_lived", 1);
            let key = key.to_string();
            self.set_credential(&spec, &key);
            return CredStep::Ready;
        }
        let now = now_ms(self.host).unwrap_or(0);
        let key = match spec.source {
            crate::upstream::credentials::CredentialSource::TokenExchange => {
                let (Some(t), Some(id)) = (&self.caller_token, &self.identity) else {
                    return self.credential_failed("no caller token to exchange");
                };
                spec.key(Some(&crate::upstream::credentials::Caller {
                    issuer_name: &id.issuer_name,
                    iss: &id.iss,
                    sub: id.sub.as_deref(),
                    token: t,
                }))
            }
            _ => spec.key(None),
        };
        let Some(key) = key else {
            return self.credential_failed("no caller token to exchange");
        };
        let caller =
            (spec.source == crate::upstream::credentials::CredentialSource::TokenExchange).then_some(());
        let lease = match spec.begin(&HostStore(self.host), &key, now) {
            crate::upstream::credentials::Begin::Cached(token) => {
                self.host.count("llm_warden.credentials.cache_hit", 1);
                self.set_credential(&spec, &token);
                return CredStep::Ready;
            }
            crate::upstream::credentials::Begin::Backoff { .. } => {
                self.host.count("llm_warden.credentials.backoff", 1);
                return self.credential_failed("token endpoint backing off");
            }
            crate::upstream::credentials::Begin::Wait => {
                self.host.count("llm_warden.credentials.wait", 1);
                let w = Rc::new(RefCell::new(Waiter {
                    context_id: self.context_id,
                    deadline_ms: spec.wait_deadline_ms(now),
                    spec: spec.clone(),
                    key,
                    outcome: None,
                }));
                WAITERS.with(|v| {
                    if let Ok(mut v) = v.try_borrow_mut() {
                        v.push(w.clone());
                    }
                });
                self.waiter = Some(w);
                let _ = self.host.set_tick_period_ms(WAIT_TICK_MS);
                return CredStep::Pending;
            }
            crate::upstream::credentials::Begin::Fetch(lease) => lease,
        };
        self.credential_lease = Some((key, lease));
        let Some(ep) = spec.endpoint.clone() else {
            return self.credential_failed("no token endpoint");
        };
        let subject = if caller.is_some() {
            self.caller_token.clone()
        } else {
            None
        };
        let (headers, body) = spec.token_request(subject.as_deref());
        let authority = ep.authority.clone().unwrap_or_else(|| ep.cluster.clone());
        let mut h: Vec<(&str, &str)> = vec![
            (":method", "POST"),
            (":path", ep.path.as_str()),
            (":authority", authority.as_str()),
        ];
        h.extend(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let timeout = u32::try_from(ep.timeout_ms).unwrap_or(u32::MAX);
        match self
            .host
            .http_call(&ep.cluster, &h, Some(body.as_bytes()), timeout)
        {
            Ok(call) => {
                self.credential_call = Some(call);
                CredStep::Pending
            }
            Err(e) => {
                if let Some((key, lease)) = self.credential_lease.take() {
                    let failed = Err(crate::upstream::credentials::TokenError::Status(None));
                    spec.complete(&HostStore(self.host), &key, lease, &failed, now);
                }
                self.credential_failed(&format!("cannot reach the token endpoint (host status {})", e.0))
            }
        }
    }

    /// Takes over what the root's tick decided for this waiting request.
    fn adopt_waiter(&mut self) {
        let Some(w) = self.waiter.clone() else {
            return;
        };
        let Ok(w) = w.try_borrow() else {
            return;
        };
        let Some(outcome) = w.outcome.clone() else {
            return;
        };
        drop(w);
        self.waiter = None;
        match outcome {
            Ok(token) => {
                self.audit_json = None;
                if let Some(a) = &mut self.audit {
                    a.upstream_sub = crate::upstream::credentials::credential_subject(&token);
                }
                self.scrub = Some(CredentialScrub {
                    needle: token.as_bytes().to_vec(),
                    held: Vec::new(),
                });
                self.publish_audit();
                self.phase = Phase::Forwarded;
            }
            Err(()) => {
                self.audit_json = None;
                if let Some(a) = &mut self.audit {
                    a.decision = AuditDecision::Deny;
                    a.reason = UNAVAILABLE;
                    a.status = 503;
                }
                self.phase = Phase::Replied;
            }
        }
    }

    fn set_credential(&mut self, spec: &crate::upstream::credentials::CredentialSpec, token: &str) {
        let (name, value) = spec.header_value(token);
        let _ = self.host.set_header(HeaderMap::Request, &name, &value);
        // The answer must come back uncompressed, or an echoed credential would pass the scrub.
        let _ = self.host.remove_header(HeaderMap::Request, "accept-encoding");
        self.audit_json = None;
        if let Some(a) = &mut self.audit {
            a.upstream_sub = crate::upstream::credentials::credential_subject(token);
        }
        self.scrub = Some(CredentialScrub {
            needle: token.as_bytes().to_vec(),
            held: Vec::new(),
        });
        self.publish_audit();
    }

    fn credential_failed(&mut self, why: &str) -> CredStep {
        self.host.count("llm_warden.credentials.failed", 1);
        log::warn!("llm-warden: upstream credential unavailable: {why}");
        self.refuse(&crate::upstream::credentials::unavailable_reply(), UNAVAILABLE);
        CredStep::Failed
    }

    fn deny(&mut self, reason: Reason, identity: Option<&Identity>, realm: &str) {
        let reply = denial_reply(reason, realm);
        self.record(now_ms(self.host).unwrap_or(0), reason, reply.status, identity);
        self.send(&reply, reason.code());
    }

    fn send(&mut self, reply: &Reply, code: &str) {
        self.phase = Phase::Replied;
        self.publish_audit();
        send_local(self.host, reply, code);
    }

    fn record(&mut self, now_ms: u64, reason: Reason, status: u16, identity: Option<&Identity>) {
        let path = self.request_header(":path");
        // request_id: Envoy's id (request.id); the header only as the caller's own, apart.
        let record = AuditRecord::new(now_ms, reason, status, identity)
            .with_request(
                property_text(self.host, &["request", "id"]),
                self.request_header(":method"),
                path.as_deref(),
            )
            .with_client_request_id(self.request_header("x-request-id").as_deref());
        self.audit = Some(record);
        self.audit_json = None;
    }

    /// Writes the audit record to filter state (access logs read it there), unless the
    /// record is unchanged since it was last written: the JSON is built once per change.
    fn publish_audit(&mut self) {
        if self.audit_json.is_some() {
            return;
        }
        if let (Some(record), Some(plugin)) = (&self.audit, &self.plugin) {
            let json = record.to_json();
            let _ = self
                .host
                .set_property(&[plugin.settings.audit_key.as_str()], json.as_bytes());
            self.audit_json = Some(json);
        }
    }

    /// Charges the response's token usage to the token limits and exports it (filter state
    /// `<audit key>.usage`... see README) for Envoy's ratelimit filter in global mode.
    fn finish_usage(&mut self, complete: bool) {
        if self.settled {
            return;
        }
        self.settled = true;
        let estimate = self.token_estimate;
        let charge = match &mut self.meter {
            Some(m) => m.charge(&estimate, complete),
            None => usage::Charge::unmetered(&estimate),
        };
        let used = (charge.basis == usage::ChargeBasis::Reported).then_some(charge.tokens);
        if let (Some(plugin), Some(a)) = (self.plugin.clone(), &self.admission) {
            if let (Some(table), Ok(now)) = (&plugin.slots, self.host.now_nanos()) {
                let st = ratelimit::settle_call(table, &HostStore(self.host), now, a, charge.tokens);
                // Reserved versus charged, summed: their ratio shows how good the estimate is.
                if let Some(reserved) = st.tokens_reserved {
                    self.host.count("llm_warden.tokens_reserved", reserved);
                    self.host.count("llm_warden.tokens_charged", st.tokens_charged);
                }
                self.audit_json = None;
                if let Some(rec) = &mut self.audit {
                    rec.tokens_reserved = st.tokens_reserved;
                    rec.tokens_charged = Some(st.tokens_charged);
                }
            }
        }
        if self.meter_usage && used.is_none() && charge.tokens > 0 {
            let _ = self
                .host
                .set_property(&[USAGE_KEY], charge.tokens.to_string().as_bytes());
            self.publish_audit();
        }
        if let Some(n) = used {
            self.host.count("llm_warden.tokens_used", n);
            let _ = self.host.set_property(&[USAGE_KEY], n.to_string().as_bytes());
            self.audit_json = None;
            if let Some(a) = &mut self.audit {
                a.tokens_used = Some(n);
            }
            self.publish_audit();
        }
    }

    /// The redaction of this request's policy, when the call went through.
    fn redaction(&self) -> Option<(Rc<Plugin>, usize)> {
        let plugin = self.plugin.clone()?;
        let idx = self.policy?;
        let passes = self.decision.as_ref().is_some_and(Decision::passes);
        let has = redaction_spec(&plugin, idx).is_some();
        (passes && has && self.phase == Phase::Forwarded).then_some((plugin, idx))
    }

    /// Publishes redaction counts (audit record, metrics) once the body is done.
    fn finish_redactions(&mut self) {
        if self.redactions.is_empty() {
            return;
        }
        let monitor = self
            .redaction()
            .and_then(|(p, i)| redaction_spec(&p, i).map(|r| r.mode))
            == Some(Mode::Monitor);
        for (kind, n) in &self.redactions {
            self.host.count(
                &format!(
                    "llm_warden.redactions.{kind}{}",
                    if monitor { ".monitored" } else { "" }
                ),
                *n,
            );
        }
        self.audit_json = None;
        if let Some(a) = &mut self.audit {
            a.set_redactions(std::mem::take(&mut self.redactions));
        }
        self.publish_audit();
    }

    /// Whether responses must be checked for tool calls the caller may not make.
    fn inspects_tool_calls(&self) -> bool {
        // Through these APIs a model can only call tools the request declared.
        self.declared_tools
            && self.endpoint.has_json_body()
            && self
                .decision
                .as_ref()
                .is_some_and(|d| d.passes() && !d.granted_tools.iter().any(|t| t == "*"))
    }

    fn tool_blocked(&mut self, tool: &str, status: Option<u16>) {
        let monitor = self.decision.as_ref().is_some_and(|d| d.mode == Mode::Monitor);
        self.audit_json = None;
        if let Some(a) = &mut self.audit {
            a.set_text(Text::BlockedTool, Some(tool));
            a.decision = if monitor {
                AuditDecision::WouldDeny
            } else {
                AuditDecision::Deny
            };
            a.reason = "tool_call_blocked";
            if let Some(s) = status.filter(|_| !monitor) {
                a.status = s;
            }
        }
        self.publish_audit();
    }

    /// How the response is inspected, given the controls on this call.
    fn response_plan(
        &self,
        content_type: Option<&str>,
        encoding: Option<&str>,
        format: Option<Format>,
        has_body: bool,
    ) -> Plan {
        let monitor = self.decision.as_ref().is_some_and(|d| d.mode == Mode::Monitor);
        let redaction = self
            .redaction()
            .and_then(|(p, i)| redaction_spec(&p, i).map(|s| (s.mode, s.uninspectable)));
        let controls = response::Controls {
            redaction: redaction.map(|(mode, uninspectable)| response::RedactionControl {
                enforce: mode == Mode::Enforce,
                uninspectable,
            }),
            tool_calls: self.inspects_tool_calls().then_some(!monitor),
            usage: self.meter_usage,
        };
        let mut plan = response::plan(controls, content_type, encoding, has_body);
        if has_body && self.scrub.is_some() && response::is_compressed(encoding) {
            // Compressed bytes cannot be scrubbed of the upstream credential.
            plan = Plan::Withhold(Withheld::Compressed);
        }
        if has_body && plan == Plan::Pass && (self.scrub.is_some() || self.forced_usage) {
            // A credential split across events or escaped in JSON, or the usage chunk the
            // client never asked for: only the parsers see them.
            match format {
                Some(f @ (Format::Sse | Format::Ndjson)) => plan = Plan::Inspect(f),
                Some(Format::Json) if self.scrub.is_some() => plan = Plan::Inspect(Format::Json),
                _ => {}
            }
        }
        if has_body && self.scrub.is_some() && format.is_none() && !is_media(content_type) {
            // Unknown framing (no type, octet-stream...) could carry the credential encoded.
            plan = Plan::Withhold(Withheld::UnknownContentType);
        }
        plan
    }

    /// Acts on the plan at response headers.
    fn start_response(&mut self, plan: Plan) -> Flow {
        match plan {
            Plan::Pass => Flow::Continue,
            Plan::PassUninspected(w) => {
                self.host
                    .count(&format!("llm_warden.responses.uninspected.{}", w.reason()), 1);
                Flow::Continue
            }
            Plan::Withhold(w) => {
                self.withhold_headers(w);
                self.response = ResponseInspection::Withheld(w);
                Flow::Pause
            }
            Plan::AsText(w) => {
                self.host
                    .count(&format!("llm_warden.responses.as_text.{}", w.reason()), 1);
                self.stream_text()
            }
            Plan::Inspect(Format::Text) => self.stream_text(),
            Plan::Inspect(Format::Json) => {
                self.build_credential_detectors();
                self.response = ResponseInspection::Json;
                Flow::Pause
            }
            Plan::Inspect(format @ (Format::Sse | Format::Ndjson)) => {
                // Events are re-framed: the length is no longer known.
                let _ = self.host.remove_header(HeaderMap::Response, "content-length");
                let opts = self.stream_options();
                self.response = ResponseInspection::Stream(if format == Format::Sse {
                    Box::new(SsePipeline::new(opts))
                } else {
                    Box::new(NdjsonPipeline::new(opts))
                });
                Flow::Continue
            }
        }
    }

    fn stream_text(&mut self) -> Flow {
        let _ = self.host.remove_header(HeaderMap::Response, "content-length");
        self.response = ResponseInspection::Text(TextStream::default());
        Flow::Continue
    }

    /// The controls a streamed response passes through; with an upstream credential
    /// attached, the stream's redactor also catches a copy split across events.
    fn stream_options(&mut self) -> StreamOptions {
        let monitor = self.decision.as_ref().is_some_and(|d| d.mode == Mode::Monitor);
        let mode = self
            .plugin
            .as_ref()
            .and_then(|p| p.authz.as_ref())
            .map(|a| a.on_forbidden_tool_call)
            .unwrap_or_default();
        let redaction = self.redaction();
        let spec = redaction.as_ref().and_then(|(p, i)| redaction_spec(p, *i));
        let enforce = spec.map(|s| s.mode == Mode::Enforce);
        self.build_credential_detectors();
        StreamOptions {
            endpoint: self.endpoint,
            tool_calls: self.inspects_tool_calls().then_some((mode, !monitor)),
            redaction: if self.stream_detectors.is_some() {
                Some(true)
            } else {
                enforce
            },
            strip_forced_usage: self.forced_usage,
        }
    }

    /// With an upstream credential attached: the credential as a pattern (caught across
    /// events and behind JSON escapes), plus the policy's detectors when it enforces.
    fn build_credential_detectors(&mut self) {
        let Some(scrub) = &self.scrub else {
            return;
        };
        let redaction = self.redaction();
        let spec = redaction.as_ref().and_then(|(p, i)| redaction_spec(p, *i));
        let (mut detectors, replacement) = match spec {
            Some(spec) if spec.mode == Mode::Enforce => (spec.detectors.clone(), spec.replacement.clone()),
            _ => (
                crate::redact::Detectors {
                    kinds: Vec::new(),
                    custom: Vec::new(),
                },
                crate::redact::Replacement::Tag,
            ),
        };
        let needle = regex_lite::escape(&String::from_utf8_lossy(&scrub.needle));
        if let Ok(regex) = regex_lite::Regex::new(&needle) {
            detectors.custom.push(crate::redact::CustomPattern {
                name: "upstream_credential".into(),
                regex,
                max_runs: 1,
            });
        }
        self.stream_detectors = Some((detectors, replacement));
    }

    /// The response becomes the withheld reply (502, OpenAI-shaped), and the record says why.
    fn withhold_headers(&mut self, w: Withheld) {
        let status = response::WITHHELD_STATUS.to_string();
        let _ = self.host.set_header(HeaderMap::Response, ":status", &status);
        let _ = self
            .host
            .set_header(HeaderMap::Response, "content-type", "application/json");
        let _ = self.host.remove_header(HeaderMap::Response, "content-encoding");
        let _ = self.host.remove_header(HeaderMap::Response, "content-length");
        self.mark_withheld(w, Some(response::WITHHELD_STATUS));
    }

    fn mark_withheld(&mut self, w: Withheld, status: Option<u16>) {
        self.host
            .count(&format!("llm_warden.responses.withheld.{}", w.reason()), 1);
        self.audit_json = None;
        if let Some(a) = &mut self.audit {
            a.withheld = Some(w.reason());
            if let Some(s) = status {
                a.status = s;
            }
        }
        self.publish_audit();
    }

    /// Removes every header (or trailer) of `map` that carries the upstream credential.
    fn scrub_headers(&self, map: HeaderMap, headers: &[(String, String)]) {
        let Some(scrub) = &self.scrub else {
            return;
        };
        for (name, value) in headers {
            if value
                .as_bytes()
                .windows(scrub.needle.len().max(1))
                .any(|w| w == scrub.needle.as_slice())
            {
                let _ = self.host.remove_header(map, name);
            }
        }
    }

    /// Redacts response header (or trailer) values like bodies (the route's detectors and
    /// selection).
    fn redact_headers_of(&mut self, map: HeaderMap, headers: &[(String, String)]) {
        let Some((plugin, idx)) = self.redaction() else {
            return;
        };
        let Some(spec) = redaction_spec(&plugin, idx) else {
            return;
        };
        let mut r = spec.redactor(&mut self.redactions);
        let rewrites = response::redact_headers(headers, &spec.response_headers, &mut r);
        if spec.mode != Mode::Enforce {
            return;
        }
        for rw in rewrites {
            let _ = self.host.remove_header(map, &rw.name);
            for v in &rw.values {
                let _ = self.host.add_header(map, &rw.name, v);
            }
        }
    }

    /// Runs the response's inspection on one (scrubbed) chunk; Some: what to send instead.
    fn inspect_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Option<Vec<u8>> {
        let decision = self.decision.clone()?;
        let monitor = decision.mode == Mode::Monitor;
        let allowed = |t: &str| decision.tool_allowed(t);
        let mode = self
            .plugin
            .as_ref()
            .and_then(|p| p.authz.as_ref())
            .map(|a| a.on_forbidden_tool_call)
            .unwrap_or_default();
        let redaction = self.redaction();
        let spec = redaction.as_ref().and_then(|(p, i)| redaction_spec(p, *i));
        let inspects_tools = self.inspects_tool_calls();
        let endpoint = self.endpoint;
        let mut blocked: Option<(String, Option<u16>)> = None;
        let mut withheld: Option<(Withheld, Option<u16>)> = None;
        let scrubbing = self.stream_detectors.is_some();
        let was_blocked = match &self.response {
            ResponseInspection::Stream(p) => p.blocked().is_some(),
            _ => false,
        };
        let mut redactor = match (&self.stream_detectors, spec) {
            (Some((detectors, replacement)), _) => Some(Redactor {
                detectors,
                replacement,
                counts: &mut self.redactions,
            }),
            (_, Some(spec)) => Some(spec.redactor(&mut self.redactions)),
            _ => None,
        };
        let out = match &mut self.response {
            ResponseInspection::Off | ResponseInspection::Withheld(_) => None,
            ResponseInspection::Json => {
                let verdict = if inspects_tools {
                    tool_calls::check_json(chunk, endpoint, &allowed, mode)
                } else {
                    JsonVerdict::Pass
                };
                // With a credential attached its pattern enforces whatever the policy's mode.
                let control = match (scrubbing, spec) {
                    (true, _) => Some(response::RedactionControl {
                        enforce: true,
                        uninspectable: response::Uninspectable::Withhold,
                    }),
                    (false, Some(spec)) => Some(response::RedactionControl {
                        enforce: spec.mode == Mode::Enforce,
                        uninspectable: spec.uninspectable,
                    }),
                    (false, None) => None,
                };
                match (verdict, control, redactor.as_mut()) {
                    (JsonVerdict::Replace { status, body, tool }, _, _) => {
                        blocked = Some((tool, Some(status)));
                        (!monitor).then(|| {
                            replace_status(self.host, status);
                            body
                        })
                    }
                    (JsonVerdict::Pass, Some(control), Some(r)) => {
                        match response::redact_json_response(chunk, control, r) {
                            BodyOutcome::Unchanged => None,
                            BodyOutcome::Replace(body) => Some(body),
                            BodyOutcome::Withhold(w) => {
                                replace_status(self.host, response::WITHHELD_STATUS);
                                withheld = Some((w, Some(response::WITHHELD_STATUS)));
                                Some(response::withheld_body(w))
                            }
                        }
                    }
                    (JsonVerdict::Pass, _, _) => None,
                }
            }
            ResponseInspection::Stream(p) => {
                let out = p.feed(chunk, end_of_stream, &allowed, redactor.as_mut());
                if !was_blocked {
                    blocked = p.blocked().map(|t| (t.to_string(), None));
                }
                if p.uninspectable() {
                    withheld = Some((Withheld::Unparseable, None));
                }
                Some(out)
            }
            ResponseInspection::Text(stream) => match (spec, redactor.as_mut()) {
                // Text is scrubbed of the credential by bytes; the policy's redaction here.
                (Some(spec), Some(r)) => {
                    let mut out = r.push_bytes(stream, chunk);
                    if end_of_stream {
                        out.push_str(&r.flush(stream));
                    }
                    (spec.mode == Mode::Enforce).then(|| out.into_bytes())
                }
                _ => None,
            },
        };
        let json = matches!(self.response, ResponseInspection::Json);
        if json {
            // Inspected once: trailers after the last chunk do not inspect again.
            self.response = ResponseInspection::Off;
        }
        if let Some((tool, status)) = blocked {
            self.tool_blocked(&tool, status);
        }
        if let Some((w, status)) = withheld {
            if self.audit.as_ref().is_some_and(|a| a.withheld.is_none()) {
                self.mark_withheld(w, status);
            }
        }
        if end_of_stream || json {
            self.finish_redactions();
        }
        out
    }
}

/// Media the raw credential scrub reads as bytes (no framing to hide it behind).
fn is_media(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|t| {
        let t = t.trim_start().to_ascii_lowercase();
        ["audio/", "image/", "video/"].iter().any(|p| t.starts_with(p))
    })
}

/// Turns a held response into a local JSON error (tool call blocked, body withheld).
fn replace_status(h: &'static dyn Host, status: u16) {
    let _ = h.set_header(HeaderMap::Response, ":status", &status.to_string());
    let _ = h.set_header(HeaderMap::Response, "content-type", "application/json");
    let _ = h.remove_header(HeaderMap::Response, "content-encoding");
}

/// Sends a local reply on the effective context (a request stays paused if it fails).
fn send_local(h: &'static dyn Host, reply: &Reply, code: &str) {
    let headers: Vec<(&str, &str)> = reply
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let details = format!("llm_warden_{code}");
    if h.send_local_response(u32::from(reply.status), &details, &headers, reply.body.as_bytes())
        .is_err()
    {
        log::error!("llm-warden: could not send local reply; request stays paused");
    }
}

/// The redaction of a policy of this plugin.
fn redaction_spec(plugin: &Plugin, policy: usize) -> Option<&crate::authz::policy::RedactionSpec> {
    plugin.authz.as_ref()?.policy(policy)?.redaction.as_ref()
}

/// Removes every client-sent header that could pass for one of ours (anti-spoofing) and
/// every bearer credential meant for this proxy, before anything else looks at the request.
fn strip_client_headers(h: &'static dyn Host, prefix: &str, headers: &[(String, String)]) {
    for (name, _) in headers {
        if identity::spoofs_prefix(name, prefix) || identity::proxy_credential(name) {
            let _ = h.remove_header(HeaderMap::Request, name);
        }
    }
}

impl Exchange {
    /// Every rule's verdict at the last decision (only when the root explains).
    pub fn rule_traces(&self) -> Option<&[crate::authz::policy::RuleTrace]> {
        self.rule_traces.as_deref()
    }

    /// The answer to an outgoing call this exchange made.
    pub fn on_call_response(&mut self, token_id: u32, body_size: usize) {
        if let Some((call, key)) = self.classifier_call {
            if call == token_id {
                self.classifier_call = None;
                let (status, body) = read_fetch_response(self.host, body_size, classifier::MAX_ANSWER_BYTES);
                self.on_classifier_answer(key, status, body);
                return;
            }
        }
        if self.credential_call == Some(token_id) {
            self.credential_call = None;
            let (status, body) = read_fetch_response(self.host, body_size, 64 * 1024);
            let parsed =
                crate::upstream::credentials::parse_token_answer(status, body.as_deref().unwrap_or_default());
            let spec = self.plugin.clone().and_then(|p| {
                self.policy
                    .and_then(|i| p.authz.as_ref()?.policy(i)?.credentials.clone())
            });
            let now = now_ms(self.host).unwrap_or(0);
            if let (Some((key, lease)), Some(spec)) = (self.credential_lease.take(), &spec) {
                spec.complete(&HostStore(self.host), &key, lease, &parsed, now);
            }
            match (parsed, spec) {
                (Ok(answer), Some(spec)) => {
                    self.host.count("llm_warden.credentials.exchange_ok", 1);
                    if answer.short_lived {
                        self.host.count("llm_warden.credentials.short_lifetime", 1);
                    }
                    self.set_credential(&spec, &answer.token);
                    if self.phase == Phase::AwaitingCredential {
                        self.phase = Phase::Forwarded;
                        let _ = self.host.resume_http_request();
                    }
                }
                (Err(why), _) => {
                    self.host.count(why.metric(), 1);
                    self.credential_failed(&why.to_string());
                }
                (Ok(_), None) => {
                    self.credential_failed("policy changed");
                }
            }
            return;
        }
        let Some((call, issuer)) = self.pending.take() else {
            return;
        };
        if call != token_id {
            return;
        }
        if let Some(plugin) = self.plugin.clone() {
            if let Ok(mut auth) = plugin.auth.try_borrow_mut() {
                let max = auth.remote(issuer).map_or(0, |r| r.source.max_bytes);
                let (status, body) = read_fetch_response(self.host, body_size, max);
                let now = now_ms(self.host).unwrap_or(0) / 1000;
                let result = auth.on_fetch(issuer, now, &HostStore(self.host), status, body.as_deref());
                log_fetch(self.host, &auth, issuer, &result);
            }
        }
        match self.start(false) {
            Flow::Continue => {
                let _ = self.host.resume_http_request();
            }
            // The body arrived while we waited for keys.
            _ if self.phase == Phase::AwaitingBody && self.body_complete && self.authorize_body() => {
                let _ = self.host.resume_http_request();
            }
            _ => {}
        }
    }
}

impl Exchange {
    pub fn on_request_headers(&mut self, end_of_stream: bool) -> Flow {
        self.request_ended = end_of_stream;
        self.request_headers = self.host.get_headers(HeaderMap::Request).unwrap_or_default();
        self.start(true)
    }

    pub fn on_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Flow {
        self.adopt_waiter();
        self.body_size = body_size;
        self.body_complete |= end_of_stream;
        match self.phase {
            // Never let body data pass before the request is decided.
            Phase::Start
            | Phase::AwaitingKeys
            | Phase::AwaitingCredential
            | Phase::AwaitingClassifier
            | Phase::Replied => Flow::Pause,
            Phase::AwaitingBody => {
                let max = self
                    .plugin
                    .as_ref()
                    .and_then(|p| p.authz.as_ref())
                    .map_or(0, |a| a.body_max_bytes);
                if body_size > max {
                    self.problem(RequestProblem::TooLarge(max));
                    return Flow::Pause;
                }
                if !end_of_stream {
                    return Flow::Pause;
                }
                if self.authorize_body() {
                    Flow::Continue
                } else {
                    Flow::Pause
                }
            }
            Phase::Forwarded => Flow::Continue,
        }
    }

    pub fn on_response_headers(&mut self, end_of_stream: bool) -> Flow {
        self.adopt_waiter();
        if self.phase != Phase::Forwarded {
            return Flow::Continue;
        }
        // Read once, in one hostcall; what is removed below is never looked up again.
        let headers = self.host.get_headers(HeaderMap::Response).unwrap_or_default();
        let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        if self.scrub.is_some() {
            // Never hand the upstream credential back, not even in a response header.
            self.scrub_headers(HeaderMap::Response, &headers);
            let _ = self.host.remove_header(HeaderMap::Response, "content-length");
        }
        let status = header(":status").and_then(|s| s.parse::<u16>().ok());
        self.audit_json = None;
        if let (Some(record), Some(code)) = (&mut self.audit, status) {
            if record.decision != AuditDecision::Deny {
                record.status = code;
            }
        }
        self.publish_audit();
        if let Some(a) = &self.admission {
            for (name, value) in ratelimit::headers(a) {
                let _ = self.host.set_header(HeaderMap::Response, &name, &value);
            }
        }
        let ctype = header("content-type");
        let encoding = header("content-encoding");
        let compressed = response::is_compressed(encoding);
        let format = response::format_of(ctype);
        if self.meter_usage && self.endpoint.has_json_body() && !compressed {
            // Usage is read as the response passes (never held): token limits and export.
            self.meter = Some(UsageMeter::new(format == Some(Format::Sse)));
        }
        if end_of_stream {
            self.finish_usage(true);
        }
        self.redact_headers_of(HeaderMap::Response, &headers);
        if end_of_stream {
            self.finish_redactions();
        }
        let head = self
            .request_header(":method")
            .is_some_and(|m| m.eq_ignore_ascii_case("HEAD"));
        let has_body = !end_of_stream && !head && !matches!(status, Some(204 | 304));
        let plan = self.response_plan(ctype, encoding, format, has_body);
        self.start_response(plan)
    }

    pub fn on_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Flow {
        self.response_body_size = body_size;
        self.response_body(body_size, end_of_stream)
    }

    pub fn on_request_trailers(&mut self) -> Flow {
        self.adopt_waiter();
        // Trailers end the request body (its last data callback said "more to come"): a held
        // request is decided now, and nothing passes before its decision is final.
        self.body_complete = true;
        let go = match self.phase {
            Phase::Forwarded => true,
            Phase::AwaitingBody => self.authorize_body(),
            Phase::Start
            | Phase::AwaitingKeys
            | Phase::AwaitingCredential
            | Phase::AwaitingClassifier
            | Phase::Replied => false,
        };
        if go {
            Flow::Continue
        } else {
            Flow::Pause
        }
    }

    pub fn on_response_trailers(&mut self) -> Flow {
        if self.phase == Phase::Forwarded {
            // Trailers are headers too: the credential never goes back, values are redacted.
            let trailers = self
                .host
                .get_headers(HeaderMap::ResponseTrailers)
                .unwrap_or_default();
            self.scrub_headers(HeaderMap::ResponseTrailers, &trailers);
            self.redact_headers_of(HeaderMap::ResponseTrailers, &trailers);
        }
        // Trailers end a held response: inspect the buffered body now, before anything of it
        // (or the trailers) reaches the client. Streamed inspections keep their held-back
        // tail (it is withheld, never sent unchecked).
        if matches!(
            self.response,
            ResponseInspection::Json | ResponseInspection::Withheld(_)
        ) {
            let _ = self.response_body(self.response_body_size, true);
        }
        Flow::Continue
    }

    pub fn on_log(&mut self) {
        self.adopt_waiter();
        if let Some(w) = self.waiter.take() {
            WAITERS.with(|v| {
                if let Ok(mut v) = v.try_borrow_mut() {
                    v.retain(|x| !Rc::ptr_eq(x, &w));
                }
            });
        }
        if let (Some((key, lease)), Some(spec)) = (
            self.credential_lease.take(),
            self.plugin.clone().and_then(|p| {
                self.policy
                    .and_then(|i| p.authz.as_ref()?.policy(i)?.credentials.clone())
            }),
        ) {
            spec.abandon(&HostStore(self.host), &key, lease);
        }
        self.log_call();
    }
}

impl Exchange {
    fn response_body(&mut self, body_size: usize, end_of_stream: bool) -> Flow {
        match (&self.response, end_of_stream) {
            (ResponseInspection::Withheld(_), false) => {
                // Nothing of it is kept or sent: the reply replaces it at the end.
                let _ = self.host.set_buffer(Buffer::ResponseBody, 0, body_size, b"");
                return Flow::Pause;
            }
            (ResponseInspection::Withheld(w), true) => {
                let body = response::withheld_body(*w);
                let _ = self.host.set_buffer(Buffer::ResponseBody, 0, body_size, &body);
                let _ = self
                    .host
                    .set_header(HeaderMap::Response, "content-length", &body.len().to_string());
                self.response = ResponseInspection::Off;
                self.finish_usage(true);
                return Flow::Continue;
            }
            // A held body is re-delivered whole each time: look at it once, at the end.
            (ResponseInspection::Json, false) => return Flow::Pause,
            _ => {}
        }
        let held = matches!(self.response, ResponseInspection::Json);
        // Read once; every stage works on these bytes, written back once if changed.
        let original = self
            .host
            .get_buffer(Buffer::ResponseBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
        let mut chunk = std::borrow::Cow::Borrowed(original.as_slice());
        // The upstream credential is removed first, from whatever comes back.
        if let Some(scrub) = &mut self.scrub {
            let out = if held {
                CredentialScrub {
                    needle: scrub.needle.clone(),
                    held: Vec::new(),
                }
                .feed(&chunk, true)
            } else {
                scrub.feed(&chunk, end_of_stream)
            };
            if out.as_slice() != chunk.as_ref() {
                chunk = std::borrow::Cow::Owned(out);
            }
        }
        if let Some(m) = &mut self.meter {
            m.feed(&chunk);
        }
        if end_of_stream {
            self.finish_usage(true);
        }
        if let Some(out) = self.inspect_chunk(&chunk, end_of_stream) {
            chunk = std::borrow::Cow::Owned(out);
        }
        if chunk.as_ref() != original.as_slice() {
            let _ = self.host.set_buffer(Buffer::ResponseBody, 0, body_size, &chunk);
            if held {
                let _ = self
                    .host
                    .set_header(HeaderMap::Response, "content-length", &chunk.len().to_string());
            }
        }
        Flow::Continue
    }

    /// The client left while its request was held: nothing went upstream, and the record
    /// says so (with what was known by then).
    fn abandoned(&mut self) {
        if self.audit.is_none() {
            let identity = self.identity.clone();
            self.record(now_ms(self.host).unwrap_or(0), Reason::Ok, 0, identity.as_deref());
        }
        self.audit_json = None;
        if let Some(a) = &mut self.audit {
            a.decision = AuditDecision::Abandoned;
            a.reason = "client_gone";
            a.status = 0;
        }
    }

    fn log_call(&mut self) {
        // A stream that ended early still settles what it used.
        if self.admission.is_some() || self.meter_usage {
            self.finish_usage(false);
        }
        if matches!(
            self.phase,
            Phase::Start
                | Phase::AwaitingKeys
                | Phase::AwaitingBody
                | Phase::AwaitingCredential
                | Phase::AwaitingClassifier
        ) {
            self.abandoned();
        }
        let Some(plugin) = &self.plugin else {
            return;
        };
        if let Some(record) = &self.audit {
            self.host.count(
                &format!("llm_warden.calls.{}.{}", record.decision.as_str(), record.reason),
                1,
            );
            if plugin.settings.audit_log {
                match &self.audit_json {
                    Some(json) => log::info!("{LOG_PREFIX}{json}"),
                    None => log::info!("{LOG_PREFIX}{}", record.to_json()),
                }
            }
        }
    }
}
