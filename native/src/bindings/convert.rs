//! Python objects into the core's types: the frozen `scoring.Model` and a `scoring.Event`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

use crate::event::{Event, Kind};
use crate::model::Model;
use crate::state::Id;

/// Builds `Model` from the attributes of the same names: the struct literal must name every
/// field, so a field added to `Model` and not here does not compile.
macro_rules! from_attributes {
    ($obj:expr, $ty:ident { $($field:ident),* $(,)? }) => {
        $ty { $($field: $obj.getattr(stringify!($field))?.extract()?,)* }
    };
}

/// The parameters of a `scoring.Model`, taken as Python computed them (model.rs says why).
pub fn model_from_py(obj: &Bound<PyAny>) -> PyResult<Model> {
    Ok(from_attributes!(
        obj,
        Model {
            kind_weights,
            selectivity_free_per_day,
            actor_pair_rate,
            automation_free_per_hour,
            automation_full_per_hour,
            automation_min_factor,
            dedup_ids,
            fast_rate,
            slow_rate,
            slow_floor,
            grace_days,
            grace_renew_days,
            kappa,
            baseline_days,
            baseline_floor,
            burst_rate,
            content_excess_weight,
            mention_excess_weight,
            engager_baseline_floor,
            engager_excess_weight,
            reciprocity_rate,
            shrinkage_prior,
            audience_weight,
            log10_followers_cap,
            audience_min_mass,
            max_topics,
            max_tweets_per_topic,
            max_engagers_per_topic,
            max_days_per_topic,
            min_own_tweets,
            min_topic_days,
            min_topic_engagers,
            max_tweet_share,
            min_wilson_share,
            wilson_z,
            topic_prior_weight,
            topic_prior_share,
            change_threshold,
            decay_check_min_score,
            top_reasons,
            open_days,
            max_in_pairs,
            max_out_pairs,
            max_action_runs,
            minute_bucket_ms,
            scale_knots,
            slow_to_fast,
            engager_score,
            engager_hold_days,
            reciprocal_free,
            content_burst_weight,
        }
    ))
}

fn boxed_opt(obj: &Bound<PyAny>) -> PyResult<Option<Id>> {
    if obj.is_none() {
        Ok(None)
    } else {
        Ok(Some(obj.downcast::<PyString>()?.to_str()?.into()))
    }
}

fn boxed_tags(obj: &Bound<PyAny>) -> PyResult<Vec<Id>> {
    let mut out = Vec::new();
    for tag in obj.try_iter()? {
        out.push(tag?.downcast::<PyString>()?.to_str()?.into());
    }
    Ok(out)
}

/// A `scoring.Event` (NamedTuple) read field by field.
pub fn event_from_py(obj: &Bound<PyAny>) -> PyResult<Event> {
    let t = obj.downcast::<PyTuple>()?;
    let kind_name: String = t.get_item(1)?.extract()?;
    let kind = Kind::parse(&kind_name)
        .ok_or_else(|| PyValueError::new_err(format!("unknown kind {kind_name:?}")))?;
    Ok(Event {
        id: t.get_item(0)?.downcast::<PyString>()?.to_str()?.into(),
        kind,
        ts: t.get_item(2)?.extract()?,
        actor: t.get_item(3)?.downcast::<PyString>()?.to_str()?.into(),
        target: if kind == Kind::Tweet {
            None
        } else {
            boxed_opt(&t.get_item(4)?)?
        },
        ref_tweet_id: boxed_opt(&t.get_item(6)?)?,
        hashtags: boxed_tags(&t.get_item(7)?)?,
        ref_hashtags: boxed_tags(&t.get_item(8)?)?,
        followers: t.get_item(9)?.extract()?,
    })
}
