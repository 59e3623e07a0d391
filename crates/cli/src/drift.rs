//! `modelwatch drift`: per-feature drift of a current dataset against a reference, offline,
//! from two CSV or Parquet files, with the verdict rule of ADR 002 (`modelwatch_stats::drift`).
//!
//! Memory: only the feature columns are read (a Parquet projection), and each column is turned
//! into compact storage as its record batches arrive (f64 with NaN for null; categories as
//! u32 codes and one dictionary), the batches being dropped at once. From Parquet, every
//! feature is read, profiled and tested on its own (one projection per column), on one worker
//! thread per core, so at most one column per worker is in memory: the peak does not grow
//! with the number of features. A CSV cannot be read one column at a time cheaply, so a CSV
//! side is read once, all feature columns together, before the tests start.

use anyhow::{bail, Context};
use arrow::array::{Array, ArrayRef, BooleanArray, Float64Array, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Schema};
use indicatif::{ProgressBar, ProgressStyle};
use modelwatch_formats::{ReadOptions, Source, TableFormat, TableReader};
use modelwatch_stats::drift::{
    evaluate_feature, Column, Correction, DriftConfig, DriftReport, FeatureDrift, FeatureKind,
    FeatureProfile, Method, ProfileOptions,
};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// Aligned columns, one line per feature, then the dataset verdict
    Table,
    /// The drift report as JSON
    Json,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CorrectionArg {
    /// Benjamini-Hochberg (false discovery rate)
    Bh,
    /// Bonferroni (family-wise error rate)
    Bonferroni,
    /// No correction
    None,
}

impl From<CorrectionArg> for Correction {
    fn from(c: CorrectionArg) -> Self {
        match c {
            CorrectionArg::Bh => Correction::BenjaminiHochberg,
            CorrectionArg::Bonferroni => Correction::Bonferroni,
            CorrectionArg::None => Correction::None,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct DriftArgs {
    /// Reference dataset, the baseline (CSV or Parquet)
    #[arg(long)]
    reference: PathBuf,
    /// Current dataset, compared with the reference (CSV or Parquet)
    #[arg(long)]
    current: PathBuf,
    /// Output on stdout
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
    /// Features to test, comma-separated [default: every reference column except request_id,
    /// timestamp, model_version, prediction/score/label and their aliases]
    #[arg(long, value_delimiter = ',')]
    features: Vec<String>,
    /// Significance level of the tests, after correction
    #[arg(long, default_value_t = 0.05)]
    alpha: f64,
    /// Multiple-testing correction across the features
    #[arg(long, value_enum, default_value_t = CorrectionArg::Bh)]
    correction: CorrectionArg,
    /// Method for one feature instead of the automatic one, e.g. `age=psi` (repeatable): ks,
    /// chi_squared, cramer_von_mises, psi, jensen_shannon, hellinger, kl_divergence,
    /// wasserstein_normed
    #[arg(long = "method", value_name = "FEATURE=METHOD")]
    methods: Vec<String>,
}

/// Rows per Parquet record batch (one column): large enough that per-batch overhead is noise,
/// small enough that a batch is about 1 MB.
const PARQUET_BATCH_ROWS: usize = 131_072;

/// Rows per CSV record batch: a CSV batch holds every column of the file as text first, so it
/// is kept smaller.
const CSV_BATCH_ROWS: usize = 32_768;

/// Null marker among category codes.
const NULL_CODE: u32 = u32::MAX;

pub fn run(args: DriftArgs) -> anyhow::Result<()> {
    let config = drift_config(&args)?;
    let reference = Table::open(&args.reference, "reference")?;
    let current = Table::open(&args.current, "current")?;
    let features = select_features(&args.features, &reference, &current)?;
    for name in config.overrides.keys() {
        if !features.iter().any(|f| f == name) {
            bail!("--method names feature `{name}`, which is not among the features tested");
        }
    }

    let reference = reference.into_columns(&features)?;
    let current = current.into_columns(&features)?;
    let bar = ProgressBar::new(features.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} features ({eta})",
        )
        .expect("valid template"),
    );
    let results = modelwatch_stats::parallel::parallel_map(&features, |name| {
        let profile = reference.with_column(name, |col| {
            FeatureProfile::build(name, col, &ProfileOptions::default())
        })?;
        let drift =
            current.with_column(name, |col| evaluate_feature(&profile, Some(col), &config))?;
        bar.inc(1);
        Ok::<_, anyhow::Error>(drift)
    });
    bar.finish_and_clear();
    let features: Vec<FeatureDrift> = results.into_iter().collect::<Result<_, _>>()?;
    let report = DriftReport::from_features(features, &config);

    let mut out = std::io::stdout().lock();
    match args.format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        OutputFormat::Table => write_table(&mut out, &report)?,
    }
    out.flush()?;
    Ok(())
}

fn drift_config(args: &DriftArgs) -> anyhow::Result<DriftConfig> {
    if !(args.alpha > 0.0 && args.alpha < 1.0) {
        bail!("--alpha must be between 0 and 1, got {}", args.alpha);
    }
    let mut overrides = BTreeMap::new();
    for m in &args.methods {
        let Some((feature, method)) = m.split_once('=') else {
            bail!("--method expects FEATURE=METHOD, got `{m}`");
        };
        let method: Method = serde_json::from_value(serde_json::Value::String(
            method.trim().into(),
        ))
        .map_err(|_| {
            anyhow::anyhow!(
                "--method {m}: unknown method `{}`; use ks, chi_squared, cramer_von_mises, psi, \
                     jensen_shannon, hellinger, kl_divergence or wasserstein_normed",
                method.trim()
            )
        })?;
        overrides.insert(feature.trim().to_string(), method);
    }
    Ok(DriftConfig {
        alpha: args.alpha,
        correction: args.correction.into(),
        overrides,
        ..DriftConfig::default()
    })
}

/// The kind of feature an Arrow type holds; `None` for types drift does not test
/// (timestamps, binary, nested).
fn kind_of(t: &DataType) -> Option<FeatureKind> {
    match t {
        DataType::Boolean => Some(FeatureKind::Boolean),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Some(FeatureKind::Categorical),
        DataType::Dictionary(_, v) => match kind_of(v) {
            Some(FeatureKind::Categorical) => Some(FeatureKind::Categorical),
            _ => None,
        },
        t if t.is_numeric() => Some(FeatureKind::Numeric),
        _ => None,
    }
}

/// The features to test: the ones asked for, or every reference column that is not part of
/// an event and has a testable type. Each must be in both files.
fn select_features(
    asked: &[String],
    reference: &Table,
    current: &Table,
) -> anyhow::Result<Vec<String>> {
    let names = |s: &Schema| {
        s.fields()
            .iter()
            .map(|f| format!("`{}`", f.name()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let features: Vec<String> = if asked.is_empty() {
        // The same rule as `modelwatch import`: every column that is not part of the event.
        let all: Vec<&str> = reference
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        let features = modelwatch_formats::ColumnMapping::default().feature_columns(&all)?;
        let mut v = Vec::new();
        for f in reference.schema.fields() {
            if !features.contains(f.name()) {
                continue;
            }
            if kind_of(f.data_type()).is_none() {
                eprintln!(
                    "note: skipping column `{}` of the reference: type {} is not a numeric, \
                     categorical or boolean feature",
                    f.name(),
                    f.data_type()
                );
                continue;
            }
            v.push(f.name().clone());
        }
        if v.is_empty() {
            bail!(
                "the {} has no feature columns; it has: {}",
                reference.name,
                names(&reference.schema)
            );
        }
        v
    } else {
        let mut v: Vec<String> = Vec::new();
        for a in asked.iter().map(|a| a.trim()).filter(|a| !a.is_empty()) {
            let Ok(field) = reference.schema.field_with_name(a) else {
                bail!(
                    "feature `{a}` is not in the {}; it has: {}",
                    reference.name,
                    names(&reference.schema)
                );
            };
            if kind_of(field.data_type()).is_none() {
                bail!(
                    "feature `{a}` has type {}, which is not a numeric, categorical or boolean \
                     feature",
                    field.data_type()
                );
            }
            if !v.iter().any(|x| x == a) {
                v.push(a.to_string());
            }
        }
        if v.is_empty() {
            bail!("--features names no feature");
        }
        v
    };
    let missing: Vec<&String> = features
        .iter()
        .filter(|f| current.schema.field_with_name(f).is_err())
        .collect();
    if missing.len() == features.len() {
        bail!(
            "the reference and the current file have no feature in common; reference features: \
             {}; current columns: {}",
            features.join(", "),
            names(&current.schema)
        );
    }
    if let Some(m) = missing.first() {
        bail!(
            "feature `{m}` is in the reference but not in the {}{}",
            current.name,
            if missing.len() > 1 {
                format!(" (nor are {} others)", missing.len() - 1)
            } else {
                String::new()
            }
        );
    }
    Ok(features)
}

/// One input file, opened: its format and schema.
struct Table {
    name: String,
    source: Source,
    format: TableFormat,
    schema: arrow::datatypes::SchemaRef,
}

impl Table {
    fn open(path: &Path, role: &str) -> anyhow::Result<Table> {
        let name = format!("{role} file {}", path.display());
        let meta = std::fs::metadata(path).with_context(|| format!("cannot read {name}"))?;
        if meta.is_dir() {
            bail!("{name} is a directory");
        }
        let format = TableFormat::detect(path).with_context(|| format!("cannot read {name}"))?;
        if format == TableFormat::Ndjson {
            bail!("{name} is NDJSON; drift reads CSV or Parquet");
        }
        let source = Source::path(path);
        let schema = TableReader::open(&source, format, &read_options(format, None))
            .with_context(|| format!("cannot read {name}"))?
            .schema();
        Ok(Table {
            name,
            source,
            format,
            schema,
        })
    }

    /// Where the feature columns come from: Parquet is read column by column when a test
    /// needs one; a CSV is read now, once.
    fn into_columns(self, features: &[String]) -> anyhow::Result<Columns> {
        match self.format {
            TableFormat::Parquet => Ok(Columns::PerColumn(self)),
            _ => {
                let data = self.read(features, true)?;
                Ok(Columns::Loaded(
                    features
                        .iter()
                        .cloned()
                        .zip(data.into_iter().map(|d| Mutex::new(Some(d))))
                        .collect(),
                ))
            }
        }
    }

    /// Reads `features` (all in the file) into compact storage, batch by batch.
    fn read(&self, features: &[String], show_progress: bool) -> anyhow::Result<Vec<Data>> {
        let ctx = || format!("cannot read {}", self.name);
        let reader = TableReader::open(
            &self.source,
            self.format,
            &read_options(self.format, Some(features.to_vec())),
        )
        .with_context(ctx)?;
        let schema = reader.schema();
        let expected = reader.progress().rows_total.unwrap_or(0) as usize;
        let bar = if show_progress {
            let bar = ProgressBar::new(reader.progress().bytes_total.unwrap_or(0));
            bar.set_style(
                ProgressStyle::with_template(&format!(
                    "{{spinner}} reading {} {{wide_bar}} {{bytes}}/{{total_bytes}}",
                    self.name
                ))
                .expect("valid template"),
            );
            bar
        } else {
            ProgressBar::hidden()
        };
        // Columns in the order asked for; the reader hands them out in file order.
        let order: Vec<usize> = features
            .iter()
            .map(|f| schema.index_of(f).expect("projected on these names"))
            .collect();
        let mut data: Vec<Data> = order
            .iter()
            .map(|&i| Data::new(schema.field(i).data_type(), expected))
            .collect();
        let mut bad_cells = vec![0u64; features.len()];
        let mut bad_rows = 0usize;
        let mut reader = reader;
        while let Some(chunk) = reader.next() {
            let chunk = chunk.with_context(ctx)?;
            bad_rows += chunk.bad_rows.len();
            for (k, &i) in order.iter().enumerate() {
                data[k].push(chunk.batch.column(i), &features[k], &self.name)?;
            }
            for c in &chunk.bad_cells {
                if let Some(k) = features.iter().position(|f| *f == c.column) {
                    bad_cells[k] += 1;
                }
            }
            bar.set_position(reader.progress().bytes_read);
        }
        bar.finish_and_clear();
        if bad_rows > 0 {
            eprintln!(
                "note: {bad_rows} rows of the {} are not rows of the table (another number of \
                 fields than the header, or not UTF-8); their values are counted as missing",
                self.name
            );
        }
        for (k, n) in bad_cells.iter().enumerate() {
            if *n > 0 {
                eprintln!(
                    "note: {n} cells of `{}` in the {} do not fit the column's type; counted as \
                     missing",
                    features[k], self.name
                );
            }
        }
        Ok(data)
    }
}

fn read_options(format: TableFormat, columns: Option<Vec<String>>) -> ReadOptions {
    ReadOptions {
        batch_size: match format {
            TableFormat::Parquet => PARQUET_BATCH_ROWS,
            _ => CSV_BATCH_ROWS,
        },
        columns,
        ..ReadOptions::default()
    }
}

/// The feature columns of one side.
enum Columns {
    /// Parquet: each column read when its test runs.
    PerColumn(Table),
    /// CSV: read up front; each column is handed out once, then freed.
    Loaded(HashMap<String, Mutex<Option<Data>>>),
}

impl Columns {
    /// Calls `f` with column `name`, then frees it.
    fn with_column<R>(&self, name: &str, f: impl FnOnce(Column<'_>) -> R) -> anyhow::Result<R> {
        let data = match self {
            Columns::PerColumn(t) => t
                .read(&[name.to_string()], false)?
                .pop()
                .expect("one column asked, one read"),
            Columns::Loaded(m) => m
                .get(name)
                .and_then(|d| d.lock().unwrap_or_else(|e| e.into_inner()).take())
                .expect("every feature is loaded and taken once"),
        };
        Ok(data.with_column(f))
    }
}

/// One column in compact storage.
enum Data {
    /// NaN for null.
    Numeric(Vec<f64>),
    /// Codes into `dictionary`; [`NULL_CODE`] for null.
    Categorical {
        codes: Vec<u32>,
        dictionary: Vec<String>,
        lookup: HashMap<String, u32>,
    },
    Boolean(Vec<Option<bool>>),
}

impl Data {
    fn new(t: &DataType, rows: usize) -> Data {
        match kind_of(t) {
            Some(FeatureKind::Boolean) => Data::Boolean(Vec::with_capacity(rows)),
            Some(FeatureKind::Categorical) => Data::Categorical {
                codes: Vec::with_capacity(rows),
                dictionary: Vec::new(),
                lookup: HashMap::new(),
            },
            // Unsupported types were refused when choosing features; the current file's
            // column may still differ in type: it is then cast, or the cast fails by name.
            _ => Data::Numeric(Vec::with_capacity(rows)),
        }
    }

    /// Appends one batch of the column.
    fn push(&mut self, a: &ArrayRef, feature: &str, file: &str) -> anyhow::Result<()> {
        let cast_to = |t: &DataType| {
            cast(a, t).with_context(|| {
                format!(
                    "feature `{feature}` in the {file}: cannot read type {} as {t}",
                    a.data_type()
                )
            })
        };
        match self {
            Data::Numeric(v) => {
                let owned;
                let f = match a.as_any().downcast_ref::<Float64Array>() {
                    Some(f) => f,
                    None => {
                        owned = cast_to(&DataType::Float64)?;
                        owned
                            .as_any()
                            .downcast_ref::<Float64Array>()
                            .expect("cast to float64")
                    }
                };
                if f.null_count() == 0 {
                    v.extend_from_slice(f.values());
                } else {
                    v.extend(f.iter().map(|x| x.unwrap_or(f64::NAN)));
                }
            }
            Data::Categorical {
                codes,
                dictionary,
                lookup,
            } => {
                let owned;
                let s = match a.as_any().downcast_ref::<StringArray>() {
                    Some(s) => s,
                    None => {
                        owned = cast_to(&DataType::Utf8)?;
                        owned
                            .as_any()
                            .downcast_ref::<StringArray>()
                            .expect("cast to utf8")
                    }
                };
                // Consecutive rows often repeat a category; skip the hash lookup then.
                let mut last: Option<(&str, u32)> = None;
                for x in s.iter() {
                    let code = match x {
                        None => NULL_CODE,
                        Some(x) => match last {
                            Some((l, c)) if l == x => c,
                            _ => {
                                let c = match lookup.get(x) {
                                    Some(&c) => c,
                                    None => {
                                        let c = dictionary.len() as u32;
                                        dictionary.push(x.to_string());
                                        lookup.insert(x.to_string(), c);
                                        c
                                    }
                                };
                                last = Some((x, c));
                                c
                            }
                        },
                    };
                    codes.push(code);
                }
            }
            Data::Boolean(v) => {
                let owned;
                let b = match a.as_any().downcast_ref::<BooleanArray>() {
                    Some(b) => b,
                    None => {
                        owned = cast_to(&DataType::Boolean)?;
                        owned
                            .as_any()
                            .downcast_ref::<BooleanArray>()
                            .expect("cast to boolean")
                    }
                };
                v.extend(b.iter());
            }
        }
        Ok(())
    }

    /// Calls `f` with the column as the drift engine takes it.
    fn with_column<R>(&self, f: impl FnOnce(Column<'_>) -> R) -> R {
        match self {
            Data::Numeric(v) => f(Column::Numeric(v)),
            Data::Boolean(v) => f(Column::Boolean(v)),
            Data::Categorical {
                codes, dictionary, ..
            } => {
                // The engine takes one &str per row: 16 bytes a row, for this column only and
                // only while it is tested.
                let rows: Vec<Option<&str>> = codes
                    .iter()
                    .map(|&c| (c != NULL_CODE).then(|| dictionary[c as usize].as_str()))
                    .collect();
                f(Column::Categorical(&rows))
            }
        }
    }
}

fn fmt_num(x: Option<f64>) -> String {
    match x {
        None => "-".to_string(),
        Some(0.0) => "0".to_string(),
        Some(x) if x.abs() < 1e-3 || x.abs() >= 1e5 => format!("{x:.3e}"),
        Some(x) => format!("{x:.4}"),
    }
}

fn kind_name(k: FeatureKind) -> &'static str {
    match k {
        FeatureKind::Numeric => "numeric",
        FeatureKind::Categorical => "categorical",
        FeatureKind::Boolean => "boolean",
    }
}

fn write_table(out: &mut impl Write, report: &DriftReport) -> std::io::Result<()> {
    use modelwatch_stats::drift::FeatureStatus;
    let header = [
        "feature",
        "kind",
        "method",
        "statistic",
        "p-value",
        "adjusted p",
        "effect",
        "threshold",
        "drifted",
    ];
    let rows: Vec<[String; 9]> = report
        .features
        .iter()
        .map(|f| {
            let drifted = match &f.status {
                FeatureStatus::Evaluated => (if f.drifted { "yes" } else { "no" }).to_string(),
                other => serde_json::to_value(other)
                    .ok()
                    .and_then(|v| v.get("status").and_then(|s| s.as_str()).map(String::from))
                    .map(|s| format!("n/a ({})", s.replace('_', " ")))
                    .unwrap_or_else(|| "n/a".into()),
            };
            [
                f.feature.clone(),
                kind_name(f.kind).to_string(),
                f.method.name().to_string(),
                fmt_num(f.statistic),
                fmt_num(f.p_value),
                fmt_num(f.p_value_adjusted),
                fmt_num(f.effect_size),
                fmt_num(Some(f.threshold)),
                drifted,
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    // Text columns left-aligned, numbers right-aligned.
    let line = |out: &mut dyn Write, cells: &[&str]| -> std::io::Result<()> {
        let mut s = String::new();
        for (k, (c, w)) in cells.iter().zip(width).enumerate() {
            if k > 0 {
                s.push_str("  ");
            }
            if (3..8).contains(&k) {
                s.push_str(&format!("{c:>w$}"));
            } else if k == cells.len() - 1 {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}"));
            }
        }
        writeln!(out, "{s}")
    };
    line(out, &header)?;
    for r in &rows {
        line(out, &r.each_ref().map(String::as_str))?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "dataset drift: {} ({} of {} features drifted, {:.0}%; threshold {:.0}%)",
        if report.dataset_drift { "yes" } else { "no" },
        report.drifted_features,
        report.evaluated_features,
        report.share_drifted * 100.0,
        report.drift_share_threshold * 100.0
    )
}
