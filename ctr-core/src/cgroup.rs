//! Container cgroups: one directory per container in every mounted cgroup
//! hierarchy (v1 controllers, named v1 hierarchies, and the v2 tree),
//! created beneath the configured parent, owned by root so that the caller
//! cannot write limits or move processes, and named in the caller's record
//! (the helper's `record.rs`) before they are made, so that removal touches
//! only what a spawn made for the same caller. `ctr-oci`, running as root,
//! uses the same manager; what only it needs (an OCI `cgroupsPath`, device
//! rules, listing pids) is its own (`ctr-cli/src/oci/cgroups.rs`), so that
//! the helper carries none of it.
//!
//! Paths are built from validated components only; every directory acted on
//! is checked to be on a cgroup filesystem (cgroupfs has no symlinks). The
//! helper never writes `release_agent`, `notify_on_release` or any file
//! other than `cgroup.procs`, `cgroup.kill` and the cpuset inheritance files.

use crate::config::{CgroupParent, HelperConfig};
use crate::ids::{CgroupComponent, ContainerId};
use crate::limits::{render, LimitError, LimitFile, ResourceLimits};
use crate::protocol::{CgroupDir, HelperError};
use nix::sys::signal::{kill, Signal};
use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC};
use nix::unistd::Pid;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// One mounted hierarchy and where this process sits in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub mount_point: PathBuf,
    pub v2: bool,
    /// v1 only: the controllers (or `name=...`) of this hierarchy.
    pub controllers: Vec<String>,
    /// This process's cgroup, relative to the mount point.
    pub own_path: String,
}

fn cgroup_error(what: impl std::fmt::Display) -> HelperError {
    HelperError::Cgroup(what.to_string())
}

/// The container cgroup's directory name: the caller's uid is part of it, so
/// no request can name another user's container.
pub fn leaf_name(uid: u32, id: &ContainerId) -> CgroupComponent {
    CgroupComponent::parse(&format!("ctr-{uid}-{}", id.as_str())).expect("uid and container id are in the alphabet")
}

/// Pairs the cgroup mounts in `mountinfo` with the memberships in
/// `proc_cgroup` (both from /proc/self). One entry per hierarchy.
pub fn parse_hierarchies(mountinfo: &str, proc_cgroup: &str) -> Result<Vec<Hierarchy>, String> {
    let mut seen_devices = Vec::new();
    let mut found = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        if left.len() < 5 || right.len() < 3 {
            continue;
        }
        let (device, root, mount_point, fstype, super_opts) = (left[2], left[3], left[4], right[0], right[2]);
        // Not a cgroup, or the same hierarchy mounted twice.
        if !matches!(fstype, "cgroup" | "cgroup2") || seen_devices.contains(&device) {
            continue;
        }
        seen_devices.push(device);
        let v2 = fstype == "cgroup2";
        let controllers: Vec<&str> =
            if v2 { Vec::new() } else { super_opts.split(',').filter(|o| is_controller_option(o)).collect() };
        // `ID:CONTROLLERS:PATH`, with no controllers for v2.
        let membership = proc_cgroup.lines().find_map(|l| {
            let (names, path) = l.split_once(':')?.1.split_once(':')?;
            let ours = if v2 { names.is_empty() } else { names.split(',').all(|n| controllers.contains(&n)) };
            ours.then_some(path)
        });
        let Some(path) = membership else { continue };
        let own_path = relative_to_mount_root(path, root)
            .ok_or_else(|| format!("cgroup {path} is outside the mount of {mount_point}"))?;
        found.push(Hierarchy {
            mount_point: PathBuf::from(unescape_mountinfo(mount_point)),
            v2,
            controllers: controllers.iter().map(|c| c.to_string()).collect(),
            own_path,
        });
    }
    Ok(found)
}

/// v1 super options name the hierarchy's controllers among mount flags.
fn is_controller_option(option: &str) -> bool {
    const FLAGS: [&str; 5] = ["rw", "ro", "xattr", "noprefix", "cpuset_v2_mode"];
    !FLAGS.contains(&option) && !option.starts_with("clone_children") && !option.starts_with("release_agent")
}

fn relative_to_mount_root(path: &str, root: &str) -> Option<String> {
    let rest = if root == "/" { path } else { path.strip_prefix(root)? };
    (rest.is_empty() || rest.starts_with('/')).then(|| format!("/{}", rest.trim_start_matches('/')))
}

/// A path field of /proc/PID/mountinfo with the kernel's escapes undone
/// (it writes space, tab, newline and backslash as three octal digits).
pub fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
}

pub fn hierarchies() -> Result<Vec<Hierarchy>, HelperError> {
    let read = |p: &str| std::fs::read_to_string(p).map_err(|e| cgroup_error(format!("{p}: {e}")));
    let found = parse_hierarchies(&read("/proc/self/mountinfo")?, &read("/proc/self/cgroup")?).map_err(cgroup_error)?;
    if found.is_empty() {
        return Err(cgroup_error("no cgroup hierarchy is mounted"));
    }
    Ok(found)
}

/// The directory names below the mount point under which container
/// cgroups go. The caller's own cgroup may use any name its service manager
/// chose (`user@1000.service`), so those are checked only for what could
/// leave the path (empty, `.`, `..`) or confuse a reader of it (control
/// characters: a delegated user names its own cgroups).
pub fn parent_components(h: &Hierarchy, parent: &CgroupParent) -> Result<Vec<String>, HelperError> {
    match parent {
        CgroupParent::Fixed(components) => Ok(components.iter().map(|c| c.as_str().to_owned()).collect()),
        CgroupParent::CallerOwn => h
            .own_path
            .split('/')
            .filter(|c| !c.is_empty())
            .map(|c| {
                let safe = c != "." && c != ".." && !c.chars().any(char::is_control);
                safe.then(|| c.to_owned())
                    .ok_or_else(|| cgroup_error(format!("own cgroup {} has an unusable component", h.own_path)))
            })
            .collect(),
    }
}

fn ensure_cgroupfs(dir: &Path) -> Result<(), HelperError> {
    let fs = statfs(dir).map_err(|e| cgroup_error(format!("{}: {e}", dir.display())))?;
    let t = fs.filesystem_type();
    if t != CGROUP_SUPER_MAGIC && t != CGROUP2_SUPER_MAGIC {
        return Err(cgroup_error(format!("{} is not on a cgroup filesystem", dir.display())));
    }
    Ok(())
}

/// Creates `dir` (root-owned, 0755) unless it exists: on a cgroup
/// filesystem, where nothing else can be made, a name that exists and is no
/// directory is a kernel's control file, below which the next step fails.
fn make_dir(dir: &Path) -> Result<(), HelperError> {
    match std::fs::DirBuilder::new().mode(0o755).create(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            Err(cgroup_error(format!("mkdir {}: {e}", dir.display())))
        }
        _ => Ok(()),
    }
}

pub fn write_file(path: &Path, value: &str) -> Result<(), HelperError> {
    let opened = std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NOFOLLOW).open(path);
    let written = opened.and_then(|mut f| f.write_all(value.as_bytes()));
    written.map_err(|e| cgroup_error(format!("write {}: {e}", path.display())))
}

/// A v1 cpuset cgroup starts with no CPUs or memory nodes, and a process
/// cannot join it until they are filled in: copy the parent's. (On v2 an
/// empty cpuset means the parent's, and the root has no such file.)
fn inherit_cpuset(dir: &Path) -> Result<(), HelperError> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let own = dir.join(file);
        let Ok(current) = std::fs::read_to_string(&own) else { continue };
        if current.trim().is_empty() {
            let parent = dir.parent().expect("a cgroup leaf has a parent").join(file);
            let value =
                std::fs::read_to_string(&parent).map_err(|e| cgroup_error(format!("{}: {e}", parent.display())))?;
            write_file(&own, value.trim())?;
        }
    }
    Ok(())
}

/// The cgroup directories of one container, in every hierarchy.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ContainerCgroups {
    pub dirs: Vec<CgroupDir>,
}

impl ContainerCgroups {
    pub fn paths(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| PathBuf::from(&d.path)).collect()
    }

    /// The v1 directory of `controller`.
    pub fn dir_for(&self, controller: &str) -> Option<&CgroupDir> {
        self.dirs.iter().find(|d| !d.v2 && d.controllers.iter().any(|c| c == controller))
    }

    pub fn v2_dir(&self) -> Option<&CgroupDir> {
        self.dirs.iter().find(|d| d.v2)
    }
}

/// Where the container's cgroup goes in every hierarchy; nothing is made.
pub fn plan(uid: u32, id: &ContainerId, config: &HelperConfig) -> Result<ContainerCgroups, HelperError> {
    let leaf = leaf_name(uid, id);
    let mut cgroups = ContainerCgroups::default();
    for h in hierarchies()? {
        let mut dir = h.mount_point.clone();
        dir.extend(parent_components(&h, &config.cgroup_parent)?);
        dir.push(leaf.as_str());
        let path = dir.to_str().ok_or_else(|| cgroup_error("cgroup path is not UTF-8"))?.to_owned();
        cgroups.dirs.push(CgroupDir { v2: h.v2, controllers: h.controllers.clone(), path });
    }
    Ok(cgroups)
}

/// Makes the planned directories (and the parents they lack), each on a
/// cgroup filesystem. The caller removes them if this fails.
pub fn create(cgroups: &ContainerCgroups) -> Result<(), HelperError> {
    for d in &cgroups.dirs {
        let leaf = Path::new(&d.path);
        // The leaf, and every parent it lacks, top down (make_dir lets one
        // that exists be).
        let mut made: Vec<&Path> = leaf.ancestors().take_while(|a| *a == leaf || !a.exists()).collect();
        let base = leaf.ancestors().nth(made.len()).ok_or_else(|| cgroup_error("a cgroup path without a root"))?;
        ensure_cgroupfs(base)?;
        made.reverse();
        made.iter().try_for_each(|dir| make_dir(dir))?;
        ensure_cgroupfs(leaf)?;
        if !d.v2 {
            made.iter().try_for_each(|dir| inherit_cpuset(dir))?;
        }
    }
    Ok(())
}

/// Moves the freshly spawned process into every container cgroup (the v2
/// one only `with_v2`: a process cloned into it is there already).
pub fn attach(cgroups: &ContainerCgroups, pid: Pid, with_v2: bool) -> Result<(), HelperError> {
    for dir in cgroups.dirs.iter().filter(|d| with_v2 || !d.v2) {
        write_file(&Path::new(&dir.path).join("cgroup.procs"), &pid.to_string())?;
    }
    Ok(())
}

/// A cgroup directory as a descriptor, to clone a process into.
pub fn open_dir(path: &str) -> Result<std::os::fd::OwnedFd, HelperError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW);
    options.open(path).map(Into::into).map_err(|e| cgroup_error(format!("open {path}: {e}")))
}

/// Pauses or resumes every process of the caller's container, and waits
/// until the kernel reports that it has. The v1 freezer where there is
/// one, else the v2 core freezer: its control file and the values it takes
/// (thawed, frozen); the file and the line in it that show the state has
/// taken.
pub fn freeze(cgroups: &ContainerCgroups, frozen: bool) -> Result<(), HelperError> {
    let at = |dir: &CgroupDir, file: &str| Path::new(&dir.path).join(file);
    let (control, values, state, settled) = match (cgroups.dir_for("freezer"), cgroups.v2_dir()) {
        (Some(v1), _) => (at(v1, "freezer.state"), ["THAWED", "FROZEN"], at(v1, "freezer.state"), ["THAWED", "FROZEN"]),
        (None, Some(v2)) => (at(v2, "cgroup.freeze"), ["0", "1"], at(v2, "cgroup.events"), ["frozen 0", "frozen 1"]),
        (None, None) => return Err(cgroup_error("no freezer: neither a v1 freezer hierarchy nor cgroup v2")),
    };
    ensure_cgroupfs(control.parent().expect("a file in a cgroup dir"))?;
    write_file(&control, values[usize::from(frozen)])?;
    let settled = settled[usize::from(frozen)];
    let deadline = Instant::now() + KILL_TIMEOUT;
    while !std::fs::read_to_string(&state).is_ok_and(|s| s.lines().any(|l| l.trim() == settled)) {
        if Instant::now() > deadline {
            return Err(cgroup_error(format!("{} did not settle", control.display())));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// Writes the container's limits, before its process joins the cgroup.
/// Each controller is used from its v1 hierarchy if it has one, else from
/// the v2 tree (enabled there on the way down); a file this kernel lacks is
/// an error naming the flag, never a silent no-op.
pub fn apply_limits(cgroups: &ContainerCgroups, limits: &ResourceLimits) -> Result<(), HelperError> {
    let mut writes: Vec<(PathBuf, LimitFile, String)> = Vec::new();
    for (file, value) in render(limits, false) {
        if let Some(dir) = cgroups.dir_for(file.controller()) {
            writes.push((Path::new(&dir.path).join(file.file_name()), file, value));
        }
    }
    for (file, value) in render(limits, true) {
        if cgroups.dir_for(file.v1_controller()).is_none() {
            let dir = cgroups.v2_dir().ok_or_else(|| unsupported(file))?;
            enable_v2_controller(Path::new(&dir.path), file.controller()).map_err(|_| unsupported(file))?;
            writes.push((Path::new(&dir.path).join(file.file_name()), file, value));
        }
    }
    for (path, file, value) in writes {
        if !path.exists() {
            return Err(unsupported(file));
        }
        write_file(&path, &value)?;
    }
    Ok(())
}

fn unsupported(file: LimitFile) -> HelperError {
    HelperError::Limits(LimitError::Unsupported { flag: file.flag().into(), file: file.file_name().into() })
}

/// Enables `controller` in `cgroup.subtree_control` of every ancestor of
/// the leaf `dir` that lacks it, from the top of the tree down (a few reads
/// where all have it).
fn enable_v2_controller(dir: &Path, controller: &str) -> Result<(), HelperError> {
    let ancestors: Vec<&Path> = dir.ancestors().skip(1).take_while(|a| ensure_cgroupfs(a).is_ok()).collect();
    let top = ancestors.last().ok_or_else(|| cgroup_error("a v2 leaf without a parent"))?;
    let available = std::fs::read_to_string(top.join("cgroup.controllers")).unwrap_or_default();
    if !available.split_whitespace().any(|c| c == controller) {
        return Err(cgroup_error(format!("the {controller} controller is not available in cgroup v2")));
    }
    for ancestor in ancestors.iter().rev() {
        let control = ancestor.join("cgroup.subtree_control");
        let enabled = std::fs::read_to_string(&control).unwrap_or_default();
        if !enabled.split_whitespace().any(|c| c == controller) {
            write_file(&control, &format!("+{controller}")).map_err(|e| {
                cgroup_error(format!(
                    "cannot enable {controller} below {}: {e} (a cgroup with processes cannot delegate controllers on v2; use a cgroup_parent path)",
                    ancestor.display()
                ))
            })?;
        }
    }
    Ok(())
}

/// SIGKILLs every process in `dirs` until they are empty, then removes
/// them. The container's first process is init of its pid namespace, so
/// killing it takes the rest of the namespace with it.
pub fn kill_and_remove(cgroups: &ContainerCgroups) -> Result<(), HelperError> {
    // Frozen processes cannot die: thaw a paused container first (a write
    // and a read where it is not paused).
    let _ = freeze(cgroups, false);
    let deadline = Instant::now() + KILL_TIMEOUT;
    let mut pending = cgroups.paths();
    loop {
        pending.retain(|dir| {
            if ensure_cgroupfs(dir).is_err() {
                return false; // gone already
            }
            let _ = write_file(&dir.join("cgroup.kill"), "1"); // v2 only: a v1 directory has none
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|pid| pid.trim().parse().ok()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            // EBUSY while the processes die.
            std::fs::remove_dir(dir).is_err_and(|e| e.kind() != std::io::ErrorKind::NotFound)
        });
        if pending.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let names: Vec<String> = pending.iter().map(|d| d.display().to_string()).collect();
            return Err(cgroup_error(format!("could not empty and remove {}", names.join(", "))));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_mountinfo("/a\\040b/c\\011d\\134e\\012"), "/a b/c\td\\e\n");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        // Not three octal digits: kept as written.
        assert_eq!(unescape_mountinfo("/x\\09y\\"), "/x\\09y\\");
    }

    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:32 / /mnt/again rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const PROC_CGROUP: &str = "9:name=systemd:/user.slice\n4:memory:/process_api/abc\n1:cpu:/\n0::/\n";

    #[test]
    fn pairs_mounts_with_memberships() {
        let h = parse_hierarchies(MOUNTINFO, PROC_CGROUP).unwrap();
        assert_eq!(h[1].controllers, vec!["memory"]);
        assert_eq!(h[2].controllers, vec!["name=systemd"]);
        let got: Vec<(&str, bool, &str)> =
            h.iter().map(|h| (h.mount_point.to_str().unwrap(), h.v2, h.own_path.as_str())).collect();
        assert_eq!(
            got,
            vec![
                ("/sys/fs/cgroup/cpu", false, "/"),
                ("/sys/fs/cgroup/memory", false, "/process_api/abc"),
                ("/sys/fs/cgroup/systemd", false, "/user.slice"),
                ("/sys/fs/cgroup/unified", true, "/"),
            ]
        );
    }

    #[test]
    fn pure_v2() {
        let mi = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let h = parse_hierarchies(mi, "0::/user.slice/user-1000.slice/session-1.scope\n").unwrap();
        assert_eq!(h.len(), 1);
        assert!(h[0].v2);
        assert_eq!(h[0].own_path, "/user.slice/user-1000.slice/session-1.scope");
    }

    #[test]
    fn nested_mount_roots_are_relative() {
        let mi = "30 23 0:26 /outer /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let h = parse_hierarchies(mi, "0::/outer/inner\n").unwrap();
        assert_eq!(h[0].own_path, "/inner");
        assert!(parse_hierarchies(mi, "0::/elsewhere\n").is_err());
    }

    #[test]
    fn caller_own_parent_refuses_traversal() {
        let h = Hierarchy {
            mount_point: "/sys/fs/cgroup".into(),
            v2: true,
            controllers: vec![],
            own_path: "/a/../b".into(),
        };
        assert!(parent_components(&h, &CgroupParent::CallerOwn).is_err());
        let h = Hierarchy { own_path: "/user.slice/user@1000.service".into(), ..h };
        assert_eq!(parent_components(&h, &CgroupParent::CallerOwn).unwrap(), vec!["user.slice", "user@1000.service"]);
    }

    #[test]
    fn caller_own_parent_refuses_control_characters() {
        for own in ["/a\tb", "/a\nv2", "/x\u{1b}[2J"] {
            let h =
                Hierarchy { mount_point: "/sys/fs/cgroup".into(), v2: true, controllers: vec![], own_path: own.into() };
            assert!(parent_components(&h, &CgroupParent::CallerOwn).is_err(), "{own:?} accepted");
        }
    }

    #[test]
    fn leaf_carries_the_uid() {
        let id = ContainerId::from_bytes(&[1; 32]);
        assert_eq!(leaf_name(1000, &id).as_str(), format!("ctr-1000-{}", id.as_str()));
    }
}
