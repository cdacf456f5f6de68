//! Several stateless instances on one PostgreSQL database: two `smsreport serve`
//! processes on one schema, eight HTTP clients posting overlapping, duplicated and
//! shuffled slices of one stream to both at once. The result is exactly a sequential
//! ingest of the stream: the same report, the same drill-down, and `verify` passes.

mod support;

use smsreport_conformance::pg::Schema;
use support::{assert_verifies, http, pg_base, report, run, synth, text, write_lines, Rng, Server};

#[test]
fn two_servers_and_eight_clients_on_one_database_equal_a_sequential_ingest() {
    const CLIENTS: usize = 8;
    let Some(base) = pg_base("the two-server PostgreSQL test") else {
        return;
    };
    let (shared_schema, sequential_schema) = (Schema::fresh_on(&base), Schema::fresh_on(&base));
    let shared = shared_schema.url("pool_max=4");
    let sequential = sequential_schema.url("pool_max=2");
    let lines = synth("together", 3_000, 21);

    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.ndjson");
    write_lines(&input, &lines);
    let out = run(&sequential, &["ingest", input.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let servers = [Server::start(&shared, &[]), Server::start(&shared, &[])];
    let (campaign, rest) = lines.split_first().unwrap();
    let (status, body) = http(
        &servers[0].addr,
        "POST",
        "/v1/events",
        "",
        campaign.as_bytes(),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");

    // Client i takes every chunk whose number is i mod 4 (so two clients share each
    // chunk), a tenth of the others at random, and each of its lines a second time with
    // probability 1/8; it shuffles them and posts batches of 1 to 150 lines, to both
    // servers in turn.
    let mut rng = Rng::from_env_or_clock("two servers");
    let chunks: Vec<&[String]> = rest.chunks(40).collect();
    let mut slices = Vec::new();
    for i in 0..CLIENTS {
        let mut mine: Vec<String> = Vec::new();
        for (n, chunk) in chunks.iter().enumerate() {
            if n % 4 == i % 4 || rng.between(0, 10) == 0 {
                for l in *chunk {
                    mine.push(l.clone());
                    if rng.between(0, 8) == 0 {
                        mine.push(l.clone());
                    }
                }
            }
        }
        rng.shuffle(&mut mine);
        let mut batches = Vec::new();
        while !mine.is_empty() {
            let n = (rng.between(1, 151) as usize).min(mine.len());
            batches.push(mine.drain(..n).collect::<Vec<_>>().join("\n"));
        }
        slices.push(batches);
    }
    let posted: usize = slices.iter().map(Vec::len).sum();
    let addrs = [servers[0].addr.clone(), servers[1].addr.clone()];
    let clients: Vec<_> = slices
        .into_iter()
        .enumerate()
        .map(|(i, batches)| {
            let addrs = addrs.clone();
            std::thread::spawn(move || {
                for (n, body) in batches.iter().enumerate() {
                    let addr = &addrs[(i + n) % 2];
                    let (status, answer) = http(addr, "POST", "/v1/events", "", body.as_bytes())
                        .unwrap_or_else(|e| panic!("client {i}, batch {n}: {e}"));
                    assert_eq!(status, 200, "client {i}, batch {n}: {answer}");
                    let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
                    assert_eq!(v["rejected"], serde_json::json!([]), "{answer}");
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    eprintln!("two servers: {posted} batches from {CLIENTS} clients");

    // Both servers answer the sequential report.
    let want = report(&sequential, "together");
    for s in &servers {
        let (status, got) = http(
            &s.addr,
            "GET",
            &format!("/v1/campaigns/together/report?as_of={}", support::AS_OF),
            "",
            b"",
        )
        .unwrap();
        assert_eq!(status, 200, "{got}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&got).unwrap(),
            want
        );
    }
    drop(servers);
    assert_eq!(report(&shared, "together"), want);
    for args in [
        &["recipients", "together", "--format", "json"][..],
        &["campaigns", "--format", "json"][..],
    ] {
        let a = run(&shared, args);
        let b = run(&sequential, args);
        assert!(a.status.success() && b.status.success());
        assert_eq!(text(&a.stdout), text(&b.stdout), "{args:?}");
    }
    assert_verifies(&shared, "two servers");
}
