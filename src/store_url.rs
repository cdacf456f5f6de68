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
        let store = SledStore::open(Path::new(path))?;
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
