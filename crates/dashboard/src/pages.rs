//! The HTML of the dashboard: the models overview and a model's views. maud escapes every
//! interpolated string; only chart SVG (escaped by plotters) is inserted as markup.
//!
//! The stylesheet is in `css`, the page frame in `layout`, each view's section in `views` (and
//! the models overview and the login page there too).

pub use crate::css::CSS;
pub use crate::layout::{error_page, figure, inline_svg, layout, wide_figure};
pub use crate::views::alerts::{alerts_banner, alerts_section, condition_text};
pub use crate::views::attributions::attributions_section;
pub use crate::views::changes::changes_section;
pub use crate::views::drift::{drift_section, heatmap, HEATMAP_COLUMNS};
pub use crate::views::fairness::fairness_section;
pub use crate::views::feedback::feedback_section;
pub use crate::views::jobs::jobs_section;
pub use crate::views::login::login_page;
pub use crate::views::overview::{open_alerts, overview, OpenAlerts};
pub use crate::views::performance::{
    kpi_charts, metric_chart, operational_charts, performance_section,
};
pub use crate::views::quality::quality_section;
pub use crate::views::segments::segments_section;
pub use crate::views::service_levels::service_levels_section;
pub use crate::views::versions::versions_section;

use crate::data::{self, AlertSource, ModelData};
use crate::layout::{pickers, span_line};
use crate::params::{url_encode, ViewParams};
use crate::views::{json_text, utc};
use crate::{DashError, Tab};
use maud::html;
use modelwatch_core::ModelName;
use modelwatch_store::Store;

/// A model's view at `/models/{model}{tab.path()}`. With an alert source, every view shows
/// the open alerts and the performance and alerts views the alerts panel.
pub fn model_page(
    store: &dyn Store,
    model: &str,
    tab: Tab,
    params: &ViewParams,
    alerts: Option<&dyn AlertSource>,
) -> Result<String, DashError> {
    let name = ModelName::new(model).map_err(|e| DashError::BadRequest(e.to_string()))?;
    let mut data = data::gather(store, &name, params, tab.parts())?;
    if let Some(source) = alerts {
        match source.model_alerts(name.as_str(), data::ALERT_HISTORY) {
            Ok(a) => data.alerts = Some(a),
            Err(why) => {
                data.unavailable
                    .insert("alerts".into(), format!("alerts unavailable: {why}"));
            }
        }
    }
    Ok(render_model(&data, tab, params))
}

/// Transitions shown under the performance view (the alerts view shows `ALERT_HISTORY`).
const PERFORMANCE_HISTORY: usize = 10;

/// The HTML of a model's view from gathered data.
pub fn render_model(data: &ModelData, tab: Tab, params: &ViewParams) -> String {
    let model = data.model.as_str();
    let sum = &data.summary;
    let versions: Vec<String> = sum.versions.iter().map(|v| v.version.clone()).collect();
    let base = format!("/models/{}", url_encode(model));
    let query = params.query();
    let span = data.span.as_ref().expect("gathered data has a span");
    let extra = match tab {
        Tab::Segments => {
            let feats: Vec<&str> = sum
                .schema
                .features
                .iter()
                .map(|f| f.name.as_str())
                .collect();
            let current = data
                .segments
                .as_ref()
                .and_then(|m| m.segment.as_deref())
                .unwrap_or_default();
            html! { label { "segment by" select name="segment" {
                @for fe in &feats { option value=(fe) selected[*fe == current] { (fe) } }
            } } }
        }
        Tab::Drift => html! {
            @if let Some(fe) = &params.feature { input type="hidden" name="feature" value=(fe); }
        },
        _ => html! {},
    };
    let (open, firing) = data.alerts.as_ref().map_or((0, 0), |a| {
        (
            a.open().count(),
            a.open()
                .filter(|x| json_text(x, "state") == "firing")
                .count(),
        )
    });
    let body = html! {
        h1 data-model=(model) { (model) }
        p.meta {
            (sum.predictions) " predictions, "
            (sum.labelled) " labelled · versions: "
            @if versions.is_empty() { "—" } @else { (versions.join(", ")) }
            " · last event " (sum.last_event.map(utc).unwrap_or_else(|| "—".into()))
        }
        (pickers(params, &versions, extra))
        (span_line(span))
        nav.tabs {
            @for t in Tab::ALL {
                a class=(if t == tab { "active" } else { "" }) href=(format!("{base}{}{query}", t.path())) {
                    (t.title())
                    @if t == Tab::Alerts && open > 0 { " " span class=(if firing > 0 { "count firing" } else { "count pending" }) data-open-alerts=(open) { (open) } }
                }
            }
        }
        @if tab != Tab::Alerts { (alerts_banner(data, &format!("{base}/alerts{query}"))) }
        @match tab {
            Tab::Performance => {
                (performance_section(data, params, Some(&base)))
                (service_levels_section(data))
                @if let Some(m) = &data.metrics { (changes_section(&m.summary, m.spec.task)) }
                (alerts_section(data, PERFORMANCE_HISTORY, false))
            }
            Tab::Drift => (drift_section(data, Some(&format!("{base}/drift{}", params.query_with("feature", ""))), params.feature.as_deref())),
            Tab::Quality => (quality_section(data)),
            Tab::Segments => (segments_section(data)),
            Tab::Versions => (versions_section(data)),
            Tab::Feedback => (feedback_section(data)),
            Tab::Fairness => (fairness_section(data)),
            Tab::Attributions => (attributions_section(data)),
            Tab::Alerts => (alerts_section(data, data::ALERT_HISTORY, true)),
            Tab::Jobs => (jobs_section(data)),
        }
    };
    layout(&format!("{model} · {}", tab.title()), body)
}
