//! `cyview_example`: a PyO3 extension module, built with maturin, whose functions take NumPy
//! arrays (or any buffer) exactly as Cython functions taking typed memoryviews do.
//!
//! * `row_sums(a)`: `a` as `const double[:, ::1]` ([`MemView`] with [`C<2>`]), the sum of
//!   each row as a new NumPy array;
//! * `scale_inplace(a, k)`: `a` as `double[:, :]` ([`MemViewMut`] with [`Strided<2>`]),
//!   every element multiplied by `k` in place;
//! * `cython_total(a)`: `a` as `const double[:, :]`, handed to the Cython function
//!   `cdef api double total(const double[:, :] v) except? -1` of the module `cyfuncs`
//!   (`cython/cyfuncs.pyx`).
//!
//! A wrong argument raises what Cython raises for the same argument: `ValueError: ndarray is
//! not C-contiguous`, `ValueError: Buffer dtype mismatch, expected 'const double' but got
//! 'long'`, `ValueError: buffer source array is read-only`... (PyO3 0.30 keeps the message
//! and adds a note naming the argument).

use cyview::MemviewSlice;
use cyview_py::{capi_function, MemView, MemViewMut, Strided, C};
use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// The sum of each row of a C-contiguous 2-d float64 array, as a new 1-d array: what
/// `def row_sums(const double[:, ::1] a not None)` would compute.
///
/// The rows are summed as NumPy does (in interleaved lanes), so a float result may differ
/// in its last bits from a sequential loop.
#[pyfunction]
fn row_sums<'py>(py: Python<'py>, a: MemView<'py, f64, C<2>>) -> Bound<'py, PyArray1<f64>> {
    let sums: Vec<f64> = a.rows().map(|row| row.sum()).collect();
    // The vector becomes the array's memory: no copy.
    PyArray1::from_vec(py, sums)
}

/// Multiplies every element of a 2-d float64 array by `k`, in place. Any strides are
/// accepted (`a[::2, ::-1]` too), as Cython's `double[:, :]`; a read-only array is refused.
#[pyfunction]
fn scale_inplace(a: MemViewMut<'_, f64, Strided<2>>, k: f64) {
    a.map_inplace(|x| x * k);
}

/// The sum of the elements of a 2-d float64 array, computed by the Cython function
/// `cyfuncs.total` (a `cdef api` function, called through its C pointer: no Python call),
/// and the `ValueError` it raises when the sum is not finite.
#[pyfunction]
fn cython_total(py: Python<'_>, a: MemView<'_, f64, Strided<2>>) -> PyResult<f64> {
    let total = cyfuncs_total(py)?;
    // SAFETY: `total` is `cdef api double total(const double[:, :] v) except? -1` (see
    // `cyfuncs_total`): it takes a 2-d view of doubles, which `a` is (extracted as
    // `const double[:, :]`), and only reads its elements, so the slice's null memoryview
    // object is never used. The buffer stays acquired by `a` for the call, and the GIL is
    // held, as the function (not `nogil`) needs.
    let result = unsafe { total(*a.as_raw()) };
    // `except? -1`: -1.0 is a total or the sign of an exception; the exception tells.
    if result == -1.0 {
        if let Some(err) = PyErr::take(py) {
            return Err(err);
        }
    }
    Ok(result)
}

/// The C type of `cdef api double total(const double[:, :] v) except? -1`.
type Total = unsafe extern "C" fn(MemviewSlice) -> f64;

/// `cyfuncs.total`, looked up in `cyfuncs.__pyx_capi__` once (an imported extension module
/// stays loaded, so the pointer stays valid).
fn cyfuncs_total(py: Python<'_>) -> PyResult<Total> {
    static TOTAL: PyOnceLock<Total> = PyOnceLock::new();
    TOTAL
        .get_or_try_init(py, || {
            let module = py.import("cyfuncs")?;
            // The C signature, "double (__Pyx_memviewslice)", is derived from `Total` and
            // checked against the capsule; the dtype and ndim of the view are this crate's
            // word (`cyfuncs.pyx`), which `cython_total`'s SAFETY comment relies on.
            capi_function::<Total>(&module, "total")
        })
        .copied()
}

/// The Python module `cyview_example`.
#[pymodule]
mod cyview_example {
    #[pymodule_export]
    use super::{cython_total, row_sums, scale_inplace};
}
