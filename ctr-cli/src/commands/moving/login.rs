//! `ctr login` and `ctr logout`.

use crate::args::moving::LoginArgs;
use anyhow::{bail, Context, Result};
use ctr_cli::image::login;

const DOCKER_HUB: &str = "docker.io";

pub fn login(args: &LoginArgs) -> Result<i32> {
    let password = match (&args.password, args.password_stdin) {
        (Some(password), _) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            password.clone()
        }
        (None, true) => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).context("cannot read the password from standard input")?;
            line.trim_end_matches(['\n', '\r']).to_owned()
        }
        (None, false) => bail!("give the password with --password-stdin (or -p)"),
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    let server = args.server.as_deref().unwrap_or(DOCKER_HUB);
    let path = login::login(server, &args.username, &password, args.insecure)?;
    eprintln!("Credentials saved in {}", path.display());
    println!("Login Succeeded");
    Ok(0)
}

pub fn logout(server: Option<&str>) -> Result<i32> {
    let server = server.unwrap_or(DOCKER_HUB);
    if login::logout(server)? {
        println!("Removing login credentials for {server}");
    } else {
        println!("Not logged in to {server}");
    }
    Ok(0)
}
