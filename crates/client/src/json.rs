//! Reading JSON into the engine's types: serde_json parses the text into a
//! [`Value`], then [`Tree`] hands that to the type's `Deserialize`.
//!
//! Why not `serde_json::from_slice` straight into the type: serde_json's
//! deserializer offers a struct either a JSON object or an array of its
//! fields in order, so every struct's derived reading code was linked
//! twice, once per shape, although the engine only ever writes objects.
//! [`Tree`] reads a struct from an object only (and otherwise reads every
//! JSON value as serde_json does): about 50 KB less wasm. Used for every
//! JSON the engine and the extension read: stored records, records that
//! travel inside protocol messages, values from JavaScript.

use serde::de::value::StringDeserializer;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, Error as _, IntoDeserializer, Unexpected, Visitor,
};
use serde_json::{Error, Map, Value};

/// Reads `bytes` (JSON) as a `T`.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    T::deserialize(Tree(serde_json::from_slice::<Value>(bytes)?))
}

/// A parsed JSON value as a serde deserializer.
struct Tree(Value);

fn unexpected(v: &Value) -> Unexpected<'_> {
    match v {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Unexpected::Unsigned(u),
            (_, Some(i)) => Unexpected::Signed(i),
            _ => Unexpected::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

impl Tree {
    fn invalid<T>(&self, exp: &dyn de::Expected) -> Result<T, Error> {
        Err(Error::invalid_type(unexpected(&self.0), exp))
    }
}

/// The elements of an array, each read in turn; all of them must be.
fn visit_array<'de, V: Visitor<'de>>(items: Vec<Value>, visitor: V) -> Result<V::Value, Error> {
    let len = items.len();
    let mut seq = Seq(items.into_iter());
    let value = visitor.visit_seq(&mut seq)?;
    match seq.0.len() {
        0 => Ok(value),
        left => Err(Error::invalid_length(len - left, &"fewer elements in array")),
    }
}

/// The entries of an object, each read in turn; all of them must be.
fn visit_object<'de, V: Visitor<'de>>(entries: Map<String, Value>, visitor: V) -> Result<V::Value, Error> {
    let len = entries.len();
    let mut map = Entries { iter: entries.into_iter(), value: None };
    let value = visitor.visit_map(&mut map)?;
    match map.iter.len() {
        0 => Ok(value),
        left => Err(Error::invalid_length(len - left, &"fewer elements in map")),
    }
}

impl<'de> Deserializer<'de> for Tree {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => visitor.visit_u64(u),
                (_, Some(i)) => visitor.visit_i64(i),
                _ => visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => visitor.visit_string(s),
            Value::Array(items) => visit_array(items, visitor),
            Value::Object(entries) => visit_object(entries, visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    /// An object only (see the module's doc).
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(entries) => visit_object(entries, visitor),
            _ => self.invalid(&visitor),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(entries) => visit_object(entries, visitor),
            _ => self.invalid(&visitor),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(items) => visit_array(items, visitor),
            _ => self.invalid(&visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::String(s) => visitor.visit_string(s),
            _ => self.invalid(&visitor),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_string(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_string(visitor)
    }

    /// A string (its UTF-8 bytes) or an array of numbers, as serde_json reads bytes.
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::String(s) => visitor.visit_byte_buf(s.into_bytes()),
            Value::Array(items) => visit_array(items, visitor),
            _ => self.invalid(&visitor),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_byte_buf(visitor)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            _ => self.invalid(&visitor),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    /// `"Variant"` (a unit variant) or `{"Variant": content}`.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::String(variant) => visitor.visit_enum(IntoDeserializer::<Error>::into_deserializer(variant)),
            Value::Object(entries) if entries.len() == 1 => {
                let (variant, content) = entries.into_iter().next().expect("one entry");
                visitor.visit_enum(Variant { variant, content })
            }
            Value::Object(_) => Err(Error::invalid_value(Unexpected::Map, &"a map with a single key")),
            _ => self.invalid(&visitor),
        }
    }

    serde::forward_to_deserialize_any! { bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char ignored_any }
}

/// An array's elements.
struct Seq(std::vec::IntoIter<Value>);

impl<'de> de::SeqAccess<'de> for Seq {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        self.0.next().map(|v| seed.deserialize(Tree(v))).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// An object's entries; `value` holds the value of the key just read.
struct Entries {
    iter: <Map<String, Value> as IntoIterator>::IntoIter,
    value: Option<Value>,
}

impl<'de> de::MapAccess<'de> for Entries {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.iter.next() else { return Ok(None) };
        self.value = Some(value);
        seed.deserialize(Key(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let value = self.value.take().ok_or_else(|| Error::custom("value is missing"))?;
        seed.deserialize(Tree(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// An object's key: a string, which a number type reads as the number it
/// spells (`{"1": …}` for a map keyed by `u32`), as serde_json does.
struct Key(String);

impl Key {
    fn number<'de, N: std::str::FromStr, V: Visitor<'de>>(
        self,
        visitor: V,
        visit: impl FnOnce(V, N) -> Result<V::Value, Error>,
    ) -> Result<V::Value, Error> {
        match self.0.parse::<N>() {
            Ok(n) => visit(visitor, n),
            Err(_) => Err(Error::invalid_type(Unexpected::Str(&self.0), &visitor)),
        }
    }
}

impl<'de> Deserializer<'de> for Key {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_string(self.0)
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.number(visitor, V::visit_u8)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.number(visitor, V::visit_u16)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.number(visitor, V::visit_u32)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.number(visitor, V::visit_u64)
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.number(visitor, V::visit_i8)
    }

    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.number(visitor, V::visit_i16)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.number(visitor, V::visit_i32)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.number(visitor, V::visit_i64)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        IntoDeserializer::<Error>::into_deserializer(self.0).deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! { bool i128 u128 f32 f64 char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier ignored_any }
}

/// `{"Variant": content}`.
struct Variant {
    variant: String,
    content: Value,
}

impl<'de> de::EnumAccess<'de> for Variant {
    type Error = Error;
    type Variant = Tree;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Tree), Error> {
        let variant: StringDeserializer<Error> = self.variant.into_deserializer();
        Ok((seed.deserialize(variant)?, Tree(self.content)))
    }
}

impl<'de> de::VariantAccess<'de> for Tree {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        de::Deserialize::deserialize(self)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn struct_variant<V: Visitor<'de>>(self, fields: &'static [&'static str], visitor: V) -> Result<V::Value, Error> {
        self.deserialize_struct("", fields, visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};
    use std::collections::BTreeMap;

    #[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
    struct Inner {
        n: i64,
        #[serde(default)]
        f: f64,
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum Shape {
        Unit,
        New(u32),
        Pair(u8, String),
        Named { a: bool },
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum Tagged {
        One { x: u64 },
        Two,
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(untagged)]
    enum Either {
        Number(u64),
        Text(String),
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Newtype(Vec<u8>);

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Record {
        text: String,
        big: u64,
        neg: i32,
        flag: bool,
        missing: Option<String>,
        null: Option<u8>,
        some: Option<Inner>,
        list: Vec<Inner>,
        tuple: (u8, String),
        by_id: BTreeMap<u32, String>,
        by_name: BTreeMap<String, Vec<u16>>,
        shapes: Vec<Shape>,
        tagged: Vec<Tagged>,
        either: Vec<Either>,
        newtype: Newtype,
        unit: (),
        ch: char,
        #[serde(default)]
        defaulted: Inner,
    }

    /// What serde_json reads straight from the text, `from_slice` reads too.
    #[test]
    fn reads_every_value_as_serde_json_does() {
        let text = r#"{"text":"a \"q\" é","big":18446744073709551615,"neg":-5,"flag":true,"null":null,
            "some":{"n":-1,"f":2.5},"list":[{"n":1},{"n":2,"f":0.0}],"tuple":[7,"x"],
            "by_id":{"2":"two","10":"ten"},"by_name":{"k":[1,2]},
            "shapes":["Unit",{"New":3},{"Pair":[1,"p"]},{"Named":{"a":false}}],
            "tagged":[{"kind":"one","x":4},{"kind":"two"}],"either":[5,"five"],
            "newtype":[1,2,3],"unit":null,"ch":"z","ignored":{"deep":[1,{"x":null}]}}"#;
        let direct: Record = serde_json::from_str(text).unwrap();
        let tree: Record = from_slice(text.as_bytes()).unwrap();
        assert_eq!(tree, direct);
        assert_eq!(tree.by_id.get(&10).map(String::as_str), Some("ten"));
        assert_eq!(tree.missing, None);
        let again: Record = from_slice(&serde_json::to_vec(&tree).unwrap()).unwrap();
        assert_eq!(again, tree);
    }

    #[test]
    fn refuses_what_serde_json_refuses() {
        assert!(from_slice::<Inner>(br#"{"n":"1"}"#).is_err());
        assert!(from_slice::<Inner>(br#"{"f":1}"#).is_err(), "a missing field");
        assert!(from_slice::<u8>(b"256").is_err());
        assert!(from_slice::<u32>(b"-1").is_err());
        assert!(from_slice::<Shape>(br#"{"New":1,"Unit":null}"#).is_err());
        assert!(from_slice::<Shape>(br#""Other""#).is_err());
        assert!(from_slice::<BTreeMap<u32, u8>>(br#"{"x":1}"#).is_err());
        assert!(from_slice::<(u8, u8)>(b"[1,2,3]").is_err());
        assert!(from_slice::<Inner>(b"{} x").is_err(), "trailing characters");
        assert!(from_slice::<Inner>(b"{").is_err());
    }

    #[test]
    fn reads_a_struct_from_an_object_only() {
        assert!(serde_json::from_str::<Inner>("[1,2.0]").is_ok(), "serde_json itself takes the fields in order");
        assert!(from_slice::<Inner>(b"[1,2.0]").is_err());
    }
}
