//! `scoring._native`: the influence model of `scoring/`, compiled, for the embedded engine.
//!
//! The Python package stays the specification and the core the Kafka workers run; this is its
//! twin for replays, rule for rule and operation for operation, so both give the same bits
//! (tests/test_native.py compares them on every output). Python hands in its frozen `Model`
//! and the record classes to build; what comes back are the same `Emitted` / `ScoreChange`
//! records the Python engine returns.

mod acting;
mod clock;
mod engine;
mod event;
mod mass;
mod model;
mod ordered;
mod receiving;
mod score;
mod sketch;
mod state;
mod topics;
mod windows;

use crate::state::Id;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple, PyType};

use rustc_hash::FxHashMap;

use crate::engine::{CauseId, Emitted, Engine};

/// mimalloc instead of glibc's malloc: a replay allocates and frees small strings and vectors
/// by the million, and glibc's free lists were a fifth of its time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use crate::event::{Event, Kind};

/// A tuple (`cls` None) or tuple-subclass instance (a NamedTuple record) holding `items`,
/// built without a Python-level call. Takes the references in `items`; null if any is null
/// or the allocation failed (a Python error is set then).
unsafe fn tuple_of(
    cls: Option<*mut ffi::PyTypeObject>,
    items: &[*mut ffi::PyObject],
) -> *mut ffi::PyObject {
    let failed = items.iter().any(|item| item.is_null());
    let obj = if failed {
        std::ptr::null_mut()
    } else {
        match cls {
            None => ffi::PyTuple_New(items.len() as ffi::Py_ssize_t),
            Some(tp) => (*tp).tp_alloc.unwrap_or(ffi::PyType_GenericAlloc)(
                tp,
                items.len() as ffi::Py_ssize_t,
            ),
        }
    };
    if obj.is_null() {
        for item in items {
            ffi::Py_XDECREF(*item);
        }
        return obj;
    }
    for (i, item) in items.iter().enumerate() {
        ffi::PyTuple_SET_ITEM(obj, i as ffi::Py_ssize_t, *item);
    }
    obj
}

unsafe fn py_str(text: &str) -> *mut ffi::PyObject {
    ffi::PyUnicode_FromStringAndSize(text.as_ptr().cast(), text.len() as ffi::Py_ssize_t)
}

unsafe fn py_float(x: f64) -> *mut ffi::PyObject {
    ffi::PyFloat_FromDouble(x)
}

/// The embedded engine over native state: `process*` return lists of `Emitted` records.
#[pyclass(module = "scoring._native")]
struct NativeEngine {
    engine: Engine,
    emitted_cls: Py<PyType>,
    change_cls: Py<PyType>,
    reason_cls: Py<PyType>,
    topic_cls: Py<PyType>,
    out: Vec<Emitted>,
    /// Python strings of the fixed codes (causes, reasons), made once.
    codes: FxHashMap<&'static str, Py<PyString>>,
}

fn code<'py>(
    codes: &mut FxHashMap<&'static str, Py<PyString>>,
    py: Python<'py>,
    text: &'static str,
) -> Bound<'py, PyString> {
    codes
        .entry(text)
        .or_insert_with(|| PyString::intern(py, text).unbind())
        .bind(py)
        .clone()
}

fn boxed_opt(obj: &Bound<PyAny>) -> PyResult<Option<Id>> {
    if obj.is_none() {
        Ok(None)
    } else {
        Ok(Some(obj.downcast::<PyString>()?.to_str()?.into()))
    }
}

fn boxed_tags(obj: &Bound<PyAny>) -> PyResult<Vec<Id>> {
    let mut out = Vec::new();
    for tag in obj.try_iter()? {
        out.push(tag?.downcast::<PyString>()?.to_str()?.into());
    }
    Ok(out)
}

/// A `scoring.Event` (NamedTuple) read field by field.
fn event_from_py(obj: &Bound<PyAny>) -> PyResult<Event> {
    let t = obj.downcast::<PyTuple>()?;
    let kind_name: String = t.get_item(1)?.extract()?;
    let kind = Kind::parse(&kind_name)
        .ok_or_else(|| PyValueError::new_err(format!("unknown kind {kind_name:?}")))?;
    Ok(Event {
        id: t.get_item(0)?.downcast::<PyString>()?.to_str()?.into(),
        kind,
        ts: t.get_item(2)?.extract()?,
        actor: t.get_item(3)?.downcast::<PyString>()?.to_str()?.into(),
        target: if kind == Kind::Tweet {
            None
        } else {
            boxed_opt(&t.get_item(4)?)?
        },
        ref_tweet_id: boxed_opt(&t.get_item(6)?)?,
        hashtags: boxed_tags(&t.get_item(7)?)?,
        ref_hashtags: boxed_tags(&t.get_item(8)?)?,
        followers: t.get_item(9)?.extract()?,
    })
}

impl NativeEngine {
    /// The changes of the last step as a list of `Emitted` records (C API: a Higgs replay
    /// builds millions of these objects, and each PyO3 wrapper costs an allocation).
    fn drain<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        self.fill(py, &list)?;
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

    fn fill<'py>(&mut self, py: Python<'py>, list: &Bound<'py, PyList>) -> PyResult<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let emitted_cls = self.emitted_cls.bind(py).as_type_ptr();
        let change_cls = self.change_cls.bind(py).as_type_ptr();
        let reason_cls = self.reason_cls.bind(py).as_type_ptr();
        let topic_cls = self.topic_cls.bind(py).as_type_ptr();
        let mut result = Ok(());
        for Emitted { change, cause } in self.out.drain(..) {
            if result.is_err() {
                continue;
            }
            // SAFETY: the GIL is held (`py`); every new reference goes into exactly one tuple
            // or is released by `tuple_of` on failure; the list takes the last one.
            unsafe {
                let reasons = ffi::PyTuple_New(change.reasons.len() as ffi::Py_ssize_t);
                if reasons.is_null() {
                    result = Err(PyErr::fetch(py));
                    continue;
                }
                let mut failed = false;
                for (i, (code_text, points)) in change.reasons.iter().enumerate() {
                    let code_obj = code(&mut self.codes, py, code_text).into_ptr();
                    let reason = tuple_of(Some(reason_cls), &[code_obj, py_float(*points)]);
                    failed |= reason.is_null();
                    if !reason.is_null() {
                        ffi::PyTuple_SET_ITEM(reasons, i as ffi::Py_ssize_t, reason);
                    }
                }
                if failed {
                    ffi::Py_DECREF(reasons); // a tuple with empty slots is freed safely
                    result = Err(PyErr::fetch(py));
                    continue;
                }
                let topics = ffi::PyTuple_New(change.topics.len() as ffi::Py_ssize_t);
                if topics.is_null() {
                    ffi::Py_DECREF(reasons);
                    result = Err(PyErr::fetch(py));
                    continue;
                }
                for (i, (topic, score)) in change.topics.iter().enumerate() {
                    let entry = tuple_of(Some(topic_cls), &[py_str(topic), py_float(*score)]);
                    failed |= entry.is_null();
                    if !entry.is_null() {
                        ffi::PyTuple_SET_ITEM(topics, i as ffi::Py_ssize_t, entry);
                    }
                }
                if failed {
                    ffi::Py_DECREF(reasons);
                    ffi::Py_DECREF(topics);
                    result = Err(PyErr::fetch(py));
                    continue;
                }
                let previous = match change.previous {
                    Some(p) => py_float(p),
                    None => {
                        ffi::Py_INCREF(ffi::Py_None());
                        ffi::Py_None()
                    }
                };
                let record = tuple_of(
                    Some(change_cls),
                    &[
                        py_str(&change.user),
                        py_float(change.score),
                        previous,
                        ffi::PyLong_FromLongLong(change.event_time),
                        code(&mut self.codes, py, change.cause).into_ptr(),
                        reasons,
                        topics,
                    ],
                );
                let cause_id = match cause {
                    CauseId::Event(id) => py_str(&id),
                    CauseId::Decay(day) => py_str(&format!("decay:{day}")),
                };
                let emitted = tuple_of(Some(emitted_cls), &[record, cause_id]);
                if emitted.is_null() {
                    result = Err(PyErr::fetch(py));
                    continue;
                }
                result = list.append(Bound::from_owned_ptr(py, emitted));
            }
        }
        result
    }
}

#[pymethods]
impl NativeEngine {
    /// `model` is a `scoring.Model`; the classes are `Emitted`, `ScoreChange`, `Reason` and
    /// `TopicScore`, the records `process` returns.
    #[new]
    fn new(
        model: &Bound<PyAny>,
        emitted_cls: Py<PyType>,
        change_cls: Py<PyType>,
        reason_cls: Py<PyType>,
        topic_cls: Py<PyType>,
    ) -> PyResult<Self> {
        // the records are built as tuples in C: anything but a tuple type would be written
        // past its end
        let py = model.py();
        for cls in [&emitted_cls, &change_cls, &reason_cls, &topic_cls] {
            if !cls.bind(py).is_subclass_of::<PyTuple>()? {
                return Err(PyTypeError::new_err(format!(
                    "{} is not a tuple type (a NamedTuple record class is expected)",
                    cls.bind(py).name()?
                )));
            }
        }
        Ok(NativeEngine {
            engine: Engine::new(model.extract()?),
            emitted_cls,
            change_cls,
            reason_cls,
            topic_cls,
            out: Vec::new(),
            codes: FxHashMap::default(),
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
    /// effective mass, counts by kind, windows 1h/24h/7d by kind, published topics).
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
            Some(state) => state.to_row(py).map(Some),
        }
    }
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
    Ok(())
}
