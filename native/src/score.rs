//! From mass to what users see (scoring/score.py, scoring/scale.py): the 1-100 score, its
//! reasons, topic scores and change events.

use crate::history::record_change;
use crate::mass::{audience_term, read_mass, Mass};
use crate::model::{round2, Model};
use crate::quality::{audience_quality, confidence, AudienceQuality};
use crate::state::{Id, UserState};
use crate::topics::published_topics;

const KIND_REASONS: [&str; 4] = ["retweets", "quotes", "replies", "mentions"];

pub fn quantile_level(z: f64, knots: &[f64]) -> f64 {
    let count = knots.len();
    if count < 2 {
        return if z <= 0.0 { 0.0 } else { 1.0 - 1.0 / (1.0 + z) };
    }
    if z <= knots[0] {
        return 0.0;
    }
    if z >= knots[count - 1] {
        return 1.0;
    }
    let i = knots.partition_point(|k| *k <= z); // bisect_right
    let (low, high) = (knots[i - 1], knots[i]);
    let within = if high > low {
        (z - low) / (high - low)
    } else {
        1.0
    };
    ((i - 1) as f64 + within) / (count - 1) as f64
}

pub fn to_scale(z: f64, knots: &[f64]) -> f64 {
    round2(1.0 + 99.0 * quantile_level(z, knots))
}

fn z_of(
    total: f64,
    share: f64,
    engagers: f64,
    followers: Option<i64>,
    model: &Model,
    shrink: bool,
    quality: f64,
) -> f64 {
    let mut effective = total * (1.0 - share * share);
    if quality != 1.0 {
        effective *= quality;
    }
    if shrink {
        effective *= engagers / (engagers + model.shrinkage_prior);
    }
    effective.ln_1p() + audience_term(effective, followers, model)
}

/// The score in points by cause, largest first (at most `top_reasons`).
pub fn reasons(
    state: &UserState,
    mass: &Mass,
    model: &Model,
    score: f64,
) -> Vec<(&'static str, f64)> {
    let Some(received) = state.received.as_deref() else {
        return Vec::new();
    };
    if mass.effective <= 0.0 {
        return Vec::new();
    }
    let knots = &model.scale_knots;
    let z = mass.z;
    let audience = mass.audience;
    let engagement_points = (if audience != 0.0 {
        to_scale(z - audience, knots)
    } else {
        score
    }) - 1.0;
    let mut ranked: Vec<(f64, &'static str, f64)> = Vec::with_capacity(8);
    let kind_masses = received.kind_mass;
    let kind_total = 0.0 + kind_masses[0] + kind_masses[1] + kind_masses[2] + kind_masses[3];
    if kind_total > 0.0 {
        for (code, kind_mass) in KIND_REASONS.iter().zip(kind_masses) {
            if kind_mass > 0.0 {
                let points = round2(engagement_points * kind_mass / kind_total);
                ranked.push((-points.abs(), code, points));
            }
        }
    }
    if audience > 0.0 {
        let points = round2(score - 1.0 - engagement_points);
        ranked.push((-points.abs(), "audience", points));
    }
    let (regular, burst) = (mass.regular(), mass.burst);
    let (share, engagers, followers) = (mass.reciprocal_share, mass.engagers, state.followers);
    let quality = mass.quality;
    let mut without = vec![(
        "new_account",
        z_of(
            regular + burst,
            share,
            engagers,
            followers,
            model,
            false,
            quality,
        ),
    )];
    if burst != 0.0 {
        without.push((
            "burst",
            z_of(regular, share, engagers, followers, model, true, quality),
        ));
    }
    if share != 0.0 {
        without.push((
            "reciprocity",
            z_of(
                regular + burst,
                0.0,
                engagers,
                followers,
                model,
                true,
                quality,
            ),
        ));
    }
    if quality != 1.0 {
        without.push((
            "automation",
            z_of(
                regular + burst,
                share,
                engagers,
                followers,
                model,
                true,
                1.0,
            ),
        ));
    }
    for (code, z_without) in without {
        let points = round2(score - to_scale(z_without, knots));
        if points != 0.0 {
            ranked.push((-points.abs(), code, points));
        }
    }
    ranked.sort_by(|a, b| {
        a.0.partial_cmp(&b.0)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.1.cmp(b.1))
            .then(a.2.partial_cmp(&b.2).unwrap_or(std::cmp::Ordering::Equal))
    });
    ranked.truncate(model.top_reasons);
    ranked
        .into_iter()
        .map(|(_, code, points)| (code, points))
        .collect()
}

pub fn topic_scores(state: &UserState, mass: &Mass, model: &Model) -> Vec<(String, f64)> {
    let Some(received) = state.received.as_deref() else {
        return Vec::new();
    };
    if state.topics.is_empty() {
        return Vec::new();
    }
    let k = received.kind_mass;
    let total_mass = 0.0 + k[0] + k[1] + k[2] + k[3];
    let total_count: i64 = received.counts.iter().sum();
    published_topics(&state.topics, total_mass, total_count, model)
        .into_iter()
        .map(|t| {
            (
                t.topic.to_string(),
                to_scale((mass.effective * t.share).ln_1p(), &model.scale_knots),
            )
        })
        .collect()
}

/// A score-change event (§10), with the audience quality and confidence at its event time
/// (scoring.score.ScoreChange says why).
#[derive(Clone, Debug)]
pub struct ScoreChange {
    pub user: Id,
    pub score: f64,
    pub previous: Option<f64>,
    pub event_time: i64,
    pub cause: &'static str,
    pub reasons: Vec<(&'static str, f64)>,
    pub topics: Vec<(String, f64)>,
    pub quality: AudienceQuality,
    pub confidence: f64,
}

pub fn score_of(mass: &Mass, model: &Model) -> f64 {
    to_scale(mass.z, &model.scale_knots)
}

pub fn detect_change(
    user: &str,
    state: &mut UserState,
    now: i64,
    model: &Model,
    cause: &'static str,
) -> Option<ScoreChange> {
    let mass = read_mass(state, now, model);
    let score = score_of(&mass, model);
    let previous = state.published;
    if let Some(p) = previous {
        if (score - p).abs() < model.change_threshold {
            return None;
        }
    }
    state.published = Some(score);
    let landmark = state.landmark;
    // a score is published only for a user who received engagement: that part holds the
    // history (scoring.score.detect_change records it on the state)
    if let Some(received) = state.received.as_deref_mut() {
        record_change(
            &mut received.score_history,
            landmark,
            now,
            score,
            previous,
            cause,
        );
    }
    let reasons = reasons(state, &mass, model, score);
    let topics = if state.topics.is_empty() {
        Vec::new()
    } else {
        topic_scores(state, &mass, model)
    };
    let quality = audience_quality(state, &mass, model);
    let confidence = confidence(state, &mass);
    Some(ScoreChange {
        user: user.into(),
        score,
        previous,
        event_time: now,
        cause,
        reasons,
        topics,
        quality,
        confidence,
    })
}
