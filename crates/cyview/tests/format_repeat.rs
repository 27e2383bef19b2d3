//! The repeat accelerator (`src/format/repeat.rs`) against the plain walk: on every format
//! string built from a vocabulary of sub-struct repeats, counts, paddings, packing modes and type
//! characters (all strings of up to three tokens, then pseudo-random longer ones from a fixed
//! seed), the check with the accelerator gives the outcome of the check that walks every pass of
//! `NT{...}` as Cython does (`check_format_plain`), wherever the plain walk finishes within its
//! step budget. The plain walk is the mirror of `__Pyx_BufFmt_CheckString` without the
//! accelerator; the golden vectors of `tests/format_golden.rs` tie that mirror to compiled
//! Cython.

mod common;

use common::rng::Rng;
use cyview::format::{
    check_format_outcome_full, check_format_plain, Outcome, TypeInfo, Undefined, CHAR, DOUBLE, INT,
    SHORT,
};
use cyview::struct_type_info;

/// Steps the plain walk may take on one string (the accelerated check takes at most 12 per
/// byte; the plain walk of nested repeats takes the product of their counts).
const PLAIN_BUDGET: u64 = 200_000;

#[repr(C)]
struct Point {
    x: i32,
    y: i32,
}

#[repr(C)]
struct Pair {
    re: f64,
    im: f64,
}

#[repr(C)]
struct Padded {
    c: i8,
    d: f64,
}

#[repr(C)]
struct Outer {
    n: i32,
    p: Point,
    d: f64,
}

#[repr(C)]
struct Mixed {
    a: i8,
    b: i32,
    c: i16,
    d: f64,
    e: i8,
    f: f64,
    g: i32,
    h: i32,
}

#[repr(C)]
struct Arr {
    a: [f64; 3],
    n: i32,
}

const POINT: &TypeInfo = struct_type_info!(Point as "Point" { x: &INT, y: &INT });
const PAIR: &TypeInfo = struct_type_info!(Pair as "Pair" { re: &DOUBLE, im: &DOUBLE });
const PADDED: &TypeInfo = struct_type_info!(Padded as "Padded" { c: &CHAR, d: &DOUBLE });
const OUTER: &TypeInfo = struct_type_info!(Outer as "Outer" { n: &INT, p: POINT, d: &DOUBLE });
const MIXED: &TypeInfo = struct_type_info!(Mixed as "Mixed" {
    a: &CHAR, b: &INT, c: &SHORT, d: &DOUBLE, e: &CHAR, f: &DOUBLE, g: &INT, h: &INT
});
const DOUBLE_3: TypeInfo = DOUBLE.array(&[3]);
const ARR: &TypeInfo = struct_type_info!(Arr as "Arr" { a: &DOUBLE_3, n: &INT });

fn dtypes() -> [(&'static str, &'static TypeInfo); 8] {
    [
        ("double", &DOUBLE),
        ("int", &INT),
        ("Point", POINT),
        ("Pair", PAIR),
        ("Padded", PADDED),
        ("Outer", OUTER),
        ("Arr", ARR),
        ("Mixed", MIXED),
    ]
}

/// The vocabulary: what changes the state a pass starts in (counts, `x`, packing modes, a type
/// chunk pending or processed, an array shape) and what ends or opens passes.
const TOKENS: &[&str] = &[
    "T{", "T{", "}", "}", "0", "1", "2", "3", "5", "x", "d", "i", "c", "h", "^", "@", "=", ":a:",
    "(3)", "Zd", " ", "0}", "T{0}", "x}",
];

/// The outcomes of both walks on `fmt`, compared: `true` when the plain walk finished.
fn agree(fmt: &[u8], counts: &mut Counts) -> bool {
    let mut all = true;
    for (name, ty) in dtypes() {
        let fast = check_format_outcome_full(fmt, ty);
        match check_format_plain(fmt, ty, PLAIN_BUDGET) {
            Some((plain, _)) => {
                assert_eq!(
                    fast,
                    plain,
                    "{:?} on {name}: the accelerated check differs from the plain walk",
                    String::from_utf8_lossy(fmt)
                );
                counts.compared += 1;
                if fast == Outcome::Accepted {
                    counts.accepted += 1;
                }
            }
            None => {
                counts.out_of_budget += 1;
                all = false;
            }
        }
    }
    all
}

#[derive(Debug, Default)]
struct Counts {
    compared: u64,
    accepted: u64,
    out_of_budget: u64,
}

#[test]
fn accelerated_check_agrees_with_plain_walk_on_all_short_strings() {
    let mut counts = Counts::default();
    let mut words: Vec<String> = vec![String::new()];
    for _ in 0..3 {
        let longer: Vec<String> = words
            .iter()
            .flat_map(|w| TOKENS.iter().map(move |t| format!("{w}{t}")))
            .collect();
        for w in &longer {
            agree(w.as_bytes(), &mut counts);
        }
        words = longer;
    }
    println!("all strings of up to 3 tokens: {counts:?}");
    assert_eq!(counts.out_of_budget, 0);
    assert!(counts.accepted > 100, "{counts:?}");
}

#[test]
fn accelerated_check_agrees_with_plain_walk_on_generated_strings() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut counts = Counts::default();
    for _ in 0..20_000 {
        let len = 4 + rng.below(20);
        let fmt: String = (0..len).map(|_| TOKENS[rng.below(TOKENS.len())]).collect();
        agree(fmt.as_bytes(), &mut counts);
    }
    println!("20,000 generated strings: {counts:?}");
    let total = counts.compared + counts.out_of_budget;
    assert!(counts.compared * 100 >= total * 95, "{counts:?}");
    assert!(counts.accepted > 100, "{counts:?}");
}

/// Strings built to reach the accelerator's paths: loops whose passes cycle through several
/// states, loops that end inside an enclosing pass (segments), `0T{`, and chunks inside
/// repeated passes.
#[test]
fn accelerated_check_agrees_with_plain_walk_on_nested_repeats() {
    let mut counts = Counts::default();
    let cores = [
        "x", "d", "ii", "2x^", "=i", "T{x}", "0T{x", "}x", "(3)d", "Zd",
    ];
    for depth in 1..=4 {
        for count in ["0", "1", "2", "3", "7"] {
            for core in cores {
                for close in ["}", "}^", "}x", "}d"] {
                    let fmt = format!(
                        "{}{core}{}",
                        format!("{count}T{{").repeat(depth),
                        close.repeat(depth)
                    );
                    agree(fmt.as_bytes(), &mut counts);
                    let fmt = format!(
                        "{}{count}{}",
                        "T{x}2T{".repeat(depth),
                        format!("{close}^").repeat(depth)
                    );
                    agree(fmt.as_bytes(), &mut counts);
                }
            }
        }
    }
    println!("nested repeats: {counts:?}");
    assert_eq!(counts.out_of_budget, 0);
}

/// Loops whose passes take one of two paths by the count a pass leaves for the next (a `0T{`
/// returns the pass at the inner `}`, an `NT{` at the outer one): their orbits cycle through
/// states that return at different places, so the loop's `ts_after_sub` depends on which pass
/// was the last (`3T{T{x}x0}` ends at the outer `}`, `2T{T{x}x0}` inside).
#[test]
fn accelerated_check_agrees_with_plain_walk_on_alternating_passes() {
    let mut counts = Counts::default();
    for count in 1..=9 {
        for body in [
            "T{x}x0",
            "T{x}0",
            "T{0}",
            "T{2x0}1x",
            "T{x}d0",
            "0T{x}x0",
            "T{x}x0T{x}0",
        ] {
            for tail in ["", "d", "}", "x}d", "0}^", "i", "2T{x}d"] {
                let fmt = format!("{count}T{{{body}}}{tail}");
                agree(fmt.as_bytes(), &mut counts);
                let fmt = format!("c{count}T{{{body}}}{tail}");
                agree(fmt.as_bytes(), &mut counts);
            }
        }
    }
    println!("alternating passes: {counts:?}");
    assert_eq!(counts.out_of_budget, 0);
}

/// A count that is negative as a C `int` repeats the sub-struct about 2**64 times: the
/// accelerator says so, and the plain walk does not finish.
#[test]
fn endless_repeat_is_where_the_plain_walk_never_ends() {
    for fmt in [
        &b"2147483648T{}d"[..],
        b"4294967294T{x}",
        b"2147483648T{2T{x}}",
    ] {
        assert_eq!(
            check_format_outcome_full(fmt, &DOUBLE),
            Outcome::Undefined(Undefined::EndlessRepeat),
            "{}",
            String::from_utf8_lossy(fmt)
        );
        assert_eq!(check_format_plain(fmt, &DOUBLE, PLAIN_BUDGET), None);
    }
}
