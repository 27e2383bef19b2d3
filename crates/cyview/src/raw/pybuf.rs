//! The crate's only CPython definitions, fenced here: the `PyBUF_*` request flags of the
//! buffer protocol (`Include/pybuffer.h`, plain numbers) and the flags Cython's compiler
//! requests for a declaration (`get_buf_flags`). Nothing here calls CPython; `cyview-py`
//! passes these flags to `PyObject_GetBuffer` and answers them when it exports.

use super::validate::contiguity;
use crate::abi::{Access, AxisSpec, Contiguity};

/// CPython's buffer request flags (`Include/pybuffer.h`).
pub mod flags {
    /// `PyBUF_WRITABLE`.
    pub const WRITABLE: u32 = 0x0001;
    /// `PyBUF_FORMAT`.
    pub const FORMAT: u32 = 0x0004;
    /// `PyBUF_ND`.
    pub const ND: u32 = 0x0008;
    /// `PyBUF_STRIDES`.
    pub const STRIDES: u32 = 0x0010 | ND;
    /// `PyBUF_C_CONTIGUOUS`.
    pub const C_CONTIGUOUS: u32 = 0x0020 | STRIDES;
    /// `PyBUF_F_CONTIGUOUS`.
    pub const F_CONTIGUOUS: u32 = 0x0040 | STRIDES;
    /// `PyBUF_ANY_CONTIGUOUS`.
    pub const ANY_CONTIGUOUS: u32 = 0x0080 | STRIDES;
    /// `PyBUF_INDIRECT`.
    pub const INDIRECT: u32 = 0x0100 | STRIDES;
    /// `PyBUF_RECORDS_RO`.
    pub const RECORDS_RO: u32 = STRIDES | FORMAT;
    /// `PyBUF_FULL_RO`.
    pub const FULL_RO: u32 = INDIRECT | FORMAT;
}

/// The buffer request flags Cython passes for a declaration.
///
/// Mirrors `get_buf_flags` (`Compiler/MemoryView.py`) plus the call site's writable flag:
/// C- or Fortran-contiguous declarations ask `PyBUF_C_CONTIGUOUS | PyBUF_FORMAT` /
/// `PyBUF_F_CONTIGUOUS | PyBUF_FORMAT`; any indirect or generic axis `PyBUF_FULL_RO`;
/// otherwise `PyBUF_RECORDS_RO`; a non-`const` declaration adds `PyBUF_WRITABLE`.
pub fn buffer_flags(specs: &[AxisSpec], writable: bool) -> u32 {
    let base = match contiguity(specs) {
        Contiguity::C => flags::C_CONTIGUOUS | flags::FORMAT,
        Contiguity::Fortran => flags::F_CONTIGUOUS | flags::FORMAT,
        Contiguity::None if specs.iter().any(|s| s.access != Access::Direct) => flags::FULL_RO,
        Contiguity::None => flags::RECORDS_RO,
    };
    if writable {
        base | flags::WRITABLE
    } else {
        base
    }
}
