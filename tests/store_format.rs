//! Store format stability, as oxigraph does it: a sled folder, a SQLite file and a
//! PostgreSQL schema (as `pg_dump` SQL) written by smsreport 0.1 (store format 1, the
//! first migration), and a sled folder of format 2 (`sled-v2/`), are committed under
//! `tests/fixtures/stores/`; every
//! later version must open copies of them and answer exactly what 0.1 answered: the
//! conformance fixtures' expected reports, and the campaign list, reports and
//! drill-downs saved beside the stores. Re-ingesting what they were made from must be
//! all duplicates (the idempotence markers still read), and `verify` must pass.
//!
//! The PostgreSQL one also catches an edited migration: sqlx refuses a database whose
//! applied migration differs from the one of the same number in the binary, so a
//! change of schema must be a new migration, never an edit of a released one.
//!
//! The fixtures are made by `cargo test --test store_format -- --ignored` (only ever for
//! a new store format: then add `sled-v2/`, `v2.sqlite` and `v2.postgres.sql` beside the
//! old ones, never replace them).

mod support;

use std::path::{Path, PathBuf};

use smsreport_conformance::pg::Schema;
use support::{assert_verifies, pg_base, run, text};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn fixtures() -> PathBuf {
    root().join("tests/fixtures/stores")
}

/// What the stores were made from, in order: (file, its expected report's campaign).
const INPUTS: [&str; 4] = [
    "crates/conformance/fixtures/basic.ndjson",
    "crates/conformance/fixtures/rules-1.ndjson",
    "crates/conformance/fixtures/rules-2.ndjson",
    "tests/fixtures/stores/synth.ndjson",
];

/// The questions asked of a store, and the file each answer is saved in.
fn questions() -> Vec<(Vec<&'static str>, &'static str)> {
    let mut q = vec![(vec!["campaigns", "--format", "json"], "campaigns.json")];
    for (c, f) in [
        ("spring-sale", "spring-sale"),
        ("rules", "rules"),
        ("fixture-synth", "fixture-synth"),
    ] {
        q.push((
            vec!["report", c, "--format", "json"],
            leak(format!("{f}.report.json")),
        ));
        q.push((
            vec!["report", c, "--format", "json", "--tz", "Europe/Riga"],
            leak(format!("{f}.report-riga.json")),
        ));
        q.push((
            vec!["recipients", c, "--format", "json"],
            leak(format!("{f}.recipients.json")),
        ));
    }
    q
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{e}: {}", text(bytes)))
}

/// Reports are answered as of this moment, so that their insights compare.
const AS_OF: [&str; 2] = ["--as-of", "2026-03-10T00:00:00Z"];

/// Answers `args` (and `--as-of` for a report): every field a format-1 store answered
/// must stay as it was; the insights a format-2 store adds (filled in by the upgrade)
/// must equal those of a new store that ingested the same inputs.
fn answer(store: &str, args: &[&str], fresh: &str, name: &str) -> serde_json::Value {
    let is_report = args[0] == "report";
    let args: Vec<&str> = if is_report {
        args.iter().chain(&AS_OF).copied().collect()
    } else {
        args.to_vec()
    };
    let out = run(store, &args);
    assert!(
        out.status.success(),
        "{name} {args:?}: {}",
        text(&out.stderr)
    );
    let mut got = json(&out.stdout);
    if is_report {
        let insights = got
            .as_object_mut()
            .and_then(|o| o.remove("insights"))
            .unwrap_or_else(|| panic!("{name} {args:?}: no insights"));
        let mut want = json(&run(fresh, &args).stdout);
        assert_eq!(
            insights,
            want["insights"].take(),
            "{name} {args:?}: the upgrade's insights differ from a new store's"
        );
    }
    got
}

/// A new store (current format) that ingested the fixtures' inputs.
fn fresh_store(dir: &Path) -> String {
    let store = format!("sled:{}", dir.join("fresh").display());
    for input in INPUTS {
        run(&store, &["ingest", root().join(input).to_str().unwrap()]);
    }
    store
}

fn check(store: &str, name: &str) {
    let expected = fixtures().join("expected");
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = fresh_store(fresh_dir.path());
    for (args, file) in questions() {
        let got = answer(store, &args, &fresh, name);
        let want = json(&std::fs::read(expected.join(file)).unwrap());
        assert_eq!(got, want, "{name}: {args:?} differs from {file}");
    }
    // The worked examples of docs/rules.md, as the conformance suite has them.
    for (campaign, file) in [
        ("spring-sale", "basic.expected.json"),
        ("rules", "rules.expected.json"),
    ] {
        let got = answer(
            store,
            &["report", campaign, "--format", "json"],
            &fresh,
            name,
        );
        let want =
            json(&std::fs::read(root().join("crates/conformance/fixtures").join(file)).unwrap());
        assert_eq!(got, want, "{name}: {file}");
    }
    assert_verifies(store, name);
    // What they were made from is already there (rules-1 is left out: its campaign
    // event, given again, would undo rules-2's renaming, which is an update).
    for input in [INPUTS[0], INPUTS[3]] {
        let out = run(store, &["ingest", root().join(input).to_str().unwrap()]);
        let summary = text(&out.stdout);
        assert!(
            summary.starts_with("ingested 0,"),
            "{name}: re-ingesting {input}: {summary}"
        );
    }
}

#[test]
fn a_sled_store_written_by_version_0_1_opens_and_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("sled-v1"), &dir.path().join("db"));
    check(
        &format!("sled:{}", dir.path().join("db").display()),
        "sled-v1",
    );
}

/// Format 2 (insights, a key per counter) was written by the binary of 89f8047 from the
/// same inputs and `waiting.ndjson` (statuses of two messages that never came); format 3
/// keeps a campaign's counters in one value and those messages apart.
#[test]
fn a_sled_store_of_format_2_opens_and_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("sled-v2"), &dir.path().join("db"));
    let store = format!("sled:{}", dir.path().join("db").display());
    check(&store, "sled-v2");
    let out = run(&store, &["health", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        json(&out.stdout)["waiting_for_message"],
        serde_json::json!({"messages": 2, "oldest_at": "2026-03-04T10:05:00.000Z"}),
        "the upgrade found the messages that never came"
    );
}

#[test]
fn a_sqlite_store_written_by_version_0_1_opens_and_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v1.sqlite");
    std::fs::copy(fixtures().join("v1.sqlite"), &db).unwrap();
    check(&format!("sqlite:{}", db.display()), "v1.sqlite");
}

/// The schema name inside `v1.postgres.sql`, replaced by a fresh one when it is loaded.
const PG_FIXTURE_SCHEMA: &str = "smsreport_fixture_v1";

/// Runs `psql` on the test server with `sql` as its input, stopping at the first error.
fn psql(base: &str, sql: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("psql")
        .args([
            base.split('?').next().unwrap(),
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("psql (PostgreSQL's client) is needed to load the fixture");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "psql: {}", text(&out.stderr));
}

#[test]
fn a_postgres_store_written_by_version_0_1_opens_and_answers_the_same() {
    let Some(base) = pg_base("the PostgreSQL store format test") else {
        return;
    };
    let schema = Schema::fresh_on(&base);
    let dump = std::fs::read_to_string(fixtures().join("v1.postgres.sql")).unwrap();
    psql(&base, &dump.replace(PG_FIXTURE_SCHEMA, &schema.name));
    check(&schema.url("pool_max=2"), "v1.postgres.sql");
}

/// Writes the fixtures (see the module's doc: only for a new store format).
#[test]
#[ignore]
fn write_store_fixtures() {
    let dir = fixtures();
    let synth: Vec<String> = support::synth("fixture-synth", 120, 5);
    support::write_lines(&dir.join("synth.ndjson"), &synth);
    let sled_dir = dir.join("sled-v1");
    let sqlite = dir.join("v1.sqlite");
    let _ = std::fs::remove_dir_all(&sled_dir);
    let _ = std::fs::remove_file(&sqlite);
    for store in [
        format!("sled:{}", sled_dir.display()),
        format!("sqlite:{}", sqlite.display()),
    ] {
        for input in INPUTS {
            let out = run(&store, &["ingest", root().join(input).to_str().unwrap()]);
            assert!(
                out.status.code().is_some_and(|c| c <= 2),
                "{}",
                text(&out.stderr)
            );
        }
    }
    // A single file: fold SQLite's write-ahead log into it.
    let out = std::process::Command::new("sqlite3")
        .arg(&sqlite)
        .arg("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE;")
        .output();
    if let Ok(o) = out {
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    // PostgreSQL: a schema of the test server, dumped as SQL, then dropped.
    let base = pg_base("the PostgreSQL fixture").expect("a PostgreSQL server");
    let pg = Schema::named(&base, PG_FIXTURE_SCHEMA);
    drop(Schema::named(&base, PG_FIXTURE_SCHEMA));
    for input in INPUTS {
        let out = run(
            &pg.url("pool_max=2"),
            &["ingest", root().join(input).to_str().unwrap()],
        );
        assert!(
            out.status.code().is_some_and(|c| c <= 2),
            "{}",
            text(&out.stderr)
        );
    }
    let out = std::process::Command::new("pg_dump")
        .args([base.split('?').next().unwrap(), "-n", PG_FIXTURE_SCHEMA])
        .args(["--no-owner", "--no-privileges", "--no-comments"])
        .arg(format!(
            "--exclude-table-data={PG_FIXTURE_SCHEMA}.ingest_locks"
        ))
        .output()
        .expect("pg_dump");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut dump = out.stdout;
    dump.extend_from_slice(
        format!(
            "-- ingest_locks as migration 1 fills it (its data is left out of the dump above).\n\
             INSERT INTO {PG_FIXTURE_SCHEMA}.ingest_locks (bucket) SELECT generate_series(0, 65535);\n"
        )
        .as_bytes(),
    );
    std::fs::write(dir.join("v1.postgres.sql"), dump).unwrap();
    drop(pg);

    let expected = dir.join("expected");
    std::fs::create_dir_all(&expected).unwrap();
    for (args, file) in questions() {
        let out = run(&format!("sled:{}", sled_dir.display()), &args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        let v = json(&out.stdout);
        std::fs::write(
            expected.join(file),
            serde_json::to_string_pretty(&v).unwrap() + "\n",
        )
        .unwrap();
    }
}
