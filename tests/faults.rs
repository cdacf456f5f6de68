//! Faults below smsreport: PostgreSQL stopped in the middle of an ingest, a sled folder
//! on a full disk, on a read-only file system, or a store path that is a file. Each is a
//! clear error and an exit status of 1; nothing acknowledged is lost, nothing is
//! corrupted, and once the fault is gone a plain retry completes the job.
//!
//! The disk faults need `mount` (root with CAP_SYS_ADMIN) and the PostgreSQL faults a
//! private server made with `initdb` (never the shared one on port 5432, which other
//! tests use meanwhile). Where the machine allows neither, the test says why and passes.

mod support;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{assert_verifies, cmd, http, report, run, synth, text, write_lines, Server};

/// The line a failing command printed on standard error, checked to be one clear line.
fn one_line_error(out: &std::process::Output, context: &str) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "{context}: {}",
        text(&out.stderr)
    );
    let err = text(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("smsreport: "))
        .unwrap_or_else(|| panic!("{context}: no error line in {err:?}"));
    assert!(!line.contains("panicked"), "{context}: {err}");
    line.to_owned()
}

/// `ingested N, duplicates N, rejected N` from standard output.
fn summary(stdout: &[u8]) -> (u64, u64, u64) {
    let t = text(stdout);
    let line = t
        .lines()
        .find(|l| l.starts_with("ingested "))
        .unwrap_or_else(|| panic!("no summary in {t:?}"));
    let n: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    (n[0], n[1], n[2])
}

// ---------------------------------------------------------------------------------------
// Disks: a tmpfs of a few MiB is a full disk; `remount,ro` a read-only one.

/// A tmpfs mounted on a fresh folder, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`3m`), or says why it cannot.
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed (root with CAP_SYS_ADMIN is needed): {}",
                text(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount(&self, options: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(self.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "remount,{options}: {}",
            text(&out.stderr)
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn skipped(test: &str, why: &str) {
    println!("skipped: {test}: {why}");
    eprintln!("skipped: {test}: {why}");
}

#[test]
fn a_full_disk_is_a_clear_error_and_corrupts_nothing() {
    let fs = match Tmpfs::mount("3m") {
        Ok(fs) => fs,
        Err(why) => return skipped("the full-disk test", &why),
    };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.ndjson");
    write_lines(&input, &synth("full", 5_000, 3));
    let input = input.to_str().unwrap();
    let reference = format!("sled:{}", dir.path().join("reference").display());
    let out = run(&reference, &["ingest", input]);
    assert!(out.status.success());
    let (total, _, _) = summary(&out.stdout);

    let store = format!("sled:{}", fs.path().join("db").display());
    let out = run(&store, &["ingest", input]);
    let err = one_line_error(&out, "ingest on a full disk");
    assert!(err.contains("No space left on device"), "{err}");
    let (acknowledged, _, _) = summary(&out.stdout);
    assert!(acknowledged > 0, "the disk filled before the first batch");

    // Opening the store while the disk is still full fails too, clearly, and must not
    // harm it (sled 0.34 alone left a partial snapshot that made the store unreadable).
    let out = run(&store, &["verify"]);
    let err = one_line_error(&out, "verify on a full disk");
    assert!(err.contains("No space left on device"), "{err}");

    fs.remount("size=64m");
    assert_verifies(&store, "after the disk was enlarged");
    let out = run(&store, &["ingest", input]);
    assert!(out.status.success(), "retry: {}", text(&out.stderr));
    let (rest, _, _) = summary(&out.stdout);
    assert_eq!(
        acknowledged + rest,
        total,
        "what was acknowledged before the disk filled is stored, and counted once"
    );
    assert_eq!(report(&store, "full"), report(&reference, "full"));
    assert_verifies(&store, "after the retry");
}

#[test]
fn a_read_only_folder_is_a_clear_error_and_corrupts_nothing() {
    let fs = match Tmpfs::mount("64m") {
        Ok(fs) => fs,
        Err(why) => return skipped("the read-only folder test", &why),
    };
    let basic =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/conformance/fixtures/basic.ndjson");
    let store = format!("sled:{}", fs.path().join("db").display());
    assert!(run(&store, &["ingest", basic.to_str().unwrap()])
        .status
        .success());
    let want = report(&store, "spring-sale");

    fs.remount("ro");
    for args in [
        &["ingest", basic.to_str().unwrap()][..],
        &["report", "spring-sale"][..],
    ] {
        let out = run(&store, args);
        let err = one_line_error(&out, &format!("{args:?} on a read-only folder"));
        assert!(err.contains("Read-only file system"), "{err}");
    }
    // A new store cannot be made there either.
    let out = run(
        &format!("sled:{}", fs.path().join("new").display()),
        &["campaigns"],
    );
    one_line_error(&out, "a new store on a read-only file system");

    fs.remount("rw");
    assert_eq!(report(&store, "spring-sale"), want);
    assert_verifies(&store, "after the folder was writable again");
}

#[test]
fn a_store_path_that_is_a_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, b"precious").unwrap();
    let out = run(&format!("sled:{}", file.display()), &["campaigns"]);
    let err = one_line_error(&out, "a sled store on a file");
    assert!(
        err.contains("not-a-folder"),
        "the message names the path: {err}"
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"precious",
        "the file is untouched"
    );
}

// ---------------------------------------------------------------------------------------
// PostgreSQL stopped: a private server in a temporary folder, on a free port.

/// A PostgreSQL server of our own, stopped (immediately) when dropped.
struct PrivatePg {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// Run the server's tools as this user (initdb refuses root).
    user: Option<&'static str>,
}

impl PrivatePg {
    /// Makes and starts one, or says why it cannot.
    fn start() -> Result<PrivatePg, String> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .map_err(|e| format!("no PostgreSQL server binaries in /usr/lib/postgresql: {e}"))?
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|p| p.join("initdb").exists())
            .max()
            .ok_or("no initdb under /usr/lib/postgresql/*/bin")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| text(&o.stdout).trim() == "0");
        let user = if root {
            let chown = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .output()
                .map_err(|e| e.to_string())?;
            if !chown.status.success() {
                return Err(format!(
                    "running as root, and there is no postgres user to run initdb as: {}",
                    text(&chown.stderr).trim()
                ));
            }
            Some("postgres")
        } else {
            None
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let pg = PrivatePg {
            bin,
            dir,
            port,
            user,
        };
        let data = pg.dir.path().join("data");
        let out = pg
            .tool("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "--no-sync"])
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}{}",
                text(&out.stdout),
                text(&out.stderr)
            ));
        }
        pg.up()?;
        Ok(pg)
    }

    fn tool(&self, name: &str) -> Command {
        let mut c = match self.user {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--"]).arg(self.bin.join(name));
                c
            }
            None => Command::new(self.bin.join(name)),
        };
        c.stdin(Stdio::null());
        c
    }

    fn up(&self) -> Result<(), String> {
        let out = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1",
                self.port,
                self.dir.path().display()
            ))
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-w", "start"])
            .output()
            .map_err(|e| format!("pg_ctl start: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "pg_ctl start failed: {}{}",
                text(&out.stdout),
                text(&out.stderr)
            ))
        }
    }

    /// `pg_ctl stop -m immediate`: the server goes away as in a crash or a power cut.
    fn crash(&self) {
        let _ = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }

    fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?pool_max=2&connect_timeout=2",
            self.port
        )
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        self.crash();
    }
}

#[test]
fn postgres_stopped_mid_ingest_is_a_clear_error_and_a_retry_completes() {
    let pg = match PrivatePg::start() {
        Ok(pg) => pg,
        Err(why) => return skipped("the PostgreSQL-stopped test", &why),
    };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.ndjson");
    let lines = synth("outage", 5_000, 5);
    write_lines(&input, &lines);
    let input = input.to_str().unwrap();
    let reference = format!("sled:{}", dir.path().join("reference").display());
    let out = run(&reference, &["ingest", input]);
    let (total, _, _) = summary(&out.stdout);
    let want = report(&reference, "outage");

    // The schema is made first, so that the stop falls in the middle of the ingest.
    assert!(run(&pg.url(), &["campaigns"]).status.success());
    // The ingest reads standard input: the first half goes in, and once part of it is
    // stored, PostgreSQL stops; the second half goes in after the stop. However fast the
    // ingest is, the stop falls in its middle.
    let started = Instant::now();
    let mut child = cmd(&pg.url(), &["ingest", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (first, second) = lines.split_at(lines.len() / 2);
    let _ = stdin.write_all((first.join("\n") + "\n").as_bytes());
    let _ = stdin.flush();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = run(&pg.url(), &["report", "outage", "--format", "json"]);
        let stored = serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .ok()
            .and_then(|r| r["delivery"]["total"].as_u64())
            .unwrap_or(0);
        if stored > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nothing was stored within a minute"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    pg.crash();
    let _ = stdin.write_all((second.join("\n") + "\n").as_bytes());
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let err = one_line_error(&out, "ingest while PostgreSQL stops");
    assert!(
        err.contains("PostgreSQL at 127.0.0.1"),
        "the error names the server: {err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "it gave up in time"
    );
    let (acknowledged, _, _) = summary(&out.stdout);
    eprintln!("PostgreSQL stopped after {acknowledged} of {total} events were acknowledged: {err}");
    assert!(
        acknowledged < total,
        "the ingest ended before the stop: {err}"
    );

    // While it is down: a clear error, quickly.
    let out = run(&pg.url(), &["report", "outage"]);
    one_line_error(&out, "report while PostgreSQL is down");

    pg.up().unwrap();
    assert_verifies(&pg.url(), "after the restart");
    let out = run(&pg.url(), &["ingest", input]);
    assert!(out.status.success(), "retry: {}", text(&out.stderr));
    let (rest, _, _) = summary(&out.stdout);
    // The batch in flight when the server stopped may have been committed without its
    // answer reaching the client: it is then neither acknowledged nor ingested again.
    // Everything acknowledged is stored (never ingested twice), and at most that one
    // batch (2 000 lines) is in doubt.
    assert!(
        acknowledged + rest <= total,
        "what was acknowledged before the stop is stored, and counted once: {acknowledged} + {rest} > {total}"
    );
    assert!(
        total - (acknowledged + rest) <= 2_000,
        "only the batch in flight can be in doubt: {acknowledged} + {rest} of {total}"
    );
    assert_eq!(report(&pg.url(), "outage"), want);
    assert_verifies(&pg.url(), "after the retry");
}

#[test]
fn postgres_stopped_under_serve_answers_503_and_loses_no_acknowledged_batch() {
    let pg = match PrivatePg::start() {
        Ok(pg) => pg,
        Err(why) => return skipped("the PostgreSQL-stopped serve test", &why),
    };
    let lines = synth("served-outage", 2_000, 9);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.ndjson");
    write_lines(&input, &lines);
    let reference = format!("sled:{}", dir.path().join("reference").display());
    assert!(run(&reference, &["ingest", input.to_str().unwrap()])
        .status
        .success());
    let want = report(&reference, "served-outage");

    let server = Server::start(&pg.url(), &[]);
    let batches: Vec<String> = lines.chunks(100).map(|c| c.join("\n")).collect();
    let post = |b: &str| http(&server.addr, "POST", "/v1/events", "", b.as_bytes()).unwrap();
    let half = batches.len() / 2;
    for b in &batches[..half] {
        let (status, body) = post(b);
        assert_eq!(status, 200, "{body}");
    }
    pg.crash();
    let (status, body) = post(&batches[half]);
    assert_eq!(status, 503, "the store is down: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
    let (status, _) = http(&server.addr, "GET", "/readyz", "", b"").unwrap();
    assert_eq!(status, 503, "not ready while the store is down");

    pg.up().unwrap();
    // The pool reconnects: the acknowledged half is all there, the rest goes in.
    let deadline = Instant::now() + Duration::from_secs(30);
    while http(&server.addr, "GET", "/readyz", "", b"").unwrap().0 != 200 {
        assert!(
            Instant::now() < deadline,
            "not ready 30 s after the restart"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for (i, b) in batches[..half].iter().enumerate() {
        let (status, body) = post(b);
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v["ingested"], 0,
            "batch {i} was acknowledged, then lost: {body}"
        );
    }
    for b in &batches[half..] {
        let (status, body) = post(b);
        assert_eq!(status, 200, "{body}");
    }
    let (status, got) = http(
        &server.addr,
        "GET",
        &format!(
            "/v1/campaigns/served-outage/report?as_of={}",
            support::AS_OF
        ),
        "",
        b"",
    )
    .unwrap();
    assert_eq!(status, 200, "{got}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&got).unwrap(),
        want
    );
    drop(server);
    assert_verifies(&pg.url(), "after the outage");
}

/// The `total_clicks` of a campaign's report, read over HTTP.
fn served_clicks(addr: &str, campaign: &str) -> Option<u64> {
    let (status, body) = http(
        addr,
        "GET",
        &format!("/v1/campaigns/{campaign}/report"),
        "",
        b"",
    )
    .ok()?;
    if status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["links"]["total_clicks"].as_u64()
}

/// One metric's value from `/metrics`.
fn metric(addr: &str, name: &str) -> f64 {
    let (status, body) = http(addr, "GET", "/metrics", "", b"").unwrap();
    assert_eq!(status, 200);
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// Clicks `code` as a browser does: the answer must send the visitor on.
fn click(addr: &str, code: &str) {
    let ua = "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n";
    let (status, body) = http(addr, "GET", &format!("/c/{code}"), ua, b"").unwrap();
    assert_eq!(status, 302, "/c/{code}: {body}");
}

/// Waits until the campaign's report counts `want` clicks.
fn wait_for_clicks(addr: &str, campaign: &str, want: u64, context: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = served_clicks(addr, campaign);
        if got == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{context}: {got:?} clicks 60 s after PostgreSQL came back, {want} wanted"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn clicks_while_postgres_is_stopped_are_spooled_and_recorded_when_it_returns() {
    let pg = match PrivatePg::start() {
        Ok(pg) => pg,
        Err(why) => return skipped("the click spool test", &why),
    };
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("clicks.ndjson");
    let args = ["--click-spool", spool.to_str().unwrap()];
    let server = Server::start(&pg.url(), &args);
    let campaign = r#"{"type":"campaign","campaign_id":"spooled","name":"Spooled","link_tracking":true,"links":[{"link_id":"go","url":"https://shop.example/go"}],"created_at":"2026-03-01T00:00:00Z"}"#;
    let (status, body) = http(&server.addr, "POST", "/v1/events", "", campaign.as_bytes()).unwrap();
    assert_eq!(status, 200, "{body}");
    let messages: Vec<String> = (1..=4)
        .map(|i| {
            format!(
                r#"{{"message_id":"s{i}","recipient":"+3712000000{i}","text":"Go https://shop.example/go"}}"#
            )
        })
        .collect();
    let (status, body) = http(
        &server.addr,
        "POST",
        "/v1/campaigns/spooled/messages",
        "Content-Type: application/json\r\n",
        format!(r#"{{"messages":[{}]}}"#, messages.join(",")).as_bytes(),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let codes: Vec<String> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let t = m["text"].as_str().unwrap();
            t.split("/c/").nth(1).unwrap().trim().to_owned()
        })
        .collect();
    assert_eq!(codes.len(), 4);
    for c in &codes {
        click(&server.addr, c);
    }
    assert_eq!(served_clicks(&server.addr, "spooled"), Some(4));

    // PostgreSQL goes away: every click still redirects, and is kept in the spool.
    pg.crash();
    for c in codes.iter().chain(&codes) {
        click(&server.addr, c);
    }
    assert_eq!(metric(&server.addr, "smsreport_clicks_spooled"), 8.0);
    assert_eq!(metric(&server.addr, "smsreport_clicks_spooled_total"), 8.0);
    let kept = std::fs::read_to_string(&spool).unwrap();
    assert_eq!(kept.lines().count(), 8, "{kept}");
    assert!(
        !kept.contains("+3712"),
        "the spool keeps codes, not numbers: {kept}"
    );

    // It comes back: the spooled clicks are recorded, once.
    pg.up().unwrap();
    wait_for_clicks(&server.addr, "spooled", 12, "live drain");
    assert_eq!(metric(&server.addr, "smsreport_clicks_spooled"), 0.0);
    assert_eq!(
        metric(&server.addr, "smsreport_clicks_unspooled_total"),
        8.0
    );
    assert_eq!(metric(&server.addr, "smsreport_clicks_lost_total"), 0.0);
    assert_eq!(std::fs::metadata(&spool).unwrap().len(), 0);

    // A second outage, and serve is killed while the clicks wait: the next serve
    // records them.
    pg.crash();
    for c in &codes {
        click(&server.addr, c);
    }
    server.kill();
    pg.up().unwrap();
    let server = Server::start(&pg.url(), &args);
    wait_for_clicks(&server.addr, "spooled", 16, "drain after a restart");
    assert_eq!(std::fs::metadata(&spool).unwrap().len(), 0);
    // Nothing is counted twice: a click made while waiting is recorded at once.
    click(&server.addr, &codes[0]);
    assert_eq!(served_clicks(&server.addr, "spooled"), Some(17));
    drop(server);
    assert_verifies(&pg.url(), "after the outages");
}
