//! Image references, parsed and normalised exactly like Docker's: `alpine`
//! is `docker.io/library/alpine:latest`, `user/app` is
//! `docker.io/user/app:latest`, `localhost:5000/app` names a registry, and
//! `NAME@sha256:<hex>` pins a manifest digest. The store keys references by
//! the full form and shows them in Docker's short ("familiar") form.

use super::digest;
use super::Result;
use std::fmt;

pub const DEFAULT_TAG: &str = "latest";
pub const DEFAULT_DOMAIN: &str = "docker.io";
const OFFICIAL_PREFIX: &str = "library/";
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Registry host[:port], `docker.io` by default.
    pub domain: String,
    /// Repository path inside the registry (`library/alpine`).
    pub path: String,
    /// The tag; `latest` unless a digest was given without one.
    pub tag: Option<String>,
    /// `sha256:<hex>` of a manifest.
    pub digest: Option<String>,
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference> {
        let (rest, digest) = match s.split_once('@') {
            Some((rest, digest)) => {
                if digest::hex(digest).is_err() {
                    refuse!("invalid digest in {s:?}: expected NAME@sha256:<64 lowercase hex digits>");
                }
                (rest, Some(digest.to_owned()))
            }
            None => (s, None),
        };
        let (name, tag) = split_tag(rest);
        check_name(name).map_err(|why| refused!("invalid image name in {s:?}: {why}"))?;
        if let Some(tag) = tag {
            check_tag(tag).map_err(|why| refused!("invalid tag in {s:?}: {why}"))?;
        }
        let (domain, path) = split_domain(name);
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_owned()),
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (None, Some(_)) => None,
        };
        Ok(Reference { domain, path, tag, digest })
    }

    /// Like [`Reference::parse`], for names that must be a single plain
    /// component (built-in images, which are also file names).
    pub fn parse_plain_name(s: &str) -> Result<Reference> {
        if s.contains(['/', ':', '@']) {
            refuse!("{s:?} must be a plain image name, without tag or '/'");
        }
        Reference::parse(s)
    }

    /// `docker.io/library/alpine`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// `alpine`, `user/app`, `localhost:5000/app`: what `docker images` shows.
    pub fn familiar_repository(&self) -> String {
        familiar(&self.domain, &self.path)
    }

    /// The tag or digest a registry is asked for.
    pub fn manifest_reference(&self) -> &str {
        self.digest.as_deref().or(self.tag.as_deref()).unwrap_or(DEFAULT_TAG)
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference { tag: Some(tag.to_owned()), digest: None, ..self.clone() }
    }

    /// `repository@digest`, as `RepoDigests` lists it.
    pub fn with_digest(&self, digest: &str) -> Reference {
        Reference { tag: None, digest: Some(digest.to_owned()), ..self.clone() }
    }

    /// The short form: `alpine:latest`, `localhost:5000/app@sha256:...`.
    pub fn familiar(&self) -> String {
        self.format(&self.familiar_repository())
    }

    fn format(&self, repository: &str) -> String {
        let mut s = repository.to_owned();
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            s.push('@');
            s.push_str(digest);
        }
        s
    }
}

impl fmt::Display for Reference {
    /// The normalised full form, the store's key: `docker.io/library/alpine:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format(&self.repository()))
    }
}

fn familiar(domain: &str, path: &str) -> String {
    if domain == DEFAULT_DOMAIN {
        path.strip_prefix(OFFICIAL_PREFIX).unwrap_or(path).to_owned()
    } else {
        format!("{domain}/{path}")
    }
}

/// Docker's rule: a first component with a '.' or ':', or `localhost`, names
/// a registry; otherwise the registry is Docker Hub, where single names are
/// official images under `library/`. `index.docker.io` is Docker Hub too.
fn split_domain(name: &str) -> (String, String) {
    let (domain, path) = match name.split_once('/') {
        Some((first, rest)) if looks_like_host(first) => (first, rest.to_owned()),
        _ => (DEFAULT_DOMAIN, name.to_owned()),
    };
    let domain = if domain == "index.docker.io" { DEFAULT_DOMAIN } else { domain };
    let path = if domain == DEFAULT_DOMAIN && !path.contains('/') { format!("{OFFICIAL_PREFIX}{path}") } else { path };
    (domain.to_owned(), path)
}

/// The tag follows the last ':' unless a '/' comes after it, in which case
/// that ':' belonged to a registry port (`localhost:5000/app`).
fn split_tag(s: &str) -> (&str, Option<&str>) {
    match s.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
        _ => (s, None),
    }
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("names are at most {MAX_NAME_LEN} characters"));
    }
    if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("a name may not be 64 hex digits, which would read as an image id".into());
    }
    let mut components = name.split('/').peekable();
    let first = components.next().unwrap_or_default();
    let has_more = components.peek().is_some();
    if has_more && looks_like_host(first) {
        check_host(first)?;
    } else {
        check_component(first)?;
    }
    components.try_for_each(check_component)
}

fn looks_like_host(component: &str) -> bool {
    component.contains(['.', ':']) || component == "localhost"
}

fn check_host(host: &str) -> Result<(), String> {
    let (hostname, port) = match host.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (host, None),
    };
    let label_ok = |label: &str| {
        let bytes = label.as_bytes();
        !bytes.is_empty()
            && bytes[0].is_ascii_alphanumeric()
            && bytes[bytes.len() - 1].is_ascii_alphanumeric()
            && bytes.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let hostname_ok = hostname.split('.').all(label_ok);
    let port_ok = port.into_iter().all(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    if hostname_ok && port_ok {
        Ok(())
    } else {
        Err(format!("{host:?} is not a valid registry host[:port]"))
    }
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or any number of `-`.
fn check_component(component: &str) -> Result<(), String> {
    let bad = || {
        Err(format!(
            "{component:?}: name components use lowercase letters, digits and single separators \
             ('.', '_', '__' or dashes) between them"
        ))
    };
    if component.is_empty() {
        return Err("a name has an empty component (a leading, trailing or double '/')".into());
    }
    let bytes = component.as_bytes();
    let is_alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !is_alnum(bytes[0]) || !is_alnum(bytes[bytes.len() - 1]) {
        return bad();
    }
    let mut separator = String::new();
    for &b in bytes {
        if is_alnum(b) {
            if !matches!(separator.as_str(), "" | "." | "_" | "__") && !separator.bytes().all(|s| s == b'-') {
                return bad();
            }
            separator.clear();
        } else if matches!(b, b'.' | b'_' | b'-') {
            separator.push(b as char);
        } else {
            return bad();
        }
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), String> {
    let valid_char = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
    match tag.as_bytes() {
        [] => Err("the tag after ':' is empty".into()),
        _ if tag.len() > MAX_TAG_LEN => Err(format!("tags are at most {MAX_TAG_LEN} characters")),
        [first, ..] if *first == b'.' || *first == b'-' => Err("a tag may not start with '.' or '-'".into()),
        bytes if bytes.iter().all(|&b| valid_char(b)) => Ok(()),
        _ => Err(format!("{tag:?}: tags use letters, digits, '_', '.' and '-'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normal(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    fn short(s: &str) -> String {
        Reference::parse(s).unwrap().familiar()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(normal("alpine"), "docker.io/library/alpine:latest");
        assert_eq!(normal("alpine:3.20"), "docker.io/library/alpine:3.20");
        assert_eq!(normal("library/alpine:edge"), "docker.io/library/alpine:edge");
        assert_eq!(normal("docker.io/alpine"), "docker.io/library/alpine:latest");
        assert_eq!(normal("index.docker.io/library/alpine"), "docker.io/library/alpine:latest");
        assert_eq!(normal("user/app"), "docker.io/user/app:latest");
        assert_eq!(normal("quay.io/team/app:v1"), "quay.io/team/app:v1");
        assert_eq!(short("docker.io/library/alpine:3.20"), "alpine:3.20");
        assert_eq!(short("user/app"), "user/app:latest");
        assert_eq!(short("127.0.0.1:5000/alpine:3.20"), "127.0.0.1:5000/alpine:3.20");
    }

    #[test]
    fn digests() {
        let hex = "a".repeat(64);
        let r = Reference::parse(&format!("alpine@sha256:{hex}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.manifest_reference(), format!("sha256:{hex}"));
        assert_eq!(r.to_string(), format!("docker.io/library/alpine@sha256:{hex}"));
        let both = Reference::parse(&format!("alpine:3.20@sha256:{hex}")).unwrap();
        assert_eq!(both.tag.as_deref(), Some("3.20"));
        assert_eq!(both.manifest_reference(), format!("sha256:{hex}"));
        assert!(Reference::parse("alpine@sha256:00").is_err());
        assert!(Reference::parse(&format!("alpine@md5:{hex}")).is_err());
    }

    #[test]
    fn a_port_is_not_a_tag() {
        assert_eq!(normal("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(normal("localhost/app"), "localhost/app:latest");
        assert_eq!(normal("registry.example:5000/team/app:v1"), "registry.example:5000/team/app:v1");
        let r = Reference::parse("localhost:5000/app").unwrap();
        assert_eq!((r.domain.as_str(), r.path.as_str()), ("localhost:5000", "app"));
    }

    #[test]
    fn accepts_docker_separators() {
        for ok in ["my-app", "my--app", "my_app", "my__app", "my.app", "a1/b2/c3"] {
            Reference::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            ":tag",
            "Alpine",
            "alp ine",
            "-app",
            "app-",
            "a//b",
            "/abs",
            "a/",
            "my___app",
            "a_.b",
            "app:",
            "app:.x",
            "app:-x",
            "app:a/b",
            "app@sha256:00",
            "../x",
            "./x",
            "a..b/x",
            "-h.io/x",
            "host:99999999/x",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let id_like = "a".repeat(64);
        assert!(Reference::parse(&id_like).is_err());
        assert!(Reference::parse(&"a".repeat(256)).is_err());
    }

    #[test]
    fn plain_names() {
        assert_eq!(Reference::parse_plain_name("busybox").unwrap().familiar(), "busybox:latest");
        assert!(Reference::parse_plain_name("busybox:1").is_err());
        assert!(Reference::parse_plain_name("a/b").is_err());
    }
}
