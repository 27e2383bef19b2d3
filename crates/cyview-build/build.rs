//! Records the triple this crate is compiled for, so that `cc` can find a C compiler when
//! cyview-build runs outside a build script (tests, tools), where Cargo sets no `TARGET`.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").expect("Cargo sets TARGET for build scripts");
    println!("cargo:rustc-env=CYVIEW_BUILD_COMPILED_FOR={target}");
}
