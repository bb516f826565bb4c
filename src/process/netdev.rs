//! `linux.netDevices`: host interfaces moved into the container's network namespace, with an
//! optional new name, and back under their old name when the container is deleted.
//!
//! The kernel keeps a device's MTU and MAC across the move but drops its addresses; as runc
//! does, they are read before the move and added again on the other side, and a device that
//! was up is set up again. The move and the rename are one RTM_NEWLINK, so a name taken in
//! the target fails with EEXIST and leaves the device where it was. When several devices
//! move and one fails, those already moved go back.
use std::fs::File;
use std::os::fd::AsRawFd;

use anyhow::{Context, Result};
use nix::sched::{setns, CloneFlags};
use oci_spec::runtime::Linux;

use crate::spec::netdev::{parse, NetDevice};
use crate::sys::netlink::{index_of, Netlink};

/// linux.netDevices, checked (spec::netdev::parse), with every device present in our network
/// namespace. Sorted by host name.
pub fn from_spec(linux: Option<&Linux>) -> Result<Vec<NetDevice>> {
    let devs = parse(linux)?;
    for d in &devs {
        index_of(&d.host).map_err(|e| {
            anyhow::anyhow!(
                "linux.netDevices.{}: the network device {:?} does not exist on the host ({e})",
                d.host,
                d.host
            )
        })?;
    }
    Ok(devs)
}

/// Run `f` inside the network namespace `ns`, then come back.
fn in_netns<T>(ns: &File, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let ours = File::open("/proc/self/ns/net").context("opening our network namespace")?;
    setns(ns, CloneFlags::CLONE_NEWNET).context("entering the network namespace")?;
    let r = f();
    setns(&ours, CloneFlags::CLONE_NEWNET).context("returning to our network namespace")?;
    r
}

/// Move one device from the namespace we are in to `to` (whose fd we hold), renamed.
fn move_one(from: &str, to_ns: &File, to: &str) -> Result<()> {
    let mut nl = Netlink::open().context("rtnetlink socket")?;
    let index = index_of(from).with_context(|| format!("network device {from:?}"))?;
    let up = nl.link_flags(index).context("reading the link")? & libc::IFF_UP as u32 != 0;
    // Link-local (scope link) addresses come back by themselves; the others are re-added.
    let addrs: Vec<_> = nl
        .addrs(index)
        .context("reading the addresses")?
        .into_iter()
        .filter(|a| a.scope != libc::RT_SCOPE_LINK && a.scope != libc::RT_SCOPE_HOST)
        .collect();
    // The kernel renames after the move (the name is only a fallback pattern when the old
    // one is taken there), so a taken name would leave the device moved: check first, and
    // bring it back if the request fails all the same.
    if in_netns(to_ns, || Ok(index_of(to).is_ok()))? {
        return Err(anyhow::Error::new(nix::errno::Errno::EEXIST))
            .with_context(|| format!("{to:?} is taken in the target network namespace"));
    }
    if let Err(e) = nl.move_link(index, to_ns.as_raw_fd(), to) {
        let ours = File::open("/proc/self/ns/net").context("opening our network namespace")?;
        let _ = in_netns(to_ns, || {
            let index = index_of(from)?;
            Netlink::open()?.move_link(index, ours.as_raw_fd(), from)?;
            Ok(())
        });
        return Err(e).with_context(|| format!("moving {from:?} to the other namespace as {to:?}"));
    }
    in_netns(to_ns, || {
        let mut nl = Netlink::open().context("rtnetlink socket")?;
        let index = index_of(to).with_context(|| format!("network device {to:?}"))?;
        for a in &addrs {
            nl.add_addr(index, a).with_context(|| {
                format!("adding address {:?}/{} to {to:?}", a.address, a.prefixlen)
            })?;
        }
        if up {
            nl.set_up(index)
                .with_context(|| format!("setting {to:?} up"))?;
        }
        Ok(())
    })
}

/// Move `devs` into the container's network namespace `ns`. On a failure the ones already
/// moved go back, and the error names the device.
pub fn move_in(devs: &[NetDevice], ns: &File) -> Result<()> {
    for (i, d) in devs.iter().enumerate() {
        if let Err(e) = move_one(&d.host, ns, &d.container) {
            let _ = move_out(&devs[..i], ns);
            return Err(e).with_context(|| format!("linux.netDevices.{}", d.host));
        }
    }
    Ok(())
}

/// Move `devs` back from the container's network namespace `ns` to ours, each under its
/// host name. Every device is tried; the first error is returned.
pub fn move_out(devs: &[NetDevice], ns: &File) -> Result<()> {
    let host = File::open("/proc/self/ns/net").context("opening our network namespace")?;
    let mut first = None;
    for d in devs {
        let r = in_netns(ns, || move_one(&d.container, &host, &d.host))
            .with_context(|| format!("returning {:?} to the host as {:?}", d.container, d.host));
        if let (Err(e), None) = (r, &first) {
            first = Some(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// The pin's name in the state directory.
pub const PIN: &str = "netns";

/// `<state>/netns`: a bind mount of the container's network namespace, so that `delete`
/// can return the devices after the init is gone (a namespace that dies takes virtual
/// devices such as tap with it).
pub fn pin(ns: &std::path::Path, at: &std::path::Path) -> Result<()> {
    std::fs::write(at, b"").with_context(|| format!("creating {}", at.display()))?;
    nix::mount::mount(
        Some(ns),
        at,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .with_context(|| format!("binding {} onto {}", ns.display(), at.display()))
}

/// Undo `pin`.
pub fn unpin(at: &std::path::Path) -> Result<()> {
    nix::mount::umount2(at, nix::mount::MntFlags::MNT_DETACH)
        .with_context(|| format!("unmounting {}", at.display()))?;
    std::fs::remove_file(at).with_context(|| format!("removing {}", at.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_device_is_refused() {
        let linux: Linux = serde_json::from_str(r#"{"netDevices":{"nope-feat0":{}}}"#).unwrap();
        let e = format!("{:#}", from_spec(Some(&linux)).unwrap_err());
        assert!(e.contains("does not exist on the host"), "{e}");
        let linux: Linux = serde_json::from_str(r#"{"netDevices":{"lo":{"name":"lo2"}}}"#).unwrap();
        assert_eq!(from_spec(Some(&linux)).unwrap()[0].container, "lo2");
    }
}
