//! The spec's hooks: each is a program run with its `args` (the first as
//! argv[0]) and only its `env`, the container's state JSON on stdin, and
//! killed once its `timeout` (seconds) has passed. Where they run:
//!
//! - `prestart` and `createRuntime`: by `create`, in the runtime's
//!   namespaces, once the container's namespaces, id maps and cgroup exist
//!   and before its filesystem is built (status `created`: the spec's
//!   lifecycle runs them after the environment is made, its step 2);
//! - `createContainer`: by the container's process, in its namespaces,
//!   after the mounts and before pivot_root (the path resolves as on the
//!   host);
//! - `startContainer`: by the container's process after `start`, just
//!   before the command executes (inside the container's root);
//! - `poststart`: by `start` once the command runs; `poststop`: by
//!   `delete` once the container is gone. A failure of these two is
//!   reported on stderr and does not undo the operation (the spec's rule);
//!   a failure of the others fails `create` or `start`.

use oci_spec::runtime::Hook;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The hooks kept in the state directory for `start` and `delete`.
pub const HOOKS_FILE: &str = "hooks.json";

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{kind} hook {path}: cannot run it: {source}")]
    Spawn { kind: &'static str, path: String, source: std::io::Error },
    #[error("{kind} hook {path}: killed after its timeout of {seconds}s")]
    Timeout { kind: &'static str, path: String, seconds: i64 },
    #[error("{kind} hook {path} failed ({status}){}", stderr_suffix(.stderr))]
    Failed { kind: &'static str, path: String, status: std::process::ExitStatus, stderr: String },
    #[error("{kind} hook {path}: wait: {source}")]
    Wait { kind: &'static str, path: String, source: std::io::Error },
}

fn stderr_suffix(stderr: &str) -> String {
    let text = stderr.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// Runs `hooks` in order with `state` on their stdin; stops at the first
/// failure.
pub fn run(kind: &'static str, hooks: Option<&Vec<Hook>>, state: &serde_json::Value) -> Result<(), HookError> {
    let input = state.to_string();
    hooks.into_iter().flatten().try_for_each(|hook| run_one(kind, hook, input.as_bytes()))
}

/// As [`run`], for the hooks whose failure only warrants a warning.
pub fn run_warning(kind: &'static str, hooks: Option<&Vec<Hook>>, state: &serde_json::Value) {
    if let Err(e) = run(kind, hooks, state) {
        eprintln!("ctr-oci: warning: {e}");
    }
}

fn run_one(kind: &'static str, hook: &Hook, input: &[u8]) -> Result<(), HookError> {
    let path = hook.path().display().to_string();
    let mut command = Command::new(hook.path());
    let args = hook.args().as_deref().unwrap_or_default();
    if let Some((first, rest)) = args.split_first() {
        command.arg0(first).args(rest);
    }
    command.env_clear();
    for pair in hook.env().as_deref().unwrap_or_default() {
        if let Some((key, value)) = pair.split_once('=') {
            command.env(key, value);
        }
    }
    command.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|source| HookError::Spawn { kind, path: path.clone(), source })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook need not read its input: a closed pipe is not an error.
        let _ = stdin.write_all(input);
    }
    let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    let deadline = hook.timeout().filter(|s| *s > 0).map(|s| (s, Instant::now() + Duration::from_secs(s as u64)));
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(source) => return Err(HookError::Wait { kind, path, source }),
        }
        if let Some((seconds, at)) = deadline {
            if Instant::now() > at {
                let _ = child.kill();
                let _ = child.wait();
                return Err(HookError::Timeout { kind, path, seconds });
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let stderr = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(HookError::Failed { kind, path, status, stderr });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(json: serde_json::Value) -> Vec<Hook> {
        vec![serde_json::from_value(json).unwrap()]
    }

    #[test]
    fn a_hook_reads_the_state_and_gets_its_args_and_env_only() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = format!(
            "cat > {0}.state; argv0=$(tr '\\0' '\\n' < /proc/$$/cmdline | head -n 1); \
             echo \"$argv0 $1 $GREETING ${{HOME:-nohome}}\" > {0}",
            out.display()
        );
        let hooks = hook(serde_json::json!({
            "path": "/bin/sh",
            "args": ["named-sh", "-c", script, "zero", "first"],
            "env": ["GREETING=hi"],
        }));
        run("createRuntime", Some(&hooks), &serde_json::json!({ "id": "c1" })).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "named-sh first hi nohome\n");
        assert_eq!(std::fs::read_to_string(out.with_extension("state")).unwrap(), r#"{"id":"c1"}"#);
    }

    #[test]
    fn failures_and_timeouts_are_named() {
        let failing = hook(serde_json::json!({ "path": "/bin/sh", "args": ["sh", "-c", "echo broken >&2; exit 3"] }));
        let err = run("prestart", Some(&failing), &serde_json::json!({})).unwrap_err().to_string();
        assert!(err.contains("prestart hook /bin/sh failed") && err.contains("broken"), "{err}");
        let slow = hook(serde_json::json!({ "path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1 }));
        let started = Instant::now();
        let err = run("poststart", Some(&slow), &serde_json::json!({})).unwrap_err().to_string();
        assert!(err.contains("timeout of 1s"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
        let missing = hook(serde_json::json!({ "path": "/no/such/hook" }));
        assert!(matches!(run("poststop", Some(&missing), &serde_json::json!({})), Err(HookError::Spawn { .. })));
    }
}
