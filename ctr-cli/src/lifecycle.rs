//! Commands that look at containers: `ps`, `inspect`, `stats`; and
//! `pause`, `unpause`. What they show of a container's life comes from
//! [`State::run_state`], which checks the kernel, never from the record
//! alone. (`stop`, `kill`, `wait`, `rm` and `prune` are in `control`.)

use crate::cgroup_stats::{self, Sample};
use crate::container::{self, Container, RunState, State};
use crate::helper_client::Helper;
use crate::image::human_size;
use crate::net_stats::{self, NetBytes};
use crate::paths::Paths;
use anyhow::{bail, Context, Result};
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

/// A container's record says running and its init (pid and start time)
/// still runs.
pub fn is_alive(state: &State) -> bool {
    state.is_running()
}

/// "5 seconds", "About a minute", "3 hours": docker's human durations.
pub fn human_duration(secs: u64) -> String {
    match secs {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{secs} seconds"),
        60..=119 => "About a minute".into(),
        120..=3599 => format!("{} minutes", secs / 60),
        3600..=7199 => "About an hour".into(),
        7200..=172_799 => format!("{} hours", secs / 3600),
        _ => format!("{} days", secs / 86_400),
    }
}

fn seconds_since(rfc3339: Option<&str>) -> Option<u64> {
    let then = humantime::parse_rfc3339(rfc3339?).ok()?;
    Some(std::time::SystemTime::now().duration_since(then).map(|d| d.as_secs()).unwrap_or(0))
}

/// Docker's STATUS column: "Up 5 seconds", "Exited (0) 2 minutes ago",
/// "Exited (unknown)" for a container whose exit nobody recorded.
pub fn status_text(state: &State) -> String {
    match state.run_state() {
        RunState::Created => "Created".into(),
        RunState::Running => match seconds_since(state.started_at.as_deref()) {
            Some(s) => format!("Up {}", human_duration(s)),
            None => "Up".into(),
        },
        RunState::Exited(Some(code)) => match seconds_since(state.finished_at.as_deref()) {
            Some(s) => format!("Exited ({code}) {} ago", human_duration(s)),
            None => format!("Exited ({code})"),
        },
        RunState::Exited(None) => "Exited (unknown)".into(),
    }
}

fn created_text(state: &State) -> String {
    format!("{} ago", human_duration(container::now_unix().saturating_sub(state.created)))
}

pub fn ps(paths: &Paths, args: PsArgs) -> Result<i32> {
    let states: Vec<State> = container::list(paths)?.into_iter().filter(|s| args.all || s.is_running()).collect();
    let mut out = std::io::stdout().lock();
    if args.quiet {
        for s in &states {
            writeln!(out, "{}", s.short_id())?;
        }
    } else if args.format.as_deref() == Some("json") {
        for s in &states {
            writeln!(
                out,
                "{}",
                serde_json::json!({
                    "ID": s.short_id(), "Id": s.id, "Names": s.name, "Image": s.image, "Command": s.command.join(" "),
                    "CreatedAt": s.created, "RunningFor": created_text(s), "Status": status_text(s),
                    "State": s.run_state().docker_name(), "Pid": s.init.as_ref().filter(|_| s.is_running()).map(|p| p.pid),
                })
            )?;
        }
    } else if let Some(format) = &args.format {
        bail!("--format {format:?} is not supported: use `json`, or `ctr inspect --format '{{{{.State.Status}}}}'`");
    } else {
        let mut rows = vec![["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"].map(String::from)];
        for s in &states {
            let mut command: String = s.command.join(" ");
            if command.chars().count() > 20 {
                command = command.chars().take(19).collect::<String>() + "…";
            }
            rows.push([
                s.short_id().to_owned(),
                s.image.clone(),
                format!("\"{command}\""),
                created_text(s),
                status_text(s),
                s.name.clone(),
            ]);
        }
        write_table(&mut out, &rows)?;
    }
    Ok(0)
}

/// Columns padded to their widest cell plus three spaces, as docker's
/// tabwriter does; the last column is not padded.
fn write_table<const N: usize>(out: &mut impl Write, rows: &[[String; N]]) -> std::io::Result<()> {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < N {
                line.extend(std::iter::repeat_n(' ', widths[i] - cell.chars().count() + 3));
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// `json` (the default), or a template of `{{.Path.To.Field}}` and
    /// `{{json .Path}}` items, e.g. '{{.State.Pid}}'.
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Everything ctr knows of a container, as docker's inspect names it.
pub fn inspect_value(paths: &Paths, s: &State) -> Result<serde_json::Value> {
    let container = Container::from_state(paths, s)?;
    let run_state = s.run_state();
    let running = run_state == RunState::Running;
    let exit_code = match run_state {
        RunState::Exited(code) => code,
        _ => None,
    };
    let process = s.process.as_ref();
    let mut host_config = serde_json::to_value(&s.limits)?;
    let seccomp = s.security.as_ref().map(|security| {
        let (host, seccomp) = security.inspect_json();
        if let (Some(to), serde_json::Value::Object(from)) = (host_config.as_object_mut(), host) {
            to.extend(from);
        }
        seccomp
    });
    Ok(serde_json::json!({
        "Id": s.id,
        "Name": s.name,
        "Created": s.created,
        "Image": s.image,
        "ImageId": s.image_id,
        "Path": s.command.first(),
        "Args": s.command.get(1..).unwrap_or_default(),
        "Config": {
            "Cmd": s.command,
            "Env": process.map(|p| p.env.clone()),
            "WorkingDir": process.map(|p| p.cwd.clone()),
            "User": process.and_then(|p| p.user.clone()),
            "Hostname": s.hostname,
            "Tty": s.tty,
            "CapAdd": process.map(|p| p.capabilities.clone()),
        },
        "State": {
            "Status": run_state.docker_name(),
            "Running": running,
            "Pid": s.init.as_ref().filter(|_| running).map_or(0, |p| p.pid),
            "ExitCode": exit_code,
            "OOMKilled": s.oom_killed,
            "StartedAt": s.started_at,
            "FinishedAt": s.finished_at,
            "Error": s.error,
            "MonitorPid": s.monitor.as_ref().filter(|m| m.is_alive()).map(|m| m.pid),
        },
        "HostConfig": host_config,
        "Seccomp": seccomp,
        "AutoRemove": s.auto_remove,
        "Mounts": crate::mount_args::inspect_json(&s.mounts),
        "NetworkSettings": s.network,
        "CgroupPaths": s.cgroups.iter().map(|c| c.path.clone()).collect::<Vec<_>>(),
        "Cgroups": s.cgroups,
        "LogPath": container.log_path(),
    }))
}

pub fn inspect(paths: &Paths, args: InspectArgs) -> Result<i32> {
    let mut all = Vec::new();
    for key in &args.containers {
        all.push(inspect_value(paths, &container::find(paths, key)?)?);
    }
    match args.format.as_deref() {
        None | Some("json") => println!("{}", serde_json::to_string_pretty(&all)?),
        Some(template) => {
            for value in &all {
                println!("{}", render_template(template, value)?);
            }
        }
    }
    Ok(0)
}

/// The small part of Go templates that scripts use with inspect:
/// `{{.A.B}}` (strings bare, the rest as JSON) and `{{json .A}}`.
pub fn render_template(template: &str, value: &serde_json::Value) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").context("unclosed {{ in --format")? + start;
        let expr = rest[start + 2..end].trim();
        let (as_json, path) = match expr.strip_prefix("json ") {
            Some(p) => (true, p.trim()),
            None => (false, expr),
        };
        let path = path.strip_prefix('.').with_context(|| format!("--format: {expr:?} is not a .Field path"))?;
        let mut v = value;
        for field in path.split('.').filter(|f| !f.is_empty()) {
            v = v.get(field).with_context(|| format!("--format: no field {field:?} in {expr:?}"))?;
        }
        match (as_json, v) {
            (false, serde_json::Value::String(s)) => out.push_str(s),
            (false, serde_json::Value::Null) => out.push_str("<no value>"),
            _ => out.push_str(&v.to_string()),
        }
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
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

/// The host's memory, docker's "limit" for a container without one.
fn host_memory() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    mem_total(&text)
}

/// `MemTotal:  24684284 kB` in /proc/meminfo, in bytes.
fn mem_total(meminfo: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:")?.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[cfg(test)]
mod meminfo_tests {
    #[test]
    fn reads_mem_total() {
        assert_eq!(super::mem_total("MemTotal:       24684284 kB\nMemFree: 1 kB\n"), 24684284 * 1024);
        assert_eq!(super::mem_total(""), 0);
    }
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

/// NET I/O: "--" for `--network host` (its counters would be the host's).
fn net_io(net: Option<NetBytes>) -> String {
    net.map_or_else(|| "--".to_owned(), |n| format!("{} / {}", human_size(n.rx), human_size(n.tx)))
}

/// One row of `ctr stats`, from two samples `elapsed` apart and the
/// network counters at the second.
fn row(state: &State, before: &Sample, after: &Sample, net: Option<NetBytes>, elapsed: Duration) -> serde_json::Value {
    let cpu = (after.cpu_ns.saturating_sub(before.cpu_ns)) as f64 / elapsed.as_nanos().max(1) as f64 * 100.0;
    let limit = after.memory_limit.unwrap_or_else(host_memory);
    let mem_pct = if limit > 0 { after.memory_bytes as f64 / limit as f64 * 100.0 } else { 0.0 };
    serde_json::json!({
        "ID": &state.id[..12], "Name": state.name, "CPUPerc": format!("{cpu:.2}%"),
        "MemUsage": format!("{} / {}", human(after.memory_bytes), human(limit)), "MemPerc": format!("{mem_pct:.2}%"),
        "NetIO": net_io(net), "NetRxBytes": net.map(|n| n.rx), "NetTxBytes": net.map(|n| n.tx), "BlockIO": format!("{} / {}", human_size(after.block_read_bytes), human_size(after.block_write_bytes)),
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
        let rows: Vec<serde_json::Value> = states
            .iter()
            .zip(&before)
            .map(|(s, b)| row(s, b, &cgroup_stats::sample(&s.cgroups), net_stats::sample(s), elapsed))
            .collect();
        let mut out = std::io::stdout().lock();
        if clear {
            write!(out, "\x1b[2J\x1b[H")?;
        }
        if json {
            for r in &rows {
                writeln!(out, "{r}")?;
            }
        } else {
            let header =
                ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"];
            let mut table = vec![header.map(String::from)];
            for r in &rows {
                let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
                table.push([
                    s("ID"),
                    s("Name"),
                    s("CPUPerc"),
                    s("MemUsage"),
                    s("MemPerc"),
                    s("NetIO"),
                    s("BlockIO"),
                    r["PIDs"].to_string(),
                ]);
            }
            write_table(&mut out, &table)?;
        }
        out.flush()?;
        if args.no_stream {
            return Ok(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_dockers() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(5), "5 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(4000), "About an hour");
        assert_eq!(human_duration(3 * 86_400), "3 days");
    }

    #[test]
    fn templates_pick_fields() {
        let v = serde_json::json!({"State": {"Status": "running", "Pid": 42, "Error": null}, "Name": "web"});
        assert_eq!(render_template("{{.State.Status}}", &v).unwrap(), "running");
        assert_eq!(render_template("{{.Name}} pid={{ .State.Pid }}", &v).unwrap(), "web pid=42");
        assert_eq!(render_template("{{json .State.Status}}", &v).unwrap(), "\"running\"");
        assert_eq!(render_template("{{.State.Error}}", &v).unwrap(), "<no value>");
        assert!(render_template("{{.Nope}}", &v).is_err());
        assert!(render_template("{{.Name", &v).is_err());
    }

    #[test]
    fn net_io_reads_like_dockers_or_dashes_for_host() {
        assert_eq!(net_io(Some(NetBytes { rx: 1200, tx: 648 })), "1.2kB / 648B");
        assert_eq!(net_io(Some(NetBytes::default())), "0B / 0B");
        assert_eq!(net_io(None), "--");
    }

    #[test]
    fn a_stale_record_shows_exited_unknown() {
        let state = State {
            id: "b".repeat(64),
            status: container::Status::Running,
            init: Some(crate::liveness::ProcessRef {
                pid: i32::MAX,
                start_time: 1,
                boot_id: crate::liveness::boot_id(),
            }),
            ..State::default()
        };
        assert_eq!(status_text(&state), "Exited (unknown)");
        let exited = State { status: container::Status::Exited, exit_code: Some(3), ..state };
        assert_eq!(status_text(&exited), "Exited (3)");
    }
}
