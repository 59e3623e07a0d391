//! Grid counts (the server's per-hour drift state) against the value-based statistics on the
//! same rows: bins and out-of-range counts exact, KS exact when the grid holds every reference
//! value and otherwise within the mass of one gap, Wasserstein within its stated bound, and
//! merging parts equal to counting the whole.

use modelwatch_stats::drift::*;
use proptest::prelude::*;

fn profile_of(reference: &[f64]) -> NumericProfile {
    let p = ReferenceProfile::build(
        &[("x", Column::Numeric(reference))],
        ProfileOptions::default(),
    );
    match p.features.into_iter().next().unwrap().detail {
        ProfileDetail::Numeric(np) => np,
        _ => unreachable!("numeric column"),
    }
}

fn counted(grid: &Grid, values: &[f64]) -> GridCounts {
    let mut c = grid.counts();
    for &x in values {
        grid.observe(&mut c, x);
    }
    c
}

/// Per gap [points[b-1], points[b]) (gap 0 below the first point, the last one above the
/// last point): the share of `values` in it.
fn gap_mass(points: &[f64], values: &[f64]) -> Vec<f64> {
    let mut m = vec![0.0; points.len() + 1];
    for &x in values {
        m[points.partition_point(|&p| p <= x)] += 1.0 / values.len() as f64;
    }
    m
}

fn check(reference: &[f64], current: &[f64], cut: usize) -> Result<(), TestCaseError> {
    let np = profile_of(reference);
    let grid = Grid::of_profile(&np);
    let whole = counted(&grid, current);
    // Merging parts gives the same counts, and the same area sums to the bit (they are exact).
    let cut = cut % (current.len() + 1);
    let mut merged = counted(&grid, &current[..cut]);
    merged.merge(&counted(&grid, &current[cut..]));
    prop_assert_eq!(&merged.count, &whole.count);
    prop_assert_eq!(&merged.at_left, &whole.at_left);
    prop_assert_eq!(&merged.below_area, &whole.below_area);
    prop_assert_eq!(&merged.above_area, &whole.above_area);
    // And counting the values backwards too.
    let reversed: Vec<f64> = current.iter().rev().copied().collect();
    prop_assert_eq!(&counted(&grid, &reversed), &whole);

    prop_assert_eq!(
        grid.bin_counts(&whole, np.edges.len()),
        np.edges.counts(current)
    );
    let (lo, hi) = (np.min.unwrap(), np.max.unwrap());
    let out = current.iter().filter(|&&x| x < lo || x > hi).count() as u64;
    prop_assert_eq!(grid.out_of_range(&whole), out);

    let exact = ks_2samp(reference, current).unwrap();
    let got = grid.ks(&whole).unwrap();
    let points = grid.points();
    let (rm, cm) = (gap_mass(points, reference), gap_mass(points, current));
    if grid.is_complete() {
        prop_assert!(
            (got.statistic - exact.statistic).abs() <= 1e-12,
            "{} vs {}",
            got.statistic,
            exact.statistic
        );
        prop_assert!((got.p_value - exact.p_value).abs() <= 1e-9);
    } else {
        let slack = rm.iter().chain(&cm).copied().fold(0.0, f64::max);
        prop_assert!(got.statistic <= exact.statistic + 1e-12);
        prop_assert!(
            exact.statistic - got.statistic <= slack + 1e-12,
            "{} vs {} (slack {})",
            got.statistic,
            exact.statistic,
            slack
        );
    }

    let w_exact = wasserstein_distance(reference, current).unwrap();
    let w = grid.wasserstein(&whole).unwrap();
    // Inside each gap: at most its width times both samples' mass there.
    let bound: f64 = (1..points.len())
        .map(|b| (points[b] - points[b - 1]) * (rm[b] + cm[b]))
        .sum();
    prop_assert!(
        (w - w_exact).abs() <= bound + 1e-9 * (1.0 + w_exact),
        "{} vs {} (bound {})",
        w,
        w_exact,
        bound
    );
    Ok(())
}

/// Deterministic bell-shaped values around `mu` (sum of four uniforms, an LCG).
fn bell(seed: u64, n: usize, mu: f64) -> Vec<f64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            let mut acc = 0.0;
            for _ in 0..4 {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                acc += (s >> 11) as f64 / (1u64 << 53) as f64;
            }
            mu + (acc - 2.0)
        })
        .collect()
}

fn continuous(max: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(-1000.0f64..1000.0, 2..max)
}

fn discrete(max: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec((-20i32..20).prop_map(|v| f64::from(v) / 2.0), 2..max)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    /// Up to 200 distinct reference values: the grid holds them all.
    #[test]
    fn complete_grid_is_exact(r in continuous(200), c in continuous(300), shift in -300.0f64..300.0, cut in any::<usize>()) {
        let c: Vec<f64> = c.iter().map(|x| x * 0.7 + shift).collect();
        check(&r, &c, cut)?;
    }

    /// Ties and values between and beyond the reference's (few distinct values).
    #[test]
    fn discrete_values_are_exact(r in discrete(400), c in discrete(400), cut in any::<usize>()) {
        check(&r, &c, cut)?;
    }

    /// More distinct reference values than grid points: bounded error.
    #[test]
    fn large_reference_is_within_one_gap(r in continuous(3000), c in continuous(2000), shift in -300.0f64..300.0, cut in any::<usize>()) {
        prop_assume!(r.len() > 2 * GRID_POINTS);
        let c: Vec<f64> = c.iter().map(|x| x + shift).collect();
        check(&r, &c, cut)?;
    }
}

#[test]
fn a_shifted_million_rows_against_a_large_reference() {
    // Deterministic normal-ish data: KS on the grid within 1/256 of the exact statistic.
    let r = bell(1, 100_000, 0.0);
    let c = bell(2, 1_000_000, 0.05);
    let np = profile_of(&r);
    let grid = Grid::of_profile(&np);
    assert!(!grid.is_complete());
    let got = grid.ks(&counted(&grid, &c)).unwrap().statistic;
    let exact = ks_2samp(&r, &c).unwrap().statistic;
    assert!(
        got <= exact + 1e-12 && exact - got < 1.0 / 256.0,
        "{got} vs {exact}"
    );
}

/// Cramér-von Mises on the grid against the value-based test: close on a large reference
/// (values inside gaps taken at the middle), the same verdict on a shift and on no shift.
#[test]
fn cramer_von_mises_on_the_grid_is_close_to_the_values() {
    let r = bell(1, 20_000, 0.0);
    let np = profile_of(&r);
    let grid = Grid::of_profile(&np);
    for (seed, mu) in [(2, 0.0), (3, 0.02), (4, 0.1), (5, 0.5)] {
        let c = bell(seed, 5_000, mu);
        let exact = cramer_von_mises(&r, &c).unwrap();
        let got = grid.cvm(&counted(&grid, &c)).unwrap();
        eprintln!(
            "mu {mu}: grid T {} p {} | exact T {} p {}",
            got.statistic, got.p_value, exact.statistic, exact.p_value
        );
        assert!(
            (got.statistic - exact.statistic).abs() <= 0.02 * exact.statistic + 0.01,
            "mu {mu}: {} vs {}",
            got.statistic,
            exact.statistic
        );
        assert_eq!(got.p_value < 0.05, exact.p_value < 0.05, "mu {mu}");
    }
}

/// A numeric reference column without one finite value (all null) has an empty grid: windows
/// are still counted and every statistic is undefined, nothing panics.
#[test]
fn an_empty_reference_grid_counts_and_answers_nothing() {
    let r: Vec<Option<f64>> = vec![None; 50];
    let p = ReferenceProfile::build(&[("x", Column::NumericOpt(&r))], ProfileOptions::default());
    let ProfileDetail::Numeric(np) = &p.features[0].detail else {
        panic!("numeric")
    };
    let grid = Grid::of_profile(np);
    assert!(grid.points().is_empty());
    let c = counted(&grid, &[1.0, 2.0, -3.0]);
    assert_eq!(c.n, 3);
    assert_eq!(grid.bin_counts(&c, np.edges.len()).iter().sum::<u64>(), 3);
    assert_eq!(grid.out_of_range(&c), 0);
    assert!(grid.ks(&c).is_none());
    assert!(grid.wasserstein(&c).is_none());
    assert!(grid.cvm(&c).is_none());
}
