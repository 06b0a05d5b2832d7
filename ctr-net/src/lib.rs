//! Container networking for ctr (issue 6, not built yet): address management
//! for container subnets, bridge and veth setup over rtnetlink, and NAT and
//! published-port rules. The setuid helper will call this crate after
//! checking each request against its caller; nothing here is reachable from
//! `ctr` today, where `--network none` (loopback only) and `--network host`
//! are the modes on offer.
