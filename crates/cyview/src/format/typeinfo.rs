//! The description of a declared element type: [`TypeInfo`] (Cython's `__Pyx_TypeInfo`), its
//! [`StructField`]s and [`TypeGroup`], the predefined constants for the C types, and
//! [`struct_type_info!`](crate::struct_type_info) for a `#[repr(C)]` struct.

use core::ffi::{c_char, c_int, c_long, c_longlong, c_short};
use core::mem::size_of;

use super::typechar::LONG_DOUBLE_LAYOUT;

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

/// Whether the target's C `char` is signed.
pub(super) const C_CHAR_IS_SIGNED: bool = c_char::MIN != 0;

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

const _: () = {
    assert!(size_of::<c_short>() == 2 && size_of::<c_int>() == 4 && size_of::<c_longlong>() == 8);
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

/// `a == b` in a `const fn`.
pub(crate) const fn str_eq(a: &str, b: &str) -> bool {
    bytes_eq(a.as_bytes(), b.as_bytes())
}

/// `a == b` for byte strings, in a `const fn`.
pub(crate) const fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
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
