//! Reads records back from a log file, telling torn tails from damage.

use super::{
    fragment_crc, FragmentType, LogKind, BLOCK_SIZE, FILE_HEADER_LEN, HEADER_SIZE,
    LOG_FORMAT_VERSION, LOG_MAGIC, OLDEST_LOG_FORMAT_VERSION,
};
use crate::coding::{get_u32_le, get_u64_le, unmask_crc};

/// One step of reading a log.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadEvent {
    /// A complete, checksummed record starting at `offset`.
    Record { offset: u64, data: Vec<u8> },
    /// The end of the file, after a complete record.
    Eof,
    /// The file ends inside a record, or its final fragment is damaged: the
    /// mark of a write cut short by a crash. Nothing follows.
    TornTail { offset: u64, reason: String },
    /// Damage before the end of the file. Reading can go on after it (the
    /// reader resumes at the next block), for recovery modes that skip
    /// damaged records.
    Corrupt { offset: u64, reason: String },
}

enum Fragment<'a> {
    Ok {
        kind: FragmentType,
        payload: &'a [u8],
    },
    End,
    Torn(String),
    Bad(String),
}

/// Reads logical records from the bytes of a log file.
pub(crate) struct LogReader<'a> {
    data: &'a [u8],
    pos: usize,
    header_checked: bool,
    expected_kind: LogKind,
    /// Set after skipping damage to a block start: the MIDDLE and LAST
    /// fragments found there belong to a record that began before the
    /// damage and are passed over quietly until a record starts.
    resyncing: bool,
}

impl<'a> LogReader<'a> {
    /// A reader over a whole log file's contents.
    pub(crate) fn new(data: &'a [u8], expected_kind: LogKind) -> LogReader<'a> {
        LogReader {
            data,
            pos: 0,
            header_checked: false,
            expected_kind,
            resyncing: false,
        }
    }

    /// The next event. After `Eof` or `TornTail`, keeps returning `Eof`.
    pub(crate) fn next_event(&mut self) -> ReadEvent {
        if !self.header_checked {
            self.header_checked = true;
            match self.read_record() {
                ReadEvent::Record { offset, data } => {
                    if let Err(reason) = self.check_header(&data) {
                        // A bad header means this is not one of our logs (or
                        // its first block is damaged): nothing in it can be
                        // trusted.
                        self.pos = self.data.len();
                        return ReadEvent::Corrupt { offset, reason };
                    }
                }
                other => return other,
            }
        }
        self.read_record()
    }

    fn check_header(&self, data: &[u8]) -> Result<(), String> {
        if data.len() != FILE_HEADER_LEN || data.get(..8) != Some(&LOG_MAGIC[..]) {
            return Err("missing log file header (bad magic)".into());
        }
        let version = get_u32_le(&data[8..]).unwrap_or(0);
        if !(OLDEST_LOG_FORMAT_VERSION..=LOG_FORMAT_VERSION).contains(&version) {
            return Err(format!("unsupported log format version {version}"));
        }
        let kind = data[12];
        if kind != self.expected_kind as u8 {
            return Err(format!(
                "log holds file kind {kind}, expected {}",
                self.expected_kind as u8
            ));
        }
        let _number = get_u64_le(&data[13..]);
        Ok(())
    }

    fn read_record(&mut self) -> ReadEvent {
        let mut assembled: Option<(u64, Vec<u8>)> = None;
        loop {
            let start = self.pos;
            match self.read_fragment() {
                Fragment::End => {
                    return match assembled {
                        Some((offset, _)) => ReadEvent::TornTail {
                            offset,
                            reason: "log ends inside a fragmented record".into(),
                        },
                        None => ReadEvent::Eof,
                    }
                }
                Fragment::Torn(reason) => {
                    self.pos = self.data.len();
                    let offset = assembled.map_or(start as u64, |(o, _)| o);
                    return ReadEvent::TornTail { offset, reason };
                }
                Fragment::Bad(reason) => {
                    self.skip_damage(start);
                    return ReadEvent::Corrupt {
                        offset: start as u64,
                        reason,
                    };
                }
                // The fragment is intact, so the reader is on the writer's
                // fragment boundaries whatever happens next.
                Fragment::Ok { kind, payload } => match (kind, assembled.as_mut()) {
                    (FragmentType::Full, None) => {
                        self.resyncing = false;
                        return ReadEvent::Record {
                            offset: start as u64,
                            data: payload.to_vec(),
                        };
                    }
                    (FragmentType::First, None) => {
                        self.resyncing = false;
                        assembled = Some((start as u64, payload.to_vec()));
                    }
                    (FragmentType::Middle, Some((_, buf))) => buf.extend_from_slice(payload),
                    (FragmentType::Last, Some((offset, buf))) => {
                        let offset = *offset;
                        let mut data = std::mem::take(buf);
                        data.extend_from_slice(payload);
                        return ReadEvent::Record { offset, data };
                    }
                    (FragmentType::Full | FragmentType::First, Some((offset, _))) => {
                        // The record being assembled lost its end; the new
                        // one is read next.
                        let offset = *offset;
                        self.pos = start;
                        return ReadEvent::Corrupt {
                            offset,
                            reason: "record cut off before its last fragment".into(),
                        };
                    }
                    (FragmentType::Middle | FragmentType::Last, None) if self.resyncing => {}
                    (FragmentType::Middle | FragmentType::Last, None) => {
                        return ReadEvent::Corrupt {
                            offset: start as u64,
                            reason: format!("fragment of type {kind:?} out of sequence"),
                        };
                    }
                },
            }
        }
    }

    /// Resumes after damage at `from`: at the start of the next block.
    ///
    /// Only a block start is known to hold a fragment header the writer
    /// put there; anywhere inside a block, bytes that look like a valid
    /// fragment may be part of a user's value, and replaying them would
    /// apply writes nobody made.
    fn skip_damage(&mut self, from: usize) {
        self.pos = ((from / BLOCK_SIZE + 1) * BLOCK_SIZE).min(self.data.len());
        self.resyncing = true;
    }

    /// Whether a checksum-valid fragment follows the one at `start`, later
    /// in its block or at the next block start: the writer put data after
    /// it, so what is wrong with that fragment is damage, not a write cut
    /// short. This only classifies; nothing found here is ever replayed
    /// (see `skip_damage`). A user's value holding a fragment image can
    /// make a genuinely torn tail look damaged, which fails safe: the
    /// database refuses to open rather than drop data.
    fn valid_fragment_after(&self, start: usize) -> bool {
        let block_end = (start / BLOCK_SIZE + 1) * BLOCK_SIZE;
        (start + 1..=block_end)
            .take_while(|&p| p < self.data.len())
            .any(|p| self.valid_fragment_at(p))
    }

    fn valid_fragment_at(&self, p: usize) -> bool {
        let Some(header) = self.data.get(p..p + HEADER_SIZE) else {
            return false;
        };
        let len = u16::from_le_bytes([header[4], header[5]]) as usize;
        let fits = HEADER_SIZE + len <= BLOCK_SIZE - p % BLOCK_SIZE;
        let known_type = FragmentType::try_from(header[6]).is_ok();
        match self.data.get(p + HEADER_SIZE..p + HEADER_SIZE + len) {
            Some(payload) if fits && known_type => {
                let stored = get_u32_le(header).unwrap_or(0);
                unmask_crc(stored) == fragment_crc(header[6], payload)
            }
            _ => false,
        }
    }

    fn read_fragment(&mut self) -> Fragment<'a> {
        let data = self.data;
        if BLOCK_SIZE - self.pos % BLOCK_SIZE < HEADER_SIZE {
            // Block padding: the fragment starts at the next block.
            self.pos = (self.pos / BLOCK_SIZE + 1) * BLOCK_SIZE;
        }
        let left_in_block = BLOCK_SIZE - self.pos % BLOCK_SIZE;
        if self.pos >= data.len() {
            return Fragment::End;
        }
        let start = self.pos;
        let rest = &data[start..];
        let Some(header) = rest.get(..HEADER_SIZE) else {
            return Fragment::Torn("log ends inside a fragment header".into());
        };
        let stored_crc = get_u32_le(header).unwrap_or(0);
        let len = u16::from_le_bytes([header[4], header[5]]) as usize;
        let type_byte = header[6];
        if stored_crc == 0 && len == 0 && type_byte == 0 {
            // Zeroes where a fragment should be, to the end of the file:
            // room a writer reserved (a preallocated log) or a file grown
            // but never written. Either way no record was there: the end,
            // as a file cut short after its last record would be.
            if rest.iter().all(|&b| b == 0) {
                self.pos = data.len();
                return Fragment::End;
            }
            return Fragment::Bad("zeroed fragment header before end of log".into());
        }
        if HEADER_SIZE + len > left_in_block {
            // The writer never produces this, torn or not.
            return Fragment::Bad(format!("fragment of {len} bytes crosses a block boundary"));
        }
        let end = start + HEADER_SIZE + len;
        let Some(payload) = data.get(start + HEADER_SIZE..end) else {
            // Either the write was cut short, or the length field is
            // damaged. Only damage can leave an intact fragment after it.
            if self.valid_fragment_after(start) {
                return Fragment::Bad("fragment length points past the end of the log".into());
            }
            return Fragment::Torn("log ends inside a fragment".into());
        };
        let damaged = |reason: String| {
            // The last fragment written: nothing but the end of the file,
            // or room reserved past the records (zeros), follows it.
            if data[end..].iter().all(|&b| b == 0) {
                Fragment::Torn(reason)
            } else {
                Fragment::Bad(reason)
            }
        };
        if unmask_crc(stored_crc) != fragment_crc(type_byte, payload) {
            return damaged("fragment checksum mismatch".into());
        }
        let Ok(kind) = FragmentType::try_from(type_byte) else {
            return damaged(format!("unknown fragment type {type_byte}"));
        };
        self.pos = end;
        Fragment::Ok { kind, payload }
    }
}
