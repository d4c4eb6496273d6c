//! Compile-time behaviour of `#[require_api_key]`: the handler shapes it must accept, and the
//! error a user sees for each misuse. Regenerate the `.stderr` files with `TRYBUILD=overwrite`.
//!
//! The README's Rust blocks are compiled here too, as written, so that a renamed item or a
//! changed signature breaks the build of this test rather than a reader's copy of the snippet.

use std::path::PathBuf;

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
    for file in readme_programs() {
        t.pass(file);
    }
}

/// The README's ```` ```rust ```` blocks, in order.
fn readme_blocks() -> Vec<String> {
    let readme = include_str!("../README.md");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```rust") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// Each README block made a program, with only what the prose around it supplies: the first
/// block's elided body and its `Order` type, the routes of the launch and testing blocks (the
/// block before the launch block), and a `main` around the subscriber set-up. trybuild runs what
/// it builds, so the programs that would serve do not: `#[launch]` and `#[rocket::main]` become
/// plain functions, the same code; the testing block's module is kept outside `cfg(test)`, so
/// that it is compiled.
fn readme_programs() -> Vec<PathBuf> {
    let blocks = readme_blocks();
    let [attribute, routes, launch, testing, openapi, subscriber, metrics] = &blocks[..] else {
        panic!(
            "the README has {} Rust blocks; give each new one its context here",
            blocks.len()
        );
    };
    let not_launched = |code: &str| {
        let code = code
            .replace(
                "use rocket::{get, launch, routes};",
                "use rocket::{get, routes};",
            )
            .replace(
                "#[launch]\nfn rocket() -> _ {",
                "#[allow(dead_code)]\nfn rocket() -> rocket::Rocket<rocket::Build> {",
            )
            .replace(
                "#[rocket::main]\nasync fn main()",
                "#[allow(dead_code)]\nasync fn serve()",
            );
        assert!(!code.contains("launch]") && !code.contains("rocket::main"));
        code
    };
    let programs = [
        (
            "attribute",
            format!(
                "use rocket::{{get, serde::json::Json}};\n\
                 #[derive(rocket::serde::Serialize)]\n#[serde(crate = \"rocket::serde\")]\n\
                 struct Order {{}}\n{}\nfn main() {{}}\n",
                attribute.replace("{ /* … */ }", "{ Json(Vec::<Order>::new()) }")
            ),
        ),
        (
            "routes",
            format!("{}\nfn main() {{}}\n", not_launched(routes)),
        ),
        (
            "launch",
            format!(
                "{}\n{}\nfn main() {{}}\n",
                not_launched(routes).replace("fn rocket()", "fn _rocket()"),
                not_launched(launch)
            ),
        ),
        (
            // Built as a program, not a test: checked with the test module and its test in.
            "testing",
            format!(
                "{}\n{}\nfn main() {{}}\n",
                not_launched(routes),
                testing
                    .replacen("#[cfg(test)]\n", "#[allow(dead_code)]\n", 1)
                    .replacen("    #[test]\n", "", 1)
            ),
        ),
        ("openapi", format!("{openapi}\nfn main() {{}}\n")),
        ("subscriber", format!("fn main() {{\n{subscriber}}}\n")),
        (
            "metrics",
            format!("{}\nfn main() {{}}\n", not_launched(metrics)),
        ),
    ];
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("readme");
    std::fs::create_dir_all(&dir).unwrap();
    programs
        .into_iter()
        .map(|(name, code)| {
            let path = dir.join(format!("readme_{name}.rs"));
            std::fs::write(&path, code).unwrap();
            path
        })
        .collect()
}
