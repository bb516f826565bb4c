//! Typed parsing of caller JSON as leniently as runc's: runc decodes config.json and
//! process.json with Go's encoding/json, which
//! - matches an object key to a struct field exactly, else case-insensitively (a hand-written
//!   `"pagesize"` is `pageSize`, `"CAPABILITIES"` is `capabilities`);
//! - treats `null` for a struct field as absent;
//! - ignores keys that name no field.
//!
//! This is done once, generically, while deserializing: `Lenient` wraps a `serde_json::Value`
//! and, where a type asks for a struct, maps each key against that struct's own field names
//! (what serde hands `deserialize_struct`). The keys of maps (annotations, sysctl, unified)
//! are data and stay as they are. Keys that name no field are collected with their JSON path,
//! for a debug line. Where an object gives one field twice (`"pageSize"` and `"pagesize"`),
//! the exact spelling wins: Go would take the one that comes last, an order serde_json's map
//! does not keep.
use std::cell::RefCell;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess};
use serde::forward_to_deserialize_any;
use serde_json::{Error, Map, Value};

/// Deserialize `raw` as Go's encoding/json would decode it. Errors name the JSON path of the
/// bad value; the second value lists the keys that name no field, by JSON path.
pub fn from_value<T: DeserializeOwned>(raw: &Value) -> anyhow::Result<(T, Vec<String>)> {
    let unknown = RefCell::new(Vec::new());
    let root = At::Root;
    let de = Lenient {
        value: raw,
        at: &root,
        unknown: &unknown,
    };
    let t = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        anyhow::anyhow!("{}: {}", path, e.into_inner())
    })?;
    Ok((t, unknown.into_inner()))
}

/// The member `name` of a JSON object, matched as Go matches a key to a field: exactly, else
/// case-insensitively (for the pre-pass over the raw document).
pub fn member_mut<'a>(v: &'a mut Value, name: &str) -> Option<&'a mut Value> {
    let obj = v.as_object_mut()?;
    let key = if obj.contains_key(name) {
        name.to_string()
    } else {
        obj.keys().find(|k| fold_eq(k, name))?.clone()
    };
    obj.get_mut(&key)
}

/// Go's case-insensitive match (bytes.EqualFold): equal under Unicode simple case folding,
/// so the Kelvin sign matches `k` and the long s matches `s`.
fn fold_eq(a: &str, b: &str) -> bool {
    let fold = |c: char| c.to_lowercase().next().unwrap_or(c);
    let upper = |c: char| c.to_uppercase().next().unwrap_or(c);
    a.chars().count() == b.chars().count()
        && a.chars()
            .zip(b.chars())
            .all(|(x, y)| x == y || fold(x) == fold(y) || upper(x) == upper(y))
}

/// Where a value sits in the document, as a chain up to the root (built on the stack as
/// the deserializer descends; a path string is only made for what is reported).
enum At<'a> {
    Root,
    Key(&'a At<'a>, &'a str),
    Index(&'a At<'a>, usize),
}

impl At<'_> {
    fn path(&self) -> String {
        match self {
            At::Root => String::new(),
            At::Key(parent, k) => match parent.path() {
                p if p.is_empty() => k.to_string(),
                p => format!("{p}.{k}"),
            },
            At::Index(parent, i) => format!("{}[{i}]", parent.path()),
        }
    }
}

struct Lenient<'de, 'p> {
    value: &'de Value,
    at: &'p At<'p>,
    unknown: &'p RefCell<Vec<String>>,
}

impl<'de> de::Deserializer<'de> for Lenient<'de, '_> {
    type Error = Error;

    fn deserialize_any<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Object(m) => visitor.visit_map(Members::new(m, None, self.at, self.unknown)),
            Value::Array(a) => visitor.visit_seq(Elements {
                iter: a.iter().enumerate(),
                at: self.at,
                unknown: self.unknown,
            }),
            scalar => de::Deserializer::deserialize_any(scalar, visitor),
        }
    }

    fn deserialize_struct<V: de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.value {
            Value::Object(m) => {
                visitor.visit_map(Members::new(m, Some(fields), self.at, self.unknown))
            }
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: de::Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: de::Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_enum(self.value, name, variants, visitor)
    }

    fn deserialize_ignored_any<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier
    }
}

/// The members of an object. With `fields` (a struct), each key is given as the field it
/// names; null members are left out, as Go leaves the field alone.
struct Members<'de, 'p> {
    /// (the field, or the key where it names none; the value)
    entries: Vec<(&'de str, &'de Value)>,
    next: usize,
    at: &'p At<'p>,
    unknown: &'p RefCell<Vec<String>>,
}

impl<'de, 'p> Members<'de, 'p> {
    fn new(
        m: &'de Map<String, Value>,
        fields: Option<&'static [&'static str]>,
        at: &'p At<'p>,
        unknown: &'p RefCell<Vec<String>>,
    ) -> Self {
        let mut entries = Vec::with_capacity(m.len());
        for (k, v) in m {
            let Some(fields) = fields else {
                entries.push((k.as_str(), v));
                continue;
            };
            if v.is_null() {
                continue;
            }
            let field = if fields.contains(&k.as_str()) {
                k.as_str()
            } else if let Some(f) = fields.iter().find(|f| fold_eq(k, f)) {
                if m.get(*f).is_some_and(|exact| !exact.is_null()) {
                    let at = At::Key(at, k);
                    tracing::debug!("{}: ignored, {f:?} is also given", at.path());
                    continue;
                }
                f
            } else {
                unknown.borrow_mut().push(At::Key(at, k).path());
                k.as_str()
            };
            entries.push((field, v));
        }
        Members {
            entries,
            next: 0,
            at,
            unknown,
        }
    }
}

impl<'de> MapAccess<'de> for Members<'de, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((field, _)) = self.entries.get(self.next) else {
            return Ok(None);
        };
        seed.deserialize(BorrowedStrDeserializer::<Error>::new(field))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        // The path names the field as the schema spells it.
        let (field, value) = self.entries[self.next];
        self.next += 1;
        let at = At::Key(self.at, field);
        seed.deserialize(Lenient {
            value,
            at: &at,
            unknown: self.unknown,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len() - self.next)
    }
}

struct Elements<'de, 'p> {
    iter: std::iter::Enumerate<std::slice::Iter<'de, Value>>,
    at: &'p At<'p>,
    unknown: &'p RefCell<Vec<String>>,
}

impl<'de> SeqAccess<'de> for Elements<'de, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let Some((i, value)) = self.iter.next() else {
            return Ok(None);
        };
        let at = At::Index(self.at, i);
        seed.deserialize(Lenient {
            value,
            at: &at,
            unknown: self.unknown,
        })
        .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{Process, Spec};

    fn spec(json: &str) -> (Spec, Vec<String>) {
        from_value(&serde_json::from_str(json).unwrap()).unwrap()
    }

    #[test]
    fn keys_match_fields_case_insensitively() {
        let (s, unknown) = spec(
            r#"{"OCIVERSION":"1.0.2","Process":{"CWD":"/","user":{"UID":5,"gid":0},"args":["sh"],
                "noNewPrivileges":true},
                "linux":{"resources":{"hugepageLimits":[{"pagesize":"2MB","LIMIT":1}]},
                "Sysctl":{"Net.Ipv4.Ip_forward":"1"}}}"#,
        );
        assert!(unknown.is_empty(), "{unknown:?}");
        assert_eq!(s.version(), "1.0.2");
        let p = s.process().as_ref().unwrap();
        assert_eq!(p.user().uid(), 5);
        let linux = s.linux().as_ref().unwrap();
        let h = &linux
            .resources()
            .as_ref()
            .unwrap()
            .hugepage_limits()
            .as_ref()
            .unwrap()[0];
        assert_eq!((h.page_size().as_str(), h.limit()), ("2MB", 1));
        // A map's keys are data: the sysctl name stays as written.
        assert!(linux
            .sysctl()
            .as_ref()
            .unwrap()
            .contains_key("Net.Ipv4.Ip_forward"));
    }

    #[test]
    fn the_exact_spelling_wins_and_null_is_absent() {
        let (p, _): (Process, _) = from_value(
            &serde_json::from_str(
                r#"{"cwd":"/","user":{"uid":1,"UID":2,"gid":0},"args":null,"terminal":null}"#,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(p.user().uid(), 1);
        assert!(p.args().is_none());
    }

    #[test]
    fn unknown_keys_are_listed_with_their_path() {
        let (_, mut unknown) = spec(
            r#"{"ociVersion":"1.0.2","bogus":1,"process":{"cwd":"/","user":{"uid":0,"gid":0},"nope":true},
                "linux":{"namespaces":[{"type":"pid","extra":1}]}}"#,
        );
        unknown.sort();
        assert_eq!(
            unknown,
            ["bogus", "linux.namespaces[0].extra", "process.nope"]
        );
    }

    #[test]
    fn errors_name_the_path() {
        let r: anyhow::Result<(Spec, _)> = from_value(
            &serde_json::from_str(
                r#"{"ociVersion":"1.0.2","Linux":{"Resources":{"memory":{"limit":"x"}}}}"#,
            )
            .unwrap(),
        );
        let e = format!("{:#}", r.unwrap_err());
        assert!(e.contains("linux.resources.memory.limit"), "{e}");
    }

    #[test]
    fn go_folding() {
        assert!(fold_eq("PageSize", "pageSize"));
        assert!(fold_eq("\u{212a}ernel", "kernel"));
        assert!(fold_eq("\u{17f}ize", "size"));
        assert!(!fold_eq("pagesiz", "pageSize"));
    }
}
