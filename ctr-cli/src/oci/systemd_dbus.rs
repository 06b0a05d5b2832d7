//! The systemd cgroup driver's side that talks to systemd: where systemd
//! manages the cgroups (PID 1 is systemd), a container's cgroup is a
//! transient scope unit that systemd makes, over its D-Bus API (the
//! system bus as root, the user's bus rootless, as runc does). The scope
//! gets the container's first process (`PIDs`), `Delegate=yes` and the
//! limits systemd has a property for; ctr-oci then writes the rest into
//! the scope's cgroup through its one cgroup manager.
//!
//! Each job (start, stop) is waited for: its `JobRemoved` signal is
//! subscribed to before the call, so it cannot be missed.
//!
//! zbus runs threads of its own. `create` clones the container's process
//! as a fork, which is only safe in a single-threaded process, so D-Bus
//! is first used after the clone; and every call runs with all signals
//! blocked, so that the threads it starts inherit that mask and the
//! signals `run` forwards to the container reach the thread that waits
//! for them.

use super::systemd_cgroup::ScopeUnit;
use super::Result;
use ctr_core::cgroup::ContainerCgroups;
use ctr_core::limits::{shares_to_weight, CpuList, ResourceLimits, SwapLimit};
use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};
use std::time::Duration;
use zbus::blocking::{Connection, Proxy};
use zbus::zvariant::{OwnedObjectPath, Value};

const DESTINATION: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// How long a start or stop job may take (runc waits as long).
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to one systemd manager: the system's, or the user's.
pub struct Systemd {
    manager: Proxy<'static>,
}

/// A unit property, as `StartTransientUnit` and `SetUnitProperties` take it.
pub type Property = (&'static str, Value<'static>);

impl Systemd {
    /// The system manager on the system bus; `user`: the caller's own
    /// manager on its session bus ($DBUS_SESSION_BUS_ADDRESS, else
    /// $XDG_RUNTIME_DIR/bus).
    pub fn connect(user: bool) -> Result<Self> {
        let bus = if user { "user" } else { "system" };
        let connected = signals_blocked(|| if user { Connection::session() } else { Connection::system() });
        let connection = connected.map_err(|e| {
            refused!(
                "the systemd cgroup driver needs systemd's {bus} bus, and connecting to it failed: {e} (is \
dbus running? {}); or configure the caller for cgroupfs",
                if user { "rootless, it is the user's session bus" } else { "root uses the system bus" }
            )
        })?;
        let manager = Proxy::new(&connection, DESTINATION, MANAGER_PATH, MANAGER).map_err(dbus_error("systemd"))?;
        Ok(Self { manager })
    }

    /// The cgroup systemd gave `unit` (from the root of the hierarchy).
    pub fn unit_cgroup(&self, unit: &str) -> Result<String> {
        signals_blocked(|| -> zbus::Result<String> {
            let path: OwnedObjectPath = self.manager.call("GetUnit", &(unit,))?;
            let scope = Proxy::new(self.manager.connection(), DESTINATION, path, "org.freedesktop.systemd1.Scope")?;
            scope.get_property("ControlGroup")
        })
        .map_err(dbus_error(&format!("read the ControlGroup of {unit}")))
    }

    /// Starts `scope` holding `pid`, delegated, with `properties`, and
    /// waits until systemd has made it.
    pub fn start_scope(&self, scope: &ScopeUnit, pid: u32, properties: Vec<Property>) -> Result<()> {
        let mut all: Vec<Property> = vec![
            ("Description", Value::from(format!("ctr-oci container {}", scope.name))),
            ("Slice", Value::from(scope.slice.clone())),
            ("PIDs", Value::from(vec![pid])),
            ("Delegate", Value::from(true)),
            // Not stopped by shutdown.target's conflicts before its owner.
            ("DefaultDependencies", Value::from(false)),
            ("MemoryAccounting", Value::from(true)),
            ("CPUAccounting", Value::from(true)),
            ("TasksAccounting", Value::from(true)),
            ("IOAccounting", Value::from(true)),
        ];
        all.extend(properties);
        let aux: Vec<(&str, Vec<Property>)> = Vec::new();
        let name = scope.name.as_str();
        self.run_job(&format!("start {name}"), || self.manager.call("StartTransientUnit", &(name, "fail", &all, &aux)))
            .map_err(|e| match e {
                Failure::Call(e) if error_name(&e) == Some("org.freedesktop.systemd1.UnitExists") => refused!(
                    "systemd already has a unit {name} (a container with this cgroupsPath exists, or one was left \
behind: systemctl stop {name})"
                ),
                e => e.into_error(),
            })
    }

    /// Stops `unit` and waits until it is gone; a unit systemd no longer
    /// knows is stopped already.
    pub fn stop_unit(&self, unit: &str) -> Result<()> {
        match self.run_job(&format!("stop {unit}"), || self.manager.call("StopUnit", &(unit, "replace"))) {
            Err(Failure::Call(e)) if error_name(&e) == Some("org.freedesktop.systemd1.NoSuchUnit") => Ok(()),
            outcome => outcome.map_err(Failure::into_error),
        }
    }

    /// `update`: the new limits as the unit's properties (kept across
    /// daemon-reload only for the unit's life: runtime).
    pub fn set_properties(&self, unit: &str, properties: Vec<Property>) -> Result<()> {
        if properties.is_empty() {
            return Ok(());
        }
        signals_blocked(|| self.manager.call::<_, _, ()>("SetUnitProperties", &(unit, true, &properties)))
            .map_err(dbus_error(&format!("set the properties of {unit}")))
    }

    /// Calls `call` (which returns a job), then waits for that job's
    /// `JobRemoved` and its result.
    fn run_job(
        &self,
        what: &str,
        call: impl FnOnce() -> zbus::Result<OwnedObjectPath>,
    ) -> std::result::Result<(), Failure> {
        signals_blocked(|| self.run_job_blocked(what, call))
    }

    fn run_job_blocked(
        &self,
        what: &str,
        call: impl FnOnce() -> zbus::Result<OwnedObjectPath>,
    ) -> std::result::Result<(), Failure> {
        let signals = self.manager.receive_signal("JobRemoved").map_err(Failure::Call)?;
        let job = call().map_err(Failure::Call)?;
        let (sender, receiver) = std::sync::mpsc::channel();
        // The iterator blocks with no timeout of its own: it runs on a
        // thread of its own, and a job that never ends leaves it there.
        std::thread::spawn(move || {
            for message in signals {
                let Ok((_, path, _, result)) = message.body().deserialize::<(u32, OwnedObjectPath, String, String)>()
                else {
                    continue;
                };
                if path == job {
                    let _ = sender.send(result);
                    return;
                }
            }
        });
        match receiver.recv_timeout(JOB_TIMEOUT) {
            Ok(result) if result == "done" => Ok(()),
            Ok(result) => Err(Failure::Job(refused!(
                "systemd's job to {what} ended with {result:?} (see journalctl -u {})",
                what.rsplit(' ').next().unwrap_or_default()
            ))),
            Err(_) => Err(Failure::Job(refused!("systemd's job to {what} did not end within {JOB_TIMEOUT:?}"))),
        }
    }
}

/// Runs `f` with every signal blocked in this thread (and so in any thread
/// it starts), then restores the mask.
fn signals_blocked<T>(f: impl FnOnce() -> T) -> T {
    let mut old = SigSet::empty();
    let blocked = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), Some(&mut old)).is_ok();
    let out = f();
    if blocked {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    }
    out
}

/// The cgroup of the manager that makes the scope, known without asking it
/// (D-Bus may only be used after the clone): "" for the system manager;
/// rootless, the user manager's `user@UID.service`, UID being the caller's
/// uid outside any user namespace. The scope's cgroup is checked against
/// it once systemd has made it.
pub fn manager_root(user: bool) -> Result<String> {
    if !user {
        return Ok(String::new());
    }
    let uid = nix::unistd::geteuid().as_raw();
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    let outer =
        super::record::outer_id(&map, uid).ok_or_else(|| refused!("uid {uid} has no mapping in /proc/self/uid_map"))?;
    Ok(format!("/user.slice/user-{outer}.slice/user@{outer}.service"))
}

/// Why a job failed: the call itself (an error systemd named), or the job.
enum Failure {
    Call(zbus::Error),
    Job(super::OciError),
}

impl Failure {
    fn into_error(self) -> super::OciError {
        match self {
            Failure::Call(e) => refused!("systemd refused: {e}"),
            Failure::Job(e) => e,
        }
    }
}

fn error_name(e: &zbus::Error) -> Option<&str> {
    match e {
        zbus::Error::MethodError(name, _, _) => Some(name.as_str()),
        _ => None,
    }
}

fn dbus_error(what: &str) -> impl Fn(zbus::Error) -> super::OciError + '_ {
    move |e| refused!("systemd over D-Bus: {what}: {e}")
}

/// The limits systemd has a property for, as runc's systemd driver maps
/// them on cgroup v2 (systemd's v1 properties are not used: where
/// `cgroups` has a v1 hierarchy, every limit goes through the files only).
pub fn properties(limits: &ResourceLimits, cgroups: &ContainerCgroups) -> Vec<Property> {
    let mut p: Vec<Property> = Vec::new();
    if cgroups.dirs.is_empty() || cgroups.dirs.iter().any(|d| !d.v2) {
        return p;
    }
    if let Some(m) = limits.memory {
        p.push(("MemoryMax", Value::from(m)));
    }
    match (limits.memory_swap, limits.memory) {
        (Some(SwapLimit::Total(total)), Some(m)) => p.push(("MemorySwapMax", Value::from(total.saturating_sub(m)))),
        (Some(SwapLimit::Unlimited), _) => p.push(("MemorySwapMax", Value::from(u64::MAX))),
        _ => {}
    }
    if let Some(low) = limits.memory_reservation {
        p.push(("MemoryLow", Value::from(low)));
    }
    if let Some(tasks) = limits.pids_limit {
        p.push(("TasksMax", Value::from(tasks)));
    }
    if let Some(shares) = limits.cpu_shares {
        p.push(("CPUWeight", Value::from(shares_to_weight(shares))));
    }
    if let Some(q) = limits.cpu_quota {
        p.push(("CPUQuotaPerSecUSec", Value::from(quota_per_second(q.quota_us, q.period_us))));
        p.push(("CPUQuotaPeriodUSec", Value::from(q.period_us)));
    }
    if let Some(cpus) = &limits.cpuset_cpus {
        p.push(("AllowedCPUs", Value::from(bitmask(cpus))));
    }
    if let Some(mems) = &limits.cpuset_mems {
        p.push(("AllowedMemoryNodes", Value::from(bitmask(mems))));
    }
    if let Some(weight) = limits.blkio_weight {
        p.push(("IOWeight", Value::from(ctr_core::limits::blkio_to_io_weight(weight))));
    }
    p
}

/// cpu.max's quota per period as systemd's quota per second, rounded up to
/// whole 10 ms (systemd keeps it in percent and would round it down); the
/// exact quota goes to cpu.max afterwards.
fn quota_per_second(quota_us: u64, period_us: u64) -> u64 {
    let per_second = quota_us.saturating_mul(1_000_000) / period_us.max(1);
    per_second.div_ceil(10_000) * 10_000
}

/// A cpu (or memory node) list as systemd's byte array: bit N of byte N/8.
fn bitmask(list: &CpuList) -> Vec<u8> {
    let top = (0..=u16::MAX as u32).rev().find(|n| list.contains(*n)).unwrap_or(0);
    let mut bytes = vec![0u8; top as usize / 8 + 1];
    for n in (0..=top).filter(|n| list.contains(*n)) {
        bytes[n as usize / 8] |= 1 << (n % 8);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_manager_is_at_the_root() {
        assert_eq!(manager_root(false).unwrap(), "");
    }

    #[test]
    fn cpu_lists_become_systemd_bitmasks() {
        assert_eq!(bitmask(&CpuList::parse("--cpuset-cpus", "0").unwrap()), [1]);
        assert_eq!(bitmask(&CpuList::parse("--cpuset-cpus", "0-2,9").unwrap()), [0b111, 0b10]);
    }

    #[test]
    fn cpu_quota_rounds_up_to_ten_milliseconds_per_second() {
        assert_eq!(quota_per_second(50_000, 100_000), 500_000);
        assert_eq!(quota_per_second(1_000, 100_000), 10_000);
        assert_eq!(quota_per_second(123_456, 1_000_000), 130_000);
    }

    #[test]
    fn limits_map_to_systemd_properties_on_cgroup_v2_only() {
        let limits = ResourceLimits { memory: Some(64 << 20), pids_limit: Some(33), ..Default::default() };
        let dir = |v2| ctr_core::protocol::CgroupDir { v2, controllers: Vec::new(), path: "/x".into() };
        let unified = ContainerCgroups { dirs: vec![dir(true)] };
        let names: Vec<&str> = properties(&limits, &unified).iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["MemoryMax", "TasksMax"]);
        assert!(properties(&limits, &ContainerCgroups { dirs: vec![dir(false), dir(true)] }).is_empty());
        assert!(properties(&limits, &ContainerCgroups::default()).is_empty());
    }
}
