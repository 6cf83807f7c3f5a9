//! Secret and PII detectors, and redaction of text.
//!
//! Detectors are hand-written scanners rather than regexes: they run in one pass, check
//! checksums (Luhn, IBAN mod 97) and strict shapes, and each knows how many
//! whitespace-separated runs a match can span. The streaming redactor needs that bound: to
//! be safe it only holds back as many trailing runs as the widest enabled detector needs.

pub mod stream;

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

    /// Found by the prefixed-token detector (`AKIA...`, `ghp_...`, `sk-...`).
    fn is_prefixed_token(self) -> bool {
        self.precedence() == 1
    }

    /// Which of two matches of the same span names it: secrets before PII, the most
    /// specific shape first.
    fn precedence(self) -> u8 {
        match self {
            Kind::PrivateKey => 0,
            // The prefixed tokens (one detector).
            Kind::AwsAccessKey
            | Kind::GithubToken
            | Kind::OpenaiKey
            | Kind::AnthropicKey
            | Kind::SlackToken
            | Kind::StripeKey
            | Kind::GoogleApiKey => 1,
            Kind::Jwt => 2,
            Kind::Password | Kind::AwsSecretKey => 3,
            Kind::Email => 4,
            Kind::Iban => 5,
            Kind::PaymentCard | Kind::UsSsn | Kind::Phone => 6,
            Kind::Ipv4 => 7,
            Kind::Custom => 8,
        }
    }

    /// How many whitespace-separated runs a match can span (the streaming hold-back).
    pub fn max_runs(self) -> usize {
        match self {
            Kind::PaymentCard => 5,
            Kind::Iban => 9,
            // `+33 6 12 34 56 78`
            Kind::Phone => 7,
            // `the password for the staging database is X`, `psk="four word pass phrase"`
            Kind::Password | Kind::AwsSecretKey => 8,
            Kind::UsSsn => 3,
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

fn found(start: usize, end: usize, kind: Kind) -> Match {
    Match {
        start,
        end,
        kind,
        label: None,
        ctx: usize::MAX,
    }
}

fn upper_or_digit(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}

fn alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// (prefix, kind, minimum body length, body characters, exact body length)
type TokenRule = (&'static [u8], Kind, usize, fn(u8) -> bool, Option<usize>);

const TOKEN_RULES: [TokenRule; 17] = [
    (b"AKIA", Kind::AwsAccessKey, 16, upper_or_digit, Some(16)),
    (b"ASIA", Kind::AwsAccessKey, 16, upper_or_digit, Some(16)),
    (b"ghp_", Kind::GithubToken, 36, alnum, None),
    (b"gho_", Kind::GithubToken, 36, alnum, None),
    (b"ghu_", Kind::GithubToken, 36, alnum, None),
    (b"ghs_", Kind::GithubToken, 36, alnum, None),
    (b"ghr_", Kind::GithubToken, 36, alnum, None),
    (b"github_pat_", Kind::GithubToken, 60, is_word, None),
    (b"sk-ant-", Kind::AnthropicKey, 32, key_char, None),
    (b"sk-", Kind::OpenaiKey, 32, key_char, None),
    (b"xoxb-", Kind::SlackToken, 20, key_char, None),
    (b"xoxp-", Kind::SlackToken, 20, key_char, None),
    (b"xoxa-", Kind::SlackToken, 20, key_char, None),
    (b"xapp-", Kind::SlackToken, 20, key_char, None),
    (b"sk_live_", Kind::StripeKey, 20, alnum, None),
    (b"rk_live_", Kind::StripeKey, 20, alnum, None),
    (b"AIza", Kind::GoogleApiKey, 35, key_char, Some(35)),
];

/// A token-shaped secret with a fixed prefix, at word start `i`.
fn token_at(s: &[u8], i: usize) -> Option<Match> {
    // Only the first two bytes of a known prefix start a check (most words do not).
    let candidate = matches!(
        (at(s, i), at(s, i + 1)),
        (b'A', b'K' | b'S' | b'I') | (b'g', b'h' | b'i') | (b's', b'k') | (b'x', b'o' | b'a') | (b'r', b'k')
    );
    if !candidate {
        return None;
    }
    let rest = s.get(i..)?;
    TOKEN_RULES.iter().find_map(|(prefix, kind, min, class, exact)| {
        if !rest.starts_with(prefix) {
            return None;
        }
        let body = span(s, i + prefix.len(), *class);
        let end = i + prefix.len() + body;
        let ok = match exact {
            // A following word char means a longer identifier, not this token shape.
            Some(n) => body == *n && !is_word(at(s, end)),
            None => body >= *min,
        };
        ok.then(|| found(i, end, *kind))
    })
}

fn b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// A JWT (`eyJ...` `.eyJ...` `.sig`) at word start `start`.
fn jwt_at(s: &[u8], start: usize) -> Option<Match> {
    if !s.get(start..)?.starts_with(b"eyJ") {
        return None;
    }
    let h = span(s, start, b64url);
    if at(s, start + h) != b'.' || !s.get(start + h + 1..).is_some_and(|r| r.starts_with(b"eyJ")) {
        return None;
    }
    let p = span(s, start + h + 1, b64url);
    let sig_start = start + h + 1 + p;
    if at(s, sig_start) != b'.' {
        return None;
    }
    let sig = span(s, sig_start + 1, b64url);
    (h >= 10 && p >= 10).then(|| found(start, sig_start + 1 + sig, Kind::Jwt))
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

/// What a `-----BEGIN ` at some position turned out to be.
enum Pem {
    /// A complete private key block.
    Key(Match),
    /// Another kind of PEM block: look again from here.
    Other(usize),
    /// An unterminated private key block: the whole rest is key material (the streamer
    /// holds it back); nothing after it needs scanning.
    Open(Match),
    /// A header that never closes: nothing after it can be a block either.
    Unclosed,
}

fn private_key_at(s: &[u8], start: usize) -> Option<Pem> {
    if !s.get(start..)?.starts_with(b"-----BEGIN ") {
        return None;
    }
    let Some(header_end) = s
        .get(start + 11..)
        .and_then(|r| find(r, b"-----"))
        .map(|e| start + 11 + e)
    else {
        return Some(Pem::Unclosed);
    };
    let label = s.get(start + 11..header_end).unwrap_or_default();
    // `RSA PRIVATE KEY`, `OPENSSH PRIVATE KEY`, `PGP PRIVATE KEY BLOCK`, ...
    if find(label, b"PRIVATE KEY").is_none() || label.len() > 40 {
        return Some(Pem::Other(header_end));
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
    Some(match end {
        Some(end) => Pem::Key(found(start, end, Kind::PrivateKey)),
        None => Pem::Open(found(start, s.len(), Kind::PrivateKey)),
    })
}

const SECRET_KEYS: [&str; 19] = [
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "pass",
    "psk",
    "token",
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
    "credentials",
];

/// Key names that also end a longer key without a separator (`PGPASSWORD`, `MYPASSWD`).
const GLUED_KEYS: [&str; 3] = ["password", "passwd", "passphrase"];

/// `password = value`, `"api_key": "value"`, `AWS_SECRET_ACCESS_KEY=...`: the value only.
/// Triggered by `=` and `:` at `sep`; looks back at the key before them (fast on prose).
fn assignment_at(s: &[u8], sep: usize) -> Option<Match> {
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
        return None;
    }
    // Keys like MY_DB_PASSWORD or app.secret end in one of the names.
    let hit = SECRET_KEYS.iter().find(|k| {
        let k = k.as_bytes();
        word.len() >= k.len()
            && word
                .get(word.len() - k.len()..)
                .is_some_and(|tail| tail.eq_ignore_ascii_case(k))
            && (word.len() == k.len()
                || matches!(at(word, word.len() - k.len() - 1), b'_' | b'-' | b'.')
                || GLUED_KEYS.iter().any(|g| g.as_bytes() == k))
    })?;
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
    // A masked value (`********`, `xxxxxx`) is one byte repeated.
    let masked = value.first().is_some_and(|f| value.iter().all(|b| b == f));
    let placeholder =
        value.starts_with(b"[REDACTED") || value.starts_with(b"<") || value.starts_with(b"$") || masked;
    if vlen < 6 || placeholder {
        return None;
    }
    let kind = if *hit == "aws_secret_access_key" {
        Kind::AwsSecretKey
    } else {
        Kind::Password
    };
    Some(Match {
        start: vstart,
        end: vstart + vlen,
        kind,
        label: None,
        ctx: k_start,
    })
}

/// Words that name a password, lower case (ASCII letters folded; the others as written,
/// capitalised forms listed).
const PASSWORD_WORDS: [&str; 28] = [
    "password",
    "pw",
    "passwords",
    "passwort",
    "passwd",
    "passcode",
    "passphrase",
    "pwd",
    "kennwort",
    "wachtwoord",
    "contraseña",
    "contrasena",
    "senha",
    "hasło",
    "haslo",
    "parola",
    "пароль",
    "Пароль",
    "şifre",
    "Şifre",
    "sifre",
    "lösenord",
    "adgangskode",
    "salasana",
    "heslo",
    "jelszó",
    "lozinka",
    "wifi-password",
];

/// Words between a password's name and its value that announce the value.
const PASSWORD_CONNECTORS: [&str; 30] = [
    "is", "was", "are", "be", "to", "now", "=", ":", "-", "—", "–", "->", "=>", "→", "ist", "lautet", "wird",
    "est", "sera", "es", "será", "é", "è", "jest", "to:", "är", "er", "on", "je", "este",
];

/// Run endings before a value in scripts written without spaces.
const PASSWORD_JOINED: [&str; 12] = [
    "密码是",
    "密码为",
    "密码：",
    "密码:",
    "口令是",
    "口令：",
    "パスワードは",
    "パスワード：",
    "パスワード:",
    "비밀번호는",
    "비밀번호:",
    "비밀번호：",
];

fn eq_fold(word: &[u8], name: &str) -> bool {
    word.eq_ignore_ascii_case(name.as_bytes())
}

/// A password name, possibly with a trailing `:` (`Password:`, `пароль:`), a possessive, or
/// as the last part of a compound (`admin-password`, `db_password`).
fn names_password(token: &[u8]) -> (bool, bool) {
    if !(2..=32).contains(&token.len()) {
        return (false, false);
    }
    let (word, colon) = match token.strip_suffix(b":") {
        Some(w) => (w, true),
        None => (token, false),
    };
    let word = word
        .strip_suffix(b"'s")
        .or_else(|| word.strip_suffix("’s".as_bytes()))
        .unwrap_or(word);
    let last = word
        .iter()
        .rposition(|b| matches!(b, b'-' | b'_'))
        .and_then(|p| word.get(p + 1..))
        .unwrap_or(word);
    let named = PASSWORD_WORDS
        .iter()
        .any(|n| eq_fold(word, n) || eq_fold(last, n));
    (named, colon)
}

/// Looks like a generated or chosen secret rather than a word: a digit, a symbol, or a
/// capital right after a small letter (`xLN6`, not `Case-Sensitive`).
fn secret_like(v: &[u8]) -> bool {
    let camel = v
        .windows(2)
        .any(|p| matches!(p, [a, b] if a.is_ascii_lowercase() && b.is_ascii_uppercase()));
    // Dates, versions, addresses and amounts (`2024-01-15`, `v1.2.3`, `10.0.0.1`) are
    // numbers, not passwords: a value needs two letters, or to be digits only.
    let letters = v.iter().filter(|b| b.is_ascii_alphabetic()).count();
    let digits_only = v.iter().all(u8::is_ascii_digit);
    v.len() >= 6
        && (letters >= 2 || digits_only)
        && (camel
            || v.iter()
                .any(|b| b.is_ascii_digit() || b"!@#$%^&*_+=~?".contains(b)))
        && !v.starts_with(b"<")
        && !v.starts_with(b"$")
        && !v.starts_with(b"{")
        && !v.starts_with(b"[REDACTED")
        && !v.starts_with(b"http")
        && !v.first().is_some_and(|f| v.iter().all(|b| b == f))
}

/// A password disclosed in prose, at word start `w` of its value: "the temporary password
/// is X", "admin password (X)", "Das Passwort lautet X", "пароль: X", "密码是X". Looks back
/// at most five words for a password's name and a connecting word (or an opening bracket
/// or quote just before the value).
fn prose_password_at(s: &[u8], w: usize) -> Option<Match> {
    // Inside a run (`2024-01-15`, `v1.2.3`) the value can only follow one opening bracket or
    // quote, or text in a script without spaces: most visited words end here, cheaply.
    if w > 0 {
        let p = at(s, w - 1);
        let opener = matches!(p, b'(' | b'[' | b'"' | b'\'' | b'`');
        if p < 0x80 && !p.is_ascii_whitespace() && !(opener && (w == 1 || at(s, w - 2).is_ascii_whitespace()))
        {
            return None;
        }
    }
    // Only where the skipping scan starts word detectors: a first word holding an upper-case
    // letter, digit or `_`, or followed by `-` (so skipping stays equal to trying everywhere).
    let first = span(s, w, is_word);
    let visited = s.get(w..w + first).is_some_and(|word| {
        word.iter()
            .any(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
    }) || at(s, w + first) == b'-';
    if !visited {
        return None;
    }
    let mut run_start = w;
    while run_start > 0 && !at(s, run_start - 1).is_ascii_whitespace() && w - run_start < 32 {
        run_start -= 1;
    }
    let prefix = s.get(run_start..w)?;
    let opener = match prefix {
        [] => None,
        [o @ (b'(' | b'[' | b'"' | b'\'' | b'`')] => Some(*o),
        // Inside a word run (`2024-01-15`, `v1.2.3`): most visited words end here, cheaply.
        _ if prefix.last().is_some_and(|b| *b < 0x80) => return None,
        _ if prefix == "“".as_bytes() || prefix == "«".as_bytes() || prefix == "‘".as_bytes() => {
            Some(b'"')
        }
        _ => {
            let joined = PASSWORD_JOINED.iter().any(|j| prefix.ends_with(j.as_bytes()));
            if !joined {
                return None;
            }
            Some(0)
        }
    };
    // The value: up to whitespace, non-ASCII text or the closing bracket / quote.
    let closer = match opener {
        Some(b'(') => b')',
        Some(b'[') => b']',
        Some(b'"') => b'"',
        Some(o) if o != 0 => o,
        _ => 0,
    };
    let mut len = span(s, w, |b| {
        !b.is_ascii_whitespace() && b < 0x80 && (closer == 0 || b != closer)
    });
    if closer == 0 {
        // Clause punctuation and unbalanced closing brackets after a bare value.
        while len > 0 && matches!(at(s, w + len - 1), b',' | b';' | b')' | b']' | b'"' | b'\'') {
            len -= 1;
        }
    }
    let value = s.get(w..w + len)?;
    if !secret_like(value) {
        return None;
    }
    let hit = |ctx: usize| {
        Some(Match {
            start: w,
            end: w + len,
            kind: Kind::Password,
            label: None,
            ctx,
        })
    };
    if opener == Some(0) {
        return hit(run_start);
    }
    // Up to six words back: the name, then fillers and connectors; the word just before the
    // value connects (or the value is bracketed, or the name ends with `:`).
    let mut end = run_start;
    let mut connected = opener.is_some();
    for k in 0..6 {
        while end > 0 && at(s, end - 1).is_ascii_whitespace() {
            end -= 1;
        }
        let mut start = end;
        while start > 0 && !at(s, start - 1).is_ascii_whitespace() && end - start < 40 {
            start -= 1;
        }
        let token = s.get(start..end)?;
        if token.is_empty() {
            return None;
        }
        let non_ascii = token.last().is_some_and(|b| *b >= 0x80);
        if k == 0 && non_ascii && PASSWORD_JOINED.iter().any(|j| token.ends_with(j.as_bytes())) {
            return hit(start);
        }
        let (named, colon) = names_password(token);
        if named {
            // "mot de passe" is named by its last word only after "de".
            let strong = value.len() >= 8
                && value.iter().any(u8::is_ascii_digit)
                && value.iter().any(u8::is_ascii_alphabetic);
            return (connected || (colon && k == 0) || (k == 0 && strong))
                .then(|| hit(start))
                .flatten();
        }
        if eq_fold(token, "passe") && k <= 3 {
            let before = s.get(..start).unwrap_or_default().trim_ascii_end();
            if before.len() >= 6
                && before
                    .get(before.len() - 6..)
                    .is_some_and(|t| eq_fold(t, "mot de"))
            {
                return connected.then(|| hit(start)).flatten();
            }
        }
        let connector =
            PASSWORD_CONNECTORS.iter().any(|c| eq_fold(token, c)) || (token.ends_with(b":") && k == 0);
        if k == 0 {
            connected |= connector;
        }
        // Fillers are plain words: no sentence ends between the name and the value.
        if !connector && (token.len() > 16 || matches!(token.last(), Some(b'.' | b',' | b'!' | b'?' | b';')))
        {
            return None;
        }
        end = start;
    }
    None
}

/// ISO 3166 two-letter country codes in use as ccTLDs (and `uk`, `eu`, `ac`, `su`), as one
/// string of pairs. A file extension such as `js` or `gz` is not among them.
const CC_TLDS: &[u8] = b"acadaeafagaialamaoaqarasatauawaxazbabbbdbebfbgbhbibjbmbnbobqbrbsbtbwbybzcacccdcfcgchcickclcmcncocrcucvcwcxcyczdedjdkdmdodzeceeegereseteufifjfkfmfofrgagbgdgegfggghgiglgmgngpgqgrgsgtgugwgyhkhmhnhrhthuidieiliminioiqirisitjejmjojpkekgkhkikmknkpkrkwkykzlalblclilklrlsltlulvlymamcmdmemgmhmkmlmmmnmompmqmrmsmtmumvmwmxmymznancnenfngninlnonpnrnunzompapepfpgphpkplpmpnprpsptpwpyqarerorsrurwsasbscsdsesgshsisjskslsmsnsosrssstsusvsxsysztctdtftgthtjtktltmtntotrtttvtwtzuaugukusuyuzvavcvevgvivnvuwfwsyeytzazmzw";

/// Generic TLDs with three or more letters that mail is commonly sent to. A name outside
/// both lists (`png`, `webp`, `json`, `local`) does not make an address: `logo@2x.png` is a
/// file name.
const GENERIC_TLDS: [&str; 88] = [
    "com",
    "net",
    "org",
    "edu",
    "gov",
    "mil",
    "int",
    "info",
    "biz",
    "name",
    "pro",
    "aero",
    "coop",
    "museum",
    "mobi",
    "asia",
    "tel",
    "travel",
    "jobs",
    "cat",
    "app",
    "dev",
    "page",
    "cloud",
    "tech",
    "online",
    "site",
    "store",
    "shop",
    "blog",
    "email",
    "mail",
    "xyz",
    "top",
    "club",
    "live",
    "news",
    "media",
    "agency",
    "design",
    "studio",
    "digital",
    "solutions",
    "services",
    "systems",
    "network",
    "group",
    "global",
    "world",
    "today",
    "life",
    "space",
    "website",
    "company",
    "center",
    "consulting",
    "software",
    "energy",
    "finance",
    "capital",
    "bank",
    "insurance",
    "law",
    "legal",
    "health",
    "care",
    "academy",
    "school",
    "university",
    "education",
    "science",
    "institute",
    "foundation",
    "events",
    "team",
    "social",
    "chat",
    "expert",
    "tools",
    "works",
    "zone",
    "city",
    "london",
    "berlin",
    "paris",
    "tokyo",
    "nyc",
    "swiss",
];

fn real_tld(tld: &[u8]) -> bool {
    if tld.len() == 2 {
        return CC_TLDS.chunks(2).any(|pair| pair.eq_ignore_ascii_case(tld));
    }
    GENERIC_TLDS
        .iter()
        .any(|t| t.as_bytes().eq_ignore_ascii_case(tld))
}

/// The `@` at `at_pos` ends the userinfo of a URL (`scheme://user:pass@host`): the first
/// `/` back from it, within its run, is the second slash of `://`.
fn in_url_authority(s: &[u8], at_pos: usize) -> bool {
    let mut k = at_pos;
    let floor = at_pos.saturating_sub(512);
    while k > floor {
        let b = at(s, k - 1);
        if b.is_ascii_whitespace() || matches!(b, b'"' | b'\'' | b'<' | b'>' | b'`') {
            return false;
        }
        if b == b'/' {
            return k >= 3 && at(s, k - 2) == b'/' && at(s, k - 3) == b':';
        }
        k -= 1;
    }
    false
}

/// The password of `scheme://user:password@host` around the `:` at `colon` (the one ending
/// the scheme). The user name stays: it names an account, the password opens it.
fn url_password_at(s: &[u8], colon: usize) -> Option<Match> {
    if at(s, colon + 1) != b'/' || at(s, colon + 2) != b'/' {
        return None;
    }
    let scheme_char = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.');
    let mut k = colon;
    while k > 0 && scheme_char(at(s, k - 1)) {
        k -= 1;
    }
    if colon - k < 2 || !at(s, k).is_ascii_alphabetic() {
        return None;
    }
    let user_start = colon + 3;
    // The authority ends at the path, query, fragment, whitespace or a quote; its last `@`
    // ends the userinfo (an unencoded `@` in a password comes before it).
    let len = span(s, user_start, |b| {
        !b.is_ascii_whitespace()
            && !matches!(b, b'/' | b'?' | b'#' | b'"' | b'\'' | b'<' | b'>' | b'`' | b'\\')
    });
    let authority = s.get(user_start..user_start + len)?;
    let at_rel = authority.iter().rposition(|b| *b == b'@')?;
    let colon_rel = authority.get(..at_rel)?.iter().position(|b| *b == b':')?;
    (at_rel > colon_rel + 1).then(|| Match {
        start: user_start + colon_rel + 1,
        end: user_start + at_rel,
        kind: Kind::Password,
        label: None,
        ctx: k,
    })
}

/// An email address around the `@` at `at_pos`.
fn email_at(s: &[u8], at_pos: usize) -> Option<Match> {
    if in_url_authority(s, at_pos) {
        return None;
    }
    let local = |b: u8| b.is_ascii_alphanumeric() || b"._%+-".contains(&b);
    let domain = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'.';
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
    let tld_ok = dom
        .iter()
        .rposition(|b| *b == b'.')
        .is_some_and(|p| p > 0 && dom.get(p + 1..).is_some_and(real_tld));
    (l >= 1 && tld_ok && at(s, start) != b'.').then(|| found(start, at_pos + 1 + dom.len(), Kind::Email))
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

/// Classifies a run of digit groups: card (Luhn + card grouping), SSN, or phone. `seps`
/// holds one byte per gap between groups: the separator, or `(` / `)` for a gap that opens
/// or closes a parenthesis (`+1 (415) 555-0100`, `+44 (0)20 7946 0958`).
fn classify_number(groups: &[usize], digits: &[u8], seps: &[u8], lead: u8) -> Option<Kind> {
    let n = digits.len();
    let uniform_seps = seps.windows(2).all(|w| w.first() == w.get(1));
    let plain_seps = |allowed: &[u8]| uniform_seps && seps.iter().all(|c| allowed.contains(c));
    // Separated card numbers come in card-like groups: 4-4-4-4(-3), 4-6-5 or 4-6-4.
    let card_groups =
        seps.is_empty() || matches!(groups, [4, 4, 4, 4] | [4, 4, 4, 4, 3] | [4, 6, 5] | [4, 6, 4]);
    if (13..=19).contains(&n)
        && luhn(digits)
        && matches!(digits.first(), Some(2..=6))
        && plain_seps(b" -")
        && card_groups
        && lead.is_ascii_digit()
    {
        return Some(Kind::PaymentCard);
    }
    if groups == [3, 2, 4] && lead.is_ascii_digit() && plain_seps(b"- .") {
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
    let first = digits.first().copied().unwrap_or(0);
    let second = digits.get(1).copied().unwrap_or(0);
    let shaped = match lead {
        // International with `+`: E.164 allows up to 15 digits.
        b'+' => (9..=15).contains(&n),
        // `(415) 555-0100`, `(020) 7946 0958`: the parenthesis closes after the area code.
        b'(' => {
            (10..=11).contains(&n) && seps.first() == Some(&b')') && !seps.iter().skip(1).any(|c| *c == b'(')
        }
        _ if seps.is_empty() => false,
        // `0044 20 7946 0958`: the international prefix without `+`; the number after the
        // country code drops its trunk 0 (so `... 0044 0532 0130 01` is not one).
        _ if first == 0 && second == 0 => {
            let cc_group = usize::from(groups.first() == Some(&2));
            let after_cc: usize = groups.iter().take(cc_group + 1).sum();
            (11..=17).contains(&n) && at(digits, 2) != 0 && at(digits, after_cc) != 0 && !seps.contains(&b'(')
        }
        // National numbers with their trunk 0: `020 7946 0958`, `030 1234567`, `01 23 45 67 89`,
        // `03-1234-5678`, in groups that all use one separator.
        _ if first == 0 => {
            (10..=11).contains(&n)
                && (2..=5).contains(groups.first().unwrap_or(&0))
                && plain_seps(b" -./")
                && groups.iter().all(|g| *g >= 2)
                // Pairs end a number only in the all-pairs style (`01 23 45 67 89`).
                && (groups.last().is_some_and(|g| *g >= 3) || groups.iter().all(|g| *g == 2))
        }
        // NANP without country code: 415-555-0100, 415 555 0100, 415.555.0100.
        _ => groups == [3, 3, 4] && first >= 2 && plain_seps(b" -."),
    };
    shaped.then_some(Kind::Phone)
}

/// Digit groups with separators at `i`: payment cards, SSNs and phone numbers. Groups are
/// added one at a time and the longest valid candidate wins, so nearby numbers (a date
/// after a card) never hide a match.
fn number_at(s: &[u8], i: usize) -> Option<Match> {
    let b = at(s, i);
    let starts = b.is_ascii_digit() || ((b == b'+' || b == b'(') && at(s, i + 1).is_ascii_digit());
    if !starts || (i > 0 && (is_word(at(s, i - 1)) || matches!(at(s, i - 1), b'.' | b'-' | b'+'))) {
        return None;
    }
    if b == b'(' {
        // A card or SSN in parentheses is the number inside them, not a phone's area code.
        let inner = number_at(s, i + 1).filter(|m| matches!(m.kind, Kind::PaymentCard | Kind::UsSsn));
        if inner.is_some() {
            return inner;
        }
    }
    let mut j = if b == b'+' || b == b'(' { i + 1 } else { i };
    let mut open = b == b'(';
    // On the stack: no kind has more than 19 digits, so neither do candidates.
    const MAX: usize = 19;
    let (mut digits, mut nd) = ([0u8; MAX], 0);
    let (mut groups, mut seps, mut ng) = ([0usize; MAX], [0u8; MAX], 0);
    // (end of group, digits so far, groups so far)
    let mut ends = [(0usize, 0usize, 0usize); MAX];
    loop {
        let g = span(s, j, |c| c.is_ascii_digit());
        if g == 0 || nd + g > MAX {
            break;
        }
        for (slot, d) in digits
            .iter_mut()
            .skip(nd)
            .zip(s.get(j..j + g).unwrap_or_default())
        {
            *slot = d - b'0';
        }
        nd += g;
        if let Some(slot) = groups.get_mut(ng) {
            *slot = g;
        }
        j += g;
        if let Some(slot) = ends.get_mut(ng) {
            *slot = (j, nd, ng + 1);
        }
        ng += 1;
        // The gap to the next group: one separator, a closing parenthesis (then maybe a
        // space or dash), or an opening one (maybe after a space).
        let c = at(s, j);
        let (sep, step) = match c {
            b')' if open => (b')', if matches!(at(s, j + 1), b' ' | b'-') { 2 } else { 1 }),
            b' ' | b'-' | b'.' | b'/' if at(s, j + 1) == b'(' && !open => (b'(', 2),
            b'(' if !open => (b'(', 1),
            b' ' | b'-' | b'.' | b'/' => (c, 1),
            _ => break,
        };
        if !at(s, j + step).is_ascii_digit() {
            break;
        }
        open = sep == b'(';
        if let Some(slot) = seps.get_mut(ng - 1) {
            *slot = sep;
        }
        j += step;
    }
    ends.get(..ng)?.iter().rev().find_map(|&(end, nd, ng)| {
        if is_word(at(s, end)) {
            return None;
        }
        classify_number(
            groups.get(..ng).unwrap_or_default(),
            digits.get(..nd).unwrap_or_default(),
            seps.get(..ng.saturating_sub(1)).unwrap_or_default(),
            b,
        )
        .map(|kind| found(i, end, kind))
    })
}

/// An IBAN at word start `i`: two letters, two check digits, optional spaces every four.
fn iban_at(s: &[u8], i: usize) -> Option<Match> {
    let ok_start = at(s, i).is_ascii_uppercase()
        && at(s, i + 1).is_ascii_uppercase()
        && at(s, i + 2).is_ascii_digit()
        && at(s, i + 3).is_ascii_digit();
    if !ok_start {
        return None;
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
    ((15..=34).contains(&chars.len()) && !is_word(at(s, j)) && iban_checksum(&chars))
        .then(|| found(i, j, Kind::Iban))
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

/// An IPv4 address at word start `i` (not preceded by a dot).
fn ipv4_at(s: &[u8], i: usize) -> Option<Match> {
    if i > 0 && at(s, i - 1) == b'.' {
        return None;
    }
    let mut j = i;
    for octet in 0..4 {
        let d = span(s, j, |b| b.is_ascii_digit());
        let v = s.get(j..j + d).unwrap_or_default().iter().fold(0u32, |a, c| {
            a.saturating_mul(10).saturating_add(u32::from(c - b'0'))
        });
        if d == 0 || d > 3 || v > 255 || (d > 1 && at(s, j) == b'0') {
            return None;
        }
        j += d;
        if octet < 3 {
            if at(s, j) != b'.' {
                return None;
            }
            j += 1;
        }
    }
    // Not part of a longer dotted number (version strings like 1.2.3.4.5).
    let longer = is_word(at(s, j)) || (at(s, j) == b'.' && at(s, j + 1).is_ascii_digit());
    (!longer).then(|| found(i, j, Kind::Ipv4))
}

/// The built-in detectors, by the byte that can start them.
struct Enabled {
    tokens: bool,
    jwt: bool,
    pem: bool,
    assignments: bool,
    email: bool,
    iban: bool,
    numbers: bool,
    ipv4: bool,
}

// Where each detector may look next (indexes into `Scanner::next`): after a match it
// resumes at the match's end.
const TOKEN: usize = 0;
const JWT: usize = 1;
const PEM: usize = 2;
const ASSIGN: usize = 3;
const EMAIL: usize = 4;
const IBAN: usize = 5;
const NUMBER: usize = 6;
const IPV4: usize = 7;
const URL: usize = 8;
const PROSE: usize = 9;

struct Scanner<'a, F: Fn(Kind) -> bool> {
    s: &'a [u8],
    on: F,
    enabled: Enabled,
    next: [usize; 10],
    out: &'a mut Vec<Match>,
    open_block: Option<usize>,
}

impl<'a, F: Fn(Kind) -> bool> Scanner<'a, F> {
    fn new(s: &'a [u8], on: F, out: &'a mut Vec<Match>) -> Self {
        let enabled = Enabled {
            tokens: Kind::ALL.into_iter().any(|k| k.is_prefixed_token() && on(k)),
            jwt: on(Kind::Jwt),
            pem: on(Kind::PrivateKey),
            assignments: on(Kind::Password) || on(Kind::AwsSecretKey),
            email: on(Kind::Email),
            iban: on(Kind::Iban),
            numbers: on(Kind::PaymentCard) || on(Kind::UsSsn) || on(Kind::Phone),
            ipv4: on(Kind::Ipv4),
        };
        Scanner {
            s,
            on,
            enabled,
            next: [0; 10],
            out,
            open_block: None,
        }
    }

    fn keep(&mut self, m: Option<Match>, detector: usize) {
        if let Some(m) = m {
            self.resume(detector, m.end);
            if (self.on)(m.kind) {
                self.out.push(m);
            }
        }
    }

    fn resume(&mut self, detector: usize, at: usize) {
        if let Some(next) = self.next.get_mut(detector) {
            *next = at;
        }
    }

    fn ready(&self, detector: usize, i: usize) -> bool {
        self.next.get(detector).is_some_and(|n| i >= *n)
    }

    /// The detectors that start at the start of a word.
    fn word_start(&mut self, w: usize) {
        let (s, b) = (self.s, at(self.s, w));
        if self.enabled.tokens && self.ready(TOKEN, w) {
            self.keep(token_at(s, w), TOKEN);
        }
        if b == b'e' && self.enabled.jwt && self.ready(JWT, w) {
            self.keep(jwt_at(s, w), JWT);
        }
        if b.is_ascii_uppercase() && self.enabled.iban && self.ready(IBAN, w) {
            self.keep(iban_at(s, w), IBAN);
        }
        if self.enabled.assignments && self.ready(PROSE, w) {
            self.keep(prose_password_at(s, w), PROSE);
        }
        if b.is_ascii_digit() {
            if self.enabled.numbers && self.ready(NUMBER, w) {
                self.keep(number_at(s, w), NUMBER);
            }
            if self.enabled.ipv4 && self.ready(IPV4, w) {
                self.keep(ipv4_at(s, w), IPV4);
            }
        }
    }

    /// The detectors that start at a punctuation byte.
    fn punctuation(&mut self, i: usize, b: u8) {
        let s = self.s;
        match b {
            b'-' if self.enabled.pem && self.ready(PEM, i) => match private_key_at(s, i) {
                Some(Pem::Key(m)) => self.keep(Some(m), PEM),
                Some(Pem::Other(resume)) => self.resume(PEM, resume),
                Some(Pem::Open(m)) => {
                    self.open_block = Some(m.start);
                    self.keep(Some(m), PEM);
                    self.resume(PEM, usize::MAX);
                }
                Some(Pem::Unclosed) => {
                    self.open_block = Some(i);
                    self.resume(PEM, usize::MAX);
                }
                None => {}
            },
            b'=' | b':' if self.enabled.assignments && self.ready(ASSIGN, i) => {
                self.keep(assignment_at(s, i), ASSIGN);
                if b == b':' && self.ready(URL, i) {
                    self.keep(url_password_at(s, i), URL);
                }
            }
            b'@' if self.enabled.email && self.ready(EMAIL, i) => self.keep(email_at(s, i), EMAIL),
            b'+' | b'(' if self.enabled.numbers && self.ready(NUMBER, i) => {
                self.keep(number_at(s, i), NUMBER);
            }
            _ => {}
        }
    }
}

/// Bytes that every match contains at or near its start: uppercase letters, digits, `_`
/// (token prefixes, JWTs, IBANs, numbers) and `-`, `=`, `:`, `@`, `+`, `(`. Text without
/// them, which is most of any prose, cannot match, so the scan skips it eight bytes at a
/// time and starts a detector only around these bytes.
fn rare(b: u8) -> bool {
    b.is_ascii_uppercase()
        || b.is_ascii_digit()
        || matches!(b, b'_' | b'-' | b'=' | b':' | b'@' | b'+' | b'(')
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Whether one of the eight bytes of `x` may be rare: ASCII in `(`..`-` (which takes in
/// `)`, `*` and `,` too), `0`..`Z` (digits, `:`, `=`, `@`, uppercase, and a few others) or
/// `_`. Bytewise arithmetic on one u64, each byte's high bit carrying its test: a few
/// operations per eight bytes where a byte loop takes several per byte.
fn may_hold_rare(x: u64) -> bool {
    // Forcing each byte's high bit on keeps the subtractions from borrowing across bytes;
    // a byte's high bit then stays set iff its low seven bits are >= the subtrahend.
    let forced = x | HI;
    let ascii = !x & HI;
    let punct = forced.wrapping_sub(LO * 0x28) & !forced.wrapping_sub(LO * 0x2E);
    let digit_to_upper = forced.wrapping_sub(LO * 0x30) & !forced.wrapping_sub(LO * 0x5B);
    // `_`: a byte that xor 0x5F leaves zero.
    let y = x ^ (LO * 0x5F);
    let underscore = !((y & !HI).wrapping_add(!HI) | y);
    (punct | digit_to_upper | underscore) & ascii & HI != 0
}

/// Runs the enabled built-in detectors over `s` in one pass. Each detector is started only
/// where it can match: word starts of words that hold a rare byte (or end at a `-`), and
/// the punctuation bytes. Matches go to `out`; the result is the start of a private key
/// block that is not complete yet (header or END line missing), which a streamer must hold
/// back.
fn scan(s: &[u8], on: impl Fn(Kind) -> bool, out: &mut Vec<Match>) -> Option<usize> {
    let mut scanner = Scanner::new(s, on, out);
    // End of the last word whose start was handled: its other bytes need nothing more.
    let mut word_end = 0;
    let mut i = 0;
    while i < s.len() {
        let block = s.get(i..i + 8).and_then(|b| <[u8; 8]>::try_from(b).ok());
        if block.is_some_and(|b| !may_hold_rare(u64::from_le_bytes(b))) {
            i += 8;
            continue;
        }
        let b = at(s, i);
        if !rare(b) {
            i += 1;
            continue;
        }
        if is_word(b) {
            // Back to the start of this word (not yet visited: the last handled word ended
            // before it), handle it once, and skip the rest of it.
            let mut w = i;
            while w > word_end && is_word(at(s, w - 1)) {
                w -= 1;
            }
            scanner.word_start(w);
            word_end = i + span(s, i, is_word);
            i = word_end;
            continue;
        }
        // `sk-...`, `xoxb-...`: a lowercase word that a dash makes a token prefix.
        if b == b'-' && i > word_end && is_word(at(s, i - 1)) {
            let mut w = i - 1;
            while w > word_end && is_word(at(s, w - 1)) {
                w -= 1;
            }
            scanner.word_start(w);
            word_end = i;
        }
        scanner.punctuation(i, b);
        i += 1;
    }
    scanner.open_block
}

/// A user-defined pattern.
#[derive(Debug, Clone)]
pub struct CustomPattern {
    pub name: String,
    pub regex: regex_lite::Regex,
    /// Bound on whitespace runs one match can span (streaming hold-back).
    pub max_runs: usize,
}

/// What a scan found.
pub struct Scan {
    /// Non-overlapping matches, earliest first.
    pub matches: Vec<Match>,
    /// Start of a private key block not complete yet (header or END line missing).
    pub open_block: Option<usize>,
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
        self.scan(text).matches
    }

    /// Matches, and where an incomplete private key block starts.
    pub fn scan(&self, text: &str) -> Scan {
        let mut all = Vec::new();
        let open_block = scan(text.as_bytes(), |k| self.kinds.contains(&k), &mut all);
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
        all.sort_by(|a, b| {
            a.start
                .cmp(&b.start)
                .then(b.end.cmp(&a.end))
                .then(a.kind.precedence().cmp(&b.kind.precedence()))
        });
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
        Scan {
            matches: out,
            open_block,
        }
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
        let mut out = String::new();
        self.render_into(&mut out, m, value);
        out
    }

    /// Appends the replacement of `value` to `out` (no allocation per match).
    pub fn render_into(&self, out: &mut String, m: &Match, value: &str) {
        let name = m.label.as_deref().unwrap_or(m.kind.name());
        out.push_str("[REDACTED:");
        out.push_str(name);
        if let Replacement::KeyedHash(key) = self {
            use hmac::{Hmac, Mac};
            out.push(':');
            if let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(key) {
                mac.update(value.as_bytes());
                const HEX: &[u8; 16] = b"0123456789abcdef";
                for b in mac.finalize().into_bytes().iter().take(6) {
                    out.push(char::from(HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0')));
                    out.push(char::from(HEX.get(usize::from(b & 15)).copied().unwrap_or(b'0')));
                }
            }
        }
        out.push(']');
    }
}

/// Counts of redactions by type name.
pub type Counts = std::collections::BTreeMap<String, u64>;

/// Counts one redaction; allocates only for the first of each type.
pub fn count(counts: &mut Counts, name: &str) {
    match counts.get_mut(name) {
        Some(n) => *n += 1,
        None => {
            counts.insert(name.to_string(), 1);
        }
    }
}

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
        replacement.render_into(&mut out, m, text.get(m.start..m.end).unwrap_or_default());
        count(counts, m.label.as_deref().unwrap_or(m.kind.name()));
        last = m.end;
    }
    out.push_str(text.get(last..).unwrap_or_default());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference for `scan`'s skipping: every detector tried at every word start and
    /// every punctuation byte.
    fn scan_everywhere(s: &[u8], on: impl Fn(Kind) -> bool, out: &mut Vec<Match>) -> Option<usize> {
        let mut scanner = Scanner::new(s, on, out);
        for (i, &b) in s.iter().enumerate() {
            if !is_word(b) {
                scanner.punctuation(i, b);
            } else if boundary_before(s, i) {
                scanner.word_start(i);
            }
        }
        scanner.open_block
    }

    #[test]
    fn skipping_scan_equals_trying_everywhere() {
        const PIECES: &[&str] = &[
            " ",
            "  ",
            "\n",
            "\t",
            ".",
            ",",
            "-",
            "_",
            "=",
            ":",
            "@",
            "+",
            "(",
            ")",
            "'",
            "\"",
            "/",
            "}",
            "a",
            "e",
            "s",
            "k",
            "x",
            "the model summarised the report ",
            "plain words, ok. ",
            "sk",
            "rk",
            "xoxb",
            "ghp",
            "eyJ",
            "yJ",
            "eyJhbGciOiJIUzI1NiJ9",
            ".eyJzdWIiOiIxMjM0NTY3ODkwIn0",
            "-----BEGIN ",
            "RSA PRIVATE KEY",
            "CERTIFICATE",
            "-----",
            "-----END ",
            "password",
            "api_key",
            "AWS_SECRET_ACCESS_KEY",
            "hunter2hunter2",
            "AKIA",
            "IOSFODNN7EXAMPLE",
            "AIza",
            "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
            "ghp_",
            "0123456789abcdefghijklmnopqrstuvwxyz",
            "sk-",
            "sk-ant-",
            "sk_live_",
            "github_pat_",
            "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
            "jane.doe",
            "example.com",
            ".io",
            "4111",
            "1111",
            "4",
            "1",
            "0",
            "9",
            "123",
            "45",
            "6789",
            "192.168.",
            "10.25",
            "255",
            "DE89",
            "3704",
            "0044",
            "0532",
            "0130",
            "00",
            "GB82WEST12345698765432",
            "ü",
            "日本",
            "$",
            "<",
            "[REDACTED",
            // Token bodies without a digit or capital: only the `_` of the prefix is rare.
            "abcdefghijklmnopqrstuvwxyzabcdefghijklmnop",
            "abcdefgh",
            // URL credentials, prose passwords, phones, TLDs.
            "://",
            "postgres",
            "admin:",
            "Xy7!pq2z@",
            "the password is ",
            "Das Passwort lautet ",
            "密码是",
            "パスワードは ",
            "(0)",
            "+44 ",
            "020 ",
            "0049",
            "Tmp1234-Ab",
            "tango-river-38",
            "2x.png",
            "co.uk",
            "psk",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..300_000 {
            let mut text = String::new();
            for _ in 0..next() % 40 {
                text.push_str(PIECES[(next() % PIECES.len() as u64) as usize]);
            }
            // Every detector, or a random subset of them.
            let mask = if round % 3 == 0 { next() } else { u64::MAX };
            let on = |k: Kind| {
                Kind::ALL
                    .iter()
                    .position(|x| *x == k)
                    .is_some_and(|i| mask >> i & 1 == 1)
            };
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            let fast_open = scan(text.as_bytes(), on, &mut fast);
            let slow_open = scan_everywhere(text.as_bytes(), on, &mut slow);
            assert_eq!(
                (fast, fast_open),
                (slow, slow_open),
                "in {text:?}, detectors {mask:x}"
            );
        }
    }

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
    fn credentials_in_urls_passwords_in_prose_and_quoted_config() {
        one(
            "DATABASE_URL=postgres://app:s3cr3t-P4ss@db.example.com:5432/app",
            Kind::Password,
            "s3cr3t-P4ss",
        );
        one(
            "redis://:p%40ss!word1@cache:6379/0",
            Kind::Password,
            "p%40ss!word1",
        );
        one("amqp://u:p@ss@w0rd@mq.example.org/", Kind::Password, "p@ss@w0rd");
        none("https://jane@example.com/x and https://example.com:8443/a@b");
        one(
            "The temporary password is Xk7#pQ2m — change it.",
            Kind::Password,
            "Xk7#pQ2m",
        );
        one(
            "Log in with the admin password (Summer2024!).",
            Kind::Password,
            "Summer2024!",
        );
        one(
            "Password for the staging database is N5JBRyLrVy",
            Kind::Password,
            "N5JBRyLrVy",
        );
        one(
            "user root, password tango-river-38",
            Kind::Password,
            "tango-river-38",
        );
        one("Das Passwort lautet Tmp4821-Qz.", Kind::Password, "Tmp4821-Qz.");
        one("Пароль: Falcon2031$", Kind::Password, "Falcon2031$");
        one("密码是Tiger1345*，请尽快修改。", Kind::Password, "Tiger1345*");
        one("Le mot de passe est Orange77#x", Kind::Password, "Orange77#x");
        one("my pw: Xy7pq2zz", Kind::Password, "Xy7pq2zz");
        one(
            "network={\n  psk=\"Qlc-zc!6arlvI^5\"\n}",
            Kind::Password,
            "Qlc-zc!6arlvI^5",
        );
        one(
            "passphrase = 'staple horse purple monkey 42'",
            Kind::Password,
            "staple horse purple monkey 42",
        );
        one("export PGPASSWORD=\"M~WCjkQ1SN\"", Kind::Password, "M~WCjkQ1SN");
        none("The password is incorrect, please try again.");
        none("The password is Case-Sensitive.");
        none("Enter the admin password (min. 8 characters).");
        none("password: '********'");
        none("My password manager is great. Version 2.14.0 is out.");
    }

    #[test]
    fn phones_cards_ssns_and_emails_whole() {
        for phone in [
            "+44 20 7946 0958",
            "020 7946 0958",
            "+1 (415) 555-0100",
            "+49 30 1234567",
            "+49 (0)30 12345678",
            "0049 30 1234567",
            "030 1234567",
            "01 23 45 67 89",
            "06.12.34.56.78",
            "+33 6 12 34 56 78",
            "+7 (495) 123-45-67",
            "03-1234-5678",
            "415.555.0100",
            "+1.415.555.0100",
            "07700 900123",
        ] {
            one(&format!("call {phone} today"), Kind::Phone, phone);
            one(&format!("Phone ({phone})"), Kind::Phone, phone);
        }
        one(
            "Charge the card (4111 1111 1111 1111) today",
            Kind::PaymentCard,
            "4111 1111 1111 1111",
        );
        one("card [4012888888881881]", Kind::PaymentCard, "4012888888881881");
        one("(4111111111111111)", Kind::PaymentCard, "4111111111111111");
        one("SSN (123-45-6789)", Kind::UsSsn, "123-45-6789");
        one("ssn 123 45 6789", Kind::UsSsn, "123 45 6789");
        one("ssn 123.45.6789.", Kind::UsSsn, "123.45.6789");
        none("ISBN 978-3-16-148410-0, dates 01.02.2024 and 2024-01-15");
        none("See logo@2x.png and icon@3x.webp, npm i @types/node@20.1.0");
        one(
            "mail Jane.Doe@Example.CO.UK",
            Kind::Email,
            "Jane.Doe@Example.CO.UK",
        );
        one("mailto:kenji@yahoo.co.jp", Kind::Email, "kenji@yahoo.co.jp");
        one("write to a.b@shop.store", Kind::Email, "a.b@shop.store");
        none("deploy@buildhost:/srv and user@host.local");
        one(
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF\n-----END PGP PRIVATE KEY BLOCK-----",
            Kind::PrivateKey,
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF\n-----END PGP PRIVATE KEY BLOCK-----",
        );
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
