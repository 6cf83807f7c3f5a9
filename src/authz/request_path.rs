//! The one canonical form of the request path. Endpoint classification, route matching,
//! `other_paths` grants and the model named by the path all read [`CanonicalPath`], which only
//! [`canonical`] builds: no decision can be taken on the path as sent.
//!
//! The threat is a path the filter reads one way and the upstream another. Servers differ in
//! what they decode and normalise (percent-decoding, `\` as `/`, `;` parameters, dot segments,
//! merged slashes, case), so instead of guessing which server sits behind Envoy, every path
//! that some common server could read differently is refused:
//! - a percent-encoded `/` (`%2F`), `\` (`%5C`), or unreserved character (ALPHA, DIGIT, `-`,
//!   `.`, `_`, `~`: they have a plain form, so encoding one only serves to hide it);
//! - a percent-encoded `?`, `#`, `;` or `%` (a server that decodes twice, or decodes before
//!   splitting, would see a different path);
//! - a raw `\`, a `;` (path parameters), a `#`, or a character not allowed in a URI path
//!   (space, quotes, brackets, non-ASCII...);
//! - control characters, raw or encoded (`%00`, `%0A`, `%7F`, `%C2%85`...);
//! - a malformed `%` escape, or escapes that do not decode to UTF-8;
//! - dot segments (`.`, `..`) and empty segments (`//`); a single trailing `/` is allowed;
//! - anything not starting with `/` (absolute-form, `*`).
//!
//! What is left decodes unambiguously: the remaining escapes (`%20`, `%3A`, `%40`, `%C3%A9`...)
//! stand for characters that no server treats as structure, so the canonical path is the
//! fully decoded path. The invariant, property-tested below: any encoding of a path either
//! gives exactly the decoded path, or is refused.
//!
//! Case is kept: upstreams differ on case, so consumers decide. Known endpoint names and
//! `model_from.path_patterns` literals compare case-insensitively (a case variant is the same
//! endpoint); `other_paths` grants compare exactly (a grant is never widened by case).
//!
//! The query is kept apart and never decoded; it must be free of control characters, spaces,
//! `#` and malformed escapes.

/// A request path that reads the same to every server: see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalPath {
    /// Decoded, starts with `/`, no empty or dot segments (except one trailing `/`).
    path: String,
    query: Option<String>,
}

/// Why a path was refused. Each describes the request, never the filter's internals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathProblem {
    NotOriginForm,
    EncodedSlash,
    EncodedBackslash,
    EncodedUnreserved,
    EncodedDelimiter,
    Backslash,
    Parameters,
    DotSegment,
    EmptySegment,
    ControlCharacter,
    DisallowedCharacter,
    BadEscape,
    NotUtf8,
}

impl PathProblem {
    /// What is wrong with the path, for the caller.
    pub fn describe(self) -> &'static str {
        match self {
            PathProblem::NotOriginForm => "it does not start with \"/\"",
            PathProblem::EncodedSlash => "it contains a percent-encoded \"/\"",
            PathProblem::EncodedBackslash => "it contains a percent-encoded \"\\\"",
            PathProblem::EncodedUnreserved => {
                "it percent-encodes a letter, digit, \"-\", \".\", \"_\" or \"~\""
            }
            PathProblem::EncodedDelimiter => "it contains a percent-encoded \"?\", \"#\", \";\" or \"%\"",
            PathProblem::Backslash => "it contains \"\\\"",
            PathProblem::Parameters => "it contains \";\" parameters",
            PathProblem::DotSegment => "it contains a \".\" or \"..\" segment",
            PathProblem::EmptySegment => "it contains an empty segment (\"//\")",
            PathProblem::ControlCharacter => "it contains a control character",
            PathProblem::DisallowedCharacter => "it contains a character not allowed in a path",
            PathProblem::BadEscape => "it contains a malformed percent-encoding",
            PathProblem::NotUtf8 => "its percent-encodings are not UTF-8",
        }
    }
}

impl Default for CanonicalPath {
    /// The root path `/`, e.g. for a request whose path is not read yet.
    fn default() -> Self {
        CanonicalPath {
            path: "/".to_string(),
            query: None,
        }
    }
}

impl CanonicalPath {
    /// The decoded path, e.g. `/v1/chat/completions` or `/model/anthropic.claude-v2:1/invoke`.
    pub fn as_str(&self) -> &str {
        &self.path
    }

    /// The query (after `?`), as sent.
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// The decoded segments; a trailing `/` adds none (`/v1/models/` is `["v1", "models"]`).
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.path.split('/').filter(|s| !s.is_empty())
    }

    /// The path without a trailing `/` (`/` stays `/`).
    pub fn without_trailing_slash(&self) -> &str {
        match self.path.strip_suffix('/') {
            Some(p) if !p.is_empty() => p,
            _ => &self.path,
        }
    }
}

/// The canonical form of `raw` (Envoy's `:path`: path and query), or why it is ambiguous.
pub fn canonical(raw: &str) -> Result<CanonicalPath, PathProblem> {
    let (path, query) = match raw.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (raw, None),
    };
    if !path.starts_with('/') {
        return Err(PathProblem::NotOriginForm);
    }
    let mut decoded: Vec<u8> = Vec::with_capacity(path.len());
    let mut segment_start = 0usize;
    let mut bytes = path.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'/' => {
                // Nothing precedes the leading "/"; every later segment must be non-empty.
                if !decoded.is_empty() {
                    let segment = decoded.get(segment_start..).unwrap_or_default();
                    if segment.is_empty() {
                        return Err(PathProblem::EmptySegment);
                    }
                    check_dots(segment)?;
                }
                decoded.push(b'/');
                segment_start = decoded.len();
            }
            b'%' => {
                let byte = escape(&mut bytes)?;
                match byte {
                    b'/' => return Err(PathProblem::EncodedSlash),
                    b'\\' => return Err(PathProblem::EncodedBackslash),
                    b'?' | b'#' | b';' | b'%' => return Err(PathProblem::EncodedDelimiter),
                    _ if is_unreserved(byte) => return Err(PathProblem::EncodedUnreserved),
                    _ if is_control(byte) => return Err(PathProblem::ControlCharacter),
                    _ => decoded.push(byte),
                }
            }
            b'\\' => return Err(PathProblem::Backslash),
            b';' => return Err(PathProblem::Parameters),
            _ if is_control(b) => return Err(PathProblem::ControlCharacter),
            _ if is_unreserved(b) || is_path_punctuation(b) => decoded.push(b),
            _ => return Err(PathProblem::DisallowedCharacter),
        }
    }
    // The last segment may be empty: a trailing "/", or the root path.
    check_dots(decoded.get(segment_start..).unwrap_or_default())?;
    if let Some(q) = query {
        check_query(q)?;
    }
    let path = String::from_utf8(decoded).map_err(|_| PathProblem::NotUtf8)?;
    // C1 controls (U+0080..U+009F) arrive encoded as UTF-8; they are controls all the same.
    if path.chars().any(char::is_control) {
        return Err(PathProblem::ControlCharacter);
    }
    Ok(CanonicalPath {
        path,
        query: query.map(str::to_string),
    })
}

/// A finished segment is never `.` or `..` (encoded dots are refused before this).
fn check_dots(segment: &[u8]) -> Result<(), PathProblem> {
    match segment {
        b"." | b".." => Err(PathProblem::DotSegment),
        _ => Ok(()),
    }
}

/// Reads the two hex digits after a `%`.
fn escape(bytes: &mut impl Iterator<Item = u8>) -> Result<u8, PathProblem> {
    let hi = bytes.next().and_then(hex).ok_or(PathProblem::BadEscape)?;
    let lo = bytes.next().and_then(hex).ok_or(PathProblem::BadEscape)?;
    Ok((hi << 4) | lo)
}

fn hex(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 3986 pchar punctuation allowed raw in a path: sub-delims except `;`, `:` and `@`.
fn is_path_punctuation(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'=' | b':' | b'@'
    )
}

fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// The query is not interpreted, only kept free of what could end or split the request line.
fn check_query(q: &str) -> Result<(), PathProblem> {
    let mut bytes = q.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                escape(&mut bytes)?;
            }
            _ if is_control(b) => return Err(PathProblem::ControlCharacter),
            b' ' | b'#' => return Err(PathProblem::DisallowedCharacter),
            _ if !b.is_ascii() => return Err(PathProblem::DisallowedCharacter),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        canonical(raw)
            .unwrap_or_else(|e| panic!("{raw}: {e:?}"))
            .as_str()
            .to_string()
    }

    fn refused(raw: &str) -> PathProblem {
        canonical(raw).expect_err(raw)
    }

    #[test]
    fn plain_paths_pass_unchanged() {
        for p in [
            "/",
            "/v1/chat/completions",
            "/v1/chat/completions/",
            "/openai/deployments/gpt-4o/chat/completions",
            "/model/anthropic.claude-v2:1/invoke",
            "/v1/models/meta-llama~x",
            "/a/b!$&'()*+,=:@",
            "/.well-known/x",
            "/a/.../b",
            "/a/..b/c.",
        ] {
            assert_eq!(ok(p), p);
        }
    }

    #[test]
    fn query_is_kept_apart_and_undecoded() {
        let c = canonical("/openai/deployments/d/chat/completions?api-version=2024-02-01&x=%2F").unwrap();
        assert_eq!(c.as_str(), "/openai/deployments/d/chat/completions");
        assert_eq!(c.query(), Some("api-version=2024-02-01&x=%2F"));
        // A "?" in the query is part of the query.
        assert_eq!(canonical("/a?b?c").unwrap().query(), Some("b?c"));
        assert_eq!(canonical("/a?").unwrap().query(), Some(""));
        assert_eq!(canonical("/a").unwrap().query(), None);
        assert_eq!(refused("/a?x=%zz"), PathProblem::BadEscape);
        assert_eq!(refused("/a?x=\n"), PathProblem::ControlCharacter);
        assert_eq!(refused("/a?x=1#frag"), PathProblem::DisallowedCharacter);
        assert_eq!(refused("/a?x= 1"), PathProblem::DisallowedCharacter);
    }

    #[test]
    fn other_escapes_decode() {
        assert_eq!(
            ok("/model/anthropic.claude-v2%3A1/invoke"),
            "/model/anthropic.claude-v2:1/invoke"
        );
        assert_eq!(ok("/a%20b/%40x"), "/a b/@x");
        assert_eq!(ok("/mod%C3%A8le"), "/modèle");
        assert_eq!(ok("/mod%c3%a8le"), "/modèle");
        assert_eq!(refused("/mod%C3"), PathProblem::NotUtf8);
        assert_eq!(refused("/%FF"), PathProblem::NotUtf8);
    }

    #[test]
    fn encoded_slash_backslash_unreserved_and_delimiters() {
        assert_eq!(refused("/v1/chat%2Fcompletions"), PathProblem::EncodedSlash);
        assert_eq!(refused("/v1/chat%2fcompletions"), PathProblem::EncodedSlash);
        assert_eq!(refused("/v1/chat%5Ccompletions"), PathProblem::EncodedBackslash);
        assert_eq!(refused("/v1/chat/%63ompletions"), PathProblem::EncodedUnreserved);
        assert_eq!(refused("/v1/chat/completion%73"), PathProblem::EncodedUnreserved);
        for u in ["%2E", "%2e", "%2D", "%5F", "%7E", "%30", "%41", "%7a"] {
            assert_eq!(refused(&format!("/a{u}b")), PathProblem::EncodedUnreserved, "{u}");
        }
        for d in ["%3F", "%23", "%3B", "%3b", "%25", "%252e"] {
            assert_eq!(refused(&format!("/a{d}b")), PathProblem::EncodedDelimiter, "{d}");
        }
    }

    #[test]
    fn raw_backslash_parameters_and_disallowed() {
        assert_eq!(refused("/v1\\chat/completions"), PathProblem::Backslash);
        assert_eq!(refused("/v1/chat/completions;x=1"), PathProblem::Parameters);
        assert_eq!(refused("/v1;/chat/completions"), PathProblem::Parameters);
        for c in [" ", "\"", "<", ">", "[", "]", "^", "`", "{", "|", "}", "#", "é"] {
            assert_eq!(
                refused(&format!("/a{c}b")),
                PathProblem::DisallowedCharacter,
                "{c:?}"
            );
        }
    }

    #[test]
    fn dot_and_empty_segments() {
        for p in [
            "/v1/./chat/completions",
            "/v1/../v1/chat/completions",
            "/admin/..",
            "/admin/.",
            "/./",
            "/..",
            "/../",
        ] {
            assert_eq!(refused(p), PathProblem::DotSegment, "{p}");
        }
        for p in [
            "//v1/chat/completions",
            "/v1//chat/completions",
            "/v1/chat/completions//",
            "//",
        ] {
            assert_eq!(refused(p), PathProblem::EmptySegment, "{p}");
        }
    }

    #[test]
    fn control_characters_raw_and_encoded() {
        for p in [
            "/a\0b", "/a\tb", "/a\nb", "/a\u{7f}", "/a%00", "/a%0A", "/a%0d", "/a%1F", "/a%7F", "/a%C2%85",
        ] {
            assert_eq!(refused(p), PathProblem::ControlCharacter, "{p:?}");
        }
    }

    #[test]
    fn malformed_escapes_and_forms() {
        for p in ["/a%", "/a%2", "/a%g0", "/a%0g", "/%%41"] {
            assert_eq!(refused(p), PathProblem::BadEscape, "{p}");
        }
        for p in [
            "",
            "*",
            "v1/chat/completions",
            "http://x/v1/chat/completions",
            "?a=b",
        ] {
            assert_eq!(refused(p), PathProblem::NotOriginForm, "{p}");
        }
    }

    #[test]
    fn segments_and_trailing_slash() {
        let c = canonical("/v1/models/").unwrap();
        assert_eq!(c.segments().collect::<Vec<_>>(), ["v1", "models"]);
        assert_eq!(c.without_trailing_slash(), "/v1/models");
        let root = canonical("/").unwrap();
        assert_eq!(root, CanonicalPath::default());
        assert_eq!(root.segments().count(), 0);
        assert_eq!(root.without_trailing_slash(), "/");
    }

    #[test]
    fn every_problem_has_a_description() {
        for p in [
            PathProblem::NotOriginForm,
            PathProblem::EncodedSlash,
            PathProblem::EncodedBackslash,
            PathProblem::EncodedUnreserved,
            PathProblem::EncodedDelimiter,
            PathProblem::Backslash,
            PathProblem::Parameters,
            PathProblem::DotSegment,
            PathProblem::EmptySegment,
            PathProblem::ControlCharacter,
            PathProblem::DisallowedCharacter,
            PathProblem::BadEscape,
            PathProblem::NotUtf8,
        ] {
            assert!(p.describe().starts_with("it"));
        }
    }

    /// The invariant, property-tested: every spelling of a path (percent-encodings in either
    /// hex case, case variants, dot segments, doubled or encoded slashes, backslashes,
    /// `;params`, double encodings, control characters, bad escapes) is either refused or
    /// canonicalises to exactly what the most permissive server reads (decoding repeatedly,
    /// `\` as `/`, parameters dropped, slashes merged, dot segments resolved). So it
    /// classifies as that path, never as another endpoint nor as `other`.
    mod property {
        use super::super::*;
        use crate::authz::llm_request::{Endpoint, PathPattern};

        /// splitmix64: deterministic, so a failure reproduces.
        struct Rng(u64);
        impl Rng {
            fn next(&mut self) -> u64 {
                self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = self.0;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^ (z >> 31)
            }
            fn below(&mut self, n: usize) -> usize {
                (self.next() % n as u64) as usize
            }
            fn chance(&mut self, one_in: usize) -> bool {
                self.below(one_in) == 0
            }
            fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
                &items[self.below(items.len())]
            }
        }

        const ENDPOINTS: &[&str] = &[
            "chat/completions",
            "completions",
            "embeddings",
            "v1/responses",
            "v1/messages",
            "v1/models",
            "v1/models/gpt-4o",
            "images/generations",
            "audio/speech",
            "moderations",
            "files",
            "v1/batches",
            "audio/transcriptions",
            "admin/models/reload",
        ];
        /// Characters a decoded segment may hold: some need no encoding, some must be encoded.
        const SEGMENT_CHARS: &[char] = &[
            'a', 'b', 'c', 'm', 'o', 'p', 's', 't', 'C', 'M', '0', '7', '-', '.', '_', '~', '!', '$', '&',
            '\'', '(', ')', '*', '+', ',', '=', ':', '@', ' ', 'é', '"', '<', '|',
        ];

        fn random_segment(rng: &mut Rng) -> String {
            loop {
                let len = 1 + rng.below(8);
                let s: String = (0..len).map(|_| *rng.pick(SEGMENT_CHARS)).collect();
                if s != "." && s != ".." {
                    return s;
                }
            }
        }

        /// A decoded path made of a prefix and a known endpoint's segments.
        fn random_decoded_path(rng: &mut Rng) -> String {
            let mut segments: Vec<String> = Vec::new();
            match rng.below(4) {
                0 => {}
                1 => segments.push("v1".into()),
                2 => {
                    segments.push("openai".into());
                    segments.push("deployments".into());
                    segments.push(random_segment(rng));
                }
                _ => {
                    for _ in 0..1 + rng.below(2) {
                        segments.push(random_segment(rng));
                    }
                    segments.push("v1".into());
                }
            }
            segments.extend(rng.pick(ENDPOINTS).split('/').map(str::to_string));
            if rng.chance(5) {
                segments.push(random_segment(rng));
            }
            let mut path = String::new();
            for seg in segments {
                path.push('/');
                // Case variants are part of the decoded path.
                for c in seg.chars() {
                    path.push(if rng.chance(4) { flip_case(c) } else { c });
                }
            }
            path
        }

        fn flip_case(c: char) -> char {
            if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        }

        fn encode_byte(rng: &mut Rng, b: u8) -> String {
            if rng.chance(2) {
                format!("%{b:02X}")
            } else {
                format!("%{b:02x}")
            }
        }

        /// One spelling of `decoded`; `plain` says whether it uses only unambiguous spellings
        /// (then it must be accepted).
        fn spell(rng: &mut Rng, decoded: &str) -> (String, bool) {
            let mut raw = String::new();
            let mut plain = true;
            for c in decoded.chars() {
                let must_encode = matches!(c, ' ' | 'é' | '"' | '<' | '|');
                let unreserved = c.is_ascii_alphanumeric() || "-._~".contains(c);
                if c == '/' {
                    raw.push('/');
                } else if must_encode && rng.chance(8) {
                    raw.push(c);
                    plain = false;
                } else if must_encode || (c != '/' && rng.chance(if unreserved { 40 } else { 3 })) {
                    plain &= !unreserved;
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        raw.push_str(&encode_byte(rng, b));
                    }
                } else {
                    raw.push(c);
                }
            }
            // Structural tricks, at a random slash.
            for _ in 0..rng.below(3) {
                let slashes: Vec<usize> = raw.match_indices('/').map(|(i, _)| i).collect();
                if slashes.is_empty() {
                    break;
                }
                let at = *rng.pick(&slashes);
                let trick = rng.below(14);
                let insert = match trick {
                    0 => "/.".to_string(),
                    1 => format!("/{}/..", random_segment(rng).replace(' ', "x")),
                    2 => "/".to_string(),
                    3 => ";v=1".to_string(),
                    4 => format!("/{}{}", encode_byte(rng, b'.'), encode_byte(rng, b'.')),
                    5 => format!("/.{}", encode_byte(rng, b'.')),
                    6 => format!("%25{}", rng.pick(&["2e", "2E", "2f", "2F", "5c", "63"])),
                    7 => rng
                        .pick(&["%00", "%0a", "%0D", "%1f", "%7F", "\t", "\u{0}"])
                        .to_string(),
                    8 => rng.pick(&["%", "%4", "%zz", "%g0"]).to_string(),
                    9 => encode_byte(rng, b';'),
                    10 => encode_byte(rng, b'?'),
                    _ => String::new(),
                };
                match trick {
                    11 => raw.replace_range(at..at + 1, "\\"),
                    12 => {
                        let e = encode_byte(rng, b'/');
                        raw.replace_range(at..at + 1, &e)
                    }
                    13 => {
                        let e = encode_byte(rng, b'\\');
                        raw.replace_range(at..at + 1, &e)
                    }
                    // Inserted before a slash: appended to the previous segment.
                    _ => raw.insert_str(at, &insert),
                }
                plain = false;
            }
            // Benign: a trailing slash and a query never change the path's meaning.
            if rng.chance(6) && !raw.ends_with('/') {
                raw.push('/');
            }
            if rng.chance(4) {
                raw.push_str("?api-version=2024-02-01&x=%2F%2e");
            }
            (raw, plain)
        }

        fn percent_decode_lenient(bytes: &[u8]) -> Vec<u8> {
            let mut out = Vec::new();
            let mut i = 0;
            while i < bytes.len() {
                let hexpair = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
                match (bytes[i], hexpair) {
                    (b'%', Some(b)) => {
                        out.push(b);
                        i += 3;
                    }
                    (b, _) => {
                        out.push(b);
                        i += 1;
                    }
                }
            }
            out
        }

        /// What the most permissive server reads.
        fn server_view(raw: &str) -> String {
            let path = raw.split('?').next().unwrap_or_default();
            let mut bytes = path.as_bytes().to_vec();
            for _ in 0..3 {
                bytes = percent_decode_lenient(&bytes);
            }
            let s = String::from_utf8_lossy(&bytes).replace('\\', "/");
            let trailing = s.ends_with('/');
            let mut out: Vec<&str> = Vec::new();
            for seg in s.split('/') {
                match seg.split(';').next().unwrap_or_default() {
                    "" | "." => {}
                    ".." => {
                        out.pop();
                    }
                    x => out.push(x),
                }
            }
            let mut view = format!("/{}", out.join("/"));
            if trailing && !out.is_empty() {
                view.push('/');
            }
            view
        }

        /// An independent, string-based classifier of a decoded path.
        fn reference_endpoint(decoded: &str) -> Endpoint {
            let lower = decoded.to_ascii_lowercase();
            let p = lower.trim_end_matches('/');
            if p.ends_with("/chat/completions") {
                Endpoint::ChatCompletions
            } else if p.ends_with("/completions") {
                Endpoint::Completions
            } else if p.ends_with("/embeddings") {
                Endpoint::Embeddings
            } else if p.ends_with("/v1/responses") || p == "/responses" {
                Endpoint::Responses
            } else if p.ends_with("/v1/messages") || p == "/messages" {
                Endpoint::Messages
            } else if p.ends_with("/images/generations") {
                Endpoint::ImageGenerations
            } else if p.ends_with("/audio/speech") {
                Endpoint::Speech
            } else if p.ends_with("/moderations") {
                Endpoint::Moderations
            } else if p.ends_with("/v1/models") || p.contains("/v1/models/") {
                Endpoint::Models
            } else {
                Endpoint::Other
            }
        }

        fn reference_deployment(decoded: &str) -> Option<String> {
            let segs: Vec<&str> = decoded.split('/').filter(|s| !s.is_empty()).collect();
            match segs.as_slice() {
                [a, b, model, ..]
                    if a.eq_ignore_ascii_case("openai") && b.eq_ignore_ascii_case("deployments") =>
                {
                    Some(model.to_string())
                }
                _ => None,
            }
        }

        #[test]
        fn every_spelling_classifies_as_its_decoded_form_or_is_refused() {
            let mut rng = Rng(0x5EED_CAFE_F00D_0013);
            let azure = PathPattern::parse("/openai/deployments/{model}/**").unwrap();
            let (mut accepted, mut refused, mut tricky_accepted) = (0, 0, 0);
            for _ in 0..4000 {
                let decoded = random_decoded_path(&mut rng);
                let want = reference_endpoint(&decoded);
                for _ in 0..8 {
                    let (raw, plain) = spell(&mut rng, &decoded);
                    match canonical(&raw) {
                        Ok(c) => {
                            accepted += 1;
                            let view = server_view(&raw);
                            assert_eq!(
                                c.as_str(),
                                view,
                                "{raw:?} canonicalised differently from what a server reads"
                            );
                            let got = Endpoint::of(&c);
                            assert_eq!(got, reference_endpoint(&view), "{raw:?}");
                            if !plain {
                                tricky_accepted += 1;
                            } else {
                                assert_eq!(got, want, "{raw:?} of {decoded:?}");
                            }
                            assert_eq!(azure.model_of(&c), reference_deployment(&view), "{raw:?}");
                        }
                        Err(problem) => {
                            refused += 1;
                            assert!(
                                !plain,
                                "{raw:?} (plain spelling of {decoded:?}) refused: {problem:?}"
                            );
                        }
                    }
                }
            }
            // Both outcomes are well exercised.
            assert!(
                accepted > 4000 && refused > 8000,
                "accepted {accepted}, refused {refused}"
            );
            // Every structural trick in the generator changes what some server reads.
            assert_eq!(tricky_accepted, 0);
        }

        #[test]
        fn the_plain_form_of_every_known_endpoint_classifies_as_it() {
            for e in ENDPOINTS {
                for prefix in ["", "/v1", "/openai/deployments/gpt-4o", "/proxy/x/v1"] {
                    let decoded = format!("{prefix}/{e}");
                    let c = canonical(&decoded).unwrap();
                    assert_eq!(Endpoint::of(&c), reference_endpoint(&decoded), "{decoded}");
                    let upper = canonical(&decoded.to_ascii_uppercase()).unwrap();
                    assert_eq!(Endpoint::of(&upper), reference_endpoint(&decoded), "{decoded}");
                }
            }
        }
    }
}
