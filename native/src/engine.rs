//! The embedded engine (pipeline/engine.py with scoring/watch.py): the actor step then the
//! target step for each event, in stream order, and decay-only changes at each UTC day
//! boundary the stream's event time crosses.

use crate::quality::{audience_quality, confidence, AudienceQuality};
use crate::state::Id;
use std::collections::BTreeMap;

use hashbrown::HashMap;
use rustc_hash::FxBuildHasher;

use crate::acting::{apply_action, Outcome};
use crate::event::Event;
use crate::history::ScoreHistory;
use crate::mass::read_mass;
use crate::model::{floor_div, Model, DAY_MS};
use crate::receiving::{apply_engagement, Origin};
use crate::score::{detect_change, score_of, topic_scores, ScoreChange};
use crate::state::UserState;
use crate::windows::read_windows;

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
/// A user's place in that order is kept in its state (`UserState::watched`), so noting a
/// change looks nothing up.
#[derive(Default)]
struct DecayWatch {
    now: Option<i64>,
    order: BTreeMap<u64, Id>,
    next: u64,
}

impl DecayWatch {
    fn note(&mut self, user: &str, state: &mut UserState, score: f64, model: &Model) {
        if score >= model.decay_check_min_score {
            if state.watched == 0 {
                self.next += 1;
                state.watched = self.next;
                self.order.insert(self.next, user.into());
            }
        } else if state.watched != 0 {
            self.order.remove(&state.watched);
            state.watched = 0;
        }
    }
}

type States = HashMap<Id, Box<UserState>, FxBuildHasher>;

/// The state of `user`, created at `ts` if new (its id then goes to `order`).
fn state_of<'a>(
    states: &'a mut States,
    order: &mut Vec<Id>,
    user: &str,
    ts: i64,
) -> &'a mut UserState {
    states.entry_ref(user).or_insert_with(|| {
        order.push(user.into());
        Box::new(UserState::new(ts))
    })
}

pub struct Snapshot {
    pub score: f64,
    pub mass: f64,
    pub effective_mass: f64,
    pub counts: [i64; 4],
    pub windows: [[i64; 4]; 3],
    pub topics: Vec<(String, f64)>,
    pub received: bool,
    pub landmark: i64,
    pub history: Option<ScoreHistory>,
    /// Audience quality (0-100) and what each rule removed, then confidence (quality.rs).
    pub quality: AudienceQuality,
    pub confidence: f64,
}

pub struct Engine {
    pub model: Model,
    /// Boxed states: growing the table moves 32 bytes a user, not 180.
    pub states: States,
    /// User ids in the order they were first seen (Python's dict order).
    pub order: Vec<Id>,
    pub stats: Stats,
    watch: DecayWatch,
}

impl Engine {
    pub fn new(model: Model) -> Self {
        Engine {
            model,
            states: HashMap::default(),
            order: Vec::new(),
            stats: Stats::default(),
            watch: DecayWatch::default(),
        }
    }

    pub fn now(&self) -> Option<i64> {
        self.watch.now
    }

    /// Applies one event; its score changes (decay ones first) are appended to `out`.
    pub fn process(&mut self, event: &Event, out: &mut Vec<Emitted>) {
        let ts = event.ts;
        self.advance_to(ts, out);
        let actor = state_of(&mut self.states, &mut self.order, &event.actor, ts);
        let result = apply_action(actor, event, &self.model);
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
            let target = state_of(&mut self.states, &mut self.order, target_id, ts);
            let origin = Origin {
                actor: &event.actor,
                ref_tweet_id: event.ref_tweet_id.as_deref(),
                ref_hashtags: &event.ref_hashtags,
            };
            apply_engagement(target, engagement, &origin, &self.model);
            self.check(target_id, "engagement", &event.id, out);
        }
        if let Some(cause) = result.actor_score_cause() {
            if self.states[&*event.actor].received.is_some() {
                self.check(&event.actor, cause, &event.id, out);
            }
        }
    }

    fn check(&mut self, user: &str, cause: &'static str, cause_id: &str, out: &mut Vec<Emitted>) {
        let state = self.states.get_mut(user).expect("known user");
        let now = state.last_ts;
        if let Some(change) = detect_change(user, state, now, &self.model, cause) {
            self.stats.score_changes += 1;
            self.watch.note(user, state, change.score, &self.model);
            out.push(Emitted {
                change,
                cause: CauseId::Event(cause_id.into()),
            });
        }
    }

    /// What a snapshot line shows of `user` at event time `now` (pipeline.replay's
    /// `snapshot_record`): score, raw and effective mass, counts, windows, published topics.
    pub fn snapshot(&mut self, user: &str, now: i64) -> Option<Snapshot> {
        let state = self.states.get_mut(user)?;
        let mass = read_mass(state, now, &self.model);
        let (counts, windows) = match state.received.as_deref() {
            Some(r) => (
                r.counts,
                read_windows(&r.windows, now, self.model.minute_bucket_ms),
            ),
            None => ([0; 4], [[0; 4]; 3]),
        };
        let quality = audience_quality(state, &mass, &self.model);
        let confidence = confidence(state, &mass);
        Some(Snapshot {
            quality,
            confidence,
            score: score_of(&mass, &self.model),
            mass: mass.z,
            effective_mass: mass.effective,
            counts,
            windows,
            topics: topic_scores(state, &mass, &self.model),
            received: state.received.is_some(),
            landmark: state.landmark,
            history: state
                .received
                .as_deref()
                .and_then(|r| r.score_history.as_deref().cloned()),
        })
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
                let state = self
                    .states
                    .get_mut(&*user)
                    .expect("watched users have states");
                if state.last_ts > boundary {
                    continue;
                }
                if let Some(change) = detect_change(&user, state, boundary, &self.model, "decay") {
                    self.watch.note(&user, state, change.score, &self.model);
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
