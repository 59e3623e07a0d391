//! The exploration split: an accumulator's events divided into exploration traffic (tagged
//! `name=value`, [`DEFAULT_TAG`] unless a query names another tag) and the others, as the
//! feedback report ([`crate::feedback`]) shows them side by side.
//!
//! A [`Split`] is kept beside a [`WindowAccumulator`] (its `all`, every event of the hour or
//! window) and only means something with it: while no exploration event came, the others are
//! exactly `all`, so nothing more is kept ([`Split::NoExploration`]); the first exploration
//! event copies `all` into `others` ([`Split::Both`]). A model without exploration traffic
//! pays one look at the tags per event, no second accumulator.
//!
//! The per-hour aggregates ([`crate::aggregates`]) keep the split of the default tag in each
//! (version, hour)'s blob, built in the same rescans and delta additions as the accumulator.
//! A first label arriving as a delta says what its prediction said, read from the prediction's
//! index row, including whether it carries the default tag ([`NewLabel::exploration`]): it
//! joins that side. Index rows written before the store noted the tag do not say; such a label
//! goes to the side that can still take a first label when only one can (the other side has
//! no prediction, or every one of them is labelled already); otherwise the hour's split becomes
//! [`Split::Unknown`] until its next rescan, and a feedback query folds that hour from its raw
//! events instead.

use modelwatch_core::{LabelEvent, PredictionEvent};
use modelwatch_stats::perf::PerfError;
use modelwatch_store::NewLabel;
use serde::{Deserialize, Serialize};

use crate::state::{TaskSpec, WindowAccumulator};

/// The tag that marks exploration traffic unless a query names another, and the one the
/// per-hour split is kept for (and the store notes per prediction).
pub const DEFAULT_TAG: (&str, &str) = modelwatch_core::EXPLORATION_TAG;

/// Whether `p` is exploration traffic for the tag `(name, value)`: its first tag of that name
/// has that value (as a `segment=tag:<name>` split reads the tag).
pub fn is_exploration(tag: (&str, &str), p: &PredictionEvent) -> bool {
    p.has_tag(tag)
}

/// The exploration split of the events of one accumulator (see the module doc).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub enum Split {
    /// No exploration event: the others are all the events.
    #[default]
    NoExploration,
    /// The exploration events, and the others (boxed: the other variants are empty).
    Both {
        explore: Box<WindowAccumulator>,
        others: Box<WindowAccumulator>,
    },
    /// Not known: a first label came that could have been on either side.
    Unknown,
}

/// The two sides of a known split, borrowed: exploration (none without an exploration event),
/// and the others.
pub struct Sides<'a> {
    pub explore: Option<&'a WindowAccumulator>,
    pub others: &'a WindowAccumulator,
}

impl Split {
    /// The sides, given the `all` this split was kept beside; `None` when [`Split::Unknown`].
    pub fn sides<'a>(&'a self, all: &'a WindowAccumulator) -> Option<Sides<'a>> {
        match self {
            Split::NoExploration => Some(Sides {
                explore: None,
                others: all,
            }),
            Split::Both { explore, others } => Some(Sides {
                explore: Some(explore.as_ref()),
                others: others.as_ref(),
            }),
            Split::Unknown => None,
        }
    }

    pub fn is_known(&self) -> bool {
        !matches!(self, Split::Unknown)
    }
}

/// Adds one prediction (and its label) to `all` and to its side of `split`.
pub fn observe(
    spec: &TaskSpec,
    tag: (&str, &str),
    all: &mut WindowAccumulator,
    split: &mut Split,
    p: &PredictionEvent,
    l: Option<&LabelEvent>,
) {
    if is_exploration(tag, p) {
        if let Split::NoExploration = split {
            // Every event so far was another one: the others are `all` before this one.
            *split = Split::Both {
                explore: Box::new(WindowAccumulator::new(spec)),
                others: Box::new(all.clone()),
            };
        }
        if let Split::Both { explore, .. } = split {
            explore.observe(spec, p, l);
        }
    } else if let Split::Both { others, .. } = split {
        others.observe(spec, p, l);
    }
    all.observe(spec, p, l);
}

/// Adds `other_all` with its split to `all` with `split` (built for the same spec).
pub fn merge(
    all: &mut WindowAccumulator,
    split: &mut Split,
    other_all: &WindowAccumulator,
    other_split: &Split,
) -> Result<(), PerfError> {
    match (&mut *split, other_split) {
        (Split::Unknown, _) => {}
        (_, Split::Unknown) => *split = Split::Unknown,
        (Split::NoExploration, Split::NoExploration) => {}
        (Split::NoExploration, Split::Both { explore, others }) => {
            let mut mine = all.clone();
            mine.merge(others)?;
            *split = Split::Both {
                explore: explore.clone(),
                others: Box::new(mine),
            };
        }
        (Split::Both { others, .. }, Split::NoExploration) => others.merge(other_all)?,
        (
            Split::Both { explore, others },
            Split::Both {
                explore: e,
                others: o,
            },
        ) => {
            explore.merge(e)?;
            others.merge(o)?;
        }
    }
    all.merge(other_all)
}

/// Adds the first label of a prediction already counted without one (a label delta) to `all`,
/// and to its prediction's side of `split` for the default tag, when the side is known (see the
/// module doc); otherwise the split becomes [`Split::Unknown`].
pub fn add_late_label(
    spec: &TaskSpec,
    all: &mut WindowAccumulator,
    split: &mut Split,
    l: &NewLabel,
) {
    all.add_late_label(spec, l);
    match (&mut *split, l.exploration) {
        (Split::Unknown, _) => {}
        // No exploration event: the label is another one's, and the others are `all`.
        (Split::NoExploration, Some(false) | None) => {}
        // An exploration prediction in an hour that had none: the states disagree with the
        // store, so the hour's events decide.
        (Split::NoExploration, Some(true)) => *split = Split::Unknown,
        (Split::Both { explore, .. }, Some(true)) => explore.add_late_label(spec, l),
        (Split::Both { others, .. }, Some(false)) => others.add_late_label(spec, l),
        (Split::Both { explore, others }, None) => {
            // A side whose every prediction is labelled cannot take a first label.
            let open = |a: &WindowAccumulator| a.labelled < a.predictions;
            match (open(explore), open(others)) {
                (true, false) => explore.add_late_label(spec, l),
                (false, true) => others.add_late_label(spec, l),
                _ => *split = Split::Unknown,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelwatch_core::{parse_prediction_row, IngestLimits, Outcome, Timestamp};

    fn event(i: usize, tag: Option<&str>) -> PredictionEvent {
        let tags = match tag {
            Some(v) => format!(r#","tags":{{"exploration":"{v}"}}"#),
            None => String::new(),
        };
        let row = format!(
            r#"{{"request_id":"r{i}","timestamp":"2026-01-01T00:00:{:02}Z","prediction":{},"score":0.{}{tags}}}"#,
            i % 60,
            i % 2,
            (i * 7) % 10
        );
        parse_prediction_row(&row, i, Timestamp::now(), &IngestLimits::default()).unwrap()
    }

    /// A label delta's entry for `p`, as the store reads it from `p`'s index row.
    fn label(p: &PredictionEvent, l: f64) -> NewLabel {
        NewLabel {
            exploration: Some(is_exploration(DEFAULT_TAG, p)),
            ..old_label(p, l)
        }
    }

    /// The same from an index row written before the store noted the tag.
    fn old_label(p: &PredictionEvent, l: f64) -> NewLabel {
        NewLabel {
            prediction_time: p.timestamp,
            prediction: p.prediction.clone(),
            score: p.score,
            scores: None,
            label: Outcome::Number(l),
            labelled_at: Timestamp(p.timestamp.micros() + 1_000_000),
            // As an index row written before the store noted the tag.
            exploration: None,
        }
    }

    fn spec() -> TaskSpec {
        let mut d = crate::state::TaskDetector::default();
        d.observe(&event(0, None), None);
        d.observe(&event(1, None), None);
        d.finish(None, None)
    }

    fn json(a: &WindowAccumulator) -> serde_json::Value {
        serde_json::to_value(a).unwrap()
    }

    /// Every way of building a split (one fold, parts merged in any grouping) gives the sides
    /// a fold of each side's own events gives.
    #[test]
    fn merged_parts_split_as_one_fold_of_each_side_does() {
        let spec = spec();
        let tags = [None, Some("false"), None, Some("true"), None, Some("true")];
        let events: Vec<_> = (0..60).map(|i| event(i, tags[i % tags.len()])).collect();
        let (mut explore, mut others) =
            (WindowAccumulator::new(&spec), WindowAccumulator::new(&spec));
        for p in &events {
            match is_exploration(DEFAULT_TAG, p) {
                true => explore.observe(&spec, p, None),
                false => others.observe(&spec, p, None),
            }
        }
        // Parts: the first without exploration, so a merge meets both shapes.
        for cut in [2, 3, 17, 40] {
            let mut parts = Vec::new();
            for chunk in [&events[..cut], &events[cut..]] {
                let (mut all, mut split) = (WindowAccumulator::new(&spec), Split::default());
                for p in chunk {
                    observe(&spec, DEFAULT_TAG, &mut all, &mut split, p, None);
                }
                parts.push((all, split));
            }
            for order in [[0, 1], [1, 0]] {
                let (mut all, mut split) = parts[order[0]].clone();
                let (a, s) = &parts[order[1]];
                merge(&mut all, &mut split, a, s).unwrap();
                let sides = split.sides(&all).unwrap();
                let ctx = format!("cut {cut}, order {order:?}");
                modelwatch_testkit::assert_json_close(
                    &json(sides.explore.unwrap()),
                    &json(&explore),
                    1e-12,
                    &ctx,
                );
                modelwatch_testkit::assert_json_close(
                    &json(sides.others),
                    &json(&others),
                    1e-12,
                    &ctx,
                );
            }
        }
    }

    /// A late label joins its prediction's side, as the store noted it, whichever sides could
    /// take it.
    #[test]
    fn a_late_label_joins_the_side_its_index_row_names() {
        let spec = spec();
        let events: Vec<_> = (0..40)
            .map(|i| event(i, [None, Some("true"), Some("false")][i % 3]))
            .collect();
        let (mut all, mut split) = (WindowAccumulator::new(&spec), Split::default());
        for p in &events {
            observe(&spec, DEFAULT_TAG, &mut all, &mut split, p, None);
        }
        // Labelled late, in an order that leaves both sides open all along.
        for p in events.iter().rev() {
            add_late_label(
                &spec,
                &mut all,
                &mut split,
                &label(p, (p.timestamp.micros() % 2) as f64),
            );
        }
        let (mut want_all, mut want_split) = (WindowAccumulator::new(&spec), Split::default());
        for p in &events {
            let l = modelwatch_core::LabelEvent {
                request_id: p.request_id.clone(),
                label: Outcome::Number((p.timestamp.micros() % 2) as f64),
                timestamp: Timestamp(p.timestamp.micros() + 1_000_000),
            };
            observe(
                &spec,
                DEFAULT_TAG,
                &mut want_all,
                &mut want_split,
                p,
                Some(&l),
            );
        }
        let (got, want) = (
            split.sides(&all).unwrap(),
            want_split.sides(&want_all).unwrap(),
        );
        // Reports, not states: a state keeps its rows in the order they came.
        let report = |a: &WindowAccumulator| {
            serde_json::json!([
                a.predictions,
                a.labelled,
                a.state.report(&Default::default())
            ])
        };
        for (side, g, w) in [
            ("explore", got.explore.unwrap(), want.explore.unwrap()),
            ("others", got.others, want.others),
        ] {
            modelwatch_testkit::assert_json_close(&report(g), &report(w), 1e-12, side);
        }
    }

    /// From an index row written before the store noted the tag, a late label goes to the only
    /// side that can take it, and makes the split unknown when both could.
    #[test]
    fn a_late_label_of_an_old_index_row_goes_where_it_must_or_leaves_the_split_unknown() {
        let spec = spec();
        let (e, o1, o2) = (event(1, Some("true")), event(2, None), event(3, None));
        let (mut all, mut split) = (WindowAccumulator::new(&spec), Split::default());
        // Only others: a label is theirs.
        observe(&spec, DEFAULT_TAG, &mut all, &mut split, &o1, None);
        add_late_label(&spec, &mut all, &mut split, &old_label(&o1, 1.0));
        assert!(matches!(split, Split::NoExploration));
        // An exploration event: the others are all labelled, so the next label is its own.
        observe(&spec, DEFAULT_TAG, &mut all, &mut split, &e, None);
        add_late_label(&spec, &mut all, &mut split, &old_label(&e, 0.0));
        let sides = split.sides(&all).unwrap();
        assert_eq!(
            (sides.explore.unwrap().labelled, sides.others.labelled),
            (1, 1)
        );
        // Another unlabelled event on each side: a label could be either's.
        observe(&spec, DEFAULT_TAG, &mut all, &mut split, &o2, None);
        observe(
            &spec,
            DEFAULT_TAG,
            &mut all,
            &mut split,
            &event(4, Some("true")),
            None,
        );
        add_late_label(&spec, &mut all, &mut split, &old_label(&o2, 1.0));
        assert!(!split.is_known());
        assert_eq!(all.labelled, 3);
        // Unknown stays unknown through merges, either way round.
        let (mut a, mut s) = (WindowAccumulator::new(&spec), Split::default());
        merge(&mut a, &mut s, &all, &split).unwrap();
        assert!(!s.is_known());
    }
}
