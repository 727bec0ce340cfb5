//! The committed `include/kestrel.h` is what cbindgen makes from the source today.
//!
//! `build.rs` writes the fresh header to `$OUT_DIR/kestrel.h`, and on a developer machine
//! also over the committed one when they differ; under `CI` it leaves the source tree
//! alone, so a header not regenerated and committed fails here.

#[test]
fn committed_header_is_fresh() {
    let fresh = include_str!(concat!(env!("OUT_DIR"), "/kestrel.h"));
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/include/kestrel.h");
    let committed = std::fs::read_to_string(path).expect("capi/include/kestrel.h");
    assert!(
        committed == fresh,
        "capi/include/kestrel.h is stale: build kestrel-capi outside CI (or run \
         `cargo build -p kestrel-capi`) and commit the regenerated header"
    );
    for item in [
        "kestrel_init",
        "kestrel_run_pixels",
        "kestrel_run_f32",
        "KESTREL_HANDLE_SIZE",
    ] {
        assert!(fresh.contains(item), "{item} missing from the header");
    }
}
