//! `Catalog` over the cluster: models, schemas, references (rows read back in upload order)
//! and settings, kept on the model's shard.

use super::*;

/// A reference row as stored: its JSON, read back in the order written.
#[derive(Deserialize)]
struct StoredReference {
    features: Pairs<serde_json::Value>,
    prediction: Option<serde_json::Value>,
    score: Option<f64>,
    scores: Option<Pairs<f64>>,
    label: Option<serde_json::Value>,
    explanations: Option<Pairs<f64>>,
}

pub(super) fn reference_row(text: &str) -> Result<ReferenceRow, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        what: "stored reference row",
        detail,
    };
    let r: StoredReference = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
    Ok(ReferenceRow {
        features: r
            .features
            .0
            .into_iter()
            .map(|(k, v)| (k.into(), json_feature_value(v)))
            .collect(),
        prediction: r
            .prediction
            .map(|v| json_outcome("stored outcome", v))
            .transpose()?,
        score: r.score,
        scores: r.scores.map(|p| p.0),
        label: r
            .label
            .map(|v| json_outcome("stored outcome", v))
            .transpose()?,
        explanations: r.explanations.map(|p| p.0).unwrap_or_default(),
    })
}

impl Catalog for ClickHouseStore {
    fn list_models(&self) -> Result<Vec<ModelSummary>, StoreError> {
        let rows: Vec<ModelRow> = self.http.rows(
            self.on(0),
            "SELECT * FROM models_local FINAL ORDER BY model",
            "list the models",
        )?;
        rows.into_iter().map(|r| self.summary(r)).collect()
    }

    fn model(&self, model: &ModelName) -> Result<Option<ModelSummary>, StoreError> {
        self.model_row(model.as_str())?
            .map(|r| self.summary(r))
            .transpose()
    }

    fn declare_schema(&self, model: &ModelName, mut schema: Schema) -> Result<(), StoreError> {
        let writer = self.writer(model.as_str());
        let _writer = writer.lock().expect("writer poisoned");
        self.ensure_model(model.as_str())?;
        schema.declared = true;
        self.save_schema(model.as_str(), &schema)
    }

    fn put_reference(
        &self,
        model: &ModelName,
        version: Option<&str>,
        rows: Vec<(usize, ReferenceRow)>,
        rejected: Vec<Quarantined>,
    ) -> Result<ReferenceOutcome, StoreError> {
        let writer = self.writer(model.as_str());
        let _writer = writer.lock().expect("writer poisoned");
        let name = model.as_str();
        let version = version.unwrap_or("");
        self.ensure_model(name)?;
        let mut schema = self.schema(name)?;
        let mut known = FeatureIndex::of(&schema);
        let mut added = Vec::new();
        let mut refused = Vec::new();
        let mut admitted = Vec::with_capacity(rows.len());
        for (index, row) in &rows {
            match schema.check(&row.features, &known, self.max_features) {
                Ok(new) => {
                    for f in &new {
                        known.insert(f);
                    }
                    added.extend(new);
                    admitted.push((*index, row));
                }
                Err((field, reason)) => refused.push(Quarantined {
                    rejection: Rejection::new(*index, field, reason),
                    row: to_json(row),
                }),
            }
        }
        if admitted.is_empty() {
            // Storing none would replace the model's reference with nothing: nothing changes.
            let mut all: Vec<Rejection> = rejected
                .iter()
                .chain(&refused)
                .map(|q| q.rejection.clone())
                .collect();
            all.sort_by_key(|r| r.index);
            return Ok(ReferenceOutcome {
                version: version.to_string(),
                rows: 0,
                rejected: all,
                schema_changes: Vec::new(),
            });
        }
        let schema_changes: Vec<SchemaChange> = added
            .iter()
            .map(|f| SchemaChange {
                feature: f.name.clone(),
                kind: f.kind,
            })
            .collect();
        if !added.is_empty() {
            schema.features.extend(added);
            self.save_schema(name, &schema)?;
        }
        let upload = self.stamps(1);
        let upload_id = format!("{upload:x}");
        #[derive(Serialize)]
        struct Row<'a> {
            model: &'a str,
            version: &'a str,
            upload_id: &'a str,
            row_no: u32,
            row: String,
        }
        let inserts: Vec<Row> = admitted
            .iter()
            .map(|(index, row)| Row {
                model: name,
                version,
                upload_id: &upload_id,
                row_no: *index as u32,
                row: to_json(row),
            })
            .collect();
        self.http.insert(
            self.on(0),
            "reference_rows_local",
            &inserts,
            "store reference rows",
        )?;
        // What was derived from the reference is out of date (tombstones: no point deletes).
        let stale = self.live_aggregates(name, "reference%")?;
        if !stale.is_empty() {
            let at = self.stamps(1);
            let tombstones: Vec<AggregateRow> = stale
                .iter()
                .map(|(kind, v, hour)| AggregateRow {
                    model: name,
                    kind,
                    version: v,
                    hour: *hour,
                    blob: String::new(),
                    built_from: 0,
                    epoch: 0,
                    written_at: at,
                    deleted: 1,
                })
                .collect();
            self.http.insert(
                self.on(self.model_shard(name)),
                "aggregates_local",
                &tombstones,
                "delete the state derived from the old reference",
            )?;
        }
        // The upload switches last: a half-written one is never read.
        #[derive(Serialize)]
        struct Set<'a> {
            model: &'a str,
            version: &'a str,
            upload_id: &'a str,
            rows: u64,
            uploaded_at: u64,
        }
        self.http.insert(
            self.on(0),
            "reference_sets_local",
            &[Set {
                model: name,
                version,
                upload_id: &upload_id,
                rows: admitted.len() as u64,
                uploaded_at: upload,
            }],
            "switch to the new reference upload",
        )?;
        let mut quarantined = rejected;
        quarantined.extend(refused);
        let rejected = self.quarantine(name, "reference", &quarantined)?;
        Ok(ReferenceOutcome {
            version: version.to_string(),
            rows: admitted.len(),
            rejected,
            schema_changes,
        })
    }

    fn reference_rows(
        &self,
        model: &ModelName,
        version: Option<&str>,
    ) -> Result<Vec<ReferenceRow>, StoreError> {
        self.existing(model)?;
        let m = q(model.as_str());
        let v = q(version.unwrap_or(""));
        #[derive(Deserialize)]
        struct Upload {
            upload_id: String,
        }
        let upload: Vec<Upload> = self.http.rows(
            self.on(0),
            &format!(
                "SELECT upload_id FROM reference_sets_local FINAL WHERE model = {m} AND version = {v}"
            ),
            "read the current reference upload",
        )?;
        let Some(upload) = upload.into_iter().next() else {
            return Ok(Vec::new());
        };
        #[derive(Deserialize)]
        struct Row {
            row: String,
        }
        let rows: Vec<Row> = self.http.rows(
            self.on(0),
            &format!(
                "SELECT row FROM reference_rows_local WHERE model = {m} AND version = {v} AND upload_id = {} ORDER BY row_no",
                q(&upload.upload_id)
            ),
            "read the reference rows",
        )?;
        rows.iter().map(|r| reference_row(&r.row)).collect()
    }

    fn set_retention(&self, model: &ModelName, days: Option<u32>) -> Result<(), StoreError> {
        let writer = self.writer(model.as_str());
        let _writer = writer.lock().expect("writer poisoned");
        let mut row = self.existing(model)?;
        row.retention_days = days.unwrap_or(0);
        self.put_model_row(row)
    }
}
