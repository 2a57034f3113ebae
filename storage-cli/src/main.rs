//! `storage-inspect`: looks into a `storage` database without the program
//! that wrote it. Record tables are read from their stored schema rows: keys
//! decoded by the key fields' types, records decoded to JSON from the stored
//! layout. A file is opened read-only, except by `compact`.
//!
//! ```text
//! storage-inspect app.redb tables
//! storage-inspect app.redb schema users
//! storage-inspect app.redb get users 42
//! storage-inspect app.redb dump users --from 10 --limit 5 --json
//! storage-inspect app.redb check
//! storage-inspect app.redb stats
//! storage-inspect app.redb backup copy.redb
//! storage-inspect app.redb compact
//! storage-inspect --etcd http://127.0.0.1:2379 --namespace app tables
//! ```
//!
//! Exit codes: 0 done; 1 `get` found no entry; 2 bad usage; 3 `check` or
//! `dump` found damage (reported, the work went on); 4 not a database (or
//! none there); 5 locked by a running program; 6 unknown table or key; 7
//! anything else (I/O, a cluster out of reach).

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use storage::{DumpRange, Error, Storage, TableKind};

/// Looks into a storage database without the program that wrote it.
#[derive(Parser, Debug)]
#[command(name = "storage-inspect", version, about)]
struct Cli {
    /// The database file (or `--etcd`).
    #[arg(required_unless_present = "etcd")]
    file: Option<PathBuf>,
    /// An etcd cluster's client URL instead of a file (repeat for more members).
    #[arg(long, value_name = "URL")]
    etcd: Vec<String>,
    /// The namespace in the etcd cluster.
    #[arg(long, default_value = "storage", requires = "etcd")]
    namespace: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Every table: record tables with their type, version, key, indexes,
    /// entries and sizes; tables written by name with their counts.
    Tables {
        /// JSON lines instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The stored schema of a record table.
    Schema {
        /// The table.
        table: String,
        /// The schema row as stored (JSON).
        #[arg(long)]
        json: bool,
    },
    /// One record, decoded to JSON.
    Get {
        /// The table.
        table: String,
        /// The key: `42`, `alice`, or a JSON array for a composite key, `[42, "x"]`.
        key: String,
    },
    /// Records in key order, decoded.
    Dump {
        /// The table.
        table: String,
        /// From this key on.
        #[arg(long)]
        from: Option<String>,
        /// Up to this key (excluded).
        #[arg(long)]
        to: Option<String>,
        /// Keys starting with this (leading parts of a composite key, the start of a string key).
        #[arg(long)]
        prefix: Option<String>,
        /// At most this many records.
        #[arg(long)]
        limit: Option<usize>,
        /// One JSON object per line: {"key": .., "value": ..} or {"key": .., "error": ..}.
        #[arg(long)]
        json: bool,
    },
    /// Checks every record and every index entry; exit code 3 on findings.
    Check {
        /// JSON lines instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Compacts the file (needs it to itself: no program may have it open).
    Compact,
    /// Copies the database, as of one snapshot, to a new file.
    Backup {
        /// The new file.
        path: PathBuf,
    },
    /// Sizes: the file, its free and fragmented space, every table.
    Stats {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// A failure, with its exit code.
struct Failure {
    code: u8,
    message: String,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let code = match &error {
            Error::NotADatabase { .. } => 4,
            Error::Damaged { .. } => 3,
            Error::Open { .. } => 4,
            Error::AlreadyOpen { .. } => 5,
            Error::BadKey { .. } => 6,
            _ => 7,
        };
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        Failure { code, message }
    }
}

fn fail(code: u8, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

fn open(cli: &Cli, writable: bool) -> Result<Storage, Failure> {
    if !cli.etcd.is_empty() {
        return Ok(Storage::builder()
            .etcd(cli.etcd.clone())
            .namespace(&cli.namespace)
            .timeout(Duration::from_secs(5))
            .open()?);
    }
    let Some(path) = &cli.file else {
        return Err(fail(2, "give a database file or --etcd"));
    };
    if !path.exists() {
        return Err(fail(4, format!("{}: no such file", path.display())));
    }
    let builder = Storage::builder();
    let builder = if writable {
        builder
    } else {
        builder.read_only()
    };
    Ok(builder.open(path)?)
}

/// Progress on stderr: a bar on a terminal, a line now and then otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last: std::time::Instant,
}

impl Progress {
    fn new() -> Self {
        Progress {
            bar: None,
            last: std::time::Instant::now(),
        }
    }

    fn update(&mut self, what: &str, done: u64, total: u64) {
        if std::io::stderr().is_terminal() {
            let bar = self.bar.get_or_insert_with(|| {
                let bar = indicatif::ProgressBar::new(total);
                if let Ok(style) = indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:40}] {pos}/{len} ({eta} left)",
                ) {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar
            });
            bar.set_length(total);
            bar.set_message(what.to_owned());
            bar.set_position(done);
        } else if self.last.elapsed() >= Duration::from_secs(2) || (done == total && total > 0) {
            self.last = std::time::Instant::now();
            note(format_args!("{what}: {done}/{total}"));
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

fn unknown_table(storage: &Storage, table: &str) -> Result<(), Failure> {
    let stats = storage.stats()?;
    if stats.tables.iter().any(|t| t.name == table) {
        return Ok(());
    }
    let names: Vec<&str> = stats
        .tables
        .iter()
        .filter(|t| !t.name.starts_with("__"))
        .map(|t| t.name.as_str())
        .collect();
    Err(fail(
        6,
        format!("no table `{table}`; the tables are: {}", names.join(", ")),
    ))
}

/// Standard output, remembering the first error writing to it.
struct Out {
    lock: std::io::StdoutLock<'static>,
    error: Option<std::io::Error>,
}

/// Writes a line to standard output; after an error, nothing more.
fn write(out: &mut Out, line: String) {
    if out.error.is_none()
        && let Err(e) = writeln!(out.lock, "{line}")
    {
        out.error = Some(e);
    }
}

/// A line on standard error; an error writing it is ignored (there is
/// nowhere left to report it).
fn note(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn run(cli: &Cli) -> Result<u8, Failure> {
    let mut out = Out {
        lock: std::io::stdout().lock(),
        error: None,
    };
    let code = command(cli, &mut out)?;
    let flushed = out.lock.flush();
    match out.error.map_or(flushed, Err) {
        // A closed pipe (`| head`) ends the output, not the program.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(code),
        Err(e) => Err(fail(7, format!("writing the output: {e}"))),
        Ok(()) => Ok(code),
    }
}

fn command(cli: &Cli, out: &mut Out) -> Result<u8, Failure> {
    match &cli.command {
        Command::Tables { json } => {
            let storage = open(cli, false)?;
            let stats = storage.stats()?;
            let records = storage.record_tables()?;
            for table in &stats.tables {
                let schema = records.iter().find(|r| r.table == table.name);
                if *json {
                    let mut line = serde_json::json!({
                        "table": table.name,
                        "kind": kind_name(&table.kind),
                        "entries": table.entries,
                        "key_bytes": table.key_bytes,
                        "value_bytes": table.value_bytes,
                    });
                    if let Some(schema) = schema {
                        line["record"] = schema.record.clone().into();
                        line["version"] = schema.version.into();
                        line["key"] = schema.key.clone().into();
                        line["indexes"] = schema
                            .indexes
                            .iter()
                            .map(|i| {
                                serde_json::json!({
                                    "name": i.name, "unique": i.unique,
                                    "fields": i.fields, "each": i.each,
                                    "method": i.method, "built": i.built,
                                })
                            })
                            .collect();
                    }
                    write(out, line.to_string());
                    continue;
                }
                let size = table.key_bytes + table.value_bytes;
                match schema {
                    Some(schema) => {
                        let indexes: Vec<String> = schema
                            .indexes
                            .iter()
                            .map(|i| {
                                format!(
                                    "{}{}{}{}",
                                    i.name,
                                    if i.unique { " (unique)" } else { "" },
                                    if i.each { " (each)" } else { "" },
                                    if i.built { "" } else { " (not built)" }
                                )
                            })
                            .collect();
                        write(
                            out,
                            format!(
                                "{}: {} records of {} v{}, key ({}), {} bytes{}",
                                table.name,
                                table.entries,
                                schema.record,
                                schema.version,
                                schema.key.join(", "),
                                size,
                                if indexes.is_empty() {
                                    String::new()
                                } else {
                                    format!(", indexes: {}", indexes.join(", "))
                                }
                            ),
                        );
                    }
                    None => write(
                        out,
                        format!(
                            "{}: {} entries ({}), {} bytes",
                            table.name,
                            table.entries,
                            kind_name(&table.kind),
                            size
                        ),
                    ),
                }
            }
            Ok(0)
        }
        Command::Schema { table, json } => {
            let storage = open(cli, false)?;
            let Some(schema) = storage.record_table(table)? else {
                unknown_table(&storage, table)?;
                return Err(fail(
                    6,
                    format!("`{table}` is not a record table (it has no stored schema)"),
                ));
            };
            if *json {
                write(
                    out,
                    serde_json::to_string_pretty(&schema.row).unwrap_or_default(),
                );
                return Ok(0);
            }
            write(
                out,
                format!(
                    "table `{}`: version {} of `{}`, key ({}){}",
                    schema.table,
                    schema.version,
                    schema.record,
                    schema.key.join(", "),
                    if schema.keeps_changes {
                        ", keeps a change log"
                    } else {
                        ""
                    }
                ),
            );
            write(out, format!("layout: {}", schema.layout));
            for index in &schema.indexes {
                write(
                    out,
                    format!(
                        "index `{}` {}{}{}{}",
                        index.name,
                        match &index.method {
                            Some(method) => format!("by {method}()"),
                            None => format!("on ({})", index.fields.join(", ")),
                        },
                        if index.each {
                            ", one entry per element"
                        } else {
                            ""
                        },
                        if index.unique { ", unique" } else { "" },
                        if index.built { "" } else { ", not built" }
                    ),
                );
            }
            Ok(0)
        }
        Command::Get { table, key } => {
            let storage = open(cli, false)?;
            unknown_table(&storage, table)?;
            match storage.get_json(table, key)? {
                Some(entry) => match entry.value {
                    Ok(value) => {
                        write(
                            out,
                            serde_json::to_string_pretty(&value).unwrap_or_default(),
                        );
                        Ok(0)
                    }
                    Err(why) => Err(fail(
                        3,
                        format!("table `{table}`: record {key} is corrupt: {why}"),
                    )),
                },
                None => {
                    note(format_args!("table `{table}`: no entry under {key}"));
                    Ok(1)
                }
            }
        }
        Command::Dump {
            table,
            from,
            to,
            prefix,
            limit,
            json,
        } => {
            let storage = open(cli, false)?;
            unknown_table(&storage, table)?;
            let mut range = DumpRange::all();
            range.from.clone_from(from);
            range.to.clone_from(to);
            range.prefix.clone_from(prefix);
            range.limit = *limit;
            let total = storage
                .stats()?
                .tables
                .iter()
                .find(|t| t.name == *table)
                .map_or(0, |t| t.entries);
            let total = limit.map_or(total, |l| total.min(l as u64));
            let mut progress = Progress::new();
            let mut corrupt = 0u64;
            let mut done = 0u64;
            storage.dump(table, &range, |entry| {
                done += 1;
                let line = match (&entry.value, *json) {
                    (Ok(value), true) => {
                        serde_json::json!({"key": entry.key, "value": value}).to_string()
                    }
                    (Err(why), true) => {
                        serde_json::json!({"key": entry.key, "error": why}).to_string()
                    }
                    (Ok(value), false) => format!("{}: {}", entry.key, value),
                    (Err(why), false) => format!("{}: CORRUPT ({why})", entry.key),
                };
                if entry.value.is_err() {
                    corrupt += 1;
                    note(format_args!(
                        "table `{table}`: record {} is corrupt",
                        entry.key
                    ));
                }
                write(out, line);
                if done.is_multiple_of(1024) {
                    progress.update(table, done, total);
                }
                true
            })?;
            progress.finish();
            Ok(if corrupt > 0 { 3 } else { 0 })
        }
        Command::Check { json } => {
            let storage = open(cli, false)?;
            let mut progress = Progress::new();
            let reports =
                storage.check(|table, done, total| progress.update(table, done, total))?;
            progress.finish();
            let mut clean = true;
            for report in &reports {
                clean &= report.is_clean();
                if *json {
                    write(
                        out,
                        serde_json::json!({
                            "table": report.table,
                            "records": report.records,
                            "clean": report.is_clean(),
                            "corrupt": report.corrupt.count,
                            "indexes": report.indexes.iter().map(|i| serde_json::json!({
                                "index": i.index, "built": i.built, "entries": i.entries,
                                "dangling": i.dangling.count, "mismatched": i.mismatched.count,
                                "missing": i.missing.count, "duplicates": i.duplicates.count,
                            })).collect::<Vec<_>>(),
                        })
                        .to_string(),
                    );
                } else {
                    write(out, report.to_string());
                }
            }
            Ok(if clean { 0 } else { 3 })
        }
        Command::Compact => {
            if !cli.etcd.is_empty() {
                return Err(fail(
                    7,
                    "an etcd cluster compacts itself: `etcdctl compact` and `etcdctl defrag`",
                ));
            }
            // A writable open would make an empty file a database.
            if cli
                .file
                .as_ref()
                .is_some_and(|f| std::fs::metadata(f).is_ok_and(|m| m.len() == 0))
            {
                return Err(fail(4, "an empty file is not a database"));
            }
            let mut storage = open(cli, true)?;
            let report = storage.compact()?;
            write(
                out,
                format!(
                    "compacted: {} bytes before, {} after, {} reclaimed",
                    report.bytes_before.unwrap_or(0),
                    report.bytes_after.unwrap_or(0),
                    report.reclaimed()
                ),
            );
            Ok(0)
        }
        Command::Backup { path } => {
            let storage = open(cli, false)?;
            // The database opened: what fails now is the copy.
            let report = storage.backup_to(path).map_err(|e| {
                let mut failure = Failure::from(e);
                failure.code = 7;
                failure
            })?;
            write(
                out,
                format!(
                    "backed up {} tables, {} entries ({} bytes) to {}",
                    report.tables,
                    report.entries,
                    report.bytes,
                    report.path.display()
                ),
            );
            Ok(0)
        }
        Command::Stats { json } => {
            let storage = open(cli, false)?;
            let stats = storage.stats()?;
            if *json {
                let tables: Vec<_> = stats
                    .tables
                    .iter()
                    .map(|t| {
                        serde_json::json!({
                            "table": t.name, "kind": kind_name(&t.kind), "entries": t.entries,
                            "key_bytes": t.key_bytes, "value_bytes": t.value_bytes,
                        })
                    })
                    .collect();
                write(
                    out,
                    serde_json::json!({
                        "file_bytes": stats.file_bytes,
                        "allocated_bytes": stats.allocated_bytes,
                        "fragmented_bytes": stats.fragmented_bytes,
                        "tables": tables,
                    })
                    .to_string(),
                );
            } else {
                write(out, stats.to_string().trim_end().to_owned());
            }
            Ok(0)
        }
    }
}

fn kind_name(kind: &TableKind) -> String {
    match kind {
        TableKind::Records { .. } => "records".to_owned(),
        TableKind::Index { table, index } => format!("index {index} of {table}"),
        TableKind::ChangeLog { table } => format!("change log of {table}"),
        TableKind::Schema => "schema rows".to_owned(),
        TableKind::Staging => "migration staging".to_owned(),
        TableKind::Named => "by name".to_owned(),
        _ => "other".to_owned(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            note(format_args!("storage-inspect: {}", failure.message));
            ExitCode::from(failure.code)
        }
    }
}
