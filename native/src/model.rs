//! The frozen parameters of one model version, read from `scoring.model.Model`.
//!
//! The Python record is the one place a model file is parsed and its rates derived; this copy
//! takes its numbers as they are, so both cores compute with identical bits.

pub const DAY_MS: i64 = 86_400_000;
pub const HOUR_MS: i64 = 3_600_000;
pub const NO_DAY: i64 = -(1 << 31);

#[derive(Clone, Debug)]
pub struct Model {
    pub kind_weights: (f64, f64, f64, f64),
    pub selectivity_free_per_day: f64,
    pub actor_pair_rate: f64,
    pub automation_free_per_hour: f64,
    pub automation_full_per_hour: f64,
    pub automation_min_factor: f64,
    pub dedup_ids: usize,
    pub fast_rate: f64,
    pub slow_rate: f64,
    pub slow_floor: f64,
    pub grace_days: i64,
    pub grace_renew_days: i64,
    pub kappa: f64,
    pub baseline_days: i64,
    pub baseline_floor: f64,
    pub burst_rate: f64,
    pub content_excess_weight: f64,
    pub mention_excess_weight: f64,
    pub engager_baseline_floor: f64,
    pub engager_excess_weight: f64,
    pub reciprocity_rate: f64,
    pub shrinkage_prior: f64,
    pub audience_weight: f64,
    pub log10_followers_cap: f64,
    pub audience_min_mass: f64,
    pub max_topics: usize,
    pub max_tweets_per_topic: usize,
    pub max_engagers_per_topic: usize,
    pub max_days_per_topic: usize,
    pub min_own_tweets: i64,
    pub min_topic_days: usize,
    pub min_topic_engagers: usize,
    pub max_tweet_share: f64,
    pub min_wilson_share: f64,
    pub wilson_z: f64,
    pub topic_prior_weight: f64,
    pub topic_prior_share: f64,
    pub change_threshold: f64,
    pub decay_check_min_score: f64,
    pub top_reasons: usize,
    pub open_days: i64,
    pub max_in_pairs: usize,
    pub max_out_pairs: usize,
    pub max_action_runs: usize,
    pub minute_bucket_ms: i64,
    pub scale_knots: Vec<f64>,
    pub slow_to_fast: f64,
    /// Model 2 (scoring/mass.py `_engager_mass`): raw influence from distinct engagers.
    pub engager_score: bool,
    pub engager_hold_days: i64,
    pub reciprocal_free: i64,
    pub content_burst_weight: f64,
}

impl Model {
    pub fn kind_weight(&self, kind: usize) -> f64 {
        let w = self.kind_weights;
        [w.0, w.1, w.2, w.3][kind]
    }
}

/// Python's floor division for a positive divisor.
#[inline]
pub fn floor_div(a: i64, b: i64) -> i64 {
    a.div_euclid(b)
}

/// Python's `round(x, 2)`: the exact binary value rounded to 2 decimals (ties to even), then
/// the double nearest that decimal.
///
/// The product `x * 100` is off the exact one by half an ulp at most, so when it lies clearly
/// away from a rounding tie its nearest integer d is the right one, and `d / 100` (one correctly
/// rounded division) is the double nearest d/100, as Python's string round trip gives. Near a
/// tie, the exact decimal expansion decides.
pub fn round2(x: f64) -> f64 {
    let scaled = x * 100.0;
    if scaled.abs() < 1e9 {
        let fraction = scaled - scaled.floor();
        if (fraction - 0.5).abs() > 1e-6 {
            return scaled.round() / 100.0;
        }
    }
    if !x.is_finite() {
        return x;
    }
    format!("{x:.2}").parse().unwrap_or(x)
}
