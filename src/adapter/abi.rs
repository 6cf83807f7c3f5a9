//! Non-panicking proxy-wasm hostcalls.
//!
//! The SDK's `hostcalls` module panics on any status it did not expect, and a panic traps
//! the VM (Envoy then fails every request until reload). These wrappers call the same ABI
//! imports, take the status as a plain `u32` (an unknown value cannot become an invalid
//! enum), and return `Result`s the adapter turns into fail-closed decisions.

use std::ptr::null_mut;

pub const STATUS_OK: u32 = 0;
pub const STATUS_NOT_FOUND: u32 = 1;

// BufferType values of ABI 0.2.1.
pub const BUFFER_HTTP_REQUEST_BODY: u32 = 0;
pub const BUFFER_HTTP_RESPONSE_BODY: u32 = 1;
pub const BUFFER_HTTP_CALL_RESPONSE_BODY: u32 = 4;
pub const BUFFER_PLUGIN_CONFIGURATION: u32 = 7;
// MapType values of ABI 0.2.1.
pub const MAP_HTTP_REQUEST_HEADERS: u32 = 0;
pub const MAP_HTTP_RESPONSE_HEADERS: u32 = 2;
pub const MAP_HTTP_RESPONSE_TRAILERS: u32 = 3;
pub const MAP_HTTP_CALL_RESPONSE_HEADERS: u32 = 6;
// StreamType::HttpRequest.
const STREAM_HTTP_REQUEST: u32 = 0;

pub use crate::pipeline::{HostError, R};

extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_set_buffer_bytes(
        buffer_type: u32,
        start: usize,
        size: usize,
        buffer_data: *const u8,
        buffer_size: usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_add_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_continue_stream(stream_type: u32) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
}

fn check(status: u32) -> R<()> {
    if status == STATUS_OK {
        Ok(())
    } else {
        Err(HostError(status))
    }
}

/// Takes ownership of a host-returned buffer (allocated through the SDK's exported
/// `proxy_on_memory_allocate`, i.e. our own allocator).
///
/// # Safety
/// `data`/`size` must come from a successful hostcall that returned a buffer.
unsafe fn take(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() || size == 0 {
        return Vec::new();
    }
    Vec::from_raw_parts(data, size, size)
}

pub fn log(level: u32, message: &str) {
    // A failed log line is not worth failing a request for.
    unsafe {
        proxy_log(level, message.as_ptr(), message.len());
    }
}

pub fn now_nanos() -> R<u64> {
    let mut t: u64 = 0;
    check(unsafe { proxy_get_current_time_nanoseconds(&mut t) })?;
    Ok(t)
}

pub fn set_tick_period_ms(ms: u32) -> R<()> {
    check(unsafe { proxy_set_tick_period_milliseconds(ms) })
}

pub fn get_buffer(buffer_type: u32, start: usize, max: usize) -> R<Option<Vec<u8>>> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    let status = unsafe { proxy_get_buffer_bytes(buffer_type, start, max, &mut data, &mut size) };
    match status {
        STATUS_OK => Ok(Some(unsafe { take(data, size) })),
        STATUS_NOT_FOUND => Ok(None),
        s => Err(HostError(s)),
    }
}

/// Replaces `size` bytes at `start` of a buffer (whole body: 0, current size).
pub fn set_buffer(buffer_type: u32, start: usize, size: usize, data: &[u8]) -> R<()> {
    check(unsafe { proxy_set_buffer_bytes(buffer_type, start, size, data.as_ptr(), data.len()) })
}

pub fn get_header(map_type: u32, name: &str) -> R<Option<String>> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    let status =
        unsafe { proxy_get_header_map_value(map_type, name.as_ptr(), name.len(), &mut data, &mut size) };
    match status {
        STATUS_OK => {
            let bytes = unsafe { take(data, size) };
            // A non-UTF-8 value is treated as absent: it cannot be a valid token.
            Ok(String::from_utf8(bytes).ok())
        }
        STATUS_NOT_FOUND => Ok(None),
        s => Err(HostError(s)),
    }
}

/// Every header of a map, in one hostcall (cheaper than one call per header read).
pub fn get_headers(map_type: u32) -> R<Vec<(String, String)>> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    check(unsafe { proxy_get_header_map_pairs(map_type, &mut data, &mut size) })?;
    let bytes = unsafe { take(data, size) };
    Ok(deserialize_map(&bytes))
}

pub fn set_header(map_type: u32, name: &str, value: &str) -> R<()> {
    check(unsafe {
        proxy_replace_header_map_value(map_type, name.as_ptr(), name.len(), value.as_ptr(), value.len())
    })
}

/// Adds a value (a header may carry several).
pub fn add_header(map_type: u32, name: &str, value: &str) -> R<()> {
    check(unsafe {
        proxy_add_header_map_value(map_type, name.as_ptr(), name.len(), value.as_ptr(), value.len())
    })
}

pub fn remove_header(map_type: u32, name: &str) -> R<()> {
    check(unsafe { proxy_remove_header_map_value(map_type, name.as_ptr(), name.len()) })
}

fn serialize_path(path: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in path {
        out.extend_from_slice(part.as_bytes());
        out.push(0);
    }
    // Parts are NUL-separated, not NUL-terminated: Envoy would keep a trailing NUL in the key.
    out.pop();
    out
}

pub fn get_property(path: &[&str]) -> R<Option<Vec<u8>>> {
    let p = serialize_path(path);
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    let status = unsafe { proxy_get_property(p.as_ptr(), p.len(), &mut data, &mut size) };
    match status {
        STATUS_OK => Ok(Some(unsafe { take(data, size) })),
        STATUS_NOT_FOUND => Ok(None),
        s => Err(HostError(s)),
    }
}

pub fn set_property(path: &[&str], value: &[u8]) -> R<()> {
    let p = serialize_path(path);
    check(unsafe { proxy_set_property(p.as_ptr(), p.len(), value.as_ptr(), value.len()) })
}

pub fn get_shared_data(key: &str) -> R<Option<(Vec<u8>, u32)>> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    let mut cas: u32 = 0;
    let status = unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) };
    match status {
        STATUS_OK => Ok(Some((unsafe { take(data, size) }, cas))),
        STATUS_NOT_FOUND => Ok(None),
        s => Err(HostError(s)),
    }
}

/// `cas = 0` writes unconditionally (Envoy's convention).
pub fn set_shared_data(key: &str, value: &[u8], cas: u32) -> R<()> {
    check(unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas) })
}

/// Defines (or finds, by name) a counter; Envoy exposes it as `wasmcustom.<name>`.
pub fn define_counter(name: &str) -> R<u32> {
    let mut id: u32 = 0;
    check(unsafe { proxy_define_metric(0, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// Defines (or finds) a gauge.
pub fn define_gauge(name: &str) -> R<u32> {
    let mut id: u32 = 0;
    check(unsafe { proxy_define_metric(1, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

pub fn record_metric(id: u32, value: u64) -> R<()> {
    check(unsafe { proxy_record_metric(id, value) })
}

pub fn increment_metric(id: u32, by: i64) -> R<()> {
    check(unsafe { proxy_increment_metric(id, by) })
}

/// Later hostcalls act on `context_id` (e.g. a held request, from the root's tick).
pub fn set_effective_context(context_id: u32) -> R<()> {
    check(unsafe { proxy_set_effective_context(context_id) })
}

pub fn resume_http_request() -> R<()> {
    check(unsafe { proxy_continue_stream(STREAM_HTTP_REQUEST) })
}

pub fn send_local_response(status: u32, details: &str, headers: &[(&str, &str)], body: &[u8]) -> R<()> {
    let h = serialize_map(headers);
    check(unsafe {
        proxy_send_local_response(
            status,
            details.as_ptr(),
            details.len(),
            body.as_ptr(),
            body.len(),
            h.as_ptr(),
            h.len(),
            -1,
        )
    })
}

/// Outgoing HTTP call. This one goes through the SDK: its dispatcher must register the call
/// id, or the response callback panics. Envoy's `httpCall` returns only Ok, BadArgument
/// (e.g. unknown cluster) or InternalFailure, the statuses the SDK maps without panicking.
pub fn http_call_with_body(
    cluster: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    timeout_ms: u32,
) -> R<u32> {
    proxy_wasm::hostcalls::dispatch_http_call(
        cluster,
        headers.to_vec(),
        body,
        Vec::new(),
        std::time::Duration::from_millis(u64::from(timeout_ms)),
    )
    .map_err(|status| HostError(status as u32))
}

/// ABI map encoding: u32 count, then (u32 key len, u32 value len) per pair, then each key
/// and value followed by a NUL.
fn serialize_map(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut size = 4;
    for (k, v) in pairs {
        size += 8 + k.len() + v.len() + 2;
    }
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

/// Inverse of `serialize_map`; stops at the first inconsistency instead of panicking.
fn deserialize_map(bytes: &[u8]) -> Vec<(String, String)> {
    let read_u32 = |at: usize| -> Option<usize> {
        let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(u32::from_le_bytes(b) as usize)
    };
    let mut out = Vec::new();
    let Some(count) = read_u32(0) else {
        return out;
    };
    let mut data = 4 + count.saturating_mul(8);
    for i in 0..count {
        let (Some(kl), Some(vl)) = (read_u32(4 + i * 8), read_u32(8 + i * 8)) else {
            break;
        };
        let (Some(k), Some(v)) = (
            bytes.get(data..data + kl),
            bytes.get(data + kl + 1..data + kl + 1 + vl),
        ) else {
            break;
        };
        out.push((
            String::from_utf8_lossy(k).into_owned(),
            String::from_utf8_lossy(v).into_owned(),
        ));
        data += kl + vl + 2;
    }
    out
}
