//! Ordered maps and sets as sorted vectors (`litemap`), in place of
//! `BTreeMap` and `BTreeSet`.
//!
//! The engine's maps are small (contacts, chats, the outbox, a message's
//! receipts) and read far more often than written. A B-tree's node code is
//! instantiated for every key and value type: with some thirty of them it
//! was an eighth of the wasm core. A sorted vector needs a binary search and
//! `Vec::insert`/`remove` per type. Iteration is in key order, as before;
//! a map serializes as a JSON object, as `BTreeMap` did (with
//! `#[serde(with = "crate::sorted::object")]`: litemap's own serde writes an
//! empty map as `[]`), so stored records are unchanged. Building one from many entries in any order sorts once
//! (`collect`, `extend`), never entry by entry.

use litemap::LiteMap;

/// An ordered map: a sorted vector of entries.
pub type Map<K, V> = LiteMap<K, V>;

/// An ordered set: a sorted vector of distinct values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set<T>(Map<T, ()>);

impl<T> Default for Set<T> {
    fn default() -> Self {
        Self(Map::new())
    }
}

impl<T: Ord> Set<T> {
    /// An empty set.
    pub const fn new() -> Self {
        Self(Map::new())
    }

    /// Adds `value`; `true` if it was not there.
    pub fn insert(&mut self, value: T) -> bool {
        self.0.try_insert(value, ()).is_none()
    }

    /// Removes `value`; `true` if it was there.
    pub fn remove<Q: Ord + ?Sized>(&mut self, value: &Q) -> bool
    where
        T: std::borrow::Borrow<Q>,
    {
        self.0.remove(value).is_some()
    }

    pub fn contains<Q: Ord + ?Sized>(&self, value: &Q) -> bool
    where
        T: std::borrow::Borrow<Q>,
    {
        self.0.contains_key(value)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The smallest value.
    pub fn first(&self) -> Option<&T> {
        self.0.first().map(|(k, ())| k)
    }

    /// The values in order.
    pub fn iter<'a>(&'a self) -> std::iter::Map<std::slice::Iter<'a, (T, ())>, fn(&'a (T, ())) -> &'a T> {
        self.into_iter()
    }

    /// The values from the first one not below `from`, in order.
    pub fn iter_from<Q: Ord + ?Sized>(&self, from: &Q) -> impl Iterator<Item = &T>
    where
        T: std::borrow::Borrow<Q>,
    {
        let start = match self.0.find_index(from) {
            Ok(i) | Err(i) => i,
        };
        self.0.as_slice()[start..].iter().map(|(k, ())| k)
    }

    /// Whether every value of this set is in `other`.
    pub fn is_subset(&self, other: &Self) -> bool {
        self.iter().all(|v| other.contains(v))
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// Keeps the values for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        self.0.retain(|k, ()| keep(k));
    }
}

impl<T: Ord> FromIterator<T> for Set<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Self(iter.into_iter().map(|v| (v, ())).collect())
    }
}

impl<T: Ord> Extend<T> for Set<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        self.0.extend(iter.into_iter().map(|v| (v, ())));
    }
}

impl<T: Ord, const N: usize> From<[T; N]> for Set<T> {
    fn from(values: [T; N]) -> Self {
        values.into_iter().collect()
    }
}

impl<T> IntoIterator for Set<T> {
    type Item = T;
    type IntoIter = std::iter::Map<std::vec::IntoIter<(T, ())>, fn((T, ())) -> T>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter().map(|(k, ())| k)
    }
}

impl<'a, T> IntoIterator for &'a Set<T> {
    type Item = &'a T;
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (T, ())>, fn(&'a (T, ())) -> &'a T>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.as_slice().iter().map(|(k, ())| k)
    }
}

impl<T: serde::Serialize> serde::Serialize for Set<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|(k, ())| k))
    }
}

impl<'de, T: serde::Deserialize<'de> + Ord> serde::Deserialize<'de> for Set<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<T>::deserialize(d).map(Self::from_iter)
    }
}

/// A [`Map`] as a serde map (a JSON object, empty or not), as `BTreeMap`
/// is: `#[serde(with = "crate::sorted::object")]`.
pub mod object {
    use super::Map;
    use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
    use serde::ser::{Serialize, Serializer};
    use std::marker::PhantomData;

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(map: &Map<K, V>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(map.iter())
    }

    pub fn deserialize<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Map<K, V>, D::Error> {
        d.deserialize_map(Entries(PhantomData))
    }

    struct Entries<K, V>(PhantomData<fn() -> (K, V)>);

    impl<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>> Visitor<'de> for Entries<K, V> {
        type Value = Map<K, V>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a map")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let mut entries = Vec::new();
            while let Some(entry) = access.next_entry()? {
                entries.push(entry);
            }
            // A later duplicate wins, as in a BTreeMap.
            Ok(entries.into_iter().collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_keeps_its_keys_in_order_and_serializes_as_an_object() {
        let mut m: Map<String, u32> =
            [("b".to_string(), 2), ("a".to_string(), 1), ("b".to_string(), 3)].into_iter().collect();
        assert_eq!(m.insert("c".into(), 4), None);
        *m.entry("a".into()).or_default() += 10;
        assert_eq!(m.iter().map(|(k, v)| (k.as_str(), *v)).collect::<Vec<_>>(), [("a", 11), ("b", 3), ("c", 4)]);
    }

    #[test]
    fn a_map_is_stored_as_a_btree_map_was() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Record {
            #[serde(with = "object")]
            by_name: Map<String, u32>,
            #[serde(with = "object")]
            by_id: Map<u32, String>,
        }
        #[derive(serde::Serialize)]
        struct Before {
            by_name: std::collections::BTreeMap<String, u32>,
            by_id: std::collections::BTreeMap<u32, String>,
        }
        let before = Before {
            by_name: [("b".into(), 2), ("a".into(), 1)].into(),
            by_id: [(2, "two".into()), (1, "one".into())].into(),
        };
        let json = serde_json::to_string(&before).unwrap();
        let record: Record = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&record).unwrap(), json);
        assert_eq!(record.by_id.get(&1).map(String::as_str), Some("one"));
        let empty = Before { by_name: Default::default(), by_id: Default::default() };
        let json = serde_json::to_string(&empty).unwrap();
        assert_eq!(json, r#"{"by_name":{},"by_id":{}}"#);
        let record: Record = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&record).unwrap(), json);
        let late: Record = serde_json::from_str(r#"{"by_name":{"a":1,"a":2},"by_id":{}}"#).unwrap();
        assert_eq!(late.by_name.get("a"), Some(&2), "a later duplicate wins");
    }

    #[test]
    fn a_set_keeps_one_of_each_in_order() {
        let mut s: Set<String> = ["b", "a", "b"].into_iter().map(String::from).collect();
        assert!(s.insert("c".into()));
        assert!(!s.insert("a".into()));
        assert!(s.contains("b") && !s.contains("d"));
        assert_eq!(s.iter().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(s.iter_from("b").collect::<Vec<_>>(), ["b", "c"]);
        assert_eq!(s.iter_from("bb").collect::<Vec<_>>(), ["c"]);
        assert_eq!(s.first().map(String::as_str), Some("a"));
        assert!(s.remove("a") && !s.remove("a"));
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"["b","c"]"#);
        assert_eq!(serde_json::from_str::<Set<String>>(r#"["c","b","c"]"#).unwrap(), s);
    }
}
