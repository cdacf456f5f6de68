//! The dashboard in a real browser: headless Chromium loads the report page of a seeded
//! store (sled and PostgreSQL) from the real server, the figures in its DOM must be the
//! JSON report's, a campaign named `<script>alert(1)</script>` must stay text, and the
//! sled run saves the README's screenshots (`docs/dashboard.png`,
//! `docs/dashboard-links.png`, `docs/dashboard-insights.png`).
//!
//! Chromium is Debian's `chromium` (`.ci/run` installs it), or the program named by
//! `SMSREPORT_CHROMIUM`. Without it the test fails under `CI=true` and is skipped, with
//! a note, elsewhere.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::page::{assert_same, figures, insight_figures, report_figures};
use common::{config, Server};
use smsreport_core::{Millis, Store};
use smsreport_synth::{events, SynthConfig};

on_every_store!(report_page_in_chromium);

const BASIC: &str = include_str!("../../conformance/fixtures/basic.ndjson");

const XSS: &str = r#"{"type":"campaign","campaign_id":"xss","name":"<script>alert(1)</script>","contact_list":{"list_id":"l-xss","name":"&<>\"' list"},"link_tracking":true,"links":[{"link_id":"q","url":"https://x.example/?q=\"a'b\"<c>"}],"created_at":"2026-02-01T00:00:00Z"}"#;

/// The browser, or `None` (with a note) where there is none and `CI` is not `true`.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SMSREPORT_CHROMIUM").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "no chromium on PATH (and no SMSREPORT_CHROMIUM): under CI=true the browser test \
         must run; .ci/run installs Debian's chromium"
    );
    println!("skipped: the browser test, because there is no chromium on PATH (apt-get install chromium, or set SMSREPORT_CHROMIUM)");
    None
}

/// Runs headless Chromium with a fresh profile and `args`; its standard output.
async fn run(browser: &Path, args: Vec<String>) -> String {
    let browser = browser.to_owned();
    tokio::task::spawn_blocking(move || {
        let profile = tempfile::tempdir().expect("profile dir");
        let out = tempfile::NamedTempFile::new().expect("stdout file");
        let mut child = Command::new(&browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(&args)
            .stdin(Stdio::null())
            .stdout(out.reopen().expect("stdout file"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", browser.display()));
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                assert!(status.success(), "chromium {args:?}: {status}");
                break;
            }
            if start.elapsed() > Duration::from_secs(120) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium {args:?} did not finish within 120 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        std::fs::read_to_string(out.path()).expect("chromium's output")
    })
    .await
    .expect("chromium task")
}

async fn dom(browser: &Path, url: &str) -> String {
    let html = run(browser, vec!["--dump-dom".into(), url.into()]).await;
    assert!(html.contains("</html>"), "{url}: {html}");
    html
}

async fn screenshot(browser: &Path, url: &str, path: &Path, height: u32) {
    let _ = std::fs::remove_file(path);
    run(
        browser,
        vec![
            format!("--screenshot={}", path.display()),
            format!("--window-size=1280,{height}"),
            url.into(),
        ],
    )
    .await;
    let png = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert_eq!(width, 1280);
}

/// A realistic campaign (4 000 messages, receipts and clicks over three months), the
/// specification's worked example, and a hostile one.
async fn seed(s: &Server) {
    let lines: Vec<String> = events(&SynthConfig {
        campaign_id: "spring-sale-2026".into(),
        name: "Spring sale 2026".into(),
        messages: 4_000,
        seed: 2026,
        start: Millis::parse("2026-03-02T09:00:00Z").unwrap(),
    })
    .collect();
    for chunk in lines.chunks(5_000) {
        let v = s.events(&chunk.join("\n")).await;
        assert_eq!(v["rejected"], serde_json::json!([]), "{v}");
    }
    s.events(BASIC).await;
    s.events(XSS).await;
}

async fn report_page_in_chromium(store: Arc<dyn Store>) {
    let Some(browser) = chromium() else {
        return;
    };
    let on_sled = format!("{store:?}").to_lowercase().contains("sled");
    let s = Server::start(store, config()).await;
    seed(&s).await;
    let base = format!("http://{}", s.addr);
    let id = "spring-sale-2026";
    let json = s.get(&format!("/v1/campaigns/{id}/report")).await.json();
    assert!(json["delivery"]["total"] == 4000, "{json}");

    // The figures in the DOM, both tabs, are the JSON report's.
    let delivery = dom(&browser, &format!("{base}/campaigns/{id}")).await;
    let links = dom(&browser, &format!("{base}/campaigns/{id}?tab=links")).await;
    let mut shown = figures(&delivery);
    shown.extend(figures(&links));
    assert_same(&shown, &report_figures(&json));
    assert!(delivery.contains("aria-current=\"page\">Delivery Statistics</a>"));
    assert!(links.contains("aria-current=\"page\">Link Statistics</a>"));
    assert!(links.contains("<svg class=\"chart\""));
    assert!(links.contains("<span class=\"badge\">Most popular</span>"));

    // The Insights tab as of a fixed moment: its figures are the JSON insights', with
    // the latency chart and every country by English name.
    let at = "as_of=2026-03-05T12:00:00Z&stale_after_h=24";
    let json_at = s
        .get(&format!("/v1/campaigns/{id}/report?{at}"))
        .await
        .json();
    let insights = dom(
        &browser,
        &format!("{base}/campaigns/{id}?tab=insights&{at}"),
    )
    .await;
    let mut shown = figures(&insights);
    shown.retain(|k, _| k.starts_with("insights."));
    assert_same(&shown, &insight_figures(&json_at));
    assert!(insights.contains("aria-current=\"page\">Insights</a>"));
    assert!(
        insights.contains("<svg class=\"chart latency\""),
        "{insights}"
    );
    let countries = json_at["insights"]["by_country"].as_array().unwrap();
    assert!(!countries.is_empty());
    for c in countries {
        let region = c["region"].as_str().unwrap();
        let name = smsreport_core::names::country_name(region).unwrap();
        assert!(insights.contains(&format!(">{name}</a>")), "no {name}");
    }

    // The hostile name is text in the switcher, and in its own page; no script element.
    assert!(
        delivery.contains(">&lt;script&gt;alert(1)&lt;/script&gt;</option>"),
        "{delivery}"
    );
    let xss = dom(&browser, &format!("{base}/campaigns/xss")).await;
    assert!(
        xss.contains("<h1>&lt;script&gt;alert(1)&lt;/script&gt;</h1>"),
        "{xss}"
    );
    for page in [&delivery, &links, &xss] {
        assert!(!page.contains("<script"), "{page}");
    }
    let xss_links = dom(&browser, &format!("{base}/campaigns/xss?tab=links")).await;
    assert!(!xss_links.contains("<c>"), "{xss_links}");

    // The campaign list and the recipients page load too.
    let list = dom(&browser, &format!("{base}/")).await;
    assert!(list.contains(&format!("<tr data-campaign=\"{id}\">")));
    let recipients = dom(&browser, &format!("{base}/campaigns/{id}/recipients")).await;
    assert_eq!(recipients.matches("<tr data-message=").count(), 50);

    // Screenshots: the README's from the sled run, a throwaway one from PostgreSQL's.
    let dir = tempfile::tempdir().unwrap();
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    let (main, second) = if on_sled {
        (docs.join("dashboard.png"), docs.join("dashboard-links.png"))
    } else {
        (dir.path().join("a.png"), dir.path().join("b.png"))
    };
    screenshot(&browser, &format!("{base}/campaigns/{id}"), &main, 1400).await;
    screenshot(
        &browser,
        &format!("{base}/campaigns/{id}?tab=links"),
        &second,
        1240,
    )
    .await;
    let third = if on_sled {
        docs.join("dashboard-insights.png")
    } else {
        dir.path().join("c.png")
    };
    screenshot(
        &browser,
        &format!("{base}/campaigns/{id}?tab=insights&{at}"),
        &third,
        1400,
    )
    .await;
}
