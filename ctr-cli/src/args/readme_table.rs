//! README's CLI table against clap's tree: every command and long flag that
//! exists is listed, and every one listed exists (issue 14's acceptance).

use super::Cli;
use clap::CommandFactory;
use std::collections::BTreeSet;

const README: &str = include_str!("../../../README.md");

/// The part of README about `ctr` itself: from "## Using it" to the
/// section on ctr-oci, whose flags are another binary's.
fn ctr_part() -> &'static str {
    let start = README.find("## Using it").expect("README has a \"## Using it\" section");
    let end = README[start..].find("\n## Use ctr with containerd").map_or(README.len(), |e| start + e);
    &README[start..end]
}

/// The table rows that name a `ctr` command.
fn command_rows() -> Vec<&'static str> {
    ctr_part().lines().filter(|l| l.starts_with("| `ctr ")).collect()
}

/// Clap's tree: every visible subcommand, as its path (`["volume",
/// "create"]`); the long flags README must name (a flag with a short form
/// is documented by either: `-q`); and every long flag and alias.
struct Tree {
    paths: Vec<Vec<String>>,
    required: BTreeSet<String>,
    every: BTreeSet<String>,
}

fn tree() -> Tree {
    fn walk(c: &clap::Command, path: &[String], tree: &mut Tree) {
        for a in c.get_arguments() {
            tree.every.extend(a.get_long().map(str::to_owned));
            tree.every.extend(a.get_all_aliases().into_iter().flatten().map(str::to_owned));
            if let (false, Some(long), None) = (a.is_hide_set(), a.get_long(), a.get_short()) {
                tree.required.insert(long.to_owned());
            }
        }
        for sub in c.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
            let mut p = path.to_vec();
            p.push(sub.get_name().to_owned());
            tree.paths.push(p.clone());
            walk(sub, &p, tree);
        }
    }
    let mut cli = Cli::command();
    cli.build();
    let mut tree = Tree { paths: Vec::new(), required: BTreeSet::new(), every: BTreeSet::new() };
    walk(&cli, &[], &mut tree);
    tree.required.remove("version"); // clap's own `ctr --version`
    tree
}

/// The `--name` words of `text` (a lone `--` or `---` is not one).
fn long_flags(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (i, _) in text.match_indices("--") {
        let before = text[..i].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '-') {
            continue;
        }
        let name: String = text[i + 2..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
        if name.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
            found.insert(name);
        }
    }
    found
}

#[test]
fn every_command_that_exists_is_in_the_readme_table() {
    let rows = command_rows();
    let paths = tree().paths;
    assert!(paths.len() > 30, "clap's tree looks empty");
    let missing: Vec<String> = paths
        .iter()
        .filter(|p| {
            let (parent, name) = (&p[..p.len() - 1], &p[p.len() - 1]);
            if parent.is_empty() {
                return !rows
                    .iter()
                    .any(|r| r.contains(&format!("`ctr {name}")) || r.contains(&format!(", `ctr {name}")));
            }
            // `ctr volume create [NAME]`, `ls ...`: a nested command's name
            // follows its parent's in the same row.
            let head = format!("ctr {}", parent.join(" "));
            !rows.iter().any(|r| {
                r.contains(&format!("{head} {name}"))
                    || (r.contains(&head)
                        && ["`", "\\|"]
                            .iter()
                            .any(|pre| [" ", "`"].iter().any(|post| r.contains(&format!("{pre}{name}{post}")))))
            })
        })
        .map(|p| format!("ctr {}", p.join(" ")))
        .collect();
    assert!(missing.is_empty(), "README's CLI table does not list: {missing:?}");
}

#[test]
fn every_long_flag_that_exists_is_in_the_readme_and_every_one_there_exists() {
    let Tree { required: flags, every, .. } = tree();
    let documented = long_flags(ctr_part());
    let missing: Vec<&String> = flags.iter().filter(|f| !documented.contains(*f)).collect();
    assert!(missing.is_empty(), "README does not mention these flags of ctr: {missing:?}");
    // The table rows must not promise a flag clap does not have.
    let listed: BTreeSet<String> = command_rows().iter().flat_map(|r| long_flags(r)).collect();
    let unknown: Vec<&String> = listed.iter().filter(|f| !every.contains(*f)).collect();
    assert!(unknown.is_empty(), "README's CLI table lists flags ctr does not have: {unknown:?}");
}
