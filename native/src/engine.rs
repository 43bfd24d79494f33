//! The embedded engine (pipeline/engine.py with scoring/watch.py): the actor step then the
//! target step for each event, in stream order, and decay-only changes at each UTC day
//! boundary the stream's event time crosses.

use crate::state::Id;
use std::collections::BTreeMap;

use indexmap::IndexMap;
use rustc_hash::{FxBuildHasher, FxHashMap};

use crate::acting::{apply_action, Outcome};
use crate::event::Event;
use crate::model::{floor_div, Model, DAY_MS};
use crate::receiving::{apply_engagement, Origin};
use crate::score::{detect_change, ScoreChange};
use crate::state::UserState;

/// What caused a change: an event (its id) or a day boundary (`decay:<day>`).
pub enum CauseId {
    Event(Id),
    Decay(i64),
}

pub struct Emitted {
    pub change: ScoreChange,
    pub cause: CauseId,
}

#[derive(Default, Clone)]
pub struct Stats {
    /// Events scored, by kind (in `Kind::ALL` order).
    pub events: [u64; 5],
    pub duplicates: u64,
    pub self_engagements: u64,
    pub score_changes: u64,
    pub decay_changes: u64,
}

/// The users whose score decay may still move a point, in the order they were first noted.
#[derive(Default)]
struct DecayWatch {
    now: Option<i64>,
    seq: FxHashMap<Id, u64>,
    order: BTreeMap<u64, Id>,
    next: u64,
}

impl DecayWatch {
    fn note(&mut self, change: &ScoreChange, model: &Model) {
        if change.score >= model.decay_check_min_score {
            if !self.seq.contains_key(change.user.as_str()) {
                let user: Id = change.user.as_str().into();
                self.seq.insert(user.clone(), self.next);
                self.order.insert(self.next, user);
                self.next += 1;
            }
        } else if let Some(n) = self.seq.remove(change.user.as_str()) {
            self.order.remove(&n);
        }
    }
}

pub struct Engine {
    pub model: Model,
    /// Boxed: the map's entries stay small, so growing it moves 40 bytes a user, not 250.
    pub states: IndexMap<Id, Box<UserState>, FxBuildHasher>,
    pub stats: Stats,
    watch: DecayWatch,
}

impl Engine {
    pub fn new(model: Model) -> Self {
        Engine {
            model,
            states: IndexMap::default(),
            stats: Stats::default(),
            watch: DecayWatch::default(),
        }
    }

    pub fn now(&self) -> Option<i64> {
        self.watch.now
    }

    fn index_of(&mut self, user: &str, ts: i64) -> usize {
        match self.states.get_index_of(user) {
            Some(i) => i,
            None => {
                self.states
                    .insert_full(user.into(), Box::new(UserState::new(ts)))
                    .0
            }
        }
    }

    /// Applies one event; its score changes (decay ones first) are appended to `out`.
    pub fn process(&mut self, event: &Event, out: &mut Vec<Emitted>) {
        let ts = event.ts;
        self.advance_to(ts, out);
        let actor = self.index_of(&event.actor, ts);
        let result = apply_action(&mut self.states[actor], event, &self.model);
        match result.outcome {
            Outcome::Duplicate => {
                self.stats.duplicates += 1;
                return;
            }
            Outcome::SelfEngagement => {
                self.stats.self_engagements += 1;
                return;
            }
            _ => {}
        }
        self.stats.events[event.kind.index()] += 1;
        if let (Outcome::Engagement, Some(engagement), Some(target_id)) =
            (result.outcome, &result.engagement, event.target.as_deref())
        {
            let target = self.index_of(target_id, ts);
            let origin = Origin {
                actor: &event.actor,
                ref_tweet_id: event.ref_tweet_id.as_deref(),
                ref_hashtags: &event.ref_hashtags,
            };
            apply_engagement(&mut self.states[target], engagement, &origin, &self.model);
            self.check(target, "engagement", &event.id, out);
        }
        if self.states[actor].received.is_some() {
            if let Some(cause) = result.actor_score_cause() {
                self.check(actor, cause, &event.id, out);
            }
        }
    }

    fn check(&mut self, index: usize, cause: &'static str, cause_id: &str, out: &mut Vec<Emitted>) {
        let (user, state) = self.states.get_index_mut(index).expect("known user");
        let now = state.last_ts;
        if let Some(change) = detect_change(user, state, now, &self.model, cause) {
            self.stats.score_changes += 1;
            self.watch.note(&change, &self.model);
            out.push(Emitted {
                change,
                cause: CauseId::Event(cause_id.into()),
            });
        }
    }

    /// Moves stream time to `ts`, appending decay-only changes at each day boundary crossed.
    pub fn advance_to(&mut self, ts: i64, out: &mut Vec<Emitted>) {
        let Some(now) = self.watch.now else {
            self.watch.now = Some(ts);
            return;
        };
        if ts <= now {
            return;
        }
        self.watch.now = Some(ts);
        for day in floor_div(now, DAY_MS) + 1..=floor_div(ts, DAY_MS) {
            let boundary = day * DAY_MS;
            let users: Vec<Id> = self.watch.order.values().cloned().collect();
            for user in users {
                let Some(state) = self.states.get_mut(&*user) else {
                    if let Some(n) = self.watch.seq.remove(&*user) {
                        self.watch.order.remove(&n);
                    }
                    continue;
                };
                if state.last_ts > boundary {
                    continue;
                }
                if let Some(change) = detect_change(&user, state, boundary, &self.model, "decay") {
                    self.watch.note(&change, &self.model);
                    self.stats.decay_changes += 1;
                    self.stats.score_changes += 1;
                    out.push(Emitted {
                        change,
                        cause: CauseId::Decay(day),
                    });
                }
            }
        }
    }
}
