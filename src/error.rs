//! The error type shared by every part of the engine.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Result alias used throughout AiDb.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in AiDb.
///
/// The enum is `#[non_exhaustive]`: match the variants you care about and
/// keep a wildcard arm for the rest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O call failed. `path` names the file or
    /// directory involved when it is known.
    #[error("I/O error{}: {source}", fmt_path(.path))]
    Io {
        /// The file or directory the failing call worked on, if known.
        path: Option<PathBuf>,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Stored data failed a checksum or structural check. The database
    /// never returns data from a region that failed such a check.
    #[error("corruption in {} at offset {offset}: {reason}", .file.display())]
    Corruption {
        /// The file the damaged bytes were read from.
        file: PathBuf,
        /// Byte offset in `file` of the damaged record, block or field.
        offset: u64,
        /// What check failed.
        reason: String,
    },

    /// An argument or option was rejected; the message names it and says why.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The database does not exist and `Options::create_if_missing` is false.
    #[error("database not found at {}", .path.display())]
    NotFound {
        /// The directory that was expected to hold a database.
        path: PathBuf,
    },

    /// The database exists and `Options::error_if_exists` is true.
    #[error("database already exists at {}", .path.display())]
    AlreadyExists {
        /// The directory that already holds a database.
        path: PathBuf,
    },

    /// Another handle, in this process or another one, has the database open.
    #[error("database at {} is locked by another handle or process", .path.display())]
    Locked {
        /// The database directory.
        path: PathBuf,
    },

    /// The handle was closed; no further operations are possible.
    #[error("database is closed")]
    Closed,

    /// An earlier write, flush or compaction failed, so the database stopped
    /// accepting writes to avoid losing or corrupting data. Reads still work.
    /// Fix the cause (for example free disk space), then call
    /// [`DB::resume`](crate::DB::resume); a failed flush or compaction is
    /// also retried in the background, and writes resume on their own when
    /// the retry succeeds. If `resume` answers [`Error::ReopenRequired`],
    /// close the database and open it again: recovery restores every
    /// acknowledged write.
    #[error("database is read-only after an earlier failure: {cause}")]
    ReadOnly {
        /// The failure that stopped writes.
        #[source]
        cause: Arc<Error>,
    },

    /// The failure that stopped writes left the files in a state that only
    /// recovery at open can sort out (a failed fsync of the log, a failed
    /// MANIFEST write, a panic inside the engine): close the database, fix
    /// the cause and open it again. Returned by
    /// [`DB::resume`](crate::DB::resume), and by the write, `flush` or
    /// `close` whose fsync of the log failed (that write is not
    /// acknowledged: after recovery it may or may not be there).
    #[error("the database must be closed and reopened to recover from: {cause}")]
    ReopenRequired {
        /// The failure that stopped writes.
        #[source]
        cause: Arc<Error>,
    },

    /// A key's merge operands could not be folded: the family has no merge
    /// operator, or the operator refused them (returned `None`). The
    /// operands are kept; the message names the key's family and says why.
    #[error("merge failed: {0}")]
    Merge(String),

    /// A bug or a panic inside the engine or in code it called (a
    /// user-provided file system, for example). The message says where.
    #[error("internal error: {0}")]
    Internal(String),

    /// A [`Transaction`](crate::Transaction) could not commit: another
    /// write committed after the transaction started (or, for a key a
    /// pessimistic transaction locked, after it took the lock) changed a
    /// key this transaction wrote or read with `get_for_update`. Nothing
    /// of the transaction was written. Retry the whole transaction: start
    /// a new one, read again, write again.
    #[error("transaction conflict: a key it wrote or read for update was changed by another commit; nothing was written, retry the transaction")]
    Conflict,

    /// A pessimistic [`Transaction`](crate::Transaction) did not get the
    /// lock on a key within its `lock_timeout`: another transaction holds
    /// it. The operation did nothing; the transaction is still usable, but
    /// the usual answer is to drop it and retry the whole transaction.
    #[error("transaction lock not obtained within the lock timeout")]
    Busy,

    /// A pessimistic [`Transaction`](crate::Transaction) would wait for a
    /// lock held by a transaction that is itself waiting, directly or
    /// through others, for a lock this one holds. This transaction is the
    /// one chosen to give way: the operation did nothing; drop the
    /// transaction (releasing its locks, which lets the others go on) and
    /// retry it.
    #[error("transaction deadlock: waiting for this lock would never end")]
    Deadlock,
}

fn fmt_path(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => format!(" on {}", p.display()),
        None => String::new(),
    }
}

impl Error {
    /// Wraps an I/O error, recording the path it concerns.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Error {
        Error::Io {
            path: Some(path.as_ref().to_path_buf()),
            source,
        }
    }

    /// Builds a corruption error for `file` at `offset`.
    pub fn corruption(file: impl AsRef<Path>, offset: u64, reason: impl Into<String>) -> Error {
        Error::Corruption {
            file: file.as_ref().to_path_buf(),
            offset,
            reason: reason.into(),
        }
    }

    /// An equivalent copy, for handing the same failure to several callers
    /// (`io::Error` is not `Clone`; its kind and message are kept).
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::Io { path, source } => Error::Io {
                path: path.clone(),
                source: match source.raw_os_error() {
                    Some(code) => std::io::Error::from_raw_os_error(code),
                    None => std::io::Error::new(source.kind(), source.to_string()),
                },
            },
            Error::Corruption {
                file,
                offset,
                reason,
            } => Error::Corruption {
                file: file.clone(),
                offset: *offset,
                reason: reason.clone(),
            },
            Error::InvalidArgument(m) => Error::InvalidArgument(m.clone()),
            Error::NotFound { path } => Error::NotFound { path: path.clone() },
            Error::AlreadyExists { path } => Error::AlreadyExists { path: path.clone() },
            Error::Locked { path } => Error::Locked { path: path.clone() },
            Error::Closed => Error::Closed,
            Error::ReadOnly { cause } => Error::ReadOnly {
                cause: cause.clone(),
            },
            Error::ReopenRequired { cause } => Error::ReopenRequired {
                cause: cause.clone(),
            },
            Error::Internal(m) => Error::Internal(m.clone()),
            Error::Merge(m) => Error::Merge(m.clone()),
            Error::Conflict => Error::Conflict,
            Error::Busy => Error::Busy,
            Error::Deadlock => Error::Deadlock,
        }
    }

    /// True for [`Error::Corruption`].
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corruption { .. })
    }

    /// True for the errors that say "run the transaction again":
    /// [`Error::Conflict`], [`Error::Busy`] and [`Error::Deadlock`].
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Conflict | Error::Busy | Error::Deadlock)
    }
}

impl From<std::io::Error> for Error {
    fn from(source: std::io::Error) -> Error {
        Error::Io { path: None, source }
    }
}

/// Attaches a path to `io::Result`s.
pub(crate) trait IoContext<T> {
    fn ctx(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
