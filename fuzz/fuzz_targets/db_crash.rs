#![no_main]
//! An arbitrary operation sequence against `DB` with a crash countdown
//! (redb's idea): after `countdown` file-system calls the machine dies, or
//! that call fails with an I/O error (EIO, ENOSPC, a torn ENOSPC, an fsync
//! that loses the file's unsynced bytes); the sequence stops at the first
//! error; the power is cut under one of the persistence rules; and the
//! reopened database must equal the effect of a prefix of the issued
//! operations that holds every one acknowledged as durable (a synced
//! batch, a flush, a compaction).

use aidb::fs::{CrashRule, FaultInjectionFs, FaultKind, FsOp};
use aidb::{Options, WriteBatch, WriteOptions, DB};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug)]
enum Op {
    Put(u8, Vec<u8>),
    Delete(u8),
    Batch(Vec<(u8, Option<Vec<u8>>)>, bool),
    Flush,
    Compact,
}

/// The input, decoded by hand so that seeds can be written byte by byte:
/// `countdown` (2 bytes, little-endian), `rule`, `fault` (0: the machine
/// dies; otherwise an I/O error of kind `fault % 4` on call `fault / 4 % 5`),
/// then operations, each a tag byte and its arguments: 0 put (key, length,
/// bytes), 1 delete (key), 2 or 3 a batch, synced when 3 (count, then per
/// item a key and a length, 255 meaning a delete, and the bytes), 4 flush,
/// 5 compact.
struct Input {
    countdown: u16,
    rule: u8,
    fault: u8,
    ops: Vec<Op>,
}

fn decode(data: &[u8]) -> Option<Input> {
    let (head, mut rest) = data.split_at_checked(4)?;
    let mut byte = || -> Option<u8> {
        let (&b, tail) = rest.split_first()?;
        rest = tail;
        Some(b)
    };
    let mut ops = Vec::new();
    while let Some(tag) = byte() {
        let bytes = |n: u8, byte: &mut dyn FnMut() -> Option<u8>| -> Option<Vec<u8>> {
            (0..n % 64).map(|_| byte()).collect()
        };
        ops.push(match tag % 6 {
            0 => {
                let (k, n) = (byte()?, byte()?);
                Op::Put(k, bytes(n, &mut byte)?)
            }
            1 => Op::Delete(byte()?),
            t @ (2 | 3) => {
                let mut items = Vec::new();
                for _ in 0..byte()? % 8 {
                    let (k, n) = (byte()?, byte()?);
                    let v = if n == 255 {
                        None
                    } else {
                        Some(bytes(n, &mut byte)?)
                    };
                    items.push((k, v));
                }
                Op::Batch(items, t == 3)
            }
            4 => Op::Flush,
            _ => Op::Compact,
        });
    }
    Some(Input {
        countdown: u16::from_le_bytes([head[0], head[1]]),
        rule: head[2],
        fault: head[3],
        ops,
    })
}

type State = BTreeMap<Vec<u8>, Vec<u8>>;

fn key(k: u8) -> Vec<u8> {
    vec![b'k', k % 32]
}

fn options(fs: &FaultInjectionFs) -> Options {
    Options {
        fs: Arc::new(fs.clone()),
        write_buffer_size: 4096,
        target_file_size: 4096,
        max_bytes_for_level_base: 16 << 10,
        level0_file_num_compaction_trigger: 2,
        block_size: 256,
        ..Options::new("/db")
    }
}

fn items(op: &Op) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    match op {
        Op::Put(k, v) => vec![(key(*k), Some(v.clone()))],
        Op::Delete(k) => vec![(key(*k), None)],
        Op::Batch(items, _) => items.iter().map(|(k, v)| (key(*k), v.clone())).collect(),
        Op::Flush | Op::Compact => Vec::new(),
    }
}

fn run(db: &DB, op: &Op) -> aidb::Result<()> {
    match op {
        Op::Flush => db.flush(),
        Op::Compact => db.compact_range(..),
        _ => {
            let mut b = WriteBatch::new();
            for (k, v) in items(op) {
                match v {
                    Some(v) => b.put(k, v),
                    None => b.delete(k),
                };
            }
            let sync = matches!(op, Op::Batch(_, true));
            db.write_opt(b, &WriteOptions { sync })
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = decode(data) else { return };
    let ops: Vec<Op> = input.ops.into_iter().take(300).collect();
    let fs = FaultInjectionFs::new();
    let db = DB::open_with(options(&fs)).expect("open");
    // Small countdowns: a sequence of a few hundred operations makes a few
    // thousand calls, of which a few dozen are syncs.
    let countdown = u64::from(input.countdown);
    match input.fault {
        0 => fs.crash_after(countdown % 2048),
        fault => {
            let kinds = [
                FaultKind::Eio,
                FaultKind::Enospc,
                FaultKind::TornEnospc,
                FaultKind::EioDropsUnsynced,
            ];
            let calls = [
                FsOp::Create,
                FsOp::Append,
                FsOp::Sync,
                FsOp::SyncDir,
                FsOp::Rename,
            ];
            let kind = kinds[usize::from(fault) % kinds.len()];
            let call = calls[usize::from(fault / 4) % calls.len()];
            // The countdown counts calls of that kind.
            fs.inject(call, kind, None, countdown % 16, Some(1));
        }
    }
    let (mut issued, mut durable) = (0, 0);
    for op in &ops {
        issued += 1;
        if run(&db, op).is_err() {
            break;
        }
        if matches!(op, Op::Batch(_, true) | Op::Flush | Op::Compact) {
            durable = issued;
        }
    }
    let rule = CrashRule::ALL[usize::from(input.rule) % CrashRule::ALL.len()];
    fs.power_cut_with(rule, countdown);
    drop(db);
    assert!(
        fs.syncs_after_failure().is_empty(),
        "a file was synced again after its sync failed"
    );

    let db = DB::open_with(options(&fs)).expect("reopen after the crash");
    let got: State = db.iter().map(Result::unwrap).collect();
    let mut state = State::new();
    let mut matched = durable == 0 && state == got;
    for (i, op) in ops.iter().enumerate().take(issued) {
        if matched {
            break;
        }
        for (k, v) in items(op) {
            match v {
                Some(v) => state.insert(k, v),
                None => state.remove(&k),
            };
        }
        matched = i + 1 >= durable && state == got;
    }
    assert!(
        matched,
        "{} keys recovered: no prefix of the {issued} issued ops with the {durable} durable",
        got.len()
    );
    db.close().expect("close after recovery");
});
