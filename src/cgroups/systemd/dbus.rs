//! The D-Bus side of the systemd driver: org.freedesktop.systemd1.Manager calls over the system
//! bus (root) or the user's session bus (rootless), through zbus's blocking API. Every call
//! is bounded: method calls by the connection's method timeout, job waits by [`JOB_TIMEOUT`].
//!
//! zbus runs its socket reader on a thread of its own; the driver only connects after the
//! container init has been cloned (the runtime is single-threaded until then).
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use futures_lite::StreamExt;
use zbus::blocking::connection::Builder;
use zbus::blocking::Connection;
use zbus::zvariant::{OwnedObjectPath, Value};
use zbus::{MatchRule, MessageStream};

use super::properties::{Prop, Props};

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// How long a method call or a job may take (runc waits 30 s for a unit to start).
pub const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to systemd's manager.
pub struct Systemd {
    conn: Connection,
    /// Subscribe() was called (systemd refuses a second one).
    subscribed: std::cell::Cell<bool>,
    /// "system" or "user", for messages.
    instance: &'static str,
}

impl Systemd {
    /// Connects to the system instance, or to the calling user's instance (`user`) through the
    /// session bus ($DBUS_SESSION_BUS_ADDRESS, else $XDG_RUNTIME_DIR/bus).
    pub fn connect(user: bool) -> Result<Systemd> {
        let (builder, instance) = if user {
            (Builder::session(), "user")
        } else {
            (Builder::system(), "system")
        };
        // In a user namespace (a rootless engine runs us as its root), the bus checks the
        // EXTERNAL auth against our uid on the host.
        let host_uid = host_uid().filter(|&u| u != nix::unistd::geteuid().as_raw());
        let conn = builder
            .map(|b| match host_uid {
                Some(uid) => b.user_id(uid),
                None => b,
            })
            .and_then(|b| b.method_timeout(JOB_TIMEOUT).build())
            .map_err(|e| {
                let bus = if user {
                    "the session bus ($DBUS_SESSION_BUS_ADDRESS or $XDG_RUNTIME_DIR/bus)"
                } else {
                    "the system bus"
                };
                anyhow!("connecting to systemd's {instance} instance over {bus}: {e}")
            })?;
        Ok(Systemd {
            conn,
            subscribed: Default::default(),
            instance,
        })
    }

    fn call<B>(&self, method: &str, body: &B) -> zbus::Result<zbus::Message>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        self.conn
            .call_method(Some(DEST), PATH, Some(MANAGER), method, body)
    }

    /// StartTransientUnit(name, "replace", props, []), then waits for the job. A leftover
    /// failed unit of the same name is reset once, as runc does.
    pub fn start_transient_unit(&self, name: &str, props: &Props) -> Result<()> {
        let values = to_values(props);
        let aux: Vec<(&str, Vec<(&str, Value)>)> = Vec::new();
        let start = || {
            self.call("StartTransientUnit", &(name, "replace", &values, &aux))
                .and_then(|m| m.body().deserialize::<OwnedObjectPath>())
        };
        let what = format!("starting the transient unit {name}");
        match self.run_job(&what, start) {
            Err(e) if error_name(&e) == Some("org.freedesktop.systemd1.UnitExists") => {
                let _ = self.call("ResetFailedUnit", &(name,));
                self.run_job(&what, start)
            }
            r => r,
        }
        .map_err(|e| self.context(e, &what))
    }

    /// SetUnitProperties(name, runtime = true, props).
    pub fn set_unit_properties(&self, name: &str, props: &Props) -> Result<()> {
        let values = to_values(props);
        self.call("SetUnitProperties", &(name, true, &values))
            .map(drop)
            .map_err(|e| self.context(e.into(), &format!("setting properties of {name}")))
    }

    /// StopUnit(name, "replace"), then waits for the job. A unit that is already gone is
    /// fine.
    pub fn stop_unit(&self, name: &str) -> Result<()> {
        let what = format!("stopping {name}");
        let stop = || {
            self.call("StopUnit", &(name, "replace"))
                .and_then(|m| m.body().deserialize::<OwnedObjectPath>())
        };
        match self.run_job(&what, stop) {
            Err(e) if error_name(&e) == Some("org.freedesktop.systemd1.NoSuchUnit") => Ok(()),
            r => r.map_err(|e| self.context(e, &what)),
        }
    }

    /// The unit's cgroup, relative to the hierarchy root (its ControlGroup property).
    pub fn control_group(&self, name: &str) -> Result<String> {
        let what = format!("reading the ControlGroup of {name}");
        let unit: OwnedObjectPath = self
            .call("GetUnit", &(name,))
            .and_then(|m| m.body().deserialize())
            .map_err(|e| self.context(e.into(), &what))?;
        let iface = if name.ends_with(".slice") {
            "org.freedesktop.systemd1.Slice"
        } else {
            "org.freedesktop.systemd1.Scope"
        };
        let v: zbus::zvariant::OwnedValue = self
            .conn
            .call_method(
                Some(DEST),
                unit.as_str(),
                Some("org.freedesktop.DBus.Properties"),
                "Get",
                &(iface, "ControlGroup"),
            )
            .and_then(|m| m.body().deserialize())
            .map_err(|e| self.context(e.into(), &what))?;
        let cg = String::try_from(v).map_err(|e| anyhow!("{what}: {e}"))?;
        if cg.is_empty() {
            bail!("{what}: systemd reports no cgroup for the unit");
        }
        Ok(cg)
    }

    /// Subscribes to JobRemoved, makes the call that queues a job, and waits (bounded) for that
    /// job's result, which must be "done".
    fn run_job(&self, what: &str, queue: impl Fn() -> zbus::Result<OwnedObjectPath>) -> Result<()> {
        // The sender is left out of the rule: signals carry systemd's unique name, which
        // zbus does not match against the well-known one.
        let rule = MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .interface(MANAGER)?
            .member("JobRemoved")?
            .path(PATH)?
            .build();
        let mut stream = zbus::block_on(MessageStream::for_match_rule(
            rule,
            self.conn.inner(),
            Some(64),
        ))?;
        // systemd sends job signals only to subscribed clients.
        if !self.subscribed.replace(true) {
            self.call("Subscribe", &())?;
        }
        let job = queue()?;
        let wait = async {
            while let Some(msg) = stream.next().await {
                let msg = msg?;
                let (_, path, _, result): (u32, OwnedObjectPath, String, String) =
                    msg.body().deserialize()?;
                if path == job {
                    return Ok::<_, anyhow::Error>(Some(result));
                }
            }
            Ok(None)
        };
        let timeout = async {
            async_io::Timer::after(JOB_TIMEOUT).await;
            Ok(None)
        };
        match zbus::block_on(futures_lite::future::or(wait, timeout))? {
            Some(r) if r == "done" => Ok(()),
            Some(r) => bail!("{what}: the job {} ended with result {r:?}", job.as_str()),
            None => bail!(
                "{what}: the job {} did not finish within {} s",
                job.as_str(),
                JOB_TIMEOUT.as_secs()
            ),
        }
    }

    fn context(&self, e: anyhow::Error, what: &str) -> anyhow::Error {
        e.context(format!("systemd ({} instance): {what}", self.instance))
    }
}

/// Our effective uid as the host sees it, from /proc/self/uid_map.
fn host_uid() -> Option<u32> {
    let map = std::fs::read_to_string("/proc/self/uid_map").ok()?;
    map_uid(&map, nix::unistd::geteuid().as_raw())
}

/// The outside id of `inside` in uid_map text.
fn map_uid(map: &str, inside: u32) -> Option<u32> {
    map.lines().find_map(|l| {
        let f: Vec<u64> = l
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        let [start, outside, count] = f[..] else {
            return None;
        };
        let id = u64::from(inside);
        (start..start + count)
            .contains(&id)
            .then(|| u32::try_from(outside + id - start).ok())
            .flatten()
    })
}

/// The D-Bus error name in a zbus method error, if that is what `e` is.
fn error_name(e: &anyhow::Error) -> Option<&str> {
    match e.downcast_ref::<zbus::Error>()? {
        zbus::Error::MethodError(name, _, _) => Some(name.as_str()),
        zbus::Error::FDO(fdo) => match fdo.as_ref() {
            zbus::fdo::Error::ZBus(zbus::Error::MethodError(name, _, _)) => Some(name.as_str()),
            _ => None,
        },
        _ => None,
    }
}

fn to_values(props: &Props) -> Vec<(&str, Value<'_>)> {
    props
        .iter()
        .map(|(n, v)| (n.as_str(), to_value(v)))
        .collect()
}

fn to_value(p: &Prop) -> Value<'_> {
    match p {
        Prop::Bool(v) => Value::from(*v),
        Prop::Byte(v) => Value::from(*v),
        Prop::I16(v) => Value::from(*v),
        Prop::U16(v) => Value::from(*v),
        Prop::I32(v) => Value::from(*v),
        Prop::U32(v) => Value::from(*v),
        Prop::I64(v) => Value::from(*v),
        Prop::U64(v) => Value::from(*v),
        Prop::F64(v) => Value::from(*v),
        Prop::Str(v) => Value::from(v.as_str()),
        Prop::Bytes(v) => Value::from(v.clone()),
        Prop::U32s(v) => Value::from(v.clone()),
        Prop::U64s(v) => Value::from(v.clone()),
        Prop::I32s(v) => Value::from(v.clone()),
        Prop::I64s(v) => Value::from(v.clone()),
        Prop::Strs(v) => Value::from(v.clone()),
        Prop::DeviceAllow(v) => Value::from(v.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_maps() {
        assert_eq!(map_uid("0 0 4294967295\n", 1000), Some(1000));
        assert_eq!(map_uid("0 1000 1\n1 100000 65536\n", 0), Some(1000));
        assert_eq!(map_uid("0 1000 1\n1 100000 65536\n", 5), Some(100004));
        assert_eq!(map_uid("0 1000 1\n", 7), None);
    }
}
