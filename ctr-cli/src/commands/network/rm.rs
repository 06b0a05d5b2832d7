//! `ctr network rm NAME...`: networks of the caller's that no container is on.

use anyhow::{bail, Context, Result};
use ctr_cli::helper_client::Helper;
use ctr_core::net::NetworkName;

pub fn rm(helper: &Helper, names: &[String]) -> Result<i32> {
    let status = crate::commands::each(names, |n| {
        let name = NetworkName::parse(n).context(n.to_owned())?;
        helper.network_remove(name).context(n.to_owned())?;
        println!("{n}");
        Ok(())
    });
    if status != 0 {
        bail!("some networks were not removed");
    }
    Ok(0)
}
