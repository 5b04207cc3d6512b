//! The column-family operations behind [`DB`](crate::DB)'s and
//! [`ColumnFamily`]'s public methods: creating, dropping and finding
//! families, and reading, flushing and compacting one of them.

use super::family::{Family, ReadView};
use super::health::Failure;
use super::{compaction, instrument, read, stats, write, DbInner, DbStats};
use crate::batch::WriteBatch;
use crate::cf_options::ColumnFamilyOptions;
use crate::column_family::{ColumnFamily, Target};
use crate::error::{Error, Result};
use crate::iterator::{KeyRange, RawIterator};
use crate::memtable::{filter_bytes, MemTable};
use crate::options::{check_family_name, WriteOptions, DEFAULT_COLUMN_FAMILY};
use crate::version::{FamilyEdit, Version, VersionEdit};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A handle to `family` of `inner`.
pub(crate) fn handle(inner: &Arc<DbInner>, family: &Arc<Family>) -> ColumnFamily {
    ColumnFamily::new(
        family.id,
        family.uid,
        family.name.clone(),
        Target::Db {
            db: Arc::downgrade(inner),
            family: family.clone(),
        },
    )
}

pub(crate) fn by_name(inner: &Arc<DbInner>, name: &str) -> Option<ColumnFamily> {
    let family = inner.family_list().into_iter().find(|f| &*f.name == name)?;
    Some(handle(inner, &family))
}

fn dropped(family: &Family) -> Error {
    Error::InvalidArgument(format!("column family {:?} was dropped", family.name))
}

/// Fails when `family` was dropped.
pub(crate) fn check_live(family: &Family) -> Result<()> {
    if family.is_dropped() {
        return Err(dropped(family));
    }
    Ok(())
}

pub(crate) fn create_family(
    inner: &Arc<DbInner>,
    name: &str,
    options: ColumnFamilyOptions,
) -> Result<ColumnFamily> {
    check_family_name(name)?;
    options.validate_as("ColumnFamilyOptions")?;
    inner.check_writable()?;
    let mut versions = inner.versions.lock();
    if inner.family_list().iter().any(|f| &*f.name == name) {
        return Err(Error::InvalidArgument(format!(
            "column family {name:?} already exists"
        )));
    }
    let id = versions.max_family_id + 1;
    let log = inner.current_log.load(Ordering::Acquire);
    let edit = FamilyEdit {
        id,
        add: Some((name.to_string(), options.encode())),
        log_number: Some(log),
        ..FamilyEdit::new(id)
    };
    let changed = versions
        .log_and_apply(
            VersionEdit::for_family(edit),
            inner.next_file_number.load(Ordering::Relaxed),
            inner.visible_seq.load(Ordering::Acquire),
            || inner.new_file_number(),
        )
        .map_err(|e| inner.stop_writes(e, Failure::Fatal))?;
    let version = changed
        .into_iter()
        .find(|(i, _)| *i == id)
        .map(|(_, v)| v)
        .ok_or_else(|| Error::Internal("a created family has no version".into()))?;
    if options.ttl.is_some() {
        inner.ttl_in_use.store(true, Ordering::Relaxed);
    }
    let mem_filter = filter_bytes(options.write_buffer_size);
    let family = Arc::new(Family::new(
        id,
        name.into(),
        options,
        Arc::new(MemTable::new(log, mem_filter)),
        version,
    ));
    inner.families.write().insert(id, family.clone());
    Ok(handle(inner, &family))
}

pub(crate) fn drop_family(inner: &Arc<DbInner>, name: &str) -> Result<()> {
    if name == DEFAULT_COLUMN_FAMILY {
        return Err(Error::InvalidArgument(
            "the default column family cannot be dropped".into(),
        ));
    }
    inner.check_writable()?;
    let mut versions = inner.versions.lock();
    let family = inner
        .family_list()
        .into_iter()
        .find(|f| &*f.name == name)
        .ok_or_else(|| Error::InvalidArgument(format!("no column family {name:?}")))?;
    let edit = FamilyEdit {
        drop: true,
        ..FamilyEdit::new(family.id)
    };
    versions
        .log_and_apply(
            VersionEdit::for_family(edit),
            inner.next_file_number.load(Ordering::Relaxed),
            inner.visible_seq.load(Ordering::Acquire),
            || inner.new_file_number(),
        )
        .map_err(|e| inner.stop_writes(e, Failure::Fatal))?;
    // Under the versions lock, so an install in flight for this family
    // sees the drop and discards its output.
    family.dropped.store(true, Ordering::Release);
    inner.families.write().remove(&family.id);
    // Handles may outlive the drop: they must not keep the family's
    // memtables and files alive (iterators hold views of their own).
    *family.view.write() = Arc::new(ReadView {
        mem: Arc::new(MemTable::new(0, 0)),
        imms: Vec::new(),
        version: Arc::new(Version::empty(family.opts.num_levels)),
    });
    drop(versions);
    // Its memtables no longer keep logs alive.
    inner.bg.notify();
    Ok(())
}

pub(crate) fn write_batch(
    inner: &DbInner,
    batch: WriteBatch,
    options: &WriteOptions,
) -> Result<()> {
    instrument::write(inner, batch, |batch| {
        write::write(inner, batch, options.sync)
    })
}

pub(crate) fn get_cf(inner: &Arc<DbInner>, family: &Family, key: &[u8]) -> Result<Option<Vec<u8>>> {
    instrument::get(inner, || {
        inner.check_open()?;
        check_live(family)?;
        let (seq, view) = family.current_view(&inner.visible_seq);
        read::get(inner, family, &view, key, seq)
    })
}

pub(crate) fn raw_iterator_cf(inner: &Arc<DbInner>, family: &Family) -> Box<dyn RawIterator> {
    if let Err(e) = inner.check_open().and_then(|_| check_live(family)) {
        return Box::new(read::FailedIterator(e));
    }
    let (seq, view) = family.current_view(&inner.visible_seq);
    let iter = read::DbRawIterator::new(inner, family, view, seq);
    if !inner.stats.per_op {
        return Box::new(iter);
    }
    Box::new(instrument::StatsIterator::new(iter, inner.clone()))
}

/// Writes the family's memtables to table files and waits for the ones
/// that hold the writes made before the call (not for later ones).
pub(crate) fn flush_cf(inner: &DbInner, family: &Family) -> Result<()> {
    inner.check_writable()?;
    check_live(family)?;
    let Some(newest) = write::freeze_memtable(inner, family)? else {
        return Ok(());
    };
    // Memtables are flushed oldest first; ones frozen after this call (by
    // later writes) have larger log numbers.
    inner.wait_for(|_, _| {
        family.is_dropped()
            || family
                .view
                .read()
                .imms
                .last()
                .is_none_or(|oldest| oldest.log_number() > newest)
    })?;
    check_live(family)
}

pub(crate) fn compact_range_cf(inner: &DbInner, family: &Family, range: &KeyRange) -> Result<()> {
    flush_cf(inner, family)?;
    compaction::compact_range(inner, family, range)
}

pub(crate) fn property_cf(inner: &DbInner, family: &Family, name: &str) -> Option<String> {
    if family.is_dropped() {
        return None;
    }
    super::properties::property(inner, family, name)
}

pub(crate) fn stats_cf(inner: &DbInner, family: &Family) -> DbStats {
    stats::collect(inner, family)
}
