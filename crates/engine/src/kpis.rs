//! Business KPI series (fraud loss, conversion rate, review time...) logged beside a model,
//! summarised per event-time window so they line up with the model's metrics.

use std::collections::BTreeMap;

use modelwatch_core::{ModelName, Timestamp, Window};
use modelwatch_store::{ScanRange, Store, StoreError};
use serde::{Deserialize, Serialize};

/// One window of one KPI series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KpiWindow {
    pub start: Timestamp,
    pub end: Timestamp,
    /// Points in the window.
    pub n: u64,
    pub sum: f64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    /// The value of the latest point (for KPIs that are levels, not flows).
    pub last: f64,
}

/// Every KPI of `model` (or the one named), per window of `window` over `[from, to)`, by name.
pub fn kpi_series(
    store: &dyn Store,
    model: &ModelName,
    window: Window,
    range: &ScanRange,
    name: Option<&str>,
) -> Result<BTreeMap<String, Vec<KpiWindow>>, StoreError> {
    let mut out: BTreeMap<String, Vec<KpiWindow>> = BTreeMap::new();
    // Points come by name, then time: each series' windows are built in order.
    for k in store.kpis(model, name, range)? {
        let start = window.start_of(k.timestamp);
        let series = out.entry(k.name).or_default();
        match series.last_mut() {
            Some(w) if w.start == start => {
                w.n += 1;
                w.sum += k.value;
                w.mean = w.sum / w.n as f64;
                w.min = w.min.min(k.value);
                w.max = w.max.max(k.value);
                w.last = k.value;
            }
            _ => series.push(KpiWindow {
                start,
                end: Timestamp(start.micros() + window.micros()),
                n: 1,
                sum: k.value,
                mean: k.value,
                min: k.value,
                max: k.value,
                last: k.value,
            }),
        }
    }
    Ok(out)
}
