//! The safe typed views over Rust memory: addressing by the PEP 3118 formula, unaligned
//! data, byte strides that are not multiples of the item size, zero extents, zero and
//! negative strides, mutation through aliasing elements, copies.
//!
//! Expected values are decoded straight from the bytes at `offset + sum(i_d * stride_d)`
//! (the buffer protocol's definition), or follow NumPy's assignment semantics where noted.

mod common;

use cyview::raw::slicing;
use cyview::{s, ErrorKind, Order, Semantics, Slice, SliceItem, View, ViewMut};

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|k| (k * 37 % 251) as u8).collect()
}

fn f64_at(bytes: &[u8], at: isize) -> f64 {
    f64::from_le_bytes(bytes[at as usize..at as usize + 8].try_into().unwrap())
}

/// Every index of `shape`, in C order (`common::all_indices`, as `usize`).
fn indices(shape: &[usize]) -> Vec<Vec<usize>> {
    let shape: Vec<isize> = shape.iter().map(|&n| n as isize).collect();
    common::all_indices(&shape)
        .into_iter()
        .map(|i| i.into_iter().map(|k| k as usize).collect())
        .collect()
}

fn offset_of(offset: usize, idx: &[usize], strides: &[isize]) -> isize {
    offset as isize
        + idx
            .iter()
            .zip(strides)
            .map(|(&i, &s)| i as isize * s)
            .sum::<isize>()
}

#[test]
fn unaligned_overlapping_elements_read_the_bytes_at_their_offsets() {
    let bytes = pattern(200);
    // Offset 3 (unaligned), strides 13 and 3 bytes: elements overlap and straddle.
    let (offset, shape, strides) = (3usize, [5usize, 7], [13isize, 3]);
    let v = View::<f64>::from_bytes(&bytes, offset, &shape, &strides).unwrap();
    for idx in indices(&shape) {
        let want = f64_at(&bytes, offset_of(offset, &idx, &strides));
        assert_eq!(v.get(&idx).unwrap().to_bits(), want.to_bits(), "{idx:?}");
    }
    let order: Vec<u64> = indices(&shape)
        .iter()
        .map(|i| f64_at(&bytes, offset_of(offset, i, &strides)).to_bits())
        .collect();
    assert_eq!(v.iter().map(f64::to_bits).collect::<Vec<_>>(), order);
}

#[test]
fn negative_and_zero_strides_address_backwards_and_repeat() {
    let bytes = pattern(256);
    let (offset, shape, strides) = (200usize, [4usize, 3, 2], [-40isize, 0, -8]);
    let v = View::<f64>::from_bytes(&bytes, offset, &shape, &strides).unwrap();
    for idx in indices(&shape) {
        let want = f64_at(&bytes, offset_of(offset, &idx, &strides));
        assert_eq!(v.get(&idx).unwrap().to_bits(), want.to_bits());
        assert_eq!(
            v.get(&idx).unwrap().to_bits(),
            v.get(&[idx[0], 0, idx[2]]).unwrap().to_bits()
        );
    }
}

#[test]
fn empty_dimensions_have_no_elements_and_any_offset_inside() {
    let bytes = pattern(16);
    let v = View::<f64>::from_bytes(&bytes, 16, &[3, 0, 2], &[1000, -7, 1 << 40]).unwrap();
    assert_eq!(v.len(), 0);
    assert!(v.is_empty());
    assert_eq!(v.iter().count(), 0);
    assert_eq!(v.get(&[0, 0, 0]), None);
    assert!(v.to_vec().unwrap().is_empty());
}

#[test]
fn views_reaching_outside_their_bytes_are_refused() {
    let bytes = pattern(64);
    let err = View::<f64>::from_bytes(&bytes, 0, &[2, 2], &[8, -8]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ValueError);
    assert_eq!(
        err.message(),
        "view reaches bytes -8..16 outside the 64-byte buffer"
    );
    let err = View::<f64>::from_bytes(&bytes, 57, &[1], &[8]).unwrap_err();
    assert_eq!(
        err.message(),
        "view reaches bytes 57..65 outside the 64-byte buffer"
    );
    assert!(View::<f64>::from_bytes(&bytes, 56, &[1], &[8]).is_ok());
    let err = View::<f64>::from_bytes(&bytes, 65, &[0], &[8]).unwrap_err();
    assert_eq!(
        err.message(),
        "offset 65 is past the end of the 64-byte buffer"
    );
    let err = View::<f64>::from_bytes(&bytes, 0, &[1; 9], &[8; 9]).unwrap_err();
    assert_eq!(err.message(), "ndim 9 exceeds the maximum of 8 dimensions");
    let err = View::<f64>::from_bytes(&bytes, 0, &[2, 2], &[8]).unwrap_err();
    assert_eq!(err.message(), "shape has 2 dimensions but strides has 1");
    let err = View::<f64>::from_bytes(&bytes, 0, &[3, 1 << 62], &[isize::MAX, 8]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ValueError);
}

#[test]
fn out_of_bounds_get_is_none_and_at_gives_cythons_error() {
    let data: Vec<f64> = (0..6).map(f64::from).collect();
    let v = View::from_slice(&data, &[2, 3]).unwrap();
    assert_eq!(v.get(&[2, 0]), None);
    assert_eq!(v.get(&[0, 3]), None);
    assert_eq!(v.get(&[0]), None);
    assert_eq!(v.get(&[0, 0, 0]), None);
    assert_eq!(v.get(&[usize::MAX, 0]), None);
    assert_eq!(v.at(&[-1, -1]).unwrap(), 5.0);
}

#[test]
fn fold_path_next_path_and_indexing_agree() {
    let bytes = pattern(400);
    let (offset, shape, strides) = (150usize, [3usize, 4, 5], [-48isize, 11, 3]);
    let v = View::<f64>::from_bytes(&bytes, offset, &shape, &strides).unwrap();
    let by_get: Vec<u64> = indices(&shape)
        .iter()
        .map(|i| v.get(i).unwrap().to_bits())
        .collect();
    let by_fold: Vec<u64> = v.iter().fold(Vec::new(), |mut acc, x| {
        acc.push(x.to_bits());
        acc
    });
    let mut by_next = Vec::new();
    let mut it = v.iter();
    // Consume one element first so that the fold below takes the partial path.
    by_next.push(it.next().unwrap().to_bits());
    let rest: Vec<u64> = it.fold(Vec::new(), |mut acc, x| {
        acc.push(x.to_bits());
        acc
    });
    by_next.extend(rest);
    assert_eq!(by_fold, by_get);
    assert_eq!(by_next, by_get);
    assert_eq!(v.iter().len(), 60);
}

#[test]
fn mutation_through_aliasing_elements_is_seen_by_every_alias() {
    let mut data = vec![0.0f64; 6];
    {
        let mut v = ViewMut::strided(&mut data, 0, &[3, 4], &[2, 0]).unwrap();
        assert!(v.set(&[1, 3], 7.5));
        assert_eq!(v.get(&[1, 0]), Some(7.5));
        assert!(!v.set(&[3, 0], 1.0));
        v.fill(2.0);
        assert_eq!(v.to_vec().unwrap(), vec![2.0; 12]);
    }
    assert_eq!(data, vec![2.0, 0.0, 2.0, 0.0, 2.0, 0.0]);
}

#[test]
fn slicing_a_view_uses_python_semantics_by_default() {
    let data: Vec<i64> = (0..10).collect();
    let v = View::from_slice(&data, &[10]).unwrap();
    // Python: list(range(10))[8:-100:-3] == [8, 5, 2]
    assert_eq!(
        v.slice(&s![8..-100;-3]).unwrap().to_vec().unwrap(),
        vec![8, 5, 2]
    );
    // Python: list(range(10))[-100::-1] == []
    assert!(v
        .slice(&s![-100..;-1])
        .unwrap()
        .to_vec()
        .unwrap()
        .is_empty());
    let m = View::from_slice(&data, &[2, 5]).unwrap();
    // NumPy: np.arange(10).reshape(2, 5)[None, ..., ::2] -> [[[0, 2, 4], [5, 7, 9]]]
    let w = m.slice(&s![NewAxis, Ellipsis, ..;2]).unwrap();
    assert_eq!(w.shape(), &[1, 2, 3]);
    assert_eq!(w.to_vec().unwrap(), vec![0, 2, 4, 5, 7, 9]);
    // Ellipsis alone, and indexing every axis, give 2-d and 0-d views.
    assert_eq!(m.slice(&s![Ellipsis]).unwrap().shape(), &[2, 5]);
    let e = m.slice(&s![1, -1]).unwrap();
    assert_eq!(e.ndim(), 0);
    assert_eq!(e.to_vec().unwrap(), vec![9]);
}

#[test]
fn transposing_a_view_reverses_its_dimensions() {
    let data: Vec<i32> = (0..24).collect();
    let v = View::from_slice(&data, &[2, 3, 4]).unwrap();
    let t = v.t().unwrap();
    assert_eq!(t.shape(), &[4, 3, 2]);
    assert_eq!(t.strides(), &[4, 16, 48]);
    // NumPy: np.arange(24).reshape(2, 3, 4).T[3, 2, 1] == 23
    assert_eq!(t.get(&[3, 2, 1]), Some(23));
    assert!(v.is_c_contig() && !v.is_f_contig());
    assert!(t.is_f_contig() && !t.is_c_contig());
}

#[test]
fn copies_are_contiguous_with_the_same_elements() {
    let bytes = pattern(300);
    let v = View::<f64>::from_bytes(&bytes, 250, &[3, 4], &[-64, 3]).unwrap();
    let c = v.copy(Order::C).unwrap();
    assert_eq!(c.strides(), &[32, 8]);
    let cv = c.view::<f64>().unwrap();
    assert!(cv.is_c_contig());
    let f = v.copy(Order::Fortran).unwrap();
    assert_eq!(f.strides(), &[8, 24]);
    let fv = f.view::<f64>().unwrap();
    assert!(fv.is_f_contig());
    for idx in indices(&[3, 4]) {
        let want = v.get(&idx).unwrap().to_bits();
        assert_eq!(cv.get(&idx).unwrap().to_bits(), want);
        assert_eq!(fv.get(&idx).unwrap().to_bits(), want);
    }
    assert_eq!(
        c.view::<f32>().unwrap_err().message(),
        "element type has 4 bytes, the buffer's items have 8"
    );
}

#[test]
fn copy_from_broadcasts_leading_and_unit_dimensions() {
    // NumPy: dst[...] = src with src of shape (4,) and (3, 1) into (3, 4).
    let row = [1.0, 2.0, 3.0, 4.0];
    let col = [10.0, 20.0, 30.0];
    let mut out = vec![0.0f64; 12];
    let mut dst = ViewMut::from_slice(&mut out, &[3, 4]).unwrap();
    dst.copy_from(&View::from_slice(&row, &[4]).unwrap())
        .unwrap();
    assert_eq!(dst.to_vec().unwrap(), [row, row, row].concat());
    dst.copy_from(&View::from_slice(&col, &[3, 1]).unwrap())
        .unwrap();
    assert_eq!(
        dst.to_vec().unwrap(),
        vec![10.0, 10.0, 10.0, 10.0, 20.0, 20.0, 20.0, 20.0, 30.0, 30.0, 30.0, 30.0]
    );
}

#[test]
fn overlapping_copy_behaves_as_if_through_a_temporary() {
    // NumPy: a = np.arange(8.); a[1:] = a[:-1]  ->  [0, 0, 1, 2, 3, 4, 5, 6]
    let mut a: Vec<f64> = (0..8).map(f64::from).collect();
    {
        let full = ViewMut::from_slice(&mut a, &[8]).unwrap();
        let src = full.as_view().slice(&s![..-1]).unwrap();
        let dst = full.as_view().slice(&s![1..]).unwrap();
        // SAFETY: both slices address `a` through the ViewMut's pointer, `a` is alive and
        // accessed only here; the overlap is what copy_contents handles.
        unsafe { cyview::raw::copy::copy_contents(src.as_raw(), 1, dst.as_raw(), 1, 8) }.unwrap();
    }
    assert_eq!(a, vec![0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    // a[:-1] = a[1:] on the result -> shifts back
    {
        let full = ViewMut::from_slice(&mut a, &[8]).unwrap();
        let src = full.as_view().slice(&s![1..]).unwrap();
        let dst = full.as_view().slice(&s![..-1]).unwrap();
        // SAFETY: as above.
        unsafe { cyview::raw::copy::copy_contents(src.as_raw(), 1, dst.as_raw(), 1, 8) }.unwrap();
    }
    assert_eq!(a, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 6.0]);
}

#[test]
fn cython_semantics_on_a_safe_view_refuse_selections_outside_it() {
    let data = [1.0f64, 2.0, 3.0];
    let v = View::from_slice(&data, &[3]).unwrap();
    // Cython computes one element at index 3 for v[3:2:2] (see the slicing docs); the safe
    // view refuses instead of reading past the end.
    let err = v.slice_with(&s![3..2;2], Semantics::Cython).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ValueError);
    assert!(err.message().starts_with("Cannot slice"), "{err}");
    assert!(v
        .slice_with(&s![3..2;2], Semantics::Python)
        .unwrap()
        .is_empty());
}

#[test]
fn views_are_send_and_sync_like_slices() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<View<'static, f64>>();
    assert_send_sync::<ViewMut<'static, f64>>();
    let data: Vec<f64> = (0..1000).map(f64::from).collect();
    let v = View::from_slice(&data, &[10, 100]).unwrap();
    let total: f64 = std::thread::scope(|s| {
        let h: Vec<_> = (0..2)
            .map(|k| {
                let part = v
                    .slice(&[cyview::SliceItem::Slice(cyview::Slice::new(
                        Some(k * 5),
                        Some(k * 5 + 5),
                        None,
                    ))])
                    .unwrap();
                s.spawn(move || part.iter().sum::<f64>())
            })
            .collect();
        h.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(total, (0..1000).sum::<i32>() as f64);
}

#[test]
fn indirect_views_read_through_their_pointer_table() {
    // PIL style: dimension 0 holds pointers to rows; suboffset 8 skips a header word.
    let rows: Vec<Vec<f64>> = (0..3)
        .map(|r| (0..5).map(|c| (100 * r + c) as f64).collect())
        .collect();
    let table: Vec<*const f64> = rows
        .iter()
        .rev()
        .map(|r| r.as_ptr().wrapping_sub(1))
        .collect();
    let mut raw = cyview::MemviewSlice::EMPTY;
    raw.data = table.as_ptr().cast::<u8>().cast_mut();
    raw.shape[..2].copy_from_slice(&[3, 5]);
    raw.strides[..2].copy_from_slice(&[8, 8]);
    raw.suboffsets[..2].copy_from_slice(&[8, -1]);
    // SAFETY: every in-bounds index reaches a pointer slot of `table` and then an element of
    // `rows`, both alive and unmodified for the view's use in this test.
    let v = unsafe { View::<f64>::from_raw(raw, 2) }.unwrap();
    let by_get: Vec<f64> = indices(&[3, 5]).iter().map(|i| v.get(i).unwrap()).collect();
    let want: Vec<f64> = (0..3)
        .rev()
        .flat_map(|r| (0..5).map(move |c| (100 * r + c) as f64))
        .collect();
    assert_eq!(by_get, want);
    assert_eq!(v.to_vec().unwrap(), want);
    let mut by_next = Vec::new();
    for x in v.iter() {
        by_next.push(x);
    }
    assert_eq!(by_next, want);
    // Python semantics slicing keeps working through the table: v[::-2, 1:4]
    let w = v.slice(&s![..;-2, 1..4]).unwrap();
    assert_eq!(
        w.to_vec().unwrap(),
        vec![1.0, 2.0, 3.0, 201.0, 202.0, 203.0]
    );
    assert_eq!(v.at(&[0, -1]).unwrap(), 204.0);
    assert_eq!(
        v.t().unwrap_err().message(),
        "Cannot transpose memoryview with indirect dimensions"
    );
    assert_eq!(
        v.copy(Order::C).unwrap_err().message(),
        "Cannot copy memoryview slice with indirect dimensions (axis 0)"
    );
}

/// An empty result addresses nothing, so the in-bounds slicing never refuses it for its
/// geometry: on an exhaustive grid of 2-d sources (extents 0-3) and slice pairs, every
/// Cython-semantics result with an empty dimension is returned with the shape Cython's own
/// arithmetic gives (`slicing::slice`, proven bit-identical to compiled Cython by the golden
/// vectors). Before, the per-axis check refused many of them (for example `[3:2:2, 0:0]` on
/// a 3x2 source, whose first axis alone selects index 3).
#[test]
fn empty_results_are_never_refused_for_their_geometry() {
    let data = [0u8; 64];
    let bounds = [
        None,
        Some(-4),
        Some(-1),
        Some(0),
        Some(1),
        Some(2),
        Some(3),
        Some(4),
    ];
    let steps = [None, Some(-3), Some(-1), Some(1), Some(2), Some(3)];
    let mut empty = 0;
    for n0 in 0..4usize {
        for n1 in 0..4usize {
            let v = View::<u8>::from_bytes(&data, 0, &[n0, n1], &[4, 1]).unwrap();
            for &a in &bounds {
                for &b in &bounds {
                    for &c in &steps {
                        for second in [s![0..0], s![..], s![1..;-1]] {
                            let mut items = vec![SliceItem::Slice(Slice::new(a, b, c))];
                            items.push(second[0]);
                            let exact = slicing::slice(
                                v.as_raw(),
                                2,
                                &items,
                                Semantics::Cython,
                                cyview::Direct,
                            )
                            .unwrap();
                            if !exact.0.shape[..exact.1].contains(&0) {
                                continue;
                            }
                            empty += 1;
                            let w = v
                                .slice_with(&items, Semantics::Cython)
                                .unwrap_or_else(|e| panic!("{n0}x{n1} {items:?}: {e}"));
                            assert_eq!(w.shape(), &exact.0.shape[..exact.1]);
                            assert!(w.to_vec().unwrap().is_empty());
                        }
                    }
                }
            }
        }
    }
    assert!(empty > 1000, "{empty} empty results on the grid");
}

/// Issue 9, reproducer 2: a valid PIL-style 2x3 view (a table of two row pointers), then
/// `v[None, :, :].T`. Cython's transpose checks only the swapped dimensions, so the result
/// used to be accepted with suboffsets `[-1, 0, -1]`, and `get(&[1, 1, 0])` read slot 2 of
/// the 2-slot table. Now the safe transpose refuses, naming the middle dimension; the
/// Cython-exact `slicing::transpose` still gives Cython's geometry.
#[test]
fn indirect_middle_dimension_transpose_is_refused() {
    let rows = [[0.0f64, 1.0, 2.0], [3.0, 4.0, 5.0]];
    let table: [*const f64; 2] = [rows[0].as_ptr(), rows[1].as_ptr()];
    let mut raw = cyview::MemviewSlice {
        data: table.as_ptr() as *mut u8,
        ..cyview::MemviewSlice::EMPTY
    };
    raw.shape[..2].copy_from_slice(&[2, 3]);
    raw.strides[..2].copy_from_slice(&[8, 8]);
    raw.suboffsets[..2].copy_from_slice(&[0, -1]);
    // SAFETY: every in-bounds index reads a slot of `table` (2 slots, 8 bytes apart) and an
    // element of one of the two rows; nothing writes them while `v` lives.
    let v = unsafe { View::<f64>::from_raw(raw, 2) }.unwrap();
    assert_eq!(v.to_vec().unwrap(), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    let w = v.slice(&s![SliceItem::NewAxis, .., ..]).unwrap();
    let err = w.t().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ValueError);
    assert_eq!(
        err.message(),
        "Cannot transpose memoryview with indirect dimensions (dimension 1, the middle one, \
         is indirect: Cython does not check it and would move direct dimensions across its \
         pointer table)"
    );
    let mut cython = *w.as_raw();
    slicing::transpose(&mut cython, 3).unwrap();
    assert_eq!(&cython.suboffsets[..3], &[-1, 0, -1]);
    assert_eq!(&cython.shape[..3], &[3, 2, 1]);
}

/// `map_inplace` applies the function to every element of the view once per index, in C
/// order, and leaves the rest of the memory alone (checked against a plain loop over the
/// same indices on a copy).
#[test]
fn map_inplace_updates_each_indexed_element_in_c_order() {
    let mut data: Vec<f64> = (0..24).map(|k| k as f64).collect();
    let mut expected = data.clone();
    // Rows 1.. of a 4x6 array, every other column, reversed: a strided, negative view.
    let shape = [3usize, 3];
    let (offset, strides) = (6 + 5, [6isize, -2]);
    for i in 0..shape[0] {
        for j in 0..shape[1] {
            let k = (offset as isize + i as isize * strides[0] + j as isize * strides[1]) as usize;
            expected[k] = expected[k] * 10.0 + 1.0;
        }
    }
    let mut v = ViewMut::strided(&mut data, offset, &shape, &strides).unwrap();
    v.map_inplace(|x| x * 10.0 + 1.0);
    assert_eq!(data, expected);

    // A zero stride: one element seen at three indices is updated three times.
    let mut one = vec![1u32, 7];
    let mut v = ViewMut::strided(&mut one, 0, &[3], &[0]).unwrap();
    let mut seen = Vec::new();
    v.map_inplace(|x| {
        seen.push(x);
        x * 2
    });
    assert_eq!(seen, [1, 2, 4]);
    assert_eq!(one, [8, 7]);
}
