//! The bundle's `config.json` from the image config: `berth spec`'s template (mounts,
//! namespaces, capabilities) with the image's command, environment, working directory, user
//! (resolved through the unpacked /etc/passwd and /etc/group, read inside the rootfs), labels
//! and annotations.
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::fd::OwnedFd;

use anyhow::{bail, Context, Result};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use serde_json::{json, Value};

use super::source::ImageConfig;

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const MAX_DB: u64 = 4 << 20;

/// A resolved `process.user`.
#[derive(Debug, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: Option<String>,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].into(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].into(),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            let members = f[3]
                .split(',')
                .filter(|m| !m.is_empty())
                .map(String::from)
                .collect();
            Some(GroupEntry {
                name: f[0].into(),
                gid: f[2].parse().ok()?,
                members,
            })
        })
        .collect()
}

/// Resolve an image `User` (`name`, `uid`, `uid:gid`, `name:group`, ...) against the given
/// passwd and group file contents.
pub fn resolve_user(spec: &str, passwd: &str, group: &str) -> Result<User> {
    let users = parse_passwd(passwd);
    let groups = parse_group(group);
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entry = if u.is_empty() {
        users.iter().find(|e| e.uid == 0)
    } else if let Ok(n) = u.parse::<u32>() {
        users.iter().find(|e| e.uid == n)
    } else {
        Some(
            users
                .iter()
                .find(|e| e.name == u)
                .with_context(|| format!("image user {u:?} is not in the image's /etc/passwd"))?,
        )
    };
    let uid = match u.parse::<u32>() {
        Ok(n) => n,
        Err(_) if u.is_empty() => 0,
        Err(_) => entry.map(|e| e.uid).unwrap_or(0),
    };
    let gid = match g {
        None => entry.map_or(0, |e| e.gid),
        Some("") => bail!("image user {spec:?}: empty group"),
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                groups
                    .iter()
                    .find(|e| e.name == g)
                    .with_context(|| format!("image group {g:?} is not in the image's /etc/group"))?
                    .gid
            }
        },
    };
    let mut additional_gids = Vec::new();
    if let (Some(e), None) = (entry, g) {
        for grp in &groups {
            if grp.members.iter().any(|m| m == &e.name)
                && grp.gid != gid
                && !additional_gids.contains(&grp.gid)
            {
                additional_gids.push(grp.gid);
            }
        }
    }
    Ok(User {
        uid,
        gid,
        additional_gids,
        home: entry.map(|e| e.home.clone()).filter(|h| !h.is_empty()),
    })
}

/// Read a small file inside the rootfs (symlinks resolved inside it); missing = empty.
pub fn read_in_root(root: &OwnedFd, path: &str) -> Result<String> {
    let fd = match rustix::fs::openat2(
        root,
        path,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Err(Errno::NOENT) => return Ok(String::new()),
        r => r.with_context(|| format!("opening {path} in the rootfs"))?,
    };
    let mut s = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_DB)
        .read_to_end(&mut s)
        .with_context(|| format!("reading {path}"))?;
    Ok(String::from_utf8_lossy(&s).into_owned())
}

/// Build config.json. `root` is an fd on the unpacked rootfs (to resolve the user).
pub fn build_spec(
    img: &ImageConfig,
    manifest_annotations: &HashMap<String, String>,
    root: &OwnedFd,
    rootless: bool,
) -> Result<Value> {
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    let mut spec =
        crate::spec::template::default_spec_json(rootless, uid, gid, crate::cgroups::unified());
    let c = img.config.clone().unwrap_or_default();

    let user = match c.user.as_deref().filter(|u| !u.is_empty()) {
        None => User {
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            home: None,
        },
        Some(u) => resolve_user(
            u,
            &read_in_root(root, "etc/passwd")?,
            &read_in_root(root, "etc/group")?,
        )?,
    };

    let mut args: Vec<String> = c.entrypoint.clone().unwrap_or_default();
    args.extend(c.cmd.clone().unwrap_or_default());
    if args.is_empty() {
        tracing::warn!("the image sets neither Entrypoint nor Cmd; process.args stays [\"sh\"]");
        args.push("sh".into());
    }
    let mut env: Vec<String> = c.env.clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    if let Some(home) = &user.home {
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            env.push(format!("HOME={home}"));
        }
    }
    let cwd = c
        .working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        bail!("image WorkingDir {cwd:?} is not absolute");
    }

    let p = &mut spec["process"];
    p["terminal"] = json!(false);
    p["args"] = json!(args);
    p["env"] = json!(env);
    p["cwd"] = json!(cwd);
    p["user"] = json!({"uid": user.uid, "gid": user.gid});
    if !user.additional_gids.is_empty() {
        p["user"]["additionalGids"] = json!(user.additional_gids);
    }
    spec["root"] = json!({"path": "rootfs", "readonly": false});
    spec["annotations"] = json!(annotations(img, &c, manifest_annotations));
    Ok(spec)
}

fn annotations(
    img: &ImageConfig,
    c: &super::source::ContainerConfig,
    manifest: &HashMap<String, String>,
) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    for (k, v) in manifest {
        if k.starts_with("org.opencontainers.image.") {
            a.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in c.labels.iter().flatten() {
        a.insert(k.clone(), v.clone());
    }
    let mut put = |k: &str, v: &str| {
        if !v.is_empty() {
            a.insert(format!("org.opencontainers.image.{k}"), v.to_string());
        }
    };
    put("os", &img.os);
    put("architecture", &img.architecture);
    put("author", img.author.as_deref().unwrap_or(""));
    put("created", img.created.as_deref().unwrap_or(""));
    put("stopSignal", c.stop_signal.as_deref().unwrap_or(""));
    if let Some(ports) = &c.exposed_ports {
        let mut ports: Vec<&str> = ports.keys().map(|s| s.as_str()).collect();
        ports.sort();
        put("exposedPorts", &ports.join(","));
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:34:web:/var/www:/bin/false\n";
    const GROUP: &str = "root:x:0:\nwww:x:34:\nstaff:x:50:www,other\naudio:x:29:www\n";

    #[test]
    fn users_resolve_like_runc() {
        let u = resolve_user("www", PASSWD, GROUP).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.additional_gids.clone(), u.home.as_deref()),
            (33, 34, vec![50, 29], Some("/var/www"))
        );
        let u = resolve_user("33", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid), (33, 34));
        let u = resolve_user("1000", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 0));
        let u = resolve_user("1000:5", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids), (1000, 5, vec![]));
        let u = resolve_user("www:staff", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid), (33, 50));
        assert!(resolve_user("nobody", PASSWD, GROUP)
            .unwrap_err()
            .to_string()
            .contains("/etc/passwd"));
        assert!(resolve_user("www:nogroup", PASSWD, GROUP)
            .unwrap_err()
            .to_string()
            .contains("/etc/group"));
    }
}
