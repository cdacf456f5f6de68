//! How the dashboard writes numbers, shares, months and query strings.

use smsreport_core::time::Month;

/// `n` with thousands grouped by commas: `12,345`.
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A ratio as a percentage with one decimal (`1.5` → `150.0%`); `—` for none.
pub fn ratio_pct(r: Option<f64>) -> String {
    match r {
        Some(r) => format!("{:.1}%", r * 100.0),
        None => "—".to_owned(),
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// `Mar`.
pub fn month_abbr(m: Month) -> &'static str {
    &MONTHS[usize::from(m.month().clamp(1, 12)) - 1][..3]
}

/// `March 2026`.
pub fn month_long(m: Month) -> String {
    format!(
        "{} {}",
        MONTHS[usize::from(m.month().clamp(1, 12)) - 1],
        m.year()
    )
}

/// A `YYYY-MM` month as `March 2026` (as it is when it does not parse).
pub fn month_text(s: &str) -> String {
    Month::parse(s).map_or_else(|| s.to_owned(), month_long)
}

/// Percent-encodes everything but RFC 3986's unreserved characters, for a path segment
/// or a query value.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query string from the pairs whose value is not empty: `?a=1&b=x%2Fy`, or `""`.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        out.push(if out.is_empty() { '?' } else { '&' });
        out.push_str(k);
        out.push('=');
        out.push_str(&enc(v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1234567), "1,234,567");
        assert_eq!(ratio_pct(Some(1.5)), "150.0%");
        assert_eq!(ratio_pct(None), "—");
    }

    #[test]
    fn months_and_queries() {
        assert_eq!(month_text("2026-03"), "March 2026");
        assert_eq!(month_abbr(Month::new(2026, 12)), "Dec");
        assert_eq!(month_text("x"), "x");
        assert_eq!(enc("Etc/GMT+3 a"), "Etc%2FGMT%2B3%20a");
        assert_eq!(
            query(&[("tab", "links"), ("tz", ""), ("tz", "Europe/Riga")]),
            "?tab=links&tz=Europe%2FRiga"
        );
        assert_eq!(query(&[("tab", "")]), "");
    }
}
