//! Drift tests between a reference and a current sample.
