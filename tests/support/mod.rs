//! What the reliability tests share: the binary, synthetic streams, PostgreSQL schemas,
//! `serve` as a child process, and a small HTTP/1.1 client that reports failures
//! instead of panicking (a killed server is expected).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use smsreport_core::Millis;
use smsreport_synth::{events, SynthConfig};

pub const BIN: &str = env!("CARGO_BIN_EXE_smsreport");

/// The binary with `--store`, none of the environment's SMSREPORT_ settings.
pub fn cmd(store: &str, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--store").arg(store).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("SMSREPORT_") {
            c.env_remove(k);
        }
    }
    c
}

/// Runs the binary to the end.
pub fn run(store: &str, args: &[&str]) -> Output {
    cmd(store, args)
        .stdin(Stdio::null())
        .output()
        .expect("run smsreport")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The moment reports are answered as of in these tests, so that two reports of the same
/// state are equal (insights' waiting ages are measured against it).
pub const AS_OF: &str = "2026-03-10T00:00:00Z";

/// A campaign's JSON report as of [`AS_OF`].
pub fn report(store: &str, campaign: &str) -> serde_json::Value {
    let out = run(
        store,
        &["report", campaign, "--format", "json", "--as-of", AS_OF],
    );
    assert!(
        out.status.success(),
        "report {campaign} on {store}: {}",
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("report JSON")
}

/// `verify`, which must pass.
pub fn assert_verifies(store: &str, context: &str) {
    let v = run(store, &["verify"]);
    assert!(
        v.status.success(),
        "{context}: verify failed:\n{}{}",
        text(&v.stdout),
        text(&v.stderr)
    );
}

/// The lines of a synthetic campaign (its `campaign` event first).
pub fn synth(campaign: &str, messages: u64, seed: u64) -> Vec<String> {
    events(&SynthConfig {
        campaign_id: campaign.into(),
        name: format!("Reliability {campaign}"),
        messages,
        seed,
        start: Millis::parse("2026-03-01T08:00:00Z").unwrap(),
    })
    .collect()
}

pub fn write_lines(path: &Path, lines: &[String]) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    f.flush().unwrap();
}

/// A xorshift generator seeded from the clock (printed, so a failure can be replayed
/// with `SMSREPORT_CRASH_SEED`).
#[derive(Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn from_env_or_clock(name: &str) -> Rng {
        let seed = std::env::var("SMSREPORT_CRASH_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            })
            | 1;
        eprintln!("{name}: SMSREPORT_CRASH_SEED={seed}");
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `lo..hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }

    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// The number of kill cycles: `SMSREPORT_CRASH_CYCLES`, else `default`.
pub fn cycles(default: u64) -> u64 {
    std::env::var("SMSREPORT_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The PostgreSQL server the tests use (`smsreport_conformance::pg`), or `None` when
/// `test` is skipped (`smsreport_conformance::or_skip`: a failure under `CI=true`).
pub fn pg_base(test: &str) -> Option<String> {
    smsreport_conformance::or_skip(test, smsreport_conformance::pg::server())
}

/// `smsreport serve` as a child process on a port of its choosing.
#[derive(Debug)]
pub struct Server {
    pub child: Child,
    pub addr: String,
    /// What it writes to standard error after the address, read to its end.
    log: Option<std::thread::JoinHandle<String>>,
}

impl Server {
    /// Starts `serve` on `store` and waits until it listens.
    pub fn start(store: &str, extra: &[&str]) -> Server {
        Server::start_env(store, extra, &[])
    }

    /// [`Server::start`] with these environment variables.
    pub fn start_env(store: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut child = cmd(store, &args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start serve");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        // Log lines (a warning about a short secret, say) may come before the startup
        // line; they are shown if it never comes.
        let mut line = String::new();
        let mut before = String::new();
        while stderr.read_line(&mut line).unwrap_or(0) > 0 && !line.contains("listening on") {
            before.push_str(&line);
            line.clear();
        }
        let Some(addr) = line
            .split("listening on http://")
            .nth(1)
            .and_then(|r| r.split(' ').next())
        else {
            let mut rest = String::new();
            let _ = stderr.read_to_string(&mut rest);
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve did not start: {before}{line}{rest}");
        };
        let addr = addr.to_owned();
        // Keep reading standard error so that the server never blocks on it.
        let log = std::thread::spawn(move || {
            let mut sink = String::new();
            let _ = stderr.read_to_string(&mut sink);
            sink
        });
        Server {
            child,
            addr,
            log: Some(log),
        }
    }

    /// SIGTERM; waits for it to exit and returns what it wrote to standard error after
    /// its address.
    pub fn terminate(mut self) -> String {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let status = self.child.wait().expect("wait for serve");
        assert!(status.success(), "serve stopped with {status}");
        self.log
            .take()
            .map(|l| l.join().unwrap_or_default())
            .unwrap_or_default()
    }

    /// SIGKILL, and reap.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request with `Connection: close`: (status, body), or the I/O error.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &str,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let t = text(&buf);
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, format!("answer {t:?}"));
    let (head, body) = t.split_once("\r\n\r\n").ok_or_else(bad)?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    Ok((status, body.to_owned()))
}

/// Waits until `GET /healthz` answers 200.
pub fn wait_healthy(addr: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if matches!(http(addr, "GET", "/healthz", "", b""), Ok((200, _))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{addr} not healthy after 30 s");
}
