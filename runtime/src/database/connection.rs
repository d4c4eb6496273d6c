//! A connection to the key table: TLS (rustls with ring, Mozilla's roots and the CA file of
//! `keys_database_ca`, every certificate verified for the URL's host), required unless the URL
//! turns it off; the server-side timeouts and keepalives every connection sets.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::config::SslMode;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::error::describe;
use super::DatabaseError;
use crate::redact::CredentialUrl;

/// A connection to the server, driven by whoever holds it.
pub(crate) type Connection =
    tokio_postgres::Connection<Socket, <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream>;

/// Opens a connection and returns it unspawned, for the listener, which reads its
/// notifications.
pub(crate) async fn open(
    url: &str,
    ca: Option<&Path>,
    application_name: Option<&str>,
    timeout: Duration,
) -> Result<(Client, Connection), DatabaseError> {
    let shown = CredentialUrl::new(url);
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e: tokio_postgres::Error| DatabaseError::Url(describe(&e, &shown)))?;
    // Fail closed: TLS is required unless the URL turns it off. The client's default,
    // and `prefer`, would fall back to plaintext for a server without TLS (or a
    // man in the middle that says so). Read from the client's own parse, so that text
    // inside a quoted value cannot count as the setting.
    if config.get_ssl_mode() != SslMode::Disable {
        config.ssl_mode(SslMode::Require);
    }
    config.connect_timeout(timeout);
    // The server ends what the client stops waiting for: a statement, a lock wait, a
    // transaction left open by a client that went away.
    let millis = timeout.as_millis().max(1);
    // The URL's own `options` (a `search_path`, a role's settings) are kept, after these,
    // so that they win where both set a parameter: replacing them made an instance read
    // another schema's table than `psql` with the same URL.
    let mut options = format!(
        "-c statement_timeout={millis} -c lock_timeout={millis} \
         -c idle_in_transaction_session_timeout={}",
        millis.saturating_mul(2)
    );
    if let Some(own) = config.get_options().filter(|own| !own.trim().is_empty()) {
        options.push(' ');
        options.push_str(own);
    }
    config.options(options);
    // A dead peer (a cut network, a host gone) is noticed within about a minute even
    // while the listener only waits.
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(30));
    config.keepalives_interval(Duration::from_secs(10));
    config.keepalives_retries(3);
    config.tcp_user_timeout(Duration::from_secs(60));
    if let Some(name) = application_name {
        config.application_name(name);
    }
    let tls = tls(ca)?;
    match rocket::tokio::time::timeout(timeout, config.connect(tls)).await {
        Err(_) => Err(DatabaseError::Timeout(timeout)),
        Ok(Err(e)) => Err(DatabaseError::Connect(describe(&e, &shown))),
        Ok(Ok(pair)) => Ok(pair),
    }
}

/// The TLS client: Mozilla's roots, and the certificates of the PEM file `ca`.
fn tls(ca: Option<&Path>) -> Result<MakeRustlsConnect, DatabaseError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    let mut roots: rustls::RootCertStore = webpki_roots::TLS_SERVER_ROOTS.iter().cloned().collect();
    if let Some(path) = ca {
        let unreadable =
            |e: &dyn fmt::Display| DatabaseError::Tls(format!("{}: {e}", path.display()));
        let mut added = 0;
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| unreadable(&e))? {
            let cert = cert.map_err(|e| unreadable(&e))?;
            roots.add(cert).map_err(|e| unreadable(&e))?;
            added += 1;
        }
        if added == 0 {
            return Err(unreadable(&"no certificate in the file"));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DatabaseError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}
