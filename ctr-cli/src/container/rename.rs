//! `rename`: a new name for a container, running or not. The new name is
//! reserved first (O_EXCL, as at creation), so of two renames to one name
//! exactly one wins; the old reservation goes last.

use super::record::{reserve_name, Container};
use super::{invalid, Result};
use crate::error::IoError;
use crate::paths::Paths;
use ctr_core::ids::ContainerName;

pub fn rename(paths: &Paths, key: &str, new_name: &str) -> Result<()> {
    let new_name = ContainerName::parse(new_name)?;
    let (container, _) = Container::locate(paths, key)?;
    let (_lock, mut state) = container.lock(key)?;
    if state.name == new_name.as_str() {
        invalid!("container {key} is already named {new_name}");
    }
    reserve_name(paths, &new_name, &container.id)?;
    let old_name = std::mem::replace(&mut state.name, new_name.to_string());
    if let Err(e) = container.write_state(&state) {
        let _ = std::fs::remove_file(paths.names().join(new_name.as_str()));
        return Err(e.into());
    }
    match std::fs::remove_file(paths.names().join(&old_name)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(IoError::new(format!("remove the reservation of the name {old_name}"), e).into())
        }
        _ => Ok(()),
    }
}
