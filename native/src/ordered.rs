//! An insertion-ordered map from ids, as Python's dict is: a plain vector searched in order
//! while small (most users engage or are engaged by a handful of others), an IndexMap once
//! it grows. Small maps cost a tenth of the memory and no hashing.

use indexmap::IndexMap;
use rustc_hash::FxBuildHasher;

use crate::state::Id;

const SMALL: usize = 8;

#[derive(Clone, Debug)]
pub enum OrderedMap<V> {
    Small(Vec<(Id, V)>),
    Large(Box<IndexMap<Id, V, FxBuildHasher>>),
}

impl<V> Default for OrderedMap<V> {
    fn default() -> Self {
        OrderedMap::Small(Vec::new())
    }
}

impl<V> OrderedMap<V> {
    pub fn len(&self) -> usize {
        match self {
            OrderedMap::Small(v) => v.len(),
            OrderedMap::Large(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        match self {
            OrderedMap::Small(v) => v.iter().find(|(k, _)| k == key).map(|(_, value)| value),
            OrderedMap::Large(m) => m.get(key),
        }
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        match self {
            OrderedMap::Small(v) => v.iter_mut().find(|(k, _)| k == key).map(|(_, value)| value),
            OrderedMap::Large(m) => m.get_mut(key),
        }
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key`: in place if present (its position kept), else at the end.
    pub fn insert(&mut self, key: Id, value: V) {
        if let Some(slot) = self.get_mut(&key) {
            *slot = value;
            return;
        }
        match self {
            OrderedMap::Small(v) if v.len() < SMALL => {
                if v.is_empty() {
                    v.reserve_exact(1);
                }
                v.push((key, value));
            }
            OrderedMap::Small(v) => {
                let mut large: IndexMap<Id, V, FxBuildHasher> =
                    std::mem::take(v).into_iter().collect();
                large.insert(key, value);
                *self = OrderedMap::Large(Box::new(large));
            }
            OrderedMap::Large(m) => {
                m.insert(key, value);
            }
        }
    }

    /// Removes `key`, keeping the order of the others.
    pub fn shift_remove(&mut self, key: &str) -> Option<V> {
        match self {
            OrderedMap::Small(v) => {
                let at = v.iter().position(|(k, _)| k == key)?;
                Some(v.remove(at).1)
            }
            OrderedMap::Large(m) => m.shift_remove(key),
        }
    }

    /// Every entry in order, leaving the map empty.
    pub fn take_all(&mut self) -> Vec<(Id, V)> {
        match std::mem::take(self) {
            OrderedMap::Small(v) => v,
            OrderedMap::Large(m) => m.into_iter().collect(),
        }
    }

    pub fn iter(&self) -> Iter<'_, V> {
        match self {
            OrderedMap::Small(v) => Iter::Small(v.iter()),
            OrderedMap::Large(m) => Iter::Large(m.iter()),
        }
    }

    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.iter().map(|(_, v)| v)
    }
}

impl<V> FromIterator<(Id, V)> for OrderedMap<V> {
    fn from_iter<I: IntoIterator<Item = (Id, V)>>(iter: I) -> Self {
        let entries: Vec<(Id, V)> = iter.into_iter().collect();
        if entries.len() <= SMALL {
            OrderedMap::Small(entries)
        } else {
            OrderedMap::Large(Box::new(entries.into_iter().collect()))
        }
    }
}

/// Entries in insertion order.
pub enum Iter<'a, V> {
    Small(std::slice::Iter<'a, (Id, V)>),
    Large(indexmap::map::Iter<'a, Id, V>),
}

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (&'a Id, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Small(it) => it.next().map(|(k, v)| (k, v)),
            Iter::Large(it) => it.next(),
        }
    }
}

impl<'a, V> IntoIterator for &'a OrderedMap<V> {
    type Item = (&'a Id, &'a V);
    type IntoIter = Iter<'a, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}
