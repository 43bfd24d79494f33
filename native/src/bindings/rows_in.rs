//! A stored row, as orjson parsed it, into the core's state (`scoring.state.state_from_row`
//! field for field, layouts 3 and 4). Python parses the bytes (orjson: the floats are the ones
//! the Python core would read) and checks the outer layout; this reads the positional row.
//! Any shape it does not expect is an `Err` with no state built: the caller then asks Python's
//! reader, which either reads it (a divergence, reported) or gives the reason a dead letter
//! carries, so a damaged row gives the same message on both cores.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use crate::clock::GraceClock;
use crate::history::from_row_parts;
use crate::ordered::OrderedMap;
use crate::sketch::Bloom;
use crate::state::{
    ActingState, DayBucket, Id, InPair, ReceivedState, TopicStats, UserState, WindowBucket,
    STATE_LAYOUT,
};
use crate::stored::Stored;

fn bad(what: &str) -> PyErr {
    PyValueError::new_err(format!("stored row: {what}"))
}

fn items<'py>(obj: &Bound<'py, PyAny>, n: usize, what: &str) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let list = obj.downcast::<PyList>().map_err(|_| bad(what))?;
    if list.len() != n {
        return Err(bad(what));
    }
    Ok(list.iter().collect())
}

fn id(obj: &Bound<PyAny>) -> PyResult<Id> {
    Ok(obj.downcast::<PyString>()?.to_str()?.into())
}

fn ids(obj: &Bound<PyAny>) -> PyResult<Vec<Id>> {
    obj.downcast::<PyList>()?.iter().map(|s| id(&s)).collect()
}

fn ints(obj: &Bound<PyAny>) -> PyResult<Vec<i64>> {
    obj.extract()
}

fn fixed<const N: usize, T: for<'a> FromPyObject<'a>>(obj: &Bound<PyAny>) -> PyResult<[T; N]> {
    let values: Vec<T> = obj.extract()?;
    values
        .try_into()
        .map_err(|_| bad("a list of the wrong length"))
}

fn map<V>(
    obj: &Bound<PyAny>,
    value: impl Fn(&Bound<PyAny>) -> PyResult<V>,
) -> PyResult<OrderedMap<V>> {
    let mut out = OrderedMap::default();
    for (k, v) in obj.downcast::<PyDict>()?.iter() {
        out.insert(id(&k)?, value(&v)?);
    }
    Ok(out)
}

/// `[layout, positions, row]`'s positions and row as a stored user.
pub fn stored_from_py(positions: &Bound<PyAny>, row: &Bound<PyAny>) -> PyResult<Stored> {
    let mut kept = Vec::new();
    for (k, v) in positions.downcast::<PyDict>()?.iter() {
        kept.push((id(&k)?, v.extract()?));
    }
    Ok(Stored {
        state: state_from_py(row)?,
        positions: kept,
    })
}

pub fn state_from_py(row: &Bound<PyAny>) -> PyResult<UserState> {
    let row = row.downcast::<PyList>().map_err(|_| bad("not a list"))?;
    let layout: i64 = row.get_item(0)?.extract()?;
    let n = row.len();
    if !(layout == 3 && n == 10 || layout == STATE_LAYOUT && (n == 11 || n == 12)) {
        return Err(bad("an unexpected layout or length"));
    }
    let clock = items(&row.get_item(2)?, 4, "clock")?;
    let mut state = UserState::new(0);
    state.landmark = row.get_item(1)?.extract()?;
    let mut grace = GraceClock::default();
    grace.runs = ints(&clock[0])?;
    grace.folded_paused = clock[1].extract()?;
    grace.period_start = clock[2].extract()?;
    grace.budget = clock[3].extract()?;
    state.clock = grace;
    state.followers = row.get_item(3)?.extract()?;
    state.followers_ts = row.get_item(4)?.extract()?;
    let acting = row.get_item(5)?;
    if !acting.is_none() {
        let a = items(&acting, 3, "acting")?;
        state.acting = Some(Box::new(ActingState {
            counters: fixed(&a[0])?,
            out_pairs: map(&a[1], fixed::<3, f64>)?,
            recent_ids: ids(&a[2])?,
        }));
    }
    let received = row.get_item(6)?;
    if !received.is_none() {
        state.received = Some(Box::new(received_from_py(&received)?));
    }
    state.topics = map(&row.get_item(7)?, |t| {
        let t = items(t, 7, "topic")?;
        Ok(TopicStats {
            own_tweets: t[0].extract()?,
            days: ints(&t[1])?,
            mass: t[2].extract()?,
            count: t[3].extract()?,
            engagers: ids(&t[4])?,
            tweets: map(&t[5], |v| v.extract())?,
            error: t[6].extract()?,
        })
    })?;
    state.published = row.get_item(8)?.extract()?;
    state.last_ts = row.get_item(9)?.extract()?;
    if layout == STATE_LAYOUT {
        let history = row.get_item(10)?;
        if !history.is_none() {
            let h = items(&history, 4, "history")?;
            let parsed = from_row_parts(
                h[0].extract()?,
                h[1].downcast::<PyString>()?.to_str()?,
                h[2].extract()?,
                h[3].downcast::<PyString>()?.to_str()?,
            )
            .ok_or_else(|| bad("history"))?;
            // Python keeps a history on any user; the core keeps it with what was received
            match state.received.as_deref_mut() {
                Some(r) => r.score_history = Some(Box::new(parsed)),
                None => return Err(bad("a history without received engagement")),
            }
        }
        if n == 12 {
            let engagers = row.get_item(11)?;
            if !engagers.is_none() {
                let e = items(&engagers, 3, "engagers")?;
                let r = state
                    .received
                    .as_deref_mut()
                    .ok_or_else(|| bad("engager sums without received engagement"))?;
                r.sealed_engager_fast = e[0].extract()?;
                r.sealed_engager_slow = e[1].extract()?;
                r.reciprocal_engagers = e[2].extract()?;
            }
        }
    }
    Ok(state)
}

fn received_from_py(obj: &Bound<PyAny>) -> PyResult<ReceivedState> {
    let r = items(obj, 16, "received")?;
    let mut buckets = Vec::new();
    for b in r[0].downcast::<PyList>()?.iter() {
        let b = items(&b, 7, "day bucket")?;
        buckets.push(DayBucket {
            day: b[0].extract()?,
            raw: b[1].extract()?,
            content: b[2].extract()?,
            fast: b[3].extract()?,
            slow: b[4].extract()?,
            burst: b[5].extract()?,
            new_engagers: b[6].extract()?,
        });
    }
    let mut windows: [Vec<WindowBucket>; 3] = Default::default();
    let rows = items(&r[14], 3, "windows")?;
    for (w, row) in windows.iter_mut().zip(rows) {
        for bucket in row.downcast::<PyList>()?.iter() {
            w.push(fixed(&bucket)?);
        }
    }
    let mut received = ReceivedState::new(r[7].extract()?);
    received.buckets = buckets;
    received.history = r[1].extract()?;
    received.sealed_fast = r[2].extract()?;
    received.sealed_slow = r[3].extract()?;
    received.sealed_engagers = r[4].extract()?;
    received.sealed_burst = r[5].extract()?;
    received.sealed_burst_engagers = r[6].extract()?;
    received.pair_total = r[8].extract()?;
    received.pair_reciprocal = r[9].extract()?;
    received.in_pairs = map(&r[10], |p| {
        let p = items(p, 3, "pair")?;
        Ok(InPair {
            mass: p[0].extract()?,
            first_day: p[1].extract()?,
            reciprocal: p[2].extract::<i64>()? != 0,
        })
    })?;
    received.kind_mass = fixed(&r[11])?;
    received.removed = fixed(&r[12])?;
    received.counts = fixed(&r[13])?;
    received.windows = windows;
    received.evicted =
        Bloom::from_hex(r[15].downcast::<PyString>()?.to_str()?).ok_or_else(|| bad("evicted"))?;
    Ok(received)
}
