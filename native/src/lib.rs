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
use pyo3::exceptions::PyValueError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple, PyType};

use rustc_hash::FxHashMap;

use crate::engine::{CauseId, Emitted, Engine};

/// mimalloc instead of glibc's malloc: a replay allocates and frees small strings and vectors
/// by the million, and glibc's free lists were a fifth of its time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use crate::event::{Event, Kind};

/// A tuple subclass instance (a NamedTuple record) built without a Python-level call.
fn record<'py>(
    py: Python<'py>,
    cls: &Bound<'py, PyType>,
    items: Vec<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    unsafe {
        let tp = cls.as_type_ptr();
        let alloc = (*tp).tp_alloc.unwrap_or(ffi::PyType_GenericAlloc);
        let obj = alloc(tp, items.len() as ffi::Py_ssize_t);
        if obj.is_null() {
            return Err(PyErr::fetch(py));
        }
        for (i, item) in items.into_iter().enumerate() {
            ffi::PyTuple_SET_ITEM(obj, i as ffi::Py_ssize_t, item.into_ptr());
        }
        Ok(Bound::from_owned_ptr(py, obj))
    }
}

/// The embedded engine over native state: `process*` return lists of `Emitted` records.
#[pyclass(module = "scoring._native", unsendable)]
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
    fn drain<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        if self.out.is_empty() {
            return Ok(list);
        }
        let (emitted_cls, change_cls) = (self.emitted_cls.bind(py), self.change_cls.bind(py));
        let (reason_cls, topic_cls) = (self.reason_cls.bind(py), self.topic_cls.bind(py));
        for Emitted { change, cause } in self.out.drain(..) {
            let mut reasons = Vec::with_capacity(change.reasons.len());
            for (code_text, points) in change.reasons {
                let items = vec![
                    code(&mut self.codes, py, code_text).into_any(),
                    points.into_pyobject(py)?.into_any(),
                ];
                reasons.push(record(py, reason_cls, items)?);
            }
            let mut topics = Vec::with_capacity(change.topics.len());
            for (topic, score) in change.topics {
                let items = vec![
                    PyString::new(py, &topic).into_any(),
                    score.into_pyobject(py)?.into_any(),
                ];
                topics.push(record(py, topic_cls, items)?);
            }
            let items = vec![
                PyString::new(py, &change.user).into_any(),
                change.score.into_pyobject(py)?.into_any(),
                change.previous.into_pyobject(py)?.into_any(),
                change.event_time.into_pyobject(py)?.into_any(),
                code(&mut self.codes, py, change.cause).into_any(),
                PyTuple::new(py, reasons)?.into_any(),
                PyTuple::new(py, topics)?.into_any(),
            ];
            let cause_id = match cause {
                CauseId::Event(id) => PyString::new(py, &id),
                CauseId::Decay(day) => PyString::new(py, &format!("decay:{day}")),
            };
            let change = record(py, change_cls, items)?;
            list.append(record(py, emitted_cls, vec![change, cause_id.into_any()])?)?;
        }
        Ok(list)
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
        let mut out = std::mem::take(&mut self.out);
        self.engine.process(&event, &mut out);
        self.out = out;
        self.drain(py)
    }

    /// Applies one v1 JSON line; None if it is not the usual shape (decode it in Python).
    fn process_json<'py>(
        &mut self,
        py: Python<'py>,
        line: &[u8],
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        let Some(event) = event::parse_plain_json(line) else {
            return Ok(None);
        };
        let mut out = std::mem::take(&mut self.out);
        self.engine.process(&event, &mut out);
        self.out = out;
        self.drain(py).map(Some)
    }

    /// Applies one Higgs line (id = line number); None if Python should decode it.
    fn process_higgs<'py>(
        &mut self,
        py: Python<'py>,
        line: &[u8],
        number: u64,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        let Some(event) = event::parse_higgs(line, number) else {
            return Ok(None);
        };
        let mut out = std::mem::take(&mut self.out);
        self.engine.process(&event, &mut out);
        self.out = out;
        self.drain(py).map(Some)
    }

    fn advance_to<'py>(&mut self, py: Python<'py>, ts: i64) -> PyResult<Bound<'py, PyList>> {
        let mut out = std::mem::take(&mut self.out);
        self.engine.advance_to(ts, &mut out);
        self.out = out;
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
        self.engine.states.keys().map(|k| &**k).collect()
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
    // Large (transparent huge) pages for the allocator's arenas: a replay's state grows by
    // hundreds of megabytes, and faulting it in 4 KiB at a time cost a quarter of a Higgs run.
    // SAFETY: sets a process-wide allocator option before this module allocates its state.
    unsafe { libmimalloc_sys::mi_option_set(libmimalloc_sys::mi_option_large_os_pages, 1) };
    m.add_class::<NativeEngine>()?;
    Ok(())
}
