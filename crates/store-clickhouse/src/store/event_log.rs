//! `EventLog` over the cluster: predictions, labels and KPIs routed to their shards (the
//! duplicate check, quorum inserts, labels before change counts), scans with their labels joined
//! on each shard, pages, window counts, the quarantine and retention.

use super::*;

impl EventLog for ClickHouseStore {
    fn ingest_predictions(
        &self,
        model: &ModelName,
        batch: PredictionBatch,
    ) -> Result<IngestOutcome, StoreError> {
        let writer = self.writer(model.as_str());
        let _writer = writer.lock().expect("writer poisoned");
        let name = model.as_str();
        let mut out = IngestOutcome::default();
        let mut quarantined = batch.rejected;
        if batch.rows.is_empty() {
            out.rejected = self.quarantine(name, "predictions", &quarantined)?;
            return Ok(out);
        }
        let cut = cutoff(&self.ensure_model(name)?);
        let mut schema = self.schema(name)?;
        let mut known = FeatureIndex::of(&schema);
        let mut added = Vec::new();
        // The first row of the batch for each served request id and each (id, version).
        let mut first_served: HashMap<&str, usize> = HashMap::new();
        let mut first_pair: HashMap<(&str, &str), usize> = HashMap::new();
        let mut admitted: Vec<&(usize, PredictionEvent)> = Vec::with_capacity(batch.rows.len());
        for row in &batch.rows {
            let (index, e) = row;
            let id = e.request_id.as_str();
            let version = e.model_version.as_deref().unwrap_or("");
            let first = first_pair.get(&(id, version)).copied().or_else(|| {
                e.role
                    .is_served()
                    .then(|| first_served.get(id).copied())
                    .flatten()
            });
            if let Some(first) = first {
                quarantined.push(Quarantined {
                    rejection: repeated_rejection(*index, id, first),
                    row: to_json(e),
                });
                continue;
            }
            match schema.check(&e.features, &known, self.max_features) {
                Ok(new) => {
                    for f in &new {
                        known.insert(f);
                    }
                    added.extend(new);
                }
                Err((field, reason)) => {
                    quarantined.push(Quarantined {
                        rejection: Rejection::new(*index, field, reason).with_request_id(Some(id)),
                        row: to_json(e),
                    });
                    continue;
                }
            }
            first_pair.insert((id, version), *index);
            if e.role.is_served() {
                first_served.insert(id, *index);
            }
            admitted.push(row);
        }
        // The schema first: rows never reference features their schema lacks (a failure
        // after this leaves features of no rows, which the client's retry stores).
        if !added.is_empty() {
            out.schema_changes = added
                .iter()
                .map(|f| SchemaChange {
                    feature: f.name.clone(),
                    kind: f.kind,
                })
                .collect();
            schema.features.extend(added);
            self.save_schema(name, &schema)?;
        }
        // Arrival stamps in batch order, whichever shard each row goes to (pages read in
        // arrival order); a duplicate leaves its stamp unused.
        let base = self.stamps(admitted.len());
        let mut by_shard: BTreeMap<usize, Vec<(u64, &PredictionEvent)>> = BTreeMap::new();
        for (i, row) in admitted.into_iter().enumerate() {
            by_shard
                .entry(self.shard_of(&row.1.request_id))
                .or_default()
                .push((base + i as u64, &row.1));
        }
        // The shards are written at once (each its own read and insert): a batch waits for
        // its slowest shard, not for their sum. A failure leaves the other shards' rows stored,
        // which the client's retry reports as duplicates.
        let results: Vec<Result<(usize, usize), StoreError>> = if by_shard.len() == 1 {
            (by_shard.iter())
                .map(|(&shard, rows)| self.store_on_shard(name, cut, shard, rows))
                .collect()
        } else {
            std::thread::scope(|s| {
                let writers: Vec<_> = (by_shard.iter())
                    .map(|(&shard, rows)| {
                        s.spawn(move || self.store_on_shard(name, cut, shard, rows))
                    })
                    .collect();
                (writers.into_iter())
                    .map(|w| {
                        w.join()
                            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                    })
                    .collect()
            })
        };
        for result in results {
            let (accepted, duplicates) = result?;
            out.accepted += accepted;
            out.duplicates += duplicates;
        }
        out.rejected = self.quarantine(name, "predictions", &quarantined)?;
        Ok(out)
    }

    fn ingest_labels(
        &self,
        model: &ModelName,
        batch: LabelBatch,
    ) -> Result<IngestOutcome, StoreError> {
        let writer = self.writer(model.as_str());
        let _writer = writer.lock().expect("writer poisoned");
        let name = model.as_str();
        self.existing(model)?;
        let mut out = IngestOutcome::default();
        // Arrival stamps in batch order (pages of labels read in arrival order).
        let base = self.stamps(batch.rows.len());
        let mut by_shard: BTreeMap<usize, Vec<(u64, &LabelEvent)>> = BTreeMap::new();
        for (i, (_, l)) in batch.rows.iter().enumerate() {
            by_shard
                .entry(self.shard_of(&l.request_id))
                .or_default()
                .push((base + i as u64, l));
        }
        for (shard, rows) in by_shard {
            // One server for the read, the insert and the change counts: the counts read the
            // predictions the labels join on this shard.
            let url = self.on(shard);
            let ids: Vec<&str> = rows.iter().map(|(_, l)| l.request_id.as_str()).collect();
            #[derive(Deserialize)]
            struct Id {
                request_id: String,
            }
            let stored: Vec<Id> = self.http.rows_with_ids(
                url,
                &format!(
                    "SELECT DISTINCT request_id FROM labels_local PREWHERE request_id IN _ids WHERE model = {}",
                    q(name),
                ),
                &ids,
                "read which of the batch's labels are stored",
            )?;
            let mut seen: HashSet<&str> = stored.iter().map(|s| s.request_id.as_str()).collect();
            for id in &ids {
                if !seen.insert(id) {
                    out.replaced += 1;
                }
            }
            let inserts: Vec<LabelRow> = rows
                .iter()
                .map(|&(received_at, l)| LabelRow {
                    model: name,
                    request_id: &l.request_id,
                    label: to_json(&l.label),
                    ts: l.timestamp.micros(),
                    received_at,
                })
                .collect();
            self.http
                .insert(url, "labels_local", &inserts, "store labels")?;
            out.accepted += rows.len();
            // After the labels (ADR 019, "Change counts"): the hours of their predictions
            // moved. A label before its prediction moves nothing; its prediction will.
            self.http.with_ids(
                url,
                &format!(
                    "INSERT INTO hour_changes_local SELECT model, version, intDiv(ts, {HOUR_MICROS}) * {HOUR_MICROS} AS hour, \
                     count() AS changes FROM predictions_local PREWHERE request_id IN _ids WHERE model = {} GROUP BY model, version, hour",
                    q(name),
                ),
                &ids,
                "count the hours the labels changed",
            )?;
        }
        out.rejected = self.quarantine(name, "labels", &batch.rejected)?;
        Ok(out)
    }

    fn ingest_kpis(
        &self,
        model: &ModelName,
        rows: Vec<(usize, KpiEvent)>,
        rejected: Vec<Quarantined>,
    ) -> Result<IngestOutcome, StoreError> {
        let writer = self.writer(model.as_str());
        let _writer = writer.lock().expect("writer poisoned");
        let name = model.as_str();
        self.existing(model)?;
        let mut out = IngestOutcome::default();
        let url = self.on(self.model_shard(name));
        if !rows.is_empty() {
            #[derive(Deserialize)]
            struct Key {
                name: String,
                ts: i64,
            }
            let stored: Vec<Key> = self.http.rows(
                url,
                &format!(
                    "SELECT DISTINCT name, ts FROM kpis_local WHERE model = {} AND name IN {} AND ts IN ({})",
                    q(name),
                    in_list(rows.iter().map(|(_, k)| k.name.as_str())),
                    rows.iter()
                        .map(|(_, k)| int(k.timestamp.micros()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "read which KPI points are stored",
            )?;
            let mut seen: HashSet<(String, i64)> =
                stored.into_iter().map(|k| (k.name, k.ts)).collect();
            for (_, k) in &rows {
                if !seen.insert((k.name.clone(), k.timestamp.micros())) {
                    out.replaced += 1;
                }
            }
            #[derive(Serialize)]
            struct Row<'a> {
                model: &'a str,
                name: &'a str,
                ts: i64,
                value: f64,
                received_at: u64,
            }
            let first = self.stamps(rows.len());
            let inserts: Vec<Row> = rows
                .iter()
                .enumerate()
                .map(|(i, (_, k))| Row {
                    model: name,
                    name: &k.name,
                    ts: k.timestamp.micros(),
                    value: k.value,
                    received_at: first + i as u64,
                })
                .collect();
            self.http
                .insert(url, "kpis_local", &inserts, "store KPI points")?;
            out.accepted = rows.len();
        }
        out.rejected = self.quarantine(name, "kpis", &rejected)?;
        Ok(out)
    }

    fn kpis(
        &self,
        model: &ModelName,
        name: Option<&str>,
        range: &ScanRange,
    ) -> Result<Vec<KpiEvent>, StoreError> {
        let row = self.existing(model)?;
        let mut sql = format!(
            "SELECT name, ts, value FROM kpis FINAL WHERE model = {}",
            q(model.as_str())
        );
        if let Some(n) = name {
            sql.push_str(&format!(" AND name = {}", q(n)));
        }
        sql.push_str(&range_sql("ts", range.from, range.to));
        sql.push_str(&visible("ts", cutoff(&row)));
        sql.push_str(" ORDER BY name, ts");
        #[derive(Deserialize)]
        struct Row {
            name: String,
            ts: i64,
            value: f64,
        }
        let rows: Vec<Row> = self
            .http
            .rows(self.any(), &sql, "read the model's KPI points")?;
        Ok(rows
            .into_iter()
            .map(|r| KpiEvent {
                name: r.name,
                value: r.value,
                timestamp: Timestamp(r.ts),
            })
            .collect())
    }

    fn window_counts(
        &self,
        model: &ModelName,
        query: &WindowQuery,
    ) -> Result<Vec<WindowCounts>, StoreError> {
        let row = self.existing(model)?;
        let m = q(model.as_str());
        let mut sql = format!(
            "SELECT p.ts AS ts, p.error AS error, l.label_ts AS label_ts, l.has AS has \
             FROM predictions AS p FINAL \
             ANY LEFT JOIN (SELECT request_id, ts AS label_ts, toUInt8(1) AS has FROM {db}.labels_local FINAL WHERE model = {m}{of_range}) AS l \
             USING (request_id) WHERE p.model = {m} AND p.role = 'served'",
            db = self.db(),
            of_range = labels_of_range(self.db(), &m, query.from, query.to),
        );
        if let Some(v) = &query.version {
            sql.push_str(&format!(" AND p.version = {}", q(v)));
        }
        sql.push_str(&range_sql("p.ts", query.from, query.to));
        sql.push_str(&visible("p.ts", cutoff(&row)));
        #[derive(Deserialize)]
        struct Row {
            ts: i64,
            error: u8,
            label_ts: i64,
            has: u8,
        }
        let mut tally = WindowTally::new(query.window);
        self.http.each_line(
            self.any(),
            &sql,
            "count the model's predictions by window",
            &mut |line| {
                let r: Row = serde_json::from_str(line).map_err(|e| StoreError::Corrupt {
                    what: "window count row",
                    detail: e.to_string(),
                })?;
                tally.add(r.ts, r.error != 0, (r.has == 1).then_some(r.label_ts));
                Ok(())
            },
        )?;
        Ok(tally.finish())
    }

    fn predictions(
        &self,
        model: &ModelName,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<PredictionEvent>, StoreError> {
        let after = after.map(read_prediction_cursor).transpose()?;
        let row = self.existing(model)?;
        let mut sql = format!(
            "SELECT received_at, request_id, version, event FROM predictions FINAL WHERE model = {}{}",
            q(model.as_str()),
            visible("ts", cutoff(&row))
        );
        if let Some((r, id, v)) = &after {
            sql.push_str(&format!(
                " AND (received_at, request_id, version) > ({r}, {}, {})",
                q(id),
                q(v)
            ));
        }
        sql.push_str(&format!(
            " ORDER BY received_at, request_id, version LIMIT {limit}"
        ));
        #[derive(Deserialize)]
        struct Row {
            received_at: u64,
            request_id: String,
            version: String,
            event: String,
        }
        let rows: Vec<Row> = self
            .http
            .rows(self.any(), &sql, "read a page of predictions")?;
        let next = (rows.len() == limit && limit > 0)
            .then(|| rows.last())
            .flatten()
            .map(|r| prediction_cursor(r.received_at, &r.request_id, &r.version));
        let items = rows
            .iter()
            .map(|r| {
                decode_stored(&r.event).map_err(|detail| StoreError::Corrupt {
                    what: "stored prediction",
                    detail,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Page { items, next })
    }

    fn labels(
        &self,
        model: &ModelName,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<LabelEvent>, StoreError> {
        let after = after.map(read_label_cursor).transpose()?;
        let row = self.existing(model)?;
        let mut sql = format!(
            "SELECT received_at, request_id, label, ts FROM labels FINAL WHERE model = {}{}",
            q(model.as_str()),
            visible_labels(self.db(), &q(model.as_str()), cutoff(&row))
        );
        if let Some((r, id)) = &after {
            sql.push_str(&format!(
                " AND (received_at, request_id) > ({r}, {})",
                q(id)
            ));
        }
        sql.push_str(&format!(" ORDER BY received_at, request_id LIMIT {limit}"));
        #[derive(Deserialize)]
        struct Row {
            received_at: u64,
            request_id: String,
            label: String,
            ts: i64,
        }
        let rows: Vec<Row> = self.http.rows(self.any(), &sql, "read a page of labels")?;
        let next = (rows.len() == limit && limit > 0)
            .then(|| rows.last())
            .flatten()
            .map(|r| label_cursor(r.received_at, &r.request_id));
        let items = rows
            .into_iter()
            .map(|r| {
                Ok(LabelEvent {
                    label: parse_outcome(&r.label)?,
                    request_id: r.request_id,
                    timestamp: Timestamp(r.ts),
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Page { items, next })
    }

    fn rejected(&self, model: &ModelName, limit: usize) -> Result<Vec<RejectedRow>, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            received_at: u64,
            kind: String,
            row_index: u32,
            request_id: Option<String>,
            field: String,
            reason: String,
            row: String,
        }
        let rows: Vec<Row> = self.http.rows(
            self.any(),
            &format!(
                "SELECT received_at, kind, row_index, request_id, field, reason, row FROM rejected \
                 WHERE model = {} ORDER BY received_at DESC, row_index DESC LIMIT {limit}",
                q(model.as_str())
            ),
            "read the model's quarantine",
        )?;
        Ok(rows
            .into_iter()
            .map(|r| RejectedRow {
                received_at: Timestamp(r.received_at as i64),
                kind: r.kind,
                index: r.row_index as usize,
                request_id: r.request_id,
                field: r.field,
                reason: r.reason,
                row: r.row,
            })
            .collect())
    }

    fn scan_predictions(
        &self,
        model: &ModelName,
        range: &ScanRange,
        f: &mut dyn FnMut(&PredictionEvent, Option<&LabelEvent>),
    ) -> Result<ScanSnapshot, StoreError> {
        // No hour deltas on this backend (ADR 018): nothing for a rescan to name.
        self.scan(model, range, false, f)
            .map(|()| ScanSnapshot::default())
    }

    fn scan_with_shadows(
        &self,
        model: &ModelName,
        range: &ScanRange,
        f: &mut dyn FnMut(&PredictionEvent, Option<&LabelEvent>),
    ) -> Result<(), StoreError> {
        self.scan(model, range, true, f)
    }

    /// Deletes what is past each model's retention. Reads hide it from the moment the setting
    /// allows (as the embedded store), so the deletes only free space: `ALTER … DELETE`
    /// mutations (18.16 has no table TTL), waited for on an unreplicated cluster. With replicas
    /// on 18.16 the predictions, KPI points and quarantine stay on disk, hidden: a mutation of
    /// a table whose quorum inserts span several partitions never finishes (ClickHouse issue
    /// 7133, fixed in 20.3), and `DROP PARTITION` leaves the quorum naming the dropped part, so
    /// every sequentially consistent read fails after it (code 289; ADR 019). The count of
    /// predictions deleted is then of those newly hidden since the last run.
    fn apply_retention(&self, now: Timestamp) -> Result<RetentionReport, StoreError> {
        // Each model's writer is taken in turn below.
        let replicated = self.http.quorum.is_some();
        let mut report = RetentionReport::default();
        let models: Vec<ModelRow> = self.http.rows(
            self.on(0),
            "SELECT * FROM models_local FINAL",
            "list the models",
        )?;
        let cutoff_of = |row: &ModelRow| now.micros() - i64::from(row.retention_days) * DAY_MICROS;
        for row in models.iter().filter(|r| r.retention_days > 0) {
            let writer = self.writer(&row.model);
            let _writer = writer.lock().expect("writer poisoned");
            let m = q(&row.model);
            let cutoff = cutoff_of(row);
            let old = format!("model = {m} AND ts < {cutoff}");
            // With replicas nothing is deleted: count what this run newly hides.
            let mut settings: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&row.settings).unwrap_or_default();
            let hidden_before = settings
                .get(HIDDEN_BEFORE)
                .and_then(|v| v.as_i64())
                .filter(|_| replicated)
                .unwrap_or(i64::MIN);
            let predictions = self.count(
                self.any(),
                &format!(
                    "SELECT count() AS n FROM predictions FINAL WHERE {old} AND ts >= {}",
                    int(hidden_before)
                ),
                "count the predictions past retention",
            )?;
            report.predictions_deleted += predictions;
            if replicated && cutoff > hidden_before {
                settings.insert(HIDDEN_BEFORE.into(), cutoff.into());
                let mut row = row.clone();
                row.settings = serde_json::Value::Object(settings).to_string();
                self.put_model_row(row)?;
            }
            // Labels past the cutoff whose request keeps no prediction (each shard its own).
            for servers in &self.shards {
                #[derive(Deserialize)]
                struct Id {
                    request_id: String,
                }
                let ids: Vec<Id> = self.http.rows(
                    &servers[0],
                    &format!(
                        "SELECT DISTINCT request_id FROM labels_local WHERE {old} AND request_id NOT IN \
                         (SELECT request_id FROM predictions_local WHERE model = {m} AND ts >= {cutoff})"
                    ),
                    "find the labels past retention",
                )?;
                if ids.is_empty() {
                    continue;
                }
                self.http.run(
                    &servers[0],
                    &format!(
                        "ALTER TABLE labels_local DELETE WHERE model = {m} AND request_id IN {}",
                        in_list(ids.iter().map(|i| i.request_id.as_str()))
                    ),
                    None,
                    "delete labels past retention",
                    true,
                )?;
                report.labels_deleted += ids.len() as u64;
            }
            if !replicated {
                if predictions > 0 {
                    self.delete_where(
                        "predictions_local",
                        &old,
                        "delete predictions past retention",
                    )?;
                }
                if self.count(
                    self.any(),
                    &format!("SELECT count() AS n FROM kpis WHERE {old}"),
                    "count the KPI points past retention",
                )? > 0
                {
                    self.delete_where("kpis_local", &old, "delete KPI points past retention")?;
                }
            }
            // Derived state of the hours wholly past the cutoff (one partition each: safe
            // with replicas too).
            let hours_old = format!("model = {m} AND hour + {HOUR_MICROS} <= {cutoff}");
            for table in ["aggregates", "hours_built", "hour_changes", "hour_counts"] {
                let cond = if table == "aggregates" {
                    format!("{hours_old} AND hour != {}", int(MODEL_WIDE.micros()))
                } else {
                    hours_old.clone()
                };
                if self.count(
                    self.any(),
                    &format!("SELECT count() AS n FROM {table} WHERE {cond}"),
                    "count the derived state past retention",
                )? > 0
                {
                    self.delete_where(
                        &format!("{table}_local"),
                        &cond,
                        "delete derived state past retention",
                    )?;
                }
            }
            // The hour holding the cutoff lost some of its predictions: its count moves.
            let cut_hour = cutoff - cutoff.rem_euclid(HOUR_MICROS);
            self.http.run(
                self.on(self.model_shard(&row.model)),
                &format!(
                    "INSERT INTO hour_changes_local SELECT model, version, hour, toUInt64(1) AS changes \
                     FROM hour_changes WHERE model = {m} AND hour = {cut_hour} GROUP BY model, version, hour"
                ),
                None,
                "mark the hour of the retention cutoff changed",
                true,
            )?;
        }
        if !replicated {
            let quarantine_cutoff = now.micros() - QUARANTINE_RETENTION_DAYS * DAY_MICROS;
            let old_rejected = format!("received_at < {}", quarantine_cutoff.max(0));
            let rejected = self.count(
                self.any(),
                &format!("SELECT count() AS n FROM rejected WHERE {old_rejected}"),
                "count the quarantined rows past 30 days",
            )?;
            if rejected > 0 {
                self.delete_where(
                    "rejected_local",
                    &old_rejected,
                    "delete quarantined rows past 30 days",
                )?;
                report.rejected_deleted = rejected;
            }
            self.wait_for_mutations()?;
        }
        Ok(report)
    }
}
