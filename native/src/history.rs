//! A user's score history (scoring/history.py): daily closing scores and the latest changes,
//! kept in hundredths of a point and minutes since the user's landmark. Narrower integers
//! than Python's: a score in hundredths is at most 10,000, and 2^31 minutes are 4,000 years.

use crate::json_out::{float, integer, string, Object};
use crate::model::{floor_div, DAY_MS};

pub const HISTORY_DAYS: usize = 90;
pub const HISTORY_CHANGES: usize = 20;
/// `ScoreChange.cause` values, stored by index (scoring/history.py's `CAUSES`).
pub const CAUSES: [&str; 5] = ["engagement", "reciprocity", "topics", "audience", "decay"];
const CENTS: f64 = 100.0;
const MINUTE_MS: i64 = 60_000;
/// scoring.history.PACK_ALPHABET: 32 digits that end a number, 32 that say more follow.
const PACK_ALPHABET: &[u8; 64] =
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_";
const PACK_BITS: u32 = 5;
const PACK_LAST: u64 = 1 << PACK_BITS;

/// One published change.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Change {
    pub minute: i32,
    pub score: u16,
    pub cause: u8,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ScoreHistory {
    /// The newest day with a close: `closes`' last is that day's.
    pub day: i64,
    /// Closing scores in hundredths, one per consecutive day, oldest first.
    pub closes: Vec<u16>,
    /// The score before the oldest kept change (None: that change was the first ever).
    pub previous: Option<u16>,
    /// The latest changes, oldest first.
    pub changes: Vec<Change>,
}

/// A published score (1..100, two decimals) in hundredths, exactly.
pub fn cents(score: f64) -> u16 {
    (score * CENTS).round() as u16
}

/// Records a change to `score` at event time `now` (scoring.history.record_change).
pub fn record_change(
    history: &mut Option<Box<ScoreHistory>>,
    landmark: i64,
    now: i64,
    score: f64,
    previous: Option<f64>,
    cause: &str,
) {
    let value = cents(score);
    let day = floor_div(now, DAY_MS);
    let h = history.get_or_insert_with(|| {
        Box::new(ScoreHistory {
            day,
            closes: Vec::new(),
            previous: previous.map(cents),
            changes: Vec::new(),
        })
    });
    if h.closes.is_empty() {
        h.closes.push(value);
    } else if day > h.day {
        let last = *h.closes.last().expect("a history has a close");
        let gap = ((day - h.day - 1) as usize).min(HISTORY_DAYS);
        h.closes.extend(std::iter::repeat_n(last, gap));
        h.closes.push(value);
        let extra = h.closes.len().saturating_sub(HISTORY_DAYS);
        h.closes.drain(..extra);
        h.day = day;
    } else {
        *h.closes.last_mut().expect("a history has a close") = value;
    }
    let index = CAUSES
        .iter()
        .position(|c| *c == cause)
        .expect("a known cause") as u8;
    h.changes.push(Change {
        minute: floor_div(now - landmark, MINUTE_MS).max(0) as i32,
        score: value,
        cause: index,
    });
    if h.changes.len() > HISTORY_CHANGES {
        h.previous = Some(h.changes[0].score);
        h.changes.remove(0);
    }
}

/// Appends `values` to `out` as scoring.history.pack writes them.
fn pack(out: &mut String, values: impl IntoIterator<Item = i64>) {
    for n in values {
        let mut z = if n >= 0 {
            (n as u64) * 2
        } else {
            n.unsigned_abs() * 2 - 1
        };
        while z >= PACK_LAST {
            out.push(PACK_ALPHABET[(PACK_LAST + z % PACK_LAST) as usize] as char);
            z /= PACK_LAST;
        }
        out.push(PACK_ALPHABET[z as usize] as char);
    }
}

/// The stored row's parts (scoring.history.history_to_row): day, the closes as packed
/// differences from the day before, previous, and the changes' (minute, score, cause) with
/// minute and score as packed differences from the change before.
pub fn row_parts(h: &ScoreHistory) -> (i64, String, Option<i64>, String) {
    let mut closes = String::new();
    let mut before = 0;
    pack(
        &mut closes,
        h.closes.iter().map(|c| {
            let d = i64::from(*c) - before;
            before = i64::from(*c);
            d
        }),
    );
    let mut changes = String::new();
    let (mut minute, mut score) = (0, 0);
    for c in &h.changes {
        let (m, s) = (i64::from(c.minute), i64::from(c.score));
        pack(&mut changes, [m - minute, s - score, i64::from(c.cause)]);
        (minute, score) = (m, s);
    }
    (h.day, closes, h.previous.map(i64::from), changes)
}

/// `scoring.history.unpack`: None on a character `pack` never writes or a cut-off number.
fn unpack(text: &str) -> Option<Vec<i64>> {
    let mut out = Vec::new();
    let (mut z, mut shift) = (0u64, 0u32);
    for c in text.bytes() {
        let digit = PACK_ALPHABET.iter().position(|d| *d == c)? as u64;
        z = z.checked_add((digit % PACK_LAST).checked_shl(shift)?)?;
        shift += PACK_BITS;
        if digit < PACK_LAST {
            out.push(if z % 2 == 0 {
                (z / 2) as i64
            } else {
                -(z.div_ceil(2) as i64)
            });
            (z, shift) = (0, 0);
        }
    }
    (shift == 0).then_some(out)
}

/// The inverse of `row_parts` (scoring.history.history_from_row); None where Python raises.
pub fn from_row_parts(
    day: i64,
    closes: &str,
    previous: Option<i64>,
    changes: &str,
) -> Option<ScoreHistory> {
    let (deltas, packed) = (unpack(closes)?, unpack(changes)?);
    if packed.len() % 3 != 0 || deltas.is_empty() {
        return None;
    }
    let mut before = 0i64;
    let mut kept = Vec::with_capacity(deltas.len());
    for d in deltas {
        before += d;
        kept.push(u16::try_from(before).ok()?);
    }
    let (mut minute, mut score) = (0i64, 0i64);
    let mut out = Vec::with_capacity(packed.len() / 3);
    for c in packed.chunks(3) {
        (minute, score) = (minute + c[0], score + c[1]);
        out.push(Change {
            minute: i32::try_from(minute).ok()?,
            score: u16::try_from(score).ok()?,
            cause: u8::try_from(c[2])
                .ok()
                .filter(|i| usize::from(*i) < CAUSES.len())?,
        });
    }
    Some(ScoreHistory {
        day,
        closes: kept,
        previous: previous.map(u16::try_from).transpose().ok()?,
        changes: out,
    })
}

/// The history as scoring.history.history_body gives it, written as orjson writes it.
pub fn history_json(out: &mut Vec<u8>, history: Option<&ScoreHistory>, landmark: i64) {
    let mut o = Object::open(out);
    let mut daily = Object::open(o.field("daily"));
    match history {
        None => daily.field("start").extend_from_slice(b"null"),
        Some(h) => integer(
            daily.field("start"),
            (h.day - h.closes.len() as i64 + 1) * DAY_MS,
        ),
    }
    let scores = daily.field("scores");
    scores.push(b'[');
    for (i, c) in history
        .map_or(&[][..], |h| &h.closes[..])
        .iter()
        .enumerate()
    {
        if i > 0 {
            scores.push(b',');
        }
        float(scores, f64::from(*c) / CENTS);
    }
    scores.push(b']');
    daily.close();
    let changes = o.field("changes");
    changes.push(b'[');
    if let Some(h) = history {
        let mut before = h.previous.map(|p| f64::from(p) / CENTS);
        for (i, c) in h.changes.iter().enumerate() {
            if i > 0 {
                changes.push(b',');
            }
            let score = f64::from(c.score) / CENTS;
            let mut change = Object::open(changes);
            let at = landmark + i64::from(c.minute) * MINUTE_MS;
            integer(change.field("event_time"), at);
            float(change.field("score"), score);
            match before {
                Some(b) => float(change.field("previous"), b),
                None => change.field("previous").extend_from_slice(b"null"),
            }
            string(change.field("cause"), CAUSES[usize::from(c.cause)]);
            change.close();
            before = Some(score);
        }
    }
    changes.push(b']');
    o.close();
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_735_689_600_000; // 2025-01-01, a day start

    #[test]
    fn days_without_a_change_close_where_the_day_before_did() {
        let mut h = None;
        record_change(&mut h, T0, T0 + 65_000, 10.5, None, "engagement");
        record_change(&mut h, T0, T0 + 2 * DAY_MS + 1, 12.0, Some(10.5), "decay");
        let h = h.expect("recorded");
        assert_eq!(h.closes, vec![1050, 1050, 1200]);
        assert_eq!(h.changes[1].minute, 2 * 24 * 60);
        // what scoring.history.pack writes for [1050, 0, 150] and [1, 1050, 0, 2879, 150, 4]
        let (_, closes, _, changes) = row_parts(&h);
        assert_eq!(closes, "Qx20I9");
        assert_eq!(changes, "2Qx20-P5I98");
    }

    #[test]
    fn only_the_latest_are_kept() {
        let mut h = None;
        for i in 0..200 {
            let score = 1.0 + i as f64;
            record_change(
                &mut h,
                T0,
                T0 + i * DAY_MS,
                score,
                Some(score - 1.0),
                "topics",
            );
        }
        let h = h.expect("recorded");
        assert_eq!(h.closes.len(), HISTORY_DAYS);
        assert_eq!(h.changes.len(), HISTORY_CHANGES);
        assert_eq!(h.previous, Some(cents(180.0)));
    }

    #[test]
    fn written_as_python_writes_it() {
        let mut h = None;
        record_change(&mut h, T0, T0 + 65_000, 10.5, None, "engagement");
        let mut out = Vec::new();
        history_json(&mut out, h.as_deref(), T0);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            concat!(
                r#"{"daily":{"start":1735689600000,"scores":[10.5]},"changes":"#,
                r#"[{"event_time":1735689660000,"score":10.5,"previous":null,"#,
                r#""cause":"engagement"}]}"#
            )
        );
        let mut empty = Vec::new();
        history_json(&mut empty, None, T0);
        assert_eq!(
            String::from_utf8(empty).unwrap(),
            r#"{"daily":{"start":null,"scores":[]},"changes":[]}"#
        );
    }
}
