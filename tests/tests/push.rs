//! `ctr push` (issue 14, item 4) against Debian's docker-registry, started
//! by the test on a free loopback port with its own storage, as the
//! unprivileged test user through the setuid helper: blobs are uploaded,
//! then skipped when the registry has them, and the image pulls back.

mod registry_support;

use ctr_tests::env;
use registry_support::Registry;

#[test]
fn push_skips_blobs_the_registry_has_and_the_image_pulls_back() {
    let Some(env) = env() else { return };
    env.ensure_alpine_image("alpine");
    let Some(registry) = Registry::start(&env) else { return };
    let name = ctr_tests::unique_name("push");
    let remote = format!("{}/ctrtest/{name}:v1", registry.address);
    env.ctr().args(["tag", "alpine", &remote]).ok();

    let first = env.ctr().args(["push", &remote]).ok();
    assert!(first.stderr.contains("Pushed"), "{}", first.stderr);
    assert!(first.stderr.contains("v1: digest: sha256:"), "{}", first.stderr);
    let second = env.ctr().args(["push", "-q", &remote]).ok();
    assert!(!second.stderr.contains("Pushed"), "pushed again: {}", second.stderr);
    let digest = second.stdout.trim().to_owned();
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{}", second.stdout);
    // Under another name in the same registry: the blobs are there already.
    let other = format!("{}/ctrtest/{name}-copy:v2", registry.address);
    let third = env.ctr().args(["push", &remote, &other]).ok();
    assert!(third.stderr.contains("v2: digest:"), "{}", third.stderr);

    env.ctr().args(["rmi", &remote]).ok();
    let pulled = env.ctr().args(["pull", &remote]).ok();
    assert!(pulled.stderr.contains(&format!("Digest: {digest}")), "{}", pulled.stderr);
    let run = env.ctr().args(["run", "--rm", "--network", "none", &remote, "echo", "pulled back"]).ok();
    assert_eq!(run.stdout, "pulled back\n");
    env.ctr().args(["rmi", &remote]).ok();

    let missing = env.ctr().args(["push", &format!("{}/ctrtest/none:v1", registry.address)]).output();
    assert_eq!(missing.code(), Some(125), "{}", missing.stderr);
    assert!(missing.stderr.contains("no such image"), "{}", missing.stderr);
}

#[test]
fn pull_goes_through_a_mirror_of_registries_conf_after_a_push() {
    let Some(env) = env() else { return };
    env.ensure_alpine_image("alpine");
    let Some(registry) = Registry::start(&env) else { return };
    let name = ctr_tests::unique_name("mirror");
    env.ctr().args(["push", "alpine", &format!("{}/ctrtest/{name}:v1", registry.address)]).ok();
    // The registry itself does not resolve: only the mirror can answer.
    let conf = env.work.join(format!("{name}.conf"));
    let text = format!(
        "unqualified-search-registries = [\"docker.io\"]\n\n[[registry]]\nlocation = \"unreachable.invalid\"\n\n\
         [[registry.mirror]]\nlocation = \"{}\"\n",
        registry.address
    );
    std::fs::write(&conf, text).unwrap();
    let remote = format!("unreachable.invalid/ctrtest/{name}:v1");
    let pulled = env.ctr().env("CTR_REGISTRIES_CONF", &conf).args(["pull", &remote]).ok();
    assert!(pulled.stderr.contains("Digest: sha256:"), "{}", pulled.stderr);
    let run = env.ctr().args(["run", "--rm", "--network", "none", &remote, "echo", "mirrored"]).ok();
    assert_eq!(run.stdout, "mirrored\n");
    env.ctr().args(["rmi", &remote]).ok();
    // Without the file, the registry is tried, and does not resolve.
    let direct = env.ctr().args(["pull", &remote]).output();
    assert_eq!(direct.code(), Some(125), "{}", direct.stderr);
    let _ = std::fs::remove_file(&conf);
}
