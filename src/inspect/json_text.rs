//! A JSON-text walker for response inspection: every string value is decoded (escapes such
//! as `\u0041KIA` included) and handed to a callback, which may return a replacement; only
//! replaced strings are re-encoded, every other byte stays as the upstream sent it. It
//! accepts the non-standard number tokens model servers emit (`NaN`, `Infinity`,
//! `-Infinity`: vLLM logprobs; Python's `json` reads them), so such a body is inspected
//! instead of falling back to raw text. Anything else that is not JSON is refused (None):
//! the caller withholds it or treats it as text, never passes it as inspected JSON.

use serde_json::Value;
use std::borrow::Cow;

/// Nesting deeper than this is refused (serde_json's own limit).
const MAX_DEPTH: usize = 128;

/// One step of the path to a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg<'a> {
    /// Borrowed from the text unless the key has escapes.
    Key(Cow<'a, str>),
    Index(usize),
}

/// RFC 6901 pointer of a path (`/choices/0/delta/content`), as `Value::pointer` takes it.
pub fn pointer(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        out.push('/');
        match seg {
            Seg::Key(k) => {
                for c in k.chars() {
                    match c {
                        '~' => out.push_str("~0"),
                        '/' => out.push_str("~1"),
                        c => out.push(c),
                    }
                }
            }
            Seg::Index(i) => out.push_str(&i.to_string()),
        }
    }
    out
}

/// Callback for each string value: its path and decoded text; Some(new) replaces it.
pub type OnString<'a> = dyn FnMut(&[Seg<'_>], &str) -> Option<String> + 'a;

struct Walker<'a, 'f> {
    s: &'a [u8],
    i: usize,
    /// Output so far, up to `copied` of the input (only allocated once something changes).
    out: Option<Vec<u8>>,
    copied: usize,
    path: Vec<Seg<'a>>,
    on_string: &'f mut OnString<'f>,
    /// Write non-standard numbers as `null` (for handing the text to serde_json).
    nonstandard_as_null: bool,
}

impl<'a, 'f> Walker<'a, 'f> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &[u8]) -> bool {
        if self.s.get(self.i..self.i + lit.len()) == Some(lit) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    /// Replaces input bytes `from..self.i` with `with` in the output.
    fn replace(&mut self, from: usize, with: &[u8]) {
        let out = self
            .out
            .get_or_insert_with(|| Vec::with_capacity(self.s.len() + 64));
        out.extend_from_slice(self.s.get(self.copied..from).unwrap_or_default());
        out.extend_from_slice(with);
        self.copied = self.i;
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match self.peek()? {
            b'{' => {
                self.i += 1;
                self.ws();
                if self.eat(b"}") {
                    return Some(());
                }
                loop {
                    self.ws();
                    if self.peek()? != b'"' {
                        return None;
                    }
                    let key = self.string()?;
                    self.ws();
                    if !self.eat(b":") {
                        return None;
                    }
                    self.path.push(Seg::Key(key));
                    self.value(depth + 1)?;
                    self.path.pop();
                    self.ws();
                    if self.eat(b",") {
                        continue;
                    }
                    return self.eat(b"}").then_some(());
                }
            }
            b'[' => {
                self.i += 1;
                self.ws();
                if self.eat(b"]") {
                    return Some(());
                }
                let mut index = 0;
                loop {
                    self.path.push(Seg::Index(index));
                    self.value(depth + 1)?;
                    self.path.pop();
                    index += 1;
                    self.ws();
                    if self.eat(b",") {
                        continue;
                    }
                    return self.eat(b"]").then_some(());
                }
            }
            b'"' => {
                let start = self.i;
                let text = self.string()?;
                if let Some(new) = (self.on_string)(&self.path, &text) {
                    if new != text {
                        let encoded = encode(&new);
                        self.replace(start, encoded.as_bytes());
                    }
                }
                Some(())
            }
            b't' => self.eat(b"true").then_some(()),
            b'f' => self.eat(b"false").then_some(()),
            b'n' => self.eat(b"null").then_some(()),
            b'N' | b'I' => {
                let start = self.i;
                (self.eat(b"NaN") || self.eat(b"Infinity")).then_some(())?;
                self.nonstandard(start);
                Some(())
            }
            b'-' if self.s.get(self.i + 1) == Some(&b'I') => {
                let start = self.i;
                self.i += 1;
                self.eat(b"Infinity").then_some(())?;
                self.nonstandard(start);
                Some(())
            }
            _ => self.number(),
        }
    }

    fn nonstandard(&mut self, start: usize) {
        if self.nonstandard_as_null {
            self.replace(start, b"null");
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Option<()> {
        self.eat(b"-");
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.eat(b".") && self.digits() == 0 {
            return None;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.get(self.i..self.i + 4)?;
        let h = std::str::from_utf8(h).ok()?;
        let v = u32::from_str_radix(h, 16).ok()?;
        if !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.i += 4;
        Some(v)
    }

    /// A string token (at its opening quote), decoded.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.i += 1;
        // Most strings have no escape: borrow them.
        let s: &'a [u8] = self.s;
        let run = s.get(self.i..)?;
        let n = run.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if run.get(n) == Some(&b'"') {
            let text = std::str::from_utf8(run.get(..n)?).ok()?;
            self.i += n + 1;
            return Some(Cow::Borrowed(text));
        }
        let mut out = String::new();
        loop {
            // Copy the run up to the next quote, backslash or control character at once.
            let run = self.s.get(self.i..)?;
            let n = run.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
            out.push_str(std::str::from_utf8(run.get(..n)?).ok()?);
            self.i += n;
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(Cow::Owned(out));
                }
                b'\\' => {
                    self.i += 1;
                    let e = self.peek()?;
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let c = if (0xD800..0xDC00).contains(&hi)
                                && self.s.get(self.i..self.i + 2) == Some(b"\\u")
                            {
                                let save = self.i;
                                self.i += 2;
                                match self.hex4() {
                                    Some(lo) if (0xDC00..0xE000).contains(&lo) => {
                                        char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                                    }
                                    _ => {
                                        self.i = save;
                                        None
                                    }
                                }
                            } else {
                                char::from_u32(hi)
                            };
                            // A lone surrogate (which lenient parsers accept) reads as U+FFFD.
                            out.push(c.unwrap_or('\u{FFFD}'));
                        }
                        _ => return None,
                    }
                }
                // A raw control character: not JSON.
                _ => return None,
            }
        }
    }
}

/// Encodes a string as a JSON string token.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn walk(text: &[u8], on_string: &mut OnString, nonstandard_as_null: bool) -> Option<Option<Vec<u8>>> {
    let mut w = Walker {
        s: text,
        i: 0,
        out: None,
        copied: 0,
        path: Vec::new(),
        on_string,
        nonstandard_as_null,
    };
    w.value(0)?;
    w.ws();
    if w.i != text.len() {
        return None;
    }
    Some(w.out.map(|mut out| {
        out.extend_from_slice(text.get(w.copied..).unwrap_or_default());
        out
    }))
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Calls `on_string` for every string value (not keys) of a JSON text. None when the text
/// is not JSON (non-standard numbers allowed); Some(None) when nothing was replaced;
/// Some(Some(text)) with the replacements applied, every other byte unchanged. A leading
/// UTF-8 BOM (which JavaScript's `res.json()` and Python's `json.loads(bytes)` skip) is
/// skipped and kept.
pub fn rewrite_strings(text: &[u8], on_string: &mut OnString) -> Option<Option<Vec<u8>>> {
    match text.strip_prefix(BOM) {
        Some(rest) => Some(walk(rest, on_string, false)?.map(|out| [BOM, &out].concat())),
        None => walk(text, on_string, false),
    }
}

/// Parses JSON as lenient clients do: `NaN` / `Infinity` / `-Infinity` (read as null), a
/// leading UTF-8 BOM, and UTF-16 / UTF-32 text (which Python's `json.loads(bytes)` detects
/// from its zero bytes, BOM or not). For checks that must see what any client could read.
pub fn parse_tolerant(text: &[u8]) -> Option<Value> {
    let text = text.strip_prefix(BOM).unwrap_or(text);
    if let Ok(v) = serde_json::from_slice(text) {
        return Some(v);
    }
    if let Some(walked) = walk(text, &mut |_, _| None, true) {
        return match walked {
            Some(sanitized) => serde_json::from_slice(&sanitized).ok(),
            None => serde_json::from_slice(text).ok(),
        };
    }
    let decoded = decode_wide(text)?;
    let decoded = decoded.strip_prefix('\u{FEFF}').unwrap_or(&decoded);
    match walk(decoded.as_bytes(), &mut |_, _| None, true)? {
        Some(sanitized) => serde_json::from_slice(&sanitized).ok(),
        None => serde_json::from_str(decoded).ok(),
    }
}

/// UTF-16 / UTF-32 JSON text, the encoding detected as Python's `json.detect_encoding`
/// does (BOM, else the position of zero bytes). None for anything else.
fn decode_wide(b: &[u8]) -> Option<String> {
    let (unit, big_endian) = match b {
        [0xFF, 0xFE, 0, 0, ..] => (4, false),
        [0, 0, 0xFE, 0xFF, ..] => (4, true),
        [0xFF, 0xFE, ..] => (2, false),
        [0xFE, 0xFF, ..] => (2, true),
        [0, 0, _, _, ..] => (4, true),
        [0, _, _, _, ..] => (2, true),
        [_, 0, 0, 0, ..] => (4, false),
        [_, 0, _, _, ..] => (2, false),
        [0, _] => (2, true),
        [_, 0] => (2, false),
        _ => return None,
    };
    let words = b.chunks_exact(unit).map(|c| {
        let mut v: u32 = 0;
        for (i, &byte) in c.iter().enumerate() {
            let shift = if big_endian { 8 * (unit - 1 - i) } else { 8 * i };
            v |= u32::from(byte) << shift;
        }
        v
    });
    if unit == 2 {
        let units: Vec<u16> = words.map(|w| u16::try_from(w).unwrap_or(0xFFFD)).collect();
        Some(String::from_utf16_lossy(&units))
    } else {
        Some(words.map(|w| char::from_u32(w).unwrap_or('\u{FFFD}')).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upper(text: &str) -> Option<Vec<u8>> {
        rewrite_strings(text.as_bytes(), &mut |_, s| Some(s.to_uppercase()))
            .map(|o| o.unwrap_or_else(|| text.as_bytes().to_vec()))
    }

    #[test]
    fn strings_are_decoded_and_only_changed_ones_re_encoded() {
        let text = r#"{ "a" : "x\u0041\"y" , "n": [1, -2.5e3, NaN, -Infinity, Infinity, true, null], "k\u0041": "ok" }"#;
        let mut seen = Vec::new();
        let out = rewrite_strings(text.as_bytes(), &mut |p, s| {
            seen.push((pointer(p), s.to_string()));
            (s == "xA\"y").then(|| "Z".to_string())
        })
        .unwrap()
        .unwrap();
        assert_eq!(
            seen,
            [
                ("/a".to_string(), "xA\"y".to_string()),
                ("/kA".to_string(), "ok".to_string())
            ]
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{ "a" : "Z" , "n": [1, -2.5e3, NaN, -Infinity, Infinity, true, null], "k\u0041": "ok" }"#
        );
        assert_eq!(
            rewrite_strings(b"[\"same\"]", &mut |_, s| Some(s.to_string())),
            Some(None)
        );
    }

    #[test]
    fn surrogates_and_control_characters() {
        assert_eq!(upper(r#""\ud83e\udd80 \u00e9""#).unwrap(), "\"🦀 É\"".as_bytes());
        assert_eq!(upper(r#""\ud800x""#).unwrap(), "\"\u{FFFD}X\"".as_bytes());
        assert_eq!(encode("a\u{1}\n\"\\"), r#""a\u0001\n\"\\""#);
        assert!(upper("\"a\u{1}b\"").is_none(), "raw control character");
    }

    #[test]
    fn not_json_is_refused() {
        for bad in [
            "",
            "{",
            "{\"a\":}",
            "[1,]",
            "01",
            "1.",
            "-",
            "nan",
            "+1",
            "{\"a\" 1}",
            "[1] x",
            "'a'",
            "\"\\x\"",
            "\"\\u12\"",
        ] {
            assert!(upper(bad).is_none(), "{bad:?}");
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(upper(&deep).is_none());
        for good in ["0", "-0.5E+2", " [] ", "{}", "\"\"", "-Infinity", "[NaN]"] {
            assert!(upper(good).is_some(), "{good:?}");
        }
    }

    #[test]
    fn bom_and_wide_encodings_are_read_as_clients_read_them() {
        let json = r#"{"message": {"tool_calls": [{"function": {"name": "rm"}}]}}"#;
        let expected: Value = serde_json::from_str(json).unwrap();
        let bom = [b"\xEF\xBB\xBF".as_slice(), json.as_bytes()].concat();
        assert_eq!(parse_tolerant(&bom), Some(expected.clone()));
        let utf16le: Vec<u8> = json.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let utf16be: Vec<u8> = json.encode_utf16().flat_map(u16::to_be_bytes).collect();
        let utf32le: Vec<u8> = json.chars().flat_map(|c| (c as u32).to_le_bytes()).collect();
        let with_bom = [[0xFF, 0xFE].as_slice(), &utf16le].concat();
        for wide in [utf16le, utf16be, utf32le, with_bom] {
            assert_eq!(parse_tolerant(&wide), Some(expected.clone()));
        }
        // Redaction keeps the BOM and sees past it; wide text is not rewritten (withheld).
        let out = rewrite_strings(b"\xEF\xBB\xBF[\"a\"]", &mut |_, _| Some("b".into()))
            .unwrap()
            .unwrap();
        assert_eq!(out, b"\xEF\xBB\xBF[\"b\"]");
        assert!(rewrite_strings(&[b'[', 0, b']', 0], &mut |_, _| None).is_none());
    }

    #[test]
    fn tolerant_parse() {
        let v = parse_tolerant(br#"{"lp": [-Infinity, NaN], "t": "\u0041KIA"}"#).unwrap();
        assert_eq!(v, serde_json::json!({"lp": [null, null], "t": "AKIA"}));
        assert!(parse_tolerant(b"{\"a\": Nan}").is_none());
        // A NaN inside a string is text, not a number.
        assert_eq!(parse_tolerant(br#"["NaN"]"#).unwrap(), serde_json::json!(["NaN"]));
    }
}
