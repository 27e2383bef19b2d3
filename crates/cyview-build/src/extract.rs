//! Extracting Cython's memoryview structs from a generated C file: Rust types with bindgen,
//! and a [`Layouts`] description (sizes, alignments, offsets) read from libclang.

use std::ffi::{c_char, c_int, c_uint, CStr, CString};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use clang_sys::*;

use crate::cache::{commit_entry, read, write_if_changed, Fnv, STAMP};
use crate::layouts::{Field, Layouts, StructLayout};
use crate::{io_err, BuiltModule, Error, Python};

/// The four structs of Cython's memoryview ABI, by the name C code reaches them:
/// the slice passed by value, the memoryview object it points at, the `_memoryviewslice`
/// subclass Cython hands to Python, and the dtype description the object points at.
/// The names are the same in every pinned release (0.29.37 to 3.3.1).
pub const MEMORYVIEW_STRUCTS: [&str; 4] = [
    "__Pyx_memviewslice",
    "__pyx_memoryview_obj",
    "__pyx_memoryviewslice_obj",
    "__Pyx_TypeInfo",
];

/// Bumped whenever the extraction's output changes shape, so that cached results are not
/// reused.
const EXTRACT_SCHEMA: &str = "cyview-build layouts v1";

/// The result of [`extract_layouts`]: bindgen's Rust types and clang's numbers for the same
/// structs of the same file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extracted {
    /// bindgen's output for the structs (and the types they reference), with its
    /// compile-time layout assertions, followed by `cyview_rust_layouts()`: rustc's view of
    /// the same structs (size, alignment, each field's offset and size) for every field in
    /// [`Extracted::layouts`], to compare against clang's. Includable with `include!` inside
    /// a module that allows bindgen's naming (`non_camel_case_types`, ...).
    pub bindings: String,
    /// clang's layout of each struct.
    pub layouts: Layouts,
}

impl Extracted {
    /// Writes the bindings and the JSON description.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when a file cannot be written.
    pub fn write(&self, bindings: impl AsRef<Path>, json: impl AsRef<Path>) -> Result<(), Error> {
        let (bindings, json) = (bindings.as_ref(), json.as_ref());
        write_if_changed(bindings, self.bindings.as_bytes())?;
        write_if_changed(json, self.layouts.to_json().as_bytes())
    }
}

impl BuiltModule {
    /// [`extract_layouts`] of [`MEMORYVIEW_STRUCTS`] on this module's generated C file,
    /// cached with the module (bindgen and clang run once per module build).
    ///
    /// # Errors
    ///
    /// As [`extract_layouts`].
    pub fn extract_layouts(&self, python: &Python) -> Result<Extracted, Error> {
        let c_file = self.c_file();
        let clang_version = clang_version()?;
        let mut key = Fnv::new();
        key.part("schema", EXTRACT_SCHEMA.as_bytes());
        key.part("cyview-build", env!("CARGO_PKG_VERSION").as_bytes());
        key.part("clang", clang_version.as_bytes());
        for name in MEMORYVIEW_STRUCTS {
            key.part("struct", name.as_bytes());
        }
        key.part("c", &read(&c_file)?);
        let entry = self
            .cache_entry()
            .join(format!("layouts-{:016x}", key.finish()));
        let (rs, json) = (entry.join("bindings.rs"), entry.join("layouts.json"));
        if entry.join(STAMP).is_file() {
            let bindings = String::from_utf8_lossy(&read(&rs)?).into_owned();
            let text = String::from_utf8_lossy(&read(&json)?).into_owned();
            if let Ok(layouts) = Layouts::from_json(&text) {
                return Ok(Extracted { bindings, layouts });
            }
        }
        let start = std::time::Instant::now();
        let extracted = extract_layouts(python, &c_file, &MEMORYVIEW_STRUCTS)?;
        println!(
            "cyview-build: {}: layouts (libclang + bindgen) {:.1}s",
            self.name(),
            start.elapsed().as_secs_f64()
        );
        let tmp = entry.with_extension(format!("tmp-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).map_err(io_err("create", &tmp))?;
        extracted.write(tmp.join("bindings.rs"), tmp.join("layouts.json"))?;
        fs::write(tmp.join(STAMP), b"").map_err(io_err("write", &tmp))?;
        commit_entry(&tmp, &entry)?;
        Ok(extracted)
    }
}

/// Runs bindgen and libclang on a Cython-generated C file (with `python`'s headers) for the
/// structs named in `structs` (typedef names or struct tags).
///
/// The headers the `.c` file is parsed with are the Python's `INCLUDEPY` and NumPy's.
/// Every number in [`Extracted::layouts`] comes from clang (`clang_Type_getSizeOf`,
/// `clang_Type_getAlignOf`, `clang_Cursor_getOffsetOfField`), never from this crate.
///
/// # Errors
///
/// [`Error::Clang`] when libclang cannot be loaded or the file has errors,
/// [`Error::MissingStruct`] when a struct is not defined in the file, [`Error::Bindgen`]
/// when bindgen fails.
pub fn extract_layouts(
    python: &Python,
    c_file: &Path,
    structs: &[&str],
) -> Result<Extracted, Error> {
    let layouts = clang_layouts(python, c_file, structs)?;
    let args = clang_args(python);
    let mut builder = bindgen::Builder::default()
        .header(c_file.to_string_lossy())
        .clang_args(&args)
        .generate_comments(false)
        .layout_tests(true)
        .derive_default(false)
        .rust_target(
            bindgen::RustTarget::stable(85, 0).map_err(|e| Error::Bindgen {
                c_file: c_file.to_path_buf(),
                message: e.to_string(),
            })?,
        );
    for name in structs {
        builder = builder.allowlist_type(format!("^{name}$"));
    }
    let bindings = builder
        .generate()
        .map_err(|e| Error::Bindgen {
            c_file: c_file.to_path_buf(),
            message: e.to_string(),
        })?
        .to_string();
    let mut bindings = bindings;
    bindings.push_str(&rust_layouts_fn(&layouts));
    Ok(Extracted { bindings, layouts })
}

/// The `-I` arguments a Cython-generated C file of `python` is parsed with.
fn clang_args(python: &Python) -> Vec<String> {
    python
        .include_dirs()
        .iter()
        .map(|d| format!("-I{}", d.display()))
        .collect()
}

/// clang's layout of `structs` in `c_file` (parsed with `python`'s headers): the numbers
/// of [`extract_layouts`] without bindgen.
pub(crate) fn clang_layouts(
    python: &Python,
    c_file: &Path,
    structs: &[&str],
) -> Result<Layouts, Error> {
    let (mut clang_layouts, _) = clang_struct_layouts(c_file, &clang_args(python), structs, false)?;
    clang_layouts.sort_by(|a, b| a.name.cmp(&b.name));
    layouts_of(python, c_file, clang_layouts)
}

/// The [`Layouts`] document of `structs` (clang's numbers) read from `c_file`.
fn layouts_of(
    python: &Python,
    c_file: &Path,
    structs: Vec<StructLayout>,
) -> Result<Layouts, Error> {
    Ok(Layouts {
        cython_version: python.cython_version().unwrap_or("").to_string(),
        python_version: python.version().to_string(),
        source: c_file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        clang_version: clang_version()?,
        structs,
    })
}

/// The result of [`extract_layouts_tolerant`]: clang's layouts and the errors of the file
/// that were tolerated because none lies within the structs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TolerantLayouts {
    /// clang's layout of each struct, as [`Extracted::layouts`].
    pub layouts: Layouts,
    /// clang's error diagnostics outside the structs, one per entry (empty when the file
    /// has none).
    pub tolerated_errors: Vec<String>,
}

/// The header that old Cython releases include and Python 3.11 moved: `longintrepr.h`
/// became `cpython/longintrepr.h` (which `Python.h` includes already).
const LONGINTREPR_SHIM: &str =
    "/* cyview-build: longintrepr.h moved to cpython/ in Python 3.11 */\n\
#include \"cpython/longintrepr.h\"\n";

/// clang's layout of `structs` in a Cython-generated C file that may not compile on this
/// Python: like the numbers of [`extract_layouts`] (no bindgen), but clang errors are
/// accepted when none of them lies within the definition of a requested struct or of a type
/// it uses (followed through fields, typedefs, arrays and pointers).
///
/// For the C of old Cython releases read with newer Python headers, whose function bodies
/// use removed CPython internals. A header folder providing `longintrepr.h` (moved to
/// `cpython/longintrepr.h` in Python 3.11) is added after the Python's own, so that the
/// file's `#include "longintrepr.h"` does not stop the parse. Fatal errors are never
/// tolerated: clang reports nothing after one, so an error inside a struct could go unseen.
///
/// # Errors
///
/// As [`extract_layouts`], and [`Error::Clang`] when an error lies within a struct (or a
/// type it uses), cannot be placed in a file, or is fatal.
pub fn extract_layouts_tolerant(
    python: &Python,
    c_file: &Path,
    structs: &[&str],
) -> Result<TolerantLayouts, Error> {
    let shim = std::env::temp_dir().join(format!(
        "cyview-build-shim-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    fs::create_dir_all(&shim).map_err(io_err("create", &shim))?;
    let header = shim.join("longintrepr.h");
    fs::write(&header, LONGINTREPR_SHIM).map_err(io_err("write", &header))?;
    let mut args = clang_args(python);
    args.push(format!("-I{}", shim.display()));
    args.push("-ferror-limit=0".to_string());
    let result = clang_struct_layouts(c_file, &args, structs, true);
    let _ = fs::remove_dir_all(&shim);
    let (mut found, tolerated_errors) = result?;
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(TolerantLayouts {
        layouts: layouts_of(python, c_file, found)?,
        tolerated_errors,
    })
}

/// `cyview_rust_layouts()`: for every struct and field of `layouts`, what rustc makes of
/// the bindgen type (`size_of`, `align_of`, `offset_of!`, the field type's `size_of`).
fn rust_layouts_fn(layouts: &Layouts) -> String {
    let mut s = String::from(
        r#"
/// One struct as rustc lays out the bindgen type above (generated by cyview-build).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CyviewRustStruct {
    /// The C name (the bindgen type has the same name).
    pub name: &'static str,
    /// `size_of` the bindgen type.
    pub size: usize,
    /// `align_of` the bindgen type.
    pub align: usize,
    /// Every field clang reported, in its order.
    pub fields: ::std::vec::Vec<CyviewRustField>,
}

/// One field as rustc lays out the bindgen type above (generated by cyview-build).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CyviewRustField {
    /// The C field name (the Rust name may carry a `_` suffix when it is a keyword).
    pub name: &'static str,
    /// `offset_of!` the field.
    pub offset: usize,
    /// `size_of` the field's type.
    pub size: usize,
}

fn cyview_field_size<T, F>(_: fn(&T) -> &F) -> usize {
    ::core::mem::size_of::<F>()
}

/// rustc's layout of each bindgen struct, for every struct and field in the JSON
/// description (clang's layout) of the same file.
pub fn cyview_rust_layouts() -> ::std::vec::Vec<CyviewRustStruct> {
    ::std::vec![
"#,
    );
    for st in &layouts.structs {
        let t = &st.name;
        let _ = writeln!(
            s,
            "        CyviewRustStruct {{\n            name: {t:?},\n            size: ::core::mem::size_of::<{t}>(),\n            align: ::core::mem::align_of::<{t}>(),\n            fields: ::std::vec!["
        );
        for f in &st.fields {
            let rust = rust_field_name(&f.name);
            let _ = writeln!(
                s,
                "                CyviewRustField {{ name: {:?}, offset: ::core::mem::offset_of!({t}, {rust}), size: cyview_field_size(|s: &{t}| &s.{rust}) }},",
                f.name
            );
        }
        s.push_str("            ],\n        },\n");
    }
    s.push_str("    ]\n}\n");
    s
}

/// The name bindgen gives a C field: Rust keywords get a `_` suffix.
fn rust_field_name(c: &str) -> String {
    const KEYWORDS: &[&str] = &[
        "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
        "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
        "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub",
        "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "try",
        "type", "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
    ];
    if KEYWORDS.contains(&c) {
        format!("{c}_")
    } else {
        c.to_string()
    }
}

// ---------------------------------------------------------------------------------------
// libclang
// ---------------------------------------------------------------------------------------

/// Loads libclang on this thread (bindgen's `runtime` linking loads it per thread).
fn ensure_libclang() -> Result<(), Error> {
    if clang_sys::is_loaded() {
        return Ok(());
    }
    clang_sys::load().map_err(|message| Error::Clang {
        c_file: None,
        message: format!(
            "cannot load libclang ({message}): install libclang (Debian and Ubuntu: `apt-get install libclang-dev`), or set LIBCLANG_PATH to the folder that holds libclang.so"
        ),
    })
}

/// A `CXString` turned into a `String` and disposed.
///
/// # Safety
///
/// `s` must be a `CXString` returned by libclang that has not been disposed yet; it is
/// disposed here and must not be used afterwards.
unsafe fn take_string(s: CXString) -> String {
    // SAFETY: the caller guarantees `s` is a live CXString from libclang; `clang_getCString`
    // returns a NUL-terminated string owned by `s` (or null), valid until disposal.
    let text = unsafe {
        let p = clang_getCString(s);
        if p.is_null() {
            String::new()
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    };
    // SAFETY: `s` is live and disposed exactly once, after its last use above.
    unsafe { clang_disposeString(s) };
    text
}

/// The libclang version string (`clang_getClangVersion`).
pub(crate) fn clang_version() -> Result<String, Error> {
    ensure_libclang()?;
    // SAFETY: libclang is loaded on this thread (above); the call has no preconditions and
    // returns an owned CXString, which `take_string` disposes.
    Ok(unsafe { take_string(clang_getClangVersion()) })
}

/// Owns a `CXIndex` and a `CXTranslationUnit` and disposes them in the right order.
struct Parsed {
    index: CXIndex,
    tu: CXTranslationUnit,
}

impl Drop for Parsed {
    fn drop(&mut self) {
        // SAFETY: both handles were created by libclang on this thread, are disposed exactly
        // once here, the unit before its index as libclang requires; `tu` may be null after
        // a failed parse, which is skipped.
        unsafe {
            if !self.tu.is_null() {
                clang_disposeTranslationUnit(self.tu);
            }
            clang_disposeIndex(self.index);
        }
    }
}

/// Parses `c_file` with `args` (function bodies skipped) and returns clang's layout of each
/// struct in `names`, with the errors tolerated (only when `tolerate`: errors that lie
/// outside the structs and the types they use, none fatal; otherwise any error fails).
fn clang_struct_layouts(
    c_file: &Path,
    args: &[String],
    names: &[&str],
    tolerate: bool,
) -> Result<(Vec<StructLayout>, Vec<String>), Error> {
    ensure_libclang()?;
    let clang_err = |message: String| Error::Clang {
        c_file: Some(c_file.to_path_buf()),
        message,
    };
    let file = CString::new(c_file.to_string_lossy().into_owned())
        .map_err(|_| clang_err("path contains NUL".to_string()))?;
    let c_args: Vec<CString> = args
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<_, _>>()
        .map_err(|_| clang_err("argument contains NUL".to_string()))?;
    let arg_ptrs: Vec<*const c_char> = c_args.iter().map(|a| a.as_ptr()).collect();
    let n_args =
        c_int::try_from(arg_ptrs.len()).map_err(|_| clang_err("too many arguments".into()))?;

    // SAFETY: libclang is loaded on this thread; `clang_createIndex` has no preconditions.
    let index = unsafe { clang_createIndex(0, 0) };
    let mut parsed = Parsed {
        index,
        tu: std::ptr::null_mut(),
    };
    // SAFETY: `index` is a live index; `file` and every pointer of `arg_ptrs` point at
    // NUL-terminated strings (`c_args`) that outlive the call; `n_args` is their number;
    // no unsaved files (null, 0).
    parsed.tu = unsafe {
        clang_parseTranslationUnit(
            parsed.index,
            file.as_ptr(),
            arg_ptrs.as_ptr(),
            n_args,
            std::ptr::null_mut(),
            0,
            CXTranslationUnit_SkipFunctionBodies,
        )
    };
    if parsed.tu.is_null() {
        return Err(clang_err("libclang could not parse the file".to_string()));
    }
    let errors = diagnostics(parsed.tu);
    if !tolerate && !errors.is_empty() {
        return Err(clang_err(
            errors
                .into_iter()
                .map(|e| e.text)
                .collect::<Vec<_>>()
                .join("\n"),
        ));
    }

    // SAFETY: `parsed.tu` is a live translation unit.
    let root = unsafe { clang_getTranslationUnitCursor(parsed.tu) };
    let mut found: Vec<(String, CXCursor)> = Vec::new();
    for cursor in children(root) {
        // SAFETY: `cursor` belongs to the live translation unit `parsed.tu`.
        let (kind, name, is_def) = unsafe {
            (
                clang_getCursorKind(cursor),
                take_string(clang_getCursorSpelling(cursor)),
                clang_isCursorDefinition(cursor) != 0,
            )
        };
        if !names.contains(&name.as_str()) || found.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let record = if kind == CXCursor_StructDecl && is_def {
            Some(cursor)
        } else if kind == CXCursor_TypedefDecl {
            // SAFETY: `cursor` is a typedef declaration of the live unit; the types and
            // cursors derived from it belong to the same unit.
            unsafe {
                let ty = clang_getCanonicalType(clang_getTypedefDeclUnderlyingType(cursor));
                let decl = clang_getTypeDeclaration(ty);
                (clang_getCursorKind(decl) == CXCursor_StructDecl
                    && clang_isCursorDefinition(decl) != 0)
                    .then_some(decl)
            }
        } else {
            None
        };
        if let Some(record) = record {
            found.push((name, record));
        }
    }

    let mut tolerated = Vec::new();
    if !errors.is_empty() {
        let mut ranges = Vec::new();
        let mut seen = Vec::new();
        for (_, record) in &found {
            used_ranges(*record, &mut ranges, &mut seen);
        }
        let mut refused = Vec::new();
        for e in errors {
            let inside = match &e.at {
                None => true,
                Some((file, offset)) => ranges
                    .iter()
                    .any(|(f, start, end)| f == file && start <= offset && offset <= end),
            };
            if e.fatal || inside {
                refused.push(e.text);
            } else {
                tolerated.push(e.text);
            }
        }
        if !refused.is_empty() {
            return Err(clang_err(format!(
                "{} error(s) within the requested structs or the types they use, or fatal (of {} in the file):\n{}",
                refused.len(),
                refused.len() + tolerated.len(),
                refused.join("\n")
            )));
        }
    }
    let mut layouts = Vec::with_capacity(names.len());
    for name in names {
        let (_, record) =
            found
                .iter()
                .find(|(n, _)| n == name)
                .ok_or_else(|| Error::MissingStruct {
                    c_file: c_file.to_path_buf(),
                    name: (*name).to_string(),
                })?;
        layouts.push(struct_layout(name, *record).map_err(clang_err)?);
    }
    drop(parsed);
    Ok((layouts, tolerated))
}

/// A source position: file name and byte offset (expansion location).
fn position(loc: CXSourceLocation) -> Option<(String, u32)> {
    let mut file: CXFile = std::ptr::null_mut();
    let mut offset: c_uint = 0;
    // SAFETY: `loc` comes from a live translation unit; the out-pointers are valid locals
    // (line and column are not wanted: null is allowed).
    unsafe {
        clang_getExpansionLocation(
            loc,
            &mut file,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut offset,
        );
    }
    if file.is_null() {
        return None;
    }
    // SAFETY: `file` is a non-null file of the live unit; `take_string` disposes the name.
    Some((unsafe { take_string(clang_getFileName(file)) }, offset))
}

/// Adds to `ranges` the source range (file, first and last byte offset) of the declaration
/// `decl` and of every declaration its type uses: the fields' types, followed through
/// typedefs, arrays and pointers, each declaration once (`seen`, by `clang_hashCursor`).
fn used_ranges(decl: CXCursor, ranges: &mut Vec<(String, u32, u32)>, seen: &mut Vec<c_uint>) {
    // SAFETY: `decl` is a cursor of a live translation unit.
    let (null, hash) = unsafe { (clang_Cursor_isNull(decl) != 0, clang_hashCursor(decl)) };
    // SAFETY: as above.
    if null || unsafe { clang_getCursorKind(decl) } == CXCursor_NoDeclFound || seen.contains(&hash)
    {
        return;
    }
    seen.push(hash);
    // SAFETY: `decl` is a cursor of a live translation unit; the range and its ends belong
    // to the same unit.
    let (start, end) = unsafe {
        let extent = clang_getCursorExtent(decl);
        (
            position(clang_getRangeStart(extent)),
            position(clang_getRangeEnd(extent)),
        )
    };
    if let (Some((file, s)), Some((file_end, e))) = (start, end) {
        if file == file_end {
            ranges.push((file, s, e));
        }
    }
    // SAFETY: `decl` is a cursor of a live translation unit.
    let kind = unsafe { clang_getCursorKind(decl) };
    if kind == CXCursor_TypedefDecl {
        // SAFETY: `decl` is a typedef declaration of the live unit.
        let ty = unsafe { clang_getTypedefDeclUnderlyingType(decl) };
        type_ranges(ty, ranges, seen);
    }
    for child in children(decl) {
        // SAFETY: `child` is a child of `decl`, in the same live unit.
        if unsafe { clang_getCursorKind(child) } == CXCursor_FieldDecl {
            // SAFETY: as above.
            let ty = unsafe { clang_getCursorType(child) };
            type_ranges(ty, ranges, seen);
        }
    }
}

/// [`used_ranges`] of the declarations a type names (through pointers and arrays).
fn type_ranges(ty: CXType, ranges: &mut Vec<(String, u32, u32)>, seen: &mut Vec<c_uint>) {
    let mut ty = ty;
    for _ in 0..16 {
        // SAFETY: `ty` comes from a cursor of a live translation unit; the derived types
        // and declaration cursors belong to the same unit.
        let next = unsafe {
            if ty.kind == CXType_Pointer {
                clang_getPointeeType(ty)
            } else if ty.kind == CXType_ConstantArray || ty.kind == CXType_IncompleteArray {
                clang_getArrayElementType(ty)
            } else if ty.kind == CXType_Elaborated {
                clang_Type_getNamedType(ty)
            } else {
                used_ranges(clang_getTypeDeclaration(ty), ranges, seen);
                return;
            }
        };
        ty = next;
    }
}

/// clang's layout of the struct definition `record`, called `name`.
fn struct_layout(name: &str, record: CXCursor) -> Result<StructLayout, String> {
    // SAFETY: `record` is a struct definition cursor of a live translation unit.
    let ty = unsafe { clang_getCursorType(record) };
    let (size, align) = (type_size(ty, name)?, type_align(ty, name)?);
    let mut fields = Vec::new();
    for cursor in children(record) {
        // SAFETY: `cursor` is a child of `record`, in the same live unit.
        if unsafe { clang_getCursorKind(cursor) } != CXCursor_FieldDecl {
            continue;
        }
        // SAFETY: `cursor` is a field declaration of the live unit; the CXStrings are
        // disposed by `take_string`.
        let (field, c_type, bit_offset, is_bitfield, field_ty) = unsafe {
            let field_ty = clang_getCursorType(cursor);
            (
                take_string(clang_getCursorSpelling(cursor)),
                take_string(clang_getTypeSpelling(field_ty)),
                clang_Cursor_getOffsetOfField(cursor),
                clang_Cursor_isBitField(cursor) != 0,
                field_ty,
            )
        };
        let what = format!("{name}::{field}");
        if field.is_empty() {
            return Err(format!(
                "{name} has an anonymous member, which is not supported"
            ));
        }
        if is_bitfield || bit_offset < 0 || bit_offset % 8 != 0 {
            return Err(format!(
                "{what} is a bit-field or has no byte offset ({bit_offset} bits)"
            ));
        }
        fields.push(Field {
            name: field,
            c_type,
            offset: usize::try_from(bit_offset / 8).map_err(|e| format!("{what}: {e}"))?,
            size: type_size(field_ty, &what)?,
        });
    }
    Ok(StructLayout {
        name: name.to_string(),
        size,
        align,
        fields,
    })
}

fn type_size(ty: CXType, what: &str) -> Result<usize, String> {
    // SAFETY: `ty` comes from a cursor of a live translation unit.
    let n = unsafe { clang_Type_getSizeOf(ty) };
    usize::try_from(n).map_err(|_| format!("clang gives no size for {what} ({n})"))
}

fn type_align(ty: CXType, what: &str) -> Result<usize, String> {
    // SAFETY: `ty` comes from a cursor of a live translation unit.
    let n = unsafe { clang_Type_getAlignOf(ty) };
    usize::try_from(n).map_err(|_| format!("clang gives no alignment for {what} ({n})"))
}

/// One error diagnostic of a translation unit.
struct Diagnostic {
    /// Formatted as clang prints it.
    text: String,
    /// Where it is (file name, byte offset), when clang places it in a file.
    at: Option<(String, u32)>,
    /// Whether it is a fatal error (clang reports nothing after one).
    fatal: bool,
}

/// The error diagnostics of a translation unit.
fn diagnostics(tu: CXTranslationUnit) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    // SAFETY: `tu` is a live translation unit.
    let n: c_uint = unsafe { clang_getNumDiagnostics(tu) };
    for i in 0..n {
        // SAFETY: `i < n`, so the diagnostic exists; it is disposed after its last use and
        // its formatted CXString by `take_string`.
        unsafe {
            let d = clang_getDiagnostic(tu, i);
            let severity = clang_getDiagnosticSeverity(d);
            if severity >= CXDiagnostic_Error {
                out.push(Diagnostic {
                    text: take_string(clang_formatDiagnostic(
                        d,
                        clang_defaultDiagnosticDisplayOptions(),
                    )),
                    at: position(clang_getDiagnosticLocation(d)),
                    fatal: severity >= CXDiagnostic_Fatal,
                });
            }
            clang_disposeDiagnostic(d);
        }
    }
    out
}

/// The direct children of `parent`.
fn children(parent: CXCursor) -> Vec<CXCursor> {
    extern "C" fn visit(
        cursor: CXCursor,
        _parent: CXCursor,
        data: CXClientData,
    ) -> CXChildVisitResult {
        // libclang calls back synchronously on this thread; pushing only unwinds on OOM (abort).
        // SAFETY: `data` is the `&mut Vec<CXCursor>` passed to `clang_visitChildren` below,
        // alive and not otherwise borrowed during the visit.
        let out = unsafe { &mut *data.cast::<Vec<CXCursor>>() };
        out.push(cursor);
        CXChildVisit_Continue
    }
    let mut out: Vec<CXCursor> = Vec::new();
    // SAFETY: `parent` is a cursor of a live translation unit; `visit` matches
    // `CXCursorVisitor`; the client data is `&mut out`, valid for the whole call.
    unsafe {
        clang_visitChildren(parent, visit, (&mut out as *mut Vec<CXCursor>).cast());
    }
    out
}
