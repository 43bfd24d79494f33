//! The core's per-user state as the row `scoring.state.state_from_row` reads (for
//! `NativeEngine.states`: explanations, `--top` reasons and the differential tests).

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use pyo3::IntoPyObjectExt;

use crate::history::row_parts;
use crate::state::{ReceivedState, UserState, STATE_LAYOUT};

/// The row `scoring.state.state_from_row` reads, at full precision (the Python engine's
/// in-memory state, not the shortened stored form).
pub fn state_row<'py>(state: &UserState, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
    let clock = &state.clock;
    let clock_row = PyList::new(
        py,
        [
            clock.runs.clone().into_bound_py_any(py)?,
            clock.folded_paused.into_bound_py_any(py)?,
            clock.period_start.into_bound_py_any(py)?,
            clock.budget.into_bound_py_any(py)?,
        ],
    )?;
    let acting = match &state.acting {
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
    let received = match &state.received {
        None => py.None().into_bound(py),
        Some(r) => received_row(py, r)?.into_any(),
    };
    let engagers = match &state.received {
        None => py.None().into_bound(py),
        Some(r) => PyList::new(
            py,
            [
                r.sealed_engager_fast.into_bound_py_any(py)?,
                r.sealed_engager_slow.into_bound_py_any(py)?,
                r.reciprocal_engagers.into_bound_py_any(py)?,
            ],
        )?
        .into_any(),
    };
    let topics = PyDict::new(py);
    for (tag, t) in &state.topics {
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
            state.landmark.into_bound_py_any(py)?,
            clock_row.into_any(),
            state.followers.into_bound_py_any(py)?,
            state.followers_ts.into_bound_py_any(py)?,
            acting,
            received,
            topics.into_any(),
            state.published.into_bound_py_any(py)?,
            state.last_ts.into_bound_py_any(py)?,
            state
                .received
                .as_deref()
                .and_then(|r| r.score_history.as_deref())
                .map(row_parts)
                .into_bound_py_any(py)?,
            engagers,
        ],
    )
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
