//! A docker user's session (issue 14's acceptance), typed as they would
//! type it, as the unprivileged test user through the setuid helper:
//! `run -d`, `ps` with filters and templates, `inspect` templates, `logs`,
//! `exec`, `cp` both ways, `commit`, `push` and `pull` back through a local
//! docker-registry, `rm`, volumes, networks and prune, each output checked.

mod registry_support;

use ctr_tests::{env, Started};
use registry_support::Registry;
use std::time::{Duration, Instant};

#[test]
fn docker_habits_run_ps_inspect_logs_exec_cp_commit_push_pull_rm_volumes_networks_prune() {
    let Some(env) = env() else { return };
    let mut started = Started::new(&env);
    let Some(registry) = Registry::start(&env) else { return };
    let web = ctr_tests::unique_name("habits");
    let ctr = |args: &[&str]| env.ctr().args(args).ok().stdout;

    // run -d, ps with filters and a template, inspect templates, logs.
    let id = started.run_d(&web, &["-l", "app=habits", "alpine", "sh", "-c", "echo started; exec sleep 300"]);
    let ps = ctr(&[
        "ps",
        "--filter",
        &format!("name={web}"),
        "--filter",
        "label=app=habits",
        "--format",
        "{{.Names}} {{.State}}",
    ]);
    assert_eq!(ps, format!("{web} running\n"));
    assert_eq!(ctr(&["ps", "-q", "--filter", &format!("id={}", &id[..12])]), format!("{}\n", &id[..12]));
    let inspected =
        ctr(&["inspect", "-f", r#"{{.State.Status}} {{index .Config.Labels "app"}} {{.Config.Image}}"#, &web]);
    assert_eq!(inspected, "running habits alpine\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while ctr(&["logs", &web]) != "started\n" {
        assert!(Instant::now() < deadline, "logs: {:?}", ctr(&["logs", &web]));
        std::thread::sleep(Duration::from_millis(100));
    }

    // exec, cp both ways.
    ctr(&["exec", &web, "sh", "-c", "echo hello from web > /greeting"]);
    let host_dir = env.work.join(ctr_tests::unique_name("habits-files"));
    std::fs::create_dir_all(&host_dir).unwrap();
    nix::unistd::chown(&host_dir, Some(env.uid.into()), Some(env.gid.into())).unwrap();
    let conf = host_dir.join("habit.conf");
    std::fs::write(&conf, "setting=1\n").unwrap();
    env.ctr().args(["cp", conf.to_str().unwrap(), &format!("{web}:/etc/")]).ok();
    assert_eq!(ctr(&["exec", &web, "cat", "/etc/habit.conf"]), "setting=1\n");
    env.ctr().args(["cp", &format!("{web}:/greeting"), host_dir.to_str().unwrap()]).ok();
    assert_eq!(std::fs::read_to_string(host_dir.join("greeting")).unwrap(), "hello from web\n");

    // commit, push, remove, pull back, run.
    let image = format!("{}/habits/{web}:v1", registry.address);
    let commit = ctr(&["commit", "--change", r#"CMD ["cat", "/greeting"]"#, &web, &image]);
    assert!(commit.starts_with("sha256:"), "{commit}");
    let pushed = env.ctr().args(["push", &image]).ok();
    assert!(pushed.stderr.contains("v1: digest: sha256:"), "{}", pushed.stderr);
    ctr(&["rmi", &image]);
    let images = ctr(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(!images.lines().any(|l| l == image), "{images}");
    env.ctr().args(["pull", &image]).ok();
    assert_eq!(ctr(&["run", "--rm", "--network", "none", &image]), "hello from web\n");
    ctr(&["rmi", &image]);

    // stop, rm.
    ctr(&["stop", "-t", "1", &web]);
    assert_eq!(ctr(&["ps", "-a", "--filter", &format!("name={web}"), "--format", "{{.State}}"]), "exited\n");
    assert_eq!(ctr(&["rm", &web]), format!("{web}\n"));
    started.names.clear();
    assert_eq!(ctr(&["ps", "-a", "-q", "--filter", &format!("name={web}")]), "");

    // volumes.
    let volume = ctr_tests::unique_name("habitsvol");
    assert_eq!(ctr(&["volume", "create", &volume]), format!("{volume}\n"));
    ctr(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{volume}:/data"),
        "alpine",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    assert_eq!(
        ctr(&["run", "--rm", "--network", "none", "-v", &format!("{volume}:/data"), "alpine", "cat", "/data/f"]),
        "kept\n"
    );
    assert!(ctr(&["volume", "ls", "-q"]).lines().any(|l| l == volume));
    assert_eq!(ctr(&["volume", "rm", &volume]), format!("{volume}\n"));

    // networks.
    let network = ctr_tests::unique_name("habitsnet");
    ctr(&["network", "create", &network]);
    assert!(ctr(&["network", "ls", "--format", "{{.Name}}"]).lines().any(|l| l == network));
    ctr(&["run", "--rm", "--network", &network, "alpine", "true"]);
    assert_eq!(ctr(&["network", "rm", &network]), format!("{network}\n"));

    // prune (dangling images only: what other tests use stays).
    let pruned = env.ctr().args(["image", "prune", "-f"]).ok();
    assert!(pruned.stdout.contains("Total reclaimed space"), "{}", pruned.stdout);
    let _ = std::fs::remove_dir_all(&host_dir);
}
