//! Appends records to a log file.

use super::{encode_file_header, fragment_crc, FragmentType, LogKind, BLOCK_SIZE, HEADER_SIZE};
use crate::coding::mask_crc;
use crate::fs::WritableFile;
use std::io;

/// Writes logical records to a log file.
///
/// Each [`add_record`](LogWriter::add_record) hands the whole record, with
/// all its fragments, to the file system in one `append`, so a crash of the
/// process leaves either the full record or a torn tail that recovery
/// recognises.
pub(crate) struct LogWriter {
    file: Box<dyn WritableFile>,
    block_offset: usize,
    buf: Vec<u8>,
    /// Set once a sync failed: the file is never synced again (see `sync`).
    sync_failed: bool,
}

impl LogWriter {
    /// A writer over `file` that writes no header: for the handles of
    /// read-only opens, whose files refuse every write.
    pub(crate) fn detached(file: Box<dyn WritableFile>) -> LogWriter {
        LogWriter {
            file,
            block_offset: 0,
            buf: Vec::new(),
            sync_failed: false,
        }
    }

    /// Starts a new log in an empty file, writing its header record.
    pub(crate) fn create(
        file: Box<dyn WritableFile>,
        kind: LogKind,
        number: u64,
    ) -> io::Result<LogWriter> {
        let mut w = LogWriter {
            file,
            block_offset: 0,
            buf: Vec::new(),
            sync_failed: false,
        };
        w.add_record(&encode_file_header(kind, number))?;
        Ok(w)
    }

    /// Appends one logical record.
    pub(crate) fn add_record(&mut self, payload: &[u8]) -> io::Result<()> {
        self.buf.clear();
        let mut block_offset = self.block_offset;
        let mut rest = payload;
        let mut first = true;
        loop {
            let left_in_block = BLOCK_SIZE - block_offset;
            if left_in_block < HEADER_SIZE {
                self.buf.resize(self.buf.len() + left_in_block, 0);
                block_offset = 0;
                continue;
            }
            let room = left_in_block - HEADER_SIZE;
            let take = rest.len().min(room);
            let last = take == rest.len();
            let kind = match (first, last) {
                (true, true) => FragmentType::Full,
                (true, false) => FragmentType::First,
                (false, false) => FragmentType::Middle,
                (false, true) => FragmentType::Last,
            };
            let (piece, tail) = rest.split_at(take);
            let crc = mask_crc(fragment_crc(kind as u8, piece));
            self.buf.extend_from_slice(&crc.to_le_bytes());
            self.buf.extend_from_slice(&(take as u16).to_le_bytes());
            self.buf.push(kind as u8);
            self.buf.extend_from_slice(piece);
            block_offset += HEADER_SIZE + take;
            rest = tail;
            first = false;
            if last {
                break;
            }
        }
        self.file.append(&self.buf)?;
        self.block_offset = block_offset;
        if self.buf.capacity() > 4 * BLOCK_SIZE {
            self.buf = Vec::new();
        }
        Ok(())
    }

    /// Makes every appended record durable.
    ///
    /// After a failed fsync the kernel may have dropped the pages it could
    /// not write and marked them clean, so the next fsync would report
    /// success without them ("fsyncgate"). Once a sync failed, every later
    /// one fails here, without reaching the file: whatever path asks (a
    /// commit, a rotation, a flush, close), nothing can take the log for
    /// durable; only a reopen, which reads what is really on disk, can.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        if self.sync_failed {
            return Err(io::Error::other(
                "an earlier fsync of this file failed, so its data may be lost: \
                 close and reopen the database",
            ));
        }
        let result = self.file.sync();
        self.sync_failed = result.is_err();
        result
    }

    /// Bytes written so far.
    pub(crate) fn len(&self) -> u64 {
        self.file.len()
    }

    /// Reserves room for the log to grow to `len` bytes (see
    /// [`WritableFile::preallocate`]); readers take the zeros past the
    /// records for the end of the log.
    pub(crate) fn preallocate(&mut self, len: u64) -> io::Result<()> {
        self.file.preallocate(len)
    }

    /// Gives back the room `preallocate` reserved and did not use, so that
    /// a log that is done ends with its last record; durable once synced.
    pub(crate) fn trim(&mut self) -> io::Result<()> {
        self.file.trim()
    }
}
