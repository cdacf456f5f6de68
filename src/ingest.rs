//! Streaming lines into the store in batches, shared by `ingest` and `demo`.
//!
//! Memory stays bounded whatever the input's size: one batch (at most [`BATCH_LINES`]
//! lines or about [`BATCH_BYTES`] bytes) is held at a time.

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Write};
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use smsreport_core::gateway::{self, LineFormat, Region};
use smsreport_core::ingest::{ingest_events, Line, LineReader, Summary};
use smsreport_core::{Millis, Outcome, Store};

use crate::failure::Failure;
use crate::InputFormat;

/// At most this many lines per store call.
pub const BATCH_LINES: usize = 2_000;
/// A batch is closed once its lines hold this many bytes.
pub const BATCH_BYTES: usize = 1 << 20;

/// What [`run`] reads, and in batches of how many lines.
#[derive(Debug, Clone, Copy)]
pub struct Input {
    pub format: InputFormat,
    /// The region national recipients of gateway lines are read in.
    pub region: Option<Region>,
    /// At most this many lines per store call ([`BATCH_LINES`]).
    pub batch_lines: usize,
}

impl Input {
    /// NDJSON events in batches of [`BATCH_LINES`].
    pub fn ndjson() -> Input {
        Input {
            format: InputFormat::Ndjson,
            region: None,
            batch_lines: BATCH_LINES,
        }
    }
}

/// Where lines come from.
pub trait LineSource {
    /// The next non-blank line; `None` at the end.
    fn next_line(&mut self) -> io::Result<Option<Line>>;
    /// How far the source has got, in the unit its progress bar counts.
    fn position(&self) -> u64;
}

impl<R: BufRead> LineSource for LineReader<R> {
    fn next_line(&mut self) -> io::Result<Option<Line>> {
        LineReader::next_line(self)
    }
    fn position(&self) -> u64 {
        self.bytes_read()
    }
}

/// Lines of already-made text (the demo's synthetic events), numbered from 1.
#[derive(Debug)]
pub struct TextLines<I> {
    inner: I,
    number: u64,
}

impl<I: Iterator<Item = String>> TextLines<I> {
    pub fn new(inner: I) -> Self {
        TextLines { inner, number: 0 }
    }
}

impl<I: Iterator<Item = String>> LineSource for TextLines<I> {
    fn next_line(&mut self) -> io::Result<Option<Line>> {
        Ok(self.inner.next().map(|text| {
            self.number += 1;
            Line::new(self.number, text.into_bytes())
        }))
    }
    fn position(&self) -> u64 {
        self.number
    }
}

/// A progress indicator on standard error, drawn only when standard error is a terminal.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    unit: &'static str,
}

impl Progress {
    /// A bar over `total` bytes when the size is known, else a spinner counting `unit`s.
    pub fn new(total: Option<u64>, unit: &'static str) -> Progress {
        if !io::stderr().is_terminal() {
            return Progress {
                bar: ProgressBar::hidden(),
                unit,
            };
        }
        let bar = match total {
            Some(total) => ProgressBar::new(total).with_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({eta}) {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        Progress { bar, unit }
    }

    fn update(&self, position: u64, summary: &Summary) {
        self.bar.set_position(position);
        let read = match (self.bar.length(), self.unit) {
            (Some(_), _) => String::new(),
            (None, "bytes") => format!("{} read: ", indicatif::HumanBytes(position)),
            (None, unit) => format!("{position} {unit}: "),
        };
        self.bar.set_message(format!("{read}{summary}"));
    }

    /// Sets the text beside the spinner or bar.
    pub fn message(&self, text: &str) {
        self.bar.set_message(text.to_owned());
        self.bar.tick();
    }

    /// Prints a line on standard error without breaking the bar.
    pub fn note(&self, text: &str) {
        self.bar.suspend(|| {
            let _ = writeln!(io::stderr(), "{text}");
        });
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Ingests every line of `source` in batches, each durable before the next is read.
///
/// For each rejected line, in input order, writes its bytes and `\n` to `rejects` and
/// `line N: REASON` to standard error. On failure, returns what was durable so far with
/// the failure; a read error first ingests the lines read before it.
pub async fn run(
    store: &dyn Store,
    source: &mut dyn LineSource,
    input: Input,
    mut rejects: Option<&mut dyn Write>,
    progress: &Progress,
) -> Result<Summary, (Summary, Failure)> {
    let mut summary = Summary::default();
    loop {
        let mut batch = Vec::new();
        let mut bytes = 0;
        let mut end = false;
        let mut read_error = None;
        while batch.len() < input.batch_lines.max(1) && bytes < BATCH_BYTES {
            match source.next_line() {
                Ok(Some(line)) => {
                    bytes += line.bytes.len();
                    batch.push(line);
                }
                Ok(None) => {
                    end = true;
                    break;
                }
                Err(e) => {
                    read_error = Some(e);
                    break;
                }
            }
        }
        if !batch.is_empty() {
            let result = match gateway_format(input.format) {
                None => ingest_events(store, batch).await,
                Some(f) => {
                    gateway::ingest_callback_lines(store, f, batch, now(), input.region).await
                }
            };
            let outcomes = match result {
                Ok(o) => o,
                Err(e) => return Err((summary, e.into())),
            };
            outcomes.iter().for_each(|o| summary.add(&o.outcome));
            for o in &outcomes {
                if let Outcome::Rejected(r) = &o.outcome {
                    if let Some(w) = rejects.as_mut() {
                        let written = w.write_all(&o.line.bytes).and_then(|()| w.write_all(b"\n"));
                        if let Err(e) = written {
                            return Err((summary, Failure::io("writing the rejects file", e)));
                        }
                    }
                    progress.note(&format!("line {}: {r}", o.line.number));
                }
            }
            progress.update(source.position(), &summary);
        }
        if let Some(e) = read_error {
            return Err((summary, Failure::io("reading the input", e)));
        }
        if end {
            return Ok(summary);
        }
    }
}

/// The gateway format of `--format`, `None` for NDJSON events.
fn gateway_format(f: InputFormat) -> Option<LineFormat> {
    match f {
        InputFormat::Ndjson => None,
        InputFormat::Smpp => Some(LineFormat::Smpp),
        InputFormat::Kannel => Some(LineFormat::Kannel),
        InputFormat::Jasmin => Some(LineFormat::Jasmin),
        InputFormat::Twilio => Some(LineFormat::Twilio),
    }
}

/// Now, as the time of receipt of gateway lines that carry no time of their own.
fn now() -> Millis {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Millis(ms)
}

/// The `ingest` command: reads `input` (`-` for standard input) as `how` says, prints
/// one summary line, and gives exit status 2 when any line was rejected.
pub async fn command(
    store: &dyn Store,
    input: &str,
    how: Input,
    rejects: Option<&Path>,
) -> Result<u8, Failure> {
    let (reader, total): (Box<dyn BufRead>, Option<u64>) = if input == "-" {
        (
            Box::new(BufReader::with_capacity(256 << 10, io::stdin().lock())),
            None,
        )
    } else {
        let file = File::open(input).map_err(|e| Failure::io(format!("cannot open {input}"), e))?;
        let total = file
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len());
        (Box::new(BufReader::with_capacity(256 << 10, file)), total)
    };
    let mut rejects_file = match rejects {
        None => None,
        Some(path) => Some(io::BufWriter::new(File::create(path).map_err(|e| {
            Failure::io(format!("cannot create {}", path.display()), e)
        })?)),
    };
    let progress = Progress::new(total, "bytes");
    let mut source = LineReader::new(reader);
    let result = run(
        store,
        &mut source,
        how,
        rejects_file.as_mut().map(|w| w as &mut dyn Write),
        &progress,
    )
    .await;
    progress.finish();
    let flushed = match rejects_file.as_mut() {
        Some(w) => w
            .flush()
            .map_err(|e| Failure::io("writing the rejects file", e)),
        None => Ok(()),
    };
    let (summary, failure) = match result {
        Ok(s) => (s, flushed.err()),
        Err((s, f)) => (s, Some(f)),
    };
    let mut out = io::stdout().lock();
    writeln!(out, "{summary}")?;
    out.flush()?;
    match failure {
        Some(f) => Err(f),
        None if summary.rejected > 0 => Ok(2),
        None => Ok(0),
    }
}
