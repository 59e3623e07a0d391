//! The per-hour state of a bulk import, built while the file is read, so that the first query
//! after `modelwatch import` reads hours instead of rescanning every event.
//!
//! A predictions file with its labels holds, row by row, exactly what a rescan joins from the
//! store (each prediction with the label of its request id; the label's time is the
//! prediction's). For a model with nothing stored yet, folding the rows as they are read gives
//! the accumulators and drift sketches a rescan of the stored events would give. [`ImportFold`]
//! is written in place of that rescan only when that holds: the model had no predictions, no
//! labels, no task decision and no dirty hour before the import; the store accepted every
//! folded prediction and label (no duplicate, no row refused by the writer); the task decided
//! from the first rows is the one all rows decide; and the store's stale hours are exactly the
//! folded ones, each one it could bring up to date by adding (nothing but the import changed
//! them). Otherwise nothing is written and the hours stay stale: the first query rescans, as
//! before.

use std::collections::{BTreeSet, HashMap};

use modelwatch_core::{LabelEvent, ModelName, PredictionEvent, Timestamp};
use modelwatch_store::{hour_of, AggregateWrite, ScanRange, Store, StoredAggregate, MODEL_WIDE};

use super::{
    declared_task, drift_reference, hour_row, load_decision, save_decision, spec_key, Format,
    HourBlob, TaskDecision, DRIFT, DRIFT_STAMP, ESTIMATE_KEY, PERFORMANCE,
};
use crate::error::EngineError;
use crate::estimate::{Estimator, HourEstimate, WindowEstimation, ESTIMATE};
use crate::exploration::{self, Split};
use crate::sketch::{Reference, WindowSketch};
use crate::state::{Task, TaskDetector, TaskSpec, WindowAccumulator};

/// (the version's place in [`ImportFold::versions`], start of the hour in microseconds): a
/// file has one version or a few, and a string per row would be most of the fold.
type HourKey = (usize, i64);

/// The accumulators and sketches of an import's hours, folded as its chunks are read.
pub struct ImportFold {
    declared: Option<Task>,
    reference: Option<Reference>,
    /// What the reference rows say about the task (a first decision starts from them).
    reference_detector: TaskDetector,
    /// The reference rows and every row folded.
    detector: TaskDetector,
    /// Decided from the reference and the first chunk, with its JSON.
    spec: Option<(TaskSpec, String)>,
    /// The reference rows of version-less queries, which the label-free estimator is fitted
    /// on once the task is decided.
    reference_rows: Vec<modelwatch_core::ReferenceRow>,
    /// That estimator with its key, when the task and reference allow one.
    estimator: Option<(Estimator, u64)>,
    hours: HashMap<HourKey, HourState>,
    versions: Vec<String>,
    predictions: u64,
    labels: u64,
}

/// An hour's accumulator with its exploration split, drift sketch and estimation state.
type HourState = (
    WindowAccumulator,
    Split,
    Option<WindowSketch>,
    Option<WindowEstimation>,
);

/// What [`ImportFold::finish`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportState {
    /// The hours were written and their marks cleared: queries read them at once.
    Written { hours: usize },
    /// Nothing written (the reason); the first query rescans the dirty hours.
    Skipped(String),
}

impl ImportFold {
    /// A fold for an import into `model`, or `None` when the model already holds predictions,
    /// labels or aggregates (its hours then mix stored and imported rows: the refresh's
    /// business).
    pub fn start(store: &dyn Store, model: &ModelName) -> Result<Option<ImportFold>, EngineError> {
        if let Some(m) = store.model(model)? {
            if m.predictions > 0 || m.labels > 0 {
                return Ok(None);
            }
            if load_decision(store, model)?.is_some()
                || !store.stale_hours(model, false)?.is_empty()
            {
                return Ok(None);
            }
        }
        let (reference, reference_detector, reference_rows) = match store.model(model)? {
            // A new model has no reference.
            None => (None, TaskDetector::default(), Vec::new()),
            Some(_) => {
                let mut detector = TaskDetector::default();
                let rows = crate::reference::rows(store, model, None)?.0;
                for r in &rows {
                    detector.observe_reference(r);
                }
                (drift_reference(store, model)?, detector, rows)
            }
        };
        let declared = match store.model(model)? {
            Some(_) => declared_task(store, model)?,
            None => super::configured_task(model),
        };
        Ok(Some(ImportFold {
            declared,
            reference,
            detector: reference_detector.clone(),
            reference_detector,
            spec: None,
            reference_rows,
            estimator: None,
            hours: HashMap::new(),
            versions: Vec::new(),
            predictions: 0,
            labels: 0,
        }))
    }

    /// Folds one chunk of a predictions file: `predictions` at the file rows
    /// `prediction_index`, and the labels of the file (`labels` at `label_index`); a label is
    /// joined to the prediction of its row.
    pub fn observe(
        &mut self,
        predictions: &[PredictionEvent],
        prediction_index: &[usize],
        labels: &[LabelEvent],
        label_index: &[usize],
    ) {
        let (spec, _) = self.spec.get_or_insert_with(|| {
            // The first decision, as a refresh makes it: the reference and the first rows.
            let mut first = self.reference_detector.clone();
            let mut l = 0;
            for (p, row) in predictions.iter().zip(prediction_index) {
                while l < label_index.len() && label_index[l] < *row {
                    l += 1;
                }
                let label = (l < label_index.len() && label_index[l] == *row).then(|| &labels[l]);
                first.observe(p, label);
            }
            let spec = first.finish(self.declared, None);
            let json = spec_key(&spec);
            // The estimator a refresh fits for this task (the same rows, the same fit).
            let estimable = crate::estimate::estimable(spec.task);
            self.estimator = (estimable && !self.reference_rows.is_empty())
                .then(|| crate::estimate::fit(&spec, &self.reference_rows).ok())
                .flatten()
                .map(|e| {
                    let key = e.key();
                    (e, key)
                });
            (spec, json)
        });
        let estimator = self.estimator.as_ref().map(|e| &e.0);
        let mut l = 0;
        for (p, row) in predictions.iter().zip(prediction_index) {
            while l < label_index.len() && label_index[l] < *row {
                l += 1;
            }
            let label = (l < label_index.len() && label_index[l] == *row).then(|| &labels[l]);
            self.detector.observe(p, label);
            let version = p.model_version.as_deref().unwrap_or("");
            let v = match self.versions.iter().position(|known| known == version) {
                Some(v) => v,
                None => {
                    self.versions.push(version.to_owned());
                    self.versions.len() - 1
                }
            };
            let hour = hour_of(p.timestamp.micros());
            let reference = self.reference.as_ref();
            let (acc, split, sketch, estimate) = self.hours.entry((v, hour)).or_insert_with(|| {
                (
                    WindowAccumulator::new(spec),
                    Split::default(),
                    reference.map(WindowSketch::new),
                    estimator.map(WindowEstimation::new),
                )
            });
            if let (Some(e), Some(state)) = (estimator, estimate.as_mut()) {
                state.observe(e, spec, p);
            }
            // As the refresh's rescan folds an hour: the accumulator with its exploration split.
            exploration::observe(spec, exploration::DEFAULT_TAG, acc, split, p, label);
            if let (Some(r), Some(sk)) = (reference, sketch.as_mut()) {
                sk.push(
                    r,
                    &p.features,
                    p.prediction.as_ref(),
                    p.score,
                    label.map(|l| &l.label),
                );
            }
            self.predictions += 1;
            self.labels += u64::from(label.is_some());
        }
    }

    /// Writes the folded hours in place of the rescan the first refresh would run, when they
    /// are what that rescan would build: `accepted` predictions and `labels` stored by the
    /// import, `duplicates` refused as repeated ids. Otherwise writes nothing and says why.
    pub fn finish(
        self,
        store: &dyn Store,
        model: &ModelName,
        accepted: u64,
        duplicates: u64,
        labels: u64,
    ) -> Result<ImportState, EngineError> {
        let skip = |why: String| Ok(ImportState::Skipped(why));
        let Some((spec, spec_json)) = self.spec else {
            return skip("no prediction was read".into());
        };
        if duplicates > 0 || accepted != self.predictions || labels != self.labels {
            return skip(format!(
                "the store kept {accepted} of {} predictions and {labels} of {} labels \
                 ({duplicates} duplicates)",
                self.predictions, self.labels
            ));
        }
        let decided = self.detector.clone().finish(self.declared, None);
        if decided != spec {
            return skip("the later rows changed the task decided from the first ones".into());
        }
        if self.declared != declared_task(store, model)? {
            return skip("a task was declared for the model during the import".into());
        }
        if load_decision(store, model)?.is_some() {
            return skip("the model's task was decided during the import".into());
        }
        let reference = drift_reference(store, model)?;
        if reference.as_ref().map(|r| r.stamp) != self.reference.as_ref().map(|r| r.stamp) {
            return skip("the reference changed during the import".into());
        }
        // The snapshot a rescan would name: an empty range reads no segment, only the last
        // delta id. Every delta up to it is one of the import's (the model was new to them).
        let nothing = ScanRange {
            from: Some(Timestamp(i64::MIN)),
            to: Some(Timestamp(i64::MIN)),
            version: None,
        };
        let through = store.scan_predictions(model, &nothing, &mut |_, _| {})?;
        // With what could be added: an hour that cannot be brought up to date so was changed
        // by more than the import (retention, a replaced label).
        let dirty = store.stale_hours(model, true)?;
        let marked: BTreeSet<(&str, i64)> = dirty
            .iter()
            .map(|d| (d.version.as_str(), d.hour.micros()))
            .collect();
        let folded: BTreeSet<(&str, i64)> = self
            .hours
            .keys()
            .map(|(v, h)| (self.versions[*v].as_str(), *h))
            .collect();
        if dirty.iter().any(|d| d.additions().is_none()) || marked != folded {
            return skip("the store's dirty hours are not the imported ones".into());
        }
        // Decided before the hours are written: a crash in between leaves the marks, and a
        // refresh then adds the deltas to hours never written, which start empty.
        save_decision(
            store,
            model,
            &TaskDecision {
                detector: self.detector,
                spec,
            },
        )?;
        let mut hours: HashMap<(&str, i64), _> = self
            .hours
            .into_iter()
            .map(|((v, h), state)| ((self.versions[v].as_str(), h), state))
            .collect();
        let mut perf = AggregateWrite {
            kind: PERFORMANCE.into(),
            ..AggregateWrite::default()
        };
        let mut drift = AggregateWrite {
            kind: DRIFT.into(),
            ..AggregateWrite::default()
        };
        let mut estimates = AggregateWrite {
            kind: ESTIMATE.into(),
            ..AggregateWrite::default()
        };
        for d in &dirty {
            let (acc, split, sketch, estimate) = hours
                .remove(&(d.version.as_str(), d.hour.micros()))
                .expect("every marked hour was folded");
            if let (Some((_, key)), Some(state)) = (&self.estimator, estimate) {
                estimates.put.push(hour_row(
                    d,
                    "estimation state",
                    &HourEstimate { key: *key, state },
                )?);
            }
            perf.put.push(hour_row(
                d,
                "aggregate",
                &HourBlob {
                    format: Format,
                    spec: spec_json.clone(),
                    acc,
                    split,
                },
            )?);
            if let Some(sk) = sketch {
                drift.put.push(hour_row(d, "drift sketch", &sk)?);
            }
            // As a rescan at the snapshot above would answer it.
            perf.refreshed.push(d.rescanned(through));
        }
        let written = perf.put.len();
        // (No hour of a model new to the import has a concept stream; deleted all the same,
        // as with every write of an hour's performance state.)
        let mut writes = vec![perf];
        writes.extend(super::stale_streams(dirty.iter()));
        if let Some((_, key)) = &self.estimator {
            writes.push(estimates);
            // The key of the estimator the states were built with, as a refresh would store
            // it: without it the first estimate would rebuild every hour.
            writes.push(AggregateWrite {
                kind: ESTIMATE_KEY.into(),
                put: vec![StoredAggregate {
                    version: String::new(),
                    hour: MODEL_WIDE,
                    data: key.to_le_bytes().to_vec(),
                }],
                ..AggregateWrite::default()
            });
        }
        if let Some(r) = &reference {
            writes.push(drift);
            // The stamp of the reference the sketches were built against: without it the
            // first drift query would take them for another reference's and rebuild them.
            writes.push(AggregateWrite {
                kind: DRIFT_STAMP.into(),
                put: vec![StoredAggregate {
                    version: String::new(),
                    hour: MODEL_WIDE,
                    data: WindowSketch::stamp_for(r).to_le_bytes().to_vec(),
                }],
                ..AggregateWrite::default()
            });
        }
        store.put_aggregate_group(model, writes)?;
        Ok(ImportState::Written { hours: written })
    }
}
