use super::*;
use std::collections::BTreeSet;

fn fs_with_dir() -> (FaultInjectionFs, PathBuf) {
    let fs = FaultInjectionFs::new();
    let dir = PathBuf::from("/db");
    fs.create_dir_all(&dir).unwrap();
    (fs, dir)
}

#[test]
fn injected_eio_reaches_caller() {
    let (fs, dir) = fs_with_dir();
    let mut f = fs.create(&dir.join("a")).unwrap();
    fs.inject(FsOp::Sync, FaultKind::Eio, None, 0, Some(1));
    f.append(b"x").unwrap();
    let err = f.sync().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(5));
    f.sync().unwrap(); // fault was for one call only
}

#[test]
fn injected_enospc_on_append_writes_nothing() {
    let (fs, dir) = fs_with_dir();
    let mut f = fs.create(&dir.join("a")).unwrap();
    fs.inject(FsOp::Append, FaultKind::Enospc, Some("a"), 1, None);
    f.append(b"ok").unwrap();
    assert_eq!(f.append(b"no").unwrap_err().raw_os_error(), Some(28));
    assert_eq!(fs.read_all(&dir.join("a")).unwrap(), b"ok");
}

#[test]
fn torn_enospc_writes_half_then_fails() {
    let (fs, dir) = fs_with_dir();
    let mut f = fs.create(&dir.join("a")).unwrap();
    fs.inject(FsOp::Append, FaultKind::TornEnospc, None, 0, Some(1));
    assert_eq!(f.append(b"abcdef").unwrap_err().raw_os_error(), Some(28));
    assert_eq!(fs.read_all(&dir.join("a")).unwrap(), b"abc");
}

#[test]
fn power_cut_discards_only_unsynced_data() {
    let (fs, dir) = fs_with_dir();
    let path = dir.join("log");
    let mut f = fs.create(&path).unwrap();
    f.append(b"durable").unwrap();
    f.sync().unwrap();
    fs.sync_dir(&dir).unwrap();
    f.append(b"-lost").unwrap();
    assert_eq!(fs.read_all(&path).unwrap(), b"durable-lost");
    fs.power_cut();
    assert_eq!(fs.read_all(&path).unwrap(), b"durable");
}

#[test]
fn power_cut_discards_unsynced_directory_entries() {
    let (fs, dir) = fs_with_dir();
    let synced = dir.join("synced");
    let unsynced = dir.join("unsynced");
    let mut a = fs.create(&synced).unwrap();
    a.append(b"a").unwrap();
    a.sync().unwrap();
    fs.sync_dir(&dir).unwrap();
    // Synced data but no directory sync: the name itself is lost.
    let mut b = fs.create(&unsynced).unwrap();
    b.append(b"b").unwrap();
    b.sync().unwrap();
    // A rename without directory sync is undone.
    fs.rename(&synced, &dir.join("renamed")).unwrap();
    fs.power_cut();
    let mut names = fs.list(&dir).unwrap();
    names.sort();
    assert_eq!(names, vec!["synced".to_string()]);
    assert_eq!(fs.read_all(&synced).unwrap(), b"a");
}

#[test]
fn torn_power_cut_keeps_a_prefix() {
    let (fs, dir) = fs_with_dir();
    let path = dir.join("f");
    let mut f = fs.create(&path).unwrap();
    fs.sync_dir(&dir).unwrap();
    f.append(b"0123456789").unwrap();
    fs.power_cut_keeping(|_, _| 4);
    assert_eq!(fs.read_all(&path).unwrap(), b"0123");
}

#[test]
fn crash_after_fails_later_calls() {
    let (fs, dir) = fs_with_dir();
    let mut f = fs.create(&dir.join("f")).unwrap();
    fs.crash_after(1);
    f.append(b"a").unwrap();
    assert!(f.append(b"b").is_err());
    assert!(f.sync().is_err());
}

#[test]
fn handles_from_before_a_power_cut_are_dead() {
    let (fs, dir) = fs_with_dir();
    let old = fs.clone();
    let mut f = old.create(&dir.join("f")).unwrap();
    fs.power_cut();
    assert!(f.append(b"x").is_err());
    assert!(old.create(&dir.join("g")).is_err());
    assert!(old.list(&dir).is_err());
    let new = fs.clone();
    new.create(&dir.join("g")).unwrap();
}

#[test]
fn lock_is_exclusive_until_dropped() {
    let (fs, dir) = fs_with_dir();
    let l = fs.lock(&dir.join("LOCK")).unwrap();
    assert_eq!(
        fs.lock(&dir.join("LOCK")).err().unwrap().kind(),
        io::ErrorKind::WouldBlock
    );
    drop(l);
    fs.lock(&dir.join("LOCK")).unwrap();
}

#[test]
fn power_cut_brings_back_an_unsynced_removal() {
    let (fs, dir) = fs_with_dir();
    let path = dir.join("old");
    let mut f = fs.create(&path).unwrap();
    f.append(b"kept").unwrap();
    f.sync().unwrap();
    fs.sync_dir(&dir).unwrap();
    fs.remove_file(&path).unwrap();
    fs.power_cut();
    assert_eq!(fs.read_all(&path).unwrap(), b"kept");
    // Once the directory is synced, the removal is durable.
    fs.remove_file(&path).unwrap();
    fs.sync_dir(&dir).unwrap();
    fs.power_cut();
    assert!(fs.open(&path).is_err());
}

/// A directory with a durable file `a` and then, unsynced: `b` created,
/// `a` renamed to `c`, `d` created and renamed to `e`, durable `r` removed.
fn pending_changes() -> (FaultInjectionFs, PathBuf) {
    let (fs, dir) = fs_with_dir();
    for name in ["a", "r"] {
        let mut f = fs.create(&dir.join(name)).unwrap();
        f.append(name.as_bytes()).unwrap();
        f.sync().unwrap();
    }
    fs.sync_dir(&dir).unwrap();
    let mut b = fs.create(&dir.join("b")).unwrap();
    b.append(b"b").unwrap();
    b.sync().unwrap();
    fs.rename(&dir.join("a"), &dir.join("c")).unwrap();
    let mut d = fs.create(&dir.join("d")).unwrap();
    d.append(b"d").unwrap();
    d.sync().unwrap();
    fs.rename(&dir.join("d"), &dir.join("e")).unwrap();
    fs.remove_file(&dir.join("r")).unwrap();
    (fs, dir)
}

fn names(fs: &FaultInjectionFs, dir: &Path) -> Vec<String> {
    let mut names = fs.list(dir).unwrap();
    names.sort();
    names
}

#[test]
fn each_directory_rule_keeps_what_it_says() {
    let cases = [
        (UnsyncedDirChanges::Lost, vec!["a", "r"]),
        // No creation: `d`'s rename cannot have happened either.
        (UnsyncedDirChanges::CreationsLost, vec!["c"]),
        (UnsyncedDirChanges::RenamesReverted, vec!["a", "b", "d"]),
        (UnsyncedDirChanges::Kept, vec!["b", "c", "e"]),
    ];
    for (dirs, want) in cases {
        let (fs, dir) = pending_changes();
        let rule = CrashRule {
            data: UnsyncedData::Lost,
            dirs,
        };
        fs.power_cut_with(rule, 1);
        assert_eq!(names(&fs, &dir), want, "{}", rule.name());
        // Every surviving file holds its synced bytes.
        for name in want {
            let data = fs.read_all(&dir.join(name)).unwrap();
            assert!(!data.is_empty(), "{name} under {}", rule.name());
        }
    }
}

#[test]
fn data_rules_keep_what_they_say() {
    let setup = || {
        let (fs, dir) = fs_with_dir();
        let path = dir.join("f");
        let mut f = fs.create(&path).unwrap();
        fs.sync_dir(&dir).unwrap();
        f.append(b"synced").unwrap();
        f.sync().unwrap();
        f.append(b"-one").unwrap();
        f.append(b"-twotwotwo").unwrap();
        (fs, path)
    };
    let rule = |data| CrashRule {
        data,
        dirs: UnsyncedDirChanges::Lost,
    };
    let (fs, path) = setup();
    fs.power_cut_with(rule(UnsyncedData::Kept), 0);
    assert_eq!(fs.read_all(&path).unwrap(), b"synced-one-twotwotwo");
    let mut lengths = BTreeSet::new();
    for seed in 0..64 {
        let (fs, path) = setup();
        fs.power_cut_with(rule(UnsyncedData::TornLastWrite), seed);
        let got = fs.read_all(&path).unwrap();
        assert!(got.starts_with(b"synced-one"), "{got:?}");
        assert!(got.len() < b"synced-one-twotwotwo".len());
        lengths.insert(got.len());
        let (fs, path) = setup();
        fs.power_cut_with(rule(UnsyncedData::RandomPrefix), seed);
        let got = fs.read_all(&path).unwrap();
        assert!(b"synced-one-twotwotwo".starts_with(&got) && got.starts_with(b"synced"));
        lengths.insert(got.len());
    }
    assert!(lengths.len() > 8, "the cut points do not vary: {lengths:?}");
}

#[test]
fn failed_sync_that_drops_data_is_not_undone_by_the_next_sync() {
    let (fs, dir) = fs_with_dir();
    let path = dir.join("log");
    let mut f = fs.create(&path).unwrap();
    fs.sync_dir(&dir).unwrap();
    f.append(b"first").unwrap();
    f.sync().unwrap();
    f.append(b"-lost").unwrap();
    fs.inject(FsOp::Sync, FaultKind::EioDropsUnsynced, None, 0, Some(1));
    assert_eq!(f.sync().unwrap_err().raw_os_error(), Some(5));
    assert!(fs.syncs_after_failure().is_empty());
    // The page cache still shows the bytes, and the next sync "succeeds".
    assert_eq!(fs.read_all(&path).unwrap(), b"first-lost");
    f.append(b"-after").unwrap();
    f.sync().unwrap();
    assert_eq!(fs.syncs_after_failure(), vec![path.clone()]);
    fs.power_cut();
    assert_eq!(fs.read_all(&path).unwrap(), b"first\0\0\0\0\0-after");
}

#[test]
fn reads_are_short_and_interrupted_but_read_exact_at_gets_everything() {
    let (fs, dir) = fs_with_dir();
    let path = dir.join("f");
    let data: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
    let mut f = fs.create(&path).unwrap();
    f.append(&data).unwrap();
    let file = fs.open(&path).unwrap();
    let (mut short, mut interrupted) = (0, 0);
    for i in 0..400 {
        let mut buf = vec![0; 100];
        match file.read_at(i * 10, &mut buf) {
            Ok(n) if n < 100 => short += 1,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => interrupted += 1,
            Err(e) => panic!("{e}"),
        }
        let mut buf = vec![0; 100];
        file.read_exact_at(i * 10, &mut buf).unwrap();
        assert_eq!(buf, data[i as usize * 10..][..100]);
    }
    assert!(
        short > 20 && interrupted > 5,
        "{short} short, {interrupted} EINTR"
    );
    assert_eq!(fs.read_all(&path).unwrap(), data);
    fs.set_read_faults(false);
    let mut buf = vec![0; 100];
    for i in 0..100 {
        assert_eq!(file.read_at(i, &mut buf).unwrap(), 100);
    }
}

#[test]
fn a_fork_is_a_separate_copy_of_every_state() {
    let (fs, dir) = pending_changes();
    let mut f = fs.open_append(&dir.join("b")).unwrap();
    f.append(b"-unsynced").unwrap();
    let fork = fs.fork();
    // The fork has the same live files, and a power cut on it keeps what
    // one on the original would.
    assert_eq!(names(&fork, &dir), names(&fs, &dir));
    assert_eq!(fork.read_all(&dir.join("b")).unwrap(), b"b-unsynced");
    fork.power_cut_with(
        CrashRule {
            data: UnsyncedData::Kept,
            dirs: UnsyncedDirChanges::Kept,
        },
        0,
    );
    assert_eq!(names(&fork, &dir), vec!["b", "c", "e"]);
    assert_eq!(fork.read_all(&dir.join("b")).unwrap(), b"b-unsynced");
    // Nothing done to the fork shows in the original, and back.
    fork.remove_file(&dir.join("b")).unwrap();
    f.append(b"-more").unwrap();
    assert_eq!(fs.read_all(&dir.join("b")).unwrap(), b"b-unsynced-more");
    fs.power_cut();
    assert_eq!(names(&fs, &dir), vec!["a", "r"]);
    assert_eq!(names(&fork, &dir), vec!["c", "e"]);
}

#[test]
fn links_share_data_and_need_a_dir_sync() {
    let (fs, dir) = fs_with_dir();
    let a = dir.join("a");
    let mut f = fs.create(&a).unwrap();
    f.append(b"data").unwrap();
    f.sync().unwrap();
    fs.sync_dir(&dir).unwrap();
    fs.link(&a, &dir.join("b")).unwrap();
    assert!(fs.link(&a, &dir.join("b")).is_err(), "name taken");
    fs.remove_file(&a).unwrap();
    assert_eq!(fs.read_all(&dir.join("b")).unwrap(), b"data");
    fs.power_cut();
    // The removal and the link were never made durable.
    assert!(fs.kind(&dir.join("a")).unwrap().is_some());
    assert!(fs.kind(&dir.join("b")).unwrap().is_none());
}

#[test]
fn directories_rename_and_remove() {
    let (fs, dir) = fs_with_dir();
    let sub = dir.join("sub");
    fs.create_dir_all(&sub.join("deep")).unwrap();
    fs.create(&sub.join("deep").join("f")).unwrap();
    fs.rename(&sub, &dir.join("moved")).unwrap();
    assert!(fs.kind(&sub).unwrap().is_none());
    let f = dir.join("moved").join("deep").join("f");
    assert_eq!(fs.kind(&f).unwrap(), Some(EntryKind::File));
    assert!(fs.remove_dir(&dir.join("moved").join("deep")).is_err());
    fs.remove_file(&f).unwrap();
    fs.remove_dir(&dir.join("moved").join("deep")).unwrap();
    fs.remove_dir(&dir.join("moved")).unwrap();
    assert!(fs.list(&dir).unwrap().is_empty());
}
