//! The performance metrics by name: the one list the rule validator, the Prometheus exporter,
//! the CSV export, the dashboard's charts and the docs take their names from.
//!
//! Adding a metric is one variant here (its name, and the report field it reads: the `match`es
//! below do not compile until it has one; its change against the baseline, where the task
//! compares it) plus its computation in the report. The tests check both directions against
//! the reports' JSON, which is what the server answers: every name listed for a task is a
//! metric of that task's report, and every metric of a report is listed; the alerts, the
//! dashboard and the exports read the typed reports through these names.

use super::{
    BinaryComparison, BinaryReport, Change, Metric, MulticlassComparison, MulticlassReport,
    RegressionComparison, RegressionReport,
};

/// Declares [`MetricName`] with its variants, [`MetricName::ALL`] and their names from one list.
macro_rules! metric_names {
    ($($variant:ident => $name:literal),+ $(,)?) => {
        /// A performance metric, by its scikit-learn name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum MetricName {
            $($variant),+
        }

        impl MetricName {
            /// Every metric, in the order rules, exports and docs list them.
            pub const ALL: [MetricName; [$($name),+].len()] = [$(MetricName::$variant),+];

            /// The name in reports, rules and exports (scikit-learn's).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(MetricName::$variant => $name),+
                }
            }
        }
    };
}

metric_names! {
    Accuracy => "accuracy",
    Precision => "precision",
    Recall => "recall",
    F1 => "f1",
    Specificity => "specificity",
    Fpr => "fpr",
    Fnr => "fnr",
    BalancedAccuracy => "balanced_accuracy",
    Mcc => "mcc",
    RocAuc => "roc_auc",
    AveragePrecision => "average_precision",
    LogLoss => "log_loss",
    BrierScore => "brier_score",
    Ece => "ece",
    PrecisionMicro => "precision_micro",
    PrecisionMacro => "precision_macro",
    PrecisionWeighted => "precision_weighted",
    RecallMicro => "recall_micro",
    RecallMacro => "recall_macro",
    RecallWeighted => "recall_weighted",
    F1Micro => "f1_micro",
    F1Macro => "f1_macro",
    F1Weighted => "f1_weighted",
    Mae => "mae",
    Mse => "mse",
    Rmse => "rmse",
    Mape => "mape",
    R2 => "r2",
    MeanError => "mean_error",
    ErrorP05 => "error_p05",
    ErrorP50 => "error_p50",
    ErrorP95 => "error_p95",
}

use MetricName::*;

/// The metrics of one task: the four headline ones (charted, first in tables and exports, the
/// first of them the task's headline number), then the rest.
#[derive(Debug, Clone, Copy)]
pub struct TaskMetrics {
    pub headline: [MetricName; 4],
    pub rest: &'static [MetricName],
}

impl TaskMetrics {
    /// Headline first, then the rest.
    pub fn all(&self) -> impl Iterator<Item = MetricName> + '_ {
        self.headline.iter().chain(self.rest).copied()
    }
}

pub const BINARY_METRICS: TaskMetrics = TaskMetrics {
    headline: [Accuracy, Precision, Recall, F1],
    rest: &[
        RocAuc,
        AveragePrecision,
        LogLoss,
        BrierScore,
        Ece,
        Specificity,
        BalancedAccuracy,
        Mcc,
        Fpr,
        Fnr,
    ],
};

pub const MULTICLASS_METRICS: TaskMetrics = TaskMetrics {
    headline: [Accuracy, PrecisionMacro, RecallMacro, F1Macro],
    rest: &[
        PrecisionMicro,
        RecallMicro,
        F1Micro,
        PrecisionWeighted,
        RecallWeighted,
        F1Weighted,
        RocAuc,
        LogLoss,
    ],
};

pub const REGRESSION_METRICS: TaskMetrics = TaskMetrics {
    headline: [Mae, Rmse, R2, Mape],
    rest: &[Mse, MeanError, ErrorP05, ErrorP50, ErrorP95],
};

impl MetricName {
    /// Every metric's name, in the order of [`MetricName::ALL`].
    pub const NAMES: [&'static str; Self::ALL.len()] = {
        let mut out = [""; Self::ALL.len()];
        let mut i = 0;
        while i < out.len() {
            out[i] = Self::ALL[i].as_str();
            i += 1;
        }
        out
    };

    /// The metric of this name, if there is one.
    pub fn parse(name: &str) -> Option<MetricName> {
        Self::ALL.into_iter().find(|m| m.as_str() == name)
    }

    /// This metric in a binary report, if binary models have it.
    pub fn of_binary(self, r: &BinaryReport) -> Option<&Metric> {
        Some(match self {
            Accuracy => &r.accuracy,
            Precision => &r.precision,
            Recall => &r.recall,
            F1 => &r.f1,
            Specificity => &r.specificity,
            Fpr => &r.fpr,
            Fnr => &r.fnr,
            BalancedAccuracy => &r.balanced_accuracy,
            Mcc => &r.mcc,
            RocAuc => &r.roc_auc,
            AveragePrecision => &r.average_precision,
            LogLoss => &r.log_loss,
            BrierScore => &r.brier_score,
            Ece => &r.ece,
            PrecisionMicro | PrecisionMacro | PrecisionWeighted | RecallMicro | RecallMacro
            | RecallWeighted | F1Micro | F1Macro | F1Weighted | Mae | Mse | Rmse | Mape | R2
            | MeanError | ErrorP05 | ErrorP50 | ErrorP95 => return None,
        })
    }

    /// This metric in a multiclass report, if multiclass models have it.
    pub fn of_multiclass(self, r: &MulticlassReport) -> Option<&Metric> {
        Some(match self {
            Accuracy => &r.accuracy,
            PrecisionMicro => &r.precision_micro,
            PrecisionMacro => &r.precision_macro,
            PrecisionWeighted => &r.precision_weighted,
            RecallMicro => &r.recall_micro,
            RecallMacro => &r.recall_macro,
            RecallWeighted => &r.recall_weighted,
            F1Micro => &r.f1_micro,
            F1Macro => &r.f1_macro,
            F1Weighted => &r.f1_weighted,
            RocAuc => &r.roc_auc,
            LogLoss => &r.log_loss,
            Precision | Recall | F1 | Specificity | Fpr | Fnr | BalancedAccuracy | Mcc
            | AveragePrecision | BrierScore | Ece | Mae | Mse | Rmse | Mape | R2 | MeanError
            | ErrorP05 | ErrorP50 | ErrorP95 => return None,
        })
    }

    /// This metric in a regression report, if regression models have it.
    pub fn of_regression(self, r: &RegressionReport) -> Option<&Metric> {
        Some(match self {
            Mae => &r.mae,
            Mse => &r.mse,
            Rmse => &r.rmse,
            Mape => &r.mape,
            R2 => &r.r2,
            MeanError => &r.mean_error,
            ErrorP05 => &r.error_p05,
            ErrorP50 => &r.error_p50,
            ErrorP95 => &r.error_p95,
            Accuracy | Precision | Recall | F1 | Specificity | Fpr | Fnr | BalancedAccuracy
            | Mcc | RocAuc | AveragePrecision | LogLoss | BrierScore | Ece | PrecisionMicro
            | PrecisionMacro | PrecisionWeighted | RecallMicro | RecallMacro | RecallWeighted
            | F1Micro | F1Macro | F1Weighted => return None,
        })
    }

    /// This metric's change against the baseline in a binary comparison, if it is compared.
    pub fn change_of_binary(self, c: &BinaryComparison) -> Option<&Change> {
        Some(match self {
            Accuracy => &c.accuracy,
            Precision => &c.precision,
            Recall => &c.recall,
            F1 => &c.f1,
            Specificity => &c.specificity,
            Fpr => &c.fpr,
            Fnr => &c.fnr,
            BalancedAccuracy => &c.balanced_accuracy,
            Mcc => &c.mcc,
            RocAuc => &c.roc_auc,
            AveragePrecision => &c.average_precision,
            LogLoss => &c.log_loss,
            BrierScore => &c.brier_score,
            Ece => &c.ece,
            _ => return None,
        })
    }

    /// This metric's change in a multiclass comparison (the headline ones are compared).
    pub fn change_of_multiclass(self, c: &MulticlassComparison) -> Option<&Change> {
        Some(match self {
            Accuracy => &c.accuracy,
            F1Macro => &c.f1_macro,
            RocAuc => &c.roc_auc,
            LogLoss => &c.log_loss,
            _ => return None,
        })
    }

    /// This metric's change in a regression comparison (the mean-type ones are compared).
    pub fn change_of_regression(self, c: &RegressionComparison) -> Option<&Change> {
        Some(match self {
            Mae => &c.mae,
            Mse => &c.mse,
            Mape => &c.mape,
            MeanError => &c.mean_error,
            _ => return None,
        })
    }
}

impl std::fmt::Display for MetricName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perf::{BinaryState, MetricConfig, MulticlassState, RegressionState};
    use serde_json::Value;
    use std::collections::BTreeSet;

    /// The keys of a report's JSON whose values are metrics (an object with a `status`).
    fn metric_keys(report: &Value) -> BTreeSet<String> {
        report
            .as_object()
            .expect("a report is an object")
            .iter()
            .filter(|(_, v)| v.get("status").is_some_and(Value::is_string))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Both directions for one task: the listed names are exactly the report's metrics, each
    /// read from the typed report equals what its JSON holds under that name.
    fn check(
        task: &str,
        listed: TaskMetrics,
        json: Value,
        read: impl Fn(MetricName) -> Option<Value>,
    ) {
        let listed_names: BTreeSet<String> = listed.all().map(|m| m.as_str().to_owned()).collect();
        assert_eq!(
            listed.all().count(),
            listed_names.len(),
            "{task}: a metric listed twice"
        );
        assert_eq!(
            listed_names,
            metric_keys(&json),
            "{task}: the vocabulary and the report's metrics differ"
        );
        for m in MetricName::ALL {
            let typed = read(m);
            assert_eq!(
                typed.is_some(),
                listed_names.contains(m.as_str()),
                "{task}: {m} is readable from the typed report but not listed, or the reverse"
            );
            if let Some(value) = typed {
                assert_eq!(value, json[m.as_str()], "{task}: {m}");
            }
        }
    }

    #[test]
    fn every_listed_metric_is_in_its_report_and_every_reported_metric_is_listed() {
        let config = MetricConfig::default();
        let mut binary = BinaryState::new();
        let mut multiclass = MulticlassState::new();
        let mut regression = RegressionState::new();
        for i in 0..200 {
            let score = f64::from(i % 100) / 100.0;
            binary
                .observe(i % 3 != 0 && score > 0.3, Some(score), None)
                .unwrap();
            multiclass
                .observe(
                    &format!("c{}", i % 3),
                    &format!("c{}", i % 4 % 3),
                    None::<&[(&str, f64)]>,
                )
                .unwrap();
            regression
                .observe(f64::from(i), f64::from(i) + score)
                .unwrap();
        }
        let b = binary.metrics(&config);
        check(
            "binary",
            BINARY_METRICS,
            serde_json::to_value(&b).unwrap(),
            |m| m.of_binary(&b).map(|x| serde_json::to_value(x).unwrap()),
        );
        let mc = multiclass.metrics(&config);
        check(
            "multiclass",
            MULTICLASS_METRICS,
            serde_json::to_value(&mc).unwrap(),
            |m| {
                m.of_multiclass(&mc)
                    .map(|x| serde_json::to_value(x).unwrap())
            },
        );
        let r = regression.metrics(&config);
        check(
            "regression",
            REGRESSION_METRICS,
            serde_json::to_value(&r).unwrap(),
            |m| {
                m.of_regression(&r)
                    .map(|x| serde_json::to_value(x).unwrap())
            },
        );
    }

    /// The comparison of each task reads back through the vocabulary: every change its JSON
    /// holds is reachable by its name, and no name reads a change the JSON does not hold.
    #[test]
    fn every_compared_metric_is_read_by_its_name() {
        use crate::perf::{compare_binary, compare_multiclass, compare_regression};
        let config = MetricConfig::default();
        let (mut b, mut mc, mut r) = (
            BinaryState::new(),
            MulticlassState::new(),
            RegressionState::new(),
        );
        for i in 0..100 {
            let score = f64::from(i % 10) / 10.0;
            b.observe(i % 3 == 0, Some(score), None).unwrap();
            mc.observe(&format!("c{}", i % 3), "c0", None::<&[(&str, f64)]>)
                .unwrap();
            r.observe(f64::from(i), f64::from(i) + score).unwrap();
        }
        let check = |task: &str, json: Value, read: &dyn Fn(MetricName) -> Option<Value>| {
            let keys: BTreeSet<String> = json.as_object().unwrap().keys().cloned().collect();
            let named: BTreeSet<String> = MetricName::ALL
                .into_iter()
                .filter_map(|m| {
                    let change = read(m)?;
                    assert_eq!(change, json[m.as_str()], "{task}: {m}");
                    if let Some(test) = change.get("test") {
                        let name = serde_json::from_value::<crate::perf::Test>(test.clone())
                            .unwrap()
                            .name();
                        assert_eq!(test, name, "{task}: {m}'s test");
                    }
                    Some(m.as_str().to_owned())
                })
                .collect();
            assert_eq!(keys, named, "{task}");
        };
        let cb = compare_binary(&b, &b, &config);
        check("binary", serde_json::to_value(&cb).unwrap(), &|m| {
            m.change_of_binary(&cb)
                .map(|c| serde_json::to_value(c).unwrap())
        });
        let cm = compare_multiclass(&mc, &mc, &config);
        check("multiclass", serde_json::to_value(&cm).unwrap(), &|m| {
            m.change_of_multiclass(&cm)
                .map(|c| serde_json::to_value(c).unwrap())
        });
        let cr = compare_regression(&r, &r, &config);
        check("regression", serde_json::to_value(&cr).unwrap(), &|m| {
            m.change_of_regression(&cr)
                .map(|c| serde_json::to_value(c).unwrap())
        });
    }

    #[test]
    fn names_parse_back_and_every_metric_belongs_to_a_task() {
        for m in MetricName::ALL {
            assert_eq!(MetricName::parse(m.as_str()), Some(m));
            assert!(
                [BINARY_METRICS, MULTICLASS_METRICS, REGRESSION_METRICS]
                    .iter()
                    .any(|t| t.all().any(|x| x == m)),
                "{m} belongs to no task"
            );
        }
        assert_eq!(MetricName::NAMES.len(), MetricName::ALL.len());
        assert_eq!(MetricName::parse("accuracy "), None);
    }
}
