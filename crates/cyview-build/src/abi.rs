//! The build-time ABI check: the memoryview structs the installed Cython generates, as
//! clang lays them out, against cyview's Rust definitions of them.

use std::fmt;
use std::fs;
use std::mem::{align_of, offset_of, size_of};
use std::path::PathBuf;

use cyview::{MemviewObjectLayout, MemviewSlice};

use crate::cache::{commit_entry, default_cache_dir, read, temp_sibling, Fnv, STAMP};
use crate::extract::{clang_layouts, clang_version};
use crate::layouts::{Layouts, StructLayout};
use crate::module::cythonize;
use crate::{io_err, Error, Python};

/// Bumped whenever the check's cached data changes shape.
const ABI_SCHEMA: &str = "cyview-build abi v1";

/// The module whose generated C the check reads: one typed memoryview argument is enough
/// for Cython to emit its memoryview structs.
const PROBE_NAME: &str = "cyview_abi_probe";
const PROBE_PYX: &str = "\
# cython: language_level=3
def probe(double[:] v):
    return v.shape[0]
";

/// The C name of the slice struct.
pub const SLICE_STRUCT: &str = "__Pyx_memviewslice";
/// The C name (struct tag) of the memoryview object.
pub const OBJECT_STRUCT: &str = "__pyx_memoryview_obj";

/// [`AbiCheck::new`]`(python).run()`: checks that the Cython installed for `python`
/// generates the memoryview structs cyview is written for.
///
/// For a build script: cyview exchanges `__Pyx_memviewslice` by value with Cython modules
/// and reads their memoryview objects, so a Cython whose layout differs from cyview's would
/// corrupt memory at run time. This fails the build instead, naming every difference.
///
/// # Errors
///
/// As [`AbiCheck::run`].
pub fn check_abi(python: &Python) -> Result<AbiReport, Error> {
    AbiCheck::new(python).run()
}

/// The ABI check, configured: which interpreter, which cache, which cyview definitions.
///
/// It cythonizes a one-function probe module with the interpreter's Cython (no C compiler
/// involved), reads the layout of `__Pyx_memviewslice` and `struct __pyx_memoryview_obj`
/// from the generated C with libclang (the numbers bindgen's types are checked against,
/// with the interpreter's headers, for the host), and compares them with
/// [`compare_layouts`]. Cython's layouts are cached per interpreter, Python, Cython and
/// libclang (`<target>/cyview-build-cache/abi-<key>` in a build script, else under the
/// system's temporary folder), so a repeated check costs one interpreter query; the
/// comparison itself always runs.
#[derive(Clone, Debug)]
pub struct AbiCheck<'a> {
    python: &'a Python,
    cache_dir: Option<PathBuf>,
    cyview: CyviewAbi,
}

impl<'a> AbiCheck<'a> {
    /// The check of `python`'s Cython against [`CyviewAbi::current`].
    pub fn new(python: &'a Python) -> Self {
        AbiCheck {
            python,
            cache_dir: None,
            cyview: CyviewAbi::current(),
        }
    }

    /// Uses `dir` as the cache instead of the default.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Compares with `cyview` instead of [`CyviewAbi::current`].
    pub fn expect(mut self, cyview: CyviewAbi) -> Self {
        self.cyview = cyview;
        self
    }

    /// Runs the check.
    ///
    /// # Errors
    ///
    /// [`Error::AbiMismatch`], listing every difference, when Cython's structs differ from
    /// cyview's definitions; as [`AbiCheck::cython_layouts`] when they cannot be read.
    pub fn run(&self) -> Result<AbiReport, Error> {
        let (layouts, from_cache) = self.layouts()?;
        let mut report = compare_layouts(&layouts, &self.cyview)?;
        report.from_cache = from_cache;
        Ok(report)
    }

    /// The layouts of `__Pyx_memviewslice` and `__pyx_memoryview_obj` in the C the
    /// interpreter's Cython generates (from the cache when there).
    ///
    /// # Errors
    ///
    /// [`Error::CythonMissing`] without Cython, [`Error::Cythonize`] when Cython fails on
    /// the probe, [`Error::Clang`] when libclang cannot be loaded or rejects the C (e.g. no
    /// `Python.h`), [`Error::MissingStruct`] when the C lacks one of the structs,
    /// [`Error::Io`] for the cache.
    pub fn cython_layouts(&self) -> Result<Layouts, Error> {
        self.layouts().map(|(layouts, _)| layouts)
    }

    /// The layouts, and whether they came from the cache.
    fn layouts(&self) -> Result<(Layouts, bool), Error> {
        let python = self.python;
        let cython_version = python.require_cython()?;
        let mut key = Fnv::new();
        key.part("schema", ABI_SCHEMA.as_bytes());
        key.part("cyview-build", env!("CARGO_PKG_VERSION").as_bytes());
        key.part("python", python.executable().as_os_str().as_encoded_bytes());
        key.part("python version", python.version().as_bytes());
        key.part(
            "site-packages",
            python.site_packages().as_os_str().as_encoded_bytes(),
        );
        key.part("cython", cython_version.as_bytes());
        key.part(
            "cython sources",
            python.cython_digest().unwrap_or("").as_bytes(),
        );
        key.part("clang", clang_version()?.as_bytes());
        key.part("probe", PROBE_PYX.as_bytes());
        let cache_dir = match &self.cache_dir {
            Some(dir) => dir.clone(),
            None => match std::env::var_os("OUT_DIR") {
                Some(out) => default_cache_dir(&PathBuf::from(&out), Some(out.as_ref())),
                None => std::env::temp_dir().join("cyview-build-cache"),
            },
        };
        let entry = cache_dir.join(format!("abi-{:016x}", key.finish()));
        let json = entry.join("layouts.json");
        if entry.join(STAMP).is_file() {
            let text = String::from_utf8_lossy(&read(&json)?).into_owned();
            if let Ok(layouts) = Layouts::from_json(&text) {
                if layouts.cython_version == cython_version {
                    return Ok((layouts, true));
                }
            }
        }
        fs::create_dir_all(&cache_dir).map_err(io_err("create", &cache_dir))?;
        let tmp = temp_sibling(&entry);
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).map_err(io_err("create", &tmp))?;
        let result = (|| {
            let pyx = tmp.join(format!("{PROBE_NAME}.pyx"));
            let c_file = tmp.join(format!("{PROBE_NAME}.c"));
            fs::write(&pyx, PROBE_PYX).map_err(io_err("write", &pyx))?;
            cythonize(python, &pyx, &c_file, &[])?;
            let layouts = clang_layouts(python, &c_file, &[SLICE_STRUCT, OBJECT_STRUCT])?;
            fs::write(tmp.join("layouts.json"), layouts.to_json())
                .map_err(io_err("write", &tmp.join("layouts.json")))?;
            fs::write(tmp.join(STAMP), b"").map_err(io_err("write", &tmp.join(STAMP)))?;
            Ok(layouts)
        })();
        match result {
            Ok(layouts) => {
                commit_entry(&tmp, &entry)?;
                Ok((layouts, false))
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                Err(e)
            }
        }
    }
}

/// What the check established: the Cython release, and which of cyview's memoryview
/// object layouts its modules have (the `cyview_py::MemviewAbi` variant they are read
/// with).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AbiReport {
    /// The Cython release (`Cython.__version__`).
    pub cython_version: String,
    /// The Python whose headers the C was read with (`x.y.z`).
    pub python_version: String,
    /// The layout of `struct __pyx_memoryview_obj` that matched; its `name` is the
    /// `cyview_py::MemviewAbi` variant (`"Cython0_29"`, `"Cython3"`).
    pub memview_object: MemviewObjectLayout,
    /// Whether Cython's layouts came from the cache (always `false` from
    /// [`compare_layouts`]).
    pub from_cache: bool,
}

impl fmt::Display for AbiReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Cython {} (Python {}): __Pyx_memviewslice matches cyview::MemviewSlice, \
             __pyx_memoryview_obj has cyview's {} layout (Cython {})",
            self.cython_version,
            self.python_version,
            self.memview_object.name,
            self.memview_object.releases
        )
    }
}

/// cyview's side of the ABI: what its Rust definitions require of Cython's structs.
/// [`CyviewAbi::current`] reads it from the `cyview` this crate is built with; a test may
/// change it to see the check fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CyviewAbi {
    /// `__Pyx_memviewslice` as `cyview::MemviewSlice` lays it out (every field).
    pub slice: ExpectedStruct,
    /// The layouts of `struct __pyx_memoryview_obj` cyview can read; Cython's must match
    /// one of them.
    pub memview_objects: Vec<MemviewObjectLayout>,
}

/// What cyview requires of one C struct.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedStruct {
    /// The C name, e.g. `__Pyx_memviewslice`.
    pub c_name: String,
    /// cyview's definition, e.g. `cyview::MemviewSlice`.
    pub rust_name: String,
    /// `size_of`.
    pub size: usize,
    /// `align_of`, when cyview relies on it.
    pub align: Option<usize>,
    /// The fields cyview relies on.
    pub fields: Vec<ExpectedField>,
    /// Whether Cython's struct must have no other fields.
    pub exhaustive: bool,
}

/// One field cyview relies on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedField {
    /// The C name.
    pub name: String,
    /// Its offset, in bytes.
    pub offset: usize,
    /// Its size in bytes, when cyview relies on it.
    pub size: Option<usize>,
}

fn field_size<T, F>(_: fn(&T) -> &F) -> usize {
    size_of::<F>()
}

impl CyviewAbi {
    /// rustc's layout of `cyview::MemviewSlice` (for the host) and
    /// `cyview::MemviewObjectLayout::ALL`.
    pub fn current() -> Self {
        let field = |name: &str, offset, size| ExpectedField {
            name: name.to_string(),
            offset,
            size: Some(size),
        };
        CyviewAbi {
            slice: ExpectedStruct {
                c_name: SLICE_STRUCT.to_string(),
                rust_name: "cyview::MemviewSlice".to_string(),
                size: size_of::<MemviewSlice>(),
                align: Some(align_of::<MemviewSlice>()),
                fields: vec![
                    field(
                        "memview",
                        offset_of!(MemviewSlice, memview),
                        field_size(|s: &MemviewSlice| &s.memview),
                    ),
                    field(
                        "data",
                        offset_of!(MemviewSlice, data),
                        field_size(|s: &MemviewSlice| &s.data),
                    ),
                    field(
                        "shape",
                        offset_of!(MemviewSlice, shape),
                        field_size(|s: &MemviewSlice| &s.shape),
                    ),
                    field(
                        "strides",
                        offset_of!(MemviewSlice, strides),
                        field_size(|s: &MemviewSlice| &s.strides),
                    ),
                    field(
                        "suboffsets",
                        offset_of!(MemviewSlice, suboffsets),
                        field_size(|s: &MemviewSlice| &s.suboffsets),
                    ),
                ],
                exhaustive: true,
            },
            memview_objects: MemviewObjectLayout::ALL.to_vec(),
        }
    }
}

impl ExpectedStruct {
    /// What `layout` requires of `struct __pyx_memoryview_obj`: its size, and the offset
    /// (and size, for the ones read as a whole) of `lock`, `acquisition_count`,
    /// `acquisition_count_aligned_p` (when the layout has it) and `view`.
    pub fn memview_object(layout: &MemviewObjectLayout) -> Self {
        let pointer = size_of::<*mut u8>();
        let mut fields = vec![
            ExpectedField {
                name: "lock".to_string(),
                offset: layout.lock,
                size: Some(pointer),
            },
            ExpectedField {
                name: "acquisition_count".to_string(),
                offset: layout.acquisition_count,
                size: Some(layout.acquisition_count_size),
            },
        ];
        if let Some(offset) = layout.acquisition_count_aligned_p {
            fields.push(ExpectedField {
                name: "acquisition_count_aligned_p".to_string(),
                offset,
                size: Some(pointer),
            });
        }
        fields.push(ExpectedField {
            name: "view".to_string(),
            offset: layout.view,
            // The `Py_buffer` is CPython's (pyo3's definition): only where it starts.
            size: None,
        });
        ExpectedStruct {
            c_name: OBJECT_STRUCT.to_string(),
            rust_name: format!("cyview::MemviewObjectLayout ({})", layout.name),
            size: layout.size,
            align: None,
            fields,
            exhaustive: false,
        }
    }
}

/// One difference between Cython's struct and cyview's definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The C struct.
    pub c_struct: String,
    /// The field, or `None` for the whole struct (its size and alignment, or its absence).
    pub field: Option<String>,
    /// cyview's definition it was compared with.
    pub rust_name: String,
    /// Cython's side; `None` when Cython has no such field (or struct).
    pub cython: Option<Extent>,
    /// cyview's side; `None` when cyview has no such field (or struct).
    pub cyview: Option<Extent>,
}

/// Where a field is, or how big a struct is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extent {
    /// A field: its offset and size (`None`: cyview does not rely on it).
    Field {
        /// In bytes.
        offset: usize,
        /// In bytes.
        size: Option<usize>,
    },
    /// A struct: its size and alignment (`None`: cyview does not rely on it).
    Struct {
        /// In bytes.
        size: usize,
        /// In bytes.
        align: Option<usize>,
    },
}

impl fmt::Display for Extent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Extent::Field { offset, size } => {
                write!(f, "offset {offset}")?;
                if let Some(size) = size {
                    write!(f, ", size {size}")?;
                }
                Ok(())
            }
            Extent::Struct { size, align } => {
                write!(f, "size {size}")?;
                if let Some(align) = align {
                    write!(f, ", align {align}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.field.is_some() {
            "field"
        } else {
            "struct"
        };
        match &self.field {
            Some(field) => write!(f, "{}.{field}: ", self.c_struct)?,
            None => write!(f, "{}: ", self.c_struct)?,
        }
        match &self.cython {
            Some(e) => write!(f, "Cython {e}")?,
            None => write!(f, "Cython has no such {what}")?,
        }
        match &self.cyview {
            Some(e) => write!(f, "; {} {e}", self.rust_name),
            None => write!(f, "; {} has no such {what}", self.rust_name),
        }
    }
}

/// Compares Cython's layouts (as [`AbiCheck::cython_layouts`] reads them) with cyview's
/// definitions: `__Pyx_memviewslice` field for field (size, alignment, every field's
/// offset and size, no field more or less), and `struct __pyx_memoryview_obj` against each
/// of `cyview.memview_objects` until one matches (its size; the offsets, and sizes where
/// cyview reads the whole member, of the fields cyview reads).
///
/// # Errors
///
/// [`Error::AbiMismatch`] listing every difference (for the memoryview object, against
/// each of cyview's layouts when none matches).
pub fn compare_layouts(cython: &Layouts, cyview: &CyviewAbi) -> Result<AbiReport, Error> {
    let mut mismatches = compare_struct(cython, &cyview.slice);
    let mut matched = None;
    let mut object_mismatches = Vec::new();
    for layout in &cyview.memview_objects {
        let differences = compare_struct(cython, &ExpectedStruct::memview_object(layout));
        if differences.is_empty() {
            matched = Some(*layout);
            break;
        }
        object_mismatches.extend(differences);
    }
    if cyview.memview_objects.is_empty() {
        object_mismatches.push(Mismatch {
            c_struct: OBJECT_STRUCT.to_string(),
            field: None,
            rust_name: "cyview::MemviewObjectLayout".to_string(),
            cython: cython.get(OBJECT_STRUCT).map(|s| Extent::Struct {
                size: s.size,
                align: Some(s.align),
            }),
            cyview: None,
        });
    }
    match matched {
        Some(layout) if mismatches.is_empty() => Ok(AbiReport {
            cython_version: cython.cython_version.clone(),
            python_version: cython.python_version.clone(),
            memview_object: layout,
            from_cache: false,
        }),
        _ => {
            if matched.is_none() {
                mismatches.extend(object_mismatches);
            }
            Err(Error::AbiMismatch {
                cython_version: cython.cython_version.clone(),
                python_version: cython.python_version.clone(),
                supported: cyview
                    .memview_objects
                    .iter()
                    .map(|l| l.releases)
                    .collect::<Vec<_>>()
                    .join(", "),
                mismatches,
            })
        }
    }
}

/// The differences between Cython's struct `expected.c_name` and `expected`.
fn compare_struct(cython: &Layouts, expected: &ExpectedStruct) -> Vec<Mismatch> {
    let mismatch = |field: Option<&str>, cython: Option<Extent>, cyview: Option<Extent>| Mismatch {
        c_struct: expected.c_name.clone(),
        field: field.map(str::to_string),
        rust_name: expected.rust_name.clone(),
        cython,
        cyview,
    };
    let ours = Extent::Struct {
        size: expected.size,
        align: expected.align,
    };
    let Some(theirs) = cython.get(&expected.c_name) else {
        return vec![mismatch(None, None, Some(ours))];
    };
    let mut out = Vec::new();
    if theirs.size != expected.size || expected.align.is_some_and(|a| a != theirs.align) {
        let align = expected.align.map(|_| theirs.align);
        let size = theirs.size;
        out.push(mismatch(
            None,
            Some(Extent::Struct { size, align }),
            Some(ours),
        ));
    }
    for field in &expected.fields {
        let ours = Extent::Field {
            offset: field.offset,
            size: field.size,
        };
        match theirs.field(&field.name) {
            None => out.push(mismatch(Some(&field.name), None, Some(ours))),
            Some(f) => {
                if f.offset != field.offset || field.size.is_some_and(|s| s != f.size) {
                    let size = Some(f.size);
                    let cython = Extent::Field {
                        offset: f.offset,
                        size,
                    };
                    out.push(mismatch(Some(&field.name), Some(cython), Some(ours)));
                }
            }
        }
    }
    if expected.exhaustive {
        out.extend(extra_fields(theirs, expected).map(|f| {
            let cython = Extent::Field {
                offset: f.offset,
                size: Some(f.size),
            };
            mismatch(Some(&f.name), Some(cython), None)
        }));
    }
    out
}

/// The fields of Cython's struct that `expected` does not list.
fn extra_fields<'s>(
    theirs: &'s StructLayout,
    expected: &'s ExpectedStruct,
) -> impl Iterator<Item = &'s crate::layouts::Field> + 's {
    theirs
        .fields
        .iter()
        .filter(|f| !expected.fields.iter().any(|e| e.name == f.name))
}
