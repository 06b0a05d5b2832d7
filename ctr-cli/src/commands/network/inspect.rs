//! `ctr network inspect NAME...`: networks as docker's JSON.

use anyhow::Result;
use ctr_cli::helper_client::Helper;
use ctr_cli::paths::Paths;

pub fn inspect(paths: &Paths, helper: &Helper, names: &[String], format: Option<&str>) -> Result<i32> {
    let networks = helper.network_list()?;
    let mut found = Vec::new();
    let status = crate::commands::each(names, |n| {
        let summary = networks.iter().find(|s| s.name.as_str() == n);
        let summary = summary.ok_or_else(|| anyhow::anyhow!("no network named {n:?}: see `ctr network ls`"))?;
        found.push(ctr_cli::network::inspect_json(paths, summary));
        Ok(())
    });
    crate::output::listing::print_each(&mut std::io::stdout().lock(), format, &found)?;
    Ok(status)
}
