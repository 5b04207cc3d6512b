//! Event listeners: callbacks arrive in a valid order for flushes and
//! compactions, with file numbers and sizes that match the MANIFEST; a
//! panicking listener does not break the engine; a callback may call into
//! the database; failures, recovery and write stalls are reported.

mod common;

use aidb::fs::{FaultInjectionFs, FaultKind, FileSystem, FsOp};
use aidb::{
    BackgroundErrorInfo, CompactionJobInfo, CompactionReason, ErrorRecovery, EventListener,
    FlushJobInfo, Options, RecoveryInfo, TableFileCreationInfo, TableFileDeletionInfo,
    TableFileReason, WriteStallCondition, WriteStallInfo, DB,
};
use common::{within, Gate, HookFs};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
enum Ev {
    FlushBegin(FlushJobInfo),
    FlushDone(FlushJobInfo),
    CompactionBegin(CompactionJobInfo),
    CompactionDone(CompactionJobInfo),
    Created(TableFileCreationInfo),
    Deleted(TableFileDeletionInfo),
    Stall(WriteStallInfo),
    Error(BackgroundErrorInfo),
    Recovered(RecoveryInfo),
}

#[derive(Default)]
struct Recorder(Mutex<Vec<Ev>>);

impl Recorder {
    fn events(&self) -> Vec<Ev> {
        self.0.lock().unwrap().clone()
    }
    fn push(&self, e: Ev) {
        self.0.lock().unwrap().push(e);
    }
    /// Waits until `pred` holds for the events seen so far.
    fn wait_until(&self, what: &str, pred: impl Fn(&[Ev]) -> bool) {
        let start = Instant::now();
        while !pred(&self.0.lock().unwrap()) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "timed out waiting for {what}; events: {:#?}",
                self.events()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl EventListener for Recorder {
    fn on_flush_begin(&self, i: &FlushJobInfo) {
        self.push(Ev::FlushBegin(i.clone()));
    }
    fn on_flush_completed(&self, i: &FlushJobInfo) {
        self.push(Ev::FlushDone(i.clone()));
    }
    fn on_compaction_begin(&self, i: &CompactionJobInfo) {
        self.push(Ev::CompactionBegin(i.clone()));
    }
    fn on_compaction_completed(&self, i: &CompactionJobInfo) {
        self.push(Ev::CompactionDone(i.clone()));
    }
    fn on_table_file_created(&self, i: &TableFileCreationInfo) {
        self.push(Ev::Created(i.clone()));
    }
    fn on_table_file_deleted(&self, i: &TableFileDeletionInfo) {
        self.push(Ev::Deleted(i.clone()));
    }
    fn on_stall_conditions_changed(&self, i: &WriteStallInfo) {
        self.push(Ev::Stall(i.clone()));
    }
    fn on_background_error(&self, i: &BackgroundErrorInfo) {
        self.push(Ev::Error(i.clone()));
    }
    fn on_error_recovery_completed(&self, i: &RecoveryInfo) {
        self.push(Ev::Recovered(i.clone()));
    }
}

fn position(events: &[Ev], pred: impl Fn(&Ev) -> bool) -> usize {
    events
        .iter()
        .position(pred)
        .unwrap_or_else(|| panic!("event missing in {events:#?}"))
}

type FileKey = (u64, usize, u64, Vec<u8>, Vec<u8>);

fn key(t: &aidb::TableFile) -> FileKey {
    (
        t.number,
        t.level,
        t.size,
        t.smallest_key.clone(),
        t.largest_key.clone(),
    )
}

#[test]
fn flush_and_compaction_events_are_ordered_and_match_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Arc::new(Recorder::default());
    let db = DB::open_with(Options {
        listeners: vec![rec.clone()],
        level0_file_num_compaction_trigger: 2,
        max_background_jobs: 1,
        ..Options::new(dir.path())
    })
    .unwrap();
    for i in 0..100 {
        db.put(format!("k{i:03}"), format!("first {i}")).unwrap();
    }
    db.flush().unwrap();
    for i in 50..150 {
        db.put(format!("k{i:03}"), format!("second {i}")).unwrap();
    }
    db.flush().unwrap(); // level 0 reaches the trigger: a background compaction
    db.wait_for_idle().unwrap();
    db.compact_range(..).unwrap(); // level 1 into level 2, rewritten
    db.close().unwrap(); // every event is delivered before close returns

    let events = rec.events();
    let manifest = aidb::tools::read_manifest(dir.path()).unwrap();
    assert!(manifest.damage.is_none(), "{:?}", manifest.damage);

    // Two flushes: begin, the table, completed; the table is the one the
    // MANIFEST added to level 0.
    let flushes: Vec<&FlushJobInfo> = events
        .iter()
        .filter_map(|e| match e {
            Ev::FlushDone(i) => Some(i),
            _ => None,
        })
        .collect();
    assert_eq!(flushes.len(), 2, "{events:#?}");
    for f in &flushes {
        let id = f.job_id;
        let begin = position(
            &events,
            |e| matches!(e, Ev::FlushBegin(i) if i.job_id == id),
        );
        let created = position(&events, |e| matches!(e, Ev::Created(i) if i.job_id == id));
        let done = position(&events, |e| matches!(e, Ev::FlushDone(i) if i.job_id == id));
        assert!(begin < created && created < done, "flush {id}: {events:#?}");
        let Ev::Created(c) = &events[created] else {
            unreachable!()
        };
        assert_eq!(c.reason, TableFileReason::Flush);
        let out = f
            .output
            .as_ref()
            .expect("a flush of 100 keys writes a table");
        assert_eq!(key(out), key(&c.file));
        assert_eq!(out.level, 0);
        assert!(f.memtable_bytes > 0 && f.duration > Duration::ZERO);
        let recorded = manifest
            .edits
            .iter()
            .flat_map(|e| e.families.iter().filter(|f| f.id == 0))
            .flat_map(|f| f.new_files.iter())
            .any(|t| key(t) == key(out));
        assert!(recorded, "flush output {out:?} not in the MANIFEST");
    }

    // Two compactions: the background one of level 0, the manual one.
    let compactions: Vec<&CompactionJobInfo> = events
        .iter()
        .filter_map(|e| match e {
            Ev::CompactionDone(i) => Some(i),
            _ => None,
        })
        .collect();
    let reasons: Vec<_> = compactions.iter().map(|c| c.reason).collect();
    assert_eq!(
        reasons,
        [CompactionReason::Level0FileCount, CompactionReason::Manual],
        "{events:#?}"
    );
    let flush_outputs: Vec<FileKey> = flushes
        .iter()
        .map(|f| key(f.output.as_ref().unwrap()))
        .collect();
    let first_inputs: Vec<FileKey> = compactions[0].inputs.iter().map(key).collect();
    for out in &flush_outputs {
        assert!(first_inputs.contains(out), "{out:?} not compacted");
    }
    assert_eq!(
        compactions[1].inputs.iter().map(key).collect::<Vec<_>>(),
        compactions[0].outputs.iter().map(key).collect::<Vec<_>>(),
        "the manual compaction reads what the first wrote"
    );
    for c in &compactions {
        let id = c.job_id;
        assert!(!c.trivial_move);
        assert_eq!(
            (c.input_level, c.output_level),
            (c.output_level - 1, c.input_level + 1)
        );
        let begin = position(
            &events,
            |e| matches!(e, Ev::CompactionBegin(i) if i.job_id == id),
        );
        let done = position(
            &events,
            |e| matches!(e, Ev::CompactionDone(i) if i.job_id == id),
        );
        assert!(begin < done);
        // Each output was reported created between begin and completed.
        for out in &c.outputs {
            let created = position(
                &events,
                |e| matches!(e, Ev::Created(i) if i.job_id == id && key(&i.file) == key(out)),
            );
            assert!(begin < created && created < done, "{events:#?}");
        }
        // Each input is deleted, and only after the compaction completed.
        for input in &c.inputs {
            let deleted = position(
                &events,
                |e| matches!(e, Ev::Deleted(i) if i.file_number == input.number && i.error.is_none()),
            );
            assert!(done < deleted, "input {} deleted early", input.number);
            assert!(!input.path.exists(), "{} still there", input.path.display());
        }
        assert_eq!(c.bytes_read, c.inputs.iter().map(|t| t.size).sum::<u64>());
        assert_eq!(
            c.bytes_written,
            c.outputs.iter().map(|t| t.size).sum::<u64>()
        );
        // One MANIFEST edit removes exactly the inputs and adds exactly the
        // outputs, at the levels and sizes the events give.
        let mut inputs: Vec<(usize, u64)> = c.inputs.iter().map(|t| (t.level, t.number)).collect();
        inputs.sort();
        let mut outputs: Vec<FileKey> = c.outputs.iter().map(key).collect();
        outputs.sort();
        let edit = manifest.edits.iter().flat_map(|e| &e.families).find(|f| {
            let mut deleted = f.deleted_files.clone();
            deleted.sort();
            let mut added: Vec<FileKey> = f.new_files.iter().map(key).collect();
            added.sort();
            deleted == inputs && added == outputs
        });
        assert!(edit.is_some(), "no MANIFEST edit matches compaction {c:#?}");
    }

    // What the MANIFEST says is live is what the last compaction wrote.
    let mut live: Vec<FileKey> = manifest.families[0].files.iter().map(key).collect();
    live.sort();
    let mut last: Vec<FileKey> = compactions[1].outputs.iter().map(key).collect();
    last.sort();
    assert_eq!(live, last);
    assert!(last.iter().all(|f| f.1 == 2));
    for t in &manifest.families[0].files {
        assert_eq!(std::fs::metadata(&t.path).unwrap().len(), t.size);
    }
    // Nothing unexpected: no stall, no failure.
    assert!(!events
        .iter()
        .any(|e| matches!(e, Ev::Error(_) | Ev::Recovered(_) | Ev::Stall(_))));
}

struct Panicker;

impl EventListener for Panicker {
    fn on_flush_begin(&self, _: &FlushJobInfo) {
        panic!("listener bug");
    }
    fn on_flush_completed(&self, _: &FlushJobInfo) {
        panic!("listener bug");
    }
}

#[test]
fn a_panicking_listener_does_not_break_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Arc::new(Recorder::default());
    let db = DB::open_with(Options {
        listeners: vec![Arc::new(Panicker), rec.clone()],
        ..Options::new(dir.path())
    })
    .unwrap();
    for round in 0..3 {
        db.put(format!("k{round}"), "v").unwrap();
        db.flush().unwrap();
    }
    db.compact_range(..).unwrap();
    for round in 0..3 {
        assert_eq!(db.get(format!("k{round}")).unwrap(), Some(b"v".to_vec()));
    }
    // The other listener got everything; the panics were counted.
    rec.wait_until("3 flushes", |e| {
        e.iter().filter(|e| matches!(e, Ev::FlushDone(_))).count() == 3
    });
    assert_eq!(db.statistics().listener_panics, 6);
    db.close().unwrap();
    assert!(rec
        .events()
        .iter()
        .any(|e| matches!(e, Ev::CompactionDone(_))));
}

/// Writes to the database from a callback, through a weak reference.
#[derive(Default)]
struct WritesBack {
    db: OnceLock<Weak<DB>>,
}

impl EventListener for WritesBack {
    fn on_flush_completed(&self, info: &FlushJobInfo) {
        if let Some(db) = self.db.get().and_then(Weak::upgrade) {
            db.put(format!("flushed-{}", info.job_id), "seen").unwrap();
            db.get("k").unwrap();
        }
    }
}

#[test]
fn a_callback_may_call_into_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let listener = Arc::new(WritesBack::default());
    let db = Arc::new(
        DB::open_with(Options {
            listeners: vec![listener.clone()],
            ..Options::new(dir.path())
        })
        .unwrap(),
    );
    listener.db.set(Arc::downgrade(&db)).unwrap();
    db.put("k", "v").unwrap();
    db.flush().unwrap();
    let db2 = db.clone();
    within(20, "the callback's write", move || loop {
        if db2.prefix("flushed-").count() == 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    });
}

#[test]
fn failures_and_recovery_are_reported() {
    let fs = Arc::new(FaultInjectionFs::new());
    let rec = Arc::new(Recorder::default());
    let db = DB::open_with(Options {
        fs: fs.clone(),
        listeners: vec![rec.clone()],
        ..Options::new("/db")
    })
    .unwrap();
    db.put("k", "v").unwrap();
    fs.inject(FsOp::Append, FaultKind::Enospc, Some(".sst"), 0, None);
    assert!(db.flush().is_err());
    rec.wait_until("the background error", |e| {
        e.iter().any(|e| matches!(e, Ev::Error(_)))
    });
    fs.clear_faults();
    db.resume().unwrap();
    db.put("k2", "v2").unwrap();
    db.close().unwrap();
    let events = rec.events();
    let error = position(&events, |e| matches!(e, Ev::Error(_)));
    let recovered = position(&events, |e| matches!(e, Ev::Recovered(_)));
    assert!(error < recovered);
    let (Ev::Error(e), Ev::Recovered(r)) = (&events[error], &events[recovered]) else {
        unreachable!()
    };
    assert_eq!(e.recovery, ErrorRecovery::Automatic);
    assert!(e.error.to_string().contains(".sst"), "{}", e.error);
    assert_eq!(r.error.to_string(), e.error.to_string());
    // The failed flush began but never completed; the retry did.
    let begins = events
        .iter()
        .filter(|e| matches!(e, Ev::FlushBegin(_)))
        .count();
    let dones = events
        .iter()
        .filter(|e| matches!(e, Ev::FlushDone(_)))
        .count();
    assert!(begins > dones && dones >= 1, "{events:#?}");
}

#[test]
fn write_stalls_are_reported_when_they_start_and_end() {
    let gate = Arc::new(Gate::default());
    let blocking = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let fs = HookFs::wrap(Arc::new(FaultInjectionFs::new()), {
        let (gate, blocking) = (gate.clone(), blocking.clone());
        move |op, path| {
            if op == FsOp::Create
                && path.to_string_lossy().ends_with(".sst")
                && blocking.load(std::sync::atomic::Ordering::SeqCst)
            {
                gate.pass();
            }
            Ok(())
        }
    });
    let rec = Arc::new(Recorder::default());
    let db = Arc::new(
        DB::open_with(Options {
            fs: fs as Arc<dyn FileSystem>,
            listeners: vec![rec.clone()],
            write_buffer_size: 4096,
            max_write_buffer_number: 2,
            ..Options::new("/db")
        })
        .unwrap(),
    );
    // Flushes are held at the gate: after two memtables fill, writes stop.
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || {
            for i in 0..200u32 {
                db.put(format!("key{i:04}"), [b'x'; 100]).unwrap();
            }
        })
    };
    rec.wait_until("a stop", |e| {
        e.iter().any(|e| {
            matches!(e, Ev::Stall(s) if s.condition == WriteStallCondition::Stopped
                && s.previous == WriteStallCondition::Normal && s.column_family == "default")
        })
    });
    assert!(!writer.is_finished(), "writes went on while stopped");
    blocking.store(false, std::sync::atomic::Ordering::SeqCst);
    gate.open();
    writer.join().unwrap();
    rec.wait_until("the end of the stop", |e| {
        e.iter().any(|e| {
            matches!(e, Ev::Stall(s) if s.condition == WriteStallCondition::Normal
                && s.previous == WriteStallCondition::Stopped)
        })
    });
    assert!(db.statistics().stall_time > Duration::ZERO);
}
