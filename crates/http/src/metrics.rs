//! Prometheus metrics, in the text exposition format (version 0.0.4), kept by hand.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use smsreport_core::engine::Quality;
use smsreport_core::ingest::Summary;
use smsreport_core::report::CampaignTotals;
use smsreport_core::Outcome;

use crate::AppState;

/// The service's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// (route, method, status) → requests.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    ingested: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
    /// gateway → callbacks (lines, for SMPP) by outcome: ingested, duplicate, rejected.
    callbacks: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// (gateway, the field a rejection names) → rejected callbacks.
    rejected_callbacks: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    clicks: AtomicU64,
    store_errors: AtomicU64,
}

impl Metrics {
    /// Counts one answered request. Every label is bounded (docs/security.md): a method
    /// that is not a standard one is `other`, and `route` is a route's template or
    /// `unmatched`, never a client's path.
    pub(crate) fn request(&self, route: &str, method: &str, status: u16, store_failure: bool) {
        const METHODS: [&str; 9] = [
            "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
        ];
        let method = METHODS
            .into_iter()
            .find(|m| *m == method)
            .unwrap_or("other");
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((route.to_owned(), method.to_owned(), status))
                .or_default() += 1;
        }
        if store_failure {
            self.store_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts the outcomes of an ingest.
    pub(crate) fn events(&self, s: &Summary) {
        self.ingested.fetch_add(s.ingested, Ordering::Relaxed);
        self.duplicates.fetch_add(s.duplicates, Ordering::Relaxed);
        self.rejected.fetch_add(s.rejected, Ordering::Relaxed);
    }

    /// Counts one gateway callback's outcome.
    pub(crate) fn callback(&self, gateway: &'static str, o: &Outcome) {
        let outcome = match o {
            Outcome::Ingested => "ingested",
            Outcome::Duplicate => "duplicate",
            Outcome::Rejected(_) => "rejected",
        };
        if let Ok(mut m) = self.callbacks.lock() {
            *m.entry((gateway, outcome)).or_default() += 1;
        }
        if let Outcome::Rejected(r) = o {
            if let Ok(mut m) = self.rejected_callbacks.lock() {
                *m.entry((gateway, reason_label(&r.reason))).or_default() += 1;
            }
        }
    }

    /// Counts a recorded click.
    pub(crate) fn click(&self) {
        self.clicks.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a store failure that did not make a request fail (a click not recorded).
    pub(crate) fn store_error(&self) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP smsreport_http_requests_total HTTP requests answered, by route, method and status.\n");
        out.push_str("# TYPE smsreport_http_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((route, method, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "smsreport_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                    escape(route),
                    escape(method)
                );
            }
        }
        out.push_str("# HELP smsreport_events_total Events received over HTTP, by outcome.\n");
        out.push_str("# TYPE smsreport_events_total counter\n");
        for (outcome, v) in [
            ("ingested", &self.ingested),
            ("duplicate", &self.duplicates),
            ("rejected", &self.rejected),
        ] {
            let _ = writeln!(
                out,
                "smsreport_events_total{{outcome=\"{outcome}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        out.push_str(
            "# HELP smsreport_gateway_callbacks_total Gateway callbacks (SMPP: receipts), by gateway and outcome.\n",
        );
        out.push_str("# TYPE smsreport_gateway_callbacks_total counter\n");
        if let Ok(m) = self.callbacks.lock() {
            for ((gateway, outcome), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "smsreport_gateway_callbacks_total{{gateway=\"{gateway}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        out.push_str(
            "# HELP smsreport_gateway_rejected_total Gateway callbacks rejected, by gateway and the field that decided.\n",
        );
        out.push_str("# TYPE smsreport_gateway_rejected_total counter\n");
        if let Ok(m) = self.rejected_callbacks.lock() {
            for ((gateway, reason), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "smsreport_gateway_rejected_total{{gateway=\"{gateway}\",reason=\"{reason}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP smsreport_clicks_total Clicks on tracked links recorded.\n");
        out.push_str("# TYPE smsreport_clicks_total counter\n");
        let _ = writeln!(
            out,
            "smsreport_clicks_total {}",
            self.clicks.load(Ordering::Relaxed)
        );
        out.push_str("# HELP smsreport_http_connections Connections open now.\n");
        out.push_str("# TYPE smsreport_http_connections gauge\n");
        let _ = writeln!(
            out,
            "smsreport_http_connections {}",
            crate::server::OPEN_CONNECTIONS.load(Ordering::Relaxed)
        );
        out.push_str("# HELP smsreport_store_errors_total Store operations that failed.\n");
        out.push_str("# TYPE smsreport_store_errors_total counter\n");
        let _ = writeln!(
            out,
            "smsreport_store_errors_total {}",
            self.store_errors.load(Ordering::Relaxed)
        );
        out
    }
}

/// The field a gateway rejection names (`type: …` → `type`), from a fixed list so the
/// label's values stay few; `other` for any other reason.
fn reason_label(reason: &str) -> &'static str {
    const FIELDS: [&str; 13] = [
        "id",
        "stat",
        "err",
        "type",
        "level",
        "message_status",
        "MessageSid",
        "MessageStatus",
        "ErrorCode",
        "campaign_id",
        "region",
        "done date",
        "text",
    ];
    let name = reason.split_once(':').map_or("", |(n, _)| n);
    FIELDS
        .iter()
        .find(|f| **f == name)
        .copied()
        .unwrap_or("other")
}

/// The data-quality counters of each campaign (docs/rules.md, "Data quality"), from
/// the store.
fn render_quality(all: &mut [CampaignTotals]) -> String {
    all.sort_by(|a, b| a.def.campaign_id.cmp(&b.def.campaign_id));
    let mut out = String::from(
        "# HELP smsreport_campaign_callbacks_total Gateway callbacks for a campaign's messages that were duplicates, or came after a final status (late).\n\
         # TYPE smsreport_campaign_callbacks_total counter\n",
    );
    for t in all.iter() {
        if t.counters.quality.values().all(|v| *v == 0) {
            continue;
        }
        for q in Quality::ALL {
            let _ = writeln!(
                out,
                "smsreport_campaign_callbacks_total{{campaign=\"{}\",kind=\"{}\"}} {}",
                escape(&t.def.campaign_id),
                q.as_str(),
                t.counters.quality.get(&q).copied().unwrap_or(0)
            );
        }
    }
    out
}

/// A label value escaped as the exposition format says.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `GET /metrics`: the service's counters, then each campaign's data-quality counters
/// (left out when the store cannot be read; `/readyz` tells that).
pub(crate) async fn handler(State(st): State<AppState>) -> Response {
    let mut text = st.metrics.render();
    if let Ok(mut all) = st.store.all_totals().await {
        text.push_str(&render_quality(&mut all));
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}
