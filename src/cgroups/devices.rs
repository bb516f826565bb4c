//! Device access rules, shared by the v1 `devices` controller and the v2 eBPF filter.
//!
//! Rules are evaluated the way runc evaluates them: start from "deny everything", apply the
//! spec's `linux.resources.devices` in order, then the runtime's default allowlist (so a spec
//! that starts with `deny a` — podman sends only that — still gets /dev/null, /dev/pts, ...).
//! Applying a rule follows the kernel's v1 semantics: a rule for every device (`a *:* rwm`)
//! resets the default and drops all exceptions; a rule that agrees with the default removes
//! the matching exception's access bits; any other rule adds (or widens) an exception. The
//! resulting [`DeviceState`] is written to `devices.allow`/`devices.deny` on v1 and compiled to
//! a BPF program on v2, so both versions enforce the same thing.
use std::fmt;

use anyhow::{bail, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

/// Access bits, with the values of the kernel's `BPF_DEVCG_ACC_*` constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Access(pub u8);

impl Access {
    pub const MKNOD: u8 = 1;
    pub const READ: u8 = 2;
    pub const WRITE: u8 = 4;
    pub const ALL: Access = Access(7);

    /// Parses `rwm` letters as the kernel lists them and the built-in rules give them (an
    /// empty string means all).
    pub fn parse(s: &str) -> Result<Access> {
        if s.is_empty() {
            return Ok(Access::ALL);
        }
        let mut bits = 0;
        for c in s.chars() {
            match Self::bit(c) {
                Some(b) => bits |= b,
                None => bail!("invalid device access {s:?}: only r, w and m are allowed"),
            }
        }
        Ok(Access(bits))
    }

    fn bit(c: char) -> Option<u8> {
        match c {
            'r' => Some(Self::READ),
            'w' => Some(Self::WRITE),
            'm' => Some(Self::MKNOD),
            _ => None,
        }
    }

    /// `linux.resources.devices[idx].access` as runc reads it: the letters r, w and m in any
    /// order, repeated or not; any other letter is ignored (runc's permission sets drop it);
    /// an empty or absent access is refused, with runc's words.
    pub fn from_spec(s: Option<&str>, idx: usize) -> Result<Access> {
        let s = s.unwrap_or("");
        if s.is_empty() {
            bail!("device access at {idx} field cannot be empty");
        }
        let mut bits = 0;
        for c in s.chars() {
            match Self::bit(c) {
                Some(b) => bits |= b,
                None => tracing::debug!(
                    "linux.resources.devices[{idx}].access: ignoring {c:?} in {s:?}"
                ),
            }
        }
        Ok(Access(bits))
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (bit, c) in [(Self::READ, 'r'), (Self::WRITE, 'w'), (Self::MKNOD, 'm')] {
            if self.0 & bit != 0 {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// Device type of a rule: `a` (both), `b` or `c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DevType {
    All,
    Block,
    Char,
}

impl DevType {
    pub fn letter(self) -> char {
        match self {
            DevType::All => 'a',
            DevType::Block => 'b',
            DevType::Char => 'c',
        }
    }
}

/// One rule in evaluation order. `None` major/minor is the `*` wildcard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub typ: DevType,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: Access,
}

fn num(v: Option<i64>, what: &str, idx: usize) -> Result<Option<u32>> {
    match v {
        None | Some(-1) => Ok(None),
        Some(n) if (0..=u32::MAX as i64).contains(&n) => Ok(Some(n as u32)),
        Some(n) => bail!("linux.resources.devices[{idx}].{what}: invalid value {n}"),
    }
}

impl Rule {
    /// Converts `linux.resources.devices[idx]`.
    pub fn from_spec(d: &LinuxDeviceCgroup, idx: usize) -> Result<Rule> {
        let typ = match d.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => DevType::All,
            LinuxDeviceType::B => DevType::Block,
            LinuxDeviceType::C | LinuxDeviceType::U => DevType::Char,
            LinuxDeviceType::P => {
                bail!("linux.resources.devices[{idx}].type: \"p\" (fifo) cannot be used in a device cgroup rule")
            }
        };
        let access = Access::from_spec(d.access().as_deref(), idx)
            .map_err(|e| e.context(format!("linux.resources.devices[{idx}].access")))?;
        Ok(Rule {
            allow: d.allow(),
            typ,
            major: num(d.major(), "major", idx)?,
            minor: num(d.minor(), "minor", idx)?,
            access,
        })
    }

    /// A rule for every device resets, whatever its access says: runc's emulator treats a
    /// wildcard rule as "allow all" or "deny all" (so `deny a rw` is `deny a rwm`).
    fn is_reset(&self) -> bool {
        self.typ == DevType::All && self.major.is_none() && self.minor.is_none()
    }

    /// The kernel's v1 syntax: `c 1:3 rwm`.
    pub fn v1_line(typ: DevType, major: Option<u32>, minor: Option<u32>, access: Access) -> String {
        let n = |v: Option<u32>| v.map_or("*".to_string(), |v| v.to_string());
        format!("{} {}:{} {}", typ.letter(), n(major), n(minor), access)
    }
}

/// The devices every container gets after its own rules, as runc's default allowlist:
/// mknod of any device, and rwm on null, zero, full, random, urandom, tty, console, ptmx and
/// the pts devices.
pub fn default_rules() -> Vec<Rule> {
    let rule = |typ, major, minor: Option<u32>, access: &str| Rule {
        allow: true,
        typ,
        major,
        minor,
        access: Access::parse(access).expect("static access string"),
    };
    vec![
        rule(DevType::Char, None, None, "m"),
        rule(DevType::Block, None, None, "m"),
        rule(DevType::Char, Some(1), Some(3), "rwm"),
        rule(DevType::Char, Some(1), Some(8), "rwm"),
        rule(DevType::Char, Some(1), Some(7), "rwm"),
        rule(DevType::Char, Some(5), Some(0), "rwm"),
        rule(DevType::Char, Some(5), Some(1), "rwm"),
        rule(DevType::Char, Some(1), Some(5), "rwm"),
        rule(DevType::Char, Some(1), Some(9), "rwm"),
        rule(DevType::Char, Some(136), None, "rwm"),
        rule(DevType::Char, Some(5), Some(2), "rwm"),
    ]
}

/// The rules to enforce: the spec's, in config order, then the defaults.
pub fn effective_rules(spec: Option<&[LinuxDeviceCgroup]>) -> Result<Vec<Rule>> {
    let mut rules = Vec::new();
    for (i, d) in spec.unwrap_or_default().iter().enumerate() {
        rules.push(Rule::from_spec(d, i)?);
    }
    rules.extend(default_rules());
    Ok(rules)
}

/// An exception to the default: a device type (block or char), major, minor and access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Exception {
    pub typ: DevType,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: Access,
}

impl Exception {
    fn key(&self) -> (DevType, Option<u32>, Option<u32>) {
        (self.typ, self.major, self.minor)
    }

    pub fn v1_line(&self) -> String {
        Rule::v1_line(self.typ, self.major, self.minor, self.access)
    }
}

/// Default behaviour plus the exceptions to it, as the v1 kernel controller keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceState {
    pub default_allow: bool,
    /// In the order they were first added (the BPF program tests them in this order; they all
    /// give the same answer, so order does not change the result).
    pub exceptions: Vec<Exception>,
}

impl DeviceState {
    /// Everything denied, nothing excepted: where evaluation starts.
    pub fn deny_all() -> DeviceState {
        DeviceState {
            default_allow: false,
            exceptions: Vec::new(),
        }
    }

    /// Evaluates `rules` from "deny everything".
    pub fn from_rules(rules: &[Rule]) -> DeviceState {
        let mut st = DeviceState::deny_all();
        for r in rules {
            st.apply(r);
        }
        st
    }

    /// Applies one rule with the kernel's v1 semantics (see the module doc).
    pub fn apply(&mut self, r: &Rule) {
        if r.is_reset() {
            self.default_allow = r.allow;
            self.exceptions.clear();
            return;
        }
        let types: &[DevType] = match r.typ {
            DevType::All => &[DevType::Block, DevType::Char],
            DevType::Block => &[DevType::Block],
            DevType::Char => &[DevType::Char],
        };
        for &typ in types {
            let ex = Exception {
                typ,
                major: r.major,
                minor: r.minor,
                access: r.access,
            };
            if r.allow == self.default_allow {
                self.remove(&ex);
            } else {
                self.add(ex);
            }
        }
    }

    fn add(&mut self, ex: Exception) {
        match self.exceptions.iter_mut().find(|e| e.key() == ex.key()) {
            Some(e) => e.access.0 |= ex.access.0,
            None => self.exceptions.push(ex),
        }
    }

    fn remove(&mut self, ex: &Exception) {
        for e in self.exceptions.iter_mut().filter(|e| e.key() == ex.key()) {
            e.access.0 &= !ex.access.0;
        }
        self.exceptions.retain(|e| !e.access.is_empty());
    }

    /// Whether a `typ` (block or char) device `major:minor` may be opened with `access`.
    pub fn allows(&self, typ: DevType, major: u32, minor: u32, access: Access) -> bool {
        let matching = self.exceptions.iter().filter(|e| {
            e.typ == typ && e.major.is_none_or(|m| m == major) && e.minor.is_none_or(|m| m == minor)
        });
        if self.default_allow {
            // Exceptions deny: any overlap with a denied bit refuses.
            !matching.into_iter().any(|e| e.access.0 & access.0 != 0)
        } else {
            // Exceptions allow: some exception must cover every requested bit.
            matching.into_iter().any(|e| access.0 & !e.access.0 == 0)
        }
    }

    /// Parses a v1 `devices.list`. The kernel prints only `a *:* rwm` when the default is
    /// allow (it does not list deny exceptions); otherwise it lists the allow exceptions.
    pub fn parse_v1_list(text: &str) -> Result<DeviceState> {
        let mut st = DeviceState::deny_all();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let bad = || anyhow::anyhow!("unexpected devices.list line {line:?}");
            let mut it = line.split_whitespace();
            let (Some(t), Some(mm), Some(acc)) = (it.next(), it.next(), it.next()) else {
                return Err(bad());
            };
            let (ma, mi) = mm.split_once(':').ok_or_else(bad)?;
            let n = |s: &str| -> Result<Option<u32>> {
                if s == "*" {
                    Ok(None)
                } else {
                    Ok(Some(s.parse().map_err(|_| bad())?))
                }
            };
            let typ = match t {
                "a" => DevType::All,
                "b" => DevType::Block,
                "c" => DevType::Char,
                _ => return Err(bad()),
            };
            st.apply(&Rule {
                allow: true,
                typ,
                major: n(ma)?,
                minor: n(mi)?,
                access: Access::parse(acc)?,
            });
        }
        Ok(st)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    fn spec(
        allow: bool,
        typ: Option<LinuxDeviceType>,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> LinuxDeviceCgroup {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .access(access);
        if let Some(t) = typ {
            b = b.typ(t);
        }
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        b.build().unwrap()
    }

    #[test]
    fn podman_deny_all_then_defaults() {
        let rules = effective_rules(Some(&[spec(false, None, None, None, "rwm")])).unwrap();
        let st = DeviceState::from_rules(&rules);
        assert!(!st.default_allow);
        assert!(st.allows(DevType::Char, 1, 3, Access::parse("rw").unwrap()));
        assert!(st.allows(DevType::Char, 136, 7, Access::parse("rw").unwrap()));
        assert!(st.allows(DevType::Block, 8, 0, Access::parse("m").unwrap()));
        assert!(!st.allows(DevType::Block, 8, 0, Access::parse("r").unwrap()));
        assert!(!st.allows(DevType::Char, 10, 200, Access::parse("r").unwrap()));
        assert!(!st.allows(DevType::Char, 1, 1, Access::parse("r").unwrap()));
    }

    #[test]
    fn spec_rules_come_before_defaults() {
        // A spec that denies /dev/full cannot override the default allowlist, as in runc.
        let rules = effective_rules(Some(&[spec(
            false,
            Some(LinuxDeviceType::C),
            Some(1),
            Some(7),
            "rwm",
        )]))
        .unwrap();
        assert_eq!(rules[0].major, Some(1));
        assert_eq!(rules.len(), default_rules().len() + 1);
        let st = DeviceState::from_rules(&rules);
        assert!(st.allows(DevType::Char, 1, 7, Access::parse("r").unwrap()));
    }

    #[test]
    fn allow_all_then_deny_one() {
        let rules = [
            Rule::from_spec(&spec(true, None, None, None, "rwm"), 0).unwrap(),
            Rule::from_spec(
                &spec(false, Some(LinuxDeviceType::C), Some(1), Some(7), "rw"),
                1,
            )
            .unwrap(),
        ];
        let st = DeviceState::from_rules(&rules);
        assert!(st.default_allow);
        assert!(!st.allows(DevType::Char, 1, 7, Access::parse("r").unwrap()));
        assert!(st.allows(DevType::Char, 1, 7, Access::parse("m").unwrap()));
        assert!(st.allows(DevType::Char, 1, 3, Access::parse("rw").unwrap()));
    }

    #[test]
    fn later_rules_narrow_exceptions() {
        let rules = [
            Rule::from_spec(
                &spec(true, Some(LinuxDeviceType::C), Some(1), Some(3), "rwm"),
                0,
            )
            .unwrap(),
            Rule::from_spec(
                &spec(false, Some(LinuxDeviceType::C), Some(1), Some(3), "w"),
                1,
            )
            .unwrap(),
        ];
        let st = DeviceState::from_rules(&rules);
        assert_eq!(st.exceptions.len(), 1);
        assert_eq!(st.exceptions[0].v1_line(), "c 1:3 rm");
    }

    #[test]
    fn type_a_rule_covers_both_types() {
        let r = Rule::from_spec(&spec(true, None, Some(8), None, "r"), 0).unwrap();
        let st = DeviceState::from_rules(&[r]);
        assert!(st.allows(DevType::Block, 8, 1, Access::parse("r").unwrap()));
        assert!(st.allows(DevType::Char, 8, 1, Access::parse("r").unwrap()));
        assert!(!st.allows(DevType::Char, 8, 1, Access::parse("w").unwrap()));
    }

    #[test]
    fn rejects_bad_rules() {
        assert!(
            Rule::from_spec(&spec(true, Some(LinuxDeviceType::P), None, None, "r"), 0).is_err()
        );
        let e = Rule::from_spec(&spec(true, None, None, None, ""), 3).unwrap_err();
        assert!(
            format!("{e:#}").contains("device access at 3 field cannot be empty"),
            "{e:#}"
        );
        assert!(Rule::from_spec(&spec(true, None, Some(-5), None, "r"), 0).is_err());
    }

    #[test]
    fn access_strings() {
        assert_eq!(Access::parse("mwr").unwrap().to_string(), "rwm");
        assert_eq!(Access::parse("").unwrap(), Access::ALL);
        // As runc: any order, repeats, and letters other than r, w, m ignored.
        let a = |s| Access::from_spec(Some(s), 0).unwrap().to_string();
        assert_eq!(a("mrw"), "rwm");
        assert_eq!(a("wr"), "rw");
        assert_eq!(a("rrw"), "rw");
        assert_eq!(a("rwa"), "rw");
        assert!(Access::from_spec(None, 0).is_err());
    }

    #[test]
    fn parses_v1_list() {
        let st = DeviceState::parse_v1_list("a *:* rwm\n").unwrap();
        assert!(st.default_allow && st.exceptions.is_empty());
        let st = DeviceState::parse_v1_list("c 1:3 rwm\nb *:* m\n").unwrap();
        assert!(!st.default_allow);
        assert_eq!(st.exceptions.len(), 2);
        assert_eq!(st.exceptions[1].v1_line(), "b *:* m");
        let st = DeviceState::parse_v1_list("").unwrap();
        assert_eq!(st, DeviceState::deny_all());
    }
}
