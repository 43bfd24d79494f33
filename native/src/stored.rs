//! A worker's stored user (pipeline/steps.py's `Stored`): the state plus the last applied
//! offset per source partition, written as the bytes `encode_stored` writes.
//!
//! The Kafka workers keep their users in a changelog-backed table, one row per user; a worker
//! on the compiled core must write the very bytes the Python core writes (a row written by one
//! core is read by the other after a failover or a rollback, and the changelog's bytes are
//! part of the parity tests). So this is `orjson.dumps([STORED_LAYOUT, positions,
//! state_to_row(state)])` field for field, with `scoring.state._short`'s 7 significant digits
//! where Python shortens, and `json_out` writing floats and strings as orjson does. Reading a
//! row back is the bindings' job (`bindings/rows_in.rs`): orjson parses, the row is converted.

use crate::history::row_parts;
use crate::json_out::{float, integer, string};
use crate::ordered::OrderedMap;
use crate::state::{Id, ReceivedState, TopicStats, UserState, STATE_LAYOUT};

/// pipeline.steps.STORED_LAYOUT.
pub const STORED_LAYOUT: i64 = 1;

/// A user as a worker stores it.
pub struct Stored {
    pub state: UserState,
    /// Guard key (`Position.key`) → last applied offset, in insertion order (Python's dict).
    pub positions: Vec<(Id, i64)>,
}

impl Stored {
    pub fn new(state: UserState) -> Self {
        Stored {
            state,
            positions: Vec::new(),
        }
    }

    /// `Stored.seen`: an offset at or before the last applied one from this source.
    pub fn seen(&self, key: &str, offset: i64) -> bool {
        self.positions
            .iter()
            .find(|(k, _)| k == key)
            .is_some_and(|(_, last)| *last >= offset)
    }

    pub fn set_position(&mut self, key: &str, offset: i64) {
        match self.positions.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = offset,
            None => self.positions.push((key.into(), offset)),
        }
    }
}

/// `scoring.state._short`: `float(f"{x:.7g}")`. Rust's exact formatting rounds the binary
/// value half to even, as CPython's does, so both cores store the same float.
pub fn short(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    format!("{x:.6e}")
        .parse()
        .expect("a formatted float parses")
}

fn floats(out: &mut Vec<u8>, values: &[f64], shorten: bool) {
    out.push(b'[');
    for (i, x) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        float(out, if shorten { short(*x) } else { *x });
    }
    out.push(b']');
}

fn integers(out: &mut Vec<u8>, values: &[i64]) {
    out.push(b'[');
    for (i, n) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        integer(out, *n);
    }
    out.push(b']');
}

fn strings(out: &mut Vec<u8>, values: &[Id]) {
    out.push(b'[');
    for (i, s) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, s);
    }
    out.push(b']');
}

/// `{key: value, ...}` in the map's order, each value written by `value`.
fn object<V>(out: &mut Vec<u8>, map: &OrderedMap<V>, value: impl Fn(&mut Vec<u8>, &V)) {
    out.push(b'{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, k);
        out.push(b':');
        value(out, v);
    }
    out.push(b'}');
}

fn optional_integer(out: &mut Vec<u8>, n: Option<i64>) {
    match n {
        Some(n) => integer(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

/// Appends `stored` as `pipeline.steps.encode_stored` writes it.
pub fn write_stored(out: &mut Vec<u8>, stored: &Stored) {
    out.push(b'[');
    integer(out, STORED_LAYOUT);
    out.extend_from_slice(b",{");
    for (i, (key, offset)) in stored.positions.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, key);
        out.push(b':');
        integer(out, *offset);
    }
    out.extend_from_slice(b"},");
    write_state(out, &stored.state);
    out.push(b']');
}

/// Appends `state` as `orjson.dumps(scoring.state.state_to_row(state))` writes it.
pub fn write_state(out: &mut Vec<u8>, state: &UserState) {
    out.push(b'[');
    integer(out, STATE_LAYOUT);
    out.push(b',');
    integer(out, state.landmark);
    out.extend_from_slice(b",[");
    let clock = &state.clock;
    integers(out, &clock.runs);
    for n in [clock.folded_paused, clock.period_start, clock.budget] {
        out.push(b',');
        integer(out, n);
    }
    out.extend_from_slice(b"],");
    optional_integer(out, state.followers);
    out.push(b',');
    integer(out, state.followers_ts);
    out.push(b',');
    match state.acting.as_deref() {
        None => out.extend_from_slice(b"null"),
        Some(a) => {
            out.push(b'[');
            integers(out, &a.counters);
            out.push(b',');
            object(out, &a.out_pairs, |out, v| floats(out, v, true));
            out.push(b',');
            strings(out, &a.recent_ids);
            out.push(b']');
        }
    }
    out.push(b',');
    match state.received.as_deref() {
        None => out.extend_from_slice(b"null"),
        Some(r) => write_received(out, r),
    }
    out.push(b',');
    object(out, &state.topics, write_topic);
    out.push(b',');
    match state.published {
        Some(p) => float(out, p),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b',');
    integer(out, state.last_ts);
    out.push(b',');
    match state
        .received
        .as_deref()
        .and_then(|r| r.score_history.as_deref())
    {
        None => out.extend_from_slice(b"null"),
        Some(h) => {
            let (day, closes, previous, changes) = row_parts(h);
            out.push(b'[');
            integer(out, day);
            out.push(b',');
            string(out, &closes);
            out.push(b',');
            optional_integer(out, previous);
            out.push(b',');
            string(out, &changes);
            out.push(b']');
        }
    }
    out.push(b',');
    match state.received.as_deref() {
        None => out.extend_from_slice(b"null"),
        Some(r) => {
            out.push(b'[');
            float(out, r.sealed_engager_fast);
            out.push(b',');
            float(out, r.sealed_engager_slow);
            out.push(b',');
            integer(out, r.reciprocal_engagers);
            out.push(b']');
        }
    }
    out.push(b']');
}

fn write_received(out: &mut Vec<u8>, r: &ReceivedState) {
    out.extend_from_slice(b"[[");
    for (i, b) in r.buckets.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        integer(out, b.day);
        for x in [b.raw, b.content, b.fast, b.slow, b.burst] {
            out.push(b',');
            float(out, x);
        }
        out.push(b',');
        integer(out, b.new_engagers);
        out.push(b']');
    }
    out.extend_from_slice(b"],");
    floats(out, &r.history, true);
    for x in [
        r.sealed_fast,
        r.sealed_slow,
        r.sealed_engagers,
        r.sealed_burst,
        r.sealed_burst_engagers,
    ] {
        out.push(b',');
        float(out, x);
    }
    out.push(b',');
    integer(out, r.burst_ref);
    out.push(b',');
    float(out, r.pair_total);
    out.push(b',');
    float(out, r.pair_reciprocal);
    out.push(b',');
    object(out, &r.in_pairs, |out, p| {
        out.push(b'[');
        float(out, short(p.mass));
        out.push(b',');
        integer(out, p.first_day);
        out.push(b',');
        integer(out, i64::from(p.reciprocal));
        out.push(b']');
    });
    out.push(b',');
    floats(out, &r.kind_mass, false);
    out.push(b',');
    floats(out, &r.removed, false);
    out.push(b',');
    integers(out, &r.counts);
    out.extend_from_slice(b",[");
    for (i, window) in r.windows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        for (j, bucket) in window.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            integers(out, bucket);
        }
        out.push(b']');
    }
    out.extend_from_slice(b"],");
    string(out, &r.evicted.hex());
    out.push(b']');
}

fn write_topic(out: &mut Vec<u8>, t: &TopicStats) {
    out.push(b'[');
    integer(out, t.own_tweets);
    out.push(b',');
    integers(out, &t.days);
    out.push(b',');
    float(out, short(t.mass));
    out.push(b',');
    integer(out, t.count);
    out.push(b',');
    strings(out, &t.engagers);
    out.push(b',');
    object(out, &t.tweets, |out, v| float(out, short(*v)));
    out.push(b',');
    float(out, short(t.error));
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_keeps_seven_digits_ties_to_even() {
        assert_eq!(short(1234567.5), 1234568.0);
        assert_eq!(short(1234568.5), 1234568.0);
        assert_eq!(short(123456.75), 123456.8);
        assert_eq!(short(0.1 + 0.2), 0.3);
    }

    #[test]
    fn a_new_user_is_written_as_python_writes_it() {
        let mut stored = Stored::new(UserState::new(86_400_000 + 5));
        stored.set_position("a0:1", 7);
        let mut out = Vec::new();
        write_stored(&mut out, &stored);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"[1,{"a0:1":7},[4,86400000,[[],0,-2147483648,0],null,0,null,null,{},null,86400005,null,null]]"#
        );
    }
}
