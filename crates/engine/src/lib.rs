//! Windowing and per-window computation: groups stored predictions and their labels by
//! event-time window (and version, segment), and feeds them to `modelwatch-stats`.
//!
//! Invariant: no IO of its own and no HTTP; it reads through the `Store` trait.

pub mod aggregates;
pub mod attribution;
pub mod causes;
pub mod challenger;
pub mod concept;
pub mod domain;
pub mod drift;
pub mod error;
pub mod estimate;
pub mod exploration;
pub mod fairness;
pub mod feedback;
pub mod kpis;
pub mod metrics_csv;
pub mod multivariate;
pub mod offline;
pub mod outliers;
pub mod partial;
pub mod performance;
pub mod planner;
pub mod query;
pub mod reference;
pub mod service_levels;
pub mod sketch;
pub mod state;
pub mod summary;

pub use error::EngineError;
