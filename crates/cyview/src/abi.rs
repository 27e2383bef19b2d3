//! The raw ABI layer: Cython's `__Pyx_memviewslice` and the flag values Cython's generated
//! code passes around. No logic lives here; the rules are in [`crate::raw::slicing`],
//! [`crate::raw::contig`], [`crate::raw::validate`] and [`crate::raw::copy`].

use core::fmt;
use core::marker::{PhantomData, PhantomPinned};
use core::mem::{align_of, offset_of, size_of};

/// Cython's `Options.buffer_max_dims`: the length of the `shape`, `strides` and
/// `suboffsets` arrays of every `__Pyx_memviewslice`.
///
/// A declared memoryview may have at most `MAX_DIMS - 1` (7) dimensions (8 is a compile
/// error in Cython); new axes may take a slice up to `MAX_DIMS`.
pub const MAX_DIMS: usize = 8;

/// The opaque memoryview object (`struct __pyx_memoryview_obj`) a slice points at.
///
/// Its layout differs between Cython releases (0.29 keeps a two-counter array behind an
/// aligned pointer, 3.x a single atomic counter), so this crate never looks inside it;
/// `cyview-py` reads it with offsets extracted by bindgen for the release that built the
/// module.
#[repr(C)]
pub struct MemviewObject {
    _opaque: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// Where the members `cyview-py` reads sit in one release family's
/// `struct __pyx_memoryview_obj` (byte offsets and sizes on 64-bit targets, as clang lays
/// out the C each release generates).
///
/// This crate never reads a memoryview object; the numbers are data for `cyview-py`
/// (`MemviewAbi`, which picks one of [`MemviewObjectLayout::ALL`] per object) and for
/// `cyview-build`'s build-time check against the installed Cython.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MemviewObjectLayout {
    /// The name of the `cyview_py::MemviewAbi` variant with this layout (`"Cython0_29"`).
    pub name: &'static str,
    /// The Cython releases that generate it, e.g. `"3.0 to 3.3"`.
    pub releases: &'static str,
    /// `sizeof(struct __pyx_memoryview_obj)`, the memoryview type's `tp_basicsize`.
    pub size: usize,
    /// Offset of `PyThread_type_lock lock` (a pointer; NULL with `CYTHON_ATOMICS`).
    pub lock: usize,
    /// Offset of `acquisition_count` (0.29: of the two-`int` array).
    pub acquisition_count: usize,
    /// `sizeof` the `acquisition_count` member: 0.29's `__pyx_atomic_int[2]` or 3.x's one
    /// `__pyx_atomic_int_type` (an `int`).
    pub acquisition_count_size: usize,
    /// Offset of `acquisition_count_aligned_p` (a pointer into the array; 0.29 only).
    pub acquisition_count_aligned_p: Option<usize>,
    /// Offset of the `Py_buffer view` member.
    pub view: usize,
}

impl MemviewObjectLayout {
    /// Cython 0.29: `__pyx_atomic_int acquisition_count[2]` at 56 and
    /// `__pyx_atomic_int *acquisition_count_aligned_p` at 64; `sizeof` 168.
    pub const CYTHON0_29: MemviewObjectLayout = MemviewObjectLayout {
        name: "Cython0_29",
        releases: "0.29",
        size: 168,
        lock: 48,
        acquisition_count: 56,
        acquisition_count_size: 8,
        acquisition_count_aligned_p: Some(64),
        view: 72,
    };

    /// Cython 3.0 to 3.3: one `__pyx_atomic_int_type acquisition_count` at 56; `sizeof` 160.
    /// (3.2 renamed `_array_interface` to `_unused` at the same offset.)
    pub const CYTHON3: MemviewObjectLayout = MemviewObjectLayout {
        name: "Cython3",
        releases: "3.0 to 3.3",
        size: 160,
        lock: 48,
        acquisition_count: 56,
        acquisition_count_size: 4,
        acquisition_count_aligned_p: None,
        view: 64,
    };

    /// Every layout a known release generates, oldest first.
    pub const ALL: [MemviewObjectLayout; 2] = [Self::CYTHON0_29, Self::CYTHON3];
}

/// Cython's `__Pyx_memviewslice`, field for field.
///
/// ```c
/// typedef struct {
///   struct __pyx_memoryview_obj *memview;
///   char *data;
///   Py_ssize_t shape[8];
///   Py_ssize_t strides[8];
///   Py_ssize_t suboffsets[8];
/// } __Pyx_memviewslice;
/// ```
///
/// The struct is passed by value between C functions; it does not store its number of
/// dimensions (Cython knows it at compile time), so every function of this crate that reads
/// one takes `ndim` beside it. Entries at and beyond `ndim` are unspecified.
///
/// Copying this struct is what C does when it passes a slice by value: the copy does **not**
/// change the memoryview object's acquisition count. Acquisition (keeping the memoryview
/// alive) is the business of `cyview-py`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MemviewSlice {
    /// The memoryview object that keeps the buffer alive. *Counted*: a slice that owns an
    /// acquisition holds one unit of the object's acquisition count (not a Python
    /// reference); a borrowed slice (a `cdef api` argument) holds none. May be null (an
    /// uninitialised slice) or point at `None` (Cython ignores both when counting).
    pub memview: *mut MemviewObject,
    /// *Borrowed*: pointer to the first element, inside memory owned by the buffer exporter
    /// behind `memview`. For an empty slice it may point outside that memory and must not be
    /// dereferenced. Cython declares it `char *`.
    pub data: *mut u8,
    /// Extent of each dimension (`Py_ssize_t shape[8]`).
    pub shape: [isize; MAX_DIMS],
    /// Byte stride of each dimension (`Py_ssize_t strides[8]`); may be zero or negative.
    pub strides: [isize; MAX_DIMS],
    /// PEP 3118 suboffset of each dimension (`Py_ssize_t suboffsets[8]`): negative for a
    /// direct dimension; `>= 0` for an indirect one, where the address reached by the stride
    /// holds a pointer to be followed and then offset by the suboffset.
    pub suboffsets: [isize; MAX_DIMS],
}

// Compile-time layout checks against the C declaration on LP64 targets (x86-64, aarch64):
// 208 bytes, offsets 0/8/16/80/144. The conformance suite checks the same numbers against
// bindgen's reading of each Cython release's generated C.
const _: () = {
    let w = size_of::<usize>();
    assert!(size_of::<MemviewSlice>() == 2 * w + 3 * MAX_DIMS * w);
    assert!(align_of::<MemviewSlice>() == align_of::<usize>());
    assert!(offset_of!(MemviewSlice, memview) == 0);
    assert!(offset_of!(MemviewSlice, data) == w);
    assert!(offset_of!(MemviewSlice, shape) == 2 * w);
    assert!(offset_of!(MemviewSlice, strides) == 2 * w + MAX_DIMS * w);
    assert!(offset_of!(MemviewSlice, suboffsets) == 2 * w + 2 * MAX_DIMS * w);
    #[cfg(target_pointer_width = "64")]
    assert!(size_of::<MemviewSlice>() == 208);
};

impl MemviewSlice {
    /// An all-zero slice, as Cython's `__Pyx_MEMSLICE_INIT` (`{ 0, 0, { 0 }, { 0 }, { 0 } }`).
    pub const EMPTY: MemviewSlice = MemviewSlice {
        memview: core::ptr::null_mut(),
        data: core::ptr::null_mut(),
        shape: [0; MAX_DIMS],
        strides: [0; MAX_DIMS],
        suboffsets: [0; MAX_DIMS],
    };
}

// No `Default`: Cython's all-zero initial slice has suboffsets 0, which PEP 3118 reads as
// "indirect", so a default slice would silently describe pointer tables. `EMPTY` says what it
// is; `MemviewSlice::direct` builds a direct slice.

impl MemviewSlice {
    /// A direct slice (suboffsets `-1`) with no memoryview object: `data`, and the first
    /// `shape.len()` extents and byte strides; the entries beyond stay 0 as in Cython.
    ///
    /// ```
    /// use cyview::{MemviewSlice, View};
    ///
    /// let data = [1.0f64, 2.0, 3.0, 4.0];
    /// let raw = MemviewSlice::direct(data.as_ptr().cast_mut().cast(), &[2, 2], &[8, 16]);
    /// // The struct is plain data: it may cross threads (`py.detach`, `std::thread`).
    /// let raw = std::thread::spawn(move || raw).join().unwrap();
    /// // SAFETY: the four elements are `data`'s, alive and unwritten while `v` is read.
    /// let v = unsafe { View::<f64>::from_raw(raw, 2) }.unwrap();
    /// assert_eq!(v.to_vec().unwrap(), vec![1.0, 3.0, 2.0, 4.0]); // Fortran order
    /// ```
    ///
    /// # Panics
    ///
    /// When `shape` and `strides` differ in length or have more than [`MAX_DIMS`] entries.
    pub const fn direct(data: *mut u8, shape: &[isize], strides: &[isize]) -> MemviewSlice {
        assert!(
            shape.len() == strides.len(),
            "shape and strides differ in length"
        );
        assert!(shape.len() <= MAX_DIMS, "more than MAX_DIMS dimensions");
        let mut s = MemviewSlice {
            data,
            ..MemviewSlice::EMPTY
        };
        let mut d = 0;
        while d < shape.len() {
            s.shape[d] = shape[d];
            s.strides[d] = strides[d];
            s.suboffsets[d] = -1;
            d += 1;
        }
        s
    }
}

// SAFETY: a `MemviewSlice` is plain data: two addresses and three arrays of integers. No
// safe function reads or writes through its pointers (reads take an `unsafe` contract or a
// proof against memory the caller holds, see `crate::geometry`), and the acquisition count
// is only touched by `cyview-py`'s owners, which are `Send`/`Sync` on their own terms. So
// moving or sharing the value between threads races on nothing; whoever reads through it
// states the rules for threads there.
unsafe impl Send for MemviewSlice {}
// SAFETY: as for `Send`: shared access reads only the struct's own fields.
unsafe impl Sync for MemviewSlice {}

impl fmt::Debug for MemviewSlice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemviewSlice")
            .field("memview", &self.memview)
            .field("data", &self.data)
            .field("shape", &self.shape)
            .field("strides", &self.strides)
            .field("suboffsets", &self.suboffsets)
            .finish()
    }
}

/// How a dimension reaches its elements (the "access" half of a Cython axis spec).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// `direct`: the stride leads to the element (`__Pyx_MEMVIEW_DIRECT`, 1).
    Direct,
    /// `ptr` (`view.indirect`): the stride leads to a pointer to follow
    /// (`__Pyx_MEMVIEW_PTR`, 2).
    Ptr,
    /// `full` (`view.generic`): direct or indirect, decided per buffer
    /// (`__Pyx_MEMVIEW_FULL`, 4).
    Full,
}

/// How a dimension is packed (the "packing" half of a Cython axis spec).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Packing {
    /// `contig` (`::1`, `view.contiguous`): stride equals the item size, or the pointer size
    /// for indirect dimensions (`__Pyx_MEMVIEW_CONTIG`, 8).
    Contig,
    /// `strided` (`:`): any stride (`__Pyx_MEMVIEW_STRIDED`, 16).
    Strided,
    /// `follow` (`view.follow`): strided, next to a contiguous dimension; its absolute stride
    /// must be at least the item size (`__Pyx_MEMVIEW_FOLLOW`, 32).
    Follow,
}

/// One axis of a declared memoryview type: Cython's `(access, packing)` pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AxisSpec {
    /// How the axis reaches its elements.
    pub access: Access,
    /// How the axis is packed.
    pub packing: Packing,
}

impl AxisSpec {
    /// `__Pyx_MEMVIEW_DIRECT`.
    pub const DIRECT: u32 = 1;
    /// `__Pyx_MEMVIEW_PTR`.
    pub const PTR: u32 = 2;
    /// `__Pyx_MEMVIEW_FULL`.
    pub const FULL: u32 = 4;
    /// `__Pyx_MEMVIEW_CONTIG`.
    pub const CONTIG: u32 = 8;
    /// `__Pyx_MEMVIEW_STRIDED`.
    pub const STRIDED: u32 = 16;
    /// `__Pyx_MEMVIEW_FOLLOW`.
    pub const FOLLOW: u32 = 32;

    /// `double[:]`'s axis: direct and strided.
    pub const STRIDED_DIRECT: AxisSpec = AxisSpec::new(Access::Direct, Packing::Strided);
    /// `double[::1]`'s axis: direct and contiguous.
    pub const CONTIG_DIRECT: AxisSpec = AxisSpec::new(Access::Direct, Packing::Contig);
    /// The non-contiguous axes of `double[:, ::1]`: direct and follow.
    pub const FOLLOW_DIRECT: AxisSpec = AxisSpec::new(Access::Direct, Packing::Follow);

    /// An axis spec from its two halves.
    pub const fn new(access: Access, packing: Packing) -> Self {
        AxisSpec { access, packing }
    }

    /// The `int` Cython's generated code passes in `axes_specs[]` to
    /// `__Pyx_ValidateAndInit_memviewslice` (access flag | packing flag).
    pub const fn flags(self) -> u32 {
        let access = match self.access {
            Access::Direct => Self::DIRECT,
            Access::Ptr => Self::PTR,
            Access::Full => Self::FULL,
        };
        let packing = match self.packing {
            Packing::Contig => Self::CONTIG,
            Packing::Strided => Self::STRIDED,
            Packing::Follow => Self::FOLLOW,
        };
        access | packing
    }

    /// The spec with these flags, or `None` unless exactly one access and one packing flag
    /// are set.
    pub const fn from_flags(flags: u32) -> Option<Self> {
        let access = match flags & (Self::DIRECT | Self::PTR | Self::FULL) {
            Self::DIRECT => Access::Direct,
            Self::PTR => Access::Ptr,
            Self::FULL => Access::Full,
            _ => return None,
        };
        let packing = match flags & (Self::CONTIG | Self::STRIDED | Self::FOLLOW) {
            Self::CONTIG => Packing::Contig,
            Self::STRIDED => Packing::Strided,
            Self::FOLLOW => Packing::Follow,
            _ => return None,
        };
        if flags & !63 != 0 {
            return None;
        }
        Some(AxisSpec { access, packing })
    }
}

/// A declared memoryview's overall contiguity: Cython's `c_or_f_flag`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Contiguity {
    /// Neither (`0`).
    None,
    /// C contiguous: the last axis is `::1` (`__Pyx_IS_C_CONTIG`, 1).
    C,
    /// Fortran contiguous: the first axis is `::1` (`__Pyx_IS_F_CONTIG`, 2).
    Fortran,
}

impl Contiguity {
    /// Cython's flag value (0, 1 or 2).
    pub const fn flag(self) -> u32 {
        match self {
            Contiguity::None => 0,
            Contiguity::C => 1,
            Contiguity::Fortran => 2,
        }
    }

    /// The contiguity for a flag value. Cython tests the Fortran bit first, so a value with
    /// both bits set means Fortran, as in `__pyx_verify_contig`.
    pub const fn from_flag(flag: u32) -> Self {
        if flag & 2 != 0 {
            Contiguity::Fortran
        } else if flag & 1 != 0 {
            Contiguity::C
        } else {
            Contiguity::None
        }
    }
}

/// Memory order: the `'C'` / `'F'` character Cython's copy and contiguity helpers take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Order {
    /// Row-major, last index fastest (`'C'`).
    C,
    /// Column-major, first index fastest (`'F'`, `"fortran"`).
    Fortran,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_flags_round_trip_for_every_combination() {
        for access in [Access::Direct, Access::Ptr, Access::Full] {
            for packing in [Packing::Contig, Packing::Strided, Packing::Follow] {
                let spec = AxisSpec::new(access, packing);
                assert_eq!(AxisSpec::from_flags(spec.flags()), Some(spec));
            }
        }
        assert_eq!(AxisSpec::from_flags(0), None);
        assert_eq!(
            AxisSpec::from_flags(AxisSpec::DIRECT | AxisSpec::PTR | AxisSpec::CONTIG),
            None
        );
        assert_eq!(
            AxisSpec::from_flags(AxisSpec::DIRECT | AxisSpec::CONTIG | 64),
            None
        );
    }

    #[test]
    fn flag_values_are_cythons() {
        // MemoryView_C.c: #define __Pyx_MEMVIEW_DIRECT 1 ... FOLLOW 32, IS_C_CONTIG 1, IS_F_CONTIG 2
        assert_eq!(AxisSpec::CONTIG_DIRECT.flags(), 1 | 8);
        assert_eq!(AxisSpec::STRIDED_DIRECT.flags(), 1 | 16);
        assert_eq!(AxisSpec::FOLLOW_DIRECT.flags(), 1 | 32);
        assert_eq!(
            AxisSpec::new(Access::Full, Packing::Strided).flags(),
            4 | 16
        );
        assert_eq!(Contiguity::C.flag(), 1);
        assert_eq!(Contiguity::Fortran.flag(), 2);
        assert_eq!(Contiguity::from_flag(3), Contiguity::Fortran);
    }
}
