//! Soundness at the Python boundary (issue 9): each test is a reproducer that used to reach
//! memory outside a buffer, leak uninitialised bytes to Python or abort the process, and
//! now gets a clear error, next to what real Cython does with the same input where Cython
//! is involved.

mod support;

use cyview::format;
use cyview::{s, Access, AxisSpec, ErrorKind, Packing, View};
use cyview_py::{acquire, Declaration, RustBuffer};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use support::{err_of, read_buffer, with_python, Pair};

const GENERIC: AxisSpec = AxisSpec::new(Access::Full, Packing::Strided);

const MIDDLE_MESSAGE: &str = "Cannot transpose memoryview with indirect dimensions (dimension 1, \
     the middle one, is indirect: Cython does not check it and would move direct dimensions \
     across its pointer table)";

/// A PIL-style 2x3 `double` buffer (`_testbuffer.ndarray` with `ND_PIL`: dimension 0 is a
/// table of two row pointers, `suboffsets == (0, -1)`).
fn pil_2x3(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    support::eval(
        py,
        "__import__('_testbuffer').ndarray([float(x) for x in range(6)], shape=[2, 3], \
         format='d', flags=__import__('_testbuffer').ND_PIL)",
    )
}

/// `v[None, :, :].T` of a PIL-style view: Cython's `transpose_memslice` checks only the
/// dimensions it swaps (0 and 2), so the indirect dimension stays in the middle and the
/// direct dimension 2 of `v` (now first) is applied *before* the pointer table is read.
/// Real Cython (fixture `transpose_finding.pyx`) then gives two indices the same element
/// and reads a pointer from past the end of the two-slot table for `t[1, 1, 0]`. cyview's
/// safe `View::t` refuses; it used to return the same geometry as Cython (and `get(&[1, 1,
/// 0])` read slot 2 of the 2-slot table).
#[test]
fn transposing_an_indirect_middle_dimension() {
    with_python(|py| -> PyResult<()> {
        let a = pil_2x3(py)?;
        // What Cython computes: address of t[i, j, k] and t's geometry.
        let f = py
            .import("transpose_finding")?
            .getattr("middle_indirect_transpose")?;
        let at = |i: isize, j: isize, k: isize| -> PyResult<(usize, Vec<isize>, Vec<isize>)> {
            let r = f.call1((&a, i, j, k))?;
            let r = r.cast::<PyTuple>()?;
            Ok((
                r.get_item(0)?.extract()?,
                r.get_item(1)?.extract()?,
                r.get_item(3)?.extract()?,
            ))
        };
        let (a000, shape, suboffsets) = at(0, 0, 0)?;
        assert_eq!(shape, [3, 2, 1]);
        assert_eq!(suboffsets, [-1, 0, -1]);
        let buffer = read_buffer(&a)?;
        let elements: Vec<usize> =
            support::element_addresses(&buffer.raw, buffer.ndim, &buffer.slots)
                .into_iter()
                .map(|p| p.expect("every element of the source is reachable"))
                .collect();
        // t[1, 0, 0] and t[0, 1, 0] are two indices of one element in Cython's result.
        let (a100, a010, a110) = (at(1, 0, 0)?.0, at(0, 1, 0)?.0, at(1, 1, 0)?.0);
        assert_eq!(a000, elements[0]);
        assert_eq!(a100, a010, "Cython maps two indices to one element");
        // t[1, 1, 0] reads slot 2 of the 2-slot table: not an element of the buffer.
        assert!(
            !elements.contains(&a110),
            "Cython's address {a110:#x} is outside the buffer's elements {elements:x?}"
        );

        // cyview: the same view, acquired as Cython does, refuses the transpose.
        let decl = Declaration::new(&format::DOUBLE, &[GENERIC, GENERIC], false);
        let acquired = acquire(&a, &decl)?;
        // SAFETY: nothing writes to the buffer while the view is read.
        let v = unsafe { acquired.view::<f64>() }?;
        let w = v.slice(&s![cyview::SliceItem::NewAxis, .., ..]).unwrap();
        assert_eq!(w.suboffsets(), &[-1, 0, -1]);
        let err = w.t().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueError);
        assert_eq!(err.message(), MIDDLE_MESSAGE);
        // The even cases keep Cython's own check and message.
        let err = v.t().unwrap_err();
        assert_eq!(
            err.message(),
            "Cannot transpose memoryview with indirect dimensions"
        );

        // The same through a RustBuffer's own pointer table.
        let rb = Bound::new(
            py,
            RustBuffer::indirect(
                vec![vec![0.0f64, 1.0, 2.0], vec![3.0, 4.0, 5.0]],
                &[3],
                true,
            )?,
        )?;
        let acquired = acquire(rb.as_any(), &decl)?;
        // SAFETY: nothing writes to the buffer while the view is read.
        let v = unsafe { acquired.view::<f64>() }?;
        let err = v
            .slice(&s![cyview::SliceItem::NewAxis, .., ..])
            .unwrap()
            .t()
            .unwrap_err();
        assert_eq!(err.message(), MIDDLE_MESSAGE);

        support::finding(
            "transpose/indirect-middle-dimension",
            "outside-source",
            "cdef const double[::view.generic, ::view.generic] v = _testbuffer.ndarray(\
             [0., 1., 2., 3., 4., 5.], shape=[2, 3], format='d', flags=ND_PIL); \
             cdef const double[::view.generic, ::view.generic, ::view.generic] t = \
             (<object> v[None, :, :]).T; &t[1, 1, 0]",
            "transpose_memslice checks only the swapped dimensions for a suboffset: with an odd \
             ndim an indirect middle dimension stays, direct dimensions move across its pointer \
             table; t[1, 0, 0] and t[0, 1, 0] are one element and t[1, 1, 0] reads slot 2 of a \
             2-slot pointer table",
        );
        Ok(())
    })
    .unwrap();
}

/// `RustBuffer::from_elements` used to accept the geometry of the `direct_extent` overflow
/// (`shape [m, m, m]`, `strides [2**62 + 16, isize::MAX, isize::MAX]` over 8 bytes: the span
/// sums wrapped) and export it to Python; it is refused: its span does not even fit in
/// `i128`.
#[test]
fn rust_buffer_refuses_a_geometry_whose_span_overflows() {
    with_python(|py| {
        let m = isize::MAX as usize;
        let err = RustBuffer::from_elements(
            vec![7u64],
            &[m, m, m],
            &[(1 << 62) + 16, isize::MAX, isize::MAX],
            0,
            true,
        )
        .err()
        .expect("refused");
        let (kind, message) = err_of(py, &err);
        assert_eq!(kind, "ValueError");
        assert_eq!(
            message,
            "view reaches beyond any memory (offsets past 2**127 bytes)"
        );
        // One dimension less, the span fits in i128 and the range is named: (m - 1) *
        // (2**62 + 16) + (m - 1) * 8 + 8 bytes, computed exactly in Python.
        let err = RustBuffer::from_elements(vec![7u64], &[m, m], &[(1 << 62) + 16, 8], 0, true)
            .err()
            .expect("refused");
        assert_eq!(
            err_of(py, &err).1,
            "view reaches bytes 0..42535295865117308145059382776630869976 outside the 8-byte buffer"
        );
    });
}

/// `Pair { x: i32, y: f64 }` (`cdef struct Pair` of live_acquire.pyx) has 4 padding bytes
/// at 4..8. Exports used to copy each value byte for byte, padding included: uninitialised
/// in general, here the 0xAA a fresh allocation was filled with before the fields were
/// written one by one, so Python saw `aa aa aa aa` (checked on the code before issue 9).
/// Now padded structs are exported through zeroed memory written field by field: Python
/// sees zeros there, and the fields.
#[test]
fn padding_bytes_never_reach_python() {
    // `element_struct!` decides at compile time which structs are exported field by field.
    const { assert!(<Pair as cyview_py::CythonElement>::PADDED) };
    const { assert!(!<f64 as cyview_py::CythonElement>::PADDED) };
    #[derive(Clone, Copy)]
    #[repr(C)]
    struct Plain {
        x: i32,
        y: i32,
        z: f64,
    }
    // SAFETY: three numbers, no padding: every bit pattern is valid.
    unsafe impl cyview::FromBytes for Plain {}
    cyview_py::element_struct!(Plain as "Plain" { x: &format::INT, y: &format::INT, z: &format::DOUBLE });
    const { assert!(!<Plain as cyview_py::CythonElement>::PADDED) };
    let mut values: Vec<Pair> = Vec::with_capacity(3);
    let p = values.as_mut_ptr();
    for i in 0..3i32 {
        // SAFETY: `p.add(i)` is inside the capacity of 3; the bytes are filled, then both
        // fields written through raw pointers, so element `i` is initialised (its padding
        // holds 0xAA) before `set_len` covers it.
        unsafe {
            std::ptr::write_bytes(p.add(i as usize).cast::<u8>(), 0xAA, 16);
            std::ptr::addr_of_mut!((*p.add(i as usize)).x).write(i);
            std::ptr::addr_of_mut!((*p.add(i as usize)).y).write(f64::from(i) * 0.5);
        }
    }
    // SAFETY: the three elements were initialised above.
    unsafe { values.set_len(3) };
    with_python(|py| -> PyResult<()> {
        let rb = Bound::new(py, RustBuffer::from_elements(values, &[3], &[16], 0, true)?)?;
        let bytes = support::eval(py, "bytes")?.call1((rb,))?;
        let bytes = bytes.cast::<PyBytes>()?.as_bytes().to_vec();
        assert_eq!(bytes.len(), 48);
        for i in 0..3i32 {
            let e = &bytes[i as usize * 16..][..16];
            assert_eq!(&e[4..8], &[0; 4], "padding of element {i}");
            assert_eq!(e[..4], i.to_ne_bytes());
            assert_eq!(e[8..], (f64::from(i) * 0.5).to_ne_bytes());
        }
        Ok(())
    })
    .unwrap();
}

/// A view with 2**59 elements over 8 bytes (NumPy `as_strided(np.zeros(1), shape=(2**59,),
/// strides=(0,))`): `to_pyarray` and `View::to_vec` used to abort the process on the
/// allocation; NumPy raises `MemoryError` for its copy, and so does cyview now.
#[test]
fn copying_a_huge_zero_stride_view_is_a_memory_error() {
    with_python(|py| -> PyResult<()> {
        let a = support::eval(
            py,
            "__import__('numpy').lib.stride_tricks.as_strided(__import__('numpy').zeros(1), \
             shape=(2**59,), strides=(0,))",
        )?;
        let numpy_err = a.call_method0("copy").expect_err("NumPy refuses");
        assert_eq!(err_of(py, &numpy_err).0, "MemoryError");
        let decl = Declaration::new(&format::DOUBLE, &[AxisSpec::STRIDED_DIRECT], false);
        let acquired = acquire(&a, &decl)?;
        let err = acquired.to_pyarray::<f64>(py).expect_err("refused");
        assert_eq!(
            err_of(py, &err),
            (
                "MemoryError".to_string(),
                "cannot allocate 576460752303423488 elements of 8 bytes".to_string()
            )
        );
        Ok(())
    })
    .unwrap();
    let one = [0.0f64];
    let v = View::strided(&one, 0, &[1 << 59], &[0]).unwrap();
    let err = v.to_vec().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MemoryError);
}

type FromObject = unsafe extern "C" fn(*mut pyo3::ffi::PyObject) -> cyview::MemviewSlice;
type SliceFn = unsafe extern "C" fn(
    cyview::MemviewSlice,
    isize,
    isize,
    isize,
    isize,
    isize,
    isize,
) -> cyview::MemviewSlice;

const NOT_AN_ELEMENT: &str =
    "the view addresses memory that is not an element of the buffer: refused";

/// `CythonSlice::slice` keeps Cython's arithmetic, quirks included: on a 3x1 view, `[3:2:2, :]`
/// is one row at index 3, one past the end, as compiled Cython gives it (`exch_slice`). Its
/// `view()` used to read that row (0 bytes after the 24-byte block); now a view is built
/// only when every element is an element of the memoryview object's buffer. In-bounds
/// slices (here `[::-1, :]`, checked against NumPy's own `a[::-1, :]`) are still viewed.
#[test]
fn cyslice_view_refuses_cython_slices_outside_the_buffer() {
    with_python(|py| -> PyResult<()> {
        let m = py.import("exchange")?;
        let from_object: FromObject = cyview_py::capi_function(&m, "exch_from_object")?;
        let cy_slice: SliceFn = cyview_py::capi_function(&m, "exch_slice")?;
        let a = support::eval(py, "__import__('numpy').arange(3.0).reshape(3, 1)")?;
        // SAFETY: exch_from_object returns an owned 2-d slice (or an error slice).
        let v = unsafe { cyview_py::CythonSlice::from_returned(py, from_object(a.as_ptr()), 2) }?;
        // SAFETY: nothing writes to `a` during these reads.
        let whole = unsafe { v.view::<f64>() }?;
        assert_eq!(whole.to_vec().unwrap(), [0.0, 1.0, 2.0]);

        let out = v
            .slice_with(&s![3..2;2, ..], cyview::Semantics::Cython)
            .unwrap();
        // SAFETY: `v` is a live 2-d double slice; Cython returns an owned one.
        let cython = unsafe {
            cyview_py::CythonSlice::from_returned(
                py,
                cy_slice(*v.as_raw(), 3, 2, 2, 0, isize::MAX, 1),
                2,
            )
        }?;
        // A Cython built with the slice-bounds fix of `cython_patches/` selects nothing
        // (Python's `range(3)[3:2:2]`); only cyview's Cython-semantics slice is then left to
        // refuse.
        let outside = if support::cython_semantics() == cyview::Semantics::CythonPatched {
            assert_eq!(&cython.as_raw().shape[..2], &[0, 1]);
            vec![&out]
        } else {
            vec![&out, &cython]
        };
        for s in outside {
            let raw = s.as_raw();
            assert_eq!(&raw.shape[..2], &[1, 1]);
            // The row Cython selects starts one past the end of the 24-byte block.
            assert_eq!(raw.data as usize, v.as_raw().data as usize + 24);
            // SAFETY: nothing writes to `a`.
            let err = unsafe { s.view::<f64>() }.expect_err("refused");
            assert_eq!(
                err_of(py, &err),
                ("ValueError".to_string(), NOT_AN_ELEMENT.to_string())
            );
        }

        let reversed = v
            .slice_with(&s![..;-1, ..], cyview::Semantics::Cython)
            .unwrap();
        // NumPy's own `a[::-1, :]` (a Python lambda: pyo3's `PySlice::new` leaks its bounds).
        let numpy: Vec<f64> = support::eval(py, "lambda a: a[::-1, :].ravel().tolist()")?
            .call1((&a,))?
            .extract()?;
        // SAFETY: nothing writes to `a`.
        assert_eq!(unsafe { reversed.view::<f64>() }?.to_vec().unwrap(), numpy);
        Ok(())
    })
    .unwrap();
}

/// Found by `fuzz_boundary` at 200,000 sequences (a SIGSEGV in `CythonSlice::slice`): a
/// Cython-semantics slice that leaves a PIL-style buffer (`[3:1:2, :]` on 2 rows selects
/// row 2, one past the 2-slot pointer table), then an integer index on that indirect
/// dimension (`[0, :]`), made the safe `slice` read the pointer slot past the table (and
/// later indices dereference whatever it held). Reading a slot now needs the slice proven
/// inside the buffer; Cython-exact slicing that reads nothing is unchanged.
#[test]
fn cyslice_slice_reads_no_pointer_through_a_slice_outside_the_buffer() {
    with_python(|py| -> PyResult<()> {
        let m = py.import("exchange")?;
        let from_object: FromObject = cyview_py::capi_function(&m, "exch_from_object")?;
        let a = support::eval(
            py,
            "__import__('_testbuffer').ndarray([float(x) for x in range(6)], shape=[2, 3], \
             format='d', flags=__import__('_testbuffer').ND_PIL | __import__('_testbuffer').ND_WRITABLE)",
        )?;
        // SAFETY: exch_from_object returns an owned 2-d slice (or an error slice).
        let v = unsafe { cyview_py::CythonSlice::from_returned(py, from_object(a.as_ptr()), 2) }?;
        let table = v.as_raw().data as usize;
        let out = v.slice_with(&s![3..1;2, ..], cyview::Semantics::Cython).unwrap();
        assert_eq!(out.as_raw().shape[0], 1);
        assert_eq!(out.as_raw().data as usize, table + 16, "slot 2 of the 2-slot table");
        let err = out.slice_with(&s![0, ..], cyview::Semantics::Cython).expect_err("refused");
        assert_eq!(
            err_of(py, &err),
            (
                "ValueError".to_string(),
                "Cannot read a pointer through a slice outside its buffer: Cython's slicing put \
                 an index of this view outside the memoryview's buffer"
                    .to_string()
            )
        );
        // In bounds, the same index reads the table as Cython does: row 1, through [1:, :].
        let row = v.slice_with(&s![1.., ..], cyview::Semantics::Cython).unwrap().slice_with(&s![0, ..], cyview::Semantics::Cython).unwrap();
        // SAFETY: nothing writes to `a`.
        let values = unsafe { row.view::<f64>() }?.to_vec().unwrap();
        let want: Vec<f64> = support::eval(py, "lambda a: a.tolist()[1]")?
            .call1((&a,))?
            .extract()?;
        assert_eq!(values, want);
        Ok(())
    })
    .unwrap();
}
