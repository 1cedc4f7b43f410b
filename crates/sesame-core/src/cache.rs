//! In-memory caches in front of the store for the hot read path (a signed GetSecretValue):
//! access key credentials, users' parsed policies, secret metadata, sealed version values (with
//! their data keys once a read has opened them) and CMKs with their unwrapped material.
//!
//! This process invalidates an entry whenever it writes what the entry holds (a secret's entry is
//! replaced by the secret as written, when the entry held the revision just before). When the store is
//! this process's alone (a SQLite store: its file is locked by its one server), nothing else
//! writes it, and mutable entries live as long as immutable ones. A store that several nodes
//! share is changed from elsewhere too, so there a short time to live bounds how stale an entry
//! can be. Immutable things (a version's sealed value, a CMK version's material) live long either
//! way. Entries are reference-counted: key material is zeroed when the last holder drops it.

use crate::identity::Credential;
use crate::model::{DbInstance, Key, SealedValue, Secret};
use crate::policy::{DocKind, PolicyDocument};
use sesame_api::kms::EncryptionContext;
use sesame_api::secrets::Tag;
use sesame_crypto::KeyMaterial;
use sesame_crypto::aead::Cipher;
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a mutable entry may be served without asking a shared store again.
pub const SHARED_TTL: Duration = Duration::from_secs(1);
/// For entries that never change once written.
pub const IMMUTABLE_TTL: Duration = Duration::from_secs(300);
const MAX_ENTRIES: usize = 200_000;

/// Entries with the time they were cached, and how many invalidations the map has seen.
type Entries<K, V> = (HashMap<K, (Instant, Arc<V>)>, u64);

pub struct TtlCache<K, V> {
    ttl: Duration,
    map: Mutex<Entries<K, V>>,
}

/// Taken before reading the store for a fill: the fill is kept only if nothing was invalidated
/// since.
#[derive(Clone, Copy)]
struct Ticket(u64);

impl<K: Eq + Hash + Clone, V> TtlCache<K, V> {
    pub fn new(ttl: Duration) -> Self {
        TtlCache { ttl, map: Mutex::new((HashMap::new(), 0)) }
    }

    /// The cached value, or the one `load` reads from the store, which is cached unless an
    /// invalidation landed while it was being read (a read that raced a write must not put back
    /// what the write just dropped). The key is borrowed, and copied only on a miss.
    pub async fn get_or_load<Q, E>(&self, k: &Q, load: impl Future<Output = Result<V, E>>) -> Result<Arc<V>, E>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(v) = self.get(k) {
            return Ok(v);
        }
        let ticket = self.ticket();
        Ok(self.put_since(ticket, k.to_owned(), load.await?))
    }

    /// As [`Self::get_or_load`], for things that may not exist (an absence is not cached).
    pub async fn get_or_find<Q, E>(&self, k: &Q, find: impl Future<Output = Result<Option<V>, E>>) -> Result<Option<Arc<V>>, E>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(v) = self.get(k) {
            return Ok(Some(v));
        }
        let ticket = self.ticket();
        Ok(find.await?.map(|v| self.put_since(ticket, k.to_owned(), v)))
    }

    fn ticket(&self) -> Ticket {
        Ticket(self.map.lock().map(|m| m.1).unwrap_or(u64::MAX))
    }

    /// Caches `v` unless something was invalidated since `ticket`; returns it either way.
    fn put_since(&self, ticket: Ticket, k: K, v: V) -> Arc<V> {
        let v = Arc::new(v);
        if let Ok(mut guard) = self.map.lock() {
            let (map, invalidations) = &mut *guard;
            if *invalidations == ticket.0 {
                insert(map, k, v.clone());
            }
        }
        v
    }

    pub fn get<Q>(&self, k: &Q) -> Option<Arc<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let guard = self.map.lock().ok()?;
        guard.0.get(k).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, v)| v.clone())
    }

    /// Caches `v` without a ticket: for values that never change once written.
    pub fn put(&self, k: K, v: V) -> Arc<V> {
        let v = Arc::new(v);
        if let Ok(mut guard) = self.map.lock() {
            insert(&mut guard.0, k, v.clone());
        }
        v
    }

    /// After a write to what `k`'s entry holds: `next` makes the entry's successor from the
    /// entry cached now, or declines (`None`); the successor replaces that entry if nothing
    /// replaced or dropped it meanwhile. Otherwise the entry goes, as [`Self::remove`] drops it.
    /// Either way fills that began before are not kept. `next` runs outside the lock.
    pub fn replace<Q>(&self, k: &Q, next: impl FnOnce(&V) -> Option<V>)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let Ok(guard) = self.map.lock() else { return };
        let cached = guard.0.get(k).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, v)| v.clone());
        drop(guard);
        let successor = cached.as_deref().and_then(next).map(Arc::new);
        if let Ok(mut guard) = self.map.lock() {
            let (map, invalidations) = &mut *guard;
            *invalidations += 1;
            let unchanged = match (map.get(k), &cached) {
                (Some((_, now)), Some(before)) => Arc::ptr_eq(now, before),
                _ => false,
            };
            match successor.filter(|_| unchanged) {
                Some(v) => insert(map, k.to_owned(), v),
                None => {
                    map.remove(k);
                }
            }
        }
    }

    pub fn remove<Q>(&self, k: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Ok(mut guard) = self.map.lock() {
            guard.0.remove(k);
            guard.1 += 1;
        }
    }

    pub fn clear(&self) {
        if let Ok(mut guard) = self.map.lock() {
            guard.0.clear();
            guard.1 += 1;
        }
    }

    /// Drops the entries past their time to live, which reads already skip: what they hold (key
    /// material among it) is freed, and zeroed, now rather than when a later fill replaces it.
    /// Not an invalidation: nothing a reader holds goes stale.
    pub fn purge_expired(&self) {
        let now = Instant::now();
        if let Ok(mut guard) = self.map.lock() {
            // One clock read for the whole map, which may hold 200,000 entries.
            guard.0.retain(|_, (at, _)| now.saturating_duration_since(*at) < self.ttl);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().map(|m| m.0.len()).unwrap_or_default()
    }

    pub fn retain(&self, keep: impl Fn(&K) -> bool) {
        if let Ok(mut guard) = self.map.lock() {
            guard.0.retain(|k, _| keep(k));
            guard.1 += 1;
        }
    }
}

/// The key of a secret's version or a CMK's version: two names. A lookup borrows them as
/// `(&str, &str)` through `dyn Pair`, so that reading the cache copies neither.
pub type PairKey = (String, String);

/// Two names, owned or borrowed, hashed and compared as the pair of strings they hold (so a
/// borrowed pair finds the entry its owned pair made).
pub trait Pair {
    fn parts(&self) -> (&str, &str);
}

impl Pair for PairKey {
    fn parts(&self) -> (&str, &str) {
        (&self.0, &self.1)
    }
}

impl Pair for (&str, &str) {
    fn parts(&self) -> (&str, &str) {
        *self
    }
}

impl Hash for dyn Pair + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // What `(String, String)` hashes: each string in turn.
        self.parts().hash(state);
    }
}

impl PartialEq for dyn Pair + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn Pair + '_ {}

impl<'a> Borrow<dyn Pair + 'a> for PairKey {
    fn borrow(&self) -> &(dyn Pair + 'a) {
        self
    }
}

/// Adds an entry, emptying the map first when it is full.
fn insert<K: Eq + Hash, V>(map: &mut HashMap<K, (Instant, Arc<V>)>, k: K, v: Arc<V>) {
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    map.insert(k, (Instant::now(), v));
}

/// A secret's metadata with its tags and parsed policy, as authorization and GetSecretValue
/// read them.
pub struct SecretEntry {
    pub secret: Secret,
    pub tags: Vec<Tag>,
    /// `None` when the stored policy does not parse: it grants nothing.
    pub policy: Option<Arc<PolicyDocument>>,
}

/// A secret version's sealed value as GetSecretValue reads it: its encryption context, and its
/// data key once a read has opened it (so that later reads unseal the value alone). Whether the
/// CMK is enabled is checked at every read all the same; the data key is zeroed when the entry
/// goes.
pub struct SealedEntry {
    pub sealed: SealedValue,
    pub context: EncryptionContext,
    pub data_key: OnceLock<KeyMaterial>,
}

impl SealedEntry {
    pub fn new(sealed: SealedValue, context: EncryptionContext) -> Self {
        SealedEntry { sealed, context, data_key: OnceLock::new() }
    }
}

/// A CMK with its tags, as authorization and the cryptographic operations read it.
pub struct KeyEntry {
    pub key: Key,
    pub tags: Vec<(String, String)>,
}

pub struct Caches {
    pub credentials: TtlCache<String, Credential>,
    pub policies: TtlCache<String, Vec<PolicyDocument>>,
    pub secrets: TtlCache<String, SecretEntry>,
    /// Parsed secret policies by their text (`None`: it does not parse).
    secret_policies: TtlCache<String, Option<Arc<PolicyDocument>>>,
    pub sealed: TtlCache<PairKey, SealedEntry>,
    pub keys: TtlCache<String, KeyEntry>,
    pub material: TtlCache<PairKey, Cipher>,
    pub db_instances: TtlCache<String, DbInstance>,
}

impl Caches {
    /// Caches in front of a store; `sole_writer` when every write to it goes through this
    /// process (see the module's docs).
    pub fn for_store(sole_writer: bool) -> Self {
        let mutable = if sole_writer { IMMUTABLE_TTL } else { SHARED_TTL };
        Caches {
            credentials: TtlCache::new(mutable),
            policies: TtlCache::new(mutable),
            secrets: TtlCache::new(mutable),
            secret_policies: TtlCache::new(IMMUTABLE_TTL),
            sealed: TtlCache::new(IMMUTABLE_TTL),
            keys: TtlCache::new(mutable),
            material: TtlCache::new(IMMUTABLE_TTL),
            db_instances: TtlCache::new(mutable),
        }
    }
}

impl Caches {
    /// A secret's entry, its policy parsed once per distinct text: most secrets carry the same
    /// default policy, so a secret read for the first time (at 100,000 secrets, nearly every read)
    /// parses nothing.
    pub fn secret_entry(&self, secret: Secret, tags: Vec<Tag>) -> SecretEntry {
        let policy = match self.secret_policies.get(&secret.policy) {
            Some(parsed) => Option::clone(&parsed),
            None => {
                let parsed = match PolicyDocument::parse(&secret.policy, DocKind::Secret) {
                    Ok(p) => Some(Arc::new(p)),
                    Err(e) => {
                        tracing::warn!(secret = %secret.name, error = %e, "a secret policy does not parse; it grants nothing");
                        None
                    }
                };
                Option::clone(&self.secret_policies.put(secret.policy.clone(), parsed))
            }
        };
        SecretEntry { secret, tags, policy }
    }

    /// After this process wrote `s` (its revision the one written): the cached entry becomes `s`
    /// if it held the revision just before, so the next request on the secret reads no store;
    /// otherwise it goes. The tags are the entry's: a write of tags drops the entry instead.
    pub fn secret_written(&self, s: &Secret) {
        self.secrets.replace(s.name.as_str(), |old| {
            (old.secret.revision + 1 == s.revision).then(|| {
                if old.secret.policy == s.policy {
                    SecretEntry { secret: s.clone(), tags: old.tags.clone(), policy: old.policy.clone() }
                } else {
                    self.secret_entry(s.clone(), old.tags.clone())
                }
            })
        });
    }

    /// After any change to a secret (its versions, stages, tags, policy, existence).
    pub fn secret_changed(&self, name: &str) {
        self.secrets.remove(name);
    }

    /// After a secret is removed: its versions' values go too.
    pub fn secret_removed(&self, name: &str) {
        self.secret_changed(name);
        self.sealed.retain(|(n, _)| n != name);
    }

    /// After the tags of a key or a secret change.
    pub fn tags_changed(&self, rtype: &str, id: &str) {
        match rtype {
            "key" => self.keys.remove(id),
            _ => self.secret_changed(id),
        }
    }

    /// Drops every entry past its time to live (the scheduler calls it).
    pub fn purge_expired(&self) {
        self.credentials.purge_expired();
        self.policies.purge_expired();
        self.secrets.purge_expired();
        self.secret_policies.purge_expired();
        self.sealed.purge_expired();
        self.keys.purge_expired();
        self.material.purge_expired();
        self.db_instances.purge_expired();
    }

    /// After any change to users, access keys or policies.
    pub fn identities_changed(&self) {
        self.credentials.clear();
        self.policies.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_can_be_removed() {
        let c: TtlCache<String, u32> = TtlCache::new(Duration::from_millis(30));
        c.put("a".into(), 1);
        assert_eq!(c.get("a").as_deref(), Some(&1));
        c.remove("a");
        assert_eq!(c.get("a"), None);
        c.put("b".into(), 2);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.get("b"), None, "expired");
    }

    #[test]
    fn a_purge_drops_the_expired_entries_and_keeps_the_others() {
        let c: TtlCache<String, u32> = TtlCache::new(Duration::from_millis(30));
        c.put("old".into(), 1);
        std::thread::sleep(Duration::from_millis(40));
        c.put("new".into(), 2);
        assert_eq!(c.len(), 2, "an expired entry stays until a purge or a fill replaces it");
        c.purge_expired();
        assert_eq!(c.len(), 1);
        assert_eq!(c.get("new").as_deref(), Some(&2));
        // Not an invalidation: a fill that began before the purge is kept.
        let ticket = c.ticket();
        c.purge_expired();
        c.put_since(ticket, "fill".into(), 3);
        assert_eq!(c.get("fill").as_deref(), Some(&3));
    }

    #[test]
    fn a_fill_that_raced_an_invalidation_is_not_kept() {
        let c: TtlCache<String, u32> = TtlCache::new(Duration::from_secs(60));
        let before = c.ticket();
        // A write's invalidation lands while the reader is at the store.
        c.remove("k");
        assert_eq!(*c.put_since(before, "k".into(), 1), 1, "the reader still gets what it read");
        assert_eq!(c.get("k"), None, "but the stale fill is not cached");
        let after = c.ticket();
        c.put_since(after, "k".into(), 2);
        assert_eq!(c.get("k").as_deref(), Some(&2), "a fill with no invalidation since is kept");
    }

    #[test]
    fn a_write_replaces_only_the_entry_it_started_from() {
        let c: TtlCache<String, u32> = TtlCache::new(Duration::from_secs(60));
        c.put("k".into(), 1);
        let before = c.ticket();
        c.replace("k", |old| Some(old + 1));
        assert_eq!(c.get("k").as_deref(), Some(&2), "the successor of the entry cached");
        c.put_since(before, "k".into(), 1);
        assert_eq!(c.get("k").as_deref(), Some(&2), "a fill begun before the write is not kept");

        c.replace("k", |_| None);
        assert_eq!(c.get("k"), None, "a successor declined: the entry goes");
        c.replace("k", |_| Some(9));
        assert_eq!(c.get("k"), None, "nothing cached: nothing to succeed");

        c.put("k".into(), 5);
        c.replace("k", |old| {
            // Another write replaces the entry while this one makes its successor.
            c.put("k".into(), 7);
            Some(old + 1)
        });
        assert_eq!(c.get("k"), None, "the entry changed meanwhile: neither is trusted");
    }

    #[test]
    fn a_borrowed_pair_finds_the_entry_of_its_owned_pair() {
        let c: TtlCache<PairKey, u32> = TtlCache::new(Duration::from_secs(60));
        c.put(("db/app".into(), "v1".into()), 1);
        c.put(("db/app".into(), "v2".into()), 2);
        assert_eq!(c.get(&("db/app", "v1") as &dyn Pair).as_deref(), Some(&1));
        assert_eq!(c.get(&("db/app", "v2") as &dyn Pair).as_deref(), Some(&2));
        // The names are compared as a pair, not as their concatenation.
        assert_eq!(c.get(&("db/appv", "1") as &dyn Pair), None);
        assert_eq!(c.get(&("db/app", "v3") as &dyn Pair), None);
        c.retain(|(name, _)| name != "db/app");
        assert_eq!(c.get(&("db/app", "v1") as &dyn Pair), None);
    }

    fn secret(name: &str, policy: &str) -> Secret {
        Secret {
            name: name.into(),
            secret_type: "Generic".into(),
            instance_id: "kst-1".into(),
            key_id: "k".into(),
            description: String::new(),
            extended_config: None,
            creator: "admin".into(),
            created: sesame_api::time::Timestamp(0),
            updated: sesame_api::time::Timestamp(0),
            planned_delete: None,
            policy: policy.into(),
            versions: Vec::new(),
            rotation_interval: None,
            last_rotation: None,
            next_rotation: None,
            revision: 1,
        }
    }

    #[test]
    fn secrets_with_the_same_policy_text_share_one_parsed_policy() {
        let caches = Caches::for_store(false);
        let text = r#"{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["acs:ram::1:root"]},"Action":["kms:*"],"Resource":["*"]}]}"#;
        let a = caches.secret_entry(secret("a", text), Vec::new()).policy.expect("parses");
        let b = caches.secret_entry(secret("b", text), Vec::new()).policy.expect("parses");
        assert!(Arc::ptr_eq(&a, &b), "the second secret's policy was not parsed again");
        let other = caches.secret_entry(secret("c", &text.replace("Allow", "Deny")), Vec::new()).policy.expect("parses");
        assert!(!Arc::ptr_eq(&a, &other), "another text is parsed on its own");
        assert!(caches.secret_entry(secret("d", "not json"), Vec::new()).policy.is_none(), "a policy that does not parse grants nothing");
        assert!(caches.secret_entry(secret("e", "not json"), Vec::new()).policy.is_none(), "also when it was seen before");
    }

    #[test]
    fn mutable_entries_outlive_a_second_only_in_front_of_a_store_no_one_else_writes() {
        let mutable_ttls = |c: &Caches| [c.credentials.ttl, c.policies.ttl, c.secrets.ttl, c.keys.ttl, c.db_instances.ttl];
        assert_eq!(mutable_ttls(&Caches::for_store(false)), [SHARED_TTL; 5], "a shared store");
        assert_eq!(mutable_ttls(&Caches::for_store(true)), [IMMUTABLE_TTL; 5], "a store this process alone writes");
        for c in [Caches::for_store(false), Caches::for_store(true)] {
            assert_eq!([c.sealed.ttl, c.material.ttl, c.secret_policies.ttl], [IMMUTABLE_TTL; 3], "immutable entries either way");
        }
    }
}
