//! The OCI image format (and Docker's v2 schema 2, its twin): descriptors,
//! manifests, indexes and image configs, as read from registries and
//! archives and as written by `ctr save`. Parsing is lenient where the specs
//! allow extensions (unknown fields are ignored) and strict where a mistake
//! would mislead: digests must be sha256, sizes must be given, and a config
//! must list one diff id per layer.

use super::digest;
use super::ImageConfig;
use super::{ImageContext, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
#[allow(dead_code)]
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
#[allow(dead_code)]
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
#[allow(dead_code)]
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_FOREIGN: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// What a registry is asked to send for a manifest, best first.
pub const MANIFEST_ACCEPT: &str =
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// The largest manifest, index or config read into memory.
pub const MAX_JSON_BYTES: u64 = 8 << 20;

/// The largest number of layers an image may have (Docker's limit is 127
/// for overlay2; the kernel takes up to 500 lower directories).
pub const MAX_LAYERS: usize = 128;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: String, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_owned(),
            digest,
            size,
            platform: None,
            annotations: BTreeMap::new(),
            urls: Vec::new(),
        }
    }

    /// Checks the digest before it is used in a path or URL.
    pub fn hex(&self) -> Result<&str> {
        digest::hex(&self.digest).with_context(|| format!("a descriptor of type {:?}", self.media_type))
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// `os/arch[/variant]`, e.g. `linux/arm64/v8`; the OS defaults to linux.
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => {
                Ok(Platform { os: (*os).into(), architecture: (*arch).into(), variant: None })
            }
            [os, arch, variant] if ok(os) && ok(arch) && ok(variant) => {
                Ok(Platform { os: (*os).into(), architecture: (*arch).into(), variant: Some((*variant).into()) })
            }
            _ => refuse!("invalid platform {s:?}: use OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8"),
        }
    }

    /// The platform this ctr runs on (Go's names for the architecture).
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        let variant = (architecture == "arm64").then(|| "v8".to_owned());
        Platform { os: "linux".into(), architecture: architecture.into(), variant }
    }

    pub fn matches(&self, other: &Platform) -> bool {
        let variant_ok = match (&self.variant, &other.variant) {
            (Some(a), Some(b)) => a == b,
            // arm64 images often omit v8.
            _ => true,
        };
        self.os == other.os && self.architecture == other.architecture && variant_ok
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// An image manifest (OCI or Docker v2.2).
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image index / manifest list.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A parsed manifest-ish document.
pub enum Document {
    Manifest(Manifest),
    Index(Index),
}

impl Document {
    /// Parses a manifest or index; `media_type` is the Content-Type or the
    /// descriptor's, used when the document does not say.
    pub fn parse(bytes: &[u8], media_type: &str) -> Result<Document> {
        let value: serde_json::Value = serde_json::from_slice(bytes).context("the manifest is not valid JSON")?;
        let declared = value.get("mediaType").and_then(|m| m.as_str()).unwrap_or(media_type);
        let schema = value.get("schemaVersion").and_then(|v| v.as_u64());
        if schema == Some(1) {
            refuse!("this image uses Docker's deprecated schema 1 manifest, which ctr does not support: push it again with a current tool");
        }
        let is_index = matches!(declared, OCI_INDEX | DOCKER_LIST)
            || (declared.is_empty() || declared.contains("json")) && value.get("manifests").is_some();
        if is_index {
            Ok(Document::Index(serde_json::from_value(value).context("malformed image index")?))
        } else {
            let manifest: Manifest = serde_json::from_value(value).context("malformed image manifest")?;
            if manifest.layers.len() > MAX_LAYERS {
                refuse!("the image has {} layers; ctr supports at most {MAX_LAYERS}", manifest.layers.len());
            }
            for layer in &manifest.layers {
                layer.hex()?;
                if layer.media_type == DOCKER_LAYER_FOREIGN || !layer.urls.is_empty() {
                    refuse!("the image has a foreign (non-distributable) layer {}: such images (Windows base layers) cannot run here", layer.digest);
                }
            }
            manifest.config.hex()?;
            Ok(Document::Manifest(manifest))
        }
    }
}

/// Picks the manifest for `platform` from an index.
pub fn select_platform<'a>(index: &'a Index, platform: &Platform) -> Result<&'a Descriptor> {
    let found = index.manifests.iter().find(|m| m.platform.as_ref().is_some_and(|p| platform.matches(p)));
    if let Some(found) = found {
        return Ok(found);
    }
    // An index without platforms (as some OCI layouts have) with one image.
    if let [only] = index.manifests.as_slice() {
        if only.platform.is_none() {
            return Ok(only);
        }
    }
    let available: Vec<String> =
        index.manifests.iter().filter_map(|m| m.platform.as_ref()).map(|p| p.to_string()).collect();
    refuse!(
        "the image has no variant for {platform}; it has: {} (choose one with --platform)",
        if available.is_empty() { "none with a platform".into() } else { available.join(", ") }
    )
}

/// An image config (the document the image id is the digest of). Only the
/// fields ctr uses are parsed; the bytes are kept as they came.
#[derive(Deserialize, Debug, Default)]
pub struct ImageConfigFile {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub config: Option<ContainerConfig>,
    pub rootfs: RootFs,
}

#[derive(Serialize, Deserialize, Debug, Default, Clone)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<String>,
}

/// The `config` object of an image config, with Docker's capitalised keys.
#[derive(Serialize, Deserialize, Debug, Default, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<crate::health::HealthConfig>,
}

impl ImageConfigFile {
    pub fn parse(bytes: &[u8]) -> Result<ImageConfigFile> {
        let config: ImageConfigFile = serde_json::from_slice(bytes).context("malformed image config")?;
        if config.rootfs.diff_ids.len() > MAX_LAYERS {
            refuse!("the image has {} layers; ctr supports at most {MAX_LAYERS}", config.rootfs.diff_ids.len());
        }
        for diff_id in &config.rootfs.diff_ids {
            digest::hex(diff_id).context("a diff id in the image config")?;
        }
        if !config.os.is_empty() && config.os != "linux" {
            refuse!("this is a {} image; ctr runs Linux images only", config.os);
        }
        Ok(config)
    }

    /// How a container of it runs, in ctr's terms.
    pub fn run_config(&self) -> ImageConfig {
        let c = self.config.clone().unwrap_or_default();
        ImageConfig {
            cmd: c.cmd.unwrap_or_default(),
            entrypoint: c.entrypoint.unwrap_or_default(),
            env: c.env.unwrap_or_default(),
            working_dir: c.working_dir.filter(|w| !w.is_empty()),
            user: c.user.filter(|u| !u.is_empty()),
            exposed_ports: c.exposed_ports.map(|p| p.into_keys().collect()).unwrap_or_default(),
            healthcheck: c.healthcheck,
        }
    }
}

/// The config blob written for an imported root filesystem. It has no
/// creation time, so that importing the same archive with the same config
/// again gives the same image id.
pub fn config_for_import(config: &ImageConfig, diff_ids: &[String]) -> Vec<u8> {
    #[derive(Serialize)]
    struct History<'a> {
        created_by: &'a str,
    }
    #[derive(Serialize)]
    struct Out<'a> {
        architecture: String,
        os: &'a str,
        config: ContainerConfig,
        rootfs: RootFs,
        history: Vec<History<'a>>,
    }
    let non_empty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let out = Out {
        architecture: Platform::host().architecture,
        os: "linux",
        config: ContainerConfig {
            user: config.user.clone(),
            exposed_ports: (!config.exposed_ports.is_empty())
                .then(|| config.exposed_ports.iter().map(|p| (p.clone(), serde_json::json!({}))).collect()),
            env: non_empty(&config.env),
            entrypoint: non_empty(&config.entrypoint),
            cmd: non_empty(&config.cmd),
            working_dir: config.working_dir.clone(),
            healthcheck: config.healthcheck.clone(),
        },
        rootfs: RootFs { kind: "layers".into(), diff_ids: diff_ids.to_vec() },
        history: vec![History { created_by: "ctr image import" }],
    };
    serde_json::to_vec(&out).expect("a config always serialises")
}

/// The media type of a layer blob from its compression.
pub fn layer_media_type(compression: super::decompress::Compression) -> &'static str {
    use super::decompress::Compression;
    match compression {
        Compression::None => OCI_LAYER,
        Compression::Gzip => OCI_LAYER_GZIP,
        Compression::Zstd => OCI_LAYER_ZSTD,
        // Not an OCI type, but what the bytes are; `ctr save` recompresses
        // nothing, and a docker-archive gets the uncompressed tar anyway.
        Compression::Xz => "application/x-xz",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms() {
        assert_eq!(Platform::parse("linux/arm64/v8").unwrap().to_string(), "linux/arm64/v8");
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux/../x").is_err());
        let amd = Platform::parse("linux/amd64").unwrap();
        let index = Index {
            schema_version: 2,
            media_type: OCI_INDEX.into(),
            manifests: vec![
                Descriptor {
                    platform: Some(Platform::parse("linux/arm64/v8").unwrap()),
                    ..Descriptor::new(OCI_MANIFEST, digest::of_bytes(b"a"), 1)
                },
                Descriptor { platform: Some(amd.clone()), ..Descriptor::new(OCI_MANIFEST, digest::of_bytes(b"b"), 1) },
            ],
            annotations: BTreeMap::new(),
        };
        assert_eq!(select_platform(&index, &amd).unwrap().digest, digest::of_bytes(b"b"));
        let err = select_platform(&index, &Platform::parse("linux/s390x").unwrap()).unwrap_err();
        assert!(err.to_string().contains("linux/arm64/v8, linux/amd64"), "{err}");
    }

    #[test]
    fn parses_docker_manifests_and_rejects_schema1() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"{DOCKER_CONFIG}","digest":"{}","size":2}},"layers":[{{"mediaType":"{DOCKER_LAYER_GZIP}","digest":"{}","size":3}}]}}"#,
            digest::of_bytes(b"c"),
            digest::of_bytes(b"l")
        );
        assert!(matches!(Document::parse(m.as_bytes(), "").unwrap(), Document::Manifest(m) if m.layers.len() == 1));
        let bad = m.replace(&digest::of_bytes(b"l"), "sha256:../../x");
        assert!(Document::parse(bad.as_bytes(), "").is_err());
        let err = Document::parse(br#"{"schemaVersion":1,"fsLayers":[]}"#, "").err().unwrap();
        assert!(err.to_string().contains("schema 1"));
    }

    #[test]
    fn import_configs_are_deterministic() {
        let c = ImageConfig { cmd: vec!["sh".into()], ..ImageConfig::default() };
        let d = vec![digest::of_bytes(b"x")];
        assert_eq!(config_for_import(&c, &d), config_for_import(&c, &d));
        let parsed = ImageConfigFile::parse(&config_for_import(&c, &d)).unwrap();
        assert_eq!(parsed.run_config(), c);
        assert_eq!(parsed.rootfs.diff_ids, d);
    }

    #[test]
    fn an_images_healthcheck_is_read_as_docker_writes_it() {
        let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},
            "config":{"Cmd":["sh"],"Healthcheck":{"Test":["CMD-SHELL","wget -q -O- localhost || exit 1"],
            "Interval":5000000000,"Timeout":2000000000,"StartPeriod":0,"Retries":4}}}"#;
        let check = ImageConfigFile::parse(config).unwrap().run_config().healthcheck.unwrap();
        assert_eq!(check.command().unwrap(), ["/bin/sh", "-c", "wget -q -O- localhost || exit 1"]);
        assert_eq!((check.interval, check.timeout, check.retries), (5_000_000_000, 2_000_000_000, 4));
    }
}
