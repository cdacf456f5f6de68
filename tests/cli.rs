//! End to end: the real `smsreport` binary on a sled store in a temporary folder, fed the
//! conformance fixtures.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_smsreport");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/conformance/fixtures")
        .join(name)
}

/// A fresh store in its own temporary folder.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn store(&self) -> String {
        format!("sled:{}", self.dir.path().join("db").display())
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--store")
            .arg(self.store())
            .args(args)
            .env_remove("SMSREPORT_STORE")
            .current_dir(self.dir.path());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).stdin(Stdio::null()).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn ingest(&self, name: &str) -> Output {
        self.run(&["ingest", fixture(name).to_str().unwrap()])
    }
}

fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}

fn json_file(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

#[test]
fn basic_fixture_reports_as_expected() {
    let env = Env::new();
    let out = env.ingest("basic.ndjson");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ingested 19, duplicates 0, rejected 0\n");

    let report: Value =
        serde_json::from_str(&env.ok(&["report", "spring-sale", "--format", "json"])).unwrap();
    smsreport_conformance::assert_json_eq(&report, &json_file("basic.expected.json"), "basic");

    // Ingesting the same input again changes nothing.
    let again = env.ingest("basic.ndjson");
    assert_eq!(
        text(&again.stdout),
        "ingested 0, duplicates 19, rejected 0\n"
    );
    let report: Value =
        serde_json::from_str(&env.ok(&["report", "spring-sale", "--format", "json"])).unwrap();
    smsreport_conformance::assert_json_eq(&report, &json_file("basic.expected.json"), "basic");
}

#[test]
fn rules_fixtures_report_and_reject_as_expected() {
    let env = Env::new();
    let first = env.ingest("rules-1.ndjson");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));

    let rejects = env.dir.path().join("rejected.ndjson");
    let second = env.run(&[
        "ingest",
        fixture("rules-2.ndjson").to_str().unwrap(),
        "--rejects",
        rejects.to_str().unwrap(),
    ]);
    assert_eq!(second.status.code(), Some(2), "rejected lines exit 2");
    // Lines 1, 2 and 5 are taken; the other twelve are not (line 16 is blank).
    assert_eq!(
        text(&second.stdout),
        "ingested 3, duplicates 0, rejected 12\n"
    );
    assert_eq!(
        std::fs::read(&rejects).unwrap(),
        std::fs::read(fixture("rules-2.rejected")).unwrap()
    );
    let stderr = text(&second.stderr);
    let numbered: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("line ")?.split(':').next())
        .collect();
    assert_eq!(
        numbered,
        ["3", "4", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15"],
        "{stderr}"
    );
    assert!(stderr.contains("line 4: campaign_id:"), "{stderr}");
    assert!(stderr.contains("line 11: parts:"), "{stderr}");

    let report: Value =
        serde_json::from_str(&env.ok(&["report", "rules", "--format", "json"])).unwrap();
    smsreport_conformance::assert_json_eq(&report, &json_file("rules.expected.json"), "rules");
    assert_eq!(
        env.ok(&["verify"]),
        "verified 1 campaigns, 8 messages: totals agree\n"
    );
}

#[test]
fn ingest_reads_standard_input() {
    let env = Env::new();
    let mut child = env
        .cmd(&["ingest"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(fixture("basic.ndjson")).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "ingested 19, duplicates 0, rejected 0\n");

    let explicit = env
        .cmd(&["ingest", "-"])
        .stdin(std::fs::File::open(fixture("basic.ndjson")).unwrap())
        .output()
        .unwrap();
    assert_eq!(
        text(&explicit.stdout),
        "ingested 0, duplicates 19, rejected 0\n"
    );
}

#[test]
fn table_and_csv_show_the_basic_figures() {
    let env = Env::new();
    env.ingest("basic.ndjson");

    let table = env.ok(&["report", "spring-sale"]);
    let row = |label: &str| {
        table
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no {label} row in\n{table}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(
        table.contains("Spring sale") && table.contains("VIP customers"),
        "{table}"
    );
    assert_eq!(row("Total SMS"), "Total SMS 5 100.0%");
    assert_eq!(row("Delivered"), "Delivered 2 40.0%");
    assert_eq!(row("Sent"), "Sent 1 20.0%");
    assert_eq!(row("Message queued"), "Message queued 0 0.0%");
    assert_eq!(row("Undelivered"), "Undelivered 1 20.0%");
    assert_eq!(row("Delivery errors"), "Delivery errors 1 20.0%");
    assert_eq!(row("Message expired"), "Message expired 1 20.0%");
    assert!(row("Segments").starts_with("Segments 6"));
    assert_eq!(row("Total clicks"), "Total clicks 3");
    assert_eq!(row("Total unique clicks"), "Total unique clicks 2");
    assert_eq!(row("Bot clicks"), "Bot clicks (not counted above) 1");
    assert!(row("Most popular").contains("sale https://shop.example/sale"));
    assert_eq!(row("Click to open rate"), "Click to open rate 1.5 (150.0%)");
    assert!(row("2026-03").starts_with("2026-03 3 █"));

    let csv = env.ok(&["report", "spring-sale", "--format", "csv"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "section,metric,value,percent");
    for want in [
        "delivery,total,5,100.0",
        "delivery,delivered,2,40.0",
        "delivery,errors.expired,1,20.0",
        "delivery,segments,6,",
        "links,total_clicks,3,",
        "links,bot_clicks,1,",
        "links,click_to_open_rate,1.5,150.0",
        "link:sale,url,https://shop.example/sale,",
        "clicks_by_month,2026-03,3,",
    ] {
        assert!(lines.contains(&want), "no {want:?} in\n{csv}");
    }

    let campaigns = env.ok(&["campaigns", "--format", "csv"]);
    assert_eq!(
        campaigns.lines().collect::<Vec<_>>(),
        [
            "campaign_id,name,created_at,total,delivered,total_clicks",
            "spring-sale,Spring sale,2026-03-01T08:00:00.000Z,5,2,3"
        ]
    );
}

/// The insights worked example (docs/rules.md, "Insights") in the table and in CSV, after
/// the link statistics.
#[test]
fn table_and_csv_show_the_insights() {
    let env = Env::new();
    env.ingest("insights.ndjson");
    let at = ["--as-of", "2026-03-10T00:00:00Z", "--stale-after", "24"];
    let mut args = vec!["report", "world"];
    args.extend(at);
    let table = env.ok(&args);
    let squeeze = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
    let lines: Vec<String> = table.lines().map(squeeze).collect();
    let after = |head: &str, n: usize| -> Vec<String> {
        let i = lines
            .iter()
            .position(|l| l.starts_with(head))
            .unwrap_or_else(|| panic!("no {head:?} in\n{table}"));
        lines[i..i + n].to_vec()
    };
    let links = lines.iter().position(|l| l.starts_with("Link Statistics"));
    let latency = lines.iter().position(|l| l.starts_with("Delivery latency"));
    assert!(links < latency, "{table}");
    assert_eq!(
        after("Delivery latency", 7)[1..],
        [
            "Messages 5",
            "Percentiles p50 ≤ 60 s p90 ≤ 604800 s p99 ≤ 604800 s",
            "≤ 1 s 2",
            "≤ 60 s 1",
            "≤ 300 s 1",
            "≤ 604800 s 1",
        ]
    );
    assert_eq!(
        after("Awaiting a final receipt", 8),
        [
            "Awaiting a final receipt (as of 2026-03-10T00:00:00.000Z, stale after 24 h)",
            "Messages 5",
            "Under 1 hour 1",
            "1 to 6 hours 1",
            "6 to 24 hours 1",
            "24 to 72 hours 2 stale",
            "72 hours or more 0 stale",
            "Stale (24 h or more) 2",
        ]
    );
    let countries = after("Countries", 11);
    assert_eq!(
        countries[1],
        "CODE REGION COUNTRY TOTAL DELIVERED SENT QUEUED UNDELIVERED ERRORS OTHER CLICKS"
    );
    assert_eq!(countries[2], "+371 LV Latvia 4 1 0 2 0 1 0 2");
    assert_eq!(
        countries[8],
        "+882 001 International (non-geographic) 1 0 0 1 0 0 0 0"
    );
    assert_eq!(countries[9], "— ZZ Unknown 1 0 0 0 1 0 0 0");
    assert_eq!(countries[10], "+49 DE Germany 0 0 0 0 0 0 0 1");

    let mut args = vec!["report", "world", "--format", "csv"];
    args.extend(at);
    let csv = env.ok(&args);
    let lines: Vec<&str> = csv.lines().collect();
    for want in [
        "delivery_latency,messages,5,",
        "delivery_latency,p50_s,60,",
        "delivery_latency,p99_s,604800,",
        "delivery_latency,le_s:300,1,",
        "awaiting_receipt,as_of,2026-03-10T00:00:00.000Z,",
        "awaiting_receipt,stale_after_h,24,",
        "awaiting_receipt,stale,2,18.2",
        "awaiting_receipt,age:24h_to_72h,2,18.2",
        "country:+371/LV,total,4,36.4",
        "country:+371/LV,clicks,2,",
        "country:ZZ,undelivered,1,",
        "country:+49/DE,clicks,1,",
    ] {
        assert!(lines.contains(&want), "no {want:?} in\n{csv}");
    }
    assert!(!lines
        .iter()
        .any(|l| l.starts_with("delivery_latency,le_s:2,")));
}

#[test]
fn recipients_lists_messages_and_filters_by_row() {
    let env = Env::new();
    env.ingest("basic.ndjson");

    let all: Value =
        serde_json::from_str(&env.ok(&["recipients", "spring-sale", "--format", "json"])).unwrap();
    let ids: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["m1", "m2", "m3", "m4", "m5"]);
    assert_eq!(all[0]["clicks"], 2);
    assert_eq!(all[0]["recipient"], "+37120000001");

    let errors = env.ok(&[
        "recipients",
        "spring-sale",
        "--status",
        "errors",
        "--format",
        "csv",
    ]);
    assert_eq!(
        errors.lines().collect::<Vec<_>>(),
        [
            "message_id,recipient,status,row,error_code,status_at,clicks,parts,submitted_at",
            "m5,+37120000005,failed_expired,expired,27,2026-03-02T09:00:01.000Z,0,1,2026-03-01T09:00:01.000Z"
        ]
    );
    let none: Value = serde_json::from_str(&env.ok(&[
        "recipients",
        "spring-sale",
        "--status",
        "other",
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(none, serde_json::json!([]));
}

#[test]
fn bad_usage_exits_2_and_unknown_campaigns_exit_1() {
    let env = Env::new();
    env.ingest("basic.ndjson");

    for (args, says) in [
        (
            &["report", "spring-sale", "--stale-after", "0"][..],
            "stale",
        ),
        (
            &["report", "spring-sale", "--stale-after", "8761"][..],
            "stale",
        ),
        (
            &["report", "spring-sale", "--as-of", "yesterday"][..],
            "as-of",
        ),
    ] {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out.stderr).contains(says), "{}", text(&out.stderr));
        assert!(out.stdout.is_empty());
    }

    let bad_row = env.run(&["recipients", "spring-sale", "--status", "bounced"]);
    assert_eq!(bad_row.status.code(), Some(2));
    assert!(
        text(&bad_row.stderr).contains("delivered, sent, queued, undelivered, errors"),
        "{}",
        text(&bad_row.stderr)
    );

    for args in [&["report", "nope"][..], &["recipients", "nope"][..]] {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(text(&out.stderr), "smsreport: no campaign named \"nope\"\n");
        assert!(out.stdout.is_empty());
    }

    for (url, says, code) in [
        ("sqlite:", "names no file", 2),
        (
            "postgres://u:secret@localhost/db?pool_max=none",
            "pool_max",
            2,
        ),
        // Nothing listens on port 1: a quick failure naming the host, not a hang.
        (
            "postgres://u:secret@127.0.0.1:1/db?connect_timeout=3",
            "127.0.0.1:1",
            1,
        ),
        ("mysql://x", "unknown store URL", 2),
    ] {
        let started = std::time::Instant::now();
        let out = Command::new(BIN)
            .args(["--store", url, "verify"])
            .output()
            .unwrap();
        assert!(started.elapsed().as_secs() < 10, "{url} took too long");
        assert_eq!(out.status.code(), Some(code), "{url}");
        let err = text(&out.stderr);
        assert!(
            err.starts_with("smsreport: ") && err.contains(says),
            "{err}"
        );
        assert!(!err.contains("secret"), "{err}");
    }
}

#[test]
fn a_misspelt_store_url_never_shows_its_password() {
    let out = Command::new(BIN)
        .args([
            "--store",
            "postgress://report:s3cr3t-pw@db.example/sms",
            "campaigns",
        ])
        .env_remove("SMSREPORT_STORE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(!err.contains("s3cr3t-pw"), "{err}");
    assert!(
        err.contains("postgress://report:***@db.example/sms"),
        "{err}"
    );
}

#[test]
fn demo_fills_the_default_store_and_runs_again() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(args)
            .env_remove("SMSREPORT_STORE")
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let first = run(&["demo"]);
    assert!(first.contains("Delivered"), "{first}");
    assert!(first.contains("Link Statistics"), "{first}");
    assert!(
        first.contains("smsreport recipients demo-spring-sale --status errors"),
        "{first}"
    );
    assert!(
        dir.path().join("smsreport-data").is_dir(),
        "the default store is ./smsreport-data"
    );

    let campaigns = run(&["campaigns"]);
    assert!(
        campaigns
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("demo-spring-sale "),
        "{campaigns}"
    );

    // The demo's figures are realistic: 10 000 messages, most delivered.
    let report: Value = serde_json::from_str(&run(&[
        "report",
        "demo-spring-sale",
        "--format",
        "json",
        "--as-of",
        "2026-03-10T00:00:00Z",
    ]))
    .unwrap();
    assert_eq!(report["delivery"]["total"], 10_000);
    let delivered = report["delivery"]["delivered"].as_u64().unwrap();
    assert!((8_000..=9_200).contains(&delivered), "{delivered}");
    assert!(report["links"]["bot_clicks"].as_u64().unwrap() > 0);

    // Only error rows under --status errors.
    let errors: Value = serde_json::from_str(&run(&[
        "recipients",
        "demo-spring-sale",
        "--status",
        "errors",
        "--format",
        "json",
    ]))
    .unwrap();
    let errors = errors.as_array().unwrap();
    assert_eq!(
        errors.len() as u64,
        report["delivery"]["errors"]["total"].as_u64().unwrap()
    );
    assert!(errors
        .iter()
        .all(|r| ["routing", "expired", "rejected"].contains(&r["row"].as_str().unwrap())));
    assert!(errors.iter().all(|r| r["error_code"].is_string()));

    // Running the demo again finds everything there and prints the same figures.
    let second = run(&["demo"]);
    assert!(second.contains("ingested 0,"), "{second}");
    let report_again: Value = serde_json::from_str(&run(&[
        "report",
        "demo-spring-sale",
        "--format",
        "json",
        "--as-of",
        "2026-03-10T00:00:00Z",
    ]))
    .unwrap();
    assert_eq!(report, report_again);
    assert!(run(&["verify"]).ends_with("totals agree\n"));
}

/// A synthetic campaign as NDJSON, big enough for several ingest batches and
/// several pages of recipients.
fn synthetic(messages: u64) -> Vec<u8> {
    let cfg = smsreport_synth::SynthConfig {
        campaign_id: "synthetic".into(),
        name: "Synthetic".into(),
        messages,
        seed: 5,
        start: smsreport_core::Millis::from_utc(2026, 5, 4, 9, 0, 0, 0).unwrap(),
    };
    let mut out = Vec::new();
    for line in smsreport_synth::events(&cfg) {
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out
}

#[test]
fn large_inputs_stream_through_batches_and_pages() {
    let env = Env::new();
    let input = synthetic(3_000);
    let lines = input.iter().filter(|b| **b == b'\n').count();
    assert!(lines > 3 * 2_000, "{lines} lines make several batches");
    let mut child = env
        .cmd(&["ingest", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let summary = text(&out.stdout);
    assert!(summary.ends_with(", rejected 0\n"), "{summary}");

    let all: Value =
        serde_json::from_str(&env.ok(&["recipients", "synthetic", "--format", "json"])).unwrap();
    let ids: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3_000);
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "in message_id order, no page twice"
    );
    assert_eq!(
        env.ok(&["verify"]),
        "verified 1 campaigns, 3000 messages: totals agree\n"
    );

    // A reader that stops after one line (`| head -1`) ends the output quietly.
    let mut child = env
        .cmd(&["recipients", "synthetic"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    assert!(first.starts_with("MESSAGE_ID"), "{first}");
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}
