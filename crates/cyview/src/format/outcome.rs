//! What the check concludes ([`Outcome`]): accepted, raised, or one of the cases where Cython
//! has no defined behaviour ([`Undefined`]) or the dtype is one no Cython generates
//! ([`InvalidDtype`], refused by [`check_dtype`] before the walk); and the internal [`Stop`]
//! that ends a walk early.

use std::collections::HashMap;

use super::typeinfo::{TypeInfo, C_CHAR_IS_SIGNED};
#[cfg(doc)]
use super::{check_format, check_format_outcome, pep3118_format};
use crate::error::Error;

/// What Cython does with a format string and a dtype ([`check_format_outcome`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The format matches (the acquisition goes on to the item size check).
    Accepted,
    /// Cython raises this exception (or, not from Cython, the check could not allocate its
    /// bookkeeping: a `MemoryError`).
    Raised(Error),
    /// Cython means to raise a `ValueError` whose message prints a byte >= 0x80 with `%c`;
    /// with a signed C `char` that is a negative code point, and CPython raises
    /// `OverflowError: character argument not in range(0x110000)` ([`OVERFLOW_MESSAGE`])
    /// instead. (On a target whose `char` is unsigned the byte is printed as U+0080..U+00FF
    /// and this variant does not occur.)
    CharOutOfRange,
    /// Cython has no defined behaviour: it crashes or never returns.
    Undefined(Undefined),
    /// The dtype's [`TypeInfo`] is one no Cython generates and the check refuses, whatever the
    /// format string ([`InvalidDtype`]).
    InvalidDtype(InvalidDtype),
}

/// The message of CPython's `OverflowError` for [`Outcome::CharOutOfRange`].
pub const OVERFLOW_MESSAGE: &str = "character argument not in range(0x110000)";

/// Format strings on which `__Pyx_BufFmt_CheckString` has no defined behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Undefined {
    /// The format goes on describing elements after the dtype is complete, and a `}`, a `(`
    /// or the struct-repeat loop makes Cython dereference its struct stack's head, which is
    /// NULL by then (`"dT{d}"`, `"d(3)d"` for `double`): a segmentation fault. Also a struct
    /// [`TypeInfo`] without fields (Cython never generates one).
    NullDereference,
    /// A `:name:` whose closing `:` is missing: Cython scans on past the terminating NUL for
    /// a `':'` (`"d:abc"`).
    ReadPastEnd,
    /// Whitespace where an array dimension is expected (`"(2, 3)i"`, `"( 3)d"`):
    /// `__pyx_buffmt_parse_array` skips it with `continue` without advancing, forever.
    InfiniteLoop,
    /// A sub-struct repeat count that overflows C `int` to a negative value (`2147483648T{}`)
    /// becomes a `size_t` near 2**64, and the repeated sub-struct leaves the state unchanged
    /// (or periodic): Cython loops for more than 2**63 iterations.
    EndlessRepeat,
}

impl Undefined {
    /// The message [`check_format`] gives for the format string (Cython has none).
    pub fn message(self) -> &'static str {
        match self {
            Undefined::NullDereference => {
                "Unsupported buffer format string: Cython dereferences NULL on it \
                 (elements described after the dtype is complete)"
            }
            Undefined::ReadPastEnd => {
                "Unsupported buffer format string: a ':' name is not closed \
                 (Cython reads past its end)"
            }
            Undefined::InfiniteLoop => {
                "Unsupported buffer format string: whitespace in an array shape \
                 (Cython loops forever on it)"
            }
            Undefined::EndlessRepeat => {
                "Unsupported buffer format string: a sub-struct repeat count overflows C int \
                 (Cython repeats it 2**64 times)"
            }
        }
    }
}

/// The most structs a [`TypeInfo`] may nest, the dtype's struct itself included, for
/// [`check_format`] and [`pep3118_format`] (Cython's struct stack has one element per level).
pub const MAX_DTYPE_DEPTH: usize = 64;

/// A [`TypeInfo`] that [`check_format`] refuses: no Cython generates it (a Rust `static` can
/// refer to itself), and following its fields would not end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InvalidDtype {
    /// A field's type leads back to a struct that contains it (`static S: TypeInfo` with a
    /// field whose `ty` is `&S`).
    Cyclic,
    /// Structs nested more than [`MAX_DTYPE_DEPTH`] levels deep (also a cycle longer than
    /// that).
    TooDeep,
}

impl InvalidDtype {
    /// The message [`check_format`] gives (Cython has none).
    pub fn message(self) -> &'static str {
        match self {
            InvalidDtype::Cyclic => {
                "Unsupported buffer dtype: its TypeInfo is cyclic \
                 (a struct field's type leads back to the struct)"
            }
            InvalidDtype::TooDeep => {
                "Unsupported buffer dtype: its TypeInfo nests structs more than 64 levels deep"
            }
        }
    }
}

const _: () = assert!(MAX_DTYPE_DEPTH == 64, "InvalidDtype::TooDeep's message");

/// Follows the fields of `root` (of every type that has fields, as [`check_format`] and
/// [`pep3118_format`] may): `Err` if a field's type leads back to a struct being followed, or
/// if more than [`MAX_DTYPE_DEPTH`] structs nest. Each struct type is followed once (a struct
/// shared by many fields is not walked again), so this takes time linear in the number of
/// distinct struct types and their fields, and no allocation for a dtype without nested
/// structs.
pub(super) fn check_dtype(root: &TypeInfo) -> Result<(), Stop> {
    if root.fields.is_empty() {
        return Ok(());
    }
    // The structs being followed, each with its next field and the deepest nesting below it
    // so far; `len` of them are live.
    let mut path: [(&TypeInfo, usize, usize); MAX_DTYPE_DEPTH] = [(root, 0, 0); MAX_DTYPE_DEPTH];
    let mut len = 1usize;
    // Struct types followed to the end, by address, with the number of struct levels they
    // nest (themselves included).
    let mut heights: HashMap<usize, usize> = HashMap::new();
    while let Some(top) = len.checked_sub(1).and_then(|i| path.get_mut(i)) {
        let (t, next, below) = *top;
        let Some(field) = t.fields.get(next) else {
            // `t` is done: it nests `below + 1` levels.
            let height = below + 1;
            len -= 1;
            if len == 0 {
                break; // the root: nothing refers to it
            }
            try_insert(&mut heights, core::ptr::from_ref(t) as usize, height)?;
            if let Some(parent) = len.checked_sub(1).and_then(|i| path.get_mut(i)) {
                parent.2 = parent.2.max(height);
            }
            continue;
        };
        top.1 = next + 1;
        let child = field.ty;
        if child.fields.is_empty() {
            continue;
        }
        if let Some(&height) = heights.get(&(core::ptr::from_ref(child) as usize)) {
            if len + height > MAX_DTYPE_DEPTH {
                return Err(Stop::InvalidDtype(InvalidDtype::TooDeep));
            }
            top.2 = top.2.max(height);
            continue;
        }
        if path
            .get(..len)
            .unwrap_or(&[])
            .iter()
            .any(|&(p, _, _)| core::ptr::eq(p, child))
        {
            return Err(Stop::InvalidDtype(InvalidDtype::Cyclic));
        }
        match path.get_mut(len) {
            Some(slot) => *slot = (child, 0, 0),
            None => return Err(Stop::InvalidDtype(InvalidDtype::TooDeep)),
        }
        len += 1;
    }
    Ok(())
}

/// Why the check stopped without accepting.
pub(super) enum Stop {
    Raise(Error),
    CharOutOfRange,
    Undefined(Undefined),
    InvalidDtype(InvalidDtype),
    /// The plain walk ([`super::check_format_plain`]) used up its steps: no outcome.
    OutOfSteps,
}

impl Stop {
    /// The outcome; `None` for [`Stop::OutOfSteps`].
    pub(super) fn into_outcome(self) -> Option<Outcome> {
        Some(match self {
            Stop::Raise(e) => Outcome::Raised(e),
            Stop::CharOutOfRange => Outcome::CharOutOfRange,
            Stop::Undefined(u) => Outcome::Undefined(u),
            Stop::InvalidDtype(d) => Outcome::InvalidDtype(d),
            Stop::OutOfSteps => return None,
        })
    }
}

/// `PyErr_Format(PyExc_ValueError, ...)`.
pub(super) fn raise(message: String) -> Stop {
    Stop::Raise(Error::value(message))
}

/// `PyErr_Format("%c", ch)` with a C `char`: a byte >= 0x80 is a negative code point where
/// `char` is signed, which CPython rejects with `OverflowError`.
pub(super) fn percent_c(byte: u8) -> Result<char, Stop> {
    if C_CHAR_IS_SIGNED && byte >= 0x80 {
        Err(Stop::CharOutOfRange)
    } else {
        Ok(char::from(byte))
    }
}

/// The message of the `MemoryError` when the check cannot allocate its bookkeeping.
const OUT_OF_MEMORY: &str = "cannot allocate memory to check the buffer format string";

fn out_of_memory() -> Stop {
    Stop::Raise(Error::no_memory(OUT_OF_MEMORY))
}

/// `v.push(x)`, a `MemoryError` instead of an abort when the vector cannot grow.
pub(super) fn try_push<T>(v: &mut Vec<T>, x: T) -> Result<(), Stop> {
    v.try_reserve(1).map_err(|_| out_of_memory())?;
    v.push(x);
    Ok(())
}

/// `map.insert(k, v)`, a `MemoryError` instead of an abort when the map cannot grow.
pub(super) fn try_insert<K: Eq + core::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    k: K,
    v: V,
) -> Result<(), Stop> {
    map.try_reserve(1).map_err(|_| out_of_memory())?;
    map.insert(k, v);
    Ok(())
}
