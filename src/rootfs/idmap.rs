//! Idmapped mounts: which `mounts[]` entries are idmapped and with which mapping, decided
//! from the config alone (no side effect), with runc's rules and words.
//!
//! An entry is idmapped when it has the `idmap` or `ridmap` option or `uidMappings` /
//! `gidMappings` (runc takes mappings alone as `idmap`). Only a bind mount can be idmapped.
//! A mapping maps ids on disk (`containerID`) to the ids the mount shows (`hostID`), as a
//! user namespace's map does. Without mappings in the entry, the container's user namespace
//! gives them: its `linux.uidMappings`/`gidMappings`, or the namespace itself when it is
//! joined by path.
//!
//! `idmap` maps the top mount only, `ridmap` every mount of the tree; `bind` or `rbind`
//! decides, as always, whether the submounts are part of the tree at all.
use std::path::PathBuf;

use anyhow::{bail, Result};
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Mount, Spec};

use super::options;

/// Where the user namespace of an idmapping comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapping {
    /// A namespace made for these maps (uids, gids).
    Maps(Vec<LinuxIdMapping>, Vec<LinuxIdMapping>),
    /// The user namespace the container joins (`linux.namespaces[].path`).
    Userns(PathBuf),
}

/// How one `mounts[]` entry is idmapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountIdmap {
    /// `ridmap`: the submounts of the tree are idmapped too.
    pub recursive: bool,
    pub mapping: Mapping,
}

/// By `mounts[]` index: the idmapping of every entry (`None`: not idmapped). The errors
/// are runc's, prefixed with the entry.
pub fn plan(spec: &Spec) -> Result<Vec<Option<MountIdmap>>> {
    spec.mounts()
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, m)| {
            entry(spec, m)
                .map_err(|e| e.context(format!("mounts[{i}] ({})", m.destination().display())))
        })
        .collect()
}

fn entry(spec: &Spec, m: &Mount) -> Result<Option<MountIdmap>> {
    let opts = options::parse(m.options().as_deref().unwrap_or(&[]))?;
    let (uids, gids) = (m.uid_mappings().as_ref(), m.gid_mappings().as_ref());
    let has_maps = uids.is_some() || gids.is_some();
    if opts.idmap.is_none() && !has_maps {
        return Ok(None);
    }
    if !(opts.is_bind() || m.typ().as_deref() == Some("bind")) {
        bail!("id-mapped mounts are only supported for bind-mounts");
    }
    let both = "id-mapped mounts must have both uid and gid mappings specified";
    let mapping = if has_maps {
        match (uids, gids) {
            (Some(u), Some(g)) if !u.is_empty() && !g.is_empty() => {
                Mapping::Maps(u.clone(), g.clone())
            }
            _ => bail!(both),
        }
    } else {
        match container_userns(spec) {
            Some(m) => m,
            None => bail!(both),
        }
    };
    Ok(Some(MountIdmap {
        recursive: opts.idmap == Some(true),
        mapping,
    }))
}

/// The mapping of the container's own user namespace, if it has one.
fn container_userns(spec: &Spec) -> Option<Mapping> {
    let linux = spec.linux().as_ref()?;
    let ns = linux
        .namespaces()
        .iter()
        .flatten()
        .find(|n| n.typ() == LinuxNamespaceType::User)?;
    if let Some(p) = ns.path() {
        return Some(Mapping::Userns(p.clone()));
    }
    Some(Mapping::Maps(
        linux.uid_mappings().clone().unwrap_or_default(),
        linux.gid_mappings().clone().unwrap_or_default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(mounts: &str, linux: &str) -> Result<Vec<Option<MountIdmap>>> {
        let json = format!(r#"{{"ociVersion":"1.2.0","mounts":{mounts},"linux":{linux}}}"#);
        plan(&crate::spec::parse_config(json.as_bytes()).unwrap())
    }

    const MAP: &str = r#"[{"containerID":0,"hostID":100000,"size":65536}]"#;

    fn err(mounts: &str, linux: &str) -> String {
        format!("{:#}", plan_of(mounts, linux).unwrap_err())
    }

    #[test]
    fn which_entries_are_idmapped() {
        let m = format!(
            r#"[{{"destination":"/a","source":"/s","options":["bind"]}},
                {{"destination":"/b","source":"/s","options":["rbind","ridmap"],"uidMappings":{MAP},"gidMappings":{MAP}}},
                {{"destination":"/c","source":"/s","type":"bind","uidMappings":{MAP},"gidMappings":{MAP}}}]"#
        );
        let p = plan_of(&m, "{}").unwrap();
        assert_eq!(p[0], None);
        let maps = serde_json::from_str::<Vec<LinuxIdMapping>>(MAP).unwrap();
        let want = Mapping::Maps(maps.clone(), maps);
        assert_eq!(
            p[1].as_ref().map(|i| (i.recursive, &i.mapping)),
            Some((true, &want))
        );
        assert_eq!(
            p[2].as_ref().map(|i| (i.recursive, &i.mapping)),
            Some((false, &want))
        );
    }

    #[test]
    fn implied_from_the_container_userns() {
        let m = r#"[{"destination":"/a","source":"/s","options":["bind","idmap"]}]"#;
        let own = format!(
            r#"{{"namespaces":[{{"type":"user"}}],"uidMappings":{MAP},"gidMappings":{MAP}}}"#
        );
        let maps = serde_json::from_str::<Vec<LinuxIdMapping>>(MAP).unwrap();
        let p = plan_of(m, &own).unwrap();
        assert_eq!(
            p[0].as_ref().unwrap().mapping,
            Mapping::Maps(maps.clone(), maps)
        );
        let joined = r#"{"namespaces":[{"type":"user","path":"/proc/7/ns/user"}]}"#;
        let p = plan_of(m, joined).unwrap();
        assert_eq!(
            p[0].as_ref().unwrap().mapping,
            Mapping::Userns("/proc/7/ns/user".into())
        );
    }

    #[test]
    fn runc_errors() {
        let e = err(
            r#"[{"destination":"/t","type":"tmpfs","options":["idmap"]}]"#,
            "{}",
        );
        assert_eq!(
            e,
            "mounts[0] (/t): id-mapped mounts are only supported for bind-mounts"
        );
        let e = err(
            &format!(
                r#"[{{"destination":"/t","type":"tmpfs","uidMappings":{MAP},"gidMappings":{MAP}}}]"#
            ),
            "{}",
        );
        assert!(e.ends_with("only supported for bind-mounts"), "{e}");
        let both = "id-mapped mounts must have both uid and gid mappings specified";
        let e = err(
            r#"[{"destination":"/a","source":"/s","options":["bind","idmap"]}]"#,
            "{}",
        );
        assert!(e.ends_with(both), "no userns to take them from: {e}");
        let e = err(
            &format!(
                r#"[{{"destination":"/a","source":"/s","options":["bind"],"uidMappings":{MAP}}}]"#
            ),
            "{}",
        );
        assert!(e.ends_with(both), "{e}");
        let e = err(
            &format!(
                r#"[{{"destination":"/a","source":"/s","options":["bind"],"uidMappings":{MAP},"gidMappings":[]}}]"#
            ),
            "{}",
        );
        assert!(e.ends_with(both), "{e}");
    }
}
