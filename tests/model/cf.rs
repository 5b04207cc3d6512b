//! The column-family part of the model suite: random sequences over the
//! default family and two more ("a" and "b") — creating, dropping and
//! re-creating them, looking them up, reads and writes through each (and
//! through the handle of a dropped family, which must fail), batches and
//! snapshots across families, flushes and compactions of one family, and
//! reopening (cleanly, naming families in `Options::column_families`, or
//! after a simulated crash of the process) — mixed with the plain
//! operations of [`Op`], run against a store and a reference side by side.
//!
//! A store joins by implementing [`CfHarness`].

use super::{
    bound_strategy, data_step, key_strategy, mixed, op_strategy, pick, range, seek, snapshot_step,
    value_strategy, BatchOp, Bytes, Harness, Op, Pairs,
};
use aidb::{DbIterator, KeyRange, Snapshot};
use proptest::prelude::*;
use std::fmt;
use std::ops::Bound;

/// The families a sequence uses: slot 0 is the default family.
pub const FAMILIES: [&str; 3] = ["default", "a", "b"];

/// A store with column families. Handles are `Self::Cf`, snapshots
/// `Self::Snap`; the runner keeps every handle it was given, including
/// those of dropped families, and uses them later.
pub trait CfHarness: Harness {
    type Cf: Clone;
    type Snap;
    /// The default family's handle.
    fn default_cf(&self) -> Self::Cf;
    fn create_cf(&mut self, name: &str) -> aidb::Result<Self::Cf>;
    fn drop_cf(&mut self, name: &str) -> aidb::Result<()>;
    /// The family called `name`, if it exists.
    fn cf(&self, name: &str) -> Option<Self::Cf>;
    /// Every family's name, `"default"` included, in any order.
    fn cf_names(&self) -> Vec<String>;
    fn put_cf(&self, cf: &Self::Cf, key: &[u8], value: &[u8]) -> aidb::Result<()>;
    fn delete_cf(&self, cf: &Self::Cf, key: &[u8]) -> aidb::Result<()>;
    fn get_cf(&self, cf: &Self::Cf, key: &[u8]) -> aidb::Result<Option<Vec<u8>>>;
    fn scan_cf(&self, cf: &Self::Cf, range: KeyRange) -> DbIterator;
    fn flush_cf(&self, cf: &Self::Cf) -> aidb::Result<()>;
    fn compact_cf(&self, cf: &Self::Cf, range: KeyRange) -> aidb::Result<()>;
    /// Writes one atomic batch; a `None` family means the plain
    /// (default-family) `put` / `delete` of the batch.
    fn write_cf(&self, ops: &[(Option<&Self::Cf>, &BatchOp)]) -> aidb::Result<()>;
    /// A snapshot of every family.
    fn snapshot_cf(&self) -> aidb::Result<Self::Snap>;
    /// The snapshot as the plain trait object (default family reads).
    fn snapshot_base(snap: &Self::Snap) -> &dyn Snapshot;
    fn snapshot_get_cf(
        snap: &Self::Snap,
        cf: &Self::Cf,
        key: &[u8],
    ) -> aidb::Result<Option<Vec<u8>>>;
    fn snapshot_scan_cf(snap: &Self::Snap, cf: &Self::Cf, range: KeyRange) -> DbIterator;
    /// Closes and reopens the store naming `names` in the options of the
    /// open (`Options::column_families`): missing ones are created.
    fn reopen_with_families(&mut self, names: &[&str]) -> aidb::Result<()>;
    /// Reopens after a simulated crash of the process (nothing written is
    /// lost; nothing in memory survives). A clean reopen by default.
    fn crash_reopen(&mut self) -> aidb::Result<()> {
        self.reopen()
    }
}

/// The family an operation acts on: a slot of [`FAMILIES`], and whether
/// through the handle of its last dropped incarnation (`stale`) rather than
/// the live one. When the slot has only one of the two, that one is used;
/// when it has neither (never created), the operation is skipped.
#[derive(Clone, Copy)]
pub struct CfRef {
    pub slot: usize,
    pub stale: bool,
}

impl fmt::Debug for CfRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stale = if self.stale { "~stale" } else { "" };
        write!(f, "{}{stale}", FAMILIES[self.slot])
    }
}

#[derive(Debug, Clone)]
pub enum CfOp {
    /// A plain operation (on the default family through the
    /// `StorageBackend` methods; snapshots taken here serve both kinds of
    /// snapshot reads).
    Base(Op),
    /// `create_column_family(name)`; besides "a" and "b", names that must
    /// be refused ("default", "", 256 bytes).
    Create(String),
    /// `drop_column_family(name)`; besides "a" and "b", names that must be
    /// refused ("default", an unknown one).
    Drop(String),
    /// `column_family(name)` (its handle replaces the one the runner
    /// held) and `column_family_names()`.
    Lookup(String),
    Put(CfRef, Bytes, Bytes),
    Delete(CfRef, Bytes),
    Get(CfRef, Bytes),
    Scan {
        cf: CfRef,
        start: Bound<Bytes>,
        end: Bound<Bytes>,
        reverse: bool,
        limit: usize,
    },
    Prefix {
        cf: CfRef,
        prefix: Bytes,
        reverse: bool,
    },
    Seek {
        cf: CfRef,
        key: Bytes,
        reverse: bool,
        take: usize,
    },
    Mixed(CfRef, Vec<bool>),
    /// One batch across families (`None`: the plain `put` / `delete`).
    Batch(Vec<(Option<CfRef>, BatchOp)>),
    SnapshotGet {
        index: usize,
        cf: CfRef,
        key: Bytes,
    },
    SnapshotScan {
        index: usize,
        cf: CfRef,
        start: Bound<Bytes>,
        end: Bound<Bytes>,
        reverse: bool,
    },
    Flush(CfRef),
    Compact {
        cf: CfRef,
        start: Bound<Bytes>,
        end: Bound<Bytes>,
    },
    /// Reopen naming these slots in `Options::column_families`.
    ReopenWith(Vec<usize>),
    /// Reopen after a crash of the process (see
    /// [`CfHarness::crash_reopen`]).
    CrashReopen,
}

fn cf_ref_strategy() -> impl Strategy<Value = CfRef> {
    (
        prop_oneof![2 => Just(0usize), 3 => Just(1usize), 3 => Just(2usize)],
        prop::bool::weighted(0.15),
    )
        .prop_map(|(slot, stale)| CfRef { slot, stale })
}

fn cf_op_strategy() -> impl Strategy<Value = CfOp> {
    let create_name = prop_oneof![
        6 => Just("a".to_string()),
        6 => Just("b".to_string()),
        1 => Just("default".to_string()),
        1 => Just(String::new()),
        1 => Just("x".repeat(256)),
    ];
    let drop_name = prop_oneof![
        5 => Just("a".to_string()),
        5 => Just("b".to_string()),
        1 => Just("default".to_string()),
        1 => Just("zzz".to_string()),
    ];
    let lookup_name = prop_oneof![
        2 => Just("a".to_string()),
        2 => Just("b".to_string()),
        1 => Just("default".to_string()),
        1 => Just("zzz".to_string()),
    ];
    let batch_op = (
        prop_oneof![1 => Just(None), 4 => cf_ref_strategy().prop_map(Some)],
        prop_oneof![
            3 => (key_strategy(), value_strategy()).prop_map(|(k, v)| BatchOp::Put(k, v)),
            1 => key_strategy().prop_map(BatchOp::Delete),
        ],
    );
    prop_oneof![
        45 => op_strategy().prop_map(CfOp::Base),
        4 => Just(CfOp::Base(Op::TakeSnapshot)),
        8 => create_name.prop_map(CfOp::Create),
        2 => drop_name.prop_map(CfOp::Drop),
        1 => lookup_name.prop_map(CfOp::Lookup),
        20 => (cf_ref_strategy(), key_strategy(), value_strategy())
            .prop_map(|(cf, k, v)| CfOp::Put(cf, k, v)),
        7 => (cf_ref_strategy(), key_strategy()).prop_map(|(cf, k)| CfOp::Delete(cf, k)),
        10 => (cf_ref_strategy(), key_strategy()).prop_map(|(cf, k)| CfOp::Get(cf, k)),
        4 => (cf_ref_strategy(), bound_strategy(), bound_strategy(), any::<bool>(), 0usize..20)
            .prop_map(|(cf, start, end, reverse, limit)| CfOp::Scan { cf, start, end, reverse, limit }),
        2 => (cf_ref_strategy(), key_strategy(), any::<bool>())
            .prop_map(|(cf, prefix, reverse)| CfOp::Prefix { cf, prefix, reverse }),
        3 => (cf_ref_strategy(), key_strategy(), any::<bool>(), 1usize..6)
            .prop_map(|(cf, key, reverse, take)| CfOp::Seek { cf, key, reverse, take }),
        1 => (cf_ref_strategy(), prop::collection::vec(any::<bool>(), 1..12))
            .prop_map(|(cf, p)| CfOp::Mixed(cf, p)),
        6 => prop::collection::vec(batch_op, 0..8).prop_map(CfOp::Batch),
        5 => (any::<usize>(), cf_ref_strategy(), key_strategy())
            .prop_map(|(index, cf, key)| CfOp::SnapshotGet { index, cf, key }),
        2 => (any::<usize>(), cf_ref_strategy(), bound_strategy(), bound_strategy(), any::<bool>())
            .prop_map(|(index, cf, start, end, reverse)| CfOp::SnapshotScan { index, cf, start, end, reverse }),
        3 => cf_ref_strategy().prop_map(CfOp::Flush),
        2 => (cf_ref_strategy(), bound_strategy(), bound_strategy())
            .prop_map(|(cf, start, end)| CfOp::Compact { cf, start, end }),
        1 => prop::sample::subsequence(vec![1usize, 2], 0..=2).prop_map(CfOp::ReopenWith),
        1 => Just(CfOp::CrashReopen),
    ]
}

/// Sequences of up to `max_len` operations with column families.
pub fn cf_ops_strategy(max_len: usize) -> impl Strategy<Value = Vec<CfOp>> {
    prop::collection::vec(cf_op_strategy(), 0..=max_len)
}

/// A pair of handles to one incarnation of a family, on both stores.
struct Fam<A, B> {
    h: A,
    r: B,
    /// Index of the operation that created it (or reopened the store).
    created: usize,
    /// Index of the operation that dropped it.
    dropped: Option<usize>,
}

/// A slot of [`FAMILIES`]: its live incarnation and its last dropped one.
struct Slot<A, B> {
    live: Option<Fam<A, B>>,
    stale: Option<Fam<A, B>>,
}

fn resolve<A, B>(slots: &[Slot<A, B>], cf: CfRef) -> Option<&Fam<A, B>> {
    let s = &slots[cf.slot];
    if cf.stale {
        s.stale.as_ref().or(s.live.as_ref())
    } else {
        s.live.as_ref().or(s.stale.as_ref())
    }
}

/// The kind of an error (its variant), or just "error" for an operation
/// through a dropped family's handle (whose error may differ: an old
/// handle of a reopened database reports it closed).
fn kind(e: &aidb::Error, stale: bool) -> String {
    if stale {
        return "error".into();
    }
    let d = format!("{e:?}");
    d.split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_string()
}

fn outcome<T>(r: aidb::Result<T>, stale: bool) -> Result<T, String> {
    r.map_err(|e| kind(&e, stale))
}

fn gather(
    iter: impl Iterator<Item = aidb::Result<(Vec<u8>, Vec<u8>)>>,
    limit: usize,
    stale: bool,
) -> Result<Pairs, String> {
    iter.take(limit)
        .map(|r| {
            r.map(|(k, v)| (Bytes(k), Bytes(v)))
                .map_err(|e| kind(&e, stale))
        })
        .collect()
}

fn gather_dir(iter: DbIterator, reverse: bool, limit: usize, stale: bool) -> Result<Pairs, String> {
    if reverse {
        gather(iter.rev(), limit, stale)
    } else {
        gather(iter, limit, stale)
    }
}

/// An error of a read through a dropped family's handle, as [`kind`] has it.
fn erase<T>(r: Result<T, String>, stale: bool) -> Result<T, String> {
    r.map_err(|e| if stale { "error".into() } else { e })
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

/// Runs `ops` against `h` and `MemoryBackend`.
pub fn run_cf_ops<H: CfHarness>(h: &mut H, ops: &[CfOp]) -> Result<(), String> {
    run_cf_pair(h, &mut super::reference(), ops)
}

/// Runs `ops` against `h` and `reference` side by side; the error names the
/// first op whose result differs, or that broke a rule every store must
/// keep (a dropped family's handle answers only errors; a name that exists
/// or is invalid cannot be created; "default" and unknown names cannot be
/// dropped; families survive a reopen).
pub fn run_cf_pair<H: CfHarness, R: CfHarness>(
    h: &mut H,
    reference: &mut R,
    ops: &[CfOp],
) -> Result<(), String> {
    let mut snaps: Vec<(H::Snap, R::Snap, usize)> = Vec::new();
    let mut slots: Vec<Slot<H::Cf, R::Cf>> = (0..FAMILIES.len())
        .map(|_| Slot {
            live: None,
            stale: None,
        })
        .collect();
    slots[0].live = Some(Fam {
        h: h.default_cf(),
        r: reference.default_cf(),
        created: 0,
        dropped: None,
    });
    for (i, op) in ops.iter().enumerate() {
        let fail = |what: String| format!("op #{i} {op:?}: {what}");
        macro_rules! check {
            ($stale:expr, $got:expr, $want:expr) => {{
                let (stale, got, want) = ($stale, $got, $want);
                if got != want {
                    return Err(fail(format!("got {got:?}, model says {want:?}")));
                }
                if stale && got.is_ok() {
                    return Err(fail(format!(
                        "a dropped family's handle answered {got:?}, not an error"
                    )));
                }
            }};
        }
        macro_rules! family {
            ($cf:expr) => {
                match resolve(&slots, $cf) {
                    Some(f) => (f, f.dropped.is_some()),
                    None => continue,
                }
            };
        }
        match op {
            CfOp::Base(base) => match base {
                Op::TakeSnapshot => {
                    let s = h.snapshot_cf().map_err(|e| fail(e.to_string()))?;
                    let m = reference
                        .snapshot_cf()
                        .map_err(|e| fail(format!("reference: {e}")))?;
                    snaps.push((s, m, i));
                }
                Op::SnapshotGet(index, _) | Op::SnapshotScan { index, .. } => {
                    if let Some((s, m, _)) = pick(&snaps, *index) {
                        snapshot_step(H::snapshot_base(s), R::snapshot_base(m), base)
                            .map_err(fail)?;
                    }
                }
                Op::DropSnapshot(idx) => {
                    if !snaps.is_empty() {
                        snaps.remove(idx % snaps.len());
                    }
                }
                Op::Flush => {
                    h.flush().map_err(|e| fail(e.to_string()))?;
                    reference
                        .flush()
                        .map_err(|e| fail(format!("reference: {e}")))?;
                }
                Op::Compact => {
                    h.compact().map_err(|e| fail(e.to_string()))?;
                    reference
                        .compact()
                        .map_err(|e| fail(format!("reference: {e}")))?;
                }
                Op::Reopen => {
                    snaps.clear();
                    h.reopen().map_err(|e| fail(e.to_string()))?;
                    reference
                        .reopen()
                        .map_err(|e| fail(format!("reference: {e}")))?;
                    refresh(h, reference, &mut slots, &[], i).map_err(fail)?;
                }
                _ => data_step(h.backend(), reference.backend(), base).map_err(fail)?,
            },
            CfOp::Create(name) => {
                let got = h.create_cf(name);
                let want = reference.create_cf(name);
                let slot = FAMILIES.iter().position(|n| n == name);
                match (got, want) {
                    (Ok(a), Ok(b)) => {
                        let Some(slot) = slot.filter(|&s| slots[s].live.is_none()) else {
                            return Err(fail(
                                "created a family whose name exists or is invalid".into(),
                            ));
                        };
                        slots[slot].live = Some(Fam {
                            h: a,
                            r: b,
                            created: i,
                            dropped: None,
                        });
                    }
                    (got, want) => {
                        check!(
                            false,
                            outcome(got.map(|_| ()), false),
                            outcome(want.map(|_| ()), false)
                        );
                        if slot.is_some_and(|s| slots[s].live.is_none()) {
                            return Err(fail("could not create a new family".into()));
                        }
                    }
                }
                check!(
                    false,
                    Ok::<_, String>(sorted(h.cf_names())),
                    Ok(sorted(reference.cf_names()))
                );
            }
            CfOp::Drop(name) => {
                let got = outcome(h.drop_cf(name), false);
                let want = outcome(reference.drop_cf(name), false);
                check!(false, got.clone(), want);
                let slot = FAMILIES
                    .iter()
                    .position(|n| n == name)
                    .filter(|&s| s != 0 && slots[s].live.is_some());
                match (slot, got.is_ok()) {
                    (Some(s), true) => {
                        let mut f = slots[s].live.take().expect("live");
                        f.dropped = Some(i);
                        slots[s].stale = Some(f);
                    }
                    (None, false) => {}
                    (Some(_), false) => return Err(fail("could not drop a family".into())),
                    (None, true) => {
                        return Err(fail("dropped \"default\" or a missing family".into()))
                    }
                }
                check!(
                    false,
                    Ok::<_, String>(sorted(h.cf_names())),
                    Ok(sorted(reference.cf_names()))
                );
            }
            CfOp::Lookup(name) => {
                let got = h.cf(name);
                let want = reference.cf(name);
                let slot = FAMILIES.iter().position(|n| n == name);
                let expected = slot.is_some_and(|s| slots[s].live.is_some());
                check!(false, Ok::<_, String>(got.is_some()), Ok(want.is_some()));
                if got.is_some() != expected {
                    return Err(fail(format!(
                        "column_family says {}, but the family {}",
                        if got.is_some() { "found" } else { "missing" },
                        if expected { "exists" } else { "does not exist" }
                    )));
                }
                if let (Some(a), Some(b), Some(s)) = (got, want, slot) {
                    let f = slots[s].live.as_mut().expect("live");
                    f.h = a;
                    f.r = b;
                }
                check!(
                    false,
                    Ok::<_, String>(sorted(h.cf_names())),
                    Ok(sorted(reference.cf_names()))
                );
            }
            CfOp::Put(cf, k, v) => {
                let (f, stale) = family!(*cf);
                check!(
                    stale,
                    outcome(h.put_cf(&f.h, &k.0, &v.0), stale),
                    outcome(reference.put_cf(&f.r, &k.0, &v.0), stale)
                );
            }
            CfOp::Delete(cf, k) => {
                let (f, stale) = family!(*cf);
                check!(
                    stale,
                    outcome(h.delete_cf(&f.h, &k.0), stale),
                    outcome(reference.delete_cf(&f.r, &k.0), stale)
                );
            }
            CfOp::Get(cf, k) => {
                let (f, stale) = family!(*cf);
                check!(
                    stale,
                    outcome(h.get_cf(&f.h, &k.0), stale).map(|o| o.map(Bytes)),
                    outcome(reference.get_cf(&f.r, &k.0), stale).map(|o| o.map(Bytes))
                );
            }
            CfOp::Scan {
                cf,
                start,
                end,
                reverse,
                limit,
            } => {
                let (f, stale) = family!(*cf);
                let r = range(start, end);
                // (Taking no pair need not look at the family.)
                check!(
                    stale && *limit > 0,
                    gather_dir(h.scan_cf(&f.h, r.clone()), *reverse, *limit, stale),
                    gather_dir(reference.scan_cf(&f.r, r), *reverse, *limit, stale)
                );
            }
            CfOp::Prefix {
                cf,
                prefix,
                reverse,
            } => {
                let (f, stale) = family!(*cf);
                let r = KeyRange::prefix(&prefix.0);
                check!(
                    stale,
                    gather_dir(h.scan_cf(&f.h, r.clone()), *reverse, usize::MAX, stale),
                    gather_dir(reference.scan_cf(&f.r, r), *reverse, usize::MAX, stale)
                );
            }
            CfOp::Seek {
                cf,
                key,
                reverse,
                take,
            } => {
                let (f, stale) = family!(*cf);
                check!(
                    stale,
                    erase(
                        seek(h.scan_cf(&f.h, KeyRange::all()), key, *reverse, *take),
                        stale
                    ),
                    erase(
                        seek(
                            reference.scan_cf(&f.r, KeyRange::all()),
                            key,
                            *reverse,
                            *take
                        ),
                        stale
                    )
                );
            }
            CfOp::Mixed(cf, pattern) => {
                let (f, stale) = family!(*cf);
                check!(
                    stale,
                    erase(mixed(h.scan_cf(&f.h, KeyRange::all()), pattern), stale),
                    erase(
                        mixed(reference.scan_cf(&f.r, KeyRange::all()), pattern),
                        stale
                    )
                );
            }
            CfOp::Batch(entries) => {
                let mut stale = false;
                let mut hb = Vec::new();
                let mut rb = Vec::new();
                for (cf, bop) in entries {
                    match cf {
                        None => {
                            hb.push((None, bop));
                            rb.push((None, bop));
                        }
                        Some(cf) => {
                            if let Some(f) = resolve(&slots, *cf) {
                                stale |= f.dropped.is_some();
                                hb.push((Some(&f.h), bop));
                                rb.push((Some(&f.r), bop));
                            }
                        }
                    }
                }
                check!(
                    stale,
                    outcome(h.write_cf(&hb), stale),
                    outcome(reference.write_cf(&rb), stale)
                );
            }
            CfOp::SnapshotGet { index, cf, key } => {
                let Some((s, m, _)) = pick(&snaps, *index) else {
                    continue;
                };
                let (f, stale) = family!(*cf);
                check!(
                    stale,
                    outcome(H::snapshot_get_cf(s, &f.h, &key.0), stale).map(|o| o.map(Bytes)),
                    outcome(R::snapshot_get_cf(m, &f.r, &key.0), stale).map(|o| o.map(Bytes))
                );
            }
            CfOp::SnapshotScan {
                index,
                cf,
                start,
                end,
                reverse,
            } => {
                let Some((s, m, _)) = pick(&snaps, *index) else {
                    continue;
                };
                let (f, stale) = family!(*cf);
                let r = range(start, end);
                check!(
                    stale,
                    gather_dir(
                        H::snapshot_scan_cf(s, &f.h, r.clone()),
                        *reverse,
                        usize::MAX,
                        stale
                    ),
                    gather_dir(R::snapshot_scan_cf(m, &f.r, r), *reverse, usize::MAX, stale)
                );
            }
            CfOp::Flush(cf) => {
                let (f, stale) = family!(*cf);
                check!(
                    stale,
                    outcome(h.flush_cf(&f.h), stale),
                    outcome(reference.flush_cf(&f.r), stale)
                );
            }
            CfOp::Compact { cf, start, end } => {
                let (f, stale) = family!(*cf);
                let r = range(start, end);
                check!(
                    stale,
                    outcome(h.compact_cf(&f.h, r.clone()), stale),
                    outcome(reference.compact_cf(&f.r, r), stale)
                );
            }
            CfOp::ReopenWith(listed) => {
                snaps.clear();
                let names: Vec<&str> = listed.iter().map(|&s| FAMILIES[s]).collect();
                h.reopen_with_families(&names)
                    .map_err(|e| fail(e.to_string()))?;
                reference
                    .reopen_with_families(&names)
                    .map_err(|e| fail(format!("reference: {e}")))?;
                refresh(h, reference, &mut slots, listed, i).map_err(fail)?;
            }
            CfOp::CrashReopen => {
                snaps.clear();
                h.crash_reopen().map_err(|e| fail(e.to_string()))?;
                reference
                    .crash_reopen()
                    .map_err(|e| fail(format!("reference: {e}")))?;
                refresh(h, reference, &mut slots, &[], i).map_err(fail)?;
            }
        }
    }
    // Finally the whole content of every family must agree.
    let got = super::collect(h.backend().iter(), usize::MAX)?;
    let want = super::collect(reference.backend().iter(), usize::MAX)?;
    if got != want {
        return Err(format!(
            "final contents differ: got {got:?}, model says {want:?}"
        ));
    }
    for (slot, s) in slots.iter().enumerate() {
        if let Some(f) = &s.live {
            let got = gather(h.scan_cf(&f.h, KeyRange::all()), usize::MAX, false);
            let want = gather(reference.scan_cf(&f.r, KeyRange::all()), usize::MAX, false);
            if got != want {
                return Err(format!(
                    "final contents of family {:?} differ: got {got:?}, model says {want:?}",
                    FAMILIES[slot]
                ));
            }
        }
    }
    Ok(())
}

/// After a reopen: takes fresh handles of every family (old ones belong to
/// the closed store) and checks that the families are the ones that existed
/// before, plus those the reopen listed.
fn refresh<H: CfHarness, R: CfHarness>(
    h: &H,
    reference: &R,
    slots: &mut [Slot<H::Cf, R::Cf>],
    listed: &[usize],
    i: usize,
) -> Result<(), String> {
    for (slot, name) in FAMILIES.iter().enumerate() {
        let (a, b) = if slot == 0 {
            (Some(h.default_cf()), Some(reference.default_cf()))
        } else {
            (h.cf(name), reference.cf(name))
        };
        let expected = slots[slot].live.is_some() || listed.contains(&slot);
        if a.is_some() != expected || b.is_some() != expected {
            return Err(format!(
                "after reopening, family {name:?} exists: {}, model: {}, expected: {expected}",
                a.is_some(),
                b.is_some()
            ));
        }
        slots[slot].live = match (a, b) {
            (Some(a), Some(b)) => Some(Fam {
                h: a,
                r: b,
                created: slots[slot].live.as_ref().map_or(i, |f| f.created),
                dropped: None,
            }),
            _ => None,
        };
    }
    let got = sorted(h.cf_names());
    let want = sorted(reference.cf_names());
    if got != want {
        return Err(format!(
            "after reopening, families {got:?}, model says {want:?}"
        ));
    }
    Ok(())
}
