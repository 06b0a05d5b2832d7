//! The image commands of the CLI (`ctr images`, `ctr pull`, `ctr image ...`),
//! kept apart from main.rs so that image work grows here and in `image/`.

use crate::image::archive::{self, LoadInput, SaveFormat};
use crate::image::oci::Platform;
use crate::image::progress::Progress;
use crate::image::registry::{self, PullOptions, RegistryError};
use crate::image::userns::{IdMaps, Owners};
use crate::image::{self, human_size, ImageConfig, ImageRecord, ImportSource, Reference, Removal, Store};
use crate::paths::Paths;
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

/// Image commands that docker also has at the top level.
#[derive(Subcommand)]
pub enum TopLevel {
    /// List images (same as `ctr image ls`).
    Images,
    /// Download an image from a registry (Docker Hub unless the name says another).
    Pull(PullArgs),
    /// Load images from a `docker save` archive or an OCI image layout.
    Load(LoadArgs),
    /// Save images to a `docker save` archive or an OCI image layout tar.
    Save(SaveArgs),
    /// Remove images.
    Rmi(RmiArgs),
    /// Give an image another name: `ctr tag SOURCE TARGET[:TAG]`.
    Tag(TagArgs),
}

#[derive(Subcommand)]
pub enum ImageCommand {
    /// Import a root filesystem tarball (tar, gzip, zstd or xz; `-` for stdin) as an image.
    Import {
        /// The tarball, or `-` to read it from standard input.
        file: String,
        /// NAME[:TAG] to give the image (the tag defaults to `latest`).
        reference: String,
    },
    /// List images.
    #[command(alias = "list")]
    Ls,
    /// Download an image from a registry.
    Pull(PullArgs),
    /// Load images from a `docker save` archive or an OCI image layout.
    Load(LoadArgs),
    /// Save images to a `docker save` archive or an OCI image layout tar.
    Save(SaveArgs),
    /// Remove images.
    #[command(alias = "rmi", alias = "remove")]
    Rm(RmiArgs),
    /// Give an image another name.
    Tag(TagArgs),
    /// Show images' details as JSON.
    Inspect {
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
    },
    /// Remove untagged images that no container uses, and every layer no image uses.
    Prune {
        /// Remove every image that no container uses, tagged or not.
        #[arg(short, long)]
        all: bool,
    },
}

#[derive(Args)]
pub struct PullArgs {
    /// NAME[:TAG] or NAME@sha256:DIGEST, e.g. `alpine:3.20`, `localhost:5000/app`.
    pub reference: String,
    /// The platform of a multi-arch image (default: this machine's, e.g. linux/amd64).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Allow a registry over plain http (always allowed for localhost and 127.0.0.1).
    #[arg(long)]
    pub insecure: bool,
    /// Print only the image id.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct LoadArgs {
    /// The archive (tar, possibly compressed) or OCI layout directory; standard input if not given.
    #[arg(short, long, value_name = "FILE|DIR")]
    pub input: Option<PathBuf>,
    /// Print only the loaded images.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct SaveArgs {
    /// Write to this file (standard output if not given and it is not a terminal).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The archive's format.
    #[arg(long, value_enum, default_value_t = SaveFormat::DockerArchive)]
    pub format: SaveFormat,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Args)]
pub struct RmiArgs {
    /// Untag an image even if a container uses it, or remove all of an id's names.
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Args)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

pub fn top_level(paths: &Paths, command: TopLevel) -> Result<i32> {
    match command {
        TopLevel::Images => list(paths),
        TopLevel::Pull(args) => pull_command(paths, args),
        TopLevel::Load(args) => load(paths, args),
        TopLevel::Save(args) => save(paths, args),
        TopLevel::Rmi(args) => remove(paths, args),
        TopLevel::Tag(args) => tag(paths, args),
    }
}

pub fn image(paths: &Paths, command: ImageCommand) -> Result<i32> {
    match command {
        ImageCommand::Import { file, reference } => {
            let source = if file == "-" { ImportSource::Stdin } else { ImportSource::File(PathBuf::from(file)) };
            let record = open_store(paths)?.import(source, &reference, ImageConfig::default())?;
            println!("{}", record.id);
            Ok(0)
        }
        ImageCommand::Ls => list(paths),
        ImageCommand::Pull(args) => pull_command(paths, args),
        ImageCommand::Load(args) => load(paths, args),
        ImageCommand::Save(args) => save(paths, args),
        ImageCommand::Rm(args) => remove(paths, args),
        ImageCommand::Tag(args) => tag(paths, args),
        ImageCommand::Inspect { images } => inspect(paths, &images),
        ImageCommand::Prune { all } => {
            let removal = open_store(paths)?.prune(all, &containers_using(paths))?;
            print_removal(&removal);
            println!("Total reclaimed space: {}", human_size(removal.reclaimed));
            Ok(0)
        }
    }
}

/// The user's image store, unpacking layers with their owners where this
/// user and host allow it (`image::userns`).
fn open_store(paths: &Paths) -> Result<Store> {
    Ok(Store::open(&paths.storage)?.with_owners(Owners::detect()))
}

/// The image `ctr run` uses: found in the store, else built in, else pulled;
/// refused if its files' owners were written for other id maps than the
/// container gets.
pub fn image_for_run(paths: &Paths, reference: &str) -> Result<ImageRecord> {
    let store = open_store(paths)?;
    let image = find_or_pull(&store, paths, reference)?;
    store.check_owners(&image, &IdMaps::current(), reference)?;
    Ok(image)
}

fn find_or_pull(store: &Store, paths: &Paths, reference: &str) -> Result<ImageRecord> {
    if let Some(image) = store.lookup(reference)? {
        return Ok(image);
    }
    if let Some(image) = store.import_builtin(&paths.builtin_images(), reference.trim_end_matches(":latest"))? {
        return Ok(image);
    }
    let parsed = Reference::parse(reference)?;
    eprintln!("Unable to find image '{}' locally", parsed.familiar());
    registry::pull(store, &parsed, &PullOptions::default(), &Progress::new(true))
        .map_err(|e| not_found_locally(reference, e))
}

fn not_found_locally(reference: &str, e: anyhow::Error) -> anyhow::Error {
    match e.downcast_ref::<RegistryError>() {
        Some(RegistryError::NotFound { .. }) => {
            anyhow!("image {reference:?} not found locally and the registry said 404: check the name (or import it with `ctr image import FILE {reference}`)")
        }
        _ => anyhow!("image {reference:?} not found locally, and pulling it failed: {e:#}"),
    }
}

fn pull_command(paths: &Paths, args: PullArgs) -> Result<i32> {
    let reference = Reference::parse(&args.reference)?;
    let options =
        PullOptions { platform: args.platform.as_deref().map(Platform::parse).transpose()?, insecure: args.insecure };
    let progress = if args.quiet { Progress::quiet() } else { Progress::new(true) };
    let store = open_store(paths)?;
    let record = registry::pull(&store, &reference, &options, &progress).map_err(|e| {
        match e.downcast_ref::<RegistryError>() {
            Some(RegistryError::NotFound { .. }) => {
                anyhow!("cannot pull {}: {e}", reference.familiar())
            }
            _ => e.context(format!("cannot pull {}", reference.familiar())),
        }
    })?;
    if args.quiet {
        println!("{}", record.id);
    } else {
        progress.println(&format!("Status: Downloaded image for {}", reference.familiar()));
        println!("{}", reference.familiar());
    }
    Ok(0)
}

fn load(paths: &Paths, args: LoadArgs) -> Result<i32> {
    let store = open_store(paths)?;
    let input = match args.input {
        Some(path) if path.as_os_str() != "-" => LoadInput::Path(path),
        _ => LoadInput::Stdin,
    };
    let progress = if args.quiet { Progress::quiet() } else { Progress::new(true) };
    let loaded = archive::load(&store, input, &progress).context("cannot load the images")?;
    for image in loaded {
        if image.references.is_empty() {
            println!("Loaded image ID: {}", image.id);
        }
        for reference in image.references {
            println!("Loaded image: {reference}");
        }
    }
    Ok(0)
}

fn save(paths: &Paths, args: SaveArgs) -> Result<i32> {
    let store = open_store(paths)?;
    let mut images = Vec::new();
    for name in &args.images {
        let record = store.lookup(name)?.with_context(|| format!("no such image: {name}"))?;
        // Saved by name: that name; by id: all its names.
        let names: Vec<Reference> = match Reference::parse(name) {
            Ok(r) if r.digest.is_none() && record.references.contains(&r.familiar()) => vec![r],
            _ => record.references.iter().filter_map(|r| Reference::parse(r).ok()).collect(),
        };
        images.push((record, names));
    }
    match &args.output {
        Some(path) if path.as_os_str() != "-" => {
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
            let tmp = tempfile::Builder::new()
                .prefix(".ctr-save-")
                .tempfile_in(dir)
                .with_context(|| format!("cannot write in {}", dir.display()))?;
            archive::save(&store, &images, args.format, std::io::BufWriter::new(tmp.as_file()))?;
            tmp.as_file().sync_all()?;
            tmp.persist(path).with_context(|| format!("cannot write {}", path.display()))?;
        }
        _ => {
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                bail!("refusing to write an archive to a terminal: use -o FILE or redirect the output");
            }
            archive::save(&store, &images, args.format, std::io::BufWriter::new(std::io::stdout().lock()))?;
        }
    }
    Ok(0)
}

fn remove(paths: &Paths, args: RmiArgs) -> Result<i32> {
    let store = open_store(paths)?;
    let users = containers_using(paths);
    let mut failed = false;
    for name in &args.images {
        match store.remove(name, args.force, &users) {
            Ok(removal) => print_removal(&removal),
            Err(e) => {
                eprintln!("ctr: {e:#}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

fn print_removal(removal: &Removal) {
    for r in &removal.untagged {
        println!("Untagged: {r}");
    }
    for d in &removal.deleted {
        println!("Deleted: {d}");
    }
}

fn tag(paths: &Paths, args: TagArgs) -> Result<i32> {
    open_store(paths)?.tag(&args.source, &args.target)?;
    Ok(0)
}

fn inspect(paths: &Paths, names: &[String]) -> Result<i32> {
    let store = open_store(paths)?;
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        match store.lookup(name)? {
            Some(record) => out.push(inspect_json(&record)),
            None => missing.push(name.clone()),
        }
    }
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, &out)?;
    writeln!(stdout)?;
    if !missing.is_empty() {
        bail!("no such image: {}", missing.join(", "));
    }
    Ok(0)
}

fn inspect_json(r: &ImageRecord) -> serde_json::Value {
    let c = &r.config;
    let ports: BTreeMap<&str, serde_json::Value> =
        c.exposed_ports.iter().map(|p| (p.as_str(), serde_json::json!({}))).collect();
    let (os, arch) = r.platform.as_deref().and_then(|p| p.split_once('/')).unwrap_or(("linux", ""));
    serde_json::json!({
        "Id": r.id,
        "RepoTags": r.references,
        "RepoDigests": r.repo_digests,
        "Created": humantime::format_rfc3339_seconds(r.created).to_string(),
        "Size": r.size,
        "Os": os,
        "Architecture": arch,
        "Config": {
            "Entrypoint": (!c.entrypoint.is_empty()).then_some(&c.entrypoint),
            "Cmd": (!c.cmd.is_empty()).then_some(&c.cmd),
            "Env": c.env,
            "WorkingDir": c.working_dir.clone().unwrap_or_default(),
            "User": c.user.clone().unwrap_or_default(),
            "ExposedPorts": (!ports.is_empty()).then_some(ports),
        },
        "RootFS": { "Type": "layers", "Layers": r.diff_ids },
        "GraphDriver": { "Name": "overlay", "Data": { "LowerDir": r.lower_dirs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":") } },
    })
}

/// Which of the user's containers use an image (by id): their names.
fn containers_using(paths: &Paths) -> impl Fn(&str) -> Vec<String> {
    let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(paths.containers()) {
        for entry in entries.flatten() {
            let Ok(text) = std::fs::read(entry.path().join("state.json")) else { continue };
            let Ok(state) = serde_json::from_slice::<serde_json::Value>(&text) else { continue };
            let id = state.get("image_id").and_then(|i| i.as_str());
            let name = state.get("name").and_then(|n| n.as_str()).unwrap_or("?");
            if let Some(id) = id {
                users.entry(id.to_owned()).or_default().push(name.to_owned());
            }
        }
    }
    move |id: &str| users.get(id).cloned().unwrap_or_default()
}

fn list(paths: &Paths) -> Result<i32> {
    let store = open_store(paths)?;
    image::print_table(&store.list()?, &mut std::io::stdout().lock())?;
    Ok(0)
}
