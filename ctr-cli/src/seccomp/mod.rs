//! Seccomp and the security options that decide it (`--security-opt`,
//! `--privileged`).
//!
//! `ctr run` turns the profile (ctr's default, in docker's JSON format and
//! embedded from `default.json`, or the user's file) and the container's
//! capability set into one classic BPF program, before anything starts, so
//! that a bad profile is an error of `ctr run` (exit 125). The program
//! travels in the init spec and is kept in the container's state directory
//! for `ctr exec`; `ctr init` loads it as its very last step before execve,
//! after no_new_privs (set by the helper) and every other setup step.
//!
//! Compiling docker's profile with libseccomp costs tens of milliseconds
//! (most of it in libseccomp's BPF generation), more than the rest of a
//! container start, so the program is cached in the user's runtime
//! directory, keyed by everything it depends on ([`cache_key`]).
//!
//! Every container gets a filter: with `seccomp=unconfined` or
//! `--privileged` it holds only ctr's ioctl guard (TIOCSTI and TIOCLINUX
//! return EPERM, see [`bpf`]), which no legitimate program needs and which
//! keeps a container from typing into a terminal it shares.
//!
//! The filter protects the host's kernel from the container's processes
//! (a hostile image); it is no boundary against the user who starts the
//! container, who could run the same programs unfiltered anyway.

mod bpf;
mod compile;
mod profile;

pub use compile::CompileError;
pub use profile::ProfileError;

use crate::error::{IoContext, IoError};
use crate::spec::UnknownCapability;

/// Why a container's seccomp filter could not be decided or loaded.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// A `--security-opt` or `--privileged` combination ctr cannot honour;
    /// the message says what to change.
    #[error("{0}")]
    Option(String),
    #[error(transparent)]
    Capability(#[from] UnknownCapability),
    /// The profile does not parse; `label` names it.
    #[error("{label}")]
    Profile { label: String, source: ProfileError },
    #[error("{label}")]
    Compile { label: String, source: CompileError },
    #[error("cannot read the kernel version {0:?}")]
    KernelVersion(String),
    #[error("the seccomp filter from ctr is malformed")]
    Malformed,
    #[error(transparent)]
    Io(#[from] IoError),
}

type Result<T, E = SeccompError> = std::result::Result<T, E>;

/// Refuses an option with a message that says what to do.
macro_rules! refuse {
    ($($arg:tt)*) => {
        return Err(SeccompError::Option(format!($($arg)*)))
    };
}
use profile::{Profile, Target};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// ctr's default profile: docker's default syscall lists and capability
/// groups, as our own data in docker's format.
pub const DEFAULT_PROFILE: &[u8] = include_bytes!("default.json");

/// Where a running container's compiled filter is kept, for `ctr exec`.
const PROGRAM_FILE: &str = "seccomp.bpf";

/// Which filter a container runs under, as recorded and as `ctr inspect`
/// shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "Profile")]
pub enum SeccompChoice {
    /// ctr's default profile (docker's).
    #[default]
    #[serde(rename = "default")]
    Default,
    /// No profile (`seccomp=unconfined`, `--privileged`): the ioctl guard only.
    #[serde(rename = "unconfined")]
    Unconfined,
    /// The user's profile file, as read when the container was created.
    #[serde(rename = "file")]
    File {
        #[serde(rename = "Path")]
        path: PathBuf,
        #[serde(rename = "Sha256")]
        sha256: String,
    },
}

/// A container's security options, recorded in its state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityConfig {
    /// `--security-opt` as given.
    pub security_opt: Vec<String>,
    pub privileged: bool,
    pub seccomp: SeccompChoice,
    /// `--privileged` or `systempaths=unconfined`: docker's masked and
    /// read-only /proc and /sys paths are left as they are.
    pub system_paths_unconfined: bool,
}

impl SecurityConfig {
    /// Docker's `HostConfig.SecurityOpt`, `HostConfig.Privileged`, and a
    /// `Seccomp` object saying which filter is in force.
    pub fn inspect_json(&self) -> (serde_json::Value, serde_json::Value) {
        let host = serde_json::json!({ "SecurityOpt": self.security_opt, "Privileged": self.privileged, "NoNewPrivileges": true });
        let mut seccomp = serde_json::to_value(&self.seccomp).unwrap_or_default();
        seccomp["IoctlGuard"] = serde_json::json!(["TIOCSTI", "TIOCLINUX"]);
        (host, seccomp)
    }
}

/// `ctr run`'s security options, as given.
#[derive(Debug, Clone, Default)]
pub struct SecurityOptions {
    /// seccomp=PROFILE.json (docker's format), seccomp=unconfined,
    /// no-new-privileges[=true] (always on in ctr), systempaths=unconfined.
    pub security_opt: Vec<String>,
    /// Every capability inside the container's user namespace, no seccomp
    /// profile, no masked /proc and /sys paths.
    pub privileged: bool,
}

/// What the security flags resolve to for one container.
pub struct Resolved {
    pub config: SecurityConfig,
    /// The capability set, as `CAP_*` names.
    pub capabilities: Vec<String>,
    /// The BPF program `ctr init` loads.
    pub program: Vec<u8>,
}

impl SecurityOptions {
    /// Parses the options, reads and compiles the profile. Every option
    /// ctr cannot honour is an error, never ignored.
    pub fn resolve(&self, cache: &Path, cap_add: &[String], cap_drop: &[String]) -> Result<Resolved> {
        let mut seccomp_opt: Option<&str> = None;
        let mut system_paths_unconfined = self.privileged;
        for opt in &self.security_opt {
            // Docker also takes the older `key:value`.
            let (key, value) = opt.split_once(['=', ':']).map_or((opt.as_str(), None), |(k, v)| (k, Some(v)));
            match (key, value) {
                ("seccomp", Some(v)) if !v.is_empty() => {
                    if seccomp_opt.replace(v).is_some() {
                        refuse!("--security-opt seccomp is given twice: give one profile");
                    }
                }
                ("no-new-privileges", None | Some("true")) => {}
                ("no-new-privileges", Some("false")) => refuse!(
                    "--security-opt no-new-privileges=false: ctr always runs containers with no_new_privs (the helper sets it \
before ctr init runs, and the kernel cannot clear it); drop the option"
                ),
                ("systempaths", Some("unconfined")) => system_paths_unconfined = true,
                ("apparmor" | "label", _) => {
                    refuse!("--security-opt {opt}: ctr does not use AppArmor or SELinux labels; drop the option")
                }
                _ => refuse!(
                    "--security-opt {opt:?} is not supported: ctr knows seccomp=PROFILE.json|unconfined, no-new-privileges[=true] \
and systempaths=unconfined"
                ),
            }
        }
        let capabilities = if self.privileged {
            let all: Vec<String> = std::iter::once("ALL".to_owned()).chain(cap_add.iter().cloned()).collect();
            crate::spec::capability_set(&all, cap_drop)?
        } else {
            crate::spec::capability_set(cap_add, cap_drop)?
        };
        let seccomp = match seccomp_opt {
            None if self.privileged => SeccompChoice::Unconfined,
            None => SeccompChoice::Default,
            Some("unconfined") => SeccompChoice::Unconfined,
            Some(_) if self.privileged => {
                refuse!("--privileged runs without a seccomp profile: drop --security-opt seccomp=..., or --privileged")
            }
            Some(path) => SeccompChoice::File { path: PathBuf::from(path), sha256: String::new() },
        };
        let (seccomp, program) = crate::timing::time("seccomp.compile", || build(seccomp, &capabilities, cache))?;
        let config = SecurityConfig {
            security_opt: self.security_opt.clone(),
            privileged: self.privileged,
            seccomp,
            system_paths_unconfined,
        };
        Ok(Resolved { config, capabilities, program })
    }
}

/// Compiles the chosen filter, or finds it compiled in `cache`; for a
/// file, records its absolute path and the sha256 of what was read.
fn build(choice: SeccompChoice, capabilities: &[String], cache: &Path) -> Result<(SeccompChoice, Vec<u8>)> {
    let (choice, text) = match choice {
        SeccompChoice::Unconfined => return Ok((choice, bpf::to_bytes(&compile::guard_only()))),
        SeccompChoice::Default => (choice, DEFAULT_PROFILE.to_vec()),
        SeccompChoice::File { path, .. } => {
            let text = std::fs::read(&path)
                .with_io_context(|| format!("--security-opt seccomp={}: read the profile", path.display()))?;
            let path = std::fs::canonicalize(&path).unwrap_or(path);
            (SeccompChoice::File { sha256: hex(&Sha256::digest(&text)), path }, text)
        }
    };
    let label = match &choice {
        SeccompChoice::File { path, .. } => format!("--security-opt seccomp={}", path.display()),
        _ => "the default seccomp profile".to_owned(),
    };
    let uname = nix::sys::utsname::uname().io_context("uname")?;
    let release = uname.release().to_string_lossy();
    let kernel =
        profile::parse_kernel_version(&release).ok_or_else(|| SeccompError::KernelVersion(release.to_string()))?;
    let cached = cache.join(format!("{}.bpf", cache_key(&text, capabilities, kernel)));
    if let Some(program) = std::fs::read(&cached)
        .ok()
        .filter(|p| bpf::from_bytes(p).is_some_and(|i| !i.is_empty() && i.len() <= bpf::MAX_INSNS))
    {
        return Ok((choice, program));
    }
    let profile = Profile::parse(&text).map_err(|source| SeccompError::Profile { label: label.clone(), source })?;
    let target = Target { capabilities, arch: profile::native_arch_name(), kernel };
    let program =
        bpf::to_bytes(&compile::compile(&profile, &target).map_err(|source| SeccompError::Compile { label, source })?);
    // A cache that cannot be written costs the next start time, nothing else.
    let _ = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(cache)
        .io_context("create the seccomp cache")
        .and_then(|()| write_replacing(&cached, &program));
    Ok((choice, program))
}

/// Everything a compiled program depends on: the profile's bytes, the
/// capability set, the kernel version (minKernel), libseccomp's version
/// (its syscall tables) and this very ctr binary (ctr's prefix), through
/// the identity of its file, so that an upgrade never reuses a stale one.
fn cache_key(profile: &[u8], capabilities: &[String], kernel: (u32, u32)) -> String {
    let exe = std::fs::metadata("/proc/self/exe")
        .map(|m| format!("{}:{}:{}:{}", m.dev(), m.ino(), m.size(), m.mtime_nsec() + m.mtime() * 1_000_000_000))
        .unwrap_or_default();
    let lib =
        libseccomp::ScmpVersion::current().map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro)).unwrap_or_default();
    let mut hash = Sha256::new();
    for part in [
        exe.as_str(),
        lib.as_str(),
        profile::native_arch_name(),
        &format!("{}.{}", kernel.0, kernel.1),
        &capabilities.join(","),
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hash.update(profile);
    hex(&hash.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compiles the `linux.seccomp` object of an OCI runtime spec (`ctr-oci`):
/// its fields are docker's profile format less `includes`/`excludes`, so
/// the same strict parser and libseccomp compiler serve it, with ctr's
/// prefix (ENOSYS past the profile's syscalls, the TIOCSTI/TIOCLINUX guard).
pub fn compile_oci(json: &[u8]) -> Result<Vec<u8>> {
    let label = "linux.seccomp in config.json";
    let uname = nix::sys::utsname::uname().io_context("uname")?;
    let release = uname.release().to_string_lossy();
    let kernel =
        profile::parse_kernel_version(&release).ok_or_else(|| SeccompError::KernelVersion(release.to_string()))?;
    let profile = Profile::parse(json).map_err(|source| SeccompError::Profile { label: label.into(), source })?;
    let target = Target { capabilities: &[], arch: profile::native_arch_name(), kernel };
    let program =
        compile::compile(&profile, &target).map_err(|source| SeccompError::Compile { label: label.into(), source })?;
    Ok(bpf::to_bytes(&program))
}

/// Keeps the container's program for `ctr exec`.
pub fn save_program(state_dir: &Path, program: &[u8]) -> Result<(), IoError> {
    write_replacing(&state_dir.join(PROGRAM_FILE), program)
}

/// Write beside, then rename: readers see the old file or the whole new
/// one. No fsync: both files live in the runtime directory and describe
/// containers that a crash ends anyway, and two fsyncs cost a container
/// start more than compiling the profile does.
fn write_replacing(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    ctr_core::fs::replace(&tmp, path, bytes, false).with_io_context(|| format!("write {}", path.display()))
}

/// The program `ctr exec` loads: the container's, or none for a container
/// started by a ctr without seccomp.
pub fn program_for_exec(state_dir: &Path, config: Option<&SecurityConfig>) -> Result<Option<Vec<u8>>, IoError> {
    if config.is_none() {
        return Ok(None);
    }
    let path = state_dir.join(PROGRAM_FILE);
    let program =
        std::fs::read(&path).with_io_context(|| format!("read the container's seccomp filter {}", path.display()))?;
    Ok(Some(program))
}

/// `ctr init`, just before execve: installs `program` for this thread,
/// which becomes the whole process at exec. no_new_privs is set already
/// (by the helper), which is what lets an unprivileged process do this.
pub fn load(program: &[u8]) -> Result<()> {
    let filter = instructions(program)?;
    Ok(install(&filter).io_context("load the seccomp filter (seccomp(2) SECCOMP_SET_MODE_FILTER)")?)
}

fn instructions(program: &[u8]) -> Result<Vec<libc::sock_filter>> {
    let insns = bpf::from_bytes(program)
        .filter(|p| !p.is_empty() && p.len() <= bpf::MAX_INSNS)
        .ok_or(SeccompError::Malformed)?;
    Ok(insns.iter().map(|i| libc::sock_filter { code: i.code, jt: i.jt, jf: i.jf, k: i.k }).collect())
}

/// The system call alone: it allocates nothing, so a test may call it in
/// a forked child.
fn install(filter: &[libc::sock_filter]) -> nix::Result<()> {
    let len = u16::try_from(filter.len()).map_err(|_| nix::errno::Errno::E2BIG)?;
    let prog = libc::sock_fprog { len, filter: filter.as_ptr().cast_mut() };
    // SAFETY: `prog` points at `filter`, a live array of `len`
    // instructions; the kernel copies it and keeps no pointer.
    let rc = unsafe {
        libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0u32, &prog as *const libc::sock_fprog)
    };
    nix::errno::Errno::result(rc).map(drop)
}

/// `ctr info`: what this host offers.
pub fn info() -> String {
    let version = libseccomp::ScmpVersion::current()
        .map(|v| format!("libseccomp {}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_else(|e| format!("libseccomp unavailable ({e})"));
    let kernel = match std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail") {
        Ok(actions) if actions.contains("errno") => "kernel filter mode: yes".to_owned(),
        Ok(_) => "kernel filter mode: without the errno action".to_owned(),
        Err(_) => "kernel filter mode: unknown (no /proc/sys/kernel/seccomp)".to_owned(),
    };
    let syscalls = Profile::parse(DEFAULT_PROFILE).map(|p| p.all_names().len()).unwrap_or(0);
    format!(
        "{version}, {kernel}; default profile: docker's ({syscalls} syscall names, sha256 {}), plus EPERM for ioctl TIOCSTI/TIOCLINUX in every container",
        &hex(&Sha256::digest(DEFAULT_PROFILE))[..12]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(opts: &[&str], privileged: bool) -> SecurityOptions {
        SecurityOptions { security_opt: opts.iter().map(|s| s.to_string()).collect(), privileged }
    }

    #[test]
    fn options_resolve_or_are_refused() {
        let cache = tempfile::tempdir().unwrap();
        let r = args(&[], false).resolve(cache.path(), &[], &[]).unwrap();
        assert_eq!(r.config.seccomp, SeccompChoice::Default);
        assert_eq!(r.capabilities.len(), 14);
        assert!(!r.config.system_paths_unconfined);
        let r = args(&["seccomp=unconfined", "no-new-privileges"], false).resolve(cache.path(), &[], &[]).unwrap();
        assert_eq!(r.config.seccomp, SeccompChoice::Unconfined);
        let r = args(&[], true).resolve(cache.path(), &[], &["NET_RAW".into()]).unwrap();
        assert_eq!((r.config.seccomp, r.config.system_paths_unconfined), (SeccompChoice::Unconfined, true));
        assert!(
            r.capabilities.contains(&"CAP_SYS_ADMIN".to_owned()) && !r.capabilities.contains(&"CAP_NET_RAW".to_owned())
        );
        for (opts, privileged, needle) in [
            (&["no-new-privileges=false"][..], false, "always runs containers with no_new_privs"),
            (&["apparmor=unconfined"][..], false, "AppArmor"),
            (&["seccomp"][..], false, "not supported"),
            (&["seccomp=a.json", "seccomp=b.json"][..], false, "twice"),
            (&["seccomp=/x.json"][..], true, "--privileged runs without"),
            (&["seccomp=/nonexistent/profile.json"][..], false, "read the profile"),
        ] {
            let err = crate::error::chain(&args(opts, privileged).resolve(cache.path(), &[], &[]).err().unwrap());
            assert!(err.contains(needle), "{opts:?}: {err}");
        }
    }

    #[test]
    fn a_profile_file_is_recorded_with_its_hash() {
        let cache = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::fs::write(
            &path,
            br#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#,
        )
        .unwrap();
        let r = args(&[&format!("seccomp={}", path.display())], false).resolve(cache.path(), &[], &[]).unwrap();
        let SeccompChoice::File { path: recorded, sha256 } = &r.config.seccomp else { panic!() };
        assert_eq!(recorded, &path);
        assert_eq!(sha256.len(), 64);
        std::fs::write(&path, b"{").unwrap();
        let err = crate::error::chain(
            &args(&[&format!("seccomp={}", path.display())], false).resolve(cache.path(), &[], &[]).err().unwrap(),
        );
        assert!(err.contains("docker's format") && err.contains("p.json"), "{err}");
    }

    #[test]
    fn a_compiled_profile_is_cached_and_a_damaged_cache_ignored() {
        let cache = tempfile::tempdir().unwrap();
        let first = args(&[], false).resolve(cache.path(), &[], &[]).unwrap().program;
        let files: Vec<_> = std::fs::read_dir(cache.path()).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1);
        assert_eq!(std::fs::read(&files[0]).unwrap(), first);
        assert_eq!(args(&[], false).resolve(cache.path(), &[], &[]).unwrap().program, first);
        let admin = args(&[], false).resolve(cache.path(), &["SYS_ADMIN".into()], &[]).unwrap().program;
        assert_ne!(admin, first, "the capability set is part of the key");
        std::fs::write(&files[0], b"short").unwrap();
        assert_eq!(args(&[], false).resolve(cache.path(), &[], &[]).unwrap().program, first);
    }

    #[test]
    fn inspect_shows_the_profile() {
        let config = SecurityConfig {
            seccomp: SeccompChoice::File { path: "/p.json".into(), sha256: "ab".into() },
            ..SecurityConfig::default()
        };
        let (_, seccomp) = config.inspect_json();
        assert_eq!(seccomp["Profile"], "file");
        assert_eq!(seccomp["Path"], "/p.json");
        let (_, seccomp) = SecurityConfig::default().inspect_json();
        assert_eq!(seccomp["Profile"], "default");
    }

    /// Loads the default filter in a forked child and checks what the
    /// kernel then answers: the real kernel, not the interpreter.
    #[test]
    fn the_kernel_enforces_the_default_filter() {
        let cache = tempfile::tempdir().unwrap();
        let r = args(&[], false).resolve(cache.path(), &[], &[]).unwrap();
        let filter = instructions(&r.program).unwrap();
        // SAFETY: the child allocates nothing: it makes raw syscalls and
        // leaves with _exit.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let code = (|| {
                    nix::sys::prctl::set_no_new_privs().ok()?;
                    install(&filter).ok()?;
                    // SAFETY: syscalls with integer arguments only.
                    let errno = |rc: libc::c_long| {
                        if rc == -1 {
                            std::io::Error::last_os_error().raw_os_error()
                        } else {
                            Some(0)
                        }
                    };
                    // SAFETY: as above.
                    let keyctl = errno(unsafe { libc::syscall(libc::SYS_keyctl, 0, 0, 0, 0, 0) });
                    // SAFETY: as above.
                    let unknown = errno(unsafe { libc::syscall(1000, 0, 0, 0, 0, 0) });
                    // SAFETY: as above.
                    let unshare = errno(unsafe { libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER) });
                    // SAFETY: as above; TIOCSTI on an invalid fd would be EBADF without the filter.
                    let tiocsti = errno(unsafe { libc::syscall(libc::SYS_ioctl, -1, libc::TIOCSTI, 0) });
                    (keyctl == Some(libc::EPERM)
                        && unknown == Some(libc::ENOSYS)
                        && unshare == Some(libc::EPERM)
                        && tiocsti == Some(libc::EPERM))
                    .then_some(0)
                })()
                .unwrap_or(1);
                // SAFETY: ends the forked child without running the parent's destructors.
                unsafe { libc::_exit(code) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }
}
