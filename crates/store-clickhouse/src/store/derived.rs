//! `DerivedState` over the cluster: the engine's per-hour blobs (`aggregates`), and which hours
//! are stale, from the per-hour change counts against what each blob was built from.

use super::*;

impl DerivedState for ClickHouseStore {
    fn aggregates(
        &self,
        model: &ModelName,
        kind: &str,
        range: &ScanRange,
    ) -> Result<Vec<StoredAggregate>, StoreError> {
        let mut sql = format!(
            "SELECT version, hour, unhex(blob), deleted FROM aggregates_local FINAL WHERE model = {} AND kind = {}",
            q(model.as_str()),
            q(kind)
        );
        if let Some(v) = &range.version {
            sql.push_str(&format!(" AND version = {}", q(v)));
        }
        sql.push_str(&range_sql("hour", range.from, range.to));
        sql.push_str(" ORDER BY hour, version");
        // Stored as hex (JSONEachRow carries text), sent as the bytes themselves: half the
        // bytes of hex and no JSON string to unescape (docs/benchmarks.md, 30M events).
        // From the model's shard, where every blob of the model is written (put_aggregate_group):
        // one server per read instead of the Distributed table's every shard, the read most
        // repeated per request.
        let home = self.on(self.model_shard(model.as_str()));
        let answer = self.http.row_binary(home, &sql, "read derived state")?;
        let mut r = RowBinary::new(&answer);
        let mut out = Vec::new();
        while !r.is_empty() {
            let row = (|| Some((r.string()?, r.i64()?, r.bytes()?, r.u8()?)))();
            let Some((version, hour, data, deleted)) = row else {
                return Err(StoreError::Corrupt {
                    what: "derived state blob",
                    detail: "a cut or unreadable RowBinary answer".into(),
                });
            };
            // Filtered here, not in WHERE: a condition may be applied before FINAL collapses.
            if deleted == 0 {
                out.push(StoredAggregate {
                    version,
                    hour: Timestamp(hour),
                    data: data.to_vec(),
                });
            }
        }
        Ok(out)
    }

    fn put_aggregate_group(
        &self,
        model: &ModelName,
        writes: Vec<AggregateWrite>,
    ) -> Result<(), StoreError> {
        let name = model.as_str();
        let epoch = self.model_row(name)?.map_or(0, |r| r.rebuild_epoch);
        let at = self.stamps(1);
        let mut built: HashMap<(&str, i64), u64> = HashMap::new();
        for w in &writes {
            for r in &w.refreshed {
                built.insert(
                    (r.version(), r.hour().micros()),
                    r.seen().get().max(0) as u64,
                );
            }
        }
        let mut rows = Vec::new();
        for w in &writes {
            for p in &w.put {
                rows.push(AggregateRow {
                    model: name,
                    kind: &w.kind,
                    version: &p.version,
                    hour: p.hour.micros(),
                    blob: hex(&p.data),
                    built_from: built
                        .get(&(p.version.as_str(), p.hour.micros()))
                        .copied()
                        .unwrap_or(0),
                    epoch,
                    written_at: at,
                    deleted: 0,
                });
            }
            for (version, hour) in &w.delete {
                rows.push(AggregateRow {
                    model: name,
                    kind: &w.kind,
                    version,
                    hour: hour.micros(),
                    blob: String::new(),
                    built_from: 0,
                    epoch,
                    written_at: at,
                    deleted: 1,
                });
            }
        }
        let url = self.on(self.model_shard(name));
        self.http
            .insert(url, "aggregates_local", &rows, "write derived state")?;
        // After the blobs: a crash between the two leaves the hours stale, rebuilt again.
        let marks: Vec<BuiltRow> = built
            .iter()
            .map(|(&(version, hour), &built_from)| BuiltRow {
                model: name,
                version,
                hour,
                built_from,
                epoch,
                written_at: at,
            })
            .collect();
        self.http.insert(
            url,
            "hours_built_local",
            &marks,
            "record what the derived state was built from",
        )
    }

    fn invalidate_aggregates(&self, model: &ModelName) -> Result<(), StoreError> {
        let writer = self.writer(model.as_str());
        let _writer = writer.lock().expect("writer poisoned");
        let Some(mut row) = self.model_row(model.as_str())? else {
            return Ok(());
        };
        row.rebuild_epoch += 1;
        self.put_model_row(row)
    }

    fn models_with_stale_hours(&self) -> Result<Vec<ModelName>, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            model: String,
        }
        let rows: Vec<Row> = self.http.rows(
            self.on(0),
            "SELECT model FROM models_local FINAL ORDER BY model",
            "list the models",
        )?;
        let mut out = Vec::new();
        for r in rows {
            let Ok(name) = ModelName::new(&r.model) else {
                continue;
            };
            if !self.stale_hours(&name, false)?.is_empty() {
                out.push(name);
            }
        }
        Ok(out)
    }

    /// Every (version, hour) whose change count moved past the count its state was built from,
    /// that has changes and no state, or whose state is of an older rebuild epoch (ADR 018).
    /// Every one to rescan: this backend keeps no additions, so `with_additions` changes
    /// nothing.
    fn stale_hours(
        &self,
        model: &ModelName,
        _with_additions: bool,
    ) -> Result<Vec<StaleHour>, StoreError> {
        let m = q(model.as_str());
        let epoch = self
            .model_row(model.as_str())?
            .map_or(0, |r| r.rebuild_epoch);
        #[derive(Deserialize)]
        struct Changes {
            version: String,
            hour: i64,
            changes: u64,
        }
        let changes: Vec<Changes> = self.http.rows(
            self.any(),
            &format!(
                "SELECT version, hour, sum(changes) AS changes FROM hour_changes WHERE model = {m} \
                 GROUP BY version, hour ORDER BY hour, version"
            ),
            "read the hours' change counts",
        )?;
        #[derive(Deserialize)]
        struct Built {
            version: String,
            hour: i64,
            built_from: u64,
            epoch: u64,
        }
        // From the model's shard, where put_aggregate_group records them.
        let built: Vec<Built> = self.http.rows(
            self.on(self.model_shard(model.as_str())),
            &format!(
                "SELECT version, hour, argMax(built_from, written_at) AS built_from, argMax(epoch, written_at) AS epoch \
                 FROM hours_built_local WHERE model = {m} GROUP BY version, hour"
            ),
            "read what the hours' state was built from",
        )?;
        let built: HashMap<(String, i64), (u64, u64)> = built
            .into_iter()
            .map(|b| ((b.version, b.hour), (b.built_from, b.epoch)))
            .collect();
        Ok(changes
            .into_iter()
            .filter(|c| match built.get(&(c.version.clone(), c.hour)) {
                Some(&(from, e)) => c.changes > from || e < epoch,
                None => c.changes > 0,
            })
            .map(|c| StaleHour::rescan(c.version, Timestamp(c.hour), Seen::new(c.changes as i64)))
            .collect())
    }

    /// Never asked: no stale hour here has additions (ADR 018).
    fn scan_added_predictions(
        &self,
        _model: &ModelName,
        _stored: &[PredictionsRef],
        _f: &mut dyn FnMut(PredictionsRef, &PredictionEvent),
    ) -> Result<(), StoreError> {
        Ok(())
    }
}
