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
use std::path::Path;

type ModPath = Vec<String>;

/// Cycles not yet broken, each named by its files: none now. Add one only with the plan to
/// break it.
const KNOWN: &[&str] = &[];

/// One source file: its module and what its text names.
struct Source {
    /// `src/…`, for messages.
    name: String,
    module: ModPath,
    /// Names its `use` statements bring into scope, to the absolute path they import.
    names: BTreeMap<String, ModPath>,
    /// Absolute paths it depends on, each with its text as written.
    refs: Vec<(ModPath, String)>,
}

fn path_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == ':'
}

fn segments(path: &str) -> impl Iterator<Item = String> {
    path.split("::")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// The leaves of a `use` tree, each as its path and the name it binds (`*` for a glob).
fn expand(tree: &str, prefix: &[String], out: &mut Vec<(ModPath, String)>) {
    if let (Some(open), Some(close)) = (tree.find('{'), tree.rfind('}')) {
        let prefix: ModPath = prefix
            .iter()
            .cloned()
            .chain(segments(&tree[..open]))
            .collect();
        let (mut depth, mut start, inner) = (0, 0, &tree[open + 1..close]);
        for (i, c) in inner.char_indices().chain([(inner.len(), ',')]) {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    if !inner[start..i].trim().is_empty() {
                        expand(&inner[start..i], &prefix, out);
                    }
                    start = i + 1;
                }
                _ => {}
            }
        }
        return;
    }
    let (path, alias) = tree
        .split_once(" as ")
        .map_or((tree, None), |(p, a)| (p, Some(a)));
    let mut full: ModPath = prefix.iter().cloned().chain(segments(path)).collect();
    let glob = full.last().is_some_and(|s| s == "*");
    if glob || full.last().is_some_and(|s| s == "self") {
        full.pop();
    }
    let name = match alias {
        _ if glob => "*".to_string(),
        Some(alias) => alias.trim().to_string(),
        None => full.last().cloned().unwrap_or_default(),
    };
    out.push((full, name));
}

/// The code of a line: up to a `//` outside a string literal.
fn code(line: &str) -> &str {
    let (bytes, mut in_str) = (line.as_bytes(), false);
    for i in 0..bytes.len() {
        match bytes[i] {
            b'"' if i == 0 || bytes[i - 1] != b'\\' => in_str = !in_str,
            b'/' if !in_str && bytes.get(i + 1) == Some(&b'/') => return &line[..i],
            _ => {}
        }
    }
    line
}

/// A line that starts a `use` statement: whether it is `pub` (of any kind), and the rest.
fn use_start(line: &str) -> Option<(bool, &str)> {
    let mut rest = line.trim_start();
    let public = rest.starts_with("pub");
    if public {
        rest = rest[3..].trim_start();
        if rest.starts_with('(') {
            rest = rest.split_once(')')?.1.trim_start();
        }
    }
    Some((public, rest.strip_prefix("use ")?))
}

/// The `crate::…` and `super::…` paths written out in a line of code.
fn written_paths(line: &str) -> Vec<&str> {
    let mut paths = Vec::new();
    for (i, _) in line
        .match_indices("crate::")
        .chain(line.match_indices("super::"))
    {
        if !line[..i].ends_with(path_char) {
            // Not the middle of a longer path.
            let end = line[i..]
                .find(|c| !path_char(c))
                .map_or(line.len(), |e| i + e);
            paths.push(line[i..end].trim_end_matches(':'));
        }
    }
    paths
}

/// Every `.rs` file under `dir`, as its name, module and text.
fn rust_files(root: &Path, dir: &Path, out: &mut Vec<(String, ModPath, String)>) {
    for path in std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()) {
        if path.is_dir() {
            rust_files(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).unwrap();
            let mut module: ModPath = rel
                .with_extension("")
                .iter()
                .map(|s| s.to_string_lossy().into())
                .collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                module.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((format!("src/{}", rel.display()), module, text));
        }
    }
}

/// Reads every file under `src/` into its module, names and references.
fn parse(root: &Path) -> Vec<Source> {
    let mut raw = Vec::new();
    rust_files(root, root, &mut raw);
    raw.sort();
    let modules: BTreeSet<ModPath> = raw.iter().map(|(_, m, _)| m.clone()).collect();
    let mut sources = Vec::new();
    for (name, module, text) in raw {
        // A path as written, from a line `depth` inline modules deep, made absolute; `None` for
        // an external crate, or a path that stays inside this file.
        let absolute = |segs: &[String], depth: usize| -> Option<ModPath> {
            let ups = segs.iter().take_while(|s| *s == "super").count();
            let base = match segs.first()?.as_str() {
                "crate" => return Some(segs[1..].to_vec()),
                "super" if ups <= depth => return None,
                "super" => &module[..module.len().checked_sub(ups - depth)?],
                "self" if depth == 0 => return Some([&module[..], &segs[1..]].concat()),
                _ if depth == 0 && modules.contains(&[&module[..], &segs[..1]].concat()) => &module,
                _ => return None,
            };
            Some([base, &segs[ups..]].concat())
        };
        let mut src = Source {
            name,
            module: module.clone(),
            names: BTreeMap::new(),
            refs: vec![],
        };
        let mut inline: Vec<usize> = Vec::new(); // indentation of each open inline `mod … {`
        let mut pending: Option<(bool, String)> = None; // a `use` read so far, and if `pub`
        for line in text.lines().map(code) {
            let (trimmed, indent) = (line.trim(), line.len() - line.trim_start().len());
            if trimmed == "}" && inline.last() == Some(&indent) {
                inline.pop();
            }
            if trimmed.ends_with('{') && trimmed.split_whitespace().rev().nth(2) == Some("mod") {
                inline.push(indent);
            }
            let (public, text) = match (pending.take(), use_start(line)) {
                (Some((public, text)), _) => (public, format!("{text} {trimmed}")),
                (None, Some((public, rest))) => (public, rest.to_string()),
                (None, None) => {
                    for text in written_paths(line) {
                        let segs: ModPath = segments(text).collect();
                        if let Some(abs) = absolute(&segs, inline.len()) {
                            src.refs.push((abs, text.to_string()));
                        }
                    }
                    continue;
                }
            };
            // A "use" inside a string (an error message's advice) is no statement.
            if !text.chars().all(|c| path_char(c) || " {},*;".contains(c)) {
                continue;
            }
            let Some(tree) = text.strip_suffix(';') else {
                pending = Some((public, text)); // it goes on on the next line
                continue;
            };
            let mut leaves = Vec::new();
            expand(tree, &[], &mut leaves);
            for (segs, bound) in leaves {
                let Some(abs) = absolute(&segs, inline.len()) else {
                    continue;
                };
                if bound != "*" {
                    src.names.insert(bound, abs.clone());
                }
                // The public face: `pub use` of the file's own descendants.
                if !(public && abs.len() > module.len() && abs.starts_with(&module)) {
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
    let module_of = |n: usize| {
        sources
            .iter()
            .position(|s| s.module == path[..n])
            .map(|f| (n, f))
    };
    let (n, file) = (0..=path.len()).rev().find_map(module_of)?;
    if n < path.len()
        && hops > 0
        && let Some(target) = sources[file].names.get(&path[n])
        && let Some(found) = resolve(sources, &[&target[..], &path[n + 1..]].concat(), hops - 1)
    {
        return Some(found);
    }
    Some(file)
}

#[test]
fn no_file_imports_itself_through_others() {
    let sources = parse(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    // from → to → the first path that made the edge.
    let mut edges = vec![BTreeMap::<usize, &str>::new(); sources.len()];
    for (from, src) in sources.iter().enumerate() {
        for (abs, text) in &src.refs {
            if let Some(to) = resolve(&sources, abs, 8).filter(|&to| to != from) {
                edges[from].entry(to).or_insert(text);
            }
        }
    }
    let count: usize = edges.iter().map(BTreeMap::len).sum();
    assert!(
        sources.len() > 20 && count > 50,
        "read {} files, {count} edges",
        sources.len()
    );

    let reach = |start: usize| {
        let (mut seen, mut todo) = (BTreeSet::new(), vec![start]);
        while let Some(at) = todo.pop() {
            todo.extend(edges[at].keys().filter(|&&next| seen.insert(next)));
        }
        seen
    };
    let reach: Vec<BTreeSet<usize>> = (0..sources.len()).map(reach).collect();
    // Strongly connected components of more than one file, as their files' names.
    let cycles: BTreeSet<Vec<usize>> = (0..sources.len())
        .map(|i| {
            let all = 0..sources.len();
            all.filter(|&j| reach[i].contains(&j) && reach[j].contains(&i))
                .collect::<Vec<_>>()
        })
        .filter(|scc| scc.len() > 1)
        .collect();
    let named = |scc: &[usize]| {
        let names: Vec<&str> = scc.iter().map(|&f| sources[f].name.as_str()).collect();
        names.join(", ")
    };
    let mut report = String::new();
    for known in KNOWN {
        if !cycles.iter().any(|scc| named(scc) == *known) {
            report += &format!("\nbroken, strike it off `KNOWN`: {known}\n");
        }
    }
    for scc in cycles
        .iter()
        .filter(|scc| !KNOWN.contains(&named(scc).as_str()))
    {
        report += &format!("\nthese files import each other: {}\n", named(scc));
        for &from in scc {
            for (to, text) in edges[from].iter().filter(|(to, _)| scc.contains(to)) {
                let (a, b) = (&sources[from].name, &sources[*to].name);
                report += &format!("  {a} → {b} (`{text}`)\n");
            }
        }
    }
    assert!(report.is_empty(), "import cycles in src/:{report}");
}

#[test]
fn use_trees_expand_to_their_leaves() {
    let mut out = Vec::new();
    expand("crate::{a, b::{c as d, self}, e::*}", &[], &mut out);
    let got: Vec<String> = out
        .iter()
        .map(|(p, n)| format!("{}={n}", p.join("::")))
        .collect();
    assert_eq!(
        got,
        ["crate::a=a", "crate::b::c=d", "crate::b=b", "crate::e=*"]
    );
}
