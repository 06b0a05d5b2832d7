//! `ctr pull`: a client of the OCI distribution API (Docker Hub by default).
//!
//! * Authentication: anonymous bearer tokens as Docker Hub hands them out,
//!   or with the credentials of `~/.docker/config.json` when it has some
//!   for the registry: from a credential helper (`credHelpers.<registry>`,
//!   else `credsStore`: `docker-credential-<name> get`, as the Docker
//!   client runs it), else from `auths.<registry>`. Credentials are only
//!   ever sent over https, or to a registry on this machine.
//! * Plain http only with `--insecure` or for a registry on a loopback
//!   address (`localhost`, `127.0.0.0/8`, `::1`), as Docker allows.
//! * A multi-arch index resolves to linux/amd64 (the host's platform) or
//!   `--platform`.
//! * Every document and blob is checked against its digest (and size)
//!   before it is used: manifests, the config, and each layer, which is
//!   unpacked as it downloads (one pass) into a temporary directory that is
//!   published only when the digests match. Layers download in parallel.
//! * The store's lock is held from the first layer to the last reference,
//!   so two pulls of one image wait for each other instead of racing; an
//!   interrupted pull leaves finished layers (which the next pull reuses)
//!   and temporaries (which the next writer removes).

use super::oci::{self, Descriptor, Document, Platform};
use super::progress::Progress;
use super::{digest, short_id, Expected, ImageRecord, Layer, Reference, Store, UnpackMode};
use super::{ImageContext, ImageError, Result};
use base64::Engine as _;
use std::collections::VecDeque;
use std::io::Read;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// Layers downloaded at once, as Docker does.
const PARALLEL_DOWNLOADS: usize = 3;
/// Attempts per layer when the connection fails.
const ATTEMPTS: u32 = 3;
const MAX_TOKEN_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    pub platform: Option<Platform>,
    /// Allow plain http (and self-signed TLS is still refused).
    pub insecure: bool,
}

/// Why a registry request failed, kept typed so callers can say what to do.
#[derive(Debug)]
pub enum RegistryError {
    NotFound { what: String },
    Denied { what: String, status: u16 },
    Other(Box<ImageError>),
}

impl std::fmt::Display for RegistryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryError::NotFound { what } => {
                write!(f, "the registry said 404 (not found) for {what}: check the name and tag")
            }
            RegistryError::Denied { what, status } => write!(
                f,
                "the registry refused access to {what} ({status}): the repository does not exist, or is private \
                 (ctr uses the credentials in ~/.docker/config.json; log in with `ctr login`)"
            ),
            RegistryError::Other(e) => write!(f, "{}", crate::error::chain(e.as_ref())),
        }
    }
}

impl std::error::Error for RegistryError {}

/// Pulls `reference` into the store and points it at the image.
pub fn pull(store: &Store, reference: &Reference, options: &PullOptions, progress: &Progress) -> Result<ImageRecord> {
    let configs = super::registries_conf::load()?;
    let endpoints = super::registries_conf::endpoints(&configs, &reference.domain, &reference.path);
    let (registry, mirrors) = endpoints.split_last().expect("the registry itself is always there");
    for (host, path, insecure) in mirrors {
        let at = Reference { domain: host.clone(), path: path.clone(), ..reference.clone() };
        let pulled = Client::new(&at, options.insecure || *insecure)
            .and_then(|client| pull_from(store, reference, &client, options, progress));
        match pulled {
            Ok(record) => return Ok(record),
            Err(e) => progress.println(&format!("mirror {host}: {}; trying the next", crate::error::chain(&e))),
        }
    }
    let (host, path, insecure) = registry;
    let at = Reference { domain: host.clone(), path: path.clone(), ..reference.clone() };
    pull_from(store, reference, &Client::new(&at, options.insecure || *insecure)?, options, progress)
}

/// The pull proper, through `client` (the registry or one of its mirrors).
fn pull_from(
    store: &Store,
    reference: &Reference,
    client: &Client,
    options: &PullOptions,
    progress: &Progress,
) -> Result<ImageRecord> {
    let platform = options.platform.clone().unwrap_or_else(Platform::host);
    let wanted = reference.manifest_reference().to_owned();
    let shown_tag = reference.tag.clone().unwrap_or_else(|| wanted.clone());
    progress.println(&format!("{shown_tag}: Pulling from {}", reference.path));

    let (top_bytes, top_type) = client.manifest(&wanted)?;
    let top_digest = digest::of_bytes(&top_bytes);
    if let Some(d) = &reference.digest {
        if *d != top_digest {
            refuse!("the registry sent a manifest whose digest is {top_digest}, not the {d} asked for: refusing it");
        }
    }
    let manifest = match Document::parse(&top_bytes, &top_type)? {
        Document::Manifest(m) => m,
        Document::Index(index) => {
            let chosen = oci::select_platform(&index, &platform)?;
            chosen.hex()?;
            let (bytes, media_type) = client.manifest(&chosen.digest)?;
            if digest::of_bytes(&bytes) != chosen.digest {
                refuse!("the registry sent a manifest that does not match its digest {}: refusing it", chosen.digest);
            }
            match Document::parse(&bytes, &media_type)? {
                Document::Manifest(m) => m,
                Document::Index(_) => {
                    refuse!("the image index points to another index: ctr does not follow nested indexes")
                }
            }
        }
    };
    let config_bytes = client.small_blob(&manifest.config)?;
    let config = oci::ImageConfigFile::parse(&config_bytes)?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        refuse!(
            "the image's config lists {} layers but its manifest {}: refusing it",
            config.rootfs.diff_ids.len(),
            manifest.layers.len()
        );
    }

    let _lock = store.lock()?;
    let layers = download_layers(store, client, &manifest.layers, &config.rootfs.diff_ids, progress)?;
    store.put_blob(&top_bytes)?;
    let repo_digest = reference.with_digest(&top_digest).to_string();
    let tags: Vec<Reference> = reference.tag.iter().map(|t| reference.with_tag(t)).collect();
    let record = store.commit_image(&config_bytes, &layers, &tags, Some(repo_digest))?;
    progress.println(&format!("Digest: {top_digest}"));
    Ok(record)
}

/// Downloads and unpacks the layers the store does not have, a few at a
/// time, in order of the manifest; returns them all, bottom first.
fn download_layers(
    store: &Store,
    client: &Client,
    descriptors: &[Descriptor],
    diff_ids: &[String],
    progress: &Progress,
) -> Result<Vec<Layer>> {
    let queue = Mutex::new((0..descriptors.len()).collect::<VecDeque<usize>>());
    let results: Mutex<Vec<Option<Result<Layer>>>> = Mutex::new((0..descriptors.len()).map(|_| None).collect());
    let failed = std::sync::atomic::AtomicBool::new(false);
    let bars: Vec<_> = descriptors
        .iter()
        .zip(diff_ids)
        .map(|(d, diff_id)| {
            let existing = store.existing_layer(diff_id, Some(d)).ok().flatten();
            let bar = progress.layer(
                short_id(&d.digest),
                Some(d.size),
                if existing.is_some() { "Exists" } else { "Waiting" },
            );
            (bar, existing)
        })
        .collect();
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL_DOWNLOADS.min(descriptors.len()) {
            scope.spawn(|| loop {
                let Some(i) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front() else { break };
                let (bar, existing) = &bars[i];
                let result = match existing {
                    Some(layer) => {
                        bar.done("Already exists");
                        Ok(layer.clone())
                    }
                    None if failed.load(std::sync::atomic::Ordering::Relaxed) => Err(refused!("cancelled")),
                    None => {
                        let r = fetch_layer(store, client, &descriptors[i], &diff_ids[i], bar);
                        match &r {
                            Ok(_) => bar.done("Pull complete"),
                            Err(e) => {
                                bar.fail(&crate::error::chain(e));
                                failed.store(true, std::sync::atomic::Ordering::Relaxed);
                            }
                        }
                        r
                    }
                };
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(result);
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut layers = Vec::with_capacity(results.len());
    let mut first_error = None;
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Some(Ok(layer)) => layers.push(layer),
            // The first real failure; "cancelled" ones only follow it.
            Some(Err(e)) if first_error.is_none() && e.to_string() != "cancelled" => {
                first_error = Some(e.context(format!("layer {} of the image", descriptors[i].digest)));
            }
            _ => {}
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(layers),
    }
}

fn fetch_layer(
    store: &Store,
    client: &Client,
    d: &Descriptor,
    diff_id: &str,
    bar: &super::progress::LayerBar,
) -> Result<Layer> {
    let expected = Expected {
        blob: Some((d.digest.clone(), d.size)),
        diff_id: Some(diff_id.to_owned()),
        media_type: Some(d.media_type.clone()),
    };
    let mut attempt = 1;
    bar.set_action("Downloading");
    loop {
        let result = client
            .blob(d)
            .map_err(ImageError::from)
            .and_then(|body| store.layer_from(bar.wrap(body), UnpackMode::Layer, &expected));
        match result {
            Err(e) if attempt < ATTEMPTS && is_transient(&e) => {
                bar.restart(&crate::error::chain(&e));
                std::thread::sleep(Duration::from_millis(500 * u64::from(attempt)));
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Whether an error looks like the network's (worth another attempt)
/// rather than the image's.
fn is_transient(e: &ImageError) -> bool {
    use std::io::ErrorKind::*;
    let network =
        matches!(e.io_kind(), Some(ConnectionReset | ConnectionAborted | TimedOut | UnexpectedEof | BrokenPipe));
    network || matches!(e.registry(), Some(RegistryError::Other(_)))
}

/// One repository of one registry.
pub(super) struct Client {
    agent: ureq::Agent,
    base: String,
    host: String,
    pub(super) repository: String,
    secure: bool,
    credentials: Option<(String, String)>,
    authorization: Mutex<Option<String>>,
    /// Asks tokens for pushing too.
    pub(super) push: Mutex<bool>,
}

impl Client {
    pub(super) fn new(reference: &Reference, insecure: bool) -> Result<Client> {
        let host = if reference.domain == super::reference::DEFAULT_DOMAIN {
            "registry-1.docker.io".to_owned()
        } else {
            reference.domain.clone()
        };
        let configs = super::registries_conf::load()?;
        let configured = super::registries_conf::endpoints(&configs, &reference.domain, &reference.path);
        let insecure = insecure || configured.last().is_some_and(|(_, _, insecure)| *insecure);
        let secure = !(insecure || is_loopback(&host));
        let scheme = if secure { "https" } else { "http" };
        let mut agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(30))
            .timeout_read(Duration::from_secs(60))
            .user_agent(concat!("ctr/", env!("CARGO_PKG_VERSION")))
            .redirects(5);
        if let Some(proxy) = super::registries_conf::proxy_for(&host, secure, is_loopback(&host)) {
            let parsed =
                ureq::Proxy::new(&proxy).map_err(|e| refused!("the proxy {proxy:?} of the environment: {e}"))?;
            agent = agent.proxy(parsed);
        }
        let agent = agent.build();
        Ok(Client {
            agent,
            base: format!("{scheme}://{host}"),
            host: host.clone(),
            repository: reference.path.clone(),
            secure,
            credentials: docker_credentials(&reference.domain),
            authorization: Mutex::new(None),
            push: Mutex::new(false),
        })
    }

    /// The same client with these credentials instead of the stored ones.
    pub(super) fn with_credentials(mut self, user: &str, password: &str) -> Client {
        self.credentials = Some((user.to_owned(), password.to_owned()));
        self
    }

    fn manifest(&self, reference: &str) -> Result<(Vec<u8>, String)> {
        let what = format!("{}/{}:{reference}", self.host, self.repository).replace(":sha256:", "@sha256:");
        let response =
            self.get(&format!("/v2/{}/manifests/{reference}", self.repository), oci::MANIFEST_ACCEPT, &what)?;
        let media_type = response.content_type().to_owned();
        Ok((read_limited(response.into_reader(), oci::MAX_JSON_BYTES, "a manifest")?, media_type))
    }

    /// A config blob, checked against its descriptor.
    fn small_blob(&self, d: &Descriptor) -> Result<Vec<u8>> {
        if d.size > oci::MAX_JSON_BYTES {
            refuse!("the image config is {} bytes, over the {} MiB limit", d.size, oci::MAX_JSON_BYTES >> 20);
        }
        let body = self.blob(d)?;
        let bytes = read_limited(body, d.size, "the image config")?;
        if bytes.len() as u64 != d.size || digest::of_bytes(&bytes) != d.digest {
            refuse!("the image config does not match its digest {}: refusing it", d.digest);
        }
        Ok(bytes)
    }

    fn blob(&self, d: &Descriptor) -> Result<Box<dyn Read + Send + Sync>, RegistryError> {
        let hex = d.hex().map_err(|e| RegistryError::Other(Box::new(e)))?;
        let what = format!("blob {}", short_id(hex));
        let response = self.get(&format!("/v2/{}/blobs/sha256:{hex}", self.repository), "*/*", &what)?;
        Ok(response.into_reader())
    }

    /// GET with the current authorization; on a 401, authenticate as the
    /// challenge says and try once more.
    fn get(&self, path: &str, accept: &str, what: &str) -> Result<ureq::Response, RegistryError> {
        self.call("GET", path, &[("Accept", accept)], None, what)
    }

    /// `method` on `path` (beneath the registry, or a full URL it gave),
    /// with the current authorization; on a 401, authenticate as the
    /// challenge says and try once more. `body` makes the body afresh for
    /// each try.
    pub(super) fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&dyn Fn() -> std::io::Result<Box<dyn Read>>>,
        what: &str,
    ) -> Result<ureq::Response, RegistryError> {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            if url_host(path) != Some(self.host.as_str()) {
                let why = refused!("the registry {} sent ctr to another host: {path}", self.host);
                return Err(RegistryError::Other(Box::new(why)));
            }
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let mut authenticated = false;
        loop {
            let mut request = self.agent.request(method, &url);
            for (k, v) in headers {
                request = request.set(k, v);
            }
            if let Some(auth) = self.authorization.lock().unwrap_or_else(|e| e.into_inner()).clone() {
                request = request.set("Authorization", &auth);
            }
            let sent = match body {
                Some(body) => match body() {
                    Ok(reader) => request.send(reader),
                    Err(e) => {
                        return Err(RegistryError::Other(Box::new(
                            ImageError::from(e).context(format!("cannot read {what}")),
                        )))
                    }
                },
                None => request.call(),
            };
            match sent {
                Ok(response) => return Ok(response),
                Err(ureq::Error::Status(401, response)) if !authenticated => {
                    let challenge = response.header("www-authenticate").unwrap_or_default().to_owned();
                    let auth = self.authenticate(&challenge).map_err(|e| RegistryError::Other(Box::new(e)))?;
                    *self.authorization.lock().unwrap_or_else(|e| e.into_inner()) = Some(auth);
                    authenticated = true;
                }
                Err(ureq::Error::Status(404, _)) => return Err(RegistryError::NotFound { what: what.to_owned() }),
                Err(ureq::Error::Status(status @ (401 | 403), _)) => {
                    return Err(RegistryError::Denied { what: what.to_owned(), status })
                }
                Err(ureq::Error::Status(status, response)) => {
                    let body = read_limited(response.into_reader(), 4096, "an error").unwrap_or_default();
                    let body = String::from_utf8_lossy(&body).trim().chars().take(300).collect::<String>();
                    return Err(RegistryError::Other(Box::new(refused!(
                        "the registry {} answered {status} for {what}: {body}",
                        self.host
                    ))));
                }
                Err(ureq::Error::Transport(t)) => {
                    let hint = if self.secure && t.to_string().contains("InvalidContentType") {
                        " (is it a plain-http registry? then use --insecure)"
                    } else {
                        ""
                    };
                    let why = refused!("cannot reach the registry at {}: {t}{hint}", self.base);
                    return Err(RegistryError::Other(Box::new(why)));
                }
            }
        }
    }

    /// The Authorization header value that answers `challenge`.
    fn authenticate(&self, challenge: &str) -> Result<String> {
        let (scheme, params) = parse_challenge(challenge).with_context(|| {
            format!("the registry {} asked for authentication in a way ctr does not know: {challenge:?}", self.host)
        })?;
        let basic = || {
            self.credentials.as_ref().map(|(user, password)| {
                format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
            })
        };
        if scheme.eq_ignore_ascii_case("basic") {
            if !self.secure && !is_loopback(&self.host) {
                refuse!("the registry {} wants a password over plain http: refusing to send it", self.host);
            }
            return basic()
                .with_context(|| format!("the registry {} needs a login: run `ctr login {}`", self.host, self.host));
        }
        let realm = params
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.clone())
            .context("a bearer challenge without a realm")?;
        let realm_secure = realm.starts_with("https://");
        if !realm_secure && !realm.starts_with("http://") {
            refuse!("the registry's token service {realm:?} is not an http(s) URL");
        }
        let mut request = self.agent.get(&realm);
        for (k, v) in &params {
            if k == "service" || k == "scope" {
                request = request.query(k, v);
            }
        }
        if !params.iter().any(|(k, _)| k == "scope") {
            let actions = if *self.push.lock().unwrap_or_else(|e| e.into_inner()) { "pull,push" } else { "pull" };
            request = request.query("scope", &format!("repository:{}:{actions}", self.repository));
        }
        let realm_local = url_host(&realm).is_some_and(is_loopback);
        if let Some(auth) = basic().filter(|_| realm_secure || realm_local) {
            request = request.set("Authorization", &auth);
        }
        let response = request.call().map_err(|e| match e {
            ureq::Error::Status(status, _) => refused!(
                "the token service {realm} refused to give a token ({status}): check your credentials in ~/.docker/config.json"
            ),
            ureq::Error::Transport(t) => refused!("cannot reach the token service {realm}: {t}"),
        })?;
        let body = read_limited(response.into_reader(), MAX_TOKEN_BYTES, "a token")?;
        let value: serde_json::Value =
            serde_json::from_slice(&body).context("the token service sent malformed JSON")?;
        let token = value
            .get("token")
            .or_else(|| value.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
            .context("the token service sent no usable token")?;
        Ok(format!("Bearer {token}"))
    }
}

fn read_limited(reader: impl Read, limit: u64, what: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.take(limit + 1).read_to_end(&mut bytes).with_context(|| format!("cannot read {what} from the registry"))?;
    if bytes.len() as u64 > limit {
        refuse!("{what} from the registry is larger than {limit} bytes: refusing it");
    }
    Ok(bytes)
}

/// `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"`.
pub fn parse_challenge(header: &str) -> Option<(String, Vec<(String, String)>)> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.is_empty() {
        return None;
    }
    let mut params = Vec::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next().map(|(_, c)| c)),
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end?..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        params.push((key, value));
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    Some((scheme.to_owned(), params))
}

pub(super) fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    Some(authority)
}

/// `localhost`, `127.x.x.x`, `::1`, with or without a port.
fn is_loopback(host: &str) -> bool {
    let name = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit())).map_or(host, |(h, _)| h)
    };
    name == "localhost" || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The Docker client's config file.
pub fn docker_config() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => Some(PathBuf::from(std::env::var_os("HOME")?).join(".docker/config.json")),
    }
}

/// podman's auth files, in the order podman reads them.
pub fn podman_auth_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(file) = std::env::var_os("REGISTRY_AUTH_FILE") {
        files.push(PathBuf::from(file));
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR") {
        files.push(PathBuf::from(dir).join("containers/auth.json"));
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    if let Some(config) = config {
        files.push(config.join("containers/auth.json"));
    }
    files
}

/// `(user, password)` for `domain` from the Docker client's config, else
/// from podman's auth files, if any.
fn docker_credentials(domain: &str) -> Option<(String, String)> {
    docker_config_credentials(domain).or_else(|| {
        podman_auth_files().iter().find_map(|path| {
            let config: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
            credentials_from(&config, domain)
        })
    })
}

fn docker_config_credentials(domain: &str) -> Option<(String, String)> {
    let path = docker_config()?;
    let text = std::fs::read(&path).ok()?;
    let config: serde_json::Value = serde_json::from_slice(&text).ok()?;
    match credential_helper(&config, domain) {
        Some(helper) => match run_credential_helper(&helper, &server_url(domain)) {
            Ok(found) => found,
            Err(e) => {
                eprintln!(
                    "ctr: warning: credential helper docker-credential-{helper}: {}; pulling without credentials",
                    crate::error::chain(&e)
                );
                None
            }
        },
        None => credentials_from(&config, domain),
    }
}

/// How the Docker client names a registry to its credential helpers.
fn server_url(domain: &str) -> String {
    if domain == super::reference::DEFAULT_DOMAIN {
        "https://index.docker.io/v1/".to_owned()
    } else {
        domain.to_owned()
    }
}

pub(super) fn host_of_key(key: &str) -> &str {
    let host = key.split_once("://").map_or(key, |(_, rest)| rest);
    host.split('/').next().unwrap_or_default()
}

fn key_matches(key: &str, domain: &str) -> bool {
    let host = host_of_key(key);
    let hub = domain == super::reference::DEFAULT_DOMAIN;
    host == domain || (hub && matches!(host, "index.docker.io" | "registry-1.docker.io" | "docker.io"))
}

/// The helper for `domain`: `credHelpers.<registry>`, else `credsStore`.
/// Only a plain name is accepted: it becomes `docker-credential-<name>`,
/// looked up in PATH, and must not be able to name a path.
fn credential_helper(config: &serde_json::Value, domain: &str) -> Option<String> {
    let per_registry = config
        .get("credHelpers")
        .and_then(|h| h.as_object())
        .and_then(|h| h.iter().find(|(key, _)| key_matches(key, domain)))
        .and_then(|(_, name)| name.as_str());
    let name = per_registry.or_else(|| config.get("credsStore").and_then(|s| s.as_str()))?;
    let plain = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    plain.then(|| name.to_owned())
}

/// `docker-credential-<helper> get`, the server URL on stdin, JSON
/// `{"Username", "Secret"}` on stdout. "credentials not found" is no
/// credentials, not an error.
fn run_credential_helper(helper: &str, server: &str) -> Result<Option<(String, String)>> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!("cannot run {program} (named in ~/.docker/config.json): is it installed and in PATH?")
        })?;
    let written = child.stdin.take().map(|mut stdin| stdin.write_all(server.as_bytes()));
    let output = child.wait_with_output().with_context(|| format!("waiting for {program}"))?;
    if !output.status.success() {
        let said =
            String::from_utf8_lossy(&output.stdout).trim().to_owned() + String::from_utf8_lossy(&output.stderr).trim();
        if said.contains("credentials not found") {
            return Ok(None);
        }
        refuse!("it failed ({}): {said}", output.status);
    }
    written.transpose().context("writing the server URL")?;
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).context("its answer is not JSON")?;
    let field = |k: &str| answer.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    match (field("Username"), field("Secret")) {
        (Some(user), Some(secret)) if !secret.is_empty() => Ok(Some((user, secret))),
        _ => Ok(None),
    }
}

fn credentials_from(config: &serde_json::Value, domain: &str) -> Option<(String, String)> {
    let auths = config.get("auths")?.as_object()?;
    let entry = auths.iter().find(|(key, _)| key_matches(key, domain))?.1;
    if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
        let decoded = base64::engine::general_purpose::STANDARD.decode(auth.trim()).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        return Some((user.to_owned(), password.to_owned()));
    }
    let user = entry.get("username")?.as_str()?;
    let password = entry.get("password")?.as_str()?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenges() {
        let (scheme, params) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
        )
        .unwrap();
        assert_eq!(scheme, "Bearer");
        assert_eq!(
            params,
            [
                ("realm".into(), "https://auth.docker.io/token".into()),
                ("service".into(), "registry.docker.io".into()),
                ("scope".into(), "repository:library/alpine:pull".into())
            ]
        );
        let (scheme, params) = parse_challenge(r#"Basic realm="x\"y", charset=UTF-8"#).unwrap();
        assert_eq!(scheme, "Basic");
        assert_eq!(params, [("realm".into(), "x\"y".into()), ("charset".into(), "UTF-8".into())]);
        assert!(parse_challenge(r#"Bearer realm="unterminated"#).is_none());
    }

    #[test]
    fn loopback_hosts() {
        for yes in ["localhost", "localhost:5000", "127.0.0.1:5000", "127.1.2.3", "[::1]:5000"] {
            assert!(is_loopback(yes), "{yes}");
        }
        for no in ["registry-1.docker.io", "10.0.0.1:5000", "localhost.evil.com", "[2001:db8::1]:5000"] {
            assert!(!is_loopback(no), "{no}");
        }
        assert_eq!(url_host("https://user@auth.docker.io:443/token?x"), Some("auth.docker.io:443"));
    }

    #[test]
    fn reads_docker_credentials() {
        let auth = base64::engine::general_purpose::STANDARD.encode("me:s3cret");
        let config = format!(
            r#"{{"auths": {{"https://index.docker.io/v1/": {{"auth": "{auth}"}}, "quay.io": {{"username": "u", "password": "p"}}}}}}"#
        );
        let config: serde_json::Value = serde_json::from_str(&config).unwrap();
        assert_eq!(credentials_from(&config, "docker.io"), Some(("me".into(), "s3cret".into())));
        assert_eq!(credentials_from(&config, "quay.io"), Some(("u".into(), "p".into())));
        assert_eq!(credentials_from(&config, "ghcr.io"), None);
        assert_eq!(credentials_from(&serde_json::json!("not an object"), "docker.io"), None);
    }

    #[test]
    fn picks_the_credential_helper_per_registry_then_the_store() {
        let config = serde_json::json!({"credsStore": "pass", "credHelpers": {"quay.io": "ecr-login", "evil.io": "../../bin/sh"}});
        assert_eq!(credential_helper(&config, "quay.io").as_deref(), Some("ecr-login"));
        assert_eq!(credential_helper(&config, "docker.io").as_deref(), Some("pass"));
        assert_eq!(credential_helper(&config, "evil.io"), None, "a path was accepted as a helper name");
        assert_eq!(credential_helper(&serde_json::json!({}), "docker.io"), None);
        assert_eq!(server_url("docker.io"), "https://index.docker.io/v1/");
    }

    /// A real helper program, speaking the Docker credential-helper protocol.
    #[test]
    fn runs_a_credential_helper() {
        let dir = tempfile::tempdir().unwrap();
        let script = "#!/bin/sh\n[ \"$1\" = get ] || exit 3\nread -r server\n\
            case \"$server\" in\n  https://index.docker.io/v1/) echo '{\"ServerURL\":\"x\",\"Username\":\"hubuser\",\"Secret\":\"tok\"}' ;;\n\
              *) echo 'credentials not found in native keychain'; exit 1 ;;\nesac\n";
        let helper = dir.path().join("docker-credential-ctrtest");
        std::fs::write(&helper, script).unwrap();
        std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let path = format!("{}:{}", dir.path().display(), std::env::var("PATH").unwrap_or_default());
        // PATH is process-wide: this is the only test in this binary that reads it for a helper.
        std::env::set_var("PATH", &path);
        let found = run_credential_helper("ctrtest", &server_url("docker.io")).unwrap();
        assert_eq!(found, Some(("hubuser".into(), "tok".into())));
        assert_eq!(run_credential_helper("ctrtest", "quay.io").unwrap(), None);
        let missing = run_credential_helper("ctr-no-such-helper", "quay.io").unwrap_err();
        assert!(crate::error::chain(&missing).contains("is it installed"), "{missing:?}");
    }

    #[test]
    fn network_errors_are_transient_and_image_errors_are_not() {
        let reset =
            ImageError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset)).context("reading".to_owned());
        assert!(is_transient(&reset));
        assert!(!is_transient(&refused!("refusing \"../x\"")));
        assert!(!is_transient(&ImageError::from(RegistryError::NotFound { what: "x".into() })));
    }
}
