//! `__Pyx_BufFmt_CheckString`, the main loop of the format check, and the entry points
//! [`check_format`] and [`check_format_outcome`].
//!
//! Cython's recursion for `T{...}` (one invocation of `__Pyx_BufFmt_CheckString` per pass) is
//! kept on a stack of [`Frame`]s; the repeat accelerator (`repeat.rs`) is called where a loop
//! starts its next pass, where a pass returns, and where parsing goes on inside a pass.

use super::context::Context;
use super::outcome::{check_dtype, raise, try_push, Outcome, Stop, Undefined, OVERFLOW_MESSAGE};
use super::pep3118::scalar_code;
use super::repeat::{PassMemo, Repeat, Walk};
use super::typechar::is_type_char;
use super::typeinfo::TypeInfo;
#[cfg(doc)]
use super::{pep3118_format, InvalidDtype, MAX_DTYPE_DEPTH};
use crate::error::Error;

/// Checks a buffer's format string against a declared element type, as Cython does when it
/// acquires the buffer into a memoryview of that dtype.
///
/// Mirrors `__Pyx_BufFmt_Init` + `__Pyx_BufFmt_CheckString` (`Buffer.c`), which
/// `__Pyx_ValidateAndInit_memviewslice` runs before the item size check; Python: the format
/// part of `cdef double[:] v = obj`. `format` is the string without its terminating NUL (an
/// embedded NUL ends it, as in C; only an unclosed `:name:` reads on, as Cython does). Same
/// in every release (see the [module documentation](super)).
///
/// # Errors
///
/// The `ValueError` Cython raises, with its exact message, for example `Buffer dtype mismatch,
/// expected 'double' but got 'float'`, `Buffer dtype mismatch, expected 'int' but got end in
/// 'Point.y'`, `Does not understand character buffer dtype format string ('w')`. Where Cython
/// raises `OverflowError` ([`Outcome::CharOutOfRange`]) this returns that kind with
/// CPython's message [`OVERFLOW_MESSAGE`]; where Cython crashes or hangs ([`Undefined`]) a
/// `ValueError` with [`Undefined::message`]; for a `TypeInfo` no Cython generates (cyclic, or
/// nested deeper than [`MAX_DTYPE_DEPTH`]:
/// [`InvalidDtype`]) a `ValueError` with
/// [`InvalidDtype::message`]. Use [`check_format_outcome`] to
/// tell these apart. `MemoryError` when the bookkeeping for a huge format string cannot be
/// allocated.
///
/// The work is linear in the length of `format` (see the repeat accelerator, `repeat.rs` in the
/// source), including on strings Cython itself would loop on for ages.
///
/// ```
/// use cyview::format::{check_format, DOUBLE, FLOAT};
/// assert!(check_format(b"d", &DOUBLE).is_ok());
/// assert!(check_format(b"=d", &DOUBLE).is_ok());
/// let err = check_format(b"f", &DOUBLE).unwrap_err();
/// assert_eq!(err.to_string(), "Buffer dtype mismatch, expected 'double' but got 'float'");
/// let err = check_format(b">f", &FLOAT).unwrap_err();
/// assert_eq!(err.to_string(), "Big-endian buffer not supported on little-endian compiler");
/// ```
pub fn check_format(format: &[u8], dtype: &TypeInfo) -> Result<(), Error> {
    match check_format_outcome(format, dtype) {
        Outcome::Accepted => Ok(()),
        Outcome::Raised(e) => Err(e),
        Outcome::CharOutOfRange => Err(Error::new(
            crate::ErrorKind::OverflowError,
            OVERFLOW_MESSAGE,
        )),
        Outcome::Undefined(u) => Err(Error::value(u.message())),
        Outcome::InvalidDtype(d) => Err(Error::value(d.message())),
    }
}

/// What Cython does with `format` for `dtype`: accept, raise (which exception), or crash or
/// hang ([`Undefined`]). See [`check_format`].
///
/// ```
/// use cyview::format::{check_format_outcome, Outcome, Undefined, DOUBLE};
/// assert_eq!(check_format_outcome(b"}", &DOUBLE), Outcome::Accepted);
/// assert_eq!(check_format_outcome(b"dT{d}", &DOUBLE), Outcome::Undefined(Undefined::NullDereference));
/// assert_eq!(check_format_outcome(b"(2, 3)d", &DOUBLE), Outcome::Undefined(Undefined::InfiniteLoop));
/// if core::ffi::c_char::MIN != 0 {
///     // A signed C char: Cython's `%c` of byte 0xff makes CPython raise OverflowError.
///     assert_eq!(check_format_outcome(b"\xff", &DOUBLE), Outcome::CharOutOfRange);
/// }
/// ```
pub fn check_format_outcome(format: &[u8], dtype: &TypeInfo) -> Outcome {
    if is_native_scalar_code(format, dtype) {
        return Outcome::Accepted;
    }
    check_format_outcome_full(format, dtype)
}

/// The common case, decided without the state machine: a one-character format that is the
/// native code [`pep3118_format`] writes for a scalar dtype (`"d"` for
/// `double`).
/// `tests/format_strings.rs` checks that this accepts exactly where the full check does.
fn is_native_scalar_code(format: &[u8], dtype: &TypeInfo) -> bool {
    match (format, scalar_code(dtype)) {
        ([c], Some(code)) => {
            dtype.fields.is_empty() && dtype.arraysize.is_empty() && code.as_bytes() == [*c]
        }
        _ => false,
    }
}

#[doc(hidden)]
/// [`check_format_outcome`] without its fast path (for the equivalence test).
pub fn check_format_outcome_full(format: &[u8], dtype: &TypeInfo) -> Outcome {
    check_format_steps(format, dtype).0
}

#[doc(hidden)]
/// [`check_format_outcome_full`] and the work it took, in steps: bytes of `format` read (again
/// when a stretch is read again, at another depth or in another state), iterations of the
/// type-chunk loop, and passes or rests of passes over a sub-struct started, replayed or
/// skipped in bulk. For the tests that bound the work by the length of the format string
/// (`tests/format_properties.rs`).
pub fn check_format_steps(format: &[u8], dtype: &TypeInfo) -> (Outcome, u64) {
    let (outcome, steps) = run(format, dtype, Walk::Accelerated);
    // Unreachable fallback: only the plain walk runs out of steps.
    (
        outcome.unwrap_or(Outcome::Undefined(Undefined::EndlessRepeat)),
        steps,
    )
}

#[doc(hidden)]
/// [`check_format_outcome_full`] without the repeat accelerator (`repeat.rs`): every pass of
/// `NT{...}` walked as Cython walks it, with the work it took; `None` once the work exceeds
/// `max_steps` (Cython's own walk takes 9**40 passes on some strings). For the tests that
/// compare the accelerator with the plain walk (`tests/format_repeat.rs`).
pub fn check_format_plain(
    format: &[u8],
    dtype: &TypeInfo,
    max_steps: u64,
) -> Option<(Outcome, u64)> {
    let (outcome, steps) = run(format, dtype, Walk::Plain { max_steps });
    Some((outcome?, steps))
}

/// Checks `format` against `dtype`, walking repeats as `walk` says: the outcome (`None` when
/// the plain walk ran out of steps) and the steps taken.
fn run(format: &[u8], dtype: &TypeInfo, walk: Walk) -> (Option<Outcome>, u64) {
    if let Err(stop) = check_dtype(dtype) {
        return (stop.into_outcome(), 0);
    }
    let mut ctx = match Context::init(format, dtype) {
        Ok(ctx) => ctx,
        Err(stop) => return (stop.into_outcome(), 0),
    };
    let outcome = match ctx.check_string(&mut Repeat::new(walk)) {
        Ok(()) => Some(match ctx.pending.take() {
            None => Outcome::Accepted,
            Some(e) => Outcome::Raised(e),
        }),
        Err(stop) => stop.into_outcome(),
    };
    (outcome, ctx.steps.get())
}

/// A `T{` being repeated: the `for (i = 0; i != struct_count; ++i)` loop of the `'T'` case.
#[derive(Debug)]
pub(super) struct Frame {
    /// Where each pass starts (after the `{`).
    pub(super) body: usize,
    /// `struct_count`.
    pub(super) count: usize,
    /// Passes completed (`i`).
    pub(super) done: usize,
    /// `struct_alignment` saved before the loop, restored after it when non-zero.
    saved_alignment: usize,
    /// `ts_after_sub` of the last pass.
    pub(super) last_ret: usize,
    /// The repeat accelerator's bookkeeping for the loop.
    pub(super) memo: PassMemo,
}

impl Context<'_> {
    /// The `for` loop of the `'T'` case goes on: starts the next pass of `frame` (pushed on
    /// `frames`, parsing resumes at its body) or, when the loop is done, ends it; returns where
    /// parsing resumes and the return of a segment the accelerator replays at once, if any.
    fn enter_pass(
        &mut self,
        repeat: &mut Repeat,
        mut frame: Frame,
        frames: &mut Vec<Frame>,
    ) -> Result<(usize, Option<usize>), Stop> {
        match repeat.next_pass(self, &mut frame)? {
            Some(body) => {
                try_push(frames, frame)?;
                Ok((body, None))
            }
            None => {
                let ts = self.end_loop(&frame);
                Ok((ts, repeat.segment_point(self, ts, frames.len())?))
            }
        }
    }

    /// The loop of `frame` is over: `ts = ts_after_sub; if (struct_alignment)
    /// ctx->struct_alignment = struct_alignment;`.
    fn end_loop(&mut self, frame: &Frame) -> usize {
        if frame.saved_alignment != 0 {
            self.struct_alignment = frame.saved_alignment;
        }
        frame.last_ret
    }

    /// Mirrors `__Pyx_BufFmt_CheckString`, its recursion for `T{...}` kept on `frames`.
    pub(super) fn check_string(&mut self, repeat: &mut Repeat) -> Result<(), Stop> {
        let little_endian = cfg!(target_endian = "little");
        let mut frames: Vec<Frame> = Vec::new();
        let mut ts = 0usize;
        loop {
            let c = self.byte(ts)?;
            // `Some(ts)` where the current invocation of CheckString returns.
            let mut returned: Option<usize> = None;
            match c {
                0 => {
                    if self.enc_type != 0 && self.head.is_none() {
                        return Err(self.raise_expected());
                    }
                    self.process_type_chunk()?;
                    if self.head.is_some() {
                        return Err(self.raise_expected());
                    }
                    returned = Some(ts);
                }
                b' ' | b'\r' | b'\n' => ts += 1,
                b'<' => {
                    if !little_endian {
                        return Err(raise(
                            "Little-endian buffer not supported on big-endian compiler".to_string(),
                        ));
                    }
                    self.new_packmode = b'=';
                    ts += 1;
                }
                b'>' | b'!' => {
                    if little_endian {
                        return Err(raise(
                            "Big-endian buffer not supported on little-endian compiler".to_string(),
                        ));
                    }
                    self.new_packmode = b'=';
                    ts += 1;
                }
                b'=' | b'@' | b'^' => {
                    self.new_packmode = c;
                    ts += 1;
                }
                b'T' => {
                    let struct_count = self.new_count;
                    let saved_alignment = self.struct_alignment;
                    self.new_count = 1;
                    ts += 1;
                    if self.byte(ts)? != b'{' {
                        return Err(raise(
                            "Buffer acquisition: Expected '{' after 'T'".to_string(),
                        ));
                    }
                    self.process_type_chunk()?;
                    self.enc_type = 0;
                    self.enc_count = 0;
                    self.struct_alignment = 0;
                    ts += 1;
                    if struct_count == 0 {
                        // No pass: parsing goes on inside the braces.
                        if saved_alignment != 0 {
                            self.struct_alignment = saved_alignment;
                        }
                        returned = repeat.segment_point(self, ts, frames.len())?;
                    } else {
                        let frame = Frame {
                            body: ts,
                            count: struct_count,
                            done: 0,
                            saved_alignment,
                            last_ret: ts,
                            memo: PassMemo::default(),
                        };
                        (ts, returned) = self.enter_pass(repeat, frame, &mut frames)?;
                    }
                }
                b'}' => {
                    let alignment = self.struct_alignment;
                    ts += 1;
                    self.process_type_chunk()?;
                    self.enc_type = 0;
                    if alignment != 0 && !self.fmt_offset.is_multiple_of(alignment) {
                        // Pad the struct to the alignment of its first member.
                        self.fmt_offset = self
                            .fmt_offset
                            .wrapping_add(alignment - self.fmt_offset % alignment);
                    }
                    returned = Some(ts);
                }
                b'x' => {
                    self.process_type_chunk()?;
                    self.fmt_offset = self.fmt_offset.wrapping_add(self.new_count);
                    self.new_count = 1;
                    self.enc_count = 0;
                    self.enc_type = 0;
                    self.enc_packmode = self.new_packmode;
                    ts += 1;
                }
                b'Z' | b's' => self.type_char(&mut ts, c)?,
                c if is_type_char(c) => self.type_char(&mut ts, c)?,
                b':' => {
                    ts += 1;
                    while self.byte(ts)? != b':' {
                        ts += 1;
                    }
                    ts += 1;
                }
                b'(' => self.parse_array(&mut ts)?,
                _ => {
                    let number = self.expect_number(&mut ts)?;
                    self.new_count = number as usize;
                }
            }
            // Returns from invocations of CheckString, and the segments that replay at once.
            while let Some(ret) = returned.take() {
                repeat.close_segments(self, frames.len(), ret)?;
                let Some(mut frame) = frames.pop() else {
                    // The outermost invocation returned a non-NULL pointer: accepted.
                    return Ok(());
                };
                // `ts_after_sub = __Pyx_BufFmt_CheckString(ctx, ts)`, then `++i`.
                frame.last_ret = ret;
                frame.done = frame.done.saturating_add(1);
                repeat.pass_returned(self, &mut frame, ret)?;
                // The vector had room for the frame a moment ago: this does not allocate.
                (ts, returned) = self.enter_pass(repeat, frame, &mut frames)?;
            }
        }
    }

    /// The type-character cases of `__Pyx_BufFmt_CheckString` (`'Z'`, the pooling types and
    /// `'s'`), `ts` at the character.
    fn type_char(&mut self, ts: &mut usize, c: u8) -> Result<(), Stop> {
        let mut got_z = false;
        let mut ch = c;
        if c == b'Z' {
            got_z = true;
            *ts += 1;
            ch = self.byte(*ts)?;
            if !matches!(ch, b'f' | b'd' | b'g') {
                return Err(raise("Unexpected format string character: 'Z'".to_string()));
            }
        }
        if ch != b's'
            && self.enc_type == ch
            && got_z == self.is_complex
            && self.enc_packmode == self.new_packmode
            && !self.is_valid_array
        {
            // Continue pooling the same type.
            self.enc_count = self.enc_count.wrapping_add(self.new_count);
            self.new_count = 1;
            *ts += 1;
            return Ok(());
        }
        // 's', or a new type that cannot be added to the current pool.
        self.process_type_chunk()?;
        self.enc_count = self.new_count;
        self.enc_packmode = self.new_packmode;
        self.enc_type = ch;
        self.is_complex = got_z;
        *ts += 1;
        self.new_count = 1;
        Ok(())
    }
}
