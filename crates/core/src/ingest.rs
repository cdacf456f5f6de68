//! Turning NDJSON input into batches of events and tallying the outcomes, shared by the
//! command line and the HTTP service.

use std::io::{BufRead, Read};

use serde::{Deserialize, Serialize};

use crate::engine::Outcome;
use crate::event::{parse_line, Event, Parsed, Rejection};
use crate::store::{Store, StoreError, TrackedLink};

/// One input line: its 1-based number and its bytes without the line ending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub number: u64,
    /// The line's bytes; only the first [`MAX_LINE_BYTES`] of an overlong line.
    pub bytes: Vec<u8>,
    /// The full length of a line longer than [`MAX_LINE_BYTES`]; such a line is rejected.
    pub overlong: Option<u64>,
}

impl Line {
    /// A line of at most [`MAX_LINE_BYTES`].
    pub fn new(number: u64, bytes: Vec<u8>) -> Line {
        Line {
            number,
            bytes,
            overlong: None,
        }
    }
}

/// The longest line taken, 1 MiB: an event is far smaller. Longer lines are read through
/// without being held and rejected.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Whether a line holds only spaces and tabs (and is skipped).
pub fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| *b == b' ' || *b == b'\t')
}

/// Reads lines as docs/events.md ("Lines") defines them: a line ends at `\n`, a `\r`
/// just before it is dropped, the last line needs no `\n`. A UTF-8 byte-order mark
/// before the first line is dropped. Blank lines are skipped but counted. Lines are
/// bytes: a line that is not UTF-8 is still a line, and is rejected later.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    number: u64,
    bytes_read: u64,
}

impl<R: BufRead> LineReader<R> {
    /// Reads from `inner`.
    pub fn new(inner: R) -> Self {
        LineReader {
            inner,
            number: 0,
            bytes_read: 0,
        }
    }

    /// Bytes consumed so far (for progress).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The next non-blank line, `None` at the end of input.
    pub fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            let mut buf = Vec::new();
            let n = std::io::Read::by_ref(&mut self.inner)
                .take(MAX_LINE_BYTES as u64 + 2)
                .read_until(b'\n', &mut buf)?;
            if n == 0 {
                return Ok(None);
            }
            self.bytes_read += n as u64;
            self.number += 1;
            if buf.len() > MAX_LINE_BYTES + 1
                || (buf.len() == MAX_LINE_BYTES + 1 && buf.last() != Some(&b'\n'))
            {
                // Overlong: keep the head, skip the rest of the line without holding it.
                let mut total = n as u64;
                if buf.last() != Some(&b'\n') {
                    loop {
                        let chunk = self.inner.fill_buf()?;
                        if chunk.is_empty() {
                            break;
                        }
                        let (used, done) = match chunk.iter().position(|b| *b == b'\n') {
                            Some(i) => (i + 1, true),
                            None => (chunk.len(), false),
                        };
                        self.inner.consume(used);
                        total += used as u64;
                        if done {
                            break;
                        }
                    }
                }
                self.bytes_read += total - n as u64;
                buf.truncate(MAX_LINE_BYTES);
                return Ok(Some(Line {
                    number: self.number,
                    bytes: buf,
                    overlong: Some(total),
                }));
            }
            if buf.last() == Some(&b'\n') {
                buf.pop();
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
            }
            if self.number == 1 && buf.starts_with(b"\xEF\xBB\xBF") {
                // A byte-order mark some editors put before the first line.
                buf.drain(..3);
            }
            if !is_blank(&buf) {
                return Ok(Some(Line::new(self.number, buf)));
            }
        }
    }
}

/// Splits a whole body (an HTTP request) into its non-blank lines.
pub fn split_lines(body: &[u8]) -> Vec<Line> {
    let mut r = LineReader::new(body);
    let mut out = Vec::new();
    while let Ok(Some(l)) = r.next_line() {
        out.push(l);
    }
    out
}

/// What happened to one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineOutcome {
    pub line: Line,
    pub outcome: Outcome,
}

/// Counts of an ingest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub ingested: u64,
    pub duplicates: u64,
    pub rejected: u64,
}

impl Summary {
    /// Counts one outcome.
    pub fn add(&mut self, o: &Outcome) {
        match o {
            Outcome::Ingested => self.ingested += 1,
            Outcome::Duplicate => self.duplicates += 1,
            Outcome::Rejected(_) => self.rejected += 1,
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ingested {}, duplicates {}, rejected {}",
            self.ingested, self.duplicates, self.rejected
        )
    }
}

/// Validates a batch of lines and ingests the valid events in one store call; returns
/// every line's outcome in input order. The events are durable when this returns `Ok`.
pub async fn ingest_events(
    store: &dyn Store,
    lines: Vec<Line>,
) -> Result<Vec<LineOutcome>, StoreError> {
    /// Where a line's outcome comes from.
    enum Slot {
        Rejected(Rejection),
        Event,
        Link(usize),
    }
    let mut events: Vec<Event> = Vec::with_capacity(lines.len());
    let mut links: Vec<TrackedLink> = Vec::new();
    let slots: Vec<Slot> = lines
        .iter()
        .map(|l| {
            match l
                .overlong
                .map_or_else(|| parse_line(&l.bytes), |n| Err(overlong(n)))
            {
                Ok(Parsed::Event(e)) => {
                    events.push(e);
                    Slot::Event
                }
                Ok(Parsed::TrackedLink(t)) => {
                    links.push(t);
                    Slot::Link(links.len() - 1)
                }
                Err(r) => Slot::Rejected(r),
            }
        })
        .collect();
    let outcomes = if events.is_empty() {
        Vec::new()
    } else {
        store.ingest(&events).await?
    };
    if outcomes.len() != events.len() {
        return Err(StoreError::Corrupt(format!(
            "the store answered {} outcomes for {} events",
            outcomes.len(),
            events.len()
        )));
    }
    // An export's tracked links, after the events they refer to.
    let mut link_outcomes = save_exported_links(store, links).await?;
    let mut outcomes = outcomes.into_iter();
    Ok(lines
        .into_iter()
        .zip(slots)
        .filter_map(|(line, slot)| {
            let outcome = match slot {
                Slot::Rejected(r) => Outcome::Rejected(r),
                Slot::Event => outcomes.next()?,
                Slot::Link(i) => std::mem::replace(&mut link_outcomes[i], Outcome::Duplicate),
            };
            Some(LineOutcome { line, outcome })
        })
        .collect())
}

/// Stores an export's tracked links: one already stored as it is is a duplicate; a code
/// stored for another link, or a (message, link) stored with another code, is rejected.
async fn save_exported_links(
    store: &dyn Store,
    links: Vec<TrackedLink>,
) -> Result<Vec<Outcome>, StoreError> {
    let mut outcomes = Vec::with_capacity(links.len());
    let mut new = Vec::new();
    for t in &links {
        outcomes.push(match store.resolve_link(&t.code).await? {
            Some(stored) if stored == *t => Outcome::Duplicate,
            Some(_) => Outcome::Rejected(Rejection::field(
                "code",
                "is taken by another tracked link in this store",
            )),
            None => {
                new.push(t.clone());
                Outcome::Ingested
            }
        });
    }
    if new.is_empty() {
        return Ok(outcomes);
    }
    let stored = store.save_links(&new).await?;
    let mut stored = stored.into_iter();
    for (t, o) in links.iter().zip(outcomes.iter_mut()) {
        if matches!(o, Outcome::Ingested) {
            let s = stored.next().ok_or_else(|| {
                StoreError::Corrupt("the store answered fewer tracked links than asked".into())
            })?;
            if s.code != t.code {
                *o = Outcome::Rejected(Rejection::field(
                    "code",
                    format_args!(
                        "message {:?} already has the tracked link {} for link {:?}",
                        t.message_id, s.code, t.link_id
                    ),
                ));
            }
        }
    }
    Ok(outcomes)
}

fn overlong(n: u64) -> Rejection {
    Rejection::new(format!(
        "the line is {n} bytes long, over the limit of {MAX_LINE_BYTES}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_as_the_spec_defines_them() {
        let lines = split_lines(b"a\r\n \t\n\nb\rc\n\r\nlast");
        let got: Vec<(u64, &[u8])> = lines
            .iter()
            .map(|l| (l.number, l.bytes.as_slice()))
            .collect();
        assert_eq!(
            got,
            vec![(1, &b"a"[..]), (4, &b"b\rc"[..]), (6, &b"last"[..])]
        );
        let mut long = vec![b'x'; MAX_LINE_BYTES + 10];
        long.extend_from_slice(b"\r\nnext\n");
        long.extend(vec![b'y'; MAX_LINE_BYTES]);
        long.extend_from_slice(b"\n");
        long.extend(vec![b'z'; MAX_LINE_BYTES + 1]);
        let got = split_lines(&long);
        assert_eq!(got.len(), 4);
        assert_eq!(
            (got[0].overlong, got[0].bytes.len()),
            (Some(MAX_LINE_BYTES as u64 + 12), MAX_LINE_BYTES)
        );
        assert_eq!(
            (got[1].number, got[1].bytes.as_slice(), got[1].overlong),
            (2, &b"next"[..], None)
        );
        assert_eq!(
            (got[2].bytes.len(), got[2].overlong),
            (MAX_LINE_BYTES, None),
            "exactly the limit is fine"
        );
        assert_eq!(got[3].overlong, Some(MAX_LINE_BYTES as u64 + 1));
        let bom = split_lines(b"\xEF\xBB\xBF{}\n\xEF\xBB\xBF{}");
        assert_eq!(bom[0].bytes, b"{}");
        assert_eq!(
            bom[1].bytes, b"\xEF\xBB\xBF{}",
            "only before the first line"
        );
    }
}
