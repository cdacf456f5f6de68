//! Whatever the input, parsing (NDJSON lines, and gateway lines in every format) gives an
//! event or a clear rejection, never a panic, and applying whatever parses gives one
//! outcome per event.

use proptest::prelude::*;
use smsreport_core::engine::{apply, Loaded};
use smsreport_core::event::parse_event;
use smsreport_core::ingest::split_lines;
use smsreport_core::Event;

/// JSON-ish text: the field names and values events use, in random shapes.
fn jsonish() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("type"),
        Just("campaign_id"),
        Just("message_id"),
        Just("recipient"),
        Just("status"),
        Just("at"),
        Just("parts"),
        Just("links"),
        Just("link_id"),
        Just("url"),
        Just("contact_list"),
        Just("list_id"),
        Just("name"),
        Just("error_code"),
        Just("user_agent"),
        Just("event_id"),
        Just("created_at"),
        Just("link_tracking"),
    ];
    let leaf = prop_oneof![
        Just("\"campaign\"".to_owned()),
        Just("\"message\"".to_owned()),
        Just("\"status\"".to_owned()),
        Just("\"click\"".to_owned()),
        Just("\"contact\"".to_owned()),
        Just("\"+37120000001\"".to_owned()),
        Just("\"2026-03-01T09:00:00Z\"".to_owned()),
        Just("\"9999-12-31T23:59:59.999+00:00\"".to_owned()),
        Just("\"delivered\"".to_owned()),
        Just("\"https://x.example/a\"".to_owned()),
        Just("\"\\ud800\"".to_owned()),
        Just("1e999".to_owned()),
        Just("-0".to_owned()),
        Just("255".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        "\"[ -~]{0,12}\"".prop_map(|s| s.replace('\\', "")),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
    ];
    let value = leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(("[a-z_]{1,12}", inner), 0..4).prop_map(|v| {
                let fields: Vec<String> =
                    v.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    });
    prop::collection::vec((key, value), 0..8).prop_map(|fields| {
        let fields: Vec<String> = fields
            .into_iter()
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect();
        format!("{{{}}}", fields.join(","))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_parse_or_reject(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Err(r) = parse_event(&bytes) {
            prop_assert!(!r.reason.is_empty());
        }
        let lines = split_lines(&bytes);
        prop_assert!(lines.iter().all(|l| !l.bytes.contains(&b'\n')));
    }

    #[test]
    fn any_jsonish_line_parses_or_names_why(line in jsonish()) {
        match parse_event(line.as_bytes()) {
            Ok(e) => {
                let (outcomes, _) = apply(Loaded::default(), std::slice::from_ref(&e));
                prop_assert_eq!(outcomes.len(), 1);
            }
            Err(r) => prop_assert!(!r.reason.is_empty()),
        }
    }

    #[test]
    fn any_batch_gives_one_outcome_per_event(lines in prop::collection::vec(jsonish(), 0..20)) {
        let events: Vec<Event> = lines.iter().filter_map(|l| parse_event(l.as_bytes()).ok()).collect();
        let (outcomes, _) = apply(Loaded::default(), &events);
        prop_assert_eq!(outcomes.len(), events.len());
    }
}

/// Gateway-ish text: the fields the gateways send, with plausible and odd values,
/// form-encoded (`&`, `=`, `%XX`) or as an SMPP receipt (`name:value` words).
fn gatewayish() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("type"),
        Just("id"),
        Just("ts"),
        Just("to"),
        Just("reply"),
        Just("level"),
        Just("message_status"),
        Just("donedate"),
        Just("err"),
        Just("MessageSid"),
        Just("MessageStatus"),
        Just("ErrorCode"),
        Just("To"),
        Just("RawDlrDoneDate"),
        Just("campaign_id"),
        Just("stat"),
        Just("done date"),
        Just("submit date"),
        Just("text"),
    ];
    let value = prop_oneof![
        Just("1".to_owned()),
        Just("16".to_owned()),
        Just("DELIVRD".to_owned()),
        Just("ESME_ROK".to_owned()),
        Just("undelivered".to_owned()),
        Just("30005".to_owned()),
        Just("2603011015".to_owned()),
        Just("991231235959".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("-1".to_owned()),
        Just("%2B37120000001".to_owned()),
        Just("%FF%".to_owned()),
        Just("id%3Am4%20stat%3AEXPIRED".to_owned()),
        "[ -~]{0,16}",
        any::<u64>().prop_map(|n| n.to_string()),
    ];
    let pairs = prop::collection::vec((name, value), 0..8);
    prop_oneof![
        pairs.clone().prop_map(|p| {
            p.into_iter()
                .map(|(n, v)| format!("{}={v}", n.replace(' ', "+")))
                .collect::<Vec<_>>()
                .join("&")
        }),
        pairs.prop_map(|p| {
            p.into_iter()
                .map(|(n, v)| format!("{n}:{v}"))
                .collect::<Vec<_>>()
                .join(" ")
        }),
    ]
}

const FORMATS: [smsreport_core::gateway::LineFormat; 4] = [
    smsreport_core::gateway::LineFormat::Smpp,
    smsreport_core::gateway::LineFormat::Kannel,
    smsreport_core::gateway::LineFormat::Jasmin,
    smsreport_core::gateway::LineFormat::Twilio,
];

/// A parsed gateway line makes events that are themselves valid: a status with a
/// message id of the rules, and a message only with a campaign and a recipient.
fn check_gateway_line(line: &[u8]) -> Result<(), TestCaseError> {
    use smsreport_core::gateway::parse_callback as gateway_line;
    use smsreport_core::Millis;
    let received = Millis::parse("2026-03-01T09:00:00Z").unwrap();
    for format in FORMATS {
        let region = smsreport_core::gateway::Region::parse("LV").ok();
        match gateway_line(format, line, received, region) {
            Ok(p) => {
                prop_assert!(
                    smsreport_core::event::check_id(&p.callback.status.message_id).is_ok()
                );
                let events = [p.callback.event(p.campaign_id.as_deref())];
                let (outcomes, _) = apply(Loaded::default(), &events);
                prop_assert_eq!(outcomes.len(), events.len());
            }
            Err(r) => prop_assert!(!r.reason.is_empty(), "{:?}: empty reason", format),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_as_a_gateway_line_parse_or_reject(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        check_gateway_line(&bytes)?;
    }

    #[test]
    fn any_gatewayish_line_parses_or_names_why(line in gatewayish()) {
        check_gateway_line(line.as_bytes())?;
    }
}
