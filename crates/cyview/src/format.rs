//! PEP 3118 format strings matched against a declared element type, as Cython does.
//!
//! The types mirror `__Pyx_TypeInfo` and `__Pyx_StructField` (`Buffer.c`); the matcher
//! (`check_format`, mirroring `__Pyx_BufFmt_CheckString`) is work in progress.

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
    /// `'C'`: complex floating point.
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
#[derive(Clone, Copy, Debug)]
pub struct TypeInfo {
    /// The C name Cython prints in messages (`"double"`, `"int"`, a struct's name).
    pub name: &'static str,
    /// Struct fields, for [`TypeGroup::Struct`].
    pub fields: &'static [StructField],
    /// `sizeof(type)`.
    pub size: usize,
    /// Array dimensions of an array type (`double[3][4]` -> `[3, 4]`), else empty.
    pub arraysize: &'static [usize],
    /// The type group.
    pub group: TypeGroup,
    /// Whether the type is unsigned (`is_unsigned`).
    pub is_unsigned: bool,
    /// `__PYX_BUF_FLAGS_PACKED_STRUCT` for packed structs.
    pub packed: bool,
}
