//! The first load, at ignite (or from [`build`](super::ApiKeyStoreBuilder::build)): the
//! configuration completed from the environment and checked, the key table read, every source
//! loaded, and a keys file still being written given the time to settle.

use std::path::PathBuf;

use zeroize::Zeroizing;

use crate::config::Config;
#[cfg(feature = "postgres")]
use crate::database::keys::DatabaseKeys;
use crate::env::{DATABASE_URL_VAR, KEYS_FILE_VAR};
use crate::load::{KeySource, LoadError, LoadErrors, Loader, ReloadSummary};
use crate::store::ApiKeyStore;
use crate::target::TARGET;

/// Applies the environment's defaults (`API_KEYS_FILE`, `API_KEYS_DATABASE_URL`) and validates
/// the configuration. All problems are reported together.
pub(super) fn prepare(mut config: Config) -> Result<Config, LoadErrors> {
    if config.from_env && config.keys_file.is_none() {
        config.keys_file = std::env::var_os(KEYS_FILE_VAR).map(PathBuf::from);
    }
    if config.from_env && config.keys_database_url.is_none() {
        config.keys_database_url = std::env::var(DATABASE_URL_VAR).ok();
    }
    config
        .validate()
        .map_err(|errors| LoadErrors(errors.into_iter().map(LoadError::Config).collect()))?;
    Ok(config)
}

/// The key table of `keys_database_url`, if one is configured and answers; an error if it does
/// not and `keys_database_required` is on.
#[cfg(feature = "postgres")]
pub(super) async fn read_table(config: &Config) -> Result<Option<DatabaseKeys>, LoadErrors> {
    let Some(url) = config.keys_database_url.as_deref() else {
        return Ok(None);
    };
    match crate::listen::read_table(config, url).await {
        Ok(database) => Ok(Some(database)),
        Err(e) if config.keys_database_required => Err(LoadErrors(vec![LoadError::Database(
            format!("{e} (set `api_keys.keys_database_required = false` to start without it)"),
        )])),
        Err(e) => {
            tracing::warn!(
                target: TARGET,
                error = %e,
                "the key database cannot be reached; starting with the other sources' keys, and \
                 its keys once it answers"
            );
            Ok(None)
        }
    }
}

/// Refuses a configuration with a key table where it cannot be read: outside the fairing,
/// which reads it at ignite and listens for its changes.
pub(super) fn no_database_here(config: &Config) -> Result<(), LoadErrors> {
    match config.keys_database_url {
        Some(_) => Err(LoadErrors(vec![LoadError::Database(
            "the key table (`keys_database_url`, `API_KEYS_DATABASE_URL`) is read by the fairing \
             only: attach `ApiKeyStore::fairing()`, or load without it"
                .into(),
        )])),
        None => Ok(()),
    }
}

/// Loads every source, after `seed` has put in the store what was read beforehand (the key table,
/// at ignite). All problems are reported together.
pub(super) fn load(
    config: Config,
    code_keys: &[(String, Zeroizing<String>)],
    seed: impl FnOnce(&ApiKeyStore),
) -> Result<(ApiKeyStore, ReloadSummary), LoadErrors> {
    // Code keys are parsed once; only their digests are kept, for reloads.
    let mut code = Loader::default();
    for (name, entry) in code_keys {
        code.named_entry(name, KeySource::Code(name.clone()), entry);
    }
    let keys = ApiKeyStore::new(config, code.loaded);
    seed(&keys);
    let mut outcome = keys.reload();
    // A reload defers a keys file that may still be being written to the next poll; at start
    // there is no later poll and no running key to keep, so the file is given the time it
    // needs, once, and read again.
    if let Err(LoadErrors(errors)) = &outcome {
        if let [LoadError::FileUnsettled(path, wait)] = errors.as_slice() {
            tracing::warn!(
                target: TARGET,
                path = ?path,
                wait_ms = wait.as_millis(),
                "keys file may be half-written; reading it again once it has settled"
            );
            std::thread::sleep(*wait);
            outcome = keys.reload();
        }
    }
    match outcome {
        Ok(summary) if code.errors.is_empty() => Ok((keys, summary)),
        Ok(_) => Err(LoadErrors(code.errors)),
        Err(LoadErrors(mut errors)) => {
            errors.extend(code.errors);
            Err(LoadErrors(errors))
        }
    }
}
