//! The OpenAPI document (`GET /openapi.json`, committed as `docs/openapi.json`): the
//! committed copy is what the server serves, and every route the router has is in it.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::Server;
use smsreport_core::mem::MemStore;
use smsreport_http::Config;

/// The committed copy.
const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");

/// How to bring the committed copy up to date.
const REGENERATE: &str = "SMSREPORT_WRITE_OPENAPI=1 cargo test -p smsreport-http --test openapi";

async fn served(cfg: Config) -> (common::Resp, Server) {
    let s = Server::start(Arc::new(MemStore::default()), cfg).await;
    (s.get("/openapi.json").await, s)
}

#[tokio::test]
async fn the_committed_document_is_the_served_one() {
    let (r, _s) = served(Config::new("")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let served = r.text();
    if std::env::var_os("SMSREPORT_WRITE_OPENAPI").is_some() {
        std::fs::write(COMMITTED, &served).expect("write docs/openapi.json");
        eprintln!("wrote {COMMITTED}");
        return;
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    if committed != served {
        let line = committed
            .lines()
            .zip(served.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || "one is a prefix of the other".to_owned(),
                |i| format!("first difference at line {}", i + 1),
            );
        panic!(
            "docs/openapi.json is not what GET /openapi.json serves ({line}); \
             regenerate it with\n    {REGENERATE}\nand commit it"
        );
    }
}

#[tokio::test]
async fn the_document_needs_no_token_and_is_openapi_3_1() {
    let mut cfg = Config::new("");
    cfg.token = Some("a-token-of-twenty-chars".into());
    let (r, s) = served(cfg).await;
    assert_eq!(r.status, 200, "/openapi.json is open: {}", r.text());
    assert_eq!(s.get("/v1/campaigns").await.status, 401, "the API is not");
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    // The error shape every route shares.
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(error["required"], serde_json::json!(["error"]), "{error}");
    assert!(error["properties"]["request_id"].is_object(), "{error}");
}

#[test]
fn every_route_is_in_the_document_and_nothing_else() {
    let doc: serde_json::Value =
        serde_json::from_str(smsreport_http::openapi::document()).expect("the document is JSON");
    let routes: BTreeSet<(String, String)> = smsreport_http::routes()
        .into_iter()
        .map(|(m, p)| (m.as_str().to_lowercase(), p.to_owned()))
        .collect();
    assert!(routes.len() > 20, "{routes:?}");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            if op.get("responses").is_some() {
                documented.insert((method.clone(), path.clone()));
            }
        }
    }
    let missing: Vec<_> = routes.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routes).collect();
    assert!(
        missing.is_empty(),
        "routes the OpenAPI document lacks (add #[utoipa::path] to the handler and list it in \
         crates/http/src/openapi.rs): {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "documented routes the router does not have: {extra:?}"
    );
    // Each `{param}` of a path is documented as a path parameter.
    for (method, path) in &routes {
        let op = &doc["paths"][path][method];
        for name in path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        {
            let documented = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == name && p["in"] == "path"));
            assert!(documented, "{method} {path}: {{{name}}} is not documented");
        }
    }
}
