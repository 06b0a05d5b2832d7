//! Turns `CTR_NET_ROOT_TESTS=1` into the cfg `ctr_net_root_tests`, so the
//! tests that need root and nftables are `#[ignore]`d, visibly, without it.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(ctr_net_root_tests)");
    println!("cargo::rerun-if-env-changed=CTR_NET_ROOT_TESTS");
    if std::env::var_os("CTR_NET_ROOT_TESTS").is_some_and(|v| v == "1") {
        println!("cargo::rustc-cfg=ctr_net_root_tests");
    }
}
