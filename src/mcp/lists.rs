//! Filters the answers to `tools/list`, `resources/list`, `resources/templates/list` and
//! `prompts/list` (2025-11-25 `server/*`) so they hold only what the caller may use, in a
//! JSON body or an SSE (`text/event-stream`) answer, event by event.
//!
//! - Only answers to the list requests of the POST (`PendingLists::of`) are filtered: a
//!   response with a `result` whose id matches one (a string id and a number id with the
//!   same digits count as a match: filtering more only hides more). Error answers,
//!   notifications and server requests on the stream pass unchanged.
//! - The list field (`tools`, `resources`, `resourceTemplates`, `prompts`) is always an
//!   array in what we send: an empty list stays `[]`, and a missing, null or non-array field
//!   becomes `[]`. An entry without its string key (`name`, `uri`, `uriTemplate`) is
//!   dropped. `nextCursor` and every other field pass unchanged (2025-11-25
//!   `server/utilities/pagination`: cursors are opaque).
//! - Fail closed: an answer we cannot read (not JSON, a list answer whose `result` is not an
//!   object, an SSE event over `sse::MAX_EVENT`) is withheld: `Filtered::Withheld` /
//!   `Err(Withheld)`, and the pipeline sends an error instead (for SSE, it ends the stream).
//! - A rewritten message is re-serialized, so the client reads exactly what we filtered
//!   (duplicate keys from upstream collapse to the one we checked).

use crate::inspect::sse;
use crate::mcp::jsonrpc::{Body, Message, Method, Target};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Tools,
    Resources,
    ResourceTemplates,
    Prompts,
}

impl ListKind {
    pub fn of(method: Method) -> Option<ListKind> {
        match method {
            Method::ToolsList => Some(ListKind::Tools),
            Method::ResourcesList => Some(ListKind::Resources),
            Method::ResourcesTemplatesList => Some(ListKind::ResourceTemplates),
            Method::PromptsList => Some(ListKind::Prompts),
            _ => None,
        }
    }

    /// The result field holding the list.
    pub fn field(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Resources => "resources",
            ListKind::ResourceTemplates => "resourceTemplates",
            ListKind::Prompts => "prompts",
        }
    }

    /// What an entry offers, as the target a call to it would name.
    fn target(self, entry: &Value) -> Option<Target> {
        let key = match self {
            ListKind::Tools | ListKind::Prompts => "name",
            ListKind::Resources => "uri",
            ListKind::ResourceTemplates => "uriTemplate",
        };
        let s = entry.get(key)?.as_str()?.to_string();
        Some(match self {
            ListKind::Tools => Target::Tool(s),
            ListKind::Prompts => Target::Prompt(s),
            ListKind::Resources | ListKind::ResourceTemplates => Target::Resource(s),
        })
    }
}

/// The list requests of a POST body, by id: what to filter in its answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PendingLists(Vec<(Value, ListKind)>);

fn same_id(a: &Value, b: &Value) -> bool {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    a == b || text(a).is_some_and(|t| Some(t) == text(b))
}

impl PendingLists {
    pub fn of(body: &Body) -> PendingLists {
        PendingLists(
            body.messages()
                .iter()
                .filter_map(|m| match m {
                    Message::Request { id, call } => ListKind::of(call.method).map(|k| (id.clone(), k)),
                    _ => None,
                })
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn kind_for(&self, id: &Value) -> Option<ListKind> {
        self.0.iter().find(|(i, _)| same_id(i, id)).map(|(_, k)| *k)
    }
}

/// The outcome for a JSON answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filtered {
    /// No list answer in it: send the body as it came.
    Unchanged,
    /// Send this instead.
    Rewritten(Vec<u8>),
    /// Unreadable: send an error instead.
    Withheld,
}

/// An SSE answer could not be read: end the stream with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Withheld;

/// Decides whether a list entry is shown (the caller's grants).
pub type Keep<'a> = dyn FnMut(&Target) -> bool + 'a;

enum Outcome {
    NotAList,
    Filtered,
    Unfilterable,
}

fn filter_list(result: &mut Map<String, Value>, kind: ListKind, keep: &mut Keep) {
    match result.get_mut(kind.field()) {
        Some(Value::Array(entries)) => entries.retain(|e| kind.target(e).is_some_and(|t| keep(&t))),
        Some(other) => *other = Value::Array(Vec::new()),
        None => {
            result.insert(kind.field().to_string(), Value::Array(Vec::new()));
        }
    }
}

fn filter_message(message: &mut Map<String, Value>, pending: &PendingLists, keep: &mut Keep) -> Outcome {
    let Some(kind) = message.get("id").and_then(|id| pending.kind_for(id)) else {
        return Outcome::NotAList;
    };
    // A server request may reuse our id (ids are per sender); it has a method and no
    // result. Anything with a result under our id is filtered, method or not.
    let not_an_answer = message.contains_key("error") || message.contains_key("method");
    match message.get_mut("result") {
        Some(Value::Object(result)) => {
            filter_list(result, kind, keep);
            Outcome::Filtered
        }
        None if not_an_answer => Outcome::NotAList,
        _ => Outcome::Unfilterable,
    }
}

/// Filters a message or an array of messages in place.
fn filter_value(v: &mut Value, pending: &PendingLists, keep: &mut Keep) -> Outcome {
    match v {
        Value::Object(m) => filter_message(m, pending, keep),
        Value::Array(items) => {
            let mut outcome = Outcome::NotAList;
            for item in items {
                let Value::Object(m) = item else { continue };
                match filter_message(m, pending, keep) {
                    Outcome::Unfilterable => return Outcome::Unfilterable,
                    Outcome::Filtered => outcome = Outcome::Filtered,
                    Outcome::NotAList => {}
                }
            }
            outcome
        }
        _ => Outcome::NotAList,
    }
}

/// Filters an `application/json` answer to a POST whose list requests are `pending`.
pub fn filter_json(body: &[u8], pending: &PendingLists, keep: &mut Keep) -> Filtered {
    if pending.is_empty() {
        return Filtered::Unchanged;
    }
    let Ok(mut v) = serde_json::from_slice::<Value>(body) else {
        return Filtered::Withheld;
    };
    match filter_value(&mut v, pending, keep) {
        Outcome::NotAList => Filtered::Unchanged,
        Outcome::Filtered => match serde_json::to_vec(&v) {
            Ok(bytes) => Filtered::Rewritten(bytes),
            Err(_) => Filtered::Withheld,
        },
        Outcome::Unfilterable => Filtered::Withheld,
    }
}

/// Filters a `text/event-stream` answer chunk by chunk; events come out in the canonical
/// framing of `sse::Event::write_to`, whatever the chunking.
#[derive(Debug, Default)]
pub struct SseListFilter {
    parser: sse::Parser,
    pending: PendingLists,
    failed: bool,
}

impl SseListFilter {
    pub fn new(pending: PendingLists) -> SseListFilter {
        SseListFilter {
            parser: sse::Parser::default(),
            pending,
            failed: false,
        }
    }

    /// The bytes to send for this chunk (possibly none yet: an event may be incomplete).
    pub fn feed(&mut self, chunk: &[u8], keep: &mut Keep) -> Result<Vec<u8>, Withheld> {
        if self.failed {
            return Err(Withheld);
        }
        let events = self.parser.feed(chunk);
        self.emit(events, keep)
    }

    /// The stream ended: the bytes of a last, unterminated event.
    pub fn finish(&mut self, keep: &mut Keep) -> Result<Vec<u8>, Withheld> {
        if self.failed {
            return Err(Withheld);
        }
        let events = self.parser.finish();
        self.emit(events, keep)
    }

    fn emit(
        &mut self,
        events: Result<Vec<sse::Event>, sse::Oversized>,
        keep: &mut Keep,
    ) -> Result<Vec<u8>, Withheld> {
        let result = events.map_err(|_| Withheld).and_then(|events| {
            let mut out = Vec::new();
            for e in events {
                self.event(e, keep, &mut out)?;
            }
            Ok(out)
        });
        self.failed = result.is_err();
        result
    }

    fn event(&self, mut e: sse::Event, keep: &mut Keep, out: &mut Vec<u8>) -> Result<(), Withheld> {
        let data = match e.data() {
            // No data (an id, a retry, a comment) or the empty priming event: no message.
            None => None,
            Some(d) if d.trim().is_empty() => None,
            Some(d) => Some(d),
        };
        if let Some(d) = data {
            let mut v: Value = serde_json::from_slice(d.as_bytes()).map_err(|_| Withheld)?;
            match filter_value(&mut v, &self.pending, keep) {
                Outcome::NotAList => {}
                Outcome::Filtered => e.set_data(&serde_json::to_string(&v).map_err(|_| Withheld)?),
                Outcome::Unfilterable => return Err(Withheld),
            }
        }
        e.write_to(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::jsonrpc::parse_body;
    use serde_json::json;

    fn pending(body: &str) -> PendingLists {
        PendingLists::of(&parse_body(body.as_bytes()).unwrap())
    }

    fn tools_pending() -> PendingLists {
        pending(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
    }

    /// Shows names starting with "ok", resources under file:///ok/.
    fn keep_ok(t: &Target) -> bool {
        match t {
            Target::Tool(n) | Target::Prompt(n) => n.starts_with("ok"),
            Target::Resource(u) => u.starts_with("file:///ok/"),
        }
    }

    fn filtered(body: Value, p: &PendingLists) -> Value {
        match filter_json(body.to_string().as_bytes(), p, &mut keep_ok) {
            Filtered::Rewritten(b) => serde_json::from_slice(&b).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pending_lists_of_a_body() {
        let p = pending(
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":"b","method":"prompts/list"},{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"x"}},{"jsonrpc":"2.0","method":"notifications/initialized"}]"#,
        );
        assert_eq!(
            p.0,
            vec![(json!(1), ListKind::Tools), (json!("b"), ListKind::Prompts)]
        );
        assert!(pending(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).is_empty());
        assert_eq!(
            filter_json(b"not json", &PendingLists::default(), &mut keep_ok),
            Filtered::Unchanged
        );
    }

    #[test]
    fn tools_list_filtered_with_cursor_and_fields_kept() {
        let body = json!({"jsonrpc":"2.0","id":1,"result":{
            "tools":[{"name":"ok_a","inputSchema":{}},{"name":"secret"},{"name":"ok_b"},{"title":"no name"},{"name":5},"junk"],
            "nextCursor":"c2",
            "_meta":{"k":"v"}}});
        let v = filtered(body, &tools_pending());
        assert_eq!(
            v,
            json!({"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"ok_a","inputSchema":{}},{"name":"ok_b"}],"nextCursor":"c2","_meta":{"k":"v"}}})
        );
    }

    #[test]
    fn empty_lists_stay_arrays() {
        for tools in [
            json!([]),
            json!([{"name":"secret"}]),
            Value::Null,
            json!("x"),
            json!({"name":"ok"}),
        ] {
            let v = filtered(
                json!({"jsonrpc":"2.0","id":1,"result":{"tools":tools,"nextCursor":"n"}}),
                &tools_pending(),
            );
            assert_eq!(v["result"]["tools"], json!([]));
            assert_eq!(v["result"]["nextCursor"], "n");
        }
        let v = filtered(json!({"jsonrpc":"2.0","id":1,"result":{}}), &tools_pending());
        assert_eq!(v["result"], json!({"tools":[]}));
    }

    #[test]
    fn every_list_kind() {
        let p = pending(
            r#"[{"jsonrpc":"2.0","id":1,"method":"resources/list"},{"jsonrpc":"2.0","id":2,"method":"resources/templates/list"},{"jsonrpc":"2.0","id":3,"method":"prompts/list"}]"#,
        );
        let body = json!([
            {"jsonrpc":"2.0","id":1,"result":{"resources":[{"uri":"file:///ok/a","name":"a"},{"uri":"file:///etc/passwd","name":"ok_named"}]}},
            {"jsonrpc":"2.0","id":2,"result":{"resourceTemplates":[{"uriTemplate":"file:///ok/{x}","name":"t"},{"uriTemplate":"file:///{x}","name":"ok"}]}},
            {"jsonrpc":"2.0","id":3,"result":{"prompts":[{"name":"ok_p"},{"name":"bad"}]}}
        ]);
        let v = filtered(body, &p);
        assert_eq!(
            v[0]["result"]["resources"],
            json!([{"uri":"file:///ok/a","name":"a"}])
        );
        assert_eq!(
            v[1]["result"]["resourceTemplates"],
            json!([{"uriTemplate":"file:///ok/{x}","name":"t"}])
        );
        assert_eq!(v[2]["result"]["prompts"], json!([{"name":"ok_p"}]));
    }

    #[test]
    fn only_answers_to_list_requests_are_filtered() {
        let p = tools_pending();
        // An error answer, another id, a server notification: unchanged.
        for body in [
            json!({"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"m"}}),
            json!({"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"secret"}]}}),
            json!({"jsonrpc":"2.0","method":"notifications/message","params":{"tools":[{"name":"x"}]}}),
        ] {
            assert_eq!(
                filter_json(body.to_string().as_bytes(), &p, &mut keep_ok),
                Filtered::Unchanged,
                "{body}"
            );
        }
        // A string id with the request's digits is filtered all the same.
        let v = filtered(
            json!({"jsonrpc":"2.0","id":"1","result":{"tools":[{"name":"secret"}]}}),
            &p,
        );
        assert_eq!(v["result"]["tools"], json!([]));
    }

    #[test]
    fn server_requests_reusing_our_id_pass_but_results_are_always_filtered() {
        let p = tools_pending();
        let request =
            json!({"jsonrpc":"2.0","id":1,"method":"sampling/createMessage","params":{"messages":[]}});
        assert_eq!(
            filter_json(request.to_string().as_bytes(), &p, &mut keep_ok),
            Filtered::Unchanged
        );
        let both = json!({"jsonrpc":"2.0","id":1,"method":"x","result":{"tools":[{"name":"secret"}]}});
        assert_eq!(filtered(both, &p)["result"]["tools"], json!([]));
    }

    #[test]
    fn unreadable_answers_are_withheld() {
        let p = tools_pending();
        for body in [
            &b"{"[..],
            b"<html>",
            b"",
            br#"{"jsonrpc":"2.0","id":1,"result":[{"name":"secret"}]}"#,
            br#"{"jsonrpc":"2.0","id":1}"#,
            br#"[{"jsonrpc":"2.0","id":1,"result":"x"}]"#,
        ] {
            assert_eq!(
                filter_json(body, &p, &mut keep_ok),
                Filtered::Withheld,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn duplicate_keys_from_upstream_collapse_to_what_was_checked() {
        let body = br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"secret"}],"tools":[{"name":"ok"},{"name":"secret2"}]}}"#;
        let Filtered::Rewritten(out) = filter_json(body, &tools_pending(), &mut keep_ok) else {
            panic!()
        };
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("\"tools\"").count(), 1, "{text}");
        assert!(!text.contains("secret"), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["result"]["tools"], json!([{"name":"ok"}]));
    }

    const STREAM: &str = "id: e0\ndata:\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":1}}\n\n: keep-alive\n\nevent: message\nid: e1\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"ok_a\"},{\"name\":\"secret\"}],\"nextCursor\":\"z\"}}\n\n";

    fn run(chunks: &[&[u8]]) -> Result<String, Withheld> {
        let mut f = SseListFilter::new(tools_pending());
        let mut out = Vec::new();
        for c in chunks {
            out.extend(f.feed(c, &mut keep_ok)?);
        }
        out.extend(f.finish(&mut keep_ok)?);
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn sse_answers_are_filtered_event_by_event() {
        let out = run(&[STREAM.as_bytes()]).unwrap();
        assert!(out.contains("id: e0\ndata: \n\n"), "{out}");
        assert!(out.contains("notifications/progress"), "{out}");
        let answer = out
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .find(|d| d.contains("result"))
            .unwrap();
        let v: Value = serde_json::from_str(answer).unwrap();
        assert_eq!(
            v,
            json!({"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"ok_a"}],"nextCursor":"z"}})
        );
        assert!(!out.contains("secret"), "{out}");
        assert!(out.contains("id: e1\n"), "{out}");
    }

    #[test]
    fn sse_output_does_not_depend_on_chunking() {
        let whole = run(&[STREAM.as_bytes()]).unwrap();
        let bytes = STREAM.as_bytes();
        for cut in 0..=bytes.len() {
            let (a, b) = bytes.split_at(cut);
            assert_eq!(run(&[a, b]).unwrap(), whole, "cut at {cut}");
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(run(&singles).unwrap(), whole);
        // CRLF framing reads the same.
        let crlf = STREAM.replace('\n', "\r\n");
        assert_eq!(run(&[crlf.as_bytes()]).unwrap(), whole);
    }

    #[test]
    fn sse_without_terminating_blank_line_is_still_filtered() {
        let s = "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"secret\"}]}}";
        let out = run(&[s.as_bytes()]).unwrap();
        assert!(!out.contains("secret"), "{out}");
        assert!(out.contains(r#""tools":[]"#), "{out}");
    }

    #[test]
    fn sse_multiline_data_is_one_message() {
        let s =
            "data: {\"jsonrpc\":\"2.0\",\"id\":1,\ndata: \"result\":{\"tools\":[{\"name\":\"secret\"}]}}\n\n";
        let out = run(&[s.as_bytes()]).unwrap();
        assert!(!out.contains("secret"), "{out}");
    }

    #[test]
    fn unreadable_sse_events_withhold_the_stream() {
        assert_eq!(run(&[b"data: not json\n\n"]), Err(Withheld));
        assert_eq!(
            run(&[b"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":7}\n\n"]),
            Err(Withheld)
        );
        let mut f = SseListFilter::new(tools_pending());
        assert!(f.feed(b"data: {\n\n", &mut keep_ok).is_err());
        // Once withheld, always withheld.
        assert!(f.feed(b"data: {}\n\n", &mut keep_ok).is_err());
        assert!(f.finish(&mut keep_ok).is_err());
    }
}
