//! Per-window model performance.
