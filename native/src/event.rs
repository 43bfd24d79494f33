//! Input events: the usual v1 JSON event and Higgs line read here, in one pass; anything
//! else is left to Python's full schema check (pipeline.codec), which gives the reasons.

use crate::state::Id;

pub const MAX_ID_LENGTH: usize = 256;
pub const MAX_EVENT_BYTES: usize = 64 * 1024;
const MAX_HASHTAGS: usize = 64;
/// scoring.events' window of accepted event times (2000-01-01 to 2079-12-31): every span
/// between two events keeps forward decay's exponentials finite.
const MIN_TS_MS: i64 = 946_684_800_000;
const MAX_TS_MS: i64 = 3_471_292_799_999;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Tweet,
    Retweet,
    Quote,
    Reply,
    Mention,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Tweet,
        Kind::Retweet,
        Kind::Quote,
        Kind::Reply,
        Kind::Mention,
    ];

    pub fn parse(name: &str) -> Option<Kind> {
        Some(match name {
            "tweet" => Kind::Tweet,
            "retweet" => Kind::Retweet,
            "quote" => Kind::Quote,
            "reply" => Kind::Reply,
            "mention" => Kind::Mention,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Tweet => "tweet",
            Kind::Retweet => "retweet",
            Kind::Quote => "quote",
            Kind::Reply => "reply",
            Kind::Mention => "mention",
        }
    }

    /// Position in per-kind arrays of engagements received (None for a tweet).
    pub fn engagement_index(self) -> Option<usize> {
        match self {
            Kind::Tweet => None,
            Kind::Retweet => Some(0),
            Kind::Quote => Some(1),
            Kind::Reply => Some(2),
            Kind::Mention => Some(3),
        }
    }

    /// The input topic the kind travels on: tweets, retweets, mentions.
    pub fn source(self) -> usize {
        match self {
            Kind::Tweet | Kind::Quote | Kind::Reply => 0,
            Kind::Retweet => 1,
            Kind::Mention => 2,
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// One v1 input event (what the model reads of it).
#[derive(Clone, Debug)]
pub struct Event {
    pub id: Id,
    pub kind: Kind,
    pub ts: i64,
    pub actor: Id,
    /// None for a tweet, whatever the input said: a tweet engages no one.
    pub target: Option<Id>,
    pub ref_tweet_id: Option<Id>,
    pub hashtags: Vec<Id>,
    pub ref_hashtags: Vec<Id>,
    pub followers: Option<i64>,
}

#[derive(Default)]
struct PlainEvent<'a> {
    id: Option<&'a str>,
    kind: Option<&'a str>,
    ts: Option<i64>,
    actor: Option<&'a str>,
    target: Option<&'a str>,
    tweet_id: Option<&'a str>,
    ref_tweet_id: Option<&'a str>,
    hashtags: Option<Vec<&'a str>>,
    ref_hashtags: Option<Vec<&'a str>>,
    followers: Option<i64>,
}

fn id_ok(value: &Option<&str>) -> bool {
    match value {
        None => true,
        Some(s) => {
            !s.is_empty() && (s.len() <= MAX_ID_LENGTH || s.chars().count() <= MAX_ID_LENGTH)
        }
    }
}

fn boxed(value: Option<&str>) -> Option<Id> {
    value.map(Id::from)
}

/// Python's `_tags` for ASCII tags: lower case, leading `#` dropped, empty ones skipped,
/// duplicates removed in order. None (decode in Python) for non-ASCII or oversize lists.
fn tags(value: Option<&[&str]>) -> Option<Vec<Id>> {
    let Some(value) = value else {
        return Some(Vec::new());
    };
    if value.len() > MAX_HASHTAGS {
        return None;
    }
    let mut out: Vec<Id> = Vec::with_capacity(value.len());
    for tag in value {
        if !tag.is_ascii() || tag.len() > MAX_ID_LENGTH {
            return None;
        }
        if tag.trim_matches('#').is_empty() {
            continue;
        }
        let clean = tag.trim_start_matches('#').to_ascii_lowercase();
        if !out.iter().any(|t| **t == *clean) {
            out.push(Id::from(clean));
        }
    }
    Some(out)
}

/// The usual event (string ids, ASCII hashtags) from its JSON bytes, or None for anything else:
/// Python's `parse_event` accepts or rejects that one, with its reason.
pub fn parse_plain_json(line: &[u8]) -> Option<Event> {
    if line.len() > MAX_EVENT_BYTES {
        return None;
    }
    let raw = scan_plain(line)?;
    let kind = Kind::parse(raw.kind?)?;
    let ts = raw.ts?;
    if !(MIN_TS_MS..=MAX_TS_MS).contains(&ts) {
        return None;
    }
    let hashtags = tags(raw.hashtags.as_deref())?;
    let ref_hashtags = tags(raw.ref_hashtags.as_deref())?;
    for value in [
        &raw.id,
        &raw.actor,
        &raw.target,
        &raw.tweet_id,
        &raw.ref_tweet_id,
    ] {
        if !id_ok(value) {
            return None;
        }
    }
    if raw.id.is_none() || raw.actor.is_none() || (raw.target.is_none() && kind != Kind::Tweet) {
        return None;
    }
    if raw.followers.is_some_and(|f| f < 0) {
        return None;
    }
    Some(Event {
        id: boxed(raw.id)?,
        kind,
        ts,
        actor: boxed(raw.actor)?,
        target: if kind == Kind::Tweet {
            None
        } else {
            boxed(raw.target)
        },
        ref_tweet_id: boxed(raw.ref_tweet_id),
        hashtags,
        ref_hashtags,
        followers: raw.followers,
    })
}

/// The line without its trailing line break characters (Python's `rstrip(b"\r\n")`).
pub fn strip_line_break(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|b| *b != b'\n' && *b != b'\r')
        .map_or(0, |i| i + 1);
    &line[..end]
}

/// `actor target unix_seconds RT|MT|RE` with id = line number, or None (Python says why).
pub fn parse_higgs(line: &[u8], number: u64) -> Option<Event> {
    let mut parts = line
        .split(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c'))
        .filter(|p| !p.is_empty());
    let (actor, target, seconds, code) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let kind = match code {
        b"RT" => Kind::Retweet,
        b"MT" => Kind::Mention,
        b"RE" => Kind::Reply,
        _ => return None,
    };
    if !seconds.iter().all(u8::is_ascii_digit) || seconds.len() > 15 {
        return None;
    }
    let seconds: i64 = std::str::from_utf8(seconds).ok()?.parse().ok()?;
    if !(MIN_TS_MS..=MAX_TS_MS).contains(&(seconds * 1000)) {
        return None;
    }
    Some(Event {
        id: compact_str::format_compact!("{number}"),
        kind,
        ts: seconds * 1000,
        actor: std::str::from_utf8(actor).ok()?.into(),
        target: Some(std::str::from_utf8(target).ok()?.into()),
        ref_tweet_id: None,
        hashtags: Vec::new(),
        ref_hashtags: Vec::new(),
        followers: None,
    })
}

/// A JSON reader for the common line only: an object of the known keys, strings without
/// escapes, integers, null, arrays of strings. It gives up (None) on anything else, which
/// Python then reads (orjson and `parse_event`, which give a bad line its reason); what it
/// accepts, they read as the same values. (serde_json was tried as a middle step and
/// accepted lines orjson rejects: arrays for objects, unchecked values of unknown keys.)
struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.space();
        if self.peek() == Some(byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// The raw bytes of a string without escapes or control characters.
    fn string_bytes(&mut self) -> Option<&'a [u8]> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.at;
        let rest = &self.bytes[start..];
        let len = rest
            .iter()
            .position(|b| *b == b'"' || *b == b'\\' || *b < 0x20)?;
        if rest[len] != b'"' {
            return None;
        }
        self.at = start + len + 1;
        Some(&rest[..len])
    }

    fn string(&mut self) -> Option<&'a str> {
        let bytes = self.string_bytes()?;
        if bytes.is_ascii() {
            // SAFETY: ASCII bytes are valid UTF-8
            Some(unsafe { std::str::from_utf8_unchecked(bytes) })
        } else {
            std::str::from_utf8(bytes).ok()
        }
    }

    fn null(&mut self) -> bool {
        self.space();
        if self.bytes[self.at..].starts_with(b"null") {
            self.at += 4;
            true
        } else {
            false
        }
    }

    fn opt_string(&mut self) -> Option<Option<&'a str>> {
        if self.null() {
            return Some(None);
        }
        self.string().map(Some)
    }

    fn integer(&mut self) -> Option<i64> {
        self.space();
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let digits = &self.bytes[self.at..];
        let count = digits.iter().take_while(|b| b.is_ascii_digit()).count();
        if count == 0 || count > 18 || (count > 1 && digits[0] == b'0') {
            return None;
        }
        self.at += count;
        if let Some(b'.' | b'e' | b'E') = self.peek() {
            return None;
        }
        let value = digits[..count]
            .iter()
            .fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
        Some(if negative { -value } else { value })
    }

    fn opt_integer(&mut self) -> Option<Option<i64>> {
        if self.null() {
            return Some(None);
        }
        self.integer().map(Some)
    }

    fn opt_strings(&mut self) -> Option<Option<Vec<&'a str>>> {
        if self.null() {
            return Some(None);
        }
        if !self.eat(b'[') {
            return None;
        }
        let mut out = Vec::new();
        if self.eat(b']') {
            return Some(Some(out));
        }
        loop {
            out.push(self.string()?);
            if self.eat(b']') {
                return Some(Some(out));
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }
}

fn scan_plain(line: &[u8]) -> Option<PlainEvent<'_>> {
    let mut s = Scanner { bytes: line, at: 0 };
    let mut raw = PlainEvent::default();
    let mut seen = 0u16;
    if !s.eat(b'{') || s.eat(b'}') {
        return None;
    }
    loop {
        let key = s.string_bytes()?;
        if !s.eat(b':') {
            return None;
        }
        let bit = match key {
            b"id" => {
                raw.id = s.opt_string()?;
                1
            }
            b"kind" => {
                raw.kind = s.opt_string()?;
                2
            }
            b"ts" => {
                raw.ts = s.opt_integer()?;
                4
            }
            b"actor" => {
                raw.actor = s.opt_string()?;
                8
            }
            b"target" => {
                raw.target = s.opt_string()?;
                16
            }
            b"tweet_id" => {
                raw.tweet_id = s.opt_string()?;
                32
            }
            b"ref_tweet_id" => {
                raw.ref_tweet_id = s.opt_string()?;
                64
            }
            b"hashtags" => {
                raw.hashtags = s.opt_strings()?;
                128
            }
            b"ref_hashtags" => {
                raw.ref_hashtags = s.opt_strings()?;
                256
            }
            b"followers" => {
                raw.followers = s.opt_integer()?;
                512
            }
            _ => return None,
        };
        if seen & bit != 0 {
            return None;
        }
        seen |= bit;
        if s.eat(b'}') {
            break;
        }
        if !s.eat(b',') {
            return None;
        }
    }
    s.space();
    (s.at == line.len()).then_some(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanner_reads_the_common_line() {
        let line = b"{\"id\":\"1\",\"kind\":\"mention\",\"ts\":1341100972000,\"actor\":\"223789\",\"target\":\"213163\"}\n";
        let raw = scan_plain(line).expect("scanned");
        assert_eq!(raw.ts, Some(1341100972000));
        assert_eq!(raw.target, Some("213163"));
    }
}
