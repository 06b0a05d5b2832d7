//! `cargo xtask test --legs vm` (and the second leg of a full run): the isolation, limits, cleanup, helper, durable and oci suites in a pure cgroup-v2 guest, since
//! this host (and CI) is a cgroup-v1 hybrid while most users run pure v2.
//!
//! Everything is built and set up on the host ([`TestRun`]); the guest, a
//! Debian kernel under QEMU ([`crate::guest`]), sees the host's root
//! read-only with a tmpfs overlay, so it runs the very test
//! binaries cargo built, the installed setuid helper and the `ctr-test` user.
//! The guest's writable root is an overlay on tmpfs, and the guest kernel
//! (6.1) keeps no `user.*` extended attributes on tmpfs, which the image
//! store needs (`user.overlay.opaque`); so the guest script formats an ext4
//! image (on tmpfs, sparse) and binds it over the scratch directory and /tmp.
//! The guest has no network card, so no network namespace is needed, and it
//! runs the tests in its root cgroup, beneath which the helper nests
//! container cgroups. Doc-tests need rustdoc and stay on the host.
//!
//! `--legs systemd` (the third leg of a full run) boots the same guest with
//! the host's systemd as PID 1 ([`Guest::systemd`]) and runs the oci suite's
//! systemd cgroup driver tests there, as a service of that systemd.

use crate::guest::{self, Guest};
use crate::setup::{self, TestRun};
use crate::test_driver::{self, Tally, TEST_PACKAGES};
use crate::{host, interrupt};
use anyhow::{Context, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Harness timeouts stretch by this much in the guest: TCG makes fork+exec
/// about 30 times slower than here.
const TIMEOUT_SCALE: &str = "10";
/// The guest for the tests: besides the guest's own modules (veth, bridge,
/// overlay...), the ext4 image that holds its writable test state (ext4
/// needs crc32c for its metadata checksums), and the nftables pieces that
/// the helper's bridge network uses (ctr-net's firewall rules: nat chains,
/// masquerade, dnat, ct status, fib, limit, bridge-family meta).
const GUEST: Guest = Guest {
    modules: &[
        "loop",
        "crc32c_generic",
        "ext4",
        "nf_tables",
        "nft_chain_nat",
        "nft_nat",
        "nft_masq",
        "nft_ct",
        "nft_fib_ipv4",
        "nft_limit",
        "nft_meta_bridge",
    ],
    memory_mib: 2048,
    cpus: 2,
    timeout_secs: 1800,
    systemd: false,
};

/// The same guest with systemd as PID 1 (`--legs systemd`): ctr-oci's
/// systemd cgroup driver, which asks systemd over D-Bus for its scopes.
/// Under emulation (TCG) it boots, runs both tests and powers off in about
/// 16 s of guest time (a full boot to multi-user.target takes minutes).
const SYSTEMD_GUEST: Guest = Guest { systemd: true, timeout_secs: 900, ..GUEST };

/// The tests of the systemd leg, by name: ctr-oci's scopes made by systemd
/// (directly, and through containerd's runc shim with `SystemdCgroup`).
const SYSTEMD_TESTS: &str = "systemd_cgroup_driver";

/// A guest run: which guest, which suites, which tests unless the caller names some.
struct Leg {
    name: &'static str,
    guest: &'static Guest<'static>,
    suites: &'static [&'static str],
    default_filter: Option<&'static str>,
}

/// A test binary cargo built, and the package directory it runs in (as
/// `cargo test` would run it).
struct TestBinary {
    executable: PathBuf,
    package_dir: PathBuf,
}

pub fn run_tests(tally: &Tally, extra: &[String]) -> Result<()> {
    let leg = Leg { name: "tests in the cgroup-v2 guest", guest: &GUEST, suites: &V2_SUITES, default_filter: None };
    run_leg(tally, extra, &leg)
}

/// `--legs systemd`: the oci suite's systemd driver tests in the guest
/// that boots systemd.
pub fn run_systemd_tests(tally: &Tally, extra: &[String]) -> Result<()> {
    let leg = Leg {
        name: "tests in the systemd guest",
        guest: &SYSTEMD_GUEST,
        suites: &["oci"],
        default_filter: Some(SYSTEMD_TESTS),
    };
    run_leg(tally, extra, &leg)
}

fn run_leg(tally: &Tally, extra: &[String], leg: &Leg) -> Result<()> {
    host::ensure_packages(TEST_PACKAGES)?;
    host::ensure_packages(guest::PACKAGES)?;
    // The unit tests ran on the host; the guest is for what cgroup v2 changes.
    let unit = Vec::new();
    let integration: Vec<TestBinary> = build_test_binaries(tally, "integration tests", &["-p", "ctr-tests"])?
        .into_iter()
        .filter(|b| b.executable.file_name().and_then(|n| n.to_str()).is_some_and(|n| is_suite(leg.suites, n)))
        .collect();
    if unit.is_empty() && integration.is_empty() {
        return Ok(());
    }

    let extras = test_driver::prepare_integration_extras()?;
    let mut run = TestRun::setup()?;
    // QEMU and whatever it leaves are killed with the scope at cleanup.
    run.enter_cgroup_scope()?;
    let guest_script = run.root.join("vm-tests.sh");
    let default_filter: Vec<String> = leg.default_filter.iter().map(|f| f.to_string()).collect();
    let filter = if extra.is_empty() { &default_filter[..] } else { extra };
    let text = guest_script_text(&run.env.work, &unit, &integration, filter);
    std::fs::write(&guest_script, text).with_context(|| format!("cannot write {}", guest_script.display()))?;
    let os = |(k, v): (&str, &str)| (OsString::from(k), OsString::from(v));
    let envs: Vec<(OsString, OsString)> = run
        .test_vars()
        .into_iter()
        .map(|(k, v)| (k.into(), v.into_os_string()))
        .chain(extras.into_iter().map(os))
        .chain(test_driver::UNIT_TEST_ENV.iter().copied().map(os))
        .chain([os((ctr_tests::vars::TIMEOUT_SCALE, TIMEOUT_SCALE))])
        .collect();
    let name = leg.name;
    eprintln!("xtask test: {name}: /bin/sh {}", guest_script.display());
    let command = ["/bin/sh".into(), guest_script.into_os_string()];
    match leg.guest.run(&run.root, &host::workspace_root(), &command, &envs, tally.line_counter())? {
        Some(0) => {}
        Some(code) => tally.fail(&format!("{name} (exit status: {code})")),
        None => tally.fail(&format!("{name} (the guest crashed or timed out)")),
    }
    interrupt::check()?;
    drop(run);
    Ok(())
}

/// The integration suites the pure cgroup-v2 guest runs: isolation, limits,
/// cleanup, the helper's refusals, durable containers (`ctr update`
/// writes v2's memory.max there), and `ctr-oci` (the BPF device program,
/// systemd cgroupsPath scopes from the root) (binaries are named `<suite>-<hash>`).
const V2_SUITES: [&str; 6] = ["isolation", "limits", "cleanup", "helper_protocol", "durable", "oci"];

fn is_suite(suites: &[&str], binary_name: &str) -> bool {
    binary_name.rsplit_once('-').is_some_and(|(suite, _)| suites.contains(&suite))
}

/// Builds the test binaries `cargo test <selection>` would run and lists
/// them. A build failure is recorded as a failed step (the other selection
/// may still build and run), not returned.
fn build_test_binaries(tally: &Tally, name: &str, selection: &[&str]) -> Result<Vec<TestBinary>> {
    let mut cmd = host::cargo();
    cmd.args(["test", "--no-run", "--message-format=json-render-diagnostics"]).args(selection);
    let built = host::stdout_streaming_stderr(&mut cmd);
    interrupt::check()?;
    match built {
        Ok(messages) => Ok(test_binaries_from_messages(&messages)),
        Err(e) => {
            eprintln!("xtask test: {e:#}");
            tally.fail(&format!("building {name}"));
            Ok(Vec::new())
        }
    }
}

fn test_binaries_from_messages(messages: &str) -> Vec<TestBinary> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["profile"]["test"] == true)
        .filter_map(|m| {
            let executable = PathBuf::from(m["executable"].as_str()?);
            let package_dir = Path::new(m["manifest_path"].as_str()?).parent()?.to_path_buf();
            Some(TestBinary { executable, package_dir })
        })
        .collect()
}

/// The shell script the guest runs: put /tmp and the scratch directory (for
/// the test user) on an ext4 disk, then run every test binary, integration
/// tests with `--test-threads=2` and the extra arguments. Exits 1 if any failed.
/// A clone (or its target directory) under /tmp stays visible: it is bound
/// into the new /tmp before that covers the old one.
fn guest_script_text(scratch: &Path, unit: &[TestBinary], integration: &[TestBinary], extra: &[String]) -> String {
    let mut s = String::from("#!/bin/sh\n# Written by `cargo xtask test`; runs in the guest.\nrc=0\n");
    s.push_str("run() { dir=$1; shift; echo \"     Running $1\"; (cd \"$dir\" && \"$@\") || rc=1; }\n");
    s.push_str("keep() { mkdir -p \"$d$1\" && mount --bind \"$1\" \"$d$1\"; }\n");
    let binaries = unit.iter().chain(integration);
    let dirs = binaries.flat_map(|b| [b.package_dir.as_path(), b.executable.parent().unwrap_or(Path::new("/"))]);
    let keep: String = under_tmp(dirs).iter().map(|p| format!("keep {} && ", quote(&p.to_string_lossy()))).collect();
    s.push_str(&format!(
        "d=/run/ctr-vm-disk; truncate -s 8G $d.img && mkfs.ext4 -q -F $d.img && mkdir -p $d && mount -o loop $d.img $d \\
  && mkdir -m 1777 $d/tmp && mkdir -m 700 $d/scratch && chown {user}:{user} $d/scratch \\
  && {keep}mount --rbind $d/tmp /tmp && mount --bind $d/scratch {dir} || {{ echo 'guest: cannot set up the ext4 disk'; exit 1; }}\n",
        user = setup::TEST_USER,
        dir = quote(&scratch.to_string_lossy())
    ));
    // The guest's console is a terminal: no colour codes in the log.
    let unit_args = vec!["--color=never".to_owned()];
    for (binaries, args) in [(unit, unit_args), (integration, integration_args(extra))] {
        for b in binaries {
            let words = [b.package_dir.to_string_lossy(), b.executable.to_string_lossy()];
            let line: Vec<String> = words.iter().map(|w| quote(w)).chain(args.iter().map(|a| quote(a))).collect();
            s.push_str(&format!("run {}\n", line.join(" ")));
        }
    }
    s.push_str("exit $rc\n");
    s
}

/// The directories among `dirs` that lie under /tmp, without those inside another.
fn under_tmp<'a>(dirs: impl Iterator<Item = &'a Path>) -> Vec<&'a Path> {
    let mut dirs: Vec<&Path> = dirs.filter(|d| d.starts_with("/tmp") && *d != Path::new("/tmp")).collect();
    dirs.sort();
    let mut outermost: Vec<&Path> = Vec::new();
    for dir in dirs {
        if !outermost.iter().any(|o| dir.starts_with(o)) {
            outermost.push(dir);
        }
    }
    outermost
}

fn integration_args(extra: &[String]) -> Vec<String> {
    ["--color=never", "--test-threads=2"].into_iter().map(str::to_owned).chain(extra.iter().cloned()).collect()
}

/// Single-quoted for sh.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_test_executables_with_their_package_dirs() {
        let messages = r#"{"reason":"compiler-artifact","profile":{"test":true},"manifest_path":"/w/tests/Cargo.toml","executable":"/w/target/debug/deps/isolation-1"}
{"reason":"compiler-artifact","profile":{"test":false},"manifest_path":"/w/xtask/Cargo.toml","executable":"/w/target/debug/xtask"}
{"reason":"compiler-artifact","profile":{"test":true},"manifest_path":"/w/core/Cargo.toml","executable":null}"#;
        let b = test_binaries_from_messages(messages);
        assert_eq!(b.len(), 1);
        assert_eq!(
            (b[0].executable.as_path(), b[0].package_dir.as_path()),
            (Path::new("/w/target/debug/deps/isolation-1"), Path::new("/w/tests"))
        );
    }

    #[test]
    fn script_runs_every_binary_and_quotes_arguments() {
        let bin = |e: &str| TestBinary { executable: e.into(), package_dir: "/w/p".into() };
        let s = guest_script_text(Path::new("/s"), &[bin("/u")], &[bin("/i")], &["it's".to_owned()]);
        assert!(s.contains("run '/w/p' '/u' '--color=never'\n"), "{s}");
        assert!(s.contains("run '/w/p' '/i' '--color=never' '--test-threads=2' 'it'\\''s'\n"), "{s}");
        assert!(s.contains("chown ctr-test:ctr-test $d/scratch"), "{s}");
        assert!(s.contains("mount --bind $d/scratch '/s'"), "{s}");
        assert!(!s.contains("keep '"), "nothing under /tmp to keep: {s}");
        assert!(s.ends_with("exit $rc\n"));
    }

    #[test]
    fn a_clone_under_tmp_is_bound_into_the_new_tmp() {
        let bin = |e: &str, p: &str| TestBinary { executable: e.into(), package_dir: p.into() };
        let s = guest_script_text(Path::new("/s"), &[], &[bin("/tmp/c/target/debug/deps/x-1", "/tmp/c/tests")], &[]);
        assert!(
            s.contains("keep '/tmp/c/target/debug/deps' && keep '/tmp/c/tests' && mount --rbind $d/tmp /tmp"),
            "{s}"
        );
        let dirs =
            [Path::new("/tmp/a"), Path::new("/tmp/a/b"), Path::new("/tmp"), Path::new("/var/x"), Path::new("/tmpx")];
        assert_eq!(under_tmp(dirs.into_iter()), [Path::new("/tmp/a")]);
    }
}
