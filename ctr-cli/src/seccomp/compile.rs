//! A profile's rules for one container, compiled by libseccomp into
//! classic BPF, behind ctr's prefix ([`super::bpf`]). libseccomp resolves
//! syscall names on every architecture of the filter (x86_64, its x32 and
//! i386 ABIs), splits 64-bit argument comparisons, and orders the checks;
//! that is the part worth a mature C library, and the same one docker's
//! runc, crun and youki use, so a name means here what it means there.

use super::bpf::{self, Abi, AuditArch, Insn};
use super::profile::{Action, Condition, Op, Profile, Rule, Target};
use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek};
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("unknown architecture {0:?} in the profile (SCMP_ARCH_X86_64, SCMP_ARCH_X86, SCMP_ARCH_X32, SCMP_ARCH_AARCH64...)")]
    UnknownArch(String),
    #[error("libseccomp refused {what}: {source}")]
    Libseccomp { what: String, source: libseccomp::error::SeccompError },
    #[error("exporting the filter: {0}")]
    Export(String),
    #[error(
        "the compiled filter has {0} instructions, more than the kernel's limit of 4096: make the profile smaller"
    )]
    TooLong(usize),
}

fn lib(what: impl Into<String>) -> impl FnOnce(libseccomp::error::SeccompError) -> CompileError {
    let what = what.into();
    move |source| CompileError::Libseccomp { what, source }
}

fn scmp_action(action: Action) -> ScmpAction {
    match action {
        Action::Allow => ScmpAction::Allow,
        Action::Log => ScmpAction::Log,
        Action::Errno(e) => ScmpAction::Errno(i32::from(e)),
        Action::Trap => ScmpAction::Trap,
        Action::Trace(m) => ScmpAction::Trace(m),
        Action::KillThread => ScmpAction::KillThread,
        Action::KillProcess => ScmpAction::KillProcess,
    }
}

fn scmp_compare(c: &Condition) -> ScmpArgCompare {
    let op = match c.op {
        Op::NotEqual => ScmpCompareOp::NotEqual,
        Op::Less => ScmpCompareOp::Less,
        Op::LessOrEqual => ScmpCompareOp::LessOrEqual,
        Op::Equal => ScmpCompareOp::Equal,
        Op::GreaterEqual => ScmpCompareOp::GreaterEqual,
        Op::Greater => ScmpCompareOp::Greater,
        Op::MaskedEqual { mask } => ScmpCompareOp::MaskedEqual(mask),
    };
    ScmpArgCompare::new(c.index, op, c.value)
}

/// AUDIT_ARCH_* of linux/audit.h, for the architectures ctr can run on.
fn audit_arch(arch: ScmpArch) -> Option<(u32, bool)> {
    Some(match arch {
        ScmpArch::X8664 => (0xC000_003E, false),
        ScmpArch::X32 => (0xC000_003E, true),
        ScmpArch::X86 => (0x4000_0003, false),
        ScmpArch::Aarch64 => (0xC000_00B7, false),
        ScmpArch::Arm => (0x4000_0028, false),
        _ => return None,
    })
}

/// The whole program for `profile` and `target`: ctr's prefix, then
/// libseccomp's.
pub fn compile(profile: &Profile, target: &Target) -> Result<Vec<Insn>, CompileError> {
    let default = profile.default_action();
    let mut ctx = ScmpFilterContext::new(scmp_action(default)).map_err(lib("the default action"))?;
    // A syscall of an architecture the profile does not list ends the
    // process rather than reaching an unfiltered kernel entry.
    ctx.set_act_badarch(ScmpAction::KillProcess).map_err(lib("the bad-architecture action"))?;
    // A binary tree of syscall numbers rather than a list: the kernel's
    // BPF JIT of docker's profile (three architectures) took 0.95 ms at
    // every container start and exec; the tree takes half that.
    ctx.set_ctl_optimize(2).map_err(lib("the binary-tree layout"))?;
    let native = native_arch_token();
    let mut arches = Vec::new();
    for name in profile.architectures(native) {
        let arch = ScmpArch::from_str(&name).map_err(|_| CompileError::UnknownArch(name.clone()))?;
        ctx.add_arch(arch).map_err(lib(format!("architecture {name}")))?;
        arches.push(arch);
    }
    for rule in profile.rules_for(target) {
        add_rule(&mut ctx, &rule, default)?;
    }
    let mut program = bpf::prefix(&prefix_arches(profile, &arches, default));
    program.extend(export(&ctx)?);
    if program.len() > bpf::MAX_INSNS {
        return Err(CompileError::TooLong(program.len()));
    }
    Ok(program)
}

/// The program for `seccomp=unconfined` and `--privileged`: the ioctl
/// guard alone, then allow.
pub fn guard_only() -> Vec<Insn> {
    let native = ScmpArch::native();
    let mut arches: Vec<ScmpArch> = vec![native];
    if native == ScmpArch::X8664 {
        arches.extend([ScmpArch::X86, ScmpArch::X32]);
    }
    let mut by_audit: BTreeMap<u32, AuditArch> = BTreeMap::new();
    for arch in arches {
        if let (Some((audit, is_x32)), Some(ioctl)) = (audit_arch(arch), resolve("ioctl", arch)) {
            let abi = Some(Abi { max_known: None, ioctl });
            let entry = by_audit.entry(audit).or_default();
            if is_x32 {
                entry.x32 = abi;
            } else {
                entry.native = abi;
            }
        }
    }
    let mut program = bpf::prefix(&by_audit);
    program.push(Insn { code: 0x06, jt: 0, jf: 0, k: bpf::RET_ALLOW });
    program
}

fn native_arch_token() -> &'static str {
    match ScmpArch::native() {
        ScmpArch::X8664 => "x86_64",
        ScmpArch::Aarch64 => "aarch64",
        ScmpArch::X86 => "x86",
        ScmpArch::Arm => "arm",
        _ => "native",
    }
}

/// The syscall's number on `arch`, if libseccomp knows it there.
fn resolve(name: &str, arch: ScmpArch) -> Option<u32> {
    let nr = i32::from(ScmpSyscall::from_name_by_arch(name, arch).ok()?);
    u32::try_from(nr).ok()
}

/// Per AUDIT_ARCH: the highest number the profile names on each ABI (none
/// when the default action lets the unknown pass), and ioctl's number.
fn prefix_arches(profile: &Profile, arches: &[ScmpArch], default: Action) -> BTreeMap<u32, AuditArch> {
    let names = profile.all_names();
    let mut out: BTreeMap<u32, AuditArch> = BTreeMap::new();
    for &arch in arches {
        let Some((audit, is_x32)) = audit_arch(arch) else {
            continue;
        };
        let Some(ioctl) = resolve("ioctl", arch) else {
            continue;
        };
        let max_known = if default.permits() { None } else { names.iter().filter_map(|n| resolve(n, arch)).max() };
        let abi = Some(Abi { max_known, ioctl });
        let entry = out.entry(audit).or_default();
        if is_x32 {
            entry.x32 = abi;
        } else {
            entry.native = abi;
        }
    }
    out
}

/// Adds one entry. Names libseccomp does not know are skipped (profiles
/// name syscalls of newer kernels and other architectures, as docker's
/// does). An action equal to the default adds nothing. Several conditions
/// on one argument cannot be one libseccomp rule: as runc does, each
/// becomes a rule of its own.
fn add_rule(ctx: &mut ScmpFilterContext, rule: &Rule, default: Action) -> Result<(), CompileError> {
    if rule.action == default {
        return Ok(());
    }
    let action = scmp_action(rule.action);
    let compares: Vec<ScmpArgCompare> = rule.conditions.iter().map(scmp_compare).collect();
    let mut seen = HashMap::new();
    let repeated = rule.conditions.iter().any(|c| seen.insert(c.index, ()).is_some());
    for name in &rule.names {
        let Ok(syscall) = ScmpSyscall::from_name(name) else {
            continue;
        };
        let what = || format!("the rule for {name}");
        if repeated {
            for c in &compares {
                ctx.add_rule_conditional(action, syscall, std::slice::from_ref(c)).map_err(lib(what()))?;
            }
        } else {
            ctx.add_rule_conditional(action, syscall, &compares).map_err(lib(what()))?;
        }
    }
    Ok(())
}

/// libseccomp 2.5 exports to a file descriptor only.
fn export(ctx: &ScmpFilterContext) -> Result<Vec<Insn>, CompileError> {
    let fd = nix::sys::memfd::memfd_create(c"ctr-seccomp", nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC)
        .map_err(|e| CompileError::Export(format!("memfd_create: {e}")))?;
    ctx.export_bpf(&fd).map_err(lib("exporting the program"))?;
    let mut file = std::fs::File::from(fd);
    let mut bytes = Vec::new();
    file.rewind().and_then(|_| file.read_to_end(&mut bytes)).map_err(|e| CompileError::Export(e.to_string()))?;
    bpf::from_bytes(&bytes)
        .ok_or_else(|| CompileError::Export(format!("{} bytes is not a whole number of instructions", bytes.len())))
}

#[cfg(test)]
mod tests {
    use super::super::bpf::run;
    use super::super::DEFAULT_PROFILE;
    use super::*;

    const X86_64: u32 = 0xC000_003E;
    const I386: u32 = 0x4000_0003;
    const ALLOW: u32 = bpf::RET_ALLOW;
    const EPERM: u32 = 0x0005_0000 | 1;
    const ENOSYS: u32 = 0x0005_0000 | 38;

    fn default_program(extra_caps: &[String]) -> Vec<Insn> {
        let profile = Profile::parse(DEFAULT_PROFILE).unwrap();
        let caps = crate::spec::capability_set(extra_caps, &[]).unwrap();
        compile(&profile, &Target { capabilities: &caps, arch: "amd64", kernel: (6, 1) }).unwrap()
    }

    fn nr(name: &str) -> u32 {
        resolve(name, ScmpArch::X8664).unwrap()
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_default_filter_is_a_tree_over_syscall_numbers() {
        let p = default_program(&[]);
        let steps = |nr: u32| super::super::bpf::run_counting(&p, X86_64, nr, [0; 6]).1;
        // A list walks past every syscall before the last one (hundreds).
        let most = (0..460).map(steps).max().unwrap();
        assert!(most < 60, "a syscall is decided after {most} instructions");
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_default_filter_allows_denies_and_returns_enosys_like_docker() {
        let p = default_program(&[]);
        let call = |name: &str, args: [u64; 6]| run(&p, X86_64, nr(name), args);
        assert_eq!(call("read", [0; 6]), ALLOW);
        assert_eq!(call("execve", [0; 6]), ALLOW);
        assert_eq!(call("keyctl", [0; 6]), EPERM);
        assert_eq!(call("unshare", [0x1000_0000, 0, 0, 0, 0, 0]), EPERM, "unshare -U");
        assert_eq!(call("mount", [0; 6]), EPERM);
        assert_eq!(call("clone", [0x11, 0, 0, 0, 0, 0]), ALLOW, "fork-like clone");
        assert_eq!(call("clone", [0x4000_0011, 0, 0, 0, 0, 0]), EPERM, "CLONE_NEWNET");
        assert_eq!(call("clone3", [0; 6]), ENOSYS);
        assert_eq!(call("socket", [2, 1, 0, 0, 0, 0]), ALLOW);
        assert_eq!(call("socket", [40, 1, 0, 0, 0, 0]), EPERM, "AF_VSOCK");
        assert_eq!(call("ioctl", [1, 0x5401, 0, 0, 0, 0]), ALLOW, "TCGETS");
        assert_eq!(call("ioctl", [1, 0x5412, 0, 0, 0, 0]), EPERM, "TIOCSTI");
        assert_eq!(call("ioctl", [1, 0xffff_ffff_0000_5412, 0, 0, 0, 0]), EPERM, "TIOCSTI with high bits");
        assert_eq!(call("ioctl", [1, 0x541c, 0, 0, 0, 0]), EPERM, "TIOCLINUX");
        assert_eq!(run(&p, X86_64, 1000, [0; 6]), ENOSYS);
        // i386: the same names, its own numbers.
        let i386 = |name: &str| run(&p, I386, resolve(name, ScmpArch::X86).unwrap(), [0; 6]);
        assert_eq!(i386("read"), ALLOW);
        assert_eq!(i386("keyctl"), EPERM);
        assert_eq!(run(&p, I386, 54, [1, 0x5412, 0, 0, 0, 0]), EPERM);
        // An architecture the profile does not cover is killed.
        assert_eq!(run(&p, 0xC000_00B7, 63, [0; 6]) & 0xffff_0000, 0x8000_0000);
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn cap_sys_admin_opens_namespaces_as_in_docker() {
        let p = default_program(&["SYS_ADMIN".into()]);
        let call = |name: &str, args: [u64; 6]| run(&p, X86_64, nr(name), args);
        assert_eq!(call("unshare", [0x1000_0000, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(call("clone", [0x4000_0011, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(call("clone3", [0; 6]), ALLOW);
        assert_eq!(call("mount", [0; 6]), ALLOW);
        assert_eq!(call("ioctl", [1, 0x5412, 0, 0, 0, 0]), EPERM, "the guard holds with every capability");
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn guard_only_allows_all_but_the_two_ioctls() {
        let p = guard_only();
        assert_eq!(run(&p, X86_64, nr("keyctl"), [0; 6]), ALLOW);
        assert_eq!(run(&p, X86_64, 1000, [0; 6]), ALLOW);
        assert_eq!(run(&p, X86_64, nr("ioctl"), [1, 0x5412, 0, 0, 0, 0]), EPERM);
        assert_eq!(run(&p, I386, 54, [1, 0x541c, 0, 0, 0, 0]), EPERM);
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn a_custom_profile_with_errno_and_repeated_arguments() {
        let json = br#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13},
            {"names":["personality"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":0,"value":2,"op":"SCMP_CMP_EQ"}]},
            {"names":["no_such_syscall"],"action":"SCMP_ACT_ERRNO"}]}"#;
        let profile = Profile::parse(json).unwrap();
        let p = compile(&profile, &Target { capabilities: &[], arch: "amd64", kernel: (6, 1) }).unwrap();
        assert_eq!(run(&p, X86_64, nr("mkdir"), [0; 6]), 0x0005_0000 | 13);
        assert_eq!(run(&p, X86_64, nr("rmdir"), [0; 6]), ALLOW);
        assert_eq!(run(&p, X86_64, nr("personality"), [1, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(run(&p, X86_64, nr("personality"), [2, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(run(&p, X86_64, nr("personality"), [3, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(run(&p, X86_64, 1000, [0; 6]), ALLOW, "an allowing default has no ENOSYS range");
        let bad = Profile::parse(br#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_VAX"]}"#).unwrap();
        assert!(compile(&bad, &Target { capabilities: &[], arch: "amd64", kernel: (6, 1) })
            .unwrap_err()
            .to_string()
            .contains("SCMP_ARCH_VAX"));
    }
}
