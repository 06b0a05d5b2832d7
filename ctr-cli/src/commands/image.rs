//! The image verbs (`ctr images`, `ctr pull`, `ctr image ...`) over the
//! engine's image store.

use crate::args::image::{ImageCommand, LoadArgs, PullArgs, RmiArgs, SaveArgs, TagArgs, TopLevel};
use crate::output::images::print_table;
use crate::output::units::human_size;
use anyhow::{anyhow, bail, Context, Result};
use ctr_cli::image::archive::{self, LoadInput};
use ctr_cli::image::local::{containers_using, open_store};
use ctr_cli::image::oci::Platform;
use ctr_cli::image::progress::Progress;
use ctr_cli::image::registry::{self, PullOptions, RegistryError};
use ctr_cli::image::{ImageConfig, ImageRecord, ImportSource, Reference, Removal};
use ctr_cli::paths::Paths;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

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
            archive::save(&store, &images, args.format.into(), std::io::BufWriter::new(tmp.as_file()))?;
            tmp.as_file().sync_all()?;
            tmp.persist(path).with_context(|| format!("cannot write {}", path.display()))?;
        }
        _ => {
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                bail!("refusing to write an archive to a terminal: use -o FILE or redirect the output");
            }
            archive::save(&store, &images, args.format.into(), std::io::BufWriter::new(std::io::stdout().lock()))?;
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

fn list(paths: &Paths) -> Result<i32> {
    let store = open_store(paths)?;
    print_table(&store.list()?, &mut std::io::stdout().lock())?;
    Ok(0)
}
