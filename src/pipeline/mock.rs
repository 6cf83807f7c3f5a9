//! An in-memory host for native tests of whole exchanges: per-context headers and bodies,
//! shared data with Envoy's CAS contract, counters, outgoing calls, local replies, a clock.

use super::host::{Buffer, HeaderMap, Host, HostError, R, STATUS_CAS_MISMATCH};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// Header pairs as the proxy holds them.
pub type Headers = Vec<(String, String)>;

/// What one exchange (context) has in the proxy.
#[derive(Debug, Default, Clone)]
pub struct Stream {
    pub request_headers: Vec<(String, String)>,
    pub request_body: Vec<u8>,
    pub response_headers: Vec<(String, String)>,
    pub response_trailers: Vec<(String, String)>,
    pub response_body: Vec<u8>,
    /// A local reply sent on this context: (status, headers, body).
    pub reply: Option<(u32, Headers, String)>,
    /// Times the held request was resumed.
    pub resumed: u32,
    /// Filter state written: path joined with '.' -> value.
    pub properties: HashMap<String, Vec<u8>>,
}

/// An outgoing call the pipeline started.
#[derive(Debug, Clone)]
pub struct Call {
    pub id: u32,
    pub context: u32,
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

#[derive(Default)]
pub struct MockHost {
    pub now_ns: Cell<u64>,
    pub context: Cell<u32>,
    pub streams: RefCell<HashMap<u32, Stream>>,
    /// Read-only properties (e.g. `source.address`), path joined with '.'.
    pub inputs: RefCell<HashMap<String, Vec<u8>>>,
    pub plugin_config: RefCell<Vec<u8>>,
    pub shared: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    pub counters: RefCell<HashMap<String, u64>>,
    pub calls: RefCell<Vec<Call>>,
    /// The answer to the call being delivered: headers and body.
    pub call_answer: RefCell<(Headers, Vec<u8>)>,
    pub tick_ms: Cell<u32>,
    next_call: Cell<u32>,
    next_cas: Cell<u32>,
}

fn lower(name: &str) -> String {
    name.to_ascii_lowercase()
}

impl MockHost {
    /// A host that lives for the test process (the pipeline holds `&'static dyn Host`).
    pub fn leaked(now_s: u64) -> &'static MockHost {
        let h: &'static MockHost = Box::leak(Box::default());
        h.now_ns.set(now_s.saturating_mul(1_000_000_000));
        h
    }

    pub fn stream(&self, context: u32) -> Stream {
        self.streams.borrow().get(&context).cloned().unwrap_or_default()
    }

    pub fn with_stream<T>(&self, f: impl FnOnce(&mut Stream) -> T) -> T {
        let mut streams = self.streams.borrow_mut();
        f(streams.entry(self.context.get()).or_default())
    }

    pub fn counter(&self, name: &str) -> u64 {
        self.counters.borrow().get(name).copied().unwrap_or(0)
    }

    fn headers_of(s: &mut Stream, map: HeaderMap, f: impl FnOnce(&mut Vec<(String, String)>)) {
        match map {
            HeaderMap::Request => f(&mut s.request_headers),
            HeaderMap::Response => f(&mut s.response_headers),
            HeaderMap::ResponseTrailers => f(&mut s.response_trailers),
            HeaderMap::CallResponse => {}
        }
    }
}

impl Host for MockHost {
    fn now_nanos(&self) -> R<u64> {
        Ok(self.now_ns.get())
    }
    fn set_tick_period_ms(&self, ms: u32) -> R<()> {
        self.tick_ms.set(ms);
        Ok(())
    }
    fn get_buffer(&self, buffer: Buffer, start: usize, max: usize) -> R<Option<Vec<u8>>> {
        let all = match buffer {
            Buffer::PluginConfig => self.plugin_config.borrow().clone(),
            Buffer::CallResponseBody => self.call_answer.borrow().1.clone(),
            Buffer::RequestBody => self.with_stream(|s| s.request_body.clone()),
            Buffer::ResponseBody => self.with_stream(|s| s.response_body.clone()),
        };
        let end = start.saturating_add(max).min(all.len());
        Ok(all.get(start.min(end)..end).map(<[u8]>::to_vec))
    }
    fn set_buffer(&self, buffer: Buffer, start: usize, size: usize, data: &[u8]) -> R<()> {
        self.with_stream(|s| {
            let b = match buffer {
                Buffer::RequestBody => &mut s.request_body,
                Buffer::ResponseBody => &mut s.response_body,
                _ => return Err(HostError(2)),
            };
            let start = start.min(b.len());
            let end = start.saturating_add(size).min(b.len());
            b.splice(start..end, data.iter().copied());
            Ok(())
        })
    }
    fn get_header(&self, map: HeaderMap, name: &str) -> R<Option<String>> {
        Ok(self
            .get_headers(map)?
            .into_iter()
            .find(|(k, _)| *k == lower(name))
            .map(|(_, v)| v))
    }
    fn get_headers(&self, map: HeaderMap) -> R<Vec<(String, String)>> {
        if map == HeaderMap::CallResponse {
            return Ok(self.call_answer.borrow().0.clone());
        }
        Ok(self.with_stream(|s| {
            let mut out = Vec::new();
            MockHost::headers_of(s, map, |h| out = h.clone());
            out
        }))
    }
    fn set_header(&self, map: HeaderMap, name: &str, value: &str) -> R<()> {
        self.with_stream(|s| {
            MockHost::headers_of(s, map, |h| {
                h.retain(|(k, _)| *k != lower(name));
                h.push((lower(name), value.to_string()));
            })
        });
        Ok(())
    }
    fn add_header(&self, map: HeaderMap, name: &str, value: &str) -> R<()> {
        self.with_stream(|s| MockHost::headers_of(s, map, |h| h.push((lower(name), value.to_string()))));
        Ok(())
    }
    fn remove_header(&self, map: HeaderMap, name: &str) -> R<()> {
        self.with_stream(|s| MockHost::headers_of(s, map, |h| h.retain(|(k, _)| *k != lower(name))));
        Ok(())
    }
    fn get_property(&self, path: &[&str]) -> R<Option<Vec<u8>>> {
        let key = path.join(".");
        if let Some(v) = self.inputs.borrow().get(&key) {
            return Ok(Some(v.clone()));
        }
        Ok(self.with_stream(|s| s.properties.get(&key).cloned()))
    }
    fn set_property(&self, path: &[&str], value: &[u8]) -> R<()> {
        self.with_stream(|s| s.properties.insert(path.join("."), value.to_vec()));
        Ok(())
    }
    fn get_shared_data(&self, key: &str) -> R<Option<(Vec<u8>, u32)>> {
        Ok(self.shared.borrow().get(key).cloned())
    }
    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> R<()> {
        let mut d = self.shared.borrow_mut();
        // Envoy: a CAS only guards an existing key.
        if let Some((_, current)) = d.get(key) {
            if cas != 0 && cas != *current {
                return Err(HostError(STATUS_CAS_MISMATCH));
            }
        }
        self.next_cas.set(self.next_cas.get() + 1);
        d.insert(key.to_string(), (value.to_vec(), self.next_cas.get()));
        Ok(())
    }
    fn count(&self, name: &str, by: u64) {
        *self.counters.borrow_mut().entry(name.to_string()).or_default() += by;
    }
    fn gauge(&self, name: &str, value: u64) {
        self.counters.borrow_mut().insert(name.to_string(), value);
    }
    fn set_effective_context(&self, context_id: u32) -> R<()> {
        self.context.set(context_id);
        Ok(())
    }
    fn resume_http_request(&self) -> R<()> {
        self.with_stream(|s| s.resumed += 1);
        Ok(())
    }
    fn send_local_response(
        &self,
        status: u32,
        _details: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> R<()> {
        let headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let body = String::from_utf8_lossy(body).into_owned();
        self.with_stream(|s| s.reply = Some((status, headers, body)));
        Ok(())
    }
    fn http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        _timeout_ms: u32,
    ) -> R<u32> {
        let id = self.next_call.get() + 1;
        self.next_call.set(id);
        self.calls.borrow_mut().push(Call {
            id,
            context: self.context.get(),
            cluster: cluster.to_string(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.map(<[u8]>::to_vec),
        });
        Ok(id)
    }
}
