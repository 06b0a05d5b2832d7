//! Loads the helper's config from the path fixed at build time. The file and
//! every directory above it must be root-owned and not writable by group or
//! others (a sticky directory, like /var/tmp, is accepted above the prefix),
//! or the caller could choose the helper's settings.

use ctr_core::config::HelperConfig;
use ctr_core::protocol::HelperError;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

pub const CONFIG_PATH: &str = concat!(env!("CTR_BAKED_PREFIX"), "/etc/ctr/helper.toml");
/// What the container's first process executes: `ctr-init`, installed with
/// the helper. Never a path from the caller.
pub const INIT_BINARY: &str = concat!(env!("CTR_BAKED_PREFIX"), "/libexec/ctr/ctr-init");

const MAX_CONFIG_LEN: u64 = 64 * 1024;
const GROUP_OTHER_WRITE: u32 = 0o022;
const STICKY: u32 = 0o1000;

pub fn load() -> Result<HelperConfig, HelperError> {
    let path = Path::new(CONFIG_PATH);
    let err = |why: String| HelperError::Config(format!("{CONFIG_PATH}: {why}"));
    check_ancestors(path).map_err(err)?;
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path);
    let file = file.map_err(|e| err(format!("cannot open ({e}); run `sudo cargo xtask install` to create it")))?;
    let meta = file.metadata().map_err(|e| err(e.to_string()))?;
    if !meta.is_file() || !root_only(&meta) {
        return Err(err("must be a regular file owned by root and not writable by group or others".into()));
    }
    if meta.len() > MAX_CONFIG_LEN {
        return Err(err(format!("larger than {MAX_CONFIG_LEN} bytes")));
    }
    let mut text = String::new();
    file.take(MAX_CONFIG_LEN).read_to_string(&mut text).map_err(|e| err(e.to_string()))?;
    HelperConfig::parse(&text).map_err(|e| err(e.to_string()))
}

/// Owned by root and writable by nobody else: what the helper reads or
/// writes may be trusted only then.
pub fn root_only(meta: &std::fs::Metadata) -> bool {
    meta.uid() == 0 && meta.mode() & GROUP_OTHER_WRITE == 0
}

fn check_ancestors(path: &Path) -> Result<(), String> {
    for dir in path.ancestors().skip(1) {
        let meta = std::fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let writable_by_others = meta.mode() & GROUP_OTHER_WRITE != 0 && meta.mode() & STICKY == 0;
        if !meta.is_dir() || meta.uid() != 0 || writable_by_others {
            return Err(format!(
                "directory {} must be a real directory owned by root and not writable by group or others",
                dir.display()
            ));
        }
    }
    Ok(())
}
