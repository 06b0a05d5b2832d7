//! bpf(2), for the one kind of program ctr loads: cgroup v2's device
//! filter (`ctr-oci`'s `linux.resources.devices`). Each call's attribute
//! is a `#[repr(C)]` struct laid out as the kernel's `union bpf_attr`
//! member for that command, with every padding byte an explicit zeroed
//! field (the kernel refuses nonzero bytes it does not know).

use super::adopt_result;
use nix::errno::Errno;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Programs attached to one cgroup all run; each may deny (runc's and crun's flag).
const BPF_F_ALLOW_MULTI: u32 = 2;

/// One instruction, as `struct bpf_insn` (little-endian hosts: the
/// destination register in the low nibble of the second byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

#[repr(C)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
struct ProgQuery {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    padding: u32,
}

#[repr(C)]
struct GetFdById {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> nix::Result<libc::c_long> {
    // SAFETY: `attr` is a live, fully initialised #[repr(C)] value with the
    // layout the kernel reads for `cmd`, and its true size is passed; the
    // pointers inside it (set by the callers below) point to buffers that
    // outlive the call, with their lengths alongside.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, std::ptr::from_mut(attr), std::mem::size_of::<T>()) };
    Errno::result(rc)
}

fn fd_u32(fd: BorrowedFd<'_>) -> u32 {
    u32::try_from(fd.as_raw_fd()).expect("an open descriptor is not negative")
}

/// Loads a BPF_PROG_TYPE_CGROUP_DEVICE program. On the verifier's refusal
/// the error comes with its log.
pub fn load_device_program(program: &[Insn], name: &str) -> Result<OwnedFd, (Errno, String)> {
    let license = c"Apache-2.0";
    let mut log = vec![0u8; 64 * 1024];
    let mut prog_name = [0u8; 16];
    let n = name.len().min(15);
    prog_name[..n].copy_from_slice(&name.as_bytes()[..n]);
    let mut attr = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: u32::try_from(program.len()).map_err(|_| (Errno::E2BIG, String::new()))?,
        insns: program.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: u32::try_from(log.len()).expect("64 KiB"),
        log_buf: log.as_mut_ptr() as u64,
        kern_version: 0,
        prog_flags: 0,
        prog_name,
        prog_ifindex: 0,
        expected_attach_type: BPF_CGROUP_DEVICE,
    };
    match bpf(BPF_PROG_LOAD, &mut attr).and_then(adopt_result) {
        Ok(fd) => Ok(fd),
        Err(e) => {
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            Err((e, String::from_utf8_lossy(&log[..end]).trim().to_owned()))
        }
    }
}

/// Attaches `program` to the cgroup directory `cgroup` as a device filter,
/// next to any already there.
pub fn attach_device_program(cgroup: BorrowedFd<'_>, program: BorrowedFd<'_>) -> nix::Result<()> {
    let mut attr = ProgAttach {
        target_fd: fd_u32(cgroup),
        attach_bpf_fd: fd_u32(program),
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map(drop)
}

/// Detaches `program` from the device filters of `cgroup`.
pub fn detach_device_program(cgroup: BorrowedFd<'_>, program: BorrowedFd<'_>) -> nix::Result<()> {
    let mut attr = ProgAttach {
        target_fd: fd_u32(cgroup),
        attach_bpf_fd: fd_u32(program),
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: 0,
        replace_bpf_fd: 0,
    };
    bpf(BPF_PROG_DETACH, &mut attr).map(drop)
}

/// The ids of the device programs attached to `cgroup` itself (not those
/// it inherits).
pub fn device_programs(cgroup: BorrowedFd<'_>) -> nix::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = ProgQuery {
        target_fd: fd_u32(cgroup),
        attach_type: BPF_CGROUP_DEVICE,
        query_flags: 0,
        attach_flags: 0,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: u32::try_from(ids.len()).expect("64"),
        padding: 0,
    };
    bpf(BPF_PROG_QUERY, &mut attr)?;
    ids.truncate(usize::try_from(attr.prog_cnt).unwrap_or(0).min(64));
    Ok(ids)
}

/// A descriptor for the loaded program with this id.
pub fn program_by_id(id: u32) -> nix::Result<OwnedFd> {
    let mut attr = GetFdById { prog_id: id, next_id: 0, open_flags: 0 };
    bpf(BPF_PROG_GET_FD_BY_ID, &mut attr).and_then(adopt_result)
}
