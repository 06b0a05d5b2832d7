//! `ctr info`: what ctr found on this host, as text or through `--format`.

use crate::args::InfoArgs;
use crate::output::listing::print_each;
use anyhow::Result;
use ctr_cli::info::HostInfo;
use ctr_cli::paths::Paths;
use ctr_core::idmap::to_proc_format;

pub fn info(paths: &Paths, args: InfoArgs) -> Result<i32> {
    let i = ctr_cli::info::gather(paths)?;
    let one_line = |map: &str| map.trim_end().replace('\n', ", ");
    if let Some(format) = args.format.as_deref() {
        let json = crate::output::info::info_json(paths, &i)?;
        match format.trim() {
            "json" => println!("{json}"),
            template => print_each(&mut std::io::stdout().lock(), Some(template), &[json])?,
        }
        return Ok(0);
    }
    let HostInfo { kernel, cgroups, helper, helper_mode, uid_map, gid_map, .. } = &i;
    println!("Kernel:            {kernel}");
    println!("Cgroups:           {cgroups}");
    println!("Helper:            {} ({helper_mode})", helper.display());
    println!(
        "User namespaces:   max_user_namespaces={} unprivileged_userns_clone={}",
        i.max_user_namespaces, i.unprivileged_userns_clone
    );
    println!("UID map:           {}", one_line(&to_proc_format(uid_map)));
    println!("GID map:           {}", one_line(&to_proc_format(gid_map)));
    if uid_map.len() == 1 {
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
