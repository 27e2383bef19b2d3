//! Reading the pointers of indirect (suboffset) dimensions.
//!
//! Indexing an indirect dimension makes Cython read a pointer from memory
//! (`dst->data = ((char **) dst->data)[0] + suboffset`). The geometry functions of this crate
//! stay safe by taking that read as a parameter: [`Direct`] refuses it, [`TrustedMemory`]
//! performs it (its constructor is where the caller vouches for the memory), and tests can
//! supply a table.

use crate::error::{Error, Result};

/// Reads one pointer stored at an address, as Cython's `*(char **) p`.
pub trait ReadPointer {
    /// The pointer stored at `at` (which need not be aligned).
    ///
    /// # Errors
    ///
    /// When the implementation cannot or will not read `at`.
    fn read_pointer(&self, at: *const u8) -> Result<*mut u8>;
}

/// For buffers without indirect dimensions: any attempt to follow a pointer is an error
/// (Cython's `assert_direct_dimensions` message).
#[derive(Clone, Copy, Debug, Default)]
pub struct Direct;

impl ReadPointer for Direct {
    fn read_pointer(&self, _at: *const u8) -> Result<*mut u8> {
        Err(Error::value("Indirect dimensions not supported"))
    }
}

/// Reads pointers straight from memory.
///
/// Constructing it is `unsafe`: the constructor's caller promises that every address the
/// geometry functions ask it to read is valid, which those functions cannot check.
#[derive(Debug)]
pub struct TrustedMemory {
    _private: (),
}

impl TrustedMemory {
    /// A reader that dereferences the addresses it is given.
    ///
    /// # Safety
    ///
    /// For as long as the returned value is used, every address passed to
    /// [`ReadPointer::read_pointer`] must be valid for reading `size_of::<*mut u8>()` bytes
    /// (alignment is not required) and those bytes must not be written concurrently. The
    /// functions of this crate only pass the addresses of pointer slots of indirect
    /// dimensions reached with in-bounds indices, so it is enough that the slice being
    /// indexed describes valid memory: for every in-bounds index prefix, each pointer slot of
    /// an indirect dimension that the prefix reaches is readable.
    pub unsafe fn new() -> Self {
        TrustedMemory { _private: () }
    }
}

impl ReadPointer for TrustedMemory {
    fn read_pointer(&self, at: *const u8) -> Result<*mut u8> {
        // SAFETY: `TrustedMemory::new`'s contract: `at` is valid for an unaligned read of a
        // pointer and not written concurrently.
        Ok(unsafe { at.cast::<*mut u8>().read_unaligned() })
    }
}

impl<R: ReadPointer + ?Sized> ReadPointer for &R {
    fn read_pointer(&self, at: *const u8) -> Result<*mut u8> {
        (**self).read_pointer(at)
    }
}
