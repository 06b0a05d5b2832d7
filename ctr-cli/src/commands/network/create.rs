//! `ctr network create [--subnet CIDR] NAME`.

use anyhow::Result;
use ctr_cli::helper_client::Helper;
use ctr_core::net::{Cidr, NetworkName};

pub fn create(helper: &Helper, name: &str, subnet: Option<&str>) -> Result<i32> {
    let subnet = subnet.map(Cidr::parse).transpose()?;
    let created = helper.network_create(NetworkName::parse(name)?, subnet)?;
    println!("{}", created.name);
    Ok(0)
}
