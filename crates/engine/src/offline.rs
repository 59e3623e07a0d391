//! Per-window performance of rows read from a file, with no store (`modelwatch metrics
//! --predictions FILE`): the same accumulators, task detection and report as a query of the
//! service, over rows held only while they are folded.
//!
//! Differences from the service, on purpose: binary ROC-AUC and average precision keep every
//! scored row (exact, equal to scikit-learn's, at 16 bytes a row) instead of the stored states'
//! 1,000-bin histograms past 1,000 rows a window; there is no reference, so no baseline; and no
//! window is `partial` (a file is complete). Rows are taken as the file has them: a request id
//! repeated is counted each time (an import would keep the first).

use std::collections::BTreeMap;

use modelwatch_core::{LabelEvent, ModelName, PredictionEvent, Timestamp, Window};

use crate::error::EngineError;
use crate::performance::{PerformanceQuery, PerformanceReport};
use crate::state::{choose_task, TaskDetector, TaskSpec, WindowAccumulator};

/// Rows of a file folded into windows and versions.
pub struct FileMetrics {
    query: PerformanceQuery,
    window: Window,
    detector: TaskDetector,
    /// Given (a second pass), or decided from the first chunk.
    spec: Option<TaskSpec>,
    windows: BTreeMap<Timestamp, WindowAccumulator>,
    versions: BTreeMap<String, WindowAccumulator>,
}

/// What [`FileMetrics::finish`] found.
pub enum FileReport {
    Done(Box<PerformanceReport>),
    /// Rows after the first chunk changed the task decided from it (a third class): the file
    /// must be folded again with this spec ([`FileMetrics::with_spec`]).
    ReadAgain(TaskSpec),
}

impl FileMetrics {
    /// A fold for `query` (its window, range, version, task and threshold; not its segment:
    /// whole windows only, the command refuses `--segment` with a file).
    pub fn new(query: &PerformanceQuery) -> Result<FileMetrics, EngineError> {
        if let Some(t) = query.threshold {
            if !(0.0..=1.0).contains(&t) {
                return Err(EngineError::InvalidThreshold(t));
            }
        }
        Ok(FileMetrics {
            query: query.clone(),
            window: query.window.unwrap_or(Window::DAY),
            detector: TaskDetector::default(),
            spec: None,
            windows: BTreeMap::new(),
            versions: BTreeMap::new(),
        })
    }

    /// The fold of a second pass, with the spec the first one decided.
    pub fn with_spec(query: &PerformanceQuery, spec: TaskSpec) -> Result<FileMetrics, EngineError> {
        let mut m = FileMetrics::new(query)?;
        m.spec = Some(spec);
        Ok(m)
    }

    fn wanted(&self, p: &PredictionEvent) -> bool {
        let q = &self.query;
        q.from.is_none_or(|f| p.timestamp >= f)
            && q.to.is_none_or(|t| p.timestamp < t)
            && q.version
                .as_deref()
                .is_none_or(|v| p.model_version.as_deref().unwrap_or("") == v)
    }

    /// Folds one chunk of rows, each prediction with its label if it has one.
    pub fn observe<'a>(
        &mut self,
        rows: impl Iterator<Item = (&'a PredictionEvent, Option<&'a LabelEvent>)> + Clone,
    ) {
        if self.spec.is_none() {
            // As a refresh decides a new model's task: from its first rows; later rows only
            // confirm it (or the fold is read again).
            let mut first = TaskDetector::default();
            for (p, l) in rows.clone().filter(|(p, _)| self.wanted(p)) {
                first.observe(p, l);
            }
            let (spec, _) = choose_task(first, self.query.task, None, self.query.threshold);
            self.spec = Some(spec);
        }
        let spec = self.spec.as_ref().expect("decided above");
        let fresh = |spec: &TaskSpec| {
            let mut acc = WindowAccumulator::new(spec);
            acc.state.keep_every_score();
            acc
        };
        for (p, l) in rows {
            if !self.wanted(p) {
                continue;
            }
            self.detector.observe(p, l);
            self.windows
                .entry(self.window.start_of(p.timestamp))
                .or_insert_with(|| fresh(spec))
                .observe(spec, p, l);
            let version = p.model_version.as_deref().unwrap_or("");
            match self.versions.get_mut(version) {
                Some(acc) => acc.observe(spec, p, l),
                None => {
                    let mut acc = fresh(spec);
                    acc.observe(spec, p, l);
                    self.versions.insert(version.to_owned(), acc);
                }
            }
        }
    }

    /// The report named `name` (the file), or the spec to fold the file again with.
    pub fn finish(self, name: &str) -> FileReport {
        let (decided, reason) =
            choose_task(self.detector, self.query.task, None, self.query.threshold);
        match self.spec {
            Some(spec) if spec != decided => return FileReport::ReadAgain(decided),
            _ => {}
        }
        // The report names the file; `assemble` wants a model name only to print it.
        let model = ModelName::new("file").expect("a valid name");
        let mut report = crate::performance::assemble(
            &model,
            &self.query,
            (decided, reason),
            None,
            self.windows,
            self.versions,
            None,
        );
        report.model = name.to_owned();
        FileReport::Done(Box::new(report))
    }
}
