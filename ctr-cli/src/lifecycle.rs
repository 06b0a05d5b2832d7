//! Commands on existing containers: `ps`, `pause`, `unpause`, `stats`.

use crate::cgroup_stats::{self, Sample};
use crate::container::{self, State, Status};
use crate::helper_client::Helper;
use crate::paths::Paths;
use anyhow::{bail, Result};
use ctr_core::ids::ContainerId;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct PsArgs {
    /// Show every container, not only running ones.
    #[arg(short, long)]
    pub all: bool,
    /// Only print container ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// `json` prints one JSON object per container.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct StatsArgs {
    /// Print one reading and exit.
    #[arg(long)]
    pub no_stream: bool,
    /// `json` prints one JSON object per container and reading.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Containers (default: all running ones).
    pub containers: Vec<String>,
}

/// A state file says running; the process may have died without anyone
/// recording it (a killed `ctr`, a reboot).
pub fn is_alive(state: &State) -> bool {
    state.status == Status::Running
        && state.pid.is_some_and(|pid| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok())
}

fn status_text(state: &State) -> String {
    match (state.status, is_alive(state), state.exit_code) {
        (Status::Running, true, _) => "Up".into(),
        (Status::Created, _, _) => "Created".into(),
        (_, _, Some(code)) => format!("Exited ({code})"),
        _ => "Exited (unknown)".into(),
    }
}

pub fn ps(paths: &Paths, args: PsArgs) -> Result<i32> {
    let states: Vec<State> = container::list(paths)?.into_iter().filter(|s| args.all || is_alive(s)).collect();
    let mut out = std::io::stdout().lock();
    if args.quiet {
        for s in &states {
            writeln!(out, "{}", &s.id[..12])?;
        }
    } else if args.format.as_deref() == Some("json") {
        for s in &states {
            writeln!(out, "{}", serde_json::json!({"Id": s.id, "Names": s.name, "Image": s.image, "Command": s.command.join(" "), "Status": status_text(s), "Pid": s.pid}))?;
        }
    } else {
        writeln!(out, "{:<14}{:<18}{:<28}{:<20}NAMES", "CONTAINER ID", "IMAGE", "COMMAND", "STATUS")?;
        for s in &states {
            let mut command = s.command.join(" ");
            if command.len() > 24 {
                command.truncate(23);
                command.push('…');
            }
            writeln!(out, "{:<14}{:<18}{:<28}{:<20}{}", &s.id[..12], s.image, format!("\"{command}\""), status_text(s), s.name)?;
        }
    }
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// Kill and remove running containers too.
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Removes containers: their cgroup (killing what is left), writable
/// layer, state and name. Running ones only with --force.
pub fn rm(paths: &Paths, args: RmArgs) -> Result<i32> {
    let helper = Helper::new(&paths.helper());
    let mut failed = false;
    for key in &args.containers {
        let result = (|| -> Result<()> {
            let state = container::find(paths, key)?;
            if is_alive(&state) && !args.force {
                bail!("container {} is running: stop it first or use `ctr rm -f`", state.name);
            }
            helper.remove_cgroup(&ContainerId::parse(&state.id)?)?;
            crate::run::remove_container(&helper, &container::Container::from_state(paths, &state)?)?;
            println!("{}", state.name);
            Ok(())
        })();
        if let Err(e) = result {
            eprintln!("ctr: {e:#}");
            failed = true;
        }
    }
    Ok(i32::from(failed))
}

/// Everything ctr knows of a container, as JSON.
pub fn inspect(paths: &Paths, keys: &[String]) -> Result<i32> {
    let mut all = Vec::new();
    for key in keys {
        let s = container::find(paths, key)?;
        all.push(serde_json::json!({
            "Id": s.id,
            "Name": s.name,
            "Created": s.created,
            "Image": s.image,
            "ImageId": s.image_id,
            "Config": { "Cmd": s.command },
            "State": {
                "Status": if is_alive(&s) { "running" } else if s.status == Status::Created { "created" } else { "exited" },
                "Running": is_alive(&s),
                "Pid": s.pid,
                "ExitCode": s.exit_code,
                "OOMKilled": s.oom_killed,
            },
            "HostConfig": s.limits,
            "Cgroups": s.cgroups,
        }));
    }
    println!("{}", serde_json::to_string_pretty(&all)?);
    Ok(0)
}

fn running(paths: &Paths, key: &str) -> Result<State> {
    let state = container::find(paths, key)?;
    if !is_alive(&state) {
        bail!("container {} is not running", state.name);
    }
    Ok(state)
}

pub fn pause(paths: &Paths, keys: &[String], frozen: bool) -> Result<i32> {
    let helper = Helper::new(&paths.helper());
    for key in keys {
        let state = running(paths, key)?;
        helper.freeze(&ContainerId::parse(&state.id)?, frozen)?;
        println!("{}", state.name);
    }
    Ok(0)
}

fn host_memory() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    cgroup_stats::keyed(&text.replace(':', ""), "MemTotal").map(|kb| kb * 1024).unwrap_or(0)
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2}{}", UNITS[unit])
}

/// One row of `ctr stats`, from two samples `elapsed` apart.
fn row(state: &State, before: &Sample, after: &Sample, elapsed: Duration) -> serde_json::Value {
    let cpu = (after.cpu_ns.saturating_sub(before.cpu_ns)) as f64 / elapsed.as_nanos().max(1) as f64 * 100.0;
    let limit = after.memory_limit.unwrap_or_else(host_memory);
    let mem_pct = if limit > 0 { after.memory_bytes as f64 / limit as f64 * 100.0 } else { 0.0 };
    serde_json::json!({
        "ID": &state.id[..12], "Name": state.name, "CPUPerc": format!("{cpu:.2}%"),
        "MemUsage": format!("{} / {}", human(after.memory_bytes), human(limit)), "MemPerc": format!("{mem_pct:.2}%"),
        "NetIO": "--", "BlockIO": format!("{} / {}", human(after.block_read_bytes), human(after.block_write_bytes)),
        "PIDs": after.pids, "CPUNanos": after.cpu_ns, "MemBytes": after.memory_bytes,
    })
}

pub fn stats(paths: &Paths, args: StatsArgs) -> Result<i32> {
    let interval = if args.no_stream { Duration::from_millis(500) } else { Duration::from_secs(1) };
    let json = args.format.as_deref() == Some("json");
    let clear = !json && !args.no_stream && std::io::stdout().is_terminal();
    loop {
        let states: Vec<State> = if args.containers.is_empty() {
            container::list(paths)?.into_iter().filter(is_alive).collect()
        } else {
            args.containers.iter().map(|k| running(paths, k)).collect::<Result<_>>()?
        };
        let before: Vec<Sample> = states.iter().map(|s| cgroup_stats::sample(&s.cgroups)).collect();
        let start = Instant::now();
        std::thread::sleep(interval);
        let elapsed = start.elapsed();
        let rows: Vec<serde_json::Value> =
            states.iter().zip(&before).map(|(s, b)| row(s, b, &cgroup_stats::sample(&s.cgroups), elapsed)).collect();
        let mut out = std::io::stdout().lock();
        if clear {
            write!(out, "\x1b[2J\x1b[H")?;
        }
        if json {
            for r in &rows {
                writeln!(out, "{r}")?;
            }
        } else {
            writeln!(out, "{:<14}{:<16}{:<9}{:<24}{:<9}{:<10}{:<22}PIDS", "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O")?;
            for r in &rows {
                let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
                writeln!(out, "{:<14}{:<16}{:<9}{:<24}{:<9}{:<10}{:<22}{}", s("ID"), s("Name"), s("CPUPerc"), s("MemUsage"), s("MemPerc"), s("NetIO"), s("BlockIO"), r["PIDs"])?;
            }
        }
        out.flush()?;
        if args.no_stream {
            return Ok(0);
        }
    }
}
