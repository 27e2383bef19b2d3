//! The parsed description of Cython's C structs: size, alignment and every field's name,
//! C type, offset and size, as libclang laid them out for one generated `.c` file.
//!
//! Every number here comes from clang (see [`crate::extract_layouts`]); none is written by
//! hand. The description is serialized as JSON next to the bindgen output so that tests
//! can compare the Rust model against it.
//!
//! Tests read the JSON back with these same types (`cyview_build::layouts`, through a
//! dev-dependency on this crate).

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// The layouts of the structs extracted from one Cython-generated C file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layouts {
    /// The Cython release that generated the C file (`Cython.__version__`).
    pub cython_version: String,
    /// The Python whose headers the C file was parsed with (`x.y.z`).
    pub python_version: String,
    /// The file name of the generated C file the layouts were read from.
    pub source: String,
    /// The libclang that laid the structs out (`clang_getClangVersion`).
    pub clang_version: String,
    /// One entry per requested struct, sorted by name.
    pub structs: Vec<StructLayout>,
}

/// One C struct as clang lays it out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StructLayout {
    /// The name the struct is reached by in C: the typedef name for `typedef struct {..} T`
    /// (`__Pyx_memviewslice`, `__Pyx_TypeInfo`), the tag for `struct T {..}`
    /// (`__pyx_memoryview_obj`). bindgen gives the Rust type the same name.
    pub name: String,
    /// `sizeof`, in bytes.
    pub size: usize,
    /// `_Alignof`, in bytes.
    pub align: usize,
    /// The fields in declaration order (which is offset order: there are no bit-fields).
    pub fields: Vec<Field>,
}

/// One field of a [`StructLayout`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// The C field name (bindgen appends `_` to Rust keywords; this is the C name).
    pub name: String,
    /// The field's C type as clang spells it, e.g. `Py_ssize_t[8]`.
    pub c_type: String,
    /// `offsetof`, in bytes.
    pub offset: usize,
    /// `sizeof` of the field's type, in bytes.
    pub size: usize,
}

impl Layouts {
    /// The struct called `name`, if it was extracted.
    pub fn get(&self, name: &str) -> Option<&StructLayout> {
        self.structs.iter().find(|s| s.name == name)
    }

    /// Parses the JSON written by [`Layouts::to_json`].
    ///
    /// # Errors
    ///
    /// The JSON error when `json` is not a serialized [`Layouts`].
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// Pretty-printed JSON with a trailing newline.
    ///
    /// # Panics
    ///
    /// Never: the types hold only strings and integers, which always serialize.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("strings and integers serialize");
        s.push('\n');
        s
    }

    /// A deterministic text of every struct's layout (structs sorted by name, fields by
    /// offset, padding shown), for snapshots. Names no versions, so that two releases with
    /// the same layout render the same text.
    ///
    /// ```text
    /// __Pyx_memviewslice  size 208  align 8
    ///     0    8  memview     struct __pyx_memoryview_obj *
    /// ```
    pub fn render(&self) -> String {
        let mut structs: Vec<&StructLayout> = self.structs.iter().collect();
        structs.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out = String::new();
        for (i, s) in structs.into_iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&s.render());
        }
        out
    }
}

impl StructLayout {
    /// The field called `name`, if the struct has one.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// This struct's part of [`Layouts::render`]: a header line, then one line per field
    /// (`offset size name type`) and one per padding gap.
    pub fn render(&self) -> String {
        let mut fields: Vec<&Field> = self.fields.iter().collect();
        fields.sort_by(|a, b| (a.offset, &a.name).cmp(&(b.offset, &b.name)));
        let width = fields.iter().map(|f| f.name.len()).max().unwrap_or(0);
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "{}  size {}  align {}",
            self.name, self.size, self.align
        );
        let mut end = 0;
        for f in fields {
            if f.offset > end {
                let _ = writeln!(out, "{:>5} {:>4}  (padding)", end, f.offset - end);
            }
            let _ = writeln!(
                out,
                "{:>5} {:>4}  {:<width$}  {}",
                f.offset, f.size, f.name, f.c_type
            );
            end = end.max(f.offset + f.size);
        }
        if self.size > end {
            let _ = writeln!(out, "{:>5} {:>4}  (padding)", end, self.size - end);
        }
        out
    }
}
