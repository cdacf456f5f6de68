//! Events and their validation (docs/events.md): one NDJSON line in, one [`Event`] or a
//! [`Rejection`] naming the field out.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Serialize;
use serde_json::{Map, Number, Value};

use crate::status::{Status, StatusKey};
use crate::time::Millis;

/// Why one input line (or one event) was not taken. The reason starts with the field it
/// concerns (`recipient: …`), or says the line as a whole is not an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Rejection {
    /// A sentence for a person, naming the field.
    pub reason: String,
    /// What kind of mistake it is, for a front end that answers differently (the HTTP
    /// service's `404` for an unknown campaign); the reason says the same to a person.
    #[serde(default)]
    pub kind: RejectionKind,
}

/// What kind of mistake a [`Rejection`] is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RejectionKind {
    /// The event itself breaks a rule (a field's format, a value out of range).
    #[default]
    Invalid,
    /// The event names a campaign that was never defined.
    UnknownCampaign,
    /// The event names a link its campaign does not have.
    UnknownLink,
    /// The event contradicts what is stored (an id already taken by something else).
    Conflict,
}

impl Rejection {
    /// A rejection of kind [`RejectionKind::Invalid`] with this reason.
    pub fn new(reason: impl Into<String>) -> Rejection {
        Rejection::of_kind(RejectionKind::Invalid, reason)
    }
    /// A rejection of kind [`RejectionKind::UnknownCampaign`].
    pub fn unknown_campaign(reason: impl Into<String>) -> Rejection {
        Rejection::of_kind(RejectionKind::UnknownCampaign, reason)
    }
    /// A rejection of kind [`RejectionKind::UnknownLink`].
    pub fn unknown_link(reason: impl Into<String>) -> Rejection {
        Rejection::of_kind(RejectionKind::UnknownLink, reason)
    }
    /// A rejection of kind [`RejectionKind::Conflict`].
    pub fn conflict(reason: impl Into<String>) -> Rejection {
        Rejection::of_kind(RejectionKind::Conflict, reason)
    }
    /// A rejection of the given kind.
    pub fn of_kind(kind: RejectionKind, reason: impl Into<String>) -> Rejection {
        Rejection {
            reason: reason.into(),
            kind,
        }
    }
    pub(crate) fn field(field: &str, problem: impl fmt::Display) -> Rejection {
        Rejection::new(format!("{field}: {problem}"))
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// One link of a campaign.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct Link {
    /// Unique within its campaign.
    pub link_id: String,
    /// Kept byte for byte.
    pub url: String,
}

/// The contact list a campaign was sent to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub struct ContactList {
    /// Global list id.
    pub list_id: String,
    /// The list's display name.
    pub name: String,
}

/// Defines or updates a campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CampaignEvent {
    pub campaign_id: String,
    pub name: String,
    pub contact_list: Option<ContactList>,
    pub link_tracking: bool,
    pub links: Vec<Link>,
    pub created_at: Option<Millis>,
}

/// Adds a subscriber to a contact list, or updates its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ContactEvent {
    pub list_id: String,
    pub recipient: String,
    pub name: Option<String>,
}

/// One SMS submitted in a campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct MessageEvent {
    pub message_id: String,
    pub campaign_id: String,
    pub recipient: String,
    /// Segments, 1..=255.
    pub parts: u8,
    pub at: Millis,
}

/// A delivery status of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StatusEvent {
    pub message_id: String,
    pub key: StatusKey,
    /// Set when a gateway's callback made it (docs/rules.md, "Gateways"); `None` for a
    /// status event line.
    #[serde(skip)]
    pub callback: Option<FromCallback>,
}

/// What a gateway callback adds to its status event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FromCallback {
    /// The callback had no time of its own (or one that could not be read): `key.at` is
    /// the time it was received, and the rules of docs/rules.md ("Undated receipts")
    /// decide its final time and whether it is a duplicate.
    pub undated: bool,
    /// `?campaign_id=` and a recipient that could be read: register the message in that
    /// campaign (1 part, at the status's time) when it is not known yet.
    pub register: Option<Registration>,
}

/// A message to register from a callback: its campaign and recipient (E.164).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub campaign_id: String,
    pub recipient: String,
}

/// One click on a tracked link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ClickEvent {
    pub campaign_id: String,
    pub link_id: String,
    pub recipient: String,
    pub at: Millis,
    pub user_agent: Option<String>,
    pub event_id: Option<String>,
}

/// A validated event: every field meets its rule of docs/events.md.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[allow(missing_docs)]
pub enum Event {
    Campaign(CampaignEvent),
    Contact(ContactEvent),
    Message(MessageEvent),
    Status(StatusEvent),
    Click(ClickEvent),
}

/// A JSON value read strictly: a duplicate member name anywhere is an error.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Strict, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            let Strict(v) = map.next_value()?;
            if out.contains_key(&k) {
                return Err(de::Error::custom(format_args!(
                    "duplicate member name {k:?}"
                )));
            }
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

/// Quotes a user-supplied value for a reason, shortened so a reason stays one readable line.
fn show(s: &str) -> String {
    if s.chars().count() <= 60 {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(57).collect();
        format!("{:?}…", head)
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads the fields of one JSON object, with the path of the object for reasons.
struct Fields<'a> {
    obj: &'a Map<String, Value>,
    path: String,
}

impl<'a> Fields<'a> {
    fn name(&self, field: &str) -> String {
        format!("{}{field}", self.path)
    }

    fn get(&self, field: &str) -> Option<&'a Value> {
        self.obj.get(field).filter(|v| !v.is_null())
    }

    fn opt_str(&self, field: &str) -> Result<Option<&'a str>, Rejection> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(Rejection::field(
                &self.name(field),
                format_args!("must be a string, not {}", type_name(v)),
            )),
        }
    }

    fn str(&self, field: &str) -> Result<&'a str, Rejection> {
        self.opt_str(field)?
            .ok_or_else(|| Rejection::field(&self.name(field), "missing"))
    }

    fn id(&self, field: &str) -> Result<String, Rejection> {
        let s = self.str(field)?;
        check_id(s).map_err(|p| Rejection::field(&self.name(field), p))?;
        Ok(s.to_owned())
    }

    fn opt_id(&self, field: &str) -> Result<Option<String>, Rejection> {
        match self.opt_str(field)? {
            None => Ok(None),
            Some(s) => {
                check_id(s).map_err(|p| Rejection::field(&self.name(field), p))?;
                Ok(Some(s.to_owned()))
            }
        }
    }

    fn recipient(&self, field: &str) -> Result<String, Rejection> {
        let s = self.str(field)?;
        check_recipient(&self.name(field), s)?;
        Ok(s.to_owned())
    }

    /// A recipient of a message, click or tracked link: an E.164 number, or a forgotten
    /// person's token (as an export writes it; crate::forget).
    fn person(&self, field: &str) -> Result<String, Rejection> {
        let s = self.str(field)?;
        if !crate::forget::is_token(s) {
            check_recipient(&self.name(field), s)?;
        }
        Ok(s.to_owned())
    }

    fn time(&self, field: &str) -> Result<Millis, Rejection> {
        Millis::parse(self.str(field)?).map_err(|p| Rejection::field(&self.name(field), p))
    }

    fn opt_time(&self, field: &str) -> Result<Option<Millis>, Rejection> {
        match self.opt_str(field)? {
            None => Ok(None),
            Some(s) => Millis::parse(s)
                .map(Some)
                .map_err(|p| Rejection::field(&self.name(field), p)),
        }
    }

    fn text(&self, field: &str, min: usize, max: usize) -> Result<Option<String>, Rejection> {
        match self.opt_str(field)? {
            None => Ok(None),
            Some(s) => {
                if s.contains('\0') {
                    return Err(Rejection::field(&self.name(field), NUL));
                }
                let n = s.chars().count();
                if n < min || n > max {
                    let want = if min == 0 {
                        format!("at most {max}")
                    } else {
                        format!("{min} to {max}")
                    };
                    return Err(Rejection::field(
                        &self.name(field),
                        format_args!("must be {want} characters, not {n}"),
                    ));
                }
                Ok(Some(s.to_owned()))
            }
        }
    }

    fn name_field(&self, field: &str) -> Result<String, Rejection> {
        self.text(field, 1, 256)?
            .ok_or_else(|| Rejection::field(&self.name(field), "missing"))
    }

    fn object(&self, field: &str) -> Result<Option<Fields<'a>>, Rejection> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Object(obj)) => Ok(Some(Fields {
                obj,
                path: format!("{}.", self.name(field)),
            })),
            Some(v) => Err(Rejection::field(
                &self.name(field),
                format_args!("must be an object, not {}", type_name(v)),
            )),
        }
    }
}

/// Why a text holding U+0000 is refused: no store could keep it alike (PostgreSQL refuses
/// it in text), so it is refused before any store sees it (docs/events.md, "Field rules").
pub const NUL: &str = "holds a NUL character (U+0000), which no text may hold";

/// Checks the identifier rule: 1 to 128 characters from `A-Z a-z 0-9 . _ : -`.
pub fn check_id(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    let n = s.chars().count();
    if n > 128 {
        return Err(format!("must be at most 128 characters, not {n}"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        return Err(format!(
            "{} holds {c:?}; only A-Z a-z 0-9 . _ : - are allowed",
            show(s)
        ));
    }
    Ok(())
}

/// Checks the recipient rule (E.164); the rejection names `field`.
fn check_recipient(field: &str, s: &str) -> Result<(), Rejection> {
    if is_e164(s) {
        return Ok(());
    }
    Err(Rejection::field(
        field,
        format_args!(
            "{} is not an E.164 phone number (+, then 7 to 15 digits, not starting with 0)",
            show(s)
        ),
    ))
}

/// A message's `parts`: absent (or null) is 1; otherwise an integer from 1 to 255.
fn check_parts(v: Option<&Value>) -> Result<u8, Rejection> {
    match v.filter(|v| !v.is_null()) {
        None => Ok(1),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(p @ 1..=255) => Ok(p as u8),
            _ if n.is_f64() => Err(Rejection::field(
                "parts",
                format_args!("{n} is not an integer"),
            )),
            _ => Err(Rejection::field(
                "parts",
                format_args!("must be 1 to 255, not {n}"),
            )),
        },
        Some(v) => Err(Rejection::field(
            "parts",
            format_args!("must be an integer, not {}", type_name(v)),
        )),
    }
}

impl MessageEvent {
    /// A message event from its fields, held to the same rules, in the same order and
    /// with the same reasons, as a `message` line (docs/events.md, "`message`"): the ids,
    /// the recipient, then `parts` (absent or null is 1).
    pub fn checked(
        message_id: &str,
        campaign_id: &str,
        recipient: &str,
        parts: Option<&Value>,
        at: Millis,
    ) -> Result<MessageEvent, Rejection> {
        check_id(message_id).map_err(|p| Rejection::field("message_id", p))?;
        check_id(campaign_id).map_err(|p| Rejection::field("campaign_id", p))?;
        check_recipient("recipient", recipient)?;
        let parts = check_parts(parts)?;
        Ok(MessageEvent {
            message_id: message_id.to_owned(),
            campaign_id: campaign_id.to_owned(),
            recipient: recipient.to_owned(),
            parts,
            at,
        })
    }
}

/// `^\+[1-9][0-9]{6,14}$`.
pub fn is_e164(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 8
        && b.len() <= 16
        && b[0] == b'+'
        && (b'1'..=b'9').contains(&b[1])
        && b[2..].iter().all(u8::is_ascii_digit)
}

/// Checks the url rule: `http://` or `https://`, a non-empty host, no space or control
/// character, at most 2048 characters.
pub fn check_url(s: &str) -> Result<(), String> {
    let n = s.chars().count();
    if n > 2048 {
        return Err(format!("must be at most 2048 characters, not {n}"));
    }
    if let Some(c) = s.chars().find(|&c| c <= ' ' || c == '\u{7f}') {
        return Err(format!(
            "{} holds {c:?}; a URL has no space or control character",
            show(s)
        ));
    }
    let rest = if let Some(r) = s.strip_prefix("http://") {
        r
    } else if let Some(r) = s.strip_prefix("https://") {
        r
    } else {
        return Err(format!("{} must start with http:// or https://", show(s)));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = if host_port.starts_with('[') {
        host_port
            .split(']')
            .next()
            .map(|h| h.trim_start_matches('['))
            .unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    if host.is_empty() {
        return Err(format!("{} has no host", show(s)));
    }
    Ok(())
}

/// Parses and validates one NDJSON line (without its line ending) into an event.
///
/// Never panics, whatever the bytes. Every field is checked before the line is accepted,
/// so a rejection always names the first broken field.
pub fn parse_event(line: &[u8]) -> Result<Event, Rejection> {
    match parse_line(line)? {
        Parsed::Event(e) => Ok(e),
        Parsed::TrackedLink(_) => Err(Rejection::field(
            "type",
            "\"tracked_link\" lines are taken only by ingest (an export's tracked links)",
        )),
    }
}

/// What a line `ingest` takes holds: an event, or a tracked link of an export
/// (docs/events.md, "Export").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// An event.
    Event(Event),
    /// A tracked short link and what it stands for.
    TrackedLink(crate::store::TrackedLink),
}

/// Validates one line as [`parse_event`] does, and takes an export's `tracked_link`
/// lines too.
pub fn parse_line(line: &[u8]) -> Result<Parsed, Rejection> {
    let text = std::str::from_utf8(line).map_err(|e| {
        Rejection::new(format!(
            "not UTF-8 text (invalid byte at column {})",
            e.valid_up_to() + 1
        ))
    })?;
    let Strict(value) =
        serde_json::from_str(text).map_err(|e| Rejection::new(format!("not valid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(Rejection::new(format!(
            "not a JSON object but {}",
            type_name(&value)
        )));
    };
    let f = Fields {
        obj: &obj,
        path: String::new(),
    };
    let ty = f.str("type")?;
    if ty == "tracked_link" {
        let code = f.str("code")?;
        if code.is_empty() || code.len() > 64 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Rejection::field(
                "code",
                format_args!("{} is not 1 to 64 of A-Z a-z 0-9", show(code)),
            ));
        }
        return Ok(Parsed::TrackedLink(crate::store::TrackedLink {
            code: code.to_owned(),
            campaign_id: f.id("campaign_id")?,
            link_id: f.id("link_id")?,
            message_id: f.id("message_id")?,
            recipient: f.person("recipient")?,
        }));
    }
    let event = match ty {
        "campaign" => parse_campaign(&f).map(Event::Campaign),
        "contact" => Ok(Event::Contact(ContactEvent {
            list_id: f.id("list_id")?,
            recipient: f.recipient("recipient")?,
            name: f.text("name", 1, 256)?,
        })),
        "message" => {
            let message_id = f.id("message_id")?;
            let campaign_id = f.id("campaign_id")?;
            let recipient = f.person("recipient")?;
            let parts = check_parts(f.get("parts"))?;
            let at = f.time("at")?;
            Ok(Event::Message(MessageEvent {
                message_id,
                campaign_id,
                recipient,
                parts,
                at,
            }))
        }
        "status" => {
            let message_id = f.id("message_id")?;
            let name = f.str("status")?;
            let status: Status = name.parse().map_err(|()| {
                Rejection::field(
                    "status",
                    format_args!(
                        "{} is not a status (one of {})",
                        show(name),
                        Status::ALL.map(Status::as_str).join(", ")
                    ),
                )
            })?;
            let error_code = f.text("error_code", 0, 64)?;
            let at = f.time("at")?;
            Ok(Event::Status(StatusEvent {
                message_id,
                key: StatusKey {
                    status,
                    at,
                    error_code,
                },
                callback: None,
            }))
        }
        "click" => Ok(Event::Click(ClickEvent {
            campaign_id: f.id("campaign_id")?,
            link_id: f.id("link_id")?,
            recipient: f.person("recipient")?,
            at: f.time("at")?,
            user_agent: f.text("user_agent", 0, 1024)?,
            event_id: f.opt_id("event_id")?,
        })),
        other => Err(Rejection::field(
            "type",
            format_args!(
                "{} is not an event type (campaign, contact, message, status, click)",
                show(other)
            ),
        )),
    };
    event.map(Parsed::Event)
}

fn parse_campaign(f: &Fields<'_>) -> Result<CampaignEvent, Rejection> {
    let campaign_id = f.id("campaign_id")?;
    let name = f.name_field("name")?;
    let contact_list = match f.object("contact_list")? {
        None => None,
        Some(cl) => Some(ContactList {
            list_id: cl.id("list_id")?,
            name: cl.name_field("name")?,
        }),
    };
    let link_tracking = match f.get("link_tracking") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            return Err(Rejection::field(
                "link_tracking",
                format_args!("must be true or false, not {}", type_name(v)),
            ))
        }
    };
    let mut links: Vec<Link> = Vec::new();
    match f.get("links") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let Value::Object(obj) = item else {
                    return Err(Rejection::field(
                        &format!("links[{i}]"),
                        format_args!("must be an object, not {}", type_name(item)),
                    ));
                };
                let lf = Fields {
                    obj,
                    path: format!("links[{i}]."),
                };
                let link_id = lf.id("link_id")?;
                let url = lf.str("url")?;
                check_url(url).map_err(|p| Rejection::field(&lf.name("url"), p))?;
                if let Some(prev) = links.iter().find(|l| l.link_id == link_id) {
                    if prev.url != url {
                        return Err(Rejection::field(
                            &lf.name("url"),
                            format_args!(
                                "link {} is given two different urls in one event",
                                show(&link_id)
                            ),
                        ));
                    }
                    continue;
                }
                links.push(Link {
                    link_id,
                    url: url.to_owned(),
                });
            }
        }
        Some(v) => {
            return Err(Rejection::field(
                "links",
                format_args!("must be an array, not {}", type_name(v)),
            ))
        }
    }
    let created_at = f.opt_time("created_at")?;
    Ok(CampaignEvent {
        campaign_id,
        name,
        contact_list,
        link_tracking,
        links,
        created_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checked_message_has_the_reasons_of_a_message_line() {
        let at = Millis(0);
        for (id, recipient, parts) in [
            ("m 1", "+37120000001", "1"),
            ("m1", "+3712", "1"),
            ("m1", "+37120000001", "0"),
            ("m1", "+37120000001", "2.5"),
            ("m1", "+37120000001", "\"2\""),
        ] {
            let line = format!(
                r#"{{"type":"message","message_id":{id:?},"campaign_id":"c","recipient":{recipient:?},"parts":{parts},"at":"1970-01-01T00:00:00Z"}}"#
            );
            let from_line = parse_event(line.as_bytes()).unwrap_err();
            let v: Value = serde_json::from_str(parts).unwrap();
            let checked = MessageEvent::checked(id, "c", recipient, Some(&v), at).unwrap_err();
            assert_eq!(checked, from_line);
        }
        let ok = MessageEvent::checked("m1", "c", "+37120000001", Some(&Value::Null), at).unwrap();
        assert_eq!(ok.parts, 1);
        assert_eq!(Rejection::new("x").kind, RejectionKind::Invalid);
    }

    fn reason(line: &str) -> String {
        parse_event(line.as_bytes()).expect_err(line).reason
    }

    #[test]
    fn accepts_a_full_campaign() {
        let e = parse_event(br#"{"type":"campaign","campaign_id":"c1","name":"N","contact_list":{"list_id":"l","name":"L"},"link_tracking":true,"links":[{"link_id":"a","url":"https://x.example/a"},{"link_id":"a","url":"https://x.example/a"}],"created_at":"2026-03-01T08:00:00Z","extra":1}"#).unwrap();
        let Event::Campaign(c) = e else { panic!() };
        assert_eq!(c.links.len(), 1);
        assert!(c.link_tracking);
        assert_eq!(c.contact_list.unwrap().list_id, "l");
    }

    #[test]
    fn strict_json() {
        assert!(reason(
            r#"{"type":"contact","type":"contact","list_id":"l","recipient":"+37120000001"}"#
        )
        .contains("duplicate member"));
        assert!(reason(r#"{"type":"message","message_id":"m","campaign_id":"c","recipient":"+37120000001","parts":1e400,"at":"2026-03-01T08:00:00Z"}"#).contains("JSON"));
        assert!(
            reason(r#"{"type":"contact","list_id":"\ud800","recipient":"+37120000001"}"#)
                .contains("JSON")
        );
        assert!(
            reason(r#"{"type":"contact","list_id":NaN,"recipient":"+37120000001"}"#)
                .contains("JSON")
        );
        assert!(parse_event(b"{\"type\":\"contact\",\"list_id\":\"l\xff\"}")
            .unwrap_err()
            .reason
            .contains("UTF-8"));
        assert!(reason("[1]").contains("not a JSON object"));
        assert!(reason(r#"{"list_id":"l"}"#).starts_with("type: missing"));
    }

    #[test]
    fn field_rules_name_the_field() {
        let base = r#""type":"message","message_id":"m","campaign_id":"c","recipient":"+37120000001","at":"2026-03-01T08:00:00Z""#;
        assert!(parse_event(format!("{{{base}}}").as_bytes()).is_ok());
        assert!(parse_event(format!("{{{base},\"parts\":null}}").as_bytes()).is_ok());
        assert!(
            reason(&format!("{{{base},\"parts\":\"2\"}}")).starts_with("parts: must be an integer")
        );
        assert!(reason(&format!("{{{base},\"parts\":2.0}}"))
            .starts_with("parts: 2.0 is not an integer"));
        assert!(reason(&format!("{{{base},\"parts\":0}}")).starts_with("parts: must be 1 to 255"));
        assert!(reason(&format!("{{{base},\"parts\":256}}")).starts_with("parts: must be 1 to 255"));
        assert!(reason(&format!("{{{base},\"parts\":-1}}")).starts_with("parts: must be 1 to 255"));
        assert!(reason(r#"{"type":"message","message_id":"","campaign_id":"c","recipient":"+37120000001","at":"2026-03-01T08:00:00Z"}"#).starts_with("message_id: must not be empty"));
        assert!(reason(r#"{"type":"message","message_id":"a b","campaign_id":"c","recipient":"+37120000001","at":"2026-03-01T08:00:00Z"}"#).starts_with("message_id: "));
        assert!(reason(&format!(r#"{{"type":"message","message_id":"{}","campaign_id":"c","recipient":"+37120000001","at":"2026-03-01T08:00:00Z"}}"#, "x".repeat(129))).starts_with("message_id: must be at most 128"));
        for bad in [
            "+0123456789",
            "+123456",
            "+1234567890123456",
            "1234567890",
            "+12345a7890",
        ] {
            let line = format!(r#"{{"type":"contact","list_id":"l","recipient":"{bad}"}}"#);
            assert!(reason(&line).starts_with("recipient: "), "{bad}");
        }
        assert!(parse_event(br#"{"type":"contact","list_id":"l","recipient":"+1234567"}"#).is_ok());
        assert!(
            parse_event(br#"{"type":"contact","list_id":"l","recipient":"+123456789012345"}"#)
                .is_ok()
        );
        assert!(
            reason(r#"{"type":"contact","list_id":"l","recipient":"+37120000001","name":""}"#)
                .starts_with("name: must be 1 to 256")
        );
        assert!(reason(
            r#"{"type":"status","message_id":"m","status":"bounced","at":"2026-03-01T08:00:00Z"}"#
        )
        .starts_with("status: "));
        let long_code = format!(
            r#"{{"type":"status","message_id":"m","status":"sent","error_code":"{}","at":"2026-03-01T08:00:00Z"}}"#,
            "é".repeat(65)
        );
        assert!(reason(&long_code).starts_with("error_code: must be at most 64"));
        let ok_code = format!(
            r#"{{"type":"status","message_id":"m","status":"sent","error_code":"{}","at":"2026-03-01T08:00:00Z"}}"#,
            "é".repeat(64)
        );
        assert!(parse_event(ok_code.as_bytes()).is_ok());
        assert!(reason(
            r#"{"type":"status","message_id":"m","status":"sent","at":"2026-03-01T08:00:00"}"#
        )
        .starts_with("at: "));
        assert!(
            reason(r#"{"type":"campaign","campaign_id":"c","name":"n","links":{}}"#)
                .starts_with("links: must be an array")
        );
        assert!(reason(r#"{"type":"campaign","campaign_id":"c","name":"n","links":[{"link_id":"a","url":"ftp://x"}]}"#).starts_with("links[0].url: "));
        assert!(reason(r#"{"type":"campaign","campaign_id":"c","name":"n","links":[{"link_id":"a","url":"https://x/a"},{"link_id":"a","url":"https://x/b"}]}"#).starts_with("links[1].url: "));
        assert!(reason(
            r#"{"type":"campaign","campaign_id":"c","name":"n","contact_list":{"list_id":"l"}}"#
        )
        .starts_with("contact_list.name: missing"));
        assert!(reason(r#"{"type":"click","campaign_id":"c","link_id":"a","recipient":"+37120000001","at":"2026-03-01T08:00:00Z","event_id":""}"#).starts_with("event_id: "));
    }

    #[test]
    fn urls() {
        for ok in [
            "http://a",
            "https://shop.example/sale?x=1#f",
            "https://[::1]:8080/x",
            "https://u@h/",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "https://",
            "http:///path",
            "https://a b",
            "https://a\u{7f}",
            "mailto:x",
            "HTTPS://a",
            "https://:80/",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        assert!(check_url(&format!("https://a/{}", "x".repeat(2040))).is_err());
    }
}
