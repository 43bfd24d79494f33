//! Score changes as the Python records `pipeline.engine` returns (`Emitted`, `ScoreChange`,
//! `Reason`, `TopicScore`, `AudienceQuality`, `QualityReason`), built with the C API: a Higgs replay with --events-out hands over
//! hundreds of thousands of them, and each PyO3 wrapper would cost an allocation.

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple, PyType};
use rustc_hash::FxHashMap;

use crate::engine::{CauseId, Emitted};

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

/// The record classes, checked to be tuple types, and the Python strings of the fixed codes
/// (causes, reasons), made once.
pub struct Records {
    emitted: Py<PyType>,
    change: Py<PyType>,
    reason: Py<PyType>,
    topic: Py<PyType>,
    quality: Py<PyType>,
    quality_reason: Py<PyType>,
    codes: FxHashMap<&'static str, Py<PyString>>,
}

impl Records {
    pub fn new(
        py: Python<'_>,
        emitted: Py<PyType>,
        change: Py<PyType>,
        reason: Py<PyType>,
        topic: Py<PyType>,
        quality: Py<PyType>,
        quality_reason: Py<PyType>,
    ) -> PyResult<Self> {
        // the records are built as tuples in C: anything but a tuple type would be written
        // past its end
        for cls in [
            &emitted,
            &change,
            &reason,
            &topic,
            &quality,
            &quality_reason,
        ] {
            if !cls.bind(py).is_subclass_of::<PyTuple>()? {
                return Err(PyTypeError::new_err(format!(
                    "{} is not a tuple type (a NamedTuple record class is expected)",
                    cls.bind(py).name()?
                )));
            }
        }
        Ok(Records {
            emitted,
            change,
            reason,
            topic,
            quality,
            quality_reason,
            codes: FxHashMap::default(),
        })
    }

    /// Appends `out`'s changes to `list` as `Emitted` records, emptying `out`.
    pub fn fill<'py>(
        &mut self,
        py: Python<'py>,
        out: &mut Vec<Emitted>,
        list: &Bound<'py, PyList>,
    ) -> PyResult<()> {
        let emitted_cls = self.emitted.bind(py).as_type_ptr();
        let change_cls = self.change.bind(py).as_type_ptr();
        let reason_cls = self.reason.bind(py).as_type_ptr();
        let topic_cls = self.topic.bind(py).as_type_ptr();
        let quality_cls = self.quality.bind(py).as_type_ptr();
        let quality_reason_cls = self.quality_reason.bind(py).as_type_ptr();
        let mut result = Ok(());
        for Emitted { change, cause } in out.drain(..) {
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
                let (quality_score, quality_reasons) = &change.quality;
                let rules = ffi::PyTuple_New(quality_reasons.len() as ffi::Py_ssize_t);
                if rules.is_null() {
                    ffi::Py_DECREF(reasons);
                    ffi::Py_DECREF(topics);
                    result = Err(PyErr::fetch(py));
                    continue;
                }
                for (i, (rule, share)) in quality_reasons.iter().enumerate() {
                    let rule_obj = code(&mut self.codes, py, rule).into_ptr();
                    let entry = tuple_of(Some(quality_reason_cls), &[rule_obj, py_float(*share)]);
                    failed |= entry.is_null();
                    if !entry.is_null() {
                        ffi::PyTuple_SET_ITEM(rules, i as ffi::Py_ssize_t, entry);
                    }
                }
                if failed {
                    ffi::Py_DECREF(reasons);
                    ffi::Py_DECREF(topics);
                    ffi::Py_DECREF(rules);
                    result = Err(PyErr::fetch(py));
                    continue;
                }
                // tuple_of takes `rules` (or releases it on failure), and the change takes
                // the quality record the same way
                let quality = tuple_of(Some(quality_cls), &[py_float(*quality_score), rules]);
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
                        quality,
                        py_float(change.confidence),
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
