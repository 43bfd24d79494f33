//! Topics a user is influential about (scoring/topics.py): Space-Saving slots and evidence.

use crate::model::Model;
use crate::state::Id;
use crate::state::{Map, TopicStats};

fn slot<'a>(
    topics: &'a mut Map<TopicStats>,
    tag: &str,
    model: &Model,
    own: bool,
) -> Option<&'a mut TopicStats> {
    if topics.contains_key(tag) {
        return topics.get_mut(tag);
    }
    let stats = if topics.len() >= model.max_topics {
        // the weakest: no own tweet first, then the least mass, then the name (Python's key)
        let weakest = topics.iter().min_by(|(at, a), (bt, b)| {
            ((a.own_tweets > 0), a.mass)
                .partial_cmp(&((b.own_tweets > 0), b.mass))
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| at.cmp(bt))
        });
        let (wt, ws) = weakest.expect("topics is not empty");
        if !own && ws.own_tweets > 0 {
            return None;
        }
        let mass = ws.mass;
        let wt = wt.clone();
        topics.shift_remove(&wt);
        TopicStats {
            mass,
            error: mass,
            ..TopicStats::default()
        }
    } else {
        TopicStats::default()
    };
    topics.insert(tag.into(), stats);
    topics.get_mut(tag)
}

pub fn record_own_tweet(topics: &mut Map<TopicStats>, tags: &[Id], day: i64, model: &Model) {
    for tag in tags {
        let stats = slot(topics, tag, model, true).expect("an own tweet always gets a slot");
        stats.own_tweets += 1;
        if !stats.days.contains(&day) && stats.days.len() < model.max_days_per_topic {
            stats.days.push(day);
            stats.days.sort();
        }
    }
}

pub fn record_topic_engagement(
    topics: &mut Map<TopicStats>,
    tags: &[Id],
    amount: f64,
    actor: &str,
    tweet_id: Option<&str>,
    model: &Model,
) {
    for tag in tags {
        let Some(stats) = slot(topics, tag, model, false) else {
            continue;
        };
        stats.mass += amount;
        stats.count += 1;
        if !stats.engagers.iter().any(|e| &**e == actor)
            && stats.engagers.len() < model.max_engagers_per_topic
        {
            stats.engagers.push(actor.into());
        }
        if let Some(tweet_id) = tweet_id {
            let tweets = &mut stats.tweets;
            if let Some(m) = tweets.get_mut(tweet_id) {
                *m += amount;
            } else if tweets.len() < model.max_tweets_per_topic {
                tweets.insert(tweet_id.into(), amount);
            } else {
                let mut smallest: Option<(&Id, f64)> = None;
                for (t, m) in tweets.iter() {
                    smallest = match smallest {
                        Some((st, sm)) if !(*m < sm || (*m == sm && t < st)) => Some((st, sm)),
                        _ => Some((t, *m)),
                    };
                }
                let key = smallest.expect("tweets is full").0.clone();
                let old = tweets.shift_remove(&key).unwrap_or(0.0);
                tweets.insert(tweet_id.into(), old + amount);
            }
        }
    }
}

pub fn wilson_lower_bound(successes: i64, trials: i64, z: f64) -> f64 {
    if trials <= 0 {
        return 0.0;
    }
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = z * z;
    let centre = p + z2 / (2 * trials) as f64;
    let margin = z * (p * (1.0 - p) / n + z2 / (4 * trials * trials) as f64).sqrt();
    let value = (centre - margin) / (1.0 + z2 / n);
    if value > 0.0 {
        value
    } else {
        0.0
    }
}

/// A published topic and its shrunk share of the user's engagement mass.
pub struct PublishedTopic<'a> {
    pub topic: &'a str,
    pub share: f64,
}

/// The published topics, by share (largest first), ties by name: `topic_evidence`'s order.
pub fn published_topics<'a>(
    topics: &'a Map<TopicStats>,
    total_mass: f64,
    total_count: i64,
    model: &Model,
) -> Vec<PublishedTopic<'a>> {
    let mut out = Vec::new();
    for (tag, stats) in topics {
        let diff = stats.mass - stats.error;
        let mass = if diff > 0.0 { diff } else { 0.0 };
        let mut tweet_mass = 0.0;
        let mut top = f64::NEG_INFINITY;
        for m in stats.tweets.values() {
            tweet_mass += m;
            if *m > top {
                top = *m;
            }
        }
        let top_share = if tweet_mass > 0.0 {
            top / tweet_mass
        } else {
            1.0
        };
        let wilson = wilson_lower_bound(stats.count.min(total_count), total_count, model.wilson_z);
        let alpha = model.topic_prior_weight;
        let bigger = if mass > total_mass { mass } else { total_mass };
        let share = (mass + alpha * model.topic_prior_share) / (bigger + alpha);
        let published = stats.own_tweets >= model.min_own_tweets
            && stats.days.len() >= model.min_topic_days
            && stats.engagers.len() >= model.min_topic_engagers
            && top_share <= model.max_tweet_share
            && wilson >= model.min_wilson_share;
        if published {
            out.push(PublishedTopic { topic: tag, share });
        }
    }
    out.sort_by(|a, b| {
        b.share
            .partial_cmp(&a.share)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.topic.cmp(b.topic))
    });
    out
}
