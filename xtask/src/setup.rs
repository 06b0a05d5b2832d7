//! The throwaway world that integration tests and benchmarks run in: a work
//! directory under /var/tmp with a fresh install (helper config
//! `cgroup_parent = "self"`), the unprivileged `ctr-test` user (and a
//! second one, `ctr-test2`, for the tests where one user attacks another)
//! with subordinate ids, the base image's tarball ([`crate::test_image`]), a
//! scratch directory owned by that user, and optionally a network namespace and a cgroup scope. All of
//! it is undone when the [`TestRun`] is dropped (see [`crate::cleanup`]).
//!
//! Runs on one machine take turns ([`RUN_LOCK`]): they share the test user,
//! its runtime directory (/tmp/ctr-run-UID, as `ctr` picks it with
//! XDG_RUNTIME_DIR unset) and the helper's records for it.

use crate::cgroup_scope::CgroupScope;
use crate::cleanup::Cleanup;
use crate::install::{self, Layout};
use crate::{host, subid, test_image};
use anyhow::{bail, Context, Result};
use ctr_tests::BaseImage;
use nix::fcntl::{Flock, FlockArg};
use nix::unistd::{chown, User};
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The unprivileged user the tests run `ctr` as.
pub const TEST_USER: &str = "ctr-test";
/// A second unprivileged user, the other party in hostile-client tests.
pub const TEST_USER2: &str = "ctr-test2";
/// Where the tests find [`TEST_USER2`]'s name.
pub const USER2_VAR: &str = "CTR_TEST_USER2";
/// The test config: container cgroups nest beneath the caller's own, i.e.
/// beneath the run's [`CgroupScope`], never in the host's /ctr.
/// The interface limit is low enough that a test can reach it.
const TEST_HELPER_CONFIG: &str = "cgroup_parent = \"self\"\nmax_interfaces_per_user = 56\n";
/// The helper's root-owned records of each user's containers
/// (ctr-setuid-helper's `RECORD_DIR`); the test user's are emptied before and
/// after a run for the same reason as its runtime directory.
const HELPER_RECORDS: &str = "/run/ctr-helper";
/// Held for the whole of a test or bench run.
const RUN_LOCK: &str = "/run/ctr-xtask-test.lock";

pub struct TestRun {
    /// `/var/tmp/ctr-test-<pid>`: the prefix, the tarball, the scratch dir.
    pub root: PathBuf,
    /// What the tests see (the same values go into `CTR_TEST_*`).
    pub env: ctr_tests::Env,
    /// Which image `env.alpine` holds.
    pub base: BaseImage,
    // Fields drop in order: clean up first, then let the next run in.
    cleanup: Cleanup,
    _turn: Flock<File>,
}

impl TestRun {
    /// Builds the whole setup; on error, what was done so far is undone.
    pub fn setup() -> Result<Self> {
        let turn = wait_for_our_turn()?;
        let mut cleanup = Cleanup::default();
        let root = PathBuf::from(format!("/var/tmp/ctr-test-{}", std::process::id()));
        std::fs::create_dir(&root).with_context(|| format!("cannot create {}", root.display()))?;
        cleanup.tree(root.clone());
        host::set_owner_and_mode(&root, 0o755)?;

        let prefix = install_for_tests(&root.join("prefix"))?;
        let user = ensure_test_user(TEST_USER)?;
        reset_user_state(&user, &mut cleanup);
        reset_user_state(&ensure_test_user(TEST_USER2)?, &mut cleanup);
        let (base, tarball) = test_image::prepare(&root)?;
        let scratch = root.join("scratch");
        make_private_dir(&scratch, &user)?;

        let env = ctr_tests::Env::new(prefix, TEST_USER, tarball, scratch)?;
        check_user_can_reach(&env)?;
        Ok(Self { root, env, base, cleanup, _turn: turn })
    }

    /// Creates network namespace `ctr-test-<pid>` with loopback up, so tests
    /// touch no real interface; returns its name.
    pub fn add_netns(&mut self) -> Result<String> {
        let name = format!("ctr-test-{}", std::process::id());
        host::run(Command::new("ip").args(["netns", "add", &name]))?;
        self.cleanup.netns(name.clone());
        host::run(Command::new("ip").args(["-n", &name, "link", "set", "lo", "up"]))?;
        Ok(name)
    }

    /// Moves xtask into a cgroup of this run's own (see [`CgroupScope`]).
    pub fn enter_cgroup_scope(&mut self) -> Result<()> {
        let scope = CgroupScope::enter(&format!("xtask-test-{}", std::process::id()))?;
        self.cleanup.scope(scope);
        Ok(())
    }

    /// The `CTR_TEST_*` variables for the tests.
    pub fn test_vars(&self) -> Vec<(&'static str, PathBuf)> {
        use ctr_tests::vars;
        vec![
            (vars::DRIVER, "1".into()),
            (vars::PREFIX, self.env.prefix.clone()),
            (vars::USER, TEST_USER.into()),
            (USER2_VAR, TEST_USER2.into()),
            (vars::ALPINE, self.env.alpine.clone()),
            (vars::BASE, self.base.id().into()),
            (vars::WORK, self.env.work.clone()),
        ]
    }
}

/// Takes [`RUN_LOCK`], waiting (and saying so) while another run holds it.
fn wait_for_our_turn() -> Result<Flock<File>> {
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(RUN_LOCK)
            .with_context(|| format!("cannot open {RUN_LOCK}"))
    };
    match Flock::lock(open()?, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(lock),
        Err((file, nix::errno::Errno::EWOULDBLOCK)) => {
            eprintln!("xtask: waiting for another `cargo xtask test` or `bench` on this machine to finish");
            Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| anyhow::anyhow!("cannot lock {RUN_LOCK}: {e}"))
        }
        Err((_, e)) => bail!("cannot lock {RUN_LOCK}: {e}"),
    }
}

/// A release install with the test config; returns the prefix.
fn install_for_tests(prefix: &Path) -> Result<PathBuf> {
    let layout = Layout::new(prefix)?;
    install::install_into(&layout, install::Mode::Setuid)?;
    host::write_root_file(&layout.config(), TEST_HELPER_CONFIG.as_bytes(), 0o644)?;
    Ok(layout.prefix)
}

/// A test user, created if missing, with subordinate id ranges.
fn ensure_test_user(name: &str) -> Result<User> {
    let user = match User::from_name(name)? {
        Some(user) => user,
        None => {
            let home = format!("/home/{name}");
            let args = ["--system", "--create-home", "--home-dir", &home, "--shell", "/bin/sh", "--user-group"];
            host::run(Command::new("useradd").args(args).arg(name))?;
            User::from_name(name)?.with_context(|| format!("useradd succeeded but there is no user {name}"))?
        }
    };
    subid::ensure_ranges(name, user.uid.as_raw())?;
    Ok(user)
}

/// Clears what the test user's containers leave outside the work directory
/// (`ctr`'s runtime directory, as XDG_RUNTIME_DIR is unset, and the helper's
/// records), and has `cleanup` clear it again after the run: what an
/// earlier, killed run left there would fail this run's leftover checks.
fn reset_user_state(user: &User, cleanup: &mut Cleanup) {
    let runtime_dir = PathBuf::from(format!("/tmp/ctr-run-{}", user.uid));
    let records = PathBuf::from(format!("{HELPER_RECORDS}/{}", user.uid));
    let stale = crate::cleanup::remove_tree(&runtime_dir)
        .into_iter()
        .chain(crate::cleanup::empty_dir(&records, "removed a helper record:"))
        .chain(crate::cleanup::forget_networks(user.uid.as_raw(), "removed"));
    for warning in stale {
        eprintln!("xtask: warning: from an earlier run: {warning}");
    }
    cleanup.tree(runtime_dir);
    cleanup.empty(records);
    cleanup.networks_of(user.uid.as_raw());
}

/// `dir`, owned by `user`, mode 0700.
fn make_private_dir(dir: &Path, user: &User) -> Result<()> {
    std::fs::create_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    chown(dir, Some(user.uid), Some(user.gid)).with_context(|| format!("cannot chown {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot chmod {}", dir.display()))
}

/// The test user must reach the prefix and the tarball through every
/// directory above them; a root-only home holding the clone would break
/// every test in a confusing way, so check it once here.
fn check_user_can_reach(env: &ctr_tests::Env) -> Result<()> {
    let ctr = env.ctr_path();
    let out = env
        .as_user("test", ["-x".as_ref(), ctr.as_os_str(), "-a".as_ref(), "-r".as_ref(), env.alpine.as_os_str()])
        .output();
    if !out.success() {
        bail!(
            "user {TEST_USER} cannot run {} or read {}: make the directories above them traversable",
            ctr.display(),
            env.alpine.display()
        );
    }
    Ok(())
}
