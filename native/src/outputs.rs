//! The replay's output lines, written here so that they cost what the scoring costs: a
//! snapshot line per user (pipeline.replay's `snapshot_record`) and a score-change event per
//! change (pipeline.codec's `score_change_json`), with their keys in the same order and
//! their values written as orjson writes them (json_out.rs). Python keeps its own writers,
//! the specification; tests/test_native.py holds both to the same bytes.

use crate::engine::{CauseId, Emitted, Snapshot};
use crate::json_out::{float, integer, key, string};

pub const SCORE_EVENT_TYPE: &str = "influence.score.changed.v1";
/// The kinds of engagement received, in the order of `counts` and the windows' sums.
pub const KINDS_RECEIVED: [&str; 4] = ["retweet", "quote", "reply", "mention"];
pub const WINDOW_NAMES: [&str; 3] = ["1h", "24h", "7d"];

fn topics(out: &mut Vec<u8>, topics: &[(String, f64)]) {
    out.push(b'[');
    for (i, (topic, score)) in topics.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'{');
        key(out, "topic");
        string(out, topic);
        out.push(b',');
        key(out, "score");
        float(out, *score);
        out.push(b'}');
    }
    out.push(b']');
}

fn by_kind(out: &mut Vec<u8>, sums: &[i64; 4]) {
    out.push(b'{');
    for (i, (kind, n)) in KINDS_RECEIVED.iter().zip(sums).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        key(out, kind);
        integer(out, *n);
    }
    out.push(b'}');
}

/// One snapshot line (with its line break) of `user`.
pub fn snapshot_line(out: &mut Vec<u8>, user: &str, s: &Snapshot, model_version: &str) {
    out.push(b'{');
    key(out, "user");
    string(out, user);
    out.push(b',');
    key(out, "score");
    float(out, s.score);
    out.push(b',');
    key(out, "mass");
    float(out, s.mass);
    out.push(b',');
    key(out, "effective_mass");
    float(out, s.effective_mass);
    out.push(b',');
    key(out, "counts");
    by_kind(out, &s.counts);
    out.push(b',');
    key(out, "windows");
    out.push(b'{');
    for (i, (name, sums)) in WINDOW_NAMES.iter().zip(&s.windows).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        key(out, name);
        by_kind(out, sums);
    }
    out.push(b'}');
    out.push(b',');
    key(out, "topics");
    topics(out, &s.topics);
    out.push(b',');
    key(out, "model_version");
    string(out, model_version);
    out.extend_from_slice(b"}\n");
}

/// One score-change event line (with its line break); its id is
/// `<user>:<event_time>:<cause id>`, the cause id an event's id or `decay:<day>`.
pub fn score_event_line(out: &mut Vec<u8>, emitted: &Emitted, model_version: &str) {
    let change = &emitted.change;
    out.push(b'{');
    key(out, "type");
    string(out, SCORE_EVENT_TYPE);
    out.push(b',');
    key(out, "id");
    let id = match &emitted.cause {
        CauseId::Event(id) => format!("{}:{}:{}", change.user, change.event_time, id),
        CauseId::Decay(day) => format!("{}:{}:decay:{}", change.user, change.event_time, day),
    };
    string(out, &id);
    out.push(b',');
    key(out, "user");
    string(out, &change.user);
    out.push(b',');
    key(out, "score");
    float(out, change.score);
    out.push(b',');
    key(out, "previous");
    match change.previous {
        Some(previous) => float(out, previous),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b',');
    key(out, "model_version");
    string(out, model_version);
    out.push(b',');
    key(out, "event_time");
    integer(out, change.event_time);
    out.push(b',');
    key(out, "cause");
    string(out, change.cause);
    out.push(b',');
    key(out, "reasons");
    out.push(b'[');
    for (i, (code, points)) in change.reasons.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'{');
        key(out, "code");
        string(out, code);
        out.push(b',');
        key(out, "points");
        float(out, *points);
        out.push(b'}');
    }
    out.push(b']');
    out.push(b',');
    key(out, "topics");
    topics(out, &change.topics);
    out.extend_from_slice(b"}\n");
}
