//! Which reference dataset a query compares against.
//!
//! - A query for a version uses that version's own reference when it has one, else the
//!   all-versions reference (uploaded without `version=`).
//! - A query without a version uses the all-versions reference. When the model has none but
//!   has references uploaded for versions (the Python SDK uploads for its monitor's version by
//!   default), it uses the one uploaded last: with one reference, that one; with one per
//!   version, the newest model's. Drift, quality, the metrics' baseline, feedback, the alert
//!   rules and the hourly drift sketches all resolve it the same way, and the replies name it
//!   (`"reference": {"version": "v1", "rows": 500}`; `version` null for the all-versions one).
//!
//! The choice for version-less queries is kept as a model-wide aggregate whose kind starts with
//! `reference`, so the store drops it with every reference upload and it is chosen again.

use modelwatch_core::{ModelName, ReferenceRow};
use modelwatch_store::{AggregateWrite, ScanRange, Store, StoreError, StoredAggregate, MODEL_WIDE};
use serde::{Deserialize, Serialize};

/// Kind of the model-wide aggregate holding the reference version-less queries use.
const CHOICE: &str = "reference-choice";

/// Which reference a reply used: `version` is null for the all-versions reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceInfo {
    pub version: Option<String>,
    pub rows: u64,
}

/// The reference version-less queries use: `Some(None)` the all-versions one, `Some(Some(v))`
/// the one uploaded last for version `v` when there is no all-versions one, `None` no
/// reference at all.
pub fn for_all_versions(
    store: &dyn Store,
    model: &ModelName,
) -> Result<Option<ReferenceInfo>, StoreError> {
    if let Some(row) = store
        .aggregates(model, CHOICE, &ScanRange::default())?
        .into_iter()
        .next()
    {
        // Unreadable (another version of modelwatch wrote it): chosen again below.
        if let Ok(choice) = serde_json::from_slice::<Option<ReferenceInfo>>(&row.data) {
            return Ok(choice);
        }
    }
    let Some(summary) = store.model(model)? else {
        return Err(StoreError::ModelNotFound(model.as_str().to_owned()));
    };
    let sets = summary.reference.iter().filter(|r| r.rows > 0);
    let choice = match sets.clone().find(|r| r.version.is_empty()) {
        Some(all) => Some(ReferenceInfo {
            version: None,
            rows: all.rows,
        }),
        // The last upload; the version name breaks a tie so the choice is stable.
        None => sets
            .max_by(|a, b| {
                a.uploaded_at
                    .cmp(&b.uploaded_at)
                    .then_with(|| a.version.cmp(&b.version))
            })
            .map(|r| ReferenceInfo {
                version: Some(r.version.clone()),
                rows: r.rows,
            }),
    };
    store.put_aggregates(
        model,
        AggregateWrite {
            kind: CHOICE.into(),
            put: vec![StoredAggregate {
                version: String::new(),
                hour: MODEL_WIDE,
                data: serde_json::to_vec(&choice).expect("a choice encodes"),
            }],
            ..AggregateWrite::default()
        },
    )?;
    Ok(choice)
}

/// The reference rows a query of `version` (all versions when `None`) uses, and which
/// reference they are (see the module doc); no rows and `None` without a reference.
pub fn rows(
    store: &dyn Store,
    model: &ModelName,
    version: Option<&str>,
) -> Result<(Vec<ReferenceRow>, Option<ReferenceInfo>), StoreError> {
    let info = |version: Option<&str>, rows: &[ReferenceRow]| ReferenceInfo {
        version: version.map(str::to_owned),
        rows: rows.len() as u64,
    };
    if let Some(v) = version.filter(|v| !v.is_empty()) {
        let own = store.reference_rows(model, Some(v))?;
        if !own.is_empty() {
            let i = info(Some(v), &own);
            return Ok((own, Some(i)));
        }
        let all = store.reference_rows(model, None)?;
        if all.is_empty() {
            return Ok((all, None));
        }
        let i = info(None, &all);
        return Ok((all, Some(i)));
    }
    let all = store.reference_rows(model, None)?;
    if !all.is_empty() {
        let i = info(None, &all);
        return Ok((all, Some(i)));
    }
    match for_all_versions(store, model) {
        Ok(Some(ReferenceInfo {
            version: Some(v), ..
        })) => {
            let own = store.reference_rows(model, Some(&v))?;
            if own.is_empty() {
                return Ok((own, None));
            }
            let i = info(Some(&v), &own);
            Ok((own, Some(i)))
        }
        Ok(_) | Err(StoreError::ModelNotFound(_)) => Ok((all, None)),
        Err(e) => Err(e),
    }
}
