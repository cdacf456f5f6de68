//! Form decoding: the query strings and `application/x-www-form-urlencoded` bodies that
//! Kannel, Jasmin and Twilio callbacks (and `?campaign_id=`) arrive in.

use crate::event::Rejection;

/// Decoded form parameters (`a=1&b=x+y%21`), in order. A name given twice keeps both
/// values; [`Params::get`] answers the first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// Decodes `application/x-www-form-urlencoded` text: pairs split at `&`, name and
    /// value at the first `=`, `+` is a space, `%XX` a byte (a `%` not followed by two hex
    /// digits stays as it is). A leading `?` is dropped. Decoded bytes must be UTF-8.
    pub fn parse(text: &str) -> Result<Params, Rejection> {
        let text = text.strip_prefix('?').unwrap_or(text);
        let mut out = Vec::new();
        for pair in text.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(name)?;
            let value = decode(value).map_err(|r| Rejection::new(format!("{name}: {r}")))?;
            out.push((name, value));
        }
        Ok(Params(out))
    }

    /// The first value of `name` (exact, case-sensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name` that is not empty.
    pub(super) fn value(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// Adds the pairs of `other` after these.
    pub fn extend(&mut self, other: Params) {
        self.0.extend(other.0);
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode(s: &str) -> Result<String, Rejection> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|e| {
        Rejection::new(format!(
            "not UTF-8 once decoded (invalid byte at {})",
            e.utf8_error().valid_up_to() + 1
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::form;
    use super::*;

    #[test]
    fn form_decoding() {
        assert_eq!(
            form("?a=1&b=x+y%21&&c&a=2").0,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y!".into()),
                ("c".into(), "".into()),
                ("a".into(), "2".into())
            ]
        );
        assert_eq!(form("a=1&a=2").get("a"), Some("1"));
        assert_eq!(
            form("a=%zz%4").get("a"),
            Some("%zz%4"),
            "a bad escape stays as it is"
        );
        assert_eq!(form("a=%C3%A9").get("a"), Some("é"));
        assert_eq!(form("a=%41%").get("a"), Some("A%"));
        assert!(Params::parse("a=%FF").is_err());
    }
}
