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
