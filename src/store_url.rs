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
        "unknown store URL {url:?}; use sled:PATH, sqlite:PATH or postgres://…"
    )))
}
