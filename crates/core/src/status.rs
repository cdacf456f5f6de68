//! Delivery statuses, the order that picks a message's current one (docs/rules.md,
//! "Delivery statuses"), and the report rows they feed.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::time::Millis;

/// A canonical delivery status. The discriminant is its tie rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// In the queue, not yet handed to a carrier.
    Queued = 0,
    /// On its way.
    Enroute = 1,
    /// Acknowledged by the carrier; no final receipt.
    Sent = 2,
    /// A final state the carrier could not name.
    Unknown = 3,
    /// Rejected by the carrier or cancelled.
    FailedRejected = 4,
    /// Expired: the handset was off or unreachable.
    FailedExpired = 5,
    /// Routing error: the number has no active subscriber.
    FailedRouting = 6,
    /// Delivered to the handset.
    Delivered = 7,
}

impl Status {
    /// All statuses, by rank.
    pub const ALL: [Status; 8] = [
        Status::Queued,
        Status::Enroute,
        Status::Sent,
        Status::Unknown,
        Status::FailedRejected,
        Status::FailedExpired,
        Status::FailedRouting,
        Status::Delivered,
    ];

    /// The phase: a later phase always wins over an earlier one.
    pub fn phase(self) -> u8 {
        match self {
            Status::Queued => 0,
            Status::Enroute => 1,
            Status::Sent => 2,
            _ => 3,
        }
    }

    /// The tie rank within the same instant.
    pub fn rank(self) -> u8 {
        self as u8
    }

    /// The status of a given rank.
    pub fn from_rank(rank: u8) -> Option<Status> {
        Status::ALL.get(rank as usize).copied()
    }

    /// The name used in events and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Enroute => "enroute",
            Status::Sent => "sent",
            Status::Unknown => "unknown",
            Status::FailedRejected => "failed_rejected",
            Status::FailedExpired => "failed_expired",
            Status::FailedRouting => "failed_routing",
            Status::Delivered => "delivered",
        }
    }

    /// The report row this status is counted in.
    pub fn row(self) -> Row {
        match self {
            Status::Queued => Row::Queued,
            Status::Enroute => Row::Undelivered,
            Status::Sent => Row::Sent,
            Status::Unknown => Row::Other,
            Status::FailedRejected => Row::Rejected,
            Status::FailedExpired => Row::Expired,
            Status::FailedRouting => Row::Routing,
            Status::Delivered => Row::Delivered,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = ();
    fn from_str(s: &str) -> Result<Status, ()> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or(())
    }
}

/// One status event as far as the rules care: which status, when, and its error code.
///
/// Orders by (phase, at, rank, error_code) with an absent code least, so a message's
/// current status is the maximum of all its status events — whatever order they came in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StatusKey {
    /// The status.
    pub status: Status,
    /// When it happened.
    pub at: Millis,
    /// The gateway's error code, if any.
    pub error_code: Option<String>,
}

impl Ord for StatusKey {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.status.phase(), self.at, self.status.rank())
            .cmp(&(other.status.phase(), other.at, other.status.rank()))
            .then_with(|| {
                let a = self.error_code.as_deref().map(str::as_bytes);
                let b = other.error_code.as_deref().map(str::as_bytes);
                a.cmp(&b)
            })
    }
}

impl PartialOrd for StatusKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A row of the delivery report, and a filter of the recipients drill-down (docs/rules.md,
/// "Delivery statuses" and "Recipients drill-down").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Row {
    /// Delivered.
    Delivered,
    /// Sent: carrier acknowledged, no final receipt.
    Sent,
    /// Message queued.
    Queued,
    /// Undelivered: still on its way.
    Undelivered,
    /// All delivery errors (routing, expired, rejected).
    Errors,
    /// Delivery error: routing error (inactive number).
    Routing,
    /// Delivery error: message expired.
    Expired,
    /// Delivery error: user cancelled / rejected.
    Rejected,
    /// Other.
    Other,
}

impl Row {
    /// Every row, in the report's order: the order of the CLI table, the CSV and the
    /// dashboard.
    pub const ALL: [Row; 9] = [
        Row::Delivered,
        Row::Sent,
        Row::Queued,
        Row::Undelivered,
        Row::Errors,
        Row::Routing,
        Row::Expired,
        Row::Rejected,
        Row::Other,
    ];

    /// Every row name, as the CLI and API accept them.
    pub const NAMES: [&'static str; 9] = [
        "delivered",
        "sent",
        "queued",
        "undelivered",
        "errors",
        "routing",
        "expired",
        "rejected",
        "other",
    ];

    /// The row's label for people, as the CLI table and the dashboard's report show it.
    pub fn label(self) -> &'static str {
        match self {
            Row::Delivered => "Delivered",
            Row::Sent => "Sent",
            Row::Queued => "Message queued",
            Row::Undelivered => "Undelivered",
            Row::Errors => "Delivery errors",
            Row::Routing => "Routing error – inactive number",
            Row::Expired => "Message expired",
            Row::Rejected => "User cancelled / rejected",
            Row::Other => "Other",
        }
    }

    /// A short label, where space is tight (a legend, a recipient's status).
    pub fn short_label(self) -> &'static str {
        match self {
            Row::Delivered => "Delivered",
            Row::Sent => "Sent",
            Row::Queued => "Queued",
            Row::Undelivered => "Undelivered",
            Row::Errors => "Error",
            Row::Routing => "Routing error",
            Row::Expired => "Expired",
            Row::Rejected => "Rejected",
            Row::Other => "Other",
        }
    }

    /// What the row means, in a few words.
    pub fn description(self) -> &'static str {
        match self {
            Row::Delivered => "the handset received it",
            Row::Sent => "the carrier acknowledged it; no final receipt",
            Row::Queued => "waiting to be sent",
            Row::Undelivered => "still on its way",
            Row::Errors => "all three kinds below",
            Row::Routing => "a real number without an active subscriber",
            Row::Expired => "the number exists but was off or out of reach",
            Row::Rejected => "the number cannot take SMS, or it was refused",
            Row::Other => "any other outcome",
        }
    }

    /// The row's field in the JSON report (`delivery.errors.routing`).
    pub fn json_path(self) -> &'static str {
        match self {
            Row::Delivered => "delivery.delivered",
            Row::Sent => "delivery.sent",
            Row::Queued => "delivery.queued",
            Row::Undelivered => "delivery.undelivered",
            Row::Errors => "delivery.errors.total",
            Row::Routing => "delivery.errors.routing",
            Row::Expired => "delivery.errors.expired",
            Row::Rejected => "delivery.errors.rejected",
            Row::Other => "delivery.other",
        }
    }

    /// Whether the row is one kind of delivery error, a part of [`Row::Errors`].
    pub fn is_error_kind(self) -> bool {
        matches!(self, Row::Routing | Row::Expired | Row::Rejected)
    }

    /// The statuses counted in this row, by rank.
    pub fn statuses(self) -> &'static [Status] {
        match self {
            Row::Delivered => &[Status::Delivered],
            Row::Sent => &[Status::Sent],
            Row::Queued => &[Status::Queued],
            Row::Undelivered => &[Status::Enroute],
            Row::Errors => &[
                Status::FailedRejected,
                Status::FailedExpired,
                Status::FailedRouting,
            ],
            Row::Routing => &[Status::FailedRouting],
            Row::Expired => &[Status::FailedExpired],
            Row::Rejected => &[Status::FailedRejected],
            Row::Other => &[Status::Unknown],
        }
    }

    /// The row's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Row::Delivered => "delivered",
            Row::Sent => "sent",
            Row::Queued => "queued",
            Row::Undelivered => "undelivered",
            Row::Errors => "errors",
            Row::Routing => "routing",
            Row::Expired => "expired",
            Row::Rejected => "rejected",
            Row::Other => "other",
        }
    }
}

impl FromStr for Row {
    type Err = String;
    fn from_str(s: &str) -> Result<Row, String> {
        Row::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "no report row named {s:?} (one of {})",
                    Row::NAMES.join(", ")
                )
            })
    }
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(status: Status, at: i64, code: Option<&str>) -> StatusKey {
        StatusKey {
            status,
            at: Millis(at),
            error_code: code.map(str::to_owned),
        }
    }

    #[test]
    fn a_later_phase_wins_whatever_the_time() {
        assert!(key(Status::Delivered, 5, None) > key(Status::Sent, 9, None));
        assert!(key(Status::Enroute, 0, None) > key(Status::Queued, 1_000, None));
    }

    #[test]
    fn within_a_phase_later_time_then_rank_then_code() {
        assert!(key(Status::FailedRouting, 12, None) > key(Status::Delivered, 10, None));
        assert!(key(Status::Delivered, 10, None) > key(Status::Unknown, 10, None));
        assert!(
            key(Status::FailedExpired, 10, Some("a")) > key(Status::FailedRejected, 10, Some("z"))
        );
        assert!(key(Status::Unknown, 10, Some("")) > key(Status::Unknown, 10, None));
        assert!(key(Status::Unknown, 10, Some("b")) > key(Status::Unknown, 10, Some("a")));
    }

    #[test]
    fn rows_cover_every_status_once_outside_errors() {
        let fine: Vec<Row> = Row::ALL.into_iter().filter(|&r| r != Row::Errors).collect();
        for s in Status::ALL {
            assert_eq!(
                fine.iter().filter(|r| r.statuses().contains(&s)).count(),
                1,
                "{s}"
            );
            assert!(fine.contains(&s.row()));
        }
    }

    #[test]
    fn rows_names_and_paths_agree() {
        assert_eq!(Row::ALL.map(Row::as_str), Row::NAMES);
        for r in Row::ALL {
            assert_eq!(r.as_str().parse::<Row>(), Ok(r));
            let leaf = r.json_path().rsplit('.').next().unwrap();
            if r == Row::Errors {
                assert_eq!(r.json_path(), "delivery.errors.total");
            } else {
                assert_eq!(leaf, r.as_str());
            }
            assert_eq!(
                r.is_error_kind(),
                r.json_path().starts_with("delivery.errors.") && r != Row::Errors
            );
        }
    }
}
