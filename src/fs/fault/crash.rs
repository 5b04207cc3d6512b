//! What a simulated power cut leaves behind: the persistence rules.
//!
//! A real disk behind a page cache can be found, after a power cut, in many
//! states: any of the data written since the last fsync may or may not have
//! reached the platter, a write may have reached it in part, and directory
//! changes not made durable by a directory fsync may or may not have been
//! journaled. A crash-safe engine must recover from every one of them. The
//! rules here pick one such state each, in two independent dimensions: the
//! unsynced bytes of each file ([`UnsyncedData`]) and the unsynced
//! directory changes ([`UnsyncedDirChanges`]). [`CrashRule::ALL`] lists
//! the combinations the crash tests run under.

use super::NodeRef;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What a power cut keeps of the bytes appended to a file since its last
/// `sync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnsyncedData {
    /// Nothing: every file is cut back to its synced length.
    Lost,
    /// A random prefix of each file's unsynced bytes (the cache wrote back
    /// some of them, in order).
    RandomPrefix,
    /// All of them, except that each file's last unsynced append is cut at
    /// a random byte: a write torn by the power going out.
    TornLastWrite,
    /// All of them (the cache wrote everything back in time).
    Kept,
}

/// What a power cut keeps of the creations, renames and removals in a
/// directory since its last `sync_dir`.
///
/// Whatever is kept, each name's history is kept in order: once a change
/// to a name is lost, every later change to that name is lost too (a
/// rename of a file whose creation was lost cannot have happened).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnsyncedDirChanges {
    /// None: every directory as of its last `sync_dir`.
    Lost,
    /// Renames and removals, but no creations: the entries that are not
    /// durable yet are dropped.
    CreationsLost,
    /// Creations and removals, but every rename is reverted.
    RenamesReverted,
    /// All of them (the lenient counterpart: the journal got everything).
    Kept,
}

/// One persistence rule for a simulated power cut: what survives of
/// unsynced file data, and of unsynced directory changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CrashRule {
    /// Unsynced bytes of files.
    pub data: UnsyncedData,
    /// Unsynced directory changes.
    pub dirs: UnsyncedDirChanges,
}

impl CrashRule {
    /// The strict rule: only what was synced survives.
    pub const STRICT: CrashRule = CrashRule {
        data: UnsyncedData::Lost,
        dirs: UnsyncedDirChanges::Lost,
    };

    /// The rules the crash tests cut power under, each a state a real disk
    /// can be found in:
    /// 1. unsynced data dropped (and unsynced directory changes);
    /// 2. unsynced data kept up to a random prefix of each file;
    /// 3. unsynced data kept, each file's last write torn at a random byte;
    /// 4. unsynced directory entries dropped (creations lost; renames and
    ///    removals kept), all data of the surviving files kept;
    /// 5. renames reverted (creations and removals kept), all data kept;
    /// 6. the lenient counterpart: every unsynced directory change kept,
    ///    unsynced data dropped.
    pub const ALL: [CrashRule; 6] = [
        CrashRule::STRICT,
        CrashRule {
            data: UnsyncedData::RandomPrefix,
            dirs: UnsyncedDirChanges::Lost,
        },
        CrashRule {
            data: UnsyncedData::TornLastWrite,
            dirs: UnsyncedDirChanges::Lost,
        },
        CrashRule {
            data: UnsyncedData::Kept,
            dirs: UnsyncedDirChanges::CreationsLost,
        },
        CrashRule {
            data: UnsyncedData::Kept,
            dirs: UnsyncedDirChanges::RenamesReverted,
        },
        CrashRule {
            data: UnsyncedData::Lost,
            dirs: UnsyncedDirChanges::Kept,
        },
    ];

    /// A short name for messages: `data/dirs`.
    pub fn name(&self) -> String {
        format!("{:?}/{:?}", self.data, self.dirs)
    }
}

/// A directory change not yet made durable by `sync_dir`, in the order the
/// changes were made.
#[derive(Debug, Clone)]
pub(super) enum DirChange {
    Create { path: PathBuf, node: NodeRef },
    Rename { from: PathBuf, to: PathBuf },
    Remove { path: PathBuf },
}

impl DirChange {
    /// Whether the change is in directory `dir` (a rename: on either side).
    pub(super) fn touches_dir(&self, dir: &Path) -> bool {
        let in_dir = |p: &Path| super::parent_dir(p) == dir;
        match self {
            DirChange::Create { path, .. } | DirChange::Remove { path } => in_dir(path),
            DirChange::Rename { from, to } => in_dir(from) || in_dir(to),
        }
    }

    fn paths(&self) -> Vec<&PathBuf> {
        match self {
            DirChange::Create { path, .. } | DirChange::Remove { path } => vec![path],
            DirChange::Rename { from, to } => vec![from, to],
        }
    }

    fn kept_by(&self, rule: UnsyncedDirChanges) -> bool {
        match (rule, self) {
            (UnsyncedDirChanges::Lost, _) => false,
            (UnsyncedDirChanges::Kept, _) => true,
            (UnsyncedDirChanges::CreationsLost, DirChange::Create { .. }) => false,
            (UnsyncedDirChanges::RenamesReverted, DirChange::Rename { .. }) => false,
            _ => true,
        }
    }
}

/// The name space a power cut leaves: the durable entries with the pending
/// changes `rule` keeps applied in order, skipping every change to a name
/// whose earlier change was lost.
pub(super) fn surviving_entries(
    durable: &BTreeMap<PathBuf, NodeRef>,
    pending: &[DirChange],
    rule: UnsyncedDirChanges,
) -> BTreeMap<PathBuf, NodeRef> {
    let mut image = durable.clone();
    let mut cut: BTreeSet<PathBuf> = BTreeSet::new();
    for change in pending {
        let after_a_loss = change.paths().iter().any(|p| cut.contains(*p));
        let applied = !after_a_loss
            && change.kept_by(rule)
            && match change {
                DirChange::Create { path, node } => {
                    image.insert(path.clone(), node.clone());
                    true
                }
                DirChange::Rename { from, to } => match image.remove(from) {
                    Some(node) => {
                        image.insert(to.clone(), node);
                        true
                    }
                    None => false,
                },
                DirChange::Remove { path } => {
                    image.remove(path);
                    true
                }
            };
        if !applied {
            cut.extend(change.paths().into_iter().cloned());
        }
    }
    image
}

/// A small deterministic generator (splitmix64), so that a power cut's
/// random choices are reproducible from a seed without a dependency.
#[derive(Debug, Clone)]
pub(super) struct SplitMix(u64);

impl SplitMix {
    pub(super) fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }

    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub(super) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}
