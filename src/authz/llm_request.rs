//! Understanding an LLM API request: which endpoint, which model, which tools, streaming and
//! token caps, from the path, a header or the JSON body (OpenAI chat/completions/embeddings/
//! responses and Anthropic messages shapes).

use crate::authz::request_path::CanonicalPath;
use crate::authz::tool_decls::{self, Tool};
pub use crate::authz::tool_decls::{BodyError, ToolChoice, MAX_NAME_LEN};
use serde_json::{Map, Value};

/// The API operation, derived from the canonical path. Policies grant actions by these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ChatCompletions,
    Completions,
    Embeddings,
    Responses,
    Messages,
    Models,
    /// `images/generations` (JSON). Edits and variations are multipart: `Other`.
    ImageGenerations,
    /// `audio/speech` (JSON). Transcriptions and translations are multipart: `Other`.
    Speech,
    Moderations,
    /// Anything else (admin APIs, health, files, batches, assistants, fine-tuning, uploads,
    /// multipart endpoints...): no body inspection, and granted only explicitly.
    Other,
}

impl Endpoint {
    /// The endpoint a path names. Known names compare case-insensitively (`/v1/CHAT/completions`
    /// is chat) and match as suffixes, so Azure-style and proxy prefixes classify too.
    pub fn of(path: &CanonicalPath) -> Endpoint {
        let segments: Vec<String> = path.segments().map(str::to_ascii_lowercase).collect();
        let s: Vec<&str> = segments.iter().map(String::as_str).collect();
        match s.as_slice() {
            [.., "chat", "completions"] => Endpoint::ChatCompletions,
            [.., "completions"] => Endpoint::Completions,
            [.., "embeddings"] => Endpoint::Embeddings,
            [.., "v1", "responses"] | ["responses"] => Endpoint::Responses,
            [.., "v1", "messages"] | ["messages"] => Endpoint::Messages,
            [.., "images", "generations"] => Endpoint::ImageGenerations,
            [.., "audio", "speech"] => Endpoint::Speech,
            [.., "moderations"] => Endpoint::Moderations,
            // Ollama's native API: the same operations, NDJSON streams.
            [.., "api", "chat"] => Endpoint::ChatCompletions,
            [.., "api", "generate"] => Endpoint::Completions,
            [.., "api", "embed"] => Endpoint::Embeddings,
            [.., "api", "tags"] => Endpoint::Models,
            _ if s.windows(2).any(|w| w == ["v1", "models"]) => Endpoint::Models,
            _ => Endpoint::Other,
        }
    }

    /// Whether the path is Ollama's native API, whose `stream` defaults to true.
    pub fn ollama_native(path: &CanonicalPath) -> bool {
        let segments: Vec<String> = path.segments().map(str::to_ascii_lowercase).collect();
        matches!(
            segments.iter().map(String::as_str).collect::<Vec<_>>().as_slice(),
            [.., "api", "chat" | "generate"]
        )
    }

    /// The action name policies grant.
    pub fn action(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "chat",
            Endpoint::Completions => "completions",
            Endpoint::Embeddings => "embeddings",
            Endpoint::Responses => "responses",
            Endpoint::Messages => "messages",
            Endpoint::Models => "models",
            Endpoint::ImageGenerations => "images",
            Endpoint::Speech => "speech",
            Endpoint::Moderations => "moderations",
            Endpoint::Other => "other",
        }
    }

    /// Endpoints whose JSON body carries the model (and, for some, tools).
    pub fn has_json_body(self) -> bool {
        !matches!(self, Endpoint::Models | Endpoint::Other)
    }
}

/// What authorization needs to know about the body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyFacts {
    pub model: Option<String>,
    /// Every tool the body declares, forces or switches on (see `tool_decls`).
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    pub stream: bool,
    /// `max_tokens`, `max_completion_tokens` or `max_output_tokens`, the largest present.
    pub max_tokens: Option<u64>,
}

impl BodyFacts {
    /// The id of every tool the request declares or forces, once each.
    pub fn all_tools(&self) -> Vec<&str> {
        let mut seen = std::collections::HashSet::new();
        self.tools
            .iter()
            .map(|tool| tool.id.as_str())
            .filter(|id| seen.insert(*id))
            .collect()
    }

    /// The first tool none of whose grant names `granted` accepts.
    pub fn first_tool_not_granted(&self, granted: &dyn Fn(&str) -> bool) -> Option<&str> {
        tool_decls::first_not_granted(&self.tools, granted)
    }

    /// The names the model may call the declared tools by, once each.
    pub fn call_names(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.tools
            .iter()
            .flat_map(|t| &t.calls)
            .filter(|c| seen.insert(c.as_str()))
            .cloned()
            .collect()
    }
}

fn name(v: &Value, field: &'static str) -> Result<String, BodyError> {
    match v.as_str() {
        Some(s) if !s.is_empty() && s.len() <= MAX_NAME_LEN => Ok(s.to_string()),
        _ => Err(BodyError::BadField(field)),
    }
}

/// Parses the request body of a JSON endpoint.
pub fn parse_body(body: &[u8]) -> Result<(Map<String, Value>, BodyFacts), BodyError> {
    // Duplicate member names are refused at any depth: parsers disagree on which copy counts
    // (first or last), so the model or tools checked could differ from those served.
    let obj = crate::authn::jose::parse_unique_object(body).map_err(|_| {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(_)) => BodyError::DuplicateMember,
            _ => BodyError::NotJson,
        }
    })?;
    let facts = facts_of(&obj)?;
    Ok((obj, facts))
}

pub fn facts_of(obj: &Map<String, Value>) -> Result<BodyFacts, BodyError> {
    let mut f = BodyFacts::default();
    if let Some(m) = obj.get("model") {
        f.model = Some(name(m, "model")?);
    }
    match obj.get("stream") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => f.stream = *b,
        Some(_) => return Err(BodyError::BadField("stream")),
    }
    for key in ["max_tokens", "max_completion_tokens", "max_output_tokens"] {
        match obj.get(key) {
            None | Some(Value::Null) => {}
            Some(v) => {
                let n = v.as_u64().ok_or(BodyError::BadField("max_tokens"))?;
                f.max_tokens = Some(f.max_tokens.map_or(n, |m| m.max(n)));
            }
        }
    }
    let tools = tool_decls::tools_of(obj)?;
    f.tools = tools.tools;
    f.tool_choice = tools.choice;
    Ok(f)
}

/// Rewrites the token cap fields present in the body to at most `cap`; returns the new body.
pub fn clamp_max_tokens(obj: &mut Map<String, Value>, cap: u64) -> Vec<u8> {
    let mut any = false;
    for key in ["max_tokens", "max_completion_tokens", "max_output_tokens"] {
        if let Some(v) = obj.get_mut(key) {
            if v.as_u64().is_some_and(|n| n > cap) {
                *v = Value::from(cap);
            }
            any = true;
        }
    }
    if !any {
        // No cap given: the upstream default may exceed ours, so set one explicitly.
        obj.insert("max_tokens".into(), Value::from(cap));
    }
    serde_json::to_vec(obj).unwrap_or_default()
}

/// A path template such as `/openai/deployments/{model}/**`: `{model}` captures one segment,
/// `*` matches one segment, a trailing `**` matches the rest. Literal segments compare
/// case-insensitively, like endpoint names: a case variant of the prefix still names the model
/// (else `/OPENAI/deployments/gpt-4o/...` would hide the deployment from the policy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    segments: Vec<String>,
}

impl PathPattern {
    pub fn parse(pattern: &str) -> Result<PathPattern, String> {
        if !pattern.starts_with('/') {
            return Err("must start with \"/\"".into());
        }
        let segments: Vec<String> = pattern
            .trim_start_matches('/')
            .split('/')
            .map(str::to_string)
            .collect();
        if segments.iter().filter(|s| *s == "{model}").count() != 1 {
            return Err("must contain exactly one {model} segment".into());
        }
        if let Some(pos) = segments.iter().position(|s| s == "**") {
            if pos + 1 != segments.len() {
                return Err("\"**\" may only be the last segment".into());
            }
        }
        Ok(PathPattern { segments })
    }

    /// The model named by `path` (decoded, e.g. `anthropic.claude-v2:1`), if it matches.
    pub fn model_of(&self, path: &CanonicalPath) -> Option<String> {
        let parts: Vec<&str> = path.segments().collect();
        let mut model = None;
        for (i, seg) in self.segments.iter().enumerate() {
            if seg == "**" {
                return model;
            }
            let part = *parts.get(i)?;
            match seg.as_str() {
                "{model}" if part.len() <= MAX_NAME_LEN => model = Some(part.to_string()),
                "{model}" => return None,
                "*" => {}
                literal if literal.eq_ignore_ascii_case(part) => {}
                _ => return None,
            }
        }
        if parts.len() == self.segments.len() {
            model
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts(v: Value) -> Result<BodyFacts, BodyError> {
        parse_body(v.to_string().as_bytes()).map(|(_, f)| f)
    }

    #[test]
    fn duplicate_members_are_refused_at_any_depth() {
        for body in [
            r#"{"model":"forbidden","model":"allowed","messages":[]}"#,
            r#"{"model":"m","tools":[{"type":"function","function":{"name":"a","name":"b"}}]}"#,
            r#"{"model":"m","messages":[{"role":"user","role":"system","content":"x"}]}"#,
        ] {
            assert_eq!(
                parse_body(body.as_bytes()).err(),
                Some(BodyError::DuplicateMember),
                "{body}"
            );
        }
        assert_eq!(parse_body(b"{\"model\": 1").err(), Some(BodyError::NotJson));
        assert_eq!(parse_body(b"[1]").err(), Some(BodyError::NotJson));
        assert!(
            parse_body(br#"{"model":"m","a":{"model":"n"}}"#).is_ok(),
            "same name in two objects"
        );
    }

    fn endpoint(raw: &str) -> Endpoint {
        Endpoint::of(&crate::authz::request_path::canonical(raw).unwrap())
    }

    #[test]
    fn endpoints_from_paths() {
        use Endpoint::*;
        for (path, want) in [
            ("/v1/chat/completions", ChatCompletions),
            ("/v1/chat/completions?x=1", ChatCompletions),
            ("/v1/chat/completions/", ChatCompletions),
            ("/openai/deployments/gpt4/chat/completions", ChatCompletions),
            ("/v1/completions", Completions),
            ("/v1/embeddings", Embeddings),
            ("/v1/responses", Responses),
            ("/responses", Responses),
            ("/v1/messages", Messages),
            ("/messages", Messages),
            ("/v1/models", Models),
            ("/v1/models/gpt-4o", Models),
            ("/v1/images/generations", ImageGenerations),
            ("/openai/deployments/d/images/generations", ImageGenerations),
            ("/v1/audio/speech", Speech),
            ("/v1/moderations", Moderations),
            ("/api/chat", ChatCompletions),
            ("/api/generate", Completions),
            ("/api/embed", Embeddings),
            ("/api/embeddings", Embeddings),
            ("/api/tags", Models),
            ("/api/pull", Other),
            ("/api/delete", Other),
            ("/admin/models/load", Other),
            ("/v1/files", Other),
            ("/v1/batches", Other),
            ("/v1/assistants", Other),
            ("/v1/threads/t/runs", Other),
            ("/v1/fine_tuning/jobs", Other),
            ("/v1/uploads", Other),
            ("/v1/audio/transcriptions", Other),
            ("/v1/audio/translations", Other),
            ("/v1/images/edits", Other),
            ("/v1/images/variations", Other),
            ("/v1/responses/resp_1", Other),
            ("/v1/messages/batches", Other),
            ("/", Other),
        ] {
            assert_eq!(endpoint(path), want, "{path}");
        }
        assert!(ChatCompletions.has_json_body() && Speech.has_json_body());
        assert!(!Models.has_json_body() && !Other.has_json_body());
        assert_eq!(
            [ImageGenerations, Speech, Moderations].map(Endpoint::action),
            ["images", "speech", "moderations"]
        );
    }

    #[test]
    fn case_variants_of_known_endpoints_are_those_endpoints() {
        assert_eq!(endpoint("/v1/CHAT/completions"), Endpoint::ChatCompletions);
        assert_eq!(endpoint("/V1/Chat/Completions"), Endpoint::ChatCompletions);
        assert_eq!(endpoint("/V1/RESPONSES"), Endpoint::Responses);
        assert_eq!(endpoint("/v1/Messages"), Endpoint::Messages);
        assert_eq!(endpoint("/V1/MODELS/x"), Endpoint::Models);
        assert_eq!(endpoint("/OpenAI/Deployments/d/Embeddings"), Endpoint::Embeddings);
    }

    #[test]
    fn openai_chat_shape() {
        let f = facts(json!({
            "model": "gpt-4o", "stream": true, "max_completion_tokens": 512,
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {}}},
                      {"type": "function", "function": {"name": "search"}}],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}}
        }))
        .unwrap();
        assert_eq!(f.model.as_deref(), Some("gpt-4o"));
        assert!(f.stream);
        assert_eq!(f.max_tokens, Some(512));
        assert_eq!(f.all_tools(), vec!["get_weather", "search"]);
        assert_eq!(f.tool_choice, Some(ToolChoice::Named("get_weather".into())));
    }

    #[test]
    fn legacy_functions_and_forced_undeclared_tool() {
        let f = facts(json!({"model": "m", "functions": [{"name": "a"}], "function_call": {"name": "b"}}))
            .unwrap();
        assert_eq!(f.all_tools(), vec!["a", "b"]);
        let f = facts(json!({"model": "m", "tool_choice": "required"})).unwrap();
        assert_eq!(f.tool_choice, Some(ToolChoice::Required));
        let f = facts(json!({"model": "m", "tool_choice": "auto"})).unwrap();
        assert_eq!(f.tool_choice, None);
    }

    #[test]
    fn responses_api_shape() {
        let f = facts(json!({
            "model": "o4-mini", "input": "hi", "max_output_tokens": 100,
            "tools": [{"type": "function", "name": "lookup"}, {"type": "web_search_preview"},
                      {"type": "mcp", "server_label": "github", "server_url": "https://x"}],
            "tool_choice": {"type": "function", "name": "lookup"}
        }))
        .unwrap();
        assert_eq!(f.all_tools(), vec!["lookup", "web_search_preview", "mcp:github"]);
        assert_eq!(f.tool_choice, Some(ToolChoice::Named("lookup".into())));
        assert_eq!(f.max_tokens, Some(100));
    }

    #[test]
    fn anthropic_messages_shape() {
        let f = facts(json!({
            "model": "claude-sonnet-4", "max_tokens": 1024, "stream": false,
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"name": "get_stock", "input_schema": {"type": "object"}},
                      {"type": "web_search_20250305", "name": "web_search"}],
            "tool_choice": {"type": "tool", "name": "get_stock"}
        }))
        .unwrap();
        assert_eq!(f.all_tools(), vec!["get_stock", "web_search_20250305"]);
        assert_eq!(f.tool_choice, Some(ToolChoice::Named("get_stock".into())));
        let f = facts(json!({"model": "c", "tool_choice": {"type": "any"}})).unwrap();
        assert_eq!(f.tool_choice, Some(ToolChoice::Required));
    }

    #[test]
    fn embeddings_and_completions_shapes() {
        let f = facts(json!({"model": "text-embedding-3-small", "input": ["a", "b"]})).unwrap();
        assert_eq!(f.model.as_deref(), Some("text-embedding-3-small"));
        assert!(f.tools.is_empty());
        let f = facts(json!({"model": "davinci", "prompt": "x", "max_tokens": 7})).unwrap();
        assert_eq!(f.max_tokens, Some(7));
    }

    #[test]
    fn malformed_bodies() {
        for bad in [
            &b"not json"[..],
            b"[1,2]",
            b"\"s\"",
            b"{\"model\": ",
            b"",
            b"\xff\xfe",
        ] {
            assert_eq!(parse_body(bad).unwrap_err(), BodyError::NotJson, "{bad:?}");
        }
        assert_eq!(
            facts(json!({"model": 5})).unwrap_err(),
            BodyError::BadField("model")
        );
        assert_eq!(
            facts(json!({"model": ""})).unwrap_err(),
            BodyError::BadField("model")
        );
        assert_eq!(
            facts(json!({"stream": "yes"})).unwrap_err(),
            BodyError::BadField("stream")
        );
        assert_eq!(
            facts(json!({"max_tokens": -1})).unwrap_err(),
            BodyError::BadField("max_tokens")
        );
        assert_eq!(
            facts(json!({"tools": {"a": 1}})).unwrap_err(),
            BodyError::BadField("tools")
        );
        assert_eq!(
            facts(json!({"tools": [{"type": "function", "function": {}}]})).unwrap_err(),
            BodyError::BadField("tools")
        );
        assert_eq!(
            facts(json!({"model": "x".repeat(300)})).unwrap_err(),
            BodyError::BadField("model")
        );
    }

    #[test]
    fn unicode_and_escapes() {
        let f = facts(json!({"model": "modèle-日本", "tools": [{"name": "wéather"}]})).unwrap();
        assert_eq!(f.model.as_deref(), Some("modèle-日本"));
        // Escaped forms decode to the same name: no bypass by \u escapes.
        let (_, f) = parse_body(br#"{"model":"gpt\u002d4o","tools":[{"name":"se\u0061rch"}]}"#).unwrap();
        assert_eq!(f.model.as_deref(), Some("gpt-4o"));
        assert_eq!(f.all_tools(), vec!["search"]);
    }

    #[test]
    fn huge_body_parses_without_recursion_blowup() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(parse_body(deep.as_bytes()).unwrap_err(), BodyError::NotJson);
        let big = json!({"model": "m", "messages": [{"role": "user", "content": "x".repeat(3_000_000)}]});
        assert_eq!(facts(big).unwrap().model.as_deref(), Some("m"));
    }

    #[test]
    fn clamping_rewrites_caps() {
        let (mut obj, _) =
            parse_body(br#"{"model":"m","max_tokens":4000,"max_completion_tokens":10}"#).unwrap();
        let body = clamp_max_tokens(&mut obj, 256);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["max_tokens"], 256);
        assert_eq!(v["max_completion_tokens"], 10);
        let (mut obj, _) = parse_body(br#"{"model":"m"}"#).unwrap();
        let v: Value = serde_json::from_slice(&clamp_max_tokens(&mut obj, 64)).unwrap();
        assert_eq!(v["max_tokens"], 64);
    }

    #[test]
    fn path_patterns() {
        let model =
            |p: &PathPattern, raw: &str| p.model_of(&crate::authz::request_path::canonical(raw).unwrap());
        let azure = PathPattern::parse("/openai/deployments/{model}/**").unwrap();
        assert_eq!(
            model(
                &azure,
                "/openai/deployments/gpt-4o/chat/completions?api-version=1"
            )
            .as_deref(),
            Some("gpt-4o")
        );
        assert_eq!(
            model(&azure, "/openai/deployments/gpt-4o").as_deref(),
            Some("gpt-4o")
        );
        assert_eq!(model(&azure, "/openai/other/gpt-4o/chat"), None);
        // A case variant of the prefix still names the deployment; the model keeps its case.
        assert_eq!(
            model(&azure, "/OpenAI/DEPLOYMENTS/GPT-4o/chat/completions").as_deref(),
            Some("GPT-4o")
        );
        let bedrock = PathPattern::parse("/model/{model}/invoke").unwrap();
        assert_eq!(
            model(&bedrock, "/model/anthropic.claude-v2/invoke").as_deref(),
            Some("anthropic.claude-v2")
        );
        // The model is decoded: botocore sends ":" as %3A.
        assert_eq!(
            model(&bedrock, "/model/anthropic.claude-v2%3A1/invoke").as_deref(),
            Some("anthropic.claude-v2:1")
        );
        assert_eq!(model(&bedrock, "/model/x/invoke/").as_deref(), Some("x"));
        assert_eq!(model(&bedrock, "/model/x/invoke/extra"), None);
        assert_eq!(
            model(&bedrock, &format!("/model/{}/invoke", "m".repeat(300))),
            None
        );
        assert!(PathPattern::parse("/no/model").is_err());
        assert!(PathPattern::parse("/a/**/{model}").is_err());
        assert!(PathPattern::parse("relative/{model}").is_err());
    }
}
