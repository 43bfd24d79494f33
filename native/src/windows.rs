//! Rolling event-time windows of engagements received (scoring/windows.py).

use crate::model::{floor_div, DAY_MS, HOUR_MS};
use crate::state::WindowBucket;

const SPANS: [i64; 3] = [12, 24, 7];

pub fn add_to_windows(windows: &mut [Vec<WindowBucket>; 3], ts: i64, kind: usize, minute_ms: i64) {
    let slot = 1 + kind;
    let index = floor_div(ts, minute_ms);
    if let Some(last) = windows[0].last() {
        if last[0] == index && HOUR_MS % minute_ms == 0 {
            for res in windows.iter_mut() {
                let n = res.len();
                res[n - 1][slot] += 1;
            }
            return;
        }
    }
    count_in(&mut windows[0], index, slot, SPANS[0]);
    count_in(&mut windows[1], floor_div(ts, HOUR_MS), slot, SPANS[1]);
    count_in(&mut windows[2], floor_div(ts, DAY_MS), slot, SPANS[2]);
}

fn count_in(buckets: &mut Vec<WindowBucket>, index: i64, slot: usize, span: i64) {
    if let Some(last) = buckets.last_mut() {
        let newest = last[0];
        if index == newest {
            last[slot] += 1;
            return;
        }
        if index < newest {
            count_late(buckets, index, slot, newest - span);
            return;
        }
    }
    let mut fresh = [index, 0, 0, 0, 0];
    fresh[slot] = 1;
    if buckets.is_empty() {
        buckets.reserve_exact(1); // most users have one bucket per resolution
    }
    buckets.push(fresh);
    let oldest = index - span;
    let drop = buckets.iter().take_while(|b| b[0] <= oldest).count();
    buckets.drain(..drop);
}

fn count_late(buckets: &mut Vec<WindowBucket>, index: i64, slot: usize, oldest: i64) {
    if index <= oldest {
        return;
    }
    for i in 0..buckets.len() {
        if buckets[i][0] == index {
            buckets[i][slot] += 1;
            return;
        }
        if buckets[i][0] > index {
            let mut fresh = [index, 0, 0, 0, 0];
            fresh[slot] = 1;
            buckets.insert(i, fresh);
            return;
        }
    }
}

/// Engagements received per kind in the last hour, day and week before `now_ms`
/// (scoring.windows.read_windows).
pub fn read_windows(
    windows: &[Vec<WindowBucket>; 3],
    now_ms: i64,
    minute_ms: i64,
) -> [[i64; 4]; 3] {
    let widths = [minute_ms, HOUR_MS, DAY_MS];
    let mut out = [[0; 4]; 3];
    for res in 0..3 {
        let current = floor_div(now_ms, widths[res]);
        for bucket in &windows[res] {
            if current - SPANS[res] < bucket[0] && bucket[0] <= current {
                for k in 0..4 {
                    out[res][k] += bucket[1 + k];
                }
            }
        }
    }
    out
}
