//! RESP on the wire, bounded: client requests parsed into argument spans
//! (multibulk and inline), and a streaming scanner that finds where each
//! reply frame from Redis ends (RESP2 and RESP3) without holding the frame,
//! so a huge reply passes through in pieces.

use std::ops::Range;

/// Limits on what a client may send in one command.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest bulk string (one argument).
    pub max_bulk: usize,
    /// The most arguments in one command.
    pub max_args: usize,
    /// The longest inline command or header line.
    pub max_inline: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bulk: 64 << 20, max_args: 1 << 20, max_inline: 64 << 10 }
    }
}

/// One parsed command: where its arguments are in the buffer, and the span
/// of its raw bytes (forwarded as they are when nothing changes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub args: Vec<Range<usize>>,
    pub raw: Range<usize>,
}

/// What the parser found at the start of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A complete command.
    Command(Command),
    /// An empty command (`*0`, a blank line): skipped, as Redis does.
    Empty(usize),
    /// More bytes are needed; `at_least` is how many the buffer must hold.
    Incomplete { at_least: usize },
    /// The client broke the protocol; the connection is answered and closed.
    Error(String),
}

/// Finds `\r\n` in `buf[from..]`, looking at most `limit` bytes.
fn line_end(buf: &[u8], from: usize, limit: usize) -> Option<Result<usize, ()>> {
    let end = buf.len().min(from.saturating_add(limit).saturating_add(2));
    match buf[from..end].windows(2).position(|w| w == b"\r\n") {
        Some(p) => Some(Ok(from + p)),
        None if end - from >= limit + 2 => Some(Err(())),
        None => None,
    }
}

fn number(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || bytes.len() > 20 {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// How far a cut multibulk command was parsed: the next parse of the same
/// command goes on from there instead of walking its arguments again.
#[derive(Debug, Default)]
pub struct Partial {
    start: usize,
    n: usize,
    at: usize,
    args: Vec<Range<usize>>,
}

/// Parses the command at `buf[start..]`.
pub fn parse(buf: &[u8], start: usize, limits: &Limits) -> Parsed {
    parse_resuming(buf, start, limits, &mut None)
}

/// [`parse`], resuming from `partial` when it is about the same command
/// (and leaving it there when the command is cut again).
pub fn parse_resuming(buf: &[u8], start: usize, limits: &Limits, partial: &mut Option<Partial>) -> Parsed {
    if start >= buf.len() {
        return Parsed::Incomplete { at_least: start + 1 };
    }
    if buf[start] != b'*' {
        return inline(buf, start, limits);
    }
    if let Some(p) = partial.take_if(|p| p.start == start && p.at <= buf.len()) {
        return multibulk(buf, start, limits, p.n, p.at, p.args, partial);
    }
    let Some(end) = line_end(buf, start + 1, 32) else { return Parsed::Incomplete { at_least: buf.len() + 1 } };
    let Ok(end) = end else { return Parsed::Error("Protocol error: invalid multibulk length".into()) };
    let Some(n) = number(&buf[start + 1..end]) else {
        return Parsed::Error("Protocol error: invalid multibulk length".into());
    };
    if n <= 0 {
        return Parsed::Empty(end + 2 - start);
    }
    if n as u64 > limits.max_args as u64 {
        return Parsed::Error(format!("Protocol error: more than {} arguments in one command", limits.max_args));
    }
    multibulk(buf, start, limits, n as usize, end + 2, Vec::with_capacity((n as usize).min(64)), partial)
}

fn multibulk(
    buf: &[u8],
    start: usize,
    limits: &Limits,
    n: usize,
    mut at: usize,
    mut args: Vec<Range<usize>>,
    partial: &mut Option<Partial>,
) -> Parsed {
    let mut cut = |at: usize, args: Vec<Range<usize>>, at_least: usize| {
        *partial = Some(Partial { start, n, at, args });
        Parsed::Incomplete { at_least }
    };
    while args.len() < n {
        if at >= buf.len() {
            return cut(at, args, at + 1);
        }
        if buf[at] != b'$' {
            return Parsed::Error(format!("Protocol error: expected '$', got '{}'", printable(buf[at])));
        }
        let Some(end) = line_end(buf, at + 1, 32) else { return cut(at, args, buf.len() + 1) };
        let Ok(end) = end else { return Parsed::Error("Protocol error: invalid bulk length".into()) };
        let len = match number(&buf[at + 1..end]) {
            Some(l) if l >= 0 => l as u64,
            _ => return Parsed::Error("Protocol error: invalid bulk length".into()),
        };
        if len > limits.max_bulk as u64 {
            return Parsed::Error(format!(
                "Protocol error: an argument of {len} bytes is over the gateway's limit of {} bytes",
                limits.max_bulk
            ));
        }
        let data = end + 2;
        let next = data + len as usize + 2;
        if buf.len() < next {
            return cut(at, args, next);
        }
        if &buf[next - 2..next] != b"\r\n" {
            return Parsed::Error("Protocol error: a bulk string does not end with CRLF".into());
        }
        args.push(data..data + len as usize);
        at = next;
    }
    Parsed::Command(Command { args, raw: start..at })
}

/// An inline command: words separated by spaces, up to the end of the line
/// (`telnet`); quotes are not interpreted.
fn inline(buf: &[u8], start: usize, limits: &Limits) -> Parsed {
    let Some(nl) = buf[start..].iter().take(limits.max_inline + 1).position(|b| *b == b'\n') else {
        if buf.len() - start > limits.max_inline {
            return Parsed::Error("Protocol error: too big inline request".into());
        }
        return Parsed::Incomplete { at_least: buf.len() + 1 };
    };
    let end = start + nl;
    let line_end = if end > start && buf[end - 1] == b'\r' { end - 1 } else { end };
    let mut args = Vec::new();
    let mut i = start;
    while i < line_end {
        while i < line_end && buf[i].is_ascii_whitespace() {
            i += 1;
        }
        let word = i;
        while i < line_end && !buf[i].is_ascii_whitespace() {
            i += 1;
        }
        if i > word {
            args.push(word..i);
        }
    }
    if args.is_empty() {
        return Parsed::Empty(end + 1 - start);
    }
    Parsed::Command(Command { args, raw: start..end + 1 })
}

fn printable(b: u8) -> String {
    if b.is_ascii_graphic() { (b as char).to_string() } else { format!("\\x{b:02x}") }
}

/// Appends a command in multibulk form.
pub fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        bulk(out, a);
    }
}

/// Appends a bulk string.
pub fn bulk(out: &mut Vec<u8>, data: &[u8]) {
    out.push(b'$');
    out.extend_from_slice(data.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends an array header.
pub fn array(out: &mut Vec<u8>, n: usize) {
    out.push(b'*');
    out.extend_from_slice(n.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// An error reply: `-<text>\r\n`, any CR or LF in `text` replaced.
pub fn error(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 3);
    out.push(b'-');
    out.extend(text.bytes().map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
    out.extend_from_slice(b"\r\n");
    out
}

/// The deepest nesting of aggregates accepted in a reply.
const MAX_DEPTH: usize = 64;

/// Where a reply frame ends, fed with bytes as they arrive. A frame is one
/// top-level value; RESP3 attributes (`|`) are part of the value they
/// precede, and push frames (`>`) are reported apart (they answer no command).
#[derive(Debug, Default)]
pub struct Scanner {
    /// Elements still to read at each open aggregate level.
    stack: Vec<u64>,
    /// Bytes of a bulk payload (plus its CRLF) still to skip.
    skip: u64,
    /// A header line cut by the end of the data read so far.
    partial: Vec<u8>,
    /// The top-level frame is a push.
    push: bool,
}

/// A frame the scanner finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// A reply to a command.
    Reply,
    /// A push (RESP3 `>`): pub/sub messages, invalidations.
    Push,
}

impl Scanner {
    /// Consumes bytes of `data` until the end of one top-level frame;
    /// returns how many bytes belong to it and whether it is complete.
    /// Bytes after the end are left for the next call.
    pub fn feed(&mut self, data: &[u8]) -> Result<(usize, Option<Frame>), String> {
        let mut at = 0;
        loop {
            if self.skip > 0 {
                let n = (data.len() - at).min(usize::try_from(self.skip).unwrap_or(usize::MAX));
                at += n;
                self.skip -= n as u64;
                if self.skip > 0 {
                    return Ok((at, None));
                }
                if let Some(done) = self.element_done() {
                    return Ok((at, Some(done)));
                }
                continue;
            }
            if at >= data.len() {
                return Ok((at, None));
            }
            // A header line: type byte, text, CRLF.
            let line_start = at;
            let Some(nl) = data[at..].iter().position(|b| *b == b'\n') else {
                self.partial.extend_from_slice(&data[at..]);
                if self.partial.len() > 64 << 10 {
                    return Err("a reply line from Redis is longer than 64 KiB".into());
                }
                return Ok((data.len(), None));
            };
            at += nl + 1;
            let line: std::borrow::Cow<[u8]> = if self.partial.is_empty() {
                std::borrow::Cow::Borrowed(&data[line_start..at])
            } else {
                self.partial.extend_from_slice(&data[line_start..at]);
                std::borrow::Cow::Owned(std::mem::take(&mut self.partial))
            };
            if let Some(done) = self.header(&line)? {
                return Ok((at, Some(done)));
            }
        }
    }

    /// Handles one header line; `Some` when it ends the top-level frame.
    fn header(&mut self, line: &[u8]) -> Result<Option<Frame>, String> {
        if line.len() < 3 || !line.ends_with(b"\r\n") {
            return Err("a reply line from Redis does not end with CRLF".into());
        }
        let kind = line[0];
        let body = &line[1..line.len() - 2];
        let top = self.stack.is_empty();
        if top {
            self.push = kind == b'>';
        }
        match kind {
            b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Ok(self.element_done()),
            b'$' | b'=' | b'!' => {
                let n = number(body).ok_or("a bulk length from Redis is not a number")?;
                if n < 0 {
                    return Ok(self.element_done());
                }
                self.skip = n as u64 + 2;
                Ok(None)
            }
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                let n = number(body).ok_or("an aggregate length from Redis is not a number")?;
                let per = if matches!(kind, b'%' | b'|') { 2 } else { 1 };
                if self.stack.len() >= MAX_DEPTH {
                    return Err(format!("a reply from Redis nests deeper than {MAX_DEPTH}"));
                }
                if kind == b'|' {
                    // An attribute is one more element before the value it
                    // describes, in the same parent (at the top level, the
                    // frame is the attribute and the value).
                    match self.stack.last_mut() {
                        Some(parent) => *parent += 1,
                        None => self.stack.push(2),
                    }
                    let count = (n.max(0) as u64).saturating_mul(per);
                    if count == 0 {
                        return Ok(self.element_done());
                    }
                    self.stack.push(count);
                    return Ok(None);
                }
                if n <= 0 {
                    return Ok(self.element_done());
                }
                self.stack.push((n as u64).saturating_mul(per));
                Ok(None)
            }
            other => Err(format!("a reply from Redis starts with an unknown type byte {}", printable(other))),
        }
    }

    /// One element finished: counts it against the open aggregates.
    fn element_done(&mut self) -> Option<Frame> {
        loop {
            match self.stack.last_mut() {
                None => {
                    return Some(if std::mem::take(&mut self.push) { Frame::Push } else { Frame::Reply });
                }
                Some(left) => {
                    *left -= 1;
                    if *left > 0 {
                        return None;
                    }
                    self.stack.pop();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            match parse(input, at, &Limits::default()) {
                Parsed::Command(c) => {
                    out.push(c.args.iter().map(|r| String::from_utf8_lossy(&input[r.clone()]).into_owned()).collect());
                    at = c.raw.end;
                }
                Parsed::Empty(n) => at += n,
                Parsed::Incomplete { .. } => return out,
                Parsed::Error(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn commands_parse_in_both_forms_and_wait_for_more() {
        let input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\nPING\r\n*0\r\n  get   x \n*2\r\n$3\r\nGET";
        assert_eq!(parse_all(input), vec![vec!["SET", "k", ""], vec!["PING"], vec!["get", "x"]]);
        let cut = b"*2\r\n$3\r\nGET\r\n$5\r\nab";
        assert_eq!(parse(cut, 0, &Limits::default()), Parsed::Incomplete { at_least: cut.len() - 2 + 7 });
    }

    #[test]
    fn malformed_and_oversized_requests_are_errors() {
        let small = Limits { max_bulk: 10, max_args: 3, max_inline: 16 };
        for bad in [
            &b"*x\r\n"[..],
            b"*2\r\n+OK\r\n",
            b"*1\r\n$-5\r\n",
            b"*1\r\n$11\r\n",
            b"*4\r\n",
            b"*1\r\n$1\r\nabc\r\n",
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            b"*99999999999999999999999\r\n",
        ] {
            assert!(matches!(parse(bad, 0, &small), Parsed::Error(_)), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    fn frames(mut data: &[u8], chunk: usize) -> Vec<(usize, Frame)> {
        let mut s = Scanner::default();
        let mut out = Vec::new();
        let mut len = 0;
        while !data.is_empty() {
            let piece = &data[..chunk.min(data.len())];
            let (used, done) = s.feed(piece).expect("valid");
            len += used;
            data = &data[used..];
            if let Some(f) = done {
                out.push((len, f));
                len = 0;
            }
        }
        out
    }

    #[test]
    fn reply_frames_end_where_they_end_in_any_chunking() {
        let data = b"+OK\r\n$5\r\nhello\r\n*2\r\n*1\r\n:1\r\n$-1\r\n%1\r\n+a\r\n~2\r\n,1.5\r\n_\r\n>2\r\n+x\r\n+y\r\n|1\r\n+k\r\n+v\r\n:7\r\n*0\r\n*-1\r\n=7\r\ntxt:abc\r\n";
        let want = vec![
            (5, Frame::Reply),
            (11, Frame::Reply),
            (17, Frame::Reply),
            (21, Frame::Reply),
            (12, Frame::Push),
            (16, Frame::Reply),
            (4, Frame::Reply),
            (5, Frame::Reply),
            (13, Frame::Reply),
        ];
        for chunk in [1, 2, 3, 7, 1000] {
            assert_eq!(frames(data, chunk), want, "chunk {chunk}");
        }
    }

    #[test]
    fn hostile_replies_are_errors_not_panics() {
        for bad in [&b"?\r\n"[..], b"$x\r\n", b"*1\r\n\n", b"*a\r\n"] {
            assert!(Scanner::default().feed(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = b"*1\r\n".repeat(100);
        assert!(Scanner::default().feed(&deep).is_err());
        assert!(Scanner::default().feed(&b"+".repeat(70_000)).is_err());
    }

    /// Random RESP-like bytes never panic the parser or the scanner, and
    /// every parse stays inside the buffer.
    #[test]
    fn random_input_never_panics() {
        let alphabet = b"*$+-:_,#(=!>%~|\r\n0123456789-abcAUTH ";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let small = Limits { max_bulk: 64, max_args: 16, max_inline: 128 };
        for _ in 0..20_000 {
            let len = (next() % 48) as usize;
            let input: Vec<u8> = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            let mut at = 0;
            let mut partial = None;
            for _ in 0..64 {
                match parse_resuming(&input, at, &small, &mut partial) {
                    Parsed::Command(c) => {
                        assert!(c.raw.end <= input.len() && c.args.iter().all(|r| r.end <= input.len()));
                        at = c.raw.end;
                    }
                    Parsed::Empty(n) => at += n,
                    Parsed::Incomplete { .. } | Parsed::Error(_) => break,
                }
            }
            let mut scanner = Scanner::default();
            let mut rest = &input[..];
            while !rest.is_empty() {
                match scanner.feed(rest) {
                    Ok((used, _)) if used > 0 => rest = &rest[used..],
                    _ => break,
                }
            }
        }
    }
}
