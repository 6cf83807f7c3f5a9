//! The thin proxy-wasm shim: turns Envoy callbacks into calls of the host-free core.
//! All hostcalls go through `abi`, which never panics.

mod abi;

use crate::audit::{AuditRecord, LOG_PREFIX};
use crate::auth::{Authenticator, Verdict};
use crate::claims::Identity;
use crate::config::Config;
use crate::host::{Clock, DispatchError, HttpCaller, SharedStore, StoreWrite};
use crate::identity::identity_headers;
use crate::jwks::FetchResult;
use crate::reason::{denial_reply, Reason};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

proxy_wasm::main! {{
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(WardenRoot::default()) });
}}

/// Forwards the `log` facade to `proxy_log`, ignoring failures (the SDK's logger unwraps).
struct HostLogger;
static LOGGER: HostLogger = HostLogger;

impl log::Log for HostLogger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        // proxy-wasm LogLevel: trace 0, debug 1, info 2, warn 3, error 4.
        let level = match record.level() {
            log::Level::Trace => 0,
            log::Level::Debug => 1,
            log::Level::Info => 2,
            log::Level::Warn => 3,
            log::Level::Error => 4,
        };
        abi::log(level, &record.args().to_string());
    }
    fn flush(&self) {}
}

struct HostStore;

impl SharedStore for HostStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        abi::get_shared_data(key).ok().flatten()
    }
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> StoreWrite {
        match abi::set_shared_data(key, value, cas.unwrap_or(0)) {
            Ok(()) => StoreWrite::Written,
            Err(abi::HostError(abi::STATUS_CAS_MISMATCH)) => StoreWrite::CasMismatch,
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
}

struct Plugin {
    auth: RefCell<Authenticator>,
    settings: Settings,
}

#[derive(Default)]
struct WardenRoot {
    plugin: Option<Rc<Plugin>>,
    /// In-flight periodic JWKS fetches: call id -> issuer index.
    fetches: HashMap<u32, usize>,
}

const TICK_MS: u32 = 1000;

impl WardenRoot {
    fn configure(&mut self) -> Result<(), String> {
        let bytes = abi::get_buffer(abi::BUFFER_PLUGIN_CONFIGURATION, 0, usize::MAX)
            .map_err(|e| format!("cannot read plugin configuration (host status {})", e.0))?
            .unwrap_or_default();
        if bytes.is_empty() {
            return Err("plugin configuration is empty; see README for the format".into());
        }
        let config = Config::parse(&bytes).map_err(|e| e.to_string())?;
        let auth = Authenticator::new(&config).map_err(|e| e.to_string())?;
        let remote = auth
            .issuers
            .iter()
            .any(|i| matches!(i.keys, crate::auth::KeySource::Remote(_)));
        self.plugin = Some(Rc::new(Plugin {
            auth: RefCell::new(auth),
            settings: Settings {
                identity_prefix: config.identity_headers.prefix.clone(),
                token_header: config.token.header.clone(),
                forward_token: config.token.forward,
                audit_log: config.audit.log,
                audit_key: config.audit.filter_state_key.clone(),
                realm: config.realm.clone(),
            },
        }));
        if remote {
            abi::set_tick_period_ms(TICK_MS)
                .map_err(|e| format!("cannot set tick period (host status {})", e.0))?;
        }
        Ok(())
    }
}

impl Context for WardenRoot {
    fn on_http_call_response(&mut self, token_id: u32, _: usize, body_size: usize, _: usize) {
        let Some(issuer) = self.fetches.remove(&token_id) else {
            return;
        };
        let Some(plugin) = &self.plugin else {
            return;
        };
        let Ok(mut auth) = plugin.auth.try_borrow_mut() else {
            return;
        };
        let (status, body) =
            read_fetch_response(body_size, auth.remote(issuer).map_or(0, |r| r.source.max_bytes));
        let now = now_ms().unwrap_or(0) / 1000;
        let result = auth.on_fetch(issuer, now, &HostStore, status, body.as_deref());
        log_fetch(&auth, issuer, &result);
    }
}

impl RootContext for WardenRoot {
    fn on_configure(&mut self, _: usize) -> bool {
        match self.configure() {
            Ok(()) => true,
            Err(message) => {
                log::error!("llm-warden: invalid configuration: {message}");
                false
            }
        }
    }

    fn on_tick(&mut self) {
        let Some(plugin) = self.plugin.clone() else {
            return;
        };
        let Some(now) = now_ms().map(|m| m / 1000) else {
            return;
        };
        let Ok(mut auth) = plugin.auth.try_borrow_mut() else {
            return;
        };
        for issuer in auth.tick(now, &HostStore) {
            match dispatch_fetch(&auth, issuer) {
                Ok(call) => {
                    self.fetches.insert(call, issuer);
                }
                Err(()) => {
                    let result = auth.on_fetch(issuer, now, &HostStore, None, None);
                    log_fetch(&auth, issuer, &result);
                }
            }
        }
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        // Must never return None (the SDK panics); an unconfigured plugin denies everything.
        Some(Box::new(WardenHttp {
            plugin: self.plugin.clone(),
            audit: None,
            pending: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct HostHttp;

impl HttpCaller for HostHttp {
    fn get(&self, cluster: &str, authority: &str, path: &str, timeout_ms: u64) -> Result<u32, DispatchError> {
        let headers = [
            (":method", "GET"),
            (":path", path),
            (":authority", authority),
            ("accept", "application/json"),
        ];
        let timeout = u32::try_from(timeout_ms).unwrap_or(u32::MAX);
        abi::http_call(cluster, &headers, timeout).map_err(|e| DispatchError(e.0))
    }
}

struct HostClock;

impl Clock for HostClock {
    fn now_unix_secs(&self) -> u64 {
        self.now_unix_millis() / 1000
    }
    /// 0 when the host cannot tell the time; callers treat that as "cannot decide".
    fn now_unix_millis(&self) -> u64 {
        abi::now_nanos().map_or(0, |n| n / 1_000_000)
    }
}

fn now_ms() -> Option<u64> {
    Some(HostClock.now_unix_millis()).filter(|ms| *ms > 0)
}

fn dispatch_fetch(auth: &Authenticator, issuer: usize) -> Result<u32, ()> {
    auth.dispatch_fetch(issuer, &HostHttp).map_err(|e| {
        let cluster = auth.remote(issuer).map_or("?", |r| r.source.cluster.as_str());
        log::warn!(
            "llm-warden: cannot dispatch JWKS fetch to cluster {cluster:?} (host status {})",
            e.0
        );
    })
}

fn read_fetch_response(body_size: usize, max_bytes: usize) -> (Option<u16>, Option<Vec<u8>>) {
    let status = abi::get_header(abi::MAP_HTTP_CALL_RESPONSE_HEADERS, ":status")
        .ok()
        .flatten()
        .and_then(|s| s.parse::<u16>().ok());
    // Read at most one byte past the limit: enough to know it is too large.
    let want = body_size.min(max_bytes.saturating_add(1));
    let body = if want == 0 {
        Some(Vec::new())
    } else {
        abi::get_buffer(abi::BUFFER_HTTP_CALL_RESPONSE_BODY, 0, want)
            .ok()
            .flatten()
    };
    (status, body)
}

fn log_fetch(auth: &Authenticator, issuer: usize, result: &FetchResult) {
    let name = auth.issuers.get(issuer).map_or("?", |i| i.name.as_str());
    match result {
        FetchResult::Updated { keys, skipped } => {
            log::info!("llm-warden: JWKS for issuer {name:?} updated: {keys} keys ({skipped} skipped)")
        }
        FetchResult::Rejected(why) => {
            log::warn!("llm-warden: JWKS fetch for issuer {name:?} failed, keeping last good keys: {why}")
        }
    }
}

struct WardenHttp {
    plugin: Option<Rc<Plugin>>,
    audit: Option<AuditRecord>,
    /// A JWKS fetch this request waits for: (call id, issuer index).
    pending: Option<(u32, usize)>,
}

impl WardenHttp {
    /// Runs authentication and acts on the verdict. Returns the action for the current
    /// callback; `resume` says whether a paused request must be resumed on Allow.
    fn decide(&mut self, may_fetch: bool, resume: bool) -> Action {
        let Some(plugin) = self.plugin.clone() else {
            // on_configure failed for this root: nothing is let through.
            self.deny(Reason::JwksUnavailable, None, "llm-warden");
            return Action::Pause;
        };
        let s = &plugin.settings;
        strip_identity_headers(&s.identity_prefix);
        let Some(now_ms) = now_ms() else {
            self.deny(Reason::JwksUnavailable, None, &s.realm);
            return Action::Pause;
        };
        let header = abi::get_header(abi::MAP_HTTP_REQUEST_HEADERS, &s.token_header)
            .ok()
            .flatten();
        let verdict = match plugin.auth.try_borrow_mut() {
            Ok(mut auth) => {
                let v = auth.authenticate(header.as_deref(), now_ms / 1000, &HostStore, may_fetch);
                if let Verdict::Fetch { issuer } = v {
                    match dispatch_fetch(&auth, issuer) {
                        Ok(call) => {
                            self.pending = Some((call, issuer));
                            return Action::Pause;
                        }
                        Err(()) => {
                            let result = auth.on_fetch(issuer, now_ms / 1000, &HostStore, None, None);
                            log_fetch(&auth, issuer, &result);
                            auth.authenticate(header.as_deref(), now_ms / 1000, &HostStore, false)
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
        drop(header);
        match verdict {
            Verdict::Allow(identity) => {
                if !s.forward_token {
                    let _ = abi::remove_header(abi::MAP_HTTP_REQUEST_HEADERS, &s.token_header);
                }
                for (name, value) in identity_headers(&s.identity_prefix, &identity) {
                    if abi::set_header(abi::MAP_HTTP_REQUEST_HEADERS, &name, &value).is_err() {
                        // Forwarding without the identity the upstream relies on is not safe.
                        self.deny(Reason::JwksUnavailable, Some(&identity), &s.realm);
                        return Action::Pause;
                    }
                }
                self.record(now_ms, Reason::Ok, 200, Some(&identity), s);
                if resume {
                    let _ = abi::resume_http_request();
                }
                Action::Continue
            }
            Verdict::Deny { reason, identity } => {
                self.deny(reason, identity.as_deref(), &s.realm);
                Action::Pause
            }
            // Only returned with may_fetch; handled above.
            Verdict::Fetch { .. } => {
                self.deny(Reason::JwksUnavailable, None, &s.realm);
                Action::Pause
            }
        }
    }

    fn deny(&mut self, reason: Reason, identity: Option<&Identity>, realm: &str) {
        let reply = denial_reply(reason, realm);
        if let Some(plugin) = self.plugin.clone() {
            self.record(
                now_ms().unwrap_or(0),
                reason,
                reply.status,
                identity,
                &plugin.settings,
            );
        }
        let headers: Vec<(&str, &str)> = reply
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let details = format!("llm_warden_{}", reason.code());
        if abi::send_local_response(u32::from(reply.status), &details, &headers, reply.body.as_bytes())
            .is_err()
        {
            log::error!("llm-warden: could not send local reply; request stays paused");
        }
    }

    fn record(
        &mut self,
        now_ms: u64,
        reason: Reason,
        status: u16,
        identity: Option<&Identity>,
        s: &Settings,
    ) {
        let text = |path: &[&str]| {
            abi::get_property(path)
                .ok()
                .flatten()
                .and_then(|b| String::from_utf8(b).ok())
        };
        let path = abi::get_header(abi::MAP_HTTP_REQUEST_HEADERS, ":path")
            .ok()
            .flatten();
        let record = AuditRecord::new(now_ms, reason, status, identity).with_request(
            text(&["request", "id"]),
            abi::get_header(abi::MAP_HTTP_REQUEST_HEADERS, ":method")
                .ok()
                .flatten(),
            path.as_deref(),
        );
        let _ = abi::set_property(&[s.audit_key.as_str()], record.to_json().as_bytes());
        self.audit = Some(record);
    }
}

/// Removes every client-sent header carrying our identity prefix (anti-spoofing).
fn strip_identity_headers(prefix: &str) {
    if let Ok(names) = abi::get_header_names(abi::MAP_HTTP_REQUEST_HEADERS) {
        for name in names {
            if name.to_ascii_lowercase().starts_with(prefix) {
                let _ = abi::remove_header(abi::MAP_HTTP_REQUEST_HEADERS, &name);
            }
        }
    }
}

impl Context for WardenHttp {
    fn on_http_call_response(&mut self, token_id: u32, _: usize, body_size: usize, _: usize) {
        let Some((call, issuer)) = self.pending.take() else {
            return;
        };
        if call != token_id {
            return;
        }
        if let Some(plugin) = self.plugin.clone() {
            if let Ok(mut auth) = plugin.auth.try_borrow_mut() {
                let max = auth.remote(issuer).map_or(0, |r| r.source.max_bytes);
                let (status, body) = read_fetch_response(body_size, max);
                let now = now_ms().unwrap_or(0) / 1000;
                let result = auth.on_fetch(issuer, now, &HostStore, status, body.as_deref());
                log_fetch(&auth, issuer, &result);
            }
        }
        self.decide(false, true);
    }
}

impl HttpContext for WardenHttp {
    fn on_log(&mut self) {
        let Some(plugin) = &self.plugin else {
            return;
        };
        if let Some(record) = &self.audit {
            if plugin.settings.audit_log {
                log::info!("{LOG_PREFIX}{}", record.to_json());
            }
        }
    }

    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        self.decide(true, false)
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        // The record of an allowed call carries the upstream's status.
        if let (Some(record), Some(plugin)) = (&mut self.audit, &self.plugin) {
            if record.decision == "allow" {
                if let Some(code) = abi::get_header(abi::MAP_HTTP_RESPONSE_HEADERS, ":status")
                    .ok()
                    .flatten()
                    .and_then(|s| s.parse::<u16>().ok())
                {
                    record.status = code;
                    let _ =
                        abi::set_property(&[plugin.settings.audit_key.as_str()], record.to_json().as_bytes());
                }
            }
        }
        Action::Continue
    }
}
