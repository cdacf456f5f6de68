//! The PostgreSQL server of the tests, one harness for every test that needs it: the
//! server's URL, the skip rule, and a fresh schema that is dropped when its guard is.
//!
//! The server is `SMSREPORT_TEST_PG` (default [`DEFAULT_URL`]). `SMSREPORT_TEST_PG=skip`
//! skips the PostgreSQL tests at run time (see [`crate::or_skip`]): each says
//! `skipped: <test>, because SMSREPORT_TEST_PG=skip` and passes, except under `CI=true`,
//! where it fails.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::Skip;

/// The server when `SMSREPORT_TEST_PG` is unset or empty.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The URL of the test server, or why there is none.
pub fn server() -> Result<String, Skip> {
    match std::env::var("SMSREPORT_TEST_PG") {
        Ok(v) if v == "skip" => Err(Skip("SMSREPORT_TEST_PG=skip".into())),
        Ok(v) if !v.is_empty() => Ok(v),
        _ => Ok(DEFAULT_URL.into()),
    }
}

/// A schema name no other test uses (`{prefix}_{process}_{counter}_{nanos}`).
pub fn fresh_schema_name(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A schema of the test server; dropped, with everything in it, when this is dropped.
#[derive(Debug)]
pub struct Schema {
    /// The server's URL.
    pub base: String,
    /// The schema's name.
    pub name: String,
}

impl Schema {
    /// A fresh schema on the test server, or why there is no server.
    pub fn fresh() -> Result<Schema, Skip> {
        Ok(Schema::fresh_on(&server()?))
    }

    /// A fresh schema on the server `base`.
    pub fn fresh_on(base: &str) -> Schema {
        Schema::named(base, &fresh_schema_name("t"))
    }

    /// The schema `name` on the server `base` (created by the first store that opens
    /// it); dropped when this is dropped.
    pub fn named(base: &str, name: &str) -> Schema {
        Schema {
            base: base.to_owned(),
            name: name.to_owned(),
        }
    }

    /// The store URL of this schema, with `extra` parameters (`pool_max=2`) if any.
    pub fn url(&self, extra: &str) -> String {
        schema_url(&self.base, &self.name, extra)
    }
}

/// The store URL of schema `name` on the server `base`, with `extra` parameters.
pub fn schema_url(base: &str, name: &str, extra: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!("&{extra}")
    };
    format!("{base}{sep}schema={name}{extra}")
}

/// The server URL without smsreport's own parameters (`schema`, `pool_max`,
/// `connect_timeout`), for a plain connection.
fn plain(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| {
            let k = p.split('=').next().unwrap_or_default();
            !p.is_empty() && !["schema", "pool_max", "connect_timeout"].contains(&k)
        })
        .collect();
    if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let url = plain(&self.base);
        let name = self.name.clone();
        // Drop cannot be async, and may run inside a runtime: a thread with its own
        // runtime does the work.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                use sqlx::Connection;
                let mut c = sqlx::PgConnection::connect(&url)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                    .execute(&mut c)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<(), String>(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop test schema {}: {e}", self.name),
            Err(_) => eprintln!(
                "could not drop test schema {}: the thread panicked",
                self.name
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            schema_url("postgres://h/db", "t_1", "pool_max=2"),
            "postgres://h/db?schema=t_1&pool_max=2"
        );
        assert_eq!(
            schema_url("postgres://h/db?sslmode=disable", "t_1", ""),
            "postgres://h/db?sslmode=disable&schema=t_1"
        );
        assert_eq!(
            plain("postgres://h/db?schema=x&sslmode=disable&pool_max=3&connect_timeout=2"),
            "postgres://h/db?sslmode=disable"
        );
        assert_eq!(plain("postgres://h/db?pool_max=3"), "postgres://h/db");
        assert_ne!(fresh_schema_name("t"), fresh_schema_name("t"));
    }
}
