//! The CLI's integration tests, each file a module of one test binary: they share the harness in
//! `common` (a real `modelwatch serve` on 127.0.0.1, port 0), one link instead of one per file,
//! and the long tests of different files (the crash test, the demo, the peers' data) run beside
//! each other instead of one binary after another. Run one file's tests with
//! `cargo test -p modelwatch-cli --test cli alerts::`.

mod common;

mod alert_causes;
mod alerts;
mod attributions;
mod challengers;
mod clickhouse;
mod clickhouse_alerts;
mod clickhouse_kill;
mod clickhouse_lease;
mod clickhouse_once;
mod concept_drift;
mod crash;
mod dashboard;
mod domain_classifier;
mod drift_cli;
mod drift_http;
mod estimated_metrics;
mod estimated_regression;
mod export_server;
mod fairness;
mod hardening;
mod http_ingest;
mod import_export;
mod metrics_cli;
mod metrics_csv;
mod metrics_file;
mod migrate;
mod multivariate_drift;
mod outliers;
mod partial_windows;
mod readme_examples;
mod reference_versions;
mod segments;
mod service_levels;
mod store_option;
mod task_decision;
