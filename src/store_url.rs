//! Opening the store a `--store` URL names.

use std::path::Path;
use std::sync::Arc;

use smsreport_core::{Store, StoreError};
use smsreport_sled::SledStore;

use crate::failure::Failure;

/// Opens the store named by `url`: `sled:PATH`, `sqlite:PATH`, `postgres://…` or
/// `postgresql://…`. A bad URL is a usage error; a URL's password is never repeated.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, Failure> {
    if let Some(path) = url.strip_prefix("sled:") {
        if path.is_empty() {
            return Err(Failure::Usage(
                "store URL \"sled:\" names no folder; use sled:PATH".into(),
            ));
        }
        let cache = match std::env::var("SMSREPORT_SLED_CACHE_MB") {
            Ok(v) => {
                v.parse::<u64>().map_err(|_| {
                    Failure::Usage(format!(
                        "SMSREPORT_SLED_CACHE_MB={v:?} is not a number of MiB"
                    ))
                })? << 20
            }
            Err(_) => smsreport_sled::DEFAULT_CACHE_BYTES,
        };
        let store = SledStore::open_with_cache(Path::new(path), cache)?;
        return Ok(Arc::new(store));
    }
    if url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://")
    {
        // Errors name the host and port, never the URL (it may hold a password).
        return smsreport_sql::open(url).await.map_err(|e| match e {
            StoreError::Invalid(m) => Failure::Usage(format!("store URL: {m}")),
            e => Failure::Store(e),
        });
    }
    Err(Failure::Usage(format!(
        "unknown store URL {:?}; use sled:PATH, sqlite:PATH or postgres://…",
        without_password(url)
    )))
}

/// `url` with the password of its user information, if any, shown as `***`:
/// `postgress://me:***@db/x`. Without `://`, whatever comes before the last `@` after
/// the first `:` is masked, so a misspelt URL never shows a password either.
pub fn without_password(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    let Some(at) = rest.rfind('@') else {
        return url.to_owned();
    };
    let Some(colon) = rest[..at].find(':') else {
        return url.to_owned();
    };
    format!("{}{}:***{}", &url[..start], &rest[..colon], &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::without_password;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            without_password("postgress://me:s3cret@db.example:5432/x"),
            "postgress://me:***@db.example:5432/x"
        );
        assert_eq!(
            without_password("postgres://me:pa/ss@word@db/x"),
            "postgres://me:***@db/x"
        );
        assert_eq!(
            without_password("postgress://me@db/x"),
            "postgress://me@db/x"
        );
        assert_eq!(without_password("sledd:/tmp/x"), "sledd:/tmp/x");
        assert_eq!(without_password("pg:me:s3cret@db"), "pg:***@db");
    }
}
