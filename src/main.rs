//! `smsreport`: delivery and click reports for SMS marketing campaigns (SPEC §6).
//!
//! This file parses the command line, opens the store named by `--store`, and runs one
//! command; the commands live in [`commands`], their output in [`output`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use smsreport_core::Row;

mod commands;
mod failure;
mod ingest;
mod output;
mod store_url;

use failure::Failure;

/// The store used when neither `--store` nor `SMSREPORT_STORE` names one.
pub const DEFAULT_STORE: &str = "sled:./smsreport-data";

/// Delivery and click reports for SMS marketing campaigns.
#[derive(Debug, Parser)]
#[command(name = "smsreport", version, about)]
pub struct Cli {
    /// Where events are kept: sled:PATH, sqlite:PATH or postgres://…
    #[arg(long, global = true, env = "SMSREPORT_STORE", default_value = DEFAULT_STORE, value_name = "URL")]
    pub store: String,

    #[command(subcommand)]
    pub command: Command,
}

/// One command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ingests NDJSON events from a file or standard input.
    Ingest {
        /// The input file; `-` reads standard input.
        #[arg(default_value = "-", value_name = "FILE|-")]
        input: String,
        /// The input format.
        #[arg(long, value_enum, default_value_t = InputFormat::Ndjson)]
        format: InputFormat,
        /// Writes each rejected line, verbatim and in input order, to this file.
        #[arg(long, value_name = "FILE")]
        rejects: Option<PathBuf>,
    },
    /// Prints a campaign's delivery and link statistics.
    Report {
        /// The campaign's id.
        campaign_id: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Lists the campaigns, newest first.
    Campaigns {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Lists a campaign's messages: recipient, status, error code, clicks.
    Recipients {
        /// The campaign's id.
        campaign_id: String,
        /// Only messages counted in this report row.
        #[arg(long, value_name = "ROW", value_parser = parse_row)]
        status: Option<Row>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Recounts every campaign from per-message state and compares with the stored totals.
    Verify,
    /// Fills the store with a realistic sample campaign and prints its report.
    Demo,
}

/// What `ingest` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputFormat {
    /// One JSON event per line (SPEC §2).
    Ndjson,
}

/// How output is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned text for people.
    Table,
    /// JSON.
    Json,
    /// CSV (RFC 4180) with a header line.
    Csv,
}

fn parse_row(s: &str) -> Result<Row, String> {
    s.parse()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::io("starting the async runtime", e))
        .and_then(|runtime| {
            runtime.block_on(async {
                let store = store_url::open(&cli.store).await?;
                commands::run(cli.command, store, &cli.store).await
            })
        });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => failure.report(),
    }
}
