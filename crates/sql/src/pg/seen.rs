//! The status events a message has seen, as the `messages.seen` column keeps them.

use smsreport_core::{Millis, Status, StatusKey};

/// Each key: status rank (1 byte), time (8, big-endian), a flag byte, and when the flag
/// has bit 0 the code's length (4, big-endian) and bytes. Bit 1 of the flag marks the
/// key whose time is the state's `undated` (the latest undated status; format 2 never
/// set it, so its bytes read as having none).
pub(super) fn encode_seen(seen: &[StatusKey], undated: Option<Millis>) -> Vec<u8> {
    let marked = undated.and_then(|at| seen.iter().rposition(|k| k.at == at));
    let mut b = Vec::with_capacity(seen.len() * 10);
    for (i, k) in seen.iter().enumerate() {
        b.push(k.status.rank());
        b.extend_from_slice(&k.at.0.to_be_bytes());
        let undated_bit = if marked == Some(i) { 2 } else { 0 };
        match &k.error_code {
            None => b.push(undated_bit),
            Some(c) => {
                b.push(1 | undated_bit);
                b.extend_from_slice(&(c.len() as u32).to_be_bytes());
                b.extend_from_slice(c.as_bytes());
            }
        }
    }
    b
}

/// The keys and the `undated` time [`encode_seen`] wrote; `None` for bytes it cannot
/// have written.
pub(super) fn decode_seen(mut b: &[u8]) -> Option<(Vec<StatusKey>, Option<Millis>)> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (b.get(..n)?, b.get(n..)?);
        *b = tail;
        Some(head)
    }
    let mut out = Vec::new();
    let mut undated = None;
    while !b.is_empty() {
        let status = Status::from_rank(take(&mut b, 1)?[0])?;
        let at = Millis(i64::from_be_bytes(take(&mut b, 8)?.try_into().ok()?));
        let flag = take(&mut b, 1)?[0];
        if flag > 3 {
            return None;
        }
        let error_code = if flag & 1 == 1 {
            let n = u32::from_be_bytes(take(&mut b, 4)?.try_into().ok()?) as usize;
            Some(String::from_utf8(take(&mut b, n)?.to_vec()).ok()?)
        } else {
            None
        };
        if flag & 2 == 2 {
            undated = undated.max(Some(at));
        }
        out.push(StatusKey {
            status,
            at,
            error_code,
        });
    }
    Some((out, undated))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(status: Status, at: i64, code: Option<&str>) -> StatusKey {
        StatusKey {
            status,
            at: Millis(at),
            error_code: code.map(str::to_owned),
        }
    }

    #[test]
    fn the_encoding_is_pinned() {
        // Stored bytes outlive the code: this layout is what databases already hold.
        let b = encode_seen(
            &[
                key(Status::Delivered, 1, None),
                key(Status::FailedRejected, -2, Some("é7")),
            ],
            None,
        );
        let mut want = vec![Status::Delivered.rank()];
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 0]);
        want.push(Status::FailedRejected.rank());
        want.extend_from_slice(&(-2i64).to_be_bytes());
        want.extend_from_slice(&[1, 0, 0, 0, 3, 0xc3, 0xa9, b'7']);
        assert_eq!(b, want);
        assert_eq!(encode_seen(&[], None), Vec::<u8>::new());
        // The undated key's flag has bit 1.
        let b = encode_seen(
            &[
                key(Status::Sent, 1, None),
                key(Status::Delivered, 9, Some("x")),
            ],
            Some(Millis(9)),
        );
        assert_eq!(b[9], 0);
        assert_eq!(b[19], 3);
    }

    #[test]
    fn decoding_gives_back_what_was_encoded() {
        let keys = vec![
            key(Status::Sent, 1_700_000_000_000, None),
            key(Status::FailedRouting, 0, Some("")),
            key(Status::FailedExpired, i64::MAX, Some("code with spaces")),
        ];
        assert_eq!(
            decode_seen(&encode_seen(&keys, None)),
            Some((keys.clone(), None))
        );
        assert_eq!(
            decode_seen(&encode_seen(&keys, Some(Millis(0)))),
            Some((keys.clone(), Some(Millis(0))))
        );
        // A time no key has cannot be marked: it is lost, never misread.
        assert_eq!(
            decode_seen(&encode_seen(&keys, Some(Millis(7)))),
            Some((keys, None))
        );
        assert_eq!(decode_seen(&[]), Some((vec![], None)));
    }

    #[test]
    fn bad_bytes_are_refused_not_misread() {
        let good = encode_seen(&[key(Status::Delivered, 5, Some("ab"))], None);
        for cut in 1..good.len() {
            assert_eq!(decode_seen(&good[..cut]), None, "cut at {cut}");
        }
        let mut bad_flag = encode_seen(&[key(Status::Delivered, 5, None)], None);
        *bad_flag.last_mut().unwrap() = 4;
        assert_eq!(decode_seen(&bad_flag), None);
        assert_eq!(decode_seen(&[200, 0, 0, 0, 0, 0, 0, 0, 0, 0]), None);
        let mut not_utf8 = encode_seen(&[key(Status::Delivered, 5, Some("a"))], None);
        *not_utf8.last_mut().unwrap() = 0xff;
        assert_eq!(decode_seen(&not_utf8), None);
    }
}
