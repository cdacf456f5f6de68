//! Phone numbers out of log lines: every number a log line could carry is masked to its
//! country code and last two digits (`+371******01`, `smsreport_core::forget::masked`),
//! whatever field or free text it sits in (docs/security.md, "Logs").

use smsreport_core::forget::masked;

/// The fewest digits in a row that are taken for a phone number (E.164 numbers have 7
/// to 15; national ones, as gateways send them, rarely fewer).
const MIN_DIGITS: usize = 7;

/// `text` with every run of 7 or more digits masked: one after `+` (or `%2B`, as in a
/// URL) as [`masked`] does, keeping the calling code and the last two digits; one
/// without, a national number, all but its last two digits. Other text is left as it is
/// (long numbers that are not phone numbers, such as Unix times, are masked too: a log
/// line never risks one).
pub fn mask_numbers(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        let plus = if b[i] == b'+' {
            1
        } else if b.len() - i >= 3 && b[i] == b'%' && b[i + 1] == b'2' && b[i + 2] | 0x20 == b'b' {
            3
        } else {
            0
        };
        let start = i + plus;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        // A run counts only from its first digit (not the tail of a longer word-number).
        let preceded = i > 0 && b[i - 1].is_ascii_digit();
        if end - start >= MIN_DIGITS && !preceded {
            out.push_str(&text[copied..i]);
            let digits = &text[start..end];
            if plus > 0 {
                out.push_str(&masked(&format!("+{digits}")));
            } else {
                out.push_str(&"*".repeat(digits.len() - 2));
                out.push_str(&digits[digits.len() - 2..]);
            }
            copied = end;
            i = end;
        } else {
            i = if end > start { end } else { i + 1 };
        }
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::mask_numbers;

    #[test]
    fn numbers_keep_their_country_code_and_last_two_digits() {
        assert_eq!(mask_numbers("+37120000001"), "+371******01");
        assert_eq!(
            mask_numbers("to=%2B37120000001&type=9"),
            "to=+371******01&type=9"
        );
        assert_eq!(
            mask_numbers("/v1/recipients/%2b4915112345610"),
            "/v1/recipients/+49*********10"
        );
        assert_eq!(
            mask_numbers("recipient: \"4915112345610\" is not"),
            "recipient: \"***********10\" is not"
        );
        assert_eq!(mask_numbers("a +1 2 3 m12345 x"), "a +1 2 3 m12345 x");
        assert_eq!(mask_numbers("é+37120000001é"), "é+371******01é");
        assert_eq!(mask_numbers("%2"), "%2");
    }
}
