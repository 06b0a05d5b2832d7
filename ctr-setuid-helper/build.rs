//! Bakes the install prefix into the helper, so that its config path and the
//! init binary it executes are fixed at build time and never come from the
//! caller's environment or arguments.

fn main() {
    println!("cargo:rerun-if-env-changed=CTR_PREFIX");
    let prefix = std::env::var("CTR_PREFIX").unwrap_or_else(|_| "/usr/local".to_owned());
    assert!(
        prefix.starts_with('/') && !prefix.split('/').any(|c| c == ".." || c == "."),
        "CTR_PREFIX must be an absolute path without . or .. components, got {prefix:?}"
    );
    println!("cargo:rustc-env=CTR_BAKED_PREFIX={}", prefix.trim_end_matches('/'));
}
