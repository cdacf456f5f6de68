//! Operating smsreport (docs/deploy.md), through the binary: shell completions and the
//! manual page, `serve`'s startup line and `serve --check`, and logs in text and JSON
//! that never hold a whole phone number.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

use support::{cmd, http, run, text};

/// The number the log tests send; no log line may hold it whole.
const NUMBER: &str = "+37120000001";
const DIGITS: &str = "37120000001";
/// What the logs show instead.
const MASKED: &str = "+371******01";

fn sled() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sled:{}", dir.path().join("db").display());
    (dir, store)
}

#[test]
fn completions_and_the_manual_page_are_generated() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef smsreport"),
        ("fish", "complete -c smsreport"),
    ] {
        let out = Command::new(support::BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(
            script.contains(marker),
            "{shell}: no {marker:?} in\n{script}"
        );
        // Subcommands, global options and a subcommand's option (fish writes `-l store`).
        for word in [
            "ingest",
            "serve",
            "store",
            "log-format",
            "check",
            "default-region",
        ] {
            assert!(script.contains(word), "{shell}: {word} is not completed");
        }
    }
    let out = Command::new(support::BIN)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "an unknown shell is bad usage");

    let out = Command::new(support::BIN).arg("man").output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = text(&out.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH smsreport"),
        "{page}"
    );
    assert!(page.contains(".TH smsreport 1"), "{page}");
    for word in [
        "ingest",
        "serve",
        "export",
        "\\-\\-store",
        "SMSREPORT_STORE",
    ] {
        assert!(page.contains(word), "the manual page lacks {word}:\n{page}");
    }
}

#[test]
fn serve_check_opens_the_store_and_does_not_listen() {
    let (_dir, store) = sled();
    // A port held here: serve --check must not try to take it.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = held.local_addr().unwrap().to_string();
    let out = run(
        &store,
        &[
            "serve",
            "--check",
            "--listen",
            &listen,
            "--token",
            "a-long-token-0123456789",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let line = text(&out.stdout);
    assert!(line.starts_with("configuration OK: "), "{line}");
    assert!(line.contains(&format!("store {store}")), "{line}");
    assert!(line.contains(&format!("listen {listen}")), "{line}");
    assert!(
        line.contains(&format!("dashboard http://{listen}/")),
        "{line}"
    );
    assert!(line.contains("authentication: API bearer token"), "{line}");
    assert!(!line.contains("a-long-token"), "no secret is shown: {line}");
    assert_eq!(line.lines().count(), 1, "{line}");
    // The store was opened: the folder exists now.
    assert!(std::path::Path::new(store.strip_prefix("sled:").unwrap()).exists());

    // A configuration serve refuses is refused by --check alike.
    let out = run(&store, &["serve", "--check", "--listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("refusing to listen"),
        "{}",
        text(&out.stderr)
    );
    let out = run(
        &store,
        &["serve", "--check", "--public-url", "sms.example.com"],
    );
    assert_eq!(out.status.code(), Some(2));
    // A store that cannot be opened: exit 1, before anything else.
    let file = tempfile::NamedTempFile::new().unwrap();
    let bad = format!("sled:{}", file.path().display());
    let out = run(&bad, &["serve", "--check"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
}

#[test]
fn serve_check_masks_a_store_password() {
    let Some(base) = support::pg_base("ops::serve_check_masks_a_store_password") else {
        return;
    };
    // The test server trusts its clients: the password is taken and ignored.
    let with_password = base.replacen("postgres://postgres@", "postgres://postgres:s3cret-pw@", 1);
    assert_ne!(
        with_password, base,
        "SMSREPORT_TEST_PG has the form postgres://postgres@…"
    );
    let schema = smsreport_conformance::pg::Schema::fresh_on(&with_password);
    let url = schema.url("");
    let out = run(&url, &["serve", "--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let line = text(&out.stdout);
    assert!(line.contains("store postgres://postgres:***@"), "{line}");
    assert!(!line.contains("s3cret-pw"), "{line}");
}

/// A `serve` process, killed if a test fails before stopping it.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `serve` with these extra arguments, standard error piped; its address.
fn start(
    store: &str,
    extra: &[&str],
) -> (
    Running,
    BufReader<std::process::ChildStderr>,
    String,
    String,
) {
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut child = cmd(store, &args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let child = Running(child);
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    let addr = first
        .split("listening on http://")
        .nth(1)
        .and_then(|r| r.split([' ', '"']).next())
        .unwrap_or_else(|| panic!("no startup line: {first:?}"))
        .to_owned();
    // Answering means serving: SIGTERM is handled from then on (the startup line comes
    // a moment before).
    support::wait_healthy(&addr);
    (child, stderr, addr, first)
}

/// SIGTERM, and the rest of standard error.
fn stop(mut child: Running, mut stderr: BufReader<std::process::ChildStderr>) -> String {
    let child = &mut child.0;
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    rest
}

#[test]
fn the_startup_line_tells_store_address_dashboard_and_authentication() {
    let (_dir, store) = sled();
    let (child, stderr, addr, first) = start(
        &store,
        &[
            "--token",
            "a-long-token-0123456789",
            "--webhook-key",
            "a-long-webhook-key-012345",
        ],
    );
    for want in [
        format!("store={store}"),
        format!("dashboard=http://{addr}/"),
        "authentication=API bearer token and dashboard password, webhook key".to_owned(),
        format!("(public URL http://{addr})"),
        " INFO ".to_owned(),
    ] {
        assert!(first.contains(&want), "{want:?} not in {first:?}");
    }
    assert!(!first.contains("a-long-token"), "{first}");
    let rest = stop(child, stderr);
    assert!(rest.contains("stopped"), "{rest}");
}

/// Every request of the log test, and what each must log.
fn provoke(addr: &str) {
    let token = "Authorization: Bearer a-long-token-0123456789\r\n";
    let form = "Content-Type: application/x-www-form-urlencoded\r\n";
    let path = "/v1/recipients/%2B37120000001";
    // A failed authentication logs its path.
    assert_eq!(http(addr, "DELETE", path, "", b"").unwrap().0, 401);
    // Forgetting logs the number.
    assert_eq!(http(addr, "DELETE", path, token, b"").unwrap().0, 200);
    // Rejected callbacks log their fields.
    let (status, _) = http(
        addr,
        "GET",
        "/v1/webhooks/kannel?id=m1&type=77&to=%2B37120000001",
        "",
        b"",
    )
    .unwrap();
    assert_eq!(status, 400);
    let body = format!("MessageStatus=delivered&To={}", NUMBER.replace('+', "%2B"));
    assert_eq!(
        http(addr, "POST", "/v1/webhooks/twilio", form, body.as_bytes())
            .unwrap()
            .0,
        400
    );
    let (status, _) = http(
        addr,
        "POST",
        "/v1/webhooks/smpp",
        "",
        b"sub:001 dlvrd:001 stat:DELIVRD err:000 text:+37120000001",
    )
    .unwrap();
    assert_eq!(status, 400);
}

#[test]
fn no_log_line_holds_a_whole_phone_number() {
    for format in ["text", "json"] {
        let (_dir, store) = sled();
        let (child, stderr, addr, first) = start(
            &store,
            &["--log-format", format, "--token", "a-long-token-0123456789"],
        );
        provoke(&addr);
        let logs = format!("{first}{}", stop(child, stderr));
        check_logs(format, "serve", &logs, 4);

        // The CLI: forgetting logs the number (at INFO, asked for with RUST_LOG).
        let out = cmd(&store, &["--log-format", format, "forget", NUMBER])
            .env("RUST_LOG", "info")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(!text(&out.stdout).contains(DIGITS), "{}", text(&out.stdout));
        check_logs(format, "forget", &text(&out.stderr), 1);
        // Without RUST_LOG a command logs warnings only: its output stays as it was.
        let out = cmd(&store, &["--log-format", format, "forget", NUMBER])
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert_eq!(text(&out.stderr), "", "{format}");
    }
}

/// Every line of `logs` is a log line of `format`, none holds the number's digits, and
/// at least `masked` of them hold it masked.
fn check_logs(format: &str, what: &str, logs: &str, masked: usize) {
    let mut seen = 0;
    for line in logs.lines() {
        assert!(
            !line.contains(DIGITS),
            "{format} {what}: a whole number in {line:?}"
        );
        if format == "json" {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{what}: not a JSON log line ({e}): {line:?}"));
            assert!(
                v["level"].is_string() && v["fields"]["message"].is_string(),
                "{line}"
            );
        } else {
            assert!(
                [" INFO ", " WARN ", " ERROR ", " DEBUG "]
                    .iter()
                    .any(|l| line.contains(l)),
                "{what}: not a text log line: {line:?}"
            );
        }
        seen += usize::from(line.contains(MASKED));
    }
    assert!(
        seen >= masked,
        "{format} {what}: {seen} lines hold {MASKED}, not {masked}:\n{logs}"
    );
}

#[test]
fn the_log_format_comes_from_the_environment_too() {
    let (_dir, store) = sled();
    let out = cmd(&store, &["forget", NUMBER])
        .env("SMSREPORT_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    check_logs("json", "forget", &text(&out.stderr), 1);
    let out = cmd(&store, &["forget", NUMBER])
        .env("SMSREPORT_LOG_FORMAT", "yaml")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "an unknown format is bad usage");
}
