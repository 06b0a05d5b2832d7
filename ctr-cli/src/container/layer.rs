//! A container's writable layer as docker's verbs see it: `diff` (what
//! changed), `export` (the whole file system as a tar stream) and `commit`
//! (the layer as a new image layer on top of the container's image).
//!
//! The layer's files belong to the ids the container uses, so they are
//! read in a user namespace with the containers' maps
//! ([`crate::image::userns::container_layer`]); the container may be
//! running or stopped. `export` mounts the layer read-only over the image's
//! layers in that process's own mount namespace; nothing of the container's
//! own mounts (volumes, `/etc/hosts`) is in it, as with docker's.

use super::record::{Container, RecordError, State};
use super::tree::{Change, Copied};
use crate::error::{IoContext, IoError};
use crate::image::userns::{self, IdMaps};
use crate::image::{local, ImageError, ImageRecord, Reference, Store, UnpackMode};
use crate::paths::Paths;
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("the answer of the layer process is not understood: {0}")]
    Answer(#[from] serde_json::Error),
    /// A request ctr cannot carry out as given; the message says what to change.
    #[error("{0}")]
    Invalid(String),
}

type Result<T, E = LayerError> = std::result::Result<T, E>;

/// What a verb needs of a container.
struct Parts {
    state: State,
    upper: PathBuf,
    image: ImageRecord,
    store: Store,
    /// The container's id maps, and its image's layers as it sees them
    /// (their keep-id copies for a `--userns keep-id` container).
    maps: IdMaps,
    lower: Vec<PathBuf>,
}

fn parts(paths: &Paths, key: &str) -> Result<Parts> {
    let (container, state) = Container::locate(paths, key)?;
    let store = local::open_store(paths)?;
    let no_image = || {
        LayerError::Invalid(format!(
            "container {key} was not made from an image in your store (--rootfs, or its image was removed)"
        ))
    };
    let id = state.image_id.clone().ok_or_else(no_image)?;
    let image = store.lookup(&id)?.ok_or_else(no_image)?;
    let upper = container.layer_dir.join("upper");
    let upper = std::fs::canonicalize(&upper).with_io_context(|| format!("cannot find {}", upper.display()))?;
    let maps = IdMaps::of_container(state.options.keep_id)?;
    let lower = match state.options.keep_id {
        true => store.keep_id_layers(&image, &maps)?,
        false => image.lower_dirs.clone(),
    };
    Ok(Parts { state, upper, image, store, maps, lower })
}

/// A container's writable layer (upper directory, canonical) and its
/// image's layers, for `cp` into or out of a stopped container.
pub(crate) fn layers_of(paths: &Paths, key: &str) -> Result<(PathBuf, Vec<PathBuf>, IdMaps)> {
    let parts = parts(paths, key)?;
    Ok((parts.upper, parts.lower, parts.maps))
}

/// A work directory of the image store (`layers/.work-*`), removed when
/// dropped. Not `.tmp-*`: a writer taking the store's lock removes those
/// as left by an interrupted import, and no lock is held while a layer is
/// read. Its owner holds an exclusive flock on the directory for as long
/// as it lives, so a later command removes one whose owner was killed
/// ([`remove_stale_work_dirs`]), never one in use.
pub(crate) struct Scratch {
    dir: tempfile::TempDir,
    _lock: Flock<File>,
}

impl Scratch {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

pub(crate) fn scratch(paths: &Paths) -> Result<Scratch> {
    let layers = paths.storage.join("layers");
    remove_stale_work_dirs(&layers);
    loop {
        let dir = tempfile::Builder::new()
            .prefix(crate::image::layer_work::WORK_PREFIX)
            .tempdir_in(&layers)
            .with_io_context(|| format!("cannot create a temporary directory in {}", layers.display()))?;
        let opened = File::open(dir.path()).io_context("cannot open the temporary directory")?;
        let lock = Flock::lock(opened, FlockArg::LockExclusive)
            .map_err(|(_, e)| IoError::new("cannot lock the temporary directory".to_owned(), e))?;
        // Another ctr may have locked it first, between its creation and
        // our lock, taken it for stale and removed it: then make another.
        if same_inode(dir.path(), &lock) {
            let canonical = std::fs::canonicalize(dir.path()).io_context("cannot resolve the temporary directory")?;
            debug_assert_eq!(canonical, dir.path());
            return Ok(Scratch { dir, _lock: lock });
        }
    }
}

fn same_inode(path: &Path, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::symlink_metadata(path), file.metadata()) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

/// Removes the `.work-*` directories of `layers` whose owner is gone (a
/// commit, export or cp killed midway): those whose flock can be taken.
/// A directory that cannot be removed as the caller is renamed `.tmp-*`,
/// which the next writer of the store removes in a user namespace.
/// Failing to clean up is not a reason to fail.
pub(crate) fn remove_stale_work_dirs(layers: &Path) {
    let Ok(entries) = std::fs::read_dir(layers) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.as_encoded_bytes().starts_with(crate::image::layer_work::WORK_PREFIX.as_bytes()) {
            continue;
        }
        let path = entry.path();
        let Ok(opened) = File::open(&path) else { continue };
        let Ok(lock) = Flock::lock(opened, FlockArg::LockExclusiveNonblock) else { continue };
        if !same_inode(&path, &lock) {
            continue;
        }
        if std::fs::remove_dir_all(&path).is_err() {
            let doomed = layers.join(format!(".tmp-{}", name.to_string_lossy().trim_start_matches('.')));
            if let Err(e) = std::fs::rename(&path, &doomed) {
                eprintln!("warning: cannot remove {} left by an interrupted ctr: {e}", path.display());
            }
        }
        drop(lock);
    }
}

/// `ctr diff`: the container's changes to its image, by path.
pub fn diff(paths: &Paths, key: &str) -> Result<Vec<Change>> {
    let parts = parts(paths, key)?;
    let answer = userns::container_layer(&parts.maps, "diff", &parts.upper, &parts.lower)?;
    Ok(serde_json::from_value(answer)?)
}

/// `ctr export`: the container's whole file system as a tar stream.
pub fn export(paths: &Paths, key: &str, out: &mut dyn Write) -> Result<Copied> {
    let parts = parts(paths, key)?;
    let tmp = scratch(paths)?;
    let mut args = vec![tmp.path().to_owned()];
    args.extend(parts.lower.iter().cloned());
    let answer = userns::container_layer(&parts.maps, "export", &parts.upper, &args)?;
    let tar = tmp.path().join("rootfs.tar");
    let mut file = std::fs::File::open(&tar).with_io_context(|| format!("cannot open {}", tar.display()))?;
    std::io::copy(&mut file, out).io_context("cannot write the export")?;
    out.flush().io_context("cannot write the export")?;
    Ok(serde_json::from_value(answer)?)
}

/// One `--change`: a Dockerfile instruction that sets the image's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChange {
    Cmd(Vec<String>),
    Entrypoint(Vec<String>),
    Env(String, String),
    Expose(String),
    Label(String, String),
    User(String),
    Workdir(String),
}

impl ConfigChange {
    /// `CMD ["a","b"]` or `CMD a b` (run by /bin/sh -c, as a Dockerfile's
    /// shell form), `ENTRYPOINT` alike, `ENV K=V` or `ENV K V`, `EXPOSE
    /// 80[/tcp]`, `LABEL K=V`, `USER U`, `WORKDIR /D`.
    pub fn parse(text: &str) -> Result<ConfigChange, String> {
        let text = text.trim();
        let (word, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        let rest = rest.trim();
        let word_upper = word.to_ascii_uppercase();
        let need = |what: &str| {
            if rest.is_empty() {
                Err(format!("--change {text:?}: {word_upper} needs {what}"))
            } else {
                Ok(())
            }
        };
        let command = || -> Result<Vec<String>, String> {
            need("a command")?;
            if rest.starts_with('[') {
                serde_json::from_str(rest).map_err(|e| format!("--change {text:?}: not a JSON list of strings: {e}"))
            } else {
                Ok(vec!["/bin/sh".into(), "-c".into(), rest.into()])
            }
        };
        let pair = |sep_space: bool| -> Result<(String, String), String> {
            need("KEY=VALUE")?;
            match rest.split_once('=') {
                Some((k, v)) if !k.is_empty() && !k.contains(char::is_whitespace) => {
                    Ok((k.to_owned(), v.trim_matches('"').to_owned()))
                }
                _ if sep_space => match rest.split_once(char::is_whitespace) {
                    Some((k, v)) => Ok((k.to_owned(), v.trim().to_owned())),
                    None => Err(format!("--change {text:?}: give KEY=VALUE")),
                },
                _ => Err(format!("--change {text:?}: give KEY=VALUE")),
            }
        };
        Ok(match word_upper.as_str() {
            "CMD" => ConfigChange::Cmd(command()?),
            "ENTRYPOINT" => ConfigChange::Entrypoint(command()?),
            "ENV" => {
                let (k, v) = pair(true)?;
                ConfigChange::Env(k, v)
            }
            "LABEL" => {
                let (k, v) = pair(false)?;
                ConfigChange::Label(k, v)
            }
            "EXPOSE" => {
                need("a port")?;
                let port = if rest.contains('/') { rest.to_owned() } else { format!("{rest}/tcp") };
                let (number, proto) = port.split_once('/').expect("has a slash");
                if number.parse::<u16>().is_err() || !["tcp", "udp", "sctp"].contains(&proto) {
                    return Err(format!("--change {text:?}: give PORT[/tcp|udp|sctp]"));
                }
                ConfigChange::Expose(port)
            }
            "USER" => {
                need("a user")?;
                ConfigChange::User(rest.to_owned())
            }
            "WORKDIR" => {
                need("a directory")?;
                if !rest.starts_with('/') {
                    return Err(format!("--change {text:?}: WORKDIR must be absolute"));
                }
                ConfigChange::Workdir(rest.to_owned())
            }
            _ => {
                return Err(format!(
                    "--change {text:?}: ctr commit takes CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER and WORKDIR"
                ))
            }
        })
    }

    /// Applies the change to an image config file's `config` object.
    fn apply(&self, config: &mut serde_json::Map<String, serde_json::Value>) {
        use serde_json::{json, Value};
        let object = |config: &mut serde_json::Map<String, Value>, key: &str| -> serde_json::Map<String, Value> {
            config.get(key).and_then(Value::as_object).cloned().unwrap_or_default()
        };
        match self {
            ConfigChange::Cmd(cmd) => {
                config.insert("Cmd".into(), json!(cmd));
            }
            ConfigChange::Entrypoint(entrypoint) => {
                config.insert("Entrypoint".into(), json!(entrypoint));
            }
            ConfigChange::Env(key, value) => {
                let mut env: Vec<String> = config
                    .get("Env")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_default();
                env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
                env.push(format!("{key}={value}"));
                config.insert("Env".into(), json!(env));
            }
            ConfigChange::Expose(port) => {
                let mut ports = object(config, "ExposedPorts");
                ports.insert(port.clone(), json!({}));
                config.insert("ExposedPorts".into(), Value::Object(ports));
            }
            ConfigChange::Label(key, value) => {
                let mut labels = object(config, "Labels");
                labels.insert(key.clone(), json!(value));
                config.insert("Labels".into(), Value::Object(labels));
            }
            ConfigChange::User(user) => {
                config.insert("User".into(), json!(user));
            }
            ConfigChange::Workdir(dir) => {
                config.insert("WorkingDir".into(), json!(dir));
            }
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    pub container: String,
    /// `REPO[:TAG]`; none leaves the image untagged (its id only).
    pub reference: Option<String>,
    pub changes: Vec<ConfigChange>,
    /// `-m`: the history entry's comment.
    pub message: Option<String>,
    /// `-a`: the image's author.
    pub author: Option<String>,
}

/// `ctr commit`: the container's writable layer (whiteouts included) as a
/// new layer over its image's, with the image's config changed by
/// `--change`. Returns the new image.
pub fn commit(paths: &Paths, request: &CommitRequest) -> Result<ImageRecord> {
    let references = match &request.reference {
        Some(r) => vec![Reference::parse(r)?],
        None => Vec::new(),
    };
    let parts = parts(paths, &request.container)?;
    let tmp = scratch(paths)?;
    userns::container_layer(&parts.maps, "layer", &parts.upper, &[tmp.path().to_owned()])?;
    let store = &parts.store;
    let _lock = store.lock()?;
    let mut layers = Vec::new();
    for diff_id in &parts.image.diff_ids {
        let layer = store.existing_layer(diff_id, None)?.ok_or_else(|| {
            LayerError::Invalid(format!("the layer {diff_id} of the container's image has no archive in the store"))
        })?;
        layers.push(layer);
    }
    let tar = tmp.path().join("layer.tar");
    let file = std::fs::File::open(&tar).with_io_context(|| format!("cannot open {}", tar.display()))?;
    let layer = store.layer_from(file, UnpackMode::Layer, &Default::default())?;
    let (_, base_config) = store.image_file(&parts.image.id)?;
    let base_config =
        base_config.ok_or_else(|| LayerError::Invalid("the container's image has no config blob".into()))?;
    let config = new_config(&base_config, &layer.diff_id, request, &parts.state)?;
    layers.push(layer);
    Ok(store.commit_image(&config, &layers, &references, None)?)
}

/// The base image's config file with one more layer, its history, and
/// the changes.
fn new_config(base: &[u8], diff_id: &str, request: &CommitRequest, state: &State) -> Result<Vec<u8>> {
    use serde_json::{json, Value};
    let mut config: Value = serde_json::from_slice(base)?;
    let file = config.as_object_mut().ok_or_else(|| LayerError::Invalid("the image config is not an object".into()))?;
    let now = crate::units::now_rfc3339();
    file.insert("created".into(), json!(now));
    if let Some(author) = &request.author {
        file.insert("author".into(), json!(author));
    }
    let rootfs = file.entry("rootfs").or_insert_with(|| json!({ "type": "layers", "diff_ids": [] }));
    match rootfs.get_mut("diff_ids").and_then(Value::as_array_mut) {
        Some(ids) => ids.push(json!(diff_id)),
        None => return Err(LayerError::Invalid("the image config has no rootfs.diff_ids".into())),
    }
    let mut entry = json!({ "created": now, "created_by": format!("ctr commit {}", state.name) });
    if let Some(message) = &request.message {
        entry["comment"] = json!(message);
    }
    match file.get_mut("history").and_then(Value::as_array_mut) {
        Some(history) => history.push(entry),
        None => {
            file.insert("history".into(), json!([entry]));
        }
    }
    let inner = file.entry("config").or_insert_with(|| json!({}));
    if let Some(inner) = inner.as_object_mut() {
        for change in &request.changes {
            change.apply(inner);
        }
    }
    Ok(serde_json::to_vec(&config)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_parse_as_dockerfile_instructions() {
        let cmd = |s: &[&str]| s.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        assert_eq!(ConfigChange::parse(r#"CMD ["sleep", "1"]"#), Ok(ConfigChange::Cmd(cmd(&["sleep", "1"]))));
        assert_eq!(ConfigChange::parse("cmd echo hi"), Ok(ConfigChange::Cmd(cmd(&["/bin/sh", "-c", "echo hi"]))));
        assert_eq!(ConfigChange::parse("ENV A=b c"), Ok(ConfigChange::Env("A".into(), "b c".into())));
        assert_eq!(ConfigChange::parse("ENV A b"), Ok(ConfigChange::Env("A".into(), "b".into())));
        assert_eq!(ConfigChange::parse("EXPOSE 80"), Ok(ConfigChange::Expose("80/tcp".into())));
        assert_eq!(ConfigChange::parse("EXPOSE 53/udp"), Ok(ConfigChange::Expose("53/udp".into())));
        assert_eq!(ConfigChange::parse("LABEL a=b"), Ok(ConfigChange::Label("a".into(), "b".into())));
        assert_eq!(ConfigChange::parse("USER 1000:1000"), Ok(ConfigChange::User("1000:1000".into())));
        assert_eq!(ConfigChange::parse("WORKDIR /srv"), Ok(ConfigChange::Workdir("/srv".into())));
        for bad in ["RUN ls", "CMD", "EXPOSE http", "WORKDIR srv", "LABEL nolabel", "CMD [1, 2]"] {
            assert!(ConfigChange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_commit_adds_a_layer_history_and_the_changes() {
        let base = br#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin","A=1"],"Cmd":["sh"]},
            "rootfs":{"type":"layers","diff_ids":["sha256:aa"]},"history":[{"created_by":"import"}]}"#;
        let request = CommitRequest {
            changes: ["ENV A=2", "CMD [\"true\"]", "EXPOSE 80", "LABEL x=y", "USER nobody", "WORKDIR /w"]
                .iter()
                .map(|c| ConfigChange::parse(c).unwrap())
                .collect(),
            message: Some("why".into()),
            ..Default::default()
        };
        let state = State { name: "web".into(), ..Default::default() };
        let config: serde_json::Value =
            serde_json::from_slice(&new_config(base, "sha256:bb", &request, &state).unwrap()).unwrap();
        assert_eq!(config["rootfs"]["diff_ids"], serde_json::json!(["sha256:aa", "sha256:bb"]));
        assert_eq!(config["history"][1]["created_by"], "ctr commit web");
        assert_eq!(config["history"][1]["comment"], "why");
        let inner = &config["config"];
        assert_eq!(inner["Env"], serde_json::json!(["PATH=/bin", "A=2"]));
        assert_eq!(inner["Cmd"], serde_json::json!(["true"]));
        assert_eq!(inner["ExposedPorts"], serde_json::json!({"80/tcp": {}}));
        assert_eq!(inner["Labels"], serde_json::json!({"x": "y"}));
        assert_eq!((inner["User"].as_str(), inner["WorkingDir"].as_str()), (Some("nobody"), Some("/w")));
    }
}
