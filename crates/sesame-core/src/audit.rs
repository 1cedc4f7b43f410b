//! The audit trail: one ActionTrail-shaped event per request, allowed, denied or failing
//! authentication, appended to a hash chain keyed by a MAC key that the root key seals.
//!
//! A request writes its event to the trail's segment files ([`log`]) before it is answered; if
//! it cannot, the request fails: nothing is answered unrecorded. An indexer task records the
//! files' blocks in the store with the sealed head, and lookups and `verify` first wait for the
//! index to hold every event written before them. Stores made before the segment files keep
//! their older events as rows (the trail's first format): they are the trail's beginning, read
//! and verified with the rest.
//!
//! `verify` walks the chain: each event's MAC covers the previous MAC, its position and all its
//! fields, and a sealed head names the last position, so an edited, inserted, deleted or
//! reordered event, or a cut tail, is found with its position. (Replacing the whole store with an
//! older copy of itself is not detectable from inside it; export the trail to keep it elsewhere.)

pub mod journal;
pub mod log;

use crate::Deps;
use crate::model::{AuditBlock, AuditChain, AuditRecord};
use log::{Log, Resume};
use serde_json::{Map, Value};
use sesame_api::Error;
use sesame_api::error::Result;
use sesame_api::ram::{AuditProblem, EventQuery, LookupAttribute, VerifyEventsResponse};
use sesame_crypto::KeyMaterial;
use sesame_crypto::mac::MacKey;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// How often the indexer records the blocks written since its last turn (sooner when a lookup
/// waits for it).
const INDEX_EVERY: Duration = Duration::from_millis(200);
const META_KEY: &str = "audit_mac_key";
/// How long a lookup (or a shutdown) waits for the index to take the events written before it.
const CATCH_UP: Duration = Duration::from_secs(10);
/// The indexer's pause after a failed write, doubled per failure up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);
const VERIFY_PAGE: i64 = 1_000;
/// Index rows read at a time by a lookup and by `verify`.
const BLOCK_PAGE: i64 = 64;

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
struct Event<'a> {
    acs_region: &'a str,
    error_code: Option<&'a str>,
    error_message: Option<&'a str>,
    event_id: &'a str,
    event_name: &'a str,
    /// `(service, region)`, written `{service}.{region}.sesame`.
    event_source: (&'a str, &'a str),
    event_time: sesame_api::Timestamp,
    request_id: &'a str,
    request_parameters: &'a Map<String, Value>,
    resource_name: &'a str,
    result: &'static str,
    service_name: &'a str,
    source_ip_address: &'a str,
    user_agent: &'a str,
    user_identity: EventIdentity<'a>,
}

struct EventIdentity<'a> {
    access_key_id: &'a str,
    account_id: &'a str,
    principal_id: &'a str,
    kind: &'static str,
    user_name: &'a str,
}

impl Event<'_> {
    /// Appends the event as JSON, its fields in alphabetical order as earlier events have them
    /// (the form `serde_json` gives the same object).
    ///
    /// Written by hand: `serde_json` escapes every string byte by byte, the field names too, which
    /// was a tenth of a GetSecretValue's instructions outside SHA-256.
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"acsRegion\":");
        json_str(out, self.acs_region);
        if let Some(code) = self.error_code {
            field(out, "errorCode", code);
        }
        if let Some(message) = self.error_message {
            field(out, "errorMessage", message);
        }
        field(out, "eventId", self.event_id);
        field(out, "eventName", self.event_name);
        out.extend_from_slice(b",\"eventSource\":");
        json_str_of(out, &[self.event_source.0, ".", self.event_source.1, ".sesame"]);
        // ISO 8601 digits and separators: nothing to escape.
        drop(write!(out, ",\"eventTime\":\"{}\"", self.event_time));
        // Every event is an API call, of the one event version there is.
        out.extend_from_slice(b",\"eventType\":\"ApiCall\",\"eventVersion\":\"1\"");
        field(out, "requestId", self.request_id);
        out.extend_from_slice(b",\"requestParameters\":{");
        for (i, (name, value)) in self.request_parameters.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json_str(out, name);
            out.push(b':');
            match value {
                Value::String(text) => json_str(out, text),
                // Writing into a `Vec` cannot fail.
                other => drop(serde_json::to_writer(&mut *out, other)),
            }
        }
        out.push(b'}');
        field(out, "resourceName", self.resource_name);
        field(out, "result", self.result);
        field(out, "serviceName", self.service_name);
        field(out, "sourceIpAddress", self.source_ip_address);
        field(out, "userAgent", self.user_agent);
        let who = &self.user_identity;
        out.extend_from_slice(b",\"userIdentity\":{\"accessKeyId\":");
        json_str(out, who.access_key_id);
        field(out, "accountId", who.account_id);
        field(out, "principalId", who.principal_id);
        field(out, "type", who.kind);
        field(out, "userName", who.user_name);
        out.extend_from_slice(b"}}");
    }
}

/// Appends `,"name":` and the value as a JSON string; `name` needs no escaping.
fn field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
    json_str(out, value);
}

/// Appends `s` as a JSON string. Text with no quote, backslash or control character (nearly all)
/// is copied as it is; the rest is escaped by `serde_json`.
fn json_str(out: &mut Vec<u8>, s: &str) {
    json_str_of(out, &[s]);
}

/// Appends the pieces, joined, as one JSON string.
fn json_str_of(out: &mut Vec<u8>, pieces: &[&str]) {
    // Every byte is looked at (no early exit), which lets the compiler check 32 at a time: an
    // event's text is short and nearly always plain, and `all` spent 3,900 instructions a request.
    let plain = |s: &&str| s.bytes().fold(true, |ok, b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'));
    if pieces.iter().all(plain) {
        out.push(b'"');
        for piece in pieces {
            out.extend_from_slice(piece.as_bytes());
        }
        out.push(b'"');
    } else {
        // Writing into a `Vec` cannot fail.
        drop(serde_json::to_writer(&mut *out, &pieces.concat()));
    }
}

pub struct AuditTrail {
    deps: Deps,
    chain: Arc<Chain>,
    log: Arc<Log>,
    /// The first position in the segment files; the trail's first format holds those before.
    log_from: i64,
}

impl AuditTrail {
    /// Loads (or makes, sealed by the root key) the chain's MAC key, opens the segment files
    /// where the index ends (reading back what was written after it), adds the events an earlier
    /// version's journal held, indexes it all, and starts the indexer.
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
        let store = &deps.store;
        let first_block = store.audit_blocks(0, 1).await?.into_iter().next();
        let resume = match store.audit_blocks_before(i64::MAX, None, None, 1).await?.first() {
            Some(last) => Resume::after(last),
            None => {
                // After the first format's last event, or after its sealed head when events were
                // cut from its end (so that verification finds the gap).
                let (seq, prev) = chain.resume(store.audit_head().await?.as_deref(), store.last_audit_event().await?);
                Resume { seq, prev, segment: 1, offset: 0 }
            }
        };
        let log_from = first_block.map_or(resume.seq + 1, |b| b.first_seq);
        let dir = store.audit_trail_dir();
        let log = Log::open(dir.as_deref(), MacKey::new(&material), resume)
            .map_err(|e| Error::internal(format!("the audit trail could not be opened: {e}")))?;
        if let Some(path) = store.audit_journal_path().filter(|p| p.exists()) {
            let mark = store.audit_journal_mark().await?;
            let missing = journal::recover(&path, &MacKey::new(&material), mark.as_deref())
                .map_err(|e| Error::internal(format!("the audit journal of an earlier version could not be read: {e}")))?;
            if !missing.is_empty() {
                tracing::info!(events = missing.len(), "adding the events of an earlier version's audit journal to the trail");
            }
            for r in &missing {
                log.append(log::encode(r)).map_err(|e| Error::internal(e.to_string()))?;
            }
            // The events are in the segment files now (and read back from there after a crash).
            std::fs::remove_file(&path).map_err(|e| Error::internal(format!("the old audit journal could not be removed: {e}")))?;
        }
        let log = Arc::new(log);
        index(&deps, &chain, &log, &mut Vec::new()).await?;
        tokio::spawn(indexer(deps.clone(), chain.clone(), log.clone()));
        Ok(AuditTrail { deps, chain, log, log_from })
    }

    /// The chain of the trail's first format (one row an event), with which a test writes a
    /// trail as a store made before the segment files holds it.
    #[doc(hidden)]
    pub fn first_format_chain(&self) -> Arc<dyn AuditChain> {
        self.chain.clone()
    }

    /// Records one request: its event is in the trail when this returns.
    pub async fn record(&self, facts: RequestFacts<'_>) -> Result<()> {
        let entry = self.event(facts);
        self.log.append(entry).map_err(|e| {
            tracing::error!(error = %e, "an audit event could not be written; its request fails");
            Error::AuditUnavailable(e.to_string())
        })
    }

    /// Waits until the index holds every event recorded before the call.
    pub async fn flush(&self) -> Result<()> {
        match self.log.caught_up(CATCH_UP).await {
            true => Ok(()),
            false => Err(Error::AuditUnavailable(format!("the audit trail's index has not taken new events for {} s", CATCH_UP.as_secs()))),
        }
    }

    fn event(&self, f: RequestFacts<'_>) -> log::Unwritten {
        let realm = &self.deps.realm;
        let (kind, principal) = match f.user {
            Some(crate::identity::ADMIN_USER) => ("root-account", realm.account_id.as_str()),
            Some(u) => ("ram-user", u),
            None => ("unknown", ""),
        };
        let event_id = sesame_crypto::random::uuid().unwrap_or_default();
        let result = if f.error.is_some() { "Failure" } else { "Success" };
        let resource = f.resource.unwrap_or_default();
        // Written straight from borrowed fields: building a `Value` tree first cost a tenth of a
        // GetSecretValue's time.
        let event = Event {
            acs_region: &realm.region,
            error_code: f.error.as_ref().map(|(code, _)| *code),
            error_message: f.error.as_ref().map(|(_, message)| message.as_str()),
            event_id: &event_id,
            event_name: f.action,
            event_source: (f.service, &realm.region),
            event_time: sesame_api::Timestamp(f.time),
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
        // Written straight into the entry, after the fields lookups filter on.
        let fields = [f.user.unwrap_or_default(), f.action, &resource, result, f.access_key_id];
        log::encode_with(f.time, fields, |out| event.write_json(out))
    }

    /// Events matching a lookup, newest first, and the token of the next page: the segment
    /// files' blocks newest first, then the trail's first format.
    pub async fn lookup(&self, q: &EventQuery) -> Result<(Vec<Value>, Option<String>)> {
        self.flush().await?;
        let want = usize::try_from(q.max_results).unwrap_or(0);
        let before = q.before.unwrap_or(i64::MAX);
        let mut found: Vec<(i64, String)> = Vec::new();
        let mut cursor = before;
        'blocks: while found.len() < want {
            let blocks = self.deps.store.audit_blocks_before(cursor, q.from, q.to, BLOCK_PAGE).await?;
            let Some(oldest) = blocks.last() else { break };
            cursor = oldest.first_seq;
            for b in &blocks {
                let bytes = self.read(b)?;
                let entries: Vec<log::Entry<'_>> = log::entries(&bytes).collect();
                for e in entries.iter().rev().filter(|e| e.seq < before) {
                    if let Some(r) = log::decode(e.payload).filter(|r| matches(q, r)) {
                        found.push((e.seq, r.event));
                        if found.len() == want {
                            break 'blocks;
                        }
                    }
                }
            }
        }
        if found.len() < want && self.log_from > 1 {
            let first_format =
                EventQuery { before: Some(before.min(self.log_from)), max_results: (want - found.len()) as i64, ..q.clone() };
            found.extend(self.deps.store.lookup_audit(&first_format).await?);
        }
        let next = (want > 0 && found.len() == want).then(|| found.last().map(|(seq, _)| seq.to_string())).flatten();
        let events = found.into_iter().map(|(_, e)| serde_json::from_str(&e).unwrap_or(Value::Null)).collect();
        Ok((events, next))
    }

    fn read(&self, block: &AuditBlock) -> Result<Vec<u8>> {
        self.log.read(block).map_err(|e| Error::internal(format!("the audit trail's segment {} could not be read: {e}", block.segment)))
    }

    /// Walks the whole chain, the trail's first format and then the segment files, and the head.
    pub async fn verify(&self) -> Result<VerifyEventsResponse> {
        self.flush().await?;
        let mut walk = Walk { problems: Vec::new(), expected: 1, prev: Vec::new(), count: 0 };
        loop {
            let page = self.deps.store.audit_events(walk.expected - 1, VERIFY_PAGE).await?;
            if page.is_empty() {
                break;
            }
            for ev in page {
                let link = (ev.seq == walk.expected).then(|| self.chain.link(&walk.prev, ev.seq, &ev.record));
                walk.event(ev.seq, &ev.mac, link);
            }
        }
        let mut after = 0;
        loop {
            let blocks = self.deps.store.audit_blocks(after, BLOCK_PAGE).await?;
            let Some(newest) = blocks.last() else { break };
            after = newest.first_seq;
            for b in &blocks {
                match self.log.read(b) {
                    Ok(bytes) => {
                        for e in log::entries(&bytes) {
                            let link = (e.seq == walk.expected).then(|| self.log.link(&walk.prev, e.seq, e.payload));
                            walk.event(e.seq, e.mac, link);
                        }
                        if walk.expected <= b.last_seq {
                            walk.problems.push(AuditProblem {
                                position: walk.expected,
                                problem: format!("events {} to {} are missing: cut from the trail's file", walk.expected, b.last_seq),
                            });
                        }
                    }
                    Err(e) => walk.problems.push(AuditProblem {
                        position: b.first_seq,
                        problem: format!("events {} to {} cannot be read: {e}", b.first_seq, b.last_seq),
                    }),
                }
                // The next block chains to this one's last link as the index keeps it.
                if walk.expected <= b.last_seq {
                    (walk.expected, walk.prev) = (b.last_seq + 1, b.last_mac.clone());
                }
            }
        }
        let Walk { mut problems, expected, prev, count } = walk;
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

/// Where `verify` is in the chain.
struct Walk {
    problems: Vec<AuditProblem>,
    expected: i64,
    prev: Vec<u8>,
    count: i64,
}

impl Walk {
    /// The event at `seq` with its stored MAC, and the link it should have when it is the one
    /// expected next.
    fn event(&mut self, seq: i64, mac: &[u8], link: Option<Vec<u8>>) {
        self.count += 1;
        if seq < self.expected {
            self.problems.push(AuditProblem { position: seq, problem: format!("event {seq} appears again after {}", self.expected - 1) });
            return;
        }
        if seq > self.expected {
            self.problems.push(AuditProblem {
                position: self.expected,
                problem: format!("events {} to {} are missing (deleted)", self.expected, seq - 1),
            });
        } else if link.as_deref() != Some(mac) {
            self.problems.push(AuditProblem {
                position: seq,
                problem: "the event does not match its chain link: it was changed, inserted or moved".into(),
            });
        }
        self.prev = mac.to_vec();
        self.expected = seq + 1;
    }
}

/// Whether a record meets a lookup's times and attributes.
fn matches(q: &EventQuery, r: &AuditRecord) -> bool {
    q.from.is_none_or(|t| r.time >= t)
        && q.to.is_none_or(|t| r.time <= t)
        && q.attributes.iter().all(|a| match a {
            LookupAttribute::EventName(v) => &r.event_name == v,
            LookupAttribute::UserName(v) => &r.user == v,
            LookupAttribute::ResourceName(v) => &r.resource == v,
            LookupAttribute::AccessKeyId(v) => &r.access_key == v,
            LookupAttribute::Result(v) => &r.result == v,
        })
}

/// Indexes the blocks written since the last call (and any `pending` from a failed one) with
/// the sealed head.
async fn index(deps: &Deps, chain: &Chain, log: &Log, pending: &mut Vec<AuditBlock>) -> Result<()> {
    pending.extend(log.take_blocks());
    let Some(last) = pending.last() else { return Ok(()) };
    let (seq, head) = (last.last_seq, chain.head(last.last_seq, &last.last_mac));
    deps.store.append_audit_blocks(pending.clone(), head).await?;
    pending.clear();
    log.indexed(seq);
    Ok(())
}

/// Indexes the segment files' new blocks every [`INDEX_EVERY`], or when a lookup waits. A failed
/// write is retried (requests go on meanwhile: their events are in the files).
async fn indexer(deps: Deps, chain: Arc<Chain>, log: Arc<Log>) {
    let mut pending = Vec::new();
    let mut pause = RETRY_FIRST;
    loop {
        log.wait_for_work(INDEX_EVERY).await;
        match index(&deps, &chain, &log, &mut pending).await {
            Ok(()) => pause = RETRY_FIRST,
            Err(e) => {
                tracing::error!(error = %e, blocks = pending.len(), "the audit trail's blocks could not be indexed; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(RETRY_MAX);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(texts: [&'a str; 12], error: Option<(&'a str, &'a str)>, parameters: &'a Map<String, Value>) -> Event<'a> {
        let [region, event_id, action, service, request_id, resource, ip, agent, key, account, principal, user] = texts;
        Event {
            acs_region: region,
            error_code: error.map(|(code, _)| code),
            error_message: error.map(|(_, message)| message),
            event_id,
            event_name: action,
            event_source: (service, region),
            event_time: sesame_api::Timestamp(1_795_942_800),
            request_id,
            request_parameters: parameters,
            resource_name: resource,
            result: if error.is_some() { "Failure" } else { "Success" },
            service_name: "Kms",
            source_ip_address: ip,
            user_agent: agent,
            user_identity: EventIdentity {
                access_key_id: key,
                account_id: account,
                principal_id: principal,
                kind: "ram-user",
                user_name: user,
            },
        }
    }

    /// The event as `serde_json` writes the same object (its maps sort their keys).
    fn as_value(e: &Event<'_>) -> Value {
        let mut v = serde_json::json!({
            "acsRegion": e.acs_region,
            "eventId": e.event_id,
            "eventName": e.event_name,
            "eventSource": format!("{}.{}.sesame", e.event_source.0, e.event_source.1),
            "eventTime": e.event_time.to_string(),
            "eventType": "ApiCall",
            "eventVersion": "1",
            "requestId": e.request_id,
            "requestParameters": e.request_parameters,
            "resourceName": e.resource_name,
            "result": e.result,
            "serviceName": e.service_name,
            "sourceIpAddress": e.source_ip_address,
            "userAgent": e.user_agent,
            "userIdentity": {
                "accessKeyId": e.user_identity.access_key_id,
                "accountId": e.user_identity.account_id,
                "principalId": e.user_identity.principal_id,
                "type": e.user_identity.kind,
                "userName": e.user_identity.user_name,
            },
        });
        if let (Some(code), Some(message)) = (e.error_code, e.error_message) {
            v["errorCode"] = code.into();
            v["errorMessage"] = message.into();
        }
        v
    }

    #[test]
    fn an_event_writes_its_source_time_and_identity_as_actiontrail_names_them() {
        let parameters = Map::from_iter([("SecretName".to_string(), Value::from("db/app"))]);
        let texts = [
            "local",
            "e-1",
            "GetSecretValue",
            "kms",
            "r-1",
            "acs:kms:local:1:secret/db/app",
            "127.0.0.1",
            "test",
            "LTAIkey",
            "1",
            "1",
            "admin",
        ];
        let mut out = Vec::new();
        sample(texts, None, &parameters).write_json(&mut out);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["eventSource"], "kms.local.sesame");
        assert_eq!(v["eventTime"], "2026-11-29T09:00:00Z");
        assert_eq!(v["userIdentity"]["principalId"], "1");
        assert_eq!(v["userIdentity"]["type"], "ram-user");
        assert_eq!(v["requestParameters"]["SecretName"], "db/app");
        assert!(v.get("errorCode").is_none());
    }

    proptest::proptest! {
        /// The hand-written event is, byte for byte, what `serde_json` writes for the same object,
        /// whatever its text holds (quotes, backslashes, control characters, any script).
        #[test]
        fn an_event_is_written_as_serde_json_writes_it(
            texts in proptest::array::uniform12("\\PC{0,6}|[\"\\\\\u{0}-\u{1f}\u{7f}a/é]{0,4}"),
            error in proptest::option::of(("[A-Za-z.]{1,12}", "\\PC{0,12}|[\"\\\\\n]{1,3}")),
            parameters in proptest::collection::btree_map("\\PC{0,6}|[\"\\\\\t]{1,2}", "\\PC{0,8}|[\"\\\\\u{1}]{1,2}", 0..4),
        ) {
            let parameters: Map<String, Value> = parameters.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            let event = sample(texts.each_ref().map(String::as_str), error.as_ref().map(|(c, m)| (c.as_str(), m.as_str())), &parameters);
            let mut out = Vec::new();
            event.write_json(&mut out);
            proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&as_value(&event)).unwrap());
        }
    }
}
