//! A set of API keys that answers `contains` with one bit test.

use crate::api::ApiKey;

/// Keys below this are bits; others (no Kafka API has one yet) a sorted list.
const BITS: i16 = 128;

/// A set of API keys, checked on every request of a principal with a policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiSet {
    low: [u64; 2],
    high: Vec<ApiKey>,
}

impl ApiSet {
    /// The empty set.
    pub fn new() -> ApiSet {
        ApiSet::default()
    }

    /// Adds `key`.
    pub fn insert(&mut self, key: ApiKey) {
        match bit(key) {
            Some((word, mask)) => {
                if let Some(w) = self.low.get_mut(word) {
                    *w |= mask;
                }
            }
            None => {
                if let Err(at) = self.high.binary_search(&key) {
                    self.high.insert(at, key);
                }
            }
        }
    }

    /// True when `key` is in the set.
    #[inline]
    pub fn contains(&self, key: ApiKey) -> bool {
        match bit(key) {
            Some((word, mask)) => self.low.get(word).is_some_and(|w| w & mask != 0),
            None => self.high.binary_search(&key).is_ok(),
        }
    }

    /// True when nothing is in the set.
    pub fn is_empty(&self) -> bool {
        self.low == [0, 0] && self.high.is_empty()
    }

    /// Every key in `self` or `other`.
    pub fn union(&self, other: &ApiSet) -> ApiSet {
        let mut out = self.clone();
        out.extend(other.iter());
        out
    }

    /// The keys, in order.
    pub fn iter(&self) -> impl Iterator<Item = ApiKey> + '_ {
        let low = (0..BITS).map(ApiKey).filter(|k| self.contains(*k));
        let negative = self.high.iter().copied().filter(|k| k.0 < 0);
        let high = self.high.iter().copied().filter(|k| k.0 >= BITS);
        negative.chain(low).chain(high)
    }
}

impl Extend<ApiKey> for ApiSet {
    fn extend<I: IntoIterator<Item = ApiKey>>(&mut self, keys: I) {
        for key in keys {
            self.insert(key);
        }
    }
}

impl FromIterator<ApiKey> for ApiSet {
    fn from_iter<I: IntoIterator<Item = ApiKey>>(keys: I) -> ApiSet {
        let mut set = ApiSet::new();
        set.extend(keys);
        set
    }
}

/// The word and mask of a key that is a bit.
fn bit(key: ApiKey) -> Option<(usize, u64)> {
    let k = usize::try_from(key.0).ok().filter(|k| *k < BITS as usize)?;
    Some((k / 64, 1u64 << (k % 64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_and_the_rest() {
        let set: ApiSet =
            [ApiKey(20), ApiKey(0), ApiKey(127), ApiKey(64), ApiKey(300), ApiKey(-2)].into_iter().collect();
        for k in [0, 20, 64, 127, 300, -2] {
            assert!(set.contains(ApiKey(k)), "{k}");
        }
        for k in [1, 19, 63, 65, 128, 299, -1, i16::MAX, i16::MIN] {
            assert!(!set.contains(ApiKey(k)), "{k}");
        }
        let keys: Vec<i16> = set.iter().map(|k| k.0).collect();
        assert_eq!(keys, [-2, 0, 20, 64, 127, 300]);
        assert!(!set.is_empty());
        assert!(ApiSet::new().is_empty());
        let more = set.union(&[ApiKey(1)].into_iter().collect());
        assert!(more.contains(ApiKey(1)) && more.contains(ApiKey(300)));
    }
}
