//! Geometry helpers: the element addresses a slice selects (following recorded pointer
//! slots) and the indices of a shape in C order.

use std::collections::HashMap;

use cyview::MemviewSlice;

use super::buffers::Slots;

/// Element addresses of `raw` in C order, following pointers through `slots` (None where a
/// step goes through something that is not a recorded pointer slot).
pub fn element_addresses(
    raw: &MemviewSlice,
    ndim: usize,
    slots: &HashMap<usize, usize>,
) -> Vec<Option<usize>> {
    let mut out = Vec::new();
    let shape = &raw.shape[..ndim];
    if shape.iter().any(|&n| n <= 0) {
        return out;
    }
    let mut idx = vec![0isize; ndim];
    loop {
        out.push(
            cyview::raw::slicing::element_ptr_unchecked(raw, &idx, Slots(slots))
                .ok()
                .map(|p| p as usize),
        );
        let mut d = ndim;
        loop {
            if d == 0 {
                return out;
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// Every index of `shape`, in C order (last index fastest).
pub fn c_order(shape: &[usize]) -> Vec<Vec<usize>> {
    let mut out = vec![vec![]];
    for &n in shape {
        out = out
            .into_iter()
            .flat_map(|p| {
                (0..n).map(move |i| {
                    let mut q = p.clone();
                    q.push(i);
                    q
                })
            })
            .collect();
    }
    out
}
