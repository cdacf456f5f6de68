//! `smsreport`: delivery and click reports for SMS marketing campaigns (README.md, "Command line").
//!
//! This file parses the command line, opens the store named by `--store`, and runs one
//! command; the commands live in [`commands`], their output in [`output`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use smsreport_core::gateway::Region;
use smsreport_core::insights::{InsightOptions, DEFAULT_STALE_AFTER_H};
use smsreport_core::{Millis, Row};

mod bench;
mod bench_http;
mod commands;
mod failure;
mod ingest;
mod logging;
mod output;
mod serve;
mod store_url;

use failure::Failure;

/// The store used when neither `--store` nor `SMSREPORT_STORE` names one.
pub const DEFAULT_STORE: &str = "sled:./smsreport-data";

/// Delivery and click reports for SMS marketing campaigns.
#[derive(Debug, Parser)]
#[command(name = "smsreport", version, about)]
pub struct Cli {
    /// Where events are kept: sled:PATH, sqlite:PATH or postgres://… (`bench` takes several)
    #[arg(long, global = true, env = "SMSREPORT_STORE", default_value = DEFAULT_STORE, value_name = "URL", action = clap::ArgAction::Append)]
    pub store: Vec<String>,

    /// How log lines are written to standard error: text or json. RUST_LOG filters them
    /// (e.g. RUST_LOG=debug); without it serve logs info and above, other commands
    /// warnings and errors only (docs/deploy.md).
    #[arg(long, global = true, env = "SMSREPORT_LOG_FORMAT", value_enum, default_value_t = logging::LogFormat::Text, value_name = "FORMAT")]
    pub log_format: logging::LogFormat,

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
        /// Reads national recipients of gateway lines (Kannel `to`, Twilio `To`) as
        /// numbers of this region (ISO 3166-1 alpha-2, e.g. LV; docs/rules.md,
        /// "Recipients of callbacks"). Without it, only E.164 numbers are read.
        #[arg(long, value_name = "CC", value_parser = parse_region)]
        default_region: Option<Region>,
        /// Lines per store call (testing).
        #[arg(long, hide = true, default_value_t = ingest::BATCH_LINES)]
        batch_lines: usize,
    },
    /// Prints a campaign's delivery and link statistics.
    Report {
        /// The campaign's id.
        campaign_id: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Clicks per month in this time zone (an IANA name such as Europe/Riga); UTC
        /// without it.
        #[arg(long, value_name = "ZONE")]
        tz: Option<String>,
        /// Insights as of this moment (RFC 3339, e.g. 2026-03-10T00:00:00Z): the clock
        /// waiting ages are measured against (docs/rules.md, "Insights"). Now without it.
        #[arg(long, value_name = "TIME", value_parser = parse_as_of)]
        as_of: Option<Millis>,
        /// Messages awaiting a final receipt for this many hours or more are stale (1 to
        /// 8760).
        #[arg(long, value_name = "HOURS", value_parser = InsightOptions::parse_stale_after,
              default_value_t = DEFAULT_STALE_AFTER_H)]
        stale_after: u32,
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
        /// Only messages awaiting a final receipt for --stale-after hours or more, as of
        /// --as-of (docs/rules.md, "Insights").
        #[arg(long)]
        stale: bool,
        /// Only messages awaiting a final receipt of this age: under_1h, 1h_to_6h,
        /// 6h_to_24h, 24h_to_72h or over_72h (as of --as-of).
        #[arg(long, value_name = "BUCKET")]
        age: Option<String>,
        /// Only messages to this country: a region (KZ), a calling code (+882) or one row
        /// of the report's countries exactly (+882/001).
        #[arg(long, value_name = "COUNTRY")]
        country: Option<String>,
        /// Ages as of this moment (RFC 3339); now without it.
        #[arg(long, value_name = "TIME", value_parser = parse_as_of)]
        as_of: Option<Millis>,
        /// Waiting this many hours or more is stale (1 to 8760).
        #[arg(long, value_name = "HOURS", value_parser = InsightOptions::parse_stale_after,
              default_value_t = DEFAULT_STALE_AFTER_H)]
        stale_after: u32,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Recounts every campaign from per-message state and compares with the stored totals.
    Verify,
    /// Writes the whole store as NDJSON events that `ingest` takes back into any store:
    /// a move to another backend, or a backup (docs/events.md, "Export").
    Export {
        /// The output file (written whole, then renamed into place); `-` writes standard
        /// output.
        #[arg(default_value = "-")]
        output: String,
    },
    /// Erases people: each number is replaced by a random token in messages, clicks and
    /// tracked links, and their contacts are deleted; report figures stay but the
    /// lists' subscribers (docs/rules.md, "Forgetting a person").
    Forget {
        /// The phone numbers, in E.164 form (+37120000001).
        #[arg(required = true, value_name = "RECIPIENT")]
        recipients: Vec<String>,
    },
    /// Data quality of each campaign's gateway callbacks: duplicates, receipts that came
    /// after a final status, rejected callbacks that named the campaign; and statuses
    /// waiting for a message that never came
    /// (docs/rules.md, "Data quality"). Not part of any report.
    Health {
        /// table or json.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Fills the store with a realistic sample campaign and prints its report.
    Demo,
    /// Runs the HTTP service: ingest API, gateway webhooks, tracked links, reports.
    Serve(ServeArgs),
    /// Measures each store named by --store on a synthetic campaign, in a fresh store:
    /// ingest rate, report latency, peak memory, bytes on disk.
    Bench {
        /// Messages in the synthetic campaign (about four events each).
        #[arg(long, default_value_t = 100_000)]
        messages: u64,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Instead: gateway callbacks per second through a real `serve` on 127.0.0.1
        /// from N concurrent clients, one Twilio callback per request, beside the floor
        /// of one durable write per event from N writers (BENCHMARKS.md).
        #[arg(long, value_name = "N", value_parser = parse_positive)]
        http_clients: Option<usize>,
        /// With --http-clients: callbacks to post (and the floor's writes).
        #[arg(long, default_value_t = 20_000, requires = "http_clients")]
        callbacks: u64,
        /// With --http-clients: `serve --group-commit-max N` (0: group commit off).
        #[arg(long, value_name = "N", requires = "http_clients")]
        group_commit_max: Option<usize>,
        /// With --http-clients: `serve --group-commit-writers N` (absent: serve's default).
        #[arg(long, value_name = "N", requires = "http_clients", value_parser = parse_positive)]
        group_commit_writers: Option<usize>,
    },
    /// Prints a shell completion script for smsreport (e.g. `smsreport completions bash >
    /// /etc/bash_completion.d/smsreport`).
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Prints smsreport's manual page (roff; `smsreport man | man -l -`).
    Man,
    /// Measures one store for `bench` in a process of its own.
    #[command(hide = true)]
    BenchWorker {
        #[arg(long)]
        messages: u64,
    },
}

/// The options of `serve` (README.md, "HTTP service"); each also from `SMSREPORT_<NAME>`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(
        long,
        env = "SMSREPORT_LISTEN",
        default_value = "127.0.0.1:7878",
        value_name = "ADDR"
    )]
    pub listen: String,
    /// The API bearer token (and the dashboard's password).
    #[arg(
        long,
        env = "SMSREPORT_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// How the world reaches this server, for tracked links and Twilio signatures;
    /// default http:// + the listen address.
    #[arg(long, env = "SMSREPORT_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Twilio's auth token: Twilio callbacks must then carry a valid X-Twilio-Signature.
    #[arg(
        long,
        env = "SMSREPORT_TWILIO_AUTH_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub twilio_auth_token: Option<String>,
    /// The Kannel, Jasmin and SMPP webhooks then need ?key=KEY.
    #[arg(
        long,
        env = "SMSREPORT_WEBHOOK_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub webhook_key: Option<String>,
    /// Allows listening on a non-loopback address without --token, --webhook-key and
    /// --twilio-auth-token (docs/security.md).
    #[arg(long, env = "SMSREPORT_INSECURE")]
    pub insecure: bool,
    /// The largest request body of /v1/events and message registration, in bytes.
    #[arg(long, env = "SMSREPORT_BODY_LIMIT", default_value_t = smsreport_http::DEFAULT_BODY_LIMIT, value_name = "BYTES")]
    pub body_limit: usize,
    /// Reads national recipients of callbacks (Twilio `To`, Kannel `to`) as numbers of
    /// this region (ISO 3166-1 alpha-2, e.g. LV); a webhook's ?region=CC overrides it
    /// (docs/rules.md, "Recipients of callbacks").
    #[arg(long, env = "SMSREPORT_DEFAULT_REGION", value_name = "CC", value_parser = parse_region)]
    pub default_region: Option<Region>,
    /// The largest body of a Twilio, Kannel or Jasmin callback, in bytes.
    #[arg(long, env = "SMSREPORT_WEBHOOK_BODY_LIMIT", default_value_t = smsreport_http::DEFAULT_WEBHOOK_BODY_LIMIT, value_name = "BYTES")]
    pub webhook_body_limit: usize,
    /// The largest body of an SMPP receipt batch, in bytes.
    #[arg(long, env = "SMSREPORT_SMPP_BODY_LIMIT", default_value_t = smsreport_http::DEFAULT_SMPP_BODY_LIMIT, value_name = "BYTES")]
    pub smpp_body_limit: usize,
    /// Seconds a request body may take to arrive in whole (then 408).
    #[arg(long, env = "SMSREPORT_BODY_TIMEOUT", default_value_t = smsreport_http::DEFAULT_BODY_TIMEOUT.as_secs(), value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub body_timeout: u64,
    /// Seconds a connection may take to send a whole request head, from its opening or
    /// its previous answer (slow, silent and idle keep-alive connections are closed).
    #[arg(long, env = "SMSREPORT_HEADER_TIMEOUT", default_value_t = smsreport_http::DEFAULT_HEADER_TIMEOUT.as_secs(), value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout: u64,
    /// Seconds a write to a connection may make no progress (its client reads none of
    /// the answer) before the connection is closed; the clock restarts whenever more of
    /// the answer is taken, so a client that keeps reading is not cut.
    #[arg(long, env = "SMSREPORT_WRITE_TIMEOUT", default_value_t = smsreport_http::DEFAULT_WRITE_TIMEOUT.as_secs(), value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub write_timeout: u64,
    /// The largest request head (request line and headers), in bytes (8192 or more);
    /// a bigger one is 431.
    #[arg(long, env = "SMSREPORT_MAX_HEADER_BYTES", default_value_t = smsreport_http::DEFAULT_MAX_HEADER_BYTES, value_name = "BYTES", value_parser = parse_header_bytes)]
    pub max_header_bytes: usize,
    /// The most connections served at once; one more is answered 503 and closed.
    #[arg(long, env = "SMSREPORT_MAX_CONNECTIONS", default_value_t = smsreport_http::DEFAULT_MAX_CONNECTIONS, value_name = "N", value_parser = parse_positive)]
    pub max_connections: usize,
    /// Seconds the requests in flight get to finish after SIGTERM or SIGINT.
    #[arg(long, env = "SMSREPORT_SHUTDOWN_TIMEOUT", default_value_t = smsreport_http::DEFAULT_SHUTDOWN_TIMEOUT.as_secs(), value_name = "SECONDS")]
    pub shutdown_timeout: u64,
    /// Failed authentications one client address may make per minute before it is
    /// answered 429 (0: no limit).
    #[arg(long, env = "SMSREPORT_AUTH_FAILURES_PER_MINUTE", default_value_t = smsreport_http::DEFAULT_AUTH_FAILURES_PER_MINUTE, value_name = "N")]
    pub auth_failures_per_minute: u32,
    /// Unknown /c/ codes one client address may ask for per minute before it is
    /// answered 429 (0: no limit).
    #[arg(long, env = "SMSREPORT_UNKNOWN_CODES_PER_MINUTE", default_value_t = smsreport_http::DEFAULT_UNKNOWN_CODES_PER_MINUTE, value_name = "N")]
    pub unknown_codes_per_minute: u32,
    /// Checks the configuration and opens the store (migrating it, as a start would),
    /// prints what serve would run with, and exits without listening: 0 when all is well,
    /// else the usual error and exit status.
    #[arg(long)]
    pub check: bool,
    /// Group commit: the most events concurrent ingest requests share one durable store
    /// write with (0: off, each request writes on its own; ARCHITECTURE.md, "Group commit").
    #[arg(long, env = "SMSREPORT_GROUP_COMMIT_MAX", default_value_t = smsreport_http::group::DEFAULT_GROUP_COMMIT_MAX, value_name = "N")]
    pub group_commit_max: usize,
    /// Group commit: microseconds a write may wait for more requests while the store is
    /// busy (0: only those already waiting).
    #[arg(long, env = "SMSREPORT_GROUP_COMMIT_LINGER_US", default_value_t = smsreport_http::group::DEFAULT_GROUP_COMMIT_LINGER.as_micros() as u64, value_name = "MICROSECONDS")]
    pub group_commit_linger_us: u64,
    /// The click spool: a local file that keeps the /c/ clicks the store fails to take,
    /// recorded once it takes writes again (docs/security.md, "Clicks while the store is
    /// down"). Default: click-spool.ndjson in a sled folder, FILE-click-spool.ndjson
    /// beside a SQLite file, smsreport-click-spool.ndjson in the working directory for
    /// PostgreSQL. Created only when a first click needs it.
    #[arg(long, env = "SMSREPORT_CLICK_SPOOL", value_name = "PATH")]
    pub click_spool: Option<std::path::PathBuf>,
    /// The largest click spool file, in bytes (0: no spool; a click the store fails to
    /// take is lost, as it is once the spool is full).
    #[arg(long, env = "SMSREPORT_CLICK_SPOOL_MAX_BYTES", default_value_t = smsreport_http::DEFAULT_CLICK_SPOOL_MAX_BYTES, value_name = "BYTES")]
    pub click_spool_max_bytes: u64,
    /// Group commit: how many shared writes may be in the store at once (default 1; more
    /// can help on PostgreSQL when concurrent writes share no rows; BENCHMARKS.md).
    #[arg(long, env = "SMSREPORT_GROUP_COMMIT_WRITERS", value_parser = parse_positive, value_name = "N")]
    pub group_commit_writers: Option<usize>,
}

fn parse_header_bytes(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 8192 => Ok(n),
        _ => Err(format!("{s:?} is not a number of bytes of 8192 or more")),
    }
}

fn parse_positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{s:?} is not a whole number of 1 or more")),
    }
}

/// What `ingest` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputFormat {
    /// One JSON event per line (docs/events.md).
    Ndjson,
    /// One SMPP delivery receipt text per line.
    Smpp,
    /// One Kannel DLR query string per line (type=1&id=…&ts=…).
    Kannel,
    /// One Jasmin HTTP DLR form body per line (id=…&level=…&message_status=…).
    Jasmin,
    /// One Twilio status callback form body per line (MessageSid=…&MessageStatus=…).
    Twilio,
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

fn parse_as_of(s: &str) -> Result<Millis, String> {
    Millis::parse(s)
}

fn parse_region(s: &str) -> Result<Region, String> {
    Region::parse(s)
}

/// The one store a command other than `bench` works on.
fn one_store(stores: &[String]) -> Result<String, Failure> {
    match stores {
        [one] => Ok(one.clone()),
        [] => Ok(DEFAULT_STORE.to_owned()),
        _ => Err(Failure::Usage(format!(
            "--store is given {} times; only bench measures several stores",
            stores.len()
        ))),
    }
}

/// `completions` and `man`: generated from the command line's definition.
fn generated(command: &Command) -> Option<Result<u8, Failure>> {
    use clap::CommandFactory;
    let mut out = std::io::stdout().lock();
    match command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "smsreport", &mut out);
            Some(Ok(0))
        }
        Command::Man => Some(
            clap_mangen::Man::new(Cli::command())
                .render(&mut out)
                .map(|()| 0)
                .map_err(|e| Failure::io("writing the manual page", e)),
        ),
        _ => None,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(result) = generated(&cli.command) {
        return match result {
            Ok(code) => ExitCode::from(code),
            Err(failure) => failure.report(),
        };
    }
    let serve = matches!(cli.command, Command::Serve(_));
    logging::init(cli.log_format, if serve { logging::SERVE } else { "warn" });
    // The service uses every core; a command, one thread.
    let mut builder = if matches!(
        cli.command,
        Command::Serve(_)
            | Command::Bench {
                http_clients: Some(_),
                ..
            }
    ) {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let result = builder
        .enable_all()
        .build()
        .map_err(|e| Failure::io("starting the async runtime", e))
        .and_then(|runtime| {
            runtime.block_on(async {
                match cli.command {
                    Command::Bench {
                        http_clients: Some(clients),
                        callbacks,
                        group_commit_max,
                        group_commit_writers,
                        format,
                        ..
                    } => {
                        let b = bench_http::HttpBench {
                            clients,
                            callbacks,
                            group_commit_max,
                            group_commit_writers,
                        };
                        return bench_http::command(&cli.store, b, format).await;
                    }
                    Command::Bench {
                        messages, format, ..
                    } => return bench::command(&cli.store, messages, format).await,
                    Command::BenchWorker { messages } => {
                        return bench::worker(&one_store(&cli.store)?, messages).await
                    }
                    _ => {}
                }
                let url = one_store(&cli.store)?;
                let store = store_url::open(&url).await?;
                commands::run(cli.command, store, &url).await
            })
        });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => failure.report(),
    }
}
