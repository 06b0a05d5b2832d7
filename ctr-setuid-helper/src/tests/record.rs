//! Unit tests of [`crate::record`]: a child module of it, so they reach its
//! private items; kept apart so the privileged code reads on its own.

use super::*;
use ctr_core::protocol::CgroupDir;

fn sample() -> Record {
    Record {
        owner: Liveness { pid: 42, start_time: 7, boot_id: "b".into() },
        cgroups: ContainerCgroups {
            dirs: vec![
                CgroupDir {
                    v2: false,
                    controllers: vec!["cpu".into(), "cpuacct".into()],
                    path: "/sys/fs/cgroup/cpu,cpuacct/x".into(),
                },
                // A path that would have injected a line and a field into the old format.
                CgroupDir {
                    v2: true,
                    controllers: vec![],
                    path: "/sys/fs/cgroup/unified/a\tnet\tevil\nv2\t-\t/".into(),
                },
            ],
        },
        network: Some(NetworkName::parse("bridge").unwrap()),
        host_veth: Some(InterfaceName::parse("veth0123456789a").unwrap()),
        ports: Default::default(),
    }
}

fn parse(bytes: &[u8]) -> serde_json::Result<Record> {
    serde_json::from_slice(bytes)
}

#[test]
fn records_round_trip_and_cannot_be_injected() {
    let record = sample();
    let bytes = serde_json::to_vec(&record).unwrap();
    assert_eq!(parse(&bytes).unwrap(), record);
    assert_eq!(parse(&bytes).unwrap().cgroups.dirs.len(), 2);
}

#[test]
fn damaged_or_unknown_records_do_not_parse() {
    let json = serde_json::to_string(&sample()).unwrap();
    for bad in [
        json.replace("veth0123456789a", "veth/../../etc"),
        json.replace("\"network\"", "\"extra\":1,\"network\""),
        json[..json.len() - 1].to_owned(),
        "v2\t-\t/sys/fs/cgroup/x\n".to_owned(),
    ] {
        assert!(parse(bad.as_bytes()).is_err(), "{bad} accepted");
    }
}

/// The previous release wrote the published ports into the record; such a
/// record (a container running across the upgrade) still parses, and the
/// field is not written back.
#[test]
fn a_record_of_the_previous_release_with_ports_parses() {
    let json = serde_json::to_string(&sample()).unwrap();
    assert!(!json.contains("ports"), "{json}");
    let old = json.replace("\"network\"", "\"ports\":[[\"Tcp\",8080],[\"Udp\",53]],\"network\"");
    assert_eq!(parse(old.as_bytes()).unwrap(), sample());
}
