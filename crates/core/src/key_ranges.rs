//! Sets of integer keys as sorted, disjoint ranges: how the extract remembers which keys it has
//! delivered and says which were deleted (see `extract::reconcile`), and how the transform and
//! the load carry tombstones. ToteSys keys are serial, so a table's keys are a handful of ranges
//! however many rows it has; written as text (`1..4000,4002..9000`) they stay small in a manifest.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Sorted, disjoint, non-adjacent inclusive ranges of keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRanges(Vec<(i64, i64)>);

impl KeyRanges {
    /// The set of `keys`, in any order, duplicates allowed.
    pub fn from_keys(keys: impl IntoIterator<Item = i64>) -> KeyRanges {
        let mut keys: Vec<i64> = keys.into_iter().collect();
        keys.sort_unstable();
        let mut set = KeyRanges::default();
        for key in keys {
            set.push_range(key, key);
        }
        set
    }

    /// The set of the given inclusive ranges, in any order, overlapping or not.
    pub fn from_ranges(ranges: impl IntoIterator<Item = (i64, i64)>) -> KeyRanges {
        let mut ranges: Vec<(i64, i64)> = ranges.into_iter().filter(|(lo, hi)| lo <= hi).collect();
        ranges.sort_unstable();
        let mut set = KeyRanges::default();
        for (lo, hi) in ranges {
            set.push_range(lo, hi);
        }
        set
    }

    /// Appends a range that starts at or after every range held (merging when it touches).
    fn push_range(&mut self, lo: i64, hi: i64) {
        match self.0.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => self.0.push((lo, hi)),
        }
    }

    pub fn ranges(&self) -> &[(i64, i64)] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many keys the set holds.
    pub fn len(&self) -> u64 {
        self.0.iter().map(|(lo, hi)| hi.abs_diff(*lo) + 1).sum()
    }

    pub fn contains(&self, key: i64) -> bool {
        let at = self.0.partition_point(|(_, hi)| *hi < key);
        self.0.get(at).is_some_and(|(lo, _)| *lo <= key)
    }

    pub fn union(&self, other: &KeyRanges) -> KeyRanges {
        KeyRanges::from_ranges(self.0.iter().chain(other.0.iter()).copied())
    }

    /// The keys of `self` that `other` lacks.
    pub fn difference(&self, other: &KeyRanges) -> KeyRanges {
        // In i128, so that `hi + 1` past `i64::MAX` needs no special case.
        let mut out = KeyRanges::default();
        let mut others = other.0.iter().map(|&(lo, hi)| (i128::from(lo), i128::from(hi))).peekable();
        for &(lo, hi) in &self.0 {
            let (mut from, hi) = (i128::from(lo), i128::from(hi));
            while let Some(&(olo, ohi)) = others.peek() {
                if ohi < from {
                    others.next();
                    continue;
                }
                if olo > hi {
                    break;
                }
                if olo > from {
                    out.push_range(from as i64, (olo - 1) as i64);
                }
                from = ohi + 1;
                if ohi > hi {
                    break;
                }
                others.next();
            }
            if from <= hi {
                out.push_range(from as i64, hi as i64);
            }
        }
        out
    }

    pub fn intersection(&self, other: &KeyRanges) -> KeyRanges {
        self.difference(&self.difference(other))
    }

    /// The keys in `[lo, hi]`.
    pub fn within(&self, lo: i64, hi: i64) -> KeyRanges {
        self.intersection(&KeyRanges::from_ranges([(lo, hi)]))
    }
}

impl fmt::Display for KeyRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (lo, hi)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if lo == hi { write!(f, "{lo}")? } else { write!(f, "{lo}..{hi}")? }
        }
        Ok(())
    }
}

impl std::str::FromStr for KeyRanges {
    type Err = String;

    fn from_str(text: &str) -> Result<KeyRanges, String> {
        let parse = |s: &str| s.parse::<i64>().map_err(|e| format!("key ranges {text:?}: {s:?}: {e}"));
        let mut ranges = Vec::new();
        for part in text.split(',').filter(|p| !p.is_empty()) {
            // `..` never occurs inside a number, so the first one splits a range (`-5..-3`).
            let (lo, hi) = match part.split_once("..") {
                Some((lo, hi)) => (parse(lo)?, parse(hi)?),
                None => (parse(part)?, parse(part)?),
            };
            if lo > hi {
                return Err(format!("key ranges {text:?}: {part:?} runs backwards"));
            }
            ranges.push((lo, hi));
        }
        Ok(KeyRanges::from_ranges(ranges))
    }
}

impl Serialize for KeyRanges {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KeyRanges {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<KeyRanges, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn set(text: &str) -> KeyRanges {
        text.parse().expect("ranges")
    }

    #[test]
    fn keys_collapse_into_ranges_and_print_compactly() {
        let keys = KeyRanges::from_keys([5, 1, 2, 3, 9, 3, 10, -2, -1]);
        assert_eq!(keys.to_string(), "-2..-1,1..3,5,9..10");
        assert_eq!(keys.len(), 8);
        assert_eq!(set(&keys.to_string()), keys);
        assert_eq!(set(""), KeyRanges::default());
        assert!("3..1".parse::<KeyRanges>().is_err());
        assert!("1..x".parse::<KeyRanges>().is_err());
    }

    #[test]
    fn set_operations_match_the_same_on_sets_of_keys() {
        // Every pair of small sets over -3..=12, against BTreeSet's answers.
        let universe: Vec<i64> = (-3..=12).collect();
        let sample = |seed: u64| -> BTreeSet<i64> {
            universe.iter().copied().filter(|k| (seed >> ((k + 3) as u64)) & 1 == 1).collect()
        };
        for a_seed in (0..65_536u64).step_by(997) {
            for b_seed in (0..65_536u64).step_by(1_231) {
                let (a, b) = (sample(a_seed), sample(b_seed));
                let (ra, rb) = (KeyRanges::from_keys(a.iter().copied()), KeyRanges::from_keys(b.iter().copied()));
                let keys =
                    |r: &KeyRanges| -> BTreeSet<i64> { r.ranges().iter().flat_map(|(lo, hi)| *lo..=*hi).collect() };
                assert_eq!(keys(&ra.difference(&rb)), a.difference(&b).copied().collect(), "{ra} - {rb}");
                assert_eq!(keys(&ra.union(&rb)), a.union(&b).copied().collect(), "{ra} + {rb}");
                assert_eq!(keys(&ra.intersection(&rb)), a.intersection(&b).copied().collect(), "{ra} & {rb}");
                assert!(universe.iter().all(|k| ra.contains(*k) == a.contains(k)));
            }
        }
    }

    #[test]
    fn extreme_keys_do_not_overflow() {
        let all = KeyRanges::from_ranges([(i64::MIN, i64::MAX)]);
        assert!(all.difference(&all).is_empty());
        assert_eq!(all.difference(&set("0")).to_string(), format!("{}..-1,1..{}", i64::MIN, i64::MAX));
        assert_eq!(set(&format!("{}", i64::MAX)).difference(&set("1")).len(), 1);
    }
}
