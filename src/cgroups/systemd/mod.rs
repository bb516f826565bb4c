//! The systemd cgroup driver (`--systemd-cgroup`), as runc's: `linux.cgroupsPath` is
//! `slice:prefix:name`; the container runs in the transient scope `prefix-name.scope`, made
//! over D-Bus with StartTransientUnit (waiting for the job) with PIDs, Delegate=yes, the
//! resources systemd manages and the `org.systemd.property.*` annotations. Everything else
//! is done by the cgroupfs manager of the scope's cgroup (limits systemd does not manage,
//! devices, freeze, kill, stats), as runc does.
//!
//! Contract with the create path: `create()` does nothing (no D-Bus before the clone: zbus
//! starts a thread); until the unit exists `entry()` leaves it all to `apply(pid)` after the
//! clone, which starts the unit with the init in it. `update` sets the
//! properties with SetUnitProperties, then writes cgroupfs; `destroy` stops the unit.
//! Rootless, the driver talks to the user's systemd instance over the session bus.
use std::cell::{Cell, RefCell};
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

use super::{
    paths, CgroupConfig, CgroupState, CommonState, Entry, LinuxResources, Manager, Stats, Version,
    Ways,
};

pub mod dbus;
pub mod properties;

use properties::{Prop, Props};

/// What state.json keeps for a container under the systemd driver (and what the create path
/// carries from prepare to the start of the unit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemdState {
    /// The unit, say `berth-c1.scope`.
    pub unit: String,
    /// Whether it lives in the user's systemd instance.
    pub user: bool,
    pub rootless: bool,
    /// The host runs cgroup v2.
    pub v2: bool,
    /// The unit exists (false only between prepare and `apply`).
    #[serde(default = "yes")]
    pub started: bool,
    /// The properties to start the unit with (without PIDs), until it is started.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub start: Props,
    /// The cgroupfs manager of the unit's cgroup (a guess from the slice until started).
    pub cgroupfs: Box<CgroupState>,
}

fn yes() -> bool {
    true
}

/// A `slice:prefix:name` cgroupsPath, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitName {
    /// The parent slice (`system.slice` by default, `user.slice` rootless).
    pub slice: String,
    /// `prefix-name.scope` (`name.scope` without a prefix).
    pub unit: String,
}

/// Parses `linux.cgroupsPath` for the systemd driver. Empty: runc's default,
/// `system.slice:berth:<id>` (`user.slice` rootless).
pub fn unit_name(path: Option<&Path>, id: &str, rootless: bool) -> Result<UnitName> {
    let default_slice = if rootless {
        "user.slice"
    } else {
        "system.slice"
    };
    let spec = match path.map(|p| p.to_string_lossy().into_owned()) {
        Some(s) if !s.is_empty() => s,
        _ => format!("{default_slice}:berth:{id}"),
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        bail!("linux.cgroupsPath {spec:?}: the systemd cgroup driver needs the form slice:prefix:name");
    };
    if name.is_empty() {
        bail!("linux.cgroupsPath {spec:?}: the name part is empty");
    }
    if name.ends_with(".slice") {
        bail!("linux.cgroupsPath {spec:?}: the name is a slice; a container needs a scope (name it without \".slice\")");
    }
    let slice = if slice.is_empty() {
        default_slice
    } else {
        slice
    };
    paths::expand_slice(slice)
        .with_context(|| format!("linux.cgroupsPath {spec:?}: the slice part"))?;
    let unit = if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    if unit.contains('/') || unit.chars().any(char::is_whitespace) {
        bail!("linux.cgroupsPath {spec:?}: the unit name {unit:?} is not valid");
    }
    Ok(UnitName {
        slice: slice.to_string(),
        unit,
    })
}

/// Whether systemd runs as PID 1 (sd_booted's test).
pub fn booted() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// The systemd driver's manager.
pub struct SystemdManager {
    unit: String,
    user: bool,
    version: Version,
    rootless: bool,
    /// The properties to start the unit with (without PIDs); empty once started.
    start_props: Props,
    /// The unit was started by this process with the container's resources: `set` need not
    /// send them again.
    fresh: Cell<bool>,
    started: Cell<bool>,
    /// The cgroupfs manager of the unit's cgroup (a guess from the slice until started).
    fs: RefCell<Box<dyn Manager>>,
    bus: RefCell<Option<dbus::Systemd>>,
}

impl SystemdManager {
    /// For a new container. No side effect (no D-Bus either).
    pub fn new(cfg: &CgroupConfig, version: Version) -> Result<SystemdManager> {
        let name = unit_name(cfg.cgroups_path.as_deref(), &cfg.id, cfg.rootless)?;
        let user = cfg.rootless;
        let mut start_props: Props = vec![
            (
                "Description".into(),
                Prop::Str(format!("berth container {}", cfg.id)),
            ),
            ("Slice".into(), Prop::Str(name.slice.clone())),
            ("Delegate".into(), Prop::Bool(true)),
            ("DefaultDependencies".into(), Prop::Bool(false)),
            ("MemoryAccounting".into(), Prop::Bool(true)),
            ("CPUAccounting".into(), Prop::Bool(true)),
            ("TasksAccounting".into(), Prop::Bool(true)),
        ];
        start_props.push((
            if version == Version::V2 {
                "IOAccounting"
            } else {
                "BlockIOAccounting"
            }
            .into(),
            Prop::Bool(true),
        ));
        if let Some(r) = &cfg.resources {
            start_props.extend(resource_props(r, version)?);
        }
        // The user's properties last: they win over ours.
        start_props.extend(properties::annotation_props(&cfg.annotations)?);
        // Until systemd says where it put the unit: where the slice expands to.
        let guess = paths::expand_slice(&name.slice)?.join(&name.unit);
        let fs = cgroupfs_manager(&guess, cfg.rootless)?;
        Ok(SystemdManager {
            unit: name.unit,
            user,
            version,
            rootless: cfg.rootless,
            start_props,
            fresh: Cell::new(false),
            started: Cell::new(false),
            fs: RefCell::new(fs),
            bus: RefCell::new(None),
        })
    }

    /// From [`Manager::state`]: an existing container (state.json), or one being created.
    pub fn load(st: &SystemdState) -> Result<SystemdManager> {
        if matches!(*st.cgroupfs, CgroupState::Systemd(_)) {
            bail!("state.json: a systemd cgroup inside a systemd cgroup");
        }
        Ok(SystemdManager {
            unit: st.unit.clone(),
            user: st.user,
            version: if st.v2 { Version::V2 } else { Version::V1 },
            rootless: st.rootless,
            start_props: st.start.clone(),
            fresh: Cell::new(false),
            started: Cell::new(st.started),
            fs: RefCell::new(super::load_manager(&st.cgroupfs)?),
            bus: RefCell::new(None),
        })
    }

    /// The D-Bus connection, made on first use.
    fn with_bus<T>(&self, f: impl FnOnce(&dbus::Systemd) -> Result<T>) -> Result<T> {
        let mut bus = self.bus.borrow_mut();
        if bus.is_none() {
            *bus = Some(dbus::Systemd::connect(self.user)?);
        }
        f(bus.as_ref().expect("connected above"))
    }

    /// Starts the unit with `pid` in it, then takes over its cgroup with the cgroupfs manager.
    fn start(&self, pid: i32) -> Result<()> {
        let mut props = self.start_props.clone();
        props.push(("PIDs".into(), Prop::U32s(vec![pid as u32])));
        let cgroup = self.with_bus(|b| {
            b.start_transient_unit(&self.unit, &props)?;
            b.control_group(&self.unit)
        })?;
        self.started.set(true);
        self.fresh.set(true);
        // The hierarchies systemd does not manage (v1) get their directory and the pid too;
        // on v2 this enables the controllers systemd left off, as runc does. Rootless on v1
        // only systemd's own hierarchy is ours: the rest is a warning, as without systemd.
        let (fs, _) = super::create(
            cgroupfs_manager(Path::new(&cgroup), self.rootless)?,
            self.rootless,
        )?;
        fs.apply(pid)?;
        *self.fs.borrow_mut() = fs;
        Ok(())
    }

    /// Sends the resource properties to systemd. systemd resets device access while it
    /// reprograms it, so a running container is frozen meanwhile (as runc does).
    fn set_properties(&self, r: &LinuxResources) -> Result<()> {
        let props = resource_props(r, self.version)?;
        let fs = self.fs.borrow();
        let freeze = !fs.is_frozen().unwrap_or(true) && !fs.pids().unwrap_or_default().is_empty();
        if freeze {
            fs.freeze()?;
        }
        let res = self.with_bus(|b| b.set_unit_properties(&self.unit, &props));
        if freeze {
            fs.thaw()?;
        }
        res
    }
}

/// The resource properties for the host's version, with /proc/devices for device names.
fn resource_props(r: &LinuxResources, version: Version) -> Result<Props> {
    let devices = std::fs::read_to_string("/proc/devices").unwrap_or_default();
    properties::resource_props(&super::without_unset(r)?, version == Version::V2, &devices)
}

/// The cgroupfs manager (v1 or v2, from the host) of `cgroup`, a path from the hierarchy
/// root as systemd reports it.
fn cgroupfs_manager(cgroup: &Path, rootless: bool) -> Result<Box<dyn Manager>> {
    let common = CommonState {
        rootless,
        ..Default::default()
    };
    let rel = cgroup.strip_prefix("/").unwrap_or(cgroup);
    super::fs_manager(&paths::CgroupPath::FromRoot(rel.to_path_buf()), common)
}

impl Manager for SystemdManager {
    fn create(&self) -> Result<super::Made> {
        Ok(super::Made::Existing)
    }

    fn apply(&self, pid: i32) -> Result<()> {
        if self.started.get() {
            return self.fs.borrow().apply(pid);
        }
        self.start(pid)
    }

    fn set(&self, r: &LinuxResources) -> Result<()> {
        if !self.fresh.replace(false) {
            self.set_properties(r)?;
        }
        self.fs.borrow().set(r)
    }

    fn pids(&self) -> Result<Vec<i32>> {
        self.fs.borrow().pids()
    }

    fn freeze(&self) -> Result<()> {
        self.fs.borrow().freeze()
    }

    fn thaw(&self) -> Result<()> {
        self.fs.borrow().thaw()
    }

    fn is_frozen(&self) -> Result<bool> {
        self.fs.borrow().is_frozen()
    }

    fn kill_all(&self, sig: Signal) -> Result<()> {
        self.fs.borrow().kill_all(sig)
    }

    fn destroy(&self) -> Result<()> {
        if self.started.get() {
            self.with_bus(|b| b.stop_unit(&self.unit))?;
        }
        self.fs.borrow().destroy()
    }

    fn stats(&self) -> Result<Stats> {
        self.fs.borrow().stats()
    }

    fn oom_kills(&self) -> Result<u64> {
        self.fs.borrow().oom_kills()
    }

    fn entry(&self, ways: Ways) -> Entry {
        if !self.started.get() {
            return Entry::by_apply(self, "the systemd unit is started with it");
        }
        self.fs.borrow().entry(ways)
    }

    fn path(&self) -> String {
        format!("{} ({})", self.unit, self.fs.borrow().path())
    }

    fn state(&self) -> CgroupState {
        let started = self.started.get();
        CgroupState::Systemd(SystemdState {
            unit: self.unit.clone(),
            user: self.user,
            rootless: self.rootless,
            v2: self.version == Version::V2,
            started,
            start: if started {
                Props::new()
            } else {
                self.start_props.clone()
            },
            cgroupfs: Box::new(self.fs.borrow().state()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_names() {
        let u = unit_name(Some(Path::new("machine-x.slice:berth:c1")), "c1", false).unwrap();
        assert_eq!(u.slice, "machine-x.slice");
        assert_eq!(u.unit, "berth-c1.scope");
        let u = unit_name(None, "c2", false).unwrap();
        assert_eq!(
            (u.slice.as_str(), u.unit.as_str()),
            ("system.slice", "berth-c2.scope")
        );
        let u = unit_name(None, "c2", true).unwrap();
        assert_eq!(u.slice, "user.slice");
        let u = unit_name(Some(Path::new("::c3")), "x", false).unwrap();
        assert_eq!(
            (u.slice.as_str(), u.unit.as_str()),
            ("system.slice", "c3.scope")
        );
        for bad in [
            "/a/b",
            "a.slice:p:",
            "x:p:n",
            "a.slice:p:n.slice",
            "a--b.slice:p:n",
        ] {
            assert!(
                unit_name(Some(Path::new(bad)), "c", false).is_err(),
                "{bad}"
            );
        }
    }
}
