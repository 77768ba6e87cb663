//! The Sentry's layer order, enforced: every `crate::` (and root-reaching
//! `super::`) path in the source may name only modules listed before its own.
//!
//! The order is read from the numbered list at the top of `src/lib.rs`, so
//! the documentation and the rule cannot drift apart. Unit-test modules
//! (`#[cfg(test)] mod …`) may use any layer as a fixture and are skipped.

use std::collections::BTreeMap;
use std::path::Path;

/// One use of a module that is not below the user.
#[derive(Debug, PartialEq, Eq)]
struct Violation {
    file: String,
    line: usize,
    from: String,
    to: String,
}

/// The layer names in order, from lines like "//! 3. `mm` — …".
fn layers(lib_rs: &str) -> Vec<String> {
    lib_rs
        .lines()
        .filter_map(|l| l.strip_prefix("//! "))
        .filter_map(|l| {
            let (num, rest) = l.split_once(". `")?;
            num.trim().parse::<u32>().ok()?;
            Some(rest.split('`').next()?.to_string())
        })
        .collect()
}

/// The module path of a source file relative to `src/`: `fs/tmpfs.rs` is
/// `[fs, tmpfs]`, `fs/mod.rs` is `[fs]`.
fn module_path(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel.trim_end_matches(".rs").split('/').map(str::to_string).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The file's code with comments and unit-test modules left out.
fn code_lines(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        let t = line.trim_start();
        if t.starts_with("//") {
            continue;
        }
        if t.starts_with("#[cfg(test)]") && lines.peek().is_some_and(|(_, next)| next.trim_start().starts_with("mod "))
        {
            // The test module runs to the end of the file (the crate's convention).
            break;
        }
        out.push((i + 1, line));
    }
    out
}

/// The top-level modules a line names: `crate::x`, the groups of
/// `crate::{x::…, y}`, and `super::…::x` that climbs to the crate root.
fn named_modules(line: &str, depth: usize) -> Vec<String> {
    let ident = |s: &str| s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>();
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        let before = &rest[..i];
        let after = &rest[i + "crate::".len()..];
        rest = after;
        if before.ends_with('$') || before.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = after.strip_prefix('{') {
            let mut level = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => level += 1,
                    '}' if level == 0 => break,
                    '}' => level -= 1,
                    ',' if level == 0 => {
                        found.push(ident(item.trim()));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            found.push(ident(item.trim()));
        } else {
            found.push(ident(after));
        }
    }
    let mut rest = line;
    while let Some(i) = rest.find("super::") {
        let start = &rest[i..];
        let mut climbed = 0;
        let mut s = start;
        while let Some(next) = s.strip_prefix("super::") {
            climbed += 1;
            s = next;
        }
        if climbed >= depth {
            found.push(ident(s));
        }
        rest = &start["super::".len() * climbed..];
    }
    found.retain(|m| !m.is_empty() && m != "self");
    found
}

/// Every place a file names a module at or above its own layer.
fn check(order: &[String], files: &BTreeMap<String, String>) -> Vec<Violation> {
    let rank: BTreeMap<&str, usize> = order.iter().enumerate().map(|(i, m)| (m.as_str(), i)).collect();
    let mut out = Vec::new();
    for (rel, text) in files {
        let path = module_path(rel);
        let Some(top) = path.first() else { continue };
        if top == "lib" {
            continue;
        }
        let Some(&mine) = rank.get(top.as_str()) else {
            out.push(Violation { file: rel.clone(), line: 0, from: top.clone(), to: "(not in lib.rs's list)".into() });
            continue;
        };
        // A mod.rs's `super::` already reaches the root at depth 1; a leaf file at 2.
        let depth = path.len();
        for (n, line) in code_lines(text) {
            for m in named_modules(line, depth) {
                if m == *top {
                    continue;
                }
                if let Some(&theirs) = rank.get(m.as_str()) {
                    if theirs >= mine {
                        out.push(Violation { file: rel.clone(), line: n, from: top.clone(), to: m });
                    }
                }
            }
        }
    }
    out
}

fn read_tree(dir: &Path, base: &Path, files: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            read_tree(&path, base, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            files.insert(rel, std::fs::read_to_string(&path).unwrap());
        }
    }
}

#[test]
fn the_sentry_keeps_its_layer_order() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    read_tree(&src, &src, &mut files);
    let order = layers(&files["lib.rs"]);
    assert!(order.len() >= 8, "lib.rs lists the layers as '//! N. `name` — …': found {order:?}");
    let tops: std::collections::BTreeSet<String> =
        files.keys().map(|f| module_path(f)[0].clone()).filter(|t| t != "lib").collect();
    let listed: std::collections::BTreeSet<String> = order.iter().cloned().collect();
    assert_eq!(tops, listed, "every top-level module appears once in lib.rs's layer list");
    let violations = check(&order, &files);
    assert!(
        violations.is_empty(),
        "modules that use a layer at or above their own (move the code, or pass it down as a table or trait):\n{}",
        violations
            .iter()
            .map(|v| format!("  {}:{}: {} uses {}", v.file, v.line, v.from, v.to))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn an_upward_import_is_caught() {
    let order: Vec<String> = ["auth", "mm", "kernel"].iter().map(|s| s.to_string()).collect();
    let files: BTreeMap<String, String> = [
        ("auth/mod.rs", "//! Credentials.\nuse std::sync::Arc;\n"),
        ("mm/mod.rs", "use crate::auth::Creds;\nfn f() { crate::kernel::task::current(); }\n"),
        ("mm/fill.rs", "use crate::{auth::Creds, kernel::Kernel};\nuse super::super::kernel::Task;\n"),
        ("kernel/mod.rs", "use crate::mm::MemoryManager;\n#[cfg(test)]\nmod tests {\n use crate::kernel::x;\n}\n"),
        ("kernel/task.rs", "// crate::kernel::boot in a comment is no import\nuse super::signal;\n"),
    ]
    .iter()
    .map(|(f, t)| (f.to_string(), t.to_string()))
    .collect();
    let found: Vec<(String, usize, String)> =
        check(&order, &files).into_iter().map(|v| (v.file, v.line, v.to)).collect();
    assert_eq!(
        found,
        vec![
            ("mm/fill.rs".to_string(), 1, "kernel".to_string()),
            ("mm/fill.rs".to_string(), 2, "kernel".to_string()),
            ("mm/mod.rs".to_string(), 2, "kernel".to_string()),
        ]
    );
}

#[test]
fn a_sideways_import_between_layers_is_caught() {
    let order: Vec<String> = ["auth", "waiter"].iter().map(|s| s.to_string()).collect();
    let files: BTreeMap<String, String> =
        [("auth/mod.rs".to_string(), "use crate::waiter::WaitQueue;\n".to_string())].into_iter().collect();
    assert_eq!(check(&order, &files).len(), 1);
}
