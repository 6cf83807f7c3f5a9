//! JSON-RPC 2.0 messages of an MCP POST body: parsed strictly, classified, and answered with
//! JSON-RPC errors when refused. Nothing malformed is forwarded: a body is forwarded only when
//! every message in it parsed and every call was allowed (`verdict`).
//!
//! Rules and where they come from:
//! - Message shapes (2025-11-25 `basic/index`): `jsonrpc` is exactly `"2.0"`; a request has
//!   an `id` that is a string or an integer (not null, not fractional, not a boolean); a
//!   notification has no `id`; `params`, when present, is an object (`"params": null` is read
//!   as absent: the Python SDK sends it, and it carries no target). A client may also POST a
//!   response (to a server's sampling/elicitation request): `id` plus exactly one of
//!   `result` / `error`. Members other than these are ignored, as JSON-RPC allows.
//! - Duplicate member names at any depth are refused (Invalid Request): with duplicates, we
//!   and the MCP server could read different tool names or arguments.
//! - Method names are case-sensitive (JSON-RPC): `Tools/Call` is an unknown method, which
//!   grants deny by default; it never becomes `tools/call`.
//! - Batches (JSON-RPC 2.0; MCP 2025-03-26, removed in 2025-06-18): at most `MAX_BATCH`
//!   entries, an empty batch is Invalid Request; each entry is its own message.
//! - HTTP status of a refusal (2025-11-25 `basic/transports`): malformed input (parse error,
//!   invalid request, header mismatch) is 400; an error answering a request is a normal
//!   JSON-RPC answer (200), so the MCP client shows it for that call; a refused notification
//!   or response gets an error status (400 invalid, 403 denied). `Method not found` is 404
//!   from 2026-07-28 on, and 200 before (a 2025-11-25 client reads 404 as "session expired").

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{json, Map, Value};
use std::fmt;

/// Largest batch accepted. Each entry is authorized and answered separately; a bound keeps a
/// single POST from fanning out into unbounded policy work or upstream calls. MCP clients
/// send no batches since 2025-06-18, so 32 is generous.
pub const MAX_BATCH: usize = 32;

/// JSON-RPC error codes we send.
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    /// MCP 2026-07-28 `HeaderMismatch`.
    pub const HEADER_MISMATCH: i64 = -32020;
    /// Our authorization denial: in JSON-RPC's implementation-defined server range
    /// (-32000..=-32099), away from the codes MCP and its SDKs use (-32000..=-32002 by the
    /// SDKs, -32020 and -32042 by the specification).
    pub const ACCESS_DENIED: i64 = -32090;
}

/// The MCP method of a request or notification. Anything not listed is `Other` (denied
/// unless a grant lists the method by name) or, for `notifications/*`, `Notification`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Initialize,
    Ping,
    ToolsList,
    ToolsCall,
    ResourcesList,
    ResourcesRead,
    ResourcesTemplatesList,
    ResourcesSubscribe,
    ResourcesUnsubscribe,
    PromptsList,
    PromptsGet,
    CompletionComplete,
    /// `notifications/*` (initialized, cancelled, progress, roots/list_changed...).
    Notification,
    Other,
}

impl Method {
    /// Exact, case-sensitive classification.
    pub fn classify(name: &str) -> Method {
        match name {
            "initialize" => Method::Initialize,
            "ping" => Method::Ping,
            "tools/list" => Method::ToolsList,
            "tools/call" => Method::ToolsCall,
            "resources/list" => Method::ResourcesList,
            "resources/read" => Method::ResourcesRead,
            "resources/templates/list" => Method::ResourcesTemplatesList,
            "resources/subscribe" => Method::ResourcesSubscribe,
            "resources/unsubscribe" => Method::ResourcesUnsubscribe,
            "prompts/list" => Method::PromptsList,
            "prompts/get" => Method::PromptsGet,
            "completion/complete" => Method::CompletionComplete,
            n if n.starts_with("notifications/") => Method::Notification,
            _ => Method::Other,
        }
    }

    /// Methods that name no tool, resource or prompt: allowed or refused by the session-level
    /// decision (is this caller allowed on this MCP route at all), never by grants.
    pub fn is_session_level(self) -> bool {
        matches!(
            self,
            Method::Initialize
                | Method::Ping
                | Method::ToolsList
                | Method::ResourcesList
                | Method::ResourcesTemplatesList
                | Method::PromptsList
                | Method::Notification
        )
    }
}

/// What a call acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `tools/call` `params.name`.
    Tool(String),
    /// `resources/read|subscribe|unsubscribe` `params.uri`, or the `uri` of a
    /// `completion/complete` `ref/resource` (a URI template).
    Resource(String),
    /// `prompts/get` `params.name`, or the `name` of a `completion/complete` `ref/prompt`.
    Prompt(String),
}

impl Target {
    pub fn name(&self) -> &str {
        match self {
            Target::Tool(n) | Target::Resource(n) | Target::Prompt(n) => n,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Target::Tool(_) => "tool",
            Target::Resource(_) => "resource",
            Target::Prompt(_) => "prompt",
        }
    }
}

/// A request's or notification's method and parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: Method,
    /// The method as sent (for `Other`, grants and audit need the name).
    pub method_name: String,
    /// The tool, resource or prompt acted on; None for methods without one.
    pub target: Option<Target>,
    /// `params` (empty when absent).
    pub params: Map<String, Value>,
}

impl Call {
    /// `params.arguments` of `tools/call` / `prompts/get` (an object, checked at parse).
    pub fn arguments(&self) -> Option<&Map<String, Value>> {
        self.params.get("arguments").and_then(Value::as_object)
    }
}

/// One JSON-RPC message of a POST body.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request {
        id: Value,
        call: Call,
    },
    Notification(Call),
    /// A client's answer to a server request: session-level, carries no call.
    Response {
        id: Value,
    },
    /// Refused at parse; `id` is the message's id when it had a valid one, else null.
    Invalid {
        id: Value,
        error: RpcError,
    },
}

impl Message {
    pub fn call(&self) -> Option<&Call> {
        match self {
            Message::Request { call, .. } | Message::Notification(call) => Some(call),
            _ => None,
        }
    }

    /// Whether JSON-RPC expects an answer to this message (a request, or an invalid message).
    fn wants_answer(&self) -> bool {
        matches!(self, Message::Request { .. } | Message::Invalid { .. })
    }
}

/// A POST body: one message or a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Single(Message),
    Batch(Vec<Message>),
}

impl Body {
    pub fn messages(&self) -> &[Message] {
        match self {
            Body::Single(m) => std::slice::from_ref(m),
            Body::Batch(ms) => ms,
        }
    }

    pub fn is_batch(&self) -> bool {
        matches!(self, Body::Batch(_))
    }
}

/// The protocol era a request speaks, from its `MCP-Protocol-Version` header: it decides the
/// few rules that changed (404 for unknown methods, required `Mcp-Method` / `Mcp-Name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revision {
    /// 2025-11-25 and earlier (or no header: 2025-03-26 by the spec's default).
    UpTo2025_11_25,
    /// 2026-07-28 and later.
    From2026_07_28,
}

impl Revision {
    pub fn from_header(protocol_version: Option<&str>) -> Revision {
        let v = protocol_version.unwrap_or_default().trim();
        // Versions are YYYY-MM-DD: for that shape, string order is date order.
        let dated = v.len() == 10
            && v.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        if dated && v >= "2026-07-28" {
            Revision::From2026_07_28
        } else {
            Revision::UpTo2025_11_25
        }
    }
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    fn new(code: i64, message: &str) -> RpcError {
        RpcError {
            code,
            message: message.to_string(),
            data: None,
        }
    }

    pub fn parse_error() -> RpcError {
        RpcError::new(code::PARSE_ERROR, "Parse error")
    }

    /// `why` is ours, never text from the request.
    pub fn invalid_request(why: &str) -> RpcError {
        RpcError::new(code::INVALID_REQUEST, &format!("Invalid Request: {why}"))
    }

    pub fn method_not_found() -> RpcError {
        RpcError::new(code::METHOD_NOT_FOUND, "Method not found")
    }

    pub fn invalid_params(why: &str) -> RpcError {
        RpcError::new(code::INVALID_PARAMS, &format!("Invalid params: {why}"))
    }

    pub fn header_mismatch(why: &str) -> RpcError {
        RpcError::new(code::HEADER_MISMATCH, &format!("Header mismatch: {why}"))
    }

    /// Our authorization denial: `data.reason` is a stable reason code (`tool_not_permitted`,
    /// `argument_not_permitted`...), `data.pointer` the refused argument's JSON Pointer.
    pub fn denied(reason: &str, pointer: Option<&str>) -> RpcError {
        let mut data = Map::new();
        data.insert("reason".into(), Value::String(reason.to_string()));
        if let Some(p) = pointer {
            data.insert("pointer".into(), Value::String(p.to_string()));
        }
        RpcError {
            code: code::ACCESS_DENIED,
            message: "Forbidden by policy".to_string(),
            data: Some(Value::Object(data)),
        }
    }

    /// The error response object for a message with this `id` (null when unknown).
    pub fn response(&self, id: &Value) -> Value {
        let mut error = Map::new();
        error.insert("code".into(), Value::from(self.code));
        error.insert("message".into(), Value::String(self.message.clone()));
        if let Some(d) = &self.data {
            error.insert("data".into(), d.clone());
        }
        json!({"jsonrpc": "2.0", "id": id, "error": error})
    }

    /// The HTTP status to send this error with, as the answer to a single message (a request
    /// when `to_request`, else a notification or response).
    pub fn http_status(&self, to_request: bool, revision: Revision) -> u16 {
        match self.code {
            code::PARSE_ERROR | code::INVALID_REQUEST | code::HEADER_MISMATCH => 400,
            code::METHOD_NOT_FOUND if revision == Revision::From2026_07_28 => 404,
            _ if to_request => 200,
            code::ACCESS_DENIED => 403,
            _ => 400,
        }
    }
}

/// What to send instead of forwarding a body: HTTP status and a JSON body (empty: none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub body: Vec<u8>,
}

fn to_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

impl Refusal {
    /// A single error answer (parse errors, header mismatches, anything refused before the
    /// body was read as messages).
    pub fn single(error: &RpcError, id: &Value, to_request: bool, revision: Revision) -> Refusal {
        Refusal {
            status: error.http_status(to_request, revision),
            body: to_bytes(&error.response(id)),
        }
    }
}

/// Decides a parsed body: None when every message is valid and `decide` allows every call
/// (forward the body unchanged), else the answer to send instead. Nothing is forwarded
/// when anything is refused: a batch is all or nothing, and its answer is one array with
/// one entry per request or invalid message (notifications and responses get none, as in
/// JSON-RPC): the refused entry's error, and for the others `denied("batch_refused")`,
/// since they were not run either. Status: a message refused at parse (whatever its code,
/// and even with a readable id) is 400: it was malformed; a denied request 200; a denied
/// notification 403; a batch answer 400 when an entry was malformed, else 200.
pub fn verdict<F>(body: &Body, revision: Revision, mut decide: F) -> Option<Refusal>
where
    F: FnMut(&Call) -> Result<(), RpcError>,
{
    let errors: Vec<Option<RpcError>> = body
        .messages()
        .iter()
        .map(|m| match m {
            Message::Invalid { error, .. } => Some(error.clone()),
            Message::Request { call, .. } | Message::Notification(call) => decide(call).err(),
            Message::Response { .. } => None,
        })
        .collect();
    if errors.iter().all(Option::is_none) {
        return None;
    }
    let answer = |m: &Message, e: Option<&RpcError>| -> Option<Value> {
        let id = match m {
            Message::Request { id, .. } | Message::Invalid { id, .. } => id.clone(),
            _ => Value::Null,
        };
        match e {
            Some(e) => Some(e.response(&id)),
            None if m.wants_answer() => Some(RpcError::denied("batch_refused", None).response(&id)),
            None => None,
        }
    };
    match body {
        Body::Single(m) => {
            let error = errors.first().cloned().flatten()?;
            let id = match m {
                Message::Request { id, .. } | Message::Invalid { id, .. } => id.clone(),
                _ => Value::Null,
            };
            let to_request = matches!(m, Message::Request { .. });
            Some(Refusal::single(&error, &id, to_request, revision))
        }
        Body::Batch(ms) => {
            let entries: Vec<Value> = ms
                .iter()
                .zip(&errors)
                .filter_map(|(m, e)| {
                    // A refused notification in a batch is answered only through the status.
                    if matches!(m, Message::Notification(_) | Message::Response { .. }) {
                        return None;
                    }
                    answer(m, e.as_ref())
                })
                .collect();
            let malformed = ms.iter().any(|m| matches!(m, Message::Invalid { .. }));
            if entries.is_empty() {
                // Only notifications/responses, and one was refused: an error status, and an
                // error without id (2025-11-25 `basic/transports`, sending messages, 4).
                let first = errors.iter().flatten().next()?;
                return Some(Refusal::single(first, &Value::Null, false, revision));
            }
            Some(Refusal {
                status: if malformed { 400 } else { 200 },
                body: to_bytes(&Value::Array(entries)),
            })
        }
    }
}

/// Parses a POST body. Err: the body as a whole is not JSON-RPC (parse error, not an object
/// or array, empty or oversized batch, duplicate members in a batch): answer it with
/// `Refusal::single(&err, &Value::Null, false, revision)` (id null: none could be read).
pub fn parse_body(bytes: &[u8]) -> Result<Body, RpcError> {
    let first = bytes.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    match first {
        Some(b'{') => match crate::authn::jose::parse_unique_object(bytes) {
            Ok(obj) => Ok(Body::Single(message(obj))),
            Err(e) => Err(read_error(&e)),
        },
        Some(b'[') => parse_batch(bytes),
        _ => match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Ok(_) => Err(RpcError::invalid_request("not an object or array")),
            Err(_) => Err(RpcError::parse_error()),
        },
    }
}

/// Syntax errors (and nesting over serde_json's limit of 128) are parse errors; a
/// well-formed document refused for its content (duplicate members) is an invalid request.
fn read_error(e: &serde_json::Error) -> RpcError {
    match e.classify() {
        serde_json::error::Category::Data => RpcError::invalid_request("duplicate member name"),
        _ => RpcError::parse_error(),
    }
}

fn parse_batch(bytes: &[u8]) -> Result<Body, RpcError> {
    // First pass: syntax, duplicates at any depth, and the entry count, before any entry is
    // built.
    let count = serde_json::from_slice::<BatchShape>(bytes)
        .map_err(|e| read_error(&e))?
        .0;
    if count == 0 {
        return Err(RpcError::invalid_request("empty batch"));
    }
    if count > MAX_BATCH {
        return Err(RpcError::invalid_request("batch too large"));
    }
    // Read as a Value (the instance the crate links anyway), not as a Vec<Value>.
    let Value::Array(entries) = serde_json::from_slice(bytes).map_err(|e| read_error(&e))? else {
        return Err(RpcError::invalid_request("not an object or array"));
    };
    Ok(Body::Batch(
        entries
            .into_iter()
            .map(|v| match v {
                Value::Object(obj) => message(obj),
                _ => Message::Invalid {
                    id: Value::Null,
                    error: RpcError::invalid_request("batch entry is not an object"),
                },
            })
            .collect(),
    ))
}

/// A JSON value checked for duplicate member names at any depth, keeping nothing.
struct NoDuplicates;

impl<'de> Deserialize<'de> for NoDuplicates {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NoDuplicates;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<NoDuplicates, E> {
                Ok(NoDuplicates)
            }
            fn visit_i64<E>(self, _: i64) -> Result<NoDuplicates, E> {
                Ok(NoDuplicates)
            }
            fn visit_u64<E>(self, _: u64) -> Result<NoDuplicates, E> {
                Ok(NoDuplicates)
            }
            fn visit_f64<E>(self, _: f64) -> Result<NoDuplicates, E> {
                Ok(NoDuplicates)
            }
            fn visit_str<E>(self, _: &str) -> Result<NoDuplicates, E> {
                Ok(NoDuplicates)
            }
            fn visit_unit<E>(self) -> Result<NoDuplicates, E> {
                Ok(NoDuplicates)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NoDuplicates, A::Error> {
                while seq.next_element::<NoDuplicates>()?.is_some() {}
                Ok(NoDuplicates)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NoDuplicates, A::Error> {
                // A Map as the set of names seen: its code is linked already.
                let mut seen = Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    if seen.insert(key, Value::Null).is_some() {
                        return Err(serde::de::Error::custom("duplicate member"));
                    }
                    map.next_value::<NoDuplicates>()?;
                }
                Ok(NoDuplicates)
            }
        }
        d.deserialize_any(V)
    }
}

/// A top-level array, its entries checked by `NoDuplicates`; keeps the entry count.
struct BatchShape(usize);

impl<'de> Deserialize<'de> for BatchShape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BatchShape;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<BatchShape, A::Error> {
                let mut n = 0usize;
                while seq.next_element::<NoDuplicates>()?.is_some() {
                    n = n.saturating_add(1);
                }
                Ok(BatchShape(n))
            }
        }
        d.deserialize_seq(V)
    }
}

fn is_valid_id(id: &Value) -> bool {
    match id {
        Value::String(_) => true,
        Value::Number(n) => n.is_i64() || n.is_u64(),
        _ => false,
    }
}

/// Reads one message object.
fn message(mut obj: Map<String, Value>) -> Message {
    let id = obj.remove("id");
    let echo = id.clone().filter(is_valid_id).unwrap_or(Value::Null);
    let invalid = |why: &str| Message::Invalid {
        id: echo.clone(),
        error: RpcError::invalid_request(why),
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid("jsonrpc must be \"2.0\"");
    }
    let method = match obj.remove("method") {
        Some(Value::String(m)) => m,
        Some(_) => return invalid("method must be a string"),
        None => {
            // A response from the client: an id (null only with an error) and exactly one
            // of result / error.
            let (has_result, error) = (obj.contains_key("result"), obj.get("error"));
            if has_result == error.is_some() {
                return invalid("a response has exactly one of result and error");
            }
            if error.is_some_and(|e| !e.is_object()) {
                return invalid("error must be an object");
            }
            return match id {
                Some(id) if is_valid_id(&id) => Message::Response { id },
                Some(Value::Null) if error.is_some() => Message::Response { id: Value::Null },
                _ => invalid("id must be a string or an integer"),
            };
        }
    };
    if obj.contains_key("result") || obj.contains_key("error") {
        return invalid("a request has no result or error");
    }
    let params = match obj.remove("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p,
        Some(_) => return invalid("params must be an object"),
    };
    if id.as_ref().is_some_and(|i| !is_valid_id(i)) {
        return invalid("id must be a string or an integer");
    }
    match (build_call(method, params), id) {
        (Ok(call), Some(id)) => Message::Request { id, call },
        (Ok(call), None) => Message::Notification(call),
        (Err(error), _) => Message::Invalid { id: echo, error },
    }
}

fn required_str(params: &Map<String, Value>, key: &str) -> Result<String, RpcError> {
    match params.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(RpcError::invalid_params(&format!(
            "{key} must be a non-empty string"
        ))),
    }
}

fn object_or_absent(params: &Map<String, Value>, key: &str) -> Result<(), RpcError> {
    match params.get(key) {
        None | Some(Value::Object(_)) => Ok(()),
        Some(_) => Err(RpcError::invalid_params(&format!("{key} must be an object"))),
    }
}

fn build_call(method_name: String, params: Map<String, Value>) -> Result<Call, RpcError> {
    let method = Method::classify(&method_name);
    let target = match method {
        Method::ToolsCall => {
            object_or_absent(&params, "arguments")?;
            Some(Target::Tool(required_str(&params, "name")?))
        }
        Method::PromptsGet => {
            object_or_absent(&params, "arguments")?;
            Some(Target::Prompt(required_str(&params, "name")?))
        }
        Method::ResourcesRead | Method::ResourcesSubscribe | Method::ResourcesUnsubscribe => {
            Some(Target::Resource(required_str(&params, "uri")?))
        }
        Method::CompletionComplete => {
            let reference = match params.get("ref") {
                Some(Value::Object(r)) => r,
                _ => return Err(RpcError::invalid_params("ref must be an object")),
            };
            match reference.get("type").and_then(Value::as_str) {
                Some("ref/prompt") => Some(Target::Prompt(required_str(reference, "name")?)),
                Some("ref/resource") => Some(Target::Resource(required_str(reference, "uri")?)),
                _ => {
                    return Err(RpcError::invalid_params(
                        "ref.type must be ref/prompt or ref/resource",
                    ))
                }
            }
        }
        _ => None,
    };
    Ok(Call {
        method,
        method_name,
        target,
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(body: &str) -> Message {
        match parse_body(body.as_bytes()) {
            Ok(Body::Single(m)) => m,
            other => panic!("not a single message: {other:?}"),
        }
    }

    fn invalid_code(m: &Message) -> i64 {
        match m {
            Message::Invalid { error, .. } => error.code,
            other => panic!("not invalid: {other:?}"),
        }
    }

    fn allow_all(_: &Call) -> Result<(), RpcError> {
        Ok(())
    }

    fn deny_tool(name: &'static str) -> impl FnMut(&Call) -> Result<(), RpcError> {
        move |c: &Call| match &c.target {
            Some(Target::Tool(t)) if t == name => Err(RpcError::denied("tool_not_permitted", None)),
            _ => Ok(()),
        }
    }

    fn json(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn classifies_every_mcp_method() {
        let cases = [
            ("initialize", Method::Initialize),
            ("ping", Method::Ping),
            ("tools/list", Method::ToolsList),
            ("tools/call", Method::ToolsCall),
            ("resources/list", Method::ResourcesList),
            ("resources/read", Method::ResourcesRead),
            ("resources/templates/list", Method::ResourcesTemplatesList),
            ("resources/subscribe", Method::ResourcesSubscribe),
            ("resources/unsubscribe", Method::ResourcesUnsubscribe),
            ("prompts/list", Method::PromptsList),
            ("prompts/get", Method::PromptsGet),
            ("completion/complete", Method::CompletionComplete),
            ("notifications/initialized", Method::Notification),
            ("notifications/cancelled", Method::Notification),
            ("logging/setLevel", Method::Other),
            // Case variants and look-alikes are other methods, never the listed ones.
            ("Tools/Call", Method::Other),
            ("tools/call ", Method::Other),
            ("tools/call\u{0}", Method::Other),
            ("ｔools/call", Method::Other),
            ("Notifications/initialized", Method::Other),
            ("notifications", Method::Other),
        ];
        for (name, want) in cases {
            assert_eq!(Method::classify(name), want, "{name:?}");
        }
    }

    #[test]
    fn session_level_methods_are_exactly_those_without_target() {
        for m in [
            Method::Initialize,
            Method::Ping,
            Method::ToolsList,
            Method::ResourcesList,
            Method::ResourcesTemplatesList,
            Method::PromptsList,
            Method::Notification,
        ] {
            assert!(m.is_session_level(), "{m:?}");
        }
        for m in [
            Method::ToolsCall,
            Method::ResourcesRead,
            Method::ResourcesSubscribe,
            Method::ResourcesUnsubscribe,
            Method::PromptsGet,
            Method::CompletionComplete,
            Method::Other,
        ] {
            assert!(!m.is_session_level(), "{m:?}");
        }
    }

    #[test]
    fn request_notification_and_response() {
        let m = single(
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"get_weather","arguments":{"city":"Paris"}}}"#,
        );
        let Message::Request { id, call } = m else {
            panic!()
        };
        assert_eq!(id, json!(7));
        assert_eq!(call.method, Method::ToolsCall);
        assert_eq!(call.target, Some(Target::Tool("get_weather".into())));
        assert_eq!(call.arguments().unwrap().get("city"), Some(&json!("Paris")));

        let m = single(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        assert!(matches!(
            m,
            Message::Notification(Call {
                method: Method::Notification,
                ..
            })
        ));

        // The Python SDK sends "params": null.
        let m = single(r#"{"jsonrpc":"2.0","id":"a","method":"tools/list","params":null}"#);
        assert!(matches!(
            m,
            Message::Request {
                call: Call {
                    method: Method::ToolsList,
                    target: None,
                    ..
                },
                ..
            }
        ));

        let m = single(r#"{"jsonrpc":"2.0","id":"s1","result":{"role":"assistant"}}"#);
        assert_eq!(m, Message::Response { id: json!("s1") });
        let m = single(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-1,"message":"x"}}"#);
        assert_eq!(m, Message::Response { id: Value::Null });
    }

    #[test]
    fn targets_of_each_method() {
        let t = |body: &str| single(body).call().and_then(|c| c.target.clone());
        assert_eq!(
            t(r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///a.txt"}}"#),
            Some(Target::Resource("file:///a.txt".into()))
        );
        assert_eq!(
            t(r#"{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"file:///a"}}"#),
            Some(Target::Resource("file:///a".into()))
        );
        assert_eq!(
            t(
                r#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"review","arguments":{"code":"x"}}}"#
            ),
            Some(Target::Prompt("review".into()))
        );
        assert_eq!(
            t(
                r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"review"},"argument":{"name":"a","value":"b"}}}"#
            ),
            Some(Target::Prompt("review".into()))
        );
        assert_eq!(
            t(
                r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"file:///{path}"}}}"#
            ),
            Some(Target::Resource("file:///{path}".into()))
        );
        assert_eq!(
            t(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}"#),
            None
        );
    }

    #[test]
    fn missing_or_wrong_targets_are_invalid_params() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":""}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":["a"]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":[1]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":5}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":null}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/tool","name":"x"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{}}"#,
        ] {
            let m = single(body);
            assert_eq!(invalid_code(&m), code::INVALID_PARAMS, "{body}");
            // The id is kept.
            assert!(
                matches!(
                    m,
                    Message::Invalid {
                        id: Value::Number(_),
                        ..
                    }
                ),
                "{body}"
            );
            // The answer is a 400 all the same: the message was malformed.
            let r = verdict(&Body::Single(m), Revision::UpTo2025_11_25, allow_all).unwrap();
            assert_eq!(r.status, 400, "{body}");
            assert_eq!(json(&r.body)["id"], json!(1), "{body}");
        }
        // A tools/call sent as a notification is still a call: its target is required too.
        let m = single(r#"{"jsonrpc":"2.0","method":"tools/call","params":{}}"#);
        assert_eq!(
            m,
            Message::Invalid {
                id: Value::Null,
                error: RpcError::invalid_params("name must be a non-empty string")
            }
        );
    }

    #[test]
    fn a_tools_call_notification_is_a_call_not_a_session_message() {
        let m = single(r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"rm_rf"}}"#);
        let Message::Notification(call) = &m else { panic!() };
        assert_eq!(call.method, Method::ToolsCall);
        assert!(!call.method.is_session_level());
        let r = verdict(
            &Body::Single(m.clone()),
            Revision::UpTo2025_11_25,
            deny_tool("rm_rf"),
        )
        .unwrap();
        assert_eq!(r.status, 403);
        assert_eq!(json(&r.body)["id"], Value::Null);
    }

    #[test]
    fn invalid_requests() {
        for (body, id) in [
            (r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#, json!(1)),
            (r#"{"id":1,"method":"ping"}"#, json!(1)),
            (r#"{"jsonrpc":2.0,"id":1,"method":"ping"}"#, json!(1)),
            (r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#, Value::Null),
            (r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#, Value::Null),
            (r#"{"jsonrpc":"2.0","id":true,"method":"ping"}"#, Value::Null),
            (r#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#, Value::Null),
            (r#"{"jsonrpc":"2.0","id":[1],"method":"ping"}"#, Value::Null),
            (r#"{"jsonrpc":"2.0","id":1,"method":5}"#, json!(1)),
            (
                r#"{"jsonrpc":"2.0","id":"x","method":"ping","params":[1,2]}"#,
                json!("x"),
            ),
            (
                r#"{"jsonrpc":"2.0","id":"x","method":"ping","params":"p"}"#,
                json!("x"),
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"ping","result":{}}"#,
                json!(1),
            ),
            (r#"{"jsonrpc":"2.0","id":1}"#, json!(1)),
            (
                r#"{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"m"}}"#,
                json!(1),
            ),
            (r#"{"jsonrpc":"2.0","id":null,"result":{}}"#, Value::Null),
            (r#"{"jsonrpc":"2.0","id":1,"error":"bad"}"#, json!(1)),
        ] {
            let m = single(body);
            assert_eq!(invalid_code(&m), code::INVALID_REQUEST, "{body}");
            let Message::Invalid { id: got, .. } = &m else {
                panic!()
            };
            assert_eq!(got, &id, "{body}");
            let r = verdict(&Body::Single(m), Revision::UpTo2025_11_25, allow_all).unwrap();
            assert_eq!(r.status, 400, "{body}");
            assert_eq!(json(&r.body)["id"], id, "{body}");
        }
    }

    #[test]
    fn integer_ids_of_any_size_are_kept() {
        for id in ["0", "-5", "18446744073709551615", "\"\"", "\"req-1\""] {
            let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#);
            assert!(matches!(single(&body), Message::Request { .. }), "{id}");
        }
    }

    #[test]
    fn duplicate_members_are_refused_at_any_depth() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"ping","params":{"name":"a"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe","name":"rm_rf"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"path":"/tmp","path":"/etc"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#,
        ] {
            let err = parse_body(body.as_bytes()).unwrap_err();
            assert_eq!(err.code, code::INVALID_REQUEST, "{body}");
        }
        // In a batch too.
        let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"a","name":"b"}}]"#;
        assert_eq!(
            parse_body(batch.as_bytes()).unwrap_err().code,
            code::INVALID_REQUEST
        );
        // Escaped names are the same name.
        let escaped =
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","n\u0061me":"b"}}"#;
        assert_eq!(
            parse_body(escaped.as_bytes()).unwrap_err().code,
            code::INVALID_REQUEST
        );
    }

    #[test]
    fn parse_errors() {
        for body in [
            "",
            "   ",
            "{",
            "{\"jsonrpc\":\"2.0\",}",
            "[1,",
            "nope",
            "{\"a\":1} trailing",
            "\u{feff}{}",
            "[{\"a\":1}]x",
        ] {
            let err = parse_body(body.as_bytes()).unwrap_err();
            assert_eq!(err.code, code::PARSE_ERROR, "{body:?}");
            let r = Refusal::single(&err, &Value::Null, false, Revision::UpTo2025_11_25);
            assert_eq!(r.status, 400);
            assert_eq!(
                json(&r.body),
                json!({"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}})
            );
        }
        for body in ["1", "\"x\"", "null", "true"] {
            assert_eq!(
                parse_body(body.as_bytes()).unwrap_err().code,
                code::INVALID_REQUEST,
                "{body}"
            );
        }
        // Invalid UTF-8 is a parse error.
        assert_eq!(
            parse_body(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}")
                .unwrap_err()
                .code,
            code::PARSE_ERROR
        );
    }

    #[test]
    fn deeply_nested_json_is_refused_without_crashing() {
        let deep = |n: usize| {
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"a","arguments":{{"x":{}{}}}}}}}"#,
                "[".repeat(n),
                "]".repeat(n)
            )
        };
        assert!(matches!(single(&deep(50)), Message::Request { .. }));
        assert_eq!(
            parse_body(deep(100_000).as_bytes()).unwrap_err().code,
            code::PARSE_ERROR
        );
        let batch = format!("[{}{}]", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(parse_body(batch.as_bytes()).unwrap_err().code, code::PARSE_ERROR);
    }

    #[test]
    fn batches_are_bounded() {
        let entry = r#"{"jsonrpc":"2.0","method":"notifications/progress"}"#;
        let batch = |n: usize| format!("[{}]", vec![entry; n].join(","));
        assert!(
            matches!(parse_body(batch(MAX_BATCH).as_bytes()), Ok(Body::Batch(ms)) if ms.len() == MAX_BATCH)
        );
        let err = parse_body(batch(MAX_BATCH + 1).as_bytes()).unwrap_err();
        assert_eq!(err, RpcError::invalid_request("batch too large"));
        assert_eq!(
            parse_body(batch(100_000).as_bytes()).unwrap_err().code,
            code::INVALID_REQUEST
        );
        assert_eq!(
            parse_body(b" [ ] ").unwrap_err(),
            RpcError::invalid_request("empty batch")
        );
    }

    #[test]
    fn batch_entries_are_messages_of_their_own() {
        let body = r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}, 5, {"jsonrpc":"2.0","method":"notifications/initialized"}, {"jsonrpc":"2.0","id":"r","result":{}}, []]"#;
        let Ok(Body::Batch(ms)) = parse_body(body.as_bytes()) else {
            panic!()
        };
        assert_eq!(ms.len(), 5);
        assert!(matches!(ms[0], Message::Request { .. }));
        assert_eq!(invalid_code(&ms[1]), code::INVALID_REQUEST);
        assert!(matches!(ms[2], Message::Notification(_)));
        assert!(matches!(ms[3], Message::Response { .. }));
        assert_eq!(invalid_code(&ms[4]), code::INVALID_REQUEST);
    }

    #[test]
    fn allowed_bodies_are_forwarded() {
        let b =
            parse_body(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ok"}}"#).unwrap();
        assert_eq!(verdict(&b, Revision::UpTo2025_11_25, deny_tool("bad")), None);
        let b = parse_body(br#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ok"}},{"jsonrpc":"2.0","method":"notifications/initialized"}]"#).unwrap();
        assert_eq!(verdict(&b, Revision::UpTo2025_11_25, deny_tool("bad")), None);
    }

    #[test]
    fn a_denied_request_is_a_jsonrpc_error_with_its_id() {
        let b = parse_body(br#"{"jsonrpc":"2.0","id":"q","method":"tools/call","params":{"name":"bad"}}"#)
            .unwrap();
        let r = verdict(&b, Revision::UpTo2025_11_25, deny_tool("bad")).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(
            json(&r.body),
            json!({"jsonrpc":"2.0","id":"q","error":{"code":-32090,"message":"Forbidden by policy","data":{"reason":"tool_not_permitted"}}})
        );
    }

    #[test]
    fn a_batch_mixing_allowed_and_denied_is_refused_whole() {
        let body = r#"[
            {"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ok"}},
            {"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"bad"}},
            {"jsonrpc":"2.0","method":"notifications/initialized"},
            {"jsonrpc":"2.0","method":"tools/call","params":{"name":"bad"}},
            {"jsonrpc":"2.0","id":"r","result":{}},
            {"jsonrpc":"2.0","id":3,"method":"ping"}
        ]"#;
        let b = parse_body(body.as_bytes()).unwrap();
        let r = verdict(&b, Revision::UpTo2025_11_25, deny_tool("bad")).unwrap();
        assert_eq!(r.status, 200);
        let v = json(&r.body);
        let entries = v.as_array().unwrap();
        // One entry per request; notifications and responses get none.
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0]["id"], json!(1));
        assert_eq!(entries[0]["error"]["data"]["reason"], "batch_refused");
        assert_eq!(entries[1]["id"], json!(2));
        assert_eq!(entries[1]["error"]["data"]["reason"], "tool_not_permitted");
        assert_eq!(entries[2]["id"], json!(3));
        assert_eq!(entries[2]["error"]["data"]["reason"], "batch_refused");
    }

    #[test]
    fn a_batch_with_a_malformed_entry_is_400() {
        let body = r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"tools/call"},{"id":3,"method":"ping"}]"#;
        let b = parse_body(body.as_bytes()).unwrap();
        let r = verdict(&b, Revision::UpTo2025_11_25, allow_all).unwrap();
        assert_eq!(r.status, 400);
        let v = json(&r.body);
        let codes: Vec<i64> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["error"]["code"].as_i64().unwrap())
            .collect();
        assert_eq!(
            codes,
            [code::ACCESS_DENIED, code::INVALID_PARAMS, code::INVALID_REQUEST]
        );
        assert_eq!(v[2]["id"], json!(3));
    }

    #[test]
    fn a_batch_of_refused_notifications_gets_a_status_and_an_idless_error() {
        let b = parse_body(br#"[{"jsonrpc":"2.0","method":"tools/call","params":{"name":"bad"}}]"#).unwrap();
        let r = verdict(&b, Revision::UpTo2025_11_25, deny_tool("bad")).unwrap();
        assert_eq!(r.status, 403);
        assert_eq!(json(&r.body)["id"], Value::Null);
    }

    #[test]
    fn http_statuses() {
        let up = Revision::UpTo2025_11_25;
        let new = Revision::From2026_07_28;
        assert_eq!(RpcError::parse_error().http_status(true, up), 400);
        assert_eq!(RpcError::invalid_request("x").http_status(true, up), 400);
        assert_eq!(RpcError::header_mismatch("x").http_status(true, new), 400);
        assert_eq!(RpcError::method_not_found().http_status(true, up), 200);
        assert_eq!(RpcError::method_not_found().http_status(true, new), 404);
        assert_eq!(RpcError::invalid_params("x").http_status(true, up), 200);
        assert_eq!(RpcError::invalid_params("x").http_status(false, up), 400);
        assert_eq!(RpcError::denied("x", None).http_status(true, up), 200);
        assert_eq!(RpcError::denied("x", None).http_status(false, up), 403);
        let e = RpcError::denied("argument_not_permitted", Some("/path"));
        assert_eq!(
            e.response(&json!(4))["error"]["data"],
            json!({"reason":"argument_not_permitted","pointer":"/path"})
        );
    }

    #[test]
    fn revisions_from_the_protocol_version_header() {
        assert_eq!(Revision::from_header(None), Revision::UpTo2025_11_25);
        assert_eq!(
            Revision::from_header(Some("2025-11-25")),
            Revision::UpTo2025_11_25
        );
        assert_eq!(
            Revision::from_header(Some("2025-03-26")),
            Revision::UpTo2025_11_25
        );
        assert_eq!(
            Revision::from_header(Some("2026-07-28")),
            Revision::From2026_07_28
        );
        assert_eq!(
            Revision::from_header(Some(" 2027-01-01 ")),
            Revision::From2026_07_28
        );
        assert_eq!(Revision::from_header(Some("9999")), Revision::UpTo2025_11_25);
        assert_eq!(
            Revision::from_header(Some("2026-07-28x")),
            Revision::UpTo2025_11_25
        );
        assert_eq!(
            Revision::from_header(Some("ZZZZ-ZZ-ZZ")),
            Revision::UpTo2025_11_25
        );
    }
}
