use super::*;
use crate::fs::{FaultInjectionFs, FileSystem};
use std::path::Path;

fn write_log(records: &[Vec<u8>]) -> Vec<u8> {
    let fs = FaultInjectionFs::new();
    fs.create_dir_all(Path::new("/d")).unwrap();
    let path = Path::new("/d/1.log");
    let mut w = LogWriter::create(fs.create(path).unwrap(), LogKind::Wal, 1).unwrap();
    for r in records {
        w.add_record(r).unwrap();
    }
    fs.read_all(path).unwrap()
}

fn read_all(data: &[u8]) -> Vec<ReadEvent> {
    let mut r = LogReader::new(data, LogKind::Wal);
    let mut out = Vec::new();
    loop {
        let ev = r.next_event();
        let stop = matches!(ev, ReadEvent::Eof | ReadEvent::TornTail { .. });
        out.push(ev);
        if stop {
            return out;
        }
    }
}

fn records(events: &[ReadEvent]) -> Vec<Vec<u8>> {
    events
        .iter()
        .filter_map(|e| match e {
            ReadEvent::Record { data, .. } => Some(data.clone()),
            _ => None,
        })
        .collect()
}

fn sample() -> Vec<Vec<u8>> {
    vec![
        b"small".to_vec(),
        Vec::new(),
        vec![7u8; BLOCK_SIZE * 2 + 100], // FIRST, MIDDLE, LAST
        vec![1u8; BLOCK_SIZE - 2 * HEADER_SIZE - FILE_HEADER_LEN - 5 - 3], // near a block end
        b"after".to_vec(),
    ]
}

#[test]
fn round_trip_across_blocks() {
    let recs = sample();
    let data = write_log(&recs);
    let events = read_all(&data);
    assert!(events
        .iter()
        .all(|e| matches!(e, ReadEvent::Record { .. } | ReadEvent::Eof)));
    assert_eq!(records(&events), recs);
}

#[test]
fn every_truncation_of_last_record_is_a_torn_tail() {
    let recs = sample();
    let full = write_log(&recs);
    let without_last = write_log(&recs[..recs.len() - 1]).len();
    for cut in without_last..full.len() {
        let events = read_all(&full[..cut]);
        assert_eq!(
            records(&events),
            recs[..recs.len() - 1].to_vec(),
            "cut {cut}"
        );
        if cut > without_last {
            assert!(
                matches!(events.last(), Some(ReadEvent::TornTail { .. })),
                "cut {cut}: {:?}",
                events.last()
            );
        }
    }
}

#[test]
fn truncation_inside_a_multi_block_record_is_torn() {
    let recs = sample();
    let full = write_log(&recs[..3]);
    let before = write_log(&recs[..2]).len();
    for cut in (before + 1..full.len()).step_by(997) {
        let events = read_all(&full[..cut]);
        assert_eq!(records(&events), recs[..2].to_vec());
        assert!(matches!(events.last(), Some(ReadEvent::TornTail { .. })));
    }
}

#[test]
fn damage_before_the_end_is_corruption() {
    let recs = vec![b"first".to_vec(), b"second".to_vec(), b"third".to_vec()];
    let data = write_log(&recs);
    let header_end = HEADER_SIZE + FILE_HEADER_LEN;
    // Flip every byte of the first data record.
    for i in header_end..header_end + HEADER_SIZE + 5 {
        let mut bad = data.clone();
        bad[i] ^= 0x40;
        let events = read_all(&bad);
        assert!(
            events.iter().any(
                |e| matches!(e, ReadEvent::Corrupt { offset, .. } if *offset == header_end as u64)
            ),
            "byte {i}: {events:?}"
        );
        assert!(!records(&events).contains(&b"first".to_vec()));
    }
}

#[test]
fn damaged_final_fragment_is_a_torn_tail() {
    let recs = vec![b"first".to_vec(), b"second".to_vec()];
    let mut data = write_log(&recs);
    let n = data.len();
    data[n - 1] ^= 1;
    let events = read_all(&data);
    assert_eq!(records(&events), vec![b"first".to_vec()]);
    assert!(matches!(events.last(), Some(ReadEvent::TornTail { .. })));
}

#[test]
fn zero_filled_tail_ends_the_log_and_bad_header_is_corrupt() {
    // Room reserved past the records (across block boundaries too) reads
    // as the end of the log, not as a torn write.
    for zeros in [100, 40_000, 70_000] {
        let mut data = write_log(&[b"x".to_vec()]);
        data.extend_from_slice(&vec![0u8; zeros]);
        let events = read_all(&data);
        assert_eq!(records(&events), vec![b"x".to_vec()]);
        assert_eq!(events.last(), Some(&ReadEvent::Eof), "{zeros} zeros");
    }
    // A last record cut short inside reserved room: its fragment fails
    // its checksum (or its header is part zeros), and only zeros follow:
    // torn, not damage, wherever the cut.
    let full = write_log(&[b"x".to_vec(), vec![9u8; 200]]);
    let before_last = write_log(&[b"x".to_vec()]).len();
    for cut in before_last + 1..full.len() {
        let mut data = full[..cut].to_vec();
        data.resize(full.len() + 4000, 0);
        let events = read_all(&data);
        assert_eq!(records(&events), vec![b"x".to_vec()], "cut at {cut}");
        assert!(
            matches!(events.last(), Some(ReadEvent::TornTail { .. })),
            "cut at {cut}: {:?}",
            events.last()
        );
    }
    // Inside a fragmented record, zeros are a write cut short.
    let big = vec![3u8; 50_000];
    let mut torn = write_log(&[b"x".to_vec(), big]);
    torn.truncate(BLOCK_SIZE + 100);
    torn.extend_from_slice(&[0u8; 500]);
    let events = read_all(&torn);
    assert_eq!(records(&events), vec![b"x".to_vec()]);
    assert!(matches!(events.last(), Some(ReadEvent::TornTail { .. })));

    let mut other = write_log(&[b"x".to_vec()]);
    // Break the magic but fix the checksum so only the header check fails.
    let payload_start = HEADER_SIZE;
    other[payload_start] = b'X';
    let crc = crate::coding::mask_crc(fragment_crc(
        1,
        &other[payload_start..payload_start + FILE_HEADER_LEN],
    ));
    other[..4].copy_from_slice(&crc.to_le_bytes());
    let mut r = LogReader::new(&other, LogKind::Wal);
    assert!(matches!(
        r.next_event(),
        ReadEvent::Corrupt { offset: 0, .. }
    ));
    assert_eq!(r.next_event(), ReadEvent::Eof);
}

#[test]
fn empty_file_is_empty_log() {
    assert_eq!(read_all(&[]), vec![ReadEvent::Eof]);
}

#[test]
fn records_ending_near_a_block_boundary() {
    // Leave every possible amount (0..=7 bytes) at the end of the first
    // block, so the next record starts after padding or right there.
    let header_len = HEADER_SIZE + FILE_HEADER_LEN;
    for left in 0..=HEADER_SIZE {
        let first = vec![3u8; BLOCK_SIZE - header_len - HEADER_SIZE - left];
        let recs = vec![first, b"second".to_vec(), vec![9u8; 100]];
        let data = write_log(&recs);
        let events = read_all(&data);
        assert!(
            events
                .iter()
                .all(|e| matches!(e, ReadEvent::Record { .. } | ReadEvent::Eof)),
            "left {left}: {:?}",
            events
                .iter()
                .filter(|e| !matches!(e, ReadEvent::Record { .. }))
                .collect::<Vec<_>>()
        );
        assert_eq!(records(&events), recs, "left {left}");
    }
}

/// After a failed fsync the kernel may have dropped the pages it could not
/// write and report the next fsync as a success, so a log whose sync
/// failed is never synced again: every later `sync` fails without
/// reaching the file (the crash test once caught a second sync of a log
/// after its first had failed, through another path than the commit).
#[test]
fn a_log_is_never_synced_again_after_a_failed_sync() {
    use crate::fs::{FaultKind, FsOp};
    let fs = FaultInjectionFs::new();
    fs.create_dir_all(Path::new("/db")).unwrap();
    let file = fs.create(Path::new("/db/000001.log")).unwrap();
    let mut w = LogWriter::create(file, LogKind::Wal, 1).unwrap();
    w.add_record(b"first").unwrap();
    w.sync().unwrap();
    w.add_record(b"second").unwrap();
    fs.inject(FsOp::Sync, FaultKind::EioDropsUnsynced, None, 0, Some(1));
    assert!(w.sync().is_err());
    let syncs = fs.op_count(FsOp::Sync);
    let again = w.sync().expect_err("a sync after a failed one must fail");
    assert!(again.to_string().contains("reopen"), "{again}");
    assert_eq!(fs.op_count(FsOp::Sync), syncs, "the file was synced again");
    assert!(fs.syncs_after_failure().is_empty());
}
