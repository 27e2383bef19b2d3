//! The checker's state, `__Pyx_BufFmt_Context` with its stack of `__Pyx_BufFmt_StackElem`,
//! set up as `__Pyx_BufFmt_Init` does, and the number parsing of `__Pyx_BufFmt_ParseNumber` and
//! `__Pyx_BufFmt_ExpectNumber` (the first functions of `Buffer.c`'s `BufferFormatCheck`).

use core::cell::Cell;

use super::outcome::{percent_c, raise, try_push, Stop, Undefined};
use super::typeinfo::{StructField, TypeGroup, TypeInfo};
use crate::error::Error;

/// A `__Pyx_StructField` pointer: the context's root field, or `fields[index]` of a struct
/// (`index == fields.len()` is the `{NULL, NULL, 0}` terminator).
#[derive(Clone, Copy, Debug)]
pub(super) enum FieldRef {
    Root,
    At(&'static [StructField], usize),
}

impl PartialEq for FieldRef {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (FieldRef::Root, FieldRef::Root) => true,
            (FieldRef::At(a, i), FieldRef::At(b, j)) => {
                core::ptr::eq(a.as_ptr(), b.as_ptr()) && a.len() == b.len() && i == j
            }
            _ => false,
        }
    }
}

impl Eq for FieldRef {}

impl FieldRef {
    pub(super) fn offset(self) -> usize {
        match self {
            FieldRef::Root => 0,
            FieldRef::At(f, i) => f.get(i).map_or(0, |f| f.offset),
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            FieldRef::Root => "buffer dtype",
            FieldRef::At(f, i) => f.get(i).map_or("", |f| f.name),
        }
    }

    /// `++field`.
    pub(super) fn next(self) -> FieldRef {
        match self {
            FieldRef::Root => FieldRef::Root,
            FieldRef::At(f, i) => FieldRef::At(f, i.saturating_add(1)),
        }
    }
}

/// `__Pyx_BufFmt_StackElem`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Elem {
    pub(super) field: FieldRef,
    pub(super) parent_offset: usize,
}

/// `__Pyx_BufFmt_Context` and its stack, with the format string and the work counter.
///
/// The fields are Cython's, in its order, except for the Rust-side ones at the end
/// (`pending`, `chunks`, `steps`). `root` stands for `ctx->root` (`{type, "buffer dtype", 0}`);
/// `stack` holds the `__Pyx_BufFmt_StackElem`s up to the head.
pub(super) struct Context<'a> {
    pub(super) fmt: &'a [u8],
    pub(super) root: &'a TypeInfo,
    pub(super) stack: Vec<Elem>,
    /// `ctx->head` as an index into `stack` (`None` is NULL); `stack.len() == head + 1`.
    pub(super) head: Option<usize>,
    pub(super) fmt_offset: usize,
    pub(super) new_count: usize,
    pub(super) enc_count: usize,
    pub(super) struct_alignment: usize,
    pub(super) is_complex: bool,
    pub(super) enc_type: u8,
    pub(super) new_packmode: u8,
    pub(super) enc_packmode: u8,
    pub(super) is_valid_array: bool,
    /// An exception set without failing (the standard size of `'g'`), reported if nothing
    /// replaces it.
    pub(super) pending: Option<Error>,
    /// Type chunks processed so far: the epoch of the repeat accelerator's keys
    /// (`super::repeat::Key`), which stands for the struct stack (only a chunk changes it).
    pub(super) chunks: u64,
    /// Work done so far (saturating): bytes read, iterations of the chunk loops, and the
    /// repeat accelerator's steps. `tests/format_properties.rs` bounds it.
    pub(super) steps: Cell<u64>,
}

impl<'a> Context<'a> {
    /// Mirrors `__Pyx_BufFmt_Init`. `root` has passed [`super::outcome::check_dtype`], so its
    /// first-field chain is finite.
    pub(super) fn init(fmt: &'a [u8], root: &'a TypeInfo) -> Result<Self, Stop> {
        let mut ctx = Context {
            fmt,
            root,
            stack: Vec::new(),
            head: None,
            fmt_offset: 0,
            new_count: 1,
            enc_count: 0,
            struct_alignment: 0,
            is_complex: false,
            enc_type: 0,
            new_packmode: b'@',
            enc_packmode: b'@',
            is_valid_array: false,
            pending: None,
            chunks: 0,
            steps: Cell::new(0),
        };
        ctx.push(Elem {
            field: FieldRef::Root,
            parent_offset: 0,
        })?;
        let mut ty = root;
        while ty.group == TypeGroup::Struct {
            ctx.push(Elem {
                field: FieldRef::At(ty.fields, 0),
                parent_offset: 0,
            })?;
            // An empty struct: Cython reads the terminator's NULL type.
            ty = ty
                .fields
                .first()
                .ok_or(Stop::Undefined(Undefined::NullDereference))?
                .ty;
        }
        Ok(ctx)
    }

    /// Counts one unit of work.
    pub(super) fn step(&self) {
        self.steps.set(self.steps.get().saturating_add(1));
    }

    /// The byte at `i`: the string, then its terminating NUL; reading further is undefined.
    pub(super) fn byte(&self, i: usize) -> Result<u8, Stop> {
        self.step();
        match self.fmt.get(i) {
            Some(&b) => Ok(b),
            None if i == self.fmt.len() => Ok(0),
            None => Err(Stop::Undefined(Undefined::ReadPastEnd)),
        }
    }

    pub(super) fn ty(&self, field: FieldRef) -> Option<&'a TypeInfo> {
        match field {
            FieldRef::Root => Some(self.root),
            FieldRef::At(f, i) => f.get(i).map(|f| f.ty),
        }
    }

    /// `ctx->head`, or the crash of dereferencing it when NULL.
    pub(super) fn head(&self) -> Result<(usize, Elem), Stop> {
        self.head
            .and_then(|h| self.stack.get(h).map(|e| (h, *e)))
            .ok_or(Stop::Undefined(Undefined::NullDereference))
    }

    /// `ctx->head->field->type`, crashing on a NULL head (or the terminator's NULL type).
    pub(super) fn head_type(&self) -> Result<&'a TypeInfo, Stop> {
        let (_, e) = self.head()?;
        self.ty(e.field)
            .ok_or(Stop::Undefined(Undefined::NullDereference))
    }

    /// `++ctx->head; *ctx->head = e`.
    pub(super) fn push(&mut self, e: Elem) -> Result<(), Stop> {
        let h = self.head.map_or(0, |h| h + 1);
        self.stack.truncate(h);
        try_push(&mut self.stack, e)?;
        self.head = Some(h);
        Ok(())
    }

    pub(super) fn set_head_field(&mut self, field: FieldRef) {
        if let Some(e) = self.head.and_then(|h| self.stack.get_mut(h)) {
            e.field = field;
        }
    }

    /// Mirrors `__Pyx_BufFmt_ParseNumber`: `-1` when the first byte is no digit (`ts`
    /// unchanged); digits accumulate in a C `int`, wrapping.
    pub(super) fn parse_number(&self, ts: &mut usize) -> Result<i32, Stop> {
        let first = self.byte(*ts)?;
        if !first.is_ascii_digit() {
            return Ok(-1);
        }
        let mut t = *ts + 1;
        let mut count = i32::from(first - b'0');
        loop {
            let c = self.byte(t)?;
            if !c.is_ascii_digit() {
                break;
            }
            count = count.wrapping_mul(10).wrapping_add(i32::from(c - b'0'));
            t += 1;
        }
        *ts = t;
        Ok(count)
    }

    /// Mirrors `__Pyx_BufFmt_ExpectNumber`.
    pub(super) fn expect_number(&self, ts: &mut usize) -> Result<i32, Stop> {
        let number = self.parse_number(ts)?;
        if number == -1 {
            let c = percent_c(self.byte(*ts)?)?;
            return Err(raise(format!(
                "Does not understand character buffer dtype format string ('{c}')"
            )));
        }
        Ok(number)
    }
}
