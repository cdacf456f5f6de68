//! Turning NDJSON input into batches of events and tallying the outcomes, shared by the
//! command line and the HTTP service.

use std::io::BufRead;

use serde::{Deserialize, Serialize};

use crate::engine::Outcome;
use crate::event::{parse_line, Event, Rejection};
use crate::store::{Store, StoreError};

/// One input line: its 1-based number and its bytes without the line ending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub number: u64,
    pub bytes: Vec<u8>,
}

/// Whether a line holds only spaces and tabs (and is skipped).
pub fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| *b == b' ' || *b == b'\t')
}

/// Reads lines as SPEC §2 defines them: a line ends at `\n`, a `\r` just before it is
/// dropped, the last line needs no `\n`. A UTF-8 byte-order mark before the first line
/// is dropped. Blank lines are skipped but counted. Lines are
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
            let n = self.inner.read_until(b'\n', &mut buf)?;
            if n == 0 {
                return Ok(None);
            }
            self.bytes_read += n as u64;
            self.number += 1;
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
                return Ok(Some(Line {
                    number: self.number,
                    bytes: buf,
                }));
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
pub async fn ingest_lines(
    store: &dyn Store,
    lines: Vec<Line>,
) -> Result<Vec<LineOutcome>, StoreError> {
    let mut events: Vec<Event> = Vec::with_capacity(lines.len());
    let rejections: Vec<Option<Rejection>> = lines
        .iter()
        .map(|l| match parse_line(&l.bytes) {
            Ok(e) => {
                events.push(e);
                None
            }
            Err(r) => Some(r),
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
    let mut outcomes = outcomes.into_iter();
    Ok(lines
        .into_iter()
        .zip(rejections)
        .filter_map(|(line, rejection)| {
            let outcome = match rejection {
                Some(r) => Outcome::Rejected(r),
                None => outcomes.next()?,
            };
            Some(LineOutcome { line, outcome })
        })
        .collect())
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
        let bom = split_lines(b"\xEF\xBB\xBF{}\n\xEF\xBB\xBF{}");
        assert_eq!(bom[0].bytes, b"{}");
        assert_eq!(
            bom[1].bytes, b"\xEF\xBB\xBF{}",
            "only before the first line"
        );
    }
}
