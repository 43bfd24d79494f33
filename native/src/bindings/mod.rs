//! `scoring._native`: the core as a Python extension (PyO3). Only this module knows Python:
//! it turns Python's model and events into the core's types and the core's results into
//! Python records, rows and bytes.

mod convert;
mod records;
mod rows;
mod rows_in;
mod worker;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple, PyType};

use crate::json_out;
use crate::outputs::{score_event_line, snapshot_line};

use crate::engine::{Emitted, Engine};
use crate::event::{self, Event, Kind};
use crate::history::row_parts;
use crate::state::Id;
use convert::{event_from_py, model_from_py};
use records::Records;
use rows::state_row;

/// A score history as its stored row: day, packed closes, previous, packed changes.
type HistoryRow = (i64, String, Option<i64>, String);

/// mimalloc instead of glibc's malloc: a replay allocates and frees small strings and vectors
/// by the million, and glibc's free lists were a fifth of its time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The embedded engine over native state: `process*` return lists of `Emitted` records.
#[pyclass(module = "scoring._native")]
struct NativeEngine {
    engine: Engine,
    records: Records,
    /// The changes of the last steps, until Python takes them.
    out: Vec<Emitted>,
}

impl NativeEngine {
    /// The changes of the last step as a list of `Emitted` records (C API: a Higgs replay
    /// builds millions of these objects, and each PyO3 wrapper costs an allocation).
    fn drain<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        self.records.fill(py, &mut self.out, &list)?;
        Ok(list)
    }

    /// Like `drain`, but the shared empty tuple when nothing changed (most events): no list
    /// to allocate and free.
    fn drain_or_empty<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if self.out.is_empty() {
            return Ok(PyTuple::empty(py).into_any());
        }
        self.drain(py).map(Bound::into_any)
    }

    /// Applies an event a raw line was read as: its changes, or None if the line was not
    /// read (Python decodes it).
    fn process_parsed<'py>(
        &mut self,
        py: Python<'py>,
        parsed: Option<Event>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Some(event) = parsed else {
            return Ok(None);
        };
        self.engine.process(&event, &mut self.out);
        self.drain_or_empty(py).map(Some)
    }
}

#[pymethods]
impl NativeEngine {
    /// `model` is a `scoring.Model`; the classes are `Emitted`, `ScoreChange`, `Reason`,
    /// `TopicScore`, `AudienceQuality` and `QualityReason`, the records `process` returns.
    #[new]
    fn new(
        model: &Bound<PyAny>,
        emitted_cls: Py<PyType>,
        change_cls: Py<PyType>,
        reason_cls: Py<PyType>,
        topic_cls: Py<PyType>,
        quality_cls: Py<PyType>,
        quality_reason_cls: Py<PyType>,
    ) -> PyResult<Self> {
        let py = model.py();
        Ok(NativeEngine {
            engine: Engine::new(model_from_py(model)?),
            records: Records::new(
                py,
                emitted_cls,
                change_cls,
                reason_cls,
                topic_cls,
                quality_cls,
                quality_reason_cls,
            )?,
            out: Vec::new(),
        })
    }

    /// Applies one `scoring.Event`.
    fn process<'py>(
        &mut self,
        py: Python<'py>,
        event: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let event = event_from_py(event)?;
        self.engine.process(&event, &mut self.out);
        self.drain(py)
    }

    /// Applies one v1 JSON line: its changes (a list, or the empty tuple), or None if it is
    /// not the usual shape (decode it in Python).
    fn process_json<'py>(
        &mut self,
        py: Python<'py>,
        line: &[u8],
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.process_parsed(py, event::parse_plain_json(line))
    }

    /// Applies one Higgs line (id = line number); None if Python should decode it.
    fn process_higgs<'py>(
        &mut self,
        py: Python<'py>,
        line: &[u8],
        number: u64,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.process_parsed(py, event::parse_higgs(line, number))
    }

    /// Scores raw input lines (bytes, as read) from `lines[start]` on, in order, until one
    /// needs Python: returns that line's index, or `len(lines)` when all were scored. Blank
    /// lines are skipped; `higgs_first` is None for JSON lines, or the line number of
    /// `lines[0]` for Higgs lines (a Higgs event's id). The score changes are computed and
    /// kept for `take_changes` when `keep` is true, dropped otherwise (a replay that writes no
    /// score events needs no Python records for them).
    #[pyo3(signature = (lines, start, higgs_first, keep))]
    fn score_lines(
        &mut self,
        lines: &Bound<'_, PyList>,
        start: usize,
        higgs_first: Option<u64>,
        keep: bool,
    ) -> PyResult<usize> {
        let mut index = start;
        let count = lines.len();
        while index < count {
            let item = lines.get_item(index)?;
            let line = item.downcast::<PyBytes>()?.as_bytes();
            if !line
                .iter()
                .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c'))
            {
                let parsed = match higgs_first {
                    None => event::parse_plain_json(event::strip_line_break(line)),
                    Some(first) => event::parse_higgs(line, first + index as u64),
                };
                let Some(event) = parsed else { break };
                self.engine.process(&event, &mut self.out);
                if !keep {
                    self.out.clear();
                }
            }
            index += 1;
        }
        Ok(index)
    }

    /// The score changes kept by `score_lines` (and any other step since the last take).
    fn take_changes<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.drain(py)
    }

    /// Like `take_changes`, but as the --events-out lines themselves (`score_change_json`'s
    /// bytes, each with its line break): no Python object per change.
    fn take_changes_json<'py>(
        &mut self,
        py: Python<'py>,
        model_version: &str,
    ) -> Bound<'py, PyBytes> {
        let mut out = Vec::with_capacity(self.out.len() * 320);
        for emitted in self.out.drain(..) {
            score_event_line(&mut out, &emitted, model_version);
        }
        PyBytes::new(py, &out)
    }

    /// The snapshot at event time `now` as the --snapshot-out bytes (`snapshot_line`'s, one
    /// line per user in user-id order), in chunks of about a megabyte: no Python object per
    /// user, and never the whole file in memory.
    fn snapshot_json(slf: Bound<'_, Self>, now: i64, model_version: String) -> SnapshotChunks {
        let mut users: Vec<Id> = slf.borrow().engine.order.clone();
        users.sort_unstable();
        SnapshotChunks {
            engine: slf.unbind(),
            users,
            at: 0,
            now,
            model_version,
            buffer: Vec::with_capacity(CHUNK_BYTES + 64 * 1024),
        }
    }

    fn advance_to<'py>(&mut self, py: Python<'py>, ts: i64) -> PyResult<Bound<'py, PyList>> {
        self.engine.advance_to(ts, &mut self.out);
        self.drain(py)
    }

    #[getter]
    fn now(&self) -> Option<i64> {
        self.engine.now()
    }

    /// (events by kind name, duplicates, self-engagements, score changes, decay changes).
    fn counts(&self) -> (Vec<(&'static str, u64)>, u64, u64, u64, u64) {
        let s = &self.engine.stats;
        let by_kind = Kind::ALL
            .iter()
            .filter(|k| s.events[k.index()] > 0)
            .map(|k| (k.name(), s.events[k.index()]))
            .collect();
        (
            by_kind,
            s.duplicates,
            s.self_engagements,
            s.score_changes,
            s.decay_changes,
        )
    }

    fn __len__(&self) -> usize {
        self.engine.states.len()
    }

    fn __contains__(&self, user: &str) -> bool {
        self.engine.states.contains_key(user)
    }

    /// User ids in the order they were first seen.
    fn user_ids(&self) -> Vec<&str> {
        self.engine.order.iter().map(|k| &**k).collect()
    }

    /// Every user's snapshot fields at event time `now`, in user-id order: (user, score, mass,
    /// effective mass, counts by kind, windows 1h/24h/7d by kind, published topics, landmark,
    /// score history as its stored row or None).
    #[allow(clippy::type_complexity)]
    fn snapshots(
        &mut self,
        now: i64,
    ) -> Vec<(
        String,
        f64,
        f64,
        f64,
        [i64; 4],
        [[i64; 4]; 3],
        Vec<(String, f64)>,
        i64,
        Option<HistoryRow>,
        f64,
        Vec<(&'static str, f64)>,
        f64,
    )> {
        let mut users: Vec<Id> = self.engine.order.clone();
        users.sort_unstable();
        users
            .into_iter()
            .filter_map(|user| {
                let s = self.engine.snapshot(&user, now)?;
                Some((
                    user.to_string(),
                    s.score,
                    s.mass,
                    s.effective_mass,
                    s.counts,
                    s.windows,
                    s.topics,
                    s.landmark,
                    s.history.as_ref().map(row_parts),
                    s.quality.0,
                    s.quality.1,
                    s.confidence,
                ))
            })
            .collect()
    }

    /// (score, user) at event time `now` of every user who received engagement.
    fn scores(&mut self, now: i64) -> Vec<(f64, String)> {
        let users = self.engine.order.clone();
        users
            .into_iter()
            .filter_map(|user| {
                let s = self.engine.snapshot(&user, now)?;
                s.received.then(|| (s.score, user.to_string()))
            })
            .collect()
    }

    /// The user's state as `scoring.state.state_from_row` reads it (full precision).
    fn state_row<'py>(&self, py: Python<'py>, user: &str) -> PyResult<Option<Bound<'py, PyList>>> {
        match self.engine.states.get(user) {
            None => Ok(None),
            Some(state) => state_row(state, py).map(Some),
        }
    }
}

/// The iterator `NativeEngine.snapshot_json` returns.
#[pyclass(module = "scoring._native")]
struct SnapshotChunks {
    engine: Py<NativeEngine>,
    users: Vec<Id>,
    at: usize,
    now: i64,
    model_version: String,
    /// One chunk's bytes, reused: a fresh megabyte each time was a page fault per 4 KiB.
    buffer: Vec<u8>,
}

const CHUNK_BYTES: usize = 1 << 20;

#[pymethods]
impl SnapshotChunks {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        if self.at >= self.users.len() {
            return None;
        }
        let mut native = self.engine.bind(py).borrow_mut();
        let out = &mut self.buffer;
        out.clear();
        while out.len() < CHUNK_BYTES && self.at < self.users.len() {
            let user = &self.users[self.at];
            if let Some(s) = native.engine.snapshot(user, self.now) {
                snapshot_line(out, user, &s, &self.model_version);
            }
            self.at += 1;
        }
        Some(PyBytes::new(py, out))
    }
}

/// `orjson.dumps(x)` as the compiled writers write it (json_out.rs), for the test that holds
/// them to the installed orjson.
#[pyfunction]
fn dumps_float(py: Python<'_>, x: f64) -> Bound<'_, PyBytes> {
    let mut out = Vec::new();
    json_out::float(&mut out, x);
    PyBytes::new(py, &out)
}

/// `orjson.dumps(text)` as the compiled writers write it.
#[pyfunction]
fn dumps_str<'py>(py: Python<'py>, text: &str) -> Bound<'py, PyBytes> {
    let mut out = Vec::new();
    json_out::string(&mut out, text);
    PyBytes::new(py, &out)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Large OS pages (2 MiB) for the allocator's arenas, as MIMALLOC_ALLOW_LARGE_OS_PAGES=1
    // does (unless that variable says otherwise): a replay's state grows by hundreds of
    // megabytes, and faulting it in 4 KiB at a time cost a quarter of a Higgs run. Where the
    // kernel has no huge-page pool this means transparent huge pages (seen here); memory in
    // large pages is not returned to the system before the process ends.
    // SAFETY: sets a process-wide allocator option; arenas reserved later use it.
    if std::env::var_os("MIMALLOC_ALLOW_LARGE_OS_PAGES").is_none() {
        unsafe { libmimalloc_sys::mi_option_set(libmimalloc_sys::mi_option_large_os_pages, 1) };
    }
    m.add_class::<NativeEngine>()?;
    m.add_class::<SnapshotChunks>()?;
    m.add_class::<worker::NativeUsers>()?;
    m.add_function(wrap_pyfunction!(dumps_float, m)?)?;
    m.add_function(wrap_pyfunction!(dumps_str, m)?)?;
    Ok(())
}
