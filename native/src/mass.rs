//! Reading a user's mass at an event time (scoring/mass.py): decay, grace, bursts,
//! reciprocity, shrinkage and audience, applied at read time to order-independent sums.

use crate::clock::GraceClock;
use crate::model::{Model, DAY_MS};
use crate::state::{DayBucket, ReceivedState, UserState};

pub fn burst_curve(x: f64, kappa: f64) -> f64 {
    kappa * (x / kappa).ln_1p()
}

#[derive(Clone, Copy, Debug)]
pub struct DayShare {
    pub regular: f64,
    pub excess: f64,
    pub engagers: f64,
    pub burst_engagers: f64,
}

pub fn day_share(
    bucket: &DayBucket,
    baseline_raw: f64,
    baseline_engagers: f64,
    model: &Model,
) -> DayShare {
    let kappa = model.kappa;
    let raw = bucket.raw;
    let (mut regular, mut excess) = (0.0, 0.0);
    if raw > 0.0 {
        let total = kappa * (raw / kappa).ln_1p();
        let baseline = if baseline_raw > model.baseline_floor {
            baseline_raw
        } else {
            model.baseline_floor
        };
        if raw <= baseline {
            regular = total / raw;
        } else {
            let regular_total = kappa * (baseline / kappa).ln_1p();
            let mention = raw - bucket.content;
            let kind_weight = (bucket.content * model.content_excess_weight
                + mention * model.mention_excess_weight)
                / raw;
            regular = regular_total / raw;
            excess = (total - regular_total) * kind_weight / raw;
        }
    }
    let floor = model.engager_baseline_floor;
    let engager_base = if baseline_engagers > floor {
        baseline_engagers
    } else {
        floor
    };
    let new = bucket.new_engagers as f64;
    if new <= engager_base {
        return DayShare {
            regular,
            excess,
            engagers: new,
            burst_engagers: 0.0,
        };
    }
    let burst_engagers = burst_curve(new, kappa) - burst_curve(engager_base, kappa);
    if model.engager_score && raw > 0.0 {
        // model 2: a viral post's new engagers are content, a party's are name-drops
        let mention = raw - bucket.content;
        let weight = (bucket.content * model.content_burst_weight
            + mention * model.engager_excess_weight)
            / raw;
        return DayShare {
            regular,
            excess,
            engagers: engager_base,
            burst_engagers: burst_engagers * weight,
        };
    }
    DayShare {
        regular,
        excess,
        engagers: engager_base,
        burst_engagers: burst_engagers * model.engager_excess_weight,
    }
}

fn baseline(history: &[f64], buckets: &[DayBucket], index: usize, span: i64) -> (f64, f64) {
    let day = buckets[index].day;
    let first = day - span;
    let (first_f, day_f) = (first as f64, day as f64);
    let (mut raw_sum, mut engager_sum) = (0.0, 0.0);
    for row in history.chunks_exact(3) {
        if first_f <= row[0] && row[0] < day_f {
            raw_sum += row[1];
            engager_sum += row[2];
        }
    }
    for earlier in &buckets[..index] {
        if earlier.day >= first {
            raw_sum += earlier.raw;
            engager_sum += earlier.new_engagers as f64;
        }
    }
    let span = span as f64;
    (raw_sum / span, engager_sum / span)
}

/// Shares of every open day but the newest, and the newest day's baseline.
#[derive(Clone, Debug)]
pub struct ShareCache {
    pub older: Vec<DayShare>,
    pub newest_baseline: (f64, f64),
}

fn share_cache(received: &ReceivedState, model: &Model) -> ShareCache {
    let (history, buckets, span) = (&received.history, &received.buckets, model.baseline_days);
    let older = (0..buckets.len() - 1)
        .map(|i| {
            let (raw, engagers) = baseline(history, buckets, i, span);
            day_share(&buckets[i], raw, engagers, model)
        })
        .collect();
    ShareCache {
        older,
        newest_baseline: baseline(history, buckets, buckets.len() - 1, span),
    }
}

/// Fills the cache of the older open days' shares and the newest day's baseline if a change
/// emptied it; `share_of` then reads a day's share without recomputing the others.
pub fn prepare_shares(received: &mut ReceivedState, model: &Model) {
    if received.shares.is_none() && !received.buckets.is_empty() {
        received.shares = Some(Box::new(share_cache(received, model)));
    }
}

/// The share of open day `index` against the average of the days before it (after
/// `prepare_shares`).
pub fn share_of(received: &ReceivedState, index: usize, model: &Model) -> DayShare {
    let cache = received.shares.as_ref().expect("prepare_shares was called");
    if index + 1 < received.buckets.len() {
        return cache.older[index];
    }
    let (raw, engagers) = cache.newest_baseline;
    day_share(&received.buckets[index], raw, engagers, model)
}

/// Shares of all the open day buckets, oldest first.
pub fn day_shares(received: &mut ReceivedState, model: &Model) -> Vec<DayShare> {
    prepare_shares(received, model);
    (0..received.buckets.len())
        .map(|i| share_of(received, i, model))
        .collect()
}

#[derive(Clone, Copy, Debug)]
pub struct Mass {
    pub fast: f64,
    pub slow: f64,
    pub burst: f64,
    pub reciprocal_share: f64,
    pub engagers: f64,
    pub effective: f64,
    pub audience: f64,
    pub z: f64,
    /// Model 2: the share of the engagers' weight selectivity and automation left (1: model 1).
    pub quality: f64,
}

impl Default for Mass {
    fn default() -> Self {
        Mass {
            fast: 0.0,
            slow: 0.0,
            burst: 0.0,
            reciprocal_share: 0.0,
            engagers: 0.0,
            effective: 0.0,
            audience: 0.0,
            z: 0.0,
            quality: 1.0,
        }
    }
}

impl Mass {
    pub fn regular(&self) -> f64 {
        if self.slow > self.fast {
            self.slow
        } else {
            self.fast
        }
    }
}

pub fn read_mass(state: &mut UserState, now: i64, model: &Model) -> Mass {
    let Some(received) = state.received.as_deref_mut() else {
        return Mass::default();
    };
    let landmark = state.landmark;
    let clock = &mut state.clock;
    let has_runs = !clock.runs.is_empty();
    let paused_now = if has_runs {
        let now_day = now.div_euclid(DAY_MS);
        clock.prepare_pauses(now_day, model.grace_days, model.grace_renew_days);
        clock.paused_before(now_day, clock.pauses())
    } else {
        clock.folded_paused
    };
    let clock = &state.clock;
    let pauses: &[(i64, i64)] = if has_runs { clock.pauses() } else { &[] };
    let tau_now = now - paused_now * DAY_MS;
    let (fast_rate, slow_rate, burst_rate) = (model.fast_rate, model.slow_rate, model.burst_rate);
    let (mut fast, mut slow, mut burst) = (0.0, 0.0, 0.0);
    let mut engagers = received.sealed_engagers;
    if received.sealed_fast != 0.0 {
        fast = received.sealed_fast * (-fast_rate * (tau_now - landmark) as f64).exp();
        slow = received.sealed_slow * (-slow_rate * (now - landmark) as f64).exp();
    }
    if received.sealed_burst != 0.0 || received.sealed_burst_engagers != 0.0 {
        let fading = (-burst_rate * (now - received.burst_ref) as f64).exp();
        burst = received.sealed_burst * fading;
        engagers += received.sealed_burst_engagers * fading;
    }
    prepare_shares(received, model);
    let received = &*received;
    for (i, bucket) in received.buckets.iter().enumerate() {
        let share = share_of(received, i, model);
        let start = bucket.day * DAY_MS;
        let paused = if pauses.is_empty() {
            clock.folded_paused
        } else {
            clock.paused_before(bucket.day, pauses)
        };
        let tau_start = start - paused * DAY_MS;
        fast += share.regular * bucket.fast * (-fast_rate * (tau_now - tau_start) as f64).exp();
        slow += share.regular * bucket.slow * (-slow_rate * (now - start) as f64).exp();
        engagers += share.engagers;
        if share.excess != 0.0 || share.burst_engagers != 0.0 {
            let fading = (-burst_rate * (now - start) as f64).exp();
            burst += share.excess * bucket.burst * fading;
            engagers += share.burst_engagers * fading;
        }
    }
    let pair_total = received.pair_total;
    let mut share_reciprocal = 0.0;
    if pair_total > 0.0 && received.pair_reciprocal != 0.0 {
        let s = received.pair_reciprocal / pair_total;
        share_reciprocal = if s < 1.0 { s } else { 1.0 };
    }
    if model.engager_score {
        let grace = (tau_now, pauses);
        let user = (landmark, clock, state.followers);
        return engager_mass(
            user,
            received,
            now,
            grace,
            engagers,
            share_reciprocal,
            model,
        );
    }
    let slow_on_fast_scale = model.slow_floor * slow * model.slow_to_fast;
    let total = (if fast > slow_on_fast_scale {
        fast
    } else {
        slow_on_fast_scale
    }) + burst;
    let mut effective = total * (1.0 - share_reciprocal * share_reciprocal);
    effective *= engagers / (engagers + model.shrinkage_prior);
    let audience = audience_term(effective, state.followers, model);
    let z = effective.ln_1p() + audience;
    Mass {
        fast,
        slow: slow_on_fast_scale,
        burst,
        reciprocal_share: share_reciprocal,
        engagers,
        effective,
        audience,
        z,
        quality: 1.0,
    }
}

/// Model 2: raw influence from distinct engagers (scoring/mass.py `_engager_mass` says why).
fn engager_mass(
    user: (i64, &GraceClock, Option<i64>),
    received: &ReceivedState,
    now: i64,
    grace: (i64, &[(i64, i64)]),
    engagers: f64,
    share_reciprocal: f64,
    model: &Model,
) -> Mass {
    let (tau_now, pauses) = grace;
    let (landmark, clock, followers) = user;
    let (fast_rate, slow_rate, burst_rate) = (model.fast_rate, model.slow_rate, model.burst_rate);
    let (mut fast, mut slow, mut burst) = (0.0, 0.0, 0.0);
    if received.sealed_engager_fast != 0.0 {
        fast = received.sealed_engager_fast * (-fast_rate * (tau_now - landmark) as f64).exp();
        slow = received.sealed_engager_slow * (-slow_rate * (now - landmark) as f64).exp();
    }
    if received.sealed_burst_engagers != 0.0 {
        burst = received.sealed_burst_engagers
            * (-burst_rate * (now - received.burst_ref) as f64).exp();
    }
    let hold = model.engager_hold_days;
    for (i, bucket) in received.buckets.iter().enumerate() {
        let share = share_of(received, i, model);
        let hold_day = bucket.day + hold;
        let hold_end = hold_day * DAY_MS;
        if now <= hold_end {
            fast += share.engagers;
            slow += share.engagers;
        } else {
            let paused = if pauses.is_empty() {
                clock.folded_paused
            } else {
                clock.paused_before(hold_day, pauses)
            };
            let tau_end = hold_end - paused * DAY_MS;
            fast += share.engagers * (-fast_rate * (tau_now - tau_end) as f64).exp();
            slow += share.engagers * (-slow_rate * (now - hold_end) as f64).exp();
        }
        if share.burst_engagers != 0.0 {
            burst +=
                share.burst_engagers * (-burst_rate * (now - bucket.day * DAY_MS) as f64).exp();
        }
    }
    let slow_on_fast_scale = model.slow_floor * slow * model.slow_to_fast;
    let total = (if fast > slow_on_fast_scale {
        fast
    } else {
        slow_on_fast_scale
    }) + burst;
    let (mutual, free) = (received.reciprocal_engagers, model.reciprocal_free);
    let ring_share = if mutual > free {
        share_reciprocal * (mutual - free) as f64 / mutual as f64
    } else {
        0.0
    };
    let quality = engager_quality(received);
    let mut effective = total * (1.0 - ring_share * ring_share);
    if quality != 1.0 {
        effective *= quality;
    }
    effective *= engagers / (engagers + model.shrinkage_prior);
    let audience = audience_term(effective, followers, model);
    let z = effective.ln_1p() + audience;
    Mass {
        fast,
        slow: slow_on_fast_scale,
        burst,
        reciprocal_share: ring_share,
        engagers,
        effective,
        audience,
        z,
        quality,
    }
}

/// Share of the engagers' weight selectivity and automation left (scoring/mass.py).
pub fn engager_quality(received: &ReceivedState) -> f64 {
    let removed = received.removed;
    let lost = removed[0] + removed[2];
    if lost == 0.0 {
        return 1.0;
    }
    let k = received.kind_mass;
    let kept = 0.0 + k[0] + k[1] + k[2] + k[3] + removed[1];
    kept / (kept + lost)
}

pub fn audience_term(effective: f64, followers: Option<i64>, model: &Model) -> f64 {
    let Some(followers) = followers else {
        return 0.0;
    };
    if effective < model.audience_min_mass {
        return 0.0;
    }
    let level = (1.0 + followers as f64).log10() / model.log10_followers_cap;
    model.audience_weight * if level < 1.0 { level } else { 1.0 }
}
