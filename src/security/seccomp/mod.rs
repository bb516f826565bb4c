//! seccomp: compile an OCI `linux.seccomp` profile into a classic BPF program ourselves (no
//! libseccomp at run time), install it in the container init, and hand the user-notification
//! fd to the seccomp agent.
//!
//! Semantics follow runc 1.1 with libseccomp 2.5 (what the engines' default profiles are
//! written for):
//! - The native architecture (x86_64) is always filtered; `SCMP_ARCH_X86` and `SCMP_ARCH_X32`
//!   can be added. Any other architecture is an error. A call from an architecture not in the
//!   filter gets libseccomp's "bad arch" action, KILL_THREAD.
//! - A syscall name unknown on one architecture is skipped there; unknown everywhere, it is
//!   skipped with a debug log (runc logs at debug too).
//! - On x86 the socket and SysV IPC calls are also filtered on their socketcall(2) / ipc(2)
//!   path (argument 0 = the call number), as libseccomp does; `accept`, `send`, `recv`,
//!   `semop` and `semtimedop` exist only there.
//! - A rule whose action equals the default action is dropped (runc does this before
//!   libseccomp sees it).
//! - Per syscall: the first unconditional rule wins and drops every conditional rule, whatever
//!   their order (libseccomp: a full match replaces the argument chains, and later rules are
//!   redundant). Conditional rules are tried in profile order; the first whose conditions all
//!   hold gives the action; none holds: the default action. Several conditions on distinct
//!   arguments are ANDed; when two conditions in one rule name the same argument, each
//!   condition becomes its own rule (ORed), as runc does. Where conditional rules with
//!   different actions overlap, libseccomp 2.5.4 does not follow profile order but its own
//!   decision tree (observed: a test on a higher argument index comes first; on one argument,
//!   EQ 8 beats GT 5 or NE 3, GT 7 beats GT 5, whatever their order); we keep profile order,
//!   which is predictable; and where two rules repeat the same conditions with different
//!   actions libseccomp fails (EEXIST, so runc refuses the profile), we take the first.
//!   libseccomp 2.5.4 also merges several conditional rules of one syscall into trees that
//!   are wrong in places (observed: `a2 <= 0` or `a2 > 0x1_0000_0007` matches a2 = 7; on x86
//!   `a1 != 0` stops matching a1 = 7 once another rule tests `a1 != 0xffffffff`); we evaluate
//!   each rule exactly.
//!   Neither engine default profile has such rules: for both, our program gives what
//!   libseccomp 2.5.4 gives for syscall numbers 0-1099 on each ABI with nine argument vectors,
//!   and so do random profiles without such rules (the `*_libseccomp` unit tests).
//! - Argument comparisons are unsigned 64-bit on x86_64; on x86 and x32 (32-bit ABIs for
//!   libseccomp) only the low 32 bits of the argument and of the operands are compared.
//!   `SCMP_CMP_MASKED_EQ` is `(arg & value) == valueTwo & value`; one whose mask has no bit
//!   in the compared width always holds and is dropped (so a rule made only of such tests is
//!   unconditional on that ABI), as libseccomp does.
//! - runc's -ENOSYS stub: unless the default action is ALLOW, LOG or TRACE (or the default
//!   errno is already ENOSYS), a syscall numbered above the highest syscall the profile names
//!   on a listed architecture returns ENOSYS, so that libcs fall back from syscalls newer than
//!   the profile.
mod bpf;
mod compile;
pub mod interp;
mod notify;
mod syscalls;

use std::os::fd::OwnedFd;

pub use notify::{
    hand_to_listener, receive_notification, respond_continue, respond_errno, send_to_listener,
    Notification,
};

/// Actions `compile` accepts (for `berth features`).
pub const ACTIONS: &[&str] = &[
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];

/// Argument comparison operators `compile` accepts.
pub const OPERATORS: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

/// Architectures `compile` accepts (we carry syscall tables for these only).
pub const ARCHES: &[&str] = &[
    "SCMP_ARCH_NATIVE",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X32",
];

/// Filter flags `compile` accepts. `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` needs Linux 5.19
/// and a NOTIFY rule; an older kernel makes `install` fail with EINVAL.
pub const FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

/// A compiled filter, ready for `install`.
#[derive(Debug, Clone)]
pub struct Program {
    insns: Vec<crate::sys::seccomp::SockFilter>,
    /// `SECCOMP_FILTER_FLAG_*` bits, without NEW_LISTENER (added by `install` when needed).
    flags: u32,
    notify: bool,
}

impl Program {
    /// Whether a rule uses SCMP_ACT_NOTIFY: `install` then returns the listener fd, which
    /// the runtime must hand to `linux.seccomp.listenerPath` with `send_to_listener`.
    pub fn uses_notify(&self) -> bool {
        self.notify
    }

    /// Number of BPF instructions (the kernel accepts at most 4096).
    pub fn len(&self) -> usize {
        self.insns.len()
    }

    /// Never true: a program always ends in a return.
    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }
}

/// Compile `linux.seccomp`. Pure; errors name the JSON path of the offending field.
pub fn compile(s: &oci_spec::runtime::LinuxSeccomp) -> anyhow::Result<Program> {
    let filter = compile::build(s)?;
    let insns = bpf::generate(&filter)?;
    Ok(Program {
        insns,
        flags: filter.flags,
        notify: filter.notify,
    })
}

impl Program {
    /// Every filter flag of the profile is one this kernel knows; checked before any side
    /// effect, so an old kernel's refusal names the flag instead of failing in the init.
    pub fn check_kernel(&self) -> anyhow::Result<()> {
        let names = [
            (libc::SECCOMP_FILTER_FLAG_TSYNC, "SECCOMP_FILTER_FLAG_TSYNC"),
            (libc::SECCOMP_FILTER_FLAG_LOG, "SECCOMP_FILTER_FLAG_LOG"),
            (
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
            ),
            (
                libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
                "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
            ),
        ];
        for (bit, name) in names {
            let bit = bit as u32;
            // WAIT_KILLABLE_RECV is only valid together with NEW_LISTENER.
            let probe = if name.ends_with("KILLABLE_RECV") {
                bit | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32
            } else {
                bit
            };
            if self.flags & bit != 0 && !crate::sys::seccomp::filter_flag_known(probe) {
                anyhow::bail!("linux.seccomp.flags: this kernel does not support {name}");
            }
        }
        Ok(())
    }
}

/// Install `p` on the calling thread (every thread with SECCOMP_FILTER_FLAG_TSYNC). Does not
/// set no_new_privs: without it the caller needs CAP_SYS_ADMIN. Returns the notification
/// listener when the profile uses SCMP_ACT_NOTIFY.
pub fn install(p: &Program) -> anyhow::Result<Option<OwnedFd>> {
    let mut flags = p.flags;
    if p.notify {
        flags |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32;
        if flags & libc::SECCOMP_FILTER_FLAG_TSYNC as u32 != 0 {
            // TSYNC and NEW_LISTENER together need TSYNC_ESRCH (Linux 5.7).
            flags |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH as u32;
        }
    }
    crate::sys::seccomp::set_mode_filter(&p.insns, flags).map_err(|e| {
        let hint = match e {
            nix::errno::Errno::EACCES => ": the caller needs no_new_privs or CAP_SYS_ADMIN",
            nix::errno::Errno::EINVAL => ": a flag or action this kernel does not support?",
            _ => "",
        };
        anyhow::Error::new(e).context(format!(
            "loading the seccomp filter ({} instructions, flags {flags:#x}){hint}",
            p.insns.len()
        ))
    })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod kernel_tests {
    #[test]
    fn this_kernel_knows_every_flag() {
        for f in [
            libc::SECCOMP_FILTER_FLAG_TSYNC,
            libc::SECCOMP_FILTER_FLAG_LOG,
            libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
        ] {
            assert!(crate::sys::seccomp::filter_flag_known(f as u32), "{f:#x}");
        }
        assert!(!crate::sys::seccomp::filter_flag_known(1 << 30));
    }
}
