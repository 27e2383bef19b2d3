//! cyview-py's optional `ndarray` and `numpy` features, against NumPy's own reading of the
//! same memory.
//!
//! * `BufferSlice::as_array`: NumPy builds a strided array over a byte block
//!   (`np.ndarray(shape, dtype, buffer, offset, strides)`, random shapes, negative and zero
//!   strides, strides that are not whole elements, misaligned starts, six dtypes); the
//!   ndarray view must have NumPy's shape, NumPy's element addresses (NumPy's own slicing of
//!   each element) and NumPy's bytes in C order (`a.ravel().tobytes()`), and must be refused
//!   exactly when NumPy says the array is not aligned (`a.flags.aligned`).
//! * `BufferSlice::to_pyarray`: a C-contiguous copy with NumPy's dtype, shape and bytes,
//!   for every layout, indirect (PIL-style) buffers included.
//! * `RustBuffer::from_ndarray`: NumPy's `np.asarray` of the exported array has ndarray's
//!   shape, strides, elements and element addresses (no copy), and the read-only flag asked
//!   for; the export is released with NumPy's array.

mod support;

use cyview::format::{self, TypeInfo};
use cyview::{Access, AxisSpec, FromBytes, Packing};
use cyview_py::{acquire, BufferSlice, Declaration, RustBuffer};
use ndarray::{Array, Axis, IxDyn, Slice};
use numpy::{PyArray1, PyUntypedArrayMethods};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyModule};
use support::{cases, report, runner, with_python};

const HELPERS: &std::ffi::CStr = cr#"
import numpy as np

def build(fmt, shape, strides, misalign):
    """A NumPy array of `fmt` with byte `strides` over a fresh block of distinct values,
    its first element `misalign` bytes past an element boundary."""
    item = np.dtype(fmt).itemsize
    lo = hi = 0
    if 0 not in shape:
        for n, s in zip(shape, strides):
            d = (n - 1) * s
            if d < 0:
                lo += d
            else:
                hi += d
    offset = -lo + misalign
    count = (offset + hi + item) // item + 1
    base = np.arange(1, count + 1).astype(fmt)
    return np.ndarray(tuple(shape), dtype=fmt, buffer=base.view(np.uint8), offset=offset,
                      strides=tuple(strides))

def addresses(a):
    """Each element's address in C order, from NumPy's own slicing."""
    return [a[tuple(slice(i, i + 1) for i in idx)].__array_interface__['data'][0]
            for idx in np.ndindex(*a.shape)]

def data(a):
    return a.__array_interface__['data'][0]
"#;

fn helpers(py: Python<'_>) -> Bound<'_, PyModule> {
    PyModule::from_code(py, HELPERS, c"features_helpers.py", c"features_helpers")
        .expect("helper module")
}

fn fail(what: &str) -> impl Fn(PyErr) -> TestCaseError + '_ {
    move |e| TestCaseError::fail(format!("{what}: {e}"))
}

/// NumPy's bytes of `values` laid out one after the other (`np.array(values).tobytes()`).
fn numpy_bytes<T: numpy::Element>(py: Python<'_>, values: Vec<T>) -> PyResult<Vec<u8>> {
    let a = PyArray1::from_vec(py, values);
    Ok(a.call_method0("tobytes")?
        .cast::<PyBytes>()?
        .as_bytes()
        .to_vec())
}

fn bytes_of(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    Ok(obj
        .call_method0("tobytes")?
        .cast::<PyBytes>()?
        .as_bytes()
        .to_vec())
}

/// A strided NumPy array: dtype, shape, byte strides, misalignment of the first element.
#[derive(Clone, Debug)]
struct Strided {
    dtype: usize,
    shape: Vec<usize>,
    strides: Vec<isize>,
    misalign: usize,
}

/// The dtypes: format code, item size.
const DTYPES: [(&str, usize); 6] = [("d", 8), ("f", 4), ("q", 8), ("i", 4), ("h", 2), ("B", 1)];

fn strided() -> impl Strategy<Value = Strided> {
    (0..DTYPES.len(), 1usize..=4)
        .prop_flat_map(|(dtype, ndim)| {
            let item = DTYPES[dtype].1 as isize;
            let stride = (-3isize..=3, prop::bool::weighted(0.1))
                .prop_map(move |(k, odd)| k * item + if odd { item / 2 } else { 0 });
            (
                Just(dtype),
                proptest::collection::vec(prop_oneof![1 => Just(0usize), 9 => 1usize..=4], ndim),
                proptest::collection::vec(stride, ndim),
                prop::bool::weighted(0.12).prop_map(move |m| if m && item > 1 { 1 } else { 0 }),
            )
        })
        .prop_map(|(dtype, shape, strides, misalign)| Strided {
            dtype,
            shape,
            strides,
            misalign,
        })
}

/// Outcome counts of the `as_array` property.
#[derive(Default)]
struct Counts {
    accepted: usize,
    refused: usize,
    negative: usize,
    zero: usize,
}

/// Checks `as_array` and `to_pyarray` of `view`, acquired from the NumPy array `a`, against
/// NumPy.
fn check_strided<T: FromBytes + numpy::Element>(
    py: Python<'_>,
    h: &Bound<'_, PyModule>,
    a: &Bound<'_, PyAny>,
    view: &BufferSlice,
    what: &str,
    counts: &mut Counts,
) -> Result<(), TestCaseError> {
    let f = fail(what);
    let item = std::mem::size_of::<T>() as isize;
    let np_shape: Vec<usize> = a.getattr("shape").and_then(|s| s.extract()).map_err(&f)?;
    let np_strides: Vec<isize> = a.getattr("strides").and_then(|s| s.extract()).map_err(&f)?;
    let aligned: bool = a
        .getattr("flags")
        .and_then(|fl| fl.getattr("aligned"))
        .and_then(|x| x.extract())
        .map_err(&f)?;
    let np_bytes = a
        .call_method0("ravel")
        .and_then(|r| bytes_of(&r))
        .map_err(&f)?;
    let np_addrs: Vec<usize> = h
        .getattr("addresses")
        .and_then(|g| g.call1((a,)))
        .and_then(|x| x.extract())
        .map_err(&f)?;
    let np_data: usize = h
        .getattr("data")
        .and_then(|g| g.call1((a,)))
        .and_then(|x| x.extract())
        .map_err(&f)?;

    // SAFETY: nothing writes the array during the test.
    match unsafe { view.as_array::<T>() } {
        Ok(arr) => {
            prop_assert!(
                aligned,
                "{}: as_array accepts what NumPy calls unaligned",
                what
            );
            prop_assert_eq!(arr.shape(), &np_shape[..], "{}", what);
            if !np_shape.contains(&0) {
                for (d, &n) in np_shape.iter().enumerate() {
                    if n > 1 {
                        prop_assert_eq!(
                            arr.strides()[d] * item,
                            np_strides[d],
                            "{} dim {}",
                            what,
                            d
                        );
                    }
                }
            }
            let addrs: Vec<usize> = arr.iter().map(|x| x as *const T as usize).collect();
            prop_assert_eq!(addrs, np_addrs, "{}: element addresses", what);
            let bytes = numpy_bytes(py, arr.iter().copied().collect()).map_err(&f)?;
            prop_assert_eq!(bytes, np_bytes.clone(), "{}: elements", what);
            counts.accepted += 1;
            counts.negative += usize::from(arr.strides().iter().any(|&s| s < 0));
            counts.zero += usize::from(
                arr.shape()
                    .iter()
                    .zip(arr.strides())
                    .any(|(&n, &s)| n > 1 && s == 0),
            );
        }
        Err(e) => {
            prop_assert!(
                !aligned,
                "{}: as_array refuses an array NumPy calls aligned: {}",
                what,
                e
            );
            prop_assert!(
                e.is_instance_of::<pyo3::exceptions::PyValueError>(py),
                "{}",
                what
            );
            // The first axis (with more than one element) whose stride is not whole
            // elements is named; otherwise the misaligned first element.
            let expected = np_shape
                .iter()
                .zip(&np_strides)
                .enumerate()
                .find(|(_, (&n, &s))| n > 1 && s % item != 0)
                .map(|(d, (_, &s))| {
                    format!(
                        "Dimension {d} has a stride of {s} bytes, not a multiple of the {item}-byte element size"
                    )
                })
                .unwrap_or_else(|| {
                    format!(
                        "The first element at {np_data:#x} is not aligned to {} bytes for an ndarray view",
                        std::mem::align_of::<T>()
                    )
                });
            prop_assert_eq!(e.value(py).to_string(), expected, "{}", what);
            counts.refused += 1;
        }
    }

    // The copy: every layout, NumPy's dtype, shape and elements, its own memory.
    let copy = view.to_pyarray::<T>(py).map_err(&f)?;
    let copy_shape: Vec<usize> = copy.shape().to_vec();
    prop_assert_eq!(copy_shape, np_shape, "{}: copy shape", what);
    prop_assert!(copy.is_c_contiguous(), "{}: copy is C-contiguous", what);
    let same_dtype: bool = copy
        .getattr("dtype")
        .and_then(|d| d.eq(a.getattr("dtype")?))
        .map_err(&f)?;
    prop_assert!(same_dtype, "{}: copy dtype", what);
    prop_assert_eq!(
        bytes_of(copy.as_any()).map_err(&f)?,
        np_bytes,
        "{}: copy elements",
        what
    );
    let shares: bool = py
        .import("numpy")
        .and_then(|np| np.call_method1("shares_memory", (copy, a)))
        .and_then(|x| x.extract())
        .map_err(&f)?;
    prop_assert!(!shares, "{}: the copy shares memory with the source", what);
    Ok(())
}

fn strided_specs(ndim: usize) -> Vec<AxisSpec> {
    vec![AxisSpec::STRIDED_DIRECT; ndim]
}

fn run_strided<T: FromBytes + numpy::Element>(
    py: Python<'_>,
    h: &Bound<'_, PyModule>,
    info: &'static TypeInfo,
    case: &Strided,
    counts: &mut Counts,
) -> Result<(), TestCaseError> {
    let (code, _) = DTYPES[case.dtype];
    let what = format!(
        "build('{code}', {:?}, {:?}, {})",
        case.shape, case.strides, case.misalign
    );
    let a = h
        .getattr("build")
        .and_then(|b| {
            b.call1((
                code,
                case.shape.clone(),
                case.strides.clone(),
                case.misalign,
            ))
        })
        .map_err(fail(&what))?;
    // const T[:, :, ...]
    let specs = strided_specs(case.shape.len());
    let view = acquire(&a, &Declaration::new(info, &specs, false)).map_err(fail(&what))?;
    check_strided::<T>(py, h, &a, &view, &what, counts)
}

#[test]
fn as_array_and_to_pyarray_match_numpy() {
    let n = cases(600);
    let counts = std::cell::RefCell::new(Counts::default());
    let result = with_python(|py| {
        let h = helpers(py);
        runner(n, "proptest-regressions/features.txt").run(&strided(), |case| {
            match DTYPES[case.dtype].0 {
                "d" => run_strided::<f64>(py, &h, &format::DOUBLE, &case, &mut counts.borrow_mut()),
                "f" => run_strided::<f32>(py, &h, &format::FLOAT, &case, &mut counts.borrow_mut()),
                "q" => run_strided::<i64>(
                    py,
                    &h,
                    <i64 as cyview_py::CythonElement>::TYPE_INFO,
                    &case,
                    &mut counts.borrow_mut(),
                ),
                "i" => run_strided::<i32>(py, &h, &format::INT, &case, &mut counts.borrow_mut()),
                "h" => run_strided::<i16>(py, &h, &format::SHORT, &case, &mut counts.borrow_mut()),
                _ => run_strided::<u8>(
                    py,
                    &h,
                    &format::UNSIGNED_CHAR,
                    &case,
                    &mut counts.borrow_mut(),
                ),
            }
        })
    });
    let n = n as usize;
    report(
        "features: as_array and to_pyarray match NumPy",
        n,
        if result.is_ok() { n } else { n - 1 },
        usize::from(result.is_err()),
    );
    let counts = counts.into_inner();
    println!(
        "features: as_array accepted {} (negative strides {}, zero strides {}), refused {} (unaligned per NumPy)",
        counts.accepted, counts.negative, counts.zero, counts.refused
    );
    if let Err(e) = result {
        panic!("as_array/to_pyarray: {e}");
    }
    // The property must have exercised both outcomes and the unusual strides.
    assert!(counts.accepted > 0 && counts.refused > 0 && counts.negative > 0 && counts.zero > 0);
}

/// An ndarray array after random strided slicing, axis inversions and a transpose.
#[derive(Clone, Debug)]
struct Owned {
    shape: Vec<usize>,
    step2: Vec<bool>,
    invert: Vec<bool>,
    transpose: bool,
    readonly: bool,
    int: bool,
}

fn owned() -> impl Strategy<Value = Owned> {
    (1usize..=4)
        .prop_flat_map(|ndim| {
            (
                proptest::collection::vec(prop_oneof![1 => Just(0usize), 9 => 1usize..=5], ndim),
                proptest::collection::vec(any::<bool>(), ndim),
                proptest::collection::vec(any::<bool>(), ndim),
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
            )
        })
        .prop_map(|(shape, step2, invert, transpose, readonly, int)| Owned {
            shape,
            step2,
            invert,
            transpose,
            readonly,
            int,
        })
}

fn make_owned<T: Copy>(o: &Owned, from: impl Fn(usize) -> T) -> Array<T, IxDyn> {
    let n: usize = o.shape.iter().product();
    let mut a =
        Array::from_shape_vec(IxDyn(&o.shape), (0..n).map(from).collect()).expect("shape matches");
    for (d, &s) in o.step2.iter().enumerate() {
        if s {
            a.slice_axis_inplace(Axis(d), Slice::from(..).step_by(2));
        }
    }
    for (d, &i) in o.invert.iter().enumerate() {
        if i {
            a.invert_axis(Axis(d));
        }
    }
    if o.transpose {
        a = a.reversed_axes();
    }
    a
}

fn check_owned<T: cyview_py::CythonElement + cyview::IntoBytes + numpy::Element + Send>(
    py: Python<'_>,
    h: &Bound<'_, PyModule>,
    a: Array<T, IxDyn>,
    o: &Owned,
) -> Result<(), TestCaseError> {
    let what = format!("{o:?}");
    let f = fail(&what);
    let item = std::mem::size_of::<T>() as isize;
    let shape = a.shape().to_vec();
    let strides: Vec<isize> = a.strides().iter().map(|&s| s * item).collect();
    let expected = numpy_bytes(py, a.iter().copied().collect()).map_err(&f)?;
    // No copy: NumPy must reach the array's own elements.
    let addrs: Vec<usize> = a.iter().map(|x| x as *const T as usize).collect();
    let rb = RustBuffer::from_ndarray(a, o.readonly).map_err(&f)?;
    let obj = Bound::new(py, rb).map_err(&f)?;
    let np = py.import("numpy").map_err(&f)?;
    let arr = np.call_method1("asarray", (obj.clone(),)).map_err(&f)?;
    let np_shape: Vec<usize> = arr.getattr("shape").and_then(|s| s.extract()).map_err(&f)?;
    let np_strides: Vec<isize> = arr
        .getattr("strides")
        .and_then(|s| s.extract())
        .map_err(&f)?;
    prop_assert_eq!(&np_shape, &shape, "{}", what);
    if !shape.contains(&0) {
        for (d, &n) in shape.iter().enumerate() {
            if n > 1 {
                prop_assert_eq!(np_strides[d], strides[d], "{} dim {}", what, d);
            }
        }
    }
    let got = arr
        .call_method0("ravel")
        .and_then(|r| bytes_of(&r))
        .map_err(&f)?;
    prop_assert_eq!(got, expected, "{}: elements", what);
    let np_addrs: Vec<usize> = h
        .getattr("addresses")
        .and_then(|g| g.call1((&arr,)))
        .and_then(|x| x.extract())
        .map_err(&f)?;
    prop_assert_eq!(np_addrs, addrs, "{}: element addresses", what);
    let writeable: bool = arr
        .getattr("flags")
        .and_then(|fl| fl.getattr("writeable"))
        .and_then(|x| x.extract())
        .map_err(&f)?;
    prop_assert_eq!(writeable, !o.readonly, "{}: writeable", what);
    prop_assert_eq!(obj.get().export_count(), 1, "{}: one export", what);
    drop(arr);
    prop_assert_eq!(obj.get().export_count(), 0, "{}: export released", what);
    Ok(())
}

#[test]
fn from_ndarray_is_what_numpy_sees() {
    let n = cases(300);
    let result = with_python(|py| {
        let h = helpers(py);
        runner(n, "proptest-regressions/features.txt").run(&owned(), |o| {
            if o.int {
                check_owned(py, &h, make_owned(&o, |k| k as i32 - 7), &o)
            } else {
                check_owned(py, &h, make_owned(&o, |k| k as f64 * 0.5), &o)
            }
        })
    });
    let n = n as usize;
    report(
        "features: RustBuffer::from_ndarray seen by NumPy",
        n,
        if result.is_ok() { n } else { n - 1 },
        usize::from(result.is_err()),
    );
    if let Err(e) = result {
        panic!("from_ndarray: {e}");
    }
}

fn generic_specs(ndim: usize) -> Vec<AxisSpec> {
    vec![AxisSpec::new(Access::Full, Packing::Strided); ndim]
}

#[test]
fn indirect_buffers_are_refused_by_as_array_and_copied_by_to_pyarray() {
    with_python(|py| {
        let tb = py.import("_testbuffer").unwrap();
        let pil = tb.getattr("ND_PIL").unwrap();
        for shape in [vec![3usize], vec![2, 3], vec![2, 1, 4]] {
            let n: usize = shape.iter().product();
            let items: Vec<f64> = (0..n).map(|k| k as f64 + 0.25).collect();
            let kwargs = pyo3::types::PyDict::new(py);
            kwargs.set_item("shape", shape.clone()).unwrap();
            kwargs.set_item("format", "d").unwrap();
            kwargs.set_item("flags", &pil).unwrap();
            let nd = tb
                .getattr("ndarray")
                .unwrap()
                .call((items,), Some(&kwargs))
                .unwrap();
            // const double[::view.generic, ...]
            let specs = generic_specs(shape.len());
            let view = acquire(&nd, &Declaration::new(&format::DOUBLE, &specs, false)).unwrap();
            let sub0: isize = nd
                .getattr("suboffsets")
                .unwrap()
                .get_item(0)
                .unwrap()
                .extract()
                .unwrap();
            // SAFETY: refused before any view exists.
            let err = unsafe { view.as_array::<f64>() }.unwrap_err();
            assert!(err.is_instance_of::<pyo3::exceptions::PyValueError>(py));
            assert_eq!(
                err.value(py).to_string(),
                format!(
                    "Dimension 0 is indirect (suboffset {sub0}): an ndarray view needs direct memory"
                )
            );
            let copy = view.to_pyarray::<f64>(py).unwrap();
            let same: bool = copy
                .call_method0("tolist")
                .unwrap()
                .eq(nd.call_method0("tolist").unwrap())
                .unwrap();
            assert!(same, "shape {shape:?}: the copy differs from tolist()");
        }
    });
}

#[test]
fn item_size_mismatch_is_a_value_error() {
    with_python(|py| {
        let a = py
            .import("numpy")
            .unwrap()
            .call_method1("arange", (4.0,))
            .unwrap();
        let specs = [AxisSpec::STRIDED_DIRECT];
        let view = acquire(&a, &Declaration::new(&format::DOUBLE, &specs, false)).unwrap();
        for err in [
            // SAFETY: refused before any view exists.
            unsafe { view.as_array::<f32>() }.unwrap_err(),
            view.to_pyarray::<f32>(py).unwrap_err(),
        ] {
            assert!(err.is_instance_of::<pyo3::exceptions::PyValueError>(py));
            assert_eq!(
                err.value(py).to_string(),
                "element type has 4 bytes, the buffer's items have 8"
            );
        }
    });
}

#[test]
fn from_ndarray_refuses_more_than_8_dimensions() {
    let a = Array::<f64, _>::zeros(IxDyn(&[1; 9]));
    let err = RustBuffer::from_ndarray(a, false).err().unwrap();
    with_python(|py| {
        assert_eq!(
            err.value(py).to_string(),
            "ndim 9 exceeds the maximum of 8 dimensions"
        );
    });
}
