//! Unit tests of [`crate::cgroup`]: a child module of it, so they reach its
//! private items; kept apart so the privileged code reads on its own.

use super::*;

const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:32 / /mnt/again rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
const PROC_CGROUP: &str = "9:name=systemd:/user.slice\n4:memory:/process_api/abc\n1:cpu:/\n0::/\n";

#[test]
fn pairs_mounts_with_memberships() {
    let h = parse_hierarchies(MOUNTINFO, PROC_CGROUP).unwrap();
    assert_eq!(h[1].controllers, vec!["memory"]);
    assert_eq!(h[2].controllers, vec!["name=systemd"]);
    let got: Vec<(&str, bool, &str)> =
        h.iter().map(|h| (h.mount_point.to_str().unwrap(), h.v2, h.own_path.as_str())).collect();
    assert_eq!(
        got,
        vec![
            ("/sys/fs/cgroup/cpu", false, "/"),
            ("/sys/fs/cgroup/memory", false, "/process_api/abc"),
            ("/sys/fs/cgroup/systemd", false, "/user.slice"),
            ("/sys/fs/cgroup/unified", true, "/"),
        ]
    );
}

#[test]
fn pure_v2() {
    let mi = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
    let h = parse_hierarchies(mi, "0::/user.slice/user-1000.slice/session-1.scope\n").unwrap();
    assert_eq!(h.len(), 1);
    assert!(h[0].v2);
    assert_eq!(h[0].own_path, "/user.slice/user-1000.slice/session-1.scope");
}

#[test]
fn nested_mount_roots_are_relative() {
    let mi = "30 23 0:26 /outer /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
    let h = parse_hierarchies(mi, "0::/outer/inner\n").unwrap();
    assert_eq!(h[0].own_path, "/inner");
    assert!(parse_hierarchies(mi, "0::/elsewhere\n").is_err());
}

#[test]
fn caller_own_parent_refuses_traversal() {
    let h =
        Hierarchy { mount_point: "/sys/fs/cgroup".into(), v2: true, controllers: vec![], own_path: "/a/../b".into() };
    assert!(parent_components(&h, &CgroupParent::CallerOwn).is_err());
    let h = Hierarchy { own_path: "/user.slice/user@1000.service".into(), ..h };
    assert_eq!(parent_components(&h, &CgroupParent::CallerOwn).unwrap(), vec!["user.slice", "user@1000.service"]);
}

#[test]
fn caller_own_parent_refuses_control_characters() {
    for own in ["/a\tb", "/a\nv2", "/x\u{1b}[2J"] {
        let h = Hierarchy { mount_point: "/sys/fs/cgroup".into(), v2: true, controllers: vec![], own_path: own.into() };
        assert!(parent_components(&h, &CgroupParent::CallerOwn).is_err(), "{own:?} accepted");
    }
}

#[test]
fn leaf_carries_the_uid() {
    let id = ContainerId::from_bytes(&[1; 32]);
    assert_eq!(leaf_name(1000, &id).as_str(), format!("ctr-1000-{}", id.as_str()));
}
