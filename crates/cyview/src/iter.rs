//! Walking a view's elements in C order: [`Iter`] (by value) and the address walk that
//! `fill`, `to_vec` and the copies use. Direct views walk rows with a pointer; indirect
//! views compute each address through their pointer tables.

use core::marker::PhantomData;
use core::mem::size_of;
use core::ops::Add;

use crate::abi::{MemviewSlice, Order, MAX_DIMS};
use crate::bytes::{FromBytes, IntoBytes};
use crate::geometry;
use crate::memory::{ReadPointer, TrustedMemory};
use crate::raw::contig;

/// Calls `f` with the address of every element in C order. `raw` must satisfy a view
/// invariant for `ndim`.
pub(crate) fn for_each_address(raw: &MemviewSlice, ndim: usize, mut f: impl FnMut(*mut u8)) {
    if element_count(raw, ndim) == 0 {
        return;
    }
    if ndim == 0 {
        f(raw.data);
        return;
    }
    if is_direct(raw, ndim) {
        walk_direct(raw, 0, ndim, raw.data, &mut f);
    } else {
        let mut index = [0usize; MAX_DIMS];
        loop {
            f(address(raw, &index[..ndim]));
            if !advance(&mut index, &raw.shape[..ndim]) {
                break;
            }
        }
    }
}

fn walk_direct(
    raw: &MemviewSlice,
    dim: usize,
    ndim: usize,
    p: *mut u8,
    f: &mut impl FnMut(*mut u8),
) {
    let (n, s) = (raw.shape[dim], raw.strides[dim]);
    let mut p = p;
    if dim + 1 == ndim {
        for _ in 0..n {
            f(p);
            p = p.wrapping_offset(s);
        }
    } else {
        for _ in 0..n {
            walk_direct(raw, dim + 1, ndim, p, f);
            p = p.wrapping_offset(s);
        }
    }
}

/// Odometer increment in C order; false when it wraps around.
fn advance(index: &mut [usize; MAX_DIMS], shape: &[isize]) -> bool {
    for d in (0..shape.len()).rev() {
        index[d] += 1;
        if (index[d] as isize) < shape[d] {
            return true;
        }
        index[d] = 0;
    }
    false
}

/// Iterator over a view's elements in C order, by value.
///
/// Direct views walk each innermost row with a pointer (the common path of `next` is one
/// read and one pointer step); [`Iterator::fold`] (and so `sum`, `for_each`, ...) runs nested
/// loops. Indirect views compute each address through the pointer tables.
pub struct Iter<'v, T> {
    raw: MemviewSlice,
    ndim: usize,
    /// Direct views: index of the current row (last entry unused). Indirect views: index of
    /// the next element.
    index: [usize; MAX_DIMS],
    /// Direct views: start of the current row.
    row: *mut u8,
    /// Direct views: the next element of the current row.
    ptr: *mut u8,
    /// Direct views: elements left in the current row.
    inner_left: usize,
    inner_stride: isize,
    inner_len: usize,
    direct: bool,
    remaining: usize,
    _marker: PhantomData<&'v T>,
}

impl<T> Iter<'_, T> {
    pub(crate) fn new(raw: MemviewSlice, ndim: usize) -> Self {
        let remaining = element_count(&raw, ndim);
        let (inner_len, inner_stride) = if ndim == 0 {
            (1, 0)
        } else {
            (raw.shape[ndim - 1] as usize, raw.strides[ndim - 1])
        };
        let direct = is_direct(&raw, ndim);
        Iter {
            raw,
            ndim,
            index: [0; MAX_DIMS],
            row: raw.data,
            ptr: raw.data,
            inner_left: if direct && remaining > 0 {
                inner_len
            } else {
                0
            },
            inner_stride,
            inner_len,
            direct,
            remaining,
            _marker: PhantomData,
        }
    }

    /// Direct views: moves to the next row (the caller knows one exists).
    #[cold]
    fn next_row(&mut self) {
        let mut d = self.ndim.saturating_sub(1);
        while d > 0 {
            d -= 1;
            self.index[d] += 1;
            self.row = self.row.wrapping_offset(self.raw.strides[d]);
            if (self.index[d] as isize) < self.raw.shape[d] {
                break;
            }
            self.row = self.row.wrapping_offset(
                self.raw.shape[d]
                    .wrapping_mul(self.raw.strides[d])
                    .wrapping_neg(),
            );
            self.index[d] = 0;
        }
        self.ptr = self.row;
        self.inner_left = self.inner_len;
    }
}

impl<T> Iter<'_, T> {
    /// The address of the next element in C order.
    #[inline]
    fn next_ptr(&mut self) -> Option<*mut u8> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let p = if self.direct {
            if self.inner_left == 0 {
                self.next_row();
            }
            self.inner_left -= 1;
            let p = self.ptr;
            self.ptr = p.wrapping_offset(self.inner_stride);
            p
        } else {
            let p = address(&self.raw, &self.index[..self.ndim]);
            advance(&mut self.index, &self.raw.shape[..self.ndim]);
            p
        };
        Some(p)
    }
}

impl<T: FromBytes> Iterator for Iter<'_, T> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        let p = self.next_ptr()?;
        // SAFETY: `p` is the address of the in-bounds element the odometer / row pointer
        // designates (remaining was > 0), of a view whose invariant makes in-bounds elements
        // readable as unaligned `T`.
        Some(unsafe { p.cast::<T>().read_unaligned() })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }

    fn fold<B, F: FnMut(B, T) -> B>(self, init: B, mut f: F) -> B {
        if self.remaining == 0 {
            return init;
        }
        let fresh = self.remaining == element_count(&self.raw, self.ndim);
        if !(self.direct && fresh && self.ndim > 0) {
            // Partly consumed or indirect: the general path.
            let mut acc = init;
            // `for` drives `next`, not `fold`, so this does not recurse.
            for x in self {
                acc = f(acc, x);
            }
            return acc;
        }
        fold_direct(&self.raw, 0, self.ndim, self.raw.data, init, &mut f)
    }
}

/// C-order fold over a direct view, one loop per dimension. `raw` must satisfy a view
/// invariant for `ndim` with no indirect dimension, and `dim < ndim`.
fn fold_direct<B, T: FromBytes, F: FnMut(B, T) -> B>(
    raw: &MemviewSlice,
    dim: usize,
    ndim: usize,
    p: *mut u8,
    init: B,
    f: &mut F,
) -> B {
    let (n, s) = (raw.shape[dim], raw.strides[dim]);
    let mut acc = init;
    let mut p = p;
    if dim + 1 == ndim {
        for _ in 0..n {
            // SAFETY: `p` is the address of an in-bounds element of a direct view whose
            // invariant makes it readable as an unaligned `T`.
            acc = f(acc, unsafe { p.cast::<T>().read_unaligned() });
            p = p.wrapping_offset(s);
        }
    } else {
        for _ in 0..n {
            acc = fold_direct(raw, dim + 1, ndim, p, acc, f);
            p = p.wrapping_offset(s);
        }
    }
    acc
}

impl<T: FromBytes> ExactSizeIterator for Iter<'_, T> {}

pub(crate) fn element_count(raw: &MemviewSlice, ndim: usize) -> usize {
    raw.shape[..ndim]
        .iter()
        .fold(1usize, |acc, &n| acc.saturating_mul(n as usize))
}

pub(crate) fn is_direct(raw: &MemviewSlice, ndim: usize) -> bool {
    raw.suboffsets[..ndim].iter().all(|&s| s < 0)
}

/// Address of an in-bounds element. `index` must be in bounds for `raw` and `raw` must
/// satisfy a view's invariant (see [`View::from_raw`]).
#[inline]
pub(crate) fn address(raw: &MemviewSlice, index: &[usize]) -> *mut u8 {
    // SAFETY: the view invariant: pointer slots reached with in-bounds index prefixes are
    // readable; `index` is in bounds, and `element_address` reads only those slots.
    let mem = unsafe { TrustedMemory::new() };
    match geometry::element_address(raw, index.len(), &mem, |d| Ok(index[d] as isize)) {
        Ok(p) => p,
        // `TrustedMemory` never fails and the index closure never fails.
        Err(_) => raw.data,
    }
}

/// The sum of a view's elements, in the order documented at [`crate::View::sum`]: runs of
/// contiguous elements are summed in 8 interleaved lanes, everything else in C order.
/// `raw` must satisfy a view invariant for `ndim`.
pub(crate) fn sum<T: FromBytes + Add<Output = T> + Default>(raw: &MemviewSlice, ndim: usize) -> T {
    let n = element_count(raw, ndim);
    if n == 0 {
        return T::default();
    }
    let item = size_of::<T>() as isize;
    if ndim == 1 && raw.suboffsets[0] < 0 && raw.strides[0] == item {
        // SAFETY: a direct 1-d view whose stride is the item size (a row of a C-contiguous
        // view) has its `n` elements consecutive from `data`, each readable as an
        // unaligned `T` by the view invariant.
        return unsafe { sum_run(raw.data, n) };
    }
    if ndim > 0 && is_direct(raw, ndim) {
        if contig::is_contig(raw, ndim, item, Order::C)
            || contig::is_contig(raw, ndim, item, Order::Fortran)
        {
            // SAFETY: a direct view contiguous in either order has its `n` elements in one
            // block of `n * item` bytes starting at `data` (the first element), each
            // readable as an unaligned `T` by the view invariant.
            return unsafe { sum_run(raw.data, n) };
        }
        return sum_direct(raw, 0, ndim, raw.data);
    }
    Iter::<T>::new(*raw, ndim).fold(T::default(), |a, x| a + x)
}

/// Sums `n` consecutive unaligned `T`s at `p` in 8 interleaved lanes (element `k` goes to
/// lane `k % 8`; lane `i` and lane `i + 4` are added, those four sums in order, then the
/// remainder in order): independent additions that the processor overlaps, in ndarray's
/// order (`unrolled_fold`).
///
/// # Safety
///
/// `p .. p + n * size_of::<T>()` must hold `n` initialised `T`s readable for the call.
unsafe fn sum_run<T: FromBytes + Add<Output = T> + Default>(p: *const u8, n: usize) -> T {
    let p = p.cast::<T>();
    let z = T::default();
    let (mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h) = (z, z, z, z, z, z, z, z);
    let chunks = n / 8;
    for k in 0..chunks {
        // One read of 8 elements, then 8 independent additions into named accumulators:
        // the shape the compiler turns into packed additions without shuffles (as for
        // ndarray's unrolled fold).
        // SAFETY: elements `k * 8 .. k * 8 + 8 <= chunks * 8 <= n` are inside the run (the
        // caller's contract), and `[T; 8]` has the layout of 8 consecutive `T`s.
        let [x0, x1, x2, x3, x4, x5, x6, x7] =
            unsafe { p.add(k * 8).cast::<[T; 8]>().read_unaligned() };
        (a, b, c, d) = (a + x0, b + x1, c + x2, d + x3);
        (e, f, g, h) = (e + x4, f + x5, g + x6, h + x7);
    }
    // Combined as ndarray combines its lanes.
    let mut acc = (((z + (a + e)) + (b + f)) + (c + g)) + (d + h);
    for k in chunks * 8..n {
        // SAFETY: `k < n`: inside the run.
        acc = acc + unsafe { p.add(k).read_unaligned() };
    }
    acc
}

/// [`sum`] over a direct view that is not one block: C order over the outer dimensions,
/// [`sum_run`] along the last one when its stride is the item size.
fn sum_direct<T: FromBytes + Add<Output = T> + Default>(
    raw: &MemviewSlice,
    dim: usize,
    ndim: usize,
    p: *mut u8,
) -> T {
    let (n, s) = (raw.shape[dim], raw.strides[dim]);
    let mut acc = T::default();
    let mut p = p;
    if dim + 1 == ndim {
        if s == size_of::<T>() as isize {
            // SAFETY: the last dimension's `n` elements from `p` are consecutive (stride =
            // item size) in-bounds elements of a direct view, readable by its invariant.
            return unsafe { sum_run(p, n as usize) };
        }
        for _ in 0..n {
            // SAFETY: `p` is an in-bounds element of a direct view (its invariant).
            acc = acc + unsafe { p.cast::<T>().read_unaligned() };
            p = p.wrapping_offset(s);
        }
    } else {
        for _ in 0..n {
            acc = acc + sum_direct::<T>(raw, dim + 1, ndim, p);
            p = p.wrapping_offset(s);
        }
    }
    acc
}

/// The sub-views `v[0], v[1], ..` along the first dimension ([`crate::View::rows`]).
pub struct Rows<'v, T> {
    raw: MemviewSlice,
    ndim: usize,
    next: usize,
    end: usize,
    /// The view has no element: its rows are empty and no pointer slot is read for them
    /// (a view's contract may not make the slots of an empty view readable).
    empty: bool,
    _marker: PhantomData<&'v T>,
}

impl<T> Rows<'_, T> {
    pub(crate) fn new(raw: MemviewSlice, ndim: usize) -> Self {
        let end = if ndim == 0 {
            0
        } else {
            raw.shape[0].max(0) as usize
        };
        Rows {
            raw,
            ndim,
            next: 0,
            end,
            empty: element_count(&raw, ndim) == 0,
            _marker: PhantomData,
        }
    }

    /// The raw slice of `v[i]` for `i < shape[0]`: the first dimension removed, its
    /// offset (and, when indirect, its pointer) applied. Its elements are elements of `v`.
    fn row(&self, i: usize) -> Option<MemviewSlice> {
        let mut row = MemviewSlice::EMPTY;
        let (s0, sub0) = (self.raw.strides[0], self.raw.suboffsets[0]);
        let mut data = self.raw.data.wrapping_offset((i as isize).wrapping_mul(s0));
        if sub0 >= 0 && !self.empty {
            // SAFETY: the view has elements, so `(i,)` is the prefix of an in-bounds index,
            // and the view invariant makes the pointer slot it reaches readable.
            let mem = unsafe { TrustedMemory::new() };
            // `TrustedMemory` never fails; `?` only ends the iteration if it ever did.
            data = mem.read_pointer(data).ok()?.wrapping_offset(sub0);
        }
        row.data = data;
        row.memview = self.raw.memview;
        let rest = 1..self.ndim;
        let k = self.ndim - 1;
        row.shape[..k].copy_from_slice(&self.raw.shape[rest.clone()]);
        row.strides[..k].copy_from_slice(&self.raw.strides[rest.clone()]);
        row.suboffsets[..k].copy_from_slice(&self.raw.suboffsets[rest]);
        Some(row)
    }
}

impl<'v, T: FromBytes> Iterator for Rows<'v, T> {
    type Item = crate::View<'v, T>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let row = self.row(self.next)?;
        self.next += 1;
        // `row` selects the elements of `v` whose first index is `next - 1 < shape[0]`:
        // every index of it is an in-bounds index of `v`, so the invariant carries over.
        Some(crate::View::new(row, self.ndim - 1))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end - self.next;
        (n, Some(n))
    }
}

impl<T: FromBytes> DoubleEndedIterator for Rows<'_, T> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let row = self.row(self.end - 1)?;
        self.end -= 1;
        Some(crate::View::new(row, self.ndim - 1))
    }
}

impl<T: FromBytes> ExactSizeIterator for Rows<'_, T> {}

/// One element of a mutable view, read and written by value ([`crate::ViewMut::iter_mut`]):
/// the element may be unaligned and may be the same memory as another element (a zero
/// stride), so no `&mut T` to it can exist. Like `Cell`, it is neither `Send` nor `Sync`.
pub struct ElementMut<'v, T> {
    ptr: *mut u8,
    _marker: PhantomData<(&'v T, *const ())>,
}

impl<T: FromBytes> ElementMut<'_, T> {
    /// The element's value.
    #[inline]
    pub fn get(&self) -> T {
        // SAFETY: `ptr` is an in-bounds element of the mutable view this proxy borrows (its
        // invariant: readable as an unaligned `T`); accesses to it are by value on this
        // thread only (the proxy is neither Send nor Sync).
        unsafe { self.ptr.cast::<T>().read_unaligned() }
    }

    /// Writes `value` to the element.
    #[inline]
    pub fn set(&self, value: T)
    where
        T: IntoBytes,
    {
        // SAFETY: as in `get`, and the view is mutable: its elements are writable, and
        // `T: IntoBytes` writes only initialised bytes.
        unsafe { self.ptr.cast::<T>().write_unaligned(value) }
    }

    /// Replaces the element's value `x` by `f(x)`.
    #[inline]
    pub fn update(&self, f: impl FnOnce(T) -> T)
    where
        T: IntoBytes,
    {
        self.set(f(self.get()))
    }
}

/// The elements of a mutable view in C order, as [`ElementMut`] proxies
/// ([`crate::ViewMut::iter_mut`]).
pub struct IterMut<'v, T> {
    inner: Iter<'v, T>,
    _not_send: PhantomData<*const ()>,
}

impl<T> IterMut<'_, T> {
    pub(crate) fn new(raw: MemviewSlice, ndim: usize) -> Self {
        IterMut {
            inner: Iter::new(raw, ndim),
            _not_send: PhantomData,
        }
    }
}

impl<'v, T: FromBytes> Iterator for IterMut<'v, T> {
    type Item = ElementMut<'v, T>;

    #[inline]
    fn next(&mut self) -> Option<ElementMut<'v, T>> {
        // The address of an in-bounds element of the mutable view `'v` borrows.
        let ptr = self.inner.next_ptr()?;
        Some(ElementMut {
            ptr,
            _marker: PhantomData,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<T: FromBytes> ExactSizeIterator for IterMut<'_, T> {}
