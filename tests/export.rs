//! `smsreport export`, run as a binary: the demo's store moved from sled to PostgreSQL
//! to SQLite answers the same (campaigns, report, drill-down, verify), every export is
//! the same bytes, and a failed export leaves no file behind.
mod support;

use smsreport_conformance::pg::Schema;
use support::{assert_verifies, pg_base, report, run, text};

fn export_to(store: &str, file: &std::path::Path) -> String {
    let out = run(store, &["export", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "export of {store}: {}",
        text(&out.stderr)
    );
    let summary = text(&out.stderr);
    assert!(
        summary.starts_with("exported "),
        "a summary line: {summary}"
    );
    assert!(
        !std::path::Path::new(&format!("{}.partial", file.display())).exists(),
        "no partial file is left"
    );
    std::fs::read_to_string(file).expect("the export file")
}

#[test]
fn the_demo_moves_from_sled_to_postgresql_to_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let sled = format!("sled:{}", dir.path().join("data").display());
    let demo = run(&sled, &["demo"]);
    assert!(demo.status.success(), "{}", text(&demo.stderr));
    let file = dir.path().join("export.ndjson");
    let first = export_to(&sled, &file);
    let want = report(&sled, "demo-spring-sale");
    let campaigns = text(&run(&sled, &["campaigns", "--format", "json"]).stdout);
    let recipients = text(
        &run(
            &sled,
            &["recipients", "demo-spring-sale", "--format", "csv"],
        )
        .stdout,
    );

    let schema = pg_base("the export binary test on PostgreSQL").map(|b| Schema::fresh_on(&b));
    let sqlite = format!("sqlite:{}", dir.path().join("moved.db").display());
    let mut chain: Vec<String> = schema.iter().map(|s| s.url("")).collect();
    chain.push(sqlite);
    let mut from = sled.clone();
    for to in chain {
        let input = dir
            .path()
            .join(format!("from-{}.ndjson", chain_name(&from)));
        let text_from = export_to(&from, &input);
        assert_eq!(
            text_from, first,
            "the export of {from} is the first one's bytes"
        );
        let out = run(&to, &["ingest", input.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "ingest into {to}: {}",
            text(&out.stderr)
        );
        let lines = first.lines().count();
        let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(
            said.contains(&format!("ingested {lines}, duplicates 0, rejected 0")),
            "{said}"
        );
        assert_eq!(report(&to, "demo-spring-sale"), want, "the report on {to}");
        assert_eq!(
            text(&run(&to, &["campaigns", "--format", "json"]).stdout),
            campaigns
        );
        assert_eq!(
            text(&run(&to, &["recipients", "demo-spring-sale", "--format", "csv"]).stdout),
            recipients
        );
        assert_verifies(&to, "after the move");
        from = to;
    }
    // Standard output gives the same bytes.
    let out = run(&from, &["export"]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), first);
}

fn chain_name(store: &str) -> &str {
    store.split(':').next().unwrap_or("store")
}

#[test]
fn an_export_that_cannot_be_written_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let sled = format!("sled:{}", dir.path().join("data").display());
    let missing = dir.path().join("no-such-folder").join("export.ndjson");
    let out = run(&sled, &["export", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("export.ndjson.partial"),
        "names the file: {err}"
    );
    assert!(!missing.exists());
}

fn files_holding(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read(e.path())
                .map(|b| b.windows(needle.len()).any(|w| w == needle))
                .unwrap_or(false)
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn forget_leaves_no_number_in_the_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let store = format!("sqlite:{}", db.display());
    let input = dir.path().join("basic.ndjson");
    std::fs::write(
        &input,
        include_str!("../crates/conformance/fixtures/basic.ndjson"),
    )
    .unwrap();
    let out = run(&store, &["ingest", input.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::remove_file(&input).unwrap();
    let number = b"+37120000001";
    assert!(
        !files_holding(dir.path(), number).is_empty(),
        "the store's files hold the number before forget (the search can find it)"
    );

    let bad = run(&store, &["forget", "37120000001"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));

    let out = run(&store, &["forget", "+37120000001", "+37129999999"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "+371******01: 1 message, 1 contact, 2 clicks, 0 tracked links\n\
         +371******99: 0 messages, 0 contacts, 0 clicks, 0 tracked links\n\
         forgot 2 numbers: 1 message, 1 contact, 2 clicks, 0 tracked links\n"
    );
    assert_eq!(
        files_holding(dir.path(), number),
        Vec::<String>::new(),
        "no file of the store holds the number after forget"
    );
    assert_eq!(
        files_holding(dir.path(), b"37120000001"),
        Vec::<String>::new()
    );
    let r = report(&store, "spring-sale");
    assert_eq!(r["contact_list"]["subscribers"], 2);
    assert_eq!(r["delivery"]["delivered"], 2);
    assert_verifies(&store, "after forget");
    let recipients = text(&run(&store, &["recipients", "spring-sale", "--format", "csv"]).stdout);
    assert!(recipients.contains("forgotten"), "{recipients}");
    assert!(!recipients.contains("+37120000001"), "{recipients}");
}
