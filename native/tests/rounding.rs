//! `round2`, Python's `round(x, 2)` (model.rs): the fast path agrees with the exact decimal
//! expansion everywhere, and known Python results hold (ties of the exact binary value go
//! to even; values like 2.675 that print as ties are not ties).

use _native::model::round2;
use proptest::prelude::*;

/// The slow path alone: the exact binary value rounded to 2 decimals, then parsed back.
fn exact(x: f64) -> f64 {
    format!("{x:.2}").parse().expect("a decimal")
}

#[test]
fn known_python_results() {
    // round(x, 2) in CPython 3.11
    for (x, python) in [
        (2.675, 2.67),
        (0.125, 0.12),
        (0.375, 0.38),
        (1.005, 1.0),
        (-0.125, -0.12),
        (99.995, 100.0),
        (12.344999999999999, 12.34),
        (0.0, 0.0),
        (1e-12, 0.0),
        (1234567.891, 1234567.89),
    ] {
        assert_eq!(round2(x), python, "round({x}, 2)");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn fast_path_is_exact(x in -1e7f64..1e7) {
        prop_assert_eq!(round2(x).to_bits(), exact(x).to_bits());
    }

    #[test]
    fn near_ties_are_exact(cents in -1_000_000i64..1_000_000, nudge in -4i64..=4) {
        // k + 0.5 cents, and the doubles a few ulps either side of it
        let tie = (cents as f64 + 0.5) / 100.0;
        let x = f64::from_bits((tie.to_bits() as i64 + nudge) as u64);
        prop_assert_eq!(round2(x).to_bits(), exact(x).to_bits());
    }
}
