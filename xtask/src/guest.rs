//! A throwaway pure cgroup-v2 guest: Debian's kernel under QEMU, booted with
//! `cgroup_no_v1=all`, whose root is this host's `/` (read-only over 9p,
//! under a tmpfs overlay), so programs built here run there unchanged. It
//! runs one command and powers off; the command's exit status comes back
//! through a second, writable 9p share. With [`Guest::systemd`], the new
//! root boots the host's systemd as PID 1 and the command runs as a
//! service of it (on the D-Bus system bus it starts), as on a systemd host.
//!
//! The kernel is the package Debian's `linux-image-amd64` names when first
//! needed, fetched with `apt-get download` (apt checks it against the signed
//! archive) and kept, with the initramfs built from it and the host's static
//! busybox, in `$XDG_CACHE_HOME/ctr-xtask/vm` (by default
//! ~/.cache/ctr-xtask/vm): the first run takes about half a minute more.
//!
//! Where /dev/kvm is a paravirtual nested device (`kvm_pvm`) that cannot run a
//! stock kernel, QEMU emulates (TCG): fork+exec is then about 30 times slower.

use crate::host;
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What booting the guest needs on the host: QEMU, the static busybox that
/// runs the initramfs, and xz for the kernel image.
pub const PACKAGES: &[&str] = &["qemu-system-x86", "busybox-static", "xz-utils"];

/// Modules every guest loads: virtio and 9p for its root, overlay for the
/// writable layer, veth, bridge and br_netfilter for container networks.
const BASE_MODULES: &[&str] = &["virtio_pci", "9pnet_virtio", "9p", "overlay", "veth", "bridge", "br_netfilter"];

/// How to boot the guest and what to run in it.
pub struct Guest<'a> {
    /// Loaded at boot besides [`BASE_MODULES`].
    pub modules: &'a [&'a str],
    pub memory_mib: u32,
    pub cpus: u32,
    pub timeout_secs: u32,
    /// Boot /lib/systemd/systemd as PID 1 (with dbus), the command in its
    /// unit `ctr-vm.service`; else /bin/sh runs the command as PID 1.
    pub systemd: bool,
}

/// The kernel command line's part that tells /init to boot systemd, and
/// systemd which unit to start (only the command's, and what it needs:
/// a full boot spends minutes on tmpfiles over 9p under emulation).
const SYSTEMD_APPEND: &str = " ctr_vm_init=systemd systemd.unit=ctr-vm.target systemd.show_status=0";

/// The guest's exit: the command's status, or none when the guest crashed
/// or timed out before it could report one.
pub type GuestExit = Option<i32>;

impl Guest<'_> {
    /// Runs `command` in `cwd` in the guest with our environment plus `envs`,
    /// handing each line of its console to `on_line`. `work` is a host
    /// directory for the exchange with the guest (removed by the caller).
    pub fn run(
        &self,
        work: &Path,
        cwd: &Path,
        command: &[OsString],
        envs: &[(OsString, OsString)],
        on_line: impl Fn(&str) + Send + Sync + 'static,
    ) -> Result<GuestExit> {
        host::ensure_packages(PACKAGES)?;
        let cache = cache_dir();
        std::fs::create_dir_all(&cache).with_context(|| format!("cannot create {}", cache.display()))?;
        let kernel = Kernel::ensure(&cache)?;
        let modules: Vec<&str> = BASE_MODULES.iter().chain(self.modules).copied().collect();
        let initrd = kernel.initramfs(&cache, &modules)?;

        let share = work.join("guest-share");
        std::fs::create_dir_all(&share).with_context(|| format!("cannot create {}", share.display()))?;
        std::fs::write(share.join("env"), env_file(envs))?;
        std::fs::write(share.join("stage2"), stage2(cwd, command))?;
        let mut append =
            "console=ttyS0 quiet loglevel=1 panic=-1 cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1".to_owned();
        if self.systemd {
            append.push_str(SYSTEMD_APPEND);
        }
        let mut qemu = Command::new("timeout");
        qemu.arg(self.timeout_secs.to_string()).arg("qemu-system-x86_64").args(accel());
        qemu.args(["-m", &self.memory_mib.to_string(), "-smp", &self.cpus.to_string()])
            .args(["-nodefaults", "-no-reboot", "-display", "none", "-monitor", "none"])
            .args(["-serial", "stdio", "-nic", "none"])
            .arg("-kernel")
            .arg(&kernel.vmlinux)
            .arg("-initrd")
            .arg(&initrd)
            .args(["-append", &append])
            .args(["-virtfs", "local,path=/,mount_tag=host,security_model=passthrough,readonly=on,multidevs=remap"])
            .arg("-virtfs")
            .arg(format!("local,path={},mount_tag=share,security_model=passthrough", share.display()));
        host::run_tee(&mut qemu, on_line)?;
        let rc = std::fs::read_to_string(share.join("rc")).ok();
        Ok(rc.and_then(|rc| rc.trim().parse().ok()))
    }
}

/// `-accel kvm` where /dev/kvm can run a stock kernel, else emulation.
fn accel() -> [&'static str; 4] {
    let kvm = nix::unistd::access("/dev/kvm", nix::unistd::AccessFlags::W_OK).is_ok()
        && !Path::new("/sys/module/kvm_pvm").exists();
    if kvm {
        ["-accel", "kvm", "-cpu", "host"]
    } else {
        ["-accel", "tcg,thread=multi", "-cpu", "max"]
    }
}

fn cache_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cache"));
    cache.join("ctr-xtask/vm")
}

/// A Debian kernel unpacked in the cache: its uncompressed image (QEMU boots
/// an ELF vmlinux through its PVH entry, skipping the slow emulated
/// decompression) and its modules.
struct Kernel {
    version: String,
    vmlinux: PathBuf,
    modules: PathBuf,
}

impl Kernel {
    fn ensure(cache: &Path) -> Result<Self> {
        let version = match std::fs::read_to_string(cache.join("kver")) {
            Ok(v) if !v.trim().is_empty() => v.trim().to_owned(),
            _ => current_debian_kernel()?,
        };
        let unpacked = cache.join("kernel");
        let kernel = Self {
            vmlinux: cache.join(format!("vmlinux-{version}")),
            modules: unpacked.join("lib/modules").join(&version),
            version,
        };
        if !kernel.vmlinux.exists() {
            kernel.fetch(cache, &unpacked)?;
        }
        host::write_root_file(&cache.join("kver"), kernel.version.as_bytes(), 0o644)?;
        Ok(kernel)
    }

    fn fetch(&self, cache: &Path, unpacked: &Path) -> Result<()> {
        eprintln!("xtask: fetching Debian's kernel {} for the cgroup-v2 guest", self.version);
        let package = format!("linux-image-{}", self.version);
        host::run(Command::new("apt-get").args(["download", "-q", &package]).current_dir(cache))?;
        let deb = std::fs::read_dir(cache)?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&format!("{package}_"))))
            .with_context(|| format!("apt-get download left no {package}_*.deb in {}", cache.display()))?;
        let _ = std::fs::remove_dir_all(unpacked);
        host::run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(unpacked))?;
        // The package leaves modules.dep to its postinst.
        host::run(Command::new("busybox").arg("depmod").arg("-b").arg(unpacked).arg(&self.version))?;
        let vmlinuz = unpacked.join(format!("boot/vmlinuz-{}", self.version));
        let image = std::fs::read(&vmlinuz).with_context(|| format!("cannot read {}", vmlinuz.display()))?;
        let elf = unxz_embedded(&image).with_context(|| format!("cannot decompress {}", vmlinuz.display()))?;
        host::write_root_file(&self.vmlinux, &elf, 0o644)?;
        std::fs::remove_file(&deb).with_context(|| format!("cannot remove {}", deb.display()))
    }

    /// The initramfs for `modules`, built once per kernel, module list and
    /// /init text.
    fn initramfs(&self, cache: &Path, modules: &[&str]) -> Result<PathBuf> {
        let key = Sha256::digest(format!("{}\n{}\n{INIT}", self.version, modules.join(" ")));
        let path = cache.join(format!("initrd-{}.cpio", &hex(&key)[..12]));
        if path.exists() {
            return Ok(path);
        }
        let mut cpio = Cpio::default();
        for dir in ["bin", "dev", "proc", "sys", "lib", "lib/modules", "newroot"] {
            cpio.dir(dir);
        }
        let busybox = std::fs::read("/bin/busybox").context("cannot read /bin/busybox: install busybox-static")?;
        cpio.file("bin/busybox", 0o755, &busybox);
        cpio.file("init", 0o755, INIT.replace("@MODULES@", &modules.join(" ")).as_bytes());
        let all_deps = std::fs::read_to_string(self.modules.join("modules.dep"))
            .with_context(|| format!("cannot read {}", self.modules.join("modules.dep").display()))?;
        let builtin = std::fs::read_to_string(self.modules.join("modules.builtin")).unwrap_or_default();
        let (dep_lines, files) = module_closure(&all_deps, &builtin, modules)?;
        let prefix = format!("lib/modules/{}", self.version);
        cpio.dir(&prefix);
        cpio.file(&format!("{prefix}/modules.dep"), 0o644, dep_lines.as_bytes());
        for file in files {
            let mut parent = String::new();
            for part in file.split('/').collect::<Vec<_>>().split_last().map_or(&[][..], |(_, dirs)| dirs) {
                parent.push('/');
                parent.push_str(part);
                cpio.dir(&format!("{prefix}{parent}"));
            }
            let bytes =
                std::fs::read(self.modules.join(&file)).with_context(|| format!("cannot read module {file}"))?;
            cpio.file(&format!("{prefix}/{file}"), 0o644, &bytes);
        }
        // Initramfs files of other module lists or an older /init are garbage now.
        for stale in std::fs::read_dir(cache)?.flatten().map(|e| e.path()) {
            if stale.file_name().is_some_and(|n| n.to_string_lossy().starts_with("initrd-")) {
                std::fs::remove_file(&stale).with_context(|| format!("cannot remove {}", stale.display()))?;
            }
        }
        host::write_root_file(&path, &cpio.finish(), 0o644)?;
        Ok(path)
    }
}

/// The kernel `linux-image-amd64` depends on today (old ones leave the archive).
fn current_debian_kernel() -> Result<String> {
    let ask = || host::stdout_of(Command::new("apt-cache").args(["depends", "linux-image-amd64"]));
    let pick = |text: &str| {
        text.lines().find_map(|l| {
            let name = l.trim().strip_prefix("Depends: linux-image-")?;
            (name.ends_with("-amd64") && name.starts_with(|c: char| c.is_ascii_digit())).then(|| name.to_owned())
        })
    };
    if let Some(version) = ask().ok().as_deref().and_then(pick) {
        return Ok(version);
    }
    // A fresh machine has no package lists yet.
    host::run(Command::new("apt-get").args(["update", "-q"]))?;
    ask().ok().as_deref().and_then(pick).context("apt-cache names no kernel for linux-image-amd64")
}

/// The modules.dep lines and module files that loading `modules` needs:
/// each module with its dependencies (depmod lists them all), and their own
/// lines so that modprobe finds each one. Built-in modules need nothing.
fn module_closure(all_deps: &str, builtin: &str, modules: &[&str]) -> Result<(String, Vec<String>)> {
    let entry = |file: &str| all_deps.lines().find(|l| l.split_once(':').is_some_and(|(f, _)| f == file));
    let mut files: Vec<String> = Vec::new();
    for module in modules {
        let file_name = format!("/{module}.ko");
        let line = all_deps.lines().find(|l| l.split_once(':').is_some_and(|(f, _)| f.ends_with(&file_name)));
        let Some(line) = line else {
            if builtin.lines().any(|l| l.ends_with(&file_name)) {
                continue;
            }
            bail!("the guest kernel has no module {module}");
        };
        let (own, deps) = line.split_once(':').expect("found by its colon");
        for file in std::iter::once(own).chain(deps.split_whitespace()) {
            if !files.iter().any(|f| f == file) {
                files.push(file.to_owned());
            }
        }
    }
    let mut lines = String::new();
    for file in &files {
        let line =
            entry(file).with_context(|| format!("modules.dep lists {file} as a dependency but has no line for it"))?;
        lines.push_str(line);
        lines.push('\n');
    }
    Ok((lines, files))
}

/// The guest's /init (busybox sh): the host's root read-only over 9p under a
/// tmpfs overlay becomes the new root, with /proc, /sys, /dev, the cgroup2
/// tree, /dev/pts, /dev/shm and /run; the exchange share goes on /run/vm, and /run/vm/stage2 runs in the new root.
/// With `ctr_vm_init=systemd` on the command line, systemd runs instead,
/// and stage2 in `ctr-vm.service` (its console output on the serial port),
/// needing only dbus: no unit of the boot waits for sysinit.target. The
/// host's /.dockerenv is hidden, or systemd would think itself in a
/// container and ignore the kernel's command line.
const INIT: &str = r#"#!/bin/busybox sh
b=/bin/busybox
set -e
$b mount -t proc proc /proc
$b mount -t sysfs sys /sys
$b mount -t devtmpfs dev /dev
for m in @MODULES@; do $b modprobe $m; done
$b mkdir -p /host /rw
$b mount -t tmpfs -o mode=755 rw /rw
$b mkdir /rw/upper /rw/work
$b mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000,cache=loose host /host
$b mount -t overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work root /newroot
for d in /proc /sys /dev; do $b mount --move $d /newroot$d; done
r=/newroot
$b mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 $r/sys/fs/cgroup
$b mkdir -p $r/dev/pts $r/dev/shm
$b mount -t devpts -o ptmxmode=666,gid=5,mode=620 devpts $r/dev/pts
$b mount -t tmpfs shm $r/dev/shm
$b mount -t tmpfs -o mode=755 run $r/run
$b mkdir -p $r/run/vm
$b mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 share $r/run/vm
$b hostname vm
$b ip link set lo up
if $b grep -qw ctr_vm_init=systemd $r/proc/cmdline; then
  u=$r/etc/systemd/system
  $b mkdir -p $u/dbus.socket.d $u/dbus.service.d
  for d in dbus.socket dbus.service; do printf '[Unit]\nDefaultDependencies=no\n' > $u/$d.d/ctr-vm.conf; done
  printf '[Unit]\nDefaultDependencies=no\nRequires=ctr-vm.service\n' > $u/ctr-vm.target
  printf '[Unit]\nDefaultDependencies=no\nRequires=dbus.socket\nAfter=dbus.socket\n[Service]\nType=oneshot\nTimeoutStartSec=infinity\nStandardInput=null\nStandardOutput=tty\nStandardError=inherit\nTTYPath=/dev/ttyS0\nExecStart=/bin/sh /run/vm/stage2\n' > $u/ctr-vm.service
  $b rm -f $r/.dockerenv
  exec $b switch_root $r /lib/systemd/systemd
fi
exec $b switch_root $r /bin/sh /run/vm/stage2
"#;

/// Runs in the guest's new root: the environment, shared mount propagation
/// (as systemd sets it on the host), the command, its status, power off.
fn stage2(cwd: &Path, command: &[OsString]) -> Vec<u8> {
    let mut s = b"#!/bin/sh\n. /run/vm/env\nmount --make-rshared /\n".to_vec();
    s.extend_from_slice(b"echo \"[vm] cgroup.controllers: $(cat /sys/fs/cgroup/cgroup.controllers)\"\ncd ");
    s.extend(quote(cwd.as_os_str().as_bytes()));
    s.extend_from_slice(b" &&");
    for word in command {
        s.push(b' ');
        s.extend(quote(word.as_bytes()));
    }
    s.extend_from_slice(b"\necho $? > /run/vm/rc\nsync\n/bin/busybox poweroff -f\n");
    s
}

/// `export NAME='value'` for our environment with `envs` over it, except
/// what describes this terminal session rather than the run.
fn env_file(envs: &[(OsString, OsString)]) -> Vec<u8> {
    let mut all: std::collections::BTreeMap<OsString, OsString> = std::env::vars_os().collect();
    all.extend(envs.iter().cloned());
    let mut s = Vec::new();
    for (name, value) in &all {
        let name = name.as_bytes();
        let identifier = name.first().is_some_and(|c| !c.is_ascii_digit())
            && name.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
        if !identifier || [&b"TERM"[..], b"SHLVL", b"OLDPWD", b"PWD"].contains(&name) {
            continue;
        }
        s.extend_from_slice(b"export ");
        s.extend_from_slice(name);
        s.push(b'=');
        s.extend(quote(value.as_bytes()));
        s.push(b'\n');
    }
    s
}

/// Single-quoted for sh.
fn quote(word: &[u8]) -> Vec<u8> {
    let mut q = vec![b'\''];
    for &c in word {
        if c == b'\'' {
            q.extend_from_slice(b"'\\''");
        } else {
            q.push(c);
        }
    }
    q.push(b'\'');
    q
}

/// Debian's vmlinuz is a bzImage whose payload is one xz stream: find its
/// magic and decompress that stream alone (what follows it is not xz).
fn unxz_embedded(image: &[u8]) -> Result<Vec<u8>> {
    const MAGIC: &[u8] = b"\xfd7zXZ\0";
    let start = image.windows(MAGIC.len()).position(|w| w == MAGIC).context("no xz stream in the kernel image")?;
    let mut xz = Command::new("xz");
    xz.args(["--decompress", "--stdout", "--single-stream", "--quiet", "--quiet"]);
    let mut child = xz
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("cannot start xz: install xz-utils")?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let payload = image[start..].to_vec();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &payload));
    let out = child.wait_with_output().context("cannot run xz")?;
    // xz stops reading after the stream, so the rest may meet a closed pipe.
    let _ = writer.join();
    if !out.status.success() || !out.stdout.starts_with(b"\x7fELF") {
        bail!("xz gave no ELF image ({})", out.status);
    }
    Ok(out.stdout)
}

/// A cpio archive in the "newc" format the kernel unpacks as initramfs.
#[derive(Default)]
struct Cpio {
    bytes: Vec<u8>,
    inode: u32,
    dirs: Vec<String>,
}

impl Cpio {
    fn dir(&mut self, path: &str) {
        if !self.dirs.iter().any(|d| d == path) {
            self.dirs.push(path.to_owned());
            self.entry(path, 0o040_755, &[]);
        }
    }

    fn file(&mut self, path: &str, mode: u32, data: &[u8]) {
        self.entry(path, 0o100_000 | mode, data);
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.inode += 1;
        let nlink = if mode & 0o040_000 != 0 { 2 } else { 1 };
        let fields = [self.inode, mode, 0, 0, nlink, 0, data.len() as u32, 0, 0, 0, 0, name.len() as u32 + 1, 0];
        self.bytes.extend_from_slice(b"070701");
        for field in fields {
            self.bytes.extend_from_slice(format!("{field:08x}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.inode = 0;
        self.entry("TRAILER!!!", 0, &[]);
        self.bytes
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_closure_takes_dependencies_and_their_lines() {
        let deps = "kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/netfs/netfs.ko\n\
                    kernel/net/9p/9pnet.ko:\nkernel/fs/netfs/netfs.ko:\nkernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko\n";
        let (lines, files) = module_closure(deps, "kernel/fs/overlay/overlay.ko\n", &["9p", "overlay"]).unwrap();
        assert_eq!(files, ["kernel/fs/9p/9p.ko", "kernel/net/9p/9pnet.ko", "kernel/fs/netfs/netfs.ko"]);
        assert_eq!(lines.lines().count(), 3);
        assert!(lines.starts_with("kernel/fs/9p/9p.ko: "));
        assert!(module_closure(deps, "", &["nope"]).unwrap_err().to_string().contains("no module nope"));
    }

    #[test]
    fn cpio_entries_are_newc_and_aligned() {
        let mut cpio = Cpio::default();
        cpio.dir("bin");
        cpio.dir("bin");
        cpio.file("bin/x", 0o755, b"abc");
        let bytes = cpio.finish();
        assert_eq!(bytes.len() % 4, 0);
        assert!(bytes.starts_with(b"070701"));
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(text.matches("070701").count(), 3, "one directory, one file, the trailer");
        assert!(text.contains("000081ed") && text.contains("bin/x\0"));
        assert!(text.contains("TRAILER!!!\0"));
    }

    #[test]
    fn stage2_quotes_the_command_and_reports_its_status() {
        let s = stage2(Path::new("/w"), &["sh".into(), "it's".into()]);
        let s = String::from_utf8(s).unwrap();
        assert!(s.contains("cd '/w' && 'sh' 'it'\\''s'\necho $? > /run/vm/rc\n"), "{s}");
        assert!(s.starts_with("#!/bin/sh\n. /run/vm/env\n"));
    }

    #[test]
    fn env_file_exports_given_values_quoted() {
        let text = env_file(&[("CTR_X".into(), "a b'c".into()), ("9BAD".into(), "x".into())]);
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("export CTR_X='a b'\\''c'\n"), "{text}");
        assert!(!text.contains("9BAD") && !text.contains("export TERM="));
    }

    #[test]
    fn finds_and_decompresses_an_embedded_xz_stream() {
        let mut xz = Command::new("xz");
        let elf = b"\x7fELF and the rest of a kernel".to_vec();
        let child =
            xz.args(["-c"]).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
        let mut stdin = child.stdin.as_ref().unwrap();
        std::io::Write::write_all(&mut stdin, &elf).unwrap();
        let stream = child.wait_with_output().unwrap().stdout;
        let image = [&b"bzImage setup"[..], &stream, b"trailing setup data"].concat();
        assert_eq!(unxz_embedded(&image).unwrap(), elf);
    }
}
