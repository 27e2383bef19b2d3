//! PEP 3118 format strings matched against a declared element type, as Cython does.
//!
//! When Cython acquires a buffer into a typed memoryview (`cdef double[:] v = obj`) it checks
//! the exporter's `Py_buffer.format` against the declared dtype's run-time description,
//! `__Pyx_TypeInfo`, with the state machine `__Pyx_BufFmt_CheckString` of `Buffer.c`. This
//! module is that description ([`TypeInfo`], [`StructField`], [`TypeGroup`]; predefined
//! constants for the C types, [`struct_type_info!`](crate::struct_type_info) for a
//! `#[repr(C)]` struct) and that state machine ([`check_format`], [`check_format_outcome`]).
//!
//! # What Cython accepts
//!
//! Cython does not parse the format string as a grammar; it walks the dtype's fields and
//! compares each run of equal type characters with the next field, by size and type group
//! only. Consequences, all observed on compiled Cython (the golden vectors of
//! `tests/format_golden.rs`):
//!
//! * names (`:x:`) are skipped without comparison and `T{...}` braces are not matched with the
//!   dtype's structs: `"ii"`, `"T{ii}"` and `"T{i:a:}T{i:b:}"` all match `struct {int x, y;}`;
//! * the type group (signed, unsigned, real, complex, ...) and the size must agree, except
//!   that a C `char` matches any one-byte character (`b`, `B`, `c`, `?`, `s`, `p`) and a
//!   `char` format matches `signed char` and `unsigned char`; so `long[:]` accepts `q` and
//!   `long long[:]` accepts `l` (both 8 bytes), and `int[:]` accepts `=l` (a standard-size
//!   `long` has 4 bytes) while `long[:]` rejects it with `Buffer dtype mismatch, expected
//!   'long' but got 'long'`;
//! * a struct of two equal floating-point fields (`cdef struct Pair: double re, im`) matches
//!   both `dd` and `Zd`; the native `double complex` matches `Zd` only;
//! * with `@` (the default) sizes are native and fields are aligned as the C compiler aligns
//!   them; `^` has native sizes without alignment; `=` and `<` have the `struct` module's
//!   standard sizes (`l` is 4 bytes) without alignment; `>` and `!` raise `Big-endian buffer
//!   not supported on little-endian compiler` on a little-endian machine;
//! * `x` pads, and the offset of every field is checked: `Buffer dtype mismatch; next field
//!   is at offset 1 but 8 expected`;
//! * a `}` at the top level ends the check with success: `"}"` and `"d}junk"` are accepted for
//!   `double`;
//! * a struct whose first field is itself a struct can only be matched at the start of the
//!   dtype: at any other position Cython descends one level only and compares the inner
//!   struct as a whole (`Buffer dtype mismatch, expected 'Point' but got 'int' in
//!   'FirstNested.p'`), so no format string matches such a dtype.
//!
//! # Where Cython has no defined behaviour
//!
//! Some format strings make `__Pyx_BufFmt_CheckString` dereference NULL, read past the
//! string's terminator or loop forever ([`Undefined`]). [`check_format_outcome`] says which;
//! [`check_format`] rejects them with a `ValueError` whose message names the problem.
//! Repeat counts are parsed into a C `int` with wrapping arithmetic (signed overflow, which
//! gcc compiles as wrapping), so `4294967296d` means `0d` and `4294967295d` is rejected as
//! `-1`, the parser's "no number" value; this module wraps the same way.
//! A byte >= 0x80 printed with `%c` from a signed `char` makes CPython raise `OverflowError:
//! character argument not in range(0x110000)` instead of the intended `ValueError`
//! ([`Outcome::CharOutOfRange`]).
//!
//! Where Cython loops for ages (`9T{` nested forty times: 9**40 passes) this answers in time
//! linear in the string's length. A [`TypeInfo`] no Cython generates, cyclic (a Rust `static`
//! can refer to itself) or nested deeper than [`MAX_DTYPE_DEPTH`], is refused
//! ([`InvalidDtype`]) instead of followed without end.
//!
//! # Releases
//!
//! `__Pyx_BufFmt_CheckString` and its helpers are the same in Cython 0.29.37, 3.0.12, 3.1.8,
//! 3.2.9 and 3.3.1 except for text that cannot be reached: `__Pyx_BufFmt_DescribeTypeChar`
//! answers "unparseable format string" (0.29) or "unparsable format string" (3.x) for a type
//! character it does not know, but it is only ever called with characters it knows.
//! `__pyx_buffmt_parse_array` returns `PyObject*` in 0.29 and `int` in 3.x with the same
//! meaning. The functions here therefore take no release; the golden vectors of all five
//! releases are checked against them.
//!
//! Sizes and alignments are the target's C ones (`core::ffi`); `long double` is 16 bytes
//! aligned to 16 on x86-64 Linux, the only platform the golden vectors were made on.
//!
//! # Where each part lives
//!
//! One concept per file. Reading `context.rs`, `typechar.rs`, `chunk.rs` and `check.rs` in
//! that order follows the `BufferFormatCheck` section of Cython's `Utility/Buffer.c` from top
//! to bottom; each function names the Cython function it mirrors.
//!
//! * `typeinfo.rs`: the dtype description (`__Pyx_TypeInfo`, `__Pyx_StructField`), the
//!   constants for the C types, [`struct_type_info!`](crate::struct_type_info).
//! * `pep3118.rs`: [`pep3118_format`], the format an exporter of Rust memory gives.
//! * `outcome.rs`: [`Outcome`], [`Undefined`], [`InvalidDtype`], and the refusal of a cyclic
//!   or too deep dtype before the walk.
//! * `context.rs`: the checker's state (`__Pyx_BufFmt_Context`, `__Pyx_BufFmt_StackElem`),
//!   `__Pyx_BufFmt_Init`, `__Pyx_BufFmt_ParseNumber`, `__Pyx_BufFmt_ExpectNumber`.
//! * `typechar.rs`: `__Pyx_BufFmt_DescribeTypeChar` and the `__Pyx_BufFmt_TypeCharTo*`
//!   functions (sizes, alignments, groups of the type characters).
//! * `chunk.rs`: `__Pyx_BufFmt_RaiseExpected`, `__Pyx_BufFmt_ProcessTypeChunk` (a run of equal
//!   type characters against the next fields), `__pyx_buffmt_parse_array`.
//! * `check.rs`: `__Pyx_BufFmt_CheckString`, and the entry points [`check_format`] and
//!   [`check_format_outcome`].
//! * `repeat.rs`: not in Cython: the accelerator that gives `NT{...}` the outcome of Cython's
//!   N passes in time linear in the string's length, with its equivalence argument.

mod check;
mod chunk;
mod context;
mod outcome;
mod pep3118;
mod repeat;
mod typechar;
pub(crate) mod typeinfo;

pub use check::{check_format, check_format_outcome};
#[doc(hidden)]
pub use check::{check_format_outcome_full, check_format_plain, check_format_steps};
pub use outcome::{InvalidDtype, Outcome, Undefined, MAX_DTYPE_DEPTH, OVERFLOW_MESSAGE};
pub use pep3118::pep3118_format;
#[doc(hidden)]
pub use typeinfo::__field_size;
pub use typeinfo::{
    struct_group, StructField, TypeGroup, TypeInfo, CHAR, DOUBLE, DOUBLE_COMPLEX, FLOAT,
    FLOAT_COMPLEX, INT, LONG, LONG_DOUBLE, LONG_LONG, PYTHON_OBJECT, PY_SSIZE_T, SHORT,
    SIGNED_CHAR, SIZE_T, UNSIGNED_CHAR, UNSIGNED_INT, UNSIGNED_LONG, UNSIGNED_LONG_LONG,
    UNSIGNED_SHORT,
};
