//! No two files of `src/` import each other, directly or around a loop (issue 25): each layer
//! knows only the ones below it, and within a module the vocabulary sits below what uses it.
//!
//! The graph is read from the text, without the compiler, with these rules:
//!
//! * A file is a node: `src/a/b.rs` is module `a::b`, `src/a/mod.rs` is `a`, `src/lib.rs` the
//!   crate root; `src/a/b/c.rs` is `a::b::c` whether `b` is `b.rs` or `b/mod.rs`.
//! * An edge is a path the file names in code: every leaf of a `use` or `pub use` tree
//!   (`use crate::{a, b::{c, d as e}}`), and every `crate::…` or `super::…` path written out in
//!   code. Comments, doc links included, are not read: a link is no dependency.
//! * `super` counts from the inline module a line sits in (rustfmt layout: `mod tests {` and its
//!   closing `}` at the same indentation), so a test module's `use super::*` is its own file.
//! * A path resolves to the file of its longest module prefix. When the next segment is a name
//!   that file imports (`pub use child::X`, or any `use`), the path is followed on to the file
//!   that defines the item: importing `crate::schedule::Tier` depends on the file that defines
//!   `Tier`, not on `schedule/mod.rs` and everything it re-exports.
//! * A file's `pub use` of its own descendants (a `mod.rs` showing its children's items) is its
//!   public face, like `mod child;`, and no edge; a `pub use` of anything else is.
//!
//! `#[cfg]` is ignored: an edge counts in every build.
//!
//! [`KNOWN`] lists the cycles still open, each to be broken and struck off; the test fails on
//! any other cycle, and on a listed one that is gone (so the list only shrinks).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type ModPath = Vec<String>;

/// Cycles not yet broken. `gpu/`: `Gpu` holds a `Counters` and a `PipelineCache`, whose files
/// add `impl Gpu` blocks (`Gpu::counters`, `Gpu::compute_pipeline`) and so import `context.rs`.
const KNOWN: &[&[&str]] = &[&[
    "src/gpu/context.rs",
    "src/gpu/counters.rs",
    "src/gpu/pipelines.rs",
]];

/// One source file: its module and what its text names.
struct Source {
    /// `src/…`, for messages.
    name: String,
    module: ModPath,
    /// Names its `use` statements bring into scope, to the absolute path they import.
    names: BTreeMap<String, ModPath>,
    /// Absolute paths it names in code, each with its text, less its public face.
    refs: Vec<(ModPath, String)>,
}

/// Splits `s` at the commas outside braces.
fn split_top(s: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

/// The leaves of a `use` tree, each as its path and the name it binds (`*` for a glob).
fn expand(tree: &str, prefix: &mut ModPath, out: &mut Vec<(ModPath, String)>) {
    let segs = |s: &str| -> ModPath {
        s.split("::")
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect()
    };
    if let Some(open) = tree.find('{') {
        let head = segs(&tree[..open]);
        let inner = &tree[open + 1..tree.rfind('}').expect("a closing brace")];
        prefix.extend(head.iter().cloned());
        for part in split_top(inner) {
            expand(part, prefix, out);
        }
        prefix.truncate(prefix.len() - head.len());
        return;
    }
    let (path, alias) = match tree.split_once(" as ") {
        Some((p, a)) => (p, Some(a.trim().to_string())),
        None => (tree, None),
    };
    let mut full = prefix.clone();
    full.extend(segs(path));
    if full.last().is_some_and(|s| s == "self" || s == "*") {
        let last = full.pop().unwrap();
        let name = if last == "*" {
            last
        } else {
            full.last().cloned().unwrap_or_default()
        };
        out.push((full, alias.unwrap_or(name)));
    } else if let Some(name) = alias.or_else(|| full.last().cloned()) {
        out.push((full, name));
    }
}

/// The code of a line: up to a `//` outside a string literal.
fn code(line: &str) -> &str {
    let mut in_str = false;
    let bytes = line.as_bytes();
    for i in 0..bytes.len() {
        match bytes[i] {
            b'"' if i == 0 || bytes[i - 1] != b'\\' => in_str = !in_str,
            b'/' if !in_str && bytes.get(i + 1) == Some(&b'/') => return &line[..i],
            _ => {}
        }
    }
    line
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn read_sources(root: &Path) -> Vec<(String, ModPath, String)> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path: PathBuf = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).unwrap().with_extension("");
                let mut module: ModPath = rel
                    .iter()
                    .map(|s| s.to_string_lossy().into_owned())
                    .collect();
                if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                    module.pop();
                }
                let name = format!("src/{}", path.strip_prefix(root).unwrap().display());
                out.push((name, module, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Reads every file under `src/` into its module, names and references.
fn parse(root: &Path) -> Vec<Source> {
    let raw = read_sources(root);
    let modules: BTreeSet<ModPath> = raw.iter().map(|(_, m, _)| m.clone()).collect();
    let mut sources = Vec::new();
    for (name, module, text) in raw {
        // A path as written, from a line `inline` modules deep, made absolute; `None` for an
        // external crate, or a path that stays inside this file.
        let absolute = |segs: &[String], inline: usize| -> Option<ModPath> {
            let first = segs.first()?.as_str();
            let ups = segs.iter().take_while(|s| *s == "super").count();
            let mut base = match first {
                "crate" => return Some(segs[1..].to_vec()),
                "super" if ups <= inline => return None,
                "super" => module[..module.len().checked_sub(ups - inline)?].to_vec(),
                "self" if inline == 0 => return Some([&module[..], &segs[1..]].concat()),
                _ if inline == 0 && modules.contains(&[&module[..], &segs[..1]].concat()) => {
                    module.clone()
                }
                _ => return None,
            };
            base.extend(segs.iter().skip(ups).cloned());
            Some(base)
        };
        let mut src = Source {
            name,
            module: module.clone(),
            names: BTreeMap::new(),
            refs: Vec::new(),
        };
        let mut inline: Vec<usize> = Vec::new(); // indentation of each open inline `mod … {`
        let mut statement: Option<(bool, String)> = None; // a `use` read so far, and if `pub`
        for line in text.lines().map(code) {
            let trimmed = line.trim();
            let indent = line.len() - line.trim_start().len();
            if trimmed == "}" && inline.last() == Some(&indent) {
                inline.pop();
            }
            let words: Vec<&str> = trimmed.split_whitespace().collect();
            if trimmed.ends_with('{') && words.iter().rev().nth(2) == Some(&"mod") {
                inline.push(indent);
            }
            if statement.is_none() {
                let after_vis = trimmed
                    .strip_prefix("pub")
                    .map(|r| match r.strip_prefix('(') {
                        Some(r) => r.split_once(')').map_or("", |(_, r)| r),
                        None => r,
                    });
                if let Some(rest) = after_vis
                    .unwrap_or(trimmed)
                    .trim_start()
                    .strip_prefix("use ")
                {
                    statement = Some((after_vis.is_some(), String::new()));
                    let (_, text) = statement.as_mut().unwrap();
                    text.push_str(rest);
                } else {
                    // Written-out paths in code: `crate::a::b(…)`, `super::x::Y`.
                    for start in ["crate::", "super::"]
                        .iter()
                        .flat_map(|p| line.match_indices(p).map(|(i, _)| i))
                    {
                        if line[..start].ends_with(|c: char| is_ident(c) || c == ':') {
                            continue; // the middle of a longer path
                        }
                        let end = line[start..]
                            .find(|c: char| !(is_ident(c) || c == ':'))
                            .map_or(line.len(), |e| start + e);
                        let text = line[start..end].trim_end_matches(':');
                        let segs: ModPath = text.split("::").map(String::from).collect();
                        if let Some(abs) = absolute(&segs, inline.len()) {
                            src.refs.push((abs, text.to_string()));
                        }
                    }
                    continue;
                }
            } else if let Some((_, text)) = statement.as_mut() {
                text.push(' ');
                text.push_str(trimmed);
            }
            let (public, text) = statement.take().unwrap();
            // A "use" inside a string (an error message's advice) is no statement.
            if !text.chars().all(|c| is_ident(c) || " :{},*;".contains(c)) {
                continue;
            }
            let Some(tree) = text.strip_suffix(';') else {
                statement = Some((public, text)); // continues on the next line
                continue;
            };
            let mut leaves = Vec::new();
            expand(tree, &mut Vec::new(), &mut leaves);
            for (segs, bound) in leaves {
                let Some(abs) = absolute(&segs, inline.len()) else {
                    continue;
                };
                if bound != "*" {
                    src.names.insert(bound, abs.clone());
                }
                let face = public && abs.len() > module.len() && abs.starts_with(&module);
                if !face {
                    src.refs.push((abs, segs.join("::")));
                }
            }
        }
        sources.push(src);
    }
    sources
}

/// The file that defines what `path` names, following imports at most `hops` deep.
fn resolve(sources: &[Source], path: &[String], hops: usize) -> Option<usize> {
    let (n, file) = (0..=path.len()).rev().find_map(|n| {
        sources
            .iter()
            .position(|s| s.module == path[..n])
            .map(|f| (n, f))
    })?;
    if n < path.len() && hops > 0 {
        if let Some(target) = sources[file].names.get(&path[n]) {
            let next = [&target[..], &path[n + 1..]].concat();
            if let Some(found) = resolve(sources, &next, hops - 1) {
                return Some(found);
            }
        }
    }
    Some(file)
}

#[test]
fn no_file_imports_itself_through_others() {
    let sources = parse(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    // from → to → the first path that made the edge.
    let mut edges: BTreeMap<usize, BTreeMap<usize, String>> = BTreeMap::new();
    for (from, src) in sources.iter().enumerate() {
        for (abs, text) in &src.refs {
            if let Some(to) = resolve(&sources, abs, 8).filter(|&to| to != from) {
                edges
                    .entry(from)
                    .or_default()
                    .entry(to)
                    .or_insert_with(|| text.clone());
            }
        }
    }
    let count: usize = edges.values().map(BTreeMap::len).sum();
    assert!(
        sources.len() > 20 && count > 50,
        "read {} files, {count} edges",
        sources.len()
    );

    let reach: Vec<BTreeSet<usize>> = (0..sources.len())
        .map(|start| {
            let (mut seen, mut todo) = (BTreeSet::new(), vec![start]);
            while let Some(at) = todo.pop() {
                for &next in edges.get(&at).into_iter().flat_map(BTreeMap::keys) {
                    if seen.insert(next) {
                        todo.push(next);
                    }
                }
            }
            seen
        })
        .collect();
    let mut cycles: BTreeSet<Vec<usize>> = BTreeSet::new();
    for i in 0..sources.len() {
        let scc: Vec<usize> = (0..sources.len())
            .filter(|&j| j == i || (reach[i].contains(&j) && reach[j].contains(&i)))
            .collect();
        if scc.len() > 1 {
            cycles.insert(scc);
        }
    }
    let mut report = String::new();
    let named =
        |scc: &Vec<usize>| -> Vec<&str> { scc.iter().map(|&f| sources[f].name.as_str()).collect() };
    for known in KNOWN {
        if !cycles.iter().any(|scc| named(scc) == *known) {
            report += &format!("\nbroken, strike it off `KNOWN`: {}\n", known.join(", "));
        }
    }
    cycles.retain(|scc| !KNOWN.contains(&&named(scc)[..]));
    for scc in &cycles {
        report += &format!(
            "\nthese files import each other: {}\n",
            named(scc).join(", ")
        );
        for &from in scc {
            for (to, text) in edges.get(&from).into_iter().flatten() {
                if scc.contains(to) {
                    let (a, b) = (&sources[from].name, &sources[*to].name);
                    report += &format!("  {a} → {b} (`{text}`)\n");
                }
            }
        }
    }
    assert!(
        report.is_empty(),
        "{} new import cycles in src/:{report}",
        cycles.len()
    );
}

#[test]
fn use_trees_expand_to_their_leaves() {
    let mut out = Vec::new();
    expand(
        "crate::{a, b::{c as d, self}, e::*}",
        &mut Vec::new(),
        &mut out,
    );
    let got: Vec<String> = out
        .iter()
        .map(|(p, n)| format!("{}={n}", p.join("::")))
        .collect();
    assert_eq!(
        got,
        ["crate::a=a", "crate::b::c=d", "crate::b=b", "crate::e=*"]
    );
}
