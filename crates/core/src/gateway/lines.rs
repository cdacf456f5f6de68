//! One line of a gateway format (`smsreport ingest --format …`, the SMPP webhook): the
//! callback, and the campaign to register its message in.

use super::{field, jasmin, kannel, smpp_receipt, twilio, Callback, Params, Region};
use crate::event::{check_id, Rejection};
use crate::time::Millis;

/// A line-oriented gateway input format (`smsreport ingest --format …`, the SMPP
/// webhook).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFormat {
    /// One SMPP delivery receipt text per line.
    Smpp,
    /// One Kannel DLR query string per line (`type=1&id=m4&ts=…`; a leading `?` is fine).
    Kannel,
    /// One Jasmin DLR form body per line (`id=…&level=3&message_status=DELIVRD&…`).
    Jasmin,
    /// One Twilio status callback form body per line (`MessageSid=…&MessageStatus=…`).
    Twilio,
}

/// One line of a gateway format: the callback and the campaign to register its message
/// in (a `campaign_id` parameter on the line; SMPP receipts have none). `region` reads
/// national recipients (`ingest --default-region`).
pub fn parse_callback(
    format: LineFormat,
    line: &[u8],
    received: Millis,
    region: Option<Region>,
) -> Result<Parsed, Rejection> {
    let text = std::str::from_utf8(line).map_err(|e| {
        Rejection::new(format!(
            "not UTF-8 text (invalid byte at column {})",
            e.valid_up_to() + 1
        ))
    })?;
    if format == LineFormat::Smpp {
        return Ok(Parsed {
            callback: Callback::status_only(smpp_receipt(text, received)?),
            campaign_id: None,
        });
    }
    let p = Params::parse(text.trim())?;
    let callback = match format {
        LineFormat::Kannel => kannel(&p, received, region)?,
        LineFormat::Jasmin => jasmin(&p, received)?,
        _ => twilio(&p, received, region)?,
    };
    let campaign_id = match p.value("campaign_id") {
        None => None,
        Some(c) => {
            check_id(c).map_err(|e| field("campaign_id", e))?;
            Some(c.to_owned())
        }
    };
    Ok(Parsed {
        callback,
        campaign_id,
    })
}

/// A parsed gateway line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub callback: Callback,
    pub campaign_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{form, rt};
    use super::*;
    use crate::event::{Event, Registration};

    #[test]
    fn auto_registration_events() {
        let c = twilio(
            &form("MessageSid=S&MessageStatus=sent&To=%2B14155550100"),
            rt(),
            None,
        )
        .unwrap();
        let Event::Status(s) = c.event(Some("camp")) else {
            panic!("a status event")
        };
        assert_eq!(
            s.callback.and_then(|c| c.register),
            Some(Registration {
                campaign_id: "camp".into(),
                recipient: "+14155550100".into(),
            })
        );
        let Event::Status(s) = c.event(None) else {
            panic!("a status event")
        };
        assert_eq!(s.callback.and_then(|c| c.register), None);
        let no_to = twilio(&form("MessageSid=S&MessageStatus=sent"), rt(), None).unwrap();
        let Event::Status(s) = no_to.event(Some("camp")) else {
            panic!("a status event")
        };
        assert_eq!(s.callback.and_then(|c| c.register), None);
        let p = parse_callback(
            LineFormat::Kannel,
            b"?type=1&id=m&to=%2B37120000001&campaign_id=c1",
            rt(),
            None,
        )
        .unwrap();
        assert_eq!(p.campaign_id.as_deref(), Some("c1"));
        assert_eq!(p.callback.recipient.as_deref(), Some("+37120000001"));
        let p = parse_callback(
            LineFormat::Kannel,
            b"?type=1&id=m&to=20000001",
            rt(),
            Some(Region::parse("lv").unwrap()),
        )
        .unwrap();
        assert_eq!(p.callback.recipient.as_deref(), Some("+37120000001"));
        assert!(parse_callback(
            LineFormat::Twilio,
            b"MessageSid=S&MessageStatus=sent&campaign_id=a%2Fb",
            rt(),
            None
        )
        .is_err());
        assert!(parse_callback(LineFormat::Smpp, b"id:\xff stat:DELIVRD", rt(), None).is_err());
        assert!(Region::parse("XX").is_err());
        assert!(Region::parse("").is_err());
        assert_eq!(Region::parse("lv").unwrap().code(), "LV");
    }

    proptest::proptest! {
        #[test]
        fn any_line_parses_or_is_rejected(line in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
                                          words in "(id|stat|err|done date|submit date|text|type|to|ts|reply|level|message_status|donedate|MessageSid|MessageStatus|ErrorCode|RawDlrDoneDate|[ :=&%+0-9A-Za-z])*") {
            for format in [LineFormat::Smpp, LineFormat::Kannel, LineFormat::Jasmin, LineFormat::Twilio] {
                let _ = parse_callback(format, &line, rt(), None);
                let _ = parse_callback(format, words.as_bytes(), rt(), Region::parse("LV").ok());
            }
        }
    }
}
