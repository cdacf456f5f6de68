//! The status events a message has seen, as the `messages.seen` column keeps them.

use smsreport_core::{Millis, Status, StatusKey};

/// Each key: status rank (1 byte), time (8, big-endian), 0 (no code) or 1 and the code's
/// length (4, big-endian) and bytes.
pub(super) fn encode_seen(seen: &[StatusKey]) -> Vec<u8> {
    let mut b = Vec::with_capacity(seen.len() * 10);
    for k in seen {
        b.push(k.status.rank());
        b.extend_from_slice(&k.at.0.to_be_bytes());
        match &k.error_code {
            None => b.push(0),
            Some(c) => {
                b.push(1);
                b.extend_from_slice(&(c.len() as u32).to_be_bytes());
                b.extend_from_slice(c.as_bytes());
            }
        }
    }
    b
}

pub(super) fn decode_seen(mut b: &[u8]) -> Option<Vec<StatusKey>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (b.get(..n)?, b.get(n..)?);
        *b = tail;
        Some(head)
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let status = Status::from_rank(take(&mut b, 1)?[0])?;
        let at = i64::from_be_bytes(take(&mut b, 8)?.try_into().ok()?);
        let error_code = match take(&mut b, 1)?[0] {
            0 => None,
            1 => {
                let n = u32::from_be_bytes(take(&mut b, 4)?.try_into().ok()?) as usize;
                Some(String::from_utf8(take(&mut b, n)?.to_vec()).ok()?)
            }
            _ => return None,
        };
        out.push(StatusKey {
            status,
            at: Millis(at),
            error_code,
        });
    }
    Some(out)
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
        let b = encode_seen(&[
            key(Status::Delivered, 1, None),
            key(Status::FailedRejected, -2, Some("é7")),
        ]);
        let mut want = vec![Status::Delivered.rank()];
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 0]);
        want.push(Status::FailedRejected.rank());
        want.extend_from_slice(&(-2i64).to_be_bytes());
        want.extend_from_slice(&[1, 0, 0, 0, 3, 0xc3, 0xa9, b'7']);
        assert_eq!(b, want);
        assert_eq!(encode_seen(&[]), Vec::<u8>::new());
    }

    #[test]
    fn decoding_gives_back_what_was_encoded() {
        let keys = vec![
            key(Status::Sent, 1_700_000_000_000, None),
            key(Status::FailedRouting, 0, Some("")),
            key(Status::FailedExpired, i64::MAX, Some("code with spaces")),
        ];
        assert_eq!(decode_seen(&encode_seen(&keys)), Some(keys));
        assert_eq!(decode_seen(&[]), Some(vec![]));
    }

    #[test]
    fn bad_bytes_are_refused_not_misread() {
        let good = encode_seen(&[key(Status::Delivered, 5, Some("ab"))]);
        for cut in 1..good.len() {
            assert_eq!(decode_seen(&good[..cut]), None, "cut at {cut}");
        }
        let mut bad_flag = encode_seen(&[key(Status::Delivered, 5, None)]);
        *bad_flag.last_mut().unwrap() = 2;
        assert_eq!(decode_seen(&bad_flag), None);
        assert_eq!(decode_seen(&[200, 0, 0, 0, 0, 0, 0, 0, 0, 0]), None);
        let mut not_utf8 = encode_seen(&[key(Status::Delivered, 5, Some("a"))]);
        *not_utf8.last_mut().unwrap() = 0xff;
        assert_eq!(decode_seen(&not_utf8), None);
    }
}
