//! Jasmin HTTP delivery reports (form fields `id`, `level`, `message_status`, `donedate`,
//! `err`).

use super::smpp::{parse_short_date, smpp_stat};
use super::{error_code, field, message_id, quoted, status_event, Callback, Params};
use crate::event::Rejection;
use crate::status::Status;
use crate::time::Millis;

/// A Jasmin HTTP DLR (form fields `id`, `level`, `message_status`, `donedate`, `err`).
///
/// At `level` 1, `message_status` `ESME_ROK` is sent and any other `ESME_*`
/// failed_rejected, undated (at the time of receipt). At levels 2 and 3,
/// `message_status` is an SMPP `stat` (see [`smpp_stat`]), `donedate` (YYMMDDhhmm, UTC)
/// the time (without one, or one that cannot be read, the DLR is undated) and `err` the
/// error code (only zeros: none).
pub fn jasmin(p: &Params, received: Millis) -> Result<Callback, Rejection> {
    let message_id = message_id("id", p.value("id"))?;
    let level = p.value("level").ok_or_else(|| field("level", "missing"))?;
    let ms = p
        .value("message_status")
        .ok_or_else(|| field("message_status", "missing"))?;
    let status = match level {
        "1" => {
            let status = if ms == "ESME_ROK" {
                Status::Sent
            } else if ms.starts_with("ESME_") {
                Status::FailedRejected
            } else {
                return Err(field(
                    "message_status",
                    format_args!("{} is not an SMPP command status (ESME_…)", quoted(ms)),
                ));
            };
            status_event(message_id, status, None, None, received)
        }
        "2" | "3" => status_event(
            message_id,
            smpp_stat(ms),
            p.value("donedate").and_then(parse_short_date),
            error_code("err", p.get("err"), true)?,
            received,
        ),
        other => {
            return Err(field(
                "level",
                format_args!("{} is not a Jasmin DLR level (1, 2 or 3)", quoted(other)),
            ))
        }
    };
    Ok(Callback::status_only(status))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ev, form, rt, t};
    use super::*;
    use crate::event::StatusEvent;

    use Status::*;

    fn accepts(q: &str, want: StatusEvent) {
        assert_eq!(jasmin(&form(q), rt()).map(|c| c.status), Ok(want), "{q}");
    }

    // The rows of gateways.md, in order.

    #[test]
    fn level_1_esme_rok_is_sent() {
        accepts(
            "id=t1&level=1&message_status=ESME_ROK",
            ev("t1", Sent, rt(), None),
        );
    }

    #[test]
    fn level_1_another_esme_status_is_failed_rejected() {
        accepts(
            "id=t1&level=1&message_status=ESME_RSUBMITFAIL",
            ev("t1", FailedRejected, rt(), None),
        );
    }

    #[test]
    fn level_3_delivrd_is_delivered_at_donedate() {
        accepts(
            "id=t1&level=3&message_status=DELIVRD&donedate=2603011020&err=000",
            ev("t1", Delivered, t("2026-03-01T10:20:00Z"), None),
        );
    }

    #[test]
    fn level_2_expired_is_failed_expired_with_error_code() {
        accepts(
            "id=t1&level=2&message_status=EXPIRED&donedate=2603021020&err=027",
            ev("t1", FailedExpired, t("2026-03-02T10:20:00Z"), Some("027")),
        );
    }

    #[test]
    fn jasmin_details() {
        for bad in [
            "level=1&message_status=ESME_ROK",
            "id=t1&level=4&message_status=DELIVRD",
            "id=t1&level=1&message_status=DELIVRD",
            "id=t1&level=1",
        ] {
            assert!(jasmin(&form(bad), rt()).is_err(), "{bad}");
        }
        assert_eq!(
            jasmin(&form("id=t1&level=3&message_status=DELIVRD"), rt())
                .unwrap()
                .status
                .key
                .at,
            rt()
        );
        // A donedate that cannot be read makes the DLR undated.
        for d in ["yesterday", "2613451020", "26030110"] {
            assert_eq!(
                jasmin(
                    &form(&format!(
                        "id=t1&level=3&message_status=DELIVRD&donedate={d}"
                    )),
                    rt()
                )
                .unwrap()
                .status,
                ev("t1", Delivered, rt(), None),
                "{d}"
            );
        }
    }
}
