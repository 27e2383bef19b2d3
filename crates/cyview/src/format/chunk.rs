//! Matching a run of equal type characters (a *type chunk*) against the dtype's next fields:
//! `__Pyx_BufFmt_RaiseExpected`, `__Pyx_BufFmt_ProcessTypeChunk` and
//! `__pyx_buffmt_parse_array`, in `Buffer.c`'s order.

use super::context::{Context, Elem, FieldRef};
use super::outcome::{percent_c, raise, Stop, Undefined};
use super::typechar::{alignment, describe, group_of, native_size, padding, standard_size};
use super::typeinfo::TypeGroup;
use crate::error::Error;

impl Context<'_> {
    /// Mirrors `__Pyx_BufFmt_RaiseExpected`.
    pub(super) fn raise_expected(&self) -> Stop {
        let got = describe(self.enc_type, self.is_complex);
        let head = self.head.and_then(|h| self.stack.get(h).map(|e| (h, *e)));
        let message = match head {
            None => format!("Buffer dtype mismatch, expected end but got {got}"),
            Some((_, e)) if e.field == FieldRef::Root => format!(
                "Buffer dtype mismatch, expected '{}' but got {got}",
                self.root.name
            ),
            Some((h, e)) => {
                let expected = self.ty(e.field).map_or("", |t| t.name);
                let parent = h
                    .checked_sub(1)
                    .and_then(|p| self.stack.get(p))
                    .and_then(|p| self.ty(p.field))
                    .map_or("", |t| t.name);
                format!(
                    "Buffer dtype mismatch, expected '{expected}' but got {got} in '{parent}.{}'",
                    e.field.name()
                )
            }
        };
        raise(message)
    }

    /// Mirrors `__Pyx_BufFmt_ProcessTypeChunk`: matches the pending run of `enc_count`
    /// elements of type `enc_type` against the next fields.
    pub(super) fn process_type_chunk(&mut self) -> Result<(), Stop> {
        if self.enc_type == 0 {
            return Ok(());
        }
        // Not Cython: the epoch of the repeat accelerator (`repeat.rs`).
        self.chunks = self.chunks.saturating_add(1);
        let mut arraysize: usize = 1;

        // Validate the array size.
        let ty = self.head_type()?;
        let first_dim = ty.arraysize.first().copied().unwrap_or(0);
        if first_dim != 0 {
            let mut ndim: i32 = 0;
            let type_ndim = i32::try_from(ty.arraysize.len()).unwrap_or(i32::MAX);
            if self.enc_type == b's' || self.enc_type == b'p' {
                self.is_valid_array = ty.arraysize.len() == 1;
                ndim = 1;
                if self.enc_count != first_dim {
                    return Err(raise(format!(
                        "Expected a dimension of size {first_dim}, got {}",
                        self.enc_count
                    )));
                }
            }
            if !self.is_valid_array {
                return Err(raise(format!(
                    "Expected {type_ndim} dimensions, got {ndim}"
                )));
            }
            for &d in ty.arraysize {
                arraysize = arraysize.wrapping_mul(d);
            }
            self.is_valid_array = false;
            self.enc_count = 1;
        }

        let group = group_of(self.enc_type, self.is_complex);
        loop {
            self.step();
            let (h, elem) = self.head()?;
            let field = elem.field;
            let ty = self
                .ty(field)
                .ok_or(Stop::Undefined(Undefined::NullDereference))?;

            let size = if self.enc_packmode == b'@' || self.enc_packmode == b'^' {
                native_size(self.enc_type, self.is_complex)
            } else {
                match standard_size(self.enc_type, self.is_complex) {
                    Some(size) => size,
                    None => {
                        self.pending = Some(Error::value(
                            "Python does not define a standard format string size for long \
                             double ('g')..",
                        ));
                        0
                    }
                }
            };

            if self.enc_packmode == b'@' {
                let align_at = alignment(self.enc_type);
                let misalign = self.fmt_offset % align_at;
                if misalign > 0 {
                    self.fmt_offset = self.fmt_offset.wrapping_add(align_at - misalign);
                }
                if self.struct_alignment == 0 {
                    self.struct_alignment = padding(self.enc_type);
                }
            }

            if ty.size != size || ty.group != group {
                if ty.group == TypeGroup::Complex && !ty.fields.is_empty() {
                    // Special case: treat as a struct rather than a complex number.
                    let parent_offset = elem.parent_offset.wrapping_add(field.offset());
                    self.push(Elem {
                        field: FieldRef::At(ty.fields, 0),
                        parent_offset,
                    })?;
                    // `continue` in a do-while: the condition is evaluated.
                    if self.enc_count == 0 {
                        break;
                    }
                    continue;
                }
                let char_match =
                    (ty.group == TypeGroup::Char || group == TypeGroup::Char) && ty.size == size;
                if !char_match {
                    return Err(self.raise_expected());
                }
            }

            let offset = elem.parent_offset.wrapping_add(field.offset());
            if self.fmt_offset != offset {
                return Err(raise(format!(
                    "Buffer dtype mismatch; next field is at offset {} but {} expected",
                    self.fmt_offset as isize, offset as isize
                )));
            }
            self.fmt_offset = self.fmt_offset.wrapping_add(size);
            if arraysize != 0 {
                self.fmt_offset = self
                    .fmt_offset
                    .wrapping_add((arraysize.wrapping_sub(1)).wrapping_mul(size));
            }
            self.enc_count = self.enc_count.wrapping_sub(1);

            // Move to the next field, pushing or popping the struct stack.
            let mut field = field;
            let mut h = h;
            loop {
                self.step();
                if field == FieldRef::Root {
                    self.head = None;
                    if self.enc_count != 0 {
                        return Err(self.raise_expected());
                    }
                    break;
                }
                field = field.next();
                self.set_head_field(field);
                match self.ty(field) {
                    None => {
                        h = h
                            .checked_sub(1)
                            .ok_or(Stop::Undefined(Undefined::NullDereference))?;
                        self.stack.truncate(h + 1);
                        self.head = Some(h);
                        field = self.stack.get(h).map_or(FieldRef::Root, |e| e.field);
                        continue;
                    }
                    Some(t) if t.group == TypeGroup::Struct => {
                        let parent_offset = self
                            .stack
                            .get(h)
                            .map_or(0, |e| e.parent_offset)
                            .wrapping_add(field.offset());
                        if t.fields.is_empty() {
                            continue; // an empty struct
                        }
                        self.push(Elem {
                            field: FieldRef::At(t.fields, 0),
                            parent_offset,
                        })?;
                        break;
                    }
                    Some(_) => break,
                }
            }
            if self.enc_count == 0 {
                break;
            }
        }
        self.enc_type = 0;
        self.is_complex = false;
        Ok(())
    }

    /// Mirrors `__pyx_buffmt_parse_array`: `(2,3)` before a type; `ts` is at the `(`.
    pub(super) fn parse_array(&mut self, ts: &mut usize) -> Result<(), Stop> {
        let mut t = *ts + 1;
        if self.new_count != 1 {
            return Err(raise(
                "Cannot handle repeated arrays in format string".to_string(),
            ));
        }
        // Process the previous element.
        self.process_type_chunk()?;
        // ndim of the field after it (the head has moved on).
        let ty = self.head_type()?;
        let ndim = i32::try_from(ty.arraysize.len()).unwrap_or(i32::MAX);
        let mut i: i32 = 0;
        loop {
            let c = self.byte(t)?;
            if c == 0 || c == b')' {
                break;
            }
            if matches!(c, b' ' | b'\x0c' | b'\r' | b'\n' | b'\t' | b'\x0b') {
                // `continue` without advancing.
                return Err(Stop::Undefined(Undefined::InfiniteLoop));
            }
            let number = self.expect_number(&mut t)?;
            if i < ndim {
                let expected = usize::try_from(i)
                    .ok()
                    .and_then(|i| ty.arraysize.get(i))
                    .copied()
                    .unwrap_or(0);
                if number as usize != expected {
                    return Err(raise(format!(
                        "Expected a dimension of size {expected}, got {number}"
                    )));
                }
            }
            let c = self.byte(t)?;
            if c != b',' && c != b')' {
                let c = percent_c(c)?;
                return Err(raise(format!(
                    "Expected a comma in format string, got '{c}'"
                )));
            }
            if c == b',' {
                t += 1;
            }
            i = i.wrapping_add(1);
        }
        if i != ndim {
            return Err(raise(format!("Expected {ndim} dimension(s), got {i}")));
        }
        if self.byte(t)? == 0 {
            return Err(raise(
                "Unexpected end of format string, expected ')'".to_string(),
            ));
        }
        self.is_valid_array = true;
        self.new_count = 1;
        *ts = t + 1;
        Ok(())
    }
}
