//! Builds `cython_fixtures/` for the selected Cython release (work in progress).
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
}
