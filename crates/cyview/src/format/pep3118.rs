//! The PEP 3118 format string of a [`TypeInfo`]: what an exporter of Rust memory gives, so
//! that Cython accepts it for that dtype.

use core::mem::size_of;

use super::check::check_format;
use super::outcome::check_dtype;
use super::typeinfo::{TypeGroup, TypeInfo};
#[cfg(doc)]
use super::{InvalidDtype, StructField, MAX_DTYPE_DEPTH};

/// A PEP 3118 format string describing items of `dtype`, which Cython accepts for it: the
/// format an exporter of Rust memory gives (`"d"` for `double`, `"Zd"` for `double
/// complex`, `"^T{i:x:4xd:y:}"` for `struct {int x; double y;}`).
///
/// Structs are written with native sizes and no implicit alignment (`^`), every gap as
/// explicit `x` padding, and arrays as `(3)d`, so the offsets are exactly the
/// [`StructField`]s'. `None` for a type no format string describes: a
/// [`TypeGroup::Struct`] without fields, a scalar size without a format character (a 3-byte
/// integer), or a struct whose first field is a struct anywhere but at the start of the dtype
/// (see the [module documentation](super); [`check_format`] tells). Also `None` for a
/// `TypeInfo` that [`check_format`] refuses ([`InvalidDtype`]: cyclic,
/// or nested deeper than [`MAX_DTYPE_DEPTH`]), and for a string longer
/// than 16 MiB (a struct type shared by the fields of many levels describes exponentially many
/// fields).
///
/// ```
/// use cyview::format::{check_format, pep3118_format, DOUBLE, DOUBLE_COMPLEX, INT, UNSIGNED_CHAR};
/// use cyview::struct_type_info;
/// assert_eq!(pep3118_format(&DOUBLE).as_deref(), Some("d"));
/// assert_eq!(pep3118_format(&DOUBLE_COMPLEX).as_deref(), Some("Zd"));
/// assert_eq!(pep3118_format(&UNSIGNED_CHAR).as_deref(), Some("B"));
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
pub(super) fn scalar_code(t: &TypeInfo) -> Option<&'static str> {
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
