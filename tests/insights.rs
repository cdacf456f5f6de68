//! Insights end to end, through the real binary on a sled store: the worked example's
//! report as of a moment, the drill-down's insight filters, and their usage errors.

mod support;

use serde_json::Value;
use support::{run, text};

fn fixture(name: &str) -> String {
    format!(
        "{}/crates/conformance/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

const AS_OF: &str = "2026-03-10T00:00:00Z";

fn ids(store: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["recipients", "world", "--format", "json", "--as-of", AS_OF];
    args.extend_from_slice(extra);
    let out = run(store, &args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{extra:?}: {}",
        text(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r["message_id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_insights_example_reports_and_filters_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sled:{}", dir.path().join("db").display());
    let out = run(&store, &["ingest", &fixture("insights.ndjson")]);
    assert_eq!(text(&out.stdout), "ingested 26, duplicates 0, rejected 0\n");

    let out = run(
        &store,
        &[
            "report",
            "world",
            "--format",
            "json",
            "--as-of",
            AS_OF,
            "--stale-after",
            "24",
        ],
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    let want: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("insights.expected.json")).unwrap())
            .unwrap();
    assert_eq!(got, want);

    assert_eq!(
        ids(&store, &["--stale", "--stale-after", "24"]),
        ["w7", "w8"]
    );
    assert_eq!(ids(&store, &["--age", "1h_to_6h"]), ["w6"]);
    assert_eq!(ids(&store, &["--country", "+7"]), ["w4", "w5"]);
    assert_eq!(ids(&store, &["--country", "+882/001"]), ["w10"]);
    assert_eq!(
        ids(&store, &["--country", "LV", "--status", "errors"]),
        ["w9"]
    );
    assert_eq!(
        ids(&store, &["--country", "LV", "--age", "24h_to_72h"]),
        ["w8"]
    );

    // Usage errors exit 2 and name the option.
    for (args, says) in [
        (vec!["report", "world", "--as-of", "2026-03-10"], "--as-of"),
        (
            vec!["report", "world", "--stale-after", "0"],
            "--stale-after",
        ),
        (
            vec!["report", "world", "--stale-after", "8761"],
            "--stale-after",
        ),
        (vec!["recipients", "world", "--age", "2h"], "--age"),
        (vec!["recipients", "world", "--country", "371"], "--country"),
    ] {
        let out = run(&store, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}
