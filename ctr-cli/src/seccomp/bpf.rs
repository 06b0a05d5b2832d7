//! The few classic-BPF instructions ctr writes itself, in front of the
//! program libseccomp generates, and the load of the whole into the kernel.
//!
//! The prefix does two things libseccomp cannot express:
//! - a syscall numbered above every syscall the profile names, for its
//!   architecture, returns ENOSYS rather than the profile's EPERM, so that a
//!   libc newer than the profile falls back to an older call (runc's patch
//!   does the same);
//! - `ioctl(fd, TIOCSTI or TIOCLINUX, ...)` returns EPERM, whatever else the
//!   profile allows (CVE-2017-5226: a container typing into its caller's
//!   terminal). The command is compared on its low 32 bits only, as the
//!   kernel reads it (`unsigned int cmd`): otherwise 0x1_00005412 would pass
//!   a 64-bit comparison and still be TIOCSTI.

use std::collections::BTreeMap;

/// `struct sock_filter` of linux/filter.h.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JGT_K: u16 = 0x25;
const JSET_K: u16 = 0x45;
const JA: u16 = 0x05;
const RET_K: u16 = 0x06;

/// Offsets in `struct seccomp_data`.
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
/// The low 32 bits of args[1] on a little-endian machine.
const OFFSET_ARG1_LOW: u32 = 16 + 8;

pub const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

pub const TIOCSTI: u32 = 0x5412;
pub const TIOCLINUX: u32 = 0x541c;

/// What the prefix needs to know of one syscall ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abi {
    /// The highest syscall number the profile names on this ABI; `None`:
    /// no ENOSYS check (the profile allows what it does not name).
    pub max_known: Option<u32>,
    /// ioctl's number on this ABI.
    pub ioctl: u32,
}

/// The ABIs sharing one AUDIT_ARCH value: x86_64 and x32 do (x32 sets
/// [`X32_SYSCALL_BIT`] in the number).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditArch {
    pub native: Option<Abi>,
    pub x32: Option<Abi>,
}

#[derive(Clone, Copy)]
enum Target {
    Next,
    Label(usize),
}

/// A tiny assembler: forward jumps to labels, resolved at the end.
struct Asm {
    insns: Vec<(u16, Target, Target, u32, Option<usize>)>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    fn new() -> Self {
        Asm { insns: Vec::new(), labels: Vec::new() }
    }
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn bind(&mut self, label: usize) {
        self.labels[label] = Some(self.insns.len());
    }
    fn load(&mut self, offset: u32) {
        self.insns.push((LD_W_ABS, Target::Next, Target::Next, offset, None));
    }
    fn jump_if(&mut self, code: u16, k: u32, jt: Target, jf: Target) {
        self.insns.push((code, jt, jf, k, None));
    }
    fn jump(&mut self, label: usize) {
        self.insns.push((JA, Target::Next, Target::Next, 0, Some(label)));
    }
    fn ret(&mut self, k: u32) {
        self.insns.push((RET_K, Target::Next, Target::Next, k, None));
    }
    fn finish(self) -> Vec<Insn> {
        let at = |label: usize| self.labels[label].expect("every label is bound");
        let offset = |from: usize, t: Target| -> u8 {
            match t {
                Target::Next => 0,
                Target::Label(l) => u8::try_from(at(l) - from - 1).expect("the prefix is short"),
            }
        };
        self.insns
            .iter()
            .enumerate()
            .map(|(i, &(code, jt, jf, k, ja))| match ja {
                Some(l) => Insn { code, jt: 0, jf: 0, k: u32::try_from(at(l) - i - 1).expect("short") },
                None => Insn { code, jt: offset(i, jt), jf: offset(i, jf), k },
            })
            .collect()
    }
}

/// The prefix for these AUDIT_ARCH values. It ends by falling through to
/// whatever follows (libseccomp's program, or `ret ALLOW` when there is no
/// profile), which reloads what it needs.
pub fn prefix(arches: &BTreeMap<u32, AuditArch>) -> Vec<Insn> {
    let mut asm = Asm::new();
    let (enosys, eperm, rest) = (asm.label(), asm.label(), asm.label());
    asm.load(OFFSET_ARCH);
    for (&audit_arch, abis) in arches {
        let next_arch = asm.label();
        asm.jump_if(JEQ_K, audit_arch, Target::Next, Target::Label(next_arch));
        asm.load(OFFSET_NR);
        let x32 = asm.label();
        asm.jump_if(JSET_K, X32_SYSCALL_BIT, Target::Label(x32), Target::Next);
        abi_checks(&mut asm, abis.native, enosys, eperm, rest);
        asm.bind(x32);
        abi_checks(&mut asm, abis.x32, enosys, eperm, rest);
        asm.bind(next_arch);
    }
    asm.jump(rest);
    asm.bind(enosys);
    asm.ret(RET_ERRNO | libc::ENOSYS as u32);
    asm.bind(eperm);
    asm.ret(RET_ERRNO | libc::EPERM as u32);
    asm.bind(rest);
    asm.finish()
}

/// With the syscall number loaded: ENOSYS above the known range, EPERM for
/// the two ioctls, else on to the rest. Ends in a jump.
fn abi_checks(asm: &mut Asm, abi: Option<Abi>, enosys: usize, eperm: usize, rest: usize) {
    let Some(abi) = abi else {
        asm.jump(rest);
        return;
    };
    if let Some(max) = abi.max_known {
        asm.jump_if(JGT_K, max, Target::Label(enosys), Target::Next);
    }
    asm.jump_if(JEQ_K, abi.ioctl, Target::Next, Target::Label(rest));
    asm.load(OFFSET_ARG1_LOW);
    asm.jump_if(JEQ_K, TIOCSTI, Target::Label(eperm), Target::Next);
    asm.jump_if(JEQ_K, TIOCLINUX, Target::Label(eperm), Target::Label(rest));
}

pub fn to_bytes(insns: &[Insn]) -> Vec<u8> {
    let mut out = Vec::with_capacity(insns.len() * 8);
    for i in insns {
        out.extend_from_slice(&i.code.to_ne_bytes());
        out.push(i.jt);
        out.push(i.jf);
        out.extend_from_slice(&i.k.to_ne_bytes());
    }
    out
}

pub fn from_bytes(bytes: &[u8]) -> Option<Vec<Insn>> {
    let chunks = bytes.chunks_exact(8);
    if !chunks.remainder().is_empty() {
        return None;
    }
    let insns = chunks
        .map(|c| Insn {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    Some(insns)
}

/// The kernel's limit on one classic BPF program (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

/// A small interpreter of the instructions above and libseccomp's (loads
/// of seccomp_data words, ALU on the accumulator, jumps, returns), for the
/// unit tests: they check what a program returns for a syscall without
/// loading it into the test process.
#[cfg(test)]
pub fn run(program: &[Insn], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    run_counting(program, arch, nr, args).0
}

/// [`run`], and how many instructions it executed.
#[cfg(test)]
pub fn run_counting(program: &[Insn], arch: u32, nr: u32, args: [u64; 6]) -> (u32, usize) {
    let mut data = Vec::new();
    data.extend_from_slice(&nr.to_ne_bytes());
    data.extend_from_slice(&arch.to_ne_bytes());
    data.extend_from_slice(&0u64.to_ne_bytes());
    for a in args {
        data.extend_from_slice(&a.to_ne_bytes());
    }
    let word = |off: u32| u32::from_ne_bytes(data[off as usize..off as usize + 4].try_into().unwrap());
    let (mut acc, mut x, mut pc) = (0u32, 0u32, 0usize);
    let mut mem = [0u32; 16];
    for steps in 1.. {
        let i = program[pc];
        pc += 1;
        let class = i.code & 0x07;
        match class {
            0x00 => match i.code & 0xe0 {
                0x20 => acc = word(i.k),
                0x00 => acc = i.k,
                0x60 => acc = mem[i.k as usize],
                other => panic!("ld mode {other:#x}"),
            },
            0x01 => match i.code & 0xe0 {
                0x00 => x = i.k,
                0x60 => x = mem[i.k as usize],
                other => panic!("ldx mode {other:#x}"),
            },
            0x02 => mem[i.k as usize] = acc,
            0x03 => mem[i.k as usize] = x,
            0x04 => {
                let operand = if i.code & 0x08 != 0 { x } else { i.k };
                acc = match i.code & 0xf0 {
                    0x00 => acc.wrapping_add(operand),
                    0x10 => acc.wrapping_sub(operand),
                    0x50 => acc & operand,
                    0x40 => acc | operand,
                    other => panic!("alu op {other:#x}"),
                };
            }
            0x05 => {
                let operand = if i.code & 0x08 != 0 { x } else { i.k };
                let taken = match i.code & 0xf0 {
                    0x00 => {
                        pc += i.k as usize;
                        continue;
                    }
                    0x10 => acc == operand,
                    0x20 => acc > operand,
                    0x30 => acc >= operand,
                    0x40 => acc & operand != 0,
                    other => panic!("jmp op {other:#x}"),
                };
                pc += if taken { i.jt } else { i.jf } as usize;
            }
            0x06 => return (i.k, steps),
            0x07 => {
                if i.code & 0xf8 == 0x00 {
                    x = acc
                } else {
                    acc = x
                }
            }
            _ => unreachable!(),
        }
    }
    unreachable!("a program ends with a return")
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86_64: u32 = 0xC000_003E;
    const I386: u32 = 0x4000_0003;

    #[test]
    fn prefix_returns_enosys_eperm_or_falls_through() {
        let mut arches = BTreeMap::new();
        arches.insert(
            X86_64,
            AuditArch {
                native: Some(Abi { max_known: Some(450), ioctl: 16 }),
                x32: Some(Abi { max_known: Some(X32_SYSCALL_BIT | 547), ioctl: X32_SYSCALL_BIT | 514 }),
            },
        );
        arches.insert(I386, AuditArch { native: Some(Abi { max_known: None, ioctl: 54 }), x32: None });
        let mut program = prefix(&arches);
        program.push(Insn { code: RET_K, jt: 0, jf: 0, k: 0x1234 });
        let ret = |arch, nr, args| run(&program, arch, nr, args);
        let fall = 0x1234;
        assert_eq!(ret(X86_64, 0, [0; 6]), fall);
        assert_eq!(ret(X86_64, 450, [0; 6]), fall);
        assert_eq!(ret(X86_64, 451, [0; 6]), RET_ERRNO | 38);
        assert_eq!(ret(X86_64, 1000, [0; 6]), RET_ERRNO | 38);
        assert_eq!(ret(X86_64, 16, [1, 0x5412, 0, 0, 0, 0]), RET_ERRNO | 1);
        assert_eq!(ret(X86_64, 16, [1, 0x1_0000_5412, 0, 0, 0, 0]), RET_ERRNO | 1, "high bits do not hide TIOCSTI");
        assert_eq!(ret(X86_64, 16, [1, 0x541c, 0, 0, 0, 0]), RET_ERRNO | 1);
        assert_eq!(ret(X86_64, 16, [1, 0x5413, 0, 0, 0, 0]), fall);
        assert_eq!(ret(X86_64, X32_SYSCALL_BIT | 514, [1, 0x5412, 0, 0, 0, 0]), RET_ERRNO | 1);
        assert_eq!(ret(X86_64, X32_SYSCALL_BIT | 600, [0; 6]), RET_ERRNO | 38);
        assert_eq!(ret(X86_64, u32::MAX, [0; 6]), RET_ERRNO | 38);
        assert_eq!(ret(I386, 54, [1, 0x5412, 0, 0, 0, 0]), RET_ERRNO | 1);
        assert_eq!(ret(I386, 2000, [0; 6]), fall, "no ENOSYS where the profile allows the unknown");
        assert_eq!(ret(0xC000_00B7, 16, [1, 0x5412, 0, 0, 0, 0]), fall, "other arches: the rest decides");
        assert_eq!(from_bytes(&to_bytes(&program)).unwrap(), program);
    }
}
