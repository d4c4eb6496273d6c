//! A flood of rejections is logged up to `rejected_log_limit` events a second and summarised
//! beyond it, while the usage figures count every rejection. Captured by a global subscriber, in
//! its own binary, like `logs.rs`.

mod common;

use rocket::http::Status;

use common::*;

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
    let captured = Captured::install();

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

    let logs = captured.text();
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
