//! The README's configuration block is real: it parses (no unknown field), and what it shows as
//! the defaults are the defaults.

use rocket::figment::providers::{Format, Toml};
use rocket::figment::Figment;
use rocket_api_key::Config;

fn config_block(readme: &str) -> &str {
    let start = readme
        .find("[default.api_keys]\nheader")
        .expect("the configuration block");
    let end = start + readme[start..].find("```").expect("the end of the block");
    &readme[start..end]
}

#[test]
fn the_readme_configuration_block_shows_the_defaults() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let block = config_block(&readme);
    let config: Config = Figment::from(Toml::string(block).nested())
        .select("default")
        .focus("api_keys")
        .extract()
        .unwrap_or_else(|e| panic!("the README's block does not parse: {e}\n{block}"));
    assert_eq!(config, Config::default());

    // The commented settings are real fields too.
    let uncommented: String = block
        .lines()
        .map(|line| line.strip_prefix("# ").unwrap_or(line))
        .map(|line| format!("{line}\n"))
        .collect();
    let config: Config = Figment::from(Toml::string(&uncommented).nested())
        .select("default")
        .focus("api_keys")
        .extract()
        .unwrap_or_else(|e| panic!("a commented setting does not parse: {e}"));
    assert!(config.failure_limit.is_some() && config.keys_file.is_some());
}
