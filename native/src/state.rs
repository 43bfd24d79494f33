//! Per-user state (scoring/state.py), field for field (its row for Python: bindings/rows.rs).
//!
//! Maps keep insertion order (IndexMap) because Python's dicts do: evictions, Space-Saving
//! and the stored rows depend on it.

use crate::clock::GraceClock;
use crate::history::ScoreHistory;
use crate::mass::ShareCache;
use crate::model::NO_DAY;
use crate::sketch::Bloom;

/// 4: 3 with the score history at the end (history.rs).
pub const STATE_LAYOUT: i64 = 4;
pub const ACTION_COUNTERS: usize = 5;
pub const DAY: usize = 0;
pub const DAY_COUNT: usize = 1;
pub const HOUR: usize = 2;
pub const HOUR_COUNT: usize = 3;
pub const PREVIOUS_HOUR_COUNT: usize = 4;

/// A user, event or tweet id: ids up to 24 bytes are stored inline (no allocation, and a
/// key comparison reads no other memory).
pub type Id = compact_str::CompactString;

pub type Map<V> = crate::ordered::OrderedMap<V>;

#[derive(Clone, Debug)]
pub struct DayBucket {
    pub day: i64,
    pub raw: f64,
    pub content: f64,
    pub fast: f64,
    pub slow: f64,
    pub burst: f64,
    pub new_engagers: i64,
}

impl DayBucket {
    pub fn new(day: i64) -> Self {
        DayBucket {
            day,
            raw: 0.0,
            content: 0.0,
            fast: 0.0,
            slow: 0.0,
            burst: 0.0,
            new_engagers: 0,
        }
    }
}

#[derive(Clone, Debug)]
pub struct InPair {
    pub mass: f64,
    pub first_day: i64,
    pub reciprocal: bool,
}

#[derive(Clone, Debug)]
pub struct ActingState {
    pub counters: [i64; 3 * ACTION_COUNTERS],
    pub out_pairs: Map<[f64; 3]>,
    pub recent_ids: Vec<Id>,
}

impl Default for ActingState {
    fn default() -> Self {
        let one = [NO_DAY, 0, NO_DAY, 0, 0];
        let mut counters = [0; 3 * ACTION_COUNTERS];
        for s in 0..3 {
            counters[s * ACTION_COUNTERS..(s + 1) * ACTION_COUNTERS].copy_from_slice(&one);
        }
        ActingState {
            counters,
            out_pairs: Map::default(),
            recent_ids: Vec::new(),
        }
    }
}

/// One window bucket: `[index, n_kind0..n_kind3]`.
pub type WindowBucket = [i64; 5];

#[derive(Clone, Debug)]
pub struct ReceivedState {
    pub buckets: Vec<DayBucket>,
    /// Folded days: flattened (day, raw, new_engagers).
    pub history: Vec<f64>,
    pub sealed_fast: f64,
    pub sealed_slow: f64,
    pub sealed_engagers: f64,
    pub sealed_burst: f64,
    pub sealed_burst_engagers: f64,
    pub burst_ref: i64,
    pub pair_total: f64,
    pub pair_reciprocal: f64,
    pub in_pairs: Map<InPair>,
    pub kind_mass: [f64; 4],
    pub removed: [f64; 3],
    pub counts: [i64; 4],
    pub windows: [Vec<WindowBucket>; 3],
    pub evicted: Bloom,
    /// Model 2's folded engagers, forward-decayed from the end of their hold.
    pub sealed_engager_fast: f64,
    pub sealed_engager_slow: f64,
    pub reciprocal_engagers: i64,
    pub shares: Option<Box<ShareCache>>,
    /// The user's score history (history.rs; `UserState.history` in Python). Here, not in
    /// `UserState`, which stays at 160 bytes: only a user who received engagement has a score
    /// to publish, so only a user with this part has a history.
    pub score_history: Option<Box<ScoreHistory>>,
}

impl ReceivedState {
    pub fn new(burst_ref: i64) -> Self {
        ReceivedState {
            buckets: Vec::new(),
            history: Vec::new(),
            sealed_fast: 0.0,
            sealed_slow: 0.0,
            sealed_engagers: 0.0,
            sealed_burst: 0.0,
            sealed_burst_engagers: 0.0,
            burst_ref,
            pair_total: 0.0,
            pair_reciprocal: 0.0,
            in_pairs: Map::default(),
            kind_mass: [0.0; 4],
            removed: [0.0; 3],
            counts: [0; 4],
            windows: [Vec::new(), Vec::new(), Vec::new()],
            evicted: Bloom::default(),
            sealed_engager_fast: 0.0,
            sealed_engager_slow: 0.0,
            reciprocal_engagers: 0,
            shares: None,
            score_history: None,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct TopicStats {
    pub own_tweets: i64,
    pub days: Vec<i64>,
    pub mass: f64,
    pub count: i64,
    pub engagers: Vec<Id>,
    pub tweets: Map<f64>,
    pub error: f64,
}

#[derive(Clone, Debug)]
pub struct UserState {
    pub landmark: i64,
    pub clock: GraceClock,
    pub followers: Option<i64>,
    pub followers_ts: i64,
    pub acting: Option<Box<ActingState>>,
    pub received: Option<Box<ReceivedState>>,
    pub topics: Map<TopicStats>,
    pub published: Option<f64>,
    pub last_ts: i64,
    /// The user's place in the decay watch's order (0: not watched). Not part of the model's
    /// state: the engine's bookkeeping, as `pipeline.engine` keeps it in its `DecayWatch`.
    pub watched: u64,
}

impl UserState {
    /// A fresh state whose landmark is the start of the day of `ts`.
    pub fn new(ts: i64) -> Self {
        UserState {
            landmark: ts - ts.rem_euclid(crate::model::DAY_MS),
            clock: GraceClock::default(),
            followers: None,
            followers_ts: 0,
            acting: None,
            received: None,
            topics: Map::default(),
            published: None,
            last_ts: ts,
            watched: 0,
        }
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;
    use std::mem::size_of;

    /// A Higgs replay holds 305,000 users (docs/native-core.md: ~310 MB): these structs are
    /// that memory, so growing one is a decision, not an accident. Raise a bound only with
    /// the benchmark's peak RSS in hand.
    #[test]
    fn state_stays_small() {
        assert!(
            size_of::<Id>() == 24,
            "ids of up to 24 bytes inline: {}",
            size_of::<Id>()
        );
        assert!(
            size_of::<UserState>() <= 160,
            "UserState {}",
            size_of::<UserState>()
        );
        assert!(
            size_of::<Map<InPair>>() <= 32,
            "Map {}",
            size_of::<Map<InPair>>()
        );
        assert!(size_of::<InPair>() <= 24, "InPair {}", size_of::<InPair>());
        assert!(
            size_of::<DayBucket>() <= 56,
            "DayBucket {}",
            size_of::<DayBucket>()
        );
        // the rare parts are boxed: a user who only acts, or is only engaged, pays one pointer
        assert_eq!(size_of::<Option<Box<ReceivedState>>>(), 8);
        assert_eq!(size_of::<Option<Box<ActingState>>>(), 8);
    }
}
