//! The catalog: models (their row, and the writer's cache of their schema, `model_entry`), the
//! schema check of incoming rows (`Admission`), declared schemas, reference datasets, and the
//! model summaries and reference rows read back.
//!
//! Invariants:
//! - a schema changes only through the writer, in the job that admits the rows adding its
//!   features, and never beyond the model's feature limit;
//! - a reference upload whose every row is refused changes nothing;
//! - storing reference rows deletes, in the same transaction, every aggregate whose kind starts
//!   with `reference` (drift never rescans the raw reference, so nothing derived may outlive it).

use super::*;

pub(super) struct CachedModel {
    pub(super) id: i64,
    schema: Schema,
    /// The schema's features by name, and those added by the job being run (they are stored
    /// with it, or the entry is dropped with the job's failure).
    known: FeatureIndex,
    /// The model's request buckets, loaded by its first prediction batch.
    pub(super) buckets: Option<Buckets>,
}

/// Loads a model into the cache, creating it when `create` is set.
pub(super) fn model_entry<'a>(
    tx: &Transaction<'_>,
    models: &'a mut HashMap<String, CachedModel>,
    model: &ModelName,
    create: bool,
) -> Result<Option<&'a mut CachedModel>, StoreError> {
    let name = model.as_str();
    if !models.contains_key(name) {
        let row: Option<(i64, String)> = tx
            .query_row(
                "SELECT id, schema FROM models WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let entry = match row {
            Some((id, schema)) => {
                let schema: Schema =
                    serde_json::from_str(&schema).map_err(|e| StoreError::Corrupt {
                        what: "model schema",
                        detail: e.to_string(),
                    })?;
                CachedModel {
                    id,
                    known: FeatureIndex::of(&schema),
                    schema,
                    buckets: None,
                }
            }
            None if create => {
                tx.execute(
                    "INSERT INTO models(name, schema, created_at) VALUES (?1, ?2, ?3)",
                    params![name, "{\"features\":[]}", Timestamp::now().micros()],
                )?;
                CachedModel {
                    id: tx.last_insert_rowid(),
                    schema: Schema::default(),
                    known: FeatureIndex::default(),
                    buckets: None,
                }
            }
            None => return Ok(None),
        };
        models.insert(name.to_string(), entry);
    }
    Ok(models.get_mut(name))
}

fn save_schema(tx: &Transaction<'_>, entry: &CachedModel) -> Result<(), StoreError> {
    let json = serde_json::to_string(&entry.schema).expect("schema serializes");
    tx.execute(
        "UPDATE models SET schema = ?1 WHERE id = ?2",
        params![json, entry.id],
    )?;
    Ok(())
}

/// The schema check of one batch's rows against a model: the features the admitted rows add to
/// the schema gather in `pending` (saved with the batch by `finish`), and each refused row is
/// set aside with why, for `quarantine_all`.
pub(super) struct Admission {
    max_features: usize,
    pending: Vec<FeatureSpec>,
    quarantined: Vec<Quarantined>,
}

impl Admission {
    pub(super) fn new(max_features: usize) -> Self {
        Admission {
            max_features,
            pending: Vec::new(),
            quarantined: Vec::new(),
        }
    }

    /// The check of [`Admission::admit`] on features standing for rows not at hand (a gathered
    /// batch's schema, `gathered.rs`): when they fit, records what they add and says whether
    /// that was nothing; when they do not, sets nothing aside (the caller refuses the row).
    pub(super) fn fits(
        &mut self,
        entry: &mut CachedModel,
        features: &[(FeatureName, FeatureValue)],
    ) -> Option<bool> {
        let added = entry
            .schema
            .check(features, &entry.known, self.max_features)
            .ok()?;
        for f in &added {
            entry.known.insert(f);
        }
        let nothing = added.is_empty();
        self.pending.extend(added);
        Some(nothing)
    }

    /// Sets `row` aside, refused for `rejection`.
    pub(super) fn refuse(&mut self, rejection: Rejection, row: &impl serde::Serialize) {
        self.quarantined.push(Quarantined {
            rejection,
            row: to_json(row),
        });
    }

    /// Admits the row at `index` if its features fit the model's schema (recording the features
    /// it adds in the model's index), else sets it aside; true when admitted.
    pub(super) fn admit(
        &mut self,
        entry: &mut CachedModel,
        index: usize,
        request_id: Option<&str>,
        features: &[(FeatureName, FeatureValue)],
        row: &impl serde::Serialize,
    ) -> bool {
        match entry
            .schema
            .check(features, &entry.known, self.max_features)
        {
            Ok(added) => {
                for f in &added {
                    entry.known.insert(f);
                }
                self.pending.extend(added);
                true
            }
            Err((field, reason)) => {
                let rejection = Rejection::new(index, field, reason).with_request_id(request_id);
                self.refuse(rejection, row);
                false
            }
        }
    }

    /// Saves the features the admitted rows added to the model's schema; returns them, and the
    /// rows set aside.
    pub(super) fn finish(
        self,
        tx: &Transaction<'_>,
        entry: &mut CachedModel,
    ) -> Result<(Vec<SchemaChange>, Vec<Quarantined>), StoreError> {
        let changes = self
            .pending
            .iter()
            .map(|f| SchemaChange {
                feature: f.name.clone(),
                kind: f.kind,
            })
            .collect();
        if !self.pending.is_empty() {
            entry.schema.features.extend(self.pending);
            save_schema(tx, entry)?;
        }
        Ok((changes, self.quarantined))
    }
}

pub(super) fn put_reference(
    tx: &Transaction<'_>,
    models: &mut HashMap<String, CachedModel>,
    max_features: usize,
    model: &ModelName,
    version: &str,
    rows: &[(usize, ReferenceRow)],
    rejected: &[Quarantined],
) -> Result<ReferenceOutcome, StoreError> {
    let now = Timestamp::now();
    let entry = model_entry(tx, models, model, true)?.expect("created");
    // Rows rejected here; those rejected before are in `rejected`.
    let mut admission = Admission::new(max_features);
    let mut admitted = Vec::with_capacity(rows.len());
    for (index, row) in rows {
        if admission.admit(entry, *index, None, &row.features, row) {
            admitted.push((*index, row));
        }
    }
    if admitted.is_empty() {
        // Every row refused (by the schema, by the feature limit): storing none would replace
        // the model's reference with nothing. Nothing is changed; the caller says why.
        let mut rejected: Vec<Rejection> = (rejected.iter().map(|q| q.rejection.clone()))
            .chain(admission.quarantined.into_iter().map(|q| q.rejection))
            .collect();
        rejected.sort_by_key(|r| r.index);
        return Ok(ReferenceOutcome {
            version: version.to_string(),
            rows: 0,
            rejected,
            schema_changes: Vec::new(),
        });
    }
    // What was derived from the reference (baselines, profiles) is out of date.
    tx.execute(
        "DELETE FROM aggregates WHERE model_id = ?1 AND kind LIKE 'reference%'",
        [entry.id],
    )?;
    tx.execute(
        "DELETE FROM reference_rows WHERE model_id = ?1 AND version = ?2",
        params![entry.id, version],
    )?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO reference_rows(model_id, version, idx, features, prediction, score, scores, label, explanations)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for (index, row) in &admitted {
            insert.execute(params![
                entry.id,
                version,
                *index as i64,
                features_json(&row.features),
                row.prediction.as_ref().map(to_json),
                row.score,
                row.scores.as_ref().map(|s| to_json(&Pairs(s.clone()))),
                row.label.as_ref().map(to_json),
                (!row.explanations.is_empty()).then(|| to_json(&Pairs(row.explanations.clone()))),
            ])?;
        }
    }
    let stored = admitted.len();
    tx.execute(
        "INSERT INTO reference_sets(model_id, version, rows, uploaded_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(model_id, version) DO UPDATE SET rows = excluded.rows, uploaded_at = excluded.uploaded_at",
        params![entry.id, version, stored as i64, now.micros()],
    )?;
    let (schema_changes, quarantined) = admission.finish(tx, entry)?;
    let rejected = quarantine_all(tx, model, "reference", rejected, quarantined, now)?;
    Ok(ReferenceOutcome {
        version: version.to_string(),
        rows: stored,
        rejected,
        schema_changes,
    })
}

pub(super) fn declare_schema(
    tx: &Transaction<'_>,
    models: &mut HashMap<String, CachedModel>,
    model: &ModelName,
    mut schema: Schema,
) -> Result<(), StoreError> {
    let entry = model_entry(tx, models, model, true)?.expect("created");
    schema.declared = true;
    entry.known = FeatureIndex::of(&schema);
    entry.schema = schema;
    save_schema(tx, entry)
}

pub(super) fn model_id(conn: &Connection, model: &ModelName) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT id FROM models WHERE name = ?1",
            [model.as_str()],
            |r| r.get(0),
        )
        .optional()?)
}

fn summary(conn: &Connection, id: i64) -> Result<ModelSummary, StoreError> {
    let (name, schema, created_at, retention, labels, labelled): (
        String,
        String,
        i64,
        Option<u32>,
        i64,
        i64,
    ) = conn.query_row(
        "SELECT name, schema, created_at, retention_days, labels, labelled FROM models WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
    )?;
    let versions_of = |table: &str| -> Result<Vec<VersionSummary>, StoreError> {
        Ok(conn
            .prepare_cached(&format!(
                "SELECT version, predictions, first_ts, last_ts FROM {table} WHERE model_id = ?1 ORDER BY first_ts"
            ))?
            .query_map([id], |r| {
                Ok(VersionSummary {
                    version: r.get(0)?,
                    predictions: r.get::<_, i64>(1)? as u64,
                    first_event: Some(Timestamp(r.get(2)?)),
                    last_event: Some(Timestamp(r.get(3)?)),
                })
            })?
            .collect::<Result<_, _>>()?)
    };
    let versions = versions_of("versions")?;
    let shadow_versions = versions_of("shadow_versions")?;
    let rejected: i64 = conn.query_row(
        "SELECT count(*) FROM rejected WHERE model = ?1",
        [&name],
        |r| r.get(0),
    )?;
    let reference: Vec<ReferenceSummary> = conn
        .prepare_cached(
            "SELECT version, rows, uploaded_at FROM reference_sets WHERE model_id = ?1 ORDER BY version",
        )?
        .query_map([id], |r| {
            Ok(ReferenceSummary {
                version: r.get(0)?,
                rows: r.get::<_, i64>(1)? as u64,
                uploaded_at: Timestamp(r.get(2)?),
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(ModelSummary {
        name,
        created_at: Timestamp(created_at),
        predictions: versions.iter().map(|v| v.predictions).sum(),
        labels: labels as u64,
        labelled: labelled as u64,
        first_event: versions.iter().filter_map(|v| v.first_event).min(),
        last_event: versions.iter().filter_map(|v| v.last_event).max(),
        rejected: rejected as u64,
        retention_days: retention,
        versions,
        shadow_versions,
        schema: parse_json("model schema", &schema)?,
        reference,
    })
}

impl SqliteStore {
    pub(super) fn list_models(&self) -> Result<Vec<ModelSummary>, StoreError> {
        self.read(|conn| {
            let ids: Vec<i64> = conn
                .prepare("SELECT id FROM models ORDER BY name")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            ids.into_iter().map(|id| summary(conn, id)).collect()
        })
    }

    pub(super) fn model(&self, model: &ModelName) -> Result<Option<ModelSummary>, StoreError> {
        self.read(|conn| match model_id(conn, model)? {
            Some(id) => summary(conn, id).map(Some),
            None => Ok(None),
        })
    }

    pub(super) fn reference_rows(
        &self,
        model: &ModelName,
        version: Option<&str>,
    ) -> Result<Vec<ReferenceRow>, StoreError> {
        self.read(|conn| {
            let id = model_id(conn, model)?
                .ok_or_else(|| StoreError::ModelNotFound(model.to_string()))?;
            let mut stmt = conn.prepare_cached(
                "SELECT features, prediction, score, scores, label, explanations FROM reference_rows
                 WHERE model_id = ?1 AND version = ?2 ORDER BY idx",
            )?;
            let mut rows = stmt.query(params![id, version.unwrap_or("")])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(ReferenceRow {
                    features: features_from(&r.get::<_, String>(0)?)?,
                    prediction: outcome_from("prediction", r.get(1)?)?,
                    score: r.get(2)?,
                    scores: pairs_from("scores", r.get(3)?)?,
                    label: outcome_from("label", r.get(4)?)?,
                    // NULL in rows stored before schema 9, or without attributions.
                    explanations: pairs_from("explanations", r.get(5)?)?.unwrap_or_default(),
                });
            }
            Ok(out)
        })
    }
}
