//! What a rule grants over MCP: tools (by name glob, optionally per server), resources (by
//! URI glob), prompts (by name glob), extra methods by exact name, and constraints on tool
//! arguments. Deny by default: an empty grant set allows no tool, resource or prompt.
//!
//! Methods that name no target (initialize, ping, notifications/*, the list methods) are
//! not governed here: `allows` returns Ok for them because the session-level decision (is
//! this caller allowed on this MCP route at all) already covered them; the pipeline must
//! make that decision before calling `allows`.
//!
//! Matching is exact over the bytes sent: no case folding, no Unicode normalization, no
//! percent-decoding. A look-alike or encoded name is a different name, and with allow-lists
//! a different name is denied. Globs:
//! - tool, prompt and server names: `*` matches any run of characters;
//! - resource URIs: `*` matches within one path segment (not `/`), `**` across segments.
//!   A URI with a dot segment (`.`, `..`), a percent-encoded `.`, `/` or `\`, a backslash,
//!   whitespace or a control character matches no grant: such a URI is a path trick (a grant
//!   on `file:///public/**` must not reach `file:///public/../etc/passwd`).
//!
//! Argument constraints name a JSON Pointer (RFC 6901) into `params.arguments` and one
//! check: `equals`, `in`, `glob` (strings), `regex` (strings, must match the whole value),
//! `max_length` (characters of a string, entries of an array), or a number range (`min`
//! and/or `max`, inclusive). An absent value fails the check unless `optional` is set. A
//! tool call is allowed when one grant matching its name and server has all its
//! constraints met.

use crate::config_error::ConfigError;
use crate::mcp::jsonrpc::{Call, Method, RpcError, Target};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Patterns longer than this are refused at compile (matching costs pattern × text).
const MAX_PATTERN: usize = 512;

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpGrantsConfig {
    /// Tools this rule may call (and sees in `tools/list`).
    #[serde(default)]
    pub tools: Vec<ToolGrantConfig>,
    /// Resource URI globs (`*` within a segment, `**` across): `resources/read`,
    /// `subscribe`, `unsubscribe`, resource completions, and `resources/list` /
    /// `resources/templates/list` entries.
    #[serde(default)]
    pub resources: Vec<String>,
    /// Prompt name globs: `prompts/get`, prompt completions, `prompts/list` entries.
    #[serde(default)]
    pub prompts: Vec<String>,
    /// Other methods allowed by exact name (`logging/setLevel`, `tasks/get`...). Methods
    /// governed by the fields above or by the session-level decision cannot be listed.
    #[serde(default)]
    pub methods: Vec<String>,
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolGrantConfig {
    /// Tool name glob (`*` matches any run of characters).
    pub name: String,
    /// Server name glob; when set, the grant applies only to calls to a server of that name.
    #[serde(default)]
    pub server: Option<String>,
    /// Constraints every call under this grant must meet.
    #[serde(default)]
    pub arguments: Vec<ArgumentConstraintConfig>,
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgumentConstraintConfig {
    /// JSON Pointer into `arguments` (`/path`, `/options/0`, `/a~1b` for key `a/b`).
    pub pointer: String,
    /// An absent value passes (by default it fails).
    #[serde(default)]
    pub optional: bool,
    /// The value must equal this JSON value (types included: 1 and 1.0 differ).
    #[serde(default)]
    pub equals: Option<Value>,
    /// The value must equal one of these.
    #[serde(default, rename = "in")]
    pub one_of: Option<Vec<Value>>,
    /// The value is a string matching this glob (`*` any run of characters).
    #[serde(default)]
    pub glob: Option<String>,
    /// The value is a string the regex matches entirely.
    #[serde(default)]
    pub regex: Option<String>,
    /// The value is a string of at most this many characters, or an array of at most this
    /// many entries.
    #[serde(default)]
    pub max_length: Option<usize>,
    /// The value is a number at least this.
    #[serde(default)]
    pub min: Option<f64>,
    /// The value is a number at most this.
    #[serde(default)]
    pub max: Option<f64>,
}

/// Why a call was denied: `reason` as the stable code sent in the JSON-RPC error's `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpDenial {
    pub reason: DenialReason,
    /// The refused argument's JSON Pointer (from config, never from the request).
    pub pointer: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenialReason {
    ToolNotPermitted,
    ArgumentNotPermitted,
    ResourceNotPermitted,
    PromptNotPermitted,
    MethodNotPermitted,
}

impl DenialReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DenialReason::ToolNotPermitted => "tool_not_permitted",
            DenialReason::ArgumentNotPermitted => "argument_not_permitted",
            DenialReason::ResourceNotPermitted => "resource_not_permitted",
            DenialReason::PromptNotPermitted => "prompt_not_permitted",
            DenialReason::MethodNotPermitted => "method_not_permitted",
        }
    }
}

impl McpDenial {
    fn new(reason: DenialReason) -> McpDenial {
        McpDenial {
            reason,
            pointer: None,
        }
    }

    pub fn to_rpc_error(&self) -> RpcError {
        RpcError::denied(self.reason.as_str(), self.pointer.as_deref())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Byte(u8),
    /// Any run of bytes except `/`.
    Star,
    /// Any run of bytes.
    AnyStar,
}

/// A compiled glob, matched by simulating its automaton: time pattern × text, no
/// backtracking blow-up, no recursion.
#[derive(Debug, Clone)]
struct Glob(Vec<Tok>);

impl Glob {
    /// `*` matches anything.
    fn names(p: &str) -> Glob {
        Glob(
            p.bytes()
                .map(|b| if b == b'*' { Tok::AnyStar } else { Tok::Byte(b) })
                .collect(),
        )
    }

    /// `*` stops at `/`, `**` does not.
    fn uris(p: &str) -> Glob {
        let mut toks = Vec::new();
        let mut bytes = p.bytes().peekable();
        while let Some(b) = bytes.next() {
            if b != b'*' {
                toks.push(Tok::Byte(b));
            } else if bytes.peek() == Some(&b'*') {
                bytes.next();
                toks.push(Tok::AnyStar);
            } else {
                toks.push(Tok::Star);
            }
        }
        Glob(toks)
    }

    fn close(&self, states: &mut [bool]) {
        for (i, tok) in self.0.iter().enumerate() {
            if matches!(tok, Tok::Star | Tok::AnyStar) && states.get(i) == Some(&true) {
                if let Some(next) = states.get_mut(i + 1) {
                    *next = true;
                }
            }
        }
    }

    fn matches(&self, text: &str) -> bool {
        let mut states = vec![false; self.0.len() + 1];
        if let Some(s) = states.first_mut() {
            *s = true;
        }
        self.close(&mut states);
        for c in text.bytes() {
            let mut next = vec![false; states.len()];
            for (i, (tok, on)) in self.0.iter().zip(&states).enumerate() {
                if !on {
                    continue;
                }
                let to = match tok {
                    Tok::Byte(b) if *b == c => Some(i + 1),
                    Tok::Star if c != b'/' => Some(i),
                    Tok::AnyStar => Some(i),
                    _ => None,
                };
                if let Some(slot) = to.and_then(|j| next.get_mut(j)) {
                    *slot = true;
                }
            }
            self.close(&mut next);
            if !next.contains(&true) {
                return false;
            }
            states = next;
        }
        states.last() == Some(&true)
    }
}

#[derive(Debug, Clone)]
enum Check {
    Equals(Value),
    In(Vec<Value>),
    Glob(Glob),
    Regex(regex_lite::Regex),
    MaxLength(usize),
    Range { min: Option<f64>, max: Option<f64> },
}

#[derive(Debug, Clone)]
struct Constraint {
    pointer: String,
    tokens: Vec<String>,
    optional: bool,
    check: Check,
}

#[derive(Debug, Clone)]
struct ToolGrant {
    name: Glob,
    server: Option<Glob>,
    arguments: Vec<Constraint>,
}

/// Compiled grants of one rule. `Default` grants nothing.
#[derive(Debug, Clone, Default)]
pub struct McpGrants {
    tools: Vec<ToolGrant>,
    resources: Vec<Glob>,
    prompts: Vec<Glob>,
    methods: Vec<String>,
}

fn err(path: String, message: &str) -> ConfigError {
    ConfigError {
        path,
        message: message.to_string(),
    }
}

fn check_pattern(path: String, p: &str) -> Result<(), ConfigError> {
    if p.is_empty() {
        return Err(err(path, "must not be empty"));
    }
    if p.len() > MAX_PATTERN {
        return Err(err(path, "is longer than 512 bytes"));
    }
    if p.chars().any(char::is_control) {
        return Err(err(path, "must not contain control characters"));
    }
    Ok(())
}

/// RFC 6901 reference tokens of a pointer (`~1` is `/`, `~0` is `~`); None when malformed.
fn pointer_tokens(pointer: &str) -> Option<Vec<String>> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
    let rest = pointer.strip_prefix('/')?;
    rest.split('/')
        .map(|t| {
            let mut out = String::new();
            let mut chars = t.chars();
            while let Some(c) = chars.next() {
                match c {
                    '~' => match chars.next() {
                        Some('0') => out.push('~'),
                        Some('1') => out.push('/'),
                        _ => return None,
                    },
                    c => out.push(c),
                }
            }
            Some(out)
        })
        .collect()
}

fn compile_constraint(c: &ArgumentConstraintConfig, path: &str) -> Result<Constraint, ConfigError> {
    let tokens = pointer_tokens(&c.pointer).ok_or_else(|| {
        err(
            format!("{path}.pointer"),
            "must be a JSON Pointer: empty or starting with /, ~ only as ~0 or ~1",
        )
    })?;
    let range = c.min.is_some() || c.max.is_some();
    let kinds = [
        c.equals.is_some(),
        c.one_of.is_some(),
        c.glob.is_some(),
        c.regex.is_some(),
        c.max_length.is_some(),
        range,
    ];
    if kinds.iter().filter(|k| **k).count() != 1 {
        return Err(err(
            path.to_string(),
            "needs exactly one of equals, in, glob, regex, max_length, min/max",
        ));
    }
    let check = if let Some(v) = &c.equals {
        Check::Equals(v.clone())
    } else if let Some(vs) = &c.one_of {
        if vs.is_empty() {
            return Err(err(format!("{path}.in"), "must not be empty"));
        }
        Check::In(vs.clone())
    } else if let Some(g) = &c.glob {
        check_pattern(format!("{path}.glob"), g)?;
        Check::Glob(Glob::names(g))
    } else if let Some(r) = &c.regex {
        if r.len() > MAX_PATTERN {
            return Err(err(format!("{path}.regex"), "is longer than 512 bytes"));
        }
        // Anchored: a constraint says what the whole value may be.
        let regex = regex_lite::Regex::new(&format!("^(?:{r})$"))
            .map_err(|e| err(format!("{path}.regex"), &format!("invalid regex: {e}")))?;
        Check::Regex(regex)
    } else if let Some(n) = c.max_length {
        Check::MaxLength(n)
    } else {
        if let (Some(lo), Some(hi)) = (c.min, c.max) {
            if lo > hi {
                return Err(err(format!("{path}.min"), "must not be greater than max"));
            }
        }
        Check::Range {
            min: c.min,
            max: c.max,
        }
    };
    Ok(Constraint {
        pointer: c.pointer.clone(),
        tokens,
        optional: c.optional,
        check,
    })
}

impl McpGrantsConfig {
    /// Compiles the grants; `path` is this object's field path (errors name the field).
    pub fn compile(&self, path: &str) -> Result<McpGrants, ConfigError> {
        let mut tools = Vec::new();
        for (i, t) in self.tools.iter().enumerate() {
            let tp = format!("{path}.tools[{i}]");
            check_pattern(format!("{tp}.name"), &t.name)?;
            let server = match &t.server {
                Some(s) => {
                    check_pattern(format!("{tp}.server"), s)?;
                    Some(Glob::names(s))
                }
                None => None,
            };
            let arguments = t
                .arguments
                .iter()
                .enumerate()
                .map(|(j, c)| compile_constraint(c, &format!("{tp}.arguments[{j}]")))
                .collect::<Result<Vec<_>, _>>()?;
            tools.push(ToolGrant {
                name: Glob::names(&t.name),
                server,
                arguments,
            });
        }
        let mut resources = Vec::new();
        for (i, r) in self.resources.iter().enumerate() {
            check_pattern(format!("{path}.resources[{i}]"), r)?;
            resources.push(Glob::uris(r));
        }
        let mut prompts = Vec::new();
        for (i, p) in self.prompts.iter().enumerate() {
            check_pattern(format!("{path}.prompts[{i}]"), p)?;
            prompts.push(Glob::names(p));
        }
        for (i, m) in self.methods.iter().enumerate() {
            check_pattern(format!("{path}.methods[{i}]"), m)?;
            if Method::classify(m) != Method::Other {
                return Err(err(
                    format!("{path}.methods[{i}]"),
                    "is governed by tools, resources, prompts or the session-level decision, not by methods",
                ));
            }
        }
        Ok(McpGrants {
            tools,
            resources,
            prompts,
            methods: self.methods.clone(),
        })
    }
}

/// The value at a pointer's tokens under `arguments`.
fn lookup<'a>(arguments: &'a Map<String, Value>, tokens: &[String]) -> Option<&'a Value> {
    let (first, rest) = tokens.split_first()?;
    let mut at = arguments.get(first)?;
    for t in rest {
        at = match at {
            Value::Object(m) => m.get(t)?,
            Value::Array(a) => {
                // RFC 6901 array indexes: digits, no leading zero.
                if t.is_empty()
                    || (t.len() > 1 && t.starts_with('0'))
                    || !t.bytes().all(|b| b.is_ascii_digit())
                {
                    return None;
                }
                a.get(t.parse::<usize>().ok()?)?
            }
            _ => return None,
        };
    }
    Some(at)
}

impl Constraint {
    fn holds(&self, arguments: &Map<String, Value>) -> bool {
        let whole;
        let value = if self.tokens.is_empty() {
            whole = Value::Object(arguments.clone());
            Some(&whole)
        } else {
            lookup(arguments, &self.tokens)
        };
        let Some(v) = value else {
            return self.optional;
        };
        match &self.check {
            Check::Equals(want) => v == want,
            Check::In(wants) => wants.contains(v),
            Check::Glob(g) => v.as_str().is_some_and(|s| g.matches(s)),
            Check::Regex(r) => v.as_str().is_some_and(|s| r.is_match(s)),
            Check::MaxLength(n) => match v {
                Value::String(s) => s.chars().count() <= *n,
                Value::Array(a) => a.len() <= *n,
                _ => false,
            },
            Check::Range { min, max } => v
                .as_f64()
                .is_some_and(|x| min.is_none_or(|lo| x >= lo) && max.is_none_or(|hi| x <= hi)),
        }
    }
}

/// A URI no grant matches, whatever the pattern: dot segments and encodings that a server
/// may resolve to another path than the one we matched.
fn is_path_trick(uri: &str) -> bool {
    let lower = uri.to_ascii_lowercase();
    uri.chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
        || ["%2e", "%2f", "%5c"].iter().any(|enc| lower.contains(enc))
        || uri.split(['/', '?', '#']).any(|seg| seg == "." || seg == "..")
}

impl McpGrants {
    /// Whether these grants allow the call, to the MCP server named `server` (when the route
    /// names one). Session-level methods are allowed here: see the module documentation.
    pub fn allows(&self, call: &Call, server: Option<&str>) -> Result<(), McpDenial> {
        if call.method.is_session_level() {
            return Ok(());
        }
        match &call.target {
            Some(Target::Tool(name)) => self.allows_tool(name, server, call.arguments()),
            Some(Target::Resource(uri)) => match self.sees_resource(uri) {
                true => Ok(()),
                false => Err(McpDenial::new(DenialReason::ResourceNotPermitted)),
            },
            Some(Target::Prompt(name)) => match self.prompts.iter().any(|g| g.matches(name)) {
                true => Ok(()),
                false => Err(McpDenial::new(DenialReason::PromptNotPermitted)),
            },
            None if call.method == Method::Other && self.methods.contains(&call.method_name) => Ok(()),
            None => Err(McpDenial::new(DenialReason::MethodNotPermitted)),
        }
    }

    fn tool_grants<'a>(
        &'a self,
        name: &'a str,
        server: Option<&'a str>,
    ) -> impl Iterator<Item = &'a ToolGrant> + 'a {
        self.tools.iter().filter(move |g| {
            g.name.matches(name)
                && match (&g.server, server) {
                    (None, _) => true,
                    (Some(want), Some(s)) => want.matches(s),
                    (Some(_), None) => false,
                }
        })
    }

    fn allows_tool(
        &self,
        name: &str,
        server: Option<&str>,
        arguments: Option<&Map<String, Value>>,
    ) -> Result<(), McpDenial> {
        let empty = Map::new();
        let arguments = arguments.unwrap_or(&empty);
        let mut first_failure: Option<&str> = None;
        let mut matched = false;
        for grant in self.tool_grants(name, server) {
            matched = true;
            match grant.arguments.iter().find(|c| !c.holds(arguments)) {
                None => return Ok(()),
                Some(failed) => {
                    first_failure.get_or_insert(&failed.pointer);
                }
            }
        }
        if !matched {
            return Err(McpDenial::new(DenialReason::ToolNotPermitted));
        }
        Err(McpDenial {
            reason: DenialReason::ArgumentNotPermitted,
            pointer: first_failure.map(str::to_string),
        })
    }

    fn sees_resource(&self, uri: &str) -> bool {
        !is_path_trick(uri) && self.resources.iter().any(|g| g.matches(uri))
    }

    /// Whether a list entry may be shown: the tool, resource (or template) or prompt is
    /// granted at all. Argument constraints are not considered (a tool is listed when some
    /// call to it may be allowed).
    pub fn shows(&self, target: &Target, server: Option<&str>) -> bool {
        match target {
            Target::Tool(name) => self.tool_grants(name, server).next().is_some(),
            Target::Resource(uri) => self.sees_resource(uri),
            Target::Prompt(name) => self.prompts.iter().any(|g| g.matches(name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::jsonrpc::{parse_body, Body, Message};
    use serde_json::json;

    fn grants(config: Value) -> McpGrants {
        let c: McpGrantsConfig = serde_json::from_value(config).unwrap();
        c.compile("mcp").unwrap()
    }

    fn compile_err(config: Value) -> ConfigError {
        let c: McpGrantsConfig = serde_json::from_value(config).unwrap();
        c.compile("mcp").unwrap_err()
    }

    fn call(method: &str, params: Value) -> Call {
        let body = json!({"jsonrpc":"2.0","id":1,"method":method,"params":params}).to_string();
        match parse_body(body.as_bytes()).unwrap() {
            Body::Single(Message::Request { call, .. }) => call,
            other => panic!("{other:?}"),
        }
    }

    fn tool(name: &str, arguments: Value) -> Call {
        call("tools/call", json!({"name": name, "arguments": arguments}))
    }

    fn reason(r: Result<(), McpDenial>) -> &'static str {
        r.unwrap_err().reason.as_str()
    }

    #[test]
    fn deny_by_default() {
        let g = McpGrants::default();
        assert_eq!(
            reason(g.allows(&tool("anything", json!({})), None)),
            "tool_not_permitted"
        );
        assert_eq!(
            reason(g.allows(&call("resources/read", json!({"uri":"file:///a"})), None)),
            "resource_not_permitted"
        );
        assert_eq!(
            reason(g.allows(&call("prompts/get", json!({"name":"p"})), None)),
            "prompt_not_permitted"
        );
        assert_eq!(
            reason(g.allows(&call("logging/setLevel", json!({"level":"debug"})), None)),
            "method_not_permitted"
        );
        assert_eq!(
            reason(g.allows(&call("Tools/Call", json!({"name":"x"})), None)),
            "method_not_permitted"
        );
        let g = grants(json!({}));
        assert!(g.allows(&tool("x", json!({})), None).is_err());
    }

    #[test]
    fn session_level_methods_do_not_need_grants() {
        let g = McpGrants::default();
        for m in [
            "initialize",
            "ping",
            "tools/list",
            "resources/list",
            "resources/templates/list",
            "prompts/list",
            "notifications/initialized",
        ] {
            assert_eq!(g.allows(&call(m, json!({})), None), Ok(()), "{m}");
        }
        // Not the targeted ones, nor a method merely resembling a session-level one.
        for m in ["Ping", "tools/list/", "TOOLS/LIST"] {
            assert_eq!(
                reason(g.allows(&call(m, json!({})), None)),
                "method_not_permitted",
                "{m}"
            );
        }
    }

    #[test]
    fn tools_by_name_glob_and_server() {
        let g = grants(json!({"tools":[{"name":"get_*"},{"name":"deploy","server":"ci-*"}]}));
        assert!(g.allows(&tool("get_weather", json!({})), None).is_ok());
        assert!(g.allows(&tool("get_", json!({})), Some("any")).is_ok());
        assert_eq!(
            reason(g.allows(&tool("set_weather", json!({})), None)),
            "tool_not_permitted"
        );
        assert_eq!(
            reason(g.allows(&tool("Get_weather", json!({})), None)),
            "tool_not_permitted"
        );
        // Fullwidth and Cyrillic look-alikes are other names.
        assert_eq!(
            reason(g.allows(&tool("ｇet_weather", json!({})), None)),
            "tool_not_permitted"
        );
        assert_eq!(
            reason(g.allows(&tool("gеt_weather", json!({})), None)),
            "tool_not_permitted"
        );
        // Percent-encoding is not decoded: an encoded name is another name.
        let exact = grants(json!({"tools":[{"name":"get_weather"}]}));
        assert_eq!(
            reason(exact.allows(&tool("get%5Fweather", json!({})), None)),
            "tool_not_permitted"
        );
        assert_eq!(
            reason(exact.allows(&tool("get_weather\u{0}", json!({})), None)),
            "tool_not_permitted"
        );
        assert!(exact.allows(&tool("get_weather", json!({})), None).is_ok());
        assert!(g.allows(&tool("deploy", json!({})), Some("ci-prod")).is_ok());
        assert_eq!(
            reason(g.allows(&tool("deploy", json!({})), Some("web"))),
            "tool_not_permitted"
        );
        // A per-server grant does not apply when the route names no server.
        assert_eq!(
            reason(g.allows(&tool("deploy", json!({})), None)),
            "tool_not_permitted"
        );
    }

    #[test]
    fn argument_constraints() {
        let g = grants(json!({"tools":[{"name":"t","arguments":[
            {"pointer":"/city","in":["Paris","Rome"]},
            {"pointer":"/units","equals":"metric","optional":true},
            {"pointer":"/path","glob":"/srv/data/*"},
            {"pointer":"/id","regex":"[a-z]{3}-[0-9]+"},
            {"pointer":"/query","max_length":5},
            {"pointer":"/days","min":1,"max":7},
            {"pointer":"/opts/tags","max_length":2,"optional":true},
            {"pointer":"/a~1b","equals":true,"optional":true}
        ]}]}));
        let ok = json!({"city":"Paris","path":"/srv/data/x","id":"abc-12","query":"héllo","days":7});
        assert_eq!(g.allows(&tool("t", ok.clone()), None), Ok(()));
        let with = |key: &str, v: Value| {
            let mut a = ok.clone();
            a[key] = v;
            g.allows(&tool("t", a), None)
        };
        let denied_at = |r: Result<(), McpDenial>| {
            let d = r.unwrap_err();
            assert_eq!(d.reason, DenialReason::ArgumentNotPermitted);
            d.pointer.unwrap()
        };
        assert_eq!(denied_at(with("city", json!("Berlin"))), "/city");
        assert_eq!(denied_at(with("city", json!(["Paris"]))), "/city");
        assert_eq!(denied_at(with("units", json!("imperial"))), "/units");
        assert!(with("units", json!("metric")).is_ok());
        assert_eq!(denied_at(with("path", json!("/srv/other"))), "/path");
        assert_eq!(denied_at(with("path", json!(5))), "/path");
        // Regex is anchored: a matching substring is not enough.
        assert_eq!(denied_at(with("id", json!("xabc-12"))), "/id");
        assert_eq!(denied_at(with("id", json!("abc-12\n"))), "/id");
        assert_eq!(denied_at(with("query", json!("toolong"))), "/query");
        assert_eq!(denied_at(with("query", json!(12))), "/query");
        assert_eq!(denied_at(with("days", json!(8))), "/days");
        assert_eq!(denied_at(with("days", json!(0.5))), "/days");
        assert_eq!(denied_at(with("days", json!("3"))), "/days");
        assert!(with("days", json!(1.0)).is_ok());
        assert!(with("opts", json!({"tags":["a","b"]})).is_ok());
        assert_eq!(
            denied_at(with("opts", json!({"tags":["a","b","c"]}))),
            "/opts/tags"
        );
        assert!(with("a/b", json!(true)).is_ok());
        assert_eq!(denied_at(with("a/b", json!(false))), "/a~1b");
        // Absent required values, and absent arguments altogether.
        let mut missing = ok.clone();
        missing.as_object_mut().unwrap().remove("city");
        assert_eq!(denied_at(g.allows(&tool("t", missing), None)), "/city");
        assert_eq!(
            denied_at(g.allows(&call("tools/call", json!({"name":"t"})), None)),
            "/city"
        );
    }

    #[test]
    fn any_matching_grant_may_allow_the_call() {
        let g = grants(json!({"tools":[
            {"name":"fs_*","arguments":[{"pointer":"/path","glob":"/tmp/*"}]},
            {"name":"fs_read","arguments":[{"pointer":"/path","glob":"/srv/*"}]}
        ]}));
        assert!(g.allows(&tool("fs_read", json!({"path":"/srv/a"})), None).is_ok());
        assert!(g
            .allows(&tool("fs_write", json!({"path":"/tmp/a"})), None)
            .is_ok());
        let d = g
            .allows(&tool("fs_write", json!({"path":"/srv/a"})), None)
            .unwrap_err();
        assert_eq!(
            d,
            McpDenial {
                reason: DenialReason::ArgumentNotPermitted,
                pointer: Some("/path".into())
            }
        );
    }

    #[test]
    fn pointers_into_arrays() {
        let g = grants(json!({"tools":[{"name":"t","arguments":[{"pointer":"/list/1","equals":"b"}]}]}));
        assert!(g.allows(&tool("t", json!({"list":["a","b"]})), None).is_ok());
        assert!(g.allows(&tool("t", json!({"list":["a"]})), None).is_err());
        let g = grants(json!({"tools":[{"name":"t","arguments":[{"pointer":"/list/01","equals":"b"}]}]}));
        assert!(g.allows(&tool("t", json!({"list":["a","b"]})), None).is_err());
        // The empty pointer is the whole arguments object.
        let g = grants(json!({"tools":[{"name":"t","arguments":[{"pointer":"","equals":{"x":1}}]}]}));
        assert!(g.allows(&tool("t", json!({"x":1})), None).is_ok());
        assert!(g.allows(&tool("t", json!({"x":1,"y":2})), None).is_err());
    }

    #[test]
    fn resources_by_uri_glob() {
        let g = grants(json!({"resources":["file:///public/**","db://reports/*/summary"]}));
        let read = |uri: &str| g.allows(&call("resources/read", json!({"uri": uri})), None);
        assert!(read("file:///public/a.txt").is_ok());
        assert!(read("file:///public/deep/er/b.md").is_ok());
        assert!(read("db://reports/2024/summary").is_ok());
        assert_eq!(
            reason(read("db://reports/2024/x/summary")),
            "resource_not_permitted"
        );
        assert_eq!(reason(read("file:///private/a")), "resource_not_permitted");
        for trick in [
            "file:///public/../etc/passwd",
            "file:///public/./a",
            "file:///public/%2e%2e/etc/passwd",
            "file:///public/%2E%2E/etc/passwd",
            "file:///public/a%2fb",
            "file:///public/a%5Cb",
            "file:///public/a\\..\\b",
            "file:///public/a\nb",
            "file:///public/a b",
            "file:///public/..",
        ] {
            assert_eq!(reason(read(trick)), "resource_not_permitted", "{trick:?}");
        }
        // Subscribe and resource completions are governed the same way.
        assert!(g
            .allows(
                &call("resources/subscribe", json!({"uri":"file:///public/a"})),
                None
            )
            .is_ok());
        let complete = |uri: &str| {
            call(
                "completion/complete",
                json!({"ref":{"type":"ref/resource","uri":uri},"argument":{"name":"p","value":""}}),
            )
        };
        assert!(g.allows(&complete("file:///public/{path}"), None).is_ok());
        assert!(g.allows(&complete("file:///{path}"), None).is_err());
    }

    #[test]
    fn prompts_by_name_glob() {
        let g = grants(json!({"prompts":["review_*"]}));
        assert!(g
            .allows(&call("prompts/get", json!({"name":"review_code"})), None)
            .is_ok());
        assert_eq!(
            reason(g.allows(&call("prompts/get", json!({"name":"leak"})), None)),
            "prompt_not_permitted"
        );
        let complete = call(
            "completion/complete",
            json!({"ref":{"type":"ref/prompt","name":"leak"},"argument":{"name":"a","value":""}}),
        );
        assert_eq!(reason(g.allows(&complete, None)), "prompt_not_permitted");
    }

    #[test]
    fn extra_methods_by_exact_name() {
        let g = grants(json!({"methods":["logging/setLevel"]}));
        assert!(g
            .allows(&call("logging/setLevel", json!({"level":"info"})), None)
            .is_ok());
        assert!(g.allows(&call("logging/setlevel", json!({})), None).is_err());
        for m in [
            "tools/call",
            "resources/read",
            "prompts/get",
            "ping",
            "notifications/x",
            "completion/complete",
        ] {
            let e = compile_err(json!({"methods":[m]}));
            assert_eq!(e.path, "mcp.methods[0]", "{m}");
        }
    }

    #[test]
    fn list_visibility() {
        let g = grants(json!({
            "tools":[{"name":"get_*","arguments":[{"pointer":"/x","equals":1}]},{"name":"ops","server":"a"}],
            "resources":["file:///public/**"],
            "prompts":["p"]
        }));
        assert!(g.shows(&Target::Tool("get_x".into()), None));
        assert!(!g.shows(&Target::Tool("ops".into()), None));
        assert!(g.shows(&Target::Tool("ops".into()), Some("a")));
        assert!(g.shows(&Target::Resource("file:///public/{name}".into()), None));
        assert!(!g.shows(&Target::Resource("file:///public/../x".into()), None));
        assert!(g.shows(&Target::Prompt("p".into()), None));
        assert!(!g.shows(&Target::Prompt("P".into()), None));
    }

    #[test]
    fn compile_errors_name_the_field() {
        let cases = [
            (json!({"tools":[{"name":""}]}), "mcp.tools[0].name"),
            (json!({"tools":[{"name":"a\u{7}"}]}), "mcp.tools[0].name"),
            (json!({"tools":[{"name":"a","server":""}]}), "mcp.tools[0].server"),
            (
                json!({"tools":[{"name":"a","arguments":[{"pointer":"x","equals":1}]}]}),
                "mcp.tools[0].arguments[0].pointer",
            ),
            (
                json!({"tools":[{"name":"a","arguments":[{"pointer":"/a~2","equals":1}]}]}),
                "mcp.tools[0].arguments[0].pointer",
            ),
            (
                json!({"tools":[{"name":"a","arguments":[{"pointer":"/a"}]}]}),
                "mcp.tools[0].arguments[0]",
            ),
            (
                json!({"tools":[{"name":"a","arguments":[{"pointer":"/a","equals":1,"glob":"x"}]}]}),
                "mcp.tools[0].arguments[0]",
            ),
            (
                json!({"tools":[{"name":"a","arguments":[{"pointer":"/a","in":[]}]}]}),
                "mcp.tools[0].arguments[0].in",
            ),
            (
                json!({"tools":[{"name":"a","arguments":[{"pointer":"/a","regex":"("}]}]}),
                "mcp.tools[0].arguments[0].regex",
            ),
            (
                json!({"tools":[{"name":"a","arguments":[{"pointer":"/a","min":5,"max":1}]}]}),
                "mcp.tools[0].arguments[0].min",
            ),
            (
                json!({"tools":[{"name":"a"},{"name":"b","arguments":[{"pointer":"/a","glob":""}]}]}),
                "mcp.tools[1].arguments[0].glob",
            ),
            (json!({"resources":["ok", ""]}), "mcp.resources[1]"),
            (json!({"prompts":["x".repeat(513)]}), "mcp.prompts[0]"),
        ];
        for (config, path) in cases {
            assert_eq!(compile_err(config.clone()).path, path, "{config}");
        }
        // Unknown fields are refused by serde.
        assert!(serde_json::from_value::<McpGrantsConfig>(json!({"tool":[]})).is_err());
        assert!(
            serde_json::from_value::<McpGrantsConfig>(json!({"tools":[{"name":"a","argument":[]}]})).is_err()
        );
        assert!(serde_json::from_value::<McpGrantsConfig>(
            json!({"tools":[{"name":"a","arguments":[{"pointer":"/a","equal":1}]}]})
        )
        .is_err());
    }

    #[test]
    fn globs() {
        let n = |p: &str, t: &str| Glob::names(p).matches(t);
        assert!(n("*", ""));
        assert!(n("*", "a/b"));
        assert!(n("a*c", "abbbc"));
        assert!(n("a**c", "ac"));
        assert!(!n("a*c", "abbbd"));
        assert!(n("é*", "éa"));
        let u = |p: &str, t: &str| Glob::uris(p).matches(t);
        assert!(u("a/*/c", "a/b/c"));
        assert!(!u("a/*/c", "a/b/x/c"));
        assert!(u("a/**/c", "a/b/x/c"));
        assert!(u("a/**", "a/"));
        assert!(!u("a/*", "a/b/c"));
        // Pathological patterns stay linear in the text.
        let p = "*a".repeat(200);
        let t = "a".repeat(10_000) + "b";
        assert!(!n(&p, &t));
    }
}
