//! The actor's side of an event (scoring/acting.py): count it once, advance the clock and own
//! topics, and turn an engagement into the discounts only the actor's history can tell.

use crate::event::{Event, Kind};
use crate::model::{floor_div, Model, DAY_MS, HOUR_MS};
use crate::state::Id;
use crate::state::{
    ActingState, UserState, ACTION_COUNTERS, DAY, DAY_COUNT, HOUR, HOUR_COUNT, PREVIOUS_HOUR_COUNT,
};
use crate::topics::record_own_tweet;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Own,
    Engagement,
    SelfEngagement,
    Duplicate,
}

/// What the actor's side sends to the target's side.
#[derive(Clone, Debug)]
pub struct Engagement {
    pub kind: usize,
    pub ts: i64,
    pub weight: f64,
    pub selectivity: f64,
    pub pair: f64,
    pub automation: f64,
}

pub struct ActionResult {
    pub outcome: Outcome,
    pub engagement: Option<Engagement>,
    pub reciprocity_changed: bool,
    pub topics_changed: bool,
    pub audience_changed: bool,
}

impl ActionResult {
    fn only(outcome: Outcome) -> Self {
        ActionResult {
            outcome,
            engagement: None,
            reciprocity_changed: false,
            topics_changed: false,
            audience_changed: false,
        }
    }

    pub fn actor_score_cause(&self) -> Option<&'static str> {
        if self.reciprocity_changed {
            Some("reciprocity")
        } else if self.topics_changed {
            Some("topics")
        } else if self.audience_changed {
            Some("audience")
        } else {
            None
        }
    }
}

fn selectivity(count_today: i64, model: &Model) -> f64 {
    let s = (model.selectivity_free_per_day / count_today as f64).sqrt();
    if s < 1.0 {
        s
    } else {
        1.0
    }
}

fn automation(rate: f64, model: &Model) -> f64 {
    let free = model.automation_free_per_hour;
    if rate <= free {
        return 1.0;
    }
    let (full, low) = (model.automation_full_per_hour, model.automation_min_factor);
    if rate >= full {
        return low;
    }
    1.0 - (1.0 - low) * (rate - free) / (full - free)
}

fn pair_factor(earlier: f64) -> f64 {
    1.0 / ((1.0 + earlier) * (1.0 + earlier))
}

fn count_day(counters: &mut [i64], at: usize, day: i64) -> i64 {
    if day > counters[at + DAY] {
        counters[at + DAY] = day;
        counters[at + DAY_COUNT] = 1;
    } else {
        counters[at + DAY_COUNT] += 1;
    }
    counters[at + DAY_COUNT]
}

fn hourly_rate(counters: &mut [i64], at: usize, ts: i64) -> f64 {
    let hour = floor_div(ts, HOUR_MS);
    let stored = counters[at + HOUR];
    if hour == stored + 1 {
        counters[at + PREVIOUS_HOUR_COUNT] = counters[at + HOUR_COUNT];
        counters[at + HOUR_COUNT] = 0;
    } else if hour > stored {
        counters[at + PREVIOUS_HOUR_COUNT] = 0;
        counters[at + HOUR_COUNT] = 0;
    }
    if hour >= stored {
        counters[at + HOUR] = hour;
    }
    counters[at + HOUR_COUNT] += 1;
    let elapsed = ts.rem_euclid(HOUR_MS) as f64 / HOUR_MS as f64;
    counters[at + HOUR_COUNT] as f64 + counters[at + PREVIOUS_HOUR_COUNT] as f64 * (1.0 - elapsed)
}

fn evict_out_pairs(acting: &mut ActingState, keep: usize) {
    let mut ranked: Vec<(f64, Id, [f64; 3])> = acting
        .out_pairs
        .take_all()
        .into_iter()
        .map(|(user, c)| (-(0.0 + c[0] + c[1] + c[2]), user, c))
        .collect();
    ranked.sort_by(|a, b| {
        a.0.partial_cmp(&b.0)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.1.cmp(&b.1))
    });
    ranked.truncate(keep);
    acting.out_pairs = ranked.into_iter().map(|(_, user, c)| (user, c)).collect();
}

/// Returns (p_au, reciprocity changed) and counts the engagement of `target`.
fn engage_pair(
    state: &mut UserState,
    target: &str,
    source: usize,
    ts: i64,
    model: &Model,
) -> (f64, bool) {
    let growth = (model.actor_pair_rate * (ts - state.landmark) as f64).exp();
    let acting = state.acting.as_deref_mut().expect("acting exists");
    let first_time = !acting.out_pairs.contains_key(target);
    let mut counts = [0.0; 3];
    if first_time {
        acting.out_pairs.insert(target.into(), counts);
        if acting.out_pairs.len() > model.max_out_pairs + model.max_out_pairs / 4 {
            evict_out_pairs(acting, model.max_out_pairs);
        }
    } else {
        counts = *acting.out_pairs.get(target).expect("present");
    }
    let factor = pair_factor(counts[source] / growth);
    // an entry the cap just evicted is gone: the count is lost with it, as in Python
    if let Some(stored) = acting.out_pairs.get_mut(target) {
        stored[source] += growth;
    }
    let mut changed = false;
    if first_time {
        if let Some(received) = state.received.as_deref_mut() {
            if let Some(engager) = received.in_pairs.get_mut(target) {
                if !engager.reciprocal {
                    engager.reciprocal = true;
                    received.pair_reciprocal += engager.mass;
                    received.reciprocal_engagers += 1;
                    changed = true;
                }
            }
        }
    }
    (factor, changed)
}

pub fn apply_action(state: &mut UserState, event: &Event, model: &Model) -> ActionResult {
    let acting = state.acting.get_or_insert_with(Default::default);
    if acting.recent_ids.iter().any(|id| **id == *event.id) {
        return ActionResult::only(Outcome::Duplicate);
    }
    if acting.recent_ids.is_empty() {
        acting.recent_ids.reserve_exact(1);
    }
    acting.recent_ids.push(event.id.clone());
    if acting.recent_ids.len() > model.dedup_ids {
        acting.recent_ids.remove(0);
    }
    if event.target.as_deref() == Some(&*event.actor) {
        return ActionResult::only(Outcome::SelfEngagement);
    }
    let ts = event.ts;
    let day = floor_div(ts, DAY_MS);
    state.clock.record_action(
        day,
        model.max_action_runs,
        model.grace_days,
        model.grace_renew_days,
    );
    if ts > state.last_ts {
        state.last_ts = ts;
    }
    let mut audience_changed = false;
    if let Some(followers) = event.followers {
        if ts >= state.followers_ts {
            audience_changed = Some(followers) != state.followers;
            state.followers = Some(followers);
            state.followers_ts = ts;
        }
    }
    let mut topics_changed = false;
    if !event.hashtags.is_empty() && matches!(event.kind, Kind::Tweet | Kind::Quote | Kind::Reply) {
        record_own_tweet(&mut state.topics, &event.hashtags, day, model);
        topics_changed = true;
    }
    let Some(target) = event.target.as_deref() else {
        return ActionResult {
            outcome: Outcome::Own,
            engagement: None,
            reciprocity_changed: false,
            topics_changed,
            audience_changed,
        };
    };
    let kind_index = event
        .kind
        .engagement_index()
        .expect("only tweets have no engagement kind");
    let source = event.kind.source();
    let at = source * ACTION_COUNTERS;
    let acting = state.acting.as_deref_mut().expect("acting exists");
    let count_today = count_day(&mut acting.counters, at, day);
    let rate = hourly_rate(&mut acting.counters, at, ts);
    let (pair, reciprocity_changed) = engage_pair(state, target, source, ts, model);
    ActionResult {
        outcome: Outcome::Engagement,
        engagement: Some(Engagement {
            kind: kind_index,
            ts,
            weight: model.kind_weight(kind_index),
            selectivity: selectivity(count_today, model),
            pair,
            automation: automation(rate, model),
        }),
        reciprocity_changed,
        topics_changed,
        audience_changed,
    }
}
