//! No input makes `cyview::format` panic or run away: random format strings (the format
//! alphabet, arbitrary bytes, nested braces and repeats, huge numbers) against ordinary and
//! odd dtypes, pathological strings on which Cython itself would loop for ages (the work,
//! counted in steps, stays linear in the string's length), and `TypeInfo`s no Cython
//! generates (cyclic, too deep), which are errors rather than aborts.
//!
//! The property test runs 100,000 cases by default (`PROPTEST_CASES` overrides it); each case
//! checks one string against every dtype below.

use std::ffi::c_char;

use cyview::format::{
    check_format, check_format_outcome, check_format_outcome_full, check_format_steps,
    pep3118_format, InvalidDtype, Outcome, StructField, TypeGroup, TypeInfo, CHAR, DOUBLE,
    DOUBLE_COMPLEX, FLOAT_COMPLEX, INT, LONG_DOUBLE, MAX_DTYPE_DEPTH, OVERFLOW_MESSAGE,
    PYTHON_OBJECT, UNSIGNED_CHAR,
};
use cyview::{struct_type_info, Error, ErrorKind};
use proptest::prelude::*;

mod common;

// Point, FirstNested and Pair are formats.pyx's (`common::dtypes`); the two below are this
// test's own.
use common::dtypes::{Pair, FIRST_NESTED, PAIR, POINT};

/// `Deep` of formats.pyx with an array and a char-array field more, to exercise nested
/// arrays inside a nested struct.
#[allow(dead_code)]
#[repr(C)]
struct DeepWithArrays {
    tag: c_char,
    f: common::dtypes::FirstNested,
    arr: [[f64; 3]; 2],
    name: [c_char; 4],
}

#[allow(dead_code)]
#[repr(C)]
struct HasPair {
    c: c_char,
    p: Pair,
}

const DOUBLE_2_3: TypeInfo = DOUBLE.array(&[2, 3]);
const CHAR_4: TypeInfo = CHAR.array(&[4]);
const DEEP: &TypeInfo = struct_type_info!(DeepWithArrays as "Deep" {
    tag: &CHAR, f: FIRST_NESTED, arr: &DOUBLE_2_3, name: &CHAR_4,
});
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

// TypeInfos no Cython generates and the check refuses: a struct whose field is itself, two
// structs that contain each other (through a second field), a complex-like struct whose field
// is itself.
static CYCLIC: TypeInfo = TypeInfo {
    name: "Cyclic",
    fields: &[StructField {
        ty: &CYCLIC,
        name: "next",
        offset: 0,
    }],
    size: 8,
    arraysize: &[],
    group: TypeGroup::Struct,
    is_unsigned: false,
    packed: false,
};
static NODE_A: TypeInfo = TypeInfo {
    name: "NodeA",
    fields: &[
        StructField {
            ty: &INT,
            name: "v",
            offset: 0,
        },
        StructField {
            ty: &NODE_B,
            name: "b",
            offset: 8,
        },
    ],
    size: 16,
    arraysize: &[],
    group: TypeGroup::Struct,
    is_unsigned: false,
    packed: false,
};
static NODE_B: TypeInfo = TypeInfo {
    name: "NodeB",
    fields: &[StructField {
        ty: &NODE_A,
        name: "a",
        offset: 0,
    }],
    size: 16,
    arraysize: &[],
    group: TypeGroup::Struct,
    is_unsigned: false,
    packed: false,
};
static CYCLIC_COMPLEX: TypeInfo = TypeInfo {
    name: "CyclicComplex",
    fields: &[StructField {
        ty: &CYCLIC_COMPLEX,
        name: "re",
        offset: 0,
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
        &CYCLIC,
    ]
}

/// What `check_format` gives for an outcome: the exception, with its full message.
fn as_result(outcome: &Outcome) -> Result<(), Error> {
    match outcome {
        Outcome::Accepted => Ok(()),
        Outcome::Raised(e) => Err(e.clone()),
        Outcome::CharOutOfRange => Err(Error::new(ErrorKind::OverflowError, OVERFLOW_MESSAGE)),
        Outcome::Undefined(u) => Err(Error::new(ErrorKind::ValueError, u.message())),
        Outcome::InvalidDtype(d) => Err(Error::new(ErrorKind::ValueError, d.message())),
        other => panic!("unknown outcome {other:?}"),
    }
}

/// Runs both entry points and checks they agree.
fn check_all(fmt: &[u8]) {
    for ty in dtypes() {
        let outcome = check_format_outcome(fmt, ty);
        assert_eq!(
            check_format(fmt, ty),
            as_result(&outcome),
            "{fmt:?} on {}",
            ty.name
        );
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
        _ => out.extend_from_slice(if pick.is_multiple_of(2) {
            b"}"
        } else {
            b":name:"
        }),
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

/// The most work (`check_format_steps`: bytes read, chunk-loop iterations, pass and segment
/// bookkeeping) the check may do per byte of the format string, plus one. Cython runs the
/// strings below for 9**40 or 2**64 passes, or re-reads a string at every depth.
const STEPS_PER_BYTE: u64 = 12;

/// The steps per byte of `fmt` on the dtype of `tys` that takes the most, after checking that
/// each is within [`STEPS_PER_BYTE`] and the entry points agree.
fn worst_steps_per_byte(fmt: &[u8], tys: &[&'static TypeInfo]) -> f64 {
    let mut worst = 0.0f64;
    for &ty in tys {
        let (outcome, steps) = check_format_steps(fmt, ty);
        assert_eq!(outcome, check_format_outcome_full(fmt, ty));
        assert_eq!(check_format(fmt, ty), as_result(&outcome), "{}", ty.name);
        let len = fmt.len() as u64 + 1;
        assert!(
            steps <= STEPS_PER_BYTE * len,
            "{:?}... ({} bytes) on {}: {steps} steps, more than {STEPS_PER_BYTE} per byte",
            String::from_utf8_lossy(&fmt[..fmt.len().min(40)]),
            fmt.len(),
            ty.name
        );
        worst = worst.max(steps as f64 / len as f64);
    }
    worst
}

/// `"{count}T{" * depth + inner + "}" * depth + "d"`.
fn nested(count: &str, depth: usize, inner: &str) -> Vec<u8> {
    let mut s = format!("{count}T{{").repeat(depth);
    s.push_str(inner);
    s.push_str(&"}".repeat(depth));
    s.push('d');
    s.into_bytes()
}

/// `open * depth + core + close * depth`.
fn family(open: &str, core: &str, close: &str, depth: usize) -> Vec<u8> {
    let mut s = open.repeat(depth);
    s.push_str(core);
    s.push_str(&close.repeat(depth));
    s.into_bytes()
}

/// Strings on which Cython loops for ages (nested repeats: 9**40 passes) or recurses deeply:
/// the check's work stays within a small multiple of their length.
#[test]
fn pathological_format_strings_take_linear_steps() {
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
        b"1000000T{9T{x}}d".to_vec(),
        b"2147483647T{2147483647T{x}7x}d".to_vec(),
        // A `0` that reaches each level's second pass makes it end inside the next level's
        // `T{x}`: the loop above then reads the rest of the nest again, at every depth.
        family("T{x}2T{", "0", "}^", 2_000),
        family("16T{T{5}", "0", "}^", 2_000),
    ];
    for fmt in &cases {
        worst_steps_per_byte(fmt, &dtypes());
    }
}

/// The input, 25,600 nested `2147483647T{` around an `x` (333 KB): the work is
/// linear, and the outcome is the one of the same family at depth 50, as the implementation
/// before the work bound gave at both depths (it took 2.3 s per dtype on this, release build).
#[test]
fn deeply_nested_repeat_format_is_linear() {
    let family = |depth: usize| {
        let mut s = "2147483647T{".repeat(depth);
        s.push('x');
        s.push_str(&"}".repeat(depth));
        s.push('d');
        s.into_bytes()
    };
    // The `x` advances by 1, each level repeats that 2147483647 times (wrapping), and the `d`
    // aligns to 8.
    let offset = |depth: usize| {
        let mut at: usize = 1;
        for _ in 0..depth {
            at = at.wrapping_mul(2147483647);
        }
        (at.wrapping_add(7) & !7) as isize
    };
    let mismatch = |at: isize| {
        Outcome::Raised(Error::new(
            ErrorKind::ValueError,
            format!("Buffer dtype mismatch; next field is at offset {at} but 0 expected"),
        ))
    };
    // Given by the implementation this replaces, at both depths.
    assert_eq!(offset(50), 4611685911053205512);
    assert_eq!(offset(25_600), -54975581388792);
    let small = family(50);
    let fmt = family(25_600);
    assert_eq!(fmt.len(), 332_802);
    for ty in dtypes() {
        let (outcome, steps) = check_format_steps(&fmt, ty);
        assert!(
            steps <= STEPS_PER_BYTE * (fmt.len() as u64 + 1),
            "{}: {steps} steps",
            ty.name
        );
        // Same outcome as at depth 50, but for the offset the machine reached.
        let expected = match check_format_outcome(&small, ty) {
            o if o == mismatch(offset(50)) => mismatch(offset(25_600)),
            o => o,
        };
        assert_eq!(outcome, expected, "{}", ty.name);
    }
    assert_eq!(
        check_format_outcome(&fmt, &DOUBLE),
        mismatch(-54975581388792)
    );
    assert_eq!(check_format_outcome(&fmt, PAIR), mismatch(-54975581388792));
}

/// The steps per byte stay flat as families of nested repeats get deeper (1,000, 10,000 and
/// 25,600 levels), including those Cython re-reads at every depth.
#[test]
fn per_byte_steps_do_not_grow_with_depth() {
    let families: &[(&str, &str, &str)] = &[
        ("2147483647T{", "x", "}"),
        ("9T{", "3x", "}"),
        ("1T{", "", "}"),
        ("T{x}2T{", "0", "}^"),
        ("2T{0}3T{", "0", "}^"),
        ("0T{2T{", "x", "}0}"),
    ];
    // A scalar, and a struct with nested and array fields.
    let tys = [&DOUBLE, DEEP];
    for &(open, core, close) in families {
        let per_byte: Vec<f64> = [1_000, 10_000, 25_600]
            .iter()
            .map(|&depth| worst_steps_per_byte(&family(open, core, close, depth), &tys))
            .collect();
        assert!(
            per_byte[2] <= per_byte[0] * 1.01 + 0.01,
            "{open:?}...{core:?}...{close:?}: steps per byte {per_byte:?} grow with depth"
        );
    }
}

/// `depth` structs nested through their first field around an `int` (built at run time, so
/// leaked): `struct L1 {int f;}`, `struct L2 {L1 f;}`, ...; with `fanout` fields per level
/// (all of the same type: a shared struct type, not a cycle).
fn chain(depth: usize, fanout: usize) -> &'static TypeInfo {
    let mut ty: &'static TypeInfo = &INT;
    for _ in 0..depth {
        let size = ty.size * fanout;
        let fields: Vec<StructField> = (0..fanout)
            .map(|i| StructField {
                ty,
                name: "f",
                offset: i * ty.size,
            })
            .collect();
        ty = Box::leak(Box::new(TypeInfo {
            name: "Level",
            fields: Box::leak(fields.into_boxed_slice()),
            size,
            arraysize: &[],
            group: TypeGroup::Struct,
            is_unsigned: false,
            packed: false,
        }));
    }
    ty
}

/// A `static` TypeInfo whose field's type is itself (or leads back to it) made the check
/// recurse and allocate until the process aborted; now it is a `ValueError` saying so, for
/// every format string, and `pep3118_format` gives `None`.
#[test]
fn self_referential_type_info_is_an_error_not_an_abort() {
    let message = "Unsupported buffer dtype: its TypeInfo is cyclic \
                   (a struct field's type leads back to the struct)";
    assert_eq!(InvalidDtype::Cyclic.message(), message);
    let formats: [&[u8]; 6] = [
        b"",
        b"}",
        b"d",
        b"T{T{T{i}}}",
        b"T{i:v:T{T{i:v:}:a:}:b:}",
        b"Zd",
    ];
    for ty in [&CYCLIC, &NODE_A, &NODE_B, &CYCLIC_COMPLEX] {
        for fmt in formats {
            assert_eq!(
                check_format_outcome(fmt, ty),
                Outcome::InvalidDtype(InvalidDtype::Cyclic),
                "{} {fmt:?}",
                ty.name
            );
            let err = check_format(fmt, ty).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ValueError);
            assert_eq!(err.message(), message);
        }
        assert_eq!(pep3118_format(ty), None, "{}", ty.name);
    }
}

/// Structs nested more than `MAX_DTYPE_DEPTH` levels are refused with their own message; up to
/// that depth they are checked as Cython does.
#[test]
fn type_info_nested_too_deep_is_an_error() {
    assert_eq!(MAX_DTYPE_DEPTH, 64);
    let deepest = chain(MAX_DTYPE_DEPTH, 1);
    let format = pep3118_format(deepest).unwrap();
    assert_eq!(
        format,
        format!("^{}i{}", "T{".repeat(64), ":f:}".repeat(64))
    );
    assert_eq!(
        check_format_outcome(format.as_bytes(), deepest),
        Outcome::Accepted
    );
    assert_eq!(check_format_outcome(b"i", deepest), Outcome::Accepted);

    let too_deep = chain(MAX_DTYPE_DEPTH + 1, 1);
    let message = "Unsupported buffer dtype: its TypeInfo nests structs more than 64 levels deep";
    assert_eq!(InvalidDtype::TooDeep.message(), message);
    assert_eq!(
        check_format_outcome(b"i", too_deep),
        Outcome::InvalidDtype(InvalidDtype::TooDeep)
    );
    assert_eq!(
        check_format(format.as_bytes(), too_deep),
        Err(Error::new(ErrorKind::ValueError, message))
    );
    assert_eq!(pep3118_format(too_deep), None);
}

/// A struct type shared by both fields at each of 60 levels describes 2**60 ints: the check
/// follows each type once, and `pep3118_format` gives up (its string would exceed 16 MiB)
/// instead of allocating without bound.
#[test]
fn shared_struct_types_are_followed_once() {
    let wide = chain(60, 2);
    assert_eq!(wide.size, 4 << 60);
    let (outcome, steps) = check_format_steps(b"ii", wide);
    assert_eq!(
        outcome,
        Outcome::Raised(Error::new(
            ErrorKind::ValueError,
            "Buffer dtype mismatch, expected 'int' but got end in 'Level.f'"
        ))
    );
    assert!(steps < 1_000, "{steps}");
    assert_eq!(pep3118_format(wide), None);
}
