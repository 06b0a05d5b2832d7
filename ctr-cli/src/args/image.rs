//! The image verbs: `ctr images`, `pull`, `load`, `save`, `rmi`, `tag` at
//! the top level (as docker has them), and `ctr image ...`.

use clap::{Args, Subcommand};
use ctr_cli::image::archive::SaveFormat;
use std::path::PathBuf;

/// Image commands that docker also has at the top level.
#[derive(Subcommand)]
#[command(defer = true)]
pub enum TopLevel {
    /// List images (same as `ctr image ls`).
    Images(ImagesArgs),
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
#[command(defer = true)]
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
    Ls(ImagesArgs),
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
        /// `json` (the default), or a Go template, e.g. '{{.Id}} {{.Config.Cmd}}'.
        #[arg(short, long, value_name = "FORMAT")]
        format: Option<String>,
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
    },
    /// Remove untagged images that no container uses, and every layer no image uses.
    Prune {
        /// Remove every image that no container uses, tagged or not.
        #[arg(short, long)]
        all: bool,
        /// Do not ask for confirmation (needed when standard input is not a terminal).
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Args)]
pub struct ImagesArgs {
    /// Only print image ids (each once).
    #[arg(short, long)]
    pub quiet: bool,
    /// Accepted for docker compatibility: ctr has no intermediate images.
    #[arg(short, long)]
    pub all: bool,
    /// Only images that match: dangling=true|false, reference=PATTERN (`*`
    /// wildcards), before=/since=IMAGE, label=KEY[=VALUE] (ctr keeps no
    /// image labels, so this matches none). Repeated filters of one key
    /// match any; of different keys, all.
    #[arg(short, long = "filter", value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// `json` (one JSON object per line), `table TEMPLATE`, or a Go template.
    /// Fields: .Repository .Tag .ID .Digest .CreatedSince .CreatedAt .Size.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Show whole image ids.
    #[arg(long)]
    pub no_trunc: bool,
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
    #[arg(long, value_enum, default_value_t = SaveFormatArg::DockerArchive)]
    pub format: SaveFormatArg,
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

/// `--format` of `save`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SaveFormatArg {
    /// `docker save`'s format: manifest.json, configs, uncompressed layer.tar files.
    DockerArchive,
    /// An OCI image layout in a tar.
    Oci,
}

impl From<SaveFormatArg> for SaveFormat {
    fn from(f: SaveFormatArg) -> Self {
        match f {
            SaveFormatArg::DockerArchive => SaveFormat::DockerArchive,
            SaveFormatArg::Oci => SaveFormat::Oci,
        }
    }
}
