//! `ctr run` options that are kept in the container's record and read by
//! later commands (labels for `inspect`, the stop signal and timeout for
//! `stop`), and docker's file forms of `-e` and `-l`: `--env-file` and
//! `--label-file`, one `KEY=VALUE` (or `KEY`) a line, `#` comments and
//! blank lines skipped, nothing unquoted.

use crate::error::{IoContext, IoError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// An env file, label or `--cidfile` that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RunOptionsError {
    /// The message says what to change.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Io(#[from] IoError),
}

type Result<T, E = RunOptionsError> = std::result::Result<T, E>;

/// Refuses a flag with a message that says what to change.
macro_rules! invalid {
    ($($arg:tt)*) => {
        return Err(RunOptionsError::Invalid(format!($($arg)*)))
    };
}

/// What a container keeps of these flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptOptions {
    /// `-l KEY=VALUE`, `--label-file`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `--stop-signal`: what `ctr stop` sends first (default SIGTERM), as
    /// its name (`SIGTERM`).
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// `--stop-timeout`: seconds `ctr stop` waits before SIGKILL, unless
    /// `ctr stop -t` says otherwise (default 10).
    #[serde(default)]
    pub stop_timeout: Option<u64>,
    /// `--sysctl` and `--shm-size`, for `inspect`.
    #[serde(default)]
    pub sysctls: Vec<crate::tuning::Sysctl>,
    #[serde(default)]
    pub shm_size: Option<u64>,
    /// `--init`.
    #[serde(default)]
    pub init: bool,
    /// `-a/--attach` (none: docker's default for how it was made).
    #[serde(default)]
    pub attach: Option<Streams>,
    /// `--detach-keys`, as given: what `ctr attach` and `start -a` detach
    /// with unless they are given their own.
    #[serde(default)]
    pub detach_keys: Option<String>,
    /// `--device`, for `inspect`.
    #[serde(default)]
    pub devices: Vec<crate::devices::DeviceSpec>,
    /// The health check (the image's, with `--health-*` over it).
    #[serde(default)]
    pub health: Option<crate::health::HealthConfig>,
    /// `--userns keep-id`: the container's id maps are keep-id's.
    #[serde(default)]
    pub keep_id: bool,
}

/// Which of the container's standard streams a foreground `ctr run`
/// attaches to (docker's `-a/--attach STDIN|STDOUT|STDERR`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Streams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

impl Streams {
    /// Docker's default without `-a`: stdout and stderr, and stdin with -i.
    pub fn default_for(interactive: bool) -> Self {
        Self { stdin: interactive, stdout: true, stderr: true }
    }

    /// `-a` values (any case), one stream each; -i attaches stdin too, as
    /// docker's does. None without `-a`.
    pub fn parse(values: &[String], interactive: bool) -> Result<Option<Self>> {
        if values.is_empty() {
            return Ok(None);
        }
        let mut streams = Self { stdin: interactive, ..Self::default() };
        for value in values {
            match value.to_ascii_lowercase().as_str() {
                "stdin" => streams.stdin = true,
                "stdout" => streams.stdout = true,
                "stderr" => streams.stderr = true,
                _ => invalid!("-a {value:?}: the streams are STDIN, STDOUT and STDERR"),
            }
        }
        if streams.stdin && !interactive {
            invalid!("-a STDIN needs -i: without it the container's stdin is closed, as with docker");
        }
        Ok(Some(streams))
    }
}

/// The lines of an env or label file that say something, trimmed at the
/// start (as docker does), with their line numbers.
fn entries(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(n, l)| (n + 1, l.trim_start())).filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

/// `--env-file`'s entries as `-e` takes them (`KEY` alone: the caller's
/// value, if it has one).
pub fn parse_env_file(text: &str, origin: &Path) -> Result<Vec<String>> {
    let mut env = Vec::new();
    for (n, line) in entries(text) {
        let key = line.split('=').next().unwrap_or_default();
        if key.is_empty() || key.contains(char::is_whitespace) {
            invalid!("--env-file {} line {n}: {line:?} is not KEY=VALUE (a key has no spaces)", origin.display());
        }
        env.push(line.to_owned());
    }
    Ok(env)
}

/// Every `--env-file`, in order (later ones win, and `-e` over all).
pub fn read_env_files(files: &[PathBuf]) -> Result<Vec<String>> {
    let mut env = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).with_io_context(|| format!("--env-file {}", file.display()))?;
        env.extend(parse_env_file(&text, file)?);
    }
    Ok(env)
}

/// `--label-file`s then `-l`s into labels (a later key wins; `KEY` alone
/// is an empty value, as docker's).
pub fn labels(files: &[PathBuf], flags: &[String]) -> Result<BTreeMap<String, String>> {
    let mut items: Vec<(String, String)> = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).with_io_context(|| format!("--label-file {}", file.display()))?;
        items.extend(entries(&text).map(|(_, l)| (format!("--label-file {}", file.display()), l.to_owned())));
    }
    items.extend(flags.iter().map(|l| ("--label".to_owned(), l.clone())));
    let mut labels = BTreeMap::new();
    for (origin, item) in items {
        let (key, value) = item.split_once('=').unwrap_or((item.as_str(), ""));
        if key.is_empty() || key.contains(|c: char| c.is_whitespace() || c.is_control()) {
            invalid!("{origin} {item:?}: give KEY=VALUE, with a key of no spaces");
        }
        labels.insert(key.to_owned(), value.to_owned());
    }
    Ok(labels)
}

/// `--cidfile`: the container's id, in a file that must not exist yet (as
/// docker refuses, so that two containers never share one).
pub fn write_cidfile(path: &Path, id: &str) -> Result<()> {
    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(path).map_err(|e| {
            match e.kind() {
                std::io::ErrorKind::AlreadyExists => RunOptionsError::Invalid(format!(
                    "--cidfile {}: the file exists; make sure no other container uses it, and remove it",
                    path.display()
                )),
                _ => IoError::new(format!("--cidfile {}", path.display()), e).into(),
            }
        })?;
    Ok(file.write_all(id.as_bytes()).with_io_context(|| format!("--cidfile {}", path.display()))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_as_docker_reads_them() {
        let text = "# comment\n\nA=1\n  B=two words\nPASSED\nC=\"quoted\"\n";
        let env = parse_env_file(text, Path::new("f")).unwrap();
        assert_eq!(env, ["A=1", "B=two words", "PASSED", "C=\"quoted\""]);
        let err = parse_env_file("OK=1\nBAD KEY=1\n", Path::new("f")).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(parse_env_file("=novalue\n", Path::new("f")).is_err());
    }

    #[test]
    fn labels_from_files_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("labels");
        std::fs::write(&file, "# c\ntier=web\nflag\nowner=file\n").unwrap();
        let labels = labels(std::slice::from_ref(&file), &["owner=flag".into(), "a=b=c".into()]).unwrap();
        let expected: BTreeMap<String, String> =
            [("a", "b=c"), ("flag", ""), ("owner", "flag"), ("tier", "web")].map(|(k, v)| (k.into(), v.into())).into();
        assert_eq!(labels, expected);
        assert!(super::labels(&[], &["=x".into()]).is_err());
        assert!(super::labels(&[dir.path().join("missing")], &[]).is_err());
    }

    #[test]
    fn attach_streams_as_dockers() {
        let a = |values: &[&str], i: bool| Streams::parse(&values.iter().map(|v| v.to_string()).collect::<Vec<_>>(), i);
        assert_eq!(a(&[], false).unwrap(), None);
        assert_eq!(a(&["STDOUT"], false).unwrap(), Some(Streams { stdout: true, ..Streams::default() }));
        assert_eq!(a(&["stderr"], true).unwrap(), Some(Streams { stdin: true, stderr: true, stdout: false }));
        assert_eq!(a(&["stdin", "Stdout"], true).unwrap(), Some(Streams { stdin: true, stdout: true, stderr: false }));
        assert!(a(&["stdin"], false).unwrap_err().to_string().contains("-i"));
        assert!(a(&["stdio"], false).unwrap_err().to_string().contains("STDIN, STDOUT and STDERR"));
        assert_eq!(Streams::default_for(false), Streams { stdin: false, stdout: true, stderr: true });
    }

    #[test]
    fn a_cidfile_is_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cid");
        write_cidfile(&path, "abc").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "abc");
        let err = write_cidfile(&path, "def").unwrap_err().to_string();
        assert!(err.contains("exists"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "abc");
    }
}
