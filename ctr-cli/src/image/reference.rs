//! Image references (`NAME[:TAG]`): parsing, validation and the normal form
//! the store keys images by, so that `alpine` and `alpine:latest` are the
//! same image. The grammar is Docker's, minus digests, so names written for
//! Docker mean the same here and a later registry client can use them as is.

use anyhow::{bail, Result};
use std::fmt;

pub const DEFAULT_TAG: &str = "latest";
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub name: String,
    pub tag: String,
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference> {
        if s.contains('@') {
            bail!("invalid image reference {s:?}: digest references (NAME@sha256:...) are not supported; use NAME[:TAG] or an image id");
        }
        let (name, tag) = split_tag(s);
        check_name(name).map_err(|why| anyhow::anyhow!("invalid image name in {s:?}: {why}"))?;
        check_tag(tag).map_err(|why| anyhow::anyhow!("invalid tag in {s:?}: {why}"))?;
        Ok(Reference { name: name.to_owned(), tag: tag.to_owned() })
    }

    /// Like [`Reference::parse`], for names that must be a single plain
    /// component (built-in images, which are also file names).
    pub fn parse_plain_name(s: &str) -> Result<Reference> {
        let reference = Reference::parse(s)?;
        if reference.name != s || s.contains('/') {
            bail!("{s:?} must be a plain image name, without tag or '/'");
        }
        Ok(reference)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

/// The tag follows the last ':' unless a '/' comes after it, in which case
/// that ':' belonged to a registry port (`localhost:5000/app`).
fn split_tag(s: &str) -> (&str, &str) {
    match s.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, tag),
        _ => (s, DEFAULT_TAG),
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

/// Docker's rule: a first component with a '.' or ':', or `localhost`,
/// names a registry rather than a path.
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
    let port_ok = port.into_iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
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

    #[test]
    fn defaults_the_tag_to_latest() {
        assert_eq!(normal("alpine"), "alpine:latest");
        assert_eq!(normal("alpine:3.20"), "alpine:3.20");
        assert_eq!(normal("library/alpine:edge"), "library/alpine:edge");
    }

    #[test]
    fn a_port_is_not_a_tag() {
        assert_eq!(normal("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(normal("registry.example:5000/team/app:v1"), "registry.example:5000/team/app:v1");
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
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let id_like = "a".repeat(64);
        assert!(Reference::parse(&id_like).is_err());
        assert!(Reference::parse(&"a".repeat(256)).is_err());
    }

    #[test]
    fn plain_names() {
        assert_eq!(Reference::parse_plain_name("busybox").unwrap().to_string(), "busybox:latest");
        assert!(Reference::parse_plain_name("busybox:1").is_err());
        assert!(Reference::parse_plain_name("a/b").is_err());
    }
}
