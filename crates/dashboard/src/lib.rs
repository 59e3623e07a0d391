//! The web dashboard and the standalone report: HTML pages rendered on the server with maud
//! (every interpolated string is escaped), charts drawn with plotters as inline SVG (PNG for
//! `modelwatch report --png`). No JavaScript, no stylesheet or font fetched: a page is one
//! HTML document, so the dashboard works on a closed network and a report opens offline.
//!
//! Views are addressable by URL ([`params::ViewParams`]); the numbers come from the engine as
//! the same JSON the HTTP API answers ([`data::ModelData`]).
//!
//! This crate knows neither HTTP nor the command line: a [`DashError`] says its kind
//! ([`ServiceError::code`]) and the server turns that into a status; the CLI writes files.

pub mod charts;
pub mod css;
pub mod data;
pub mod layout;
pub mod pages;
pub mod params;
pub mod report;
pub mod views;

pub use data::{gather, AlertSource, AlertsData, ModelData, Parts};
pub use params::ViewParams;

use modelwatch_core::{ErrorCode, ServiceError};
use modelwatch_store::StoreError;

/// Why a page could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum DashError {
    /// A bad query parameter or model name: the page says which and why.
    #[error("{0}")]
    BadRequest(String),
    /// No such model, or no such view.
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ServiceError for DashError {
    fn code(&self) -> ErrorCode {
        match self {
            DashError::BadRequest(_) => ErrorCode::InvalidInput,
            DashError::NotFound(_) => ErrorCode::NotFound,
            DashError::Store(e) => e.code(),
        }
    }
}

/// The dashboard's views of one model, one URL each (`/models/{model}/{tab}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Performance,
    Drift,
    Quality,
    Segments,
    Versions,
    Feedback,
    Fairness,
    Attributions,
    Concept,
    Alerts,
    Jobs,
}

impl Tab {
    pub const ALL: [Tab; 11] = [
        Tab::Performance,
        Tab::Drift,
        Tab::Quality,
        Tab::Segments,
        Tab::Versions,
        Tab::Feedback,
        Tab::Fairness,
        Tab::Attributions,
        Tab::Concept,
        Tab::Alerts,
        Tab::Jobs,
    ];

    /// The path segment after `/models/{model}` (empty for the performance view).
    pub fn path(self) -> &'static str {
        match self {
            Tab::Performance => "",
            Tab::Drift => "/drift",
            Tab::Quality => "/quality",
            Tab::Segments => "/segments",
            Tab::Versions => "/versions",
            Tab::Feedback => "/feedback",
            Tab::Fairness => "/fairness",
            Tab::Attributions => "/attributions",
            Tab::Concept => "/concept",
            Tab::Alerts => "/alerts",
            Tab::Jobs => "/jobs",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Tab::Performance => "Performance",
            Tab::Drift => "Drift",
            Tab::Quality => "Data quality",
            Tab::Segments => "Segments",
            Tab::Versions => "Versions",
            Tab::Feedback => "Feedback",
            Tab::Fairness => "Fairness",
            Tab::Attributions => "Attributions",
            Tab::Concept => "Concept drift",
            Tab::Alerts => "Alerts",
            Tab::Jobs => "Jobs",
        }
    }

    /// The sections this view needs.
    pub fn parts(self) -> Parts {
        let mut p = Parts::default();
        match self {
            Tab::Performance => {
                p.metrics = true;
                p.service_levels = true;
            }
            Tab::Drift => {
                p.drift = true;
                p.multivariate = true;
                p.domain = true;
                p.distributions = true;
            }
            Tab::Quality => {
                p.quality = true;
                p.outliers = true;
            }
            Tab::Segments => p.segments = true,
            Tab::Versions => p.versions = true,
            Tab::Feedback => p.feedback = true,
            Tab::Fairness => p.fairness = true,
            Tab::Attributions => p.attributions = true,
            Tab::Concept => p.concept = true,
            Tab::Alerts | Tab::Jobs => {}
        }
        p
    }
}
