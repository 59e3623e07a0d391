//! The HTTP service: ingest, queries, health. The only crate that speaks HTTP.
