//! Request parameters as the gateway received them (query and form body merged and decoded),
//! with typed getters that fail with the Alibaba error naming the parameter.

use crate::error::{Error, Result};
use std::borrow::Cow;

/// Decoded request parameters. Later values for the same name replace earlier ones (the body
/// is merged after the query). Names and values borrow the request's text where decoding left
/// them as they were, so a request's parameters cost no copies.
///
/// Kept as one vector sorted by name: a request has a dozen parameters, which a `BTreeMap` held
/// in four allocations.
#[derive(Default, Clone)]
pub struct Params<'a> {
    sorted: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

// Parameters may carry secret values (SecretData, Plaintext): never print them.
impl std::fmt::Debug for Params<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

impl<'a> Params<'a> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, name: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) {
        let (name, value) = (name.into(), value.into());
        match self.position(&name) {
            Ok(i) => self.sorted[i].1 = value,
            Err(i) => self.sorted.insert(i, (name, value)),
        }
    }

    pub fn from_pairs<K: Into<Cow<'a, str>>, V: Into<Cow<'a, str>>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        let mut sorted: Vec<(Cow<'a, str>, Cow<'a, str>)> = pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        // Stable: a name's values stay in arrival order, and the last one is kept.
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        sorted.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(&mut later.1, &mut kept.1);
            }
            same
        });
        Params { sorted }
    }

    fn position(&self, name: &str) -> std::result::Result<usize, usize> {
        self.sorted.binary_search_by(|(k, _)| k.as_ref().cmp(name))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.sorted.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.sorted.iter().map(|(k, _)| k.as_ref())
    }

    /// A parameter's value, `None` when absent or empty (the SDKs send empty strings for unset
    /// optional fields in some paths).
    pub fn optional(&self, name: &str) -> Option<&str> {
        let i = self.position(name).ok()?;
        Some(self.sorted[i].1.as_ref()).filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &str) -> Result<&str> {
        self.optional(name).ok_or_else(|| Error::missing(name))
    }

    /// A string bounded in characters.
    pub fn text(&self, name: &str, max_chars: usize) -> Result<Option<&str>> {
        match self.optional(name) {
            Some(v) if v.chars().count() > max_chars => Err(Error::invalid(name, format!("must be at most {max_chars} characters"))),
            other => Ok(other),
        }
    }

    /// Booleans arrive as `true`, `True`, `false`, `False` (Python's `str(bool)`): compare
    /// without case.
    pub fn bool(&self, name: &str) -> Result<Option<bool>> {
        match self.optional(name) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(_) => Err(Error::invalid(name, "must be true or false")),
        }
    }

    pub fn int_in(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>> {
        match self.optional(name) {
            None => Ok(None),
            Some(v) => match v.trim().parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(Error::invalid(name, format!("must be an integer from {min} to {max}"))),
            },
        }
    }

    /// A parameter that carries JSON text (`EncryptionContext`, `Tags`, `Filters`, …).
    pub fn json(&self, name: &str) -> Result<Option<serde_json::Value>> {
        match self.optional(name) {
            None => Ok(None),
            Some(v) => {
                serde_json::from_str(v).map(Some).map_err(|e| Error::invalid(name, format!("must be valid JSON ({})", e.classify_name())))
            }
        }
    }

    /// A flattened RPC repeat list: `Name.1=a&Name.2=b` → `[a, b]` in index order.
    pub fn repeat_list(&self, name: &str) -> Result<Vec<&str>> {
        let prefix = format!("{name}.");
        let mut items: Vec<(u32, &str)> = Vec::new();
        for (k, v) in self.starting_at(&prefix) {
            let Some(rest) = k.strip_prefix(&prefix) else { break };
            if rest.contains('.') {
                continue;
            }
            let idx: u32 = rest.parse().map_err(|_| Error::invalid(k, "list index must be a number"))?;
            items.push((idx, v));
        }
        items.sort_by_key(|(i, _)| *i);
        Ok(items.into_iter().map(|(_, v)| v).collect())
    }

    /// Flattened map fields: `Prefix.<key>=<value>` → pairs (UpdateSecret's
    /// `ExtendedConfig.CustomData.<k>`).
    pub fn prefixed(&self, prefix: &str) -> Vec<(&str, &str)> {
        self.starting_at(prefix)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter_map(|(k, v)| k.strip_prefix(prefix).map(|rest| (rest, v)))
            .collect()
    }

    /// The parameters from `name` on, in name order.
    fn starting_at<'s>(&'s self, name: &str) -> impl Iterator<Item = (&'s str, &'s str)> {
        let from = self.sorted.partition_point(|(k, _)| k.as_ref() < name);
        self.sorted[from..].iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected data",
            serde_json::error::Category::Eof => "unexpected end",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_ignore_case_and_reject_other_words() {
        let p = Params::from_pairs([("A", "True"), ("B", "false"), ("C", "yes")]);
        assert_eq!(p.bool("A").unwrap(), Some(true));
        assert_eq!(p.bool("B").unwrap(), Some(false));
        assert_eq!(p.bool("Z").unwrap(), None);
        let e = p.bool("C").unwrap_err();
        assert_eq!(e.code(), "InvalidParameter");
        assert!(e.message().contains("\"C\""));
    }

    #[test]
    fn required_names_the_missing_parameter() {
        let p = Params::from_pairs([("KeyId", "")]);
        let e = p.required("KeyId").unwrap_err();
        assert_eq!(e.code(), "MissingParameter");
        assert!(e.message().contains("KeyId"));
    }

    #[test]
    fn repeat_lists_come_back_in_index_order() {
        let p = Params::from_pairs([("ResourceId.2", "b"), ("ResourceId.10", "c"), ("ResourceId.1", "a"), ("Tag.1.Key", "k")]);
        assert_eq!(p.repeat_list("ResourceId").unwrap(), vec!["a", "b", "c"]);
        assert!(p.repeat_list("Nope").unwrap().is_empty());
    }

    #[test]
    fn integers_outside_their_range_are_invalid() {
        let p = Params::from_pairs([("PageSize", "101"), ("N", "x")]);
        assert_eq!(p.int_in("PageSize", 1, 100).unwrap_err().code(), "InvalidParameter");
        assert!(p.int_in("N", 0, 1).is_err());
    }

    #[test]
    fn debug_prints_names_but_never_values() {
        let p = Params::from_pairs([("SecretData", "canary-value-123")]);
        let d = format!("{p:?}");
        assert!(d.contains("SecretData") && !d.contains("canary"));
    }

    proptest::proptest! {
        /// The sorted vector answers as a map filled in arrival order would: one entry a name,
        /// the last value sent, names in order; and so after an insert.
        #[test]
        fn parameters_read_as_a_map_filled_in_arrival_order(
            pairs in proptest::collection::vec(("[ab.]{0,3}", "[xy]{0,2}"), 0..12),
            extra in ("[ab.]{0,3}", "[xy]{0,2}"),
        ) {
            let mut model = std::collections::BTreeMap::new();
            for (k, v) in &pairs {
                model.insert(k.as_str(), v.as_str());
            }
            let mut p = Params::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            proptest::prop_assert_eq!(p.iter().collect::<Vec<_>>(), model.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>());
            p.insert(extra.0.as_str(), extra.1.as_str());
            model.insert(extra.0.as_str(), extra.1.as_str());
            proptest::prop_assert_eq!(p.iter().collect::<Vec<_>>(), model.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>());
            for name in ["", "a", "b", "a.", "ab", "zz"] {
                proptest::prop_assert_eq!(p.optional(name), model.get(name).copied().filter(|v| !v.is_empty()));
                let from: Vec<_> = model.range(name..).map(|(k, v)| (*k, *v)).collect();
                proptest::prop_assert_eq!(p.starting_at(name).collect::<Vec<_>>(), from);
            }
        }
    }

    #[test]
    fn prefixed_fields_are_collected() {
        let p = Params::from_pairs([("ExtendedConfig.CustomData.k", "v"), ("ExtendedConfig.CustomData.x y", "z"), ("Other", "o")]);
        assert_eq!(p.prefixed("ExtendedConfig.CustomData."), vec![("k", "v"), ("x y", "z")]);
    }
}
