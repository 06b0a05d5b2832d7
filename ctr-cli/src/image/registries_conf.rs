//! Where pulls and pushes go, beyond the reference itself: a subset of
//! podman's `registries.conf` (`[[registry]]` with `location`, `insecure`
//! and `[[registry.mirror]]` tables of `location` and `insecure`), and the
//! proxy of the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`, as
//! Go's clients read them).
//!
//! The file is the first of `$CTR_REGISTRIES_CONF`,
//! `$XDG_CONFIG_HOME/containers/registries.conf` (else
//! `~/.config/containers/registries.conf`) and
//! `/etc/containers/registries.conf` that exists; other keys of podman's
//! format (`unqualified-search-registries`, `prefix`, `blocked`, ...) are
//! ignored, not errors, since the file is shared with podman.
//!
//! A registry's `prefix` (else its `location`) is a host (`registry.example.com:5000`) or a
//! host and a namespace (`docker.io/library`); the longest one that
//! prefixes `domain/path` applies. Its mirrors are tried first, in order,
//! with the rest of the path after the location; the registry itself last.

use super::{ImageContext, Result};
use std::path::PathBuf;

/// One `[[registry]]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegistryConf {
    /// What references it applies to (`prefix`, else `location`).
    pub prefix: String,
    pub location: String,
    pub insecure: bool,
    pub mirrors: Vec<Endpoint>,
}

/// A place to pull from: a host[:port], and whether plain http is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// host[:port], optionally followed by a namespace.
    pub location: String,
    pub insecure: bool,
}

/// The configuration file in use, if any.
pub fn path() -> Option<PathBuf> {
    let config_home = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    let candidates = [
        std::env::var_os("CTR_REGISTRIES_CONF").map(PathBuf::from),
        config_home.map(|c| c.join("containers/registries.conf")),
        Some(PathBuf::from("/etc/containers/registries.conf")),
    ];
    candidates.into_iter().flatten().find(|p| p.is_file())
}

/// The registries of the configuration file (none without one).
pub fn load() -> Result<Vec<RegistryConf>> {
    let Some(path) = path() else { return Ok(Vec::new()) };
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&text).with_context(|| format!("invalid {}", path.display()))
}

pub fn parse(text: &str) -> Result<Vec<RegistryConf>> {
    let value: toml::Table = text.parse().map_err(|e: toml::de::Error| refused!("{}", e.message()))?;
    let Some(registries) = value.get("registry") else { return Ok(Vec::new()) };
    let registries = registries.as_array().context("`registry` must be an array of tables: [[registry]]")?;
    let endpoint = |table: &toml::Value, what: &str| -> Result<Endpoint> {
        let location = table
            .get("location")
            .or_else(|| table.get("prefix"))
            .and_then(toml::Value::as_str)
            .filter(|l| !l.is_empty() && !l.contains("://"))
            .with_context(|| format!("a {what} needs a location: a host[:port][/namespace], no scheme"))?;
        let insecure = match table.get("insecure") {
            None => false,
            Some(v) => v.as_bool().with_context(|| format!("`insecure` of {location} must be true or false"))?,
        };
        Ok(Endpoint { location: location.trim_end_matches('/').to_owned(), insecure })
    };
    registries
        .iter()
        .map(|table| {
            let main = endpoint(table, "[[registry]]")?;
            let mirrors = match table.get("mirror") {
                None => Vec::new(),
                Some(m) => m
                    .as_array()
                    .context("`mirror` must be an array of tables: [[registry.mirror]]")?
                    .iter()
                    .map(|m| endpoint(m, "[[registry.mirror]]"))
                    .collect::<Result<_>>()?,
            };
            let prefix = match table.get("prefix").and_then(toml::Value::as_str) {
                Some(p) => p.trim_end_matches('/').to_owned(),
                None => main.location.clone(),
            };
            Ok(RegistryConf { prefix, location: main.location, insecure: main.insecure, mirrors })
        })
        .collect()
}

/// Where to pull `domain/path` from, in order: the mirrors, then the
/// registry itself. Each is (host, repository path, insecure).
pub fn endpoints(configs: &[RegistryConf], domain: &str, path: &str) -> Vec<(String, String, bool)> {
    let full = format!("{domain}/{path}");
    let matches = |location: &str| full == location || full.starts_with(&format!("{location}/"));
    let Some(config) = configs.iter().filter(|c| matches(&c.prefix)).max_by_key(|c| c.prefix.len()) else {
        return vec![(domain.to_owned(), path.to_owned(), false)];
    };
    let rest = full[config.prefix.len()..].trim_start_matches('/');
    let split = |location: &str| -> (String, String) {
        let (host, namespace) = location.split_once('/').unwrap_or((location, ""));
        let repository = [namespace, rest].iter().filter(|p| !p.is_empty()).cloned().collect::<Vec<_>>().join("/");
        (host.to_owned(), repository)
    };
    let mut out: Vec<(String, String, bool)> = config
        .mirrors
        .iter()
        .map(|m| {
            let (host, repository) = split(&m.location);
            (host, repository, m.insecure)
        })
        .collect();
    let (host, repository) = split(&config.location);
    out.push((host, repository, config.insecure));
    out
}

/// The proxy for a request to `host` (host[:port]) over https or http,
/// from the environment; none for a loopback host or one `NO_PROXY` names.
pub fn proxy_for(host: &str, secure: bool, loopback: bool) -> Option<String> {
    let var = |names: [&str; 2]| names.iter().find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()));
    let proxy = if secure { var(["HTTPS_PROXY", "https_proxy"]) } else { var(["HTTP_PROXY", "http_proxy"]) }?;
    let no_proxy = var(["NO_PROXY", "no_proxy"]).unwrap_or_default();
    (!loopback && !no_proxy_matches(&no_proxy, host)).then_some(proxy)
}

/// Whether `NO_PROXY`'s list names `host`: `*`, the host itself (with or
/// without its port), or a domain it is in (`example.com` or
/// `.example.com` both cover `registry.example.com`).
pub fn no_proxy_matches(list: &str, host: &str) -> bool {
    let name =
        host.rsplit_once(':').filter(|(h, p)| !h.contains(':') && p.parse::<u16>().is_ok()).map_or(host, |(h, _)| h);
    list.split(',').map(str::trim).filter(|e| !e.is_empty()).any(|entry| {
        if entry == "*" || entry == host || entry == name {
            return true;
        }
        let domain = entry.trim_start_matches('.');
        !domain.is_empty() && name.ends_with(&format!(".{domain}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = r#"
unqualified-search-registries = ["docker.io"]

[[registry]]
location = "docker.io"
[[registry.mirror]]
location = "mirror.local:5000"
insecure = true
[[registry.mirror]]
location = "cache.example.com/hub"

[[registry]]
location = "registry.test:5000"
insecure = true

[[registry]]
location = "docker.io/team"

[[registry]]
prefix = "quay.io/old"
location = "quay.io/new"
"#;

    #[test]
    fn parses_podmans_subset_and_orders_mirrors_first() {
        let configs = parse(CONF).unwrap();
        assert_eq!(configs.len(), 4);
        assert_eq!(endpoints(&configs, "quay.io", "old/app"), [("quay.io".into(), "new/app".into(), false)]);
        assert_eq!(configs[0].mirrors.len(), 2);
        assert!(configs[0].mirrors[0].insecure && !configs[0].mirrors[1].insecure);
        assert!(configs[1].insecure);
        let hub = endpoints(&configs, "docker.io", "library/alpine");
        assert_eq!(
            hub,
            [
                ("mirror.local:5000".into(), "library/alpine".into(), true),
                ("cache.example.com".into(), "hub/library/alpine".into(), false),
                ("docker.io".into(), "library/alpine".into(), false),
            ]
        );
        // The longest location wins: docker.io/team has no mirrors.
        assert_eq!(endpoints(&configs, "docker.io", "team/app"), [("docker.io".into(), "team/app".into(), false)]);
        assert_eq!(
            endpoints(&configs, "registry.test:5000", "a/b"),
            [("registry.test:5000".into(), "a/b".into(), true)]
        );
        assert_eq!(endpoints(&configs, "other.io", "x"), [("other.io".into(), "x".into(), false)]);
        assert!(parse("[[registry]]\ninsecure = true\n").is_err());
        assert!(parse("[[registry]]\nlocation = \"https://x\"\n").is_err());
        assert!(parse("[[registry]]\nlocation = \"x\"\ninsecure = \"yes\"\n").is_err());
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn no_proxy_as_go_reads_it() {
        assert!(no_proxy_matches("*", "registry.example.com"));
        assert!(no_proxy_matches("example.com", "registry.example.com"));
        assert!(no_proxy_matches(".example.com", "registry.example.com:5000"));
        assert!(no_proxy_matches("a.io, registry.test:5000", "registry.test:5000"));
        assert!(no_proxy_matches("registry.test", "registry.test:5000"));
        assert!(!no_proxy_matches("example.com", "notexample.com"));
        assert!(!no_proxy_matches("", "x.io"));
    }
}
