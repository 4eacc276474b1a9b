//! Strict reading of a parsed JSON body into a request type: where the type expects an
//! object, only a JSON object will do.
//!
//! serde's derived structs also accept a JSON array of their fields in order, so
//! `"total": [1000, "EUR"]` would read as `{"amount": 1000, "currency": "EUR"}` and `[]`
//! as an object with every optional field left out. The API's contract is objects, so
//! [`Strict`] refuses an array wherever a struct is expected, at any depth; everything
//! else reads exactly as `serde_json::Value` reads it.

use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// A JSON value read strictly. `T::deserialize(Strict(&value))`.
pub struct Strict<'a>(pub &'a Value);

type Error = serde_json::Error;

impl<'de> Deserializer<'de> for Strict<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => n.deserialize_any(visitor),
            Value::String(s) => visitor.visit_borrowed_str(s),
            // serde reads an internally tagged enum (`{"kind": "fixed", …}`) through
            // here, and would take `["fixed", 10]` as well: refused, as for a struct.
            Value::Array(_) if expects_tagged_enum(&visitor) => {
                Err(de::Error::invalid_type(de::Unexpected::Seq, &visitor))
            }
            Value::Array(items) => visitor.visit_seq(Items(items.iter())),
            Value::Object(map) => visitor.visit_map(Fields {
                iter: map.iter(),
                value: None,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(_) => self.deserialize_any(visitor),
            other => Err(de::Error::invalid_type(unexpected(other), &visitor)),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_struct("", &[], visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::String(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            // `{"Variant": …}`: read as JSON reads it.
            Value::Object(_) => self
                .0
                .deserialize_enum(_name, _variants, visitor)
                .map_err(de::Error::custom),
            other => Err(de::Error::invalid_type(unexpected(other), &visitor)),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct identifier ignored_any
    }
}

/// Whether `visitor` reads an internally tagged enum (serde says so in what it expects).
fn expects_tagged_enum<'de, V: Visitor<'de>>(visitor: &V) -> bool {
    struct Expecting<'a, V>(&'a V);
    impl<'de, V: Visitor<'de>> std::fmt::Display for Expecting<'_, V> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.0.expecting(f)
        }
    }
    Expecting(visitor).to_string().starts_with("internally tagged enum")
}

fn unexpected(v: &Value) -> de::Unexpected<'_> {
    match v {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(_) => de::Unexpected::Other("number"),
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

struct Items<'a>(std::slice::Iter<'a, Value>);

impl<'de> SeqAccess<'de> for Items<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        self.0.next().map(|v| seed.deserialize(Strict(v))).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Fields<'a> {
    iter: serde_json::map::Iter<'a>,
    value: Option<&'a Value>,
}

impl<'de> MapAccess<'de> for Fields<'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(k.as_str().into_deserializer()).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let v = self
            .value
            .take()
            .ok_or_else(|| de::Error::custom("a value without a key"))?;
        seed.deserialize(Strict(v))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

#[cfg(test)]
mod tests {
    use super::Strict;
    use serde::Deserialize;

    #[derive(Deserialize, Debug, PartialEq)]
    struct Money {
        amount: i64,
        currency: String,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Sale {
        total: Money,
        #[serde(default)]
        lines: Vec<Money>,
        note: Option<String>,
    }

    fn read<T: for<'a> Deserialize<'a>>(text: &str) -> Result<T, serde_json::Error> {
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        T::deserialize(Strict(&v))
    }

    #[test]
    fn objects_read_as_they_would_from_json() {
        let sale: Sale =
            read(r#"{"total":{"amount":5,"currency":"EUR"},"lines":[{"amount":1,"currency":"CZK"}],"note":null}"#)
                .unwrap();
        assert_eq!(
            sale.total,
            Money {
                amount: 5,
                currency: "EUR".into()
            }
        );
        assert_eq!(sale.lines.len(), 1);
        assert_eq!(sale.note, None);
    }

    #[test]
    fn an_array_where_an_object_belongs_is_refused_at_any_depth() {
        // serde_json itself accepts each of these.
        assert!(serde_json::from_str::<Sale>(r#"{"total":[5,"EUR"]}"#).is_ok());
        assert!(read::<Sale>(r#"{"total":[5,"EUR"]}"#).is_err());
        assert!(read::<Sale>(r#"[[5,"EUR"]]"#).is_err());
        assert!(read::<Sale>(r#"{"total":{"amount":5,"currency":"EUR"},"lines":[[1,"CZK"]]}"#).is_err());
        assert!(read::<std::collections::HashMap<String, i64>>("[]").is_err());
    }

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum Effect {
        Fixed { points: i64 },
    }

    #[test]
    fn a_tagged_enum_is_an_object_too() {
        assert_eq!(
            read::<Effect>(r#"{"kind":"fixed","points":10}"#).unwrap(),
            Effect::Fixed { points: 10 }
        );
        assert!(serde_json::from_str::<Effect>(r#"["fixed", 10]"#).is_ok());
        assert!(read::<Effect>(r#"["fixed", 10]"#).is_err());
        // A JSON value inside (event attributes) keeps its arrays.
        assert!(read::<serde_json::Value>(r#"[1, [2, 3]]"#).is_ok());
    }
}
