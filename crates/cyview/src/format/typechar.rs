//! The type characters of a format string: their sizes, alignments, groups and names, as
//! `__Pyx_BufFmt_DescribeTypeChar` and the `__Pyx_BufFmt_TypeCharTo*` functions of `Buffer.c`
//! give them (in that file's order).

use core::ffi::{c_int, c_long, c_longlong, c_short};
use core::mem::{align_of, size_of};

use super::typeinfo::TypeGroup;

/// `(sizeof(long double), alignment of long double in a struct)` on the target.
pub(super) const LONG_DOUBLE_LAYOUT: (usize, usize) = long_double_layout();

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
pub(super) const ALIGN_MODULUS: usize = 16;

/// The characters of the pooling case of `__Pyx_BufFmt_CheckString` (not `'s'`, `'Z'`, and
/// not `'P'`, which it does not parse).
pub(super) fn is_type_char(ch: u8) -> bool {
    b"?cbBhHiIlLqQfdgOp".contains(&ch)
}

/// Mirrors `__Pyx_BufFmt_DescribeTypeChar`.
pub(super) fn describe(ch: u8, is_complex: bool) -> &'static str {
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

/// Mirrors `__Pyx_BufFmt_TypeCharToStandardSize`; `None` for `'g'`, for which Cython sets
/// "Python does not define a standard format string size for long double ('g').." and
/// returns 0.
pub(super) const fn standard_size(ch: u8, is_complex: bool) -> Option<usize> {
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

/// Mirrors `__Pyx_BufFmt_TypeCharToNativeSize`; only called with characters it knows.
pub(super) const fn native_size(ch: u8, is_complex: bool) -> usize {
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

/// Mirrors `__Pyx_BufFmt_TypeCharToAlignment` (`sizeof(struct {char c; T x;}) - sizeof(T)`);
/// the complex flag is ignored, as in Cython.
pub(super) const fn alignment(ch: u8) -> usize {
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
pub(super) const fn padding(ch: u8) -> usize {
    let size = native_size(ch, false);
    let align = alignment(ch);
    (size + 1).div_ceil(align) * align - size
}

const _: () = {
    let chars = b"?cbBhHiIlLqQfdgOPsp";
    let mut i = 0;
    while i < chars.len() {
        assert!(ALIGN_MODULUS.is_multiple_of(alignment(chars[i])));
        assert!(ALIGN_MODULUS.is_multiple_of(padding(chars[i])));
        i += 1;
    }
};

/// Mirrors `__Pyx_BufFmt_TypeCharToGroup`.
pub(super) const fn group_of(ch: u8, is_complex: bool) -> TypeGroup {
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
