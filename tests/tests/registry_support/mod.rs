//! Debian's docker-registry, started by a test on a free loopback port of
//! the test's network namespace, with its own storage (and, if asked, one
//! htpasswd user or https), stopped and removed when dropped. The one
//! registry harness: the image, push, login and TLS tests all use it.

use ctr_tests::Env;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Registry {
    child: Child,
    dir: PathBuf,
    /// `127.0.0.1:PORT`.
    pub address: String,
}

/// The one user of [`Registry::with_user`] and its bcrypt hash (cost 5).
#[allow(dead_code)]
pub const USER: &str = "habit";
#[allow(dead_code)]
pub const PASSWORD: &str = "s3cret-habit";
const HASH: &str = "$2b$05$IvRpA/SBAgQ2t6RnPkyfceGT95JmKLnfaKw30FAIzX0izMSr4YczS";

impl Registry {
    /// An open registry; None (the test skips) without docker-registry
    /// outside CI.
    #[allow(dead_code)]
    pub fn start(env: &Env) -> Option<Registry> {
        Self::launch(env, false, None)
    }

    /// A registry that wants [`USER`] and [`PASSWORD`] (HTTP basic auth).
    #[allow(dead_code)]
    pub fn with_user(env: &Env) -> Option<Registry> {
        Self::launch(env, true, None)
    }

    /// An open registry serving https on `tls.ip` with `tls.cert` and `tls.key`.
    #[allow(dead_code)]
    pub fn with_tls(env: &Env, tls: &Tls) -> Option<Registry> {
        Self::launch(env, false, Some(tls))
    }

    fn launch(env: &Env, auth: bool, tls: Option<&Tls>) -> Option<Registry> {
        if !std::path::Path::new("/usr/bin/docker-registry").exists() {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "CI needs Debian's docker-registry package");
            eprintln!("skipped: /usr/bin/docker-registry is missing (Debian package docker-registry)");
            return None;
        }
        // Picked by binding port 0; docker-registry binds it again below.
        let ip = tls.map_or(Ipv4Addr::LOCALHOST, |tls| tls.ip);
        let port = TcpListener::bind((ip, 0)).unwrap().local_addr().unwrap().port();
        let dir = env.work.join(format!("registry-{}", ctr_tests::unique_name("")));
        std::fs::create_dir_all(dir.join("storage")).unwrap();
        let address = format!("{ip}:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\n",
            dir.join("storage").display()
        );
        if let Some(tls) = tls {
            config += &format!("  tls:\n    certificate: {}\n    key: {}\n", tls.cert.display(), tls.key.display());
        }
        if auth {
            std::fs::write(dir.join("htpasswd"), format!("{USER}:{HASH}\n")).unwrap();
            config +=
                &format!("auth:\n  htpasswd:\n    realm: ctr-test\n    path: {}\n", dir.join("htpasswd").display());
        }
        std::fs::write(dir.join("config.yml"), config).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("log")).unwrap())
            .spawn()
            .unwrap();
        let registry = Registry { child, dir, address };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&registry.address).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on {} within 20s: {}",
                registry.address,
                std::fs::read_to_string(registry.dir.join("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(registry)
    }

    /// Pushes the OCI layout's `LAYOUT:TAG` as `REPOSITORY:TAG` with skopeo
    /// (an open registry over http).
    #[allow(dead_code)]
    pub fn push_layout(&self, layout: &std::path::Path, tag: &str, repository: &str) {
        let out = Command::new("skopeo")
            .args(["copy", "--insecure-policy", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{repository}:{tag}", self.address))
            .stdin(Stdio::null())
            .output()
            .expect("cannot run skopeo");
        assert!(out.status.success(), "skopeo copy failed: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// Where and with what a registry serves https.
#[allow(dead_code)]
pub struct Tls {
    pub ip: Ipv4Addr,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
