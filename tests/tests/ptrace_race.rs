//! bubblewrap's CVE-2016-8659 class: the calling user ptraces (or opens the
//! memory of) the privileged half of a setuid sandbox while it runs. Here a
//! process of the test user races PTRACE_SEIZE and /proc/PID/mem opens
//! against many helper runs, and no attempt may succeed on a process that
//! holds host privilege (a host id 0, or capabilities in the host's user
//! namespace).

use ctr_tests::env;
use nix::sys::ptrace;
use nix::unistd::Pid;
use std::time::{Duration, Instant};

const ATTACKER_MODE: &str = "CTR_TEST_PTRACE_ATTACKER_SECONDS";

#[test]
fn ptrace_and_mem_never_reach_a_privileged_process() {
    let Some(env) = env() else { return };
    let attacker_seconds = 25;
    let me = std::env::current_exe().unwrap();
    // Re-run this test binary as the test user, in attacker mode.
    let attacker = env
        .as_user(&me, ["--exact", "attacker", "--include-ignored", "--nocapture", "--test-threads=1"])
        .env(ATTACKER_MODE, attacker_seconds.to_string())
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
#[ignore = "run by ptrace_and_mem_never_reach_a_privileged_process as the test user"]
fn attacker() {
    let Some(seconds) = std::env::var(ATTACKER_MODE).ok().and_then(|s| s.parse::<u64>().ok()) else { return };
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let me = nix::unistd::getuid().as_raw().to_string();
    let host_userns = std::fs::read_link("/proc/self/ns/user").unwrap();
    let (mut attempts, mut privileged_seen, mut attached, mut breaches) = (0u64, 0u64, 0u64, 0u64);
    while Instant::now() < deadline {
        for pid in helper_family(&me) {
            let privileged_before = holds_host_privilege(pid, &host_userns);
            privileged_seen += u64::from(privileged_before);
            attempts += 1;
            let seized = ptrace::seize(Pid::from_raw(pid), ptrace::Options::empty()).is_ok();
            let mem = std::fs::File::open(format!("/proc/{pid}/mem")).is_ok();
            if seized || mem {
                attached += 1;
                // Privilege is judged while we hold the attachment.
                if holds_host_privilege(pid, &host_userns) || privileged_before {
                    breaches += 1;
                    println!("BREACH: pid {pid} seized={seized} mem={mem}");
                }
                if seized {
                    let _ = ptrace::detach(Pid::from_raw(pid), None);
                }
            }
        }
    }
    println!("\nattacker: attempts={attempts} privileged_seen={privileged_seen} attached={attached} breaches={breaches}");
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
    let caps = status.lines().find(|l| l.starts_with("CapPrm:")).and_then(|l| l.split_whitespace().nth(1)).unwrap_or("0");
    let has_caps = u64::from_str_radix(caps, 16).unwrap_or(0) != 0;
    // A non-dumpable process hides its namespace link from us: assume the host's.
    let in_host_userns = std::fs::read_link(format!("/proc/{pid}/ns/user")).map_or(true, |ns| ns == host_userns);
    ids_have_root || (has_caps && in_host_userns)
}
