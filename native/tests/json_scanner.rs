//! The input readers of `event.rs`, without Python: the JSON scanner for the usual v1 line and
//! the Higgs line reader.
//!
//! The scanner's contract (event.rs): it reads the common line and gives up on anything else,
//! and what it accepts it reads as orjson and `scoring.events.parse_event` would. Two
//! properties hold that here: every well-formed event, in any key order and spacing, is read
//! back with the values it was written with (normalised tags as `_tags` normalises them); and
//! for any bytes at all (mutations of good lines, and noise), the scanner never panics and
//! accepts only valid JSON whose values an independent reader (serde_json) reads the same.
//! tests/test_native.py checks the same contract against orjson itself, through Python.

use _native::event::{parse_higgs, parse_plain_json, Event, Kind};
use proptest::prelude::*;
use serde_json::Value;

const MIN_TS_MS: i64 = 946_684_800_000;
const MAX_TS_MS: i64 = 3_471_292_799_999;
const KEYS: [&str; 10] = [
    "id",
    "kind",
    "ts",
    "actor",
    "target",
    "tweet_id",
    "ref_tweet_id",
    "hashtags",
    "ref_hashtags",
    "followers",
];

/// One event as a producer writes it: which keys, which values.
#[derive(Clone, Debug)]
struct Written {
    id: String,
    kind: Kind,
    ts: i64,
    actor: String,
    target: Option<String>,
    tweet_id: Option<String>,
    ref_tweet_id: Option<String>,
    hashtags: Option<Vec<String>>,
    ref_hashtags: Option<Vec<String>>,
    followers: Option<i64>,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop::sample::select(Kind::ALL.to_vec())
}

/// Ids as inputs carry them: letters, digits, punctuation, and some non-ASCII (no escapes:
/// an escaped string is left to Python, tested below).
fn id() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_:.@-]{1,30}|[a-z]{1,4}[äéü€😀][a-z]{0,4}"
}

fn tag() -> impl Strategy<Value = String> {
    "#{0,2}[A-Za-z0-9_]{0,12}"
}

fn written() -> impl Strategy<Value = Written> {
    (
        (
            id(),
            kind(),
            MIN_TS_MS..=MAX_TS_MS,
            id(),
            prop::option::of(id()),
        ),
        (
            prop::option::of(id()),
            prop::option::of(id()),
            prop::option::of(prop::collection::vec(tag(), 0..6)),
            prop::option::of(prop::collection::vec(tag(), 0..6)),
            prop::option::of(0i64..=1_000_000_000_000),
        ),
    )
        .prop_map(|((id, kind, ts, actor, target), rest)| {
            let (tweet_id, ref_tweet_id, hashtags, ref_hashtags, followers) = rest;
            // an engagement names its target; a tweet may or may not
            let target = match (kind, target) {
                (Kind::Tweet, t) => t,
                (_, Some(t)) => Some(t),
                (_, None) => Some("someone".to_string()),
            };
            Written {
                id,
                kind,
                ts,
                actor,
                target,
                tweet_id,
                ref_tweet_id,
                hashtags,
                ref_hashtags,
                followers,
            }
        })
}

fn quoted(s: &str) -> String {
    format!("\"{s}\"")
}

fn opt(value: &Option<String>) -> String {
    value.as_deref().map_or("null".to_string(), quoted)
}

fn tag_list(value: &Option<Vec<String>>) -> String {
    match value {
        None => "null".to_string(),
        Some(tags) => format!(
            "[{}]",
            tags.iter().map(|t| quoted(t)).collect::<Vec<_>>().join(",")
        ),
    }
}

/// The JSON line: keys in the order `order` gives, absent `None`s dropped when `drop_nulls`,
/// `gap` as the white space around every token.
fn line_of(event: &Written, order: &[usize], drop_nulls: bool, gap: &str) -> String {
    let fields: Vec<(usize, String)> = vec![
        (0, quoted(&event.id)),
        (1, quoted(event.kind.name())),
        (2, event.ts.to_string()),
        (3, quoted(&event.actor)),
        (4, opt(&event.target)),
        (5, opt(&event.tweet_id)),
        (6, opt(&event.ref_tweet_id)),
        (7, tag_list(&event.hashtags)),
        (8, tag_list(&event.ref_hashtags)),
        (9, event.followers.map_or("null".into(), |f| f.to_string())),
    ];
    let mut parts = Vec::new();
    for &i in order {
        let (key, value) = &fields[i];
        if drop_nulls && value == "null" {
            continue;
        }
        parts.push(format!("{gap}\"{}\"{gap}:{gap}{value}{gap}", KEYS[*key]));
    }
    format!("{gap}{{{}}}{gap}", parts.join(","))
}

/// Python's `_tags`: lower case, leading `#` dropped, tags of only `#` skipped, first
/// occurrence kept.
fn python_tags(value: &Option<Vec<String>>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for tag in value.iter().flatten() {
        if tag.trim_matches('#').is_empty() {
            continue;
        }
        let clean = tag.to_lowercase().trim_start_matches('#').to_string();
        if !out.contains(&clean) {
            out.push(clean);
        }
    }
    out
}

fn strs(ids: &[compact_str::CompactString]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn assert_reads_as(event: &Event, written: &Written) {
    assert_eq!(event.id, written.id);
    assert_eq!(event.kind, written.kind);
    assert_eq!(event.ts, written.ts);
    assert_eq!(event.actor, written.actor);
    let target = if written.kind == Kind::Tweet {
        None
    } else {
        written.target.as_deref()
    };
    assert_eq!(event.target.as_deref(), target);
    assert_eq!(
        event.ref_tweet_id.as_deref(),
        written.ref_tweet_id.as_deref()
    );
    assert_eq!(strs(&event.hashtags), python_tags(&written.hashtags));
    assert_eq!(
        strs(&event.ref_hashtags),
        python_tags(&written.ref_hashtags)
    );
    assert_eq!(event.followers, written.followers);
}

/// What serde_json reads of `line`, if `parse_plain_json` accepted it: the same values.
fn assert_agrees_with_serde(line: &[u8], event: &Event) {
    let value: Value = serde_json::from_slice(line).unwrap_or_else(|e| {
        panic!(
            "accepted invalid JSON {:?}: {e}",
            String::from_utf8_lossy(line)
        )
    });
    let obj = value.as_object().expect("accepted a non-object");
    for key in obj.keys() {
        assert!(KEYS.contains(&key.as_str()), "accepted unknown key {key}");
    }
    let text = |key: &str| obj.get(key).and_then(Value::as_str);
    let number = |key: &str| obj.get(key).and_then(Value::as_f64);
    assert_eq!(text("id"), Some(&*event.id));
    assert_eq!(text("kind"), Some(event.kind.name()));
    assert_eq!(number("ts"), Some(event.ts as f64));
    assert_eq!(text("actor"), Some(&*event.actor));
    if event.kind != Kind::Tweet {
        assert_eq!(text("target"), event.target.as_deref());
    }
    assert_eq!(text("ref_tweet_id"), event.ref_tweet_id.as_deref());
    assert_eq!(number("followers"), event.followers.map(|f| f as f64));
    let tags = |key: &str| -> Option<Vec<String>> {
        obj.get(key).and_then(Value::as_array).map(|tags| {
            tags.iter()
                .map(|t| t.as_str().expect("accepted a non-string tag").to_string())
                .collect()
        })
    };
    assert_eq!(strs(&event.hashtags), python_tags(&tags("hashtags")));
    assert_eq!(
        strs(&event.ref_hashtags),
        python_tags(&tags("ref_hashtags"))
    );
}

/// A good line with one byte replaced, inserted or removed, or cut short.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let bytes = prop::sample::select(
        b" \t\r\n\"\\{}[],:-+.0123456789eEanulltrux#\x00\x7f\xc3\xa9\xff".to_vec(),
    );
    (
        written(),
        any::<prop::sample::Index>(),
        0u8..4,
        bytes,
        prop::collection::vec(0usize..10, 10),
    )
        .prop_map(|(event, at, how, byte, order)| {
            let mut order: Vec<usize> = order;
            order.dedup();
            let mut line = line_of(&event, &order, false, "").into_bytes();
            let i = at.index(line.len());
            match how {
                0 => line[i] = byte,
                1 => line.insert(i, byte),
                2 => {
                    line.remove(i);
                }
                _ => line.truncate(i),
            }
            line
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn reads_every_written_event_back(
        event in written(),
        order in Just((0..10).collect::<Vec<usize>>()).prop_shuffle(),
        drop_nulls in any::<bool>(),
        gap in prop::sample::select(vec!["", " ", "\t", " \r\n "]),
    ) {
        let line = line_of(&event, &order, drop_nulls, gap);
        let read = parse_plain_json(line.as_bytes());
        let read = read.unwrap_or_else(|| panic!("left a good line to Python: {line}"));
        assert_reads_as(&read, &event);
        assert_agrees_with_serde(line.as_bytes(), &read);
    }

    #[test]
    fn accepts_only_what_serde_reads_the_same(line in mutated()) {
        if let Some(event) = parse_plain_json(&line) {
            assert_agrees_with_serde(&line, &event);
        }
    }

    #[test]
    fn never_panics_on_noise(line in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Some(event) = parse_plain_json(&line) {
            assert_agrees_with_serde(&line, &event);
        }
    }

    #[test]
    fn reads_higgs_lines(
        actor in "[0-9]{1,9}",
        target in "[0-9]{1,9}",
        seconds in (MIN_TS_MS / 1000 + 1)..(MAX_TS_MS / 1000),
        code in prop::sample::select(vec![("RT", Kind::Retweet), ("MT", Kind::Mention), ("RE", Kind::Reply)]),
        gap in prop::sample::select(vec![" ", "\t", "  ", " \t "]),
        number in 1u64..10_000_000,
    ) {
        let line = format!("{actor}{gap}{target}{gap}{seconds}{gap}{}\n", code.0);
        let event = parse_higgs(line.as_bytes(), number).expect("a good Higgs line");
        prop_assert_eq!(event.id.as_str(), number.to_string());
        prop_assert_eq!(event.kind, code.1);
        prop_assert_eq!(event.ts, seconds * 1000);
        prop_assert_eq!(event.actor.as_str(), actor.as_str());
        prop_assert_eq!(event.target.as_deref(), Some(target.as_str()));
    }

    #[test]
    fn higgs_reader_never_panics(line in prop::collection::vec(any::<u8>(), 0..80)) {
        let _ = parse_higgs(&line, 1);
    }
}

#[test]
fn leaves_other_shapes_to_python() {
    let good = br#"{"id":"1","kind":"mention","ts":1341100972000,"actor":"a","target":"b"}"#;
    assert!(parse_plain_json(good).is_some());
    for line in [
        // escapes, duplicate keys, unknown keys, floats, out-of-window times, wrong types
        &br#"{"id":"\u0031","kind":"mention","ts":1341100972000,"actor":"a","target":"b"}"#[..],
        br#"{"id":"1","id":"2","kind":"mention","ts":1341100972000,"actor":"a","target":"b"}"#,
        br#"{"id":"1","kind":"mention","ts":1341100972000,"actor":"a","target":"b","x":1}"#,
        br#"{"id":"1","kind":"mention","ts":1341100972000.0,"actor":"a","target":"b"}"#,
        br#"{"id":"1","kind":"mention","ts":1,"actor":"a","target":"b"}"#,
        br#"{"id":1,"kind":"mention","ts":1341100972000,"actor":"a","target":"b"}"#,
        br#"{"id":"1","kind":"mention","ts":1341100972000,"actor":"a"}"#,
        br#"{"id":"1","kind":"like","ts":1341100972000,"actor":"a","target":"b"}"#,
        br#"{"id":"","kind":"mention","ts":1341100972000,"actor":"a","target":"b"}"#,
        r#"{"id":"1","kind":"tweet","ts":1341100972000,"actor":"a","hashtags":["Zürich"]}"#
            .as_bytes(),
        br#"{"id":"1","kind":"tweet","ts":1341100972000,"actor":"a","followers":-1}"#,
        br#"["id","1"]"#,
        b"{}",
        b"",
    ] {
        assert!(
            parse_plain_json(line).is_none(),
            "{}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn reads_a_tweet_without_its_target() {
    let line = br###"{"id":"t","kind":"tweet","ts":1341100972000,"actor":"a","target":"b","hashtags":["#Higgs","higgs","##"]}"###;
    let event = parse_plain_json(line).expect("scanned");
    assert_eq!(event.target, None);
    assert_eq!(strs(&event.hashtags), vec!["higgs"]);
}
