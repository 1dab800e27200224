//! Generates `include/ms_service_profiler.h` from `src/ffi.rs` with cbindgen.
fn main() {
    println!("cargo:rerun-if-changed=src/ffi.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let config = cbindgen::Config::from_file(format!("{dir}/cbindgen.toml")).expect("cbindgen.toml");
    match cbindgen::Builder::new().with_src(format!("{dir}/src/ffi.rs")).with_config(config).generate() {
        Ok(b) => {
            b.write_to_file(format!("{dir}/include/ms_service_profiler.h"));
        }
        Err(e) => println!("cargo:warning=cbindgen failed: {e}"),
    }
}
