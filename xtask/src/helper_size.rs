//! `cargo xtask helper-size`: how much code runs as root through the setuid
//! helper, counted the same way at any commit, so that issue 10's bound (no
//! more than when the issue was filed) can be checked and cited.
//!
//! A line counts if it is not blank and not a `//` comment, and is not in an
//! item under `#[cfg(test)]` or in a `tests/` directory. Privileged code is
//! the helper crate's `src/` plus the modules of ctr-core made since the
//! filing that the helper runs (its cgroup manager, moved out of the helper,
//! the whole-file writer and the liveness key). ctr-core and ctr-net, which
//! the helper links and calls, are shown whole beside it for context.

use anyhow::{Context, Result};
use std::process::Command;

/// The commit issue 10 was filed against.
pub const FILED: &str = "22161d6";
const PRIVILEGED: [&str; 4] =
    ["ctr-setuid-helper/src", "ctr-core/src/cgroup.rs", "ctr-core/src/fs.rs", "ctr-core/src/liveness.rs"];
const LIBRARIES: [&str; 2] = ["ctr-core/src", "ctr-net/src"];

/// Prints the counts at [`FILED`] and at `rev` (`None`: the work tree).
pub fn run(rev: Option<&str>) -> Result<()> {
    let now = rev.unwrap_or("work tree");
    let (before, after) = (files(Some(FILED), &PRIVILEGED)?, files(rev, &PRIVILEGED)?);
    let mut names: Vec<&String> = before.iter().chain(&after).map(|(name, _)| name).collect();
    names.sort();
    names.dedup();
    println!("privileged code, non-blank non-comment lines outside tests\n{:<44} {FILED:>9} {now:>9}", "file");
    let of = |list: &[(String, usize)], name: &str| list.iter().find(|(n, _)| n == name).map_or(0, |(_, c)| *c);
    for name in names {
        println!("{name:<44} {:>9} {:>9}", of(&before, name), of(&after, name));
    }
    println!("{:<44} {:>9} {:>9}", "total", total(&before), total(&after));
    for library in LIBRARIES {
        let (b, a) = (total(&files(Some(FILED), &[library])?), total(&files(rev, &[library])?));
        println!("{:<44} {b:>9} {a:>9}", format!("(context: all of {library})"));
    }
    Ok(())
}

fn total(files: &[(String, usize)]) -> usize {
    files.iter().map(|(_, c)| c).sum()
}

/// The counted `.rs` files under `paths` at `rev` (or in the work tree),
/// each with its count.
fn files(rev: Option<&str>, paths: &[&str]) -> Result<Vec<(String, usize)>> {
    let root = crate::host::workspace_root();
    let git = |args: &[&str]| -> Result<String> {
        let out = Command::new("git").args(args).current_dir(&root).output().context("run git")?;
        anyhow::ensure!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(String::from_utf8(out.stdout)?)
    };
    let listing = match rev {
        Some(rev) => git(&[&["ls-tree", "-r", "--name-only", rev, "--"], paths].concat())?,
        None => git(&[&["ls-files", "--cached", "--others", "--exclude-standard", "--"], paths].concat())?,
    };
    let mut counted = Vec::new();
    for name in listing.lines().filter(|n| n.ends_with(".rs") && !n.contains("/tests/")) {
        let source = match rev {
            Some(rev) => git(&["show", &format!("{rev}:{name}")])?,
            None => std::fs::read_to_string(root.join(name)).with_context(|| format!("read {name}"))?,
        };
        counted.push((name.to_owned(), count(&source)));
    }
    Ok(counted)
}

/// The lines of `source` that count (see the module's comment).
pub fn count(source: &str) -> usize {
    let mut lines = source.lines();
    let mut counted = 0;
    while let Some(line) = lines.next() {
        let line = line.trim();
        if line == "#[cfg(test)]" {
            skip_item(&mut lines);
        } else if !line.is_empty() && !line.starts_with("//") {
            counted += 1;
        }
    }
    counted
}

/// Skips an item's further attributes and the item: to its `;`, or to the
/// brace that closes its body.
fn skip_item<'a>(lines: &mut impl Iterator<Item = &'a str>) {
    let (mut depth, mut opened) = (0i64, false);
    for line in lines {
        let line = line.trim();
        if !opened && line.starts_with("#[") {
            continue;
        }
        depth += line.matches('{').count() as i64 - line.matches('}').count() as i64;
        opened |= line.contains('{');
        if (opened && depth <= 0) || (!opened && line.ends_with(';')) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn counts_code_but_not_comments_blank_lines_or_tests() {
        let source = "//! A module.\n\nuse a;\n/// Doc.\nfn f() {\n    // why\n    g();\n}\n\
                      #[cfg(test)]\n#[path = \"tests/x.rs\"]\nmod tests;\n\
                      #[cfg(test)]\nmod more {\n    fn t() {\n        x();\n    }\n}\nconst C: u8 = 1;\n";
        assert_eq!(count(source), 5);
    }
}
