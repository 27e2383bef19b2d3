//! Export: Rust-owned memory (`cyview_py::RustBuffer`) of ten element types (`f64`, `f32`,
//! `i32`, `i64`, `u8`, `i16`, `Complex<f64>`, `Complex<f32>`, a struct and a packed struct)
//! in direct layouts (contiguous, strided, negative and zero strides, read-only) and
//! PIL-style indirect ones (a pointer table over separately allocated rows), acquired by
//! Cython's own `cdef <decl> v = obj` for the declarations of `live_acquire.pyx`. Cython must
//! accept exactly when `cyview_py::acquire` does (or fail with the same exception and
//! message), see the same slice, reach exactly the element addresses the `RustBuffer`
//! reports (`element_ptr`) and read the values Rust wrote; export counts and refcounts
//! return to their start.

mod support;

use cyview_py::{acquire, CythonElement, Declaration, RustBuffer};
use num_complex::{Complex32, Complex64};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use pyo3::prelude::*;
use support::{
    acquire_declarations, element_addresses, err_of, read_buffer, refcount, report, with_python,
    PPair, Pair, UNDEFINED,
};

/// The element types and, for element number `k` of the memory, the value Rust writes and
/// that value as Python reads it (a list of floats: number, [re, im], struct fields).
trait TestElement: CythonElement {
    fn of(k: usize) -> Self;
    fn floats(k: usize) -> Vec<f64>;
}

macro_rules! numeric {
    ($($t:ty => $m:expr),*) => { $(
        impl TestElement for $t {
            fn of(k: usize) -> Self { (k % $m) as $t }
            fn floats(k: usize) -> Vec<f64> { vec![(k % $m) as f64] }
        }
    )* };
}
numeric!(f64 => 1 << 20, f32 => 1 << 20, i32 => 1 << 20, i64 => 1 << 20, u8 => 251, i16 => 30011);

impl TestElement for Complex64 {
    fn of(k: usize) -> Self {
        Complex64::new(k as f64, -(k as f64) / 2.0)
    }
    fn floats(k: usize) -> Vec<f64> {
        vec![k as f64, -(k as f64) / 2.0]
    }
}
impl TestElement for Complex32 {
    fn of(k: usize) -> Self {
        Complex32::new(k as f32, -(k as f32) / 2.0)
    }
    fn floats(k: usize) -> Vec<f64> {
        vec![k as f64, -(k as f64) / 2.0]
    }
}
impl TestElement for Pair {
    fn of(k: usize) -> Self {
        Pair {
            x: -(k as i32),
            y: k as f64 + 0.25,
        }
    }
    fn floats(k: usize) -> Vec<f64> {
        vec![-(k as f64), k as f64 + 0.25]
    }
}
impl TestElement for PPair {
    fn of(k: usize) -> Self {
        PPair {
            x: -(k as i32),
            y: k as f64 + 0.25,
        }
    }
    fn floats(k: usize) -> Vec<f64> {
        vec![-(k as f64), k as f64 + 0.25]
    }
}

const DTYPES: &[&str] = &[
    "double",
    "float",
    "int",
    "long long",
    "unsigned char",
    "short",
    "double complex",
    "float complex",
    "Pair",
    "PPair",
];

/// Where the elements are: strides and offset in items over one allocation, or a table of
/// row pointers.
#[derive(Clone, Debug)]
enum Geometry {
    Direct {
        shape: Vec<usize>,
        /// Strides in items (the buffer's byte strides are these times the item size).
        strides: Vec<isize>,
        /// The first element's item number in the allocation.
        offset: usize,
        len: usize,
    },
    Indirect {
        rows: usize,
        row_shape: Vec<usize>,
    },
}

impl Geometry {
    fn shape(&self) -> Vec<usize> {
        match self {
            Geometry::Direct { shape, .. } => shape.clone(),
            Geometry::Indirect { rows, row_shape } => std::iter::once(*rows)
                .chain(row_shape.iter().copied())
                .collect(),
        }
    }

    /// The element number (`k` of `TestElement::of`) at `index`.
    fn element(&self, index: &[usize]) -> usize {
        match self {
            Geometry::Direct {
                strides, offset, ..
            } => {
                (*offset as isize
                    + index
                        .iter()
                        .zip(strides)
                        .map(|(&i, &s)| i as isize * s)
                        .sum::<isize>()) as usize
            }
            Geometry::Indirect { row_shape, .. } => {
                let per_row: usize = row_shape.iter().product();
                let flat = index[1..]
                    .iter()
                    .zip(row_shape)
                    .fold(0, |acc, (&i, &n)| acc * n + i);
                index[0] * per_row + flat
            }
        }
    }

    fn build<T: TestElement>(&self, readonly: bool) -> PyResult<RustBuffer> {
        let item = std::mem::size_of::<T>() as isize;
        match self {
            Geometry::Direct {
                shape,
                strides,
                offset,
                len,
            } => {
                let bytes: Vec<isize> = strides.iter().map(|&s| s * item).collect();
                RustBuffer::from_elements(
                    (0..*len).map(T::of).collect(),
                    shape,
                    &bytes,
                    offset * item as usize,
                    readonly,
                )
            }
            Geometry::Indirect { rows, row_shape } => {
                let per_row: usize = row_shape.iter().product();
                let data = (0..*rows)
                    .map(|i| (0..per_row).map(|j| T::of(i * per_row + j)).collect())
                    .collect();
                RustBuffer::indirect(data, row_shape, readonly)
            }
        }
    }
}

fn floats_of<T: TestElement>(k: usize) -> Vec<f64> {
    T::floats(k)
}

/// `RustBuffer` of dtype `name` and the value function of its elements.
#[allow(clippy::type_complexity)]
fn build(
    name: &str,
    g: &Geometry,
    readonly: bool,
) -> PyResult<(RustBuffer, fn(usize) -> Vec<f64>)> {
    Ok(match name {
        "double" => (g.build::<f64>(readonly)?, floats_of::<f64>),
        "float" => (g.build::<f32>(readonly)?, floats_of::<f32>),
        "int" => (g.build::<i32>(readonly)?, floats_of::<i32>),
        "long long" => (g.build::<i64>(readonly)?, floats_of::<i64>),
        "unsigned char" => (g.build::<u8>(readonly)?, floats_of::<u8>),
        "short" => (g.build::<i16>(readonly)?, floats_of::<i16>),
        "double complex" => (g.build::<Complex64>(readonly)?, floats_of::<Complex64>),
        "float complex" => (g.build::<Complex32>(readonly)?, floats_of::<Complex32>),
        "Pair" => (g.build::<Pair>(readonly)?, floats_of::<Pair>),
        "PPair" => (g.build::<PPair>(readonly)?, floats_of::<PPair>),
        other => panic!("unknown dtype {other}"),
    })
}

fn geometry() -> impl Strategy<Value = Geometry> {
    let direct = (1usize..=3)
        .prop_flat_map(|ndim| {
            (
                proptest::collection::vec(0usize..=4, ndim),
                proptest::collection::vec(prop_oneof![5 => -3isize..=3, 1 => Just(0isize)], ndim),
                any::<bool>(),
            )
        })
        .prop_map(|(shape, mut strides, contiguous)| {
            if contiguous {
                let mut acc = 1isize;
                for d in (0..shape.len()).rev() {
                    strides[d] = acc;
                    acc *= shape[d].max(1) as isize;
                }
            }
            let (mut lo, mut hi) = (0isize, 0isize);
            if !shape.contains(&0) {
                for (&n, &s) in shape.iter().zip(&strides) {
                    let d = (n as isize - 1) * s;
                    if d < 0 {
                        lo += d
                    } else {
                        hi += d
                    }
                }
            }
            Geometry::Direct {
                shape,
                strides,
                offset: (-lo) as usize,
                len: (hi - lo) as usize + 1,
            }
        });
    let indirect = (0usize..=4, proptest::collection::vec(0usize..=4, 0..=2))
        .prop_map(|(rows, row_shape)| Geometry::Indirect { rows, row_shape });
    prop_oneof![3 => direct, 2 => indirect]
}

#[test]
fn cython_acquires_rust_buffers_as_rust_reports() {
    let decls = acquire_declarations();
    let cases: u32 = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(
                "proptest-regressions/export.txt",
            ),
        )),
        ..Config::default()
    });
    let accepted = std::sync::atomic::AtomicUsize::new(0);
    let indirect_accepted = std::sync::atomic::AtomicUsize::new(0);
    let undefined = std::sync::atomic::AtomicUsize::new(0);
    let strategy = (
        geometry(),
        any::<bool>(),
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        0u8..10,
    );
    let result = runner.run(&strategy, |(g, readonly, pick, pick_dtype, roll)| {
        let shape = g.shape();
        // Mostly declarations of the buffer's ndim, mostly of their own element type (the
        // others exercise the ndim and format checks).
        let same: Vec<_> = decls
            .iter()
            .filter(|d| d.specs.len() == shape.len())
            .collect();
        let d = if roll < 8 && !same.is_empty() {
            same[pick.index(same.len())]
        } else {
            &decls[pick.index(decls.len())]
        };
        let dtype = if roll % 4 != 3 {
            d.dtype_name.as_str()
        } else {
            DTYPES[pick_dtype.index(DTYPES.len())]
        };
        let (rb, value) =
            build(dtype, &g, readonly).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let what = format!(
            "cdef {} v = RustBuffer<{dtype}>{g:?} readonly={readonly}",
            d.text
        );
        with_python(|py| {
            let obj = Bound::new(py, rb).unwrap();
            let refcount = || refcount(obj.as_any());
            let refs_before = refcount();
            let decl = Declaration::new(d.dtype, &d.specs, d.writable);
            let rust = acquire(obj.as_any(), &decl);
            if let Err(e) = &rust {
                if err_of(py, e).1.starts_with(UNDEFINED) {
                    // Cython's format check crashes on this format (a struct format for a
                    // declaration of its first field's type; see tests/acquire.rs).
                    undefined.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return Ok(());
                }
            }
            let module = py.import("live_acquire").unwrap();
            let cy = module
                .getattr(d.name.as_str())
                .unwrap()
                .call1((obj.clone(),));
            match (cy, rust) {
                (Ok(r), Ok(v)) => {
                    let cb =
                        read_buffer(&r).map_err(|e| TestCaseError::fail(format!("{what}: {e}")))?;
                    let n = cb.ndim;
                    let c = cb.cython_slice();
                    let s = v.as_raw();
                    prop_assert_eq!(n, shape.len(), "{}", what);
                    prop_assert_eq!(c.data, s.data, "{}", what);
                    prop_assert_eq!(&c.shape[..n], &s.shape[..n], "{}", what);
                    prop_assert_eq!(&c.strides[..n], &s.strides[..n], "{}", what);
                    prop_assert_eq!(&c.suboffsets[..n], &s.suboffsets[..n], "{}", what);
                    // Cython reaches exactly the addresses the RustBuffer reports...
                    let indices = support::c_order(&shape);
                    let reported: Vec<Option<usize>> = indices
                        .iter()
                        .map(|i| obj.get().element_ptr(i).map(|p| p as usize))
                        .collect();
                    prop_assert_eq!(element_addresses(&c, n, &cb.slots), reported, "{}", what);
                    // ... and reads there the values Rust wrote.
                    let values: Vec<Vec<f64>> = py
                        .import("live_support")
                        .unwrap()
                        .call_method1("element_values", (r.clone(), n))
                        .and_then(|v| v.extract())
                        .map_err(|e| TestCaseError::fail(format!("{what}: {e}")))?;
                    let written: Vec<Vec<f64>> =
                        indices.iter().map(|i| value(g.element(i))).collect();
                    prop_assert_eq!(values, written, "{}", what);
                    // While Cython (and Rust) hold views, the exports are counted.
                    prop_assert_eq!(obj.get().export_count(), 2, "{}", what);
                    accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if matches!(g, Geometry::Indirect { .. }) {
                        indirect_accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                (Err(e), Err(r)) => prop_assert_eq!(err_of(py, &e), err_of(py, &r), "{}", what),
                (Ok(_), Err(r)) => {
                    return Err(TestCaseError::fail(format!(
                        "{what}: Cython accepts, Rust {:?}",
                        err_of(py, &r)
                    )))
                }
                (Err(e), Ok(_)) => {
                    return Err(TestCaseError::fail(format!(
                        "{what}: Cython {:?}, Rust accepts",
                        err_of(py, &e)
                    )))
                }
            }
            // Cython's memoryview and Rust's view are gone: no export, no extra reference.
            py.import("gc")
                .unwrap()
                .getattr("collect")
                .unwrap()
                .call0()
                .unwrap();
            prop_assert_eq!(obj.get().export_count(), 0, "{}", what);
            prop_assert_eq!(refs_before, refcount(), "{}", what);
            Ok(())
        })
    });
    let n = cases as usize;
    report(
        "export: Cython acquires RustBuffer",
        n,
        if result.is_ok() { n } else { n - 1 },
        usize::from(result.is_err()),
    );
    println!(
        "export: {} of {n} acquisitions accepted by Cython ({} of them indirect); {} not tried \
         (Cython's format check would crash)",
        accepted.load(std::sync::atomic::Ordering::Relaxed),
        indirect_accepted.load(std::sync::atomic::Ordering::Relaxed),
        undefined.load(std::sync::atomic::Ordering::Relaxed)
    );
    if let Err(e) = result {
        panic!("export: {e}");
    }
}

#[test]
fn release_is_refused_while_exported_and_frees_after() {
    with_python(|py| {
        let rb = RustBuffer::from_elements(vec![1.0f64, 2.0, 3.0], &[3], &[8], 0, false).unwrap();
        let obj = Bound::new(py, rb).unwrap();
        let mv = py
            .import("builtins")
            .unwrap()
            .getattr("memoryview")
            .unwrap()
            .call1((obj.clone(),))
            .unwrap();
        assert_eq!(obj.get().export_count(), 1);
        let err = obj.call_method0("release").unwrap_err();
        assert_eq!(
            err_of(py, &err),
            (
                "BufferError".to_string(),
                "cannot release a RustBuffer with 1 live buffer export(s)".to_string()
            )
        );
        mv.call_method0("release").unwrap();
        assert_eq!(obj.get().export_count(), 0);
        obj.call_method0("release").unwrap();
        let err = py
            .import("builtins")
            .unwrap()
            .getattr("memoryview")
            .unwrap()
            .call1((obj.clone(),))
            .unwrap_err();
        assert_eq!(
            err_of(py, &err),
            (
                "BufferError".to_string(),
                "the RustBuffer has been released".to_string()
            )
        );
    });
}

/// `element_ptr` answers `None` for any index outside the shape, however large (it must
/// never read the pointer table out of bounds).
#[test]
fn element_ptr_refuses_indices_outside_the_shape() {
    let rb = RustBuffer::indirect(vec![vec![1.0f64, 2.0], vec![3.0, 4.0]], &[2], false).unwrap();
    for index in [
        [2usize, 0],
        [0, 2],
        [usize::MAX, 0],
        [0, usize::MAX],
        [isize::MAX as usize + 1, 1],
    ] {
        assert_eq!(rb.element_ptr(&index), None, "{index:?}");
    }
    assert_eq!(rb.element_ptr(&[0]), None, "wrong ndim");
    let p = rb.element_ptr(&[1, 1]).unwrap();
    // SAFETY: an in-bounds element of the live buffer.
    assert_eq!(unsafe { p.cast::<f64>().read_unaligned() }, 4.0);
}

/// A foreign buffer's release callback runs exactly once, after `release()` has marked the
/// buffer released (so a callback that looks at the buffer finds it released), and not again
/// on drop.
#[test]
fn foreign_release_callback_runs_once() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let memory: Arc<Vec<u64>> = Arc::new(vec![0; 4]);
    let keep = Arc::clone(&memory);
    let mut slice = cyview::MemviewSlice::EMPTY;
    slice.data = memory.as_ptr().cast_mut().cast();
    slice.shape[0] = 4;
    slice.strides[0] = 8;
    slice.suboffsets[0] = -1;
    // SAFETY: the 4 items lie in `memory`, kept alive by the callback until it runs.
    let rb = unsafe {
        RustBuffer::from_raw(
            slice,
            1,
            "Q",
            8,
            true,
            Some(Box::new(move || {
                drop(keep);
                RUNS.fetch_add(1, Ordering::SeqCst);
            })),
        )
    }
    .unwrap();
    with_python(|py| {
        let obj = Bound::new(py, rb).unwrap();
        obj.call_method0("release").unwrap();
        assert_eq!(RUNS.load(Ordering::SeqCst), 1);
        assert_eq!(obj.get().data_ptr(), None);
        assert_eq!(Arc::strong_count(&memory), 1);
        drop(obj);
        py.import("gc").unwrap().call_method0("collect").unwrap();
    });
    assert_eq!(RUNS.load(Ordering::SeqCst), 1);
}

/// `RustBuffer::from_vec` exports the vector itself, C-contiguous: NumPy sees exactly its
/// elements in C order, Cython's own acquisition (`live_core.as_mv_2d`, a compiled
/// `double[::view.generic, ::view.generic]` argument) and cyview's `double[:, ::1]`
/// accept it, a read-only export is read-only to NumPy, and a wrong shape is refused.
#[test]
fn from_vec_exports_the_vector_c_contiguous_without_copying() {
    support::with_python(|py| -> PyResult<()> {
        let np = py.import("numpy")?;
        for (shape, readonly) in [
            (vec![2usize, 3], false),
            (vec![6], true),
            (vec![1, 2, 3], false),
            (vec![0, 4], true),
        ] {
            let n: usize = shape.iter().product();
            let data: Vec<f64> = (0..n).map(|k| k as f64 * 1.5 - 2.0).collect();
            let expected = data.clone();
            let heap = data.as_ptr() as usize;
            let buffer = Bound::new(py, RustBuffer::from_vec(data, &shape, readonly)?)?;
            let a = np.call_method1("asarray", (&buffer,))?;
            let flat: Vec<f64> = a.call_method0("ravel")?.call_method0("tolist")?.extract()?;
            assert_eq!(flat, expected, "{shape:?}");
            assert_eq!(a.getattr("shape")?.extract::<Vec<usize>>()?, shape);
            assert!(a
                .getattr("flags")?
                .getattr("c_contiguous")?
                .extract::<bool>()?);
            assert_eq!(
                a.getattr("flags")?
                    .getattr("writeable")?
                    .extract::<bool>()?,
                !readonly
            );
            if n > 0 && shape.len() == 2 {
                // The same memory, not a copy: NumPy's data pointer is the vector's.
                let address: usize = a
                    .getattr("__array_interface__")?
                    .get_item("data")?
                    .get_item(0)?
                    .extract()?;
                assert_eq!(address, heap, "a copy, not the vector's own memory");
                let view = acquire(&buffer, &Declaration::parse("double[:, ::1]"))?;
                assert_eq!(view.as_raw().data as usize, address);
                let cy = py
                    .import("live_core")?
                    .call_method1("as_mv_2d", (&buffer,))?;
                let tolist: Vec<Vec<f64>> = np
                    .call_method1("asarray", (cy,))?
                    .call_method0("tolist")?
                    .extract()?;
                assert_eq!(tolist.concat(), expected);
            }
        }
        let err = RustBuffer::from_vec(vec![1.0f64; 5], &[2, 3], false)
            .err()
            .unwrap();
        assert_eq!(
            err.value(py).to_string(),
            "shape [2, 3] does not match a vector of 5 elements"
        );
        Ok(())
    })
    .unwrap();
}
