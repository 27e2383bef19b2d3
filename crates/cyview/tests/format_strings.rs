//! `pep3118_format` writes, for every C type constant and for structs (padded, packed,
//! nested, with array fields), a format string that `check_format` — the mirror of
//! Cython's parser that `format_golden.rs` checks against real Cython — accepts for the same
//! dtype, and that names each field at its own offset. (Cython itself acquires Rust buffers
//! with these formats in the root package's `tests/export.rs`.)

use std::ffi::c_int;

use cyview::format::{self, check_format, pep3118_format, TypeInfo};
use cyview::struct_type_info;

#[allow(dead_code)]
#[repr(C)]
struct IntDouble {
    x: c_int,
    y: f64,
}

#[allow(dead_code)]
#[repr(C, packed)]
struct Packed {
    c: u8,
    d: f64,
    s: i16,
}

#[allow(dead_code)]
#[repr(C)]
struct Inner {
    a: u8,
    b: f32,
}

#[allow(dead_code)]
#[repr(C)]
struct Outer {
    n: i16,
    inner: Inner,
    arr: [f64; 3],
    tail: u8,
}

#[allow(dead_code)]
#[repr(C)]
struct Cplx {
    re: f64,
    im: f64,
}

const INT_DOUBLE: &TypeInfo =
    struct_type_info!(IntDouble as "IntDouble" { x: &format::INT, y: &format::DOUBLE });
const PACKED: &TypeInfo = struct_type_info!(packed Packed as "Packed" {
    c: &format::UNSIGNED_CHAR, d: &format::DOUBLE, s: &format::SHORT });
const INNER: &TypeInfo =
    struct_type_info!(Inner as "Inner" { a: &format::UNSIGNED_CHAR, b: &format::FLOAT });
const DOUBLE_3: TypeInfo = format::DOUBLE.array(&[3]);
const OUTER: &TypeInfo = struct_type_info!(Outer as "Outer" {
    n: &format::SHORT, inner: INNER, arr: &DOUBLE_3, tail: &format::UNSIGNED_CHAR });
const CPLX: &TypeInfo =
    struct_type_info!(Cplx as "Cplx" { re: &format::DOUBLE, im: &format::DOUBLE });

#[test]
fn every_c_type_has_a_format_cython_accepts() {
    let all: &[(&TypeInfo, &str)] = &[
        (&format::CHAR, "c"),
        (&format::SIGNED_CHAR, "b"),
        (&format::UNSIGNED_CHAR, "B"),
        (&format::SHORT, "h"),
        (&format::UNSIGNED_SHORT, "H"),
        (&format::INT, "i"),
        (&format::UNSIGNED_INT, "I"),
        (&format::LONG, "q"),
        (&format::UNSIGNED_LONG, "Q"),
        (&format::LONG_LONG, "q"),
        (&format::UNSIGNED_LONG_LONG, "Q"),
        (&format::PY_SSIZE_T, "q"),
        (&format::SIZE_T, "Q"),
        (&format::FLOAT, "f"),
        (&format::DOUBLE, "d"),
        (&format::LONG_DOUBLE, "g"),
        (&format::FLOAT_COMPLEX, "Zf"),
        (&format::DOUBLE_COMPLEX, "Zd"),
        (&format::PYTHON_OBJECT, "O"),
    ];
    for (t, want) in all {
        let f = pep3118_format(t).unwrap_or_else(|| panic!("no format for {}", t.name));
        // `want` is the struct module's native character for the C type of this size
        // (Python's `struct.calcsize(want)` equals the type's size on this target).
        assert_eq!(f, *want, "{}", t.name);
        assert!(check_format(f.as_bytes(), t).is_ok(), "{}: {f}", t.name);
    }
}

#[test]
fn structs_get_explicit_padding_at_their_offsets() {
    for (t, want) in [
        (INT_DOUBLE, "^T{i:x:4xd:y:}"),
        (PACKED, "^T{B:c:d:d:h:s:}"),
        (OUTER, "^T{h:n:2xT{B:a:3xf:b:}:inner:4x(3)d:arr:B:tail:7x}"),
        (CPLX, "^T{d:re:d:im:}"),
    ] {
        let f = pep3118_format(t).unwrap();
        assert_eq!(f, want, "{}", t.name);
        assert!(check_format(f.as_bytes(), t).is_ok(), "{}: {f}", t.name);
        // One byte of padding less or more is refused at the next field.
        if let Some(k) = want.find("4x") {
            let shifted = format!("{}3x{}", &want[..k], &want[k + 2..]);
            assert!(check_format(shifted.as_bytes(), t).is_err(), "{shifted}");
        }
    }
}

#[test]
fn types_no_format_describes() {
    // A struct whose first field is a struct, inside another struct's later field, cannot
    // be matched by any format (module documentation); nor a struct without fields.
    #[allow(dead_code)]
    #[repr(C)]
    struct InnerFirst {
        p: Inner,
        z: c_int,
    }
    #[allow(dead_code)]
    #[repr(C)]
    struct Holder {
        a: c_int,
        f: InnerFirst,
    }
    const FIRST: &TypeInfo =
        struct_type_info!(InnerFirst as "InnerFirst" { p: INNER, z: &format::INT });
    const HOLDER: &TypeInfo = struct_type_info!(Holder as "Holder" { a: &format::INT, f: FIRST });
    assert_eq!(pep3118_format(HOLDER), None);
    let empty = TypeInfo {
        name: "Empty",
        group: format::TypeGroup::Struct,
        ..format::INT
    };
    assert_eq!(pep3118_format(&empty), None);
}

/// `check_format_outcome`'s fast path for one-character formats gives the full check's
/// answer for every byte and every scalar C type (const-named too).
#[test]
fn the_fast_path_agrees_with_the_full_check() {
    let all = [
        format::CHAR,
        format::SIGNED_CHAR,
        format::UNSIGNED_CHAR,
        format::SHORT,
        format::UNSIGNED_SHORT,
        format::INT,
        format::UNSIGNED_INT,
        format::LONG,
        format::UNSIGNED_LONG,
        format::LONG_LONG,
        format::UNSIGNED_LONG_LONG,
        format::PY_SSIZE_T,
        format::SIZE_T,
        format::FLOAT,
        format::DOUBLE,
        format::LONG_DOUBLE,
        format::FLOAT_COMPLEX,
        format::DOUBLE_COMPLEX,
        format::PYTHON_OBJECT,
        format::DOUBLE.named("const double"),
        DOUBLE_3,
        *INT_DOUBLE,
        *CPLX,
    ];
    let mut fast = 0;
    for t in &all {
        for b in 0..=255u8 {
            let f = [b];
            let full = format::check_format_outcome_full(&f, t);
            assert_eq!(
                format::check_format_outcome(&f, t),
                full,
                "{:?} for {}",
                b as char,
                t.name
            );
            fast += usize::from(full == format::Outcome::Accepted);
        }
    }
    assert!(fast >= 19, "{fast}");
}
