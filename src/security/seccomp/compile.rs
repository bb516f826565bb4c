//! From the OCI profile to a per-architecture decision table (`Filter`): architectures,
//! actions, conditions, syscall name resolution and rule precedence. No BPF here.
use std::collections::BTreeMap;

use anyhow::{bail, Context};
use oci_spec::runtime::{
    Arch as OciArch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};

use super::bpf::MAX_INSNS;
use super::syscalls;

/// Linux syscalls take at most six arguments.
const MAX_ARGS: usize = 6;
/// `SECCOMP_RET_DATA` is 16 bits wide.
const MAX_RET_DATA: u32 = 0xffff;

/// An ABI we have a syscall table for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Arch {
    X86_64,
    X86,
    X32,
}

impl Arch {
    pub(crate) const NATIVE: Arch = Arch::X86_64;
    pub(crate) const AUDIT_X86_64: u32 = 0xc000_003e;
    pub(crate) const AUDIT_I386: u32 = 0x4000_0003;
    pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

    /// The `seccomp_data.arch` value the kernel reports for this ABI.
    pub(crate) fn audit(self) -> u32 {
        match self {
            Arch::X86_64 | Arch::X32 => Self::AUDIT_X86_64,
            Arch::X86 => Self::AUDIT_I386,
        }
    }

    /// libseccomp compares 64-bit arguments only on 64-bit ABIs; x86 and x32 are 32-bit.
    pub(crate) fn is_64bit(self) -> bool {
        self == Arch::X86_64
    }

    /// A MASKED_EQ whose mask has no bit in the compared width always holds; libseccomp drops
    /// it, so a rule made only of such tests is unconditional (which matters for precedence).
    fn is_tautology(self, c: &Cond) -> bool {
        let width = if self.is_64bit() {
            u64::MAX
        } else {
            0xffff_ffff
        };
        matches!(c.op, Op::MaskedEq { mask } if mask & width == 0)
    }

    fn table(self) -> &'static [(&'static str, u32)] {
        match self {
            Arch::X86_64 => syscalls::X86_64,
            Arch::X86 => syscalls::X86,
            Arch::X32 => syscalls::X32,
        }
    }

    pub(crate) fn syscall(self, name: &str) -> Option<u32> {
        let table = self.table();
        table
            .binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| table[i].1)
    }

    fn from_oci(a: OciArch) -> Option<Arch> {
        match a {
            OciArch::ScmpArchNative => Some(Self::NATIVE),
            OciArch::ScmpArchX86_64 => Some(Arch::X86_64),
            OciArch::ScmpArchX86 => Some(Arch::X86),
            OciArch::ScmpArchX32 => Some(Arch::X32),
            _ => None,
        }
    }
}

/// A seccomp return action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Action {
    KillThread,
    KillProcess,
    Trap,
    Errno(u16),
    Trace(u16),
    Allow,
    Log,
    Notify,
}

impl Action {
    /// The filter's return value.
    pub(crate) fn ret(self) -> u32 {
        match self {
            Action::KillThread => libc::SECCOMP_RET_KILL_THREAD,
            Action::KillProcess => libc::SECCOMP_RET_KILL_PROCESS,
            Action::Trap => libc::SECCOMP_RET_TRAP,
            Action::Errno(e) => libc::SECCOMP_RET_ERRNO | u32::from(e),
            Action::Trace(e) => libc::SECCOMP_RET_TRACE | u32::from(e),
            Action::Allow => libc::SECCOMP_RET_ALLOW,
            Action::Log => libc::SECCOMP_RET_LOG,
            Action::Notify => libc::SECCOMP_RET_USER_NOTIF,
        }
    }

    /// runc's ENOSYS stub is left out for permissive default actions.
    fn is_permissive(self) -> bool {
        matches!(self, Action::Allow | Action::Log | Action::Trace(_))
    }
}

/// A comparison of one syscall argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `(arg & mask) == value & mask`
    MaskedEq {
        mask: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cond {
    pub(crate) index: u8,
    pub(crate) op: Op,
    pub(crate) value: u64,
}

/// `action` when every condition holds (no condition: always).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    pub(crate) conds: Vec<Cond>,
    pub(crate) action: Action,
}

/// What one architecture does, syscall by syscall.
#[derive(Debug, Clone)]
pub(crate) struct ArchFilter {
    pub(crate) arch: Arch,
    /// Syscall number → rules in evaluation order (see `add_rule`). Absent: default action.
    pub(crate) syscalls: BTreeMap<u32, Vec<Rule>>,
    /// runc's stub: numbers above this return ENOSYS.
    pub(crate) enosys_above: Option<u32>,
}

#[derive(Debug, Clone)]
pub(crate) struct Filter {
    pub(crate) default: Action,
    pub(crate) bad_arch: Action,
    /// Sorted, native first.
    pub(crate) arches: Vec<ArchFilter>,
    pub(crate) flags: u32,
    /// A rule of the profile uses SCMP_ACT_NOTIFY (even if its syscall is unknown here: the
    /// runtime still creates the listener and calls the agent, as runc does).
    pub(crate) notify: bool,
}

impl Filter {
    pub(crate) fn arch(&self, arch: Arch) -> Option<&ArchFilter> {
        self.arches.iter().find(|a| a.arch == arch)
    }
}

/// Build the decision table for `s`.
pub(crate) fn build(s: &LinuxSeccomp) -> anyhow::Result<Filter> {
    let default =
        action(s.default_action(), s.default_errno_ret()).context("linux.seccomp.defaultAction")?;
    if default == Action::Notify {
        bail!("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action");
    }
    let (arches, listed) = arches(s)?;
    let rules = s.syscalls().as_deref().unwrap_or_default();
    let mut filters: Vec<ArchFilter> = arches
        .iter()
        .map(|&arch| ArchFilter {
            arch,
            syscalls: BTreeMap::new(),
            enosys_above: None,
        })
        .collect();
    let notify = add_rules(&mut filters, rules, default)?;
    if notify && s.listener_path().is_none() {
        bail!("linux.seccomp.listenerPath: required when a rule uses SCMP_ACT_NOTIFY");
    }
    if !default.is_permissive() && s.default_errno_ret() != Some(libc::ENOSYS as u32) {
        for f in filters.iter_mut().filter(|f| listed.contains(&f.arch)) {
            f.enosys_above = highest_named(f.arch, rules);
        }
    }
    Ok(Filter {
        default,
        bad_arch: Action::KillThread,
        arches: filters,
        flags: flags(s, notify)?,
        notify,
    })
}

/// Add `linux.seccomp.syscalls` in order; returns whether a rule uses SCMP_ACT_NOTIFY.
fn add_rules(
    filters: &mut [ArchFilter],
    rules: &[LinuxSyscall],
    default: Action,
) -> anyhow::Result<bool> {
    let mut notify = false;
    // Conditional rules over all architectures: each costs at least one instruction, so
    // past the kernel's program limit the profile cannot load, and a hostile profile (a
    // million names, or args) must not keep create busy finding that out.
    let mut conditional = 0usize;
    for (i, call) in rules.iter().enumerate() {
        let path = format!("linux.seccomp.syscalls[{i}]");
        let act =
            action(call.action(), call.errno_ret()).with_context(|| format!("{path}.action"))?;
        let groups = conditions(call, &path)?;
        if call.names().is_empty() {
            // runc makes one rule per name: a rule with none adds nothing.
            tracing::debug!("{path}: no names, skipped");
            continue;
        }
        notify |= act == Action::Notify;
        if act == default {
            continue; // redundant, as runc skips it
        }
        for name in call.names() {
            add_named(filters, name, act, &groups, &mut conditional)
                .with_context(|| format!("{path}.names: {name:?}"))?;
            if conditional > MAX_INSNS {
                bail!(
                    "{path}: more than {MAX_INSNS} rules with conditions: the program cannot \
                     fit the kernel's limit of {MAX_INSNS} instructions"
                );
            }
        }
    }
    Ok(notify)
}

/// The architectures to filter (native first, then the listed ones) and the listed ones.
fn arches(s: &LinuxSeccomp) -> anyhow::Result<(Vec<Arch>, Vec<Arch>)> {
    let oci = s.architectures().as_deref().unwrap_or_default();
    let unsupported: Vec<String> = oci
        .iter()
        .filter(|a| Arch::from_oci(**a).is_none())
        .map(|a| a.to_string())
        .collect();
    if !unsupported.is_empty() {
        bail!(
            "linux.seccomp.architectures: unsupported {} (supported: {})",
            unsupported.join(", "),
            ARCHES_SUPPORTED
        );
    }
    let listed: Vec<Arch> = oci.iter().filter_map(|a| Arch::from_oci(*a)).collect();
    let mut all = vec![Arch::NATIVE];
    all.extend(listed.iter().copied());
    all.sort();
    all.dedup();
    Ok((all, listed))
}

const ARCHES_SUPPORTED: &str = "SCMP_ARCH_X86_64, SCMP_ARCH_X86, SCMP_ARCH_X32";

fn action(a: LinuxSeccompAction, errno_ret: Option<u32>) -> anyhow::Result<Action> {
    let data = |default: i32| -> anyhow::Result<u16> {
        let v = errno_ret.unwrap_or(default as u32);
        if v > MAX_RET_DATA {
            bail!("errnoRet {v} does not fit the 16-bit seccomp return data");
        }
        Ok(v as u16)
    };
    let no_errno = |act: Action| -> anyhow::Result<Action> {
        match errno_ret {
            Some(e) => bail!("errnoRet {e} is only valid with SCMP_ACT_ERRNO and SCMP_ACT_TRACE"),
            None => Ok(act),
        }
    };
    match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            no_errno(Action::KillThread)
        }
        LinuxSeccompAction::ScmpActKillProcess => no_errno(Action::KillProcess),
        LinuxSeccompAction::ScmpActTrap => no_errno(Action::Trap),
        LinuxSeccompAction::ScmpActErrno => Ok(Action::Errno(data(libc::EPERM)?)),
        LinuxSeccompAction::ScmpActTrace => Ok(Action::Trace(data(libc::EPERM)?)),
        LinuxSeccompAction::ScmpActAllow => no_errno(Action::Allow),
        LinuxSeccompAction::ScmpActLog => no_errno(Action::Log),
        LinuxSeccompAction::ScmpActNotify => no_errno(Action::Notify),
    }
}

/// The rule's conditions as alternatives: one AND-group normally; one group per condition when
/// two conditions name the same argument (runc's fallback). No condition: one empty group.
fn conditions(call: &LinuxSyscall, path: &str) -> anyhow::Result<Vec<Vec<Cond>>> {
    let args = call.args().as_deref().unwrap_or_default();
    let conds = args
        .iter()
        .enumerate()
        .map(|(i, a)| cond(a).with_context(|| format!("{path}.args[{i}]")))
        .collect::<anyhow::Result<Vec<Cond>>>()?;
    let mut seen = [0usize; MAX_ARGS];
    for c in &conds {
        seen[usize::from(c.index)] += 1;
    }
    if seen.iter().any(|&n| n > 1) {
        Ok(conds.into_iter().map(|c| vec![c]).collect())
    } else {
        Ok(vec![conds])
    }
}

fn cond(a: &LinuxSeccompArg) -> anyhow::Result<Cond> {
    let index = a.index();
    if index >= MAX_ARGS {
        bail!("index {index}: a syscall has at most {MAX_ARGS} arguments (index 0-5)");
    }
    let op = match a.op() {
        LinuxSeccompOperator::ScmpCmpEq => Op::Eq,
        LinuxSeccompOperator::ScmpCmpNe => Op::Ne,
        LinuxSeccompOperator::ScmpCmpLt => Op::Lt,
        LinuxSeccompOperator::ScmpCmpLe => Op::Le,
        LinuxSeccompOperator::ScmpCmpGt => Op::Gt,
        LinuxSeccompOperator::ScmpCmpGe => Op::Ge,
        LinuxSeccompOperator::ScmpCmpMaskedEq => Op::MaskedEq { mask: a.value() },
    };
    let value = match op {
        Op::MaskedEq { mask } => a.value_two().unwrap_or(0) & mask,
        _ => a.value(),
    };
    Ok(Cond {
        index: index as u8,
        op,
        value,
    })
}

/// Add `name`'s rules on every architecture that knows it; `conditional` counts the rules
/// with conditions in all the filters.
fn add_named(
    filters: &mut [ArchFilter],
    name: &str,
    act: Action,
    groups: &[Vec<Cond>],
    conditional: &mut usize,
) -> anyhow::Result<()> {
    if name.is_empty() {
        bail!("empty syscall name");
    }
    if !ALL_ARCHES.iter().any(|a| a.syscall(name).is_some()) && x86_multiplexed(name).is_none() {
        tracing::debug!("unknown seccomp syscall {name:?} ignored");
        return Ok(());
    }
    for f in filters.iter_mut() {
        let groups: Vec<Vec<Cond>> = groups
            .iter()
            .map(|g| {
                g.iter()
                    .filter(|c| !f.arch.is_tautology(c))
                    .copied()
                    .collect()
            })
            .collect();
        if f.arch == Arch::X86 {
            if let Some((mux, call)) = x86_multiplexed(name) {
                let rules = f.syscalls.entry(mux).or_default();
                let before = with_conditions(rules);
                add_multiplexed(rules, call, act, &groups);
                *conditional = *conditional - before + with_conditions(rules);
            }
        }
        let Some(nr) = f.arch.syscall(name) else {
            continue; // not on this ABI (e.g. a 32-bit-only syscall on x86_64)
        };
        let rules = f.syscalls.entry(nr).or_default();
        let before = with_conditions(rules);
        for conds in groups {
            add_rule(rules, Rule { conds, action: act });
        }
        *conditional = *conditional - before + with_conditions(rules);
    }
    Ok(())
}

fn with_conditions(rules: &[Rule]) -> usize {
    rules.iter().filter(|r| !r.conds.is_empty()).count()
}

/// On x86 the socket and SysV IPC calls also go through socketcall(2) / ipc(2), whose first
/// argument names the call; libseccomp filters that path too (its arguments sit in memory,
/// so a condition on argument 0 is replaced by the call number). Precedence as in `add_rule`,
/// within the call: a rule without other conditions is the call's unconditional rule.
fn add_multiplexed(rules: &mut Vec<Rule>, call: u32, act: Action, groups: &[Vec<Cond>]) {
    if unconditional(rules) {
        return; // socketcall/ipc itself is unconditional
    }
    let call_cond = Cond {
        index: 0,
        op: Op::Eq,
        value: u64::from(call),
    };
    let in_call = |r: &Rule| r.conds.first() == Some(&call_cond);
    for conds in groups {
        if rules.iter().any(|r| in_call(r) && r.conds.len() == 1) {
            return;
        }
        let rest = conds.iter().filter(|c| c.index != 0).copied();
        let conds: Vec<Cond> = std::iter::once(call_cond).chain(rest).collect();
        if conds.len() == 1 {
            rules.retain(|r| !in_call(r));
        }
        rules.push(Rule { conds, action: act });
    }
}

#[cfg(test)]
pub(crate) fn is_x86_multiplexed(name: &str) -> bool {
    x86_multiplexed(name).is_some()
}

const X86_SOCKETCALL: u32 = 102;
const X86_IPC: u32 = 117;

/// `(socketcall or ipc, call number)` for the calls x86 multiplexes (linux/net.h SYS_*,
/// linux/ipc.h call numbers).
fn x86_multiplexed(name: &str) -> Option<(u32, u32)> {
    const SOCKET: [&str; 20] = [
        "socket",
        "bind",
        "connect",
        "listen",
        "accept",
        "getsockname",
        "getpeername",
        "socketpair",
        "send",
        "recv",
        "sendto",
        "recvfrom",
        "shutdown",
        "setsockopt",
        "getsockopt",
        "sendmsg",
        "recvmsg",
        "accept4",
        "recvmmsg",
        "sendmmsg",
    ];
    const IPC: [(&str, u32); 12] = [
        ("semop", 1),
        ("semget", 2),
        ("semctl", 3),
        ("semtimedop", 4),
        ("msgsnd", 11),
        ("msgrcv", 12),
        ("msgget", 13),
        ("msgctl", 14),
        ("shmat", 21),
        ("shmdt", 22),
        ("shmget", 23),
        ("shmctl", 24),
    ];
    if let Some(i) = SOCKET.iter().position(|n| *n == name) {
        return Some((X86_SOCKETCALL, i as u32 + 1));
    }
    IPC.iter()
        .find(|(n, _)| *n == name)
        .map(|(_, call)| (X86_IPC, *call))
}

const ALL_ARCHES: [Arch; 3] = [Arch::X86_64, Arch::X86, Arch::X32];

/// libseccomp's precedence for one syscall: an unconditional rule already there makes any
/// later rule redundant; a new unconditional rule replaces the conditional ones; conditional
/// rules accumulate in profile order.
fn add_rule(rules: &mut Vec<Rule>, new: Rule) {
    if unconditional(rules) {
        return;
    }
    if new.conds.is_empty() {
        rules.clear();
    }
    rules.push(new);
}

/// An unconditional rule is always alone (`add_rule` clears the others, and ignores what
/// comes after it), so this is a constant-time check.
fn unconditional(rules: &[Rule]) -> bool {
    matches!(rules, [r] if r.conds.is_empty())
}

/// runc's stub bound: the highest number, on `arch`, of any syscall the profile names.
fn highest_named(arch: Arch, rules: &[LinuxSyscall]) -> Option<u32> {
    rules
        .iter()
        .flat_map(|r| r.names())
        .filter_map(|n| arch.syscall(n))
        .max()
}

fn flags(s: &LinuxSeccomp, uses_notify: bool) -> anyhow::Result<u32> {
    let mut bits = 0u32;
    for f in s.flags().as_deref().unwrap_or_default() {
        bits |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                if !uses_notify {
                    bail!(
                        "linux.seccomp.flags: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs a \
                         rule with SCMP_ACT_NOTIFY"
                    );
                }
                libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
            }
        } as u32;
    }
    Ok(bits)
}
