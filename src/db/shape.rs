//! The shape a family's levels should have: where level 0 compacts to and
//! how large each level may grow before it compacts into the next.
//!
//! Static sizing (LevelDB's): level 0 compacts into level 1, whose target
//! is `max_bytes_for_level_base`, and each level below may hold
//! `max_bytes_for_level_multiplier` times the one above.
//!
//! Dynamic sizing (`level_compaction_dynamic_level_bytes`, RocksDB's
//! default since 8.4) works from the bottom up: the largest level sets the
//! scale, and the levels above it get targets that shrink by the
//! multiplier until one is no larger than `max_bytes_for_level_base`. That
//! one is the base level, where level 0 compacts to; the levels between
//! level 0 and it hold nothing. A small family therefore has all its data
//! in the last level and level 0 compacts straight into it, instead of
//! being rewritten once per level on the way down. No target is set below
//! `max_bytes_for_level_base`, so the levels under the base never get
//! smaller than level 0 and starve it of compactions.

use crate::cf_options::ColumnFamilyOptions;
use crate::version::Version;

/// Where level 0 compacts to, and each level's target size.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LevelShape {
    /// The level level 0 compacts into. Every level between 0 and it is
    /// empty (the first non-empty level below 0 is never above it).
    pub(crate) base: usize,
    /// Target size of each level: `None` for level 0, the last level and
    /// the empty levels above `base`.
    pub(crate) targets: Vec<Option<u64>>,
}

/// The shape `opts` gives the levels of `version`.
pub(crate) fn level_shape(opts: &ColumnFamilyOptions, version: &Version) -> LevelShape {
    let n = opts.num_levels;
    let sizes: Vec<u64> = (0..n)
        .map(|l| {
            version
                .levels
                .get(l)
                .map_or(0, |files| files.iter().map(|f| f.meta.size).sum())
        })
        .collect();
    shape_for_sizes(opts, &sizes)
}

/// [`level_shape`] for levels holding `sizes` bytes (one entry per level).
pub(crate) fn shape_for_sizes(opts: &ColumnFamilyOptions, sizes: &[u64]) -> LevelShape {
    let n = opts.num_levels;
    let mult = opts.max_bytes_for_level_multiplier;
    let base_max = opts.max_bytes_for_level_base;
    let mut targets = vec![None; n];
    if !opts.level_compaction_dynamic_level_bytes || n <= 2 {
        let mut target = base_max as f64;
        for t in targets.iter_mut().take(n - 1).skip(1) {
            *t = Some(target as u64);
            target *= mult;
        }
        return LevelShape { base: 1, targets };
    }
    let size = |l: usize| sizes.get(l).copied().unwrap_or(0);
    let Some(first) = (1..n).find(|&l| size(l) > 0) else {
        // Nothing below level 0: it compacts straight into the last level.
        return LevelShape {
            base: n - 1,
            targets,
        };
    };
    let largest = (1..n).map(size).max().unwrap_or(0);
    let base_min = (base_max as f64 / mult) as u64;
    // The size the first non-empty level would get if the largest level
    // were the last one's target.
    let mut cur = largest as f64;
    for _ in first..n - 1 {
        cur /= mult;
    }
    let (base, base_size) = if (cur as u64) <= base_min {
        // Data sits on more levels than its size needs (for example a
        // family that was sized statically): keep the first non-empty
        // level as the base and let compactions push data down.
        (first, base_min.saturating_add(1))
    } else {
        let mut base = first;
        while base > 1 && cur as u64 > base_max {
            base -= 1;
            cur /= mult;
        }
        (base, (cur as u64).clamp(1, base_max))
    };
    let mut target = base_size as f64;
    for (l, t) in targets.iter_mut().enumerate().take(n - 1).skip(base) {
        if l > base {
            target *= mult;
        }
        *t = Some((target as u64).max(base_max));
    }
    LevelShape { base, targets }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    fn opts(dynamic: bool) -> ColumnFamilyOptions {
        ColumnFamilyOptions {
            level_compaction_dynamic_level_bytes: dynamic,
            ..Default::default()
        }
    }

    #[test]
    fn static_sizing_starts_at_level_one() {
        let s = shape_for_sizes(&opts(false), &[0; 7]);
        assert_eq!(s.base, 1);
        assert_eq!(s.targets[0], None);
        assert_eq!(s.targets[1], Some(256 * MB));
        assert_eq!(s.targets[2], Some(2560 * MB));
        assert_eq!(s.targets[6], None);
    }

    #[test]
    fn dynamic_sizing_fills_the_last_level_first() {
        let o = opts(true);
        // Empty: level 0 goes straight to the last level.
        let s = shape_for_sizes(&o, &[0; 7]);
        assert_eq!((s.base, s.targets.clone()), (6, vec![None; 7]));
        // Under the base size, the last level is still the base.
        let s = shape_for_sizes(&o, &[10 * MB, 0, 0, 0, 0, 0, 200 * MB]);
        assert_eq!(s.base, 6);
        // Over it, the level above becomes the base, with a target of at
        // least max_bytes_for_level_base.
        let s = shape_for_sizes(&o, &[0, 0, 0, 0, 0, 0, 600 * MB]);
        assert_eq!(s.base, 5);
        assert_eq!(s.targets[5], Some(256 * MB));
        // A hundred times larger: two more levels, the base's target at
        // most max_bytes_for_level_base.
        let s = shape_for_sizes(&o, &[0, 0, 0, 0, 0, 100 * MB, 30_000 * MB]);
        assert_eq!(s.base, 3);
        assert_eq!(s.targets[3], Some(256 * MB));
        assert_eq!(s.targets[4], Some(300 * MB));
        assert_eq!(s.targets[5], Some(3000 * MB));
        assert_eq!(s.targets[6], None);
        for l in 0..3 {
            assert_eq!(s.targets[l], None, "level {l}");
        }
    }

    #[test]
    fn dynamic_base_is_never_below_the_first_non_empty_level() {
        let o = opts(true);
        // A family sized statically before: data on levels 1 and 2.
        let s = shape_for_sizes(&o, &[0, 250 * MB, 400 * MB, 0, 0, 0, 0]);
        assert_eq!(s.base, 1);
        assert!(s.targets[1].is_some() && s.targets[2].is_some());
        // Huge data whose base would be above level 1 is capped there.
        let s = shape_for_sizes(&o, &[0, 0, 0, 0, 0, 0, 1 << 50]);
        assert_eq!(s.base, 1);
        assert_eq!(s.targets[1], Some(256 * MB));
        for sizes in [
            [0, 0, 0, 5 * MB, 0, 0, 900 * MB],
            [0, 0, 1, 0, 0, 0, 90_000 * MB],
            [0, 0, 0, 0, 0, 300 * MB, 0],
        ] {
            let s = shape_for_sizes(&o, &sizes);
            let first = (1..7).find(|&l| sizes[l] > 0).unwrap();
            assert!(s.base <= first, "{sizes:?}: base {}", s.base);
        }
    }
}
