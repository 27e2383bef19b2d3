//! PEP 3118 format strings matched against a declared element type, as Cython does.
//!
//! When Cython acquires a buffer into a typed memoryview (`cdef double[:] v = obj`) it checks
//! the exporter's `Py_buffer.format` against the declared dtype's run-time description,
//! `__Pyx_TypeInfo`, with the state machine `__Pyx_BufFmt_CheckString` of `Buffer.c`. This
//! module is that description ([`TypeInfo`], [`StructField`], [`TypeGroup`]; predefined
//! constants for the C types, [`struct_type_info!`](crate::struct_type_info) for a
//! `#[repr(C)]` struct) and that state machine ([`check_format`], [`check_format_outcome`]).
//!
//! # What Cython accepts
//!
//! Cython does not parse the format string as a grammar; it walks the dtype's fields and
//! compares each run of equal type characters with the next field, by size and type group
//! only. Consequences, all observed on compiled Cython (the golden vectors of
//! `tests/format_golden.rs`):
//!
//! * names (`:x:`) are skipped without comparison and `T{...}` braces are not matched with the
//!   dtype's structs: `"ii"`, `"T{ii}"` and `"T{i:a:}T{i:b:}"` all match `struct {int x, y;}`;
//! * the type group (signed, unsigned, real, complex, ...) and the size must agree, except
//!   that a C `char` matches any one-byte character (`b`, `B`, `c`, `?`, `s`, `p`) and a
//!   `char` format matches `signed char` and `unsigned char`; so `long[:]` accepts `q` and
//!   `long long[:]` accepts `l` (both 8 bytes), and `int[:]` accepts `=l` (a standard-size
//!   `long` has 4 bytes) while `long[:]` rejects it with `Buffer dtype mismatch, expected
//!   'long' but got 'long'`;
//! * a struct of two equal floating-point fields (`cdef struct Pair: double re, im`) matches
//!   both `dd` and `Zd`; the native `double complex` matches `Zd` only;
//! * with `@` (the default) sizes are native and fields are aligned as the C compiler aligns
//!   them; `^` has native sizes without alignment; `=` and `<` have the `struct` module's
//!   standard sizes (`l` is 4 bytes) without alignment; `>` and `!` raise `Big-endian buffer
//!   not supported on little-endian compiler` on a little-endian machine;
//! * `x` pads, and the offset of every field is checked: `Buffer dtype mismatch; next field
//!   is at offset 1 but 8 expected`;
//! * a `}` at the top level ends the check with success: `"}"` and `"d}junk"` are accepted for
//!   `double`;
//! * a struct whose first field is itself a struct can only be matched at the start of the
//!   dtype: at any other position Cython descends one level only and compares the inner
//!   struct as a whole (`Buffer dtype mismatch, expected 'Point' but got 'int' in
//!   'FirstNested.p'`), so no format string matches such a dtype.
//!
//! # Where Cython has no defined behaviour
//!
//! Some format strings make `__Pyx_BufFmt_CheckString` dereference NULL, read past the
//! string's terminator or loop forever ([`Undefined`]). [`check_format_outcome`] says which;
//! [`check_format`] rejects them with a `ValueError` whose message names the problem.
//! Repeat counts are parsed into a C `int` with wrapping arithmetic (signed overflow, which
//! gcc compiles as wrapping), so `4294967296d` means `0d` and `4294967295d` is rejected as
//! `-1`, the parser's "no number" value; this module wraps the same way.
//! A byte >= 0x80 printed with `%c` from a signed `char` makes CPython raise `OverflowError:
//! character argument not in range(0x110000)` instead of the intended `ValueError`
//! ([`Outcome::CharOutOfRange`]).
//!
//! Where Cython loops for ages (`9T{` nested forty times: 9**40 passes) this answers in time
//! linear in the string's length. A [`TypeInfo`] no Cython generates, cyclic (a Rust `static`
//! can refer to itself) or nested deeper than [`MAX_DTYPE_DEPTH`], is refused
//! ([`InvalidDtype`]) instead of followed without end.
//!
//! # Releases
//!
//! `__Pyx_BufFmt_CheckString` and its helpers are the same in Cython 0.29.37, 3.0.12, 3.1.8,
//! 3.2.9 and 3.3.1 except for text that cannot be reached: `__Pyx_BufFmt_DescribeTypeChar`
//! answers "unparseable format string" (0.29) or "unparsable format string" (3.x) for a type
//! character it does not know, but it is only ever called with characters it knows.
//! `__pyx_buffmt_parse_array` returns `PyObject*` in 0.29 and `int` in 3.x with the same
//! meaning. The functions here therefore take no release; the golden vectors of all five
//! releases are checked against them.
//!
//! Sizes and alignments are the target's C ones (`core::ffi`); `long double` is 16 bytes
//! aligned to 16 on x86-64 Linux, the only platform the golden vectors were made on.

use core::cell::Cell;
use core::ffi::{c_char, c_int, c_long, c_longlong, c_short};
use core::mem::{align_of, size_of};
use std::collections::HashMap;

use crate::error::Error;

/// Cython's `typegroup` character of a [`TypeInfo`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TypeGroup {
    /// `'I'`: signed integer.
    SignedInt,
    /// `'U'`: unsigned integer.
    UnsignedInt,
    /// `'R'`: real floating point.
    Real,
    /// `'C'`: complex floating point; with [`TypeInfo::fields`], a struct of two equal
    /// floating-point fields, which Cython also matches field by field.
    Complex,
    /// `'S'`: struct (see [`TypeInfo::fields`]).
    Struct,
    /// `'P'`: pointer.
    Pointer,
    /// `'O'`: Python object.
    Object,
    /// `'H'`: C `char`.
    Char,
}

/// A field of a struct element type (`__Pyx_StructField`).
#[derive(Clone, Copy, Debug)]
pub struct StructField {
    /// The field's type.
    pub ty: &'static TypeInfo,
    /// The field's name (error messages only).
    pub name: &'static str,
    /// Byte offset in the struct.
    pub offset: usize,
}

/// A declared element type (`__Pyx_TypeInfo`).
///
/// Cython generates one per dtype (`get_type_information_cname` in `Compiler/Buffer.py`). For
/// an array field (`double a[3]`) it describes the *element*: name `"double"`, size 8,
/// `arraysize` `[3]`.
#[derive(Clone, Copy, Debug)]
pub struct TypeInfo {
    /// The C name Cython prints in messages (`"double"`, `"int"`, a struct's name).
    pub name: &'static str,
    /// Struct fields, for [`TypeGroup::Struct`] (and a struct of two equal floats, see
    /// [`TypeGroup::Complex`]); empty otherwise.
    pub fields: &'static [StructField],
    /// `sizeof(type)`; for an array, `sizeof` of one element.
    pub size: usize,
    /// Array dimensions of an array type (`double[3][4]` -> `[3, 4]`), else empty.
    pub arraysize: &'static [usize],
    /// The type group.
    pub group: TypeGroup,
    /// Whether the type is unsigned (`is_unsigned`).
    pub is_unsigned: bool,
    /// `__PYX_BUF_FLAGS_PACKED_STRUCT` for packed structs. The format check does not read it
    /// (a packed struct's offsets are simply its fields' offsets).
    pub packed: bool,
}

impl TypeInfo {
    const fn scalar(name: &'static str, size: usize, group: TypeGroup, is_unsigned: bool) -> Self {
        TypeInfo {
            name,
            fields: &[],
            size,
            arraysize: &[],
            group,
            is_unsigned,
            packed: false,
        }
    }

    /// The same type under another name, for a typedef: Cython prints the name the
    /// declaration used (`int32_t[:]` -> `'int32_t'`, `Py_ssize_t[:]` -> `'Py_ssize_t'`).
    ///
    /// ```
    /// use cyview::format::{check_format, INT};
    /// const INT32_T: cyview::format::TypeInfo = INT.named("int32_t");
    /// let err = check_format(b"d", &INT32_T).unwrap_err();
    /// assert_eq!(err.message(), "Buffer dtype mismatch, expected 'int32_t' but got 'double'");
    /// ```
    pub const fn named(self, name: &'static str) -> Self {
        TypeInfo { name, ..self }
    }

    /// The type of an array field of this element type (`double a[3]` ->
    /// `DOUBLE.array(&[3])`), as Cython describes it: same name and size, `arraysize` set.
    pub const fn array(self, dims: &'static [usize]) -> Self {
        TypeInfo {
            arraysize: dims,
            ..self
        }
    }

    /// The bytes the type occupies: `size` times the product of `arraysize` (wrapping).
    pub const fn extent(&self) -> usize {
        let mut n = self.size;
        let mut i = 0;
        while i < self.arraysize.len() {
            n = n.wrapping_mul(self.arraysize[i]);
            i += 1;
        }
        n
    }
}

const C_CHAR_IS_SIGNED: bool = c_char::MIN != 0;

/// `char` (`TypeGroup::Char`; `is_unsigned` as the target's C `char`).
pub const CHAR: TypeInfo = TypeInfo::scalar("char", 1, TypeGroup::Char, !C_CHAR_IS_SIGNED);
/// `signed char`.
pub const SIGNED_CHAR: TypeInfo = TypeInfo::scalar("signed char", 1, TypeGroup::SignedInt, false);
/// `unsigned char`.
pub const UNSIGNED_CHAR: TypeInfo =
    TypeInfo::scalar("unsigned char", 1, TypeGroup::UnsignedInt, true);
/// `short`.
pub const SHORT: TypeInfo =
    TypeInfo::scalar("short", size_of::<c_short>(), TypeGroup::SignedInt, false);
/// `unsigned short`.
pub const UNSIGNED_SHORT: TypeInfo = TypeInfo::scalar(
    "unsigned short",
    size_of::<c_short>(),
    TypeGroup::UnsignedInt,
    true,
);
/// `int`.
pub const INT: TypeInfo = TypeInfo::scalar("int", size_of::<c_int>(), TypeGroup::SignedInt, false);
/// `unsigned int`.
pub const UNSIGNED_INT: TypeInfo = TypeInfo::scalar(
    "unsigned int",
    size_of::<c_int>(),
    TypeGroup::UnsignedInt,
    true,
);
/// `long`.
pub const LONG: TypeInfo =
    TypeInfo::scalar("long", size_of::<c_long>(), TypeGroup::SignedInt, false);
/// `unsigned long`.
pub const UNSIGNED_LONG: TypeInfo = TypeInfo::scalar(
    "unsigned long",
    size_of::<c_long>(),
    TypeGroup::UnsignedInt,
    true,
);
/// `long long`.
pub const LONG_LONG: TypeInfo = TypeInfo::scalar(
    "long long",
    size_of::<c_longlong>(),
    TypeGroup::SignedInt,
    false,
);
/// `unsigned long long`.
pub const UNSIGNED_LONG_LONG: TypeInfo = TypeInfo::scalar(
    "unsigned long long",
    size_of::<c_longlong>(),
    TypeGroup::UnsignedInt,
    true,
);
/// `Py_ssize_t`.
pub const PY_SSIZE_T: TypeInfo = TypeInfo::scalar(
    "Py_ssize_t",
    size_of::<isize>(),
    TypeGroup::SignedInt,
    false,
);
/// `size_t`.
pub const SIZE_T: TypeInfo =
    TypeInfo::scalar("size_t", size_of::<usize>(), TypeGroup::UnsignedInt, true);
/// `float`.
pub const FLOAT: TypeInfo = TypeInfo::scalar("float", 4, TypeGroup::Real, false);
/// `double`.
pub const DOUBLE: TypeInfo = TypeInfo::scalar("double", 8, TypeGroup::Real, false);
/// `long double` (its size is the target's, see the module documentation).
pub const LONG_DOUBLE: TypeInfo =
    TypeInfo::scalar("long double", LONG_DOUBLE_LAYOUT.0, TypeGroup::Real, false);
/// `float complex` (Cython's native complex: no fields).
pub const FLOAT_COMPLEX: TypeInfo = TypeInfo::scalar("float complex", 8, TypeGroup::Complex, false);
/// `double complex` (Cython's native complex: no fields).
pub const DOUBLE_COMPLEX: TypeInfo =
    TypeInfo::scalar("double complex", 16, TypeGroup::Complex, false);
/// `object` (Cython names it `Python object`).
pub const PYTHON_OBJECT: TypeInfo = TypeInfo::scalar(
    "Python object",
    size_of::<*const u8>(),
    TypeGroup::Object,
    false,
);

/// `i8` as `signed char[:]` (use [`TypeInfo::named`] for `int8_t[:]`).
pub const I8: TypeInfo = SIGNED_CHAR;
/// `i16` as `short[:]`.
pub const I16: TypeInfo = SHORT;
/// `i32` as `int[:]`.
pub const I32: TypeInfo = INT;
/// `i64` as `long[:]` where `long` has 8 bytes, else `long long[:]`.
pub const I64: TypeInfo = if size_of::<c_long>() == 8 {
    LONG
} else {
    LONG_LONG
};
/// `isize` as `Py_ssize_t[:]`.
pub const ISIZE: TypeInfo = PY_SSIZE_T;
/// `u8` as `unsigned char[:]`.
pub const U8: TypeInfo = UNSIGNED_CHAR;
/// `u16` as `unsigned short[:]`.
pub const U16: TypeInfo = UNSIGNED_SHORT;
/// `u32` as `unsigned int[:]`.
pub const U32: TypeInfo = UNSIGNED_INT;
/// `u64` as `unsigned long[:]` where `long` has 8 bytes, else `unsigned long long[:]`.
pub const U64: TypeInfo = if size_of::<c_long>() == 8 {
    UNSIGNED_LONG
} else {
    UNSIGNED_LONG_LONG
};
/// `usize` as `size_t[:]`.
pub const USIZE: TypeInfo = SIZE_T;
/// `f32` as `float[:]`.
pub const F32: TypeInfo = FLOAT;
/// `f64` as `double[:]`.
pub const F64: TypeInfo = DOUBLE;
/// A complex of two `f32` as `float complex[:]`.
pub const C32: TypeInfo = FLOAT_COMPLEX;
/// A complex of two `f64` as `double complex[:]`.
pub const C64: TypeInfo = DOUBLE_COMPLEX;
/// `core::ffi::c_char` as `char[:]`.
pub const C_CHAR: TypeInfo = CHAR;

const _: () = {
    assert!(size_of::<c_short>() == 2 && size_of::<c_int>() == 4 && size_of::<c_longlong>() == 8);
    assert!(I64.size == 8 && U64.size == 8);
};

/// The group Cython gives a struct with these fields: [`TypeGroup::Complex`] for exactly two
/// fields of the same floating-point type (`can_be_complex` in `PyrexTypes.py`), else
/// [`TypeGroup::Struct`].
pub const fn struct_group(fields: &[StructField]) -> TypeGroup {
    if fields.len() == 2 {
        let (a, b) = (fields[0].ty, fields[1].ty);
        if matches!(a.group, TypeGroup::Real)
            && matches!(b.group, TypeGroup::Real)
            && a.arraysize.is_empty()
            && b.arraysize.is_empty()
            && str_eq(a.name, b.name)
        {
            return TypeGroup::Complex;
        }
    }
    TypeGroup::Struct
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[doc(hidden)]
/// The size of the field a pointer projection names (`struct_type_info!`'s size check).
pub const fn __field_size<S, F>(_project: fn(*const S) -> *const F) -> usize {
    size_of::<F>()
}

/// The `&'static TypeInfo` of a `#[repr(C)]` (or `#[repr(C, packed)]`) struct, as Cython
/// generates it for the matching `cdef struct` (or `cdef packed struct`).
///
/// `struct_type_info!(Rust type as "Cython name" { field: &FIELD_TYPE_INFO, ... })` lists the
/// fields in declaration order with the `&'static TypeInfo` of each; offsets come from
/// `core::mem::offset_of!`, the size from `size_of`, and the group from
/// [`struct_group`] (two equal floating-point fields make Cython's complex-like struct). A
/// field's `TypeInfo` must have the Rust field's size ([`TypeInfo::extent`]): that is checked
/// at compile time. Prefix `packed` for a packed struct.
///
/// ```
/// use cyview::format::{check_format, TypeInfo, DOUBLE, INT};
/// use cyview::struct_type_info;
///
/// #[repr(C)]
/// struct Point { x: i32, y: i32 }
/// // cdef struct Point: int x; int y
/// const POINT: &TypeInfo = struct_type_info!(Point as "Point" { x: &INT, y: &INT });
///
/// #[repr(C)]
/// struct Arr { a: [f64; 3], n: i32 }
/// // cdef struct Arr: double a[3]; int n
/// const DOUBLE_3: TypeInfo = DOUBLE.array(&[3]);
/// const ARR: &TypeInfo = struct_type_info!(Arr as "Arr" { a: &DOUBLE_3, n: &INT });
///
/// assert!(check_format(b"T{i:x:i:y:}", POINT).is_ok());
/// assert!(check_format(b"T{(3)d:a:i:n:}", ARR).is_ok());
/// let err = check_format(b"id", POINT).unwrap_err();
/// assert_eq!(err.message(), "Buffer dtype mismatch, expected 'int' but got 'double' in 'Point.y'");
/// ```
///
/// A field whose `TypeInfo` does not have the field's size does not compile:
///
/// ```compile_fail
/// use cyview::format::{TypeInfo, INT};
/// #[repr(C)]
/// struct P { x: i32, y: f64 }
/// const P_INFO: &TypeInfo = cyview::struct_type_info!(P as "P" { x: &INT, y: &INT });
/// ```
#[macro_export]
macro_rules! struct_type_info {
    (packed $ty:ty as $name:literal { $($field:ident : $info:expr),+ $(,)? }) => {
        $crate::__struct_type_info!(true, $ty, $name, $($field: $info),+)
    };
    ($ty:ty as $name:literal { $($field:ident : $info:expr),+ $(,)? }) => {
        $crate::__struct_type_info!(false, $ty, $name, $($field: $info),+)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __struct_type_info {
    ($packed:expr, $ty:ty, $name:literal, $($field:ident : $info:expr),+) => {{
        const FIELDS: &[$crate::format::StructField] = &[$(
            $crate::format::StructField {
                ty: $info,
                name: ::core::stringify!($field),
                offset: ::core::mem::offset_of!($ty, $field),
            }
        ),+];
        const INFO: $crate::format::TypeInfo = $crate::format::TypeInfo {
            name: $name,
            fields: FIELDS,
            size: ::core::mem::size_of::<$ty>(),
            arraysize: &[],
            group: $crate::format::struct_group(FIELDS),
            is_unsigned: false,
            packed: $packed,
        };
        const _: () = {$(
            ::core::assert!(
                $crate::format::__field_size::<$ty, _>(|p| {
                    // SAFETY: never called; the closure only names the field's type.
                    unsafe { ::core::ptr::addr_of!((*p).$field) }
                }) == $crate::format::TypeInfo::extent($info),
                ::core::concat!(
                    "struct_type_info!: the TypeInfo of field `",
                    ::core::stringify!($field),
                    "` does not have the field's size"
                )
            );
        )+};
        &INFO
    }};
}

/// A PEP 3118 format string describing items of `dtype`, which Cython accepts for it: the
/// format an exporter of Rust memory gives (`"d"` for `double`, `"Zd"` for `double
/// complex`, `"^T{i:x:4xd:y:}"` for `struct {int x; double y;}`).
///
/// Structs are written with native sizes and no implicit alignment (`^`), every gap as
/// explicit `x` padding, and arrays as `(3)d`, so the offsets are exactly the
/// [`StructField`]s'. `None` for a type no format string describes: a [`TypeGroup::Struct`]
/// without fields, a scalar size without a format character (a 3-byte integer), or a
/// struct whose first field is a struct anywhere but at the start of the dtype (see the
/// module documentation; [`check_format`] tells). Also `None` for a `TypeInfo` that
/// [`check_format`] refuses ([`InvalidDtype`]: cyclic, or nested deeper than
/// [`MAX_DTYPE_DEPTH`]), and for a string longer than 16 MiB (a struct type shared by the
/// fields of many levels describes exponentially many fields).
///
/// ```
/// use cyview::format::{check_format, pep3118_format, DOUBLE, DOUBLE_COMPLEX, INT, U8};
/// use cyview::struct_type_info;
/// assert_eq!(pep3118_format(&DOUBLE).as_deref(), Some("d"));
/// assert_eq!(pep3118_format(&DOUBLE_COMPLEX).as_deref(), Some("Zd"));
/// assert_eq!(pep3118_format(&U8).as_deref(), Some("B"));
///
/// #[repr(C)]
/// struct Pair { x: i32, y: f64 }
/// const PAIR: &cyview::format::TypeInfo =
///     struct_type_info!(Pair as "Pair" { x: &INT, y: &DOUBLE });
/// let f = pep3118_format(PAIR).unwrap();
/// assert_eq!(f, "^T{i:x:4xd:y:}");
/// assert!(check_format(f.as_bytes(), PAIR).is_ok());
/// ```
pub fn pep3118_format(dtype: &TypeInfo) -> Option<String> {
    check_dtype(dtype).ok()?;
    let mut out = String::new();
    if !dtype.fields.is_empty() {
        put(&mut out, "^")?;
    }
    write_format(dtype, &mut out)?;
    check_format(out.as_bytes(), dtype).ok()?;
    Some(out)
}

/// The longest string [`pep3118_format`] writes: a `TypeInfo` that shares a struct type between
/// many fields at many levels describes exponentially many fields.
const MAX_PEP3118_LEN: usize = 1 << 24;

/// Appends `s` unless the string would exceed [`MAX_PEP3118_LEN`] or cannot grow.
fn put(out: &mut String, s: &str) -> Option<()> {
    if out.len().checked_add(s.len())? > MAX_PEP3118_LEN {
        return None;
    }
    out.try_reserve(s.len()).ok()?;
    out.push_str(s);
    Some(())
}

/// Writes the format of `t`; its depth is bounded by [`check_dtype`].
fn write_format(t: &TypeInfo, out: &mut String) -> Option<()> {
    if !t.arraysize.is_empty() {
        let dims: Vec<String> = t.arraysize.iter().map(|d| d.to_string()).collect();
        put(out, &format!("({})", dims.join(",")))?;
    }
    if t.fields.is_empty() {
        return put(out, scalar_code(t)?);
    }
    put(out, "T{")?;
    let mut at = 0usize;
    for f in t.fields {
        if f.offset > at {
            put(out, &format!("{}x", f.offset - at))?;
        }
        write_format(f.ty, out)?;
        put(out, ":")?;
        put(out, f.name)?;
        put(out, ":")?;
        at = f.offset.checked_add(f.ty.extent())?;
    }
    if t.size > at {
        put(out, &format!("{}x", t.size - at))?;
    }
    put(out, "}")
}

/// The native format character(s) of a scalar type.
fn scalar_code(t: &TypeInfo) -> Option<&'static str> {
    Some(match (t.group, t.size) {
        (TypeGroup::SignedInt, 1) => "b",
        (TypeGroup::SignedInt, 2) => "h",
        (TypeGroup::SignedInt, 4) => "i",
        (TypeGroup::SignedInt, 8) => "q",
        (TypeGroup::UnsignedInt, 1) => "B",
        (TypeGroup::UnsignedInt, 2) => "H",
        (TypeGroup::UnsignedInt, 4) => "I",
        (TypeGroup::UnsignedInt, 8) => "Q",
        (TypeGroup::Char, 1) => "c",
        (TypeGroup::Real, 4) => "f",
        (TypeGroup::Real, 8) => "d",
        (TypeGroup::Real, 16) => "g",
        (TypeGroup::Complex, 8) => "Zf",
        (TypeGroup::Complex, 16) => "Zd",
        (TypeGroup::Complex, 32) => "Zg",
        (TypeGroup::Pointer, n) if n == size_of::<*const u8>() => "P",
        (TypeGroup::Object, n) if n == size_of::<*const u8>() => "O",
        _ => return None,
    })
}

/// What Cython does with a format string and a dtype ([`check_format_outcome`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The format matches (the acquisition goes on to the item size check).
    Accepted,
    /// Cython raises this exception (or, not from Cython, the check could not allocate its
    /// bookkeeping: a `MemoryError`).
    Raised(Error),
    /// Cython means to raise a `ValueError` whose message prints a byte >= 0x80 with `%c`;
    /// with a signed C `char` that is a negative code point, and CPython raises
    /// `OverflowError: character argument not in range(0x110000)` ([`OVERFLOW_MESSAGE`])
    /// instead. (On a target whose `char` is unsigned the byte is printed as U+0080..U+00FF
    /// and this variant does not occur.)
    CharOutOfRange,
    /// Cython has no defined behaviour: it crashes or never returns.
    Undefined(Undefined),
    /// The dtype's [`TypeInfo`] is one no Cython generates and the check refuses, whatever the
    /// format string ([`InvalidDtype`]).
    InvalidDtype(InvalidDtype),
}

/// The message of CPython's `OverflowError` for [`Outcome::CharOutOfRange`].
pub const OVERFLOW_MESSAGE: &str = "character argument not in range(0x110000)";

/// Format strings on which `__Pyx_BufFmt_CheckString` has no defined behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Undefined {
    /// The format goes on describing elements after the dtype is complete, and a `}`, a `(`
    /// or the struct-repeat loop makes Cython dereference its struct stack's head, which is
    /// NULL by then (`"dT{d}"`, `"d(3)d"` for `double`): a segmentation fault. Also a struct
    /// [`TypeInfo`] without fields (Cython never generates one).
    NullDereference,
    /// A `:name:` whose closing `:` is missing: Cython scans on past the terminating NUL for
    /// a `':'` (`"d:abc"`).
    ReadPastEnd,
    /// Whitespace where an array dimension is expected (`"(2, 3)i"`, `"( 3)d"`):
    /// `__pyx_buffmt_parse_array` skips it with `continue` without advancing, forever.
    InfiniteLoop,
    /// A sub-struct repeat count that overflows C `int` to a negative value (`2147483648T{}`)
    /// becomes a `size_t` near 2**64, and the repeated sub-struct leaves the state unchanged
    /// (or periodic): Cython loops for more than 2**63 iterations.
    EndlessRepeat,
}

impl Undefined {
    /// The message [`check_format`] gives for the format string (Cython has none).
    pub fn message(self) -> &'static str {
        match self {
            Undefined::NullDereference => {
                "Unsupported buffer format string: Cython dereferences NULL on it \
                 (elements described after the dtype is complete)"
            }
            Undefined::ReadPastEnd => {
                "Unsupported buffer format string: a ':' name is not closed \
                 (Cython reads past its end)"
            }
            Undefined::InfiniteLoop => {
                "Unsupported buffer format string: whitespace in an array shape \
                 (Cython loops forever on it)"
            }
            Undefined::EndlessRepeat => {
                "Unsupported buffer format string: a sub-struct repeat count overflows C int \
                 (Cython repeats it 2**64 times)"
            }
        }
    }
}

/// The most structs a [`TypeInfo`] may nest, the dtype's struct itself included, for
/// [`check_format`] and [`pep3118_format`] (Cython's struct stack has one element per level).
pub const MAX_DTYPE_DEPTH: usize = 64;

/// A [`TypeInfo`] that [`check_format`] refuses: no Cython generates it (a Rust `static` can
/// refer to itself), and following its fields would not end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InvalidDtype {
    /// A field's type leads back to a struct that contains it (`static S: TypeInfo` with a
    /// field whose `ty` is `&S`).
    Cyclic,
    /// Structs nested more than [`MAX_DTYPE_DEPTH`] levels deep (also a cycle longer than
    /// that).
    TooDeep,
}

impl InvalidDtype {
    /// The message [`check_format`] gives (Cython has none).
    pub fn message(self) -> &'static str {
        match self {
            InvalidDtype::Cyclic => {
                "Unsupported buffer dtype: its TypeInfo is cyclic \
                 (a struct field's type leads back to the struct)"
            }
            InvalidDtype::TooDeep => {
                "Unsupported buffer dtype: its TypeInfo nests structs more than 64 levels deep"
            }
        }
    }
}

const _: () = assert!(MAX_DTYPE_DEPTH == 64, "InvalidDtype::TooDeep's message");

/// Follows the fields of `root` (of every type that has fields, as [`check_format`] and
/// [`pep3118_format`] may): `Err` if a field's type leads back to a struct being followed, or
/// if more than [`MAX_DTYPE_DEPTH`] structs nest. Each struct type is followed once (a struct
/// shared by many fields is not walked again), so this takes time linear in the number of
/// distinct struct types and their fields, and no allocation for a dtype without nested
/// structs.
fn check_dtype(root: &TypeInfo) -> Result<(), Stop> {
    if root.fields.is_empty() {
        return Ok(());
    }
    // The structs being followed, each with its next field and the deepest nesting below it
    // so far; `len` of them are live.
    let mut path: [(&TypeInfo, usize, usize); MAX_DTYPE_DEPTH] = [(root, 0, 0); MAX_DTYPE_DEPTH];
    let mut len = 1usize;
    // Struct types followed to the end, by address, with the number of struct levels they
    // nest (themselves included).
    let mut heights: HashMap<usize, usize> = HashMap::new();
    while let Some(top) = len.checked_sub(1).and_then(|i| path.get_mut(i)) {
        let (t, next, below) = *top;
        let Some(field) = t.fields.get(next) else {
            // `t` is done: it nests `below + 1` levels.
            let height = below + 1;
            len -= 1;
            if len == 0 {
                break; // the root: nothing refers to it
            }
            try_insert(&mut heights, core::ptr::from_ref(t) as usize, height)?;
            if let Some(parent) = len.checked_sub(1).and_then(|i| path.get_mut(i)) {
                parent.2 = parent.2.max(height);
            }
            continue;
        };
        top.1 = next + 1;
        let child = field.ty;
        if child.fields.is_empty() {
            continue;
        }
        if let Some(&height) = heights.get(&(core::ptr::from_ref(child) as usize)) {
            if len + height > MAX_DTYPE_DEPTH {
                return Err(Stop::InvalidDtype(InvalidDtype::TooDeep));
            }
            top.2 = top.2.max(height);
            continue;
        }
        if path
            .get(..len)
            .unwrap_or(&[])
            .iter()
            .any(|&(p, _, _)| core::ptr::eq(p, child))
        {
            return Err(Stop::InvalidDtype(InvalidDtype::Cyclic));
        }
        match path.get_mut(len) {
            Some(slot) => *slot = (child, 0, 0),
            None => return Err(Stop::InvalidDtype(InvalidDtype::TooDeep)),
        }
        len += 1;
    }
    Ok(())
}

/// Checks a buffer's format string against a declared element type, as Cython does when it
/// acquires the buffer into a memoryview of that dtype.
///
/// Mirrors `__Pyx_BufFmt_Init` + `__Pyx_BufFmt_CheckString` (`Buffer.c`), which
/// `__Pyx_ValidateAndInit_memviewslice` runs before the item size check; Python: the format
/// part of `cdef double[:] v = obj`. `format` is the string without its terminating NUL (an
/// embedded NUL ends it, as in C; only an unclosed `:name:` reads on, as Cython does). Same
/// in every release (see the module documentation).
///
/// # Errors
///
/// The `ValueError` Cython raises, with its exact message, for example `Buffer dtype mismatch,
/// expected 'double' but got 'float'`, `Buffer dtype mismatch, expected 'int' but got end in
/// 'Point.y'`, `Does not understand character buffer dtype format string ('w')`. Where Cython
/// raises `OverflowError` ([`Outcome::CharOutOfRange`]) this returns that kind with
/// CPython's message [`OVERFLOW_MESSAGE`]; where Cython crashes or hangs ([`Undefined`]) a
/// `ValueError` with [`Undefined::message`]; for a `TypeInfo` no Cython generates (cyclic, or
/// nested deeper than [`MAX_DTYPE_DEPTH`]: [`InvalidDtype`]) a `ValueError` with
/// [`InvalidDtype::message`]. Use [`check_format_outcome`] to tell these apart. `MemoryError`
/// when the bookkeeping for a huge format string cannot be allocated.
///
/// The work is linear in the length of `format` (see `Machine` in the source), including on
/// strings Cython itself would loop on for ages.
///
/// ```
/// use cyview::format::{check_format, DOUBLE, FLOAT};
/// assert!(check_format(b"d", &DOUBLE).is_ok());
/// assert!(check_format(b"=d", &DOUBLE).is_ok());
/// let err = check_format(b"f", &DOUBLE).unwrap_err();
/// assert_eq!(err.to_string(), "Buffer dtype mismatch, expected 'double' but got 'float'");
/// let err = check_format(b">f", &FLOAT).unwrap_err();
/// assert_eq!(err.to_string(), "Big-endian buffer not supported on little-endian compiler");
/// ```
pub fn check_format(format: &[u8], dtype: &TypeInfo) -> Result<(), Error> {
    match check_format_outcome(format, dtype) {
        Outcome::Accepted => Ok(()),
        Outcome::Raised(e) => Err(e),
        Outcome::CharOutOfRange => Err(Error::new(
            crate::ErrorKind::OverflowError,
            OVERFLOW_MESSAGE,
        )),
        Outcome::Undefined(u) => Err(Error::value(u.message())),
        Outcome::InvalidDtype(d) => Err(Error::value(d.message())),
    }
}

/// What Cython does with `format` for `dtype`: accept, raise (which exception), or crash or
/// hang ([`Undefined`]). See [`check_format`].
///
/// ```
/// use cyview::format::{check_format_outcome, Outcome, Undefined, DOUBLE};
/// assert_eq!(check_format_outcome(b"}", &DOUBLE), Outcome::Accepted);
/// assert_eq!(check_format_outcome(b"dT{d}", &DOUBLE), Outcome::Undefined(Undefined::NullDereference));
/// assert_eq!(check_format_outcome(b"(2, 3)d", &DOUBLE), Outcome::Undefined(Undefined::InfiniteLoop));
/// if core::ffi::c_char::MIN != 0 {
///     // A signed C char: Cython's `%c` of byte 0xff makes CPython raise OverflowError.
///     assert_eq!(check_format_outcome(b"\xff", &DOUBLE), Outcome::CharOutOfRange);
/// }
/// ```
pub fn check_format_outcome(format: &[u8], dtype: &TypeInfo) -> Outcome {
    if is_native_scalar_code(format, dtype) {
        return Outcome::Accepted;
    }
    check_format_outcome_full(format, dtype)
}

/// The common case, decided without the state machine: a one-character format that is
/// the native code [`pep3118_format`] writes for a scalar dtype (`"d"` for `double`).
/// `tests/format_strings.rs` checks that this accepts exactly where the full check does.
fn is_native_scalar_code(format: &[u8], dtype: &TypeInfo) -> bool {
    match (format, scalar_code(dtype)) {
        ([c], Some(code)) => {
            dtype.fields.is_empty() && dtype.arraysize.is_empty() && code.as_bytes() == [*c]
        }
        _ => false,
    }
}

#[doc(hidden)]
/// [`check_format_outcome`] without its fast path (for the equivalence test).
pub fn check_format_outcome_full(format: &[u8], dtype: &TypeInfo) -> Outcome {
    check_format_steps(format, dtype).0
}

#[doc(hidden)]
/// [`check_format_outcome_full`] and the work it took, in steps: bytes of `format` read (again
/// when a stretch is read again, at another depth or in another state), iterations of the
/// type-chunk loop, and passes or rests of passes over a sub-struct started, replayed or
/// skipped in bulk. For the tests that bound the work by the length of the format string
/// (`tests/format_properties.rs`).
pub fn check_format_steps(format: &[u8], dtype: &TypeInfo) -> (Outcome, u64) {
    if let Err(stop) = check_dtype(dtype) {
        return (stop.into_outcome(), 0);
    }
    let mut m = match Machine::new(format, dtype) {
        Ok(m) => m,
        Err(stop) => return (stop.into_outcome(), 0),
    };
    let outcome = match m.check_string() {
        Ok(()) => match m.pending.take() {
            None => Outcome::Accepted,
            Some(e) => Outcome::Raised(e),
        },
        Err(stop) => stop.into_outcome(),
    };
    (outcome, m.steps.get())
}

// ------------------------------------------------------------------------------------------
// Sizes, alignments, groups and names of the type characters (`__Pyx_BufFmt_TypeCharTo*`).

/// `(sizeof(long double), alignment of long double in a struct)` on the target.
const LONG_DOUBLE_LAYOUT: (usize, usize) = long_double_layout();

const fn long_double_layout() -> (usize, usize) {
    if cfg!(windows) || cfg!(target_vendor = "apple") && cfg!(target_arch = "aarch64") {
        (8, 8)
    } else if cfg!(target_arch = "x86_64")
        || cfg!(target_arch = "aarch64")
        || cfg!(target_arch = "riscv64")
        || cfg!(target_arch = "powerpc64")
    {
        (16, 16)
    } else if cfg!(target_arch = "x86") {
        (12, 4)
    } else if cfg!(target_arch = "s390x") {
        (16, 8)
    } else {
        (8, 8)
    }
}

/// Every alignment below divides this: a field's placement depends on the offset only
/// modulo it.
const ALIGN_MODULUS: usize = 16;

/// The characters of the pooling case of `__Pyx_BufFmt_CheckString` (not `'s'`, `'Z'`, and
/// not `'P'`, which it does not parse).
fn is_type_char(ch: u8) -> bool {
    b"?cbBhHiIlLqQfdgOp".contains(&ch)
}

/// Mirrors `__Pyx_BufFmt_TypeCharToNativeSize`; only called with characters it knows.
const fn native_size(ch: u8, is_complex: bool) -> usize {
    let z = if is_complex { 2 } else { 1 };
    match ch {
        b'h' | b'H' => size_of::<c_short>(),
        b'i' | b'I' => size_of::<c_int>(),
        b'l' | b'L' => size_of::<c_long>(),
        b'q' | b'Q' => size_of::<c_longlong>(),
        b'f' => 4 * z,
        b'd' => 8 * z,
        b'g' => LONG_DOUBLE_LAYOUT.0 * z,
        b'O' | b'P' => size_of::<*const u8>(),
        _ => 1, // '?', 'c', 'b', 'B', 's', 'p'
    }
}

/// Mirrors `__Pyx_BufFmt_TypeCharToStandardSize`; `None` for `'g'`, for which Cython sets
/// "Python does not define a standard format string size for long double ('g').." and
/// returns 0.
const fn standard_size(ch: u8, is_complex: bool) -> Option<usize> {
    let z = if is_complex { 2 } else { 1 };
    Some(match ch {
        b'h' | b'H' => 2,
        b'i' | b'I' | b'l' | b'L' => 4,
        b'q' | b'Q' => 8,
        b'f' => 4 * z,
        b'd' => 8 * z,
        b'g' => return None,
        b'O' | b'P' => size_of::<*const u8>(),
        _ => 1,
    })
}

/// Mirrors `__Pyx_BufFmt_TypeCharToAlignment` (`sizeof(struct {char c; T x;}) - sizeof(T)`);
/// the complex flag is ignored, as in Cython.
const fn alignment(ch: u8) -> usize {
    match ch {
        b'h' | b'H' => align_of::<c_short>(),
        b'i' | b'I' => align_of::<c_int>(),
        b'l' | b'L' => align_of::<c_long>(),
        b'q' | b'Q' => align_of::<c_longlong>(),
        b'f' => align_of::<f32>(),
        b'd' => align_of::<f64>(),
        b'g' => LONG_DOUBLE_LAYOUT.1,
        b'O' | b'P' => align_of::<*const u8>(),
        _ => 1,
    }
}

/// Mirrors `__Pyx_BufFmt_TypeCharToPadding` (`sizeof(struct {T x; char c;}) - sizeof(T)`).
const fn padding(ch: u8) -> usize {
    let size = native_size(ch, false);
    let align = alignment(ch);
    (size + 1).div_ceil(align) * align - size
}

const _: () = {
    let chars = b"?cbBhHiIlLqQfdgOPsp";
    let mut i = 0;
    while i < chars.len() {
        assert!(ALIGN_MODULUS % alignment(chars[i]) == 0);
        assert!(ALIGN_MODULUS % padding(chars[i]) == 0);
        i += 1;
    }
};

/// Mirrors `__Pyx_BufFmt_TypeCharToGroup`.
const fn group_of(ch: u8, is_complex: bool) -> TypeGroup {
    match ch {
        b'c' => TypeGroup::Char,
        b'b' | b'h' | b'i' | b'l' | b'q' | b's' | b'p' => TypeGroup::SignedInt,
        b'f' | b'd' | b'g' if is_complex => TypeGroup::Complex,
        b'f' | b'd' | b'g' => TypeGroup::Real,
        b'O' => TypeGroup::Object,
        b'P' => TypeGroup::Pointer,
        _ => TypeGroup::UnsignedInt, // '?', 'B', 'H', 'I', 'L', 'Q'
    }
}

/// Mirrors `__Pyx_BufFmt_DescribeTypeChar`.
fn describe(ch: u8, is_complex: bool) -> &'static str {
    match ch {
        b'?' => "'bool'",
        b'c' => "'char'",
        b'b' => "'signed char'",
        b'B' => "'unsigned char'",
        b'h' => "'short'",
        b'H' => "'unsigned short'",
        b'i' => "'int'",
        b'I' => "'unsigned int'",
        b'l' => "'long'",
        b'L' => "'unsigned long'",
        b'q' => "'long long'",
        b'Q' => "'unsigned long long'",
        b'f' if is_complex => "'complex float'",
        b'f' => "'float'",
        b'd' if is_complex => "'complex double'",
        b'd' => "'double'",
        b'g' if is_complex => "'complex long double'",
        b'g' => "'long double'",
        b'T' => "a struct",
        b'O' => "Python object",
        b'P' => "a pointer",
        b's' | b'p' => "a string",
        0 => "end",
        // Unreachable: the current type character is always one of the above. (0.29 spells
        // it "unparseable".)
        _ => "unparsable format string",
    }
}

// ------------------------------------------------------------------------------------------
// The state machine.

/// Why the machine stopped without accepting.
enum Stop {
    Raise(Error),
    CharOutOfRange,
    Undefined(Undefined),
    InvalidDtype(InvalidDtype),
}

impl Stop {
    fn into_outcome(self) -> Outcome {
        match self {
            Stop::Raise(e) => Outcome::Raised(e),
            Stop::CharOutOfRange => Outcome::CharOutOfRange,
            Stop::Undefined(u) => Outcome::Undefined(u),
            Stop::InvalidDtype(d) => Outcome::InvalidDtype(d),
        }
    }
}

fn raise(message: String) -> Stop {
    Stop::Raise(Error::value(message))
}

/// `PyErr_Format("%c", ch)` with a C `char`: a byte >= 0x80 is a negative code point where
/// `char` is signed, which CPython rejects with `OverflowError`.
fn percent_c(byte: u8) -> Result<char, Stop> {
    if C_CHAR_IS_SIGNED && byte >= 0x80 {
        Err(Stop::CharOutOfRange)
    } else {
        Ok(char::from(byte))
    }
}

/// A `__Pyx_StructField` pointer: the context's root field, or `fields[index]` of a struct
/// (`index == fields.len()` is the `{NULL, NULL, 0}` terminator).
#[derive(Clone, Copy, Debug)]
enum FieldRef {
    Root,
    At(&'static [StructField], usize),
}

impl PartialEq for FieldRef {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (FieldRef::Root, FieldRef::Root) => true,
            (FieldRef::At(a, i), FieldRef::At(b, j)) => {
                core::ptr::eq(a.as_ptr(), b.as_ptr()) && a.len() == b.len() && i == j
            }
            _ => false,
        }
    }
}

impl Eq for FieldRef {}

impl FieldRef {
    fn offset(self) -> usize {
        match self {
            FieldRef::Root => 0,
            FieldRef::At(f, i) => f.get(i).map_or(0, |f| f.offset),
        }
    }

    fn name(self) -> &'static str {
        match self {
            FieldRef::Root => "buffer dtype",
            FieldRef::At(f, i) => f.get(i).map_or("", |f| f.name),
        }
    }

    /// `++field`.
    fn next(self) -> FieldRef {
        match self {
            FieldRef::Root => FieldRef::Root,
            FieldRef::At(f, i) => FieldRef::At(f, i.saturating_add(1)),
        }
    }
}

/// `__Pyx_BufFmt_StackElem`.
#[derive(Clone, Copy, Debug)]
struct Elem {
    field: FieldRef,
    parent_offset: usize,
}

/// The context at the start of a pass over a sub-struct body, as far as a pass that processes
/// no type chunk depends on it or changes it: a few scalars, never a copy of the struct stack.
///
/// Only a type chunk changes the struct stack, its head and `pending`, so the number of chunks
/// processed so far (`epoch`) stands for them: two states with the same epoch have the same
/// stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    /// Type chunks processed so far ([`Machine::chunks`]).
    epoch: u64,
    new_count: usize,
    enc_count: usize,
    struct_alignment: usize,
    /// `fmt_offset % ALIGN_MODULUS` when `struct_alignment != 0`, else 0: a pass without type
    /// chunks that starts with `struct_alignment == 0` never reads `fmt_offset` (every `}` in
    /// it finds `struct_alignment == 0`, for a `T` zeroes it and restores only a non-zero
    /// value), so its effect holds at any offset.
    offset_mod: u8,
    enc_type: u8,
    new_packmode: u8,
    enc_packmode: u8,
    is_complex: bool,
    is_valid_array: bool,
}

impl core::hash::Hash for Key {
    /// Five words (hashing is most of the time the check takes on deep nests).
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.epoch);
        state.write_usize(self.new_count);
        state.write_usize(self.enc_count);
        state.write_usize(self.struct_alignment);
        state.write_u64(u64::from_le_bytes([
            self.offset_mod,
            self.enc_type,
            self.new_packmode,
            self.enc_packmode,
            u8::from(self.is_complex),
            u8::from(self.is_valid_array),
            0,
            0,
        ]));
    }
}

/// What a segment (a pass over a sub-struct body, or the rest of one) did, when it processed no
/// type chunk: the state after it, the change of `fmt_offset` (wrapping) and where its pass
/// returned.
#[derive(Clone, Copy, Debug)]
struct Effect {
    after: Key,
    offset_delta: usize,
    ret: usize,
}

/// A state in an [`Orbit`]: the key, the change of `fmt_offset` from the orbit's start
/// (wrapping), and where the pass that led to it returned.
#[derive(Clone, Copy, Debug)]
struct OrbitState {
    key: Key,
    offset: usize,
    ret: usize,
}

/// The passes of one sub-struct body repeated from one starting state, as far as they have been
/// followed: the states form the sequence `start, f(start), f(f(start)), ...` of the
/// deterministic pass function `f`, which repeats once a state comes back. Any number of passes
/// then takes O(1) to answer, and every loop that starts in the same state shares the orbit.
#[derive(Debug)]
struct Orbit {
    /// The state at the start of pass 0.
    start: Key,
    /// `after[p]`: the state at the start of pass `p + 1`.
    after: Vec<OrbitState>,
    /// `Some((mu, lambda))` once the state at the start of pass `mu + lambda` (the last one of
    /// `after`) is the state at the start of pass `mu`; `after` grows no more.
    cycle: Option<(usize, usize)>,
}

impl Orbit {
    /// The key and offset change of state `i` (`i <= after.len()`).
    fn state(&self, i: usize) -> (Key, usize) {
        match i.checked_sub(1).and_then(|p| self.after.get(p)) {
            Some(s) => (s.key, s.offset),
            None => (self.start, 0),
        }
    }

    /// The state at the start of pass `j` (`j >= 1`, and `j <= after.len()` unless the cycle is
    /// known): its key, its offset change, and where pass `j - 1` returned.
    fn at(&self, j: usize) -> (Key, usize, usize) {
        let reduce = |i: usize| match self.cycle {
            Some((mu, lambda)) if i >= mu + lambda => (mu + (i - mu) % lambda, (i - mu) / lambda),
            _ => (i, 0),
        };
        let (i, cycles) = reduce(j);
        let (key, mut offset) = self.state(i);
        if let (Some((mu, lambda)), true) = (self.cycle, cycles > 0) {
            // `i` is `mu + r`; each whole cycle adds the cycle's offset change.
            let per_cycle = self.state(mu + lambda).1.wrapping_sub(self.state(mu).1);
            offset = offset.wrapping_add(per_cycle.wrapping_mul(cycles));
        }
        // Pass `j - 1` started in the state of pass `p`, so it returned where pass `p` did.
        let (p, _) = reduce(j.saturating_sub(1));
        let ret = self.after.get(p).map_or(0, |s| s.ret);
        (key, offset, ret)
    }
}

/// Which orbit a loop follows: the orbit's pass 0 is the loop's pass `base`, which started at
/// `fmt_offset == base_offset`.
#[derive(Clone, Copy, Debug)]
struct Follow {
    id: usize,
    base: usize,
    base_offset: usize,
}

/// A segment being run: where it started, its starting state, offset and chunk count, and the
/// depth of the loop whose pass it ends with (`frames.len()` when it started).
#[derive(Clone, Copy, Debug)]
struct OpenSegment {
    pos: usize,
    key: Key,
    offset: usize,
    chunks: u64,
    depth: usize,
}

/// The pass being run: its starting state, offset and chunk count.
#[derive(Clone, Copy, Debug)]
struct Running {
    key: Key,
    offset: usize,
    chunks: u64,
}

/// A `T{` being repeated: the `for (i = 0; i != struct_count; ++i)` loop of the `'T'` case.
#[derive(Debug)]
struct Frame {
    /// Where each pass starts (after the `{`).
    body: usize,
    /// `struct_count`.
    count: usize,
    /// Passes completed (`i`).
    done: usize,
    /// `struct_alignment` saved before the loop, restored after it when non-zero.
    saved_alignment: usize,
    /// `ts_after_sub` of the last pass.
    last_ret: usize,
    /// The orbit the passes follow (for `count > 1`); `None` after a pass that processed a type
    /// chunk, until the next pass starts a new one.
    orbit: Option<Follow>,
    /// The pass being run, if one is.
    running: Option<Running>,
}

/// Passes above this come from a negative C `int` (`(size_t)number`): Cython would loop for
/// more than 2**63 iterations.
const ENDLESS_REPEAT: usize = i32::MAX as usize;

/// The message of the `MemoryError` when the check cannot allocate its bookkeeping.
const OUT_OF_MEMORY: &str = "cannot allocate memory to check the buffer format string";

fn out_of_memory() -> Stop {
    Stop::Raise(Error::new(crate::ErrorKind::MemoryError, OUT_OF_MEMORY))
}

/// `v.push(x)`, a `MemoryError` instead of an abort when the vector cannot grow.
fn try_push<T>(v: &mut Vec<T>, x: T) -> Result<(), Stop> {
    v.try_reserve(1).map_err(|_| out_of_memory())?;
    v.push(x);
    Ok(())
}

/// `map.insert(k, v)`, a `MemoryError` instead of an abort when the map cannot grow.
fn try_insert<K: Eq + core::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    k: K,
    v: V,
) -> Result<(), Stop> {
    map.try_reserve(1).map_err(|_| out_of_memory())?;
    map.insert(k, v);
    Ok(())
}

/// `__Pyx_BufFmt_Context`, the format string and the stack of `__Pyx_BufFmt_StackElem`, with the
/// memory that makes repeated sub-structs cheap.
///
/// # Work
///
/// Cython runs `NT{...}` as N passes over the body (2**64 when N is negative as a C `int`,
/// 9**40 for forty nested `9T{`), and a `}` ends the pass of whatever loop is innermost, so the
/// same bytes can be read again at every depth (after a `0T{`, or after a loop whose last
/// pass ended early). Here:
///
/// * a *segment* (the rest of a pass from its start, from where a loop ends inside it, or from
///   a `0T{`) that processes no type chunk is run once per position and starting [`Key`] and
///   afterwards replayed in O(1) from `segments`. Segments start after a `{` or a `}` and a
///   run of one reads on only to the next `T` or `}`, so each byte is read once per distinct
///   state the machine reaches it in (a handful: the states differ in `new_count`, the packing
///   modes and `is_valid_array`);
/// * a loop follows the [`Orbit`] of its body from its starting state, which gives the state
///   after any number of passes in O(1) once the orbit is known up to its first repeated state
///   (and tells an endless repeat); loops that start in the same state share the orbit;
/// * a key names the struct stack by the number of type chunks processed so far instead of
///   copying it (only a chunk changes the stack). Every chunk thus starts afresh, but each
///   chunk matches at least one field of the dtype (or pushes a complex-like struct), so there
///   are at most about twice as many chunks as the dtype's fields, counted as often as they
///   are nested.
///
/// The work is thus linear in the length of the format string for a given dtype.
/// [`Machine::steps`] counts it (bytes read, iterations of the chunk loop, and the passes and
/// segments started, replayed or skipped); `tests/format_properties.rs` bounds it by a small
/// multiple of the length on pathological strings and on nests 25,600 levels deep.
struct Machine<'a> {
    fmt: &'a [u8],
    root: &'a TypeInfo,
    stack: Vec<Elem>,
    /// `ctx->head` as an index into `stack` (`None` is NULL); `stack.len() == head + 1`.
    head: Option<usize>,
    fmt_offset: usize,
    new_count: usize,
    enc_count: usize,
    struct_alignment: usize,
    is_complex: bool,
    enc_type: u8,
    new_packmode: u8,
    enc_packmode: u8,
    is_valid_array: bool,
    /// An exception set without failing (the standard size of `'g'`), reported if nothing
    /// replaces it.
    pending: Option<Error>,
    /// Type chunks processed so far (the epoch of [`Key`]).
    chunks: u64,
    /// Work done so far (saturating).
    steps: Cell<u64>,
    /// Effects of segments that processed no type chunk, by starting position and state: a
    /// segment runs from a pass's start, or from where a loop or a `0T{` ends inside a pass, to
    /// the end of the pass.
    segments: HashMap<(usize, Key), Effect>,
    /// The segments being run, innermost last.
    open: Vec<OpenSegment>,
    /// Index into `orbits` by body position and starting state.
    orbit_ids: HashMap<(usize, Key), usize>,
    /// The orbits followed so far (only ever appended to: an index stays valid).
    orbits: Vec<Orbit>,
    /// The index of each state in its orbit, by orbit and state (to find the cycle).
    orbit_seen: HashMap<(usize, Key), usize>,
}

impl<'a> Machine<'a> {
    /// Mirrors `__Pyx_BufFmt_Init`. `root` has passed [`check_dtype`], so its first-field
    /// chain is finite.
    fn new(fmt: &'a [u8], root: &'a TypeInfo) -> Result<Self, Stop> {
        let mut m = Machine {
            fmt,
            root,
            stack: Vec::new(),
            head: None,
            fmt_offset: 0,
            new_count: 1,
            enc_count: 0,
            struct_alignment: 0,
            is_complex: false,
            enc_type: 0,
            new_packmode: b'@',
            enc_packmode: b'@',
            is_valid_array: false,
            pending: None,
            chunks: 0,
            steps: Cell::new(0),
            segments: HashMap::new(),
            open: Vec::new(),
            orbit_ids: HashMap::new(),
            orbits: Vec::new(),
            orbit_seen: HashMap::new(),
        };
        m.push(Elem {
            field: FieldRef::Root,
            parent_offset: 0,
        })?;
        let mut ty = root;
        while ty.group == TypeGroup::Struct {
            m.push(Elem {
                field: FieldRef::At(ty.fields, 0),
                parent_offset: 0,
            })?;
            // An empty struct: Cython reads the terminator's NULL type.
            ty = ty
                .fields
                .first()
                .ok_or(Stop::Undefined(Undefined::NullDereference))?
                .ty;
        }
        Ok(m)
    }

    /// Counts one unit of work.
    fn step(&self) {
        self.steps.set(self.steps.get().saturating_add(1));
    }

    /// The byte at `i`: the string, then its terminating NUL; reading further is undefined.
    fn byte(&self, i: usize) -> Result<u8, Stop> {
        self.step();
        match self.fmt.get(i) {
            Some(&b) => Ok(b),
            None if i == self.fmt.len() => Ok(0),
            None => Err(Stop::Undefined(Undefined::ReadPastEnd)),
        }
    }

    fn ty(&self, field: FieldRef) -> Option<&'a TypeInfo> {
        match field {
            FieldRef::Root => Some(self.root),
            FieldRef::At(f, i) => f.get(i).map(|f| f.ty),
        }
    }

    /// `ctx->head`, or the crash of dereferencing it when NULL.
    fn head(&self) -> Result<(usize, Elem), Stop> {
        self.head
            .and_then(|h| self.stack.get(h).map(|e| (h, *e)))
            .ok_or(Stop::Undefined(Undefined::NullDereference))
    }

    /// `ctx->head->field->type`, crashing on a NULL head (or the terminator's NULL type).
    fn head_type(&self) -> Result<&'a TypeInfo, Stop> {
        let (_, e) = self.head()?;
        self.ty(e.field)
            .ok_or(Stop::Undefined(Undefined::NullDereference))
    }

    /// `++ctx->head; *ctx->head = e`.
    fn push(&mut self, e: Elem) -> Result<(), Stop> {
        let h = self.head.map_or(0, |h| h + 1);
        self.stack.truncate(h);
        try_push(&mut self.stack, e)?;
        self.head = Some(h);
        Ok(())
    }

    fn set_head_field(&mut self, field: FieldRef) {
        if let Some(e) = self.head.and_then(|h| self.stack.get_mut(h)) {
            e.field = field;
        }
    }

    /// The state a pass depends on (see [`Key`]).
    fn key(&self) -> Key {
        Key {
            epoch: self.chunks,
            new_count: self.new_count,
            enc_count: self.enc_count,
            struct_alignment: self.struct_alignment,
            offset_mod: if self.struct_alignment == 0 {
                0
            } else {
                // `< ALIGN_MODULUS`, so it fits.
                (self.fmt_offset % ALIGN_MODULUS) as u8
            },
            enc_type: self.enc_type,
            new_packmode: self.new_packmode,
            enc_packmode: self.enc_packmode,
            is_complex: self.is_complex,
            is_valid_array: self.is_valid_array,
        }
    }

    /// Restores a state saved with [`Machine::key`] in the same epoch, all but `fmt_offset`.
    fn restore(&mut self, k: &Key) {
        self.new_count = k.new_count;
        self.enc_count = k.enc_count;
        self.struct_alignment = k.struct_alignment;
        self.is_complex = k.is_complex;
        self.enc_type = k.enc_type;
        self.new_packmode = k.new_packmode;
        self.enc_packmode = k.enc_packmode;
        self.is_valid_array = k.is_valid_array;
    }

    /// Mirrors `__Pyx_BufFmt_RaiseExpected`.
    fn raise_expected(&self) -> Stop {
        let got = describe(self.enc_type, self.is_complex);
        let head = self.head.and_then(|h| self.stack.get(h).map(|e| (h, *e)));
        let message = match head {
            None => format!("Buffer dtype mismatch, expected end but got {got}"),
            Some((_, e)) if e.field == FieldRef::Root => format!(
                "Buffer dtype mismatch, expected '{}' but got {got}",
                self.root.name
            ),
            Some((h, e)) => {
                let expected = self.ty(e.field).map_or("", |t| t.name);
                let parent = h
                    .checked_sub(1)
                    .and_then(|p| self.stack.get(p))
                    .and_then(|p| self.ty(p.field))
                    .map_or("", |t| t.name);
                format!(
                    "Buffer dtype mismatch, expected '{expected}' but got {got} in '{parent}.{}'",
                    e.field.name()
                )
            }
        };
        raise(message)
    }

    /// Mirrors `__Pyx_BufFmt_ParseNumber`: `-1` when the first byte is no digit (`ts`
    /// unchanged); digits accumulate in a C `int`, wrapping.
    fn parse_number(&self, ts: &mut usize) -> Result<i32, Stop> {
        let first = self.byte(*ts)?;
        if !first.is_ascii_digit() {
            return Ok(-1);
        }
        let mut t = *ts + 1;
        let mut count = i32::from(first - b'0');
        loop {
            let c = self.byte(t)?;
            if !c.is_ascii_digit() {
                break;
            }
            count = count.wrapping_mul(10).wrapping_add(i32::from(c - b'0'));
            t += 1;
        }
        *ts = t;
        Ok(count)
    }

    /// Mirrors `__Pyx_BufFmt_ExpectNumber`.
    fn expect_number(&self, ts: &mut usize) -> Result<i32, Stop> {
        let number = self.parse_number(ts)?;
        if number == -1 {
            let c = percent_c(self.byte(*ts)?)?;
            return Err(raise(format!(
                "Does not understand character buffer dtype format string ('{c}')"
            )));
        }
        Ok(number)
    }

    /// Mirrors `__Pyx_BufFmt_ProcessTypeChunk`: matches the pending run of `enc_count`
    /// elements of type `enc_type` against the next fields.
    fn process_type_chunk(&mut self) -> Result<(), Stop> {
        if self.enc_type == 0 {
            return Ok(());
        }
        self.chunks = self.chunks.saturating_add(1);
        let mut arraysize: usize = 1;

        // Validate the array size.
        let ty = self.head_type()?;
        let first_dim = ty.arraysize.first().copied().unwrap_or(0);
        if first_dim != 0 {
            let mut ndim: i32 = 0;
            let type_ndim = i32::try_from(ty.arraysize.len()).unwrap_or(i32::MAX);
            if self.enc_type == b's' || self.enc_type == b'p' {
                self.is_valid_array = ty.arraysize.len() == 1;
                ndim = 1;
                if self.enc_count != first_dim {
                    return Err(raise(format!(
                        "Expected a dimension of size {first_dim}, got {}",
                        self.enc_count
                    )));
                }
            }
            if !self.is_valid_array {
                return Err(raise(format!(
                    "Expected {type_ndim} dimensions, got {ndim}"
                )));
            }
            for &d in ty.arraysize {
                arraysize = arraysize.wrapping_mul(d);
            }
            self.is_valid_array = false;
            self.enc_count = 1;
        }

        let group = group_of(self.enc_type, self.is_complex);
        loop {
            self.step();
            let (h, elem) = self.head()?;
            let field = elem.field;
            let ty = self
                .ty(field)
                .ok_or(Stop::Undefined(Undefined::NullDereference))?;

            let size = if self.enc_packmode == b'@' || self.enc_packmode == b'^' {
                native_size(self.enc_type, self.is_complex)
            } else {
                match standard_size(self.enc_type, self.is_complex) {
                    Some(size) => size,
                    None => {
                        self.pending = Some(Error::value(
                            "Python does not define a standard format string size for long \
                             double ('g')..",
                        ));
                        0
                    }
                }
            };

            if self.enc_packmode == b'@' {
                let align_at = alignment(self.enc_type);
                let misalign = self.fmt_offset % align_at;
                if misalign > 0 {
                    self.fmt_offset = self.fmt_offset.wrapping_add(align_at - misalign);
                }
                if self.struct_alignment == 0 {
                    self.struct_alignment = padding(self.enc_type);
                }
            }

            if ty.size != size || ty.group != group {
                if ty.group == TypeGroup::Complex && !ty.fields.is_empty() {
                    // Special case: treat as a struct rather than a complex number.
                    let parent_offset = elem.parent_offset.wrapping_add(field.offset());
                    self.push(Elem {
                        field: FieldRef::At(ty.fields, 0),
                        parent_offset,
                    })?;
                    // `continue` in a do-while: the condition is evaluated.
                    if self.enc_count == 0 {
                        break;
                    }
                    continue;
                }
                let char_match =
                    (ty.group == TypeGroup::Char || group == TypeGroup::Char) && ty.size == size;
                if !char_match {
                    return Err(self.raise_expected());
                }
            }

            let offset = elem.parent_offset.wrapping_add(field.offset());
            if self.fmt_offset != offset {
                return Err(raise(format!(
                    "Buffer dtype mismatch; next field is at offset {} but {} expected",
                    self.fmt_offset as isize, offset as isize
                )));
            }
            self.fmt_offset = self.fmt_offset.wrapping_add(size);
            if arraysize != 0 {
                self.fmt_offset = self
                    .fmt_offset
                    .wrapping_add((arraysize.wrapping_sub(1)).wrapping_mul(size));
            }
            self.enc_count = self.enc_count.wrapping_sub(1);

            // Move to the next field, pushing or popping the struct stack.
            let mut field = field;
            let mut h = h;
            loop {
                self.step();
                if field == FieldRef::Root {
                    self.head = None;
                    if self.enc_count != 0 {
                        return Err(self.raise_expected());
                    }
                    break;
                }
                field = field.next();
                self.set_head_field(field);
                match self.ty(field) {
                    None => {
                        h = h
                            .checked_sub(1)
                            .ok_or(Stop::Undefined(Undefined::NullDereference))?;
                        self.stack.truncate(h + 1);
                        self.head = Some(h);
                        field = self.stack.get(h).map_or(FieldRef::Root, |e| e.field);
                        continue;
                    }
                    Some(t) if t.group == TypeGroup::Struct => {
                        let parent_offset = self
                            .stack
                            .get(h)
                            .map_or(0, |e| e.parent_offset)
                            .wrapping_add(field.offset());
                        if t.fields.is_empty() {
                            continue; // an empty struct
                        }
                        self.push(Elem {
                            field: FieldRef::At(t.fields, 0),
                            parent_offset,
                        })?;
                        break;
                    }
                    Some(_) => break,
                }
            }
            if self.enc_count == 0 {
                break;
            }
        }
        self.enc_type = 0;
        self.is_complex = false;
        Ok(())
    }

    /// Mirrors `__pyx_buffmt_parse_array`: `(2,3)` before a type; `ts` is at the `(`.
    fn parse_array(&mut self, ts: &mut usize) -> Result<(), Stop> {
        let mut t = *ts + 1;
        if self.new_count != 1 {
            return Err(raise(
                "Cannot handle repeated arrays in format string".to_string(),
            ));
        }
        // Process the previous element.
        self.process_type_chunk()?;
        // ndim of the field after it (the head has moved on).
        let ty = self.head_type()?;
        let ndim = i32::try_from(ty.arraysize.len()).unwrap_or(i32::MAX);
        let mut i: i32 = 0;
        loop {
            let c = self.byte(t)?;
            if c == 0 || c == b')' {
                break;
            }
            if matches!(c, b' ' | b'\x0c' | b'\r' | b'\n' | b'\t' | b'\x0b') {
                // `continue` without advancing.
                return Err(Stop::Undefined(Undefined::InfiniteLoop));
            }
            let number = self.expect_number(&mut t)?;
            if i < ndim {
                let expected = usize::try_from(i)
                    .ok()
                    .and_then(|i| ty.arraysize.get(i))
                    .copied()
                    .unwrap_or(0);
                if number as usize != expected {
                    return Err(raise(format!(
                        "Expected a dimension of size {expected}, got {number}"
                    )));
                }
            }
            let c = self.byte(t)?;
            if c != b',' && c != b')' {
                let c = percent_c(c)?;
                return Err(raise(format!(
                    "Expected a comma in format string, got '{c}'"
                )));
            }
            if c == b',' {
                t += 1;
            }
            i = i.wrapping_add(1);
        }
        if i != ndim {
            return Err(raise(format!("Expected {ndim} dimension(s), got {i}")));
        }
        if self.byte(t)? == 0 {
            return Err(raise(
                "Unexpected end of format string, expected ')'".to_string(),
            ));
        }
        self.is_valid_array = true;
        self.new_count = 1;
        *ts = t + 1;
        Ok(())
    }

    /// Starts the next pass of `frame`'s loop, or ends the loop: follows the orbit of the body
    /// as far as it is known (a whole cycle of passes at a time once it repeats), replays a pass
    /// run before from the same state, and otherwise returns the body's position to run the
    /// pass from. `None` when all `count` passes are done.
    fn next_pass(&mut self, frame: &mut Frame) -> Result<Option<usize>, Stop> {
        loop {
            self.step();
            if frame.done >= frame.count {
                return Ok(None);
            }
            let key = self.key();
            if frame.count == 1 {
                // A single pass: nothing to skip.
                if let Some(&effect) = self.segments.get(&(frame.body, key)) {
                    self.restore(&effect.after);
                    self.fmt_offset = self.fmt_offset.wrapping_add(effect.offset_delta);
                    frame.done += 1;
                    frame.last_ret = effect.ret;
                    continue;
                }
                frame.running = Some(self.running(key));
                return Ok(Some(frame.body));
            }
            let follow = match frame.orbit {
                Some(follow) => follow,
                None => {
                    let follow = Follow {
                        id: self.orbit_for(frame.body, key)?,
                        base: frame.done,
                        base_offset: self.fmt_offset,
                    };
                    frame.orbit = Some(follow);
                    follow
                }
            };
            let Some(orbit) = self.orbits.get(follow.id) else {
                // Unreachable: orbit ids index `orbits`, which only grows.
                frame.orbit = None;
                frame.running = Some(self.running(key));
                return Ok(Some(frame.body));
            };
            // The loop is at state `at` of the orbit and stops at state `target`.
            let at = frame.done - follow.base;
            let target = frame.count - follow.base;
            let known = match orbit.cycle {
                Some((mu, lambda)) => {
                    if frame.count > ENDLESS_REPEAT
                        && follow.base.saturating_add(mu + lambda) < frame.count
                    {
                        // The state repeats before the loop ends: Cython loops ~2**64 times.
                        return Err(Stop::Undefined(Undefined::EndlessRepeat));
                    }
                    target
                }
                None => orbit.after.len(),
            };
            if known > at {
                let j = known.min(target);
                let (after, offset, ret) = orbit.at(j);
                self.restore(&after);
                self.fmt_offset = follow.base_offset.wrapping_add(offset);
                frame.done = follow.base + j;
                frame.last_ret = ret;
                continue;
            }
            // The state after this pass is not known yet.
            if let Some(&effect) = self.segments.get(&(frame.body, key)) {
                self.extend_orbit(follow.id, effect)?;
                continue;
            }
            frame.running = Some(self.running(key));
            return Ok(Some(frame.body));
        }
    }

    fn running(&self, key: Key) -> Running {
        Running {
            key,
            offset: self.fmt_offset,
            chunks: self.chunks,
        }
    }

    /// The orbit of `body` from state `key`, a new one if it has not been followed before.
    fn orbit_for(&mut self, body: usize, key: Key) -> Result<usize, Stop> {
        if let Some(&id) = self.orbit_ids.get(&(body, key)) {
            return Ok(id);
        }
        let id = self.orbits.len();
        try_push(
            &mut self.orbits,
            Orbit {
                start: key,
                after: Vec::new(),
                cycle: None,
            },
        )?;
        try_insert(&mut self.orbit_ids, (body, key), id)?;
        try_insert(&mut self.orbit_seen, (id, key), 0)?;
        Ok(id)
    }

    /// Appends the state after the orbit's last known pass, and notes the cycle when the
    /// state has been seen in the orbit before.
    fn extend_orbit(&mut self, id: usize, effect: Effect) -> Result<(), Stop> {
        self.step();
        let Some(orbit) = self.orbits.get_mut(id) else {
            return Ok(()); // unreachable: see `next_pass`
        };
        if orbit.cycle.is_some() {
            return Ok(());
        }
        let last = orbit.after.last().map_or(0, |s| s.offset);
        let index = orbit.after.len() + 1;
        try_push(
            &mut orbit.after,
            OrbitState {
                key: effect.after,
                offset: last.wrapping_add(effect.offset_delta),
                ret: effect.ret,
            },
        )?;
        match self.orbit_seen.get(&(id, effect.after)) {
            Some(&mu) => orbit.cycle = Some((mu, index - mu)),
            None => try_insert(&mut self.orbit_seen, (id, effect.after), index)?,
        }
        Ok(())
    }

    /// A pass run over `frame`'s body returned at `ret`: remembers its effect, and extends the
    /// loop's orbit with it, if it processed no type chunk.
    fn pass_returned(&mut self, frame: &mut Frame, ret: usize) -> Result<(), Stop> {
        frame.done = frame.done.saturating_add(1);
        frame.last_ret = ret;
        let Some(run) = frame.running.take() else {
            return Ok(());
        };
        if run.chunks != self.chunks {
            // The stack has changed: the next pass starts a new orbit.
            frame.orbit = None;
            return Ok(());
        }
        let effect = Effect {
            after: self.key(),
            offset_delta: self.fmt_offset.wrapping_sub(run.offset),
            ret,
        };
        try_insert(&mut self.segments, (frame.body, run.key), effect)?;
        if let Some(follow) = frame.orbit {
            self.extend_orbit(follow.id, effect)?;
        }
        Ok(())
    }

    /// Parsing goes on at `ts` inside the pass of the loop at `depth` (after a loop or a `0T{`):
    /// if the rest of the pass was run from this position and state before, replays it and
    /// returns where the pass returns; else starts remembering it.
    fn segment_point(&mut self, ts: usize, depth: usize) -> Result<Option<usize>, Stop> {
        if depth == 0 {
            return Ok(None); // the outermost invocation: it returns only at the end
        }
        self.step();
        let key = self.key();
        if let Some(&effect) = self.segments.get(&(ts, key)) {
            self.restore(&effect.after);
            self.fmt_offset = self.fmt_offset.wrapping_add(effect.offset_delta);
            return Ok(Some(effect.ret));
        }
        try_push(
            &mut self.open,
            OpenSegment {
                pos: ts,
                key,
                offset: self.fmt_offset,
                chunks: self.chunks,
                depth,
            },
        )
        .map(|()| None)
    }

    /// The pass of the loop at `depth` returned at `ret`: remembers the effect of each segment
    /// that ends with it, if it processed no type chunk.
    fn close_segments(&mut self, depth: usize, ret: usize) -> Result<(), Stop> {
        while let Some(&seg) = self.open.last() {
            if seg.depth != depth {
                break;
            }
            self.open.pop();
            if seg.chunks == self.chunks {
                let effect = Effect {
                    after: self.key(),
                    offset_delta: self.fmt_offset.wrapping_sub(seg.offset),
                    ret,
                };
                try_insert(&mut self.segments, (seg.pos, seg.key), effect)?;
            }
        }
        Ok(())
    }

    /// The loop of `frame` is over: `ts = ts_after_sub`, and the saved alignment comes back.
    /// Starts the next pass of `frame` (pushed on `frames`, parsing resumes at its body)
    /// or, when the loop is done, ends it; returns where parsing resumes and the return of
    /// a segment that replays at once, if any.
    fn enter_pass(
        &mut self,
        mut frame: Frame,
        frames: &mut Vec<Frame>,
    ) -> Result<(usize, Option<usize>), Stop> {
        match self.next_pass(&mut frame)? {
            Some(body) => {
                try_push(frames, frame)?;
                Ok((body, None))
            }
            None => {
                let ts = self.end_loop(&frame);
                Ok((ts, self.segment_point(ts, frames.len())?))
            }
        }
    }

    fn end_loop(&mut self, frame: &Frame) -> usize {
        if frame.saved_alignment != 0 {
            self.struct_alignment = frame.saved_alignment;
        }
        frame.last_ret
    }

    /// Mirrors `__Pyx_BufFmt_CheckString`, its recursion for `T{...}` kept on `frames`.
    fn check_string(&mut self) -> Result<(), Stop> {
        let little_endian = cfg!(target_endian = "little");
        let mut frames: Vec<Frame> = Vec::new();
        let mut ts = 0usize;
        loop {
            let c = self.byte(ts)?;
            // `Some(ts)` where the current invocation of CheckString returns.
            let mut returned: Option<usize> = None;
            match c {
                0 => {
                    if self.enc_type != 0 && self.head.is_none() {
                        return Err(self.raise_expected());
                    }
                    self.process_type_chunk()?;
                    if self.head.is_some() {
                        return Err(self.raise_expected());
                    }
                    returned = Some(ts);
                }
                b' ' | b'\r' | b'\n' => ts += 1,
                b'<' => {
                    if !little_endian {
                        return Err(raise(
                            "Little-endian buffer not supported on big-endian compiler".to_string(),
                        ));
                    }
                    self.new_packmode = b'=';
                    ts += 1;
                }
                b'>' | b'!' => {
                    if little_endian {
                        return Err(raise(
                            "Big-endian buffer not supported on little-endian compiler".to_string(),
                        ));
                    }
                    self.new_packmode = b'=';
                    ts += 1;
                }
                b'=' | b'@' | b'^' => {
                    self.new_packmode = c;
                    ts += 1;
                }
                b'T' => {
                    let struct_count = self.new_count;
                    let saved_alignment = self.struct_alignment;
                    self.new_count = 1;
                    ts += 1;
                    if self.byte(ts)? != b'{' {
                        return Err(raise(
                            "Buffer acquisition: Expected '{' after 'T'".to_string(),
                        ));
                    }
                    self.process_type_chunk()?;
                    self.enc_type = 0;
                    self.enc_count = 0;
                    self.struct_alignment = 0;
                    ts += 1;
                    if struct_count == 0 {
                        // No pass: parsing goes on inside the braces.
                        if saved_alignment != 0 {
                            self.struct_alignment = saved_alignment;
                        }
                        returned = self.segment_point(ts, frames.len())?;
                    } else {
                        let frame = Frame {
                            body: ts,
                            count: struct_count,
                            done: 0,
                            saved_alignment,
                            last_ret: ts,
                            orbit: None,
                            running: None,
                        };
                        (ts, returned) = self.enter_pass(frame, &mut frames)?;
                    }
                }
                b'}' => {
                    let alignment = self.struct_alignment;
                    ts += 1;
                    self.process_type_chunk()?;
                    self.enc_type = 0;
                    if alignment != 0 && self.fmt_offset % alignment != 0 {
                        // Pad the struct to the alignment of its first member.
                        self.fmt_offset = self
                            .fmt_offset
                            .wrapping_add(alignment - self.fmt_offset % alignment);
                    }
                    returned = Some(ts);
                }
                b'x' => {
                    self.process_type_chunk()?;
                    self.fmt_offset = self.fmt_offset.wrapping_add(self.new_count);
                    self.new_count = 1;
                    self.enc_count = 0;
                    self.enc_type = 0;
                    self.enc_packmode = self.new_packmode;
                    ts += 1;
                }
                b'Z' | b's' => self.type_char(&mut ts, c)?,
                c if is_type_char(c) => self.type_char(&mut ts, c)?,
                b':' => {
                    ts += 1;
                    while self.byte(ts)? != b':' {
                        ts += 1;
                    }
                    ts += 1;
                }
                b'(' => self.parse_array(&mut ts)?,
                _ => {
                    let number = self.expect_number(&mut ts)?;
                    self.new_count = number as usize;
                }
            }
            // Returns from invocations of CheckString, and the segments that replay at once.
            while let Some(ret) = returned.take() {
                self.close_segments(frames.len(), ret)?;
                let Some(mut frame) = frames.pop() else {
                    // The outermost invocation returned a non-NULL pointer: accepted.
                    return Ok(());
                };
                self.pass_returned(&mut frame, ret)?;
                // The vector had room for the frame a moment ago: this does not allocate.
                (ts, returned) = self.enter_pass(frame, &mut frames)?;
            }
        }
    }

    /// The type-character cases of `__Pyx_BufFmt_CheckString` (`'Z'`, the pooling types and
    /// `'s'`), `ts` at the character.
    fn type_char(&mut self, ts: &mut usize, c: u8) -> Result<(), Stop> {
        let mut got_z = false;
        let mut ch = c;
        if c == b'Z' {
            got_z = true;
            *ts += 1;
            ch = self.byte(*ts)?;
            if !matches!(ch, b'f' | b'd' | b'g') {
                return Err(raise("Unexpected format string character: 'Z'".to_string()));
            }
        }
        if ch != b's'
            && self.enc_type == ch
            && got_z == self.is_complex
            && self.enc_packmode == self.new_packmode
            && !self.is_valid_array
        {
            // Continue pooling the same type.
            self.enc_count = self.enc_count.wrapping_add(self.new_count);
            self.new_count = 1;
            *ts += 1;
            return Ok(());
        }
        // 's', or a new type that cannot be added to the current pool.
        self.process_type_chunk()?;
        self.enc_count = self.new_count;
        self.enc_packmode = self.new_packmode;
        self.enc_type = ch;
        self.is_complex = got_z;
        *ts += 1;
        self.new_count = 1;
        Ok(())
    }
}
