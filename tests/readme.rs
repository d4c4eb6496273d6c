//! The README's configuration is real: every `Rocket.toml` block loads as written and with its
//! commented settings uncommented, the reference block shows the defaults, and the keys file
//! loads, and the SQL grants are those `apikey` applies. (The `nginx` blocks are run by
//! `tests/proxy.rs`.) A block that names a key table
//! loads against a real PostgreSQL started for it, through the fairing that reads the table.

#[path = "support/process.rs"]
mod process;
#[path = "support/postgres.rs"]
mod postgres;

use rocket::figment::providers::{Format, Toml};
use rocket::figment::Figment;
use rocket_api_key::{config::Config, ApiKeyStore};

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// The contents of every block fenced as `lang`.
fn blocks(readme: &str, lang: &str) -> Vec<String> {
    readme
        .split(&format!("```{lang}\n"))
        .skip(1)
        .map(|rest| rest[..rest.find("```").expect("a closed block")].to_owned())
        .collect()
}

/// The blocks that configure Rocket (not Cargo's `[dependencies]`).
fn rocket_toml_blocks(readme: &str) -> Vec<String> {
    let all = blocks(readme, "toml");
    let rocket: Vec<String> = all.into_iter().filter(|b| b.contains("[default")).collect();
    assert!(
        rocket.len() >= 5,
        "the README's Rocket.toml blocks were not found"
    );
    rocket
}

/// `block` with every commented setting (`# name = value`) uncommented; an uncommented
/// alternative replaces the line that sets the same name in the same table.
fn uncommented(block: &str) -> String {
    let setting = |line: &str| -> Option<String> {
        let (name, _) = line.split_once('=')?;
        let name = name.trim();
        (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
            .then(|| name.to_owned())
    };
    let mut lines: Vec<String> = Vec::new();
    for line in block.lines() {
        match line.strip_prefix("# ").filter(|l| setting(l).is_some()) {
            Some(alternative) => {
                let name = setting(alternative);
                let table_start = lines.iter().rposition(|l| l.starts_with('[')).unwrap_or(0);
                let mut table = lines.split_off(table_start);
                table.retain(|l| setting(l) != name);
                lines.extend(table);
                lines.push(alternative.to_owned());
            }
            None => lines.push(line.to_owned()),
        }
    }
    lines.join("\n") + "\n"
}

/// Loads `toml` as Rocket would (its own settings and the `api_keys` table) and the keys layer
/// with it, validation included.
fn load(toml: &str) {
    let figment = Figment::from(rocket::Config::debug_default())
        .merge(Toml::string(toml).nested())
        .select("default");
    figment
        .extract::<rocket::Config>()
        .unwrap_or_else(|e| panic!("Rocket refuses the block: {e}\n{toml}"));
    // A configured keys file must exist to load; the block's path is an example.
    let file = keys_file();
    let figment = figment.merge(("api_keys.keys_file", file.to_str().unwrap()));
    if figment.find_value("api_keys.keys_database_url").is_ok() {
        load_with_database(figment, toml);
        let _ = std::fs::remove_file(file);
        return;
    }
    let loaded = ApiKeyStore::builder().from_env(false).load(&figment);
    let _ = std::fs::remove_file(file);
    loaded.unwrap_or_else(|e| panic!("the keys layer refuses the block: {e}\n{toml}"));
}

/// A block with a key table: its URL is an example, so a real one takes its place, with a key
/// in it, and the application ignites with the block's settings.
fn load_with_database(figment: Figment, toml: &str) {
    let Some(pg) = postgres::Postgres::start() else {
        return;
    };
    let url = pg.url();
    rocket::execute(async {
        let table = rocket_api_key::database::KeyTable::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        table.init().await.unwrap_or_else(|e| panic!("{e}"));
        table
            .issue("from_the_table", "scopes=read:orders")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut figment = figment.merge(("api_keys.keys_database_url", &url));
        // The block's CA file is an example too: a real one takes its place.
        let dir = process::TempDir::new("readme-ca");
        if figment.find_value("api_keys.keys_database_ca").is_ok() {
            figment = figment.merge(("api_keys.keys_database_ca", a_ca_file(&dir.0)));
        }
        let rocket =
            rocket::custom(figment).attach(ApiKeyStore::builder().from_env(false).fairing());
        let rocket = rocket
            .ignite()
            .await
            .unwrap_or_else(|e| panic!("the keys layer refuses the block: {e}\n{toml}"));
        let keys = rocket.state::<ApiKeyStore>().expect("the store");
        assert!(
            keys.names().contains(&"from_the_table".to_owned()),
            "{toml}"
        );
    });
}

/// A CA certificate in PEM, made with openssl in `dir`.
fn a_ca_file(dir: &std::path::Path) -> std::path::PathBuf {
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args([
            "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
        ])
        .args(["-subj", "/CN=readme CA"])
        .current_dir(dir)
        .output()
        .expect("openssl runs (.ci/run installs it)");
    assert!(status.status.success(), "{status:?}");
    dir.join("ca.pem")
}

/// The README's keys file, written to a path of its own for each caller (tests run in parallel).
fn keys_file() -> std::path::PathBuf {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("rak-readme-keys-{}-{n}", std::process::id()));
    std::fs::write(&path, keys_file_block(&readme())).unwrap();
    path
}

fn keys_file_block(readme: &str) -> String {
    blocks(readme, "text")
        .into_iter()
        .find(|b| b.starts_with("# /etc/orders/api-keys"))
        .expect("the keys file example")
}

#[test]
fn every_rocket_toml_block_loads_with_and_without_its_comments() {
    for block in rocket_toml_blocks(&readme()) {
        load(&block);
        load(&uncommented(&block));
    }
}

#[test]
fn the_reference_block_shows_the_defaults() {
    let readme = readme();
    let block = rocket_toml_blocks(&readme)
        .into_iter()
        .find(|b| b.starts_with("[default.api_keys]\nheader"))
        .expect("the reference block");
    let config: Config = Figment::from(Toml::string(&block).nested())
        .select("default")
        .focus("api_keys")
        .extract()
        .unwrap_or_else(|e| panic!("the README's block does not parse: {e}\n{block}"));
    assert_eq!(config, Config::default());
    // The commented settings are real fields, and off by default.
    let config: Config = Figment::from(Toml::string(&uncommented(&block)).nested())
        .select("default")
        .focus("api_keys")
        .extract()
        .unwrap();
    assert!(config.failure_limit.is_some() && config.keys_file.is_some());
}

#[test]
fn the_keys_file_example_loads() {
    let path = keys_file();
    let keys = ApiKeyStore::builder()
        .from_env(false)
        .keys_file(&path)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(keys.names(), ["billing", "reporting"]);
    let _ = std::fs::remove_file(path);
}

#[test]
fn uncommenting_replaces_alternatives() {
    let block =
        "[default.api_keys]\na = 1\n# a = 2   # the other way\n# b = \"x\"\n# just a comment\n";
    assert_eq!(
        uncommented(block),
        "[default.api_keys]\na = 2   # the other way\nb = \"x\"\n# just a comment\n"
    );
}

/// The grants the README shows are the ones `apikey db init --grants orders_app,keys_admin`
/// applies (tests/postgres.rs runs an instance and `apikey` as such roles).
#[test]
fn the_grants_shown_are_the_ones_applied() {
    let shown = blocks(&readme(), "sql");
    let applied =
        rocket_api_key::database::grant_statements("public", "orders_app", "keys_admin").unwrap();
    assert_eq!(shown, [applied.join("\n") + "\n"]);
}
