//! Prometheus metrics, kept by the `metrics` crate and written in the text exposition
//! format (version 0.0.4) by `metrics-exporter-prometheus`.
//!
//! Each router has a recorder of its own (none is installed process-wide), so two
//! services in one process — the tests start many — count apart. Every label is bounded
//! (docs/security.md).

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use metrics::{Counter, Gauge, Key, Label, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use smsreport_core::engine::Quality;
use smsreport_core::ingest::Summary;
use smsreport_core::report::CampaignTotals;
use smsreport_core::Outcome;

use crate::AppState;

/// Every metric the service exposes: (name, help). The names are part of the README's
/// "Metrics"; none may change.
const REQUESTS: &str = "smsreport_http_requests_total";
const DURATION: &str = "smsreport_http_request_duration_seconds";
const EVENTS: &str = "smsreport_events_total";
const CALLBACKS: &str = "smsreport_gateway_callbacks_total";
const REJECTED: &str = "smsreport_gateway_rejected_total";
const CLICKS: &str = "smsreport_clicks_total";
const CONNECTIONS: &str = "smsreport_http_connections";
const STORE_ERRORS: &str = "smsreport_store_errors_total";
const GROUP_BATCHES: &str = "smsreport_group_commit_batches_total";
const GROUP_REQUESTS: &str = "smsreport_group_commit_requests_total";
const GROUP_EVENTS: &str = "smsreport_group_commit_events_total";
const GROUP_FAILED: &str = "smsreport_group_commit_failed_batches_total";
const SPOOL_WAITING: &str = "smsreport_clicks_spooled";
const SPOOL_SPOOLED: &str = "smsreport_clicks_spooled_total";
const SPOOL_RECORDED: &str = "smsreport_clicks_unspooled_total";
const SPOOL_LOST: &str = "smsreport_clicks_lost_total";
const WAITING: &str = "smsreport_statuses_waiting_for_message";
const WAITING_OLDEST: &str = "smsreport_statuses_waiting_oldest_timestamp_seconds";

/// The buckets of the request latency histogram, in seconds: from a cached answer to a
/// big ingest.
const DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Latencies are drained from the recorder's buffers into the histogram's buckets every
/// this many requests (and at each scrape), so memory stays bounded without a scraper.
const UPKEEP_EVERY: u64 = 1024;

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// One series per campaign, read from the store's totals at each scrape (docs/rules.md,
/// "Data quality"). A new per-campaign figure is one more entry in [`CAMPAIGN_SERIES`].
struct CampaignSeries {
    /// The metric's name.
    name: &'static str,
    help: &'static str,
    /// The label that tells a campaign's series apart (beside `campaign`).
    label: &'static str,
    /// The campaign's (label value, count) pairs.
    values: fn(&CampaignTotals) -> Vec<(&'static str, u64)>,
}

const CAMPAIGN_SERIES: &[CampaignSeries] = &[
    CampaignSeries {
        name: "smsreport_campaign_callbacks_total",
        help: "Gateway callbacks for a campaign's messages that were duplicates, or came after \
           a final status (late).",
        label: "kind",
        values: |t| {
            Quality::ALL
                .iter()
                .map(|q| {
                    let n = t.counters.quality.get(q).copied().unwrap_or(0);
                    (q.kind(), u64::try_from(n).unwrap_or(0))
                })
                .collect()
        },
    },
    CampaignSeries {
        name: "smsreport_campaign_rejected_callbacks_total",
        help: "Gateway callbacks rejected whose URL named the campaign (?campaign_id=), by the \
           field that decided; kept in the store.",
        label: "reason",
        values: |t| {
            smsreport_core::gateway::REJECTION_FIELDS
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let n = t
                        .counters
                        .quality
                        .get(&Quality::Rejected(i as u8))
                        .copied()
                        .unwrap_or(0);
                    (*f, u64::try_from(n).unwrap_or(0))
                })
                .collect()
        },
    },
];

/// The service's metrics.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    ingested: Counter,
    duplicates: Counter,
    rejected: Counter,
    clicks: Counter,
    store_errors: Counter,
    connections: Gauge,
    requests_seen: AtomicU64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

/// A request's method as a label: one of the nine standard ones, else `other`.
fn method_label(method: &str) -> &'static str {
    const METHODS: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
    ];
    METHODS
        .into_iter()
        .find(|m| *m == method)
        .unwrap_or("other")
}

impl Metrics {
    /// A recorder of its own, with every metric described and the fixed series at 0.
    pub fn new() -> Metrics {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full(DURATION.to_owned()),
                &DURATION_BUCKETS,
            )
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        for (name, help) in [
            (
                REQUESTS,
                "HTTP requests answered, by route, method and status.",
            ),
            (EVENTS, "Events received over HTTP, by outcome."),
            (
                CALLBACKS,
                "Gateway callbacks (SMPP: receipts), by gateway and outcome.",
            ),
            (
                REJECTED,
                "Gateway callbacks rejected, by gateway and the field that decided.",
            ),
            (CLICKS, "Clicks on tracked links recorded."),
            (STORE_ERRORS, "Store operations that failed."),
        ] {
            recorder.describe_counter(name.into(), None, help.into());
        }
        for s in CAMPAIGN_SERIES {
            recorder.describe_counter(s.name.into(), None, s.help.into());
        }
        recorder.describe_gauge(CONNECTIONS.into(), None, "Connections open now.".into());
        for (name, help) in [
            (
                GROUP_BATCHES,
                "Durable store writes made by group commit, by how many requests they held (at most the `requests` label; `more` above 64).",
            ),
            (GROUP_FAILED, "Group-commit store writes that failed (each of their requests was answered 503)."),
            (GROUP_REQUESTS, "Ingest requests written by group commit."),
            (GROUP_EVENTS, "Events written by group commit."),
        ] {
            recorder.describe_counter(name.into(), None, help.into());
        }
        for (name, help) in [
            (SPOOL_SPOOLED, "Clicks the store did not take, kept in the click spool (docs/security.md)."),
            (SPOOL_RECORDED, "Spooled clicks recorded in the store once it took writes again."),
            (SPOOL_LOST, "Clicks neither recorded nor spooled (the spool full or unwritable), or spooled with a code the store no longer knows."),
        ] {
            recorder.describe_counter(name.into(), None, help.into());
        }
        recorder.describe_gauge(
            SPOOL_WAITING.into(),
            None,
            "Clicks in the click spool now, waiting for the store.".into(),
        );
        recorder.describe_gauge(
            WAITING.into(),
            None,
            "Message ids with statuses but no message yet (docs/rules.md, \"Data quality\")."
                .into(),
        );
        recorder.describe_gauge(
            WAITING_OLDEST.into(),
            Some(Unit::Seconds),
            "Time of the earliest status waiting for its message, in Unix seconds; 0 when none waits.".into(),
        );
        recorder.describe_histogram(
            DURATION.into(),
            Some(Unit::Seconds),
            "Time from a request's arrival to its answer's head, by route and method.".into(),
        );
        let counter = |name: &'static str, labels: Vec<Label>| {
            recorder.register_counter(&Key::from_parts(name, labels), &METADATA)
        };
        let outcome = |o: &'static str| counter(EVENTS, vec![Label::new("outcome", o)]);
        let m = Metrics {
            ingested: outcome("ingested"),
            duplicates: outcome("duplicate"),
            rejected: outcome("rejected"),
            clicks: counter(CLICKS, vec![]),
            store_errors: counter(STORE_ERRORS, vec![]),
            connections: recorder.register_gauge(&Key::from_name(CONNECTIONS), &METADATA),
            requests_seen: AtomicU64::new(0),
            handle,
            recorder,
        };
        // Present at 0 from the start.
        for c in [
            &m.ingested,
            &m.duplicates,
            &m.rejected,
            &m.clicks,
            &m.store_errors,
        ] {
            c.increment(0);
        }
        m
    }

    fn counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        self.recorder
            .register_counter(&Key::from_parts(name, labels), &METADATA)
    }

    /// Counts one answered request and how long it took. Every label is bounded
    /// (docs/security.md): a method that is not a standard one is `other`, and `route`
    /// is a route's template or `unmatched`, never a client's path.
    pub(crate) fn request(
        &self,
        route: &str,
        method: &str,
        status: u16,
        store_failure: bool,
        seconds: f64,
    ) {
        let method = method_label(method);
        self.counter(
            REQUESTS,
            vec![
                Label::new("route", route.to_owned()),
                Label::new("method", method),
                Label::new("status", status.to_string()),
            ],
        )
        .increment(1);
        self.recorder
            .register_histogram(
                &Key::from_parts(
                    DURATION,
                    vec![
                        Label::new("route", route.to_owned()),
                        Label::new("method", method),
                    ],
                ),
                &METADATA,
            )
            .record(seconds);
        if store_failure {
            self.store_errors.increment(1);
        }
        if self.requests_seen.fetch_add(1, Ordering::Relaxed) % UPKEEP_EVERY == UPKEEP_EVERY - 1 {
            self.handle.run_upkeep();
        }
    }

    /// Counts the outcomes of an ingest.
    pub(crate) fn events(&self, s: &Summary) {
        self.ingested.increment(s.ingested);
        self.duplicates.increment(s.duplicates);
        self.rejected.increment(s.rejected);
    }

    /// Counts one gateway callback's outcome.
    pub(crate) fn callback(&self, gateway: &'static str, o: &Outcome) {
        let outcome = match o {
            Outcome::Ingested => "ingested",
            Outcome::Duplicate => "duplicate",
            Outcome::Rejected(_) => "rejected",
        };
        self.counter(
            CALLBACKS,
            vec![
                Label::new("gateway", gateway),
                Label::new("outcome", outcome),
            ],
        )
        .increment(1);
        if let Outcome::Rejected(r) = o {
            self.counter(
                REJECTED,
                vec![
                    Label::new("gateway", gateway),
                    Label::new("reason", reason_label(&r.reason)),
                ],
            )
            .increment(1);
        }
    }

    /// Counts a recorded click.
    pub(crate) fn click(&self) {
        self.clicks.increment(1);
    }

    /// Counts a store failure that did not make a request fail (a click not recorded).
    pub(crate) fn store_error(&self) {
        self.store_errors.increment(1);
    }

    /// Sets each campaign's series of [`CAMPAIGN_SERIES`] from the store's totals; a
    /// campaign whose figures of a series are all 0 has none.
    fn campaigns(&self, all: &[CampaignTotals]) {
        for s in CAMPAIGN_SERIES {
            for t in all {
                let values = (s.values)(t);
                if values.iter().all(|(_, n)| *n == 0) {
                    continue;
                }
                for (value, n) in values {
                    self.counter(
                        s.name,
                        vec![
                            Label::new("campaign", t.def.campaign_id.clone()),
                            Label::new(s.label, value),
                        ],
                    )
                    .absolute(n);
                }
            }
        }
    }

    /// Sets the group-commit counters from the layer's own.
    fn group(&self, g: &crate::group::GroupStats) {
        use crate::group::REQUESTS_PER_BATCH_BOUNDS;
        for (i, n) in g.requests_per_batch.iter().enumerate() {
            let bucket = REQUESTS_PER_BATCH_BOUNDS
                .get(i)
                .map_or("more".to_owned(), u64::to_string);
            self.counter(GROUP_BATCHES, vec![Label::new("requests", bucket)])
                .absolute(*n);
        }
        self.counter(GROUP_FAILED, vec![])
            .absolute(g.failed_batches);
        self.counter(GROUP_REQUESTS, vec![]).absolute(g.requests);
        self.counter(GROUP_EVENTS, vec![]).absolute(g.events);
    }

    /// Sets the click spool's figures from its own.
    fn spool(&self, s: &crate::spool::SpoolStats) {
        self.recorder
            .register_gauge(&Key::from_name(SPOOL_WAITING), &METADATA)
            .set(s.waiting as f64);
        self.counter(SPOOL_SPOOLED, vec![]).absolute(s.spooled);
        self.counter(SPOOL_RECORDED, vec![]).absolute(s.recorded);
        self.counter(SPOOL_LOST, vec![]).absolute(s.lost);
    }

    /// Sets the gauges of statuses waiting for their message.
    fn waiting(&self, o: &smsreport_core::store::Orphans) {
        let gauge = |name| {
            self.recorder
                .register_gauge(&Key::from_name(name), &METADATA)
        };
        gauge(WAITING).set(o.messages as f64);
        gauge(WAITING_OLDEST).set(o.oldest.map_or(0.0, |t| t.0 as f64 / 1000.0));
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        self.connections
            .set(crate::server::OPEN_CONNECTIONS.load(Ordering::Relaxed) as f64);
        self.handle.render()
    }
}

/// The field a gateway rejection names (`type: …` → `type`), from a fixed list so the
/// label's values stay few; `other` for any other reason.
fn reason_label(reason: &str) -> &'static str {
    use smsreport_core::gateway::{rejection_field, REJECTION_FIELDS};
    REJECTION_FIELDS[rejection_field(reason)]
}

/// `GET /metrics`: the service's metrics, with each campaign's data-quality counters
/// read from the store (left as they were when the store cannot be read; `/readyz`
/// tells that).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format 0.0.4 (README.md, \"Metrics\")", content_type = "text/plain", body = String)),
)]
pub(crate) async fn handler(State(st): State<AppState>) -> Response {
    if let Ok(all) = st.store.all_totals().await {
        st.metrics.campaigns(&all);
    }
    if let Ok(o) = st.store.orphans().await {
        st.metrics.waiting(&o);
    }
    if let Some(g) = &st.cfg.group {
        st.metrics.group(&g.stats());
    }
    if let Some(s) = &st.cfg.click_spool {
        st.metrics.spool(&s.stats());
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        st.metrics.render(),
    )
        .into_response()
}
