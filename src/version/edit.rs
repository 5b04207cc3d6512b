//! Version edits: the records of a MANIFEST.
//!
//! An edit is a sequence of tagged fields:
//!
//! ```text
//! field := tag: varint32 | payload
//! ```
//!
//! | tag | name | payload |
//! |---|---|---|
//! | 1 | log number | varint64: logs numbered below it are obsolete |
//! | 2 | next file number | varint64 |
//! | 3 | last sequence | varint64 |
//! | 4 | deleted file | varint32 level, varint64 file number |
//! | 5 | new file | varint32 level, varint64 number, varint64 size, length-prefixed smallest internal key, length-prefixed largest internal key, varint64 smallest seq, varint64 largest seq |
//!
//! | 0x2001 | clean close | empty length-prefixed string: the database was closed cleanly after the previous edit (written so that the last edit holding data is never the file's final record) |
//!
//! Tags with bit 13 set (`>= 0x2000`) are *safe to ignore*: their payload is
//! one length-prefixed byte string, and a reader that does not know the tag
//! skips it. Any other unknown tag is corruption. Tag values are part of the
//! format: never renumber.

use crate::coding::{
    get_length_prefixed, get_varint32, get_varint64, put_length_prefixed, put_varint32,
    put_varint64,
};
use crate::types::SeqNo;

const TAG_LOG_NUMBER: u32 = 1;
const TAG_NEXT_FILE: u32 = 2;
const TAG_LAST_SEQ: u32 = 3;
const TAG_DELETED_FILE: u32 = 4;
const TAG_NEW_FILE: u32 = 5;
const SAFE_TO_IGNORE: u32 = 1 << 13;
const TAG_CLEAN_CLOSE: u32 = SAFE_TO_IGNORE | 1;

/// Where a table file sits and what it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileMeta {
    pub(crate) number: u64,
    pub(crate) size: u64,
    /// Smallest internal key in the file.
    pub(crate) smallest: Vec<u8>,
    /// Largest internal key in the file.
    pub(crate) largest: Vec<u8>,
    pub(crate) smallest_seq: SeqNo,
    pub(crate) largest_seq: SeqNo,
}

/// A change to the set of live files and counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct VersionEdit {
    pub(crate) log_number: Option<u64>,
    pub(crate) next_file_number: Option<u64>,
    pub(crate) last_sequence: Option<SeqNo>,
    pub(crate) deleted_files: Vec<(u32, u64)>,
    pub(crate) new_files: Vec<(u32, FileMeta)>,
    pub(crate) clean_close: bool,
}

impl VersionEdit {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let put_u64 = |out: &mut Vec<u8>, tag: u32, v: Option<u64>| {
            if let Some(v) = v {
                put_varint32(out, tag);
                put_varint64(out, v);
            }
        };
        put_u64(&mut out, TAG_LOG_NUMBER, self.log_number);
        put_u64(&mut out, TAG_NEXT_FILE, self.next_file_number);
        put_u64(&mut out, TAG_LAST_SEQ, self.last_sequence);
        for &(level, number) in &self.deleted_files {
            put_varint32(&mut out, TAG_DELETED_FILE);
            put_varint32(&mut out, level);
            put_varint64(&mut out, number);
        }
        for (level, f) in &self.new_files {
            put_varint32(&mut out, TAG_NEW_FILE);
            put_varint32(&mut out, *level);
            put_varint64(&mut out, f.number);
            put_varint64(&mut out, f.size);
            put_length_prefixed(&mut out, &f.smallest);
            put_length_prefixed(&mut out, &f.largest);
            put_varint64(&mut out, f.smallest_seq);
            put_varint64(&mut out, f.largest_seq);
        }
        if self.clean_close {
            put_varint32(&mut out, TAG_CLEAN_CLOSE);
            put_length_prefixed(&mut out, &[]);
        }
        out
    }

    /// Decodes an edit; the error says what is wrong (the caller adds file
    /// and offset).
    pub(crate) fn decode(mut src: &[u8]) -> Result<VersionEdit, String> {
        let mut edit = VersionEdit::default();
        while !src.is_empty() {
            let mut r = Reader(src);
            let tag = r.u32().ok_or("truncated field tag")?;
            match tag {
                TAG_LOG_NUMBER => edit.log_number = Some(r.u64().ok_or("bad log number")?),
                TAG_NEXT_FILE => {
                    edit.next_file_number = Some(r.u64().ok_or("bad next file number")?)
                }
                TAG_LAST_SEQ => edit.last_sequence = Some(r.u64().ok_or("bad last sequence")?),
                TAG_DELETED_FILE => {
                    let level = r.u32().ok_or("bad deleted-file level")?;
                    let number = r.u64().ok_or("bad deleted-file number")?;
                    edit.deleted_files.push((level, number));
                }
                TAG_NEW_FILE => {
                    let level = r.u32().ok_or("bad new-file level")?;
                    let meta = (|| {
                        Some(FileMeta {
                            number: r.u64()?,
                            size: r.u64()?,
                            smallest: r.bytes()?.to_vec(),
                            largest: r.bytes()?.to_vec(),
                            smallest_seq: r.u64()?,
                            largest_seq: r.u64()?,
                        })
                    })()
                    .ok_or("bad new-file record")?;
                    edit.new_files.push((level, meta));
                }
                TAG_CLEAN_CLOSE => {
                    r.bytes().ok_or("bad clean-close field")?;
                    edit.clean_close = true;
                }
                t if t & SAFE_TO_IGNORE != 0 => {
                    r.bytes().ok_or("bad ignorable field")?;
                }
                t => return Err(format!("unknown version edit tag {t}")),
            }
            src = r.0;
        }
        Ok(edit)
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u32(&mut self) -> Option<u32> {
        let (v, n) = get_varint32(self.0)?;
        self.0 = &self.0[n..];
        Some(v)
    }

    fn u64(&mut self) -> Option<u64> {
        let (v, n) = get_varint64(self.0)?;
        self.0 = &self.0[n..];
        Some(v)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let (b, n) = get_length_prefixed(self.0)?;
        self.0 = &self.0[n..];
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> VersionEdit {
        VersionEdit {
            log_number: Some(7),
            next_file_number: Some(12),
            last_sequence: Some(1 << 40),
            deleted_files: vec![(0, 3), (2, 9)],
            new_files: vec![(
                1,
                FileMeta {
                    number: 11,
                    size: 4096,
                    smallest: b"a\x01\0\0\0\0\0\0\0".to_vec(),
                    largest: b"z\x01\0\0\0\0\0\0\0".to_vec(),
                    smallest_seq: 1,
                    largest_seq: 99,
                },
            )],
            clean_close: false,
        }
    }

    #[test]
    fn round_trip() {
        let e = sample();
        assert_eq!(VersionEdit::decode(&e.encode()).unwrap(), e);
        assert_eq!(VersionEdit::decode(&[]).unwrap(), VersionEdit::default());
    }

    #[test]
    fn truncations_are_rejected() {
        let enc = sample().encode();
        for cut in 1..enc.len() {
            // A cut can land on a field boundary and still decode, but then
            // it must decode to a prefix of the fields, never to garbage.
            if let Ok(e) = VersionEdit::decode(&enc[..cut]) {
                assert!(e.new_files.is_empty(), "cut {cut}");
            }
        }
    }

    #[test]
    fn clean_close_marker_round_trips() {
        let e = VersionEdit {
            clean_close: true,
            ..VersionEdit::default()
        };
        assert_eq!(VersionEdit::decode(&e.encode()).unwrap(), e);
    }

    #[test]
    fn unknown_tags() {
        let mut enc = sample().encode();
        put_varint32(&mut enc, SAFE_TO_IGNORE | 7);
        put_length_prefixed(&mut enc, b"future");
        assert_eq!(VersionEdit::decode(&enc).unwrap(), sample());
        put_varint32(&mut enc, 99);
        assert!(VersionEdit::decode(&enc).is_err());
    }
}
