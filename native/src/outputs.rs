//! The replay's output lines, written here so that they cost what the scoring costs: a
//! snapshot line per user (pipeline.replay's `snapshot_record`) and a score-change event per
//! change (pipeline.codec's `score_change_json`), with their keys in the same order and
//! their values written as orjson writes them (json_out.rs). Python keeps its own writers,
//! the specification; tests/test_native.py holds both to the same bytes.

use crate::engine::{CauseId, Emitted, Snapshot};
use crate::history::history_json;
use crate::json_out::{array, float, integer, string, Object};
use crate::quality::AudienceQuality;

pub const SCORE_EVENT_TYPE: &str = "influence.score.changed.v1";
/// The kinds of engagement received, in the order of `counts` and the windows' sums.
pub const KINDS_RECEIVED: [&str; 4] = ["retweet", "quote", "reply", "mention"];
pub const WINDOW_NAMES: [&str; 3] = ["1h", "24h", "7d"];

fn topics(out: &mut Vec<u8>, topics: &[(String, f64)]) {
    array(out, topics, |out, (topic, score)| {
        let mut o = Object::open(out);
        string(o.field("topic"), topic);
        float(o.field("score"), *score);
        o.close();
    });
}

fn by_kind(out: &mut Vec<u8>, sums: &[i64; 4]) {
    let mut o = Object::open(out);
    for (kind, n) in KINDS_RECEIVED.iter().zip(sums) {
        integer(o.field(kind), *n);
    }
    o.close();
}

/// `"audience_quality":{..},"confidence":..` as both lines write them.
fn evidence(o: &mut Object, quality: &AudienceQuality, confidence: f64) {
    let mut q = Object::open(o.field("audience_quality"));
    float(q.field("score"), quality.0);
    array(q.field("reasons"), &quality.1, |out, (rule, share)| {
        let mut reason = Object::open(out);
        string(reason.field("rule"), rule);
        float(reason.field("share"), *share);
        reason.close();
    });
    q.close();
    float(o.field("confidence"), confidence);
}

/// One snapshot line (with its line break) of `user`.
pub fn snapshot_line(out: &mut Vec<u8>, user: &str, s: &Snapshot, model_version: &str) {
    let mut o = Object::open(out);
    string(o.field("user"), user);
    float(o.field("score"), s.score);
    float(o.field("mass"), s.mass);
    float(o.field("effective_mass"), s.effective_mass);
    by_kind(o.field("counts"), &s.counts);
    let mut windows = Object::open(o.field("windows"));
    for (name, sums) in WINDOW_NAMES.iter().zip(&s.windows) {
        by_kind(windows.field(name), sums);
    }
    windows.close();
    topics(o.field("topics"), &s.topics);
    string(o.field("model_version"), model_version);
    evidence(&mut o, &s.quality, s.confidence);
    history_json(o.field("history"), s.history.as_ref(), s.landmark);
    o.close();
    out.push(b'\n');
}

/// One score-change event line (with its line break); its id is
/// `<user>:<event_time>:<cause id>`, the cause id an event's id or `decay:<day>`.
pub fn score_event_line(out: &mut Vec<u8>, emitted: &Emitted, model_version: &str) {
    let change = &emitted.change;
    let id = match &emitted.cause {
        CauseId::Event(id) => format!("{}:{}:{}", change.user, change.event_time, id),
        CauseId::Decay(day) => format!("{}:{}:decay:{}", change.user, change.event_time, day),
    };
    let mut o = Object::open(out);
    string(o.field("type"), SCORE_EVENT_TYPE);
    string(o.field("id"), &id);
    string(o.field("user"), &change.user);
    float(o.field("score"), change.score);
    match change.previous {
        Some(previous) => float(o.field("previous"), previous),
        None => o.field("previous").extend_from_slice(b"null"),
    }
    string(o.field("model_version"), model_version);
    integer(o.field("event_time"), change.event_time);
    string(o.field("cause"), change.cause);
    array(
        o.field("reasons"),
        &change.reasons,
        |out, (code, points)| {
            let mut reason = Object::open(out);
            string(reason.field("code"), code);
            float(reason.field("points"), *points);
            reason.close();
        },
    );
    topics(o.field("topics"), &change.topics);
    evidence(&mut o, &change.quality, change.confidence);
    o.close();
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::ScoreChange;

    // The expected lines are what pipeline.replay's `_snapshot_fields` and pipeline.codec's
    // `score_change_json` give for the same values (printed by Python, orjson 3.13).

    #[test]
    fn snapshot_line_as_python_writes_it() {
        let snapshot = Snapshot {
            score: 12.34,
            mass: 0.5,
            effective_mass: 1e-7,
            counts: [1, 0, 12, 3],
            windows: [[0, 0, 1, 0], [1, 0, 2, 0], [1, 0, 12, 3]],
            topics: vec![("higgs".to_string(), 55.5)],
            received: true,
            landmark: 0,
            history: None,
            quality: (87.5, vec![("pair_cap", 0.125)]),
            confidence: 0.0417,
        };
        let mut out = Vec::new();
        snapshot_line(&mut out, "u\"1", &snapshot, "1.0.0+abc");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            concat!(
                r#"{"user":"u\"1","score":12.34,"mass":0.5,"effective_mass":1e-7,"#,
                r#""counts":{"retweet":1,"quote":0,"reply":12,"mention":3},"#,
                r#""windows":{"1h":{"retweet":0,"quote":0,"reply":1,"mention":0},"#,
                r#""24h":{"retweet":1,"quote":0,"reply":2,"mention":0},"#,
                r#""7d":{"retweet":1,"quote":0,"reply":12,"mention":3}},"#,
                r#""topics":[{"topic":"higgs","score":55.5}],"model_version":"1.0.0+abc","#,
                r#""audience_quality":{"score":87.5,"reasons":[{"rule":"pair_cap","share":0.125}]},"#,
                r#""confidence":0.0417,"#,
                r#""history":{"daily":{"start":null,"scores":[]},"changes":[]}}"#,
                "\n"
            )
        );
    }

    #[test]
    fn score_events_as_python_writes_them() {
        let engagement = Emitted {
            change: ScoreChange {
                user: "u1".into(),
                score: 1.34,
                previous: None,
                event_time: 1735689791733,
                cause: "engagement",
                reasons: vec![("new_account", -6.66), ("mentions", 0.34)],
                topics: vec![],
                quality: (33.33, vec![("new_account", 0.6667)]),
                confidence: 0.0417,
            },
            cause: CauseId::Event("e000000006".into()),
        };
        let decay = Emitted {
            change: ScoreChange {
                user: "u2".into(),
                score: 40.0,
                previous: Some(41.5),
                event_time: 1735776000000,
                cause: "decay",
                reasons: vec![],
                topics: vec![("higgs".to_string(), 12.0)],
                quality: (100.0, vec![]),
                confidence: 0.5,
            },
            cause: CauseId::Decay(20090),
        };
        let mut out = Vec::new();
        score_event_line(&mut out, &engagement, "1.0.0+abc");
        score_event_line(&mut out, &decay, "1.0.0+abc");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            concat!(
                r#"{"type":"influence.score.changed.v1","id":"u1:1735689791733:e000000006","#,
                r#""user":"u1","score":1.34,"previous":null,"model_version":"1.0.0+abc","#,
                r#""event_time":1735689791733,"cause":"engagement","reasons":"#,
                r#"[{"code":"new_account","points":-6.66},{"code":"mentions","points":0.34}],"#,
                r#""topics":[],"audience_quality":{"score":33.33,"#,
                r#""reasons":[{"rule":"new_account","share":0.6667}]},"confidence":0.0417}"#,
                "\n",
                r#"{"type":"influence.score.changed.v1","id":"u2:1735776000000:decay:20090","#,
                r#""user":"u2","score":40.0,"previous":41.5,"model_version":"1.0.0+abc","#,
                r#""event_time":1735776000000,"cause":"decay","reasons":[],"#,
                r#""topics":[{"topic":"higgs","score":12.0}],"#,
                r#""audience_quality":{"score":100.0,"reasons":[]},"confidence":0.5}"#,
                "\n"
            )
        );
    }
}
