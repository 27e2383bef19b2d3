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

use std::path::PathBuf;
use std::process::ExitCode;

use cyview_build::{extract_layouts, Python, MEMORYVIEW_STRUCTS};

const USAGE: &str = "usage: extract_layouts --python PATH --c FILE --out FILE";

fn main() -> ExitCode {
    let mut python = None;
    let mut c_file = None;
    let mut out = None;
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        let slot = match arg.to_str() {
            Some("--python") => &mut python,
            Some("--c") => &mut c_file,
            Some("--out") => &mut out,
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
    let extracted = match Python::query(&python)
        .and_then(|py| extract_layouts(&py, &c_file, &MEMORYVIEW_STRUCTS))
    {
        Ok(extracted) => extracted,
        Err(e) => {
            // The first line names what failed; clang's diagnostics may follow.
            eprintln!("extract_layouts: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = std::fs::write(&out, extracted.layouts.to_json()) {
        eprintln!("extract_layouts: cannot write {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
