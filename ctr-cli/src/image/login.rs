//! `ctr login` and `ctr logout`: credentials kept as the Docker client
//! keeps them, in `auths` of `$DOCKER_CONFIG/config.json` (else
//! `~/.docker/config.json`), base64 `user:password`, the file 0600. Pulls
//! and pushes read them there (or through the file's credential helpers),
//! then in podman's `auth.json` (`$REGISTRY_AUTH_FILE`,
//! `$XDG_RUNTIME_DIR/containers/auth.json`,
//! `~/.config/containers/auth.json`), which has the same `auths` layout.
//! A login is checked against the registry (`GET /v2/` with them) before
//! anything is written.

use super::reference::DEFAULT_DOMAIN;
use super::registry::{docker_config, Client, RegistryError};
use super::{ImageContext, ImageError, Reference, Result};
use base64::Engine as _;
use std::path::PathBuf;

/// The registry a user names (`docker.io`, `localhost:5000`,
/// `https://registry.example.com/`), as a reference's domain.
pub fn registry_domain(server: &str) -> Result<String> {
    let host = server.split_once("://").map_or(server, |(_, rest)| rest);
    let host = host.split('/').next().unwrap_or_default();
    if host.is_empty() || host.contains(char::is_whitespace) {
        refuse!("{server:?} is not a registry: give a host name such as registry.example.com or localhost:5000");
    }
    Ok(match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DEFAULT_DOMAIN.to_owned(),
        other => other.to_owned(),
    })
}

/// The `auths` key the Docker client uses for `domain`.
fn auths_key(domain: &str) -> String {
    if domain == DEFAULT_DOMAIN {
        "https://index.docker.io/v1/".to_owned()
    } else {
        domain.to_owned()
    }
}

/// Checks `user` and `password` against the registry, then writes them.
/// Returns the file written.
pub fn login(server: &str, user: &str, password: &str, insecure: bool) -> Result<PathBuf> {
    if user.is_empty() || user.contains(':') {
        refuse!("the user name must be given and hold no colon");
    }
    let domain = registry_domain(server)?;
    let reference = Reference::parse(&format!("{domain}/library/ctr-login-check"))?;
    let client = Client::new(&reference, insecure)?.with_credentials(user, password);
    match client.call("GET", "/v2/", &[], None, "the registry's API") {
        Ok(_) => {}
        Err(RegistryError::Denied { .. }) => {
            refuse!("login to {domain} failed: the registry refused the user name or password")
        }
        Err(e) => return Err(ImageError::Registry(e).context(format!("cannot log in to {domain}"))),
    }
    let path =
        docker_config().context("neither DOCKER_CONFIG nor HOME is set: ctr cannot tell where to keep the login")?;
    let mut config = read_config(&path)?;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let object = config.as_object_mut().with_context(|| format!("{} is not a JSON object", path.display()))?;
    let auths = object.entry("auths").or_insert_with(|| serde_json::json!({}));
    let auths = auths.as_object_mut().with_context(|| format!("`auths` in {} is not an object", path.display()))?;
    auths.insert(auths_key(&domain), serde_json::json!({ "auth": auth }));
    write_config(&path, &config)?;
    Ok(path)
}

/// Removes the credentials for `server` from the Docker client's config;
/// whether there were any.
pub fn logout(server: &str) -> Result<bool> {
    let domain = registry_domain(server)?;
    let Some(path) = docker_config() else { return Ok(false) };
    if !path.exists() {
        return Ok(false);
    }
    let mut config = read_config(&path)?;
    let key = auths_key(&domain);
    let removed = config
        .get_mut("auths")
        .and_then(|a| a.as_object_mut())
        .map(|auths| {
            let before = auths.len();
            auths.retain(|k, _| k != &key && super::registry::host_of_key(k) != domain);
            auths.len() != before
        })
        .unwrap_or(false);
    if removed {
        write_config(&path, &config)?;
    }
    Ok(removed)
}

fn read_config(path: &std::path::Path) -> Result<serde_json::Value> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| format!("{} is not valid JSON", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(serde_json::json!({})),
        Err(e) => Err(ImageError::from(e).context(format!("cannot read {}", path.display()))),
    }
}

/// Written whole, 0600, in a 0700 directory (created if missing).
fn write_config(path: &std::path::Path, config: &serde_json::Value) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = path.parent().context("the config file has no directory")?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".config.json.")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    tmp.write_all(&serde_json::to_vec_pretty(config)?)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_are_named_as_docker_names_them() {
        assert_eq!(registry_domain("docker.io").unwrap(), DEFAULT_DOMAIN);
        assert_eq!(registry_domain("https://index.docker.io/v1/").unwrap(), DEFAULT_DOMAIN);
        assert_eq!(registry_domain("localhost:5000").unwrap(), "localhost:5000");
        assert_eq!(registry_domain("http://127.0.0.1:5000/").unwrap(), "127.0.0.1:5000");
        assert!(registry_domain("").is_err());
        assert_eq!(auths_key(DEFAULT_DOMAIN), "https://index.docker.io/v1/");
    }
}
