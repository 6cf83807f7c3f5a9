//! The one Server-Sent Events parser every SSE consumer uses (redaction, tool-call guard,
//! usage meter), following the WHATWG event-stream grammar: lines end in CR, LF or CRLF
//! (a CR ending one network chunk and an LF starting the next are one line end), a leading
//! BOM is dropped, `:` starts a comment, a field without a colon has an empty value, one
//! space after the colon is stripped, and a blank line ends an event.
//!
//! Events are re-emitted in one canonical framing (`name: value\n` per field, a blank `\n`
//! after each event), never as the upstream's bytes: a client parses exactly the fields we
//! inspected, whatever framing trick (`\r\r`, `\n\r\n`, CR split across chunks) the upstream
//! used. Fields a client ignores (unknown names, a non-numeric `retry`) are dropped rather
//! than passed uninspected.

/// Events (or lines) larger than this cannot be held for inspection: the stream fails closed.
/// Large enough for a base64 partial image of the Responses API.
pub const MAX_EVENT: usize = 8 * 1024 * 1024;

/// A field of an event, in the order it arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Event,
    Data,
    Id,
    Retry,
    /// A line starting with `:` (its text after the colon, unstripped).
    Comment,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Event => "event",
            Field::Data => "data",
            Field::Id => "id",
            Field::Retry => "retry",
            Field::Comment => "",
        }
    }
}

/// One event: the lines of one block between blank lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    pub fields: Vec<(Field, String)>,
}

impl Event {
    /// The data a client's `message` handler gets: `data` lines joined with "\n".
    /// None when the event has no `data` field (a client dispatches nothing for it).
    pub fn data(&self) -> Option<String> {
        let mut lines = self
            .fields
            .iter()
            .filter(|(f, _)| *f == Field::Data)
            .map(|(_, v)| v.as_str());
        let first = lines.next()?;
        let mut data = first.to_string();
        for l in lines {
            data.push('\n');
            data.push_str(l);
        }
        Some(data)
    }

    /// The `event` field (the last one wins, as in a client).
    pub fn event_type(&self) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(f, _)| *f == Field::Event)
            .map(|(_, v)| v.as_str())
    }

    /// Replaces the data (split into `data` lines at any line end) where the first `data`
    /// line was.
    pub fn set_data(&mut self, data: &str) {
        let at = self.fields.iter().position(|(f, _)| *f == Field::Data);
        self.fields.retain(|(f, _)| *f != Field::Data);
        let at = at.unwrap_or(self.fields.len()).min(self.fields.len());
        let lines: Vec<(Field, String)> = split_lines(data).map(|l| (Field::Data, l.to_string())).collect();
        self.fields.splice(at..at, lines);
    }

    /// An event with only data.
    pub fn with_data(data: &str) -> Event {
        let mut e = Event::default();
        e.set_data(data);
        e
    }

    /// Appends the canonical framing of the event (nothing for an empty event).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        if self.fields.is_empty() {
            return;
        }
        for (field, value) in &self.fields {
            // A value never holds a line end once parsed; one set by a consumer is split so
            // the framing cannot be changed through it.
            for line in split_lines(value) {
                if *field == Field::Comment {
                    out.push(b':');
                } else {
                    out.extend_from_slice(field.name().as_bytes());
                    out.extend_from_slice(b": ");
                }
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
        }
        out.push(b'\n');
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }
}

/// An event with its data read once for every consumer: the data text and, when it is
/// JSON (`NaN` / `Infinity` accepted, as Python's json reads them), its value.
#[derive(Debug, Clone)]
pub struct Inspected {
    pub event: Event,
    pub data: Option<String>,
    pub json: Option<serde_json::Value>,
}

impl Inspected {
    pub fn new(event: Event) -> Inspected {
        let data = event.data();
        let json = data
            .as_deref()
            .filter(|d| d.trim() != "[DONE]")
            .and_then(|d| crate::inspect::json_text::parse_tolerant(d.as_bytes()));
        Inspected { event, data, json }
    }
}

/// Lines of a text split at CRLF, CR or LF (one empty line for empty text).
fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let t = rest?;
        match t.find(['\r', '\n']) {
            Some(i) => {
                let after = t.get(i..).unwrap_or_default();
                let skip = if after.starts_with("\r\n") { 2 } else { 1 };
                rest = t.get(i + skip..);
                t.get(..i)
            }
            None => {
                rest = None;
                Some(t)
            }
        }
    })
}

/// The stream cannot be parsed within bounds (an event or line over `MAX_EVENT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oversized;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Incremental parser: feed network chunks, get complete events. The output does not
/// depend on how the stream was split into chunks.
#[derive(Debug, Default)]
pub struct Parser {
    /// The current line so far (bytes: a UTF-8 character may be cut by a chunk boundary).
    line: Vec<u8>,
    /// The last byte was a CR: an LF right after it (even in the next chunk) is the same
    /// line end.
    after_cr: bool,
    /// Bytes before the first line, while they may still be a BOM.
    started: bool,
    event: Event,
    event_size: usize,
    failed: bool,
}

impl Parser {
    /// Takes the next chunk; returns the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Event>, Oversized> {
        let mut events = Vec::new();
        self.feed_into(chunk, &mut events)?;
        Ok(events)
    }

    fn feed_into(&mut self, chunk: &[u8], events: &mut Vec<Event>) -> Result<(), Oversized> {
        if self.failed {
            return Err(Oversized);
        }
        if !self.started {
            // The BOM may itself be split across chunks: wait until it is decided.
            self.line.extend_from_slice(chunk);
            let n = self.line.len().min(BOM.len());
            if self.line.get(..n) == BOM.get(..n) && n < BOM.len() {
                return Ok(());
            }
            self.started = true;
            let mut held = std::mem::take(&mut self.line);
            if held.starts_with(BOM) {
                held.drain(..BOM.len());
            }
            return self.scan(&held, events);
        }
        self.scan(chunk, events)
    }

    fn scan(&mut self, mut rest: &[u8], events: &mut Vec<Event>) -> Result<(), Oversized> {
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if let Some(stripped) = rest.strip_prefix(b"\n") {
                rest = stripped;
            }
        }
        while let Some(i) = rest.iter().position(|&b| b == b'\r' || b == b'\n') {
            let (head, tail) = rest.split_at(i);
            self.line.extend_from_slice(head);
            let mut skip = 1;
            if tail.first() == Some(&b'\r') {
                match tail.get(1) {
                    Some(b'\n') => skip = 2,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            rest = tail.get(skip..).unwrap_or_default();
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, events)?;
        }
        self.line.extend_from_slice(rest);
        if self.line.len() > MAX_EVENT {
            self.failed = true;
            return Err(Oversized);
        }
        Ok(())
    }

    fn line_done(&mut self, line: &[u8], events: &mut Vec<Event>) -> Result<(), Oversized> {
        if line.is_empty() {
            let event = std::mem::take(&mut self.event);
            self.event_size = 0;
            if !event.fields.is_empty() {
                events.push(event);
            }
            return Ok(());
        }
        self.event_size += line.len();
        if self.event_size > MAX_EVENT {
            self.failed = true;
            return Err(Oversized);
        }
        let line = String::from_utf8_lossy(line);
        let (name, value) = match line.find(':') {
            Some(0) => {
                let text = line.get(1..).unwrap_or_default().to_string();
                self.event.fields.push((Field::Comment, text));
                return Ok(());
            }
            Some(i) => {
                let v = line.get(i + 1..).unwrap_or_default();
                (
                    line.get(..i).unwrap_or_default(),
                    v.strip_prefix(' ').unwrap_or(v),
                )
            }
            None => (line.as_ref(), ""),
        };
        let field = match name {
            "event" => Field::Event,
            "data" => Field::Data,
            // A client ignores an id containing NUL, and a retry that is not all digits.
            "id" if !value.contains('\0') => Field::Id,
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => Field::Retry,
            _ => return Ok(()),
        };
        self.event.fields.push((field, value.to_string()));
        Ok(())
    }

    /// The stream ended: a last line without its line end, and a last event without its
    /// blank line, are completed (a lenient client would act on them; re-emitted with the
    /// canonical framing, every client sees the same, inspected event).
    pub fn finish(&mut self) -> Result<Vec<Event>, Oversized> {
        let mut events = Vec::new();
        if self.failed {
            return Err(Oversized);
        }
        if !self.started {
            self.started = true;
            let held = std::mem::take(&mut self.line);
            // Only a BOM prefix can be held here: nothing of an event.
            if !BOM.starts_with(&held) {
                self.scan(&held, &mut events)?;
            }
        }
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, &mut events)?;
        }
        self.line_done(&[], &mut events)?;
        Ok(events)
    }

    /// Bytes held for an incomplete line or event.
    pub fn held(&self) -> usize {
        self.line.len() + self.event_size
    }
}

/// Re-frames a whole SSE stream canonically (tests, and consumers that want bytes).
pub fn canonical(body: &[u8]) -> Result<Vec<u8>, Oversized> {
    let mut p = Parser::default();
    let mut out = Vec::new();
    for e in p.feed(body)?.into_iter().chain(p.finish()?) {
        e.write_to(&mut out);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_split(body: &[u8], cuts: &[usize]) -> Vec<Event> {
        let mut p = Parser::default();
        let mut out = Vec::new();
        let mut last = 0;
        for &c in cuts.iter().chain(std::iter::once(&body.len())) {
            if c < last || c > body.len() {
                continue;
            }
            out.extend(p.feed(&body[last..c]).unwrap());
            last = c;
        }
        out.extend(p.finish().unwrap());
        out
    }

    fn datas(events: &[Event]) -> Vec<String> {
        events.iter().filter_map(Event::data).collect()
    }

    #[test]
    fn every_line_ending() {
        for body in [
            &b"data: a\n\ndata: b\n\n"[..],
            b"data: a\r\rdata: b\r\r",
            b"data: a\r\n\r\ndata: b\r\n\r\n",
            b"data: a\n\r\ndata: b\n\r\n",
            b"data: a\r\n\ndata: b\r\r\n",
            b"\xEF\xBB\xBFdata: a\n\ndata: b",
        ] {
            for cut in 0..=body.len() {
                assert_eq!(
                    datas(&parse_split(body, &[cut])),
                    ["a", "b"],
                    "{body:?} cut {cut}"
                );
            }
        }
    }

    #[test]
    fn n_r_n_is_one_blank_line_not_a_merge() {
        // `\n\r\n`: LF ends the data line, CRLF is the blank line.
        let events = parse_split(b"data: one\n\r\ndata: two\n\r\n", &[]);
        assert_eq!(datas(&events), ["one", "two"]);
        assert_eq!(
            canonical(b"data: one\n\r\ndata: two\n\r\n").unwrap(),
            b"data: one\n\ndata: two\n\n"
        );
    }

    #[test]
    fn cr_at_the_end_of_a_chunk_and_lf_at_the_start_of_the_next() {
        let body = b"data: x\r\ndata: y\r\n\r\ndata: z\r\n\r\n";
        for cut in 0..=body.len() {
            let events = parse_split(body, &[cut]);
            assert_eq!(datas(&events), ["x\ny", "z"], "cut {cut}");
        }
        // A CR alone then data in the next chunk: the CR was a line end on its own.
        assert_eq!(
            datas(&parse_split(b"data: a\r\rdata: b\r\r", &[8, 9])),
            ["a", "b"]
        );
    }

    #[test]
    fn fields_comments_and_values() {
        let body = b": keep-alive\nevent: delta\nid: 7\nretry: 1000\nretry: soon\ndata\ndata:x\ndata:  two spaces\nfoo: bar\n\n";
        let events = parse_split(body, &[]);
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.data().unwrap(), "\nx\n two spaces");
        assert_eq!(e.event_type(), Some("delta"));
        assert_eq!(
            String::from_utf8(e.to_bytes()).unwrap(),
            ": keep-alive\nevent: delta\nid: 7\nretry: 1000\ndata: \ndata: x\ndata:  two spaces\n\n"
        );
        // Re-parsing the canonical form gives the same event.
        assert_eq!(parse_split(&e.to_bytes(), &[]), events);
        // Blank lines alone dispatch nothing.
        assert!(parse_split(b"\n\n\r\r\r\n", &[]).is_empty());
    }

    #[test]
    fn set_data_cannot_inject_framing() {
        let mut e = Event::with_data("a");
        e.set_data("x\r\ndata: y\revent: z\n");
        let again = parse_split(&e.to_bytes(), &[]);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].data().unwrap(), "x\ndata: y\nevent: z\n");
        assert_eq!(again[0].event_type(), None);
    }

    #[test]
    fn a_last_event_without_blank_line_is_completed() {
        assert_eq!(
            canonical(b"data: a\n\ndata: b").unwrap(),
            b"data: a\n\ndata: b\n\n"
        );
        assert_eq!(canonical(b"\xEF\xBB").unwrap(), b"");
        // Not a BOM: the bytes are part of the line, whose field name is then unknown.
        assert_eq!(canonical(b"\xEF\xBBdata: a").unwrap(), b"");
    }

    #[test]
    fn oversized_fails_closed() {
        let mut p = Parser::default();
        assert!(p.feed(&vec![b'x'; MAX_EVENT + 1]).is_err());
        assert!(p.feed(b"\n\n").is_err(), "stays failed");
        let mut p = Parser::default();
        let line = format!("data: {}\n", "y".repeat(1024 * 1024));
        let mut failed = false;
        for _ in 0..10 {
            failed |= p.feed(line.as_bytes()).is_err();
        }
        assert!(failed);
    }

    /// xorshift for reproducible random streams and chunkings.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    #[test]
    fn property_parsing_is_independent_of_chunking() {
        let pieces: [&[u8]; 14] = [
            b"data: hello",
            b"data:x",
            b"event: e",
            b": c",
            b"id: 1",
            b"retry: 5",
            b"data",
            b"d\xC3\xA9j\xC3\xA0",
            b"\xF0\x9F\xA6\x80",
            b"\r",
            b"\n",
            b"\r\n",
            b"\xEF\xBB\xBF",
            b"data: {\"a\":1}",
        ];
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        for _ in 0..500 {
            let mut body = Vec::new();
            if rng.below(4) == 0 {
                body.extend_from_slice(BOM);
            }
            for _ in 0..rng.below(30) {
                body.extend_from_slice(pieces[rng.below(pieces.len())]);
            }
            let whole = parse_split(&body, &[]);
            for _ in 0..6 {
                let mut cuts: Vec<usize> = (0..rng.below(10)).map(|_| rng.below(body.len() + 1)).collect();
                cuts.sort_unstable();
                assert_eq!(parse_split(&body, &cuts), whole, "body {body:?} cuts {cuts:?}");
            }
            // Canonical output parses to the same events and is a fixed point.
            let canon = canonical(&body).unwrap();
            assert_eq!(parse_split(&canon, &[]), whole);
            assert_eq!(canonical(&canon).unwrap(), canon);
        }
    }
}
