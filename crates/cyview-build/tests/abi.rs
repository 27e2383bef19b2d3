//! The build-time ABI check against real Cython: every pinned release that has a venv
//! (`.venvs/cy-<release>/bin/python`, as ci/lib.sh makes them) passes and is recognised as
//! the right memoryview layout; a changed description of cyview's side fails, naming the
//! field and both sides' numbers (clang's, for the release's generated C).

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::python;
use cyview::MemviewObjectLayout;
use cyview_build::abi::{Extent, SLICE_STRUCT};
use cyview_build::{compare_layouts, AbiCheck, CyviewAbi, Error, Layouts, Mismatch, Python};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The pinned releases (ci/cython-versions.txt).
fn pinned_releases() -> Vec<String> {
    let text = fs::read_to_string(repo_root().join("ci/cython-versions.txt")).unwrap();
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The layout cyview-py reads a release's memoryview objects with.
fn expected_layout(release: &str) -> MemviewObjectLayout {
    if release.starts_with("0.29.") {
        MemviewObjectLayout::CYTHON0_29
    } else {
        MemviewObjectLayout::CYTHON3
    }
}

/// Cython's layouts for the selected interpreter (cached in `cache`).
fn cython_layouts(python: &Python, cache: &Path) -> Layouts {
    AbiCheck::new(python)
        .cache_dir(cache)
        .cython_layouts()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn mismatches(err: Error) -> Vec<Mismatch> {
    match err {
        Error::AbiMismatch { mismatches, .. } => mismatches,
        other => panic!("expected an ABI mismatch, got {other}"),
    }
}

#[test]
fn every_installed_release_passes_with_its_memview_layout() {
    let cache = scratch_in("releases");
    let mut checked = Vec::new();
    let mut absent = Vec::new();
    for release in pinned_releases() {
        let exe = repo_root().join(format!(".venvs/cy-{release}/bin/python"));
        if !exe.exists() {
            absent.push(release);
            continue;
        }
        let python = Python::query(&exe).unwrap_or_else(|e| panic!("{e}"));
        let report = AbiCheck::new(&python)
            .cache_dir(&cache)
            .run()
            .unwrap_or_else(|e| panic!("Cython {release}: {e}"));
        assert_eq!(report.cython_version, release);
        assert_eq!(report.python_version, python.version());
        assert_eq!(
            report.memview_object,
            expected_layout(&release),
            "Cython {release}"
        );
        assert!(!report.from_cache, "Cython {release}: a fresh cache");
        let again = AbiCheck::new(&python).cache_dir(&cache).run().unwrap();
        assert!(
            again.from_cache,
            "Cython {release}: the second check is cached"
        );
        assert_eq!(
            (&again.cython_version, again.memview_object),
            (&report.cython_version, report.memview_object)
        );
        println!("{report}");
        checked.push(release);
    }
    println!("checked {checked:?}; no venv for {absent:?}");
    // The build the suite runs with is always checked: a pinned release above, or a build
    // that is not pinned (an sdist, a source checkout, a patched release: `ci/matrix
    // --cython SPEC`), checked here with the layout of its release family.
    let python = python();
    let selected = python
        .cython_version()
        .expect("the selected Python has Cython")
        .to_string();
    if !checked.contains(&selected) {
        let report = AbiCheck::new(&python)
            .cache_dir(&cache)
            .run()
            .unwrap_or_else(|e| panic!("Cython {selected} (the selected Python's): {e}"));
        assert_eq!(report.cython_version, selected);
        assert_eq!(
            report.memview_object,
            expected_layout(&selected),
            "Cython {selected}"
        );
        println!("{report}");
    }
}

#[test]
fn check_abi_accepts_the_selected_release() {
    let python = python();
    let report = AbiCheck::new(&python)
        .cache_dir(scratch_in("selected"))
        .run()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        report.memview_object,
        expected_layout(python.cython_version().unwrap())
    );
    assert_eq!(
        report.to_string(),
        format!(
            "Cython {} (Python {}): __Pyx_memviewslice matches cyview::MemviewSlice, __pyx_memoryview_obj has cyview's {} layout (Cython {})",
            python.cython_version().unwrap(),
            python.version(),
            report.memview_object.name,
            report.memview_object.releases
        )
    );
}

#[test]
fn a_moved_slice_field_fails_naming_it_with_both_offsets() {
    let python = python();
    let layouts = cython_layouts(&python, &scratch_in("moved"));
    let shape = layouts
        .get(SLICE_STRUCT)
        .and_then(|s| s.field("shape"))
        .expect("clang read __Pyx_memviewslice.shape")
        .clone();
    let mut cyview = CyviewAbi::current();
    let ours = cyview
        .slice
        .fields
        .iter_mut()
        .find(|f| f.name == "shape")
        .unwrap();
    ours.offset += 8;
    let moved = ours.offset;

    let err = compare_layouts(&layouts, &cyview).unwrap_err();
    let text = err.to_string();
    let found = mismatches(err);
    assert_eq!(
        found,
        [Mismatch {
            c_struct: SLICE_STRUCT.to_string(),
            field: Some("shape".to_string()),
            rust_name: "cyview::MemviewSlice".to_string(),
            cython: Some(Extent::Field {
                offset: shape.offset,
                size: Some(shape.size),
            }),
            cyview: Some(Extent::Field {
                offset: moved,
                size: Some(shape.size),
            }),
        }]
    );
    assert!(
        text.starts_with(&format!(
            "cyview-build: Cython {} (Python {}) lays out its memoryviews differently from cyview",
            python.cython_version().unwrap(),
            python.version()
        )),
        "{text}"
    );
    assert!(
        text.ends_with(&format!(
            "The differences:\n  __Pyx_memviewslice.shape: Cython offset {}, size {}; cyview::MemviewSlice offset {moved}, size {}",
            shape.offset, shape.size, shape.size
        )),
        "{text}"
    );
    // The unchanged description passes on the same layouts.
    compare_layouts(&layouts, &CyviewAbi::current()).unwrap();
}

#[test]
fn a_field_cyview_lacks_and_a_wrong_size_are_both_reported() {
    let python = python();
    let layouts = cython_layouts(&python, &scratch_in("lacks"));
    let slice = layouts.get(SLICE_STRUCT).unwrap();
    let suboffsets = slice.field("suboffsets").unwrap();
    let mut cyview = CyviewAbi::current();
    cyview.slice.fields.retain(|f| f.name != "suboffsets");
    cyview.slice.size += 8;
    let text = compare_layouts(&layouts, &cyview).unwrap_err().to_string();
    let lines: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(
        lines,
        [
            format!(
                "  __Pyx_memviewslice: Cython size {}, align {}; cyview::MemviewSlice size {}, align {}",
                slice.size,
                slice.align,
                slice.size + 8,
                slice.align
            ),
            format!(
                "  __Pyx_memviewslice.suboffsets: Cython offset {}, size {}; cyview::MemviewSlice has no such field",
                suboffsets.offset, suboffsets.size
            ),
        ]
    );
}

#[test]
fn a_memview_object_matching_none_of_cyviews_layouts_is_refused() {
    let python = python();
    let layouts = cython_layouts(&python, &scratch_in("object"));
    let release = python.cython_version().unwrap().to_string();
    let right = expected_layout(&release);
    let object = layouts.get("__pyx_memoryview_obj").unwrap();
    let view = object.field("view").unwrap().offset;
    // cyview with only its other layout, and with the right one's `view` moved.
    let mut cyview = CyviewAbi::current();
    cyview.memview_objects.retain(|l| *l == right);
    cyview.memview_objects[0].view += 8;
    let found = mismatches(compare_layouts(&layouts, &cyview).unwrap_err());
    assert_eq!(
        found,
        [Mismatch {
            c_struct: "__pyx_memoryview_obj".to_string(),
            field: Some("view".to_string()),
            rust_name: format!("cyview::MemviewObjectLayout ({})", right.name),
            cython: Some(Extent::Field {
                offset: view,
                size: Some(object.field("view").unwrap().size),
            }),
            cyview: Some(Extent::Field {
                offset: view + 8,
                size: None,
            }),
        }]
    );

    // Against the other release family's layout: 0.29 has `acquisition_count_aligned_p`,
    // 3.x has not.
    let mut other = CyviewAbi::current();
    other.memview_objects.retain(|l| *l != right);
    let text = compare_layouts(&layouts, &other).unwrap_err().to_string();
    let aligned_p = "__pyx_memoryview_obj.acquisition_count_aligned_p";
    if right == MemviewObjectLayout::CYTHON3 {
        assert!(
            text.contains(&format!(
                "{aligned_p}: Cython has no such field; cyview::MemviewObjectLayout (Cython0_29) offset {}, size {}",
                MemviewObjectLayout::CYTHON0_29
                    .acquisition_count_aligned_p
                    .unwrap(),
                std::mem::size_of::<*mut u8>()
            )),
            "{text}"
        );
    } else {
        assert!(!text.contains(aligned_p), "{text}");
    }
    assert!(
        text.contains(&format!(
            "__pyx_memoryview_obj: Cython size {}; cyview::MemviewObjectLayout ({}) size",
            object.size, other.memview_objects[0].name
        )),
        "{text}"
    );
}

/// A fresh scratch folder of this test file.
fn scratch_in(name: &str) -> PathBuf {
    common::scratch("cyview-build-abi", name, &[])
}
