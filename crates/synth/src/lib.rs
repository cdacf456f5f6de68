//! Realistic synthetic SMS campaigns, for smsreport's demo, tests and benchmarks.
//!
//! This is demo data, not rules: it lives outside `smsreport-core`, which it uses only
//! for [`Millis`]. Its tests check that every line it writes is a valid event of
//! `smsreport-core`.
//!
//! [`events`] turns a [`SynthConfig`] into a stream of NDJSON lines (the events of
//! docs/events.md), the same
//! for the same config on every machine and every run. The stream is produced lazily in
//! constant memory, however many messages are asked for: nothing is collected, and the
//! only buffer is a reorder window of at most [`REORDER_WINDOW`] lines.
//!
//! What a campaign of N messages looks like:
//!
//! - one `campaign` event (a contact list, link tracking on, three links);
//! - the list's contacts: about 99% of the N recipients plus N/50 subscribers who got no
//!   message, one in ten with a name;
//! - N `message` events spread over three days, one in five with 2 or 3 parts;
//! - status receipts in realistic proportions: about 86% delivered (most of them after a
//!   `sent`), 4% sent with no final receipt, 2% still en route, 1% with no receipt at all
//!   (queued), 3% routing errors, 2% expired (a day or two later), 1% rejected, 1% unknown;
//!   failures carry gateway error codes;
//! - about 3% of messages get one receipt twice, and about 2% get one receipt late, a
//!   quarter of those even before the `message` line itself (which docs/events.md, "Ordering", allows);
//! - clicks on the three links from about 12% of recipients, some several times and on
//!   several links, spread over about three months after the send, some with an
//!   `event_id`, from phone browsers; and link previews by messengers and chat apps
//!   (bots), about 8% of all clicks.
//!
//! Events come roughly in time order: sending and receipts first (with the clicks of the
//! first days), then the later clicks week by week.
//!
//! ```
//! use smsreport_synth::{events, SynthConfig};
//! use smsreport_core::Millis;
//!
//! let cfg = SynthConfig {
//!     campaign_id: "autumn".into(),
//!     name: "Autumn sale".into(),
//!     messages: 100,
//!     seed: 7,
//!     start: Millis::from_utc(2026, 9, 1, 8, 0, 0, 0).unwrap(),
//! };
//! let first = events(&cfg).next().unwrap();
//! assert!(first.starts_with(r#"{"type":"campaign","campaign_id":"autumn""#));
//! ```

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use serde::Serialize;

use smsreport_core::Millis;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthConfig {
    /// The campaign's id; must meet the identifier rule (1 to 128 of `A-Z a-z 0-9 . _ : -`).
    /// Message, list and click ids are derived from it (its first 96 characters).
    pub campaign_id: String,
    /// The campaign's name, 1 to 256 characters.
    pub name: String,
    /// How many `message` events.
    pub messages: u64,
    /// The same seed gives the same stream.
    pub seed: u64,
    /// When sending starts; clicks go on for about three months after the send.
    pub start: Millis,
}

/// The most lines held back at once to put the stream in time order.
pub const REORDER_WINDOW: usize = 16_384;

/// The stream of NDJSON lines (without line endings) of a synthetic campaign.
pub fn events(cfg: &SynthConfig) -> Synth {
    Synth::new(cfg)
}

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// Messages are submitted over this long.
const SEND_WINDOW: i64 = 3 * DAY;
/// Clicks before `start + CLICK_CUTOFF` are interleaved with the sending; later ones
/// follow, one week at a time.
const CLICK_CUTOFF: i64 = SEND_WINDOW + DAY;
const CLICK_WEEK: i64 = 7 * DAY;
/// No click comes later than this after its message.
const CLICK_HORIZON: i64 = 90 * DAY;
/// Weekly passes over the messages for the later clicks (covers the horizon).
const CLICK_WEEKS: u64 = (CLICK_HORIZON / CLICK_WEEK + 2) as u64;

// Salts that give each aspect of a message its own random stream, so that (for example)
// the later clicks can be recomputed without replaying the receipts.
const SALT_BASICS: u64 = 0x6261_7369_6373_0001;
const SALT_RECEIPTS: u64 = 0x7265_6365_6970_0002;
const SALT_CLICKS: u64 = 0x636c_6963_6b73_0003;
const SALT_CONTACT: u64 = 0x636f_6e74_6163_0004;
const SALT_IDS: u64 = 0x6964_7300_0000_0005;
const SALT_EVENT_IDS: u64 = 0x6576_656e_7473_0006;
const SALT_NUMBERS: u64 = 0x6e75_6d62_6572_0007;

/// SplitMix64's output function: a bijection on u64 that mixes every bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SplitMix64: small, fast, and good enough for synthetic data.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    /// The random stream of one aspect (`salt`) of one item (`index`).
    fn of(seed: u64, salt: u64, index: u64) -> Rng {
        Rng(mix(mix(seed ^ salt) ^ index))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n); 0 when n is 0.
    fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in [lo, hi).
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below(hi.saturating_sub(lo).max(1) as u64) as i64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// An index drawn with the given weights, which sum to 1 (rounding falls to the last).
    fn weighted(&mut self, weights: &[f64]) -> usize {
        let mut u = self.unit();
        for (i, w) in weights.iter().enumerate() {
            if u < *w {
                return i;
            }
            u -= w;
        }
        weights.len() - 1
    }
}

/// What becomes of a message in the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Delivered,
    SentOnly,
    Enroute,
    Queued,
    Routing,
    Expired,
    Rejected,
    Unknown,
}

/// The fates and their shares; they add up to 1.
const FATES: [(Fate, f64); 8] = [
    (Fate::Delivered, 0.86),
    (Fate::SentOnly, 0.04),
    (Fate::Enroute, 0.02),
    (Fate::Queued, 0.01),
    (Fate::Routing, 0.03),
    (Fate::Expired, 0.02),
    (Fate::Rejected, 0.01),
    (Fate::Unknown, 0.01),
];

const ROUTING_CODES: [&str; 3] = ["001", "011", "30005"];
const EXPIRED_CODES: [&str; 3] = ["027", "30003", "30036"];
const REJECTED_CODES: [&str; 4] = ["069", "30004", "30006", "30007"];
const UNKNOWN_CODES: [&str; 2] = ["255", "30008"];

/// Share of clicks on each of the three links, most prominent first.
const LINK_WEIGHTS: [f64; 3] = [0.55, 0.30, 0.15];

const PHONE_AGENTS: [&str; 6] = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/123.0.6312.52 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 12; Redmi Note 11) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-A546B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
];

const BOT_AGENTS: [&str; 4] = [
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "WhatsApp/2.23.20.0",
    "TelegramBot (like TwitterBot)",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
];

const FIRST_NAMES: [&str; 12] = [
    "Anna",
    "Jānis",
    "Līga",
    "Mārtiņš",
    "Olga",
    "Pēteris",
    "Emma",
    "Lukas",
    "Sofia",
    "Oliver",
    "Zoë",
    "Amelia",
];
const LAST_INITIALS: &str = "ABKLMOPRSTVZ";

/// One NDJSON event, as written.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Out<'a> {
    Campaign {
        campaign_id: &'a str,
        name: &'a str,
        contact_list: ListOut<'a>,
        link_tracking: bool,
        links: Vec<LinkOut<'a>>,
        created_at: String,
    },
    Contact {
        list_id: &'a str,
        recipient: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<&'a str>,
    },
    Message {
        message_id: &'a str,
        campaign_id: &'a str,
        recipient: &'a str,
        #[serde(skip_serializing_if = "is_one")]
        parts: u8,
        at: String,
    },
    Status {
        message_id: &'a str,
        status: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        error_code: Option<&'a str>,
        at: String,
    },
    Click {
        campaign_id: &'a str,
        link_id: &'a str,
        recipient: &'a str,
        at: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        user_agent: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        event_id: Option<&'a str>,
    },
}

#[derive(Serialize)]
struct ListOut<'a> {
    list_id: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct LinkOut<'a> {
    link_id: &'a str,
    url: &'a str,
}

fn is_one(parts: &u8) -> bool {
    *parts == 1
}

impl Out<'_> {
    fn line(&self) -> String {
        // Plain structs of strings, numbers and booleans always serialize.
        serde_json::to_string(self).expect("a synthetic event serializes")
    }
}

/// An RFC 3339 timestamp, kept within the range docs/events.md ("Timestamps") allows.
fn ts(ms: i64) -> String {
    Millis(ms.clamp(Millis::MIN.0, Millis::MAX.0)).to_string()
}

/// A line held in the reorder window, ordered by when it should appear.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    key: i64,
    seq: u64,
    line: String,
}

/// A click, before it is written.
#[derive(Debug, Clone)]
struct Click {
    at: i64,
    link: usize,
    agent: Option<&'static str>,
    event_id: Option<String>,
}

#[derive(Debug, Clone, Copy)]
enum Stage {
    Campaign,
    Contacts { next: u64 },
    Sending { next: u64 },
    LaterClicks { week: u64, next: u64 },
    Done,
}

/// The stream of a synthetic campaign; see [`events`].
#[derive(Debug)]
pub struct Synth {
    cfg: SynthConfig,
    /// What ids are derived from.
    prefix: String,
    list_id: String,
    links: [(String, String); 3],
    stage: Stage,
    window: BinaryHeap<Reverse<Pending>>,
    seq: u64,
}

impl Synth {
    fn new(cfg: &SynthConfig) -> Synth {
        let prefix: String = cfg.campaign_id.chars().take(96).collect();
        let slug = prefix.to_ascii_lowercase().replace([':', '.', '_'], "-");
        let links = [
            (
                "offer".to_owned(),
                format!("https://shop.example/{slug}?utm_source=sms&utm_campaign={slug}"),
            ),
            (
                "catalog".to_owned(),
                format!(
                    "https://shop.example/catalog/new-arrivals?utm_source=sms&utm_campaign={slug}"
                ),
            ),
            (
                "stores".to_owned(),
                "https://shop.example/stores".to_owned(),
            ),
        ];
        Synth {
            list_id: format!("{prefix}.subscribers"),
            prefix,
            links,
            cfg: cfg.clone(),
            stage: Stage::Campaign,
            window: BinaryHeap::new(),
            seq: 0,
        }
    }

    fn seed(&self) -> u64 {
        self.cfg.seed
    }

    fn start(&self) -> i64 {
        self.cfg.start.0
    }

    fn campaign_line(&self) -> String {
        let list_name: String = format!("Subscribers: {}", self.cfg.name)
            .chars()
            .take(256)
            .collect();
        Out::Campaign {
            campaign_id: &self.cfg.campaign_id,
            name: &self.cfg.name,
            contact_list: ListOut {
                list_id: &self.list_id,
                name: &list_name,
            },
            link_tracking: true,
            links: self
                .links
                .iter()
                .map(|(id, url)| LinkOut { link_id: id, url })
                .collect(),
            created_at: ts(self.start() - 2 * HOUR),
        }
        .line()
    }

    /// The phone number of recipient `index`: distinct for distinct indexes up to
    /// 30 million (Latvian, German and British mobile numbers in turn).
    fn recipient(&self, index: u64) -> String {
        let j = index / 3;
        let country = index % 3;
        // j ↦ (j·a + b) mod space is a bijection on 0..space, as `a` is prime to 10.
        let scramble = |space: u64| {
            let b = mix(self.seed() ^ SALT_NUMBERS ^ country) % space;
            ((j % space) * (7_919_317 % space) % space + b) % space
        };
        match country {
            0 => format!("+3712{:07}", scramble(10_000_000)),
            1 => format!("+49151{:08}", scramble(100_000_000)),
            _ => format!("+447{:09}", scramble(1_000_000_000)),
        }
    }

    fn message_id(&self, index: u64) -> String {
        format!(
            "{}.{:016x}",
            self.prefix,
            mix(mix(self.seed() ^ SALT_IDS) ^ index)
        )
    }

    fn click_event_id(&self, index: u64, click: u64) -> String {
        format!(
            "{}.k{:016x}",
            self.prefix,
            mix(mix(self.seed() ^ SALT_EVENT_IDS) ^ index.wrapping_mul(8).wrapping_add(click))
        )
    }

    /// The contact line of subscriber `index`, or `None` for a recipient not on the list.
    fn contact_line(&self, index: u64) -> Option<String> {
        let mut rng = Rng::of(self.seed(), SALT_CONTACT, index);
        if index < self.cfg.messages && rng.chance(0.01) {
            return None;
        }
        let name = rng.chance(0.10).then(|| {
            let first = rng.pick(&FIRST_NAMES);
            let initial =
                LAST_INITIALS.as_bytes()[rng.below(LAST_INITIALS.len() as u64) as usize] as char;
            format!("{first} {initial}.")
        });
        let recipient = self.recipient(index);
        Some(
            Out::Contact {
                list_id: &self.list_id,
                recipient: &recipient,
                name: name.as_deref(),
            }
            .line(),
        )
    }

    /// When message `index` is submitted, its fate and its parts.
    fn basics(&self, index: u64) -> (i64, Fate, u8) {
        let n = self.cfg.messages.max(1);
        let spacing = (SEND_WINDOW as u64 / n).max(1) as i64;
        let base = (index as u128 * SEND_WINDOW as u128 / n as u128) as i64;
        let mut rng = Rng::of(self.seed(), SALT_BASICS, index);
        let at = self.start() + base + rng.range(0, spacing);
        let fate = FATES[rng.weighted(&FATES.map(|(_, w)| w))].0;
        let parts = match rng.weighted(&[0.80, 0.15, 0.05]) {
            0 => 1,
            1 => 2,
            _ => 3,
        };
        (at, fate, parts)
    }

    /// The receipts of a message submitted at `at`: (status, error code, time).
    fn receipts(
        at: i64,
        fate: Fate,
        rng: &mut Rng,
    ) -> Vec<(&'static str, Option<&'static str>, i64)> {
        let mut out = Vec::with_capacity(3);
        let sent = at + rng.range(SECOND, 6 * SECOND);
        match fate {
            Fate::Delivered => {
                if rng.chance(0.85) {
                    out.push(("sent", None, sent));
                }
                let delay = match rng.weighted(&[0.90, 0.09, 0.01]) {
                    0 => rng.range(2 * SECOND, MINUTE),
                    1 => rng.range(MINUTE, 30 * MINUTE),
                    _ => rng.range(30 * MINUTE, 6 * HOUR),
                };
                out.push(("delivered", None, sent + delay));
            }
            Fate::SentOnly => out.push(("sent", None, sent)),
            Fate::Enroute => out.push(("enroute", None, at + rng.range(SECOND, 4 * SECOND))),
            Fate::Queued => {}
            Fate::Routing => {
                if rng.chance(0.5) {
                    out.push(("sent", None, sent));
                }
                out.push((
                    "failed_routing",
                    Some(*rng.pick(&ROUTING_CODES)),
                    sent + rng.range(SECOND, 2 * MINUTE),
                ));
            }
            Fate::Expired => {
                out.push((if rng.chance(0.7) { "sent" } else { "enroute" }, None, sent));
                out.push((
                    "failed_expired",
                    Some(*rng.pick(&EXPIRED_CODES)),
                    at + rng.range(DAY, 2 * DAY),
                ));
            }
            Fate::Rejected => {
                if rng.chance(0.6) {
                    out.push(("sent", None, sent));
                }
                out.push((
                    "failed_rejected",
                    Some(*rng.pick(&REJECTED_CODES)),
                    sent + rng.range(SECOND, 5 * MINUTE),
                ));
            }
            Fate::Unknown => {
                if rng.chance(0.5) {
                    out.push(("sent", None, sent));
                }
                let code = rng.chance(0.5).then(|| *rng.pick(&UNKNOWN_CODES));
                out.push(("unknown", code, sent + rng.range(MINUTE, 12 * HOUR)));
            }
        }
        out
    }

    /// Every click of message `index` (submitted at `at`), bots' link previews included.
    fn clicks(&self, index: u64, at: i64, fate: Fate) -> Vec<Click> {
        let p = match fate {
            Fate::Delivered => 0.14,
            Fate::SentOnly => 0.08,
            _ => return Vec::new(),
        };
        let mut rng = Rng::of(self.seed(), SALT_CLICKS, index);
        let preview = rng.chance(0.02);
        let person = rng.chance(p);
        if !preview && !person {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut k = 0u64;
        let mut event_id = |rng: &mut Rng| {
            k += 1;
            rng.chance(0.4).then(|| self.click_event_id(index, k))
        };
        if preview {
            out.push(Click {
                at: at + rng.range(10 * SECOND, 5 * MINUTE),
                link: rng.weighted(&LINK_WEIGHTS),
                agent: Some(*rng.pick(&BOT_AGENTS)),
                event_id: event_id(&mut rng),
            });
        }
        if person {
            let agent = (!rng.chance(0.05)).then(|| *rng.pick(&PHONE_AGENTS));
            let count = match rng.weighted(&[0.62, 0.22, 0.10, 0.06]) {
                0 => 1,
                1 => 2,
                2 => 3,
                _ => rng.range(4, 7),
            };
            let last = at + CLICK_HORIZON;
            let mut t = at
                + match rng.weighted(&[0.55, 0.25, 0.20]) {
                    0 => rng.range(MINUTE, 6 * HOUR),
                    1 => rng.range(6 * HOUR, 7 * DAY),
                    _ => rng.range(7 * DAY, 80 * DAY),
                };
            let mut link = rng.weighted(&LINK_WEIGHTS);
            for n in 0..count {
                if n > 0 {
                    t += match rng.weighted(&[0.5, 0.3, 0.2]) {
                        0 => rng.range(MINUTE, HOUR),
                        1 => rng.range(HOUR, 7 * DAY),
                        _ => rng.range(7 * DAY, 45 * DAY),
                    };
                    if !rng.chance(0.55) {
                        link = rng.weighted(&LINK_WEIGHTS);
                    }
                }
                let at = t.min(last - rng.range(0, HOUR));
                out.push(Click {
                    at,
                    link,
                    agent,
                    event_id: event_id(&mut rng),
                });
            }
        }
        out
    }

    fn click_line(&self, index: u64, click: &Click) -> String {
        let recipient = self.recipient(index);
        Out::Click {
            campaign_id: &self.cfg.campaign_id,
            link_id: &self.links[click.link].0,
            recipient: &recipient,
            at: ts(click.at),
            user_agent: click.agent,
            event_id: click.event_id.as_deref(),
        }
        .line()
    }

    fn hold(&mut self, key: i64, line: String) {
        self.seq += 1;
        self.window.push(Reverse(Pending {
            key,
            seq: self.seq,
            line,
        }));
    }

    fn release(&mut self) -> Option<String> {
        self.window.pop().map(|Reverse(p)| p.line)
    }

    /// Puts message `index`, its receipts and its early clicks into the window.
    fn hold_message(&mut self, index: u64) {
        let (at, fate, parts) = self.basics(index);
        let message_id = self.message_id(index);
        let recipient = self.recipient(index);
        let message = Out::Message {
            message_id: &message_id,
            campaign_id: &self.cfg.campaign_id,
            recipient: &recipient,
            parts,
            at: ts(at),
        }
        .line();
        self.hold(at, message);

        let mut rng = Rng::of(self.seed(), SALT_RECEIPTS, index);
        let receipts = Synth::receipts(at, fate, &mut rng);
        let late = rng
            .chance(0.02)
            .then(|| rng.below(receipts.len() as u64) as usize);
        let before_message = rng.chance(0.25);
        let duplicate = rng
            .chance(0.03)
            .then(|| rng.below(receipts.len() as u64) as usize);
        for (i, (status, error_code, when)) in receipts.iter().enumerate() {
            let line = Out::Status {
                message_id: &message_id,
                status,
                error_code: *error_code,
                at: ts(*when),
            }
            .line();
            let key = if late == Some(i) {
                if before_message {
                    at - 1
                } else {
                    when + rng.range(HOUR, 36 * HOUR)
                }
            } else {
                *when
            };
            if duplicate == Some(i) {
                let again = key + rng.range(SECOND, 10 * MINUTE);
                self.hold(again, line.clone());
            }
            self.hold(key, line);
        }

        let cutoff = self.start() + CLICK_CUTOFF;
        for click in self.clicks(index, at, fate) {
            if click.at < cutoff {
                let line = self.click_line(index, &click);
                self.hold(click.at, line);
            }
        }
    }

    /// The bounds of a week of later clicks.
    fn week(&self, week: u64) -> (i64, i64) {
        let lo = self.start() + CLICK_CUTOFF + week as i64 * CLICK_WEEK;
        let hi = if week + 1 >= CLICK_WEEKS {
            i64::MAX
        } else {
            lo + CLICK_WEEK
        };
        (lo, hi)
    }

    #[cfg(test)]
    fn window_len(&self) -> usize {
        self.window.len()
    }
}

impl Iterator for Synth {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        let n = self.cfg.messages;
        loop {
            match self.stage {
                Stage::Campaign => {
                    self.stage = Stage::Contacts { next: 0 };
                    return Some(self.campaign_line());
                }
                Stage::Contacts { next } => {
                    if next >= n + n / 50 {
                        self.stage = Stage::Sending { next: 0 };
                        continue;
                    }
                    self.stage = Stage::Contacts { next: next + 1 };
                    if let Some(line) = self.contact_line(next) {
                        return Some(line);
                    }
                }
                Stage::Sending { next } => {
                    if next < n {
                        let (at, _, _) = self.basics(next);
                        let due = self.window.peek().is_some_and(|Reverse(p)| p.key <= at);
                        if due || self.window.len() >= REORDER_WINDOW {
                            return self.release();
                        }
                        self.hold_message(next);
                        self.stage = Stage::Sending { next: next + 1 };
                    } else if let Some(line) = self.release() {
                        return Some(line);
                    } else {
                        self.stage = Stage::LaterClicks { week: 0, next: 0 };
                    }
                }
                Stage::LaterClicks { week, next } => {
                    if week >= CLICK_WEEKS {
                        self.stage = Stage::Done;
                        continue;
                    }
                    if next < n {
                        if self.window.len() >= REORDER_WINDOW {
                            return self.release();
                        }
                        let (lo, hi) = self.week(week);
                        let (at, fate, _) = self.basics(next);
                        for click in self.clicks(next, at, fate) {
                            if (lo..hi).contains(&click.at) {
                                let line = self.click_line(next, &click);
                                self.hold(click.at, line);
                            }
                        }
                        self.stage = Stage::LaterClicks {
                            week,
                            next: next + 1,
                        };
                    } else if let Some(line) = self.release() {
                        return Some(line);
                    } else {
                        self.stage = Stage::LaterClicks {
                            week: week + 1,
                            next: 0,
                        };
                    }
                }
                Stage::Done => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap, HashSet};

    use super::*;
    use smsreport_core::engine::is_bot;
    use smsreport_core::event::{check_id, is_e164, parse_event, Event};
    use smsreport_core::status::{Row, Status, StatusKey};

    fn cfg(messages: u64, seed: u64) -> SynthConfig {
        SynthConfig {
            campaign_id: "spring-sale".into(),
            name: "Spring sale".into(),
            messages,
            seed,
            start: Millis::from_utc(2026, 3, 2, 8, 0, 0, 0).unwrap(),
        }
    }

    #[test]
    fn every_line_is_a_valid_event_and_the_campaign_comes_first() {
        let lines: Vec<String> = events(&cfg(2_000, 1)).collect();
        for (i, line) in lines.iter().enumerate() {
            if let Err(r) = parse_event(line.as_bytes()) {
                panic!("line {}: {r}: {line}", i + 1);
            }
        }
        assert!(
            matches!(parse_event(lines[0].as_bytes()), Ok(Event::Campaign(c)) if c.links.len() == 3 && c.link_tracking)
        );
    }

    #[test]
    fn no_messages_is_just_the_campaign() {
        assert_eq!(events(&cfg(0, 1)).count(), 1);
    }

    #[test]
    fn the_same_seed_gives_the_same_stream() {
        let a: Vec<String> = events(&cfg(1_000, 42)).collect();
        let b: Vec<String> = events(&cfg(1_000, 42)).collect();
        let c: Vec<String> = events(&cfg(1_000, 43)).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn recipients_and_message_ids_are_distinct_and_valid() {
        let s = events(&cfg(0, 9));
        let mut numbers = HashSet::new();
        let mut ids = HashSet::new();
        for i in 0..300_000 {
            let r = s.recipient(i);
            assert!(is_e164(&r), "{r}");
            assert!(numbers.insert(r));
            let id = s.message_id(i);
            assert!(check_id(&id).is_ok(), "{id}");
            assert!(ids.insert(id));
        }
    }

    #[test]
    fn the_reorder_window_stays_bounded() {
        // Many messages in a short window fill the reorder buffer; it must not grow past it.
        let mut s = events(&cfg(60_000, 3));
        let mut lines = 0u64;
        let mut most = 0;
        while s.next().is_some() {
            lines += 1;
            most = most.max(s.window_len());
        }
        assert!(most <= REORDER_WINDOW + 16, "{most}");
        assert!(lines > 120_000, "{lines}");
    }

    /// Counts what a reader of the stream sees, applying the rule for the current status
    /// (the greatest status key; docs/rules.md, "The current status") to the receipts of
    /// each message.
    #[derive(Default)]
    struct Tally {
        messages: u64,
        rows: HashMap<Row, u64>,
        multi_part: u64,
        duplicate_receipts: u64,
        receipts_before_message: u64,
        failures_without_code: u64,
        contacts: u64,
        named_contacts: u64,
        human_clicks: u64,
        bot_clicks: u64,
        clickers: HashSet<String>,
        recipient_links: HashSet<(String, String)>,
        months: BTreeSet<String>,
        first_click: i64,
        last_click: i64,
        with_event_id: u64,
        out_of_order: u64,
    }

    fn tally(c: &SynthConfig) -> Tally {
        let mut t = Tally {
            first_click: i64::MAX,
            last_click: i64::MIN,
            ..Tally::default()
        };
        let mut seen_lines = HashSet::new();
        let mut messages_seen = HashSet::new();
        let mut current: HashMap<String, StatusKey> = HashMap::new();
        let mut message_ids = Vec::new();
        let mut latest = i64::MIN;
        for line in events(c) {
            let event = parse_event(line.as_bytes()).unwrap();
            let first_time = seen_lines.insert(line.clone());
            match event {
                Event::Campaign(_) => {}
                Event::Contact(e) => {
                    t.contacts += 1;
                    t.named_contacts += e.name.is_some() as u64;
                }
                Event::Message(m) => {
                    t.messages += 1;
                    t.multi_part += (m.parts > 1) as u64;
                    if m.at.0 + HOUR < latest {
                        t.out_of_order += 1;
                    }
                    latest = latest.max(m.at.0);
                    messages_seen.insert(m.message_id.clone());
                    message_ids.push(m.message_id);
                }
                Event::Status(s) => {
                    if !first_time {
                        t.duplicate_receipts += 1;
                    }
                    if !messages_seen.contains(&s.message_id) {
                        t.receipts_before_message += 1;
                    }
                    if s.key.status.phase() == 3
                        && s.key.status != Status::Unknown
                        && s.key.status != Status::Delivered
                        && s.key.error_code.is_none()
                    {
                        t.failures_without_code += 1;
                    }
                    let e = current.entry(s.message_id).or_insert_with(|| s.key.clone());
                    if s.key > *e {
                        *e = s.key;
                    }
                }
                Event::Click(k) => {
                    if is_bot(k.user_agent.as_deref()) {
                        t.bot_clicks += 1;
                        continue;
                    }
                    t.human_clicks += 1;
                    t.with_event_id += k.event_id.is_some() as u64;
                    t.clickers.insert(k.recipient.clone());
                    t.recipient_links.insert((k.recipient, k.link_id));
                    t.months.insert(k.at.month().to_string());
                    t.first_click = t.first_click.min(k.at.0);
                    t.last_click = t.last_click.max(k.at.0);
                }
            }
        }
        for id in message_ids {
            let row = current.get(&id).map_or(Row::Queued, |k| k.status.row());
            *t.rows.entry(row).or_default() += 1;
        }
        t
    }

    fn share(part: u64, whole: u64) -> f64 {
        part as f64 / whole as f64
    }

    #[test]
    fn ten_thousand_messages_look_like_a_real_campaign() {
        let c = cfg(10_000, 2026);
        let t = tally(&c);
        assert_eq!(t.messages, 10_000);
        let row = |r: Row| share(t.rows.get(&r).copied().unwrap_or(0), t.messages);
        let bounds = [
            (Row::Delivered, 0.80, 0.92),
            (Row::Sent, 0.025, 0.055),
            (Row::Undelivered, 0.012, 0.03),
            (Row::Queued, 0.004, 0.018),
            (Row::Routing, 0.02, 0.04),
            (Row::Expired, 0.012, 0.03),
            (Row::Rejected, 0.004, 0.018),
            (Row::Other, 0.004, 0.018),
        ];
        for (r, lo, hi) in bounds {
            assert!(
                (lo..=hi).contains(&row(r)),
                "{r}: {} not in {lo}..={hi}",
                row(r)
            );
        }
        assert_eq!(t.failures_without_code, 0);
        assert!(
            (0.10..=0.30).contains(&share(t.multi_part, t.messages)),
            "multi-part {}",
            t.multi_part
        );

        // About 3% of messages get a receipt twice; some receipts come before their message.
        assert!(
            (0.02..=0.045).contains(&share(t.duplicate_receipts, t.messages)),
            "dups {}",
            t.duplicate_receipts
        );
        assert!(
            (1..=100).contains(&t.receipts_before_message),
            "early {}",
            t.receipts_before_message
        );

        // The list: about as many contacts as messages, a few with names.
        assert!(
            (0.95..=1.05).contains(&share(t.contacts, t.messages)),
            "contacts {}",
            t.contacts
        );
        assert!(
            (0.05..=0.15).contains(&share(t.named_contacts, t.contacts)),
            "named {}",
            t.named_contacts
        );

        // 10-15% of recipients click, some more than once or on several links; bots ~8%.
        let clickers = share(t.clickers.len() as u64, t.messages);
        assert!((0.10..=0.15).contains(&clickers), "clickers {clickers}");
        assert!(t.human_clicks as usize > t.recipient_links.len());
        assert!(t.recipient_links.len() > t.clickers.len());
        let bots = share(t.bot_clicks, t.bot_clicks + t.human_clicks);
        assert!((0.05..=0.11).contains(&bots), "bots {bots}");
        assert!(t.with_event_id > 0 && t.with_event_id < t.human_clicks);

        // Clicks go on for two to three months after the send, over three or four
        // calendar months.
        let span_days = (t.last_click - t.first_click) / DAY;
        assert!((55..=95).contains(&span_days), "span {span_days} days");
        assert!((3..=4).contains(&t.months.len()), "{:?}", t.months);

        // Messages come in time order (within the reorder window's reach).
        assert_eq!(t.out_of_order, 0);
    }
}
