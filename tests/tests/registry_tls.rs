//! Pulls and pushes trust the system's CA store (issue 14, item 4). A
//! registry serves https with a certificate from a CA the test makes; ctr
//! refuses it until that CA is in the store the system's TLS clients read
//! (`SSL_CERT_FILE`, which OpenSSL and rustls-native-certs both honour;
//! `/etc/ssl/certs` otherwise). Registries on loopback addresses are plain
//! http, so the registry listens on a benchmarking-range address that the
//! test adds to the loopback link of its own network namespace.

mod registry_support;

use ctr_tests::{env, unique_name};
use registry_support::{Registry, Tls};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A benchmarking-range address, on no bridge that ctr makes.
const REGISTRY_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 99, 1);

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// `ip/32` on the test namespace's loopback link, removed when dropped
/// (the kernel here has no dummy links).
struct LoopbackAddress(String);

impl LoopbackAddress {
    fn add(ip: Ipv4Addr) -> LoopbackAddress {
        let address = LoopbackAddress(format!("{ip}/32"));
        // What a killed run left would make the add fail.
        let _ = Command::new("ip").args(["addr", "del", &address.0, "dev", "lo"]).output();
        run("ip", &["addr", "add", &address.0, "dev", "lo"]);
        address
    }
}

impl Drop for LoopbackAddress {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["addr", "del", &self.0, "dev", "lo"]).status();
    }
}

/// A CA, and a server certificate it signed for `ip`: (the CA's PEM, the server's files).
fn make_certificates(dir: &Path, ip: Ipv4Addr) -> (PathBuf, Tls) {
    std::fs::create_dir_all(dir).unwrap();
    let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=ctr test CA"];
    ca.extend(ec);
    let (ca_key, ca_pem) = (path("ca.key"), path("ca.pem"));
    ca.extend(["-keyout", &ca_key, "-out", &ca_pem]);
    ca.extend(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"]);
    run("openssl", &ca);
    let (key, csr, cert, ext) = (path("server.key"), path("server.csr"), path("server.pem"), path("server.ext"));
    let mut request = vec!["req", "-subj", "/CN=ctr test registry", "-keyout", &key, "-out", &csr];
    request.extend(ec);
    run("openssl", &request);
    std::fs::write(&ext, format!("subjectAltName=IP:{ip}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"))
        .unwrap();
    let sign = ["x509", "-req", "-days", "2", "-in", &csr, "-CA", &ca_pem, "-CAkey", &ca_key];
    run("openssl", &[&sign[..], &["-CAcreateserial", "-extfile", &ext, "-out", &cert]].concat());
    (PathBuf::from(ca_pem), Tls { ip, cert: cert.into(), key: key.into() })
}

#[test]
fn pulls_and_pushes_trust_the_system_ca_store_and_only_it() {
    let Some(env) = env() else { return };
    env.ensure_alpine_image("alpine");
    let _address = LoopbackAddress::add(REGISTRY_IP);
    let dir = env.work.join(unique_name("tls"));
    let (ca, tls) = make_certificates(&dir, REGISTRY_IP);
    let Some(registry) = Registry::with_tls(&env, &tls) else { return };
    let remote = format!("{}/ctrtest/{}:v1", registry.address, unique_name("tls"));

    let untrusted = env.ctr().args(["push", "alpine", &remote]).output();
    assert!(!untrusted.success(), "pushed to a registry whose CA is not in the store: {}", untrusted.stderr);
    assert!(untrusted.stderr.to_lowercase().contains("certificate"), "{}", untrusted.stderr);

    let pushed = env.ctr().env("SSL_CERT_FILE", &ca).args(["push", "alpine", &remote]).ok();
    assert!(pushed.stderr.contains("v1: digest: sha256:"), "{}", pushed.stderr);
    let untrusted = env.ctr().args(["pull", &remote]).output();
    assert!(!untrusted.success(), "pulled from a registry whose CA is not in the store: {}", untrusted.stderr);
    env.ctr().env("SSL_CERT_FILE", &ca).args(["pull", &remote]).ok();
    let run = env.ctr().args(["run", "--rm", "--network", "none", &remote, "echo", "over tls"]).ok();
    assert_eq!(run.stdout, "over tls\n");
    env.ctr().args(["rmi", &remote]).ok();
    let _ = std::fs::remove_dir_all(&dir);
}
