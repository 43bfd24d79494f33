//! The per-user decay clock with grace (scoring/clock.py): same runs, same pauses.

use crate::model::NO_DAY;

/// The last `pauses` answer: (until_day, grace_days, renew_days, paused ranges).
type PauseCache = (i64, i64, i64, Vec<(i64, i64)>);

#[derive(Clone, Debug)]
pub struct GraceClock {
    /// Flattened `[first_day, last_day, ...]` runs of days with own actions, ascending.
    pub runs: Vec<i64>,
    pub folded_paused: i64,
    pub period_start: i64,
    pub budget: i64,
    /// The last `pauses` answer: (until_day, grace_days, renew_days, pauses).
    /// Boxed: most users never read their clock (only users who receive engagement do).
    cached: Option<Box<PauseCache>>,
}

impl Default for GraceClock {
    fn default() -> Self {
        GraceClock {
            runs: Vec::new(),
            folded_paused: 0,
            period_start: NO_DAY,
            budget: 0,
            cached: None,
        }
    }
}

fn pause(
    start: i64,
    length: i64,
    period: i64,
    budget: i64,
    grace: i64,
    renew: i64,
) -> (i64, i64, i64) {
    let (mut period, mut budget) = (period, budget);
    if start >= period + renew {
        period = start;
        budget = grace;
    }
    let paused = budget.min(length);
    (paused, period, budget - paused)
}

fn insert_day(runs: &mut Vec<i64>, day: i64) -> bool {
    let mut i = 0;
    while i < runs.len() {
        let (first, last) = (runs[i], runs[i + 1]);
        if first <= day && day <= last {
            return false;
        }
        if day == last + 1 {
            runs[i + 1] = day;
            if i + 2 < runs.len() && runs[i + 2] == day + 1 {
                runs[i + 1] = runs[i + 3];
                runs.drain(i + 2..i + 4);
            }
            return true;
        }
        if day == first - 1 {
            runs[i] = day;
            return true;
        }
        if day < first {
            runs.splice(i..i, [day, day]);
            return true;
        }
        i += 2;
    }
    runs.extend([day, day]);
    true
}

impl GraceClock {
    pub fn record_action(&mut self, day: i64, max_runs: usize, grace: i64, renew: i64) {
        let n = self.runs.len();
        if n > 0 && self.runs[n - 1] >= day - 1 && self.runs[n - 2] <= day {
            if self.runs[n - 1] >= day {
                return;
            }
            self.runs[n - 1] = day;
            self.cached = None;
            return;
        }
        insert_day(&mut self.runs, day);
        while self.runs.len() > 2 * max_runs {
            self.fold_first_silence(grace, renew);
        }
        self.cached = None;
    }

    fn fold_first_silence(&mut self, grace: i64, renew: i64) {
        let start = self.runs[1] + 1;
        let length = self.runs[2] - self.runs[1] - 1;
        let (paused, period, budget) =
            pause(start, length, self.period_start, self.budget, grace, renew);
        self.period_start = period;
        self.budget = budget;
        self.folded_paused += paused;
        self.runs.drain(0..2);
    }

    /// Computes (or reuses) the paused day ranges before `until_day`; read them with `pauses`.
    pub fn prepare_pauses(&mut self, until_day: i64, grace: i64, renew: i64) {
        if let Some((u, g, r, _)) = self.cached.as_deref() {
            if *u == until_day && *g == grace && *r == renew {
                return;
            }
        }
        let mut out = Vec::new();
        let runs = &self.runs;
        let (mut period, mut budget) = (self.period_start, self.budget);
        let mut i = 1;
        while i < runs.len() {
            let start = runs[i] + 1;
            let end = if i + 1 < runs.len() {
                runs[i + 1]
            } else {
                until_day
            };
            let end = end.min(until_day);
            if end > start {
                let (paused, p, b) = pause(start, end - start, period, budget, grace, renew);
                period = p;
                budget = b;
                if paused != 0 {
                    out.push((start, start + paused));
                }
            }
            i += 2;
        }
        self.cached = Some(Box::new((until_day, grace, renew, out)));
    }

    /// The pauses last prepared (empty if none were).
    pub fn pauses(&self) -> &[(i64, i64)] {
        match self.cached.as_deref() {
            Some((_, _, _, p)) => p,
            None => &[],
        }
    }

    pub fn paused_before(&self, day: i64, pauses: &[(i64, i64)]) -> i64 {
        let mut total = self.folded_paused;
        for &(first, end) in pauses {
            if first >= day {
                break;
            }
            total += end.min(day) - first;
        }
        total
    }
}
