//! Output for scripts (issue 14, item 3), as the unprivileged test user
//! through the setuid helper: `--format` Go templates and `table`, `ps`
//! and `images` filters, `-q`, prunes that refuse to run unasked, and
//! `inspect` in docker's layout.

use ctr_tests::{env, Env};
use std::time::Duration;

fn lines(env: &Env, args: &[&str]) -> Vec<String> {
    env.ctr().args(args).ok().stdout.lines().map(str::to_owned).collect()
}

#[test]
fn ps_filters_templates_tables_and_quiet() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    let mut started = ctr_tests::Started::new(&env);
    let prefix = ctr_tests::unique_name("outps");
    let (front, back, done) = (format!("{prefix}-front"), format!("{prefix}-back"), format!("{prefix}-done"));
    let none = ["--network", "none"];
    let front_id =
        started.run_d(&front, &[&none[..], &["-l", "tier=front", "-l", "team=a", "alpine", "sleep", "60"]].concat());
    // Containers are ordered by their creation second: before/since need a second between.
    std::thread::sleep(Duration::from_millis(1100));
    started.run_d(&back, &[&none[..], &["-l", "tier=back", "alpine", "sleep", "60"]].concat());
    std::thread::sleep(Duration::from_millis(1100));
    started.run_d(&done, &[&none[..], &["alpine", "sh", "-c", "exit 3"]].concat());
    env.ctr().args(["wait", &done]).ok();

    let prefix_filter = format!("name={prefix}");
    let names = |filters: &[&str]| {
        let mut args = vec!["ps", "--format", "{{.Names}}", "--filter", prefix_filter.as_str()];
        for filter in filters {
            args.extend(["--filter", filter]);
        }
        let mut found = lines(&env, &args);
        found.sort();
        found
    };
    assert_eq!(names(&[]), [back.as_str(), front.as_str()], "running ones only");
    assert_eq!(names(&["label=tier=front"]), [front.as_str()]);
    assert_eq!(names(&["label=tier"]), [back.as_str(), front.as_str()], "label by key alone");
    assert_eq!(names(&["label=tier=front", "label=tier=back"]), [back.as_str(), front.as_str()], "one key ORs");
    assert_eq!(names(&["label=tier=front", "label=team=b"]), [front.as_str()], "label values OR");
    assert_eq!(names(&["label=tier=back", "status=running"]), [back.as_str()], "different keys AND");
    assert_eq!(names(&["status=exited"]), [done.as_str()], "a status filter looks at every container");
    assert_eq!(names(&["exited=3"]), [done.as_str()]);
    assert_eq!(names(&["exited=0"]), [""; 0]);
    assert_eq!(names(&["ancestor=alpine", "status=running"]), [back.as_str(), front.as_str()]);
    assert_eq!(names(&["ancestor=busybox"]), [""; 0]);
    assert_eq!(names(&[&format!("since={front}"), "status=running"]), [back.as_str()]);
    assert_eq!(names(&[&format!("before={back}"), "status=running"]), [front.as_str()]);
    assert_eq!(names(&[&format!("id={}", &front_id[..10])]), [front.as_str()]);
    let bad = env.ctr().args(["ps", "--filter", "colour=red"]).output();
    assert_eq!(bad.code(), Some(125), "{}", bad.stderr);
    assert!(bad.stderr.contains("colour"), "{}", bad.stderr);

    let name_filter = format!("name={front}");
    let quiet = lines(&env, &["ps", "-q", "--filter", &name_filter]);
    assert_eq!(quiet, [front_id[..12].to_owned()]);
    let template =
        lines(&env, &["ps", "--filter", &name_filter, "--format", r#"{{.ID}} {{.Label "tier"}} {{.State}}"#]);
    assert_eq!(template, [format!("{} front running", &front_id[..12])]);
    let table = lines(&env, &["ps", "--filter", &name_filter, "--format", r"table {{.Names}}\t{{.Labels}}"]);
    let header = format!("{:width$}   LABELS", "NAMES", width = front.len());
    assert_eq!(table, [header, format!("{front}   team=a,tier=front")]);
    let json = lines(&env, &["ps", "--filter", &name_filter, "--format", "json"]);
    let row: serde_json::Value = serde_json::from_str(&json[0]).unwrap();
    assert_eq!((row["ID"].as_str(), row["Names"].as_str()), (Some(&front_id[..12]), Some(front.as_str())));
    let default = lines(&env, &["ps", "--filter", &name_filter]);
    assert!(default[0].starts_with("CONTAINER ID   IMAGE "), "{default:?}");
    assert!(default[1].starts_with(&front_id[..12]) && default[1].ends_with(&front), "{default:?}");
}

#[test]
fn inspect_follows_dockers_layout() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    let mut started = ctr_tests::Started::new(&env);
    let name = ctr_tests::unique_name("outinspect");
    let volume = ctr_tests::unique_name("outvol");
    let flags = [
        "-m",
        "64m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "50",
        "-e",
        "GREETING=hi",
        "-l",
        "k=v",
        "-v",
        &format!("{volume}:/data"),
        "-p",
        "127.0.0.1:18931:80",
    ];
    let id = started.run_d(&name, &[&flags[..], &["alpine", "sleep", "60"]].concat());
    let inspect = |template: &str| env.ctr().args(["inspect", "-f", template, &name]).ok().stdout.trim().to_owned();
    assert_eq!(inspect("{{.Id}}"), id);
    assert_eq!(inspect("{{.Name}} {{.Config.Image}} {{.RestartCount}}"), format!("{name} alpine 0"));
    assert_eq!(inspect("{{.State.Status}} {{.State.Running}} {{.State.ExitCode}}"), "running true 0");
    let pid: i32 = inspect("{{.State.Pid}}").parse().unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(String::from_utf8_lossy(&cmdline).starts_with("sleep"), "{cmdline:?}");
    let started_at = inspect("{{.State.StartedAt}}");
    assert!(started_at.starts_with("20") && started_at.contains('T'), "not RFC 3339: {started_at}");
    let address: std::net::Ipv4Addr = inspect("{{.NetworkSettings.IPAddress}}").parse().unwrap();
    assert_eq!(inspect("{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"), address.to_string());
    let ports: serde_json::Value = serde_json::from_str(&inspect("{{json .NetworkSettings.Ports}}")).unwrap();
    assert_eq!(ports, serde_json::json!({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18931"}]}));
    assert!(inspect("{{.Config.Env}}").split(' ').any(|e| e.trim_matches(['[', ']']) == "GREETING=hi"));
    assert_eq!(inspect("{{.Config.Labels}} {{index .Config.Labels \"k\"}}"), "map[k:v] v");
    assert_eq!(
        inspect("{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}}{{end}}"),
        format!("volume {volume} /data")
    );
    assert_eq!(
        inspect("{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}"),
        format!("{} 500000000 50", 64 << 20)
    );
    let typo = env.ctr().args(["inspect", "-f", "{{.State.Nope}}", &name]).output();
    assert_eq!(typo.code(), Some(125), "a misspelt field is an error: {}", typo.stdout);
    let json: serde_json::Value = serde_json::from_str(&env.ctr().args(["inspect", &name]).ok().stdout).unwrap();
    assert_eq!(json[0]["State"]["Pid"], pid);
    drop(started);
    env.ctr().args(["volume", "rm", &volume]).ok();
}

#[test]
fn images_filters_quiet_and_templates() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    env.ensure_alpine_image("alpine");
    let repository = ctr_tests::unique_name("outimg");
    env.ctr().args(["tag", "alpine", &format!("{repository}:one")]).ok();
    env.ctr().args(["tag", "alpine", &format!("{repository}:two")]).ok();
    let reference = format!("reference={repository}");
    let id = env.ctr().args(["image", "inspect", "-f", "{{.Id}}", "alpine"]).ok().stdout;
    let short = id.trim().trim_start_matches("sha256:")[..12].to_owned();
    let tags = lines(&env, &["images", "--filter", &reference, "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    assert_eq!(tags, [format!("{repository}:one {short}"), format!("{repository}:two {short}")]);
    assert_eq!(lines(&env, &["images", "-q", "--filter", &reference]), [short.as_str()]);
    let pattern = format!("reference={repository}:t*");
    assert_eq!(lines(&env, &["images", "--filter", &pattern, "--format", "{{.Tag}}"]), ["two"]);
    let dangling = lines(&env, &["images", "--filter", &reference, "--filter", "dangling=true"]);
    assert_eq!(dangling.len(), 1, "only the header: {dangling:?}");
    assert!(dangling[0].starts_with("REPOSITORY   TAG "), "{dangling:?}");
    let table = lines(&env, &["images", "--filter", &reference, "--format", r"table {{.Tag}}\t{{.ID}}"]);
    assert_eq!(table[0], "TAG   IMAGE ID");
    env.ctr().args(["rmi", &format!("{repository}:one"), &format!("{repository}:two")]).ok();
}

#[test]
fn prunes_refuse_to_run_unasked_without_a_terminal() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    let volume = ctr_tests::unique_name("outprune");
    env.ctr().args(["volume", "create", &volume]).ok();
    for prune in [&["image", "prune"][..], &["container", "prune"], &["volume", "prune"], &["network", "prune"]] {
        let out = env.ctr().args(prune).stdin("y\n").output();
        assert_eq!(out.code(), Some(125), "{prune:?}: {}\n{}", out.stdout, out.stderr);
        assert!(out.stderr.contains("add -f (--force)"), "{prune:?}: {}", out.stderr);
    }
    assert!(lines(&env, &["volume", "ls", "-q"]).contains(&volume), "nothing was pruned");
    let pruned = lines(&env, &["volume", "prune", "-f"]);
    assert!(pruned.contains(&volume), "{pruned:?}");
}

#[test]
fn other_listings_and_inspects_take_templates() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    let mut started = ctr_tests::Started::new(&env);
    let name = ctr_tests::unique_name("outstats");
    started.run_d(&name, &["--network", "none", "alpine", "sleep", "60"]);
    let stats = lines(&env, &["stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", &name]);
    let pids = stats[0].strip_prefix(&format!("{name} ")).unwrap_or_else(|| panic!("{stats:?}"));
    assert!(pids.parse::<u64>().unwrap() >= 1, "{stats:?}");
    let table = lines(&env, &["stats", "--no-stream", "--format", r"table {{.Name}}\t{{.CPUPerc}}", &name]);
    assert!(table[0].starts_with("NAME") && table[0].ends_with("CPU %"), "{table:?}");

    let volume = ctr_tests::unique_name("outvol");
    env.ctr().args(["volume", "create", &volume]).ok();
    let listed = lines(&env, &["volume", "ls", "--format", "{{.Driver}}/{{.Name}}"]);
    assert!(listed.contains(&format!("local/{volume}")), "{listed:?}");
    let mountpoint = lines(&env, &["volume", "inspect", "-f", "{{.Mountpoint}}", &volume]);
    assert!(mountpoint[0].ends_with(&format!("volumes/{volume}/_data")), "{mountpoint:?}");
    env.ctr().args(["volume", "rm", &volume]).ok();

    let networks = lines(&env, &["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert!(networks.contains(&"bridge bridge".to_owned()) && networks.contains(&"none null".to_owned()));
    let subnet = lines(&env, &["network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", "bridge"]);
    assert!(subnet[0].contains('/'), "{subnet:?}");

    let info = lines(&env, &["info", "--format", "{{.OSType}} {{.ContainersRunning}}"]);
    let running: usize = info[0].strip_prefix("linux ").unwrap().parse().unwrap();
    assert!(running >= 1, "{info:?}");
    let json: serde_json::Value =
        serde_json::from_str(&env.ctr().args(["info", "--format", "json"]).ok().stdout).unwrap();
    assert!(json["KernelVersion"].as_str().unwrap().starts_with("Linux "), "{json}");
}

#[test]
fn version_completions_and_man_pages() {
    let Some(env) = env() else { return };
    let text = env.ctr().arg("version").ok().stdout;
    assert!(text.starts_with("Client: ctr\n Version:"), "{text}");
    assert!(text.contains(" Rust:       rustc "), "{text}");
    let client = env.ctr().args(["version", "--format", "{{.Client.Version}} {{.Client.Os}}/{{.Client.Arch}}"]).ok();
    let arch = if cfg!(target_arch = "x86_64") { "amd64" } else { std::env::consts::ARCH };
    assert_eq!(client.stdout.trim(), format!("{} linux/{arch}", env!("CARGO_PKG_VERSION")));
    let json: serde_json::Value = serde_json::from_str(&env.ctr().args(["version", "-f", "json"]).ok().stdout).unwrap();
    let commit = json["Client"]["GitCommit"].as_str().unwrap();
    assert!(commit == "unknown" || commit.bytes().all(|b| b.is_ascii_hexdigit()), "{json}");

    let bash = env.ctr().args(["completion", "bash"]).ok().stdout;
    assert!(bash.contains("complete -F") && bash.contains("ctr"), "{bash}");
    assert!(env.ctr().args(["completion", "zsh"]).ok().stdout.starts_with("#compdef ctr"));
    assert!(env.ctr().args(["completion", "fish"]).ok().stdout.contains("complete -c ctr"));
    assert_eq!(env.ctr().args(["completion", "tcsh"]).output().code(), Some(125));

    // What `cargo xtask install` put beneath the prefix the tests run from.
    let installed = std::fs::read_to_string(env.prefix.join("share/bash-completion/completions/ctr")).unwrap();
    assert_eq!(installed, bash);
    for file in ["share/zsh/site-functions/_ctr", "share/fish/vendor_completions.d/ctr.fish"] {
        assert!(env.prefix.join(file).is_file(), "{file} was not installed");
    }
    let man = env.prefix.join("share/man/man1");
    for page in ["ctr.1", "ctr-run.1", "ctr-ps.1", "ctr-image-ls.1", "ctr-network-create.1"] {
        let text = std::fs::read_to_string(man.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page} is no man page: {text:.200}");
    }
    let run_page = std::fs::read_to_string(man.join("ctr-run.1")).unwrap();
    assert!(run_page.contains("pids\\-limit"), "ctr-run.1 documents run's flags");
}
