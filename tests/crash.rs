//! Crash safety, in the manner of sled's own crash tests: the real binary, killed with
//! SIGKILL at random moments, never loses what it acknowledged and never counts anything
//! twice.
//!
//! - `ingest` of a generated stream is killed again and again; after each kill `verify`
//!   passes (totals agree with per-message state), and re-ingesting the stream after the
//!   kills gives exactly the report of an uninterrupted run. On sled, SQLite and
//!   PostgreSQL.
//! - `serve` is killed while clients post batches to `/v1/events`; every batch that got
//!   a `200` is still there after the restart (posting it again changes nothing), and
//!   once every batch is in, the report equals a sequential ingest. On sled, SQLite and
//!   PostgreSQL with four clients posting 100 lines per request, and with sixteen
//!   posting one event per request on sled and PostgreSQL, which `serve` gathers into
//!   shared store writes (group commit): a kill then cuts writes that hold many requests.
//!
//! `SMSREPORT_CRASH_CYCLES` sets the number of kills per test (default 20);
//! `SMSREPORT_CRASH_LONG=1` runs the long mode (200 kills and a four times larger
//! stream). `SMSREPORT_CRASH_SEED` replays a run's random delays (each test prints its
//! seed).

mod support;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smsreport_conformance::pg::Schema;
use support::{
    assert_verifies, cmd, cycles, http, pg_base, report, run, synth, text, write_lines, Rng, Server,
};

fn long_mode() -> bool {
    std::env::var("SMSREPORT_CRASH_LONG").is_ok_and(|v| !v.is_empty() && v != "0")
}

fn kill_cycles() -> u64 {
    cycles(if long_mode() { 200 } else { 20 })
}

/// Messages in the generated stream (four events each, roughly): a debug build ingests
/// the default in one to three seconds.
fn stream_messages() -> u64 {
    if long_mode() {
        20_000
    } else {
        5_000
    }
}

/// Kills `ingest` of `input` into `crashed` again and again, checking `verify` after each
/// kill, then ingests once more to the end and compares with an uninterrupted run into
/// `reference`.
fn killed_ingests(name: &str, reference: &str, crashed: &str) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.ndjson");
    write_lines(&input, &synth("crash", stream_messages(), 7));
    let input = input.to_str().unwrap();

    let started = Instant::now();
    let out = run(reference, &["ingest", input]);
    let uninterrupted = started.elapsed();
    assert!(
        out.status.success(),
        "reference ingest: {}",
        text(&out.stderr)
    );
    let want = report(reference, "crash");
    // Ingesting it all again is all duplicates, and quicker than the first time.
    let started = Instant::now();
    let out = run(reference, &["ingest", input]);
    let again = started.elapsed();
    assert!(
        text(&out.stdout).starts_with("ingested 0,"),
        "{}",
        text(&out.stdout)
    );

    let cycles = kill_cycles();
    let mut rng = Rng::from_env_or_clock(name);
    // Kill anywhere from start-up to near the end of the quicker of the two, so that
    // most kills find the ingest running however much of the stream is already stored.
    let span = (uninterrupted.min(again).as_millis() as u64 * 9 / 10).max(100);
    let mut killed_mid_way = 0;
    for cycle in 0..cycles {
        let delay = Duration::from_millis(rng.between(5, span));
        let mut child = cmd(crashed, &["ingest", input])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            killed_mid_way += 1;
        }
        child.kill().ok(); // SIGKILL
        child.wait().unwrap();
        assert_verifies(
            crashed,
            &format!("{name}: cycle {cycle}, killed after {delay:?}"),
        );
    }
    eprintln!(
        "{name}: {killed_mid_way} of {cycles} ingests were killed mid-way \
         (an uninterrupted one takes {uninterrupted:?}, a repeated one {again:?})"
    );
    assert!(
        killed_mid_way * 3 >= cycles,
        "fewer than a third of the ingests were still running when killed: the test proved little"
    );
    let out = run(crashed, &["ingest", input]);
    assert!(out.status.success(), "final ingest: {}", text(&out.stderr));
    assert_eq!(
        report(crashed, "crash"),
        want,
        "the report after crashes and a re-ingest equals an uninterrupted run"
    );
    assert_verifies(crashed, name);
}

#[test]
fn killed_ingests_lose_nothing_and_double_count_nothing() {
    let dir = tempfile::tempdir().unwrap();
    killed_ingests(
        "sled ingest",
        &format!("sled:{}", dir.path().join("reference").display()),
        &format!("sled:{}", dir.path().join("crashed").display()),
    );
}

#[test]
fn killed_ingests_on_sqlite_lose_nothing_and_double_count_nothing() {
    let dir = tempfile::tempdir().unwrap();
    killed_ingests(
        "sqlite ingest",
        &format!("sqlite:{}", dir.path().join("reference.sqlite").display()),
        &format!("sqlite:{}", dir.path().join("crashed.sqlite").display()),
    );
}

#[test]
fn killed_ingests_on_postgres_lose_nothing_and_double_count_nothing() {
    let Some(base) = pg_base("the PostgreSQL ingest crash test") else {
        return;
    };
    let (reference, crashed) = (Schema::fresh_on(&base), Schema::fresh_on(&base));
    killed_ingests(
        "postgres ingest",
        &reference.url("pool_max=2"),
        &crashed.url("pool_max=2"),
    );
}

/// One batch of lines posted as one request.
struct Batch {
    body: String,
    lines: usize,
}

/// What the clients share.
struct Shared {
    /// The server's address; empty while it is down.
    addr: Mutex<String>,
    todo: Mutex<VecDeque<usize>>,
    acked: Mutex<Vec<usize>>,
    in_flight: AtomicUsize,
    /// `200` answers so far, from any server.
    answered: AtomicUsize,
    done: AtomicBool,
}

/// How the clients of [`killed_server`] post.
struct Load {
    clients: usize,
    /// Lines per request.
    batch_lines: usize,
    /// Messages in the stream.
    messages: u64,
}

/// Four clients posting 100 lines per request.
fn batches() -> Load {
    Load {
        clients: 4,
        batch_lines: 100,
        messages: stream_messages(),
    }
}

/// Sixteen clients posting one event per request, as gateways post callbacks: `serve`
/// gathers concurrent requests into one store write (group commit), so kills land in
/// the middle of writes that hold many requests.
fn callbacks() -> Load {
    Load {
        clients: 16,
        batch_lines: 1,
        messages: stream_messages() / 10,
    }
}

/// Clients post batches to `serve` on `store` while it is SIGKILLed and restarted; every
/// acknowledged batch must survive, and the final report equal a sequential ingest.
fn killed_server(name: &str, store: &str, reference: &str, load: Load) {
    let (clients, batch_lines) = (load.clients, load.batch_lines);
    let lines = synth("served", load.messages, 13);
    let mut rng = Rng::from_env_or_clock(name);

    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.ndjson");
    write_lines(&input, &lines);
    let out = run(reference, &["ingest", input.to_str().unwrap()]);
    assert!(out.status.success(), "reference: {}", text(&out.stderr));
    let want = report(reference, "served");

    // The campaign's definition first, then the rest in batches, in a random order.
    let (campaign, rest) = lines.split_first().unwrap();
    let batches: Arc<Vec<Batch>> = Arc::new(
        rest.chunks(batch_lines)
            .map(|c| Batch {
                body: c.join("\n"),
                lines: c.len(),
            })
            .collect(),
    );
    let mut order: Vec<usize> = (0..batches.len()).collect();
    rng.shuffle(&mut order);

    let mut server = Server::start(store, &[]);
    let (status, body) = http(&server.addr, "POST", "/v1/events", "", campaign.as_bytes())
        .expect("post the campaign");
    assert_eq!(status, 200, "{body}");

    let shared = Arc::new(Shared {
        addr: Mutex::new(server.addr.clone()),
        todo: Mutex::new(order.into()),
        acked: Mutex::new(Vec::new()),
        in_flight: AtomicUsize::new(0),
        answered: AtomicUsize::new(0),
        done: AtomicBool::new(false),
    });
    let clients: Vec<_> = (0..clients)
        .map(|_| {
            let (shared, batches) = (shared.clone(), batches.clone());
            std::thread::spawn(move || {
                let mut refused = 0u64;
                while !shared.done.load(Ordering::SeqCst) {
                    let addr = shared.addr.lock().unwrap().clone();
                    let next = shared.todo.lock().unwrap().pop_front();
                    let (Some(i), false) = (next, addr.is_empty()) else {
                        if let Some(i) = next {
                            shared.todo.lock().unwrap().push_back(i);
                        }
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    shared.in_flight.fetch_add(1, Ordering::SeqCst);
                    let r = http(&addr, "POST", "/v1/events", "", batches[i].body.as_bytes());
                    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
                    match r {
                        Ok((200, body)) => {
                            shared.answered.fetch_add(1, Ordering::SeqCst);
                            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                            assert_eq!(v["rejected"], serde_json::json!([]), "{body}");
                            let mut acked = shared.acked.lock().unwrap();
                            if !acked.contains(&i) {
                                acked.push(i);
                            }
                            // Post it again later: the server stays busy until the last
                            // kill, and a repeat must be all duplicates (checked below).
                            shared.todo.lock().unwrap().push_back(i);
                        }
                        Ok((status, body)) => panic!("batch {i}: {status} {body}"),
                        Err(_) => {
                            // The server died under us: not acknowledged, post it again later.
                            refused += 1;
                            shared.todo.lock().unwrap().push_back(i);
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                }
                refused
            })
        })
        .collect();

    let cycles = kill_cycles();
    let mut killed_in_flight = 0;
    for cycle in 0..cycles {
        // Each kill's clock starts once the new server has acknowledged a request (or
        // after 5 s): a kill while it is still warming up would cut nothing.
        let answered = shared.answered.load(Ordering::SeqCst);
        let waiting = Instant::now();
        while shared.answered.load(Ordering::SeqCst) == answered
            && waiting.elapsed() < Duration::from_secs(5)
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(rng.between(30, 300)));
        *shared.addr.lock().unwrap() = String::new();
        if shared.in_flight.load(Ordering::SeqCst) > 0 {
            killed_in_flight += 1;
        }
        server.kill();
        server = Server::start(store, &[]);
        if cycle + 1 == cycles {
            // The last server gets only the requests below.
            shared.done.store(true, Ordering::SeqCst);
        }
        *shared.addr.lock().unwrap() = server.addr.clone();
    }
    // Stop the clients where they are: some batches are still to post.
    shared.done.store(true, Ordering::SeqCst);
    let refused: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    let acked = shared.acked.lock().unwrap().clone();
    eprintln!(
        "{name}: {cycles} kills ({killed_in_flight} with requests in flight, {refused} requests cut off); \
         {} of {} batches acknowledged",
        acked.len(),
        batches.len()
    );
    assert!(
        killed_in_flight * 3 >= cycles,
        "fewer than a third of the kills found requests in flight: the test proved little"
    );

    // Every acknowledged batch is there: posting it again changes nothing.
    let addr = server.addr.clone();
    for &i in &acked {
        let (status, body) =
            http(&addr, "POST", "/v1/events", "", batches[i].body.as_bytes()).unwrap();
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (v["ingested"].as_u64(), v["duplicates"].as_u64()),
            (Some(0), Some(batches[i].lines as u64)),
            "batch {i} was acknowledged before a crash but is not all there: {body}"
        );
    }
    // The rest, once; then the report is that of a sequential ingest.
    for i in 0..batches.len() {
        if !acked.contains(&i) {
            let (status, body) =
                http(&addr, "POST", "/v1/events", "", batches[i].body.as_bytes()).unwrap();
            assert_eq!(status, 200, "{body}");
        }
    }
    let (status, got) = http(
        &addr,
        "GET",
        &format!("/v1/campaigns/served/report?as_of={}", support::AS_OF),
        "",
        b"",
    )
    .unwrap();
    assert_eq!(status, 200, "{got}");
    let got: serde_json::Value = serde_json::from_str(&got).unwrap();
    assert_eq!(got, want, "the served report equals a sequential ingest");
    // The last server's group commit counted each of those requests (a clean stop
    // prints what it wrote).
    let posted = batches.len();
    let log = server.terminate();
    assert!(
        log.contains(&format!("group commit: {posted} requests in ")),
        "{name}: {log}"
    );
    assert_eq!(report(store, "served"), want);
    assert_verifies(store, name);
}

#[test]
fn killed_server_keeps_every_acknowledged_batch() {
    let dir = tempfile::tempdir().unwrap();
    killed_server(
        "sled serve",
        &format!("sled:{}", dir.path().join("served").display()),
        &format!("sled:{}", dir.path().join("reference").display()),
        batches(),
    );
}

#[test]
fn killed_server_on_sqlite_keeps_every_acknowledged_batch() {
    let dir = tempfile::tempdir().unwrap();
    killed_server(
        "sqlite serve",
        &format!("sqlite:{}", dir.path().join("served.sqlite").display()),
        &format!("sqlite:{}", dir.path().join("reference.sqlite").display()),
        batches(),
    );
}

#[test]
fn killed_server_on_postgres_keeps_every_acknowledged_batch() {
    let Some(base) = pg_base("the PostgreSQL serve crash test") else {
        return;
    };
    let (served, reference) = (Schema::fresh_on(&base), Schema::fresh_on(&base));
    killed_server(
        "postgres serve",
        &served.url("pool_max=4"),
        &reference.url("pool_max=2"),
        batches(),
    );
}

#[test]
fn killed_server_loses_no_acknowledged_callback_of_a_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    killed_server(
        "sled serve, one event per request",
        &format!("sled:{}", dir.path().join("served").display()),
        &format!("sled:{}", dir.path().join("reference").display()),
        callbacks(),
    );
}

#[test]
fn killed_server_on_postgres_loses_no_acknowledged_callback_of_a_group_commit() {
    let Some(base) = pg_base("the PostgreSQL group-commit crash test") else {
        return;
    };
    let (served, reference) = (Schema::fresh_on(&base), Schema::fresh_on(&base));
    killed_server(
        "postgres serve, one event per request",
        &served.url("pool_max=4"),
        &reference.url("pool_max=2"),
        callbacks(),
    );
}
