//! Classic BPF generation for a compiled `Filter`: a small assembler with labels (a
//! conditional jump farther than 255 instructions goes through a `ja` trampoline) and the
//! program's shape:
//!
//! ```text
//! ld arch; jeq AUDIT_ARCH_X86_64 -> x86_64; jeq AUDIT_ARCH_I386 -> x86; ret bad-arch
//! x86_64: ld nr; jset X32_BIT -> x32 (or bad-arch); dispatch(x86_64)
//! x32:    dispatch(x32)                       x86: dispatch(x86)
//! dispatch: ld nr; binary search (jge) over runs of consecutive syscall numbers with the
//!           same outcome (default action, one unconditional action, ENOSYS above the
//!           highest named syscall); a run jumps to its return, a conditional syscall to its
//!           body: rules in order, each a chain of argument tests.
//! ```
//! Returns are shared within small subtrees so that most jumps stay short.
use std::collections::BTreeMap;

use anyhow::bail;

use super::compile::{Action, Arch, ArchFilter, Cond, Filter, Op, Rule};
use crate::sys::seccomp::SockFilter;

/// BPF_MAXINSNS: the kernel rejects longer programs.
pub(crate) const MAX_INSNS: usize = 4096;

// Opcodes (linux/bpf_common.h).
/// BPF_LD | BPF_W | BPF_ABS (BPF_LD and BPF_W are 0).
pub(crate) const BPF_LD_W_ABS: u16 = 0x20;
pub(crate) const BPF_ALU_AND_K: u16 = 0x04 | 0x50;
pub(crate) const BPF_JMP: u16 = 0x05;
pub(crate) const BPF_JA: u16 = 0x00;
pub(crate) const BPF_JEQ: u16 = 0x10;
pub(crate) const BPF_JGT: u16 = 0x20;
pub(crate) const BPF_JGE: u16 = 0x30;
pub(crate) const BPF_JSET: u16 = 0x40;
pub(crate) const BPF_RET_K: u16 = 0x06;

// struct seccomp_data offsets (little endian: the low word of an argument comes first).
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
fn off_arg_lo(index: u8) -> u32 {
    16 + 8 * u32::from(index)
}
fn off_arg_hi(index: u8) -> u32 {
    off_arg_lo(index) + 4
}

/// Subtrees of at most this many runs get their own return instructions.
const RET_SCOPE: usize = 16;

#[cfg(not(target_endian = "little"))]
compile_error!("the seccomp argument offsets assume a little-endian target");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Label(usize);

#[derive(Debug, Clone, Copy)]
enum Item {
    Bind(Label),
    Ld(u32),
    And(u32),
    Ret(u32),
    Jmp { op: u16, k: u32, t: Label, f: Label },
    Ja(Label),
}

#[derive(Default)]
struct Asm {
    items: Vec<Item>,
    labels: usize,
    /// Stack of return scopes: return value → label of its `ret`.
    rets: Vec<BTreeMap<u32, Label>>,
}

impl Asm {
    fn new() -> Asm {
        Asm {
            rets: vec![BTreeMap::new()],
            ..Asm::default()
        }
    }

    fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    fn bind(&mut self, l: Label) {
        self.items.push(Item::Bind(l));
    }

    fn ld(&mut self, off: u32) {
        self.items.push(Item::Ld(off));
    }

    fn and(&mut self, k: u32) {
        self.items.push(Item::And(k));
    }

    fn ja(&mut self, l: Label) {
        self.items.push(Item::Ja(l));
    }

    fn jmp(&mut self, op: u16, k: u32, t: Label, f: Label) {
        if t == f {
            self.ja(t);
        } else {
            self.items.push(Item::Jmp { op, k, t, f });
        }
    }

    /// `jmp` whose false branch falls through to the next instruction.
    fn jmp_or_next(&mut self, op: u16, k: u32, t: Label) {
        let next = self.label();
        self.jmp(op, k, t, next);
        self.bind(next);
    }

    /// The label of a `ret action` in the innermost scope.
    fn ret(&mut self, action: Action) -> Label {
        let v = action.ret();
        if let Some(l) = self.rets.last().and_then(|s| s.get(&v)) {
            return *l;
        }
        let l = self.label();
        self.rets.last_mut().expect("a scope").insert(v, l);
        l
    }

    fn push_scope(&mut self) {
        self.rets.push(BTreeMap::new());
    }

    /// Emit the scope's returns. Only call after an unconditional jump or return.
    fn pop_scope(&mut self) {
        for (v, l) in self.rets.pop().expect("a scope") {
            self.bind(l);
            self.items.push(Item::Ret(v));
        }
    }

    fn finish(mut self) -> anyhow::Result<Vec<SockFilter>> {
        while !self.rets.is_empty() {
            self.pop_scope();
        }
        assemble(&self.items, self.labels)
    }
}

/// Lay the items out, adding trampolines until every conditional offset fits in 8 bits.
fn assemble(items: &[Item], nlabels: usize) -> anyhow::Result<Vec<SockFilter>> {
    // Every item but a label is an instruction: refuse a program that cannot fit before
    // the layout loop (quadratic at worst) runs on it.
    let at_least = items.iter().filter(|i| !matches!(i, Item::Bind(_))).count();
    if at_least > MAX_INSNS {
        bail!("the seccomp program has at least {at_least} instructions, more than the kernel's limit of {MAX_INSNS}");
    }
    // far[i] = (true branch via trampoline, false branch via trampoline); only grows.
    let mut far = vec![(false, false); items.len()];
    let (pos, at, len) = loop {
        let (pos, at, len) = layout(items, &far, nlabels);
        let mut changed = false;
        for (i, item) in items.iter().enumerate() {
            if let Item::Jmp { t, f, .. } = item {
                let off = |l: &Label| label_pos(&at, *l, len).map(|x| x.checked_sub(pos[i] + 1));
                let (ot, of) = (off(t)?, off(f)?);
                let (Some(ot), Some(of)) = (ot, of) else {
                    bail!("internal error: backward jump in the seccomp program");
                };
                if !far[i].0 && ot > 255 {
                    far[i].0 = true;
                    changed = true;
                }
                if !far[i].1 && of > 255 {
                    far[i].1 = true;
                    changed = true;
                }
            }
        }
        if !changed {
            break (pos, at, len);
        }
    };
    let mut out = Vec::with_capacity(len);
    for (i, item) in items.iter().enumerate() {
        let here = out.len();
        debug_assert_eq!(here, pos[i]);
        let rel = |l: Label, from: usize| -> anyhow::Result<u32> {
            let to = label_pos(&at, l, len)?;
            Ok(u32::try_from(to - from - 1)?)
        };
        match *item {
            Item::Bind(_) => {}
            Item::Ld(off) => out.push(insn(BPF_LD_W_ABS, 0, 0, off)),
            Item::And(k) => out.push(insn(BPF_ALU_AND_K, 0, 0, k)),
            Item::Ret(k) => out.push(insn(BPF_RET_K, 0, 0, k)),
            Item::Ja(l) => out.push(insn(BPF_JMP | BPF_JA, 0, 0, rel(l, here)?)),
            Item::Jmp { op, k, t, f } => {
                let (ft, ff) = far[i];
                let jt = if ft { 0 } else { rel(t, here)? };
                let jf = match (ft, ff) {
                    (true, true) => 1,
                    (false, true) => 0,
                    _ => rel(f, here)?,
                };
                out.push(insn(BPF_JMP | op, jt as u8, jf as u8, k));
                if ft {
                    let from = out.len();
                    out.push(insn(BPF_JMP | BPF_JA, 0, 0, rel(t, from)?));
                }
                if ff {
                    let from = out.len();
                    out.push(insn(BPF_JMP | BPF_JA, 0, 0, rel(f, from)?));
                }
            }
        }
    }
    if out.len() > MAX_INSNS {
        bail!(
            "the seccomp program has {} instructions, more than the kernel's limit of {MAX_INSNS}",
            out.len()
        );
    }
    Ok(out)
}

/// Instruction index of each item and of each label, and the program length.
fn layout(
    items: &[Item],
    far: &[(bool, bool)],
    nlabels: usize,
) -> (Vec<usize>, Vec<Option<usize>>, usize) {
    let mut pos = Vec::with_capacity(items.len());
    let mut at = vec![None; nlabels];
    let mut pc = 0;
    for (i, item) in items.iter().enumerate() {
        pos.push(pc);
        pc += match item {
            Item::Bind(l) => {
                at[l.0] = Some(pc);
                0
            }
            Item::Jmp { .. } => 1 + usize::from(far[i].0) + usize::from(far[i].1),
            _ => 1,
        };
    }
    (pos, at, pc)
}

fn label_pos(at: &[Option<usize>], l: Label, len: usize) -> anyhow::Result<usize> {
    match at[l.0] {
        Some(p) if p < len => Ok(p),
        _ => bail!(
            "internal error: seccomp program label {} has no instruction",
            l.0
        ),
    }
}

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> SockFilter {
    SockFilter { code, jt, jf, k }
}

/// Generate the program for `f`.
pub(crate) fn generate(f: &Filter) -> anyhow::Result<Vec<SockFilter>> {
    let mut a = Asm::new();
    let Some(native) = f.arch(Arch::X86_64) else {
        bail!("internal error: the native architecture is missing from the filter");
    };
    let bad = a.ret(f.bad_arch);
    let l_x86_64 = a.label();
    let l_x32 = f.arch(Arch::X32).map(|x| (a.label(), x));
    let l_x86 = f.arch(Arch::X86).map(|x| (a.label(), x));

    a.ld(OFF_ARCH);
    a.jmp_or_next(BPF_JEQ, Arch::X86_64.audit(), l_x86_64);
    if let Some((l, _)) = l_x86 {
        a.jmp_or_next(BPF_JEQ, Arch::X86.audit(), l);
    }
    a.ja(bad);

    a.bind(l_x86_64);
    a.ld(OFF_NR);
    a.jmp_or_next(
        BPF_JSET,
        Arch::X32_SYSCALL_BIT,
        l_x32.map_or(bad, |(l, _)| l),
    );
    dispatch(&mut a, f, native);
    for (l, af) in [l_x32, l_x86].into_iter().flatten() {
        a.bind(l);
        dispatch(&mut a, f, af);
    }
    a.finish()
}

/// One architecture: syscall number → action.
fn dispatch(a: &mut Asm, f: &Filter, af: &ArchFilter) {
    a.push_scope();
    a.ld(OFF_NR);
    let mut bodies = Vec::new();
    let mut points: Vec<(u32, Target)> = Vec::with_capacity(af.syscalls.len());
    for (&nr, rules) in &af.syscalls {
        match rules.as_slice() {
            [Rule { conds, action }] if conds.is_empty() => points.push((nr, Target::Ret(*action))),
            _ => {
                let l = a.label();
                points.push((nr, Target::Body(l)));
                bodies.push((l, rules));
            }
        }
    }
    let segs = segments(&points, f.default, af.enosys_above);
    search(a, &segs);
    for (l, rules) in bodies {
        a.bind(l);
        a.push_scope();
        body(a, af.arch, f.default, rules);
        a.pop_scope();
    }
    a.pop_scope();
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Ret(Action),
    Body(Label),
}

/// Cover all syscall numbers with `(first number, target)` runs, sorted and merged: the
/// numbers in `points` get their target, the others the default action, and numbers above
/// `enosys_above` ENOSYS.
fn segments(
    points: &[(u32, Target)],
    default: Action,
    enosys_above: Option<u32>,
) -> Vec<(u32, Target)> {
    let mut segs: Vec<(u32, Target)> = vec![(0, Target::Ret(default))];
    let push = |segs: &mut Vec<(u32, Target)>, start: u32, t: Target| {
        if segs.last().is_some_and(|l| l.1 == t) {
            return;
        }
        if segs.last().is_some_and(|l| l.0 == start) {
            segs.pop();
            if segs.last().is_some_and(|l| l.1 == t) {
                return;
            }
        }
        segs.push((start, t));
    };
    for &(nr, t) in points {
        push(&mut segs, nr, t);
        if let Some(next) = nr.checked_add(1) {
            push(&mut segs, next, Target::Ret(default));
        }
    }
    if let Some(next) = enosys_above.and_then(|m| m.checked_add(1)) {
        push(
            &mut segs,
            next,
            Target::Ret(Action::Errno(libc::ENOSYS as u16)),
        );
    }
    segs
}

/// Binary search over the runs (`jge start` splits them); a run is a jump to its target.
/// The emitted code never falls through.
fn search(a: &mut Asm, segs: &[(u32, Target)]) {
    if let [(_, t)] = segs {
        let l = target(a, *t);
        a.ja(l);
        return;
    }
    let scoped = segs.len() <= RET_SCOPE;
    if scoped {
        a.push_scope();
    }
    let (left, right) = segs.split_at(segs.len() / 2);
    let r_label = match right {
        [(_, t)] => target(a, *t),
        _ => a.label(),
    };
    match left {
        [(_, t)] => {
            let l_label = target(a, *t);
            a.jmp(BPF_JGE, right[0].0, r_label, l_label);
        }
        _ => {
            a.jmp_or_next(BPF_JGE, right[0].0, r_label);
            search(a, left);
        }
    }
    if right.len() > 1 {
        a.bind(r_label);
        search(a, right);
    }
    if scoped {
        a.pop_scope();
    }
}

fn target(a: &mut Asm, t: Target) -> Label {
    match t {
        Target::Ret(act) => a.ret(act),
        Target::Body(l) => l,
    }
}

/// A conditional syscall: the first rule whose conditions all hold decides.
fn body(a: &mut Asm, arch: Arch, default: Action, rules: &[Rule]) {
    for rule in rules {
        let next_rule = a.label();
        let n = rule.conds.len();
        for (i, c) in rule.conds.iter().enumerate() {
            if i + 1 == n {
                let pass = a.ret(rule.action);
                cond(a, arch, c, pass, next_rule);
            } else {
                let pass = a.label();
                cond(a, arch, c, pass, next_rule);
                a.bind(pass);
            }
        }
        if n == 0 {
            let r = a.ret(rule.action);
            a.ja(r);
        }
        a.bind(next_rule);
    }
    let d = a.ret(default);
    a.ja(d);
}

/// One argument test: jump to `pass` or `fail`.
fn cond(a: &mut Asm, arch: Arch, c: &Cond, pass: Label, fail: Label) {
    let (v_hi, v_lo) = ((c.value >> 32) as u32, c.value as u32);
    if !arch.is_64bit() {
        a.ld(off_arg_lo(c.index));
        word(a, c.op, v_lo, |m| m as u32, pass, fail);
        return;
    }
    match c.op {
        Op::Eq | Op::Ne | Op::MaskedEq { .. } => {
            // Both words equal (under the mask): EQ/MASKED_EQ pass, NE fails.
            let (equal, differ, op) = match c.op {
                Op::Ne => (fail, pass, Op::Eq),
                op => (pass, fail, op),
            };
            let lo = a.label();
            a.ld(off_arg_hi(c.index));
            word(a, op, v_hi, |m| (m >> 32) as u32, lo, differ);
            a.bind(lo);
            a.ld(off_arg_lo(c.index));
            word(a, op, v_lo, |m| m as u32, equal, differ);
        }
        Op::Gt | Op::Ge | Op::Lt | Op::Le => {
            // LT is !GE and LE is !GT: swap the outcomes.
            let (t, f) = match c.op {
                Op::Gt | Op::Ge => (pass, fail),
                _ => (fail, pass),
            };
            let lo_op = match c.op {
                Op::Gt | Op::Le => BPF_JGT,
                _ => BPF_JGE,
            };
            let hi_eq = a.label();
            let lo = a.label();
            a.ld(off_arg_hi(c.index));
            a.jmp(BPF_JGT, v_hi, t, hi_eq);
            a.bind(hi_eq);
            a.jmp(BPF_JEQ, v_hi, lo, f);
            a.bind(lo);
            a.ld(off_arg_lo(c.index));
            a.jmp(lo_op, v_lo, t, f);
        }
    }
}

/// Compare the loaded 32-bit word with `v` under `op` (`part` picks the mask's word).
fn word(a: &mut Asm, op: Op, v: u32, part: impl Fn(u64) -> u32, pass: Label, fail: Label) {
    match op {
        Op::Eq => a.jmp(BPF_JEQ, v, pass, fail),
        Op::Ne => a.jmp(BPF_JEQ, v, fail, pass),
        Op::Gt => a.jmp(BPF_JGT, v, pass, fail),
        Op::Ge => a.jmp(BPF_JGE, v, pass, fail),
        Op::Lt => a.jmp(BPF_JGE, v, fail, pass),
        Op::Le => a.jmp(BPF_JGT, v, fail, pass),
        Op::MaskedEq { mask } => {
            a.and(part(mask));
            a.jmp(BPF_JEQ, v, pass, fail);
        }
    }
}
