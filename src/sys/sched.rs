//! Scheduling attributes of the calling process that libc and nix do not wrap:
//! sched_setattr/sched_getattr, ioprio_set/ioprio_get, personality, and the NUMA memory
//! policy (set_mempolicy/get_mempolicy).
use nix::errno::Errno;

/// `struct sched_attr` (SCHED_ATTR_SIZE_VER1, with the utilization clamps).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
    pub util_min: u32,
    pub util_max: u32,
}

pub const SCHED_ATTR_SIZE: u32 = std::mem::size_of::<SchedAttr>() as u32;

/// sched_setattr(pid, attr, 0); pid 0 is the caller.
pub fn sched_setattr(pid: i32, attr: &SchedAttr) -> Result<(), Errno> {
    let mut a = *attr;
    a.size = SCHED_ATTR_SIZE;
    // SAFETY: the kernel reads `size` bytes from a valid, initialised sched_attr.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, pid, &a as *const SchedAttr, 0) };
    Errno::result(r).map(drop)
}

/// sched_getattr(pid): the policy and parameters the kernel holds for `pid`.
pub fn sched_getattr(pid: i32) -> Result<SchedAttr, Errno> {
    let mut a = SchedAttr::default();
    // SAFETY: the kernel writes at most `size` bytes into our sched_attr.
    let r = unsafe {
        libc::syscall(
            libc::SYS_sched_getattr,
            pid,
            &mut a as *mut SchedAttr,
            SCHED_ATTR_SIZE,
            0,
        )
    };
    Errno::result(r).map(|_| a)
}

pub const IOPRIO_WHO_PROCESS: i32 = 1;
pub const IOPRIO_WHO_PGRP: i32 = 2;

/// ioprio_set(which, who, prio).
pub fn ioprio_set(which: i32, who: i32, prio: u16) -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    let r = unsafe { libc::syscall(libc::SYS_ioprio_set, which, who, prio as libc::c_int) };
    Errno::result(r).map(drop)
}

/// ioprio_get(which, who).
pub fn ioprio_get(which: i32, who: i32) -> Result<u16, Errno> {
    // SAFETY: plain integer arguments.
    let r = unsafe { libc::syscall(libc::SYS_ioprio_get, which, who) };
    Errno::result(r).map(|v| v as u16)
}

/// personality(persona); 0xffffffff only queries.
pub fn personality(persona: u64) -> Result<u64, Errno> {
    // SAFETY: plain integer argument.
    let r = unsafe { libc::personality(persona as libc::c_ulong) };
    Errno::result(r).map(|v| v as u32 as u64)
}

/// set_mempolicy(mode | flags, nodemask, maxnode). `nodes` is a bitmask in words of
/// c_ulong; the kernel reads `maxnode - 1` bits of it, hence the +1.
pub fn set_mempolicy(mode_and_flags: i32, nodes: &[libc::c_ulong]) -> Result<(), Errno> {
    let (ptr, maxnode) = if nodes.is_empty() {
        (std::ptr::null(), 0)
    } else {
        (
            nodes.as_ptr(),
            nodes.len() * libc::c_ulong::BITS as usize + 1,
        )
    };
    // SAFETY: the kernel reads (maxnode - 1) bits from `nodes`, which holds that many.
    let r = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode_and_flags, ptr, maxnode) };
    Errno::result(r).map(drop)
}

/// get_mempolicy for the caller: (mode with flags, nodemask words).
pub fn get_mempolicy(words: usize) -> Result<(i32, Vec<libc::c_ulong>), Errno> {
    let mut mode: libc::c_int = 0;
    let mut mask = vec![0 as libc::c_ulong; words.max(1)];
    let maxnode = mask.len() * libc::c_ulong::BITS as usize;
    // SAFETY: the kernel writes one int to `mode` and at most `maxnode` bits into `mask`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_get_mempolicy,
            &mut mode as *mut libc::c_int,
            mask.as_mut_ptr(),
            maxnode,
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    Errno::result(r).map(|_| (mode, mask))
}

/// Move `pid`, a child we just forked, to the CPUs of `ours` (our affinity) other than the
/// one we run on, so that it works while we do; whether it moved. The kernel puts a fork on
/// its parent's CPU (on this project's VMs nineteen times in twenty), where the two take
/// turns. Nothing when `ours` has no other CPU, or when the machine has more runnable tasks
/// than `ours` has CPUs (with eight creates at a time on two CPUs the move made them 5%
/// slower: the kernel's own balancing does better there).
pub fn run_elsewhere(pid: nix::unistd::Pid, ours: &nix::sched::CpuSet) -> Result<bool, Errno> {
    let mut set = *ours;
    let cpus = (0..nix::sched::CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .count();
    set.unset(nix::sched::sched_getcpu()?)?;
    let others = (0..nix::sched::CpuSet::count()).any(|c| set.is_set(c).unwrap_or(false));
    if !others || runnable().is_none_or(|n| n > cpus) {
        return Ok(false);
    }
    nix::sched::sched_setaffinity(pid, &set)?;
    Ok(true)
}

/// How many tasks are runnable now, on every CPU (the fourth field of /proc/loadavg,
/// `running/total`): we and the child we just forked are two of them.
fn runnable() -> Option<usize> {
    let text = crate::sys::fdio::read_text(std::path::Path::new("/proc/loadavg")).ok()?;
    parse_runnable(&text)
}

fn parse_runnable(loadavg: &str) -> Option<usize> {
    loadavg.split(' ').nth(3)?.split('/').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runnable_tasks_from_loadavg() {
        assert_eq!(parse_runnable("0.52 0.58 0.59 2/467 12345\n"), Some(2));
        assert_eq!(parse_runnable("0.52 0.58 0.59"), None);
        assert!(runnable().is_some_and(|n| n >= 1), "we run");
    }

    #[test]
    fn sched_attr_is_the_kernel_size() {
        assert_eq!(SCHED_ATTR_SIZE, 56);
    }

    #[test]
    fn getters_work_on_self() {
        let a = sched_getattr(0).unwrap();
        assert_eq!(a.size, SCHED_ATTR_SIZE);
        ioprio_get(IOPRIO_WHO_PROCESS, 0).unwrap();
        personality(0xffff_ffff).unwrap();
        get_mempolicy(1).unwrap();
    }
}
