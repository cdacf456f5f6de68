//! Kannel delivery reports (the `dlr-url` query: `type=%d&id=…&reply=%A&to=%p&ts=%T`).

use super::smpp::{receipt_fields, receipt_status};
use super::{field, message_id, quoted, read_recipient, status_event, Callback, Params, Region};
use crate::event::Rejection;
use crate::status::Status;
use crate::time::Millis;

/// A Kannel DLR callback (`dlr-url` with `type=%d&id=…&reply=%A&to=%p&ts=%T`).
///
/// `type`: 1 delivered, 2 failed_routing, 4 enroute, 8 sent, 16 failed_rejected; any
/// other is rejected, whatever the reply. When `reply` holds an SMPP receipt (an `id`
/// field and a non-empty `stat`), its `stat`, `err` and `done date` decide instead, its
/// `done date` over `ts`; any other reply is ignored. `ts` is epoch seconds; a time that
/// cannot be read, or none, makes the DLR undated. `to` is the recipient, read with
/// [`read_recipient`] for `region`: one that cannot be read never rejects the DLR.
pub fn kannel(p: &Params, received: Millis, region: Option<Region>) -> Result<Callback, Rejection> {
    let ty = p.value("type").ok_or_else(|| field("type", "missing"))?;
    let status = match ty {
        "1" => Status::Delivered,
        "2" => Status::FailedRouting,
        "4" => Status::Enroute,
        "8" => Status::Sent,
        "16" => Status::FailedRejected,
        other => {
            return Err(field(
                "type",
                format_args!(
                    "{} is not a Kannel DLR type (1, 2, 4, 8 or 16)",
                    quoted(other)
                ),
            ))
        }
    };
    let message_id = message_id("id", p.value("id"))?;
    let ts = p
        .value("ts")
        .and_then(|ts| ts.trim().parse::<i64>().ok())
        .and_then(|s| s.checked_mul(1000))
        .map(Millis)
        .filter(|m| (Millis::MIN..=Millis::MAX).contains(m));
    // The reply decides only where it holds a receipt; a repeated field keeps its first
    // value and an `err` that is no error code is left out, so no reply rejects a DLR.
    let receipt = p.value("reply").and_then(|reply| {
        let f = receipt_fields(reply, false).ok()?;
        let stat = f.get("stat").copied().filter(|s| !s.is_empty())?;
        f.contains_key("id").then_some(())?;
        let mut lenient = f.clone();
        if receipt_status(&f, stat).is_err() {
            lenient.remove("err");
        }
        receipt_status(&lenient, stat).ok()
    });
    let status = match receipt {
        Some(r) => status_event(message_id, r.status, r.done.or(ts), r.error_code, received),
        None => status_event(message_id, status, ts, None, received),
    };
    Ok(Callback {
        status,
        recipient: read_recipient(p.get("to"), region),
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ev, form, rt, t};
    use super::*;
    use crate::event::StatusEvent;

    use Status::*;

    fn accepts(q: &str, want: StatusEvent) {
        assert_eq!(
            kannel(&form(q), rt(), None).map(|c| c.status),
            Ok(want),
            "{q}"
        );
    }

    fn rejects(q: &str, reason: &str) {
        assert_eq!(
            kannel(&form(q), rt(), None).unwrap_err().reason,
            reason,
            "{q}"
        );
    }

    // The rows of gateways.md, in order.

    #[test]
    fn type_1_is_delivered_at_receipt_time() {
        accepts("type=1&id=m4", ev("m4", Delivered, rt(), None));
    }

    #[test]
    fn type_2_is_failed_routing_at_ts() {
        accepts(
            "type=2&id=m4&ts=1772355600",
            ev("m4", FailedRouting, t("2026-03-01T09:00:00Z"), None),
        );
    }

    #[test]
    fn type_4_is_enroute() {
        accepts("type=4&id=m4", ev("m4", Enroute, rt(), None));
    }

    #[test]
    fn type_8_is_sent() {
        accepts("type=8&id=m4", ev("m4", Sent, rt(), None));
    }

    #[test]
    fn type_16_is_failed_rejected() {
        accepts("type=16&id=m4", ev("m4", FailedRejected, rt(), None));
    }

    #[test]
    fn a_receipt_in_reply_decides() {
        accepts(
            "type=1&id=m4&reply=id%3Am4%20stat%3AEXPIRED%20err%3A027%20done%20date%3A2603011000",
            ev("m4", FailedExpired, t("2026-03-01T10:00:00Z"), Some("027")),
        );
    }

    #[test]
    fn a_reply_with_an_empty_stat_leaves_the_type() {
        accepts(
            "type=1&id=m4&reply=id%3Am4%20stat%3A%20err%3A000",
            ev("m4", Delivered, rt(), None),
        );
    }

    #[test]
    fn a_national_to_never_rejects_the_status() {
        accepts(
            "type=1&id=m4&to=0291234567",
            ev("m4", Delivered, rt(), None),
        );
    }

    #[test]
    fn rejected_type_3() {
        rejects(
            "type=3&id=m4",
            "type: \"3\" is not a Kannel DLR type (1, 2, 4, 8 or 16)",
        );
    }

    #[test]
    fn rejected_without_id() {
        rejects("type=1", "id: missing");
    }

    #[test]
    fn kannel_details() {
        let lv = Some(Region::parse("LV").unwrap());
        let to = |q: &str, region| kannel(&form(q), rt(), region).unwrap().recipient;
        // E.164 as it is; a form decoder's space is a `+`; digits are never guessed.
        assert_eq!(
            to("type=1&id=m&to=%2B37120000001", None).as_deref(),
            Some("+37120000001")
        );
        assert_eq!(
            to("type=1&id=m&to=+37120000001", None).as_deref(),
            Some("+37120000001")
        );
        for national in ["37120000001", "0037120000001", "20000001", "12", ""] {
            assert_eq!(
                to(&format!("type=1&id=m&to={national}"), None),
                None,
                "{national}"
            );
        }
        // A national number with a default region, by libphonenumber's rules.
        assert_eq!(
            to("type=1&id=m&to=20000001", lv).as_deref(),
            Some("+37120000001")
        );
        assert_eq!(
            to("type=1&id=m&to=0037120000001", lv).as_deref(),
            Some("+37120000001")
        );
        assert_eq!(to("type=1&id=m&to=12", lv), None);
        assert_eq!(to("type=1&id=m&to=SHOP", lv), None);
        // The receipt's done date wins over ts; a reply without an id or a stat leaves the
        // type.
        let c = kannel(
            &form("type=1&id=m&ts=1772355600&reply=id:x+stat:UNDELIV+done+date:2603011000"),
            rt(),
            None,
        )
        .unwrap();
        assert_eq!(
            c.status,
            ev("m", FailedRouting, t("2026-03-01T10:00:00Z"), None)
        );
        assert_eq!(
            kannel(
                &form("type=1&id=m&ts=1772355600&reply=id:x+stat:UNDELIV"),
                rt(),
                None
            )
            .unwrap()
            .status,
            ev("m", FailedRouting, t("2026-03-01T09:00:00Z"), None)
        );
        for reply in ["ACK%2F", "stat:UNDELIV", "id:x+stat:"] {
            let c = kannel(&form(&format!("type=8&id=m&reply={reply}")), rt(), None).unwrap();
            assert_eq!(c.status, ev("m", Sent, rt(), None), "{reply}");
        }
        // A reply that is no clean receipt never rejects the DLR: a repeated field keeps
        // its first value, a bad done date is left to ts, a bad err is left out.
        for (reply, want) in [
            (
                "id:x+id:y+stat:EXPIRED+stat:DELIVRD",
                ev("m", FailedExpired, t("2026-03-01T09:00:00Z"), None),
            ),
            (
                "id:x+stat:EXPIRED+done+date:99",
                ev("m", FailedExpired, t("2026-03-01T09:00:00Z"), None),
            ),
        ] {
            let c = kannel(
                &form(&format!("type=1&id=m&ts=1772355600&reply={reply}")),
                rt(),
                None,
            )
            .unwrap();
            assert_eq!(c.status, want, "{reply}");
        }
        let long = format!("type=1&id=m&reply=id:x+stat:UNDELIV+err:{}", "1".repeat(65));
        assert_eq!(
            kannel(&form(&long), rt(), None).unwrap().status,
            ev("m", FailedRouting, rt(), None)
        );
        // A ts that is no time in epoch seconds makes the DLR undated.
        for ts in ["x", "-5", "99999999999999999", "1.5"] {
            let c = kannel(&form(&format!("type=2&id=m&ts={ts}")), rt(), None).unwrap();
            assert_eq!(c.status, ev("m", FailedRouting, rt(), None), "{ts}");
        }
    }
}
