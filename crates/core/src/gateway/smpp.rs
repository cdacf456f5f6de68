//! SMPP v3.4 delivery receipts (the text of a `deliver_sm`: `id:… stat:… done date:…`),
//! and the short dates (`YYMMDDhhmm[ss]`, UTC) that Jasmin and Twilio use too.

use std::collections::BTreeMap;

use super::{error_code, field, message_id, status_event};
use crate::event::{Rejection, StatusEvent};
use crate::status::Status;
use crate::time::Millis;

/// `YYMMDDhhmm` or `YYMMDDhhmmss` in UTC, years 2000–2099.
pub fn parse_short_date(s: &str) -> Option<Millis> {
    let b = s.as_bytes();
    if !(b.len() == 10 || b.len() == 12) || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let two = |i: usize| u32::from(b[i] - b'0') * 10 + u32::from(b[i + 1] - b'0');
    let sec = if b.len() == 12 { two(10) } else { 0 };
    if two(6) > 23 || two(8) > 59 || sec > 59 {
        return None;
    }
    Millis::from_utc(
        2000 + i64::from(two(0)),
        two(2),
        two(4),
        two(6),
        two(8),
        sec,
        0,
    )
}

/// The canonical status of an SMPP receipt's `stat` (matched ignoring case): `DELIVRD`
/// delivered, `ACCEPTD` sent, `ENROUTE` enroute, `EXPIRED` failed_expired, `DELETED` and
/// `REJECTD` failed_rejected, `UNDELIV` failed_routing, anything else unknown.
pub fn smpp_stat(stat: &str) -> Status {
    match stat.to_ascii_uppercase().as_str() {
        "DELIVRD" => Status::Delivered,
        "ACCEPTD" => Status::Sent,
        "ENROUTE" => Status::Enroute,
        "EXPIRED" => Status::FailedExpired,
        "DELETED" | "REJECTD" => Status::FailedRejected,
        "UNDELIV" => Status::FailedRouting,
        _ => Status::Unknown,
    }
}

/// The fields of an SMPP receipt text, names in lower case (`submit date`, `done date`
/// keep their space). `text` is the rest of the line. Where `strict`, `id`, `stat`, `err`
/// or `done date` given twice is an error; otherwise the first one counts. Words without
/// a colon are ignored.
pub(super) fn receipt_fields(
    text: &str,
    strict: bool,
) -> Result<BTreeMap<String, &str>, Rejection> {
    let mut out: BTreeMap<String, &str> = BTreeMap::new();
    let b = text.as_bytes();
    let mut i = 0;
    let ws = |c: u8| c == b' ' || c == b'\t';
    while i < b.len() {
        while i < b.len() && ws(b[i]) {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let mut end = i;
        while end < b.len() && !ws(b[end]) {
            end += 1;
        }
        let word = &text[i..end];
        // "submit date:" and "done date:" hold a space.
        if word.eq_ignore_ascii_case("submit") || word.eq_ignore_ascii_case("done") {
            let mut j = end;
            while j < b.len() && ws(b[j]) {
                j += 1;
            }
            if b.len() >= j + 5 && b[j..j + 5].eq_ignore_ascii_case(b"date:") {
                let mut k = j + 5;
                while k < b.len() && !ws(b[k]) {
                    k += 1;
                }
                let name = format!("{} date", word.to_ascii_lowercase());
                insert(&mut out, name, &text[j + 5..k], strict)?;
                i = k;
                continue;
            }
        }
        if let Some(colon) = word.find(':') {
            let name = word[..colon].to_ascii_lowercase();
            if name == "text" {
                out.insert(name, &text[i + colon + 1..]);
                break;
            }
            insert(&mut out, name, &word[colon + 1..], strict)?;
        }
        i = end;
    }
    Ok(out)
}

fn insert<'a>(
    out: &mut BTreeMap<String, &'a str>,
    name: String,
    value: &'a str,
    strict: bool,
) -> Result<(), Rejection> {
    if strict
        && matches!(name.as_str(), "id" | "stat" | "err" | "done date")
        && out.contains_key(&name)
    {
        return Err(field(&name, "given twice"));
    }
    out.entry(name).or_insert(value);
    Ok(())
}

/// What a receipt says about a status: `stat`, `err` and `done date`.
pub(super) struct ReceiptStatus {
    pub(super) status: Status,
    pub(super) error_code: Option<String>,
    /// `None` without a `done date`, or with one that cannot be read: undated.
    pub(super) done: Option<Millis>,
}

/// The status of a receipt's fields, given its `stat` (empty: unknown). An `err` over
/// 64 characters is an error.
pub(super) fn receipt_status(
    f: &BTreeMap<String, &str>,
    stat: &str,
) -> Result<ReceiptStatus, Rejection> {
    Ok(ReceiptStatus {
        status: smpp_stat(stat),
        error_code: error_code("err", f.get("err").copied(), true)?,
        done: f.get("done date").and_then(|d| parse_short_date(d)),
    })
}

/// An SMPP v3.4 delivery receipt's text (the README's "Gateway line formats"): `id` is
/// the message id, `stat` the status (empty: unknown), `err` the error code (only zeros:
/// none), `done date` the time (UTC; without one, or with one that cannot be read, the
/// receipt is undated). Field names are matched ignoring case, in any order; `id` and
/// `stat` are required, unknown fields are ignored, `text` is the rest of the line.
pub fn smpp_receipt(text: &str, received: Millis) -> Result<StatusEvent, Rejection> {
    let f = receipt_fields(text, true)?;
    let message_id = message_id("id", f.get("id").copied())?;
    let stat = f
        .get("stat")
        .copied()
        .ok_or_else(|| field("stat", "missing"))?;
    let r = receipt_status(&f, stat)?;
    Ok(status_event(
        message_id,
        r.status,
        r.done,
        r.error_code,
        received,
    ))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ev, rt, t};
    use super::*;

    use Status::*;

    fn accepts(text: &str, want: StatusEvent) {
        assert_eq!(smpp_receipt(text, rt()), Ok(want), "{text}");
    }

    fn rejects(text: &str, reason: &str) {
        assert_eq!(
            smpp_receipt(text, rt()).unwrap_err().reason,
            reason,
            "{text}"
        );
    }

    // The rows of gateways.md, in order.

    #[test]
    fn delivrd_with_submit_date_and_text_is_delivered_at_done_date() {
        accepts(
            "id:m5 sub:001 dlvrd:001 submit date:2603010900 done date:2603030900 stat:DELIVRD err:000 text:Sale",
            ev("m5", Delivered, t("2026-03-03T09:00:00Z"), None),
        );
    }

    #[test]
    fn undeliv_is_failed_routing_with_seconds_and_error_code() {
        accepts(
            "id:0a1b2c sub:001 dlvrd:000 submit date:2603010900 done date:260301091530 stat:UNDELIV err:001 text:",
            ev("0a1b2c", FailedRouting, t("2026-03-01T09:15:30Z"), Some("001")),
        );
    }

    #[test]
    fn expired_is_failed_expired_and_text_holds_spaces() {
        accepts(
            "id:77 sub:001 dlvrd:000 submit date:2603010900 done date:2603020900 stat:EXPIRED err:027 Text:Hello there",
            ev("77", FailedExpired, t("2026-03-02T09:00:00Z"), Some("027")),
        );
    }

    #[test]
    fn rejectd_is_failed_rejected_whatever_the_case_of_names() {
        accepts(
            "Id:77 Stat:REJECTD Err:069 Done date:2603010901",
            ev("77", FailedRejected, t("2026-03-01T09:01:00Z"), Some("069")),
        );
    }

    #[test]
    fn acceptd_is_sent() {
        accepts(
            "id:m9 stat:ACCEPTD done date:2603010900",
            ev("m9", Sent, t("2026-03-01T09:00:00Z"), None),
        );
    }

    #[test]
    fn enroute_without_done_date_is_at_receipt_time() {
        accepts("id:m9 stat:ENROUTE", ev("m9", Enroute, rt(), None));
    }

    #[test]
    fn deleted_is_failed_rejected() {
        accepts(
            "id:m9 stat:DELETED done date:2603010900",
            ev("m9", FailedRejected, t("2026-03-01T09:00:00Z"), None),
        );
    }

    #[test]
    fn another_stat_is_unknown() {
        accepts(
            "id:m9 stat:SKIPPED done date:2603010900",
            ev("m9", Unknown, t("2026-03-01T09:00:00Z"), None),
        );
    }

    #[test]
    fn rejected_without_id() {
        rejects("sub:001 stat:DELIVRD", "id: missing");
    }

    #[test]
    fn rejected_without_stat() {
        rejects("id:m9 done date:2603010900", "stat: missing");
    }

    #[test]
    fn a_done_date_that_cannot_be_read_is_receipt_time() {
        accepts(
            "id:m9 stat:DELIVRD done date:2613450900",
            ev("m9", Delivered, rt(), None),
        );
    }

    #[test]
    fn an_empty_stat_is_unknown() {
        accepts(
            "id:m9 stat: done date:2603010900",
            ev("m9", Unknown, t("2026-03-01T09:00:00Z"), None),
        );
    }

    #[test]
    fn smpp_details() {
        // text is the rest of the line, whatever it holds.
        let e = smpp_receipt("id:a stat:DELIVRD text:stat:UNDELIV id:b", rt()).unwrap();
        assert_eq!((e.message_id.as_str(), e.key.status), ("a", Delivered));
        // Other statuses of the table, case of the value ignored.
        assert_eq!(
            smpp_receipt("id:a stat:undeliv", rt()).unwrap().key.status,
            FailedRouting
        );
        assert_eq!(
            smpp_receipt("id:a stat:UNKNOWN", rt()).unwrap().key.status,
            Unknown
        );
        assert_eq!(
            smpp_receipt("id:a stat:EXPIRED", rt()).unwrap().key.status,
            FailedExpired
        );
        // Unknown fields and words are ignored; a repeated id is refused.
        assert!(smpp_receipt("hello id:a foo:bar stat:DELIVRD", rt()).is_ok());
        assert_eq!(
            smpp_receipt("id:a id:b stat:DELIVRD", rt())
                .unwrap_err()
                .reason,
            "id: given twice"
        );
        assert_eq!(
            smpp_receipt("id: stat:DELIVRD", rt()).unwrap_err().reason,
            "id: must not be empty"
        );
        assert!(smpp_receipt("id:a/b stat:DELIVRD", rt())
            .unwrap_err()
            .reason
            .starts_with("id: "));
        assert_eq!(
            smpp_receipt("id:a stat:", rt()).unwrap().key.status,
            Unknown
        );
        let long = format!("id:a stat:UNDELIV err:{}", "1".repeat(65));
        assert!(smpp_receipt(&long, rt())
            .unwrap_err()
            .reason
            .starts_with("err: must be at most 64"));
        // A done date that is no real date, or of 16 digits (as one real SMPP server
        // sends), makes the receipt undated.
        for bad in ["2602300900", "2603010900000000", "26030109", "x"] {
            let e = smpp_receipt(&format!("id:a stat:DELIVRD done date:{bad}"), rt()).unwrap();
            assert_eq!(e, ev("a", Delivered, rt(), None), "{bad}");
        }
        assert_eq!(
            smpp_receipt("id:a stat:DELIVRD stat:UNDELIV", rt())
                .unwrap_err()
                .reason,
            "stat: given twice"
        );
        assert!(smpp_receipt("", rt()).is_err());
        assert!(smpp_receipt("\u{1F600}:x id:é stat:x", rt()).is_err());
    }
}
