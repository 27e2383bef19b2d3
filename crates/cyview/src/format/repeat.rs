//! The repeat accelerator: `NT{...}` in time linear in the format string's length, with the
//! outcome of Cython's pass-by-pass walk. Cython has no such thing; everything here is
//! bookkeeping around the mirror of `check.rs`, which calls it at four points (a loop's next
//! pass, a pass's return, and where parsing goes on inside a pass after a loop or a `0T{`).
//!
//! # The problem
//!
//! Cython's `'T'` case runs `ts_after_sub = __Pyx_BufFmt_CheckString(ctx, ts)` `struct_count`
//! times over the body after the `{`, and each invocation returns at its first `}` at its own
//! level (or at the string's end). So `NT{...}` takes N passes (2**64 when N is negative as a C
//! `int`, 9**40 for forty nested `9T{`), and since a `}` ends the pass of whatever loop is
//! innermost, the same bytes can be read again at every depth (after a `0T{`, or after a loop
//! whose last pass ended early).
//!
//! # What it does
//!
//! * A *segment* is the walk from a position inside a pass to that pass's return: from the
//!   pass's start, from where a nested loop ends inside it, or from a `0T{`. A segment that
//!   processes no type chunk is run once per position and starting [`Key`] and afterwards
//!   replayed in O(1) from its recorded [`Effect`]. Segments start after a `{` or a `}`, and a
//!   run of one reads on only to the next `T` or `}`, so each byte is read once per distinct
//!   state the checker reaches it in (a handful: the states differ in `new_count`, the packing
//!   modes and `is_valid_array`).
//! * A loop follows the [`Orbit`] of its body from its starting state, which gives the state
//!   after any number of passes in O(1) once the orbit is known up to its first repeated state
//!   (and tells an endless repeat); loops that start in the same state share the orbit.
//! * A key names the struct stack by the number of type chunks processed so far (the *epoch*,
//!   `Context::chunks`) instead of copying it: only a chunk changes the stack.
//!
//! # Why the outcome is Cython's
//!
//! 1. *A chunk-free segment is a function of its position and key.* A segment in which every
//!    `__Pyx_BufFmt_ProcessTypeChunk` call finds `enc_type == 0` (so `chunks` does not change)
//!    reads the format string from its position on and the context's scalars of [`Key`]; it
//!    reads the struct stack (`__pyx_buffmt_parse_array` reads the head's `ndim`) but does not
//!    change it, nor the head, nor `pending` (only a chunk does), and within one epoch the stack
//!    is the same, so the epoch stands for it. It reads `fmt_offset` only at a `}` with
//!    `struct_alignment != 0`, as `fmt_offset % struct_alignment`, and every alignment divides
//!    `ALIGN_MODULUS` (a compile-time check in `typechar.rs`), so `fmt_offset % ALIGN_MODULUS`
//!    is all it needs; and if `struct_alignment` is 0 at the segment's start it stays 0 (only a
//!    chunk sets it non-zero; a `T` saves and restores only a non-zero value), so the offset is
//!    not read at all. What the segment adds to `fmt_offset` (an `x` adds `new_count`, a `}`
//!    pads) therefore depends on the key alone. So the state after the segment, the change of
//!    `fmt_offset` (wrapping, as C's `size_t`) and the return position are a function of the
//!    position and the key, and replaying the recorded [`Effect`] leaves the context as
//!    walking the segment would. A segment that raises ends the check and is never recorded;
//!    one that processes a chunk is not recorded either, and the next pass starts a new orbit
//!    in the new epoch.
//! 2. *Passes of one loop are iterations of that function.* Pass `k + 1` of a loop starts in
//!    the state pass `k` ended in, so chunk-free passes give the sequence `s0, f(s0),
//!    f(f(s0)), ...`. Once a state comes back (`s[mu + lambda] == s[mu]`) the sequence is
//!    periodic, and since each pass's offset change is a function of its starting key, every
//!    cycle adds the same offset change. The state after pass `j` is thus
//!    `s[mu + (j - mu) % lambda]` with the offset of `(j - mu) / lambda` whole cycles added,
//!    and the loop's `ts_after_sub` is where the pass started in `s[j - 1]` returned: what
//!    Cython reaches after `j` passes ([`Orbit::at`]).
//! 3. *The one deliberate difference.* A count above `i32::MAX` comes only from a negative C
//!    `int` (`(size_t)number`, near 2**64). If the orbit's state repeats before such a count is
//!    reached, Cython would go on for more than 2**63 passes: the accelerator answers
//!    [`Undefined::EndlessRepeat`] where the plain walk never finishes.
//!
//! # Bounds
//!
//! Every segment run, replay, pass started and orbit state added counts a step
//! (`Context::steps`); the memory is one [`Effect`] per segment run and one [`OrbitState`] per
//! pass walked, so it is bounded by the steps, and a failed allocation is a `MemoryError`. Every
//! chunk starts a new epoch, but each chunk matches at least one field of the dtype (or pushes
//! a complex-like struct), so there are at most about twice as many chunks as the dtype's
//! fields, counted as often as they are nested. The work is thus linear in the length of the
//! format string for a given dtype: `tests/format_properties.rs` bounds it by 12 steps per byte
//! on pathological strings and on nests 25,600 levels deep.
//!
//! With [`Walk::Plain`] the accelerator stands aside and every pass is walked as Cython walks
//! it, for at most a given number of steps: `tests/format_repeat.rs` compares the two on
//! generated format strings.

use std::collections::HashMap;

use super::check::Frame;
use super::context::Context;
use super::outcome::{try_insert, try_push, Stop, Undefined};
use super::typechar::ALIGN_MODULUS;

/// How the passes of `NT{...}` are walked.
#[derive(Clone, Copy, Debug)]
pub(super) enum Walk {
    /// With the accelerator: time linear in the string's length.
    Accelerated,
    /// Every pass as Cython walks it, up to `max_steps` steps, then [`Stop::OutOfSteps`].
    Plain { max_steps: u64 },
}

/// The context at the start of a segment, as far as a segment that processes no type chunk
/// depends on it or changes it: a few scalars, never a copy of the struct stack.
///
/// Only a type chunk changes the struct stack, its head and `pending`, so the number of chunks
/// processed so far (`epoch`) stands for them: two states with the same epoch have the same
/// stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    /// Type chunks processed so far (`Context::chunks`).
    epoch: u64,
    new_count: usize,
    enc_count: usize,
    struct_alignment: usize,
    /// `fmt_offset % ALIGN_MODULUS` when `struct_alignment != 0`, else 0: a pass without type
    /// chunks that starts with `struct_alignment == 0` never reads `fmt_offset` (every `}` in
    /// it finds `struct_alignment == 0`, for a `T` zeroes it and restores only a non-zero
    /// value), so its effect holds at any offset.
    offset_mod: u8,
    enc_type: u8,
    new_packmode: u8,
    enc_packmode: u8,
    is_complex: bool,
    is_valid_array: bool,
}

impl core::hash::Hash for Key {
    /// Five words (hashing is most of the time the check takes on deep nests).
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.epoch);
        state.write_usize(self.new_count);
        state.write_usize(self.enc_count);
        state.write_usize(self.struct_alignment);
        state.write_u64(u64::from_le_bytes([
            self.offset_mod,
            self.enc_type,
            self.new_packmode,
            self.enc_packmode,
            u8::from(self.is_complex),
            u8::from(self.is_valid_array),
            0,
            0,
        ]));
    }
}

impl Key {
    /// The key of the context's current state.
    fn of(ctx: &Context<'_>) -> Key {
        Key {
            epoch: ctx.chunks,
            new_count: ctx.new_count,
            enc_count: ctx.enc_count,
            struct_alignment: ctx.struct_alignment,
            offset_mod: if ctx.struct_alignment == 0 {
                0
            } else {
                // `< ALIGN_MODULUS`, so it fits.
                (ctx.fmt_offset % ALIGN_MODULUS) as u8
            },
            enc_type: ctx.enc_type,
            new_packmode: ctx.new_packmode,
            enc_packmode: ctx.enc_packmode,
            is_complex: ctx.is_complex,
            is_valid_array: ctx.is_valid_array,
        }
    }

    /// Puts this state, saved in the same epoch, back into `ctx`: all but `fmt_offset`.
    fn restore(&self, ctx: &mut Context<'_>) {
        ctx.new_count = self.new_count;
        ctx.enc_count = self.enc_count;
        ctx.struct_alignment = self.struct_alignment;
        ctx.is_complex = self.is_complex;
        ctx.enc_type = self.enc_type;
        ctx.new_packmode = self.new_packmode;
        ctx.enc_packmode = self.enc_packmode;
        ctx.is_valid_array = self.is_valid_array;
    }
}

/// What a segment did, when it processed no type chunk: the state after it, the change of
/// `fmt_offset` (wrapping) and where its pass returned.
#[derive(Clone, Copy, Debug)]
struct Effect {
    after: Key,
    offset_delta: usize,
    ret: usize,
}

impl Effect {
    /// Leaves `ctx` as walking the segment would; returns where its pass returned.
    fn replay(&self, ctx: &mut Context<'_>) -> usize {
        self.after.restore(ctx);
        ctx.fmt_offset = ctx.fmt_offset.wrapping_add(self.offset_delta);
        self.ret
    }
}

/// A state in an [`Orbit`]: the key, the change of `fmt_offset` from the orbit's start
/// (wrapping), and where the pass that led to it returned.
#[derive(Clone, Copy, Debug)]
struct OrbitState {
    key: Key,
    offset: usize,
    ret: usize,
}

/// The passes of one sub-struct body repeated from one starting state, as far as they have been
/// followed: the states form the sequence `start, f(start), f(f(start)), ...` of the
/// deterministic pass function `f`, which repeats once a state comes back. Any number of passes
/// then takes O(1) to answer, and every loop that starts in the same state shares the orbit.
#[derive(Debug)]
struct Orbit {
    /// The state at the start of pass 0.
    start: Key,
    /// `after[p]`: the state at the start of pass `p + 1`.
    after: Vec<OrbitState>,
    /// `Some((mu, lambda))` once the state at the start of pass `mu + lambda` (the last one of
    /// `after`) is the state at the start of pass `mu`; `after` grows no more.
    cycle: Option<(usize, usize)>,
}

impl Orbit {
    /// The key and offset change of state `i` (`i <= after.len()`).
    fn state(&self, i: usize) -> (Key, usize) {
        match i.checked_sub(1).and_then(|p| self.after.get(p)) {
            Some(s) => (s.key, s.offset),
            None => (self.start, 0),
        }
    }

    /// The state at the start of pass `j` (`j >= 1`, and `j <= after.len()` unless the cycle is
    /// known): its key, its offset change, and where pass `j - 1` returned.
    fn at(&self, j: usize) -> (Key, usize, usize) {
        let reduce = |i: usize| match self.cycle {
            Some((mu, lambda)) if i >= mu + lambda => (mu + (i - mu) % lambda, (i - mu) / lambda),
            _ => (i, 0),
        };
        let (i, cycles) = reduce(j);
        let (key, mut offset) = self.state(i);
        if let (Some((mu, lambda)), true) = (self.cycle, cycles > 0) {
            // `i` is `mu + r`; each whole cycle adds the cycle's offset change.
            let per_cycle = self.state(mu + lambda).1.wrapping_sub(self.state(mu).1);
            offset = offset.wrapping_add(per_cycle.wrapping_mul(cycles));
        }
        // Pass `j - 1` started in the state of pass `p`, so it returned where pass `p` did.
        let (p, _) = reduce(j.saturating_sub(1));
        let ret = self.after.get(p).map_or(0, |s| s.ret);
        (key, offset, ret)
    }
}

/// Which orbit a loop follows: the orbit's pass 0 is the loop's pass `base`, which started at
/// `fmt_offset == base_offset`.
#[derive(Clone, Copy, Debug)]
struct Follow {
    id: usize,
    base: usize,
    base_offset: usize,
}

/// A segment being run: where it started, its starting state, offset and chunk count, and the
/// depth of the loop whose pass it ends with (`frames.len()` when it started).
#[derive(Clone, Copy, Debug)]
struct OpenSegment {
    pos: usize,
    key: Key,
    offset: usize,
    chunks: u64,
    depth: usize,
}

/// The pass being run: its starting state, offset and chunk count.
#[derive(Clone, Copy, Debug)]
struct Running {
    key: Key,
    offset: usize,
    chunks: u64,
}

impl Running {
    fn of(ctx: &Context<'_>, key: Key) -> Running {
        Running {
            key,
            offset: ctx.fmt_offset,
            chunks: ctx.chunks,
        }
    }
}

/// The accelerator's part of a loop ([`Frame`]).
#[derive(Debug, Default)]
pub(super) struct PassMemo {
    /// The orbit the passes follow (for `count > 1`); `None` after a pass that processed a type
    /// chunk, until the next pass starts a new one.
    orbit: Option<Follow>,
    /// The pass being run, if one is.
    running: Option<Running>,
}

/// Passes above this come from a negative C `int` (`(size_t)number`): Cython would loop for
/// more than 2**63 iterations.
const ENDLESS_REPEAT: usize = i32::MAX as usize;

/// The accelerator's memory for one check.
pub(super) struct Repeat {
    walk: Walk,
    /// Effects of segments that processed no type chunk, by starting position and state.
    segments: HashMap<(usize, Key), Effect>,
    /// The segments being run, innermost last.
    open: Vec<OpenSegment>,
    /// Index into `orbits` by body position and starting state.
    orbit_ids: HashMap<(usize, Key), usize>,
    /// The orbits followed so far (only ever appended to: an index stays valid).
    orbits: Vec<Orbit>,
    /// The index of each state in its orbit, by orbit and state (to find the cycle).
    orbit_seen: HashMap<(usize, Key), usize>,
}

impl Repeat {
    pub(super) fn new(walk: Walk) -> Repeat {
        Repeat {
            walk,
            segments: HashMap::new(),
            open: Vec::new(),
            orbit_ids: HashMap::new(),
            orbits: Vec::new(),
            orbit_seen: HashMap::new(),
        }
    }

    /// Starts the next pass of `frame`'s loop, or ends the loop: follows the orbit of the body
    /// as far as it is known (a whole cycle of passes at a time once it repeats), replays a pass
    /// run before from the same state, and otherwise returns the body's position to run the
    /// pass from. `None` when all `count` passes are done.
    pub(super) fn next_pass(
        &mut self,
        ctx: &mut Context<'_>,
        frame: &mut Frame,
    ) -> Result<Option<usize>, Stop> {
        if let Walk::Plain { max_steps } = self.walk {
            ctx.step();
            if frame.done >= frame.count {
                return Ok(None);
            }
            if ctx.steps.get() > max_steps {
                return Err(Stop::OutOfSteps);
            }
            return Ok(Some(frame.body));
        }
        loop {
            ctx.step();
            if frame.done >= frame.count {
                return Ok(None);
            }
            let key = Key::of(ctx);
            if frame.count == 1 {
                // A single pass: nothing to skip.
                if let Some(effect) = self.segments.get(&(frame.body, key)) {
                    frame.last_ret = effect.replay(ctx);
                    frame.done += 1;
                    continue;
                }
                frame.memo.running = Some(Running::of(ctx, key));
                return Ok(Some(frame.body));
            }
            let follow = match frame.memo.orbit {
                Some(follow) => follow,
                None => {
                    let follow = Follow {
                        id: self.orbit_for(frame.body, key)?,
                        base: frame.done,
                        base_offset: ctx.fmt_offset,
                    };
                    frame.memo.orbit = Some(follow);
                    follow
                }
            };
            let Some(orbit) = self.orbits.get(follow.id) else {
                // Unreachable: orbit ids index `orbits`, which only grows.
                frame.memo.orbit = None;
                frame.memo.running = Some(Running::of(ctx, key));
                return Ok(Some(frame.body));
            };
            // The loop is at state `at` of the orbit and stops at state `target`.
            let at = frame.done - follow.base;
            let target = frame.count - follow.base;
            let known = match orbit.cycle {
                Some((mu, lambda)) => {
                    if frame.count > ENDLESS_REPEAT
                        && follow.base.saturating_add(mu + lambda) < frame.count
                    {
                        // The state repeats before the loop ends: Cython loops ~2**64 times.
                        return Err(Stop::Undefined(Undefined::EndlessRepeat));
                    }
                    target
                }
                None => orbit.after.len(),
            };
            if known > at {
                let j = known.min(target);
                let (after, offset, ret) = orbit.at(j);
                after.restore(ctx);
                ctx.fmt_offset = follow.base_offset.wrapping_add(offset);
                frame.done = follow.base + j;
                frame.last_ret = ret;
                continue;
            }
            // The state after this pass is not known yet.
            if let Some(&effect) = self.segments.get(&(frame.body, key)) {
                self.extend_orbit(ctx, follow.id, effect)?;
                continue;
            }
            frame.memo.running = Some(Running::of(ctx, key));
            return Ok(Some(frame.body));
        }
    }

    /// The orbit of `body` from state `key`, a new one if it has not been followed before.
    fn orbit_for(&mut self, body: usize, key: Key) -> Result<usize, Stop> {
        if let Some(&id) = self.orbit_ids.get(&(body, key)) {
            return Ok(id);
        }
        let id = self.orbits.len();
        try_push(
            &mut self.orbits,
            Orbit {
                start: key,
                after: Vec::new(),
                cycle: None,
            },
        )?;
        try_insert(&mut self.orbit_ids, (body, key), id)?;
        try_insert(&mut self.orbit_seen, (id, key), 0)?;
        Ok(id)
    }

    /// Appends the state after the orbit's last known pass, and notes the cycle when the
    /// state has been seen in the orbit before.
    fn extend_orbit(&mut self, ctx: &Context<'_>, id: usize, effect: Effect) -> Result<(), Stop> {
        ctx.step();
        let Some(orbit) = self.orbits.get_mut(id) else {
            return Ok(()); // unreachable: see `next_pass`
        };
        if orbit.cycle.is_some() {
            return Ok(());
        }
        let last = orbit.after.last().map_or(0, |s| s.offset);
        let index = orbit.after.len() + 1;
        try_push(
            &mut orbit.after,
            OrbitState {
                key: effect.after,
                offset: last.wrapping_add(effect.offset_delta),
                ret: effect.ret,
            },
        )?;
        match self.orbit_seen.get(&(id, effect.after)) {
            Some(&mu) => orbit.cycle = Some((mu, index - mu)),
            None => try_insert(&mut self.orbit_seen, (id, effect.after), index)?,
        }
        Ok(())
    }

    /// A pass run over `frame`'s body returned at `ret`: remembers its effect, and extends the
    /// loop's orbit with it, if it processed no type chunk.
    pub(super) fn pass_returned(
        &mut self,
        ctx: &Context<'_>,
        frame: &mut Frame,
        ret: usize,
    ) -> Result<(), Stop> {
        let Some(run) = frame.memo.running.take() else {
            return Ok(());
        };
        if run.chunks != ctx.chunks {
            // The stack has changed: the next pass starts a new orbit.
            frame.memo.orbit = None;
            return Ok(());
        }
        let effect = Effect {
            after: Key::of(ctx),
            offset_delta: ctx.fmt_offset.wrapping_sub(run.offset),
            ret,
        };
        try_insert(&mut self.segments, (frame.body, run.key), effect)?;
        if let Some(follow) = frame.memo.orbit {
            self.extend_orbit(ctx, follow.id, effect)?;
        }
        Ok(())
    }

    /// Parsing goes on at `ts` inside the pass of the loop at `depth` (after a loop or a `0T{`):
    /// if the rest of the pass was run from this position and state before, replays it and
    /// returns where the pass returns; else starts remembering it.
    pub(super) fn segment_point(
        &mut self,
        ctx: &mut Context<'_>,
        ts: usize,
        depth: usize,
    ) -> Result<Option<usize>, Stop> {
        if depth == 0 || matches!(self.walk, Walk::Plain { .. }) {
            // The outermost invocation returns only at the end; the plain walk walks on.
            return Ok(None);
        }
        ctx.step();
        let key = Key::of(ctx);
        if let Some(effect) = self.segments.get(&(ts, key)) {
            return Ok(Some(effect.replay(ctx)));
        }
        try_push(
            &mut self.open,
            OpenSegment {
                pos: ts,
                key,
                offset: ctx.fmt_offset,
                chunks: ctx.chunks,
                depth,
            },
        )
        .map(|()| None)
    }

    /// The pass of the loop at `depth` returned at `ret`: remembers the effect of each segment
    /// that ends with it, if it processed no type chunk.
    pub(super) fn close_segments(
        &mut self,
        ctx: &Context<'_>,
        depth: usize,
        ret: usize,
    ) -> Result<(), Stop> {
        while let Some(&seg) = self.open.last() {
            if seg.depth != depth {
                break;
            }
            self.open.pop();
            if seg.chunks == ctx.chunks {
                let effect = Effect {
                    after: Key::of(ctx),
                    offset_delta: ctx.fmt_offset.wrapping_sub(seg.offset),
                    ret,
                };
                try_insert(&mut self.segments, (seg.pos, seg.key), effect)?;
            }
        }
        Ok(())
    }
}
