//! A flood of rejections is logged up to `rejected_log_limit` events a second and summarised
//! beyond it, while the usage figures count every rejection. Captured by a global subscriber, in
//! its own binary, like `logs.rs`.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use rocket::http::Status;

use common::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The `suppressed` counts of every summary event in `logs`.
fn suppressed_counts(logs: &str) -> Vec<u64> {
    logs.lines()
        .filter(|line| line.contains("request rejections not logged"))
        .map(|line| {
            let field = line
                .split("suppressed=")
                .nth(1)
                .expect("a suppressed field");
            field.split_whitespace().next().unwrap().parse().unwrap()
        })
        .collect()
}

#[test]
fn floods_are_summarised_and_every_rejection_is_counted() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    const FLOOD: u64 = 50;
    let c = client(keys().rejected_log_limit(5));
    for i in 0..FLOOD {
        let unknown = format!("unknown-key-{i:04}-0123456789");
        assert_eq!(
            get_with(&c, "/any", &key(&unknown)).status(),
            Status::Unauthorized
        );
    }
    let usage: serde_json::Value =
        serde_json::from_str(&get_with(&c, "/usage", &[]).into_string().unwrap()).unwrap();
    assert_eq!(usage["unattributed"]["unknown"], FLOOD);
    // Shutdown reports what the last second held back.
    drop(c.terminate());

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let logged = logs.matches("request rejected").count() as u64;
    let summarised: u64 = suppressed_counts(&logs).iter().sum();
    // However the flood fell across seconds: none lost, none reported twice, most held back.
    assert_eq!(logged + summarised, FLOOD, "{logs}");
    assert!(logged < FLOOD, "{logs}");
    assert!(
        logs.contains("WARN rocket_api_key: request rejections not logged suppressed="),
        "{logs}"
    );
    assert!(logs.contains("limit=5"), "{logs}");
}
