//! Input events: the usual v1 JSON event and Higgs line read here, in one pass; anything
//! else is left to Python's full schema check (pipeline.codec), which gives the reasons.

use std::borrow::Cow;

use serde::Deserialize;

pub const MAX_ID_LENGTH: usize = 256;
pub const MAX_EVENT_BYTES: usize = 64 * 1024;
const MAX_HASHTAGS: usize = 64;
const MAX_TS_MS: i64 = 253_402_300_799_999;

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
    pub id: Box<str>,
    pub kind: Kind,
    pub ts: i64,
    pub actor: Box<str>,
    /// None for a tweet, whatever the input said: a tweet engages no one.
    pub target: Option<Box<str>>,
    pub ref_tweet_id: Option<Box<str>>,
    pub hashtags: Vec<Box<str>>,
    pub ref_hashtags: Vec<Box<str>>,
    pub followers: Option<i64>,
}

#[derive(Deserialize)]
struct PlainEvent<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    ts: Option<i64>,
    #[serde(borrow)]
    actor: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    target: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tweet_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    ref_tweet_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    hashtags: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow, default)]
    ref_hashtags: Option<Vec<Cow<'a, str>>>,
    #[serde(default)]
    followers: Option<i64>,
}

fn id_ok(value: &Option<Cow<str>>) -> bool {
    match value {
        None => true,
        Some(s) => {
            !s.is_empty() && (s.len() <= MAX_ID_LENGTH || s.chars().count() <= MAX_ID_LENGTH)
        }
    }
}

fn boxed(value: Option<Cow<str>>) -> Option<Box<str>> {
    value.map(|s| s.into_owned().into_boxed_str())
}

/// Python's `_tags` for ASCII tags: lower case, leading `#` dropped, empty ones skipped,
/// duplicates removed in order. None (decode in Python) for non-ASCII or oversize lists.
fn tags(value: Option<&[Cow<str>]>) -> Option<Vec<Box<str>>> {
    let Some(value) = value else {
        return Some(Vec::new());
    };
    if value.len() > MAX_HASHTAGS {
        return None;
    }
    let mut out: Vec<Box<str>> = Vec::with_capacity(value.len());
    for tag in value {
        if !tag.is_ascii() || tag.len() > MAX_ID_LENGTH {
            return None;
        }
        if tag.trim_matches('#').is_empty() {
            continue;
        }
        let clean = tag.trim_start_matches('#').to_ascii_lowercase();
        if !out.iter().any(|t| **t == *clean) {
            out.push(clean.into_boxed_str());
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
    let raw: PlainEvent = serde_json::from_slice(line).ok()?;
    let kind = Kind::parse(raw.kind.as_deref()?)?;
    let ts = raw.ts?;
    if !(0..=MAX_TS_MS).contains(&ts) {
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
    Some(Event {
        id: number.to_string().into_boxed_str(),
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
