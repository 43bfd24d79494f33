//! Per-user state (scoring/state.py), field for field, and its row for Python.
//!
//! Maps keep insertion order (IndexMap) because Python's dicts do: evictions, Space-Saving
//! and the stored rows depend on it.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use pyo3::IntoPyObjectExt;

use crate::clock::GraceClock;
use crate::mass::ShareCache;
use crate::model::NO_DAY;
use crate::sketch::Bloom;

pub const STATE_LAYOUT: i64 = 3;
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
    pub shares: Option<Box<ShareCache>>,
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
            shares: None,
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

    /// The row `scoring.state.state_from_row` reads, at full precision (the Python engine's
    /// in-memory state, not the shortened stored form).
    pub fn to_row<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let clock = &self.clock;
        let clock_row = PyList::new(
            py,
            [
                clock.runs.clone().into_bound_py_any(py)?,
                clock.folded_paused.into_bound_py_any(py)?,
                clock.period_start.into_bound_py_any(py)?,
                clock.budget.into_bound_py_any(py)?,
            ],
        )?;
        let acting = match &self.acting {
            None => py.None().into_bound(py),
            Some(a) => {
                let pairs = PyDict::new(py);
                for (k, v) in &a.out_pairs {
                    pairs.set_item(&**k, v.to_vec())?;
                }
                let ids: Vec<&str> = a.recent_ids.iter().map(|s| &**s).collect();
                PyList::new(
                    py,
                    [
                        a.counters.to_vec().into_bound_py_any(py)?,
                        pairs.into_any(),
                        ids.into_bound_py_any(py)?,
                    ],
                )?
                .into_any()
            }
        };
        let received = match &self.received {
            None => py.None().into_bound(py),
            Some(r) => received_row(py, r)?.into_any(),
        };
        let topics = PyDict::new(py);
        for (tag, t) in &self.topics {
            let tweets = PyDict::new(py);
            for (k, v) in &t.tweets {
                tweets.set_item(&**k, *v)?;
            }
            let engagers: Vec<&str> = t.engagers.iter().map(|s| &**s).collect();
            let row = PyList::new(
                py,
                [
                    t.own_tweets.into_bound_py_any(py)?,
                    t.days.clone().into_bound_py_any(py)?,
                    t.mass.into_bound_py_any(py)?,
                    t.count.into_bound_py_any(py)?,
                    engagers.into_bound_py_any(py)?,
                    tweets.into_any(),
                    t.error.into_bound_py_any(py)?,
                ],
            )?;
            topics.set_item(&**tag, row)?;
        }
        PyList::new(
            py,
            [
                STATE_LAYOUT.into_bound_py_any(py)?,
                self.landmark.into_bound_py_any(py)?,
                clock_row.into_any(),
                self.followers.into_bound_py_any(py)?,
                self.followers_ts.into_bound_py_any(py)?,
                acting,
                received,
                topics.into_any(),
                self.published.into_bound_py_any(py)?,
                self.last_ts.into_bound_py_any(py)?,
            ],
        )
    }
}

fn received_row<'py>(py: Python<'py>, r: &ReceivedState) -> PyResult<Bound<'py, PyList>> {
    let buckets = PyList::empty(py);
    for b in &r.buckets {
        let row = PyList::new(
            py,
            [
                b.day.into_bound_py_any(py)?,
                b.raw.into_bound_py_any(py)?,
                b.content.into_bound_py_any(py)?,
                b.fast.into_bound_py_any(py)?,
                b.slow.into_bound_py_any(py)?,
                b.burst.into_bound_py_any(py)?,
                b.new_engagers.into_bound_py_any(py)?,
            ],
        )?;
        buckets.append(row)?;
    }
    // history keeps Python's types: days and engager counts are integers there
    let history = PyList::empty(py);
    for (j, x) in r.history.iter().enumerate() {
        if j % 3 == 1 {
            history.append(*x)?;
        } else {
            history.append(*x as i64)?;
        }
    }
    let pairs = PyDict::new(py);
    for (k, p) in &r.in_pairs {
        pairs.set_item(&**k, (p.mass, p.first_day, p.reciprocal as i64))?;
    }
    let windows = PyList::empty(py);
    for w in &r.windows {
        let rows: Vec<Vec<i64>> = w.iter().map(|b| b.to_vec()).collect();
        windows.append(rows)?;
    }
    PyList::new(
        py,
        [
            buckets.into_any(),
            history.into_any(),
            r.sealed_fast.into_bound_py_any(py)?,
            r.sealed_slow.into_bound_py_any(py)?,
            r.sealed_engagers.into_bound_py_any(py)?,
            r.sealed_burst.into_bound_py_any(py)?,
            r.sealed_burst_engagers.into_bound_py_any(py)?,
            r.burst_ref.into_bound_py_any(py)?,
            r.pair_total.into_bound_py_any(py)?,
            r.pair_reciprocal.into_bound_py_any(py)?,
            pairs.into_any(),
            r.kind_mass.to_vec().into_bound_py_any(py)?,
            r.removed.to_vec().into_bound_py_any(py)?,
            r.counts.to_vec().into_bound_py_any(py)?,
            windows.into_any(),
            r.evicted.hex().into_bound_py_any(py)?,
        ],
    )
}

#[cfg(test)]
mod size_tests {
    use super::*;
    #[test]
    fn sizes() {
        println!(
            "UserState {} Received {} Acting {} Clock {} Map {} Id {} Bucket {} InPair {}",
            std::mem::size_of::<UserState>(),
            std::mem::size_of::<ReceivedState>(),
            std::mem::size_of::<ActingState>(),
            std::mem::size_of::<crate::clock::GraceClock>(),
            std::mem::size_of::<Map<InPair>>(),
            std::mem::size_of::<Id>(),
            std::mem::size_of::<DayBucket>(),
            std::mem::size_of::<InPair>(),
        );
    }
}
