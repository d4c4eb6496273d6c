//! The PostgreSQL harness (tests/support/postgres.rs) the key store's tests stand on: a real
//! cluster that keeps its data across a restart, requires its password, and leaves no process
//! behind, not even when the test panics.
//!
//! PostgreSQL must be installed (`.ci/run` installs it). Without it these tests say so and pass,
//! unless `REQUIRE_POSTGRES` is set, as it is in CI.

#[path = "support/process.rs"]
mod process;
#[path = "support/postgres.rs"]
mod postgres;

use std::path::Path;

use postgres::Postgres;

#[test]
fn data_outlives_a_stop_and_a_restart() {
    let Some(mut pg) = Postgres::start() else {
        return;
    };
    assert_eq!(pg.psql("select 1 + 1"), "2");
    pg.psql("create table keys (name text primary key); insert into keys values ('orders')");
    let port = pg.port();

    pg.stop();
    let down = pg.try_psql("select 1").expect_err("the server is down");
    assert!(down.contains("127.0.0.1"), "{down}");

    pg.restart();
    assert_eq!(pg.port(), port);
    assert_eq!(pg.psql("select name from keys"), "orders");
}

#[test]
fn the_password_is_required() {
    let Some(pg) = Postgres::start() else {
        return;
    };
    let url = pg.url();
    assert_eq!(
        url,
        format!(
            "postgres://rak:{}@127.0.0.1:{}/postgres?sslmode=disable",
            pg.password(),
            pg.port()
        )
    );
    assert_eq!(pg.password().len(), 32);
    let refused = pg
        .try_psql_with_password("not-the-password", "select 1")
        .expect_err("a wrong password is refused");
    assert!(
        refused.contains("password authentication failed"),
        "{refused}"
    );
    let refused = pg
        .try_psql_with_password("", "select 1")
        .expect_err("no password is refused");
    assert!(refused.contains("password"), "{refused}");
    assert_eq!(pg.psql("select current_user"), "rak");
    // The server logs the refusals, never the password.
    assert!(pg.log().contains("password authentication failed"));
    assert!(!pg.log().contains(pg.password()));
}

#[test]
fn no_server_process_outlives_the_harness() {
    let Some(pg) = Postgres::start() else {
        return;
    };
    let processes = server_processes(&pg);
    let dir = pg.dir().to_owned();
    drop(pg);
    assert_eq!(still_running(&processes), [] as [u32; 0]);
    assert!(!dir.exists(), "{} is left behind", dir.display());

    // A test that panics drops its server while unwinding.
    let mut seen = Vec::new();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let pg = Postgres::start().expect("PostgreSQL started once already");
        seen = server_processes(&pg);
        panic!("the test fails");
    }));
    assert!(panicked.is_err());
    assert!(seen.len() > 1, "{seen:?}");
    assert_eq!(still_running(&seen), [] as [u32; 0]);
}

/// The postmaster and its children (checkpointer, background writer…), from /proc.
fn server_processes(pg: &Postgres) -> Vec<u32> {
    let postmaster = pg.pid().expect("a running server");
    let mut processes = vec![postmaster];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
        let after_comm = &stat[stat.rfind(')').unwrap() + 1..];
        let ppid = after_comm.split_whitespace().nth(1).unwrap();
        if ppid == postmaster.to_string() {
            processes.push(entry.file_name().to_str().unwrap().parse().unwrap());
        }
    }
    processes
}

/// Those of `processes` that still exist, zombies included.
fn still_running(processes: &[u32]) -> Vec<u32> {
    let alive = |pid: &&u32| Path::new(&format!("/proc/{pid}")).exists();
    processes.iter().filter(alive).copied().collect()
}
