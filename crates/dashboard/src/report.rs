//! `modelwatch report`: every section of a model's views in one HTML file that opens offline
//! (styles and SVG charts inline, no script, no link out), the numbers as JSON, and the main
//! charts as PNG for emails and tickets.

use crate::charts;
use crate::data::{chart_metrics, ModelData};
use crate::pages::{self, layout};
use maud::html;
use std::path::{Path, PathBuf};

/// The standalone HTML report of gathered data.
pub fn html(data: &ModelData) -> String {
    let span = data.span.as_ref().expect("gathered data has a span");
    let generated = data
        .generated_at
        .map(|t| t.to_rfc3339())
        .unwrap_or_default();
    let body = html! {
        h1 data-model=(data.model) { "Report: " (data.model) }
        p.meta { "Generated " (generated) " by modelwatch. Event time from " b { (span.from.to_rfc3339()) }
            " to " b { (span.to.to_rfc3339()) } " in windows of " b { (span.window) }
            @if let Some(v) = &span.version { ", version " b { (v) } } "." }
        (pages::performance_section(data, &crate::ViewParams::default(), None))
        @if let Some(m) = &data.metrics { (pages::changes_section(&m.summary, m.spec.task)) }
        @if data.concept.is_some() { (pages::concept_section(data)) }
        (pages::drift_section(data, None, None))
        (pages::quality_section(data))
        (pages::segments_section(data))
        (pages::versions_section(data))
        @if data.feedback.is_some() { (pages::feedback_section(data)) }
        @if data.fairness.is_some() { (pages::fairness_section(data)) }
        @if data.attributions.as_ref().is_some_and(|a| !a.windows.is_empty()) { (pages::attributions_section(data)) }
    };
    layout(&format!("Report {}", data.model), body)
}

/// The report's numbers: the gathered data as pretty JSON.
pub fn json(data: &ModelData) -> String {
    serde_json::to_string_pretty(data).expect("model data serializes") + "\n"
}

/// Writes the main charts as PNG files into `dir`: the four metric charts, the operational
/// ones, and the distributions of the (at most six) most drifted-looking features. Returns
/// the paths written.
pub fn png(data: &ModelData, dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let span = data.span.as_ref().expect("gathered data has a span");
    let mut written = Vec::new();
    if let Some(m) = &data.metrics {
        for (i, name) in chart_metrics(m.spec.task).into_iter().enumerate() {
            let path = dir.join(format!("{name}.png"));
            charts::time_png(&pages::metric_chart(m, span, name, i), 900, 360, &path)?;
            written.push(path);
        }
        for (id, c, _) in pages::operational_charts(m, span) {
            let path = dir.join(format!("{id}.png"));
            charts::time_png(&c, 900, 360, &path)?;
            written.push(path);
        }
    }
    let mut dists: Vec<_> = data.distributions.iter().collect();
    // Largest total variation between reference and current first.
    dists.sort_by(|a, b| tv(b).total_cmp(&tv(a)));
    for d in dists.into_iter().take(6) {
        let safe: String = d
            .feature
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let path = dir.join(format!("distribution_{safe}.png"));
        let o = charts::Overlay {
            title: d.feature.clone(),
            bins: d.bins.clone(),
            reference: d.reference.clone(),
            current: d.current.clone(),
        };
        charts::overlay_png(&o, 900, &path)?;
        written.push(path);
    }
    Ok(written)
}

fn tv(d: &crate::data::Distribution) -> f64 {
    d.reference
        .iter()
        .zip(&d.current)
        .map(|(a, b)| (a - b).abs())
        .sum::<f64>()
        / 2.0
}
