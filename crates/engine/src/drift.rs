//! Per-window drift and data quality against the reference.
