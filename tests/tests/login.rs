//! `ctr login` and `ctr logout` (issue 14, item 4) against a local
//! docker-registry that wants a password, as the unprivileged test user
//! through the setuid helper: docker's config.json is written (0600) and
//! used by push and pull, podman's auth.json is read too, and a wrong
//! password writes nothing.

mod registry_support;

use ctr_tests::env;
use registry_support::{Registry, PASSWORD, USER};
use std::os::unix::fs::PermissionsExt;

#[test]
fn login_writes_dockers_config_and_push_uses_it_and_podmans_auth_file() {
    let Some(env) = env() else { return };
    env.ensure_alpine_image("alpine");
    let Some(registry) = Registry::with_user(&env) else { return };
    let dir = env.work.join(ctr_tests::unique_name("login"));
    for sub in ["docker", "podman"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        nix::unistd::chown(&dir.join(sub), Some(env.uid.into()), Some(env.gid.into())).unwrap();
    }
    let docker = dir.join("docker");
    let ctr = || env.ctr().env("DOCKER_CONFIG", &docker).env("REGISTRY_AUTH_FILE", dir.join("podman/auth.json"));
    let remote = format!("{}/ctrtest/{}:v1", registry.address, ctr_tests::unique_name("login"));
    env.ctr().args(["tag", "alpine", &remote]).ok();

    let anonymous = ctr().args(["push", &remote]).output();
    assert_eq!(anonymous.code(), Some(125), "{}", anonymous.stderr);
    assert!(anonymous.stderr.contains("login"), "{}", anonymous.stderr);
    let wrong = ctr().args(["login", "-u", USER, "--password-stdin", &registry.address]).stdin("wrong\n").output();
    assert_eq!(wrong.code(), Some(125), "{}", wrong.stderr);
    assert!(wrong.stderr.contains("login to"), "{}", wrong.stderr);
    assert!(!docker.join("config.json").exists(), "a failed login wrote the config");

    let ok =
        ctr().args(["login", "-u", USER, "--password-stdin", &registry.address]).stdin(format!("{PASSWORD}\n")).ok();
    assert_eq!(ok.stdout, "Login Succeeded\n");
    let config = std::fs::read_to_string(docker.join("config.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert!(json["auths"][&registry.address]["auth"].is_string(), "{config}");
    let mode = std::fs::metadata(docker.join("config.json")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    ctr().args(["push", &remote]).ok();

    assert_eq!(
        ctr().args(["logout", &registry.address]).ok().stdout,
        format!("Removing login credentials for {}\n", registry.address)
    );
    assert_eq!(ctr().args(["push", &remote]).output().code(), Some(125), "pushed after logout");

    // podman's auth.json, same layout.
    let auth = format!(
        "{{\"auths\":{{\"{}\":{{\"auth\":\"{}\"}}}}}}",
        registry.address,
        base64(&format!("{USER}:{PASSWORD}"))
    );
    std::fs::write(dir.join("podman/auth.json"), auth).unwrap();
    ctr().args(["push", &remote]).ok();
    env.ctr().args(["rmi", &remote]).ok();
    ctr().args(["pull", &remote]).ok();
    env.ctr().args(["rmi", &remote]).ok();
    let _ = std::fs::remove_dir_all(&dir);
}

fn base64(text: &str) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
