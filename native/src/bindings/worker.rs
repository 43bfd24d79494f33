//! `NativeUsers`: one partition's users for a Kafka worker on the compiled core
//! (`pipeline.native_steps` wraps it behind `pipeline.steps.UserCache`'s interface).
//!
//! The boundary is the worker's step, not the model's functions: the actor step and the target
//! step (`pipeline.steps.actor_step` / `target_step`: offset guard, rule, change detection) and
//! the decay watch's per-user check each cost one call, and the users stay decoded here
//! between batches, as `UserCache` keeps them in Python. Stored rows keep their bytes: a user
//! is read from the table through Python's orjson (`rows_in.rs`) and written back as
//! `encode_stored` writes it (`stored.rs`), so either core reads what the other wrote.

use hashbrown::HashMap;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple, PyType};
use rustc_hash::FxBuildHasher;

use super::convert::{event_from_py, model_from_py};
use super::records::Records;
use super::rows_in::stored_from_py;
use crate::acting::{apply_action, Engagement, Outcome};
use crate::engine::{CauseId, Emitted};
use crate::mass::read_mass;
use crate::model::{floor_div, Model, DAY_MS};
use crate::receiving::{apply_engagement, Origin};
use crate::score::{detect_change, score_of, topic_scores};
use crate::state::{Id, UserState};
use crate::stored::{write_stored, Stored};

struct Entry {
    stored: Stored,
    dirty: bool,
}

/// `ActorOutput` as a code: applied, an offset already applied (the guard), a duplicate
/// event id (the rule), a self-engagement.
const APPLIED: u8 = 0;
const SEEN: u8 = 1;
const DUPLICATE: u8 = 2;
const SELF: u8 = 3;

#[pyclass(module = "scoring._native", unsendable)]
pub struct NativeUsers {
    model: Model,
    records: Records,
    /// The key → bytes table (a Faust table, the driver's store).
    table: Py<PyAny>,
    /// bytes → (positions, row), raising StateError (pipeline.native_steps.stored_parts).
    load: Py<PyAny>,
    /// row → UserState (scoring.state.state_from_row): asked when `rows_in` refuses a row.
    python_reader: Py<PyAny>,
    state_error: Py<PyType>,
    engagement_cls: Py<PyType>,
    users: HashMap<Id, Box<Entry>, FxBuildHasher>,
    /// Users changed since the last flush, in the order first changed.
    dirty: Vec<Id>,
    max_clean: usize,
    out: Vec<Emitted>,
}

impl NativeUsers {
    fn error(&self, py: Python<'_>, message: String) -> PyErr {
        match self.state_error.bind(py).call1((message,)) {
            Ok(exc) => PyErr::from_value(exc),
            Err(err) => err,
        }
    }

    /// The user's stored row, decoded; None if the table has none.
    fn read(&self, py: Python<'_>, user: &str) -> PyResult<Option<Stored>> {
        let key = PyBytes::new(py, user.as_bytes());
        let data = self.table.bind(py).call_method1("get", (key,))?;
        if data.is_none() {
            return Ok(None);
        }
        let parts = self.load.bind(py).call1((data,))?;
        let (positions, row): (Bound<PyAny>, Bound<PyAny>) = parts.extract()?;
        match stored_from_py(&positions, &row) {
            Ok(stored) => Ok(Some(stored)),
            Err(refused) => {
                // Python's reader gives the reason (the same dead letter on both cores)
                self.python_reader.bind(py).call1((row,))?;
                Err(self.error(
                    py,
                    format!("the compiled core cannot read a row Python reads: {refused}"),
                ))
            }
        }
    }

    /// `UserCache.get`: decodes the stored user, or makes a new one at `ts`, unless cached.
    fn ensure(&mut self, py: Python<'_>, user: &str, ts: i64) -> PyResult<()> {
        if !self.users.contains_key(user) {
            let stored = match self.read(py, user)? {
                Some(stored) => stored,
                None => Stored::new(UserState::new(ts)),
            };
            let entry = Box::new(Entry {
                stored,
                dirty: false,
            });
            self.users.insert(user.into(), entry);
        }
        Ok(())
    }

    /// `UserCache.peek`: decodes the stored user unless cached; false if there is none.
    fn present(&mut self, py: Python<'_>, user: &str) -> PyResult<bool> {
        if self.users.contains_key(user) {
            return Ok(true);
        }
        let Some(stored) = self.read(py, user)? else {
            return Ok(false);
        };
        let entry = Box::new(Entry {
            stored,
            dirty: false,
        });
        self.users.insert(user.into(), entry);
        Ok(true)
    }

    fn mark_dirty(dirty: &mut Vec<Id>, entry: &mut Entry, user: &str) {
        if !entry.dirty {
            entry.dirty = true;
            dirty.push(user.into());
        }
    }

    fn changes<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        self.records.fill(py, &mut self.out, &list)?;
        Ok(list)
    }
}

fn str_of<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<&'a str> {
    obj.downcast::<PyString>()?.to_str()
}

#[pymethods]
impl NativeUsers {
    /// `table`: the users table; `load`: bytes → (positions, row) or StateError;
    /// `python_reader`: Python's row reader; then the record classes (`Emitted`,
    /// `ScoreChange`, `Reason`, `TopicScore`, `AudienceQuality`, `QualityReason`, `Engagement`).
    #[new]
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn new(
        model: &Bound<PyAny>,
        table: Py<PyAny>,
        load: Py<PyAny>,
        python_reader: Py<PyAny>,
        state_error: Py<PyType>,
        max_clean: usize,
        classes: (
            Py<PyType>,
            Py<PyType>,
            Py<PyType>,
            Py<PyType>,
            Py<PyType>,
            Py<PyType>,
            Py<PyType>,
        ),
    ) -> PyResult<Self> {
        let py = model.py();
        let (emitted, change, reason, topic, quality, quality_reason, engagement) = classes;
        if !engagement.bind(py).is_subclass_of::<PyTuple>()? {
            return Err(PyTypeError::new_err("Engagement must be a NamedTuple"));
        }
        Ok(NativeUsers {
            model: model_from_py(model)?,
            records: Records::new(py, emitted, change, reason, topic, quality, quality_reason)?,
            table,
            load,
            python_reader,
            state_error,
            engagement_cls: engagement,
            users: HashMap::default(),
            dirty: Vec::new(),
            max_clean,
            out: Vec::new(),
        })
    }

    /// `pipeline.steps.actor_step` for one `scoring.Event` from the source `key` at `offset`:
    /// (code, the engagement to route or None, the actor's `Emitted` changes).
    fn actor<'py>(
        &mut self,
        py: Python<'py>,
        event: &Bound<'py, PyAny>,
        key: &str,
        offset: i64,
    ) -> PyResult<(u8, Option<Bound<'py, PyAny>>, Bound<'py, PyList>)> {
        let event = event_from_py(event)?;
        self.ensure(py, &event.actor, event.ts)?;
        let NativeUsers {
            model,
            users,
            dirty,
            out,
            ..
        } = self;
        let entry = users.get_mut(&*event.actor).expect("ensured");
        if entry.stored.seen(key, offset) {
            return Ok((SEEN, None, PyList::empty(py)));
        }
        let state = &mut entry.stored.state;
        let result = apply_action(state, &event, model);
        entry.stored.set_position(key, offset);
        let code = match result.outcome {
            Outcome::Duplicate => DUPLICATE,
            Outcome::SelfEngagement => SELF,
            _ => APPLIED,
        };
        if let Some(cause) = result.actor_score_cause() {
            let state = &mut entry.stored.state;
            if state.received.is_some() {
                let now = state.last_ts;
                if let Some(change) = detect_change(&event.actor, state, now, model, cause) {
                    out.push(Emitted {
                        change,
                        cause: CauseId::Event(event.id.clone()),
                    });
                }
            }
        }
        Self::mark_dirty(dirty, entry, &event.actor);
        let engagement = match (&result.engagement, &event.target) {
            (Some(e), Some(target)) => {
                let hashtags = PyTuple::new(py, event.ref_hashtags.iter().map(|t| t.as_str()))?;
                let args = (
                    event.id.as_str(),
                    e.kind,
                    e.ts,
                    event.actor.as_str(),
                    target.as_str(),
                    e.weight,
                    e.selectivity,
                    e.pair,
                    e.automation,
                    event.ref_tweet_id.as_deref(),
                    hashtags,
                );
                Some(self.engagement_cls.bind(py).call1(args)?)
            }
            _ => None,
        };
        Ok((code, engagement, self.changes(py)?))
    }

    /// `pipeline.steps.target_step` for one `scoring.Engagement`: (True if its offset was
    /// already applied, the target's `Emitted` changes).
    fn target<'py>(
        &mut self,
        py: Python<'py>,
        engagement: &Bound<'py, PyAny>,
        key: &str,
        offset: i64,
    ) -> PyResult<(bool, Bound<'py, PyList>)> {
        let t = engagement.downcast::<PyTuple>()?;
        let target_item = t.get_item(4)?;
        let target = str_of(&target_item)?;
        let id_item = t.get_item(0)?;
        let actor_item = t.get_item(3)?;
        let ref_item = t.get_item(9)?;
        let ref_tweet_id = if ref_item.is_none() {
            None
        } else {
            Some(str_of(&ref_item)?)
        };
        let mut ref_hashtags: Vec<Id> = Vec::new();
        for tag in t.get_item(10)?.try_iter()? {
            ref_hashtags.push(str_of(&tag?)?.into());
        }
        let e = Engagement {
            kind: t.get_item(1)?.extract()?,
            ts: t.get_item(2)?.extract()?,
            weight: t.get_item(5)?.extract()?,
            selectivity: t.get_item(6)?.extract()?,
            pair: t.get_item(7)?.extract()?,
            automation: t.get_item(8)?.extract()?,
        };
        self.ensure(py, target, e.ts)?;
        let NativeUsers {
            model,
            users,
            dirty,
            out,
            ..
        } = self;
        let entry = users.get_mut(target).expect("ensured");
        if entry.stored.seen(key, offset) {
            return Ok((true, PyList::empty(py)));
        }
        let origin = Origin {
            actor: str_of(&actor_item)?,
            ref_tweet_id,
            ref_hashtags: &ref_hashtags,
        };
        apply_engagement(&mut entry.stored.state, &e, &origin, model);
        entry.stored.set_position(key, offset);
        let state = &mut entry.stored.state;
        let now = state.last_ts;
        if let Some(change) = detect_change(target, state, now, model, "engagement") {
            out.push(Emitted {
                change,
                cause: CauseId::Event(str_of(&id_item)?.into()),
            });
        }
        Self::mark_dirty(dirty, entry, target);
        Ok((false, self.changes(py)?))
    }

    /// The decay watch's check of one user at a day boundary (`scoring.watch.check_decay`):
    /// False if the user is gone, else its `Emitted` changes (none or one), the user marked
    /// changed when it has one. `fall_only`: a resumed watch's re-check.
    fn decay<'py>(
        &mut self,
        py: Python<'py>,
        user: &str,
        day: i64,
        fall_only: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        if !self.present(py, user)? {
            return Ok(false.into_pyobject(py)?.to_owned().into_any());
        }
        let NativeUsers {
            model,
            users,
            dirty,
            out,
            ..
        } = self;
        let entry = users.get_mut(user).expect("present");
        let boundary = day * DAY_MS;
        let state = &mut entry.stored.state;
        if state.last_ts > boundary {
            return Ok(PyList::empty(py).into_any());
        }
        if fall_only {
            let Some(published) = state.published else {
                return Ok(PyList::empty(py).into_any());
            };
            let fallen = score_of(&read_mass(state, boundary, model), model);
            if fallen > published - model.change_threshold {
                return Ok(PyList::empty(py).into_any());
            }
        }
        if let Some(change) = detect_change(user, state, boundary, model, "decay") {
            out.push(Emitted {
                change,
                cause: CauseId::Decay(day),
            });
            Self::mark_dirty(dirty, entry, user);
        }
        Ok(self.changes(py)?.into_any())
    }

    /// `UserCache.mark`.
    fn mark(&mut self, user: &str) {
        if let Some(entry) = self.users.get_mut(user) {
            Self::mark_dirty(&mut self.dirty, entry, user);
        }
    }

    /// Every changed user as (key, stored bytes, last event time, bound), in the order first
    /// changed, and marked clean; `bound` is what `pipeline.leaders` ranks it by: None for a
    /// user who received nothing, else (day of the last update, score at that day's start,
    /// [(topic, score bound)]). As `UserCache.flush`, the decoded users are dropped after it
    /// when there are more than `max_clean`.
    #[allow(clippy::type_complexity)]
    fn flush<'py>(
        &mut self,
        py: Python<'py>,
    ) -> PyResult<
        Vec<(
            Bound<'py, PyBytes>,
            Bound<'py, PyBytes>,
            i64,
            Option<(i64, f64, Vec<(String, f64)>)>,
        )>,
    > {
        let mut records = Vec::with_capacity(self.dirty.len());
        let mut buffer = Vec::with_capacity(4096);
        for user in std::mem::take(&mut self.dirty) {
            let Some(entry) = self.users.get_mut(&user) else {
                continue;
            };
            entry.dirty = false;
            buffer.clear();
            write_stored(&mut buffer, &entry.stored);
            let state = &mut entry.stored.state;
            let bound = if state.received.is_some() {
                let day = floor_div(state.last_ts, DAY_MS);
                let mass = read_mass(state, day * DAY_MS, &self.model);
                let topics = if state.topics.is_empty() {
                    Vec::new()
                } else {
                    topic_scores(state, &mass, &self.model)
                };
                Some((day, score_of(&mass, &self.model), topics))
            } else {
                None
            };
            records.push((
                PyBytes::new(py, user.as_bytes()),
                PyBytes::new(py, &buffer),
                state.last_ts,
                bound,
            ));
        }
        if self.users.len() > self.max_clean {
            self.users.clear();
        }
        Ok(records)
    }

    /// `UserCache.forget` in memory: True if the user was decoded here.
    fn forget(&mut self, user: &str) -> bool {
        self.dirty.retain(|u| u != user);
        self.users.remove(user).is_some()
    }

    /// `UserCache.clear`: unflushed changes dropped.
    fn clear(&mut self) {
        self.users.clear();
        self.dirty.clear();
    }

    /// The user changed since the last flush.
    fn is_dirty(&self, user: &str) -> bool {
        self.users.get(user).is_some_and(|e| e.dirty)
    }

    /// Users changed since the last flush.
    fn changed(&self) -> usize {
        self.dirty.len()
    }

    fn __len__(&self) -> usize {
        self.users.len()
    }

    /// The user's state as `scoring.state.state_from_row` reads it (full precision), if
    /// decoded here: for tests and explanations.
    fn state_row<'py>(&self, py: Python<'py>, user: &str) -> PyResult<Option<Bound<'py, PyList>>> {
        match self.users.get(user) {
            None => Ok(None),
            Some(entry) => super::rows::state_row(&entry.stored.state, py).map(Some),
        }
    }
}
