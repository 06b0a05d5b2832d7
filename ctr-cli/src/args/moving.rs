//! The verbs that move files and images in and out of containers (issue
//! 14, item 4): `cp`, `commit`, `export`, `diff`, flattened into the top
//! level as docker has them.

use ctr_cli::container::copy::{CopyRequest, Location};
use ctr_cli::container::layer::{CommitRequest, ConfigChange};
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
#[command(defer = true)]
pub enum TopLevel {
    /// Copy files between a container and the host (`-` for a tar stream).
    #[command(
        after_help = "Examples:\n  ctr cp web:/etc/nginx/nginx.conf .      copy a file out of the container\n  \
ctr cp ./site web:/usr/share/nginx/     copy a directory in (as the container's root)\n  \
ctr cp web:/var/log - | tar tv           a tar stream on stdout\n\n\
Symlinks in the container resolve inside it, never to a host path; a symlink named as SRC is copied as a symlink."
    )]
    Cp(CpArgs),
    /// Make an image of a container's changes: its writable layer as a new layer over its image.
    #[command(after_help = "Examples:\n  ctr commit web myweb:v2\n  \
ctr commit --change 'CMD [\"httpd\", \"-f\"]' --change 'EXPOSE 80' web myweb\n\n\
The image's config is the container's image's, changed by each --change.")]
    Commit(CommitArgs),
    /// Write a container's whole file system as a tar archive (stdout, or -o FILE).
    Export(ExportArgs),
    /// List the files a container added (A), changed (C) or deleted (D) on its image.
    Diff { container: String },
    /// Push an image to a registry (blobs it has already are skipped).
    #[command(
        after_help = "Examples:\n  ctr tag myapp localhost:5000/myapp:v1 && ctr push localhost:5000/myapp:v1\n  \
ctr push myapp registry.example.com/team/myapp:v1     push under another name"
    )]
    Push(PushArgs),
    /// Log in to a registry: the credentials go to ~/.docker/config.json, as docker keeps them.
    #[command(after_help = "Examples:\n  echo \"$TOKEN\" | ctr login -u me --password-stdin registry.example.com")]
    Login(LoginArgs),
    /// Remove a registry's credentials from ~/.docker/config.json.
    Logout {
        /// The registry (default: Docker Hub).
        server: Option<String>,
    },
    /// List the processes of a running container (host uids and pids).
    Top { container: String },
    /// Show an image's history: what made each layer, newest first.
    History(HistoryArgs),
    /// Disk use (`system df`) and pruning everything unused (`system prune`).
    #[command(subcommand)]
    System(SystemCommand),
}

#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    /// Do not shorten the commands.
    #[arg(long)]
    pub no_trunc: bool,
    /// Print only the image id (of the entry that made it).
    #[arg(short, long)]
    pub quiet: bool,
    pub image: String,
}

#[derive(clap::Subcommand, Debug)]
#[command(defer = true)]
pub enum SystemCommand {
    /// What images, containers and volumes take on disk, and what a prune would free.
    Df,
    /// Remove stopped containers, unused networks and dangling images (-a: every unused image; --volumes: unused volumes too).
    Prune {
        /// Every image no container uses, not only dangling ones.
        #[arg(short, long)]
        all: bool,
        /// Do not ask for confirmation (needed when standard input is not a terminal).
        #[arg(short, long)]
        force: bool,
        /// Unused volumes too.
        #[arg(long)]
        volumes: bool,
    },
}

#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    #[arg(short, long)]
    pub username: String,
    /// The password (visible to other users in the process list: prefer --password-stdin).
    #[arg(short, long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from standard input (one line).
    #[arg(long)]
    pub password_stdin: bool,
    /// Allow a registry over plain http (always allowed for localhost and 127.0.0.1).
    #[arg(long)]
    pub insecure: bool,
    /// The registry (default: Docker Hub).
    pub server: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct PushArgs {
    /// The image in your store: NAME[:TAG] (its registry is where it goes) or an id.
    pub image: String,
    /// Where to push it, if not to IMAGE's own name: [REGISTRY/]NAME[:TAG].
    pub destination: Option<String>,
    /// Allow a registry over plain http (always allowed for localhost and 127.0.0.1).
    #[arg(long)]
    pub insecure: bool,
    /// Print only the pushed manifest's digest.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(clap::Args, Debug)]
pub struct CommitArgs {
    /// A Dockerfile instruction for the image's config: CMD, ENTRYPOINT,
    /// ENV, EXPOSE, LABEL, USER or WORKDIR (repeatable).
    #[arg(short, long = "change", value_name = "INSTRUCTION", value_parser = ConfigChange::parse)]
    pub changes: Vec<ConfigChange>,
    /// A comment for the image's history.
    #[arg(short, long)]
    pub message: Option<String>,
    /// The image's author.
    #[arg(short, long)]
    pub author: Option<String>,
    pub container: String,
    /// REPO[:TAG] for the new image (untagged if absent).
    pub reference: Option<String>,
}

impl CommitArgs {
    pub fn request(self) -> CommitRequest {
        CommitRequest {
            container: self.container,
            reference: self.reference,
            changes: self.changes,
            message: self.message,
            author: self.author,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Write to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    pub container: String,
}

#[derive(clap::Args, Debug)]
pub struct CpArgs {
    /// Keep the source's uid and gid (default: the copies belong to the
    /// container's root when copied in, to you when copied out).
    #[arg(short, long)]
    pub archive: bool,
    /// Follow a symlink at SRC (inside the container's root for a
    /// container's path) and copy what it points to.
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// CONTAINER:PATH, a host path, or `-` (a tar stream on stdin). A
    /// directory's path ending in `/.` copies its contents.
    #[arg(value_name = "SRC")]
    pub source: String,
    /// CONTAINER:PATH, a host path, or `-` (a tar stream on stdout).
    #[arg(value_name = "DEST")]
    pub destination: String,
}

impl CpArgs {
    pub fn request(&self) -> CopyRequest {
        CopyRequest {
            source: location(&self.source),
            destination: location(&self.destination),
            archive: self.archive,
            follow_link: self.follow_link,
        }
    }
}

/// docker's rule: `-` is a stream; a path starting with `/` or `.`, or
/// with no `:`, is the host's; otherwise `CONTAINER:PATH`.
pub fn location(arg: &str) -> Location {
    if arg == "-" {
        return Location::Stream;
    }
    match arg.split_once(':') {
        Some((container, path)) if !container.is_empty() && !arg.starts_with(['/', '.']) => {
            Location::Container { container: container.to_owned(), path: PathBuf::from(path) }
        }
        _ => Location::Host(PathBuf::from(arg)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_read_as_dockers() {
        let host = |p: &str| Location::Host(PathBuf::from(p));
        let inside = |c: &str, p: &str| Location::Container { container: c.into(), path: PathBuf::from(p) };
        assert_eq!(location("-"), Location::Stream);
        assert_eq!(location("web:/etc/hosts"), inside("web", "/etc/hosts"));
        assert_eq!(location("web:etc"), inside("web", "etc"));
        assert_eq!(location("./a:b"), host("./a:b"));
        assert_eq!(location("/tmp/a:b"), host("/tmp/a:b"));
        assert_eq!(location("file"), host("file"));
        assert_eq!(location(":x"), host(":x"));
    }
}
