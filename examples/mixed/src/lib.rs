//! Rust kernels that Cython calls with typed memoryviews (`mixed.pyx`).
//!
//! Cython declares each one with `cdef extern` and no header, so it emits the prototype after
//! its own `__Pyx_memviewslice` typedef and passes the struct *by value*; on the Rust side
//! that struct is `cyview::MemviewSlice`. A memoryview argument is borrowed for the call:
//! the kernel may read (or, for a non-const declaration, write) the elements while it runs,
//! and must not keep the slice afterwards (to keep it, take an acquisition:
//! `cyview_py::CythonSlice::from_borrowed`).
//!
//! The pattern, for `cdef extern double f(const double[:, :] v) noexcept nogil`:
//! 1. `#[no_mangle] pub extern "C" fn f(v: MemviewSlice) -> f64`;
//! 2. `unsafe { View::<f64>::from_raw(v, 2) }`: the dtype and ndim are the declaration's,
//!    which the struct does not carry;
//! 3. no panic may cross the C boundary (an `extern "C"` function that panics aborts the
//!    process): catch it and return a value Cython can check.

use std::panic::{catch_unwind, AssertUnwindSafe};

use cyview::{MemviewSlice, View, ViewMut};

/// `cdef extern double kernel_weighted_sum(const double[:, :] v, const double[::1] w)
/// noexcept nogil`: the sum over `i, j` of `v[i, j] * w[j]`; NaN when the shapes disagree.
#[no_mangle]
pub extern "C" fn kernel_weighted_sum(v: MemviewSlice, w: MemviewSlice) -> f64 {
    catch_unwind(|| {
        // SAFETY: Cython passes live slices of the declared memoryviews (`v` 2-d, `w` 1-d,
        // both double), borrowed for this call, whose elements nothing writes meanwhile.
        let (v, w) = unsafe {
            (
                View::<f64>::from_raw(v, 2).ok()?,
                View::<f64>::from_raw(w, 1).ok()?,
            )
        };
        if v.shape()[1] != w.shape()[0] {
            return None;
        }
        let weights = w.to_vec().ok()?;
        let mut total = 0.0;
        for i in 0..v.shape()[0] as usize {
            for (j, wj) in weights.iter().enumerate() {
                total += v.get(&[i, j])? * wj;
            }
        }
        Some(total)
    })
    .ok()
    .flatten()
    .unwrap_or(f64::NAN)
}

/// `cdef extern int kernel_scale(double[:, ::1] v, double k) noexcept nogil`: multiplies
/// every element by `k` in place; returns 0, or -1 when the view is refused.
#[no_mangle]
pub extern "C" fn kernel_scale(v: MemviewSlice, k: f64) -> i32 {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: a live, writable `double[:, ::1]` slice borrowed for this call. Releasing
        // the GIL does not make the elements private: `mixed.scale` documents that no other
        // thread may use the array during the call, and Cython does not touch it meanwhile.
        let Ok(mut v) = (unsafe { ViewMut::<f64>::from_raw(v, 2) }) else {
            return -1;
        };
        let (n, m) = (v.shape()[0] as usize, v.shape()[1] as usize);
        for i in 0..n {
            for j in 0..m {
                let x = v.as_view().get(&[i, j]).unwrap_or(0.0);
                v.set(&[i, j], x * k);
            }
        }
        0
    }))
    .unwrap_or(-1)
}
