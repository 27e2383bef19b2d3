//! What element types promise about their bytes: [`FromBytes`] to be read from memory,
//! [`IntoBytes`] to be written to memory others read.
//!
//! Reading and writing are different promises (zerocopy keeps them apart for the same
//! reason): a `#[repr(C)]` struct of numbers with padding may be *read* from any bytes, but
//! writing one copies its padding, which is uninitialised, into the buffer, where Python,
//! Cython or a `View<u8>` then reads uninitialised bytes.

/// Element types a view may read from arbitrary bytes.
///
/// # Safety
///
/// Every initialised bit pattern of `size_of::<Self>()` bytes must be a valid value of
/// `Self` (no `bool`, `char`, enums, references or `NonZero*`), and `Self` must not have
/// drop glue or interior mutability.
pub unsafe trait FromBytes: Copy + 'static {}

/// Element types whose values are plain initialised bytes: no padding, no uninitialised
/// byte. Writing them into memory (views' `set`, `fill`, `copy_from`; exports) leaves only
/// initialised bytes.
///
/// # Safety
///
/// Every byte of every value of `Self` is initialised: `Self` has no padding (between
/// fields, at the end, or in any field's type) and no `MaybeUninit` or union parts.
pub unsafe trait IntoBytes: FromBytes {}

macro_rules! plain {
    ($($t:ty),*) => { $(
        // SAFETY: a primitive number: every bit pattern is a valid value, no drop glue, no
        // interior mutability.
        unsafe impl FromBytes for $t {}
        // SAFETY: a primitive number has no padding: all its bytes are initialised.
        unsafe impl IntoBytes for $t {}
    )* };
}
plain!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize, f32, f64);

// SAFETY: `Complex<T>` is `#[repr(C)]` with two fields of the same float type: every bit
// pattern valid, no drop glue or interior mutability.
#[cfg(feature = "num-complex")]
#[cfg_attr(docsrs, doc(cfg(feature = "num-complex")))]
unsafe impl FromBytes for num_complex::Complex<f32> {}
// SAFETY: two `f32` fields of the same size and alignment: no padding.
#[cfg(feature = "num-complex")]
#[cfg_attr(docsrs, doc(cfg(feature = "num-complex")))]
unsafe impl IntoBytes for num_complex::Complex<f32> {}
// SAFETY: as for `Complex<f32>`.
#[cfg(feature = "num-complex")]
#[cfg_attr(docsrs, doc(cfg(feature = "num-complex")))]
unsafe impl FromBytes for num_complex::Complex<f64> {}
// SAFETY: two `f64` fields of the same size and alignment: no padding.
#[cfg(feature = "num-complex")]
#[cfg_attr(docsrs, doc(cfg(feature = "num-complex")))]
unsafe impl IntoBytes for num_complex::Complex<f64> {}

// SAFETY: an array of `FromBytes` elements: each element accepts any bit pattern; arrays
// have no padding between elements.
unsafe impl<T: FromBytes, const N: usize> FromBytes for [T; N] {}
// SAFETY: arrays add no padding; each element has none (`T: IntoBytes`).
unsafe impl<T: IntoBytes, const N: usize> IntoBytes for [T; N] {}
