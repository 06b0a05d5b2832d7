//! What must hold of every value the helper accepts, checked by code
//! independent of the validators (interval sorting rather than pairwise
//! tests, byte classes rather than the parsers' own predicates), so a
//! validator that lets something through is caught rather than echoed.

use crate::Caller;
use ctr_core::idmap::{
    check_map, default_map, parse_subid_file, to_proc_format, IdKind, IdMapEntry, SubIdRange, MAX_MAP_ENTRIES,
};
use ctr_core::ids::{CgroupComponent, ContainerId, ContainerName};
use ctr_core::limits::{
    cpus_to_quota, parse_bytes, render, CpuList, HostCpus, LimitFile, ResourceLimits, SwapLimit, DEFAULT_CPU_PERIOD_US,
    MIN_MEMORY,
};
use ctr_core::net::{Cidr, NetworkName, NetworkRequest, PortSpec};
use ctr_core::protocol::{HelperError, Request};

/// The fake host: CPUs 0-3, memory node 0, and these block devices.
const HOST_CPUS: &str = "0-3";
const HOST_MEMS: &str = "0";
const BLOCK_DEVICES: [(u32, u32); 3] = [(8, 0), (8, 16), (259, 0)];
const MAX_THROTTLED_DEVICES: usize = 16;

pub fn request(caller: &Caller, request: &Request) {
    match request {
        Request::Spawn(s) => {
            container_id(&s.id);
            plain_name(s.name.as_str(), ContainerName::MAX_LEN);
            for (kind, map, own, ranges) in [
                (IdKind::Uid, &s.uid_map, caller.uid, caller.subuids),
                (IdKind::Gid, &s.gid_map, caller.gid, caller.subgids),
            ] {
                self::map(kind, map, own, ranges);
            }
            limits(&s.limits);
            network(&s.network);
        }
        Request::RemoveCgroup { id } | Request::Exec { id } | Request::Freeze { id, .. } => container_id(id),
        Request::Update { id, limits: l } => {
            container_id(id);
            limits(l);
        }
        Request::NetworkCreate { name, subnet } => {
            plain_name(name.as_str(), NetworkName::MAX_LEN);
            if let Some(subnet) = subnet {
                cidr(subnet);
            }
        }
        Request::NetworkRemove { name } => plain_name(name.as_str(), NetworkName::MAX_LEN),
        // Hello, NetworkList, and kinds added later: nothing beyond decoding.
        #[allow(unreachable_patterns)]
        _ => {}
    }
}

fn container_id(id: &ContainerId) {
    let s = id.as_str();
    assert!(s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "container id {s:?}");
    assert_eq!(id.short().len(), 12);
}

/// Docker's name alphabet: nothing that can be a path, an option or a
/// control character.
fn is_plain_name(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    (1..=max).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

fn plain_name(s: &str, max: usize) {
    assert!(is_plain_name(s, max), "name {s:?} was accepted");
}

fn is_cgroup_component(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=CgroupComponent::MAX_LEN).contains(&b.len())
        && b[0] != b'.'
        && b.iter().all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

/// Why the helper must refuse `map` for `own`, by the rules in
/// user_namespaces(7) and newuidmap(1): `None` if it may accept it.
fn map_violation(map: &[IdMapEntry], own: u32, ranges: &[SubIdRange]) -> Option<String> {
    if map.is_empty() || map.len() > MAX_MAP_ENTRIES {
        return Some(format!("{} entries", map.len()));
    }
    let span = |start: u32, count: u32| (u64::from(start), u64::from(start) + u64::from(count) - 1);
    let mut inside = Vec::new();
    let mut outside = Vec::new();
    for e in map {
        let (i0, i1) = span(e.inside(), e.count());
        let (o0, o1) = span(e.outside(), e.count());
        if e.count() == 0 || i1 > u64::from(u32::MAX) || o1 > u64::from(u32::MAX) {
            return Some(format!("{e:?} is empty or overflows"));
        }
        if own != 0 && o0 == 0 {
            return Some(format!("{e:?} maps host root for {own}"));
        }
        let own_id = e.count() == 1 && o0 == u64::from(own);
        let granted = ranges.iter().any(|r| {
            let (r0, r1) = span(r.start, r.count);
            r0 <= o0 && o1 <= r1
        });
        if !(own_id || granted) {
            return Some(format!("{e:?} is neither {own} nor in {ranges:?}"));
        }
        inside.push((i0, i1));
        outside.push((o0, o1));
    }
    for (what, mut spans) in [("inside", inside), ("outside", outside)] {
        spans.sort_unstable();
        if let Some(w) = spans.windows(2).find(|w| w[0].1 >= w[1].0) {
            return Some(format!("overlaps {what}: {:?} and {:?}", w[0], w[1]));
        }
    }
    None
}

/// `check_map` agrees with [`map_violation`] both ways, and what it
/// accepts reaches the kernel unchanged.
fn map(kind: IdKind, map: &[IdMapEntry], own: u32, ranges: &[SubIdRange]) {
    let verdict = check_map(kind, map, own, ranges);
    let violation = map_violation(map, own, ranges);
    assert_eq!(
        verdict.is_ok(),
        violation.is_none(),
        "check_map says {verdict:?}, the rules say {violation:?}: {map:?}"
    );
    if let Err(e) = verdict {
        return crate::refusal_fits(HelperError::IdMap(e));
    }
    let text = to_proc_format(map);
    let lines: Vec<(u32, u32, u32)> = text
        .lines()
        .map(|l| {
            let f: Vec<u32> = l.split(' ').map(|n| n.parse().expect("a number")).collect();
            assert_eq!(f.len(), 3, "line {l:?}");
            (f[0], f[1], f[2])
        })
        .collect();
    let want: Vec<(u32, u32, u32)> = map.iter().map(|e| (e.inside(), e.outside(), e.count())).collect();
    assert_eq!(lines, want);
}

fn host() -> HostCpus {
    HostCpus {
        online: CpuList::parse("host", HOST_CPUS).expect("valid literal"),
        online_mems: CpuList::parse("host", HOST_MEMS).expect("valid literal"),
    }
}

/// The highest number in a cpu list, read from its text (the host's lists
/// here are 0..=N, so "a subset" is "nothing above N").
fn highest(list: &CpuList) -> u32 {
    list.to_string()
        .split([',', '-'])
        .map(|n| n.parse::<u32>().expect("a cpu list prints numbers"))
        .max()
        .expect("a cpu list is never empty")
}

/// Why the helper must refuse limits `l` on the fake host, by docker's
/// rules: `None` if it may accept them.
fn limits_violation(l: &ResourceLimits) -> Option<&'static str> {
    let exists = |major, minor| BLOCK_DEVICES.contains(&(major, minor));
    let rules = [
        (l.memory.is_some_and(|m| m < MIN_MEMORY), "memory below 6 MiB"),
        (matches!(l.memory_swap, Some(SwapLimit::Total(_))) && l.memory.is_none(), "swap without memory"),
        (
            matches!((l.memory_swap, l.memory), (Some(SwapLimit::Total(t)), Some(m)) if t < m),
            "memory+swap below memory",
        ),
        (matches!((l.memory_reservation, l.memory), (Some(r), Some(m)) if r > m), "reservation above memory"),
        (l.cpu_quota.is_some_and(|q| !(1_000..=1_000_000).contains(&q.period_us)), "cpu period"),
        (l.cpu_quota.is_some_and(|q| q.quota_us < 1_000), "cpu quota below 1 ms"),
        (
            l.cpu_quota.is_some_and(|q| u128::from(q.quota_us) > u128::from(q.period_us) * 4),
            "more than the host's 4 CPUs",
        ),
        (l.cpu_shares.is_some_and(|s| !(2..=262_144).contains(&s)), "cpu shares"),
        (l.cpuset_cpus.as_ref().is_some_and(|c| highest(c) > 3), "cpuset outside CPUs 0-3"),
        (l.cpuset_mems.as_ref().is_some_and(|m| highest(m) > 0), "cpuset mems outside node 0"),
        (l.pids_limit.is_some_and(|p| p == 0 || i64::try_from(p).is_err()), "pids limit"),
        (l.blkio_weight.is_some_and(|w| !(10..=1000).contains(&w)), "blkio weight"),
        (l.device_read_bps.len() + l.device_write_bps.len() > MAX_THROTTLED_DEVICES, "too many devices"),
        (l.device_read_bps.iter().chain(&l.device_write_bps).any(|d| !exists(d.major, d.minor)), "no such device"),
    ];
    rules.into_iter().find_map(|(broken, why)| broken.then_some(why))
}

/// `validate` agrees with [`limits_violation`] both ways, and what it
/// accepts renders to sane cgroup writes.
fn limits(l: &ResourceLimits) {
    let verdict = l.validate(&host(), |major, minor| BLOCK_DEVICES.contains(&(major, minor)));
    let violation = limits_violation(l);
    assert_eq!(verdict.is_ok(), violation.is_none(), "validate says {verdict:?}, the rules say {violation:?}: {l:?}");
    match verdict {
        Ok(()) => {
            for v2 in [false, true] {
                rendered(&render(l, v2), v2);
            }
        }
        Err(e) => crate::refusal_fits(HelperError::Limits(e)),
    }
}

/// What the helper would write into cgroup files: one line, no control
/// characters, weights in the kernel's ranges, memory before memory+swap.
fn rendered(writes: &[(LimitFile, String)], v2: bool) {
    for (file, value) in writes {
        let name = file.file_name();
        assert!(!name.contains('/') && !name.starts_with('.'), "file {name:?}");
        assert!(!value.is_empty() && !value.bytes().any(|b| b.is_ascii_control()), "{name} <- {value:?}");
        let weight = match (file, value.strip_prefix("default ")) {
            (LimitFile::CpuWeight, _) => Some(value.as_str()),
            (LimitFile::IoWeight, Some(w)) => Some(w),
            (LimitFile::IoWeight, None) => panic!("io.weight <- {value:?}"),
            _ => None,
        };
        if let Some(w) = weight {
            let w: u64 = w.parse().expect("a weight is a number");
            assert!((1..=10_000).contains(&w), "{name} <- {w}");
        }
    }
    let position = |f: LimitFile| writes.iter().position(|(g, _)| *g == f);
    if !v2 {
        if let (Some(mem), Some(memsw)) =
            (position(LimitFile::MemoryLimitInBytes), position(LimitFile::MemoryMemswLimitInBytes))
        {
            assert!(mem < memsw, "v1 memory.memsw written before memory");
        }
    }
}

fn network(n: &NetworkRequest) {
    if let NetworkRequest::Bridge { network, ports, .. } = n {
        plain_name(network.as_str(), NetworkName::MAX_LEN);
        assert!(ports.len() <= 64, "{} ports decoded", ports.len());
        for (i, p) in ports.iter().enumerate() {
            port(p);
            let twice = ports[..i].iter().any(|q| (q.host_port, q.protocol) == (p.host_port, p.protocol));
            assert!(!twice, "host port {} decoded twice", p.host_port);
        }
    }
}

fn port(p: &PortSpec) {
    assert!(p.host_port != 0 && p.container_port != 0, "{p:?}");
    let text = match p.host_ip {
        Some(ip) => format!("{ip}:{}:{}/{}", p.host_port, p.container_port, p.protocol),
        None => format!("{}:{}/{}", p.host_port, p.container_port, p.protocol),
    };
    assert_eq!(PortSpec::parse(&text).as_ref(), Ok(p), "{text:?} does not parse back");
}

fn cidr(c: &Cidr) {
    assert!((8..=30).contains(&c.prefix()), "{c}");
    let host_bits = u32::MAX >> c.prefix();
    assert_eq!(u32::from(c.address()) & host_bits, 0, "{c} has host bits set");
    assert!(c.contains(c.address()) && c.covers(c) && c.overlaps(c));
    assert_eq!(Cidr::parse(&c.to_string()).as_ref(), Ok(c), "{c} does not parse back");
}

/// Text mode: every line through every string parser, then the whole text
/// as a subuid file.
pub fn text(text: &str) {
    for line in text.lines().take(64) {
        if let Ok(c) = Cidr::parse(line) {
            cidr(&c);
        }
        if let Ok(p) = PortSpec::parse(line) {
            port(&p);
        }
        assert_eq!(
            NetworkName::parse(line).is_ok(),
            is_plain_name(line, NetworkName::MAX_LEN),
            "network name {line:?}"
        );
        assert_eq!(ContainerName::parse(line).is_ok(), is_plain_name(line, ContainerName::MAX_LEN), "name {line:?}");
        assert_eq!(CgroupComponent::parse(line).is_ok(), is_cgroup_component(line), "cgroup component {line:?}");
        if let Ok(id) = ContainerId::parse(line) {
            container_id(&id);
        }
        if let Ok(list) = CpuList::parse("--cpuset-cpus", line) {
            let again = CpuList::parse("--cpuset-cpus", &list.to_string());
            assert_eq!(again.as_ref(), Ok(&list), "cpu list {line:?} does not parse back");
        }
        let _ = parse_bytes("--memory", line);
        if let Ok(q) = cpus_to_quota(line) {
            assert_eq!(q.period_us, DEFAULT_CPU_PERIOD_US);
        }
    }
    subid_file(text);
}

/// The ranges a subuid file grants, and `ctr`'s default map over them,
/// which the helper must accept whenever the ranges are sane (disjoint,
/// not containing the user's own id).
fn subid_file(text: &str) {
    let own = 1000;
    let ranges = parse_subid_file(text, Some("alice"), own);
    let mut spans: Vec<(u64, u64)> = ranges
        .iter()
        .map(|r| {
            assert!(r.count > 0 && r.start.checked_add(r.count - 1).is_some(), "{r:?}");
            (u64::from(r.start), u64::from(r.start) + u64::from(r.count) - 1)
        })
        .collect();
    let map = default_map(own, &ranges);
    spans.sort_unstable();
    let disjoint = spans.windows(2).all(|w| w[0].1 < w[1].0);
    let holds_own = spans.iter().any(|&(a, b)| a <= u64::from(own) && u64::from(own) <= b);
    if disjoint && !holds_own {
        assert_eq!(check_map(IdKind::Uid, &map, own, &ranges), Ok(()), "the helper refuses ctr's default map {map:?}");
    }
    self::map(IdKind::Uid, &map, own, &ranges);
}
