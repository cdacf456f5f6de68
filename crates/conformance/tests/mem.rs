//! The conformance suite on the in-memory reference store.

use smsreport_core::mem::MemStore;

/// A fresh, empty store; nothing to clean up.
async fn store() -> (MemStore, ()) {
    (MemStore::default(), ())
}

smsreport_conformance::conformance_tests!(crate::store);
