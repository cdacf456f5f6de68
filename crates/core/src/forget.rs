//! Forgetting a person (docs/rules.md, "Forgetting a person"): their phone number is
//! replaced, in every message, click and tracked link, by a random token that is not
//! derived from it, and their contacts are deleted. The token keeps what the report
//! needs: one person stays one person (unique clicks, clicks per recipient), and it
//! carries the person's country, so a store that takes an export of forgotten people
//! counts their countries as before.
//!
//! A token is `forgotten:<calling code or ->:<region>:<22 random base62 characters>`,
//! for example `forgotten:371:LV:8kV2mQ0xZr4TbN1wYc7pHd`. Drill-downs show it as
//! `forgotten`.

use std::fmt;

use serde::Serialize;

use crate::insights::Country;
use crate::store::StoreError;

/// What every token starts with.
pub const TOKEN_PREFIX: &str = "forgotten:";

/// What a drill-down shows in place of a forgotten person's number.
pub const SHOWN_AS: &str = "forgotten";

const RANDOM_CHARS: usize = 22;

/// Whether `recipient` is a forgotten person's token (and not a phone number).
pub fn is_token(recipient: &str) -> bool {
    token_country(recipient).is_some()
}

/// The country a token carries; `None` when `s` is no token.
pub fn token_country(s: &str) -> Option<Country> {
    let rest = s.strip_prefix(TOKEN_PREFIX)?;
    let (country, random) = rest.rsplit_once(':')?;
    if random.len() != RANDOM_CHARS || !random.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    Country::from_key(country)
}

/// A new token for a person of `country`, from the operating system's random source.
pub fn new_token(country: &Country) -> Result<String, StoreError> {
    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = format!("{TOKEN_PREFIX}{}:", country.key());
    let mut buf = [0u8; 64];
    let mut made = 0;
    while made < RANDOM_CHARS {
        getrandom::getrandom(&mut buf).map_err(|e| {
            StoreError::backend(
                "drawing a random token",
                std::io::Error::other(e.to_string()),
            )
        })?;
        // Rejection sampling: 248 = 4 × 62, so every character is equally likely.
        for b in buf.iter().filter(|b| **b < 248) {
            if made == RANDOM_CHARS {
                break;
            }
            out.push(BASE62[(*b % 62) as usize] as char);
            made += 1;
        }
    }
    Ok(out)
}

/// What a recipient column shows: the number, or [`SHOWN_AS`] for a token.
pub fn shown(recipient: &str) -> &str {
    if is_token(recipient) {
        SHOWN_AS
    } else {
        recipient
    }
}

/// What forgetting one number changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Forgotten {
    /// Messages whose recipient is now the token.
    pub messages: u64,
    /// Contacts deleted (each one a subscriber less for its list).
    pub contacts: u64,
    /// Clicks whose recipient is now the token.
    pub clicks: u64,
    /// Tracked links whose recipient is now the token.
    pub tracked_links: u64,
}

impl Forgotten {
    /// Adds another number's changes.
    pub fn add(&mut self, o: &Forgotten) {
        self.messages += o.messages;
        self.contacts += o.contacts;
        self.clicks += o.clicks;
        self.tracked_links += o.tracked_links;
    }
}

impl fmt::Display for Forgotten {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = |v: u64, one: &str, many: &str| format!("{v} {}", if v == 1 { one } else { many });
        write!(
            f,
            "{}, {}, {}, {}",
            n(self.messages, "message", "messages"),
            n(self.contacts, "contact", "contacts"),
            n(self.clicks, "click", "clicks"),
            n(self.tracked_links, "tracked link", "tracked links"),
        )
    }
}

/// A number as logs and messages may show it: the calling code and the last two
/// digits (`+371******01`).
pub fn masked(number: &str) -> String {
    let country = Country::of(number);
    let digits = number.strip_prefix('+').unwrap_or(number);
    let code = country.code.map(|c| c.to_string()).unwrap_or_default();
    let keep_end = 2.min(digits.len().saturating_sub(code.len()));
    let hidden = digits.len().saturating_sub(code.len() + keep_end);
    format!(
        "+{code}{}{}",
        "*".repeat(hidden),
        &digits[digits.len() - keep_end..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_a_country_and_are_random() {
        let lv = Country::of("+37120000001");
        let a = new_token(&lv).unwrap();
        let b = new_token(&lv).unwrap();
        assert_ne!(a, b, "two tokens for the same country differ");
        assert!(a.starts_with("forgotten:371:LV:"), "{a}");
        assert_eq!(a.len(), "forgotten:371:LV:".len() + RANDOM_CHARS);
        assert_eq!(token_country(&a), Some(lv));
        assert!(is_token(&a));
        assert_eq!(shown(&a), "forgotten");
        let unknown = Country::of("+99912345678");
        let t = new_token(&unknown).unwrap();
        assert_eq!(token_country(&t), Some(unknown));
    }

    #[test]
    fn numbers_and_near_misses_are_not_tokens() {
        for s in [
            "+37120000001",
            "forgotten",
            "forgotten:371:LV:short",
            "forgotten:371:LV:8kV2mQ0xZr4TbN1wYc7pH!",
            "forgotten:371:8kV2mQ0xZr4TbN1wYc7pHd",
            "Forgotten:371:LV:8kV2mQ0xZr4TbN1wYc7pHd",
        ] {
            assert!(!is_token(s), "{s}");
            assert_eq!(shown(s), s);
        }
        assert!(is_token("forgotten:371:LV:8kV2mQ0xZr4TbN1wYc7pHd"));
        assert!(is_token("forgotten:-:ZZ:8kV2mQ0xZr4TbN1wYc7pHd"));
    }

    #[test]
    fn masked_numbers_keep_the_calling_code_and_two_digits() {
        assert_eq!(masked("+37120000001"), "+371******01");
        assert_eq!(masked("+12025550123"), "+1********23");
        assert_eq!(masked("+99912345678"), "+*********78");
    }

    #[test]
    fn counts_read_as_a_sentence() {
        let f = Forgotten {
            messages: 1,
            contacts: 2,
            clicks: 0,
            tracked_links: 1,
        };
        assert_eq!(
            f.to_string(),
            "1 message, 2 contacts, 0 clicks, 1 tracked link"
        );
    }
}
