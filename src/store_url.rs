//! Opening the store a `--store` URL names.

use std::path::Path;
use std::sync::Arc;

use smsreport_core::Store;
use smsreport_sled::SledStore;

use crate::failure::Failure;

/// Opens the store named by `url`: `sled:PATH` here; `sqlite:PATH` and `postgres://…`
/// (or `postgresql://…`) are recognised but not built in yet. A bad URL is a usage error.
pub fn open(url: &str) -> Result<Arc<dyn Store>, Failure> {
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
    if url.starts_with("sqlite:") {
        return Err(Failure::Usage(format!(
            "store URL {url:?}: SQLite stores are not available in this build yet"
        )));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        // The URL may hold a password: it is not repeated.
        return Err(Failure::Usage(
            "PostgreSQL stores (postgres://…) are not available in this build yet".into(),
        ));
    }
    Err(Failure::Usage(format!(
        "unknown store URL {url:?}; use sled:PATH, sqlite:PATH or postgres://…"
    )))
}
