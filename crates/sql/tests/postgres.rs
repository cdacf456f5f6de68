//! PostgreSQL specifics: concurrent ingest from several processes' worth of pools, the
//! schema option, a newer database refused, an unreachable server.
mod common;

#[cfg(pg_tests_skipped)]
#[test]
fn postgres_tests_skipped() {
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "SMSREPORT_TEST_PG=skip is refused under CI=true: the PostgreSQL tests must run"
    );
    println!("skipped: the PostgreSQL tests, because SMSREPORT_TEST_PG=skip");
}

#[cfg(not(pg_tests_skipped))]
mod pg {
    use super::common::{fresh_schema, pg_store, pg_store_on, SchemaGuard};
    use smsreport_conformance::ingest_text;
    use smsreport_conformance::props::all_recipients;
    use smsreport_core::{Millis, Store, StoreError};
    use smsreport_sql::PgStore;
    use smsreport_synth::{events, SynthConfig};

    fn synth(messages: u64, seed: u64) -> Vec<String> {
        events(&SynthConfig {
            campaign_id: "race".into(),
            name: "Race".into(),
            messages,
            seed,
            start: Millis::from_utc(2026, 3, 1, 8, 0, 0, 0).unwrap(),
        })
        .collect()
    }

    /// xorshift: a shuffle that is the same on every run.
    fn shuffle<T>(v: &mut [T], seed: u64) {
        let mut s = seed | 1;
        for i in (1..v.len()).rev() {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            v.swap(i, (s % (i as u64 + 1)) as usize);
        }
    }

    async fn ingest_batches(store: &dyn Store, lines: &[String], batch: usize) -> u64 {
        let mut rejected = 0;
        for chunk in lines.chunks(batch) {
            rejected += ingest_text(store, &chunk.join("\n")).await.0.rejected;
        }
        rejected
    }

    async fn assert_same(a: &dyn Store, b: &dyn Store) {
        let ca = a.campaigns().await.unwrap();
        assert_eq!(ca, b.campaigns().await.unwrap(), "campaign lists");
        for c in &ca {
            let id = &c.campaign_id;
            assert_eq!(
                a.report(id).await.unwrap(),
                b.report(id).await.unwrap(),
                "report of {id}"
            );
            assert_eq!(
                all_recipients(a, id).await,
                all_recipients(b, id).await,
                "recipients of {id}"
            );
        }
    }

    /// Six ingesters, each with its own pool, over shuffled, overlapping and duplicated
    /// slices of one stream, at once, give exactly the report of one sequential ingest.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_ingesters_give_the_sequential_report() {
        const TASKS: u64 = 6;
        let lines = synth(1500, 11);
        let (campaign, rest) = lines.split_first().unwrap();
        let (sequential, _g1) = pg_store().await;
        assert_eq!(ingest_batches(&sequential, &lines, 500).await, 0);

        let schema = fresh_schema();
        let _g2 = SchemaGuard(schema.clone());
        let first = pg_store_on(&schema).await;
        let mut tasks = Vec::new();
        for t in 0..TASKS {
            // Every task: the campaign, its share of the stream, and a third of the
            // others' lines again; all shuffled.
            let mut mine: Vec<String> = rest
                .iter()
                .enumerate()
                .filter(|(i, _)| *i as u64 % TASKS == t || (*i as u64 * 7 + t) % 3 == 0)
                .map(|(_, l)| l.clone())
                .collect();
            shuffle(&mut mine, 0x9e37_79b9 + t);
            mine.insert(0, campaign.clone());
            let store = pg_store_on(&schema).await;
            tasks.push(tokio::spawn(async move {
                ingest_batches(&store, &mine, 150).await
            }));
        }
        for t in tasks {
            assert_eq!(
                t.await.expect("an ingester panicked"),
                0,
                "no line rejected"
            );
        }
        assert_same(&sequential, &first).await;
        let v = first.verify().await.unwrap();
        assert!(v.differences.is_empty(), "{:?}", v.differences);
        assert_eq!(v.messages, 1500);
    }

    /// A schema migrated by a newer smsreport is refused with a clear message and left
    /// as it was.
    #[tokio::test]
    async fn a_newer_schema_is_refused_and_left_alone() {
        let (store, guard) = pg_store().await;
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (9999, 'from the future', true, '\\x00', 0)",
        )
        .execute(store.pool())
        .await
        .unwrap();
        let url = super::common::schema_url(&guard.0);
        let err = PgStore::connect(&url).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("newer smsreport") && msg.contains("9999"),
            "{msg}"
        );
        let n: (i64,) =
            sqlx::query_as("SELECT count(*) FROM _sqlx_migrations WHERE version = 9999")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(n.0, 1, "left alone");

        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 9999")
            .execute(store.pool())
            .await
            .unwrap();
        sqlx::query("UPDATE schema_info SET value = 7 WHERE key = 'format'")
            .execute(store.pool())
            .await
            .unwrap();
        let err = PgStore::connect(&url).await.unwrap_err();
        assert!(err.to_string().contains("format 7"), "{err}");
    }

    /// A message row remembers at most 32 status events: more distinct ones still decide
    /// the status, and ingesting them all again changes nothing. Statuses before their
    /// message, and the message arriving after them, keep working too.
    #[tokio::test]
    async fn many_distinct_statuses_for_one_message_stay_correct() {
        let (store, _g) = pg_store().await;
        let mut text = vec![
            r#"{"type":"campaign","campaign_id":"c","name":"C"}"#.to_owned(),
            r#"{"type":"message","message_id":"m","campaign_id":"c","recipient":"+37120000001","at":"2026-03-01T09:00:00Z"}"#.to_owned(),
        ];
        let mut early = Vec::new();
        for i in 0..96 {
            let line = |m: &str| {
                format!(
                    r#"{{"type":"status","message_id":"{m}","status":"sent","error_code":"{i:03}","at":"2026-03-01T09:00:00Z"}}"#
                )
            };
            text.push(line("m"));
            early.push(line("early"));
        }
        early.push(r#"{"type":"message","message_id":"early","campaign_id":"c","recipient":"+37120000002","at":"2026-03-01T09:00:00Z"}"#.to_owned());
        let text = text.join("\n");
        let early = early.join("\n");
        let (first, _) = ingest_text(&store, &text).await;
        assert_eq!(first.ingested, 2 + 96);
        let (first, _) = ingest_text(&store, &early).await;
        assert_eq!(first.ingested, 97);
        let report = store.report("c").await.unwrap();
        for t in [&text, &early] {
            let (again, _) = ingest_text(&store, t).await;
            assert_eq!(again.rejected, 0);
            assert!(again.duplicates >= 33, "{again:?}");
        }
        assert_eq!(store.report("c").await.unwrap(), report, "unchanged");
        let page = store.recipients("c", &Default::default()).await.unwrap();
        assert_eq!(page.items.len(), 2);
        for item in &page.items {
            assert_eq!(
                item.error_code.as_deref(),
                Some("095"),
                "the greatest code wins"
            );
        }
        assert!(store.verify().await.unwrap().differences.is_empty());
    }

    /// Two schemas of one database are two stores.
    #[tokio::test]
    async fn schemas_keep_stores_apart() {
        let (a, _ga) = pg_store().await;
        let (b, _gb) = pg_store().await;
        ingest_text(&a, smsreport_conformance::BASIC).await;
        assert_eq!(a.campaigns().await.unwrap().len(), 1);
        assert!(b.campaigns().await.unwrap().is_empty());
        assert!(a.schema().is_some_and(|s| s.starts_with("t_")));
    }

    /// A server that accepts connections but never answers: a failure naming the host
    /// within the timeout, not a hang.
    #[tokio::test]
    async fn an_unanswering_server_fails_in_seconds() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let started = std::time::Instant::now();
        let err = PgStore::connect(&format!(
            "postgres://postgres:secret@127.0.0.1:{port}/x?connect_timeout=1"
        ))
        .await
        .unwrap_err()
        .to_string();
        assert!(
            started.elapsed().as_secs() < 5,
            "took {:?}",
            started.elapsed()
        );
        assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
        assert!(!err.contains("secret"), "{err}");
        drop(listener);
    }

    #[test]
    fn url_options_are_taken_out() {
        let (url, o) = smsreport_sql::PgOptions::from_url(
            "postgres://u@h:5/db?sslmode=disable&schema=t_1&pool_max=3&connect_timeout=2",
        )
        .unwrap();
        assert_eq!(url, "postgres://u@h:5/db?sslmode=disable");
        assert_eq!(o.schema.as_deref(), Some("t_1"));
        assert_eq!(o.pool_max, 3);
        assert_eq!(o.connect_timeout.as_secs(), 2);
        assert!(smsreport_sql::PgOptions::from_url("postgres://h/db?schema=Robert%27;").is_err());
    }
}
