//! v1 `devices` controller: writes the evaluated rule set (see `cgroups::devices`) as
//! `devices.allow`/`devices.deny` lines. When the current and wanted defaults agree and the
//! current default is deny (so `devices.list` shows every exception), only the differences are
//! written, so a running container never passes through "deny everything"; otherwise the
//! default is reset first (`a` to devices.allow or devices.deny) and the exceptions follow.
use std::path::Path;

use anyhow::Result;

use crate::cgroups::devices::{Access, DeviceState};
use crate::cgroups::fs;

/// One write to `devices.allow` (true) or `devices.deny` (false).
pub type Write = (bool, String);

/// The writes that take the kernel from `cur` to `want`.
pub fn transition(cur: &DeviceState, want: &DeviceState) -> Vec<Write> {
    let mut out = Vec::new();
    // Exceptions allow when the default denies, and deny when the default allows.
    let ex_allow = !want.default_allow;
    if cur.default_allow || want.default_allow {
        out.push((want.default_allow, "a".to_string()));
        for e in &want.exceptions {
            out.push((ex_allow, e.v1_line()));
        }
        return out;
    }
    for c in &cur.exceptions {
        let kept = want
            .exceptions
            .iter()
            .find(|w| (w.typ, w.major, w.minor) == (c.typ, c.major, c.minor))
            .map_or(0, |w| w.access.0);
        let gone = Access(c.access.0 & !kept);
        if !gone.is_empty() {
            let mut e = *c;
            e.access = gone;
            out.push((!ex_allow, e.v1_line()));
        }
    }
    for w in &want.exceptions {
        let had = cur
            .exceptions
            .iter()
            .find(|c| (c.typ, c.major, c.minor) == (w.typ, w.major, w.minor))
            .map_or(0, |c| c.access.0);
        let added = Access(w.access.0 & !had);
        if !added.is_empty() {
            let mut e = *w;
            e.access = added;
            out.push((ex_allow, e.v1_line()));
        }
    }
    out
}

pub fn set(dir: &Path, want: &DeviceState) -> Result<()> {
    let cur = DeviceState::parse_v1_list(&fs::read(dir, "devices.list")?)?;
    // devices.deny, devices.allow: each opened once, at its first line.
    let mut files: [Option<fs::Writer>; 2] = [None, None];
    for (allow, line) in transition(&cur, want) {
        let file = match &mut files[usize::from(allow)] {
            Some(f) => f,
            slot => slot.insert(fs::Writer::open(
                dir,
                if allow {
                    "devices.allow"
                } else {
                    "devices.deny"
                },
            )?),
        };
        file.write(&line)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::devices::{default_rules, DeviceState, Rule};

    #[test]
    fn fresh_cgroup_gets_reset_then_allowlist() {
        let cur = DeviceState::parse_v1_list("a *:* rwm\n").unwrap();
        let want = DeviceState::from_rules(&default_rules());
        let w = transition(&cur, &want);
        assert_eq!(w[0], (false, "a".to_string()));
        assert!(w.contains(&(true, "c 1:3 rwm".to_string())));
        assert!(w.contains(&(true, "c 136:* rwm".to_string())));
        assert_eq!(w.len(), 1 + want.exceptions.len());
    }

    #[test]
    fn update_writes_only_the_difference() {
        let cur = DeviceState::parse_v1_list("c 1:3 rwm\nc 1:5 rwm\n").unwrap();
        let mut rules = vec![];
        for l in ["c 1:3 r", "c 1:7 rw"] {
            let st = DeviceState::parse_v1_list(l).unwrap();
            rules.push(rule_of(&st));
        }
        let want = DeviceState::from_rules(&rules);
        let w = transition(&cur, &want);
        assert_eq!(
            w,
            vec![
                (false, "c 1:3 wm".to_string()),
                (false, "c 1:5 rwm".to_string()),
                (true, "c 1:7 rw".to_string()),
            ]
        );
    }

    fn rule_of(st: &DeviceState) -> Rule {
        let e = st.exceptions[0];
        Rule {
            allow: true,
            typ: e.typ,
            major: e.major,
            minor: e.minor,
            access: e.access,
        }
    }

    #[test]
    fn allow_default_resets_with_allow() {
        let cur = DeviceState::parse_v1_list("c 1:3 rwm\n").unwrap();
        let want = DeviceState::parse_v1_list("a *:* rwm").unwrap();
        assert_eq!(transition(&cur, &want), vec![(true, "a".to_string())]);
    }
}
