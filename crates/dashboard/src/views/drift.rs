//! The drift view: the features x windows heatmap, the share of drifted features, reference and current distributions.

use super::{line, partial_starts, rule_thresholds, series, span_chart, utc};
use crate::charts::{self, Overlay, Threshold, YScale};
use crate::data::{self, short, ModelData};
use crate::layout::{inline_svg, unavailable, wide_figure};
use crate::params::url_encode;
use maud::{html, Markup};
use modelwatch_core::Timestamp;
use modelwatch_engine::drift::{DriftResponse, WindowDrift};
use modelwatch_stats::drift::{FeatureDrift, FeatureStatus};

/// Colour of a heatmap cell: grey when not evaluated; dark red when drifted; pink when the
/// change is significant but its effect under the threshold; else white to a faint rose by
/// effect size over its threshold (noise in small windows stays pale).
fn heat_color(feature: &FeatureDrift) -> String {
    if feature.status != FeatureStatus::Evaluated {
        return "#e5e7eb".into();
    }
    if feature.drifted {
        return "#b91c1c".into();
    }
    if let (Some(p), Some(a)) = (feature.p_value_adjusted, feature.alpha) {
        if p < a {
            return "#f87171".into();
        }
    }
    let ratio = match feature.effect_size {
        Some(e) if feature.threshold > 0.0 => (e / feature.threshold).clamp(0.0, 1.0),
        _ => 0.0,
    };
    let g = (252.0 - ratio * 40.0) as u8;
    format!("rgb(254,{g},{g})")
}

/// Most heatmap columns: the latest windows of the range.
pub const HEATMAP_COLUMNS: usize = 200;

/// A heatmap cell's width in pixels: the columns share about [`HEATMAP_WIDTH`] pixels, each
/// between 7 (200 hourly windows still fit a screen) and 28 (a week of days reads as a grid,
/// not a sliver).
fn cell_width(columns: usize) -> usize {
    (HEATMAP_WIDTH / columns.max(1)).clamp(7, 28)
}

/// The width the heatmap's cells share, in pixels.
const HEATMAP_WIDTH: usize = 640;

/// One row per feature (named `prefix` + feature), one cell per window (its features).
fn heat_rows<'a>(
    ws: &[&'a [FeatureDrift]],
    prefix: &str,
) -> Vec<(String, Vec<Option<&'a FeatureDrift>>)> {
    let mut rows: Vec<(String, Vec<Option<&FeatureDrift>>)> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for (i, features) in ws.iter().enumerate() {
        for fv in *features {
            let name = format!("{prefix}{}", fv.feature);
            let row = *index.entry(name.clone()).or_insert_with(|| {
                rows.push((name, vec![None; ws.len()]));
                rows.len() - 1
            });
            rows[row].1[i] = Some(fv);
        }
    }
    rows
}

/// Features x windows, one cell per verdict, with the details in its tooltip.
pub fn heatmap(drift: &DriftResponse, base: Option<&str>) -> Markup {
    let ws = &drift.windows;
    let skip = ws.len().saturating_sub(HEATMAP_COLUMNS);
    let ws = &ws[skip..];
    let features: Vec<&[FeatureDrift]> = ws.iter().map(|w| w.features.as_slice()).collect();
    let rows = heat_rows(&features, "");
    let outputs = &drift.prediction.windows;
    let outputs: Vec<&[FeatureDrift]> = outputs[outputs.len().saturating_sub(HEATMAP_COLUMNS)..]
        .iter()
        .map(|w| w.features.as_slice())
        .collect();
    let out_rows = heat_rows(&outputs, "output: ");
    let labels: Vec<String> = ws.iter().map(|w| window_text(w.start, w.end)).collect();
    let partial: Vec<bool> = ws.iter().map(|w| w.partial).collect();
    let first = ws.first().map(|w| utc(w.start)).unwrap_or_default();
    let last = ws.last().map(|w| utc(w.end)).unwrap_or_default();
    html! {
        div.heat data-heatmap-rows=(rows.len()) data-heatmap-columns=(ws.len())
            style=(format!("--cell:{}px", cell_width(ws.len()))) {
            @if skip > 0 { p.muted { "latest " (HEATMAP_COLUMNS) " windows of " (skip + ws.len()) } }
            table {
                tr { th { "feature" } th colspan=(ws.len().max(1)) { (first) " → " (last) } }
                tr.axis {
                    th {}
                    @for (label, span, title) in date_axis(ws) {
                        th.axis colspan=(span) title=(title) { (label) }
                    }
                }
                @for (name, cells) in rows.iter().chain(out_rows.iter()) {
                    tr {
                        td.name title=(name) {
                            @match base {
                                Some(b) if !name.starts_with("output: ") => a href=(format!("{b}&feature={}#dist-{}", url_encode(name), url_encode(name))) { (name) },
                                _ => (name),
                            }
                        }
                        @for (i, c) in cells.iter().enumerate() {
                            @let when = labels.get(i).map(String::as_str).unwrap_or("");
                            @let part = partial.get(i).copied().unwrap_or(false);
                            @match c {
                                Some(fv) => td class=(if part { "partial" } else { "" }) style=(format!("background:{}", heat_color(fv)))
                                    data-p=(fv.p_value.map(|p| p.to_string()).unwrap_or_default())
                                    title=(cell_title(name, when, part, fv)) {}
                                None => td style="background:#f9fafb" title=(format!("{name} · {when} · no rows")) {}
                            }
                        }
                    }
                }
            }
            div.legend {
                i style="background:rgb(254,252,252);border:1px solid #e5e7eb" {} "no significant change (paler: smaller effect)"
                i style="background:#f87171" {} "significant, effect under its threshold"
                i style="background:#b91c1c" {} "drifted (significant and large enough)"
                i style="background:#e5e7eb" {} "not evaluated (too few rows, no data)"
                i.partial style="background:#e5e7eb" {} "partial window (still filling)"
                " · hover a cell for its window, p-value and effect"
            }
        }
    }
}

/// A drift window's time for people.
fn window_text(start: Timestamp, end: Timestamp) -> String {
    charts::window_label(start.0, end.0 - start.0)
}

/// The hover text of a heatmap cell: the feature, the window, the test's p-values and the
/// effect against its threshold, or why it was not tested.
fn cell_title(name: &str, when: &str, partial: bool, fv: &FeatureDrift) -> String {
    let mut t = format!("{name}\n{when}");
    if partial {
        t.push_str(" (partial: still filling)");
    }
    if fv.status != FeatureStatus::Evaluated {
        t.push_str(&format!(
            "\nnot evaluated: {}",
            fv.status.name().replace('_', " ")
        ));
        if let FeatureStatus::InsufficientData { min_rows } = fv.status {
            t.push_str(&format!(" (fewer than {min_rows} valid rows)"));
        }
        return t;
    }
    let p = |v: Option<f64>| v.map(p_text).unwrap_or("—".into());
    t.push_str(&format!(
        "\n{}: p = {}, adjusted p = {}",
        fv.method.name(),
        p(fv.p_value),
        p(fv.p_value_adjusted)
    ));
    t.push_str(&format!(
        "\n{} {} (threshold {})",
        fv.effect_measure.name(),
        fv.effect_size.map(short).unwrap_or("—".into()),
        short(fv.threshold)
    ));
    if fv.drifted {
        t.push_str("\nDRIFTED");
    }
    t
}

/// A p-value: 3 significant digits, `< 1e-16` below the float's resolution.
fn p_text(p: f64) -> String {
    if p < 1e-16 {
        "< 1e-16".into()
    } else if p < 0.001 {
        format!("{p:.2e}")
    } else {
        format!("{p:.3}")
    }
}

/// The date axis of the heatmap: one label per day of hourly windows, per month of daily or
/// weekly ones, as (label, columns, title). Labels too wide for their columns stay in the title.
fn date_axis(ws: &[WindowDrift]) -> Vec<(String, usize, String)> {
    let mut out: Vec<(String, usize, String)> = Vec::new();
    let daily = ws.first().is_some_and(|w| {
        let t = window_text(w.start, w.end);
        !t.contains(':')
    });
    for w in ws {
        let start = w.start.to_rfc3339();
        let key = if daily {
            start.get(..7).unwrap_or(&start).to_string()
        } else {
            start.get(..10).unwrap_or(&start).to_string()
        };
        match out.last_mut() {
            Some((k, n, _)) if *k == key => *n += 1,
            _ => out.push((key, 1, String::new())),
        }
    }
    out.into_iter()
        .map(|(key, n, _)| {
            let label = if daily {
                key.clone()
            } else {
                key.get(5..).unwrap_or(&key).to_string()
            };
            // A cell is 7 px wide; a label needs about 6 px per character.
            let fits = n * 7 >= label.chars().count() * 6 + 4;
            (if fits { label } else { String::new() }, n, key)
        })
        .collect()
}

/// Multivariate drift: the windows' mean reconstruction error with its interval, between the
/// reference band's bounds, and the rules on it.
fn multivariate_section(data: &ModelData) -> Markup {
    let Some(m) = &data.multivariate else {
        return html! {
            h2 { "Multivariate drift" }
            (unavailable(data, "multivariate"))
        };
    };
    let span = data.span.as_ref().expect("gathered data has a span");
    let mut chart = span_chart(span, "reconstruction error (PCA)", YScale::Auto);
    // The interval (± 3 sampling errors) is in the API's answer; the charts' shaded band means
    // a 95 % interval, so it is not drawn here.
    chart.lines.push(line(
        "reconstruction error",
        0,
        series(&m.windows, |w| w.error.value),
    ));
    chart.baseline = Some(m.fit.band.mean);
    chart.baseline_label = "reference mean".into();
    chart.thresholds.push(Threshold {
        label: "band: reference mean + 3 sd".into(),
        value: m.fit.band.upper,
    });
    if let Some(lower) = m.fit.band.lower {
        chart.thresholds.push(Threshold {
            label: "band: reference mean - 3 sd".into(),
            value: lower,
        });
    }
    chart
        .thresholds
        .extend(rule_thresholds(data, &["reconstruction_error"]));
    chart.partial = partial_starts(&m.windows);
    let alerts = m.windows.iter().filter(|w| w.error.alert).count();
    html! {
        h2 { "Multivariate drift" }
        p.meta data-multivariate-alerts=(alerts) {
            "Whether the features changed together: PCA on the reference's " (m.fit.features.len()) " features keeps "
            (m.fit.components) " components (" (format!("{:.0}", m.fit.explained_variance * 100.0)) " % of its variance); a window's value is its rows' mean distance from their reconstruction. "
            "It catches a correlation that breaks while each feature keeps its distribution, which the heatmap above cannot. "
            @if alerts > 0 { strong { (alerts) " of " (m.windows.len()) " windows outside the band." } }
            @else { "Every window inside the band." }
        }
        (wide_figure("reconstruction_error", &chart, "dashed: the band the reference's ten chunks give (mean ± 3 standard deviations); a window outside it alerts"))
    }
}

/// Domain-classifier drift: the windows' ROC AUC with its 95 % interval, NannyML's threshold
/// and the rules on it.
fn domain_section(data: &ModelData) -> Markup {
    let Some(d) = &data.domain else {
        return html! {
            h3 { "Domain classifier" }
            (unavailable(data, "domain"))
        };
    };
    let span = data.span.as_ref().expect("gathered data has a span");
    let mut chart = span_chart(span, "domain classifier ROC AUC", YScale::Unit);
    let mut auc = line("domain classifier AUC", 2, series(&d.windows, |w| w.auc));
    auc.band = d
        .windows
        .iter()
        .map(|w| (w.start.0, w.ci_low.zip(w.ci_high)))
        .collect();
    chart.lines.push(auc);
    chart.baseline = Some(0.5);
    chart.baseline_label = "0.5: rows like the reference's".into();
    chart.thresholds.push(Threshold {
        label: format!(
            "threshold {} (NannyML's default)",
            d.classifier.upper_threshold
        ),
        value: d.classifier.upper_threshold,
    });
    chart
        .thresholds
        .extend(rule_thresholds(data, &["domain_classifier_auc"]));
    chart.partial = partial_starts(&d.windows);
    let alerts = d.windows.iter().filter(|w| w.alert).count();
    html! {
        h3 { "Domain classifier" }
        p.meta data-domain-alerts=(alerts) {
            "How well a classifier (boosted trees, " (d.classifier.folds) "-fold cross-validated) tells a window's rows from the reference's, on at most "
            (d.classifier.sample_rows) " of each: 0.5 when it cannot, 1 when every row gives itself away. "
            "It sees what the reconstruction error misses: a move along the components the PCA keeps, a nonlinear relation that changes. "
            @if alerts > 0 { strong { (alerts) " of " (d.windows.len()) " windows outside [" (d.classifier.lower_threshold) ", " (d.classifier.upper_threshold) "]." } }
            @else { "Every window within [" (d.classifier.lower_threshold) ", " (d.classifier.upper_threshold) "]." }
        }
        (wide_figure("domain_classifier", &chart, "shaded: the AUC's 95 % interval (DeLong); dashed: NannyML's default threshold and the rules on domain_classifier_auc"))
    }
}

/// The drift section: heatmap, share of drifted features, reference vs current distributions.
pub fn drift_section(data: &ModelData, base: Option<&str>, selected: Option<&str>) -> Markup {
    let Some(drift) = &data.drift else {
        return unavailable(data, "drift");
    };
    let span = data.span.as_ref().expect("gathered data has a span");
    let mut share = span_chart(span, "share of features drifted", YScale::Unit);
    share.lines.push(line(
        "share drifted",
        4,
        series(&drift.windows, |w| {
            Some(w.share_drifted).filter(|x| x.is_finite())
        }),
    ));
    share.baseline = Some(drift.drift_share);
    share.baseline_label = "dataset drift threshold".into();
    share.partial = partial_starts(&drift.windows);
    share.thresholds = rule_thresholds(data, &["drift_share"]);
    let mut dists: Vec<&data::Distribution> = data.distributions.iter().collect();
    if let Some(sel) = selected {
        dists.sort_by_key(|d| d.feature != sel);
    }
    html! {
        h2 { "Drift: features × windows" }
        p.meta { "Against the reference (" (drift.reference.rows) " rows); p-values adjusted together (Benjamini-Hochberg), a feature drifts when significant and its effect reaches the threshold." }
        (heatmap(drift, base))
        (wide_figure("drift_share", &share, "dashed: the share of drifted features at which the whole dataset counts as drifted"))
        (multivariate_section(data))
        (domain_section(data))
        h2 { "Distributions: reference and the latest complete window" }
        @if dists.is_empty() { (unavailable(data, "distributions")) }
        div.grid {
            @for d in dists {
                @let o = Overlay { title: d.feature.clone(), bins: d.bins.clone(), reference: d.reference.clone(), current: d.current.clone() };
                figure.chart id=(format!("dist-{}", url_encode(&d.feature))) data-chart="distribution" data-feature=(d.feature) data-series="reference|current" {
                    (inline_svg(charts::overlay_svg(&o, 620)))
                    figcaption { (d.feature) " (" (d.kind) "): " (d.reference_rows) " reference values, " (d.current_rows) " in the window from " (d.window_start.to_rfc3339())
                        @if d.partial { " " span.badge.partial title="no complete window with enough rows: this one is still filling" { "partial" } } }
                }
            }
        }
    }
}
