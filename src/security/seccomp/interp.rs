//! A classic-BPF interpreter for the programs `compile` emits, with the checks the kernel's
//! loader makes (length, opcodes, load offsets, jumps inside the program), and the decision
//! table the program must agree with. Used by the unit tests and the `seccomp` fuzz target.
use super::bpf::*;
use super::compile::{Arch, Filter, Op};
use super::Program;

/// An architecture never in our filters (aarch64), for the bad-arch path.
pub const AUDIT_FOREIGN: u32 = 0xc000_00b7;

/// Run `p` on one `seccomp_data` the way the kernel would. An error names what the kernel
/// would have refused to load, or a path that runs off the end.
pub fn run(p: &Program, arch: u32, nr: u32, args: [u64; 6]) -> Result<u32, String> {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    let insns = &p.insns;
    if insns.len() > MAX_INSNS {
        return Err(format!("{} instructions (max {MAX_INSNS})", insns.len()));
    }
    let (mut acc, mut pc) = (0u32, 0usize);
    loop {
        let i = insns
            .get(pc)
            .ok_or_else(|| format!("pc {pc} outside the program"))?;
        pc += 1;
        let k = i.k;
        match i.code {
            BPF_LD_W_ABS => {
                let k = k as usize;
                if !k.is_multiple_of(4) || k + 4 > data.len() {
                    return Err(format!("bad load offset {k}"));
                }
                acc = u32::from_le_bytes(data[k..k + 4].try_into().unwrap());
            }
            BPF_ALU_AND_K => acc &= k,
            BPF_RET_K => return Ok(k),
            c if c == BPF_JMP | BPF_JA => pc += k as usize,
            c if c & 0x07 == BPF_JMP => {
                let hit = match c & 0xf0 {
                    BPF_JEQ => acc == k,
                    BPF_JGT => acc > k,
                    BPF_JGE => acc >= k,
                    BPF_JSET => acc & k != 0,
                    op => return Err(format!("unexpected jump op {op:#x}")),
                };
                pc += usize::from(if hit { i.jt } else { i.jf });
            }
            c => return Err(format!("unexpected opcode {c:#x}")),
        }
    }
}

/// What the profile says, call by call: the decision table evaluated directly, without BPF.
/// Built once per profile (building it is the compiler's front half).
pub struct Decisions(Filter);

impl Decisions {
    pub fn new(s: &oci_spec::runtime::LinuxSeccomp) -> anyhow::Result<Decisions> {
        Ok(Decisions(super::compile::build(s)?))
    }

    /// The action for one call, as the kernel reports it in `seccomp_data`.
    pub fn decide(&self, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let f = &self.0;
        let arch = match arch {
            Arch::AUDIT_X86_64 if nr & Arch::X32_SYSCALL_BIT != 0 => Arch::X32,
            Arch::AUDIT_X86_64 => Arch::X86_64,
            Arch::AUDIT_I386 => Arch::X86,
            _ => return f.bad_arch.ret(),
        };
        reference(f, arch, nr, args)
    }
}

/// The decision table of `f` for one call on `arch`.
pub(super) fn reference(f: &Filter, arch: Arch, nr: u32, args: [u64; 6]) -> u32 {
    let Some(af) = f.arch(arch) else {
        return f.bad_arch.ret();
    };
    let m = if arch.is_64bit() {
        u64::MAX
    } else {
        0xffff_ffff
    };
    if let Some(rules) = af.syscalls.get(&nr) {
        for r in rules {
            let holds = r.conds.iter().all(|c| {
                let (x, v) = (args[usize::from(c.index)] & m, c.value & m);
                match c.op {
                    Op::Eq => x == v,
                    Op::Ne => x != v,
                    Op::Lt => x < v,
                    Op::Le => x <= v,
                    Op::Gt => x > v,
                    Op::Ge => x >= v,
                    Op::MaskedEq { mask } => x & mask == v,
                }
            });
            if holds {
                return r.action.ret();
            }
        }
        return f.default.ret();
    }
    if af.enosys_above.is_some_and(|max| nr > max) {
        return libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    }
    f.default.ret()
}

/// Syscall numbers worth asking a program about: every number the profile names on each of
/// its ABIs, its neighbours, and the edges.
pub fn interesting_numbers(s: &oci_spec::runtime::LinuxSeccomp) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let names: Vec<String> = s
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|r| r.names().clone())
        .collect();
    for a in [Arch::X86_64, Arch::X86, Arch::X32] {
        let base = if a == Arch::X32 {
            Arch::X32_SYSCALL_BIT
        } else {
            0
        };
        for n in names.iter().filter_map(|n| a.syscall(n)) {
            out.extend([n, n.wrapping_add(1), n.wrapping_sub(1)].map(|n| (a.audit(), n)));
        }
        out.extend(
            [base, base + 1, base + 1099, base | 0x3fff_ffff, u32::MAX].map(|n| (a.audit(), n)),
        );
    }
    out.push((AUDIT_FOREIGN, 0));
    out
}
