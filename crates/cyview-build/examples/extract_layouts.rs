//! Extracts the four memoryview structs of a Cython-generated C file as JSON: the layout
//! step of `ci/sweep` (and of any probe of one Cython build).
//!
//! ```text
//! cargo run -p cyview-build --example extract_layouts -- \
//!     --python .venvs/cy-3.3.1/bin/python --c build/golden_core.c --out layouts.json
//! ```
//!
//! `--python` is the interpreter whose headers (and Cython release) the C file belongs to,
//! `--c` a C file that Cython generated for a module using typed memoryviews, `--out` where
//! the [`cyview_build::Layouts`] JSON goes. bindgen and libclang run as in
//! [`cyview_build::extract_layouts`]: every number comes from clang. Exit status 1 with one
//! line on stderr when something fails, 2 on a usage error.
//!
//! `--tolerate-errors-outside-structs`: when clang or bindgen reports errors in the file (the
//! C of an old Cython release read with newer Python headers), lay the structs out anyway with
//! [`cyview_build::extract_layouts_tolerant`] (no bindgen) as long as none of the errors lies
//! within the structs or the types they use; the JSON then has `tolerated_errors` (their
//! number) and `tolerated_error_lines` (the first lines of the first few).

use std::path::PathBuf;
use std::process::ExitCode;

use cyview_build::{extract_layouts, extract_layouts_tolerant, Error, Python, MEMORYVIEW_STRUCTS};

const USAGE: &str =
    "usage: extract_layouts --python PATH --c FILE --out FILE [--tolerate-errors-outside-structs]";

fn main() -> ExitCode {
    let mut python = None;
    let mut c_file = None;
    let mut out = None;
    let mut tolerate = false;
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        let slot = match arg.to_str() {
            Some("--python") => &mut python,
            Some("--c") => &mut c_file,
            Some("--out") => &mut out,
            Some("--tolerate-errors-outside-structs") => {
                tolerate = true;
                continue;
            }
            Some("-h" | "--help") => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("extract_layouts: unknown argument {arg:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        };
        match args.next() {
            Some(value) => *slot = Some(PathBuf::from(value)),
            None => {
                eprintln!("extract_layouts: {arg:?} needs a value\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let (Some(python), Some(c_file), Some(out)) = (python, c_file, out) else {
        eprintln!("extract_layouts: --python, --c and --out are all required\n{USAGE}");
        return ExitCode::from(2);
    };
    let json = match Python::query(&python).and_then(|py| {
        match extract_layouts(&py, &c_file, &MEMORYVIEW_STRUCTS) {
            Ok(extracted) => Ok(extracted.layouts.to_json()),
            // clang's errors (libclang) or bindgen's (which parses function bodies too)
            Err(
                Error::Clang {
                    c_file: Some(_), ..
                }
                | Error::Bindgen { .. },
            ) if tolerate => {
                let t = extract_layouts_tolerant(&py, &c_file, &MEMORYVIEW_STRUCTS)?;
                let mut doc = serde_json::to_value(&t.layouts).expect("layouts serialize");
                doc["tolerated_errors"] = t.tolerated_errors.len().into();
                doc["tolerated_error_lines"] = t
                    .tolerated_errors
                    .iter()
                    .take(5)
                    .map(|e| e.lines().next().unwrap_or("").to_string())
                    .collect::<Vec<_>>()
                    .into();
                let mut text = serde_json::to_string_pretty(&doc).expect("json serializes");
                text.push('\n');
                Ok(text)
            }
            Err(e) => Err(e),
        }
    }) {
        Ok(json) => json,
        Err(e) => {
            // The first line names what failed; clang's diagnostics may follow.
            eprintln!("extract_layouts: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = std::fs::write(&out, json) {
        eprintln!("extract_layouts: cannot write {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
