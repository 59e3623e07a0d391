//! The concept-drift view of a model (`/models/{model}/concept`), from `GET /v1/models/{model}/concept`: each version's
//! error rate per window (the stream the detectors read), and per version a strip with one row
//! per detector where each change point it flagged is marked at its prediction's time, with
//! the `concept:<detector>` rules named beside their detector.

use super::{json_text, line, span_chart};
use crate::charts::{short_time, YScale, PALETTE};
use crate::data::{short, ModelData, Span};
use crate::layout::{figure, unavailable};
use maud::{html, Markup};
use modelwatch_engine::concept::{ConceptReport, ErrorStream, VersionConcept};

/// Versions drawn (most labelled predictions first); the strip of each is small.
const MAX_VERSIONS_DRAWN: usize = 6;

/// Width of the strip's plot in SVG units, after the detectors' names.
const STRIP_WIDTH: f64 = 1080.0;
const NAME_WIDTH: f64 = 110.0;
const ROW: f64 = 18.0;

pub fn concept_section(data: &ModelData) -> Markup {
    let Some(c) = &data.concept else {
        return html! {
            h2 { "Concept drift" }
            (unavailable(data, "concept"))
        };
    };
    let span = data.span.as_ref().expect("gathered data has a span");
    let mut versions: Vec<&VersionConcept> = c.versions.iter().collect();
    versions.sort_by_key(|v| std::cmp::Reverse(v.labelled));
    versions.truncate(MAX_VERSIONS_DRAWN);
    versions.sort_by(|a, b| a.version.cmp(&b.version));
    let what = match c.stream {
        ErrorStream::Mistake => "error rate",
        ErrorStream::AbsoluteError => "mean absolute error",
    };
    let mut chart = span_chart(span, &format!("{what} per window"), YScale::FromZero);
    for (i, v) in versions.iter().enumerate() {
        chart.lines.push(line(
            &version_name(v),
            i,
            v.windows
                .iter()
                .map(|w| (w.start.0, Some(w.mean_error)))
                .collect(),
        ));
    }
    let changes: usize = c.versions.iter().map(|v| v.changes.len()).sum();
    // The signals of the model's rules, to name the detectors a rule watches.
    let ruled: Vec<&str> = data
        .alerts
        .iter()
        .flat_map(|a| &a.rules)
        .map(|r| json_text(r, "signal"))
        .collect();
    html! {
        h2 { "Concept drift" }
        p.meta data-concept-changes=(changes) {
            "Whether the relation between inputs and outcome changed: detectors read each version's stream of "
            @if c.stream == ErrorStream::Mistake { "mistakes (1 wrong, 0 right)" } @else { "absolute errors" }
            " in prediction-time order as labels arrive, and mark where its level changed. Input drift can stay quiet while this moves. "
            "Each starts afresh after a change it flags; EDDM flags often even on a steady stream, ADWIN seldom (a rule on it is quiet on a healthy model). "
            @if versions.is_empty() { "No labelled predictions in this range." }
            @else if changes == 0 { "No change point in this range." }
            @else { strong { (changes) " change point" @if changes != 1 { "s" } " in this range." } }
        }
        @if !versions.is_empty() {
            (figure("concept_error", &chart, "per window and version: the stream the detectors read; the strips below mark where each detector flagged a change"))
            @for (i, v) in versions.iter().enumerate() {
                (strip(c, v, span, i, what, &ruled))
            }
        }
        @if !c.skipped.is_empty() {
            p.meta { @for s in &c.skipped { (s.reason) ". " } }
        }
    }
}

fn version_name(v: &VersionConcept) -> String {
    if v.version.is_empty() {
        "(no version)".to_owned()
    } else {
        v.version.clone()
    }
}

/// One version's change points: a row per detector, a dot at each change's prediction time,
/// its window's time and the prediction's request id on hover; the windows' boundaries as a
/// light grid.
fn strip(
    c: &ConceptReport,
    v: &VersionConcept,
    span: &Span,
    color: usize,
    what: &str,
    rules: &[&str],
) -> Markup {
    let window = modelwatch_core::Window::parse(&span.window).expect("canonical window");
    let (from, to) = (span.from.0 as f64, span.to.0.max(span.from.0 + 1) as f64);
    let x = |t: i64| NAME_WIDTH + (t as f64 - from) / (to - from) * STRIP_WIDTH;
    let height = ROW * (c.detectors.len() as f64 + 1.0) + 4.0;
    // Room on the right for the last tick's label.
    let width = NAME_WIDTH + STRIP_WIDTH + 30.0;
    let rgb = PALETTE[color % PALETTE.len()];
    let fill = format!("rgb({},{},{})", rgb.0, rgb.1, rgb.2);
    let ticks: Vec<i64> = {
        let n = ((span.to.0 - span.from.0) / window.micros()).max(1);
        let step = (n / 8).max(1);
        (0..=n)
            .step_by(step as usize)
            .map(|k| span.from.0 + k * window.micros())
            .collect()
    };
    html! {
        figure.chart data-chart="concept_changes" data-version=(v.version) data-changes=(v.changes.len()) {
            svg viewBox=(format!("0 0 {width} {height}")) role="img" aria-label=(format!("change points of version {}", version_name(v))) {
                @for t in &ticks {
                    line x1=(x(*t)) x2=(x(*t)) y1="0" y2=(height - ROW) stroke="#e5e7eb" {}
                    text x=(x(*t)) y=(height - 4.0) font-size="10" fill="#6b7280" text-anchor="middle" { (short_time(*t, window.micros())) }
                }
                @for (row, d) in c.detectors.iter().enumerate() {
                    @let y = ROW * row as f64 + ROW / 2.0 + 2.0;
                    @let ruled = rules.contains(&format!("concept:{}", d.name()).as_str());
                    text x="4" y=(y + 4.0) font-size="11" fill="#374151" font-weight=(if ruled { "700" } else { "400" }) { (d.name()) @if ruled { " (rule)" } }
                    line x1=(NAME_WIDTH) x2=(NAME_WIDTH + STRIP_WIDTH) y1=(y) y2=(y) stroke="#d1d5db" {}
                    @for ch in v.changes.iter().filter(|ch| ch.detector == *d) {
                        circle cx=(x(ch.timestamp.0)) cy=(y) r="4.5" fill=(fill) stroke="#111827" stroke-width="0.8" data-detector=(d.name()) data-position=(ch.position) {
                            title { (d.name()) ": change at " (ch.timestamp.to_rfc3339()) " (prediction " (ch.position + 1) " of the range, " (ch.request_id) "), window " (ch.window_start.to_rfc3339()) }
                        }
                    }
                }
            }
            figcaption {
                "version " (version_name(v)) ": " (v.labelled) " labelled predictions, "
                (v.changes.len()) " change point" @if v.changes.len() != 1 { "s" }
                @if let Some(w) = v.windows.last() { "; latest window's " (what) " " (short(w.mean_error)) }
                ". Hover a dot for its prediction."
            }
        }
    }
}
