//! The Rust twins of the Cython structs the root package's fixtures declare, each defined
//! once, with the layout of its `cdef struct` (checked by `tests/export.rs` and
//! `tests/acquire.rs`, where Cython acquires and exports them).

/// `cdef struct Pair: int x; double y` of live_acquire.pyx.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Pair {
    pub x: i32,
    pub y: f64,
}

/// `cdef packed struct PPair: int x; double y` of live_acquire.pyx.
#[derive(Clone, Copy, Debug)]
#[repr(C, packed)]
pub struct PPair {
    pub x: i32,
    pub y: f64,
}

// SAFETY: two numbers; any bit pattern of the fields and of the padding is valid.
unsafe impl cyview::FromBytes for Pair {}
// SAFETY: as for `Pair` (no padding at all).
unsafe impl cyview::FromBytes for PPair {}
cyview_py::element_struct!(Pair as "Pair" { x: &cyview::format::INT, y: &cyview::format::DOUBLE });
cyview_py::element_struct!(packed PPair as "PPair" { x: &cyview::format::INT, y: &cyview::format::DOUBLE });

/// Cython's `long long`: an `i64` named as Cython names it in messages (Rust's `i64` is
/// C's `long` on this platform). A user's own scalar element type, as any user can write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(transparent)]
pub struct LongLong(pub i64);

// SAFETY: a transparent `i64`: every bit pattern is a value, no padding.
unsafe impl cyview::FromBytes for LongLong {}
// SAFETY: as above.
unsafe impl cyview::IntoBytes for LongLong {}
// SAFETY: `LONG_LONG` describes a signed integer of `size_of::<c_longlong>()` = 8 bytes,
// the size of `LongLong`.
unsafe impl cyview_py::CythonElement for LongLong {
    const TYPE_INFO: &'static cyview::format::TypeInfo = &cyview::format::LONG_LONG;
    const PADDED: bool = false;
}
const _: () = assert!(core::mem::size_of::<LongLong>() == cyview::format::LONG_LONG.size);
