//! Secret and PII detectors, and redaction of text.
//!
//! Detectors are hand-written scanners rather than regexes: they run in one pass, check
//! checksums (Luhn, IBAN mod 97) and strict shapes, and each knows how many
//! whitespace-separated runs a match can span. The streaming redactor needs that bound: to
//! be safe it only holds back as many trailing runs as the widest enabled detector needs.

use serde::Deserialize;

/// What was found. The name is the `<type>` of `[REDACTED:<type>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    AwsAccessKey,
    AwsSecretKey,
    GithubToken,
    OpenaiKey,
    AnthropicKey,
    SlackToken,
    StripeKey,
    GoogleApiKey,
    PrivateKey,
    Jwt,
    Password,
    Email,
    PaymentCard,
    UsSsn,
    Iban,
    Phone,
    Ipv4,
    Custom,
}

impl Kind {
    pub const ALL: [Kind; 17] = [
        Kind::AwsAccessKey,
        Kind::AwsSecretKey,
        Kind::GithubToken,
        Kind::OpenaiKey,
        Kind::AnthropicKey,
        Kind::SlackToken,
        Kind::StripeKey,
        Kind::GoogleApiKey,
        Kind::PrivateKey,
        Kind::Jwt,
        Kind::Password,
        Kind::Email,
        Kind::PaymentCard,
        Kind::UsSsn,
        Kind::Iban,
        Kind::Phone,
        Kind::Ipv4,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::AwsAccessKey => "aws_access_key",
            Kind::AwsSecretKey => "aws_secret_key",
            Kind::GithubToken => "github_token",
            Kind::OpenaiKey => "openai_key",
            Kind::AnthropicKey => "anthropic_key",
            Kind::SlackToken => "slack_token",
            Kind::StripeKey => "stripe_key",
            Kind::GoogleApiKey => "google_api_key",
            Kind::PrivateKey => "private_key",
            Kind::Jwt => "jwt",
            Kind::Password => "password",
            Kind::Email => "email",
            Kind::PaymentCard => "payment_card",
            Kind::UsSsn => "us_ssn",
            Kind::Iban => "iban",
            Kind::Phone => "phone",
            Kind::Ipv4 => "ipv4",
            Kind::Custom => "custom",
        }
    }

    /// How many whitespace-separated runs a match can span (the streaming hold-back).
    pub fn max_runs(self) -> usize {
        match self {
            Kind::PaymentCard => 5,
            Kind::Iban => 9,
            Kind::Phone => 5,
            Kind::Password | Kind::AwsSecretKey => 4,
            Kind::UsSsn => 1,
            _ => 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
    /// For custom patterns: the pattern's name.
    pub label: Option<String>,
    /// Start of the text the detection depended on (the key of `password = value`); a
    /// streaming cut must not fall between it and `end`.
    pub ctx: usize,
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Byte at i, or 0.
fn at(s: &[u8], i: usize) -> u8 {
    s.get(i).copied().unwrap_or(0)
}

fn boundary_before(s: &[u8], i: usize) -> bool {
    i == 0 || !is_word(at(s, i - 1))
}

/// Length of the run of bytes from `i` satisfying `f`.
fn span(s: &[u8], i: usize, f: impl Fn(u8) -> bool) -> usize {
    s.get(i..)
        .map_or(0, |rest| rest.iter().take_while(|b| f(**b)).count())
}

fn key_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Token-shaped secrets with a fixed prefix.
fn prefixed_tokens(s: &[u8], out: &mut Vec<Match>) {
    type Class = fn(u8) -> bool;
    let upper_digit: Class = |b| b.is_ascii_uppercase() || b.is_ascii_digit();
    let alnum: Class = |b| b.is_ascii_alphanumeric();
    let alnum_us: Class = |b| b.is_ascii_alphanumeric() || b == b'_';
    let key: Class = key_char;
    // (prefix, kind, minimum body length, body characters, exact body length)
    type Rule = (&'static [u8], Kind, usize, Class, Option<usize>);
    let rules: [Rule; 17] = [
        (b"AKIA", Kind::AwsAccessKey, 16, upper_digit, Some(16)),
        (b"ASIA", Kind::AwsAccessKey, 16, upper_digit, Some(16)),
        (b"ghp_", Kind::GithubToken, 36, alnum, None),
        (b"gho_", Kind::GithubToken, 36, alnum, None),
        (b"ghu_", Kind::GithubToken, 36, alnum, None),
        (b"ghs_", Kind::GithubToken, 36, alnum, None),
        (b"ghr_", Kind::GithubToken, 36, alnum, None),
        (b"github_pat_", Kind::GithubToken, 60, alnum_us, None),
        (b"sk-ant-", Kind::AnthropicKey, 32, key, None),
        (b"sk-", Kind::OpenaiKey, 32, key, None),
        (b"xoxb-", Kind::SlackToken, 20, key, None),
        (b"xoxp-", Kind::SlackToken, 20, key, None),
        (b"xoxa-", Kind::SlackToken, 20, key, None),
        (b"xapp-", Kind::SlackToken, 20, key, None),
        (b"sk_live_", Kind::StripeKey, 20, alnum, None),
        (b"rk_live_", Kind::StripeKey, 20, alnum, None),
        (b"AIza", Kind::GoogleApiKey, 35, key, Some(35)),
    ];
    let mut i = 0;
    while i < s.len() {
        let b = at(s, i);
        let b1 = at(s, i + 1);
        // Only the first two bytes of a known prefix start a check (most words do not).
        let candidate = matches!(
            (b, b1),
            (b'A', b'K' | b'S' | b'I')
                | (b'g', b'h' | b'i')
                | (b's', b'k')
                | (b'x', b'o' | b'a')
                | (b'r', b'k')
        );
        if !candidate || !boundary_before(s, i) {
            i += 1;
            continue;
        }
        let mut matched = false;
        for (prefix, kind, min, class, exact) in rules.iter() {
            if !s.get(i..).is_some_and(|r| r.starts_with(prefix)) {
                continue;
            }
            let body = span(s, i + prefix.len(), *class);
            let ok = match exact {
                Some(n) => body == *n,
                None => body >= *min,
            };
            // A following word char means a longer identifier, not this token shape.
            if ok && !(exact.is_some() && is_word(at(s, i + prefix.len() + body))) {
                let end = i + prefix.len() + body;
                out.push(Match {
                    start: i,
                    end,
                    kind: *kind,
                    label: None,
                    ctx: usize::MAX,
                });
                i = end;
                matched = true;
                break;
            }
        }
        if !matched {
            i += 1;
        }
    }
}

fn b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn jwts(s: &[u8], out: &mut Vec<Match>) {
    let mut i = 0;
    while let Some(off) = s.get(i..).and_then(|r| find(r, b"eyJ")) {
        let start = i + off;
        i = start + 3;
        if !boundary_before(s, start) {
            continue;
        }
        let h = span(s, start, b64url);
        if at(s, start + h) != b'.' || !s.get(start + h + 1..).is_some_and(|r| r.starts_with(b"eyJ")) {
            continue;
        }
        let p = span(s, start + h + 1, b64url);
        let sig_start = start + h + 1 + p;
        if at(s, sig_start) != b'.' {
            continue;
        }
        let sig = span(s, sig_start + 1, b64url);
        let end = sig_start + 1 + sig;
        if h >= 10 && p >= 10 {
            out.push(Match {
                start,
                end,
                kind: Kind::Jwt,
                label: None,
                ctx: usize::MAX,
            });
            i = end;
        }
    }
}

/// Substring search: jumps between occurrences of the first byte and compares only there
/// (a window compare at every position dominated redaction time).
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut i = 0;
    while let Some(off) = hay.get(i..)?.iter().position(|b| *b == first) {
        let at_ = i + off;
        if hay.get(at_ + 1..at_ + 1 + rest.len()) == Some(rest) {
            return Some(at_);
        }
        i = at_ + 1;
    }
    None
}

fn private_keys(s: &[u8], out: &mut Vec<Match>) {
    let mut i = 0;
    while let Some(off) = s.get(i..).and_then(|r| find(r, b"-----BEGIN ")) {
        let start = i + off;
        let header_end = s
            .get(start + 11..)
            .and_then(|r| find(r, b"-----"))
            .map(|e| start + 11 + e);
        let Some(header_end) = header_end else { return };
        let label = s.get(start + 11..header_end).unwrap_or_default();
        if !label.ends_with(b"PRIVATE KEY") || label.len() > 40 {
            i = header_end;
            continue;
        }
        let tail = s
            .get(header_end..)
            .and_then(|r| find(r, b"-----END "))
            .map(|e| header_end + e);
        let end = tail.and_then(|t| {
            s.get(t + 9..)
                .and_then(|r| find(r, b"-----"))
                .map(|e| t + 9 + e + 5)
        });
        match end {
            Some(end) => {
                out.push(Match {
                    start,
                    end,
                    kind: Kind::PrivateKey,
                    label: None,
                    ctx: usize::MAX,
                });
                i = end;
            }
            // Unterminated: the whole rest is key material (the streamer holds it back).
            None => {
                out.push(Match {
                    start,
                    end: s.len(),
                    kind: Kind::PrivateKey,
                    label: None,
                    ctx: usize::MAX,
                });
                return;
            }
        }
    }
}

/// Start of an unterminated private key block, which the streamer must hold back whole.
pub fn open_private_key(s: &[u8]) -> Option<usize> {
    let begin = rfind(s, b"-----BEGIN ")?;
    match s.get(begin..).and_then(|r| find(r, b"-----END ")) {
        Some(_) => None,
        None => Some(begin),
    }
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut end = hay.len();
    while let Some(at_) = hay.get(..end)?.iter().rposition(|b| *b == first) {
        if hay.get(at_ + 1..at_ + 1 + rest.len()) == Some(rest) {
            return Some(at_);
        }
        end = at_;
    }
    None
}

const SECRET_KEYS: [&str; 14] = [
    "password",
    "passwd",
    "pwd",
    "secret",
    "client_secret",
    "api_key",
    "apikey",
    "api-key",
    "access_token",
    "auth_token",
    "secret_key",
    "private_key",
    "aws_secret_access_key",
    "db_password",
];

/// `password = value`, `"api_key": "value"`, `AWS_SECRET_ACCESS_KEY=...`: the value only.
/// Scans only for `=` and `:` and looks back at the key before them (fast on prose).
fn assignments(s: &[u8], out: &mut Vec<Match>) {
    let mut pos = 0;
    while let Some(off) = s
        .get(pos..)
        .and_then(|r| r.iter().position(|b| *b == b'=' || *b == b':'))
    {
        let sep = pos + off;
        pos = sep + 1;
        // Back over spaces and one closing quote to the end of the key.
        let mut k_end = sep;
        while k_end > 0 && matches!(at(s, k_end - 1), b' ' | b'\t') {
            k_end -= 1;
        }
        if k_end > 0 && matches!(at(s, k_end - 1), b'"' | b'\'') {
            k_end -= 1;
        }
        let mut k_start = k_end;
        while k_start > 0 && key_char(at(s, k_start - 1)) {
            k_start -= 1;
        }
        let word = s.get(k_start..k_end).unwrap_or_default();
        if word.len() < 3 || !boundary_before(s, k_start) {
            continue;
        }
        // Keys like MY_DB_PASSWORD or app.secret end in one of the names.
        let hit = SECRET_KEYS.iter().find(|k| {
            let k = k.as_bytes();
            word.len() >= k.len()
                && word
                    .get(word.len() - k.len()..)
                    .is_some_and(|tail| tail.eq_ignore_ascii_case(k))
                && (word.len() == k.len() || matches!(at(word, word.len() - k.len() - 1), b'_' | b'-' | b'.'))
        });
        let Some(hit) = hit else { continue };
        let mut j = sep + 1;
        j += span(s, j, |b| b == b' ' || b == b'\t');
        let quote = at(s, j);
        let (vstart, vlen) = if quote == b'"' || quote == b'\'' {
            (j + 1, span(s, j + 1, |b| b != quote && b != b'\n'))
        } else {
            (
                j,
                span(s, j, |b| {
                    !b.is_ascii_whitespace() && b != b',' && b != b';' && b != b'}' && b != b'"'
                }),
            )
        };
        // Short or placeholder values are not secrets ("password: yes", "secret: <redacted>").
        let value = s.get(vstart..vstart + vlen).unwrap_or_default();
        let placeholder =
            value.starts_with(b"[REDACTED") || value.starts_with(b"<") || value.starts_with(b"$");
        if vlen >= 6 && !placeholder {
            let kind = if *hit == "aws_secret_access_key" {
                Kind::AwsSecretKey
            } else {
                Kind::Password
            };
            out.push(Match {
                start: vstart,
                end: vstart + vlen,
                kind,
                label: None,
                ctx: k_start,
            });
            pos = pos.max(vstart + vlen);
        }
    }
}

fn emails(s: &[u8], out: &mut Vec<Match>) {
    let local = |b: u8| b.is_ascii_alphanumeric() || b"._%+-".contains(&b);
    let domain = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'.';
    let mut i = 0;
    while let Some(off) = s.get(i..).and_then(|r| r.iter().position(|b| *b == b'@')) {
        let at_pos = i + off;
        i = at_pos + 1;
        let mut l = 0;
        while at_pos > l && local(at(s, at_pos - l - 1)) {
            l += 1;
        }
        let start = at_pos - l;
        let d = span(s, at_pos + 1, domain);
        let mut dom = s.get(at_pos + 1..at_pos + 1 + d).unwrap_or_default();
        while dom.last() == Some(&b'.') {
            dom = dom.get(..dom.len() - 1).unwrap_or_default();
        }
        let tld_ok = dom.iter().rposition(|b| *b == b'.').is_some_and(|p| {
            dom.len() - p > 2
                && dom
                    .get(p + 1..)
                    .is_some_and(|t| t.iter().all(u8::is_ascii_alphabetic))
        });
        if l >= 1 && tld_ok && at(s, start) != b'.' {
            out.push(Match {
                start,
                end: at_pos + 1 + dom.len(),
                kind: Kind::Email,
                label: None,
                ctx: usize::MAX,
            });
            i = at_pos + 1 + dom.len();
        }
    }
}

fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (k, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(*d);
        if k % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// Classifies a run of digit groups: card (Luhn + card grouping), SSN, or phone.
fn classify_number(text: &[u8], digits: &[u8], seps: &[u8], lead: u8) -> Option<Kind> {
    let n = digits.len();
    let uniform_seps = seps.windows(2).all(|w| w.first() == w.get(1));
    // Separated card numbers come in card-like groups: 4-4-4-4(-3), 4-6-5 or 4-6-4.
    let groups: Vec<usize> = text
        .split(|c: &u8| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .map(<[u8]>::len)
        .collect();
    let card_groups = seps.is_empty()
        || matches!(
            groups.as_slice(),
            [4, 4, 4, 4] | [4, 4, 4, 4, 3] | [4, 6, 5] | [4, 6, 4]
        );
    if (13..=19).contains(&n)
        && luhn(digits)
        && matches!(digits.first(), Some(2..=6))
        && seps.iter().all(|c| *c == b' ' || *c == b'-')
        && uniform_seps
        && card_groups
        && lead.is_ascii_digit()
    {
        return Some(Kind::PaymentCard);
    }
    if n == 9 && text.len() == 11 && at(text, 3) == b'-' && at(text, 6) == b'-' {
        let num = |r: std::ops::Range<usize>| {
            digits
                .get(r)
                .unwrap_or_default()
                .iter()
                .fold(0u32, |a, d| a * 10 + u32::from(*d))
        };
        let (area, group, serial) = (num(0..3), num(3..5), num(5..9));
        return (area != 0 && area != 666 && area < 900 && group != 0 && serial != 0).then_some(Kind::UsSsn);
    }
    // Phones: international with +, or grouped: (555) 123-4567 / 555-123-4567 / 555 123 4567.
    // Without + or ( only the NANP shape 555-123-4567 / 555 123 4567 counts.
    let shaped = lead == b'+' || lead == b'(' || groups.as_slice() == [3, 3, 4];
    if (10..=15).contains(&n) && !seps.contains(&b'.') && shaped {
        return Some(Kind::Phone);
    }
    None
}

/// Digit groups with separators: payment cards, SSNs and phone numbers. From each possible
/// start, groups are added one at a time and the longest valid candidate wins, so nearby
/// numbers (a date after a card) never hide a match.
fn numbers(s: &[u8], out: &mut Vec<Match>) {
    let mut i = 0;
    while i < s.len() {
        let b = at(s, i);
        let starts = b.is_ascii_digit() || ((b == b'+' || b == b'(') && at(s, i + 1).is_ascii_digit());
        if !starts || (i > 0 && (is_word(at(s, i - 1)) || matches!(at(s, i - 1), b'.' | b'-' | b'+' | b'(')))
        {
            i += 1;
            continue;
        }
        let mut j = if b == b'+' || b == b'(' { i + 1 } else { i };
        let mut digits = Vec::new();
        let mut seps = Vec::new();
        // (end of group, digits so far, separators so far)
        let mut ends: Vec<(usize, usize, usize)> = Vec::new();
        while digits.len() <= 19 {
            let g = span(s, j, |c| c.is_ascii_digit());
            if g == 0 {
                break;
            }
            digits.extend(s.get(j..j + g).unwrap_or_default().iter().map(|d| d - b'0'));
            j += g;
            ends.push((j, digits.len(), seps.len()));
            let c = at(s, j);
            let step = if c == b')' && at(s, j + 1) == b' ' { 2 } else { 1 };
            if matches!(c, b' ' | b'-' | b'.' | b')') && at(s, j + step).is_ascii_digit() {
                seps.push(c);
                j += step;
            } else {
                break;
            }
        }
        let found = ends.iter().rev().find_map(|&(end, nd, ns)| {
            if is_word(at(s, end)) {
                return None;
            }
            let text = s.get(i..end).unwrap_or_default();
            classify_number(
                text,
                digits.get(..nd).unwrap_or_default(),
                seps.get(..ns).unwrap_or_default(),
                b,
            )
            .map(|k| (end, k))
        });
        match found {
            Some((end, kind)) => {
                out.push(Match {
                    start: i,
                    end,
                    kind,
                    label: None,
                    ctx: usize::MAX,
                });
                i = end;
            }
            // Next candidate start: after this first group.
            None => i = ends.first().map_or(i + 1, |e| e.0.max(i + 1)),
        }
    }
}

fn ibans(s: &[u8], out: &mut Vec<Match>) {
    let mut i = 0;
    while i + 4 <= s.len() {
        let ok_start = at(s, i).is_ascii_uppercase()
            && at(s, i + 1).is_ascii_uppercase()
            && at(s, i + 2).is_ascii_digit()
            && at(s, i + 3).is_ascii_digit()
            && boundary_before(s, i);
        if !ok_start {
            i += 1;
            continue;
        }
        // Collect alphanumerics, allowing single spaces between groups of 4.
        let mut j = i;
        let mut chars = Vec::new();
        while j < s.len() && chars.len() < 34 {
            let c = at(s, j);
            if c.is_ascii_uppercase() || c.is_ascii_digit() {
                chars.push(c);
                j += 1;
            } else if c == b' ' && chars.len() % 4 == 0 && (at(s, j + 1).is_ascii_alphanumeric()) {
                j += 1;
            } else {
                break;
            }
        }
        while j > i && at(s, j - 1) == b' ' {
            j -= 1;
        }
        if (15..=34).contains(&chars.len()) && !is_word(at(s, j)) && iban_checksum(&chars) {
            out.push(Match {
                start: i,
                end: j,
                kind: Kind::Iban,
                label: None,
                ctx: usize::MAX,
            });
            i = j;
        } else {
            i += 1;
        }
    }
}

fn iban_checksum(chars: &[u8]) -> bool {
    let rearranged = chars.iter().skip(4).chain(chars.iter().take(4));
    let mut rem: u64 = 0;
    for c in rearranged {
        let v = if c.is_ascii_digit() {
            u64::from(c - b'0')
        } else {
            u64::from(c - b'A') + 10
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

fn ipv4s(s: &[u8], out: &mut Vec<Match>) {
    let mut i = 0;
    while i < s.len() {
        if !at(s, i).is_ascii_digit() || (i > 0 && (is_word(at(s, i - 1)) || at(s, i - 1) == b'.')) {
            i += 1;
            continue;
        }
        let mut j = i;
        let mut octets = 0;
        let mut ok = true;
        while octets < 4 {
            let d = span(s, j, |b| b.is_ascii_digit());
            let v: u32 = std::str::from_utf8(s.get(j..j + d).unwrap_or_default())
                .ok()
                .and_then(|t| t.parse().ok())
                .unwrap_or(999);
            if d == 0 || d > 3 || v > 255 || (d > 1 && at(s, j) == b'0') {
                ok = false;
                break;
            }
            j += d;
            octets += 1;
            if octets < 4 {
                if at(s, j) != b'.' {
                    ok = false;
                    break;
                }
                j += 1;
            }
        }
        // Not part of a longer dotted number (version strings like 1.2.3.4.5).
        if ok && !is_word(at(s, j)) && !(at(s, j) == b'.' && at(s, j + 1).is_ascii_digit()) {
            out.push(Match {
                start: i,
                end: j,
                kind: Kind::Ipv4,
                label: None,
                ctx: usize::MAX,
            });
            i = j;
        } else {
            i += span(s, i, |b| b.is_ascii_digit() || b == b'.').max(1);
        }
    }
}

/// A user-defined pattern.
#[derive(Debug, Clone)]
pub struct CustomPattern {
    pub name: String,
    pub regex: regex_lite::Regex,
    /// Bound on whitespace runs one match can span (streaming hold-back).
    pub max_runs: usize,
}

/// The enabled detectors.
#[derive(Debug, Clone)]
pub struct Detectors {
    pub kinds: Vec<Kind>,
    pub custom: Vec<CustomPattern>,
}

impl Detectors {
    pub fn all() -> Detectors {
        Detectors {
            kinds: Kind::ALL.to_vec(),
            custom: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty() && self.custom.is_empty()
    }

    /// Trailing runs the streamer must hold back.
    pub fn hold_runs(&self) -> usize {
        self.kinds
            .iter()
            .map(|k| k.max_runs())
            .chain(self.custom.iter().map(|c| c.max_runs))
            .max()
            .unwrap_or(1)
    }

    /// Non-overlapping matches, earliest first (the longest wins on overlap).
    pub fn find(&self, text: &str) -> Vec<Match> {
        let s = text.as_bytes();
        let mut all = Vec::new();
        let on = |k: Kind| self.kinds.contains(&k);
        if on(Kind::PrivateKey) {
            private_keys(s, &mut all);
        }
        let mut tokens = Vec::new();
        prefixed_tokens(s, &mut tokens);
        all.extend(tokens.into_iter().filter(|m| on(m.kind)));
        if on(Kind::Jwt) {
            jwts(s, &mut all);
        }
        if on(Kind::Password) || on(Kind::AwsSecretKey) {
            let mut a = Vec::new();
            assignments(s, &mut a);
            all.extend(a.into_iter().filter(|m| on(m.kind)));
        }
        if on(Kind::Email) {
            emails(s, &mut all);
        }
        if on(Kind::Iban) {
            ibans(s, &mut all);
        }
        if on(Kind::PaymentCard) || on(Kind::UsSsn) || on(Kind::Phone) {
            let mut n = Vec::new();
            numbers(s, &mut n);
            all.extend(n.into_iter().filter(|m| on(m.kind)));
        }
        if on(Kind::Ipv4) {
            ipv4s(s, &mut all);
        }
        for c in &self.custom {
            for m in c.regex.find_iter(text) {
                if !m.as_str().is_empty() {
                    all.push(Match {
                        start: m.start(),
                        end: m.end(),
                        kind: Kind::Custom,
                        label: Some(c.name.clone()),
                        ctx: usize::MAX,
                    });
                }
            }
        }
        for m in &mut all {
            m.ctx = m.ctx.min(m.start);
        }
        all.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
        let mut out: Vec<Match> = Vec::new();
        for m in all {
            match out.last_mut() {
                Some(last) if m.start < last.end => {
                    if m.end > last.end {
                        last.end = m.end;
                    }
                    last.ctx = last.ctx.min(m.ctx);
                }
                _ => out.push(m),
            }
        }
        // Matches must sit on char boundaries (the scanners are byte-based).
        out.retain(|m| text.is_char_boundary(m.start) && text.is_char_boundary(m.end));
        out
    }
}

/// How matches are replaced.
#[derive(Debug, Clone)]
pub enum Replacement {
    /// `[REDACTED:<type>]`
    Tag,
    /// `[REDACTED:<type>:<first 12 hex of HMAC-SHA256(key, value)>]`: equal values stay linkable.
    KeyedHash(Vec<u8>),
}

impl Replacement {
    pub fn render(&self, m: &Match, value: &str) -> String {
        let name = m.label.as_deref().unwrap_or(m.kind.name());
        match self {
            Replacement::Tag => format!("[REDACTED:{name}]"),
            Replacement::KeyedHash(key) => {
                use hmac::{Hmac, Mac};
                let tag = Hmac::<sha2::Sha256>::new_from_slice(key)
                    .map(|mut mac| {
                        mac.update(value.as_bytes());
                        mac.finalize()
                            .into_bytes()
                            .iter()
                            .take(6)
                            .map(|b| format!("{b:02x}"))
                            .collect::<String>()
                    })
                    .unwrap_or_default();
                format!("[REDACTED:{name}:{tag}]")
            }
        }
    }
}

/// Counts of redactions by type name.
pub type Counts = std::collections::BTreeMap<String, u64>;

/// Redacts all matches in `text`.
pub fn redact(text: &str, detectors: &Detectors, replacement: &Replacement, counts: &mut Counts) -> String {
    let matches = detectors.find(text);
    if matches.is_empty() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for m in &matches {
        out.push_str(text.get(last..m.start).unwrap_or_default());
        out.push_str(&replacement.render(m, text.get(m.start..m.end).unwrap_or_default()));
        *counts
            .entry(m.label.clone().unwrap_or_else(|| m.kind.name().to_string()))
            .or_insert(0) += 1;
        last = m.end;
    }
    out.push_str(text.get(last..).unwrap_or_default());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(Kind, &str)> {
        Detectors::all()
            .find(text)
            .into_iter()
            .map(|m| (m.kind, &text[m.start..m.end]))
            .collect()
    }

    fn one(text: &str, kind: Kind, value: &str) {
        assert_eq!(kinds(text), vec![(kind, value)], "in {text:?}");
    }

    fn none(text: &str) {
        assert_eq!(kinds(text), vec![], "in {text:?}");
    }

    #[test]
    fn cloud_and_vendor_keys() {
        one(
            "key AKIAIOSFODNN7EXAMPLE here",
            Kind::AwsAccessKey,
            "AKIAIOSFODNN7EXAMPLE",
        );
        none("AKIAIOSFODNN7EXAMPL"); // 15 chars
        none("XAKIAIOSFODNN7EXAMPLE"); // no boundary
        one(
            "token ghp_0123456789abcdefghijklmnopqrstuvwxyz!",
            Kind::GithubToken,
            "ghp_0123456789abcdefghijklmnopqrstuvwxyz",
        );
        one(
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
            Kind::GithubToken,
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
        );
        one(
            "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd",
            Kind::OpenaiKey,
            "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd",
        );
        one(
            "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcd",
            Kind::AnthropicKey,
            "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcd",
        );
        none("sk-short");
        one(
            "xoxb-123456789012-1234567890123-AbCdEfGhIjKl",
            Kind::SlackToken,
            "xoxb-123456789012-1234567890123-AbCdEfGhIjKl",
        );
        one(
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            Kind::StripeKey,
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        );
        none("sk_test_4eC39HqLyjWDarjtT1zdp7dc");
        one(
            "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
            Kind::GoogleApiKey,
            "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
        );
    }

    #[test]
    fn private_keys_and_jwts() {
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\nabc\n-----END RSA PRIVATE KEY-----";
        one(&format!("here:\n{pem}\nbye"), Kind::PrivateKey, pem);
        none("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----");
        let jwt =
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        one(&format!("Bearer {jwt}"), Kind::Jwt, jwt);
        none("eyJhbGciOiJIUzI1NiJ9 alone");
    }

    #[test]
    fn assignments_redact_the_value() {
        one("password=hunter2hunter2", Kind::Password, "hunter2hunter2");
        one("DB_PASSWORD: 's3cr3t-Value!'", Kind::Password, "s3cr3t-Value!");
        one("{\"api_key\": \"abcd1234efgh\"}", Kind::Password, "abcd1234efgh");
        one(
            "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            Kind::AwsSecretKey,
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        );
        none("password: short");
        none("Reset your password: click the link");
        none("the secret: <redacted>");
        none("passwordless login");
    }

    #[test]
    fn pii() {
        one(
            "mail jane.doe+llm@example.co.uk now",
            Kind::Email,
            "jane.doe+llm@example.co.uk",
        );
        none("user@localhost");
        none("@mention");
        one(
            "card 4111 1111 1111 1111 ok",
            Kind::PaymentCard,
            "4111 1111 1111 1111",
        );
        one(
            "card 5555-5555-5555-4444.",
            Kind::PaymentCard,
            "5555-5555-5555-4444",
        );
        one("4012888888881881", Kind::PaymentCard, "4012888888881881");
        none("4111 1111 1111 1112"); // Luhn-invalid
        none("order 1234567812345678"); // Luhn-invalid
        one("ssn 123-45-6789", Kind::UsSsn, "123-45-6789");
        none("000-12-3456");
        none("666-12-3456");
        none("2024-01-15");
        one(
            "IBAN DE89 3704 0044 0532 0130 00, thanks",
            Kind::Iban,
            "DE89 3704 0044 0532 0130 00",
        );
        one("GB82WEST12345698765432", Kind::Iban, "GB82WEST12345698765432");
        none("DE89 3704 0044 0532 0130 01"); // checksum
        one("call +1 415 555 2671 today", Kind::Phone, "+1 415 555 2671");
        one("call (415) 555-2671", Kind::Phone, "(415) 555-2671");
        one("call 415-555-2671", Kind::Phone, "415-555-2671");
        one("from 192.168.10.25:8080", Kind::Ipv4, "192.168.10.25");
        none("version 1.2.3.4.5");
        none("256.1.1.1");
        none("v1.2.3");
    }

    #[test]
    fn near_misses_are_left_alone() {
        none("uuid 123e4567-e89b-12d3-a456-426614174000");
        none("commit 3f786850e387550fdab836ed7e6dc881de23001b");
        none("sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        none("blob aGVsbG8gd29ybGQgdGhpcyBpcyBiYXNlNjQgZW5jb2RlZCB0ZXh0");
        none("The year 2024 had 365 days and 8760 hours.");
        none("price: $1,299.99 or 3 x 433.33");
        none("Use the sk- prefix for keys.");
    }

    #[test]
    fn redaction_and_keyed_hash() {
        let mut counts = Counts::new();
        let out = redact(
            "mail a@b.io and c@d.io, card 4111111111111111",
            &Detectors::all(),
            &Replacement::Tag,
            &mut counts,
        );
        assert_eq!(
            out,
            "mail [REDACTED:email] and [REDACTED:email], card [REDACTED:payment_card]"
        );
        assert_eq!(counts.get("email"), Some(&2));
        let r = Replacement::KeyedHash(b"k".to_vec());
        let out = redact("a@b.io a@b.io c@d.io", &Detectors::all(), &r, &mut Counts::new());
        let tags: Vec<&str> = out.split(' ').collect();
        assert_eq!(tags[0], tags[1], "equal values stay linkable");
        assert_ne!(tags[0], tags[2]);
    }

    #[test]
    fn custom_patterns_and_selection() {
        let d = Detectors {
            kinds: vec![Kind::Email],
            custom: vec![CustomPattern {
                name: "employee_id".into(),
                regex: regex_lite::Regex::new(r"EMP-\d{6}").unwrap(),
                max_runs: 1,
            }],
        };
        let out = redact(
            "EMP-123456 a@b.io 4111111111111111",
            &d,
            &Replacement::Tag,
            &mut Counts::new(),
        );
        assert_eq!(out, "[REDACTED:employee_id] [REDACTED:email] 4111111111111111");
    }

    #[test]
    fn unicode_text_is_safe() {
        let out = redact(
            "日本語 a@b.io — ünïcode 4111111111111111 ✓",
            &Detectors::all(),
            &Replacement::Tag,
            &mut Counts::new(),
        );
        assert_eq!(out, "日本語 [REDACTED:email] — ünïcode [REDACTED:payment_card] ✓");
    }
}
