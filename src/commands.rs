//! The commands of the README's "Command line", over any [`Store`].

use std::io::{self, BufWriter, Write};
use std::sync::Arc;

use smsreport_core::engine::Quality;
use smsreport_core::insights::{InsightOptions, RecipientFilter};
use smsreport_core::report::RecipientQuery;
use smsreport_core::tz::Zone;
use smsreport_core::{Millis, Row, Store};
use smsreport_synth::SynthConfig;

use crate::failure::Failure;
use crate::ingest::{self, Progress, TextLines};
use crate::output::{self, RecipientsWriter};
use crate::{Command, Format, DEFAULT_STORE};

/// The demo campaign's id.
pub const DEMO_CAMPAIGN: &str = "demo-spring-sale";

/// Runs one command; the result is the exit status.
pub async fn run(command: Command, store: Arc<dyn Store>, store_url: &str) -> Result<u8, Failure> {
    let store_arc = store.clone();
    let store = &*store;
    match command {
        Command::Ingest {
            input,
            format,
            rejects,
            default_region,
            batch_lines,
        } => {
            let how = ingest::Input {
                format,
                region: default_region,
                batch_lines,
            };
            ingest::command(store, &input, how, rejects.as_deref()).await
        }
        Command::Report {
            campaign_id,
            format,
            tz,
            as_of,
            stale_after,
        } => {
            let opts = InsightOptions {
                as_of: as_of.unwrap_or_else(Millis::now),
                stale_after_h: stale_after,
            };
            report(store, &campaign_id, format, tz.as_deref(), opts).await
        }
        Command::Campaigns { format } => campaigns(store, format).await,
        Command::Health { format } => health(store, format).await,
        Command::Recipients {
            campaign_id,
            status,
            stale,
            age,
            country,
            as_of,
            stale_after,
            format,
        } => {
            let opts = InsightOptions {
                as_of: as_of.unwrap_or_else(Millis::now),
                stale_after_h: stale_after,
            };
            let filter =
                RecipientFilter::from_options(stale, age.as_deref(), country.as_deref(), opts)
                    .map_err(|e| Failure::Usage(format!("--{e}")))?;
            recipients(store, &campaign_id, status, &filter, format).await
        }
        Command::Verify => verify(store).await,
        Command::Export { output } => export(store_arc, &output).await,
        Command::Forget { recipients } => forget(store, &recipients).await,
        Command::Demo => demo(store, store_url).await,
        Command::Serve(args) => crate::serve::run(args, store_arc, store_url).await,
        Command::Bench { .. }
        | Command::BenchWorker { .. }
        | Command::Completions { .. }
        | Command::Man => Err(Failure::Other(
            "bench, completions and man need no store; main dispatches them before opening one"
                .into(),
        )),
    }
}

fn stdout() -> BufWriter<io::StdoutLock<'static>> {
    BufWriter::new(io::stdout().lock())
}

fn write_report(
    report: &smsreport_core::Report,
    format: Format,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        Format::Table => output::report_table(report, out),
        Format::Json => output::json(report, out),
        Format::Csv => output::report_csv(report, out),
    }
}

async fn report(
    store: &dyn Store,
    campaign_id: &str,
    format: Format,
    tz: Option<&str>,
    opts: InsightOptions,
) -> Result<u8, Failure> {
    let report = match tz {
        None => store.report_at(campaign_id, opts, None).await?,
        Some(name) => {
            let zone = Zone::get(name).map_err(|e| Failure::Usage(format!("--tz: {e}")))?;
            store
                .report_at(campaign_id, opts, Some(&move |t| zone.offset_minutes(t)))
                .await?
        }
    };
    let mut out = stdout();
    write_report(&report, format, &mut out)?;
    out.flush()?;
    Ok(0)
}

async fn campaigns(store: &dyn Store, format: Format) -> Result<u8, Failure> {
    let list = store.campaigns().await?;
    let mut out = stdout();
    match format {
        Format::Table => output::campaigns_table(&list, &mut out)?,
        Format::Json => output::json(&list, &mut out)?,
        Format::Csv => output::campaigns_csv(&list, &mut out)?,
    }
    out.flush()?;
    Ok(0)
}

/// `health`: each campaign's data-quality counters (docs/rules.md, "Data quality").
async fn health(store: &dyn Store, format: Format) -> Result<u8, Failure> {
    let mut all = store.all_totals().await?;
    all.sort_by(|a, b| a.def.campaign_id.cmp(&b.def.campaign_id));
    let rows: Vec<output::HealthRow> = all
        .iter()
        .map(|t| {
            let q = |k| t.counters.quality.get(&k).copied().unwrap_or(0);
            let rejected: std::collections::BTreeMap<&'static str, i64> = t
                .counters
                .quality
                .iter()
                .filter_map(|(k, n)| Some((k.field()?, *n)))
                .filter(|(_, n)| *n != 0)
                .collect();
            output::HealthRow {
                campaign_id: t.def.campaign_id.clone(),
                duplicate: q(Quality::Duplicate),
                late: q(Quality::Late),
                rejected,
            }
        })
        .collect();
    let waiting = store.orphans().await?;
    let mut out = stdout();
    match format {
        Format::Json => {
            let list: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "campaign_id": r.campaign_id,
                        "duplicate": r.duplicate,
                        "late": r.late,
                        "rejected": r.rejected,
                    })
                })
                .collect();
            let oldest = waiting.oldest.map(|t| t.to_string());
            output::json(
                &serde_json::json!({
                    "campaigns": list,
                    "waiting_for_message": {"messages": waiting.messages, "oldest_at": oldest},
                }),
                &mut out,
            )?;
        }
        Format::Table => {
            output::health_table(&rows, &mut out)?;
            output::waiting_line(&waiting, &mut out)?;
        }
        Format::Csv => {
            return Err(Failure::Usage(
                "health prints --format table or json".into(),
            ))
        }
    }
    out.flush()?;
    Ok(0)
}

async fn recipients(
    store: &dyn Store,
    campaign_id: &str,
    row: Option<Row>,
    filter: &RecipientFilter,
    format: Format,
) -> Result<u8, Failure> {
    let mut query = RecipientQuery {
        row,
        after: None,
        limit: 1000,
    };
    // The first page is read before anything is printed, so an unknown campaign prints
    // nothing on standard output.
    let mut page = store
        .recipients_filtered(campaign_id, &query, filter)
        .await?;
    let mut out = stdout();
    let mut writer = RecipientsWriter::new(format);
    writer.begin(&mut out)?;
    loop {
        writer.page(&page.items, &mut out)?;
        match page.next.take() {
            None => break,
            Some(next) => {
                out.flush()?;
                query.after = Some(next);
                page = store
                    .recipients_filtered(campaign_id, &query, filter)
                    .await?;
            }
        }
    }
    writer.finish(&mut out)?;
    out.flush()?;
    Ok(0)
}

/// `forget`: each number in turn, each durable before the next; one line per number
/// (masked: the calling code and the last two digits) and a total.
async fn forget(store: &dyn Store, numbers: &[String]) -> Result<u8, Failure> {
    use smsreport_core::forget::{masked, Forgotten};
    for n in numbers {
        if !smsreport_core::event::is_e164(n) {
            return Err(Failure::Usage(format!(
                "{n:?} is not an E.164 phone number (+, then 7 to 15 digits, not starting with 0); nothing was forgotten"
            )));
        }
    }
    let mut out = stdout();
    let mut total = Forgotten::default();
    for n in numbers {
        let f = store.forget_number(n).await?;
        tracing::info!(
            number = %masked(n),
            messages = f.messages,
            contacts = f.contacts,
            clicks = f.clicks,
            tracked_links = f.tracked_links,
            "forgot a person"
        );
        writeln!(out, "{}: {f}", masked(n))?;
        out.flush()?;
        total.add(&f);
    }
    if numbers.len() > 1 {
        writeln!(out, "forgot {} numbers: {total}", numbers.len())?;
    }
    out.flush()?;
    Ok(0)
}

/// `export`: the store's lines to a file (through `FILE.partial`, renamed when complete
/// and synced, so a failed export leaves no half file under the name) or standard output.
async fn export(store: Arc<dyn Store>, output: &str) -> Result<u8, Failure> {
    use smsreport_core::export::Export;
    let progress = Progress::new(None, "lines");
    let partial = (output != "-").then(|| std::path::PathBuf::from(format!("{output}.partial")));
    let mut out: Box<dyn Write> = match &partial {
        None => Box::new(stdout()),
        Some(p) => {
            Box::new(BufWriter::new(std::fs::File::create(p).map_err(|e| {
                Failure::io(format!("creating {}", p.display()), e)
            })?))
        }
    };
    let mut ex = Export::new(store);
    let result: Result<(), Failure> = async {
        while let Some(chunk) = ex.next_chunk().await? {
            out.write_all(&chunk)?;
            progress.message(&format!("{} lines written", ex.lines()));
        }
        out.flush()?;
        Ok(())
    }
    .await;
    drop(out);
    progress.finish();
    if let Err(e) = result {
        if let Some(p) = &partial {
            let _ = std::fs::remove_file(p);
        }
        return Err(e);
    }
    if let Some(p) = &partial {
        let ctx = |e| Failure::io(format!("finishing {output}"), e);
        std::fs::File::open(p)
            .and_then(|f| f.sync_all())
            .map_err(ctx)?;
        std::fs::rename(p, output).map_err(ctx)?;
    }
    let counts: Vec<String> = ex
        .counts()
        .iter()
        .map(|(ty, n)| format!("{n} {ty}"))
        .collect();
    let _ = writeln!(
        io::stderr(),
        "exported {} lines ({})",
        ex.lines(),
        if counts.is_empty() {
            "an empty store".to_owned()
        } else {
            counts.join(", ")
        }
    );
    Ok(0)
}

async fn verify(store: &dyn Store) -> Result<u8, Failure> {
    let v = store.verify().await?;
    let mut out = stdout();
    if v.differences.is_empty() {
        writeln!(
            out,
            "verified {} campaigns, {} messages: totals agree",
            v.campaigns, v.messages
        )?;
        out.flush()?;
        return Ok(0);
    }
    for d in &v.differences {
        writeln!(out, "{d}")?;
    }
    out.flush()?;
    let _ = writeln!(
        io::stderr(),
        "smsreport: verify found {} difference{} over {} campaigns, {} messages",
        v.differences.len(),
        if v.differences.len() == 1 { "" } else { "s" },
        v.campaigns,
        v.messages
    );
    Ok(1)
}

/// The demo campaign: 10 000 messages, always the same events, so that running the demo
/// again finds them all already there.
pub fn demo_config() -> SynthConfig {
    SynthConfig {
        campaign_id: DEMO_CAMPAIGN.into(),
        name: "Spring sale (demo)".into(),
        messages: 10_000,
        seed: 20_260_803,
        start: Millis::from_utc(2026, 8, 3, 7, 0, 0, 0).unwrap_or(Millis::MIN),
    }
}

async fn demo(store: &dyn Store, store_url: &str) -> Result<u8, Failure> {
    let cfg = demo_config();
    let mut source = TextLines::new(smsreport_synth::events(&cfg));
    let progress = Progress::new(None, "events");
    let result = ingest::run(store, &mut source, ingest::Input::ndjson(), None, &progress).await;
    progress.finish();
    let summary = result.map_err(|(_, f)| f)?;
    if summary.rejected > 0 {
        return Err(Failure::Other(format!(
            "the demo campaign had {} rejected events (a bug in smsreport; see the lines above)",
            summary.rejected
        )));
    }
    let report = store.report(DEMO_CAMPAIGN).await?;
    let mut out = stdout();
    writeln!(out, "Demo campaign {DEMO_CAMPAIGN:?} loaded ({summary}).")?;
    writeln!(out)?;
    output::report_table(&report, &mut out)?;
    let store_arg = if store_url == DEFAULT_STORE {
        String::new()
    } else {
        format!(" --store {}", shell_quote(store_url))
    };
    writeln!(out)?;
    writeln!(out, "Try next:")?;
    writeln!(out, "  smsreport{store_arg} campaigns")?;
    writeln!(
        out,
        "  smsreport{store_arg} recipients {DEMO_CAMPAIGN} --status errors"
    )?;
    writeln!(
        out,
        "  smsreport{store_arg} report {DEMO_CAMPAIGN} --format json"
    )?;
    out.flush()?;
    Ok(0)
}

/// `s` as one word for a POSIX shell.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
