//! The audit trail: one ActionTrail-shaped event per request, allowed, denied or failing
//! authentication, appended to a hash chain keyed by a MAC key that the root key seals.
//!
//! A request writes its event to the audit journal ([`journal`]) before it is answered, and a
//! writer task copies the journal into the trail in batches (up to [`MAX_BATCH`]), chaining them
//! by one hand. If the event cannot be written to the journal the request fails: nothing is
//! answered unrecorded. Lookups and `verify` first wait for the trail to hold every event
//! written before them.
//!
//! `verify` walks the chain: each event's MAC covers the previous MAC, its position and all its
//! fields, and a sealed head names the last position, so an edited, inserted, deleted or
//! reordered event, or a cut tail, is found with its position. (Replacing the whole store with an
//! older copy of itself is not detectable from inside it; export the trail to keep it elsewhere.)

pub mod journal;

use crate::Deps;
use crate::model::{AuditChain, AuditRecord};
use journal::{Journal, Journaled};
use serde::Serialize;
use serde_json::{Map, Value};
use sesame_api::Error;
use sesame_api::error::Result;
use sesame_api::ram::{AuditProblem, EventQuery, VerifyEventsResponse};
use sesame_crypto::KeyMaterial;
use sesame_crypto::mac::MacKey;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

pub const MAX_BATCH: usize = 512;
/// How long the writer gathers events after the first of a batch. No request waits for the
/// trail (each waits only for its journal write), so larger, fewer commits cost nothing but this
/// lag, and each event costs the trail's thread about a quarter less.
const BATCH_WINDOW: Duration = Duration::from_millis(2);
const META_KEY: &str = "audit_mac_key";
/// How long a lookup (or a shutdown) waits for the trail to take the journal's events.
const CATCH_UP: Duration = Duration::from_secs(10);
/// The writer's pause after a failed append, doubled per failure up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);
const VERIFY_PAGE: i64 = 1_000;

struct Chain {
    key: MacKey,
}

impl Chain {
    fn head_mac(&self, seq: i64, mac: &[u8]) -> Vec<u8> {
        self.key.sign(&[b"head", &seq.to_be_bytes(), mac])
    }
}

impl AuditChain for Chain {
    fn link(&self, prev: &[u8], seq: i64, r: &AuditRecord) -> Vec<u8> {
        self.key.sign(&[
            prev,
            &seq.to_be_bytes(),
            &r.time.to_be_bytes(),
            r.user.as_bytes(),
            r.event_name.as_bytes(),
            r.resource.as_bytes(),
            r.result.as_bytes(),
            r.access_key.as_bytes(),
            r.event.as_bytes(),
        ])
    }

    fn head(&self, seq: i64, mac: &[u8]) -> String {
        format!("{seq}:{}:{}", sesame_crypto::hex(mac), sesame_crypto::hex(&self.head_mac(seq, mac)))
    }

    fn resume(&self, head: Option<&str>, last: Option<(i64, Vec<u8>)>) -> (i64, Vec<u8>) {
        let last_seq = last.as_ref().map_or(0, |(s, _)| *s);
        match head.and_then(parse_head) {
            Some((seq, mac, _)) => (seq.max(last_seq), mac),
            None => last.unwrap_or_default(),
        }
    }
}

/// `seq:mac:seal`, hex.
fn parse_head(head: &str) -> Option<(i64, Vec<u8>, Vec<u8>)> {
    let mut parts = head.split(':');
    let seq = parts.next()?.parse().ok()?;
    let mac = sesame_crypto::unhex(parts.next()?)?;
    let seal = sesame_crypto::unhex(parts.next()?)?;
    parts.next().is_none().then_some((seq, mac, seal))
}

/// What the gateway knows about a request once it is answered.
pub struct RequestFacts<'a> {
    pub request_id: &'a str,
    pub time: i64,
    /// `kms`, `rds`, `dms`, `ram`, `actiontrail`, or empty when the version is unknown.
    pub service: &'a str,
    pub action: &'a str,
    pub access_key_id: &'a str,
    /// The authenticated user; `None` when authentication failed.
    pub user: Option<&'a str>,
    pub source_ip: &'a str,
    pub user_agent: &'a str,
    /// Already redacted (`sesame_api::actions::audit_parameters`).
    pub parameters: Map<String, Value>,
    pub resource: Option<String>,
    /// `(code, message)` of a failed request.
    pub error: Option<(&'a str, String)>,
}

/// An event as stored and as LookupEvents returns it (ActionTrail's field names).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    acs_region: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<&'a str>,
    event_id: &'a str,
    event_name: &'a str,
    #[serde(serialize_with = "as_text")]
    event_source: EventSource<'a>,
    #[serde(serialize_with = "as_text")]
    event_time: sesame_api::Timestamp,
    event_type: &'static str,
    event_version: &'static str,
    request_id: &'a str,
    request_parameters: &'a Map<String, Value>,
    resource_name: &'a str,
    result: &'static str,
    service_name: &'a str,
    source_ip_address: &'a str,
    user_agent: &'a str,
    user_identity: EventIdentity<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventIdentity<'a> {
    access_key_id: &'a str,
    account_id: &'a str,
    principal_id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    user_name: &'a str,
}

/// `{service}.{region}.sesame`, written where it is serialised.
struct EventSource<'a>(&'a str, &'a str);

impl std::fmt::Display for EventSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.sesame", self.0, self.1)
    }
}

/// Serialises a field as its text, written straight into the event (no string in between).
fn as_text<S: serde::Serializer>(v: &impl std::fmt::Display, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(v)
}

pub struct AuditTrail {
    deps: Deps,
    chain: Arc<Chain>,
    journal: Arc<Journal>,
}

impl AuditTrail {
    /// Loads (or makes, sealed by the root key) the chain's MAC key, copies into the trail what
    /// the journal holds beyond it (events of requests answered before a crash), and starts the
    /// writer.
    pub async fn start(deps: Deps) -> Result<AuditTrail> {
        let context = b"sesame/audit-mac-key";
        let material = match deps.store.meta_get(META_KEY).await? {
            Some(hex) => {
                let sealed = sesame_crypto::unhex(&hex).ok_or_else(|| Error::internal("the audit key is not hex"))?;
                deps.root.unwrap_key(context, &sealed).map_err(Error::internal)?
            }
            None => {
                let k = KeyMaterial::generate().map_err(Error::internal)?;
                let sealed = deps.root.wrap(context, k.expose_secret()).map_err(Error::internal)?;
                deps.store.meta_set(META_KEY, &sesame_crypto::hex(&sealed)).await?;
                k
            }
        };
        let chain = Arc::new(Chain { key: MacKey::new(&material) });
        let journal_key = MacKey::new(&material);
        let path = deps.store.audit_journal_path();
        let mark = deps.store.audit_journal_mark().await?;
        let (missing, epoch) = journal::recover(path.as_deref(), &journal_key, mark.as_deref())
            .map_err(|e| Error::internal(format!("the audit journal could not be read: {e}")))?;
        if !missing.is_empty() {
            tracing::info!(events = missing.len(), "copying the audit journal's events into the trail");
        }
        deps.store.append_audit(missing.into(), chain.clone(), Some(journal::mark(epoch, 0, 0))).await?;
        let (journal, from_journal) = Journal::create(path.as_deref(), deps.limits.audit_journal_bytes, journal_key, epoch)
            .map_err(|e| Error::internal(format!("the audit journal could not be made: {e}")))?;
        let journal = Arc::new(journal);
        tokio::spawn(writer(deps.clone(), chain.clone(), journal.clone(), from_journal));
        Ok(AuditTrail { deps, chain, journal })
    }

    /// Records one request: its event is in the journal when this returns.
    pub async fn record(&self, facts: RequestFacts<'_>) -> Result<()> {
        let record = self.event(facts);
        self.journal.write(record).await.map_err(|e| {
            tracing::error!(error = %e, "an audit event could not be written; its request fails");
            Error::AuditUnavailable(e.to_string())
        })
    }

    /// Waits until the trail holds every event recorded before the call.
    pub async fn flush(&self) -> Result<()> {
        match self.journal.caught_up(CATCH_UP).await {
            true => Ok(()),
            false => {
                Err(Error::AuditUnavailable(format!("the audit trail has not taken the journal's events for {} s", CATCH_UP.as_secs())))
            }
        }
    }

    fn event(&self, f: RequestFacts<'_>) -> AuditRecord {
        let realm = &self.deps.realm;
        let (kind, principal) = match f.user {
            Some(crate::identity::ADMIN_USER) => ("root-account", realm.account_id.as_str()),
            Some(u) => ("ram-user", u),
            None => ("unknown", ""),
        };
        let event_id = sesame_crypto::random::uuid().unwrap_or_default();
        let result = if f.error.is_some() { "Failure" } else { "Success" };
        let resource = f.resource.unwrap_or_default();
        // Serialised straight from borrowed fields: building a `Value` tree first cost a tenth of
        // a GetSecretValue's time. Fields in alphabetical order, as earlier events have them.
        let event = Event {
            acs_region: &realm.region,
            error_code: f.error.as_ref().map(|(code, _)| *code),
            error_message: f.error.as_ref().map(|(_, message)| message.as_str()),
            event_id: &event_id,
            event_name: f.action,
            event_source: EventSource(f.service, &realm.region),
            event_time: sesame_api::Timestamp(f.time),
            event_type: "ApiCall",
            event_version: "1",
            request_id: f.request_id,
            request_parameters: &f.parameters,
            resource_name: &resource,
            result,
            service_name: sesame_api::actions::service_name(f.service),
            source_ip_address: f.source_ip,
            user_agent: f.user_agent,
            user_identity: EventIdentity {
                access_key_id: f.access_key_id,
                account_id: &realm.account_id,
                principal_id: principal,
                kind,
                user_name: f.user.unwrap_or_default(),
            },
        };
        // An event is 600-700 bytes: written into room for it rather than regrown from empty (and
        // under the 1,024 bytes past which glibc stops serving from its per-thread cache).
        let mut buf = Vec::with_capacity(1000);
        let event = serde_json::to_writer(&mut buf, &event).ok().and_then(|()| String::from_utf8(buf).ok()).unwrap_or_default();
        AuditRecord {
            time: f.time,
            user: f.user.unwrap_or_default().to_string(),
            event_name: f.action.to_string(),
            resource,
            result: result.into(),
            access_key: f.access_key_id.to_string(),
            event,
        }
    }

    /// Events matching a lookup, newest first, and the token of the next page.
    pub async fn lookup(&self, q: &EventQuery) -> Result<(Vec<Value>, Option<String>)> {
        self.flush().await?;
        let rows = self.deps.store.lookup_audit(q).await?;
        let next = (rows.len() as i64 == q.max_results).then(|| rows.last().map(|(seq, _)| seq.to_string())).flatten();
        let events = rows.into_iter().map(|(_, e)| serde_json::from_str(&e).unwrap_or(Value::Null)).collect();
        Ok((events, next))
    }

    /// Walks the whole chain and the head.
    pub async fn verify(&self) -> Result<VerifyEventsResponse> {
        self.flush().await?;
        let mut problems = Vec::new();
        let (mut expected, mut prev, mut count) = (1_i64, Vec::new(), 0_i64);
        loop {
            let page = self.deps.store.audit_events(expected - 1, VERIFY_PAGE).await?;
            if page.is_empty() {
                break;
            }
            for ev in page {
                count += 1;
                if ev.seq != expected {
                    problems.push(AuditProblem {
                        position: expected,
                        problem: format!("events {expected} to {} are missing (deleted)", ev.seq - 1),
                    });
                } else if self.chain.link(&prev, ev.seq, &ev.record) != ev.mac {
                    problems.push(AuditProblem {
                        position: ev.seq,
                        problem: "the event does not match its chain link: it was changed, inserted or moved".into(),
                    });
                }
                prev = ev.mac;
                expected = ev.seq + 1;
            }
        }
        let last = expected - 1;
        match self.deps.store.audit_head().await? {
            None if last > 0 => problems.push(AuditProblem { position: last, problem: "the trail's sealed head is missing".into() }),
            None => {}
            Some(head) => match parse_head(&head) {
                Some((seq, mac, seal)) if self.chain.key.verify(&[b"head", &seq.to_be_bytes(), &mac], &seal) => {
                    if seq > last {
                        problems.push(AuditProblem {
                            position: last + 1,
                            problem: format!("the trail was cut: it ends at {last} but {seq} events were recorded"),
                        });
                    } else if seq < last {
                        problems
                            .push(AuditProblem { position: seq + 1, problem: format!("events after {seq} were added outside the server") });
                    } else if mac != prev {
                        problems.push(AuditProblem { position: last, problem: "the last event is not the one recorded".into() });
                    }
                }
                _ => problems.push(AuditProblem { position: last, problem: "the trail's sealed head was altered".into() }),
            },
        }
        Ok(VerifyEventsResponse { valid: problems.is_empty(), event_count: count, problems })
    }
}

/// Copies the journal's events into the trail, in its order. A failed append is retried (the
/// events stay in the journal meanwhile, and requests go on until it is full).
async fn writer(deps: Deps, chain: Arc<Chain>, journal: Arc<Journal>, mut from_journal: mpsc::UnboundedReceiver<Journaled>) {
    while let Some(first) = from_journal.recv().await {
        tokio::time::sleep(BATCH_WINDOW).await;
        let (mut seq, mut end) = (first.seq, first.end);
        let mut records = vec![first.record];
        while records.len() < MAX_BATCH {
            match from_journal.try_recv() {
                Ok(j) => {
                    (seq, end) = (j.seq, j.end);
                    records.push(j.record);
                }
                Err(_) => break,
            }
        }
        let records: Arc<[AuditRecord]> = records.into();
        let mut pause = RETRY_FIRST;
        while let Err(e) = deps.store.append_audit(records.clone(), chain.clone(), Some(journal.mark(seq, end))).await {
            tracing::error!(error = %e, events = records.len(), "audit events could not be copied from the journal into the trail; retrying");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(RETRY_MAX);
        }
        journal.drained(seq, end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_writes_its_source_time_and_identity_as_actiontrail_names_them() {
        let parameters = Map::from_iter([("SecretName".to_string(), Value::from("db/app"))]);
        let event = Event {
            acs_region: "local",
            error_code: None,
            error_message: None,
            event_id: "e-1",
            event_name: "GetSecretValue",
            event_source: EventSource("kms", "local"),
            event_time: sesame_api::Timestamp(1_795_942_800),
            event_type: "ApiCall",
            event_version: "1",
            request_id: "r-1",
            request_parameters: &parameters,
            resource_name: "acs:kms:local:1:secret/db/app",
            result: "Success",
            service_name: "Kms",
            source_ip_address: "127.0.0.1",
            user_agent: "test",
            user_identity: EventIdentity {
                access_key_id: "LTAIkey",
                account_id: "1",
                principal_id: "1",
                kind: "root-account",
                user_name: "admin",
            },
        };
        let v: Value = serde_json::from_slice(&serde_json::to_vec(&event).unwrap()).unwrap();
        assert_eq!(v["eventSource"], "kms.local.sesame");
        assert_eq!(v["eventTime"], "2026-11-29T09:00:00Z");
        assert_eq!(v["userIdentity"]["principalId"], "1");
        assert_eq!(v["requestParameters"]["SecretName"], "db/app");
        assert!(v.get("errorCode").is_none());
    }
}
