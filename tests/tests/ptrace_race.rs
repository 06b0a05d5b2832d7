//! bubblewrap's CVE-2016-8659 class: the calling user ptraces (or opens the
//! memory of) the privileged half of a setuid sandbox while it runs. Here a
//! process of the test user races PTRACE_SEIZE and /proc/PID/mem opens
//! against many helper runs. No attempt may succeed while the target still
//! runs the helper's image (the helper itself, or its child before it
//! executes `ctr-init`): that is judged from the target's executable after
//! the attach, and from an exec event reported to us, which proves that the
//! attach came before the exec. Attaching to `ctr-init` after its exec is
//! the caller's right: it runs with the caller's ids and no host capability.

use ctr_tests::env;
use nix::sys::ptrace;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

const ATTACKER_MODE: &str = "CTR_TEST_PTRACE_ATTACKER_SECONDS";
const HELPER_PATH: &str = "CTR_TEST_PTRACE_HELPER";

#[test]
fn cve_2016_8659_ptrace_and_mem_never_reach_a_privileged_process() {
    let Some(env) = env() else { return };
    let attacker_seconds = 25;
    let me = std::env::current_exe().unwrap();
    // Re-run this test binary as the test user, in attacker mode.
    let attacker = env
        .as_user(&me, ["--exact", "attacker", "--include-ignored", "--nocapture", "--test-threads=1"])
        .env(ATTACKER_MODE, attacker_seconds.to_string())
        .env(HELPER_PATH, env.helper_path())
        .timeout(Duration::from_secs(attacker_seconds + 60))
        .spawn();
    std::thread::sleep(Duration::from_millis(500));
    let deadline = Instant::now() + Duration::from_secs(attacker_seconds - 3);
    let mut runs = 0;
    while Instant::now() < deadline {
        let out = env.ctr().args(["run", "--rm", "busybox", "true"]).output();
        assert!(out.success(), "ctr run failed under attack: {}", out.stderr);
        runs += 1;
    }
    let report = attacker.wait();
    // The test harness may print "test attacker ... " on the same line.
    let line = report.stdout.lines().find_map(|l| l.find("attacker: ").map(|at| &l[at..])).unwrap_or_else(|| {
        panic!("the attacker printed no report\nstdout:\n{}\nstderr:\n{}", report.stdout, report.stderr)
    });
    eprintln!("{runs} helper runs; {line}");
    let field = |name: &str| -> u64 {
        line.split_whitespace().find_map(|w| w.strip_prefix(name)).and_then(|v| v.parse().ok()).unwrap()
    };
    assert_eq!(field("breaches="), 0, "{line}\n{}", report.stdout);
    assert!(field("privileged_seen=") > 0, "the attacker never saw the helper running, so it tested nothing: {line}");
}

/// Attacker mode: only does something when started by the test above.
#[test]
#[ignore = "run by cve_2016_8659_ptrace_and_mem_never_reach_a_privileged_process as the test user"]
fn attacker() {
    let Some(seconds) = std::env::var(ATTACKER_MODE).ok().and_then(|s| s.parse::<u64>().ok()) else { return };
    let helper = std::path::PathBuf::from(std::env::var_os(HELPER_PATH).expect("the helper's path"));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let me = nix::unistd::getuid().as_raw().to_string();
    let host_userns = std::fs::read_link("/proc/self/ns/user").unwrap();
    let (mut attempts, mut privileged_seen, mut attached, mut breaches) = (0u64, 0u64, 0u64, 0u64);
    while Instant::now() < deadline {
        for pid in helper_family(&me) {
            privileged_seen += u64::from(holds_host_privilege(pid, &host_userns));
            attempts += 1;
            let target = Pid::from_raw(pid);
            if ptrace::seize(target, ptrace::Options::PTRACE_O_TRACEEXEC).is_ok() {
                attached += 1;
                let seen = describe(pid);
                if let Some(why) = seized_too_early(target, &helper, &host_userns) {
                    breaches += 1;
                    println!("BREACH: ptrace of pid {pid}: {why}; at attach: {seen}");
                }
                let _ = ptrace::detach(target, None);
            }
            if let Ok(mem) = std::fs::File::open(format!("/proc/{pid}/mem")) {
                attached += 1;
                // The open was checked against the image it ran then; an
                // image of the helper now means the helper's image then.
                if runs_image(pid, &helper) || holds_host_privilege(pid, &host_userns) {
                    breaches += 1;
                    println!("BREACH: /proc/{pid}/mem opened while it ran the helper");
                }
                drop(mem);
            }
        }
    }
    println!(
        "\nattacker: attempts={attempts} privileged_seen={privileged_seen} attached={attached} breaches={breaches}"
    );
}

/// What a process was, for a report: its name, image, ids and parent.
fn describe(pid: i32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |key: &str| status.lines().find(|l| l.starts_with(key)).unwrap_or_default().to_owned();
    let exe =
        std::fs::read_link(format!("/proc/{pid}/exe")).map_or_else(|e| format!("<{e}>"), |p| p.display().to_string());
    format!("{} exe={exe} {} {} {}", field("Name:"), field("Uid:"), field("PPid:"), field("NSpid:"))
}

fn runs_image(pid: i32, image: &std::path::Path) -> bool {
    std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == image)
}

/// After a successful seize: was the target still the helper at that
/// moment? Its image only ever changes from the helper to `ctr-init` (and
/// then to the container's command), so the helper's image now proves it; an
/// image we cannot read now, followed by an exec into `ctr-init` reported to us, proves
/// it too; and so does host privilege while it is stopped.
fn seized_too_early(target: Pid, helper: &std::path::Path, host_userns: &std::path::Path) -> Option<&'static str> {
    let exe_at_attach = std::fs::read_link(format!("/proc/{target}/exe"));
    if exe_at_attach.as_deref().is_ok_and(|exe| exe == helper) {
        return Some("attached while it runs the helper's image");
    }
    if ptrace::interrupt(target).is_err() {
        return None; // it is gone
    }
    // PREFIX/libexec/ctr/ctr-setuid-helper -> PREFIX/libexec/ctr/ctr-init
    let ctr = helper.parent().map(|dir| dir.join("ctr-init"));
    loop {
        match waitpid(target, Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::PtraceEvent(_, _, event)) if event == libc::PTRACE_EVENT_EXEC => {
                let became_ctr = std::fs::read_link(format!("/proc/{target}/exe")).ok() == ctr;
                return (exe_at_attach.is_err() && became_ctr)
                    .then_some("the exec of ctr init followed the attach: it was attached while it ran the helper");
            }
            Ok(WaitStatus::PtraceEvent(..)) | Ok(WaitStatus::Stopped(..)) => {
                return holds_host_privilege(target.as_raw(), host_userns)
                    .then_some("it holds host privilege while stopped");
            }
            Ok(WaitStatus::PtraceSyscall(_)) | Ok(WaitStatus::Continued(_)) | Ok(WaitStatus::StillAlive) => continue,
            _ => return None, // exited
        }
    }
}

/// Processes of ours that run the helper or came from it (its name shows
/// until the container's init executes): comm is truncated to 15 bytes.
fn helper_family(uid: &str) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let real_uid = status.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(1));
            comm.trim() == "ctr-setuid-help" && real_uid == Some(uid)
        })
        .collect()
}

/// A host id 0 among its uids or gids, or capabilities while it is in the
/// host's user namespace. Unknown (the process left) counts as no.
fn holds_host_privilege(pid: i32, host_userns: &std::path::Path) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return false };
    let ids_have_root = ["Uid:", "Gid:"].iter().any(|key| {
        status.lines().find(|l| l.starts_with(key)).is_some_and(|l| l.split_whitespace().skip(1).any(|v| v == "0"))
    });
    let caps =
        status.lines().find(|l| l.starts_with("CapPrm:")).and_then(|l| l.split_whitespace().nth(1)).unwrap_or("0");
    let has_caps = u64::from_str_radix(caps, 16).unwrap_or(0) != 0;
    // A non-dumpable process hides its namespace link from us: assume the host's.
    let in_host_userns = std::fs::read_link(format!("/proc/{pid}/ns/user")).map_or(true, |ns| ns == host_userns);
    ids_have_root || (has_caps && in_host_userns)
}
