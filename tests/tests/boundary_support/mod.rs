//! Shared by the container-boundary tests (cve.rs, boundary.rs): a hostile
//! C program built static at test time (so that it runs in any image) and
//! bound into containers, host directories owned by the test user, and
//! containers removed even when a test fails.

#![allow(dead_code)] // each test binary uses a different part

use ctr_tests::Env;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/boundary_support/attacker.c");

/// The attacker program, built once per test binary; root-owned, 0755.
pub fn attacker(env: &Env) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = env.work.join(format!("attacker-{}", std::process::id()));
            let status = std::process::Command::new("gcc")
                .args(["-static", "-O2", "-Wall", "-o"])
                .arg(&out)
                .arg(SOURCE)
                .status()
                .expect("gcc is installed");
            assert!(status.success(), "gcc -static {SOURCE} failed");
            out
        })
        .clone()
}

/// `-v ATTACKER:/attacker:ro`.
pub fn attacker_volume(env: &Env) -> String {
    format!("{}:/attacker:ro", attacker(env).display())
}

/// A directory in the work area, owned by the test user; removed on drop.
pub struct HostDir(pub PathBuf);

impl HostDir {
    pub fn new(env: &Env, tag: &str) -> Self {
        let path = env.work.join(format!("bnd-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).unwrap();
        nix::unistd::chown(&path, Some(env.uid.into()), Some(env.gid.into())).unwrap();
        Self(path)
    }

    /// A file or directory (content `None`) inside, owned by the test user.
    pub fn make(&self, env: &Env, name: &str, content: Option<&str>) -> PathBuf {
        let path = self.0.join(name);
        match content {
            Some(c) => std::fs::write(&path, c).unwrap(),
            None => std::fs::create_dir(&path).unwrap(),
        }
        nix::unistd::chown(&path, Some(env.uid.into()), Some(env.gid.into())).unwrap();
        path
    }

    pub fn link(&self, env: &Env, name: &str, to: &Path) -> PathBuf {
        let path = self.0.join(name);
        std::os::unix::fs::symlink(to, &path).unwrap();
        std::os::unix::fs::lchown(&path, Some(env.uid), Some(env.gid)).unwrap();
        path
    }
}

impl Drop for HostDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Containers named by the test, removed on drop.
pub struct Containers<'a> {
    env: &'a Env,
    names: Vec<String>,
}

impl<'a> Containers<'a> {
    pub fn new(env: &'a Env) -> Self {
        Self { env, names: Vec::new() }
    }

    pub fn name(&mut self, tag: &str) -> String {
        let name = format!("bnd-{tag}-{}", std::process::id());
        let _ = self.env.ctr().args(["rm", "-f", &name]).output();
        self.names.push(name.clone());
        name
    }
}

impl Drop for Containers<'_> {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = self.env.ctr().args(["rm", "-f", n]).output();
        }
    }
}

/// An Alpine rootfs unpacked into a host directory of the test user, for
/// `--rootfs` (an image with hostile content).
pub fn alpine_rootfs(env: &Env, tag: &str) -> HostDir {
    let root = HostDir::new(env, tag);
    env.as_user("tar", ["-xzf", env.alpine.to_str().unwrap(), "-C", root.0.to_str().unwrap()]).ok();
    root
}
