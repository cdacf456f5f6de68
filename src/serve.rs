//! `smsreport serve`: the HTTP service (README.md, "HTTP service"; see `smsreport-http`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use smsreport_core::Store;
use std::time::Duration;

use smsreport_http::{Config, ConnLimits};

use crate::failure::Failure;
use crate::ServeArgs;

/// Listens, serves until SIGTERM or SIGINT, then finishes the requests in flight (for at
/// most `--shutdown-timeout`). Logs one startup line: the store (`store_url`, its
/// password masked), the listening address, the dashboard's URL and the authentication
/// that is on. With `--check`, stops before listening: prints that line's facts on
/// standard output and exits 0.
///
/// Refuses (exit 2) a non-loopback address without `--token`, `--webhook-key` and
/// `--twilio-auth-token` unless `--insecure`; warns about a short token or key
/// (docs/security.md).
pub async fn run(args: ServeArgs, store: Arc<dyn Store>, store_url: &str) -> Result<u8, Failure> {
    let empty = |o: &Option<String>, name: &str| -> Result<(), Failure> {
        match o {
            Some(v) if v.is_empty() => Err(Failure::Usage(format!("{name} must not be empty"))),
            _ => Ok(()),
        }
    };
    empty(&args.token, "--token")?;
    empty(&args.twilio_auth_token, "--twilio-auth-token")?;
    empty(&args.webhook_key, "--webhook-key")?;
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&args.listen)
        .await
        .map_err(|e| {
            Failure::Usage(format!(
                "--listen {:?} is not an address (HOST:PORT): {e}",
                args.listen
            ))
        })?
        .collect();
    if addrs.is_empty() {
        return Err(Failure::Usage(format!(
            "--listen {:?} names no address",
            args.listen
        )));
    }
    let open = !addrs.iter().all(|a| a.ip().is_loopback());
    if open && args.token.is_none() && !args.insecure {
        return Err(Failure::Usage(format!(
            "refusing to listen on {} without --token: it is reachable from other machines; \
             set --token (or SMSREPORT_TOKEN), or pass --insecure to serve without one \
             (docs/security.md)",
            args.listen
        )));
    }
    if open && !args.insecure {
        let missing: Vec<&str> = [
            (
                args.webhook_key.is_none(),
                "--webhook-key (Kannel, Jasmin, SMPP)",
            ),
            (
                args.twilio_auth_token.is_none(),
                "--twilio-auth-token (Twilio; a long random value closes that webhook if \
                 Twilio is not used)",
            ),
        ]
        .into_iter()
        .filter_map(|(m, name)| m.then_some(name))
        .collect();
        if !missing.is_empty() {
            return Err(Failure::Usage(format!(
                "refusing to listen on {} without webhook secrets: anyone could add messages \
                 or change their statuses; set {}, or pass --insecure to serve without them \
                 (docs/security.md)",
                args.listen,
                missing.join(" and ")
            )));
        }
    }
    for (secret, name) in [
        (&args.token, "--token"),
        (&args.webhook_key, "--webhook-key"),
    ] {
        if let Some(v) = secret {
            if v.chars().count() < 16 {
                tracing::warn!(
                    "{name} is shorter than 16 characters and can be guessed; use a long \
                     random value (docs/security.md)"
                );
            }
        }
    }
    if let Some(u) = &args.public_url {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(Failure::Usage(format!(
                "--public-url {u:?} must start with http:// or https://"
            )));
        }
    }
    let store_shown = crate::store_url::without_password(store_url);
    let auth = authentication(&args);
    if args.check {
        let public_url = args
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", args.listen));
        println!(
            "configuration OK: store {store_shown}, listen {}, dashboard {}/, authentication: {auth}",
            args.listen,
            public_url.trim_end_matches('/')
        );
        return Ok(0);
    }
    let listener = tokio::net::TcpListener::bind(&addrs[..])
        .await
        .map_err(|e| Failure::io(format!("cannot listen on {}", args.listen), e))?;
    let local = listener
        .local_addr()
        .map_err(|e| Failure::io("reading the listening address", e))?;
    let public_url = args.public_url.unwrap_or_else(|| format!("http://{local}"));
    let group = group_commit(
        args.group_commit_max,
        args.group_commit_linger_us,
        args.group_commit_writers,
        store_url,
        store.clone(),
    );
    let store = group.clone().map_or(store, |g| g as Arc<dyn Store>);
    let click_spool = (args.click_spool_max_bytes > 0).then(|| {
        let path = args
            .click_spool
            .clone()
            .unwrap_or_else(|| default_click_spool(store_url));
        Arc::new(smsreport_http::ClickSpool::new(
            path,
            args.click_spool_max_bytes,
        ))
    });
    let cfg = Config {
        token: args.token,
        public_url: public_url.clone(),
        twilio_auth_token: args.twilio_auth_token,
        webhook_key: args.webhook_key,
        body_limit: args.body_limit,
        default_region: args.default_region,
        webhook_body_limit: args.webhook_body_limit,
        smpp_body_limit: args.smpp_body_limit,
        body_timeout: Duration::from_secs(args.body_timeout),
        auth_failures_per_minute: args.auth_failures_per_minute,
        unknown_codes_per_minute: args.unknown_codes_per_minute,
        group: group.clone(),
        click_spool: click_spool.clone(),
    };
    let limits = ConnLimits {
        header_timeout: Duration::from_secs(args.header_timeout),
        write_timeout: Duration::from_secs(args.write_timeout),
        max_header_bytes: args.max_header_bytes,
        max_connections: args.max_connections,
        shutdown_timeout: Duration::from_secs(args.shutdown_timeout),
    };
    // libphonenumber's metadata (countries, national numbers) loads on first use, about
    // 2 s in a debug build: load it before the startup line, not in the first request.
    let _ = smsreport_core::insights::Country::of("+12025550123");
    // The one startup line; the address is parsed from it by tests/support.
    tracing::info!(
        store = %store_shown,
        dashboard = %format!("{}/", public_url.trim_end_matches('/')),
        authentication = %auth,
        group_commit_max = args.group_commit_max,
        click_spool = %click_spool
            .as_ref()
            .map_or("off".to_owned(), |s| s.path().display().to_string()),
        group_commit_writers = group.as_ref().map_or(0, |g| g.config().writers),
        "listening on http://{local} (public URL {public_url})"
    );
    let app = smsreport_http::router(store, cfg);
    smsreport_http::serve_with(listener, app, &limits, smsreport_http::shutdown_signal())
        .await
        .map_err(|e| Failure::io("serving HTTP", e))?;
    if let Some(g) = group {
        let s = g.stats();
        tracing::info!(
            "group commit: {} requests in {} store writes ({} failed), at most {} requests and {} events in one",
            s.requests,
            s.batches,
            s.failed_batches,
            s.max_batch_requests,
            s.max_batch_events
        );
    }
    tracing::info!("stopped; every answered request is stored");
    Ok(0)
}

/// Where the click spool is when `--click-spool` does not say: in a sled folder, beside
/// a SQLite file, in the working directory for PostgreSQL (docs/security.md).
fn default_click_spool(store_url: &str) -> PathBuf {
    const NAME: &str = "click-spool.ndjson";
    if let Some(dir) = store_url.strip_prefix("sled:") {
        return Path::new(dir).join(NAME);
    }
    if let Some(rest) = store_url.strip_prefix("sqlite:") {
        let file = rest.split('?').next().unwrap_or_default();
        let file = file.strip_prefix("//").unwrap_or(file);
        if !file.is_empty() && !file.starts_with(':') {
            return PathBuf::from(format!("{file}-{NAME}"));
        }
    }
    PathBuf::from(format!("smsreport-{NAME}"))
}

/// Which authentication is on, for the startup line (docs/security.md).
fn authentication(args: &ServeArgs) -> String {
    let on: Vec<&str> = [
        (
            args.token.is_some(),
            "API bearer token and dashboard password",
        ),
        (args.webhook_key.is_some(), "webhook key"),
        (args.twilio_auth_token.is_some(), "Twilio signature"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect();
    if on.is_empty() {
        "none".to_owned()
    } else {
        on.join(", ")
    }
}

/// The group-commit layer over `store` (ARCHITECTURE.md, "Group commit"), `None` when
/// `--group-commit-max 0` turns it off. Without `--group-commit-writers`, one writer on
/// sled and SQLite (a single writer each), and the measured default on PostgreSQL
/// (`DEFAULT_GROUP_COMMIT_WRITERS_POSTGRES`).
fn group_commit(
    max_events: usize,
    linger_us: u64,
    writers: Option<usize>,
    store_url: &str,
    store: Arc<dyn Store>,
) -> Option<Arc<smsreport_http::GroupCommit>> {
    let postgres = store_url.starts_with("postgres:") || store_url.starts_with("postgresql:");
    let writers = writers.unwrap_or(if postgres {
        smsreport_http::group::DEFAULT_GROUP_COMMIT_WRITERS_POSTGRES
    } else {
        1
    });
    (max_events > 0).then(|| {
        Arc::new(smsreport_http::GroupCommit::new(
            store,
            smsreport_http::GroupConfig {
                max_events,
                linger: Duration::from_micros(linger_us),
                writers,
            },
        ))
    })
}
