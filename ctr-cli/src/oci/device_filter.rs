//! The device cgroup on cgroup v2, where it is a BPF program
//! (BPF_PROG_TYPE_CGROUP_DEVICE) attached to the container's cgroup: the
//! rules `linux.resources.devices` gives, in the v1 controller's language
//! (`TYPE MAJOR:MINOR ACCESS`, as [`super::bundle`] writes them), compiled
//! to a few hand-assembled instructions with v1's meaning. The last rule
//! that matches decides; nothing matching is denied. An allow rule matches
//! a request whose every access it names (v1's exceptions to a default
//! deny); a deny rule one that asks any access it names (v1's partial
//! match against a default allow). `update` replaces the program: the new
//! one is attached, then the old ones detached.

use crate::sys::bpf::{self, Insn};
use std::os::fd::AsFd;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum DeviceFilterError {
    #[error("device rule {rule:?}: {why}")]
    Rule { rule: String, why: &'static str },
    #[error("open the cgroup {dir} for its device program: {source}")]
    Cgroup { dir: String, source: std::io::Error },
    #[error("the kernel refused the device program ({errno}): {log}")]
    Load { errno: nix::errno::Errno, log: String },
    #[error("{what} the device program of {dir}: {errno} (cgroup v2's device filter needs CAP_SYS_ADMIN and a kernel with CONFIG_CGROUP_BPF)")]
    Attach { what: &'static str, dir: String, errno: nix::errno::Errno },
}

/// The kernel's `bpf_cgroup_dev_ctx` types and accesses.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;
const ACC_ALL: i32 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// One rule, parsed: `None` is v1's `a` or `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rule {
    allow: bool,
    kind: Option<i32>,
    major: Option<u32>,
    minor: Option<u32>,
    access: i32,
}

fn parse(allow: bool, text: &str) -> Result<Rule, DeviceFilterError> {
    let bad = |why| DeviceFilterError::Rule { rule: text.to_owned(), why };
    let mut words = text.split(' ');
    let kind = match words.next() {
        Some("a") => None,
        Some("c") => Some(DEV_CHAR),
        Some("b") => Some(DEV_BLOCK),
        _ => return Err(bad("the type is not a, b or c")),
    };
    let (numbers, access) = match (words.next(), words.next(), words.next()) {
        (None, _, _) if kind.is_none() => ("*:*", "rwm"),
        (Some(numbers), Some(access), None) => (numbers, access),
        _ => return Err(bad("not TYPE MAJOR:MINOR ACCESS")),
    };
    let number = |n: &str| match n {
        "*" => Ok(None),
        n => n.parse::<u32>().map(Some).map_err(|_| bad("a device number is not a number or *")),
    };
    let (major, minor) = numbers.split_once(':').ok_or_else(|| bad("no MAJOR:MINOR"))?;
    let mut bits = 0;
    for c in access.chars() {
        bits |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => return Err(bad("the access is not made of r, w and m")),
        };
    }
    if bits == 0 {
        return Err(bad("the access is empty"));
    }
    Ok(Rule { allow, kind, major: number(major)?, minor: number(minor)?, access: bits })
}

// Registers: r1 holds the context on entry; r2 the type, r3 the access,
// r4 the major and r5 the minor once loaded; r0 the verdict.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, regs: dst | (src << 4), off, imm }
}
/// `dst = *(u32 *)(r1 + off)`: BPF_LDX | BPF_MEM | BPF_W.
fn load_context(dst: u8, off: i16) -> Insn {
    insn(0x61, dst, R1, off, 0)
}
/// 32-bit `dst &= imm`, `dst >>= imm`, `dst = imm`: BPF_ALU | op | BPF_K.
fn and(dst: u8, imm: i32) -> Insn {
    insn(0x54, dst, 0, 0, imm)
}
fn shift_right(dst: u8, imm: i32) -> Insn {
    insn(0x74, dst, 0, 0, imm)
}
fn set(dst: u8, imm: i32) -> Insn {
    insn(0xb4, dst, 0, 0, imm)
}
/// 32-bit `dst = src`: BPF_ALU | BPF_MOV | BPF_X.
fn copy(dst: u8, src: u8) -> Insn {
    insn(0xbc, dst, src, 0, 0)
}
/// Offset of a jump to the next rule's block, patched once the block's length is known.
const TO_NEXT_RULE: i16 = i16::MIN;
/// `if dst != imm`, `if dst & imm`, `if dst == imm`: goto the next rule (BPF_JMP | op | BPF_K).
fn unless_equal(dst: u8, imm: i32) -> Insn {
    insn(0x55, dst, 0, TO_NEXT_RULE, imm)
}
fn if_any_bit(dst: u8, imm: i32) -> Insn {
    insn(0x45, dst, 0, TO_NEXT_RULE, imm)
}
fn if_equal(dst: u8, imm: i32) -> Insn {
    insn(0x15, dst, 0, TO_NEXT_RULE, imm)
}
fn exit() -> Insn {
    insn(0x95, 0, 0, 0, 0)
}

/// The program for `rules` (`(allow, v1 rule)`, in order).
fn compile(rules: &[(bool, String)]) -> Result<Vec<Insn>, DeviceFilterError> {
    let rules: Vec<Rule> = rules.iter().map(|(allow, text)| parse(*allow, text)).collect::<Result<_, _>>()?;
    let mut program = vec![
        load_context(R2, 0),
        and(R2, 0xffff),
        load_context(R3, 0),
        shift_right(R3, 16),
        load_context(R4, 4),
        load_context(R5, 8),
    ];
    // Last rule first: the first block that matches returns.
    for rule in rules.iter().rev() {
        let mut block = Vec::new();
        if let Some(kind) = rule.kind {
            block.push(unless_equal(R2, kind));
        }
        if rule.allow && rule.access != ACC_ALL {
            block.push(if_any_bit(R3, !rule.access & ACC_ALL));
        } else if !rule.allow && rule.access != ACC_ALL {
            block.extend([copy(R1, R3), and(R1, rule.access), if_equal(R1, 0)]);
        }
        if let Some(major) = rule.major {
            block.push(unless_equal(R4, i32::try_from(major).map_err(|_| too_big(rule))?));
        }
        if let Some(minor) = rule.minor {
            block.push(unless_equal(R5, i32::try_from(minor).map_err(|_| too_big(rule))?));
        }
        let unconditional = block.is_empty();
        block.extend([set(R0, i32::from(rule.allow)), exit()]);
        let len = block.len();
        for (i, insn) in block.iter_mut().enumerate() {
            if insn.off == TO_NEXT_RULE {
                insn.off = i16::try_from(len - i - 1).expect("a block is a few instructions");
            }
        }
        program.extend(block);
        // Earlier rules cannot be reached (and the verifier refuses dead code).
        if unconditional {
            return Ok(program);
        }
    }
    program.extend([set(R0, 0), exit()]);
    Ok(program)
}

fn too_big(rule: &Rule) -> DeviceFilterError {
    DeviceFilterError::Rule { rule: format!("{rule:?}"), why: "a device number is out of range" }
}

/// Puts the program for `rules` on the cgroup v2 directory `dir`, in place
/// of any device program already attached there.
pub fn install(dir: &Path, rules: &[(bool, String)]) -> Result<(), DeviceFilterError> {
    let program = compile(rules)?;
    let name = dir.display().to_string();
    let cgroup = std::fs::File::open(dir).map_err(|source| DeviceFilterError::Cgroup { dir: name.clone(), source })?;
    let attach_error = |what, errno| DeviceFilterError::Attach { what, dir: name.clone(), errno };
    let old = bpf::device_programs(cgroup.as_fd()).map_err(|e| attach_error("list", e))?;
    let loaded = bpf::load_device_program(&program, "ctr_devices")
        .map_err(|(errno, log)| DeviceFilterError::Load { errno, log })?;
    bpf::attach_device_program(cgroup.as_fd(), loaded.as_fd()).map_err(|e| attach_error("attach", e))?;
    for id in old {
        let program = bpf::program_by_id(id).map_err(|e| attach_error("find", e))?;
        bpf::detach_device_program(cgroup.as_fd(), program.as_fd()).map_err(|e| attach_error("detach", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `program` as the kernel would on one request (only the
    /// instructions [`compile`] emits); `None` if it runs off its end.
    fn run(program: &[Insn], kind: i32, access: i32, major: u32, minor: u32) -> Option<bool> {
        let context = [((access << 16) | kind) as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        while let Some(i) = program.get(pc) {
            let (dst, src) = (usize::from(i.regs & 0xf), usize::from(i.regs >> 4));
            let imm = i.imm as u32 as u64;
            let mut jump = false;
            match i.code {
                0x61 => r[dst] = u64::from(context[usize::try_from(i.off).unwrap() / 4]),
                0x54 => r[dst] &= imm,
                0x74 => r[dst] >>= imm,
                0xb4 => r[dst] = imm,
                0xbc => r[dst] = r[src] & 0xffff_ffff,
                0x55 => jump = r[dst] != imm,
                0x45 => jump = r[dst] & imm != 0,
                0x15 => jump = r[dst] == imm,
                0x95 => return Some(r[0] == 1),
                other => panic!("unexpected opcode {other:#x}"),
            }
            pc += 1 + if jump { usize::try_from(i.off).unwrap() } else { 0 };
        }
        None
    }

    /// v1's answer, for rules whose allows and denies do not overlap in
    /// access: the last matching rule decides, by the matches above.
    fn reference(rules: &[(bool, String)], kind: i32, access: i32, major: u32, minor: u32) -> bool {
        rules
            .iter()
            .rev()
            .map(|(allow, text)| parse(*allow, text).unwrap())
            .find(|r| {
                r.kind.is_none_or(|k| k == kind)
                    && r.major.is_none_or(|m| m == major)
                    && r.minor.is_none_or(|m| m == minor)
                    && if r.allow { access & !r.access == 0 } else { access & r.access != 0 }
            })
            .is_some_and(|r| r.allow)
    }

    fn rules(list: &[(bool, &str)]) -> Vec<(bool, String)> {
        list.iter().map(|(a, t)| (*a, (*t).to_owned())).collect()
    }

    #[test]
    fn the_program_decides_as_the_rules_do() {
        let sets = [
            rules(&[(false, "a"), (true, "c 1:3 rwm"), (true, "c 136:* rwm"), (true, "b 8:0 r"), (false, "c 1:3 w")]),
            rules(&[(true, "a"), (false, "b 8:* rw"), (false, "c *:* m")]),
            rules(&[(true, "c 10:200 rw")]),
            rules(&[(false, "a"), (true, "c *:* m"), (true, "b *:* m"), (true, "c 5:1 rwm")]),
        ];
        for set in &sets {
            let program = compile(set).unwrap();
            for kind in [DEV_CHAR, DEV_BLOCK] {
                for access in 1..=ACC_ALL {
                    for (major, minor) in [(1, 3), (1, 7), (136, 4), (8, 0), (8, 1), (10, 200), (5, 1)] {
                        assert_eq!(
                            run(&program, kind, access, major, minor),
                            Some(reference(set, kind, access, major, minor)),
                            "{set:?}: type {kind} access {access} {major}:{minor}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn an_unconditional_rule_ends_the_program() {
        // deny a, then allows: the deny is last in the program, with no
        // default after it (the verifier refuses unreachable instructions).
        let program = compile(&rules(&[(false, "a"), (true, "c 1:3 rwm")])).unwrap();
        assert_eq!(program[program.len() - 2..], [set(R0, 0), exit()]);
        assert_eq!(program.len(), 6 + 5 + 2);
        // allow a last: nothing before it is reachable.
        let program = compile(&rules(&[(false, "c 1:3 rwm"), (true, "a")])).unwrap();
        assert_eq!(program.len(), 6 + 2);
    }

    #[test]
    fn malformed_rules_are_named() {
        for bad in ["p 1:3 rwm", "c 1:3", "c 1-3 rwm", "c x:3 rwm", "c 1:3 rwx", "c 1:3 ", "c 1:3 rw extra"] {
            let err = compile(&rules(&[(true, bad)])).unwrap_err().to_string();
            assert!(err.contains(bad), "{bad}: {err}");
        }
        assert!(compile(&rules(&[(true, "c 4294967295:1 r")])).is_err());
    }
}
