//! The seed corpus, generated from real requests rather than committed as
//! binary blobs, so it follows the protocol when it changes. A target run
//! with `CTR_FUZZ_WRITE_SEEDS=DIR` writes its seeds there and exits
//! (`cargo xtask fuzz` does this before each run).

use crate::{Target, CALLERS, TEXT_MODE};
use ctr_core::frame;
use ctr_core::idmap::{default_map, IdMapEntry, SubIdRange};
use ctr_core::ids::{ContainerId, ContainerName};
use ctr_core::limits::{cpus_to_quota, CpuList, DeviceRate, ResourceLimits, SwapLimit};
use ctr_core::net::{Cidr, NetworkName, NetworkRequest, PortSpec};
use ctr_core::protocol::{Request, SpawnRequest, PROTOCOL_VERSION};
use std::path::Path;

fn spawn(network: NetworkRequest, uid_map: Vec<IdMapEntry>, limits: ResourceLimits) -> Request {
    Request::Spawn(SpawnRequest {
        id: ContainerId::from_bytes(&[0x5a; 32]),
        name: ContainerName::parse("web-1").expect("valid literal"),
        user_namespace: true,
        network,
        gid_map: uid_map.clone(),
        uid_map,
        limits,
    })
}

/// Every request kind, as `ctr` sends them, with every optional field both
/// absent and present somewhere.
pub fn requests() -> Vec<(&'static str, Request)> {
    let id = ContainerId::from_bytes(&[0xc3; 32]);
    let net = |s: &str| NetworkName::parse(s).expect("valid literal");
    let port = |s: &str| PortSpec::parse(s).expect("valid literal");
    let ranges = [SubIdRange { start: 100_000, count: 65_536 }];
    let every_limit = ResourceLimits {
        memory: Some(64 << 20),
        memory_swap: Some(SwapLimit::Total(128 << 20)),
        memory_reservation: Some(32 << 20),
        cpu_quota: Some(cpus_to_quota("1.5").expect("valid literal")),
        cpu_shares: Some(512),
        cpuset_cpus: Some(CpuList::parse("seed", "0-1,3").expect("valid literal")),
        cpuset_mems: Some(CpuList::parse("seed", "0").expect("valid literal")),
        pids_limit: Some(2048),
        blkio_weight: Some(500),
        device_read_bps: vec![DeviceRate { major: 8, minor: 0, bytes_per_second: 1 << 20 }],
        device_write_bps: vec![DeviceRate { major: 259, minor: 0, bytes_per_second: 1 << 19 }],
    };
    let bridge = NetworkRequest::Bridge {
        network: NetworkName::default_network(),
        address: Some("10.88.0.7".parse().expect("valid literal")),
        ports: vec![port("8080:80"), port("127.0.0.1:5353:53/udp")],
    };
    vec![
        ("hello", Request::Hello { version: PROTOCOL_VERSION }),
        ("spawn-none", spawn(NetworkRequest::None, default_map(1000, &ranges), ResourceLimits::default())),
        ("spawn-host-own-id", spawn(NetworkRequest::Host, default_map(1000, &[]), ResourceLimits::default())),
        ("spawn-bridge-limits", spawn(bridge, default_map(1000, &ranges), every_limit.clone())),
        (
            "spawn-user-network-unlimited-swap",
            spawn(
                NetworkRequest::Bridge { network: net("front"), address: None, ports: vec![] },
                vec![IdMapEntry::new(0, 0, 1).expect("valid literal")],
                ResourceLimits { memory: Some(8 << 20), memory_swap: Some(SwapLimit::Unlimited), ..Default::default() },
            ),
        ),
        ("remove", Request::RemoveCgroup { id: id.clone() }),
        ("exec", Request::Exec { id: id.clone() }),
        ("update", Request::Update { id: id.clone(), limits: every_limit.clone() }),
        ("freeze", Request::Freeze { id, frozen: true }),
        ("network-create", Request::NetworkCreate { name: net("front"), subnet: None }),
        (
            "network-create-subnet",
            Request::NetworkCreate {
                name: net("back.end_2"),
                subnet: Some(Cidr::parse("10.89.3.0/24").expect("valid literal")),
            },
        ),
        ("network-remove", Request::NetworkRemove { name: net("front") }),
        ("network-list", Request::NetworkList),
    ]
}

/// Lines for the validate target's text mode: one of each thing its parsers
/// accept, and a subuid file.
const TEXT_SEED: &str = "10.89.0.0/24\n127.0.0.1:8080:80/udp\n8443:443\n0-3,6\n512m\n1.5\nfront-end_1\n\
    5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a\n\
    alice:100000:65536\n1000:200000:1000\n";

/// The seeds of one target, as (file name, bytes).
pub fn for_target(target: Target) -> Vec<(String, Vec<u8>)> {
    let encoded = requests().into_iter().map(|(name, r)| (name, frame::encode(&r).expect("seed requests encode")));
    match target {
        Target::Frame => encoded.map(|(name, f)| (format!("seed-{name}"), f)).collect(),
        Target::Validate => {
            let mut seeds: Vec<(String, Vec<u8>)> = encoded
                .flat_map(|(name, f)| {
                    (0..CALLERS.len()).map(move |caller| {
                        let mut input = vec![u8::try_from(caller).expect("few callers")];
                        input.extend_from_slice(&f[4..]);
                        (format!("seed-{name}-caller{caller}"), input)
                    })
                })
                .collect();
            let mut text = vec![TEXT_MODE];
            text.extend_from_slice(TEXT_SEED.as_bytes());
            seeds.push(("seed-text".into(), text));
            seeds
        }
    }
}

/// The `init` of each target: checks the counting allocator is installed,
/// and writes the seeds and exits when asked to.
pub fn write_if_asked(target: Target) {
    crate::alloc::assert_installed();
    let Some(dir) = std::env::var_os("CTR_FUZZ_WRITE_SEEDS") else { return };
    let dir = Path::new(&dir);
    let result = std::fs::create_dir_all(dir).and_then(|()| {
        for (name, bytes) in for_target(target) {
            std::fs::write(dir.join(name), bytes)?;
        }
        Ok(())
    });
    match result {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("cannot write seeds to {}: {e}", dir.display());
            std::process::exit(1)
        }
    }
}
