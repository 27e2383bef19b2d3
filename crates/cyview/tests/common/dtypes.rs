//! The Rust twins of the structs of `cython_fixtures/formats/formats.pyx`, each defined once
//! for the tests of this package, with the layout of its `cdef struct` and its
//! [`TypeInfo`] as `struct_type_info!` builds it. Their fields are only measured.
#![allow(dead_code)]

use std::ffi::{c_char, c_int};

use cyview::format::{TypeInfo, CHAR, DOUBLE, INT};
use cyview::struct_type_info;

/// `cdef struct Point: int x; int y`.
#[repr(C)]
pub struct Point {
    pub x: c_int,
    pub y: c_int,
}

/// `cdef struct DC: double d; char c` (7 bytes of trailing padding).
#[allow(clippy::upper_case_acronyms)]
#[repr(C)]
pub struct DC {
    pub d: f64,
    pub c: c_char,
}

/// `cdef struct CD: char c; double d` (7 bytes of interior padding).
#[allow(clippy::upper_case_acronyms)]
#[repr(C)]
pub struct CD {
    pub c: c_char,
    pub d: f64,
}

/// `cdef packed struct PackedCD: char c; double d`.
#[repr(C, packed)]
pub struct PackedCD {
    pub c: c_char,
    pub d: f64,
}

/// `cdef struct Nested: int a; Point p; double z` (a struct at a non-first position).
#[repr(C)]
pub struct Nested {
    pub a: c_int,
    pub p: Point,
    pub z: f64,
}

/// `cdef struct FirstNested: Point p; int z` (a struct at the first position).
#[repr(C)]
pub struct FirstNested {
    pub p: Point,
    pub z: c_int,
}

/// `cdef struct Deep: char tag; FirstNested f` (a struct whose first field is a struct, at a
/// non-first position).
#[repr(C)]
pub struct Deep {
    pub tag: c_char,
    pub f: FirstNested,
}

/// `cdef struct Arr: double a[3]; int n` (an array field).
#[repr(C)]
pub struct Arr {
    pub a: [f64; 3],
    pub n: c_int,
}

/// `cdef struct Mat: int m[2][3]` (a 2-d array field).
#[repr(C)]
pub struct Mat {
    pub m: [[c_int; 3]; 2],
}

/// `cdef struct Name: char name[4]; int id` (a char array field, `4s`).
#[repr(C)]
pub struct Name {
    pub name: [c_char; 4],
    pub id: c_int,
}

/// `cdef struct Pair: double re; double im` (two doubles: Cython types it as complex, `C`,
/// with fields).
#[repr(C)]
pub struct Pair {
    pub re: f64,
    pub im: f64,
}

pub const POINT: &TypeInfo = struct_type_info!(Point as "Point" { x: &INT, y: &INT });
pub const DC_INFO: &TypeInfo = struct_type_info!(DC as "DC" { d: &DOUBLE, c: &CHAR });
pub const CD_INFO: &TypeInfo = struct_type_info!(CD as "CD" { c: &CHAR, d: &DOUBLE });
pub const PACKED_CD: &TypeInfo =
    struct_type_info!(packed PackedCD as "PackedCD" { c: &CHAR, d: &DOUBLE });
pub const NESTED: &TypeInfo =
    struct_type_info!(Nested as "Nested" { a: &INT, p: POINT, z: &DOUBLE });
pub const FIRST_NESTED: &TypeInfo =
    struct_type_info!(FirstNested as "FirstNested" { p: POINT, z: &INT });
pub const DEEP: &TypeInfo = struct_type_info!(Deep as "Deep" { tag: &CHAR, f: FIRST_NESTED });
const DOUBLE_3: TypeInfo = DOUBLE.array(&[3]);
pub const ARR: &TypeInfo = struct_type_info!(Arr as "Arr" { a: &DOUBLE_3, n: &INT });
const INT_2_3: TypeInfo = INT.array(&[2, 3]);
pub const MAT: &TypeInfo = struct_type_info!(Mat as "Mat" { m: &INT_2_3 });
const CHAR_4: TypeInfo = CHAR.array(&[4]);
pub const NAME: &TypeInfo = struct_type_info!(Name as "Name" { name: &CHAR_4, id: &INT });
pub const PAIR: &TypeInfo = struct_type_info!(Pair as "Pair" { re: &DOUBLE, im: &DOUBLE });
