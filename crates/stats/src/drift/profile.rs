//! Reference profiles: what drift detection keeps of the reference dataset, computed once.

use super::binning::{BinEdges, CategoryIndex, DEFAULT_BINS};
use super::ks::SortedReference;
use serde::{Deserialize, Serialize};

/// One input column, borrowed. The file-IO layer converts Arrow arrays into these.
#[derive(Debug, Clone, Copy)]
pub enum Column<'a> {
    /// Numbers; NaN counts as null (Arrow nulls can be filled with NaN). Infinities are
    /// counted apart as non-finite and, like nulls, left out of the distribution tests.
    Numeric(&'a [f64]),
    /// Numbers with explicit nulls.
    NumericOpt(&'a [Option<f64>]),
    /// Categories (strings); `None` is null.
    Categorical(&'a [Option<&'a str>]),
    /// Booleans; `None` is null. Compared as the two categories "false" and "true".
    Boolean(&'a [Option<bool>]),
}

impl Column<'_> {
    /// Number of rows, nulls included.
    pub fn len(&self) -> usize {
        match self {
            Column::Numeric(v) => v.len(),
            Column::NumericOpt(v) => v.len(),
            Column::Categorical(v) => v.len(),
            Column::Boolean(v) => v.len(),
        }
    }

    /// True when the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The kind of feature this column holds.
    pub fn kind(&self) -> FeatureKind {
        match self {
            Column::Numeric(_) | Column::NumericOpt(_) => FeatureKind::Numeric,
            Column::Categorical(_) => FeatureKind::Categorical,
            Column::Boolean(_) => FeatureKind::Boolean,
        }
    }
}

/// What a feature holds, as far as drift detection is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// Numbers.
    Numeric,
    /// Strings from a set of categories.
    Categorical,
    /// true / false.
    Boolean,
}

impl FeatureKind {
    /// The kind's name as serialised (snake_case).
    pub fn name(self) -> &'static str {
        match self {
            FeatureKind::Numeric => "numeric",
            FeatureKind::Categorical => "categorical",
            FeatureKind::Boolean => "boolean",
        }
    }
}

/// How reference profiles are built.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProfileOptions {
    /// Number of quantile bins for numeric features (default 10, deciles).
    pub bins: usize,
    /// Numeric features with at most this many distinct reference values are discrete:
    /// each value gets its own bin and the automatic method is chi-squared (default 10).
    pub discrete_max_distinct: usize,
    /// Largest number of sorted reference values kept per numeric feature (default 1 000 000,
    /// 8 MB). Above it the profile keeps evenly spaced order statistics, so memory is bounded
    /// per feature whatever the reference size; the reference CDF is then known to within
    /// 1 / max_reference_values, and KS p-values are those of a reference of this size
    /// (conservative).
    pub max_reference_values: usize,
}

impl Default for ProfileOptions {
    fn default() -> Self {
        Self {
            bins: DEFAULT_BINS,
            discrete_max_distinct: 10,
            max_reference_values: 1_000_000,
        }
    }
}

/// Null and non-finite counts of a column.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingCounts {
    /// Rows in the column.
    pub rows: u64,
    /// Nulls (NaN included for numeric columns).
    pub nulls: u64,
    /// +inf / -inf values (numeric only).
    pub non_finite: u64,
}

impl MissingCounts {
    /// Rows that take part in the distribution tests.
    pub fn valid(&self) -> u64 {
        self.rows - self.nulls - self.non_finite
    }

    /// Share of null rows (0 for an empty column).
    pub fn null_rate(&self) -> f64 {
        if self.rows == 0 {
            0.0
        } else {
            self.nulls as f64 / self.rows as f64
        }
    }
}

/// Reference profile of a numeric feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericProfile {
    /// Sorted finite reference values (possibly a bounded set of order statistics).
    pub sorted: SortedReference,
    /// True when `sorted` holds order statistics rather than every value.
    pub sampled: bool,
    /// Bin edges (quantiles of the reference, or one bin per value if discrete).
    pub edges: BinEdges,
    /// Reference counts per bin.
    pub bin_counts: Vec<u64>,
    /// Number of distinct finite reference values.
    pub distinct: u64,
    /// True when `distinct <= discrete_max_distinct`.
    pub discrete: bool,
    /// Mean of the finite values (None if there are none).
    pub mean: Option<f64>,
    /// Population standard deviation (ddof = 0, as `np.std`) of the finite values.
    pub std: Option<f64>,
    /// Smallest finite value.
    pub min: Option<f64>,
    /// Largest finite value.
    pub max: Option<f64>,
}

/// Reference profile of a categorical or boolean feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalProfile {
    /// Categories seen in the reference, sorted by name.
    pub categories: Vec<String>,
    /// Reference count per category.
    pub counts: Vec<u64>,
    #[serde(skip)]
    pub(crate) index: CategoryIndex,
}

/// Kind-specific part of a feature profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind_detail")]
pub enum ProfileDetail {
    /// Numeric feature.
    Numeric(NumericProfile),
    /// Categorical or boolean feature.
    Categorical(CategoricalProfile),
}

/// Reference profile of one feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureProfile {
    /// Feature name.
    pub name: String,
    /// Feature kind.
    pub kind: FeatureKind,
    /// Rows, nulls and non-finite values of the reference column.
    pub missing: MissingCounts,
    /// Distribution summary.
    pub detail: ProfileDetail,
}

/// Reference profile of a dataset: one [`FeatureProfile`] per feature, in input order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceProfile {
    /// Options the profile was built with.
    pub options: ProfileOptions,
    /// Per-feature profiles.
    pub features: Vec<FeatureProfile>,
}

impl PartialEq for CategoryIndex {
    fn eq(&self, _: &Self) -> bool {
        true // derived from `categories`, which is compared
    }
}

impl ReferenceProfile {
    /// Profiles every `(name, column)` of the reference.
    pub fn build(columns: &[(&str, Column<'_>)], options: ProfileOptions) -> Self {
        let features = crate::parallel::parallel_map(columns, |(name, col)| {
            FeatureProfile::build(name, *col, &options)
        });
        Self { options, features }
    }

    /// Rebuilds lookup structures skipped by serialisation; call after deserialising.
    pub fn prepare(&mut self) {
        for f in &mut self.features {
            match &mut f.detail {
                ProfileDetail::Numeric(n) => n.sorted.build_slots(),
                ProfileDetail::Categorical(c) => c.index = CategoryIndex::new(&c.categories),
            }
        }
    }

    /// The profile of a feature, by name.
    pub fn feature(&self, name: &str) -> Option<&FeatureProfile> {
        self.features.iter().find(|f| f.name == name)
    }
}

/// The smallest f64 greater than `x` (finite `x`).
pub(crate) fn next_up(x: f64) -> f64 {
    if x == 0.0 {
        return f64::from_bits(1);
    }
    let b = x.to_bits();
    if x > 0.0 {
        f64::from_bits(b + 1)
    } else {
        f64::from_bits(b - 1)
    }
}

/// Numeric values of a column as f64 with NaN for null, plus missing counts.
pub(crate) fn numeric_values<'a>(
    col: &'a [f64],
    opt: Option<&[Option<f64>]>,
    owned: &'a mut Vec<f64>,
) -> (&'a [f64], MissingCounts) {
    let values: &[f64] = match opt {
        Some(o) => {
            owned.clear();
            owned.extend(o.iter().map(|v| v.unwrap_or(f64::NAN)));
            owned
        }
        None => col,
    };
    let mut m = MissingCounts {
        rows: values.len() as u64,
        ..Default::default()
    };
    for &x in values {
        if x.is_nan() {
            m.nulls += 1;
        } else if x.is_infinite() {
            m.non_finite += 1;
        }
    }
    (values, m)
}

pub(crate) fn categorical_values<'a>(
    col: Column<'a>,
) -> Box<dyn Iterator<Item = Option<&'a str>> + 'a> {
    match col {
        Column::Categorical(v) => Box::new(v.iter().copied()),
        Column::Boolean(v) => Box::new(
            v.iter()
                .map(|b| b.map(|b| if b { "true" } else { "false" })),
        ),
        _ => Box::new(std::iter::empty()),
    }
}

impl FeatureProfile {
    /// Profiles one reference column.
    pub fn build(name: &str, column: Column<'_>, options: &ProfileOptions) -> Self {
        let kind = column.kind();
        match column {
            Column::Numeric(_) | Column::NumericOpt(_) => {
                let mut owned = Vec::new();
                let (values, missing) = match column {
                    Column::Numeric(v) => numeric_values(v, None, &mut owned),
                    Column::NumericOpt(o) => numeric_values(&[], Some(o), &mut owned),
                    _ => unreachable!("matched above"),
                };
                let mut sorted: Vec<f64> =
                    values.iter().copied().filter(|x| x.is_finite()).collect();
                sorted.sort_unstable_by(f64::total_cmp);
                let n = sorted.len();
                let (mean, std) = if n == 0 {
                    (None, None)
                } else {
                    let mean = sorted.iter().sum::<f64>() / n as f64;
                    let var = sorted.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
                    (Some(mean), Some(var.sqrt()))
                };
                let mut distinct_values: Vec<f64> = Vec::new();
                let mut distinct = 0u64;
                for (i, &x) in sorted.iter().enumerate() {
                    if i == 0 || x != sorted[i - 1] {
                        distinct += 1;
                        if distinct_values.len() <= options.discrete_max_distinct {
                            distinct_values.push(x);
                        }
                    }
                }
                let discrete = n > 0 && distinct as usize <= options.discrete_max_distinct;
                let edges = if discrete {
                    // One bin per reference value, and bins for anything between or beyond:
                    // exact frequencies for discrete data, new values never hidden in a
                    // reference value's bin.
                    BinEdges::from_edges(
                        distinct_values
                            .iter()
                            .flat_map(|&u| [u, next_up(u)])
                            .collect(),
                    )
                } else {
                    BinEdges::from_sorted_reference(&sorted, options.bins)
                };
                let bin_counts = edges.counts(&sorted);
                let sampled = n > options.max_reference_values && options.max_reference_values > 0;
                let reference = if sampled {
                    let k = options.max_reference_values;
                    let picked: Vec<f64> = (0..k)
                        .map(|i| sorted[((i as f64 + 0.5) * n as f64 / k as f64) as usize])
                        .collect();
                    SortedReference::from_sorted(&picked)
                } else {
                    SortedReference::from_sorted(&sorted)
                };
                FeatureProfile {
                    name: name.to_string(),
                    kind,
                    missing,
                    detail: ProfileDetail::Numeric(NumericProfile {
                        sorted: reference,
                        sampled,
                        edges,
                        bin_counts,
                        distinct,
                        discrete,
                        mean,
                        std,
                        min: sorted.first().copied(),
                        max: sorted.last().copied(),
                    }),
                }
            }
            Column::Categorical(_) | Column::Boolean(_) => {
                let empty = CategoryIndex::default();
                let (table, nulls) = empty.count(categorical_values(column));
                // Against an empty index everything is "unseen": that is the category list.
                let mut cats = table.unseen;
                cats.sort();
                let categories: Vec<String> = cats.iter().map(|(c, _)| c.clone()).collect();
                let counts = cats.iter().map(|(_, n)| *n).collect();
                FeatureProfile {
                    name: name.to_string(),
                    kind,
                    missing: MissingCounts {
                        rows: column.len() as u64,
                        nulls,
                        non_finite: 0,
                    },
                    detail: ProfileDetail::Categorical(CategoricalProfile {
                        index: CategoryIndex::new(&categories),
                        categories,
                        counts,
                    }),
                }
            }
        }
    }
}
