//! The metadata file of one backup: what it holds and each file's size
//! and CRC-32, itself ending in a CRC of everything before it.
//!
//! ```text
//! aidb-backup 1
//! id 3
//! time 1732540000
//! sequence 1234
//! file shared/000012_8f3a01c2_4096.sst 000012.sst 4096 8f3a01c2
//! file private/3/MANIFEST-000020 MANIFEST-000020 512 0badf00d
//! crc 1a2b3c4d
//! ```
//!
//! Stored paths are relative to the backup directory; names are what the
//! file is called in a restored database. Neither holds spaces (AiDb's own
//! file names).

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BackupFile {
    /// Path inside the backup directory.
    pub(crate) stored: String,
    /// Name in the database directory.
    pub(crate) name: String,
    pub(crate) size: u64,
    pub(crate) crc: u32,
}

/// A backup's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) id: u64,
    pub(crate) time: u64,
    pub(crate) sequence: u64,
    pub(crate) files: Vec<BackupFile>,
}

const MAGIC: &str = "aidb-backup 1";

impl Meta {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = format!(
            "{MAGIC}\nid {}\ntime {}\nsequence {}\n",
            self.id, self.time, self.sequence
        );
        for f in &self.files {
            out.push_str(&format!(
                "file {} {} {} {:08x}\n",
                f.stored, f.name, f.size, f.crc
            ));
        }
        let crc = crc32fast::hash(out.as_bytes());
        out.push_str(&format!("crc {crc:08x}\n"));
        out.into_bytes()
    }

    /// Parses a metadata file; `Err` says what is wrong with it.
    pub(crate) fn decode(data: &[u8]) -> Result<Meta, String> {
        let text = std::str::from_utf8(data).map_err(|_| "not UTF-8".to_string())?;
        let body_end = text
            .strip_suffix('\n')
            .and_then(|t| t.rfind('\n'))
            .map(|i| i + 1)
            .ok_or("too short")?;
        let (body, tail) = text.split_at(body_end);
        let stored_crc = tail
            .strip_prefix("crc ")
            .and_then(|c| c.strip_suffix('\n'))
            .filter(|c| c.len() == 8)
            .and_then(|c| u32::from_str_radix(c, 16).ok())
            .ok_or("no checksum line")?;
        if crc32fast::hash(body.as_bytes()) != stored_crc {
            return Err("checksum mismatch".into());
        }
        let mut lines = body.lines();
        if lines.next() != Some(MAGIC) {
            return Err("not a backup metadata file".into());
        }
        let mut field = |name: &str| -> Result<u64, String> {
            lines
                .next()
                .and_then(|l| l.strip_prefix(name))
                .and_then(|v| v.strip_prefix(' '))
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("bad or missing {name}"))
        };
        let (id, time, sequence) = (field("id")?, field("time")?, field("sequence")?);
        let mut files = Vec::new();
        for line in lines {
            let parts: Vec<&str> = line.split(' ').collect();
            let [_, stored, name, size, crc] = parts[..] else {
                return Err(format!("bad line {line:?}"));
            };
            if parts[0] != "file" || stored.contains("..") || name.contains('/') {
                return Err(format!("bad line {line:?}"));
            }
            files.push(BackupFile {
                stored: stored.to_string(),
                name: name.to_string(),
                size: size.parse().map_err(|_| format!("bad size in {line:?}"))?,
                crc: u32::from_str_radix(crc, 16).map_err(|_| format!("bad crc in {line:?}"))?,
            });
        }
        Ok(Meta {
            id,
            time,
            sequence,
            files,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage_is_found() {
        let meta = Meta {
            id: 7,
            time: 1_700_000_000,
            sequence: 42,
            files: vec![BackupFile {
                stored: "shared/000001_0000abcd_10.sst".into(),
                name: "000001.sst".into(),
                size: 10,
                crc: 0xabcd,
            }],
        };
        let bytes = meta.encode();
        assert_eq!(Meta::decode(&bytes).unwrap(), meta);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(Meta::decode(&bad).is_err(), "flip at {i} not found");
        }
        assert!(Meta::decode(&bytes[..bytes.len() - 3]).is_err());
    }
}
