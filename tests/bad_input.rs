//! The bad-input catalogue (`docs/bad-input.md`): one test per kind of bad input, each
//! asserting what the catalogue says happens to it.
//!
//! NDJSON lines go through the real binary: `ingest` of a campaign, a message, the bad
//! line and a good message; the bad line alone is rejected with its line number and a
//! reason naming the field, written verbatim to `--rejects`, and the lines around it
//! are ingested (exit 2). Gateway lines go through `ingest --format`; request-level
//! faults through `smsreport serve`.

mod support;

use std::io::Write;
use std::process::Stdio;

use support::{cmd, http, report, run, text, Server};

const CAMPAIGN: &str = r#"{"type":"campaign","campaign_id":"c","name":"C","links":[{"link_id":"l","url":"https://shop.example/a"}]}"#;
const MESSAGE: &str = r#"{"type":"message","message_id":"m1","campaign_id":"c","recipient":"+37120000001","at":"2026-03-01T09:00:00Z"}"#;
const AFTER: &str = r#"{"type":"message","message_id":"m9","campaign_id":"c","recipient":"+37120000009","at":"2026-03-01T09:00:00Z"}"#;

/// A message event with one field's raw JSON text replaced (or added).
fn message_with(field: &str, raw: &str) -> String {
    let mut fields = vec![
        ("type", r#""message""#.to_owned()),
        ("message_id", r#""m2""#.to_owned()),
        ("campaign_id", r#""c""#.to_owned()),
        ("recipient", r#""+37120000002""#.to_owned()),
        ("at", r#""2026-03-01T09:00:00Z""#.to_owned()),
    ];
    match fields.iter_mut().find(|(k, _)| *k == field) {
        Some(f) => f.1 = raw.to_owned(),
        None => fields.push((leak(field), raw.to_owned())),
    }
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    format!("{{{}}}", body.join(","))
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

fn ingest(store: &str, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = cmd(store, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // A writer thread: the binary may answer before it has read a huge input.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// Line 3 of four is `bad`: it alone is rejected, with `reason` in its message.
fn rejects(bad: &[u8], reason: &str) {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sled:{}", dir.path().join("db").display());
    let rejects = dir.path().join("rejects.ndjson");
    let mut input = format!("{CAMPAIGN}\n{MESSAGE}\n").into_bytes();
    input.extend_from_slice(bad);
    input.extend_from_slice(format!("\n{AFTER}\n").as_bytes());
    let out = ingest(
        &store,
        &["ingest", "-", "--rejects", rejects.to_str().unwrap()],
        &input,
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(
        text(&out.stdout).trim(),
        "ingested 3, duplicates 0, rejected 1",
        "{err}"
    );
    let line = err
        .lines()
        .find(|l| l.starts_with("line 3: "))
        .unwrap_or_else(|| panic!("no reason for line 3 in {err:?}"));
    assert!(line.contains(reason), "{line:?} does not say {reason:?}");
    assert!(
        line.len() < 400,
        "the reason stays short: {} bytes",
        line.len()
    );
    let mut verbatim = bad.to_vec();
    verbatim.push(b'\n');
    if bad.len() <= smsreport_core::ingest::MAX_LINE_BYTES {
        assert_eq!(
            std::fs::read(&rejects).unwrap(),
            verbatim,
            "--rejects holds the line"
        );
    }
    assert_eq!(
        report(&store, "c")["delivery"]["total"],
        2,
        "m1 and m9 are in"
    );
}

macro_rules! bad_line {
    ($($name:ident: $line:expr => $reason:expr;)*) => {$(
        #[test]
        fn $name() {
            let line: Vec<u8> = $line.into();
            rejects(&line, $reason);
        }
    )*};
}

bad_line! {
    // Malformed JSON.
    not_json: "hello" => "not valid JSON";
    truncated_json: r#"{"type":"message","message_id":"m2""# => "not valid JSON: EOF";
    json_not_an_object: "[1,2,3]" => "not a JSON object but an array";
    duplicate_member_name: r#"{"type":"message","message_id":"m2","message_id":"m3","campaign_id":"c","recipient":"+37120000002","at":"2026-03-01T09:00:00Z"}"# => "duplicate member name \"message_id\"";
    number_out_of_range: message_with("parts", "1e999") => "number out of range";
    nan_is_not_json: message_with("parts", "NaN") => "not valid JSON";
    unpaired_surrogate: r#"{"type":"campaign","campaign_id":"c2","name":"\ud800"}"# => "not valid JSON";
    raw_control_character_in_a_string: "{\"type\":\"campaign\",\"campaign_id\":\"c2\",\"name\":\"a\tb\"}" => "control character";
    // Missing or wrong types.
    missing_type: r#"{"message_id":"m2"}"# => "type: missing";
    unknown_type: r#"{"type":"bounce","message_id":"m2"}"# => "type: \"bounce\" is not an event type";
    missing_required_field: r#"{"type":"message","message_id":"m2","campaign_id":"c","recipient":"+37120000002"}"# => "at: missing";
    id_as_a_number: message_with("message_id", "5") => "message_id: must be a string, not a number";
    parts_as_a_string: message_with("parts", r#""2""#) => "parts: must be an integer, not a string";
    parts_as_a_fraction: message_with("parts", "1.5") => "parts: 1.5 is not an integer";
    parts_out_of_range: message_with("parts", "256") => "parts: must be 1 to 255, not 256";
    links_not_an_array: r#"{"type":"campaign","campaign_id":"c2","name":"C","links":{"link_id":"l"}}"# => "links: must be an array, not an object";
    // Identifiers and text fields.
    id_with_a_forbidden_character: message_with("message_id", r#""m 2""#) => "message_id: \"m 2\" holds ' '";
    id_too_long: message_with("message_id", &format!("\"{}\"", "m".repeat(129))) => "message_id: must be at most 128 characters, not 129";
    id_empty: message_with("message_id", r#""""#) => "message_id: must not be empty";
    name_too_long: format!(r#"{{"type":"campaign","campaign_id":"c2","name":"{}"}}"#, "é".repeat(257)) => "name: must be 1 to 256 characters, not 257";
    error_code_too_long: format!(r#"{{"type":"status","message_id":"m1","status":"failed_routing","error_code":"{}","at":"2026-03-01T09:00:00Z"}}"#, "e".repeat(65)) => "error_code: must be at most 64 characters, not 65";
    user_agent_too_long: format!(r#"{{"type":"click","campaign_id":"c","link_id":"l","recipient":"+37120000001","at":"2026-03-02T09:00:00Z","user_agent":"{}"}}"#, "a".repeat(1025)) => "user_agent: must be at most 1024 characters, not 1025";
    unknown_status: r#"{"type":"status","message_id":"m1","status":"bounced","at":"2026-03-01T09:00:00Z"}"# => "status: \"bounced\" is not a status";
    // Phone numbers.
    phone_without_plus: message_with("recipient", r#""37120000002""#) => "recipient: \"37120000002\" is not an E.164 phone number";
    phone_too_short: message_with("recipient", r#""+12345""#) => "is not an E.164 phone number";
    phone_with_leading_zero: message_with("recipient", r#""+0371200000""#) => "is not an E.164 phone number";
    // Timestamps.
    timestamp_without_offset: message_with("at", r#""2026-03-01T09:00:00""#) => "has no time zone offset";
    timestamp_not_rfc3339: message_with("at", r#""01/03/2026 09:00""#) => "is not an RFC 3339 date-time";
    timestamp_impossible_date: message_with("at", r#""2026-02-30T09:00:00Z""#) => "is not a real date and time";
    timestamp_leap_second: message_with("at", r#""2026-03-01T23:59:60Z""#) => "is not a real date and time";
    timestamp_before_1970: message_with("at", r#""1969-12-31T23:59:59Z""#) => "is outside 1970-01-01T00:00:00Z";
    // URLs.
    url_not_http: r#"{"type":"campaign","campaign_id":"c2","name":"C","links":[{"link_id":"l","url":"javascript:alert(1)"}]}"# => "links[0].url: \"javascript:alert(1)\" must start with http:// or https://";
    url_with_a_space: r#"{"type":"campaign","campaign_id":"c2","name":"C","links":[{"link_id":"l","url":"https://shop.example/a b"}]}"# => "a URL has no space or control character";
    url_too_long: format!(r#"{{"type":"campaign","campaign_id":"c2","name":"C","links":[{{"link_id":"l","url":"https://shop.example/{}"}}]}}"#, "a".repeat(2048)) => "must be at most 2048 characters";
    // Unknown campaigns or links, conflicting redefinitions.
    message_for_an_unknown_campaign: message_with("campaign_id", r#""nope""#) => "campaign_id: no campaign named \"nope\"";
    click_for_an_unknown_campaign: r#"{"type":"click","campaign_id":"nope","link_id":"l","recipient":"+37120000001","at":"2026-03-02T09:00:00Z"}"# => "campaign_id: no campaign named \"nope\"";
    click_for_an_unknown_link: r#"{"type":"click","campaign_id":"c","link_id":"zz","recipient":"+37120000001","at":"2026-03-02T09:00:00Z"}"# => "link_id: campaign \"c\" has no link \"zz\"";
    link_url_redefined: r#"{"type":"campaign","campaign_id":"c","name":"C","links":[{"link_id":"l","url":"https://evil.example/"}]}"# => "already has url \"https://shop.example/a\"; a link's url never changes";
    one_link_given_two_urls: r#"{"type":"campaign","campaign_id":"c3","name":"C","links":[{"link_id":"l","url":"https://a.example/"},{"link_id":"l","url":"https://b.example/"}]}"# => "link \"l\" is given two different urls in one event";
    message_id_reused_for_another_recipient: r#"{"type":"message","message_id":"m1","campaign_id":"c","recipient":"+37120000009","at":"2026-03-01T09:00:00Z"}"# => "message_id: \"m1\" is already a message of campaign \"c\" to +37120000001";
    // Bytes.
    invalid_utf8: b"{\"type\":\"campaign\",\"campaign_id\":\"c2\",\"name\":\"\xff\xfe\"}".to_vec() => "not UTF-8";
    huge_line: format!(r#"{{"type":"campaign","campaign_id":"c2","name":"{}"}}"#, "x".repeat(2 << 20)) => "over the limit of 1048576";
}

/// A status for a message not yet known is not bad input: it is kept, and counts when
/// the message arrives.
#[test]
fn status_for_an_unknown_message_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sled:{}", dir.path().join("db").display());
    let input = format!(
        "{CAMPAIGN}\n{}\n{}\n",
        r#"{"type":"status","message_id":"m7","status":"delivered","at":"2026-03-01T09:00:05Z"}"#,
        r#"{"type":"message","message_id":"m7","campaign_id":"c","recipient":"+37120000007","at":"2026-03-01T09:00:00Z"}"#
    );
    let out = ingest(&store, &["ingest", "-"], input.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(report(&store, "c")["delivery"]["delivered"], 1);
}

// ---------------------------------------------------------------------------------------
// Gateway lines (`ingest --format`).

fn gateway_rejects(format: &str, line: &str, reason: &str) {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sled:{}", dir.path().join("db").display());
    let out = ingest(
        &store,
        &["ingest", "--format", format, "-"],
        format!("{line}\n").as_bytes(),
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(
        text(&out.stdout).trim(),
        "ingested 0, duplicates 0, rejected 1"
    );
    assert!(
        err.contains(&format!("line 1: {reason}")),
        "{err:?} does not say {reason:?}"
    );
}

#[test]
fn kannel_unknown_dlr_type() {
    gateway_rejects(
        "kannel",
        "type=3&id=m4",
        "type: \"3\" is not a Kannel DLR type",
    );
}

#[test]
fn form_value_not_utf8_once_decoded() {
    gateway_rejects("kannel", "id=%FF&type=1", "id: not UTF-8 once decoded");
}

#[test]
fn smpp_receipt_without_id() {
    gateway_rejects("smpp", "sub:001 stat:DELIVRD", "id: missing");
}

/// A line that is taken, not rejected: exit 0, `ingested 1`.
fn gateway_takes(format: &str, line: &str) {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sled:{}", dir.path().join("db").display());
    let out = ingest(
        &store,
        &["ingest", "--format", format, "-"],
        format!("{line}\n").as_bytes(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "ingested 1, duplicates 0, rejected 0"
    );
}

#[test]
fn smpp_receipt_with_an_impossible_date_is_undated() {
    gateway_takes("smpp", "id:m9 stat:DELIVRD done date:2613450900");
}

#[test]
fn twilio_callback_without_message_sid() {
    gateway_rejects("twilio", "MessageStatus=delivered", "MessageSid: missing");
}

#[test]
fn jasmin_unknown_level() {
    gateway_rejects(
        "jasmin",
        "id=m1&level=9&message_status=DELIVRD",
        "level: \"9\" is not a Jasmin DLR level",
    );
}

#[test]
fn gateway_recipient_not_a_phone_number_is_left_out() {
    gateway_takes("kannel", "type=1&id=m4&to=12345&campaign_id=c");
}

// ---------------------------------------------------------------------------------------
// The command line.

#[test]
fn report_of_an_unknown_campaign_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &format!("sled:{}", dir.path().join("db").display()),
        &["report", "nope"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no campaign named \"nope\""));
}

#[test]
fn unknown_time_zone_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sled:{}", dir.path().join("db").display());
    let out = ingest(&store, &["ingest", "-"], CAMPAIGN.as_bytes());
    assert!(out.status.success());
    let out = run(&store, &["report", "c", "--tz", "Mars/Base"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown time zone \"Mars/Base\""));
}

#[test]
fn unknown_store_url_exits_2() {
    let out = run("ftp://example.invalid/x", &["campaigns"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown store URL"));
}

// ---------------------------------------------------------------------------------------
// The HTTP service.

const TOKEN: &str = "Authorization: Bearer t0k\r\n";

fn server(dir: &tempfile::TempDir) -> Server {
    let store = format!("sled:{}", dir.path().join("db").display());
    Server::start(
        &store,
        &[
            "--token",
            "t0k",
            "--twilio-auth-token",
            "tw1l10",
            "--webhook-key",
            "k3y",
            "--body-limit",
            "65536",
        ],
    )
}

/// The status and the `error` of a JSON error answer.
fn error_of(answer: (u16, String)) -> (u16, String) {
    let v: serde_json::Value = serde_json::from_str(&answer.1)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", answer.1));
    let e = v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {v}"));
    (answer.0, e.to_owned())
}

#[test]
fn http_body_not_utf8_is_400() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(&dir);
    let a = http(
        &s.addr,
        "POST",
        "/v1/events",
        TOKEN,
        b"{\"type\":\"c\xff\"}\n",
    )
    .unwrap();
    assert_eq!(error_of(a).0, 400);
}

#[test]
fn http_body_over_the_limit_is_413() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(&dir);
    let body = format!("{CAMPAIGN}\n").repeat(1000);
    let a = http(&s.addr, "POST", "/v1/events", TOKEN, body.as_bytes()).unwrap();
    assert_eq!(error_of(a).0, 413);
    let a = http(&s.addr, "GET", "/v1/campaigns", TOKEN, b"").unwrap();
    assert_eq!((a.0, a.1.trim()), (200, "[]"), "nothing of it was stored");
}

#[test]
fn http_bad_lines_are_rejected_by_number_and_the_rest_ingested() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(&dir);
    let body = format!("{CAMPAIGN}\nhello\n{MESSAGE}\n");
    let (status, body) = http(&s.addr, "POST", "/v1/events", TOKEN, body.as_bytes()).unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["ingested"], 2);
    assert_eq!(v["rejected"][0]["line"], 2);
    assert!(v["rejected"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));
}

#[test]
fn http_missing_or_wrong_token_is_401() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(&dir);
    for headers in [
        "",
        "Authorization: Bearer nope\r\n",
        "Authorization: Basic dDBrOnQwaw==\r\n",
    ] {
        let a = http(&s.addr, "POST", "/v1/events", headers, CAMPAIGN.as_bytes()).unwrap();
        assert_eq!(error_of(a).0, 401, "{headers:?}");
    }
    let a = http(&s.addr, "GET", "/v1/campaigns", TOKEN, b"").unwrap();
    assert_eq!((a.0, a.1.trim()), (200, "[]"), "nothing was stored");
}

#[test]
fn http_bad_twilio_signature_is_403() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(&dir);
    let form = "Content-Type: application/x-www-form-urlencoded\r\n";
    let body = b"MessageSid=SM1&MessageStatus=delivered";
    for sig in ["", "X-Twilio-Signature: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n"] {
        let a = http(
            &s.addr,
            "POST",
            "/v1/webhooks/twilio",
            &format!("{form}{sig}"),
            body,
        )
        .unwrap();
        assert_eq!(error_of(a).0, 403, "{sig:?}");
    }
}

#[test]
fn http_webhook_without_its_key_is_403() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(&dir);
    for path in [
        "/v1/webhooks/kannel?type=1&id=m1",
        "/v1/webhooks/kannel?type=1&id=m1&key=wrong",
    ] {
        let a = http(&s.addr, "GET", path, "", b"").unwrap();
        assert_eq!(error_of(a).0, 403, "{path}");
    }
}

#[test]
fn http_webhook_naming_an_unknown_campaign_is_404() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(&dir);
    let a = http(
        &s.addr,
        "GET",
        "/v1/webhooks/kannel?key=k3y&type=1&id=m1&to=%2B37120000001&campaign_id=nope",
        "",
        b"",
    )
    .unwrap();
    assert_eq!(error_of(a).0, 404);
}

#[test]
fn http_unknown_campaign_and_zone() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(&dir);
    let a = http(&s.addr, "GET", "/v1/campaigns/nope/report", TOKEN, b"").unwrap();
    assert_eq!(error_of(a).0, 404);
    let (status, _) = http(&s.addr, "POST", "/v1/events", TOKEN, CAMPAIGN.as_bytes()).unwrap();
    assert_eq!(status, 200);
    let a = http(
        &s.addr,
        "GET",
        "/v1/campaigns/c/report?tz=Mars/Base",
        TOKEN,
        b"",
    )
    .unwrap();
    assert_eq!(error_of(a).0, 400);
}

#[test]
fn http_message_registration_with_bad_json_is_400_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(&dir);
    let (status, _) = http(&s.addr, "POST", "/v1/events", TOKEN, CAMPAIGN.as_bytes()).unwrap();
    assert_eq!(status, 200);
    let json = "Content-Type: application/json\r\n";
    for body in [
        r#"{"messages":[{"message_id":"m1","recipient":"+37120000001","text":"hi"},{"message_id":"m 2","recipient":"+37120000002","text":"hi"}]}"#,
        r#"{"messages":"#,
        r#"{"messages":[{"message_id":"m1","recipient":"123","text":"hi"}]}"#,
    ] {
        let a = http(
            &s.addr,
            "POST",
            "/v1/campaigns/c/messages",
            &format!("{TOKEN}{json}"),
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(error_of(a).0, 400, "{body}");
    }
    let (_, r) = http(&s.addr, "GET", "/v1/campaigns/c/report", TOKEN, b"").unwrap();
    let r: serde_json::Value = serde_json::from_str(&r).unwrap();
    assert_eq!(r["delivery"]["total"], 0, "nothing was registered");
}

#[test]
fn http_unknown_tracked_link_code_is_404() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(&dir);
    for path in ["/c/AAAAAAAA", "/c/../../etc/passwd", "/c/%00"] {
        let (status, _) = http(&s.addr, "GET", path, "", b"").unwrap();
        assert_eq!(status, 404, "{path}");
    }
}
