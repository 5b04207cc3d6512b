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
//! | 1 | log number | varint64: logs numbered below it hold nothing that is not in a table, for any family |
//! | 2 | next file number | varint64 |
//! | 3 | last sequence | varint64 |
//! | 4 | deleted file | varint32 level, varint64 file number |
//! | 5 | new file | varint32 level, varint64 number, varint64 size, length-prefixed smallest internal key, length-prefixed largest internal key, varint64 smallest seq, varint64 largest seq |
//! | 6 | column family | varint32 id: the family the fields after it (up to the next tag 6) apply to; before the first, family 0 |
//! | 7 | family log number | varint64: logs numbered below it hold nothing of this family that is not in a table |
//! | 8 | add family | length-prefixed name, length-prefixed options (see `cf_options`) |
//! | 9 | drop family | none |
//! | 10 | largest family id | varint32: every id up to it was handed out (so a dropped id is never reused) |
//! | 11 | new file (format 2) | as tag 5, then varint64 unique id and varint32 CRC-32 of the whole file |
//! | 12 | new file (format 3) | as tag 11, then varint64 range tombstones held and varint64 creation time |
//! | 0x2001 | clean close | empty length-prefixed string: the database was closed cleanly after the previous edit (written so that the last edit holding data is never the file's final record) |
//!
//! Tags with bit 13 set (`>= 0x2000`) are *safe to ignore*: their payload is
//! one length-prefixed byte string, and a reader that does not know the tag
//! skips it. Any other unknown tag is corruption. Tag values are part of the
//! format: never renumber. Format 1 had tags 1 to 5 and 0x2001 only, all
//! about family 0.

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
const TAG_FAMILY: u32 = 6;
const TAG_FAMILY_LOG_NUMBER: u32 = 7;
const TAG_ADD_FAMILY: u32 = 8;
const TAG_DROP_FAMILY: u32 = 9;
const TAG_MAX_FAMILY: u32 = 10;
const TAG_NEW_FILE_2: u32 = 11;
const TAG_NEW_FILE_3: u32 = 12;
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
    /// The table's unique id (from its footer); 0 when not recorded
    /// (format 1).
    pub(crate) unique_id: u64,
    /// CRC-32 of the whole file; 0 when not recorded (format 1).
    pub(crate) file_crc: u32,
    /// Range tombstones the table holds (fragment sequence numbers), so
    /// reads open only the tables that have some.
    pub(crate) range_deletions: u64,
    /// When the table was written, seconds since the Unix epoch (0 when
    /// not recorded), for compactions driven by the time to live.
    pub(crate) creation_time: u64,
}

impl FileMeta {
    /// The record of table `number` before anything is added to it.
    pub(crate) fn new(number: u64) -> FileMeta {
        FileMeta {
            number,
            size: 0,
            smallest: Vec::new(),
            largest: Vec::new(),
            smallest_seq: SeqNo::MAX,
            largest_seq: 0,
            unique_id: 0,
            file_crc: 0,
            range_deletions: 0,
            creation_time: 0,
        }
    }

    /// Widens the key and sequence ranges to take in `ikey`, which sorts
    /// after every key added before (point entries are added in order).
    pub(crate) fn extend(&mut self, ikey: &[u8]) {
        if self.smallest.is_empty() {
            self.smallest = ikey.to_vec();
        }
        self.largest.clear();
        self.largest.extend_from_slice(ikey);
        if let Some(p) = crate::types::parse_internal_key(ikey) {
            self.smallest_seq = self.smallest_seq.min(p.seq);
            self.largest_seq = self.largest_seq.max(p.seq);
        }
    }

    /// Widens the ranges to take in range tombstones. A tombstone's bounds
    /// become internal keys with the largest sequence number, which sort
    /// before every entry of their user key: the table's largest key is
    /// then a sentinel just below the (exclusive) end, so a table of the
    /// next level starting at that user key does not overlap it.
    pub(crate) fn add_range_deletions(&mut self, frags: &crate::range_del::Fragments) {
        let (Some((start, end)), Some((lo, hi))) = (frags.bounds(), frags.seq_range()) else {
            return;
        };
        let sentinel = |k: &[u8]| {
            let mut ik = Vec::with_capacity(k.len() + 8);
            crate::types::encode_internal_key(
                &mut ik,
                k,
                crate::types::MAX_SEQNO,
                crate::types::ValueKind::SEEK,
            );
            ik
        };
        let (start, end) = (sentinel(start), sentinel(end));
        let cmp = crate::types::compare_internal_keys;
        if self.smallest.is_empty() || cmp(&start, &self.smallest).is_lt() {
            self.smallest = start;
        }
        if self.largest.is_empty() || cmp(&end, &self.largest).is_gt() {
            self.largest = end;
        }
        self.smallest_seq = self.smallest_seq.min(lo);
        self.largest_seq = self.largest_seq.max(hi);
        self.range_deletions = frags.len() as u64;
    }

    /// Fills in what only the finished table knows.
    pub(crate) fn finish(&mut self, props: &crate::table::TableProperties) {
        self.size = props.file_size;
        self.unique_id = props.unique_id;
        self.file_crc = props.file_crc;
        self.creation_time = props.creation_time;
        if self.smallest_seq == SeqNo::MAX {
            self.smallest_seq = 0;
        }
    }
}

/// The changes of one edit to one column family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FamilyEdit {
    pub(crate) id: u32,
    /// The family is created (or, in a MANIFEST's first edit, described):
    /// its name and encoded options.
    pub(crate) add: Option<(String, Vec<u8>)>,
    pub(crate) drop: bool,
    pub(crate) log_number: Option<u64>,
    pub(crate) deleted_files: Vec<(u32, u64)>,
    pub(crate) new_files: Vec<(u32, FileMeta)>,
}

impl FamilyEdit {
    pub(crate) fn new(id: u32) -> FamilyEdit {
        FamilyEdit {
            id,
            ..FamilyEdit::default()
        }
    }

    fn is_empty(&self) -> bool {
        *self == FamilyEdit::new(self.id)
    }
}

/// A change to the set of families, their live files and the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct VersionEdit {
    pub(crate) log_number: Option<u64>,
    pub(crate) next_file_number: Option<u64>,
    pub(crate) last_sequence: Option<SeqNo>,
    pub(crate) max_family_id: Option<u32>,
    pub(crate) families: Vec<FamilyEdit>,
    pub(crate) clean_close: bool,
}

impl VersionEdit {
    /// An edit changing one family.
    pub(crate) fn for_family(edit: FamilyEdit) -> VersionEdit {
        VersionEdit {
            families: vec![edit],
            ..VersionEdit::default()
        }
    }

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
        if let Some(id) = self.max_family_id {
            put_varint32(&mut out, TAG_MAX_FAMILY);
            put_varint32(&mut out, id);
        }
        for f in &self.families {
            put_varint32(&mut out, TAG_FAMILY);
            put_varint32(&mut out, f.id);
            if let Some((name, options)) = &f.add {
                put_varint32(&mut out, TAG_ADD_FAMILY);
                put_length_prefixed(&mut out, name.as_bytes());
                put_length_prefixed(&mut out, options);
            }
            if f.drop {
                put_varint32(&mut out, TAG_DROP_FAMILY);
            }
            put_u64(&mut out, TAG_FAMILY_LOG_NUMBER, f.log_number);
            for &(level, number) in &f.deleted_files {
                put_varint32(&mut out, TAG_DELETED_FILE);
                put_varint32(&mut out, level);
                put_varint64(&mut out, number);
            }
            for (level, m) in &f.new_files {
                put_varint32(&mut out, TAG_NEW_FILE_3);
                put_varint32(&mut out, *level);
                put_varint64(&mut out, m.number);
                put_varint64(&mut out, m.size);
                put_length_prefixed(&mut out, &m.smallest);
                put_length_prefixed(&mut out, &m.largest);
                put_varint64(&mut out, m.smallest_seq);
                put_varint64(&mut out, m.largest_seq);
                put_varint64(&mut out, m.unique_id);
                put_varint32(&mut out, m.file_crc);
                put_varint64(&mut out, m.range_deletions);
                put_varint64(&mut out, m.creation_time);
            }
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
        // Fields before the first family tag concern family 0 (all that
        // format 1 knew).
        let mut family = FamilyEdit::new(0);
        let mut family_tagged = false;
        while !src.is_empty() {
            let mut r = Reader(src);
            let tag = r.u32().ok_or("truncated field tag")?;
            match tag {
                TAG_LOG_NUMBER => edit.log_number = Some(r.u64().ok_or("bad log number")?),
                TAG_NEXT_FILE => {
                    edit.next_file_number = Some(r.u64().ok_or("bad next file number")?)
                }
                TAG_LAST_SEQ => edit.last_sequence = Some(r.u64().ok_or("bad last sequence")?),
                TAG_MAX_FAMILY => {
                    edit.max_family_id = Some(r.u32().ok_or("bad largest family id")?)
                }
                TAG_FAMILY => {
                    let id = r.u32().ok_or("bad column family id")?;
                    if family_tagged || !family.is_empty() {
                        edit.families
                            .push(std::mem::replace(&mut family, FamilyEdit::new(id)));
                    } else {
                        family = FamilyEdit::new(id);
                    }
                    family_tagged = true;
                }
                TAG_FAMILY_LOG_NUMBER => {
                    family.log_number = Some(r.u64().ok_or("bad family log number")?)
                }
                TAG_ADD_FAMILY => {
                    let name = r.bytes().ok_or("bad family name")?;
                    let name =
                        String::from_utf8(name.to_vec()).map_err(|_| "family name is not UTF-8")?;
                    let options = r.bytes().ok_or("bad family options")?.to_vec();
                    family.add = Some((name, options));
                }
                TAG_DROP_FAMILY => family.drop = true,
                TAG_DELETED_FILE => {
                    let level = r.u32().ok_or("bad deleted-file level")?;
                    let number = r.u64().ok_or("bad deleted-file number")?;
                    family.deleted_files.push((level, number));
                }
                TAG_NEW_FILE | TAG_NEW_FILE_2 | TAG_NEW_FILE_3 => {
                    let level = r.u32().ok_or("bad new-file level")?;
                    let meta = (|| {
                        let mut m = FileMeta {
                            number: r.u64()?,
                            size: r.u64()?,
                            smallest: r.bytes()?.to_vec(),
                            largest: r.bytes()?.to_vec(),
                            smallest_seq: r.u64()?,
                            largest_seq: r.u64()?,
                            unique_id: 0,
                            file_crc: 0,
                            range_deletions: 0,
                            creation_time: 0,
                        };
                        if tag != TAG_NEW_FILE {
                            m.unique_id = r.u64()?;
                            m.file_crc = r.u32()?;
                        }
                        // Tables of format 2 hold no range tombstones.
                        if tag == TAG_NEW_FILE_3 {
                            m.range_deletions = r.u64()?;
                            m.creation_time = r.u64()?;
                        }
                        Some(m)
                    })()
                    .ok_or("bad new-file record")?;
                    family.new_files.push((level, meta));
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
        if family_tagged || !family.is_empty() {
            edit.families.push(family);
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

    fn meta(number: u64) -> FileMeta {
        FileMeta {
            number,
            size: 4096,
            smallest: b"a\x01\0\0\0\0\0\0\0".to_vec(),
            largest: b"z\x01\0\0\0\0\0\0\0".to_vec(),
            smallest_seq: 1,
            largest_seq: 99,
            unique_id: 0x1234_5678_9abc,
            file_crc: 77,
            range_deletions: 3,
            creation_time: 1_700_000_000,
        }
    }

    fn sample() -> VersionEdit {
        VersionEdit {
            log_number: Some(7),
            next_file_number: Some(12),
            last_sequence: Some(1 << 40),
            max_family_id: Some(3),
            families: vec![
                FamilyEdit {
                    id: 0,
                    log_number: Some(7),
                    deleted_files: vec![(0, 3), (2, 9)],
                    new_files: vec![(1, meta(11))],
                    ..FamilyEdit::default()
                },
                FamilyEdit {
                    id: 3,
                    add: Some(("users".into(), vec![1, 2, 3])),
                    new_files: vec![(0, meta(10))],
                    ..FamilyEdit::default()
                },
                FamilyEdit {
                    id: 2,
                    drop: true,
                    ..FamilyEdit::default()
                },
            ],
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
    fn format_1_edits_concern_family_0() {
        // An edit as format 1 wrote it: no family tag.
        let mut enc = Vec::new();
        put_varint32(&mut enc, TAG_LOG_NUMBER);
        put_varint64(&mut enc, 5);
        put_varint32(&mut enc, TAG_DELETED_FILE);
        put_varint32(&mut enc, 0);
        put_varint64(&mut enc, 4);
        let e = VersionEdit::decode(&enc).unwrap();
        assert_eq!(e.log_number, Some(5));
        assert_eq!(e.families.len(), 1);
        assert_eq!(e.families[0].id, 0);
        assert_eq!(e.families[0].deleted_files, vec![(0, 4)]);
    }

    #[test]
    fn truncations_are_rejected() {
        let enc = sample().encode();
        for cut in 1..enc.len() {
            // A cut can land on a field boundary and still decode, but then
            // it must decode to a prefix of the fields, never to garbage.
            if let Ok(e) = VersionEdit::decode(&enc[..cut]) {
                for f in &e.families {
                    assert!(f
                        .new_files
                        .iter()
                        .all(|(_, m)| m.number == 11 || m.number == 10));
                }
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
