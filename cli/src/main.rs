//! `aidb`: operate an AiDb database from the shell.
//!
//! Every command that works on a database takes its directory first. Exit
//! codes, which scripts may rely on: 0 success; 1 the answer is "no" (`get`
//! of an absent key, `verify` finding damage, `repair` dropping data); 2 an
//! error (bad arguments, no database, database in use, I/O failure), with
//! one line on stderr.

mod db_cmds;
mod dump;
mod progress;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "aidb",
    version,
    about = "Operate an AiDb database: read and write keys, inspect files, verify, compact and repair",
    long_about = "Operate an AiDb database: read and write keys, inspect files, verify, compact and repair.\n\n\
        Every database command takes the database directory first; none of them creates a \
        database (put, create-cf and the others fail on a directory that holds none).\n\n\
        Keys and values given as arguments are text in which \\xHH stands for a byte, \\\\ for a \
        backslash, and \\t \\n \\r \\0 for their characters. Output shows keys and values the \
        same way (escaped where not printable), one pair per line as KEY<TAB>VALUE, or in hex \
        with --hex.\n\n\
        Exit codes: 0 success; 1 the answer is no (get: key absent; verify: damage found; \
        repair: data dropped); 2 error (bad arguments, no database, database in use by another \
        process, I/O failure), with one line on stderr.",
    after_help = "See docs/operations.md for what the statistics and properties mean."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How keys and values are printed.
#[derive(clap::Args, Clone, Copy)]
struct Output {
    /// Print keys and values in hexadecimal instead of escaped text.
    #[arg(long)]
    hex: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Print the value of KEY; exit 1 when it is absent.
    Get {
        db: PathBuf,
        key: String,
        /// Column family (default: the default family).
        #[arg(long)]
        cf: Option<String>,
        #[command(flatten)]
        out: Output,
    },
    /// Set KEY to VALUE (synced to disk before the command returns).
    Put {
        db: PathBuf,
        key: String,
        value: String,
        #[arg(long)]
        cf: Option<String>,
    },
    /// Delete KEY (synced); deleting an absent key is not an error.
    Delete {
        db: PathBuf,
        key: String,
        #[arg(long)]
        cf: Option<String>,
    },
    /// Print the pairs in key order, one KEY<TAB>VALUE per line.
    Scan {
        db: PathBuf,
        /// Only keys starting with this.
        #[arg(long)]
        prefix: Option<String>,
        /// Only keys at or after this.
        #[arg(long)]
        from: Option<String>,
        /// Only keys before this (exclusive).
        #[arg(long)]
        to: Option<String>,
        /// At most this many pairs.
        #[arg(long)]
        limit: Option<u64>,
        /// Largest key first.
        #[arg(long)]
        reverse: bool,
        /// Print only the keys.
        #[arg(long)]
        keys_only: bool,
        #[arg(long)]
        cf: Option<String>,
        #[command(flatten)]
        out: Output,
    },
    /// Print the statistics (counters and latency histograms since this
    /// open, which includes recovery) and the per-level figures.
    Stats {
        db: PathBuf,
        #[arg(long)]
        cf: Option<String>,
    },
    /// Print properties: the NAMEs given, or every one with what it means.
    Properties {
        db: PathBuf,
        /// Property names, e.g. aidb.num-files-at-level0.
        names: Vec<String>,
        #[arg(long)]
        cf: Option<String>,
    },
    /// Check every table file's checksums and the logs; exit 1 naming each
    /// damaged file.
    Verify { db: PathBuf },
    /// Compact the whole key range of every column family (or --cf) down to
    /// the last level.
    Compact {
        db: PathBuf,
        #[arg(long)]
        cf: Option<String>,
    },
    /// List the column families.
    ListCf { db: PathBuf },
    /// Create a column family with default options.
    CreateCf { db: PathBuf, name: String },
    /// Drop a column family and all its data.
    DropCf { db: PathBuf, name: String },
    /// Describe a table file: properties, block layout, and its entries.
    DumpSst {
        file: PathBuf,
        /// Do not print the entries.
        #[arg(long)]
        no_entries: bool,
        /// Print at most this many entries.
        #[arg(long)]
        limit: Option<u64>,
        #[command(flatten)]
        out: Output,
    },
    /// Print a write-ahead log record by record.
    DumpWal {
        file: PathBuf,
        #[command(flatten)]
        out: Output,
    },
    /// Print the live MANIFEST edit by edit, then the state it describes.
    DumpManifest { db: PathBuf },
    /// Rebuild the MANIFEST from the table files and logs present (when it
    /// is lost or damaged); exit 1 when something had to be dropped.
    Repair { db: PathBuf },
}

/// Why a command did not succeed.
pub(crate) enum Failure {
    /// The answer is no (exit 1); the message, if any, goes to stderr.
    No(Option<String>),
    /// An error (exit 2).
    Error(String),
}

impl From<aidb::Error> for Failure {
    fn from(e: aidb::Error) -> Failure {
        Failure::Error(db_cmds::describe_error(&e))
    }
}

pub(crate) type CmdResult = Result<(), Failure>;

fn run(cli: Cli) -> CmdResult {
    use Command::*;
    match cli.command {
        Get { db, key, cf, out } => db_cmds::get(&db, &key, cf.as_deref(), out.hex),
        Put { db, key, value, cf } => db_cmds::put(&db, &key, Some(&value), cf.as_deref()),
        Delete { db, key, cf } => db_cmds::put(&db, &key, None, cf.as_deref()),
        Scan {
            db,
            prefix,
            from,
            to,
            limit,
            reverse,
            keys_only,
            cf,
            out,
        } => db_cmds::scan(
            &db,
            &db_cmds::ScanArgs {
                prefix,
                from,
                to,
                limit,
                reverse,
                keys_only,
                hex: out.hex,
            },
            cf.as_deref(),
        ),
        Stats { db, cf } => db_cmds::stats(&db, cf.as_deref()),
        Properties { db, names, cf } => db_cmds::properties(&db, &names, cf.as_deref()),
        Verify { db } => db_cmds::verify(&db),
        Compact { db, cf } => db_cmds::compact(&db, cf.as_deref()),
        ListCf { db } => db_cmds::list_cf(&db),
        CreateCf { db, name } => db_cmds::create_cf(&db, &name),
        DropCf { db, name } => db_cmds::drop_cf(&db, &name),
        DumpSst {
            file,
            no_entries,
            limit,
            out,
        } => dump::sst(&file, !no_entries, limit, out.hex),
        DumpWal { file, out } => dump::wal(&file, out.hex),
        DumpManifest { db } => dump::manifest(&db),
        Repair { db } => db_cmds::repair(&db),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::No(message)) => {
            if let Some(m) = message {
                eprintln!("{m}");
            }
            ExitCode::from(1)
        }
        Err(Failure::Error(message)) => {
            eprintln!("aidb: error: {message}");
            ExitCode::from(2)
        }
    }
}
