//! The layout's rules, checked on the source (issue 11): the engine (the
//! library) has no command line in it and no import cycle between its
//! modules, and the binary's command files stay short.
//!
//! A module is a file (`container/record.rs` is `container::record`); it
//! depends on every module a `crate::`, `super::` or child-module path in
//! its code (not its comments) names, resolved to the longest prefix that
//! is a module. Re-exports count: a module that imports `crate::container`
//! depends on `container/mod.rs` and so on everything that re-exports. A
//! file's use of its own ancestors (`super::Type` from a child of
//! `image/mod.rs`) is no edge: a directory module is one unit whose files
//! may share what its `mod.rs` defines; every other cycle is reported.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The binary's own modules; the rest of `src/` is the engine.
const BINARY: [&str; 3] = ["args", "commands", "output"];

/// A command file's length, tests excluded.
const MAX_COMMAND_LINES: usize = 80;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `container/record.rs` -> ["container", "record"]; `lib.rs` -> [].
fn module_of(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src()).unwrap();
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap();
    match last.as_str() {
        "lib.rs" | "main.rs" | "mod.rs" => {}
        name => parts.push(name.trim_end_matches(".rs").to_owned()),
    }
    parts
}

/// The code of a file without comments or the `#[cfg(test)]` module at its end.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap();
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path `prefix::a::b` or `prefix::{a, b::c}` in `code`, expanded.
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut from = 0;
    while let Some(i) = code[from..].find(prefix) {
        let start = from + i;
        from = start + prefix.len();
        let boundary = start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        if boundary {
            expand(&code[from..], Vec::new(), &mut out);
        }
    }
    out
}

/// Reads `a::b::{c, d::e}` at the start of `rest` into full paths.
fn expand(rest: &str, mut path: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut rest = rest.trim_start();
    loop {
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item_start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' | ',' if depth == 1 => {
                        expand(&group[item_start..i], path.clone(), out);
                        item_start = i + 1;
                        if c == '}' {
                            return;
                        }
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            return;
        }
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        let ident = &rest[..end];
        if ident != "self" {
            path.push(ident.to_owned());
        }
        rest = &rest[end..];
        match rest.strip_prefix("::") {
            Some(r) => rest = r,
            None => break,
        }
    }
    out.push(path);
}

struct Graph {
    /// module -> its file's code
    modules: BTreeMap<Vec<String>, String>,
}

impl Graph {
    fn engine() -> Self {
        let mut files = Vec::new();
        rust_files(&src(), &mut files);
        let modules = files
            .iter()
            .filter(|f| !f.ends_with("main.rs"))
            .map(|f| (module_of(f), f))
            .filter(|(m, _)| m.first().is_none_or(|top| !BINARY.contains(&top.as_str())))
            .map(|(m, f)| (m, code(&std::fs::read_to_string(f).unwrap())))
            .collect();
        Self { modules }
    }

    /// The longest prefix of `path` that is a module other than the root.
    fn resolve(&self, path: &[String]) -> Option<Vec<String>> {
        (1..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| self.modules.contains_key(p))
    }

    fn edges(&self) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
        let mut edges = BTreeMap::new();
        for (module, code) in &self.modules {
            let mut deps = BTreeSet::new();
            for path in paths_after(code, "crate::") {
                deps.extend(self.resolve(&path));
            }
            let parent = &module[..module.len().saturating_sub(1)];
            for path in paths_after(code, "super::") {
                let full: Vec<String> = parent.iter().cloned().chain(path).collect();
                deps.extend(self.resolve(&full));
            }
            // `use child::X` and `child::f()` name a child module directly.
            for (other, _) in self.modules.range(module.clone()..) {
                if other.len() == module.len() + 1 && other.starts_with(module) {
                    let child = other.last().unwrap();
                    if !paths_after(code, &format!("{child}::")).is_empty() {
                        deps.insert(other.clone());
                    }
                }
            }
            // A directory module is one unit: its files may use what their
            // parent's file defines (`super::Type`); any other cycle counts.
            deps.retain(|d| !module.starts_with(d));
            edges.insert(module.clone(), deps);
        }
        edges
    }
}

fn name(module: &[String]) -> String {
    if module.is_empty() {
        "crate".to_owned()
    } else {
        module.join("::")
    }
}

/// A cycle through `edges`, if there is one, as module names.
fn find_cycle(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        node: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        marks: &mut BTreeMap<Vec<String>, Mark>,
        stack: &mut Vec<Vec<String>>,
    ) -> Option<Vec<String>> {
        match marks.get(node).copied().unwrap_or(Mark::New) {
            Mark::Done => return None,
            Mark::Open => {
                let at = stack.iter().position(|n| n == node).unwrap();
                return Some(stack[at..].iter().chain(std::iter::once(node)).map(|n| name(n)).collect());
            }
            Mark::New => {}
        }
        marks.insert(node.clone(), Mark::Open);
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, marks, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        marks.insert(node.clone(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    edges.keys().find_map(|node| visit(node, edges, &mut marks, &mut Vec::new()))
}

#[test]
fn the_engine_has_no_import_cycle() {
    let graph = Graph::engine();
    assert!(graph.modules.len() > 30, "found only {} engine modules", graph.modules.len());
    let edges = graph.edges();
    if let Some(cycle) = find_cycle(&edges) {
        panic!("the engine's modules import each other in a cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn the_engine_has_no_command_line_in_it() {
    for (module, code) in &Graph::engine().modules {
        for banned in ["clap::", "crate::args", "crate::commands", "crate::output"] {
            assert!(!code.contains(banned), "engine module {} uses {banned}", name(module));
        }
    }
}

/// Typed errors in the engine (thiserror, one type per module); anyhow
/// is the binary's alone.
#[test]
fn the_engine_has_typed_errors() {
    for (module, code) in &Graph::engine().modules {
        for banned in ["anyhow", "bail!("] {
            assert!(!code.contains(banned), "engine module {} uses {banned}", name(module));
        }
    }
}

#[test]
fn command_files_are_short() {
    let mut files = Vec::new();
    rust_files(&src().join("commands"), &mut files);
    for file in files {
        let lines = code(&std::fs::read_to_string(&file).unwrap()).lines().filter(|l| !l.trim().is_empty()).count();
        assert!(
            lines <= MAX_COMMAND_LINES,
            "{} has {lines} lines of code (at most {MAX_COMMAND_LINES})",
            file.display()
        );
    }
}

#[test]
fn the_checker_sees_cycles_and_grouped_imports() {
    let paths = paths_after("use crate::a::{b::C, d, self};\nlet x = crate::e::f();", "crate::");
    let names: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(names, ["a::b::C", "a::d", "a", "e::f"]);
    let m = |s: &str| s.split("::").map(String::from).collect::<Vec<_>>();
    let mut edges = BTreeMap::new();
    edges.insert(m("a"), BTreeSet::from([m("b")]));
    edges.insert(m("b"), BTreeSet::from([m("c")]));
    edges.insert(m("c"), BTreeSet::from([m("a")]));
    assert_eq!(find_cycle(&edges).unwrap(), ["a", "b", "c", "a"]);
    edges.insert(m("c"), BTreeSet::new());
    assert_eq!(find_cycle(&edges), None);
    assert_eq!(code("let a = 1; // crate::x\n// crate::y\nlet s = \"//\";"), "let a = 1; \n\nlet s = \"//\";");
}
