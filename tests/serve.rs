//! End to end: `smsreport serve` as a process (listening, refusing an open address
//! without a token, stopping on SIGTERM with what it answered stored), `ingest --format`
//! for the gateway formats, and `report --tz`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_smsreport");

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/conformance/fixtures")
        .join(name)
        .display()
        .to_string()
}

fn cmd(store: &str, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--store").arg(store).args(args);
    for v in [
        "SMSREPORT_STORE",
        "SMSREPORT_TOKEN",
        "SMSREPORT_LISTEN",
        "SMSREPORT_PUBLIC_URL",
        "SMSREPORT_INSECURE",
        "SMSREPORT_WEBHOOK_KEY",
        "SMSREPORT_TWILIO_AUTH_TOKEN",
    ] {
        c.env_remove(v);
    }
    c
}

fn run(store: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = cmd(store, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// One HTTP/1.1 request; (status, body).
fn http(addr: &str, method: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let t = text(&buf);
    let (head, body) = t.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

#[test]
fn serve_answers_then_stops_on_sigterm_with_everything_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sled:{}", dir.path().join("db").display());
    let mut child = cmd(
        &store,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--token",
            "t0k-0123456789abcdef",
        ],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line
        .split("listening on http://")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    assert!(
        line.contains(&format!("public URL http://{addr}")),
        "{line}"
    );

    let auth = "Authorization: Bearer t0k-0123456789abcdef\r\n";
    let basic = std::fs::read_to_string(fixture("basic.ndjson")).unwrap();
    let (status, body) = http(&addr, "POST", "/v1/events", auth, &basic);
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["ingested"], 19);
    assert_eq!(http(&addr, "GET", "/v1/campaigns", "", "").0, 401);
    assert_eq!(http(&addr, "GET", "/healthz", "", "").0, 200);
    let (status, csv) = http(
        &addr,
        "GET",
        "/v1/campaigns/spring-sale/report?format=csv&as_of=2026-03-10T00:00:00Z",
        auth,
        "",
    );
    assert_eq!(status, 200);

    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("stopped"), "{rest}");

    // What the server answered is stored, and the CLI's CSV is the same bytes.
    let out = run(
        &store,
        &[
            "report",
            "spring-sale",
            "--format",
            "csv",
            "--as-of",
            "2026-03-10T00:00:00Z",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), csv);
}

#[test]
fn serve_refuses_an_open_address_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sled:{}", dir.path().join("db").display());
    for listen in ["0.0.0.0:0", "[::]:0", "192.0.2.1:7878"] {
        let out = run(&store, &["serve", "--listen", listen], "");
        assert_eq!(out.status.code(), Some(2), "{listen}");
        let err = text(&out.stderr);
        assert!(err.contains("without --token"), "{err}");
        assert!(err.contains("--insecure"), "{err}");
    }
    let out = run(&store, &["serve", "--listen", "not an address"], "");
    assert_eq!(out.status.code(), Some(2));
    let out = run(&store, &["serve", "--token", ""], "");
    assert_eq!(out.status.code(), Some(2));
    let out = run(
        &store,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--public-url",
            "sms.example",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
}

/// An open address with a token but no webhook secrets is refused too: the webhooks
/// would let anyone add messages or flip statuses (docs/security.md).
#[test]
fn serve_refuses_an_open_address_without_webhook_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sled:{}", dir.path().join("db").display());
    let token = "a-long-enough-token-0123456789";
    let out = run(
        &store,
        &["serve", "--listen", "192.0.2.1:7878", "--token", token],
        "",
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("without webhook secrets"), "{err}");
    assert!(err.contains("--webhook-key"), "{err}");
    assert!(err.contains("--twilio-auth-token"), "{err}");
    assert!(err.contains("--insecure"), "{err}");
    // One secret of two is not enough; the message names the one missing.
    let out = run(
        &store,
        &[
            "serve",
            "--listen",
            "192.0.2.1:7878",
            "--token",
            token,
            "--webhook-key",
            "a-long-enough-webhook-key-0123",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("--twilio-auth-token"), "{err}");
    assert!(!err.contains("--webhook-key ("), "{err}");
    // All three: it gets as far as binding (192.0.2.1 is no address of this machine),
    // and warns about the short token first.
    let out = run(
        &store,
        &[
            "serve",
            "--listen",
            "192.0.2.1:7878",
            "--token",
            "short",
            "--webhook-key",
            "a-long-enough-webhook-key-0123",
            "--twilio-auth-token",
            "twilio-token-0123456789",
        ],
        "",
    );
    let err = text(&out.stderr);
    assert!(!err.contains("refusing"), "{err}");
    assert!(err.contains("cannot listen on 192.0.2.1:7878"), "{err}");
    assert!(
        err.contains("--token is shorter than 16 characters"),
        "{err}"
    );
    assert!(
        !err.contains("short\""),
        "the warning shows no secret: {err}"
    );
}

#[test]
fn ingest_gateway_formats() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sled:{}", dir.path().join("db").display());
    let setup = [
        r#"{"type":"campaign","campaign_id":"gw","name":"Gateways"}"#,
        r#"{"type":"message","message_id":"m5","campaign_id":"gw","recipient":"+37120000001","at":"2026-03-01T09:00:00Z"}"#,
        r#"{"type":"message","message_id":"m4","campaign_id":"gw","recipient":"+37120000002","at":"2026-03-01T09:00:00Z"}"#,
        r#"{"type":"message","message_id":"t1","campaign_id":"gw","recipient":"+37120000003","at":"2026-03-01T09:00:00Z"}"#,
        r#"{"type":"message","message_id":"SM1","campaign_id":"gw","recipient":"+37120000004","at":"2026-03-01T09:00:00Z"}"#,
    ]
    .join("\n");
    assert_eq!(run(&store, &["ingest"], &setup).status.code(), Some(0));

    let rejects = dir.path().join("rejects.txt");
    let smpp = "id:m5 sub:001 dlvrd:001 submit date:2603010900 done date:2603030900 stat:DELIVRD err:000 text:Sale\n\
                sub:001 stat:DELIVRD\n";
    let out = run(
        &store,
        &[
            "ingest",
            "--format",
            "smpp",
            "--rejects",
            rejects.to_str().unwrap(),
        ],
        smpp,
    );
    assert_eq!(out.status.code(), Some(2), "a line was rejected");
    assert_eq!(text(&out.stdout), "ingested 1, duplicates 0, rejected 1\n");
    assert!(
        text(&out.stderr).contains("line 2: id: missing"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&rejects).unwrap(),
        "sub:001 stat:DELIVRD\n"
    );

    let kannel = "type=2&id=m4&ts=1772355600\n?type=8&id=m4\n";
    let out = run(&store, &["ingest", "--format", "kannel"], kannel);
    assert_eq!(text(&out.stdout), "ingested 2, duplicates 0, rejected 0\n");
    let jasmin = "id=t1&level=2&message_status=EXPIRED&donedate=2603021020&err=027\n";
    let out = run(&store, &["ingest", "--format", "jasmin"], jasmin);
    assert_eq!(text(&out.stdout), "ingested 1, duplicates 0, rejected 0\n");
    // Twilio lines may carry campaign_id to register their message.
    let twilio = "MessageSid=SM1&MessageStatus=undelivered&ErrorCode=30007\n\
                  MessageSid=SM2&MessageStatus=delivered&To=%2B37120000005&campaign_id=gw&RawDlrDoneDate=2603011015\n\
                  MessageSid=SM3&MessageStatus=delivered&To=%2B37120000006&campaign_id=nope\n";
    let out = run(&store, &["ingest", "--format", "twilio"], twilio);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stdout), "ingested 2, duplicates 0, rejected 1\n");
    assert!(text(&out.stderr).contains("line 3: campaign_id: no campaign named \"nope\""));
    // Again: the lines with a time of their own are duplicates.
    let out = run(
        &store,
        &["ingest", "--format", "twilio"],
        twilio.lines().nth(1).unwrap(),
    );
    assert_eq!(text(&out.stdout), "ingested 0, duplicates 1, rejected 0\n");

    let out = run(&store, &["report", "gw", "--format", "json"], "");
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &r["delivery"];
    assert_eq!(d["total"], 5);
    assert_eq!(d["delivered"], 2, "{d}"); // m5, SM2
    assert_eq!(d["errors"]["routing"], 1, "{d}"); // m4: a later phase than sent
    assert_eq!(d["errors"]["expired"], 1, "{d}"); // t1
    assert_eq!(d["errors"]["rejected"], 1, "{d}"); // SM1
}

/// `ingest --format smpp` of undated receipts: the same file again ingests nothing, and
/// the report does not depend on where batches split (docs/rules.md, "Undated
/// receipts").
#[test]
fn undated_gateway_lines_are_idempotent_whatever_the_batch_size() {
    let mut setup = vec![r#"{"type":"campaign","campaign_id":"u","name":"Undated"}"#.to_owned()];
    let mut smpp = String::new();
    for i in 0..30 {
        setup.push(format!(
            r#"{{"type":"message","message_id":"m{i}","campaign_id":"u","recipient":"+3712000{i:04}","at":"2026-03-01T09:00:00Z"}}"#
        ));
        smpp.push_str(&format!("id:m{i} stat:ENROUTE\nid:m{i} stat:DELIVRD\n"));
        if i % 2 == 1 {
            // A later UNDELIV outranks nothing: it wins by coming later.
            smpp.push_str(&format!("id:m{i} stat:UNDELIV err:001\n"));
        }
        // A gateway's retry.
        smpp.push_str(&format!("id:m{i} stat:DELIVRD\n"));
    }
    let mut reports = Vec::new();
    for batch in ["2000", "3", "1"] {
        let dir = tempfile::tempdir().unwrap();
        let store = format!("sled:{}", dir.path().join("db").display());
        assert_eq!(
            run(&store, &["ingest"], &setup.join("\n")).status.code(),
            Some(0)
        );
        let args = ["ingest", "--format", "smpp", "--batch-lines", batch];
        let out = run(&store, &args, &smpp);
        assert_eq!(
            text(&out.stdout),
            "ingested 75, duplicates 30, rejected 0\n",
            "batches of {batch}"
        );
        let out = run(&store, &args, &smpp);
        assert_eq!(
            text(&out.stdout),
            "ingested 0, duplicates 105, rejected 0\n",
            "batches of {batch}, again"
        );
        let out = run(
            &store,
            &[
                "report",
                "u",
                "--format",
                "json",
                "--as-of",
                "2026-03-10T00:00:00Z",
            ],
            "",
        );
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(r["delivery"]["delivered"], 15, "batches of {batch}");
        assert_eq!(r["delivery"]["errors"]["routing"], 15, "batches of {batch}");
        reports.push(r);
    }
    assert_eq!(reports[0], reports[1]);
    assert_eq!(reports[0], reports[2]);
}

/// `health`: each campaign's duplicate callbacks and late receipts, never in the report.
#[test]
fn health_counts_duplicate_and_late_callbacks() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sled:{}", dir.path().join("db").display());
    let setup = [
        r#"{"type":"campaign","campaign_id":"h","name":"Health"}"#,
        r#"{"type":"campaign","campaign_id":"quiet","name":"Quiet"}"#,
        r#"{"type":"message","message_id":"m1","campaign_id":"h","recipient":"+37120000001","at":"2026-03-01T09:00:00Z"}"#,
        r#"{"type":"status","message_id":"lost","status":"delivered","at":"2026-03-02T09:00:00Z"}"#,
    ]
    .join("\n");
    assert_eq!(run(&store, &["ingest"], &setup).status.code(), Some(0));
    let before = run(
        &store,
        &[
            "report",
            "h",
            "--format",
            "json",
            "--as-of",
            "2026-03-10T00:00:00Z",
        ],
        "",
    );
    // delivered, its retry (duplicate), then an UNDELIV after the final status (late).
    let smpp = "id:m1 stat:DELIVRD done date:2603010901\n\
                id:m1 stat:DELIVRD done date:2603010901\n\
                id:m1 stat:UNDELIV done date:2603010902\n";
    let out = run(&store, &["ingest", "--format", "smpp"], smpp);
    assert_eq!(text(&out.stdout), "ingested 2, duplicates 1, rejected 0\n");
    let out = run(&store, &["health", "--format", "json"], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let h: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        h,
        serde_json::json!({"campaigns": [
            {"campaign_id": "h", "duplicate": 1, "late": 1, "rejected": {}},
            {"campaign_id": "quiet", "duplicate": 0, "late": 0, "rejected": {}}
        ], "waiting_for_message": {"messages": 1, "oldest_at": "2026-03-02T09:00:00.000Z"}})
    );
    let table = text(&run(&store, &["health"], "").stdout);
    assert_eq!(
        table,
        "CAMPAIGN  DUPLICATE  LATE  REJECTED\nh                 1     1  0\nquiet             0     0  0\n\
         statuses waiting for their message: 1 (the oldest pending status is of 2026-03-02T09:00:00.000Z)\n"
    );
    // The report has no such figures: the same keys as before the callbacks.
    let after = run(
        &store,
        &[
            "report",
            "h",
            "--format",
            "json",
            "--as-of",
            "2026-03-10T00:00:00Z",
        ],
        "",
    );
    let keys = |o: &Output| {
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        v.as_object().unwrap().keys().cloned().collect::<Vec<_>>()
    };
    assert_eq!(keys(&before), keys(&after));
    assert!(!text(&after.stdout).contains("\"late\""));
    assert!(!text(&after.stdout).contains("duplicate"));
    assert_eq!(run(&store, &["verify"], "").status.code(), Some(0));
}

#[test]
fn report_in_a_time_zone() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sled:{}", dir.path().join("db").display());
    let out = cmd(&store, &["ingest", &fixture("basic.ndjson")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let late = r#"{"type":"click","campaign_id":"spring-sale","link_id":"sale","recipient":"+37120000003","at":"2026-03-31T22:30:00Z"}"#;
    assert_eq!(run(&store, &["ingest"], late).status.code(), Some(0));
    let months = |tz: Option<&str>| {
        let mut args = vec!["report", "spring-sale", "--format", "json"];
        if let Some(tz) = tz {
            args.extend(["--tz", tz]);
        }
        let out = run(&store, &args, "");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        r["links"]["clicks_by_month"].clone()
    };
    assert_eq!(
        months(None),
        serde_json::json!([{"month": "2026-03", "clicks": 4}])
    );
    assert_eq!(
        months(Some("Europe/Riga")),
        serde_json::json!([{"month": "2026-03", "clicks": 3}, {"month": "2026-04", "clicks": 1}])
    );
    let out = run(
        &store,
        &["report", "spring-sale", "--tz", "Europe/Atlantis"],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unknown time zone \"Europe/Atlantis\""),
        "{}",
        text(&out.stderr)
    );
}
