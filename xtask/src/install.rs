//! `cargo xtask install`: builds ctr and its setuid helper for a prefix and
//! installs them with the right owners and modes, the helper's config, the
//! built-in busybox image, shell completions and man pages. Every file is replaced by rename, so a running
//! old binary is never disturbed and a rerun changes nothing.

use crate::{busybox_image, host, subid};
use anyhow::{bail, Context, Result};
use nix::sys::statvfs::{statvfs, FsFlags};
use nix::unistd::User;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the helper needs in `--mode caps`: setuid/setgid to write id maps
/// for ids other than the caller's and to change its ids, sys_admin to
/// clone namespaces and enter a container's network namespace,
/// dac_override for cgroupfs writes and /proc/PID/uid_map files, kill to
/// clean up the processes left in a container's cgroup, sys_nice to move a
/// process of another uid into a v1 cpuset cgroup, net_admin for the
/// bridge, veths and nftables. Nearly root, as bubblewrap's maintainers
/// observed of their own capability mode: it is offered, not recommended.
pub const HELPER_CAPS: &str =
    "cap_setuid,cap_setgid,cap_sys_admin,cap_dac_override,cap_kill,cap_sys_nice,cap_net_admin+ep";

/// Written only when no config exists, and removed on uninstall only if unchanged.
pub const DEFAULT_CONFIG: &str = "\
# ctr-setuid-helper configuration. Must be owned by root and not writable by group or others.
# Where container cgroups are created in each hierarchy: an absolute path, or \"self\" to nest
# beneath the caller's own cgroup (used by tests and CI).
cgroup_parent = \"/ctr\"
";

/// Debian's package of shadow's setuid `newuidmap` and `newgidmap`.
pub const UIDMAP_PACKAGE: &str = "uidmap";

/// How the helper gets its privilege.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Owned by root with the setuid bit (4755).
    Setuid,
    /// Mode 0755 with the file capabilities in [`HELPER_CAPS`] (needs setcap).
    Caps,
}

/// Where everything goes beneath a prefix. The paths match what ctr-cli
/// (`paths.rs`) and the helper (its build-time `CTR_PREFIX`) expect.
#[derive(Debug, Clone)]
pub struct Layout {
    pub prefix: PathBuf,
}

impl Layout {
    pub fn new(prefix: &Path) -> Result<Self> {
        let prefix = std::path::absolute(prefix).with_context(|| format!("bad prefix {}", prefix.display()))?;
        Ok(Self { prefix })
    }
    pub fn ctr(&self) -> PathBuf {
        self.prefix.join("bin/ctr")
    }
    /// The OCI runtime (runc's command line), beside `ctr`; not setuid.
    pub fn ctr_oci(&self) -> PathBuf {
        self.prefix.join("bin/ctr-oci")
    }
    pub fn helper(&self) -> PathBuf {
        self.prefix.join("libexec/ctr/ctr-setuid-helper")
    }
    /// The container's init, which the helper executes (its path is baked
    /// into the helper); not setuid.
    pub fn init(&self) -> PathBuf {
        self.prefix.join("libexec/ctr/ctr-init")
    }
    pub fn config(&self) -> PathBuf {
        self.prefix.join("etc/ctr/helper.toml")
    }
    pub fn images(&self) -> PathBuf {
        self.prefix.join("share/ctr/images")
    }
    /// Where `man` finds ctr's pages beneath the prefix.
    pub fn man_pages(&self) -> PathBuf {
        self.prefix.join("share/man/man1")
    }
    /// Each shell's completion file, where the shell looks beneath a prefix.
    pub fn completions(&self) -> [(&'static str, PathBuf); 3] {
        [
            ("bash", self.prefix.join("share/bash-completion/completions/ctr")),
            ("zsh", self.prefix.join("share/zsh/site-functions/_ctr")),
            ("fish", self.prefix.join("share/fish/vendor_completions.d/ctr.fish")),
        ]
    }
}

/// `cargo xtask install`.
pub fn run(prefix: &Path, mode: Mode, uninstall: bool) -> Result<()> {
    host::require_root("install")?;
    let layout = Layout::new(prefix)?;
    if uninstall {
        return self::uninstall(&layout);
    }
    install_into(&layout, mode)?;
    give_sudo_user_ranges()?;
    println!("installed ctr into {} (helper: {mode:?})", layout.prefix.display());
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(warning) = other_ctr_warning(&path, &layout.ctr(), |p| p.is_file()) {
        eprintln!("xtask: warning: {warning}");
    }
    Ok(())
}

/// When another `ctr` is on `path` (containerd's client installs
/// /usr/bin/ctr), which one the bare name runs and how to reach each.
fn other_ctr_warning(path: &std::ffi::OsStr, ours: &Path, is_file: impl Fn(&Path) -> bool) -> Option<String> {
    let on_path: Vec<PathBuf> = std::env::split_paths(path).map(|dir| dir.join("ctr")).filter(|p| is_file(p)).collect();
    let others: Vec<&PathBuf> = on_path.iter().filter(|p| p.as_path() != ours).collect();
    let first_other = others.first()?;
    let listed = others.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
    let ours_dir = ours.parent().unwrap_or(Path::new("/")).display();
    let runs = match on_path.first() {
        Some(first) if first == ours => format!("`ctr` runs this one ({} comes first on PATH)", ours_dir),
        _ => format!(
            "`ctr` runs {} (containerd's client, if it is /usr/bin/ctr); reach this one as {}, \
             or put {ours_dir} before it on PATH",
            first_other.display(),
            ours.display()
        ),
    };
    Some(format!("another `ctr` is on PATH: {listed}. {runs}; reach the other as {}", first_other.display()))
}

/// Builds and installs everything under `layout` (the test driver calls
/// this directly; it leaves /etc/subuid alone).
pub fn install_into(layout: &Layout, mode: Mode) -> Result<()> {
    if mode == Mode::Setuid {
        refuse_nosuid(&layout.prefix)?;
    }
    host::ensure_packages(&packages(mode))?;
    let built = build_release(&layout.prefix)?;
    install_binary(&built.ctr, &layout.ctr(), 0o755, None)?;
    install_binary(&built.ctr_oci, &layout.ctr_oci(), 0o755, None)?;
    install_binary(&built.init, &layout.init(), 0o755, None)?;
    match mode {
        Mode::Setuid => install_binary(&built.helper, &layout.helper(), 0o4755, None)?,
        Mode::Caps => install_binary(&built.helper, &layout.helper(), 0o755, Some(HELPER_CAPS))?,
    }
    write_default_config(&layout.config())?;
    install_completions_and_man_pages(&built.ctr, layout)?;
    busybox_image::install(&layout.images())
}

/// `ctr completion SHELL` for each shell and `ctr generate man`, from the
/// ctr just built.
fn install_completions_and_man_pages(ctr: &Path, layout: &Layout) -> Result<()> {
    for (shell, file) in layout.completions() {
        let script = host::stdout_of(Command::new(ctr).args(["completion", shell]))?;
        host::root_dir(file.parent().context("completion path has no directory")?, 0o755)?;
        host::write_root_file(&file, script.as_bytes(), 0o644)?;
    }
    let man = layout.man_pages();
    host::root_dir(&man, 0o755)?;
    host::run(Command::new(ctr).args(["generate", "man", "--dir"]).arg(&man).stdout(std::process::Stdio::null()))?;
    for page in ctr_man_pages(&man)? {
        host::set_owner_and_mode(&page, 0o644)?;
    }
    Ok(())
}

/// ctr's pages in `dir`: ctr.1 and ctr-*.1.
fn ctr_man_pages(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    let is_ours = |name: &str| name == "ctr.1" || (name.starts_with("ctr-") && name.ends_with(".1"));
    Ok(entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(is_ours))
        .collect())
}

/// The Debian packages ctr needs: nftables for NAT and published ports of
/// the bridge network; libseccomp for ctr's seccomp filters (headers to
/// build, library to run); uidmap for newuidmap and newgidmap, without
/// which image files lose their owners; ca-certificates, the system CA
/// store that pulls and pushes trust; setcap for the caps mode.
fn packages(mode: Mode) -> Vec<&'static str> {
    let mut packages =
        vec![busybox_image::PACKAGE, "nftables", "libseccomp-dev", "libseccomp2", UIDMAP_PACKAGE, "ca-certificates"];
    if mode == Mode::Caps {
        packages.push("libcap2-bin");
    }
    packages
}

/// A setuid bit on a nosuid mount is silently ignored: the helper would then
/// fail in confusing ways, so say so now.
fn refuse_nosuid(prefix: &Path) -> Result<()> {
    let existing = prefix.ancestors().find(|p| p.exists()).unwrap_or(Path::new("/"));
    let stat = statvfs(existing).with_context(|| format!("cannot statvfs {}", existing.display()))?;
    if stat.flags().contains(FsFlags::ST_NOSUID) {
        bail!(
            "{} is on a nosuid mount, so the helper's setuid bit would be ignored: choose another --prefix",
            prefix.display()
        );
    }
    Ok(())
}

struct Built {
    ctr: PathBuf,
    ctr_oci: PathBuf,
    init: PathBuf,
    helper: PathBuf,
}

/// Builds each binary in release mode with `CTR_PREFIX` set (the helper
/// bakes its config path and ctr-init's path in), linked statically:
/// glibc's static-pie and libseccomp's archive. A start then maps one file
/// and relocates no shared library, which on this machine takes 0.3-0.5 ms
/// off each program's start, and a container start or exec runs three of
/// them (ctr, the helper, ctr-init); the helper also leaves the dynamic
/// loader out of what runs setuid. Cargo has no per-binary link setting,
/// so each binary is its own `cargo rustc` with the flag for its final link
/// (the helper's dependencies are built with its own features only). The
/// binaries' paths come from cargo's JSON messages, so `CARGO_TARGET_DIR`
/// and friends are honoured.
fn build_release(prefix: &Path) -> Result<Built> {
    let seccomp_dir = static_library_dir("libseccomp.a")?;
    let build = |package: &str, binary: &str| -> Result<PathBuf> {
        let mut cmd = host::cargo();
        cmd.args(["rustc", "--release", "-p", package, "--bin", binary, "--message-format=json-render-diagnostics"])
            .args(["--", "-C", "target-feature=+crt-static"])
            .env("CTR_PREFIX", prefix)
            .env("LIBSECCOMP_LINK_TYPE", "static")
            .env("LIBSECCOMP_LIB_PATH", &seccomp_dir);
        let messages =
            host::stdout_streaming_stderr(&mut cmd).context("cannot build ctr: fix the build, then rerun")?;
        executable_from_messages(&messages, binary).with_context(|| format!("cargo built no `{binary}` binary"))
    };
    Ok(Built {
        ctr: build("ctr-cli", "ctr")?,
        ctr_oci: build("ctr-cli", "ctr-oci")?,
        init: build("ctr-cli", "ctr-init")?,
        helper: build("ctr-setuid-helper", "ctr-setuid-helper")?,
    })
}

/// The directory of a static library where the C compiler (cargo's linker)
/// finds it: libseccomp-dev puts its archive in the multiarch directory.
fn static_library_dir(file: &str) -> Result<PathBuf> {
    let out = host::stdout_of(Command::new("cc").arg(format!("-print-file-name={file}")))?;
    let path = PathBuf::from(out.trim());
    match path.parent() {
        Some(dir) if path.is_absolute() && path.is_file() => Ok(dir.to_path_buf()),
        _ => bail!("the C compiler finds no {file}: install libseccomp-dev (`cargo xtask install` does)"),
    }
}

/// The last `executable` cargo reported for the binary target `name`.
fn executable_from_messages(messages: &str, name: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .filter_map(|m| m["executable"].as_str().map(PathBuf::from))
        .next_back()
}

/// Copies `src` to a temporary name beside `dst`, sets owner, mode and
/// capabilities there, and renames it over `dst`.
fn install_binary(src: &Path, dst: &Path, mode: u32, caps: Option<&str>) -> Result<()> {
    host::root_dir(dst.parent().context("binary path has no directory")?, 0o755)?;
    let tmp = host::temp_beside(dst)?;
    let result = (|| {
        std::fs::copy(src, &tmp).with_context(|| format!("cannot copy {} to {}", src.display(), tmp.display()))?;
        host::set_owner_and_mode(&tmp, mode)?;
        if let Some(caps) = caps {
            host::run(Command::new("setcap").arg(caps).arg(&tmp))?;
        }
        host::rename(&tmp, dst)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write_default_config(path: &Path) -> Result<()> {
    host::root_dir(path.parent().context("config path has no directory")?, 0o755)?;
    if path.exists() {
        return Ok(());
    }
    host::write_root_file(path, DEFAULT_CONFIG.as_bytes(), 0o644)
}

/// The user behind `sudo` gets subordinate ids, so they can run containers
/// with more than one id right away.
fn give_sudo_user_ranges() -> Result<()> {
    let Some(name) = std::env::var("SUDO_USER").ok().filter(|u| !u.is_empty() && u != "root") else {
        return Ok(());
    };
    let user = User::from_name(&name)?.with_context(|| format!("SUDO_USER={name} is not a user on this machine"))?;
    subid::ensure_ranges(&name, user.uid.as_raw())?;
    Ok(())
}

/// Removes what install put there, except a config someone edited and
/// /etc/subuid entries (other tools may rely on them).
fn uninstall(layout: &Layout) -> Result<()> {
    for file in [layout.ctr(), layout.ctr_oci(), layout.init(), layout.helper()] {
        remove_if_present(&file, |p| std::fs::remove_file(p))?;
    }
    let pages = ctr_man_pages(&layout.man_pages())?;
    for file in layout.completions().into_iter().map(|(_, file)| file).chain(pages) {
        remove_if_present(&file, |p| std::fs::remove_file(p))?;
    }
    remove_if_present(&layout.images(), |p| std::fs::remove_dir_all(p))?;
    let config = layout.config();
    match std::fs::read_to_string(&config) {
        Ok(text) if text == DEFAULT_CONFIG => remove_if_present(&config, |p| std::fs::remove_file(p))?,
        Ok(_) => eprintln!("xtask: kept {}: it differs from the default", config.display()),
        Err(_) => {}
    }
    // Only the directories install created, and only once empty.
    for dir in [layout.prefix.join("libexec/ctr"), layout.prefix.join("etc/ctr"), layout.prefix.join("share/ctr")] {
        let _ = std::fs::remove_dir(dir);
    }
    println!("uninstalled ctr from {}", layout.prefix.display());
    Ok(())
}

fn remove_if_present(path: &Path, remove: impl Fn(&Path) -> std::io::Result<()>) -> Result<()> {
    match remove(path) {
        Ok(()) => {
            eprintln!("xtask: removed {}", path.display());
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_binaries_in_cargo_messages() {
        let messages = r#"{"reason":"compiler-artifact","target":{"name":"ctr-core"},"executable":null}
{"reason":"compiler-artifact","target":{"name":"ctr"},"executable":"/t/release/ctr"}
not json
{"reason":"build-finished","success":true}"#;
        assert_eq!(executable_from_messages(messages, "ctr"), Some(PathBuf::from("/t/release/ctr")));
        assert_eq!(executable_from_messages(messages, "ctr-core"), None);
    }

    #[test]
    fn default_config_parses_as_toml_with_the_documented_parent() {
        let lines: Vec<&str> = DEFAULT_CONFIG.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(lines, ["cgroup_parent = \"/ctr\""]);
    }

    #[test]
    fn installs_uidmap_for_image_owners() {
        for mode in [Mode::Setuid, Mode::Caps] {
            assert!(packages(mode).contains(&"uidmap"), "{mode:?}");
        }
        assert!(packages(Mode::Caps).contains(&"libcap2-bin"));
    }

    #[test]
    fn warns_of_another_ctr_on_path_and_says_how_to_reach_each() {
        let ours = Path::new("/usr/local/bin/ctr");
        let exists = |p: &Path| p == Path::new("/usr/bin/ctr") || p == ours;
        let path = std::ffi::OsStr::new("/usr/local/sbin:/usr/local/bin:/usr/bin:/bin");
        let w = other_ctr_warning(path, ours, exists).unwrap();
        assert!(w.contains("another `ctr` is on PATH: /usr/bin/ctr"), "{w}");
        assert!(w.contains("`ctr` runs this one (/usr/local/bin comes first"), "{w}");
        assert!(w.contains("reach the other as /usr/bin/ctr"), "{w}");
        let shadowed = other_ctr_warning(std::ffi::OsStr::new("/usr/bin:/usr/local/bin"), ours, exists).unwrap();
        assert!(shadowed.contains("`ctr` runs /usr/bin/ctr (containerd's client"), "{shadowed}");
        assert!(shadowed.contains("reach this one as /usr/local/bin/ctr"), "{shadowed}");
        assert_eq!(other_ctr_warning(path, ours, |p| p == ours), None);
        let off_path = other_ctr_warning(std::ffi::OsStr::new("/usr/bin"), Path::new("/opt/ctr/bin/ctr"), exists);
        assert!(off_path.unwrap().contains("reach this one as /opt/ctr/bin/ctr"));
    }

    #[test]
    fn layout_matches_what_ctr_looks_for() {
        let l = Layout::new(Path::new("/opt/x")).unwrap();
        assert_eq!(l.helper(), Path::new("/opt/x/libexec/ctr/ctr-setuid-helper"));
        assert_eq!(l.config(), Path::new("/opt/x/etc/ctr/helper.toml"));
        assert_eq!(l.images(), Path::new("/opt/x/share/ctr/images"));
    }
}
