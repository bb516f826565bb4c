//! v2 device filter: compiles the evaluated rule set (see `cgroups::devices`) into a
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program with our own instruction emitter, and attaches it to
//! the cgroup with `BPF_F_ALLOW_MULTI`, then detaches the programs that were there before (so
//! there is never a moment with no filter).
//!
//! The program reads `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
//! (`access_type` = access << 16 | type), tests each exception in turn and returns the
//! exception's verdict on the first match, or the default at the end. Return 1 allows.
use std::os::fd::AsFd;
use std::path::Path;

use anyhow::{Context, Result};

use crate::cgroups::devices::{Access, DevType, DeviceState, Exception};
use crate::sys::cgroups::{self as bpf, BpfInsn};

// Opcodes (class | op | source) used by the emitter.
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const ALU32_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const ALU32_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const ALU64_MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const JMP_JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JMP_JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

// Registers: r1 = ctx (then scratch), r2 = type, r3 = access, r4 = major, r5 = minor.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

// `BPF_DEVCG_DEV_*` device types.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> BpfInsn {
    BpfInsn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

/// The prologue: unpack the context into r2..r5.
fn prologue() -> Vec<BpfInsn> {
    vec![
        insn(LDX_MEM_W, R2, R1, 0, 0),
        insn(ALU32_AND_K, R2, 0, 0, 0xffff),
        insn(LDX_MEM_W, R3, R1, 0, 0),
        insn(ALU32_RSH_K, R3, 0, 0, 16),
        insn(LDX_MEM_W, R4, R1, 4, 0),
        insn(LDX_MEM_W, R5, R1, 8, 0),
    ]
}

/// One exception: a block of conditional jumps past its end, then `return verdict`.
/// `default_allow` decides how access bits match: an allow exception must cover every
/// requested bit; a deny exception matches when any requested bit is denied.
fn block(e: &Exception, default_allow: bool) -> Vec<BpfInsn> {
    const SKIP: i16 = i16::MAX; // placeholder, patched once the block length is known
    let mut out = Vec::new();
    let typ = match e.typ {
        DevType::Block => DEV_BLOCK,
        DevType::Char | DevType::All => DEV_CHAR,
    };
    out.push(insn(JMP_JNE_K, R2, 0, SKIP, typ));
    if e.access != Access::ALL {
        out.push(insn(ALU32_MOV_X, R1, R3, 0, 0));
        if default_allow {
            // Deny exception: skip when no requested bit is denied.
            out.push(insn(ALU32_AND_K, R1, 0, 0, i32::from(e.access.0)));
            out.push(insn(JMP_JEQ_K, R1, 0, SKIP, 0));
        } else {
            // Allow exception: skip when some requested bit is not allowed.
            out.push(insn(ALU32_AND_K, R1, 0, 0, i32::from(!e.access.0 & 7)));
            out.push(insn(JMP_JNE_K, R1, 0, SKIP, 0));
        }
    }
    if let Some(m) = e.major {
        out.push(insn(JMP_JNE_K, R4, 0, SKIP, m as i32));
    }
    if let Some(m) = e.minor {
        out.push(insn(JMP_JNE_K, R5, 0, SKIP, m as i32));
    }
    out.push(insn(ALU64_MOV_K, R0, 0, 0, i32::from(!default_allow)));
    out.push(insn(JMP_EXIT, 0, 0, 0, 0));
    let len = out.len();
    for (pc, i) in out.iter_mut().enumerate() {
        if i.off == SKIP {
            i.off = (len - pc - 1) as i16;
        }
    }
    out
}

/// The whole program for `st`.
pub fn program(st: &DeviceState) -> Vec<BpfInsn> {
    let mut p = prologue();
    for e in &st.exceptions {
        p.extend(block(e, st.default_allow));
    }
    p.push(insn(ALU64_MOV_K, R0, 0, 0, i32::from(st.default_allow)));
    p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    p
}

/// Loads the program for `st` and makes it the cgroup's only device filter.
pub fn set(dir: &Path, st: &DeviceState) -> Result<()> {
    let insns = program(st);
    let prog = bpf::load_device_program(&insns, c"Apache-2.0").map_err(|(errno, log)| {
        anyhow::Error::new(errno).context(format!(
            "loading the device filter ({} instructions) for {}: verifier says: {}",
            insns.len(),
            dir.display(),
            log.trim()
        ))
    })?;
    let cg =
        std::fs::File::open(dir).with_context(|| format!("opening cgroup {}", dir.display()))?;
    let old = bpf::query_device_programs(cg.as_fd())
        .with_context(|| format!("listing device filters of {}", dir.display()))?;
    bpf::attach_device_program(cg.as_fd(), prog.as_fd())
        .with_context(|| format!("attaching the device filter to {}", dir.display()))?;
    for id in old {
        let fd = bpf::program_fd_by_id(id)
            .with_context(|| format!("opening old device filter {id} of {}", dir.display()))?;
        bpf::detach_device_program(cg.as_fd(), fd.as_fd())
            .with_context(|| format!("detaching old device filter {id} from {}", dir.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::devices::{default_rules, effective_rules, Rule};

    /// A tiny interpreter for the opcodes the emitter uses.
    fn run(p: &[BpfInsn], typ: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [(access << 16) | typ, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        let mut steps = 0;
        loop {
            steps += 1;
            assert!(steps < 10_000, "runaway program");
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(src, 1, "loads only from the context");
                    r[dst] = u64::from(ctx[(i.off / 4) as usize]);
                }
                ALU32_AND_K => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
                ALU32_RSH_K => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
                ALU32_MOV_X => r[dst] = r[src] as u32 as u64,
                ALU64_MOV_K => r[dst] = i.imm as i64 as u64,
                JMP_JEQ_K | JMP_JNE_K => {
                    let eq = r[dst] == i.imm as i64 as u64;
                    if eq == (i.code == JMP_JEQ_K) {
                        pc = (pc as i64 + i64::from(i.off)) as usize;
                    }
                }
                JMP_EXIT => return r[0],
                c => panic!("unknown opcode {c:#x}"),
            }
        }
    }

    /// Checks the program against the reference evaluator on a grid of requests.
    fn agrees(st: &DeviceState) {
        let p = program(st);
        for (typ, t) in [(DevType::Block, 1), (DevType::Char, 2)] {
            for major in [1, 5, 8, 136, 10] {
                for minor in [0, 1, 3, 5, 7, 9, 200] {
                    for acc in 1..8u8 {
                        let want = st.allows(typ, major, minor, Access(acc));
                        let got = run(&p, t, acc as u32, major, minor) == 1;
                        assert_eq!(got, want, "{typ:?} {major}:{minor} access {acc} in {st:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn default_allowlist_program_matches_the_rules() {
        agrees(&DeviceState::from_rules(&default_rules()));
    }

    #[test]
    fn deny_list_program_matches_the_rules() {
        let rules = [
            Rule {
                allow: true,
                typ: DevType::All,
                major: None,
                minor: None,
                access: Access::ALL,
            },
            Rule {
                allow: false,
                typ: DevType::Char,
                major: Some(1),
                minor: Some(7),
                access: Access(Access::READ | Access::WRITE),
            },
            Rule {
                allow: false,
                typ: DevType::Block,
                major: Some(8),
                minor: None,
                access: Access::ALL,
            },
        ];
        let st = DeviceState::from_rules(&rules);
        agrees(&st);
        let p = program(&st);
        assert_eq!(run(&p, 2, Access::READ as u32, 1, 7), 0);
        assert_eq!(run(&p, 2, Access::MKNOD as u32, 1, 7), 1);
        assert_eq!(run(&p, 1, Access::READ as u32, 8, 3), 0);
    }

    #[test]
    fn podman_rules_program() {
        use oci_spec::runtime::LinuxDeviceCgroupBuilder;
        let deny = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap();
        let st = DeviceState::from_rules(&effective_rules(Some(&[deny])).unwrap());
        agrees(&st);
        let p = program(&st);
        assert_eq!(
            run(&p, 2, Access::READ as u32, 1, 7),
            1,
            "/dev/full allowed by default"
        );
        assert_eq!(run(&p, 2, Access::READ as u32, 10, 200), 0, "tun denied");
    }

    #[test]
    fn jumps_stay_inside_the_program() {
        let p = program(&DeviceState::from_rules(&default_rules()));
        for (pc, i) in p.iter().enumerate() {
            if i.code == JMP_JEQ_K || i.code == JMP_JNE_K {
                let target = pc as i64 + 1 + i64::from(i.off);
                assert!(target > pc as i64 && (target as usize) < p.len());
            }
        }
        assert_eq!(p.last().unwrap().code, JMP_EXIT);
    }
}
