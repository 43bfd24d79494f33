//! The target's side of an engagement (scoring/receiving.py): order-independent sums only.

use crate::acting::Engagement;
use crate::clock::GraceClock;
use crate::mass::{burst_curve, day_shares};
use crate::model::{floor_div, Model, DAY_MS, NO_DAY};
use crate::state::Id;
use crate::state::{DayBucket, InPair, ReceivedState, UserState};
use crate::topics::record_topic_engagement;
use crate::windows::add_to_windows;

const MENTION: usize = 3;

/// What the target's side needs of the event besides the engagement.
pub struct Origin<'a> {
    pub actor: &'a str,
    pub ref_tweet_id: Option<&'a str>,
    pub ref_hashtags: &'a [Id],
}

pub fn apply_engagement(state: &mut UserState, e: &Engagement, origin: &Origin, model: &Model) {
    if state.received.is_none() {
        state.received = Some(Box::new(ReceivedState::new(state.landmark)));
    }
    let contribution = e.weight * e.selectivity * e.pair * e.automation;
    let ts = e.ts;
    let day = floor_div(ts, DAY_MS);
    let newest_is_day = {
        let buckets = &state.received.as_ref().expect("set").buckets;
        !buckets.is_empty() && buckets[buckets.len() - 1].day == day
    };
    let index = if newest_is_day {
        Some(state.received.as_ref().expect("set").buckets.len() - 1)
    } else {
        bucket_for(state, day, model)
    };
    match index {
        Some(i) => {
            let bucket = &mut state.received.as_mut().expect("set").buckets[i];
            bucket.raw += contribution;
            if e.kind != MENTION {
                bucket.content += contribution;
            }
            let offset = (ts - day * DAY_MS) as f64;
            bucket.fast += contribution * (model.fast_rate * offset).exp();
            bucket.slow += contribution * (model.slow_rate * offset).exp();
            bucket.burst += contribution * (model.burst_rate * offset).exp();
        }
        None => add_late(state, day, ts, contribution, model),
    }
    add_pair(state, origin.actor, ts, contribution, day, model);
    let growth = (model.fast_rate * (ts - state.landmark) as f64).exp();
    let received = state.received.as_deref_mut().expect("set");
    received.kind_mass[e.kind] += contribution * growth;
    let removed = &mut received.removed;
    if e.selectivity != 1.0 {
        removed[0] += e.weight * (1.0 - e.selectivity) * growth;
    }
    if e.pair != 1.0 {
        removed[1] += e.weight * e.selectivity * (1.0 - e.pair) * growth;
    }
    if e.automation != 1.0 {
        removed[2] += e.weight * e.selectivity * e.pair * (1.0 - e.automation) * growth;
    }
    received.counts[e.kind] += 1;
    add_to_windows(&mut received.windows, ts, e.kind, model.minute_bucket_ms);
    if !origin.ref_hashtags.is_empty() {
        record_topic_engagement(
            &mut state.topics,
            origin.ref_hashtags,
            contribution * growth,
            origin.actor,
            origin.ref_tweet_id,
            model,
        );
    }
    if ts > state.last_ts {
        state.last_ts = ts;
    }
}

fn add_pair(
    state: &mut UserState,
    actor: &str,
    ts: i64,
    contribution: f64,
    day: i64,
    model: &Model,
) {
    let amount = contribution * (model.reciprocity_rate * (ts - state.landmark) as f64).exp();
    let engaged_back = state
        .acting
        .as_ref()
        .is_some_and(|a| a.out_pairs.contains_key(actor));
    let received = state.received.as_deref_mut().expect("set");
    received.pair_total += amount;
    if !received.in_pairs.contains_key(actor) {
        if !received.evicted.is_empty() && received.evicted.might_contain(actor) {
            received.in_pairs.insert(
                actor.into(),
                InPair {
                    mass: 0.0,
                    first_day: NO_DAY,
                    reciprocal: false,
                },
            );
        } else {
            received.in_pairs.insert(
                actor.into(),
                InPair {
                    mass: 0.0,
                    first_day: day,
                    reciprocal: false,
                },
            );
            count_new_engager(received, &mut state.clock, state.landmark, day, 1, model);
        }
        // Python keeps adding to an entry the cap just evicted; its mass then only reaches
        // the reciprocal sum, never the map
        let mut detached = None;
        if received.in_pairs.len() > model.max_in_pairs + model.max_in_pairs / 4 {
            let fresh = received.in_pairs.get(actor).cloned();
            evict_in_pairs(received, model.max_in_pairs);
            if !received.in_pairs.contains_key(actor) {
                detached = fresh;
            }
        }
        if let Some(mut pair) = detached {
            finish_pair(
                &mut pair,
                &mut received.pair_reciprocal,
                &mut received.reciprocal_engagers,
                amount,
                engaged_back,
            );
            return;
        }
    } else {
        let pair = received.in_pairs.get_mut(actor).expect("present");
        if day < pair.first_day {
            let old = pair.first_day;
            pair.first_day = day;
            count_new_engager(received, &mut state.clock, state.landmark, old, -1, model);
            count_new_engager(received, &mut state.clock, state.landmark, day, 1, model);
        }
    }
    let (pairs, reciprocal) = (&mut received.in_pairs, &mut received.pair_reciprocal);
    let pair = pairs.get_mut(actor).expect("present");
    finish_pair(
        pair,
        reciprocal,
        &mut received.reciprocal_engagers,
        amount,
        engaged_back,
    );
}

fn finish_pair(
    pair: &mut InPair,
    reciprocal_sum: &mut f64,
    mutual: &mut i64,
    amount: f64,
    engaged_back: bool,
) {
    pair.mass += amount;
    if pair.reciprocal {
        *reciprocal_sum += amount;
    } else if engaged_back {
        pair.reciprocal = true;
        *reciprocal_sum += pair.mass;
        *mutual += 1;
    }
}

fn count_new_engager(
    received: &mut ReceivedState,
    clock: &mut GraceClock,
    landmark: i64,
    day: i64,
    delta: i64,
    model: &Model,
) {
    let buckets = &mut received.buckets;
    if let Some(last) = buckets.last_mut() {
        if last.day == day {
            last.new_engagers += delta;
            return;
        }
    }
    received.shares = None;
    for bucket in buckets.iter_mut() {
        if bucket.day == day {
            bucket.new_engagers += delta;
            return;
        }
    }
    let day_f = day as f64;
    for row in received.history.chunks_exact_mut(3) {
        if row[0] == day_f {
            row[2] += delta as f64;
            break;
        }
    }
    received.sealed_engagers += delta as f64;
    if model.engager_score {
        let has_runs = !clock.runs.is_empty();
        if has_runs {
            let until = day + model.engager_hold_days;
            clock.prepare_pauses(until, model.grace_days, model.grace_renew_days);
        }
        let pauses: &[(i64, i64)] = if has_runs { clock.pauses() } else { &[] };
        seal_engagers(received, clock, pauses, landmark, day, delta as f64, model);
    }
}

/// Folds a day's engagers into model 2's sums, valued from the end of their hold
/// (scoring/receiving.py `_seal_engagers`).
fn seal_engagers(
    received: &mut ReceivedState,
    clock: &GraceClock,
    pauses: &[(i64, i64)],
    landmark: i64,
    day: i64,
    engagers: f64,
    model: &Model,
) {
    let hold_day = day + model.engager_hold_days;
    let hold_end = hold_day * DAY_MS;
    let paused = if pauses.is_empty() {
        clock.folded_paused
    } else {
        clock.paused_before(hold_day, pauses)
    };
    let tau_end = hold_end - paused * DAY_MS;
    received.sealed_engager_fast +=
        engagers * (model.fast_rate * (tau_end - landmark) as f64).exp();
    received.sealed_engager_slow +=
        engagers * (model.slow_rate * (hold_end - landmark) as f64).exp();
}

fn evict_in_pairs(received: &mut ReceivedState, keep: usize) {
    let mut ranked: Vec<(f64, Id, InPair)> = received
        .in_pairs
        .take_all()
        .into_iter()
        .map(|(user, p)| (-p.mass, user, p))
        .collect();
    ranked.sort_by(|a, b| {
        a.0.partial_cmp(&b.0)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.1.cmp(&b.1))
    });
    for (_, user, _) in &ranked[keep.min(ranked.len())..] {
        received.evicted.add(user);
    }
    ranked.truncate(keep);
    received.in_pairs = ranked.into_iter().map(|(_, user, p)| (user, p)).collect();
}

/// The open bucket for `day` (creating it, folding old days), or None for a folded day.
fn bucket_for(state: &mut UserState, day: i64, model: &Model) -> Option<usize> {
    let received = state.received.as_deref_mut().expect("set");
    received.shares = None;
    let buckets = &mut received.buckets;
    if buckets.is_empty() || day > buckets[buckets.len() - 1].day {
        if buckets.is_empty() {
            buckets.reserve_exact(1);
        }
        buckets.push(DayBucket::new(day));
        seal_old_days(state, day - model.open_days, model);
        return Some(state.received.as_ref().expect("set").buckets.len() - 1);
    }
    if day <= buckets[buckets.len() - 1].day - model.open_days {
        return None;
    }
    for i in 0..buckets.len() {
        if buckets[i].day == day {
            return Some(i);
        }
        if buckets[i].day > day {
            buckets.insert(i, DayBucket::new(day));
            return Some(i);
        }
    }
    unreachable!("day lies before the newest bucket")
}

fn seal_old_days(state: &mut UserState, last_day: i64, model: &Model) {
    let landmark = state.landmark;
    let clock = &mut state.clock;
    let received = state.received.as_deref_mut().expect("set");
    if received.buckets.is_empty() || received.buckets[0].day > last_day {
        return;
    }
    let shares = day_shares(received, model);
    let has_runs = !clock.runs.is_empty();
    if has_runs {
        clock.prepare_pauses(last_day + 1, model.grace_days, model.grace_renew_days);
    }
    let pauses: &[(i64, i64)] = if has_runs { clock.pauses() } else { &[] };
    let mut sealed = 0;
    for (bucket, share) in received.buckets.iter().zip(shares.iter()) {
        if bucket.day > last_day {
            break;
        }
        let start = bucket.day * DAY_MS;
        let tau_start = start - clock.paused_before(bucket.day, pauses) * DAY_MS;
        received.sealed_fast +=
            share.regular * bucket.fast * (model.fast_rate * (tau_start - landmark) as f64).exp();
        received.sealed_slow +=
            share.regular * bucket.slow * (model.slow_rate * (start - landmark) as f64).exp();
        add_burst_to(
            &mut received.sealed_burst,
            &mut received.sealed_burst_engagers,
            &mut received.burst_ref,
            start,
            share.excess * bucket.burst,
            share.burst_engagers,
            model,
        );
        received.sealed_engagers += share.engagers;
        received
            .history
            .extend([bucket.day as f64, bucket.raw, bucket.new_engagers as f64]);
        sealed += 1;
    }
    if model.engager_score && sealed > 0 {
        let days: Vec<(i64, f64)> = received.buckets[..sealed]
            .iter()
            .zip(shares.iter())
            .map(|(b, s)| (b.day, s.engagers))
            .collect();
        if has_runs {
            let until = last_day + model.engager_hold_days;
            clock.prepare_pauses(until, model.grace_days, model.grace_renew_days);
        }
        let pauses: &[(i64, i64)] = if has_runs { clock.pauses() } else { &[] };
        for (day, engagers) in days {
            seal_engagers(received, clock, pauses, landmark, day, engagers, model);
        }
    }
    received.buckets.drain(..sealed);
    received.shares = None;
    let horizon = (last_day - model.baseline_days) as f64;
    let history = &mut received.history;
    let keep = (0..history.len())
        .step_by(3)
        .find(|&j| history[j] >= horizon)
        .unwrap_or(history.len());
    history.drain(..keep);
}

fn add_burst_to(
    sealed_burst: &mut f64,
    sealed_engagers: &mut f64,
    burst_ref: &mut i64,
    start: i64,
    excess: f64,
    engagers: f64,
    model: &Model,
) {
    if start > *burst_ref {
        let decay = (-model.burst_rate * (start - *burst_ref) as f64).exp();
        *sealed_burst *= decay;
        *sealed_engagers *= decay;
        *burst_ref = start;
        *sealed_burst += excess;
        *sealed_engagers += engagers;
    } else {
        let decay = (-model.burst_rate * (*burst_ref - start) as f64).exp();
        *sealed_burst += excess * decay;
        *sealed_engagers += engagers * decay;
    }
}

fn add_late(state: &mut UserState, day: i64, ts: i64, contribution: f64, model: &Model) {
    let received = state.received.as_deref_mut().expect("set");
    let mut raw = 0.0;
    let day_f = day as f64;
    for row in received.history.chunks_exact_mut(3) {
        if row[0] == day_f {
            raw = row[1];
            row[1] += contribution;
            received.shares = None;
            break;
        }
    }
    let marginal = burst_curve(raw + contribution, model.kappa) - burst_curve(raw, model.kappa);
    let clock = &mut state.clock;
    let has_runs = !clock.runs.is_empty();
    if has_runs {
        clock.prepare_pauses(day + 1, model.grace_days, model.grace_renew_days);
    }
    let pauses: &[(i64, i64)] = if has_runs { clock.pauses() } else { &[] };
    let tau = ts - clock.paused_before(day, pauses) * DAY_MS;
    received.sealed_fast += marginal * (model.fast_rate * (tau - state.landmark) as f64).exp();
    received.sealed_slow += marginal * (model.slow_rate * (ts - state.landmark) as f64).exp();
}
