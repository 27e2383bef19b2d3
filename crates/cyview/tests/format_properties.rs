//! No input makes `cyview::format` panic or run away: random format strings (the format
//! alphabet, arbitrary bytes, nested braces and repeats, huge numbers) against ordinary and
//! odd dtypes, and pathological strings on which Cython itself would loop for ages.
//!
//! The property test runs 100,000 cases by default (`PROPTEST_CASES` overrides it); each case
//! checks one string against every dtype below.

use std::ffi::{c_char, c_int};
use std::time::{Duration, Instant};

use cyview::format::{
    check_format, check_format_outcome, Outcome, StructField, TypeGroup, TypeInfo, CHAR, DOUBLE,
    DOUBLE_COMPLEX, FLOAT_COMPLEX, INT, LONG_DOUBLE, PYTHON_OBJECT, UNSIGNED_CHAR,
};
use cyview::struct_type_info;
use proptest::prelude::*;

#[allow(dead_code)]
#[repr(C)]
struct Point {
    x: c_int,
    y: c_int,
}

#[allow(dead_code)]
#[repr(C)]
struct FirstNested {
    p: Point,
    z: c_int,
}

#[allow(dead_code)]
#[repr(C)]
struct Deep {
    tag: c_char,
    f: FirstNested,
    arr: [[f64; 3]; 2],
    name: [c_char; 4],
}

#[allow(dead_code)]
#[repr(C)]
struct Pair {
    re: f64,
    im: f64,
}

#[allow(dead_code)]
#[repr(C)]
struct HasPair {
    c: c_char,
    p: Pair,
}

const POINT: &TypeInfo = struct_type_info!(Point as "Point" { x: &INT, y: &INT });
const FIRST_NESTED: &TypeInfo =
    struct_type_info!(FirstNested as "FirstNested" { p: POINT, z: &INT });
const DOUBLE_2_3: TypeInfo = DOUBLE.array(&[2, 3]);
const CHAR_4: TypeInfo = CHAR.array(&[4]);
const DEEP: &TypeInfo = struct_type_info!(Deep as "Deep" {
    tag: &CHAR, f: FIRST_NESTED, arr: &DOUBLE_2_3, name: &CHAR_4,
});
const PAIR: &TypeInfo = struct_type_info!(Pair as "Pair" { re: &DOUBLE, im: &DOUBLE });
const HAS_PAIR: &TypeInfo = struct_type_info!(HasPair as "HasPair" { c: &CHAR, p: PAIR });

// TypeInfos Cython never generates, which a Rust caller can still build.
const EMPTY: TypeInfo = TypeInfo {
    name: "Empty",
    fields: &[],
    size: 0,
    arraysize: &[],
    group: TypeGroup::Struct,
    is_unsigned: false,
    packed: false,
};
const WITH_EMPTY: TypeInfo = TypeInfo {
    name: "WithEmpty",
    fields: &[
        StructField {
            ty: &INT,
            name: "a",
            offset: 0,
        },
        StructField {
            ty: &EMPTY,
            name: "e",
            offset: 4,
        },
        StructField {
            ty: &EMPTY,
            name: "f",
            offset: 4,
        },
    ],
    size: 4,
    arraysize: &[],
    group: TypeGroup::Struct,
    is_unsigned: false,
    packed: false,
};
const ZERO_SIZE: TypeInfo = TypeInfo {
    name: "zero",
    fields: &[],
    size: 0,
    arraysize: &[],
    group: TypeGroup::Real,
    is_unsigned: false,
    packed: false,
};
const ODD_ARRAY: TypeInfo = TypeInfo {
    name: "odd",
    fields: &[],
    size: 8,
    arraysize: &[usize::MAX, 0, 3, 1, 1, 1, 1, 1, 1, 2],
    group: TypeGroup::Real,
    is_unsigned: false,
    packed: false,
};
const ZERO_ARRAY: TypeInfo = DOUBLE.array(&[0, 3]);
const COMPLEX_WITH_BAD_FIELDS: TypeInfo = TypeInfo {
    name: "badcomplex",
    fields: &[StructField {
        ty: &EMPTY,
        name: "e",
        offset: usize::MAX,
    }],
    size: 16,
    arraysize: &[],
    group: TypeGroup::Complex,
    is_unsigned: false,
    packed: false,
};

fn dtypes() -> Vec<&'static TypeInfo> {
    vec![
        &DOUBLE,
        &CHAR,
        &UNSIGNED_CHAR,
        &LONG_DOUBLE,
        &FLOAT_COMPLEX,
        &DOUBLE_COMPLEX,
        &PYTHON_OBJECT,
        POINT,
        FIRST_NESTED,
        DEEP,
        PAIR,
        HAS_PAIR,
        &EMPTY,
        &WITH_EMPTY,
        &ZERO_SIZE,
        &ODD_ARRAY,
        &ZERO_ARRAY,
        &COMPLEX_WITH_BAD_FIELDS,
    ]
}

/// Runs both entry points and checks they agree.
fn check_all(fmt: &[u8]) {
    for ty in dtypes() {
        let outcome = check_format_outcome(fmt, ty);
        let result = check_format(fmt, ty);
        match (&outcome, &result) {
            (Outcome::Accepted, Ok(())) => {}
            (Outcome::Raised(e), Err(f)) => assert_eq!(e, f),
            (Outcome::CharOutOfRange | Outcome::Undefined(_), Err(_)) => {}
            (o, r) => panic!("{fmt:?} on {}: {o:?} but {r:?}", ty.name),
        }
    }
}

const ALPHABET: &[u8] = b"?cbBhHiIlLqQfdgOPspxZT{}(),:@=<>!^ \n\r\t\x0b\x0c0123456789wuea";
const HUGE: &[&str] = &[
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "4294967294",
    "99999999999",
    "18446744073709551616",
    "99999999999999999999999999",
];

/// One token of a format string from a random `u32`: mostly a character of the format
/// alphabet, else an arbitrary byte, a number (small, huge or wrapping), a repeated
/// sub-struct opening, an array shape, a closing brace or a name. (Decoding plain integers
/// keeps the generation cheap enough for 100,000 cases in a debug build.)
fn token(r: u32, out: &mut Vec<u8>) {
    let pick = (r >> 8) as usize;
    match r % 16 {
        0..=8 => out.push(ALPHABET[pick % ALPHABET.len()]),
        9 | 10 => out.push(r.to_le_bytes()[1]),
        11 => out.extend((r >> 4).to_string().bytes()),
        12 => out.extend(HUGE[pick % HUGE.len()].bytes()),
        13 => out.extend(format!("{}T{{", pick % 20).bytes()),
        14 => out.extend(format!("({},{})", pick % 5, (pick >> 4) % 5).bytes()),
        _ => out.extend_from_slice(if pick % 2 == 0 { b"}" } else { b":name:" }),
    }
}

fn format_string() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(any::<u32>(), 0..24).prop_map(|rs| {
            let mut s = Vec::new();
            for r in rs {
                token(r, &mut s);
            }
            s
        }),
        1 => prop::collection::vec(any::<u8>(), 0..32),
        // nested repeated sub-structs around a few tokens
        1 => (prop::collection::vec(any::<u32>(), 1..12), prop::collection::vec(any::<u32>(), 0..6))
            .prop_map(|(levels, tail)| {
                let mut s = Vec::new();
                for &r in &levels {
                    s.extend(format!("{}T{{", r % 40).bytes());
                    if r & (1 << 31) != 0 {
                        token(r >> 6, &mut s);
                    }
                }
                s.extend(std::iter::repeat_n(b'}', levels.len()));
                for r in tail {
                    token(r, &mut s);
                }
                s
            }),
    ]
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_format_strings_return(fmt in format_string()) {
        check_all(&fmt);
    }
}

/// Strings on which Cython loops for ages (nested repeats: 9**40 passes) or recurses deeply:
/// each answers at once here.
#[test]
fn pathological_format_strings_answer_quickly() {
    let nested = |count: &str, depth: usize, inner: &str| {
        let mut s = format!("{count}T{{").repeat(depth);
        s.push_str(inner);
        s.push_str(&"}".repeat(depth));
        s.push('d');
        s.into_bytes()
    };
    let long_digits = {
        let mut s = "9".repeat(1_000_000);
        s.push('d');
        s.into_bytes()
    };
    let cases: Vec<Vec<u8>> = vec![
        nested("9", 40, "x"),
        nested("9", 40, "3x"),
        nested("15", 30, "x:a:"),
        nested("2147483647", 20, "x"),
        nested("2147483648", 20, "x"),
        nested("7", 60, "T{x}2x"),
        "T{".repeat(100_000).into_bytes(),
        nested("1", 100_000, ""),
        nested("3", 1_000, "x"),
        long_digits,
        "(".repeat(100_000).into_bytes(),
        "1000000T{9T{x}}d".as_bytes().to_vec(),
        "2147483647T{2147483647T{x}7x}d".as_bytes().to_vec(),
    ];
    for fmt in &cases {
        let start = Instant::now();
        check_all(fmt);
        let took = start.elapsed();
        assert!(
            took < Duration::from_secs(10),
            "{:?}...: {took:?}",
            String::from_utf8_lossy(&fmt[..fmt.len().min(40)])
        );
    }
}
