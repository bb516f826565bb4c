//! `process.scheduler` as the attributes sched_setattr(2) takes, with runc's validation.
use anyhow::{bail, Result};
use oci_spec::runtime::{LinuxSchedulerFlag as F, LinuxSchedulerPolicy as P, Scheduler};

use crate::sys::sched::SchedAttr;

/// The policies, by spec name, with the kernel's numbers (SCHED_ISO has none in mainline:
/// the kernel refuses it with EINVAL, as under runc).
pub const POLICIES: [(&str, u32); 7] = [
    ("SCHED_OTHER", 0),
    ("SCHED_FIFO", 1),
    ("SCHED_RR", 2),
    ("SCHED_BATCH", 3),
    ("SCHED_ISO", 4),
    ("SCHED_IDLE", 5),
    ("SCHED_DEADLINE", 6),
];

/// The flags, by spec name.
pub const FLAGS: [(&str, u64); 7] = [
    ("SCHED_FLAG_RESET_ON_FORK", 0x01),
    ("SCHED_FLAG_RECLAIM", 0x02),
    ("SCHED_FLAG_DL_OVERRUN", 0x04),
    ("SCHED_FLAG_KEEP_POLICY", 0x08),
    ("SCHED_FLAG_KEEP_PARAMS", 0x10),
    ("SCHED_FLAG_UTIL_CLAMP_MIN", 0x20),
    ("SCHED_FLAG_UTIL_CLAMP_MAX", 0x40),
];

fn flag(f: F) -> u64 {
    FLAGS[match f {
        F::SchedResetOnFork => 0,
        F::SchedFlagReclaim => 1,
        F::SchedFlagDLOverrun => 2,
        F::SchedFlagKeepPolicy => 3,
        F::SchedFlagKeepParams => 4,
        F::SchedFlagUtilClampMin => 5,
        F::SchedFlagUtilClampMax => 6,
    }]
    .1
}

pub fn from_spec(s: &Scheduler) -> Result<SchedAttr> {
    let policy = *s.policy();
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        bail!("invalid scheduler.nice: {nice}");
    }
    let priority = s.priority().unwrap_or(0);
    if priority != 0 && !matches!(policy, P::SchedFifo | P::SchedRr) {
        bail!("scheduler.priority can only be specified for SchedFIFO or SchedRR policy");
    }
    if priority < 0 {
        bail!("invalid scheduler.priority: {priority}");
    }
    let (runtime, deadline, period) = (
        s.runtime().unwrap_or(0),
        s.deadline().unwrap_or(0),
        s.period().unwrap_or(0),
    );
    if policy != P::SchedDeadline && (runtime != 0 || deadline != 0 || period != 0) {
        bail!("scheduler runtime/deadline/period can only be specified for SchedDeadline policy");
    }
    let idx = match policy {
        P::SchedOther => 0,
        P::SchedFifo => 1,
        P::SchedRr => 2,
        P::SchedBatch => 3,
        P::SchedIso => 4,
        P::SchedIdle => 5,
        P::SchedDeadline => 6,
    };
    Ok(SchedAttr {
        policy: POLICIES[idx].1,
        flags: s
            .flags()
            .iter()
            .flatten()
            .map(|f| flag(*f))
            .fold(0, |a, b| a | b),
        nice,
        priority: priority as u32,
        runtime,
        deadline,
        period,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(j: &str) -> Result<SchedAttr> {
        crate::spec::parse_process(
            format!(r#"{{"cwd":"/","user":{{"uid":0,"gid":0}},"scheduler":{j}}}"#).as_bytes(),
        )
        .map(|p| p.scheduler().clone().unwrap())
        .and_then(|s| from_spec(&s))
    }

    #[test]
    fn values() {
        let a = s(r#"{"policy":"SCHED_FIFO","priority":10}"#).unwrap();
        assert_eq!((a.policy, a.priority), (1, 10));
        let a =
            s(r#"{"policy":"SCHED_BATCH","nice":5,"flags":["SCHED_FLAG_RESET_ON_FORK"]}"#).unwrap();
        assert_eq!((a.policy, a.nice, a.flags), (3, 5, 1));
        let a = s(r#"{"policy":"SCHED_DEADLINE","runtime":1000000,"deadline":2000000,"period":3000000,"flags":["SCHED_FLAG_DL_OVERRUN","SCHED_FLAG_RECLAIM"]}"#).unwrap();
        assert_eq!((a.policy, a.runtime, a.flags), (6, 1_000_000, 6));
    }

    #[test]
    fn runc_refusals() {
        let e = |j| format!("{:#}", s(j).unwrap_err());
        assert!(e(r#"{"policy":"SCHED_OTHER","nice":20}"#).contains("invalid scheduler.nice: 20"));
        assert!(e(r#"{"policy":"SCHED_OTHER","priority":1}"#)
            .contains("only be specified for SchedFIFO"));
        assert!(e(r#"{"policy":"SCHED_RR","runtime":1}"#)
            .contains("only be specified for SchedDeadline"));
        assert!(e(r#"{"policy":"SCHED_NOPE"}"#).contains("scheduler.policy"));
        assert!(e(r#"{"policy":"SCHED_OTHER","flags":["SCHED_FLAG_NOPE"]}"#)
            .contains("scheduler.flags"));
    }
}
