//! What the cyview-build tests share: scratch folders and the selected interpreter.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use cyview_build::Python;

/// A fresh, empty folder `group/name` under Cargo's scratch space, with the `subdirs` made.
pub fn scratch(group: &str, name: &str, subdirs: &[&str]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(group)
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create scratch folder");
    for sub in subdirs {
        fs::create_dir_all(dir.join(sub)).expect("create scratch folder");
    }
    dir
}

/// The interpreter the crate selects (`CYVIEW_PYTHON`, else `PYO3_PYTHON`, else `python3`).
pub fn python() -> Python {
    Python::find().unwrap_or_else(|e| panic!("{e}"))
}
