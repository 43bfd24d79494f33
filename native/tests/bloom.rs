//! The Bloom filter of evicted engagers (sketch.rs) against scoring/sketch.py: the same bits
//! for the same ids (the vectors below are Python's `format(bits, "x")`), no false negatives,
//! and membership that does not depend on the order ids were added in.

use _native::sketch::Bloom;
use proptest::prelude::*;

/// (id, bits of that id alone, bits after adding it to all the ids above), from
/// `scoring.sketch.add` in Python.
const PYTHON: [(&str, &str, &str); 4] = [
    (
        "alice",
        "500000000000000000000000000000000000000000000000000000000002000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000004000000000000000000000000000000000000000000000000000",
        "500000000000000000000000000000000000000000000000000000000002000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000004000000000000000000000000000000000000000000000000000",
    ),
    (
        "bob",
        "100000000000000000000000000000100000100000000000040000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "100000000000000500000000000000100000100000000000040000000000000000000000002000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000004000000000000000000000000000000000000000000000000000",
    ),
    (
        "223789",
        "400000000000000000000000000000000000000000000000000002000000000000000000000000000000000000000000000000000000000000001000000000000000010000000000000000000000000000",
        "100000000000000500000000000000100000100000000000040000000000400000000000002000000000000000000000000000000000000002000000000000000000000000000000000000000000000000000000004000001000000000000000010000000000000000000000000000",
    ),
    (
        "ü-user",
        "4000000000000000000000000000000000000000080000000000000000000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000000000000001000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "4000000000000000000000000000100000000000080500000000000000100000100000000000040000000000400000010000002000000000000000000000000000000000000002000000000000000000000000001000000000000000000000000000004000001000000000000000010000000000000000000000000000",
    ),
];

#[test]
fn sets_the_bits_python_sets() {
    let mut all = Bloom::default();
    for (user, alone, together) in PYTHON {
        let mut one = Bloom::default();
        one.add(user);
        assert_eq!(one.hex(), alone, "{user}");
        all.add(user);
        assert_eq!(all.hex(), together, "after {user}");
    }
    assert!(all.might_contain("bob"));
    assert!(!all.might_contain("carol"));
}

#[test]
fn empty_filter_holds_nothing() {
    let empty = Bloom::default();
    assert!(empty.is_empty());
    assert_eq!(empty.hex(), "0");
    assert!(!empty.might_contain(""));
    assert!(!empty.might_contain("alice"));
}

proptest! {
    #[test]
    fn no_false_negatives(users in prop::collection::vec(".{0,20}", 1..60)) {
        let mut bloom = Bloom::default();
        for user in &users {
            bloom.add(user);
        }
        prop_assert!(!bloom.is_empty());
        for user in &users {
            prop_assert!(bloom.might_contain(user));
        }
    }

    #[test]
    fn order_does_not_matter(users in prop::collection::vec("[a-z0-9]{1,12}", 0..40)) {
        let (mut forward, mut backward) = (Bloom::default(), Bloom::default());
        for user in &users {
            forward.add(user);
        }
        for user in users.iter().rev() {
            backward.add(user);
        }
        prop_assert_eq!(forward.hex(), backward.hex());
    }

    #[test]
    fn an_id_sets_at_most_four_bits(user in ".{0,30}") {
        let mut one = Bloom::default();
        one.add(&user);
        let ones: u32 = one
            .hex()
            .chars()
            .map(|c| c.to_digit(16).expect("hex digit").count_ones())
            .sum();
        prop_assert!((1..=4).contains(&ones));
    }
}
