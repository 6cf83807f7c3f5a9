//! Tool declarations in a request body: every place the OpenAI Chat Completions, OpenAI
//! Responses and Anthropic Messages APIs let a request declare, force or switch on a tool,
//! and the names a grant must match for each.
//!
//! A tool is identified by its type and, for named kinds (functions, custom tools, Anthropic
//! client tools), by the name the API uses. A declaration that carries two different names
//! is refused: an upstream might read either. Built-in and server tools are identified by
//! their type; a known family also answers to its type without the date and to the name the
//! API fixes for it, so a grant of `web_search` or `bash` keeps covering every version.
//! Unknown types are identified by the exact type only, so nothing an attacker invents can
//! borrow a granted name.

use serde_json::{Map, Value};

/// A forced tool choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model must call this tool.
    Named(String),
    /// The model must call some tool ("required" / Anthropic "any").
    Required,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Not JSON, or not a JSON object.
    NotJson,
    /// A field has the wrong type (e.g. `model: 5`); names the field.
    BadField(&'static str),
    /// An object names the same member twice.
    DuplicateMember,
}

/// Names longer than this are refused: no real model or tool name is that long, and the
/// names end up in audit records and error messages.
pub const MAX_NAME_LEN: usize = 256;

/// Whether a tool is chosen by name or by type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ToolKind {
    /// A function, custom tool or Anthropic client tool: the caller picks the name.
    Named,
    /// A built-in / server tool, an MCP server or a switch such as `web_search_options`.
    Typed,
}

/// One tool a request declares, forces or switches on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tool {
    /// How policies and audit records name it: the function name, the built-in type,
    /// `mcp:<server label>`, `web_search_options`...
    pub id: String,
    /// Other names of the same tool a grant may match instead of `id`: a known family's
    /// type without its date and the name the API fixes for it. Never caller-chosen.
    pub aliases: Vec<String>,
    /// Names the model calls it by in responses (what `tool_calls` sees).
    pub calls: Vec<String>,
    pub kind: ToolKind,
}

impl Tool {
    fn named(name: String) -> Tool {
        Tool {
            calls: vec![name.clone()],
            id: name,
            aliases: Vec::new(),
            kind: ToolKind::Named,
        }
    }

    fn typed(id: String, aliases: Vec<String>, calls: Vec<String>) -> Tool {
        Tool {
            id,
            aliases,
            calls,
            kind: ToolKind::Typed,
        }
    }

    /// The id and the aliases: a grant of any of them authorizes the tool.
    pub fn grant_names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.id.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}

/// What the body declares and forces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolFacts {
    /// Every declared tool, then every forced tool that is not one of them.
    pub tools: Vec<Tool>,
    pub choice: Option<ToolChoice>,
}

/// The first tool no grant covers (by its id), if any.
pub fn first_not_granted<'a>(tools: &'a [Tool], granted: &dyn Fn(&str) -> bool) -> Option<&'a str> {
    tools
        .iter()
        .find(|t| !t.grant_names().any(granted))
        .map(|t| t.id.as_str())
}

/// Built-in tools of the OpenAI APIs. They take no name; `<type>_YYYY_MM_DD` is a dated
/// variant of the same tool.
const OPENAI_BUILTINS: &[&str] = &[
    "web_search",
    "web_search_preview",
    "file_search",
    "code_interpreter",
    "computer_use_preview",
    "computer_use",
    "image_generation",
    "local_shell",
    "shell",
    "apply_patch",
];

/// Anthropic server and Anthropic-defined tools: type `<family>_YYYYMMDD`, with a `name` fixed
/// by the API (the accepted names), and any further names their calls carry in responses.
const ANTHROPIC_FAMILIES: &[(&str, &[&str], &[&str])] = &[
    ("web_search", &["web_search"], &[]),
    ("web_fetch", &["web_fetch"], &[]),
    (
        "code_execution",
        &["code_execution"],
        &["bash_code_execution", "text_editor_code_execution"],
    ),
    ("bash", &["bash"], &[]),
    (
        "text_editor",
        &["str_replace_editor", "str_replace_based_edit_tool"],
        &[],
    ),
    ("computer", &["computer"], &[]),
    ("memory", &["memory"], &[]),
    ("tool_search_tool_regex", &["tool_search_tool_regex"], &[]),
    ("tool_search_tool_bm25", &["tool_search_tool_bm25"], &[]),
];

/// Anthropic families the API also accepts without a date.
const ANTHROPIC_UNDATED: &[&str] = &["tool_search_tool_regex", "tool_search_tool_bm25"];

type Family = (&'static str, &'static [&'static str], &'static [&'static str]);

fn anthropic_family(kind: &str) -> Option<Family> {
    let base = match kind.rsplit_once('_') {
        Some((base, date)) if date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) => base,
        _ if ANTHROPIC_UNDATED.contains(&kind) => kind,
        _ => return None,
    };
    ANTHROPIC_FAMILIES.iter().copied().find(|(f, _, _)| *f == base)
}

/// The OpenAI built-in `kind` is (itself or dated), if any.
fn openai_builtin(kind: &str) -> Option<&'static str> {
    OPENAI_BUILTINS.iter().copied().find(|b| {
        kind == *b
            || kind
                .strip_prefix(b)
                .and_then(|rest| rest.strip_prefix('_'))
                .is_some_and(is_dashed_date)
    })
}

/// `YYYY_MM_DD`.
fn is_dashed_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'_'
            } else {
                c.is_ascii_digit()
            }
        })
}

fn name_str(v: &Value, field: &'static str) -> Result<String, BodyError> {
    match v.as_str() {
        Some(s) if !s.is_empty() && s.len() <= MAX_NAME_LEN => Ok(s.to_string()),
        _ => Err(BodyError::BadField(field)),
    }
}

fn present<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    o.get(key).filter(|v| !v.is_null())
}

/// Where a declaration may carry a name: the top level (Responses, Anthropic, legacy
/// `functions`), `function.name` (Chat) and `custom.name` (Chat custom tools).
const NAME_FIELDS: [&str; 3] = ["name", "function", "custom"];

/// The names a declaration carries, with the field each came from.
fn names_in(o: &Map<String, Value>, field: &'static str) -> Result<Vec<(&'static str, String)>, BodyError> {
    let mut out = Vec::new();
    for key in NAME_FIELDS {
        let Some(v) = present(o, key) else { continue };
        let n = if key == "name" {
            v
        } else {
            // `function` / `custom` must be an object; its name may be absent.
            let Some(inner) = v.as_object() else {
                return Err(BodyError::BadField(field));
            };
            match present(inner, "name") {
                Some(n) => n,
                None => continue,
            }
        };
        out.push((key, name_str(n, field)?));
    }
    Ok(out)
}

/// The one name of a named declaration: two different names are refused.
fn single_name(names: &[(&str, String)], field: &'static str) -> Result<Option<String>, BodyError> {
    let mut iter = names.iter().map(|(_, n)| n);
    let first = iter.next();
    if let Some(f) = first {
        if iter.any(|n| n != f) {
            return Err(BodyError::BadField(field));
        }
    }
    Ok(first.cloned())
}

fn type_of<'a>(o: &'a Map<String, Value>, field: &'static str) -> Result<Option<&'a str>, BodyError> {
    match present(o, "type") {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(BodyError::BadField(field)),
    }
}

fn mcp_id(label: &Value, field: &'static str) -> Result<String, BodyError> {
    let label = name_str(label, field)?;
    name_str(&Value::String(format!("mcp:{label}")), field)
}

fn mcp_tool(id: String) -> Tool {
    Tool::typed(id.clone(), Vec::new(), vec![id])
}

/// A list of tool names, or absent.
fn check_name_list(v: Option<&Value>, field: &'static str) -> Result<(), BodyError> {
    match v {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(names)) => names.iter().try_for_each(|n| name_str(n, field).map(drop)),
        Some(_) => Err(BodyError::BadField(field)),
    }
}

/// One entry of `tools` (or of an `allowed_tools` list, or a legacy `functions` entry).
fn declaration(t: &Value, field: &'static str) -> Result<Tool, BodyError> {
    let Value::Object(o) = t else {
        return Err(BodyError::BadField(field));
    };
    let kind = type_of(o, field)?;
    let names = names_in(o, field)?;
    match kind {
        // Chat `{"type":"function","function":{"name"}}`, Responses `{"type":"function",
        // "name"}`, custom tools in both shapes, Anthropic client tools with or without
        // `"type":"custom"`, legacy `functions` entries.
        None | Some("function") | Some("custom") => single_name(&names, field)?
            .map(Tool::named)
            .ok_or(BodyError::BadField(field)),
        // OpenAI Responses MCP server: by label; `allowed_tools` narrows it.
        Some("mcp") => {
            if !names.is_empty() {
                return Err(BodyError::BadField(field));
            }
            match present(o, "allowed_tools") {
                Some(Value::Object(filter)) => check_name_list(filter.get("tool_names"), field)?,
                other => check_name_list(other, field)?,
            }
            let label = present(o, "server_label").unwrap_or(&Value::Null);
            Ok(mcp_tool(mcp_id(label, field)?))
        }
        // Anthropic MCP connector: a toolset of a server listed in `mcp_servers`.
        Some("mcp_toolset") => {
            if !names.is_empty() {
                return Err(BodyError::BadField(field));
            }
            let server = present(o, "mcp_server_name").unwrap_or(&Value::Null);
            Ok(mcp_tool(mcp_id(server, field)?))
        }
        Some(kind) => {
            let id = name_str(&Value::String(kind.to_string()), field)?;
            if let Some((family, fixed, extra_calls)) = anthropic_family(kind) {
                // Only the API's own name is accepted: a server tool never borrows a
                // granted function name.
                let declared = match names.as_slice() {
                    [] => None,
                    [("name", n)] if fixed.contains(&n.as_str()) => Some(n.clone()),
                    _ => return Err(BodyError::BadField(field)),
                };
                let mut aliases: Vec<String> = std::iter::once(family)
                    .chain(fixed.iter().copied())
                    .filter(|a| *a != id)
                    .map(str::to_string)
                    .collect();
                aliases.dedup();
                let calls = match declared {
                    Some(n) => vec![n],
                    None => fixed.iter().map(|s| s.to_string()).collect(),
                }
                .into_iter()
                .chain(extra_calls.iter().map(|s| s.to_string()))
                .collect();
                return Ok(Tool::typed(id, aliases, calls));
            }
            if let Some(base) = openai_builtin(kind) {
                // OpenAI built-ins take no name at all.
                if !names.is_empty() {
                    return Err(BodyError::BadField(field));
                }
                let aliases = if base == kind {
                    Vec::new()
                } else {
                    vec![base.to_string()]
                };
                return Ok(Tool::typed(id, aliases, Vec::new()));
            }
            // Unknown type: authorized by the exact type. A top-level name is how the
            // model will call it (Anthropic style); a nested function/custom is a second
            // identity some upstream may read instead.
            let calls = match names.as_slice() {
                [] => Vec::new(),
                [("name", n)] => vec![n.clone()],
                _ => return Err(BodyError::BadField(field)),
            };
            Ok(Tool::typed(id, Vec::new(), calls))
        }
    }
}

/// `tool_choice` (every API's forms): pushes the tools it forces or lists to `out`.
fn tool_choice(v: &Value, out: &mut Vec<Tool>) -> Result<Option<ToolChoice>, BodyError> {
    const F: &str = "tool_choice";
    let o = match v {
        Value::String(s) => {
            return match s.as_str() {
                "auto" | "none" => Ok(None),
                "required" | "any" => Ok(Some(ToolChoice::Required)),
                _ => Err(BodyError::BadField(F)),
            }
        }
        Value::Object(o) => o,
        _ => return Err(BodyError::BadField(F)),
    };
    let kind = type_of(o, F)?;
    match kind {
        Some("auto") | Some("none") | Some("any") | Some("required") => {
            if !names_in(o, F)?.is_empty() {
                return Err(BodyError::BadField(F));
            }
            Ok(matches!(kind, Some("any") | Some("required")).then_some(ToolChoice::Required))
        }
        // Anthropic `{"type":"tool","name"}` forces any declared tool by its name.
        Some("tool") => {
            let names = names_in(o, F)?;
            let name = single_name(&names, F)?.ok_or(BodyError::BadField(F))?;
            out.push(Tool::named(name.clone()));
            Ok(Some(ToolChoice::Named(name)))
        }
        // OpenAI MCP: `{"type":"mcp","server_label","name"?}`: the name is a tool of the
        // server, which is what is authorized.
        Some("mcp") => {
            let id = mcp_id(present(o, "server_label").unwrap_or(&Value::Null), F)?;
            if let Some(n) = present(o, "name") {
                name_str(n, F)?;
            }
            out.push(mcp_tool(id.clone()));
            Ok(Some(ToolChoice::Named(id)))
        }
        // Chat `{"type":"allowed_tools","allowed_tools":{"mode","tools"}}`, Responses
        // `{"type":"allowed_tools","mode","tools"}`.
        Some("allowed_tools") => {
            let mut required = false;
            let nested = match present(o, "allowed_tools") {
                None => None,
                Some(Value::Object(inner)) => Some(inner),
                Some(_) => return Err(BodyError::BadField(F)),
            };
            for part in std::iter::once(o).chain(nested) {
                match present(part, "mode") {
                    None => {}
                    Some(Value::String(m)) if m == "auto" => {}
                    Some(Value::String(m)) if m == "required" => required = true,
                    Some(_) => return Err(BodyError::BadField(F)),
                }
                match present(part, "tools") {
                    None => {}
                    Some(Value::Array(list)) => {
                        for t in list {
                            out.push(declaration(t, F)?);
                        }
                    }
                    Some(_) => return Err(BodyError::BadField(F)),
                }
            }
            Ok(required.then_some(ToolChoice::Required))
        }
        // Function or custom tool by name, or a built-in by type: same rules as a declaration.
        _ => {
            let tool = declaration(v, F)?;
            let id = tool.id.clone();
            out.push(tool);
            Ok(Some(ToolChoice::Named(id)))
        }
    }
}

/// Whether a forced tool is one the request declares (so the declaration's authorization
/// covers it): by call name for a name, by type for a type.
fn declared_by(forced: &Tool, declared: &[Tool]) -> bool {
    declared.iter().any(|d| match forced.kind {
        ToolKind::Named => d.calls.contains(&forced.id),
        ToolKind::Typed => d.kind == ToolKind::Typed && d.grant_names().any(|n| n == forced.id),
    })
}

/// Every tool the body declares, forces or switches on.
pub fn tools_of(obj: &Map<String, Value>) -> Result<ToolFacts, BodyError> {
    let mut declared: Vec<Tool> = Vec::new();
    for (key, field) in [("tools", "tools"), ("functions", "functions")] {
        match present(obj, key) {
            None => {}
            Some(Value::Array(list)) => {
                for t in list {
                    declared.push(declaration(t, field)?);
                }
            }
            Some(_) => return Err(BodyError::BadField(field)),
        }
    }
    // Anthropic MCP connector servers: `{"type":"url","url","name","tool_configuration":
    // {"enabled","allowed_tools"}}`; the model calls their tools through the API.
    match present(obj, "mcp_servers") {
        None => {}
        Some(Value::Array(servers)) => {
            const F: &str = "mcp_servers";
            for s in servers {
                let Value::Object(s) = s else {
                    return Err(BodyError::BadField(F));
                };
                match present(s, "tool_configuration") {
                    None => {}
                    Some(Value::Object(tc)) => check_name_list(tc.get("allowed_tools"), F)?,
                    Some(_) => return Err(BodyError::BadField(F)),
                }
                declared.push(mcp_tool(mcp_id(present(s, "name").unwrap_or(&Value::Null), F)?));
            }
        }
        Some(_) => return Err(BodyError::BadField("mcp_servers")),
    }
    // Switches that turn on a server-side tool without a `tools` entry.
    if present(obj, "web_search_options").is_some() {
        // Chat Completions web search (search models).
        declared.push(Tool::typed("web_search_options".into(), Vec::new(), Vec::new()));
    }
    match present(obj, "data_sources") {
        // Azure OpenAI "on your data": the service queries these sources itself.
        None => {}
        Some(Value::Array(sources)) => {
            for s in sources {
                let kind = s
                    .get("type")
                    .map(|k| name_str(k, "data_sources"))
                    .transpose()?
                    .ok_or(BodyError::BadField("data_sources"))?;
                let id = name_str(&Value::String(format!("data_sources:{kind}")), "data_sources")?;
                declared.push(Tool::typed(id, Vec::new(), Vec::new()));
            }
        }
        Some(_) => return Err(BodyError::BadField("data_sources")),
    }
    if let Some(Value::Object(prompt)) = present(obj, "prompt") {
        // Responses stored prompt: its template may declare tools this body does not show.
        // (A string or array `prompt` is legacy Completions text.)
        let id = present(prompt, "id").unwrap_or(&Value::Null);
        let id = name_str(
            &Value::String(format!("prompt:{}", name_str(id, "prompt")?)),
            "prompt",
        )?;
        declared.push(Tool::typed(id, Vec::new(), Vec::new()));
    }

    let mut forced = Vec::new();
    let mut choice = match present(obj, "tool_choice") {
        None => None,
        Some(v) => tool_choice(v, &mut forced)?,
    };
    // Legacy `function_call`: checked even next to a `tool_choice`, as an upstream may
    // prefer either.
    match present(obj, "function_call") {
        None => {}
        Some(Value::String(s)) if s == "auto" || s == "none" => {}
        Some(Value::Object(fc)) => {
            let names = names_in(fc, "function_call")?;
            let name = single_name(&names, "function_call")?.ok_or(BodyError::BadField("function_call"))?;
            forced.push(Tool::named(name.clone()));
            choice = choice.or(Some(ToolChoice::Named(name)));
        }
        Some(_) => return Err(BodyError::BadField("function_call")),
    }

    // Sets keep this linear: a request may declare thousands of tools.
    let mut tools: Vec<Tool> = Vec::with_capacity(declared.len() + forced.len());
    let mut seen = std::collections::HashSet::new();
    for t in declared {
        if seen.insert(t.clone()) {
            tools.push(t);
        }
    }
    let declared_count = tools.len();
    for t in forced {
        let declared = tools.get(..declared_count).unwrap_or_default();
        if !declared_by(&t, declared) && seen.insert(t.clone()) {
            tools.push(t);
        }
    }
    Ok(ToolFacts { tools, choice })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::llm_request::{parse_body, BodyFacts};
    use serde_json::json;

    fn facts(v: Value) -> Result<BodyFacts, BodyError> {
        parse_body(v.to_string().as_bytes()).map(|(_, f)| f)
    }

    fn ids(v: Value) -> Vec<String> {
        facts(v)
            .unwrap()
            .all_tools()
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    fn refused(v: Value) -> BodyError {
        facts(v.clone()).expect_err(&v.to_string())
    }

    fn granted_by(v: Value, grants: &[&str]) -> Result<(), String> {
        let f = facts(v).unwrap();
        match f.first_tool_not_granted(&|n| grants.iter().any(|g| crate::authz::policy::glob(g, n))) {
            None => Ok(()),
            Some(t) => Err(t.to_string()),
        }
    }

    // ---------- OpenAI Chat Completions ----------

    #[test]
    fn chat_functions_custom_and_legacy() {
        let body = json!({"model": "m", "tools": [
            {"type": "function", "function": {"name": "get_weather", "parameters": {}}},
            {"type": "custom", "custom": {"name": "code_exec", "format": {"type": "text"}}}
        ], "functions": [{"name": "legacy_fn", "parameters": {}}]});
        assert_eq!(ids(body.clone()), vec!["get_weather", "code_exec", "legacy_fn"]);
        assert_eq!(
            granted_by(body.clone(), &["get_weather", "code_exec", "legacy_fn"]),
            Ok(())
        );
        assert_eq!(
            granted_by(body, &["get_weather", "legacy_fn"]),
            Err("code_exec".into())
        );
    }

    #[test]
    fn chat_tool_choice_forms() {
        let f = facts(json!({"model": "m",
            "tools": [{"type": "function", "function": {"name": "a"}}],
            "tool_choice": {"type": "function", "function": {"name": "a"}}}))
        .unwrap();
        assert_eq!(f.tool_choice, Some(ToolChoice::Named("a".into())));
        assert_eq!(f.all_tools(), vec!["a"], "a forced declared tool is that tool");
        // Forcing a custom tool that is not declared: it must be granted itself.
        assert_eq!(
            ids(json!({"tool_choice": {"type": "custom", "custom": {"name": "rm"}}})),
            vec!["rm"]
        );
        // allowed_tools: every listed tool counts; mode required forces one of them.
        let f = facts(json!({"tools": [{"type": "function", "function": {"name": "a"}}],
            "tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "required",
                "tools": [{"type": "function", "function": {"name": "a"}},
                          {"type": "function", "function": {"name": "b"}}]}}}))
        .unwrap();
        assert_eq!(f.tool_choice, Some(ToolChoice::Required));
        assert_eq!(f.all_tools(), vec!["a", "b"]);
        for s in ["auto", "none"] {
            assert_eq!(facts(json!({"tool_choice": s})).unwrap().tool_choice, None);
        }
        assert_eq!(
            facts(json!({"tool_choice": "required"})).unwrap().tool_choice,
            Some(ToolChoice::Required)
        );
        assert_eq!(
            refused(json!({"tool_choice": "get_weather"})),
            BodyError::BadField("tool_choice")
        );
        assert_eq!(
            refused(json!({"tool_choice": 5})),
            BodyError::BadField("tool_choice")
        );
    }

    #[test]
    fn legacy_function_call_is_checked_next_to_tool_choice() {
        let f = facts(json!({"functions": [{"name": "a"}], "function_call": {"name": "b"}})).unwrap();
        assert_eq!(f.all_tools(), vec!["a", "b"]);
        assert_eq!(f.tool_choice, Some(ToolChoice::Named("b".into())));
        // Today's upstreams may prefer either field: both are authorized.
        let f = facts(json!({"tools": [{"type": "function", "function": {"name": "a"}}],
            "tool_choice": {"type": "function", "function": {"name": "a"}},
            "function_call": {"name": "evil"}}))
        .unwrap();
        assert_eq!(f.all_tools(), vec!["a", "evil"]);
        assert_eq!(
            facts(json!({"function_call": "auto"})).unwrap().all_tools(),
            Vec::<&str>::new()
        );
        assert_eq!(
            refused(json!({"function_call": "evil"})),
            BodyError::BadField("function_call")
        );
        assert_eq!(
            refused(json!({"function_call": {}})),
            BodyError::BadField("function_call")
        );
    }

    #[test]
    fn web_search_options_and_data_sources_are_tools() {
        let body = json!({"model": "gpt-4o-search-preview", "web_search_options": {}});
        assert_eq!(ids(body.clone()), vec!["web_search_options"]);
        assert_eq!(
            granted_by(body.clone(), &["search_*"]),
            Err("web_search_options".into())
        );
        assert_eq!(granted_by(body, &["web_search_options"]), Ok(()));
        assert!(ids(json!({"web_search_options": null})).is_empty());
        let body =
            json!({"data_sources": [{"type": "azure_search", "parameters": {"endpoint": "https://x"}}]});
        assert_eq!(ids(body), vec!["data_sources:azure_search"]);
        assert_eq!(
            refused(json!({"data_sources": [{}]})),
            BodyError::BadField("data_sources")
        );
        assert_eq!(
            refused(json!({"data_sources": {"type": "x"}})),
            BodyError::BadField("data_sources")
        );
    }

    // ---------- OpenAI Responses ----------

    #[test]
    fn responses_builtins_by_type_with_dated_aliases() {
        let body = json!({"model": "o4-mini", "tools": [
            {"type": "function", "name": "lookup", "parameters": {}},
            {"type": "custom", "name": "grammar_tool"},
            {"type": "web_search_preview"},
            {"type": "web_search_preview_2025_03_11"},
            {"type": "web_search"},
            {"type": "file_search", "vector_store_ids": ["vs_1"]},
            {"type": "code_interpreter", "container": {"type": "auto"}},
            {"type": "computer_use_preview", "display_width": 1024, "display_height": 768, "environment": "browser"},
            {"type": "image_generation"},
            {"type": "local_shell"},
            {"type": "mcp", "server_label": "github", "server_url": "https://x", "allowed_tools": ["search"]},
            {"type": "mcp", "server_label": "gmail", "connector_id": "connector_gmail",
             "allowed_tools": {"tool_names": ["read"], "read_only": true}}
        ]});
        assert_eq!(
            ids(body.clone()),
            vec![
                "lookup",
                "grammar_tool",
                "web_search_preview",
                "web_search_preview_2025_03_11",
                "web_search",
                "file_search",
                "code_interpreter",
                "computer_use_preview",
                "image_generation",
                "local_shell",
                "mcp:github",
                "mcp:gmail"
            ]
        );
        // A grant of the undated type covers the dated variant (existing configs keep working).
        let all = [
            "lookup",
            "grammar_tool",
            "web_search_preview",
            "web_search",
            "file_search",
            "code_interpreter",
            "computer_use_preview",
            "image_generation",
            "local_shell",
            "mcp:github",
            "mcp:gmail",
        ];
        assert_eq!(granted_by(body.clone(), &all), Ok(()));
        let without: Vec<&str> = all.iter().copied().filter(|t| *t != "code_interpreter").collect();
        assert_eq!(granted_by(body, &without), Err("code_interpreter".into()));
        // A function grant never covers a built-in.
        assert_eq!(
            granted_by(json!({"tools": [{"type": "local_shell"}]}), &["lookup", "mcp:*"]),
            Err("local_shell".into())
        );
    }

    #[test]
    fn responses_tool_choice_forms() {
        let f = facts(json!({"tools": [{"type": "function", "name": "lookup"}],
            "tool_choice": {"type": "function", "name": "lookup"}}))
        .unwrap();
        assert_eq!(f.tool_choice, Some(ToolChoice::Named("lookup".into())));
        assert_eq!(f.all_tools(), vec!["lookup"]);
        // A built-in forced by type, declared or not.
        let f = facts(json!({"tools": [{"type": "file_search"}], "tool_choice": {"type": "file_search"}}))
            .unwrap();
        assert_eq!(f.all_tools(), vec!["file_search"]);
        assert_eq!(
            ids(json!({"tool_choice": {"type": "code_interpreter"}})),
            vec!["code_interpreter"]
        );
        // Forcing the preview alias of a declared dated built-in is that built-in.
        assert_eq!(
            ids(json!({"tools": [{"type": "web_search_preview_2025_03_11"}],
                "tool_choice": {"type": "web_search_preview"}})),
            vec!["web_search_preview_2025_03_11"]
        );
        // MCP: by server label, whatever tool of it is named.
        let f = facts(json!({"tool_choice": {"type": "mcp", "server_label": "deepwiki", "name": "ask"}}))
            .unwrap();
        assert_eq!(f.all_tools(), vec!["mcp:deepwiki"]);
        assert_eq!(f.tool_choice, Some(ToolChoice::Named("mcp:deepwiki".into())));
        assert_eq!(
            ids(json!({"tool_choice": {"type": "custom", "name": "x"}})),
            vec!["x"]
        );
        let f = facts(
            json!({"tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": [
            {"type": "function", "name": "a"}, {"type": "mcp", "server_label": "deepwiki"},
            {"type": "image_generation"}]}}),
        )
        .unwrap();
        assert_eq!(f.tool_choice, None);
        assert_eq!(f.all_tools(), vec!["a", "mcp:deepwiki", "image_generation"]);
        assert_eq!(
            refused(json!({"tool_choice": {"type": "allowed_tools", "mode": "sometimes", "tools": []}})),
            BodyError::BadField("tool_choice")
        );
        assert_eq!(
            refused(json!({"tool_choice": {"type": "mcp"}})),
            BodyError::BadField("tool_choice")
        );
    }

    #[test]
    fn mcp_needs_a_label_and_well_formed_filters() {
        assert_eq!(
            refused(json!({"tools": [{"type": "mcp", "server_url": "https://x"}]})),
            BodyError::BadField("tools")
        );
        assert_eq!(
            refused(json!({"tools": [{"type": "mcp", "server_label": ""}]})),
            BodyError::BadField("tools")
        );
        assert_eq!(
            refused(json!({"tools": [{"type": "mcp", "server_label": "a", "allowed_tools": "x"}]})),
            BodyError::BadField("tools")
        );
        assert_eq!(
            refused(
                json!({"tools": [{"type": "mcp", "server_label": "a", "allowed_tools": {"tool_names": [1]}}]})
            ),
            BodyError::BadField("tools")
        );
    }

    // ---------- Anthropic Messages ----------

    #[test]
    fn anthropic_client_tools_with_or_without_custom_type() {
        let body = json!({"model": "claude", "max_tokens": 10, "tools": [
            {"name": "get_stock", "input_schema": {"type": "object"}},
            {"type": "custom", "name": "get_weather", "input_schema": {"type": "object"}}
        ], "tool_choice": {"type": "tool", "name": "get_stock"}});
        let f = facts(body.clone()).unwrap();
        assert_eq!(f.all_tools(), vec!["get_stock", "get_weather"]);
        assert_eq!(f.tool_choice, Some(ToolChoice::Named("get_stock".into())));
        assert_eq!(granted_by(body, &["get_*"]), Ok(()));
        assert_eq!(
            facts(json!({"tool_choice": {"type": "any"}}))
                .unwrap()
                .tool_choice,
            Some(ToolChoice::Required)
        );
        assert_eq!(
            facts(json!({"tool_choice": {"type": "auto"}}))
                .unwrap()
                .tool_choice,
            None
        );
        assert_eq!(
            facts(json!({"tool_choice": {"type": "none"}}))
                .unwrap()
                .tool_choice,
            None
        );
    }

    #[test]
    fn anthropic_server_tools_by_type_family_or_fixed_name() {
        let body = json!({"tools": [
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
            {"type": "web_fetch_20250910", "name": "web_fetch"},
            {"type": "bash_20250124", "name": "bash"},
            {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
            {"type": "text_editor_20250124", "name": "str_replace_editor"},
            {"type": "computer_20250124", "name": "computer", "display_width_px": 1024, "display_height_px": 768},
            {"type": "code_execution_20250825", "name": "code_execution"},
            {"type": "memory_20250818", "name": "memory"},
            {"type": "tool_search_tool_regex_20251119", "name": "tool_search_tool_regex"},
            {"type": "tool_search_tool_bm25", "name": "tool_search_tool_bm25"}
        ]});
        let f = facts(body.clone()).unwrap();
        assert_eq!(
            f.all_tools(),
            vec![
                "web_search_20250305",
                "web_fetch_20250910",
                "bash_20250124",
                "text_editor_20250728",
                "text_editor_20250124",
                "computer_20250124",
                "code_execution_20250825",
                "memory_20250818",
                "tool_search_tool_regex_20251119",
                "tool_search_tool_bm25"
            ]
        );
        // By exact type, by family (any version), or by the API's fixed name.
        let exact: Vec<&str> = f.all_tools();
        assert_eq!(granted_by(body.clone(), &exact), Ok(()));
        let families = [
            "web_search",
            "web_fetch",
            "bash",
            "text_editor",
            "computer",
            "code_execution",
            "memory",
            "tool_search_tool_regex",
            "tool_search_tool_bm25",
        ];
        assert_eq!(granted_by(body.clone(), &families), Ok(()));
        let by_name = [
            "web_search",
            "web_fetch",
            "bash",
            "str_replace_*",
            "computer",
            "code_execution",
            "memory",
            "tool_search_*",
        ];
        assert_eq!(granted_by(body.clone(), &by_name), Ok(()));
        let no_bash: Vec<&str> = families.iter().copied().filter(|t| *t != "bash").collect();
        assert_eq!(granted_by(body, &no_bash), Err("bash_20250124".into()));
        // Calls in responses carry the fixed names (and code execution's sub-tools).
        let f = facts(
            json!({"tools": [{"type": "code_execution_20250825", "name": "code_execution"},
            {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"}]}),
        )
        .unwrap();
        assert_eq!(
            f.call_names(),
            vec![
                "code_execution",
                "bash_code_execution",
                "text_editor_code_execution",
                "str_replace_based_edit_tool"
            ]
        );
    }

    #[test]
    fn anthropic_forcing_a_server_tool_by_name_is_that_tool() {
        let body = json!({"tools": [{"type": "web_search_20250305", "name": "web_search"}],
            "tool_choice": {"type": "tool", "name": "web_search"}});
        assert_eq!(ids(body.clone()), vec!["web_search_20250305"]);
        assert_eq!(granted_by(body, &["web_search_20250305"]), Ok(()));
    }

    #[test]
    fn anthropic_mcp_servers_and_toolsets() {
        let body = json!({"mcp_servers": [
            {"type": "url", "url": "https://mcp.example/sse", "name": "example-mcp",
             "authorization_token": "t", "tool_configuration": {"enabled": true, "allowed_tools": ["echo"]}},
            {"type": "url", "url": "https://other", "name": "other"}
        ], "tools": [{"type": "mcp_toolset", "mcp_server_name": "example-mcp"}]});
        assert_eq!(ids(body.clone()), vec!["mcp:example-mcp", "mcp:other"]);
        assert_eq!(
            granted_by(body.clone(), &["mcp:example-mcp"]),
            Err("mcp:other".into())
        );
        assert_eq!(granted_by(body, &["mcp:*"]), Ok(()));
        for bad in [
            json!({"mcp_servers": [{"type": "url", "url": "https://x"}]}),
            json!({"mcp_servers": [{"name": 5}]}),
            json!({"mcp_servers": ["x"]}),
            json!({"mcp_servers": {"name": "x"}}),
            json!({"mcp_servers": [{"name": "x", "tool_configuration": {"allowed_tools": "echo"}}]}),
        ] {
            assert_eq!(refused(bad), BodyError::BadField("mcp_servers"));
        }
        assert_eq!(
            refused(json!({"tools": [{"type": "mcp_toolset", "mcp_server_name": "a", "name": "b"}]})),
            BodyError::BadField("tools")
        );
    }

    // ---------- two names, unknown types, junk ----------

    #[test]
    fn a_declaration_with_two_names_is_refused() {
        for bad in [
            json!({"type": "function", "name": "a", "function": {"name": "b"}}),
            json!({"type": "custom", "name": "a", "custom": {"name": "b"}}),
            json!({"type": "function", "function": {"name": "a"}, "custom": {"name": "b"}}),
            json!({"name": "a", "function": {"name": "b"}}),
            // A server tool borrowing an allowed function name.
            json!({"type": "bash_20250124", "name": "get_weather"}),
            json!({"type": "bash_20990101", "name": "get_weather"}),
            json!({"type": "web_search_20250305", "name": "search_docs"}),
            json!({"type": "text_editor_20250728", "name": "bash"}),
            json!({"type": "web_search_20250305", "function": {"name": "web_search"}}),
            // OpenAI built-ins take no name.
            json!({"type": "web_search_preview", "name": "search_docs"}),
            json!({"type": "code_interpreter", "function": {"name": "search_docs"}}),
            json!({"type": "mcp", "server_label": "x", "name": "search_docs"}),
            // Unknown types: only a top-level name (how the model calls it), nothing nested.
            json!({"type": "shiny_tool", "function": {"name": "search_docs"}}),
            json!({"type": "shiny_tool", "name": "a", "custom": {"name": "a"}}),
        ] {
            assert_eq!(
                refused(json!({"tools": [bad]})),
                BodyError::BadField("tools"),
                "{bad}"
            );
        }
        // The same name twice is one name.
        assert_eq!(
            ids(json!({"tools": [{"type": "function", "name": "a", "function": {"name": "a"}}]})),
            vec!["a"]
        );
        for bad in [
            json!({"type": "function", "name": "a", "function": {"name": "b"}}),
            json!({"type": "tool", "name": "a", "function": {"name": "b"}}),
            json!({"type": "auto", "name": "a"}),
            json!({"type": "web_search_preview", "name": "a"}),
            json!({"type": "allowed_tools", "mode": "auto", "tools": [{"type": "bash_20250124", "name": "x"}]}),
        ] {
            assert_eq!(
                refused(json!({"tool_choice": bad})),
                BodyError::BadField("tool_choice"),
                "{bad}"
            );
        }
        assert_eq!(
            refused(json!({"function_call": {"name": "a", "function": {"name": "b"}}})),
            BodyError::BadField("function_call")
        );
        assert_eq!(
            refused(json!({"functions": [{"name": "a", "function": {"name": "b"}}]})),
            BodyError::BadField("functions")
        );
    }

    #[test]
    fn unknown_types_are_authorized_by_exact_type_only() {
        let body = json!({"tools": [{"type": "get_weather_20250101", "name": "get_weather"}]});
        assert_eq!(ids(body.clone()), vec!["get_weather_20250101"]);
        assert_eq!(
            granted_by(body.clone(), &["get_weather"]),
            Err("get_weather_20250101".into())
        );
        assert_eq!(granted_by(body.clone(), &["get_weather_20250101"]), Ok(()));
        // Its calls use its name, which lines up once the type is granted.
        assert_eq!(facts(body).unwrap().call_names(), vec!["get_weather"]);
        assert_eq!(
            ids(json!({"tools": [{"type": "Function", "name": "a"}]})),
            vec!["Function"]
        );
        let dated = json!({"tools": [{"type": "get_weather_2025_01_01"}]});
        assert_eq!(
            granted_by(dated, &["get_weather"]),
            Err("get_weather_2025_01_01".into())
        );
    }

    #[test]
    fn malformed_declarations_are_refused() {
        for bad in [
            json!({"tools": {"a": 1}}),
            json!({"tools": ["get_weather"]}),
            json!({"tools": [{}]}),
            json!({"tools": [{"type": "function"}]}),
            json!({"tools": [{"type": "function", "function": {}}]}),
            json!({"tools": [{"type": "function", "function": "a"}]}),
            json!({"tools": [{"type": "function", "function": {"name": 5}}]}),
            json!({"tools": [{"type": 5, "name": "a"}]}),
            json!({"tools": [{"name": ""}]}),
            json!({"tools": [{"name": "x".repeat(300)}]}),
            json!({"tools": [{"type": "x".repeat(300)}]}),
            json!({"tools": [{"functionDeclarations": [{"name": "a"}]}]}),
        ] {
            assert_eq!(refused(bad.clone()), BodyError::BadField("tools"), "{bad}");
        }
        assert_eq!(
            refused(json!({"functions": [{}]})),
            BodyError::BadField("functions")
        );
        assert_eq!(
            refused(json!({"functions": {}})),
            BodyError::BadField("functions")
        );
        assert_eq!(
            refused(json!({"prompt": {"version": "2"}})),
            BodyError::BadField("prompt")
        );
        assert!(
            ids(json!({"tools": null, "functions": null, "tool_choice": null, "mcp_servers": null}))
                .is_empty()
        );
    }

    #[test]
    fn stored_prompt_counts_as_a_tool_but_completions_text_does_not() {
        assert_eq!(
            ids(json!({"prompt": {"id": "pmpt_123", "version": "2"}})),
            vec!["prompt:pmpt_123"]
        );
        assert!(ids(json!({"model": "davinci", "prompt": "Say hi"})).is_empty());
        assert!(ids(json!({"model": "davinci", "prompt": ["a", "b"]})).is_empty());
    }

    #[test]
    fn duplicates_are_listed_once() {
        let f = facts(
            json!({"tools": [{"name": "a"}, {"name": "a"}, {"type": "function", "function": {"name": "a"}}],
            "tool_choice": {"type": "tool", "name": "a"}}),
        )
        .unwrap();
        assert_eq!(f.all_tools(), vec!["a"]);
    }

    // ---------- policy ----------

    mod policy_level {
        use crate::authn::claims::Identity;
        use crate::authz::llm_request::{parse_body, Endpoint};
        use crate::authz::policy::{AuthorizationConfig, Authorizer, Denial, RequestView};
        use serde_json::{json, Value};

        fn decide(tools: &[&str], endpoint: Endpoint, body: Value) -> crate::authz::policy::Decision {
            let cfg: AuthorizationConfig = serde_json::from_value(json!({
                "routes": [{"match": {"path_prefix": "/"}, "policy": "p"}],
                "policies": {"p": {"rules": [{"name": "r", "models": ["*"], "tools": tools}]}}
            }))
            .unwrap();
            let a = Authorizer::new(&cfg, &["i".to_string()]).unwrap();
            let path = crate::authz::request_path::canonical("/v1/x").unwrap();
            let p = a.route(None, None, &path).unwrap();
            let (_, f) = parse_body(body.to_string().as_bytes()).unwrap();
            let id = Identity::from_claims("i", json!({"sub": "s"}).as_object().cloned().unwrap(), None);
            let no_headers = |_: &str| None;
            p.decide(
                &id,
                &RequestView {
                    endpoint,
                    path: &path,
                    source_ip: None,
                    now_unix: 0,
                    header: &no_headers,
                    body: Some(&f),
                    model_outside_body: None,
                },
            )
        }

        fn denial(tools: &[&str], endpoint: Endpoint, body: Value) -> Option<Denial> {
            decide(tools, endpoint, body).denial
        }

        fn not_permitted(t: &str) -> Option<Denial> {
            Some(Denial::ToolNotPermitted(t.into()))
        }

        #[test]
        fn forbidden_builtin_and_server_tools_are_denied() {
            let grants = ["get_weather", "search_*"];
            for (endpoint, body, tool) in [
                (
                    Endpoint::Responses,
                    json!({"model": "m", "tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]}),
                    "code_interpreter",
                ),
                (
                    Endpoint::Responses,
                    json!({"model": "m", "tools": [{"type": "web_search_preview"}]}),
                    "web_search_preview",
                ),
                (
                    Endpoint::Responses,
                    json!({"model": "m", "tools": [{"type": "computer_use_preview"}]}),
                    "computer_use_preview",
                ),
                (
                    Endpoint::Responses,
                    json!({"model": "m", "tools": [{"type": "mcp", "server_label": "evil", "server_url": "https://evil"}]}),
                    "mcp:evil",
                ),
                (
                    Endpoint::Responses,
                    json!({"model": "m", "tool_choice": {"type": "image_generation"}}),
                    "image_generation",
                ),
                (
                    Endpoint::ChatCompletions,
                    json!({"model": "m", "web_search_options": {}}),
                    "web_search_options",
                ),
                (
                    Endpoint::Messages,
                    json!({"model": "m", "tools": [{"type": "bash_20250124", "name": "bash"}]}),
                    "bash_20250124",
                ),
                (
                    Endpoint::Messages,
                    json!({"model": "m", "tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
                    "web_search_20250305",
                ),
                (
                    Endpoint::Messages,
                    json!({"model": "m", "tools": [{"type": "code_execution_20250825", "name": "code_execution"}]}),
                    "code_execution_20250825",
                ),
                (
                    Endpoint::Messages,
                    json!({"model": "m", "mcp_servers": [{"type": "url", "url": "https://evil", "name": "evil"}]}),
                    "mcp:evil",
                ),
                (
                    Endpoint::Messages,
                    json!({"model": "m", "tools": [{"type": "shiny_20260101", "name": "get_weather"}]}),
                    "shiny_20260101",
                ),
            ] {
                assert_eq!(
                    denial(&grants, endpoint, body.clone()),
                    not_permitted(tool),
                    "{body}"
                );
                assert_eq!(Denial::ToolNotPermitted(tool.into()).code(), "tool_not_permitted");
            }
            // The same declarations pass once granted by type (or family).
            assert_eq!(
                denial(
                    &["bash"],
                    Endpoint::Messages,
                    json!({"model": "m", "tools": [{"type": "bash_20250124", "name": "bash"}]})
                ),
                None
            );
            assert_eq!(
                denial(
                    &["web_search_preview"],
                    Endpoint::Responses,
                    json!({"model": "m", "tools": [{"type": "web_search_preview_2025_03_11"}]})
                ),
                None
            );
        }

        #[test]
        fn required_choice_without_grants_stays_refused() {
            for body in [
                json!({"model": "m", "tool_choice": "required"}),
                json!({"model": "m", "tool_choice": {"type": "any"}}),
                json!({"model": "m", "tool_choice": {"type": "allowed_tools", "mode": "required", "tools": []}}),
            ] {
                assert_eq!(
                    denial(&[], Endpoint::ChatCompletions, body),
                    not_permitted("(required)")
                );
            }
        }

        #[test]
        fn a_granted_server_tool_and_its_calls_line_up() {
            let d = decide(
                &["web_search_20250305", "code_execution"],
                Endpoint::Messages,
                json!({"model": "m", "tools": [{"type": "web_search_20250305", "name": "web_search"},
                    {"type": "code_execution_20250825", "name": "code_execution"}]}),
            );
            assert_eq!(d.denial, None);
            for call in [
                "web_search",
                "code_execution",
                "bash_code_execution",
                "text_editor_code_execution",
            ] {
                assert!(d.tool_allowed(call), "{call}");
            }
            assert!(!d.tool_allowed("bash"), "bash was not declared");
            assert!(!d.tool_allowed("get_weather"));
            // A denied decision authorizes no call.
            let d = decide(
                &[],
                Endpoint::Messages,
                json!({"model": "m", "tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
            );
            assert!(d.denial.is_some() && !d.tool_allowed("web_search"));
        }
    }
}
