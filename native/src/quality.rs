//! Audience quality and confidence (scoring/quality.py, which says why), for snapshot lines and
//! score-change events.

use crate::mass::Mass;
use crate::model::{round2, Model};
use crate::state::UserState;

const QUALITY_SCALE: f64 = 100.0;
const CONFIDENCE_ENGAGERS: f64 = 10.0;
const CONFIDENCE_DAYS: f64 = 3.0;

/// Python's `_four_places`: two-decimal percent, back to a share.
fn four_places(x: f64) -> f64 {
    round2(x * QUALITY_SCALE) / QUALITY_SCALE
}

/// Audience quality: (0-100 score, what each rule removed, largest first).
pub type AudienceQuality = (f64, Vec<(&'static str, f64)>);

pub fn audience_quality(state: &UserState, mass: &Mass, model: &Model) -> AudienceQuality {
    let Some(received) = state.received.as_deref() else {
        return (QUALITY_SCALE, Vec::new());
    };
    let k = received.kind_mass;
    let kept = 0.0 + k[0] + k[1] + k[2] + k[3];
    let removed = received.removed;
    let gross = kept + removed[0] + removed[1] + removed[2];
    if gross <= 0.0 {
        return (QUALITY_SCALE, Vec::new());
    }
    let mut losses: Vec<(&'static str, f64)> = vec![
        ("selectivity", removed[0] / gross),
        ("pair_cap", removed[1] / gross),
        ("automation", removed[2] / gross),
    ];
    let mut left = kept / gross;
    let ring = left * mass.reciprocal_share * mass.reciprocal_share;
    losses.push(("reciprocity", ring));
    left -= ring;
    let held = mass.regular() + mass.burst;
    let burst = if held > 0.0 {
        left * mass.burst / held
    } else {
        0.0
    };
    losses.push(("burst", burst));
    left -= burst;
    let shrunk = left * model.shrinkage_prior / (mass.engagers + model.shrinkage_prior);
    losses.push(("new_account", shrunk));
    left -= shrunk;
    let mut reasons: Vec<(&'static str, f64)> = losses
        .into_iter()
        .filter(|(_, share)| *share > 0.0)
        .map(|(rule, share)| (rule, four_places(share)))
        .collect();
    reasons.sort_by(|a, b| {
        b.1.partial_cmp(&a.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.0.cmp(b.0))
    });
    let survived = if left > 0.0 { left } else { 0.0 };
    (round2(QUALITY_SCALE * survived), reasons)
}

pub fn confidence(state: &UserState, mass: &Mass) -> f64 {
    let Some(received) = state.received.as_deref() else {
        return 0.0;
    };
    let mut days = received
        .history
        .chunks_exact(3)
        .filter(|row| row[1] > 0.0)
        .count();
    days += received.buckets.iter().filter(|b| b.raw > 0.0).count();
    let days = days as f64;
    let engagers = mass.engagers;
    let level = engagers / (engagers + CONFIDENCE_ENGAGERS) * days / (days + CONFIDENCE_DAYS);
    four_places(level)
}
