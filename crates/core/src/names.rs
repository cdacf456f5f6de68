//! How the report's insights (docs/rules.md, "Insights") are named for people, shared by
//! the dashboard and the command line's table: countries by English name (the report
//! names a region by libphonenumber's code, ISO 3166-1 alpha-2 plus a few of its own),
//! waiting-age buckets in words.

use crate::insights::CountryRow;

/// The English name of one of libphonenumber's region codes: ISO 3166-1's English short
/// name (the `rust_iso3166` crate), or libphonenumber's own codes: `XK` Kosovo, `AC`
/// Ascension Island, `TA` Tristan da Cunha, `001` a non-geographic calling code, `ZZ`
/// no calling code. `None` for a code neither knows.
pub fn country_name(region: &str) -> Option<&'static str> {
    match region {
        "XK" => Some("Kosovo"),
        "AC" => Some("Ascension Island"),
        "TA" => Some("Tristan da Cunha"),
        "001" => Some("International (non-geographic)"),
        "ZZ" => Some("Unknown"),
        r => rust_iso3166::from_alpha2(r).map(|c| c.name),
    }
}

/// A country row's name: [`country_name`] of its region, or the region code itself.
pub fn row_name(r: &CountryRow) -> &str {
    country_name(&r.region).unwrap_or(&r.region)
}

/// A country row as the recipients filter names it exactly: `+371/LV`; a row without
/// a calling code by its region alone (`ZZ`).
pub fn row_key(r: &CountryRow) -> String {
    match &r.country_code {
        Some(c) => format!("+{c}/{}", r.region),
        None => r.region.clone(),
    }
}

/// The calling code as people write it: `+371`, `—` for none.
pub fn calling_code(r: &CountryRow) -> String {
    r.country_code
        .as_deref()
        .map_or_else(|| "—".to_owned(), |c| format!("+{c}"))
}

/// A waiting-age bucket (`insights.awaiting_receipt.by_age[].age`) in words.
pub fn age_label(age: &str) -> &str {
    match age {
        "under_1h" => "Under 1 hour",
        "1h_to_6h" => "1 to 6 hours",
        "6h_to_24h" => "6 to 24 hours",
        "24h_to_72h" => "24 to 72 hours",
        "over_72h" => "72 hours or more",
        other => other,
    }
}

/// The smallest age in hours of a waiting-age bucket (`None` for an unknown name).
pub fn age_from_h(age: &str) -> Option<i64> {
    crate::insights::AGE_BUCKETS
        .iter()
        .find(|(n, _)| *n == age)
        .map(|(_, h)| *h)
}

/// Whether every message of a waiting-age bucket is stale with a threshold of
/// `stale_after_h` hours: its smallest age reaches the threshold.
pub fn age_all_stale(age: &str, stale_after_h: u32) -> bool {
    age_from_h(age).is_some_and(|h| h >= i64::from(stale_after_h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_english() {
        assert_eq!(country_name("LV"), Some("Latvia"));
        assert_eq!(country_name("DE"), Some("Germany"));
        assert_eq!(country_name("XK"), Some("Kosovo"));
        assert_eq!(country_name("AC"), Some("Ascension Island"));
        assert_eq!(country_name("TA"), Some("Tristan da Cunha"));
        assert_eq!(country_name("001"), Some("International (non-geographic)"));
        assert_eq!(country_name("ZZ"), Some("Unknown"));
        assert_eq!(country_name("QQ"), None);
    }

    #[test]
    fn every_libphonenumber_region_has_a_name() {
        let db = &*phonenumber::metadata::DATABASE;
        let mut regions = 0;
        for code in 1..1000u16 {
            for m in db.by_code(&code).into_iter().flatten() {
                regions += 1;
                assert!(
                    country_name(m.id()).is_some(),
                    "+{code} {}: no name",
                    m.id()
                );
            }
        }
        assert!(regions > 240, "only {regions} regions");
    }
}
