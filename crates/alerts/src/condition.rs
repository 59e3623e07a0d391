//! Conditions over a series of per-window values: pure functions, no store, no clock.

use crate::rule::{Condition, Direction};
use modelwatch_core::Timestamp;
use serde::Serialize;

/// A metric's comparison with the reference baseline, as the engine reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineChange {
    pub baseline: f64,
    pub relative_delta: Option<f64>,
    pub significant: bool,
    pub p_value: f64,
}

/// One window's value of a signal.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub start: Timestamp,
    pub end: Timestamp,
    /// `None` when the value is not defined in this window.
    pub value: Option<f64>,
    /// Rows behind the value.
    pub n: u64,
    pub change: Option<BaselineChange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The condition holds.
    Active,
    /// The condition does not hold.
    Inactive,
    /// Not enough data to say (too few rows, no baseline, no reference): the alert keeps the
    /// state it has, so an empty new window neither raises nor resolves anything.
    Unknown,
}

/// The result of evaluating one rule once.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub outcome: Outcome,
    pub value: Option<f64>,
    pub baseline: Option<f64>,
    pub window_start: Option<Timestamp>,
    pub window_end: Option<Timestamp>,
    pub n: Option<u64>,
    /// One line a person reads: what was seen against what bound.
    pub summary: String,
}

impl Evaluation {
    pub fn unknown(summary: impl Into<String>) -> Evaluation {
        Evaluation {
            outcome: Outcome::Unknown,
            value: None,
            baseline: None,
            window_start: None,
            window_end: None,
            n: None,
            summary: summary.into(),
        }
    }

    fn of(active: bool, p: &Point, value: f64, summary: String) -> Evaluation {
        Evaluation {
            outcome: if active {
                Outcome::Active
            } else {
                Outcome::Inactive
            },
            value: Some(value),
            baseline: p.change.as_ref().map(|c| c.baseline),
            window_start: Some(p.start),
            window_end: Some(p.end),
            n: Some(p.n),
            summary,
        }
    }
}

/// Formats a value for people: 4 significant digits.
pub fn fmt_value(v: f64) -> String {
    if v == 0.0 || (v.abs() >= 0.001 && v.abs() < 1e6) {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_owned()
    } else {
        format!("{v:.3e}")
    }
}

/// Evaluates a window-series condition over `points` (oldest first). Only windows with a
/// value and at least `min_sample` rows count. Freshness and heartbeat conditions are not
/// series conditions and are evaluated by the service.
pub fn evaluate(condition: &Condition, points: &[Point], min_sample: u64) -> Evaluation {
    let usable: Vec<(&Point, f64)> = points
        .iter()
        .filter(|p| p.n >= min_sample)
        .filter_map(|p| p.value.filter(|v| v.is_finite()).map(|v| (p, v)))
        .collect();
    let need = condition.windows_needed();
    if usable.len() < need {
        return Evaluation::unknown(format!(
            "{} window(s) with a value and at least {min_sample} rows, {need} needed",
            usable.len()
        ));
    }
    let (last, value) = *usable.last().expect("at least one window");
    let tail = &usable[usable.len() - need..];
    match condition {
        Condition::Threshold { op, value: bound } => Evaluation::of(
            op.holds(value, *bound),
            last,
            value,
            format!("{} {} {}", fmt_value(value), op.as_str(), fmt_value(*bound)),
        ),
        Condition::RollingMean {
            op, value: bound, ..
        } => {
            let mean = tail.iter().map(|(_, v)| v).sum::<f64>() / need as f64;
            Evaluation::of(
                op.holds(mean, *bound),
                last,
                mean,
                format!(
                    "mean of the last {need} windows {} {} {}",
                    fmt_value(mean),
                    op.as_str(),
                    fmt_value(*bound)
                ),
            )
        }
        Condition::Trend {
            op, value: bound, ..
        } => {
            let slope = slope(tail.iter().map(|(_, v)| *v));
            Evaluation::of(
                op.holds(slope, *bound),
                last,
                slope,
                format!(
                    "slope over the last {need} windows {} per window {} {}",
                    fmt_value(slope),
                    op.as_str(),
                    fmt_value(*bound)
                ),
            )
        }
        Condition::Anomaly { z, direction, .. } => {
            let trailing: Vec<f64> = tail[..need - 1].iter().map(|(_, v)| *v).collect();
            let k = trailing.len() as f64;
            let mean = trailing.iter().sum::<f64>() / k;
            let var = trailing.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (k - 1.0);
            // A flat history has no spread. Values of 1 and more (counts, milliseconds) vary
            // at least as a Poisson count would, so their floor is sqrt(mean); rates in [0, 1]
            // get only a tiny floor.
            let poisson = if mean.abs() >= 1.0 {
                mean.abs().sqrt()
            } else {
                0.0
            };
            let sd = var.sqrt().max(poisson).max(1e-9 * mean.abs()).max(1e-12);
            let score = (value - mean) / sd;
            let mut e = Evaluation::of(
                score.abs() > *z && direction.matches(score),
                last,
                value,
                format!(
                    "{} is {:.1} standard deviations from the trailing mean {} (limit {z})",
                    fmt_value(value),
                    score,
                    fmt_value(mean)
                ),
            );
            e.baseline = Some(mean);
            e
        }
        Condition::Baseline {
            direction,
            relative,
            require_significant,
        } => {
            let Some(c) = &last.change else {
                return Evaluation::unknown(
                    "no baseline: upload a reference dataset whose rows carry labels",
                );
            };
            let Some(rel) = c.relative_delta else {
                return Evaluation::unknown("the baseline value is 0: no relative change");
            };
            let beyond = match direction {
                Direction::Below => rel < -relative,
                Direction::Above => rel > *relative,
                Direction::Any => rel.abs() > *relative,
            };
            let active = beyond && (c.significant || !require_significant);
            Evaluation::of(
                active,
                last,
                value,
                format!(
                    "{} vs baseline {} ({:+.1} %, p = {:.3}{}; limit {} {:.1} %)",
                    fmt_value(value),
                    fmt_value(c.baseline),
                    rel * 100.0,
                    c.p_value,
                    if c.significant {
                        ", significant"
                    } else {
                        ", not significant"
                    },
                    match direction {
                        Direction::Below => "below by more than",
                        Direction::Above => "above by more than",
                        Direction::Any => "off by more than",
                    },
                    relative * 100.0
                ),
            )
        }
        Condition::SignificantChange { direction } => {
            let Some(c) = &last.change else {
                return Evaluation::unknown(
                    "no baseline: upload a reference dataset whose rows carry labels",
                );
            };
            let delta = value - c.baseline;
            Evaluation::of(
                c.significant && direction.matches(delta),
                last,
                value,
                format!(
                    "{} vs baseline {} (p = {:.3})",
                    fmt_value(value),
                    fmt_value(c.baseline),
                    c.p_value
                ),
            )
        }
        Condition::Freshness { .. } | Condition::Heartbeat { .. } => {
            Evaluation::unknown("not a window condition")
        }
    }
}

/// Least-squares slope of equally spaced values (change per step).
fn slope(values: impl Iterator<Item = f64>) -> f64 {
    let ys: Vec<f64> = values.collect();
    let n = ys.len() as f64;
    let mx = (n - 1.0) / 2.0;
    let my = ys.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, y) in ys.iter().enumerate() {
        let dx = i as f64 - mx;
        sxy += dx * (y - my);
        sxx += dx * dx;
    }
    if sxx == 0.0 {
        0.0
    } else {
        sxy / sxx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::Op;

    fn series(values: &[f64], n: u64) -> Vec<Point> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Point {
                start: Timestamp::from_secs(i as i64 * 3600),
                end: Timestamp::from_secs((i as i64 + 1) * 3600),
                value: Some(*v),
                n,
                change: None,
            })
            .collect()
    }

    #[test]
    fn threshold_uses_the_latest_window_with_enough_rows() {
        let mut pts = series(&[0.95, 0.85], 100);
        let c = Condition::Threshold {
            op: Op::Lt,
            value: 0.9,
        };
        assert_eq!(evaluate(&c, &pts, 30).outcome, Outcome::Active);
        // A newer window with only 5 labelled rows does not count.
        pts.push(series(&[0.99], 5)[0].clone());
        let e = evaluate(&c, &pts, 30);
        assert_eq!(e.outcome, Outcome::Active);
        assert_eq!(e.value, Some(0.85));
        assert_eq!(evaluate(&c, &pts, 1).outcome, Outcome::Inactive);
        assert_eq!(evaluate(&c, &pts, 1000).outcome, Outcome::Unknown);
    }

    #[test]
    fn rolling_mean_and_trend() {
        let pts = series(&[0.95, 0.93, 0.91, 0.89, 0.87], 100);
        let mean = Condition::RollingMean {
            windows: 3,
            op: Op::Lt,
            value: 0.9,
        };
        let e = evaluate(&mean, &pts, 30);
        assert_eq!(e.outcome, Outcome::Active);
        assert!((e.value.unwrap() - 0.89).abs() < 1e-12);
        let trend = Condition::Trend {
            windows: 5,
            op: Op::Lt,
            value: -0.01,
        };
        let e = evaluate(&trend, &pts, 30);
        assert_eq!(e.outcome, Outcome::Active);
        assert!((e.value.unwrap() + 0.02).abs() < 1e-12);
        let flat = series(&[0.9, 0.9, 0.9, 0.9, 0.9], 100);
        assert_eq!(evaluate(&trend, &flat, 30).outcome, Outcome::Inactive);
        assert_eq!(
            evaluate(&trend, &pts[..3], 30).outcome,
            Outcome::Unknown,
            "fewer windows than asked"
        );
    }

    #[test]
    fn anomaly_against_trailing_windows() {
        let c = Condition::Anomaly {
            windows: 4,
            z: 3.0,
            direction: Direction::Any,
        };
        let normal = series(&[1000.0, 1020.0, 990.0, 1010.0, 1005.0], 1000);
        assert_eq!(evaluate(&c, &normal, 0).outcome, Outcome::Inactive);
        let drop = series(&[1000.0, 1020.0, 990.0, 1010.0, 200.0], 1000);
        assert_eq!(evaluate(&c, &drop, 0).outcome, Outcome::Active);
        let up_only = Condition::Anomaly {
            windows: 4,
            z: 3.0,
            direction: Direction::Above,
        };
        assert_eq!(evaluate(&up_only, &drop, 0).outcome, Outcome::Inactive);
        // A perfectly flat history still tolerates Poisson-size noise.
        let flat = series(&[1000.0, 1000.0, 1000.0, 1000.0, 1040.0], 1000);
        assert_eq!(evaluate(&c, &flat, 0).outcome, Outcome::Inactive);
    }

    #[test]
    fn baseline_needs_a_significant_drop_beyond_the_margin() {
        let with = |v: f64, base: f64, significant: bool| {
            let mut p = series(&[v], 500);
            p[0].change = Some(BaselineChange {
                baseline: base,
                relative_delta: Some((v - base) / base),
                significant,
                p_value: if significant { 0.001 } else { 0.4 },
            });
            p
        };
        let c = Condition::Baseline {
            direction: Direction::Below,
            relative: 0.05,
            require_significant: true,
        };
        assert_eq!(
            evaluate(&c, &with(0.70, 0.80, true), 30).outcome,
            Outcome::Active
        );
        // Same drop, inside the noise: nothing.
        assert_eq!(
            evaluate(&c, &with(0.70, 0.80, false), 30).outcome,
            Outcome::Inactive
        );
        // Significant but only 2.5 % below.
        assert_eq!(
            evaluate(&c, &with(0.78, 0.80, true), 30).outcome,
            Outcome::Inactive
        );
        assert_eq!(
            evaluate(&c, &series(&[0.7], 500), 30).outcome,
            Outcome::Unknown,
            "no baseline"
        );
        let e = evaluate(&c, &with(0.70, 0.80, true), 30);
        assert_eq!(e.baseline, Some(0.80));
        assert!(e.summary.contains("-12.5 %"), "{}", e.summary);
    }

    #[test]
    fn value_format() {
        assert_eq!(fmt_value(0.71234567), "0.7123");
        assert_eq!(fmt_value(1200.0), "1200");
        assert_eq!(fmt_value(0.0), "0");
    }
}
