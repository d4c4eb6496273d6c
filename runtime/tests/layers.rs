//! The runtime's modules form layers: `src/lib.rs` declares them lowest first, and every
//! `crate::…` path in a module's code (every file of its folder, for a folder) names a module
//! declared before it. A module that needs one declared after it is a layering mistake to fix
//! in the code, not in the order.
//!
//! Paths are read as text, outside comments (doc links may point anywhere) and outside
//! `#[cfg(test)]` modules (tests may use anything).

use std::path::Path;

fn source(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The modules `lib.rs` declares, in order.
fn declared() -> Vec<String> {
    let lib = source(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"));
    lib.lines()
        .filter_map(|line| {
            let line = line.split("//").next().unwrap_or_default().trim();
            let line = line.trim_start_matches("pub ");
            let name = line.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.to_owned())
        })
        .collect()
}

/// The text without `//` and `/* */` comments. No string literal in the runtime holds `//`
/// followed by `crate::`, so a comment marker inside a literal only hides text we do not need.
fn without_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('/') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if tail.starts_with("//") {
            rest = tail.find('\n').map_or("", |end| &tail[end..]);
        } else if tail.starts_with("/*") {
            rest = tail.find("*/").map_or("", |end| &tail[end + 2..]);
        } else {
            out.push('/');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The text without `#[cfg(test)] mod … { … }` blocks.
fn without_test_modules(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        let is_module = after.trim_start().starts_with("mod ");
        match after.find('{').filter(|_| is_module) {
            Some(open) => {
                let mut depth = 0usize;
                let mut end = after.len();
                for (i, c) in after[open..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = open + i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                rest = &after[end..];
            }
            None => {
                out.push_str("#[cfg(test)]");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The first segment of every `crate::` path: `crate::a::b` and `crate::{a::b, c}` give a and c.
fn referenced(code: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        if code[..at]
            .chars()
            .next_back()
            .is_some_and(|c| is_ident(c) || c == '$')
        {
            continue; // e.g. `$crate::`
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let name: String = item.trim().chars().take_while(|&c| is_ident(c)).collect();
                if !name.is_empty() {
                    names.push(name);
                }
            }
        } else {
            names.push(rest.chars().take_while(|&c| is_ident(c)).collect());
        }
    }
    names
}

/// The files of a module: `src/<name>.rs`, or every file of the folder `src/<name>/` but its
/// `tests.rs` files (the `#[cfg(test)] mod tests;` beside the code).
fn module_files(name: &str) -> Vec<std::path::PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let flat = src.join(format!("{name}.rs"));
    if flat.exists() {
        return vec![flat];
    }
    let mut files = Vec::new();
    let mut folders = vec![src.join(name)];
    while let Some(folder) = folders.pop() {
        let entries =
            std::fs::read_dir(&folder).unwrap_or_else(|e| panic!("{}: {e}", folder.display()));
        for entry in entries {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && path.file_name().is_some_and(|n| n != "tests.rs")
            {
                files.push(path);
            }
        }
    }
    assert!(!files.is_empty(), "module {name} has no file");
    files.sort();
    files
}

#[test]
fn every_module_imports_only_modules_declared_before_it() {
    let order = declared();
    assert!(order.len() > 20, "lib.rs declares {order:?}");
    let mut wrong = Vec::new();
    for (position, module) in order.iter().enumerate() {
        let code: String = module_files(module)
            .iter()
            .map(|file| without_test_modules(&without_comments(&source(file))))
            .collect();
        for name in referenced(&code) {
            if name == *module {
                continue;
            }
            match order.iter().position(|m| *m == name) {
                Some(at) if at < position => {}
                Some(_) => wrong.push(format!("{module} -> {name}: declared after it")),
                None => wrong.push(format!(
                    "{module} -> crate::{name}: not a module; name the module that defines it"
                )),
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "imports that point up:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_reader_sees_groups_and_cfg_test_blocks_as_intended() {
    let code = "use crate::{a::B, c};\nfn f() { crate::d::e(); $crate::x }\n// crate::comment\n\
                #[cfg(test)]\nmod tests { use crate::t; }\n#[cfg(test)]\nfn g() { crate::h }";
    let code = without_test_modules(&without_comments(code));
    assert_eq!(referenced(&code), ["a", "c", "d", "h"]);
}
