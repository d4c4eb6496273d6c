//! The crate's root is small on purpose: the attribute, the types a handler or a `rocket()`
//! function names, and modules for the rest, as Rocket does. Adding to it is a decision, made
//! here: this test lists every public name at the root, and fails when one appears or goes.

// Each name the root promises, used by name: the build fails if one goes away.
#[allow(unused_imports)]
use rocket_api_key::{
    audit, catchers, config, keygen, load, log_filter, openapi, require_api_key, scope, testing,
    usage, ApiKey, ApiKeyStore, ApiKeyStoreBuilder, ApiKeyStoreFairing, Authorized, Reason,
    Rejection, LOG_TARGET,
};

/// The items at the root of the facade, modules apart.
const ITEMS: [&str; 10] = [
    "ApiKey",
    "ApiKeyStore",
    "ApiKeyStoreBuilder",
    "ApiKeyStoreFairing",
    "Authorized",
    "LOG_TARGET",
    "Reason",
    "Rejection",
    "catchers",
    "require_api_key",
];

/// The modules at the root, where everything else lives.
const MODULES: [&str; 10] = [
    "audit",
    "config",
    "database",
    "keygen",
    "load",
    "log_filter",
    "openapi",
    "scope",
    "testing",
    "usage",
];

/// The public names declared at the root of `src/lib.rs`, with whether each is a module. Reads
/// `pub use` lists (braces included) and `pub mod`/`fn`/`struct`/… items, skips what
/// `#[doc(hidden)]` hides, and refuses glob re-exports, which would hide growth from this test.
fn root_names(source: &str) -> Vec<(String, bool)> {
    let code: String = source
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut names = Vec::new();
    let mut depth = 0usize;
    let mut hidden = false;
    let mut rest = code.as_str();
    while !rest.is_empty() {
        let trimmed = rest.trim_start();
        if depth == 0 && trimmed.starts_with("#[doc(hidden)]") {
            hidden = true;
        }
        if depth == 0 && trimmed.starts_with("pub use ") {
            let end = trimmed.find(';').expect("`pub use` ends with `;`");
            let tree = &trimmed["pub use ".len()..end];
            assert!(
                !tree.contains('*'),
                "glob re-export at the root: `pub use {tree}`"
            );
            if !hidden {
                names.extend(leaves(tree).into_iter().map(|name| (name, false)));
            }
            hidden = false;
            rest = &trimmed[end + 1..];
            continue;
        }
        for kind in [
            "mod", "fn", "struct", "enum", "trait", "type", "const", "static", "macro",
        ] {
            let declared = trimmed
                .strip_prefix("pub ")
                .and_then(|t| t.strip_prefix(kind))
                .and_then(|t| t.strip_prefix(' '));
            if let (0, Some(after)) = (depth, declared) {
                let name: String = after
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !hidden {
                    names.push((name, kind == "mod"));
                }
                hidden = false;
            }
        }
        let mut chars = trimmed.chars();
        match chars.next() {
            Some('{') => depth += 1,
            Some('}') => depth -= 1,
            Some(';') if depth == 0 => hidden = false,
            _ => {}
        }
        rest = chars.as_str();
    }
    names.sort();
    names
}

/// The names a `use` tree brings in: `a::{b, c::{d, e as f}}` gives b, d and f.
fn leaves(tree: &str) -> Vec<String> {
    let tree = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    let Some(open) = tree.find('{') else {
        let last = tree.rsplit("::").next().unwrap_or(&tree);
        return vec![last.rsplit(" as ").next().unwrap_or(last).trim().to_owned()];
    };
    let inner = &tree[open + 1..tree.rfind('}').expect("balanced braces")];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .flat_map(leaves)
        .collect()
}

#[test]
fn the_root_holds_ten_items_and_ten_modules() {
    let source = include_str!("../src/lib.rs");
    let names = root_names(source);
    let items: Vec<&str> = names
        .iter()
        .filter(|n| !n.1)
        .map(|n| n.0.as_str())
        .collect();
    let modules: Vec<&str> = names.iter().filter(|n| n.1).map(|n| n.0.as_str()).collect();
    // `use` re-exports of modules are counted as modules.
    let (reexported_modules, items): (Vec<&str>, Vec<&str>) =
        items.into_iter().partition(|n| MODULES.contains(n));
    let mut modules = [modules, reexported_modules].concat();
    modules.sort();
    assert_eq!(
        items, ITEMS,
        "the root's items changed: update ITEMS if that is meant"
    );
    assert_eq!(
        modules, MODULES,
        "the root's modules changed: update MODULES if that is meant"
    );
    assert!(ITEMS.len() <= 12);
}

#[test]
fn the_reader_sees_groups_renames_and_hidden_items() {
    let source = "//! docs with pub use fake::Thing;\n\
                  pub use a::{b, c::{d, e as f}};\npub use g::h as i;\npub mod m;\n\
                  #[doc(hidden)]\npub mod __private { pub use x::Y; }\n\
                  #[doc(hidden)]\npub use z::Hidden;\npub fn f2() {}\n";
    let names: Vec<String> = root_names(source).into_iter().map(|n| n.0).collect();
    assert_eq!(names, ["b", "d", "f", "f2", "i", "m"]);
}

#[test]
#[should_panic(expected = "glob re-export")]
fn a_glob_at_the_root_is_refused() {
    root_names("pub use other::*;\n");
}
