//! Commands that change a container's life: `stop`, `kill`, `wait`, `rm`
//! and `container prune`. Each takes the container's lock
//! ([`crate::lock`]) while it acts, signals only through a pidfd checked
//! against the recorded start time, and never trusts a "running" record
//! whose process is gone: such a stale container (its monitor was killed,
//! or the machine rebooted) is recorded as exited with an unknown code and
//! its cgroup removed ([`settle_stale`]). Every cleanup is idempotent.

use crate::container::{self, Container, RunState, State, Status};
use crate::helper_client::Helper;
use crate::liveness::{self, ProcessRef};
use crate::lock::ContainerLock;
use crate::paths::Paths;
use anyhow::{anyhow, bail, Result};
use nix::sys::signal::Signal;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// Runs `action` on each container named, printing errors; docker's
/// status: 1 if any failed.
fn each(keys: &[String], mut action: impl FnMut(&str) -> Result<()>) -> i32 {
    let mut failed = false;
    for key in keys {
        if let Err(e) = action(key) {
            eprintln!("ctr: {e:#}");
            failed = true;
        }
    }
    i32::from(failed)
}

fn locate(paths: &Paths, key: &str) -> Result<(Container, State)> {
    let state = container::find(paths, key)?;
    Ok((Container::from_state(paths, &state)?, state))
}

/// The lock and the state as it is under it.
fn lock(container: &Container, key: &str) -> Result<(ContainerLock, State)> {
    let no_such = || anyhow!("no such container: {key} (it was removed meanwhile)");
    let lock = ContainerLock::acquire(&container.state_dir)?.ok_or_else(no_such)?;
    let state = container.read_state()?.ok_or_else(no_such)?;
    Ok((lock, state))
}

/// Docker's signal names: KILL, SIGKILL, kill or a number.
pub fn parse_signal(text: &str) -> Result<Signal> {
    let upper = text.trim().to_ascii_uppercase();
    if let Ok(n) = upper.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| anyhow!("invalid signal {text:?}: no signal number {n}"));
    }
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    Signal::from_str(&name)
        .map_err(|_| anyhow!("invalid signal {text:?}: use a name such as TERM, KILL, HUP or a number"))
}

#[derive(clap::Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait after SIGTERM before SIGKILL.
    #[arg(short = 't', long = "time", value_name = "SECS", default_value_t = 10)]
    pub time: u64,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// SIGTERM, then SIGKILL once the grace period is over; returns when the
/// container's exit is recorded.
pub fn stop(paths: &Paths, args: StopArgs) -> Result<i32> {
    let helper = Helper::new(&paths.helper());
    Ok(each(&args.containers, |key| {
        let (container, _) = locate(paths, key)?;
        let (lock, state) = lock(&container, key)?;
        if let Some(pidfd) = state.init.as_ref().filter(|_| state.status == Status::Running).and_then(ProcessRef::pidfd)
        {
            let _ = liveness::pidfd_send_signal(&pidfd, Signal::SIGTERM);
            if !liveness::wait_exit(&pidfd, Some(Duration::from_secs(args.time))) {
                let _ = liveness::pidfd_send_signal(&pidfd, Signal::SIGKILL);
                liveness::wait_exit(&pidfd, Some(Duration::from_secs(10)));
            }
        }
        drop(lock);
        await_record(paths, &helper, &container, key)?;
        println!("{key}");
        Ok(())
    }))
}

#[derive(clap::Args, Debug)]
pub struct KillArgs {
    /// The signal to send (name or number).
    #[arg(short = 's', long = "signal", value_name = "SIGNAL", default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn kill(paths: &Paths, args: KillArgs) -> Result<i32> {
    let signal = parse_signal(&args.signal)?;
    Ok(each(&args.containers, |key| {
        let (container, _) = locate(paths, key)?;
        let (_lock, state) = lock(&container, key)?;
        let pidfd = state.init.as_ref().filter(|_| state.is_running()).and_then(ProcessRef::pidfd);
        let Some(pidfd) = pidfd else { bail!("container {key} is not running") };
        liveness::pidfd_send_signal(&pidfd, signal).map_err(|e| anyhow!("cannot send {signal} to {key}: {e}"))?;
        println!("{key}");
        Ok(())
    }))
}

#[derive(clap::Args, Debug)]
pub struct WaitArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Blocks until each container stops, then prints its exit code.
pub fn wait(paths: &Paths, args: WaitArgs) -> Result<i32> {
    let helper = Helper::new(&paths.helper());
    Ok(each(&args.containers, |key| {
        let (container, state) = locate(paths, key)?;
        if let Some(pidfd) = state.init.as_ref().filter(|_| state.status == Status::Running).and_then(ProcessRef::pidfd)
        {
            liveness::wait_exit(&pidfd, None);
        }
        let state = await_record(paths, &helper, &container, key)?;
        match state.run_state() {
            RunState::Exited(Some(code)) => println!("{code}"),
            RunState::Created => bail!("container {key} never started"),
            _ => bail!("container {key} exited, but its exit code is unknown: its monitor was killed"),
        }
        Ok(())
    }))
}

/// After the container's init is gone: waits for whoever waits on it (its
/// monitor, or `ctr run`) to record the exit, or settles it ourselves if
/// that is gone too. Returns the final state.
fn await_record(paths: &Paths, helper: &Helper, container: &Container, key: &str) -> Result<State> {
    let give_up = Instant::now() + Duration::from_secs(30);
    loop {
        let Some(state) = container.read_state()? else { bail!("container {key} was removed") };
        if state.status != Status::Running {
            return Ok(state);
        }
        let monitor_alive = state.monitor.as_ref().is_some_and(ProcessRef::is_alive);
        if !monitor_alive || Instant::now() > give_up {
            settle_stale(paths, helper, container)?;
            return container.read_state()?.ok_or_else(|| anyhow!("container {key} was removed"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A container recorded as running whose init and monitor are both gone:
/// record it as exited with an unknown code and remove its cgroup (and
/// with --rm, the container), as its monitor would have.
pub fn settle_stale(paths: &Paths, helper: &Helper, container: &Container) -> Result<()> {
    let Some(mut state) = container.read_state()? else { return Ok(()) };
    let init_alive = state.init.as_ref().is_some_and(ProcessRef::is_alive);
    let monitor_alive = state.monitor.as_ref().is_some_and(ProcessRef::is_alive);
    if state.status != Status::Running || init_alive || monitor_alive {
        return Ok(());
    }
    let rm = state.auto_remove;
    crate::run::finish(paths, helper, container, &mut state, None, true, rm)
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// Kill and remove running containers too.
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Removes containers: their processes (with -f), cgroup, writable layer,
/// log, state and name; then waits for their monitor to be gone, so that
/// nothing of them is left when it returns.
pub fn rm(paths: &Paths, args: RmArgs) -> Result<i32> {
    let helper = Helper::new(&paths.helper());
    Ok(each(&args.containers, |key| {
        let (container, _) = locate(paths, key)?;
        remove(&helper, &container, key, args.force)?;
        println!("{key}");
        Ok(())
    }))
}

fn remove(helper: &Helper, container: &Container, key: &str, force: bool) -> Result<()> {
    let (lock, state) = lock(container, key)?;
    let running = state.is_running();
    if running && !force {
        bail!("cannot remove container {key}: it is running; stop it first or use `ctr rm -f`");
    }
    let init = state.init.as_ref().and_then(ProcessRef::pidfd);
    if let Some(pidfd) = &init {
        let _ = liveness::pidfd_send_signal(pidfd, Signal::SIGKILL);
    }
    // Kills whatever is left in the cgroup, even of a stale container.
    helper.remove_cgroup(&container.id)?;
    crate::run::remove_container(helper, container)?;
    drop(lock);
    for pidfd in init.iter().chain(state.monitor.as_ref().and_then(ProcessRef::pidfd).as_ref()) {
        liveness::wait_exit(pidfd, Some(Duration::from_secs(10)));
    }
    Ok(())
}

#[derive(clap::Subcommand, Debug)]
pub enum ContainerCommand {
    /// Remove every stopped container.
    Prune {
        /// Do not ask for confirmation.
        #[arg(short, long)]
        force: bool,
    },
    /// List containers (as `ctr ps`).
    #[command(alias = "list")]
    Ls(crate::lifecycle::PsArgs),
    /// Remove containers (as `ctr rm`).
    Rm(RmArgs),
}

pub fn container(paths: &Paths, command: ContainerCommand) -> Result<i32> {
    match command {
        ContainerCommand::Prune { force } => prune(paths, force),
        ContainerCommand::Ls(args) => crate::lifecycle::ps(paths, args),
        ContainerCommand::Rm(args) => rm(paths, args),
    }
}

fn prune(paths: &Paths, force: bool) -> Result<i32> {
    use std::io::{BufRead, IsTerminal, Write};
    if !force && std::io::stdin().is_terminal() {
        print!("WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !answer.trim().eq_ignore_ascii_case("y") {
            return Ok(0);
        }
    }
    let helper = Helper::new(&paths.helper());
    let mut failed = false;
    println!("Deleted Containers:");
    for state in container::list(paths)? {
        if state.is_running() {
            continue;
        }
        let container = Container::from_state(paths, &state)?;
        match remove(&helper, &container, &state.id, false) {
            Ok(()) => println!("{}", state.id),
            Err(e) => {
                // Started or removed meanwhile by someone else: no failure of ours.
                if container.read_state().ok().flatten().is_some_and(|s| !s.is_running()) {
                    eprintln!("ctr: {e:#}");
                    failed = true;
                }
            }
        }
    }
    // And what containers that died unnoticed left on the host.
    if let Err(e) = helper.reconcile() {
        eprintln!("ctr: {e:#}");
        failed = true;
    }
    Ok(i32::from(failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("hup").unwrap(), Signal::SIGHUP);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("SIGUSR1").unwrap(), Signal::SIGUSR1);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
        assert!(parse_signal("").is_err());
    }
}
