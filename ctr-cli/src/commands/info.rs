//! `ctr info`: what ctr found on this host.

use anyhow::Result;
use ctr_cli::paths::Paths;
use ctr_core::idmap::to_proc_format;

pub fn info(paths: &Paths) -> Result<i32> {
    let i = ctr_cli::info::gather(paths)?;
    let one_line = |map: &str| map.trim_end().replace('\n', ", ");
    println!("Kernel:            {}", i.kernel);
    println!("Cgroups:           {}", i.cgroups);
    println!("Helper:            {} ({})", i.helper.display(), i.helper_mode);
    println!(
        "User namespaces:   max_user_namespaces={} unprivileged_userns_clone={}",
        i.max_user_namespaces, i.unprivileged_userns_clone
    );
    println!("UID map:           {}", one_line(&to_proc_format(&i.uid_map)));
    println!("GID map:           {}", one_line(&to_proc_format(&i.gid_map)));
    if i.uid_map.len() == 1 {
        println!("                   (single-id map: add a range for you to /etc/subuid and /etc/subgid for more ids)");
    }
    println!("Image file owners: {}", i.image_owners);
    println!("Seccomp:           {}", i.seccomp);
    println!("Rootfs:            overlayfs in the container's user namespace (userxattr), no copy fallback");
    println!("State:             {}", i.state.display());
    println!("Storage:           {}", i.storage.display());
    println!("Built-in images:   {}", i.builtin_images.display());
    Ok(0)
}
