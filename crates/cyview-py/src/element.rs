//! [`CythonElement`]: the Rust types a Cython memoryview can hold (integers, floats,
//! complex numbers, `#[repr(C)]` structs through [`element_struct!`](crate::element_struct)),
//! each with the `TypeInfo` Cython's format check compares against, and which of an
//! element's bytes are initialised (its fields', not its padding) for an export.

use cyview::format::{self, TypeInfo};
use cyview::FromBytes;
use pyo3::exceptions::{PyMemoryError, PyValueError};
use pyo3::prelude::*;

/// The element types of Rust memory that Cython can view: a [`FromBytes`] type with the
/// [`TypeInfo`] of the Cython dtype it is. The buffer's format string is
/// [`pep3118_format`](cyview::format::pep3118_format) of it.
///
/// Exports copy only the bytes `TYPE_INFO`'s fields cover: a `#[repr(C)]` struct with
/// padding is exported through a zeroed buffer written field by field, so no padding
/// (uninitialised) byte ever reaches Python.
///
/// Implemented for `i8`-`i64`, `u8`-`u64`, `isize`, `usize`, `f32`, `f64` and (feature
/// `num-complex`, on by default) `num_complex::Complex<f32>` / `Complex<f64>`; for a
/// `#[repr(C)]` struct use [`element_struct!`](crate::element_struct). `bool` is not an
/// element: a view may read any byte, and only 0 and 1 are `bool`s.
///
/// # Safety
///
/// `TYPE_INFO` must describe `Self`: its size is `size_of::<Self>()`, and for a struct its
/// fields are `Self`'s fields at their offsets with their types, so that every byte a field
/// covers is initialised in every value of `Self` (bytes no field covers may be padding).
pub unsafe trait CythonElement: FromBytes {
    /// The Cython dtype (`format::DOUBLE` for `f64`).
    const TYPE_INFO: &'static TypeInfo;

    /// Whether some byte of `Self` is padding (covered by no field of `TYPE_INFO`).
    /// Exports copy a padded type field by field into zeroed memory, others in one copy.
    /// [`element_struct!`](crate::element_struct) computes it at compile time from
    /// `TYPE_INFO`; it must be `true` whenever `Self` has padding (part of the contract).
    const PADDED: bool;
}

/// Whether a type described by `info` has bytes no field covers: a struct whose fields'
/// extents do not add up to its size, or with a padded field type; a cyclic or absurdly
/// deep `TypeInfo` counts as padded (the export then checks it at run time and refuses it).
/// Fields of a `#[repr(C)]` struct never overlap, so the sum decides. Used by
/// [`element_struct!`](crate::element_struct) in a constant.
#[doc(hidden)]
pub const fn __padded(info: &TypeInfo) -> bool {
    padded_at(info, 0)
}

const fn padded_at(info: &TypeInfo, depth: u32) -> bool {
    if depth > MAX_TYPE_DEPTH {
        return true;
    }
    if info.fields.is_empty() {
        return false;
    }
    let mut covered = 0usize;
    let mut i = 0;
    while i < info.fields.len() {
        let f = &info.fields[i];
        if padded_at(f.ty, depth + 1) {
            return true;
        }
        covered = covered.wrapping_add(f.ty.extent());
        i += 1;
    }
    covered != info.size
}

macro_rules! element {
    ($($t:ty => $info:expr),* $(,)?) => { $(
        // SAFETY: the TypeInfo of the C type with the same size and kind as the Rust
        // primitive (`format`'s constants are sized from `core::ffi`).
        unsafe impl CythonElement for $t {
            const TYPE_INFO: &'static TypeInfo = &$info;
            const PADDED: bool = false;
        }
    )* };
}
/// C's `long` when it has 8 bytes (LP64), else `long long`: what Cython calls an `i64`.
const LONG_64: TypeInfo = if core::mem::size_of::<core::ffi::c_long>() == 8 {
    format::LONG
} else {
    format::LONG_LONG
};
/// The unsigned twin of [`LONG_64`].
const ULONG_64: TypeInfo = if core::mem::size_of::<core::ffi::c_long>() == 8 {
    format::UNSIGNED_LONG
} else {
    format::UNSIGNED_LONG_LONG
};
element!(i8 => format::SIGNED_CHAR, u8 => format::UNSIGNED_CHAR, i16 => format::SHORT,
         u16 => format::UNSIGNED_SHORT, i32 => format::INT, u32 => format::UNSIGNED_INT,
         i64 => LONG_64, u64 => ULONG_64, isize => format::PY_SSIZE_T, usize => format::SIZE_T,
         f32 => format::FLOAT, f64 => format::DOUBLE);
#[cfg(feature = "num-complex")]
element!(num_complex::Complex<f32> => format::FLOAT_COMPLEX,
         num_complex::Complex<f64> => format::DOUBLE_COMPLEX);

/// What [`element_struct!`](crate::element_struct) needs to know of a field's Rust type:
/// whether it has padding, and the `TypeInfo` that says where (for an array, its
/// element's). Implemented for every [`CythonElement`] and arrays of them.
///
/// # Safety
///
/// `PADDED` is `true` whenever the type has padding, and then `ELEMENT`'s fields cover
/// exactly the initialised bytes of one element (as [`CythonElement`] requires).
#[doc(hidden)]
pub unsafe trait __Field {
    /// Whether some byte of the type is padding.
    const PADDED: bool;
    /// The `TypeInfo` of the type (of its element, for an array).
    const ELEMENT: &'static TypeInfo;
}

// SAFETY: `CythonElement`'s contract is this one.
unsafe impl<T: CythonElement> __Field for T {
    const PADDED: bool = T::PADDED;
    const ELEMENT: &'static TypeInfo = T::TYPE_INFO;
}

// SAFETY: an array has no padding between its elements: its bytes are padding exactly
// where its element's are.
unsafe impl<T: CythonElement, const N: usize> __Field for [T; N] {
    const PADDED: bool = T::PADDED;
    const ELEMENT: &'static TypeInfo = T::TYPE_INFO;
}

/// Whether `a` and `b` have the same layout: size, array dimensions, and fields at the same
/// offsets with the same layouts (names and type groups aside); a deeper nesting than an
/// export follows counts as different.
const fn same_layout(a: &TypeInfo, b: &TypeInfo, depth: u32) -> bool {
    if depth > MAX_TYPE_DEPTH
        || a.size != b.size
        || a.arraysize.len() != b.arraysize.len()
        || a.fields.len() != b.fields.len()
    {
        return false;
    }
    let mut i = 0;
    while i < a.arraysize.len() {
        if a.arraysize[i] != b.arraysize[i] {
            return false;
        }
        i += 1;
    }
    let mut i = 0;
    while i < a.fields.len() {
        let (f, g) = (&a.fields[i], &b.fields[i]);
        if f.offset != g.offset || !same_layout(f.ty, g.ty, depth + 1) {
            return false;
        }
        i += 1;
    }
    true
}

/// `element_struct!`'s check of one field (the projection names its Rust type `F`): a
/// padded field type must be described by its own layout (`info`, without its array
/// dimensions when `F` is an array, has `F`'s element layout), so that the export sees its
/// padding; a field type without padding may be given any `TypeInfo` of its size
/// (`struct_type_info!` checks the size).
#[doc(hidden)]
pub const fn __field_describes_padding<S, F: __Field>(
    _project: fn(*const S) -> *const F,
    info: &TypeInfo,
) -> bool {
    if !F::PADDED {
        return true;
    }
    let element = TypeInfo {
        arraysize: &[],
        ..*info
    };
    let info = if info.arraysize.is_empty() {
        info
    } else {
        &element
    };
    same_layout(info, F::ELEMENT, 0)
}

/// Implements [`CythonElement`] for a `#[repr(C)]` (or `#[repr(C, packed)]`) struct that is
/// already [`FromBytes`], from its fields' `TypeInfo`s, as
/// [`struct_type_info!`](cyview::struct_type_info) takes them (sizes and offsets are checked
/// against the Rust type at compile time).
///
/// Each field's Rust type must be a [`CythonElement`] (or an array of one): a nested struct
/// goes through `element_struct!` first. When it has padding, the field's `TypeInfo` must
/// have its layout (its own `TYPE_INFO`), or the struct does not compile: exports copy the
/// bytes the `TypeInfo`s cover, and padding must never reach Python.
///
/// ```
/// use cyview::format::{pep3118_format, DOUBLE, INT};
/// use cyview_py::{element_struct, CythonElement};
///
/// // cdef struct Pair: int x; double y
/// #[derive(Clone, Copy)]
/// #[repr(C)]
/// struct Pair { x: i32, y: f64 }
/// // SAFETY: two numbers; any bit pattern of the fields (and of the padding) is valid.
/// unsafe impl cyview::FromBytes for Pair {}
/// element_struct!(Pair as "Pair" { x: &INT, y: &DOUBLE });
///
/// assert_eq!(pep3118_format(Pair::TYPE_INFO).unwrap(), "^T{i:x:4xd:y:}");
/// ```
///
/// A padded field type described by a scalar `TypeInfo` of its size does not compile:
///
/// ```compile_fail
/// use cyview::format::{LONG_LONG, INT, UNSIGNED_CHAR};
/// use cyview_py::element_struct;
/// #[derive(Clone, Copy)]
/// #[repr(C)]
/// struct Inner { a: u8, b: i32 } // 3 bytes of padding after `a`
/// // SAFETY: numbers only.
/// unsafe impl cyview::FromBytes for Inner {}
/// element_struct!(Inner as "Inner" { a: &UNSIGNED_CHAR, b: &INT });
/// #[derive(Clone, Copy)]
/// #[repr(C)]
/// struct Outer { inner: Inner }
/// // SAFETY: as above.
/// unsafe impl cyview::FromBytes for Outer {}
/// element_struct!(Outer as "Outer" { inner: &LONG_LONG });
/// ```
#[macro_export]
macro_rules! element_struct {
    (packed $ty:ty as $name:literal { $($field:ident : $info:expr),+ $(,)? }) => {
        $crate::__element_struct!(packed, $ty, $name, $($field: $info),+);
    };
    ($ty:ty as $name:literal { $($field:ident : $info:expr),+ $(,)? }) => {
        $crate::__element_struct!(, $ty, $name, $($field: $info),+);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __element_struct {
    ($($packed:ident)?, $ty:ty, $name:literal, $($field:ident : $info:expr),+) => {
        const _: () = {$(
            ::core::assert!(
                $crate::__field_describes_padding::<$ty, _>(
                    |p| {
                        // SAFETY: never called; the closure only names the field's type.
                        unsafe { ::core::ptr::addr_of!((*p).$field) }
                    },
                    $info,
                ),
                ::core::concat!(
                    "element_struct!: the field `",
                    ::core::stringify!($field),
                    "` has padding that its TypeInfo does not show: give its type's own TYPE_INFO"
                )
            );
        )+};
        // SAFETY: `struct_type_info!` takes size, offsets and field sizes from `$ty` itself,
        // and the check above makes every padded field's `TypeInfo` show its padding.
        unsafe impl $crate::CythonElement for $ty {
            const TYPE_INFO: &'static $crate::__cyview::format::TypeInfo =
                $crate::__cyview::struct_type_info!($($packed)? $ty as $name { $($field: $info),+ });
            const PADDED: bool = $crate::__padded(Self::TYPE_INFO);
        }
    };
}

/// Deepest struct nesting an export follows (a cyclic `TypeInfo` is refused, not followed).
const MAX_TYPE_DEPTH: u32 = format::MAX_DTYPE_DEPTH as u32;

/// The byte ranges of one element of type `info` (at `base`) that its fields cover, in
/// order of the fields; `None` for a cyclic or absurdly nested `TypeInfo`, or more ranges
/// than `limit`.
fn field_ranges(
    info: &TypeInfo,
    base: usize,
    depth: u32,
    limit: usize,
    out: &mut Vec<(usize, usize)>,
) -> Option<()> {
    if depth > MAX_TYPE_DEPTH || out.len() > limit {
        return None;
    }
    let count = info
        .arraysize
        .iter()
        .try_fold(1usize, |a, &n| a.checked_mul(n))?;
    if info.fields.is_empty() {
        let end = base.checked_add(info.size.checked_mul(count)?)?;
        out.push((base, end));
        return Some(());
    }
    for i in 0..count {
        let at = base.checked_add(info.size.checked_mul(i)?)?;
        for f in info.fields {
            field_ranges(f.ty, at.checked_add(f.offset)?, depth + 1, limit, out)?;
        }
    }
    Some(())
}

/// Which bytes of a `T` an export copies: `Ok(None)` for all of them (no padding),
/// `Ok(Some(ranges))` for the field bytes only.
fn initialised_ranges<T: CythonElement>() -> PyResult<Option<Vec<(usize, usize)>>> {
    let size = std::mem::size_of::<T>();
    let refuse = || {
        PyValueError::new_err(format!(
            "the TypeInfo of '{}' is cyclic, nested deeper than {MAX_TYPE_DEPTH} levels, or \
             has fields outside its {size} bytes: cannot export it",
            T::TYPE_INFO.name
        ))
    };
    let mut ranges = Vec::new();
    field_ranges(T::TYPE_INFO, 0, 0, size.max(1), &mut ranges).ok_or_else(refuse)?;
    ranges.sort_unstable();
    if ranges.iter().any(|&(a, b)| a > b || b > size) {
        return Err(refuse());
    }
    // Covered without gaps from 0 to `size`: every byte is a field byte.
    let mut end = 0;
    for &(a, b) in &ranges {
        if a > end {
            return Ok(Some(ranges));
        }
        end = end.max(b);
    }
    Ok(if end == size { None } else { Some(ranges) })
}

/// The initialised bytes of `data` in a zeroed, 8-byte aligned allocation (whole words):
/// all bytes of each element when its type has no padding, else only its fields' bytes.
///
/// # Errors
///
/// `MemoryError` when the allocation fails; `ValueError` for a `TypeInfo` that cannot be
/// followed (see [`initialised_ranges`]).
pub(crate) fn export_words<T: CythonElement>(data: &[T]) -> PyResult<Vec<u64>> {
    let bytes = std::mem::size_of_val(data);
    let mut words: Vec<u64> = Vec::new();
    words
        .try_reserve_exact(bytes.div_ceil(8))
        .map_err(|_| PyMemoryError::new_err(format!("cannot allocate {bytes} bytes")))?;
    words.resize(bytes.div_ceil(8), 0);
    let src = data.as_ptr().cast::<u8>();
    let dst = words.as_mut_ptr().cast::<u8>();
    // Decided at compile time (`T::PADDED` is a constant); the run-time check of the
    // padded path also refuses a TypeInfo it cannot follow.
    let ranges = if T::PADDED {
        initialised_ranges::<T>()?
    } else {
        None
    };
    match ranges {
        // SAFETY: `words` has at least `bytes` bytes; the regions do not overlap; every
        // byte of `data` is initialised (`T` has no padding, `CythonElement::PADDED`'s contract,
        // or its fields cover all its bytes; field bytes are initialised by `CythonElement`'s
        // contract).
        None => unsafe { std::ptr::copy_nonoverlapping(src, dst, bytes) },
        Some(ranges) => {
            let size = std::mem::size_of::<T>();
            for i in 0..data.len() {
                for &(a, b) in &ranges {
                    let at = i * size + a;
                    // SAFETY: `a <= b <= size` (checked by `initialised_ranges`), so
                    // `at..at + b - a` lies in element `i` of `data` and of `words`; those
                    // are field bytes, initialised by `CythonElement`'s contract; no overlap.
                    unsafe { std::ptr::copy_nonoverlapping(src.add(at), dst.add(at), b - a) };
                }
            }
        }
    }
    Ok(words)
}
