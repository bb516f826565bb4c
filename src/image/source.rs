//! Image sources: an OCI image layout directory, an oci-archive tarball or a docker-archive
//! tarball (`docker save`). Each gives a blob store and, after tag and platform selection, a
//! resolved [`Image`]: the verified image config and the ordered layers with their digests.
use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::digest::{verify_bytes, Digest};

/// Largest JSON document (index, manifest, config) we read into memory.
const MAX_JSON: u64 = 8 << 20;
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Where the image comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    None,
    Tag(String),
    Digest(Digest),
}

/// `os/arch[/variant]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl Platform {
    /// linux/HOST_ARCH in Go's spelling.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "loongarch64" => "loong64",
            other => other,
        };
        Platform {
            os: "linux".into(),
            arch: arch.into(),
            variant: None,
        }
    }

    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.to_string(),
                arch: arch.to_string(),
                variant: None,
            }),
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
                Ok(Platform {
                    os: os.to_string(),
                    arch: arch.to_string(),
                    variant: Some(variant.to_string()),
                })
            }
            _ => bail!("--platform {s:?}: expected os/arch or os/arch/variant"),
        }
    }

    fn matches(&self, p: &DescPlatform) -> bool {
        p.os == self.os
            && p.architecture == self.arch
            && self
                .variant
                .as_ref()
                .is_none_or(|v| p.variant.as_deref() == Some(v.as_str()))
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[derive(Deserialize, Debug, Clone)]
pub struct DescPlatform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

#[derive(Deserialize, Debug, Clone)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    #[serde(default)]
    pub platform: Option<DescPlatform>,
}

#[derive(Deserialize, Debug)]
struct Index {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize, Debug)]
struct Manifest {
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    annotations: HashMap<String, String>,
}

#[derive(Deserialize, Debug, Default, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub labels: Option<HashMap<String, String>>,
    #[serde(default)]
    pub stop_signal: Option<String>,
    #[serde(default)]
    pub exposed_ports: Option<HashMap<String, serde_json::Value>>,
}

#[derive(Deserialize, Debug, Default, Clone)]
pub struct RootFs {
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// The image config blob (the parts we use).
#[derive(Deserialize, Debug, Default, Clone)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub config: Option<ContainerConfig>,
    #[serde(default)]
    pub rootfs: RootFs,
}

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    /// Decide from the first bytes.
    Sniff,
}

impl Compression {
    /// From a layer media type (OCI or Docker); unknown types are sniffed.
    pub fn from_media_type(mt: &str) -> Compression {
        let base = mt.trim_end_matches("+encrypted");
        if base.ends_with("+gzip") || base.ends_with(".tar.gzip") {
            Compression::Gzip
        } else if base.ends_with("+zstd") || base.ends_with(".tar.zstd") {
            Compression::Zstd
        } else if base.ends_with(".tar") || base.ends_with("diff.tar") {
            Compression::None
        } else {
            Compression::Sniff
        }
    }
}

/// One layer to apply, in order.
#[derive(Clone, Debug)]
pub struct Layer {
    /// Path of the blob inside the store.
    pub path: String,
    pub compression: Compression,
    /// Digest and size of the blob as stored (unknown for docker-archive tar layers).
    pub digest: Option<Digest>,
    pub size: u64,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
}

/// A resolved image ready to unpack.
pub struct Image {
    pub store: Store,
    pub config: ImageConfig,
    pub config_digest: Option<Digest>,
    pub manifest_digest: Option<Digest>,
    pub manifest_annotations: HashMap<String, String>,
    pub layers: Vec<Layer>,
}

/// Blob storage: a directory or an indexed tarball read in place.
#[derive(Clone)]
pub enum Store {
    Dir(PathBuf),
    Archive {
        file: Arc<File>,
        name: PathBuf,
        members: Arc<HashMap<String, (u64, u64)>>,
    },
}

/// A bounded window of an archive file, read with pread (no shared cursor).
pub struct ArchiveReader {
    file: Arc<File>,
    pos: u64,
    end: u64,
}

impl Read for ArchiveReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.end - self.pos;
        if left == 0 {
            return Ok(0);
        }
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let got = self.file.read_at(&mut buf[..n], self.pos)?;
        self.pos += got as u64;
        Ok(got)
    }
}

impl Store {
    /// Open a blob by its path in the store; returns the reader and the stored size.
    pub fn open(&self, path: &str) -> Result<(Box<dyn Read + Send>, u64)> {
        match self {
            Store::Dir(dir) => {
                let rel = Path::new(path);
                if rel.is_absolute()
                    || rel
                        .components()
                        .any(|c| matches!(c, std::path::Component::ParentDir))
                {
                    bail!("{path:?} points outside the image directory; refused");
                }
                let p = dir.join(rel);
                let f = File::open(&p).with_context(|| format!("opening blob {}", p.display()))?;
                let len = f
                    .metadata()
                    .with_context(|| format!("stat {}", p.display()))?
                    .len();
                Ok((Box::new(f), len))
            }
            Store::Archive {
                file,
                name,
                members,
            } => {
                let Some(&(off, len)) = members.get(path) else {
                    bail!("{}: no member {path:?} in the archive", name.display());
                };
                Ok((
                    Box::new(ArchiveReader {
                        file: file.clone(),
                        pos: off,
                        end: off + len,
                    }),
                    len,
                ))
            }
        }
    }

    fn exists(&self, path: &str) -> bool {
        match self {
            Store::Dir(dir) => dir.join(path).is_file(),
            Store::Archive { members, .. } => members.contains_key(path),
        }
    }

    /// Read a small JSON document whole.
    fn read_small(&self, path: &str) -> Result<Vec<u8>> {
        let (r, len) = self.open(path)?;
        if len > MAX_JSON {
            bail!("{path}: {len} bytes is too large for a JSON document (bound {MAX_JSON})");
        }
        let mut v = Vec::with_capacity(len as usize);
        r.take(MAX_JSON + 1)
            .read_to_end(&mut v)
            .with_context(|| format!("reading {path}"))?;
        Ok(v)
    }

    /// Read a blob named by a descriptor, checking its size and digest.
    fn read_blob(&self, what: &str, d: &Descriptor) -> Result<(Vec<u8>, Digest)> {
        let digest = Digest::parse(&d.digest).with_context(|| format!("{what} descriptor"))?;
        if d.size > MAX_JSON {
            bail!(
                "{what} {digest}: {} bytes is too large (bound {MAX_JSON})",
                d.size
            );
        }
        let data = self.read_small(&blob_path(&digest))?;
        verify_bytes(what, &data, &digest, Some(d.size))?;
        Ok((data, digest))
    }
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

fn parse_json<T: serde::de::DeserializeOwned>(what: &str, data: &[u8]) -> Result<T> {
    serde_json::from_slice(data).with_context(|| format!("parsing {what}"))
}

/// Split `SOURCE[:TAG|@DIGEST]` (a skopeo-style `oci:`, `oci-archive:` or `docker-archive:`
/// prefix is accepted) into the path and the reference.
pub fn parse_source(s: &str) -> Result<(PathBuf, Reference)> {
    let s = ["oci:", "oci-archive:", "docker-archive:"]
        .iter()
        .find_map(|p| s.strip_prefix(p))
        .unwrap_or(s);
    if s.is_empty() {
        bail!("empty image source");
    }
    if Path::new(s).exists() {
        return Ok((PathBuf::from(s), Reference::None));
    }
    // An existing path followed by `:REF` (a docker-archive ref may hold a ':' itself).
    for (i, _) in s.match_indices(':') {
        if i > 0
            && !s[i + 1..].is_empty()
            && !s[i + 1..].contains('@')
            && Path::new(&s[..i]).exists()
        {
            return Ok((
                PathBuf::from(&s[..i]),
                Reference::Tag(s[i + 1..].to_string()),
            ));
        }
    }
    if let Some((path, d)) = s.rsplit_once('@') {
        return Ok((PathBuf::from(path), Reference::Digest(Digest::parse(d)?)));
    }
    if let Some((path, tag)) = s.rsplit_once(':') {
        if !tag.contains('/') && !path.is_empty() {
            if tag.is_empty() {
                bail!("image source {s:?}: empty tag");
            }
            return Ok((PathBuf::from(path), Reference::Tag(tag.to_string())));
        }
    }
    Ok((PathBuf::from(s), Reference::None))
}

/// Open the source at `path` and resolve the image named by `reference` for `platform`.
pub fn resolve(
    path: &Path,
    reference: &Reference,
    platform: &Platform,
    platform_given: bool,
) -> Result<Image> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("image source {}", path.display()))?;
    let store = if meta.is_dir() {
        if !path.join("index.json").is_file() && !path.join("manifest.json").is_file() {
            bail!("{}: neither an OCI image layout (index.json) nor an unpacked docker-archive (manifest.json)", path.display());
        }
        Store::Dir(path.to_path_buf())
    } else {
        index_archive(path)?
    };
    if store.exists("index.json") {
        resolve_oci(store, reference, platform, platform_given)
    } else if store.exists("manifest.json") {
        resolve_docker(store, reference)
    } else {
        bail!(
            "{}: neither an OCI layout/archive (index.json) nor a docker-archive (manifest.json)",
            path.display()
        )
    }
}

/// Record where each member of an (uncompressed) tarball lives, without reading the data.
fn index_archive(path: &Path) -> Result<Store> {
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut magic = [0u8; 4];
    let n = f
        .read(&mut magic)
        .with_context(|| format!("reading {}", path.display()))?;
    if n >= 2 && magic[..2] == [0x1f, 0x8b] || n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        bail!("{}: a compressed archive; decompress it first (oci-archive and docker-archive are plain tar)", path.display());
    }
    f.seek(SeekFrom::Start(0))?;
    let mut members = HashMap::new();
    let mut ar = tar::Archive::new(&f);
    for e in ar
        .entries_with_seek()
        .with_context(|| format!("reading archive {}", path.display()))?
    {
        let e = e.with_context(|| format!("reading archive {}", path.display()))?;
        if !matches!(
            e.header().entry_type(),
            tar::EntryType::Regular | tar::EntryType::Continuous
        ) {
            continue;
        }
        let name = e
            .path()
            .with_context(|| format!("member name in {}", path.display()))?;
        let name = name.to_string_lossy();
        let name = name
            .trim_start_matches("./")
            .trim_start_matches('/')
            .to_string();
        members.insert(name, (e.raw_file_position(), e.size()));
    }
    Ok(Store::Archive {
        file: Arc::new(f),
        name: path.to_path_buf(),
        members: Arc::new(members),
    })
}

fn is_index(d: &Descriptor) -> bool {
    d.media_type.contains("image.index") || d.media_type.contains("manifest.list")
}

fn tag_of(d: &Descriptor) -> Option<&str> {
    d.annotations.get(REF_NAME).map(|s| s.as_str())
}

fn resolve_oci(
    store: Store,
    reference: &Reference,
    platform: &Platform,
    platform_given: bool,
) -> Result<Image> {
    let index: Index = parse_json("index.json", &store.read_small("index.json")?)?;
    let tags: BTreeSet<&str> = index.manifests.iter().filter_map(tag_of).collect();
    let tag_list = || tags.iter().copied().collect::<Vec<_>>().join(", ");
    let mut picked: Vec<Descriptor> = match reference {
        Reference::Digest(d) => index
            .manifests
            .iter()
            .filter(|m| m.digest == d.as_str())
            .cloned()
            .collect(),
        Reference::Tag(t) => index
            .manifests
            .iter()
            .filter(|m| tag_of(m) == Some(t.as_str()))
            .cloned()
            .collect(),
        Reference::None if tags.len() > 1 => {
            let latest: Vec<_> = index
                .manifests
                .iter()
                .filter(|m| tag_of(m) == Some("latest"))
                .cloned()
                .collect();
            if latest.is_empty() {
                bail!(
                    "the image has several tags; name one with SOURCE:TAG (tags: {})",
                    tag_list()
                );
            }
            latest
        }
        Reference::None => index.manifests.clone(),
    };
    if picked.is_empty() {
        match reference {
            Reference::Tag(t) => bail!(
                "tag {t:?} not found (tags: {})",
                if tags.is_empty() {
                    "none".into()
                } else {
                    tag_list()
                }
            ),
            Reference::Digest(d) => bail!("no manifest {d} in index.json"),
            Reference::None => bail!("index.json lists no manifests"),
        }
    }
    // Expand nested indexes (multi-platform images) into their manifests.
    for _ in 0..4 {
        if !picked.iter().any(is_index) {
            break;
        }
        let mut next = Vec::new();
        for d in picked {
            if is_index(&d) {
                let (data, _) = store.read_blob("image index", &d)?;
                next.extend(parse_json::<Index>("image index", &data)?.manifests);
            } else {
                next.push(d);
            }
        }
        picked = next;
    }
    let manifest_desc = pick_platform(picked, platform, platform_given)?;
    let (data, manifest_digest) = store.read_blob("manifest", &manifest_desc)?;
    let manifest: Manifest = parse_json("manifest", &data)?;
    let (cfg_data, config_digest) = store.read_blob("image config", &manifest.config)?;
    let config: ImageConfig = parse_json("image config", &cfg_data)?;
    let diff_ids = diff_ids(&config, manifest.layers.len())?;
    let mut layers = Vec::new();
    for (d, diff_id) in manifest.layers.iter().zip(diff_ids) {
        let digest = Digest::parse(&d.digest).context("layer descriptor")?;
        layers.push(Layer {
            path: blob_path(&digest),
            compression: Compression::from_media_type(&d.media_type),
            digest: Some(digest),
            size: d.size,
            diff_id,
        });
    }
    Ok(Image {
        store,
        config,
        config_digest: Some(config_digest),
        manifest_digest: Some(manifest_digest),
        manifest_annotations: manifest.annotations,
        layers,
    })
}

fn pick_platform(cands: Vec<Descriptor>, want: &Platform, given: bool) -> Result<Descriptor> {
    if cands.len() == 1 && !given {
        return Ok(cands.into_iter().next().unwrap());
    }
    let seen: Vec<String> = cands
        .iter()
        .filter_map(|d| {
            d.platform
                .as_ref()
                .map(|p| format!("{}/{}", p.os, p.architecture))
        })
        .collect();
    let single_unlabelled = cands.len() == 1 && cands[0].platform.is_none();
    let mut matching: Vec<Descriptor> = cands
        .iter()
        .filter(|d| d.platform.as_ref().is_some_and(|p| want.matches(p)))
        .cloned()
        .collect();
    if matching.is_empty() && single_unlabelled {
        // One manifest without a platform label: nothing to choose between.
        matching = cands;
    }
    match matching.len() {
        0 => bail!(
            "no manifest for platform {want} (available: {})",
            if seen.is_empty() {
                "unlabelled manifests".into()
            } else {
                seen.join(", ")
            }
        ),
        _ => Ok(matching.into_iter().next().unwrap()),
    }
}

fn diff_ids(config: &ImageConfig, n: usize) -> Result<Vec<Digest>> {
    if config.rootfs.diff_ids.len() != n {
        bail!(
            "image config lists {} diff_ids but the manifest has {n} layers",
            config.rootfs.diff_ids.len()
        );
    }
    config
        .rootfs
        .diff_ids
        .iter()
        .map(|s| Digest::parse(s).context("image config rootfs.diff_ids"))
        .collect()
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// A digest recoverable from a docker-archive member name (`blobs/sha256/HEX`, `HEX.json`).
fn digest_from_name(name: &str) -> Option<Digest> {
    let base = name.rsplit('/').next()?;
    let hex = base.strip_suffix(".json").unwrap_or(base);
    Digest::parse(&format!("sha256:{hex}")).ok()
}

fn resolve_docker(store: Store, reference: &Reference) -> Result<Image> {
    let entries: Vec<DockerEntry> =
        parse_json("manifest.json", &store.read_small("manifest.json")?)?;
    let all_tags: Vec<String> = entries
        .iter()
        .flat_map(|e| e.repo_tags.clone().unwrap_or_default())
        .collect();
    let matches_tag = |e: &DockerEntry, t: &str| {
        e.repo_tags.iter().flatten().any(|rt| {
            // `bb:latest` names `docker.io/library/bb:latest`, as docker spells it.
            let short = rt.strip_prefix("docker.io/").unwrap_or(rt);
            let short = short.strip_prefix("library/").unwrap_or(short);
            rt == t || short == t || rt.rsplit_once(':').is_some_and(|(_, tag)| tag == t)
        })
    };
    let entry = match reference {
        Reference::Digest(d) => bail!("docker-archive images are named by tag, not digest ({d})"),
        Reference::Tag(t) => entries
            .iter()
            .find(|e| matches_tag(e, t))
            .with_context(|| {
                format!(
                    "tag {t:?} not found (tags: {})",
                    if all_tags.is_empty() {
                        "none".into()
                    } else {
                        all_tags.join(", ")
                    }
                )
            })?,
        Reference::None if entries.len() == 1 => &entries[0],
        Reference::None => bail!(
            "the archive holds several images; name one with SOURCE:TAG (tags: {})",
            all_tags.join(", ")
        ),
    };
    let cfg_name = entry.config.trim_start_matches("./").to_string();
    let cfg_data = store.read_small(&cfg_name)?;
    let config_digest = digest_from_name(&cfg_name);
    if let Some(d) = &config_digest {
        verify_bytes("image config", &cfg_data, d, None)?;
    }
    let config: ImageConfig = parse_json("image config", &cfg_data)?;
    let diff_ids = diff_ids(&config, entry.layers.len())?;
    let mut layers = Vec::new();
    for (name, diff_id) in entry.layers.iter().zip(diff_ids) {
        let path = name.trim_start_matches("./").to_string();
        let (_, size) = store.open(&path)?;
        // Docker's legacy layout names layers by directory; newer ones by blob digest.
        let digest = if path.starts_with("blobs/") {
            digest_from_name(&path)
        } else {
            None
        };
        layers.push(Layer {
            path,
            compression: Compression::Sniff,
            digest,
            size,
            diff_id,
        });
    }
    Ok(Image {
        store,
        config,
        config_digest,
        manifest_digest: None,
        manifest_annotations: HashMap::new(),
        layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_references() {
        assert_eq!(
            parse_source("/nonexistent/img:v1").unwrap(),
            (
                PathBuf::from("/nonexistent/img"),
                Reference::Tag("v1".into())
            )
        );
        assert_eq!(
            parse_source("oci:/nonexistent/img").unwrap(),
            (PathBuf::from("/nonexistent/img"), Reference::None)
        );
        let d = format!("sha256:{}", "b".repeat(64));
        assert_eq!(
            parse_source(&format!("/x/img@{d}")).unwrap(),
            (
                PathBuf::from("/x/img"),
                Reference::Digest(Digest::parse(&d).unwrap())
            )
        );
        assert!(parse_source("/x/img@sha256:zz").is_err());
        assert_eq!(
            parse_source("/").unwrap(),
            (PathBuf::from("/"), Reference::None)
        );
        assert_eq!(
            parse_source("/etc:repo/img:v1").unwrap(),
            (PathBuf::from("/etc"), Reference::Tag("repo/img:v1".into()))
        );
    }

    #[test]
    fn platforms_and_media_types() {
        assert_eq!(
            Platform::parse("linux/arm64/v8")
                .unwrap()
                .variant
                .as_deref(),
            Some("v8")
        );
        assert!(Platform::parse("linux").is_err());
        assert_eq!(
            Compression::from_media_type("application/vnd.oci.image.layer.v1.tar+gzip"),
            Compression::Gzip
        );
        assert_eq!(
            Compression::from_media_type("application/vnd.oci.image.layer.v1.tar+zstd"),
            Compression::Zstd
        );
        assert_eq!(
            Compression::from_media_type("application/vnd.oci.image.layer.v1.tar"),
            Compression::None
        );
        assert_eq!(
            Compression::from_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            Compression::Gzip
        );
        assert_eq!(Compression::from_media_type(""), Compression::Sniff);
    }
}
