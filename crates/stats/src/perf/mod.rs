//! Model performance metrics: classification, regression, confidence intervals.
