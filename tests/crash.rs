//! Crash safety of the embedded store: `ingest` killed with SIGKILL at random moments
//! never leaves totals disagreeing with per-message state, and re-ingesting the same
//! input after the crashes gives exactly the report of an uninterrupted run.
//!
//! `SMSREPORT_CRASH_CYCLES` sets the number of kills (default 6).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use smsreport_core::synth::{events, SynthConfig};
use smsreport_core::Millis;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_smsreport"))
}

fn run(store: &str, args: &[&str]) -> Output {
    bin()
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .expect("run smsreport")
}

fn write_events(path: &Path, messages: u64) {
    let cfg = SynthConfig {
        campaign_id: "crash".into(),
        name: "Crash test".into(),
        messages,
        seed: 7,
        start: Millis::parse("2026-03-01T08:00:00Z").unwrap(),
    };
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for line in events(&cfg) {
        writeln!(f, "{line}").unwrap();
    }
    f.flush().unwrap();
}

#[test]
fn killed_ingests_lose_nothing_and_double_count_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.ndjson");
    write_events(&input, 20_000);
    let input = input.to_str().unwrap();

    let reference = format!("sled:{}", dir.path().join("reference").display());
    let out = run(&reference, &["ingest", input]);
    assert!(
        out.status.success(),
        "reference ingest: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = run(&reference, &["report", "crash", "--format", "json"]);
    assert!(want.status.success());

    let crashed = format!("sled:{}", dir.path().join("crashed").display());
    let cycles: u64 = std::env::var("SMSREPORT_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let mut rng = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut killed_mid_way = 0;
    for cycle in 0..cycles {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let delay = Duration::from_millis(20 + rng % 1500);
        let mut child = bin()
            .args(["--store", &crashed, "ingest", input])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            killed_mid_way += 1;
        }
        child.kill().ok(); // SIGKILL
        child.wait().unwrap();
        let v = run(&crashed, &["verify"]);
        assert!(
            v.status.success(),
            "cycle {cycle}, killed after {delay:?}: verify failed:\n{}{}",
            String::from_utf8_lossy(&v.stdout),
            String::from_utf8_lossy(&v.stderr)
        );
    }
    eprintln!("{killed_mid_way} of {cycles} ingests were killed mid-way");
    assert!(
        killed_mid_way > 0,
        "no ingest was still running when killed: the test proved nothing"
    );
    let out = run(&crashed, &["ingest", input]);
    assert!(
        out.status.success(),
        "final ingest: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = run(&crashed, &["report", "crash", "--format", "json"]);
    let got: serde_json::Value = serde_json::from_slice(&got.stdout).unwrap();
    let want: serde_json::Value = serde_json::from_slice(&want.stdout).unwrap();
    assert_eq!(
        got, want,
        "the report after crashes and a re-ingest equals an uninterrupted run"
    );
    assert!(run(&crashed, &["verify"]).status.success());
}
