//! Concept drift: change points in a model version's stream of errors, in event-time order.
//!
//! The stream of a version is its labelled predictions ordered by prediction event time (ties
//! by request id, so the order is the same whatever order rows arrived in), each mapped to its
//! error: 1 for a classifier's mistake and 0 for a right answer (the class decided as the
//! metrics decide it: the logged prediction, else the score at the threshold or the highest
//! score), the absolute error for a regressor. The detectors of `modelwatch_stats::concept`
//! run over it from the start of the query's range; a change point is reported with its place
//! in the stream, its prediction's time and request id, and the window it falls in.
//!
//! A late label lands somewhere in the past of the stream, so the detectors run again from the
//! start of the range at each query (docs/adr/009-concept-drift-stream.md says why, and
//! what an incremental version must keep).

use modelwatch_core::{LabelEvent, ModelName, Outcome, PredictionEvent, Timestamp, Window};
use modelwatch_stats::concept::DetectorKind;
use modelwatch_store::{ScanRange, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::error::EngineError;
use crate::state::{Task, TaskSpec};

/// What a concept-drift query covers.
#[derive(Debug, Clone)]
pub struct ConceptQuery {
    pub window: Window,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub version: Option<String>,
    /// The detectors to run; every one when empty.
    pub detectors: Vec<DetectorKind>,
}

/// What the stream's values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorStream {
    /// 1 for a wrong class, 0 for a right one.
    Mistake,
    /// |label - prediction|.
    AbsoluteError,
}

/// One detected change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangePoint {
    pub detector: DetectorKind,
    /// 0-based place in the version's stream of labelled predictions of the range.
    pub position: u64,
    /// Event time of the prediction at which the change was flagged.
    pub timestamp: Timestamp,
    pub request_id: String,
    /// Start of the window it falls in.
    pub window_start: Timestamp,
}

/// A detector that does not apply to this stream, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Skipped {
    pub detector: DetectorKind,
    pub reason: String,
}

/// One event-time window of a version's stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConceptWindow {
    pub start: Timestamp,
    pub end: Timestamp,
    /// Labelled predictions in the window.
    pub labelled: u64,
    /// Mean of the stream over the window (the error rate for a classifier).
    pub mean_error: f64,
    /// Changes flagged in the window, per detector that ran (0 included).
    pub changes: BTreeMap<DetectorKind, u64>,
}

/// A version's change points and windows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionConcept {
    pub version: String,
    pub labelled: u64,
    pub changes: Vec<ChangePoint>,
    pub windows: Vec<ConceptWindow>,
}

/// `GET /v1/models/{model}/concept`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConceptReport {
    pub model: String,
    pub task: Task,
    pub stream: ErrorStream,
    pub window: String,
    pub detectors: Vec<DetectorKind>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
    pub versions: Vec<VersionConcept>,
}

/// One labelled prediction of the stream.
struct Point {
    time: Timestamp,
    request_id: String,
    error: f64,
}

/// Runs the detectors over each version's error stream in `q`'s range.
pub fn concept(
    store: &dyn Store,
    model: &ModelName,
    q: &ConceptQuery,
) -> Result<ConceptReport, EngineError> {
    if store.model(model)?.is_none() {
        return Err(StoreError::ModelNotFound(model.to_string()).into());
    }
    let range = ScanRange {
        from: q.from,
        to: q.to,
        version: q.version.clone(),
    };
    let (spec, _) = crate::performance::scan_spec(store, model, &range, None, None)?;
    let stream = match spec.task {
        Task::Regression => ErrorStream::AbsoluteError,
        Task::Binary | Task::Multiclass => ErrorStream::Mistake,
    };
    let wanted = if q.detectors.is_empty() {
        DetectorKind::ALL.to_vec()
    } else {
        q.detectors.clone()
    };
    let (detectors, skipped): (Vec<DetectorKind>, Vec<DetectorKind>) = wanted
        .into_iter()
        .partition(|d| stream == ErrorStream::Mistake || !d.needs_binary_stream());
    let skipped = skipped
        .into_iter()
        .map(|detector| Skipped {
            detector,
            reason: format!(
                "{} watches a stream of 0/1 mistakes; a regressor's errors are real-valued",
                detector.name()
            ),
        })
        .collect();

    let mut streams: BTreeMap<String, Vec<Point>> = BTreeMap::new();
    store.scan_predictions(model, &range, &mut |p, l| {
        if let Some(error) = l.and_then(|l| error_of(&spec, p, l)) {
            streams
                .entry(p.model_version.clone().unwrap_or_default())
                .or_default()
                .push(Point {
                    time: p.timestamp,
                    request_id: p.request_id.clone(),
                    error,
                });
        }
    })?;
    let versions = streams
        .into_iter()
        .map(|(version, mut points)| {
            points.sort_by(|a, b| (a.time, &a.request_id).cmp(&(b.time, &b.request_id)));
            run_version(version, &points, &detectors, q.window)
        })
        .collect();
    Ok(ConceptReport {
        model: model.to_string(),
        task: spec.task,
        stream,
        window: q.window.label(),
        detectors,
        skipped,
        versions,
    })
}

fn run_version(
    version: String,
    points: &[Point],
    detectors: &[DetectorKind],
    window: Window,
) -> VersionConcept {
    let mut windows: BTreeMap<Timestamp, ConceptWindow> = BTreeMap::new();
    for p in points {
        let start = window.start_of(p.time);
        let w = windows.entry(start).or_insert_with(|| ConceptWindow {
            start,
            end: Timestamp(start.micros() + window.micros()),
            labelled: 0,
            mean_error: 0.0,
            changes: detectors.iter().map(|&d| (d, 0)).collect(),
        });
        w.labelled += 1;
        w.mean_error += p.error;
    }
    for w in windows.values_mut() {
        w.mean_error /= w.labelled as f64;
    }
    let mut changes = Vec::new();
    for &kind in detectors {
        let mut detector = kind.detector();
        for (i, p) in points.iter().enumerate() {
            if detector.update(p.error).drift {
                let window_start = window.start_of(p.time);
                if let Some(w) = windows.get_mut(&window_start) {
                    *w.changes.entry(kind).or_default() += 1;
                }
                changes.push(ChangePoint {
                    detector: kind,
                    position: i as u64,
                    timestamp: p.time,
                    request_id: p.request_id.clone(),
                    window_start,
                });
            }
        }
    }
    changes.sort_by_key(|c| (c.position, c.detector));
    VersionConcept {
        version,
        labelled: points.len() as u64,
        changes,
        windows: windows.into_values().collect(),
    }
}

/// The stream's value for one labelled prediction; `None` when it cannot be told (no
/// decision logged or derivable, a non-numeric regression value).
fn error_of(spec: &TaskSpec, p: &PredictionEvent, l: &LabelEvent) -> Option<f64> {
    match spec.task {
        Task::Regression => {
            let (t, y) = (l.label.as_f64()?, p.prediction.as_ref()?.as_f64()?);
            Some((t - y).abs())
        }
        Task::Binary => {
            let score = spec.binary_score(p.score, p.scores.as_deref());
            let predicted_positive = spec.predicted_positive(p.prediction.as_ref(), score)?;
            let actual_positive = l.label.with_class_key(|c| c == spec.positive());
            Some(f64::from(predicted_positive != actual_positive))
        }
        Task::Multiclass => {
            let predicted = match &p.prediction {
                Some(o) => o.class_key(),
                None => crate::state::argmax(p.scores.as_deref()?)?.to_owned(),
            };
            Some(f64::from(predicted != Outcome::class_key(&l.label)))
        }
    }
}
