//! `linux.netDevices`: the host interfaces to move into the container's network namespace,
//! with their name there. Only the names are checked here (no side effect, no look at the
//! host); process::netdev checks the devices exist and moves them.
use anyhow::{bail, Result};
use oci_spec::runtime::Linux;

/// One device: its name on the host and in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetDevice {
    pub host: String,
    pub container: String,
}

/// A valid interface name (what the kernel's dev_valid_name accepts).
fn check_name(what: &str, n: &str) -> Result<()> {
    if n.is_empty() || n.len() >= libc::IFNAMSIZ {
        bail!("{what}: {n:?} is not 1 to {} bytes", libc::IFNAMSIZ - 1);
    }
    if n == "." || n == ".." || n.contains(['/', ':']) || n.chars().any(char::is_whitespace) {
        bail!("{what}: {n:?} is not a valid interface name");
    }
    Ok(())
}

/// linux.netDevices with the names checked: no two devices with one name in the container.
/// Sorted by host name.
pub fn parse(linux: Option<&Linux>) -> Result<Vec<NetDevice>> {
    let Some(map) = linux.and_then(|l| l.net_devices().as_ref()) else {
        return Ok(vec![]);
    };
    let mut out: Vec<NetDevice> = Vec::new();
    for (host, d) in map {
        let container = d
            .name()
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or(host.clone());
        check_name(&format!("linux.netDevices.{host}"), host)?;
        check_name(&format!("linux.netDevices.{host}.name"), &container)?;
        out.push(NetDevice {
            host: host.clone(),
            container,
        });
    }
    out.sort_by(|a, b| a.host.cmp(&b.host));
    for (i, d) in out.iter().enumerate() {
        if let Some(o) = out[..i].iter().find(|o| o.container == d.container) {
            bail!(
                "linux.netDevices: {:?} and {:?} would both be {:?} in the container",
                o.host,
                d.host,
                d.container
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux(json: &str) -> Linux {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn names() {
        let e = |j| format!("{:#}", parse(Some(&linux(j))).unwrap_err());
        assert!(e(r#"{"netDevices":{"lo":{"name":"a/b"}}}"#).contains("not a valid interface name"));
        assert!(e(r#"{"netDevices":{"lo":{"name":"0123456789abcdef"}}}"#).contains("1 to 15 bytes"));
        let d = parse(Some(&linux(r#"{"netDevices":{"lo":{"name":"lo2"}}}"#))).unwrap();
        assert_eq!(
            d,
            vec![NetDevice {
                host: "lo".into(),
                container: "lo2".into()
            }]
        );
        let d = parse(Some(&linux(r#"{"netDevices":{"lo":{}}}"#))).unwrap();
        assert_eq!(d[0].container, "lo");
        assert!(
            e(r#"{"netDevices":{"lo":{"name":"x"},"nope-feat0":{"name":"x"}}}"#)
                .contains("would both be \"x\"")
        );
    }
}
