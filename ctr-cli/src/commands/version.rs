//! `ctr version`: this build of ctr, as text or through `--format`.

use crate::args::VersionArgs;
use crate::output::listing::print_each;
use anyhow::Result;

pub fn version(args: VersionArgs) -> Result<i32> {
    let client = serde_json::json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "GitCommit": env!("CTR_GIT_COMMIT"),
        "RustVersion": env!("CTR_RUSTC_VERSION"),
        "Os": std::env::consts::OS,
        "Arch": ctr_cli::seccomp::native_arch_name(),
    });
    match args.format.as_deref().map(str::trim) {
        None => {
            println!("Client: ctr");
            for (label, key) in [("Version", "Version"), ("Git commit", "GitCommit"), ("Rust", "RustVersion")] {
                println!(" {:<12}{}", format!("{label}:"), client[key].as_str().unwrap_or_default());
            }
            println!(
                " {:<12}{}/{}",
                "OS/Arch:",
                client["Os"].as_str().unwrap_or_default(),
                client["Arch"].as_str().unwrap_or_default()
            );
        }
        Some("json") => println!("{}", serde_json::json!({ "Client": client })),
        Some(template) => {
            print_each(&mut std::io::stdout().lock(), Some(template), &[serde_json::json!({ "Client": client })])?
        }
    }
    Ok(0)
}
