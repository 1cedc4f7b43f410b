//! The audit journal: the file a request's event is written to before the request is answered.
//!
//! Committing each event to the trail's SQLite file before answering made every request wait for
//! a hand-off to the audit thread, its turn, a commit and the way back, and that wait, not the
//! work, kept the machine idle (docs/benchmarks-log.md, finding 18). Now the request itself appends
//! its event to this file with one positioned write, under a lock that keeps the entries in
//! order, and a background task copies them into the trail in batches. A write that returns has
//! put the event in the operating system's page cache, which is what a commit of the trail (in
//! WAL mode with `synchronous=NORMAL`) guaranteed too: it survives the process, not a power cut.
//!
//! The file is a ring: a header, then entries one after another, each `len | epoch | seq | MAC |
//! payload`, MACed with a key the root key seals. Each append of the trail stores the journal's
//! `epoch:seq:end` mark in the same transaction, so at start-up the entries after the mark are the
//! ones the trail is missing: they are copied before the server serves anything, and the journal
//! starts a new epoch (entries of an older epoch are never read again). An entry that does not
//! fit before the end of the ring leaves a wrap marker and goes to the start. The ring never
//! overwrites an entry that is not in the trail yet: when it is full, requests wait for room and
//! fail if none comes, so a request is never answered without its event.

use crate::model::AuditRecord;
use sesame_crypto::mac::MacKey;
use std::fs::File;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, watch};

const MAGIC: &[u8; 8] = b"SESAMEAJ";
const VERSION: u32 = 1;
/// The header's room; entries start after it.
const DATA: u64 = 4096;
/// `len` (u32), epoch (u64), seq (u64), MAC (32 bytes).
const ENTRY_HEADER: u64 = 4 + 8 + 8 + 32;
/// The `len` of a wrap marker: the next entry is at the start of the ring.
const WRAP: u32 = u32::MAX;
/// How long a request waits for room in a full journal before it fails.
pub const FULL_WAIT: Duration = Duration::from_secs(5);
/// The smallest ring the journal accepts.
pub const MIN_CAPACITY: u64 = 64 * 1024;

/// An event written to the journal, on its way to the trail.
pub struct Journaled {
    pub record: AuditRecord,
    pub seq: u64,
    /// Where the next entry starts (the mark's `end`).
    pub end: u64,
}

#[derive(Debug)]
pub enum JournalError {
    /// No room: the trail has not taken the events before it for [`FULL_WAIT`].
    Full,
    /// The event alone is larger than the ring.
    TooLarge(usize),
    Io(std::io::Error),
    /// The task that copies the journal into the trail has stopped.
    Stopped,
}

impl std::fmt::Display for JournalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JournalError::Full => write!(f, "the audit journal is full: the trail has not taken events for {} s", FULL_WAIT.as_secs()),
            JournalError::TooLarge(n) => write!(f, "the audit event ({n} bytes) is larger than the audit journal"),
            JournalError::Io(e) => write!(f, "the audit journal could not be written: {e}"),
            JournalError::Stopped => f.write_str("the audit writer stopped"),
        }
    }
}

/// The ring's positions, in bytes since the epoch began (the file offset is `DATA + pos % ring`).
struct Ring {
    seq: u64,
    pos: u64,
    /// Everything before it is in the trail.
    drained: u64,
    to_trail: mpsc::UnboundedSender<Journaled>,
}

pub struct Journal {
    /// `None` for a store without a directory (in memory): the ring is kept, nothing is written.
    file: Option<File>,
    key: MacKey,
    epoch: u64,
    ring_len: u64,
    ring: Mutex<Ring>,
    /// Woken when the trail has taken events, for requests waiting for room.
    room: Notify,
    /// The last seq the trail has taken.
    drained_seq: watch::Sender<u64>,
}

impl Journal {
    /// Starts a fresh epoch in the file at `path` (made or resized to `capacity` bytes of ring).
    /// Call it once the trail holds what [`recover`] found: the old entries are gone after it.
    pub fn create(
        path: Option<&Path>,
        capacity: u64,
        key: MacKey,
        epoch: u64,
    ) -> std::io::Result<(Journal, mpsc::UnboundedReceiver<Journaled>)> {
        let ring_len = capacity.max(MIN_CAPACITY);
        let file = match path {
            None => None,
            Some(path) => {
                let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path)?;
                // Sparse: the disk holds what has been written. (Zeros written out ahead, in one
                // large write, cost each request's write twice as much: the page cache then
                // keeps the file in large folios, and ext4 walks every block of the folio. A
                // full disk shows as a request that fails, with the reason in the log.)
                if file.metadata()?.len() != DATA + ring_len {
                    file.set_len(DATA + ring_len)?;
                }
                file.write_all_at(&header(epoch), 0)?;
                file.sync_all()?;
                Some(file)
            }
        };
        let (to_trail, from_journal) = mpsc::unbounded_channel();
        let journal = Journal {
            file,
            key,
            epoch,
            ring_len,
            ring: Mutex::new(Ring { seq: 0, pos: 0, drained: 0, to_trail }),
            room: Notify::new(),
            drained_seq: watch::Sender::new(0),
        };
        Ok((journal, from_journal))
    }

    /// Writes one event and hands it on to the trail; waits for room while the ring is full.
    pub async fn write(&self, record: AuditRecord) -> Result<(), JournalError> {
        let mut entry = entry(&record);
        let mut record = Some(record);
        let deadline = tokio::time::Instant::now() + FULL_WAIT;
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.append(&mut record, &mut entry) {
                Err(JournalError::Full) => {
                    if tokio::time::timeout_at(deadline, room).await.is_err() {
                        return Err(JournalError::Full);
                    }
                }
                done => return done,
            }
        }
    }

    /// Writes `entry` (as [`entry`] made it, its header filled in here) and hands `record` on
    /// (taking it), or leaves the journal and `record` as they were.
    fn append(&self, record: &mut Option<AuditRecord>, entry: &mut [u8]) -> Result<(), JournalError> {
        let need = entry.len() as u64;
        let payload = entry.len() - ENTRY_HEADER as usize;
        if need > self.ring_len || payload >= WRAP as usize {
            return Err(JournalError::TooLarge(payload));
        }
        let mut ring = self.lock();
        let seq = ring.seq + 1;
        let off = ring.pos % self.ring_len;
        let gap = if self.ring_len - off < need { self.ring_len - off } else { 0 };
        if ring.pos + gap + need > ring.drained + self.ring_len {
            return Err(JournalError::Full);
        }
        if let Some(file) = &self.file {
            let written = (|| {
                if gap >= ENTRY_HEADER {
                    let mut marker = [0; ENTRY_HEADER as usize];
                    self.seal(&mut marker, WRAP, seq);
                    file.write_all_at(&marker, DATA + off)?;
                }
                self.seal(entry, payload as u32, seq);
                file.write_all_at(entry, DATA + (ring.pos + gap) % self.ring_len)
            })();
            written.map_err(JournalError::Io)?;
        }
        let end = ring.pos + gap + need;
        // Sent under the lock, so that the trail takes the events in the journal's order. (If
        // the copying task has stopped, the entry is written and the next start copies it.)
        let record = record.take().ok_or(JournalError::Stopped)?;
        ring.to_trail.send(Journaled { record, seq, end }).map_err(|_| JournalError::Stopped)?;
        ring.seq = seq;
        ring.pos = end;
        Ok(())
    }

    /// Fills in the header of `entry` (a header's room, then the payload): length, epoch, seq and
    /// the MAC over them and the payload.
    fn seal(&self, entry: &mut [u8], len: u32, seq: u64) {
        let (header, payload) = entry.split_at_mut(ENTRY_HEADER as usize);
        let mac = self.key.sign(&entry_mac_parts(len, &self.epoch.to_be_bytes(), &seq.to_be_bytes(), payload));
        header[..4].copy_from_slice(&len.to_be_bytes());
        header[4..12].copy_from_slice(&self.epoch.to_be_bytes());
        header[12..20].copy_from_slice(&seq.to_be_bytes());
        header[20..].copy_from_slice(&mac);
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The mark to store with the trail's append of the events up to `seq`, ending at `end`.
    pub fn mark(&self, seq: u64, end: u64) -> String {
        mark(self.epoch, seq, end)
    }

    /// The trail now holds everything up to `seq`: its room is free again.
    pub fn drained(&self, seq: u64, end: u64) {
        self.lock().drained = end;
        self.room.notify_waiters();
        self.drained_seq.send_replace(seq);
    }

    /// Waits until the trail holds every event written before this call.
    pub async fn caught_up(&self, within: Duration) -> bool {
        let target = self.lock().seq;
        let mut drained = self.drained_seq.subscribe();
        matches!(tokio::time::timeout(within, drained.wait_for(|&s| s >= target)).await, Ok(Ok(_)))
    }
}

pub fn mark(epoch: u64, seq: u64, end: u64) -> String {
    format!("{epoch}:{seq}:{end}")
}

fn parse_mark(mark: &str) -> Option<(u64, u64, u64)> {
    let mut parts = mark.split(':').map(|p| p.parse::<u64>().ok());
    let parsed = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(parsed)
}

fn header(epoch: u64) -> Vec<u8> {
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(&VERSION.to_be_bytes());
    h.extend_from_slice(&epoch.to_be_bytes());
    h
}

/// What an entry's MAC covers: all of its header and its payload.
fn entry_mac_parts<'a>(len: u32, epoch: &'a [u8; 8], seq: &'a [u8; 8], payload: &'a [u8]) -> [&'a [u8]; 5] {
    [b"journal", if len == WRAP { b"wrap" } else { b"event" }, epoch, seq, payload]
}

/// The events the journal at `path` holds after the trail's `mark`, in order, and the epoch to
/// start next. A journal of another epoch than the mark's holds nothing the trail lacks: either
/// the trail took it all and a crash came before the new epoch's header, or the file is not this
/// trail's (then it is reported and not read).
pub fn recover(path: Option<&Path>, key: &MacKey, mark: Option<&str>) -> std::io::Result<(Vec<AuditRecord>, u64)> {
    let mark = mark.and_then(parse_mark);
    let mark_epoch = mark.map_or(0, |(epoch, _, _)| epoch);
    let file = match path {
        Some(p) if p.exists() => File::open(p)?,
        _ => return Ok((Vec::new(), mark_epoch + 1)),
    };
    // Read where the entries are, not the whole ring: after a clean stop nothing follows the mark.
    let read = |at: u64, n: usize| {
        let mut buf = vec![0; n];
        file.read_exact_at(&mut buf, at).ok().map(|()| buf)
    };
    let ring_len = file.metadata()?.len().saturating_sub(DATA);
    let file_epoch = match read(0, 20) {
        Some(h) if h[..8] == MAGIC[..] && h[8..12] == VERSION.to_be_bytes() => u64::from_be_bytes(array(&h[12..20])),
        _ => {
            tracing::warn!("the audit journal has no valid header; starting a new one");
            return Ok((Vec::new(), mark_epoch + 1));
        }
    };
    let next_epoch = file_epoch.max(mark_epoch) + 1;
    match mark {
        Some((epoch, seq, end)) if epoch == file_epoch => Ok((read_after(&read, ring_len, key, epoch, seq, end), next_epoch)),
        Some((epoch, ..)) if epoch > file_epoch => Ok((Vec::new(), next_epoch)),
        _ => {
            tracing::warn!(journal_epoch = file_epoch, trail_epoch = mark_epoch, "the audit journal is not this trail's; it is not read");
            Ok((Vec::new(), next_epoch))
        }
    }
}

/// The entries of `epoch` from `end` on, while each is whole, MACed and next in sequence, from a
/// ring of `ring_len` bytes that `read(offset, length)` reads (`None` past the end).
fn read_after(
    read: &dyn Fn(u64, usize) -> Option<Vec<u8>>,
    ring_len: u64,
    key: &MacKey,
    epoch: u64,
    seq: u64,
    end: u64,
) -> Vec<AuditRecord> {
    let mut out = Vec::new();
    if ring_len == 0 {
        return out;
    }
    let (mut pos, mut seq) = (end, seq + 1);
    let stop = end + ring_len;
    while pos < stop {
        let off = pos % ring_len;
        if ring_len - off < ENTRY_HEADER {
            pos += ring_len - off;
            continue;
        }
        let Some(h) = read(DATA + off, ENTRY_HEADER as usize) else { break };
        let len = u32::from_be_bytes(array(&h[..4]));
        let (e, s, mac) = (u64::from_be_bytes(array(&h[4..12])), u64::from_be_bytes(array(&h[12..20])), &h[20..]);
        if e != epoch || s != seq {
            break;
        }
        let payload = match len {
            WRAP => Vec::new(),
            _ if ENTRY_HEADER + len as u64 > ring_len - off => break,
            _ => match read(DATA + off + ENTRY_HEADER, len as usize) {
                Some(p) => p,
                None => break,
            },
        };
        if !key.verify(&entry_mac_parts(len, &e.to_be_bytes(), &s.to_be_bytes(), &payload), mac) {
            // The entry a crash cut short, or an altered one.
            tracing::warn!(seq = s, "an audit journal entry is incomplete or altered; the journal is read up to it");
            break;
        }
        if len == WRAP {
            pos += ring_len - off;
            continue;
        }
        let Some(record) = decode(&payload) else { break };
        out.push(record);
        pos += ENTRY_HEADER + len as u64;
        seq += 1;
    }
    out
}

fn array<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0; N];
    a.copy_from_slice(&b[..N]);
    a
}

/// An entry for `r`: room for its header, then the payload: `time`, then each text field as a
/// length and its bytes. One buffer, written as it is once [`Journal::seal`] fills the header.
fn entry(r: &AuditRecord) -> Vec<u8> {
    let texts = [&r.user, &r.event_name, &r.resource, &r.result, &r.access_key, &r.event];
    let mut out = Vec::with_capacity(ENTRY_HEADER as usize + 8 + texts.iter().map(|t| 4 + t.len()).sum::<usize>());
    out.resize(ENTRY_HEADER as usize, 0);
    out.extend_from_slice(&r.time.to_be_bytes());
    for t in texts {
        out.extend_from_slice(&(t.len() as u32).to_be_bytes());
        out.extend_from_slice(t.as_bytes());
    }
    out
}

/// The payload `entry` wrote, or `None` for anything else (the journal is read from the disk).
fn decode(b: &[u8]) -> Option<AuditRecord> {
    let mut rest = b.get(8..)?;
    let time = i64::from_be_bytes(array(b.get(..8)?));
    let mut text = || -> Option<String> {
        let len = u32::from_be_bytes(array(rest.get(..4)?)) as usize;
        let t = String::from_utf8(rest.get(4..4 + len)?.to_vec()).ok()?;
        rest = rest.get(4 + len..)?;
        Some(t)
    };
    let record =
        AuditRecord { time, user: text()?, event_name: text()?, resource: text()?, result: text()?, access_key: text()?, event: text()? };
    rest.is_empty().then_some(record)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use sesame_crypto::KeyMaterial;
    use std::path::PathBuf;

    fn key() -> (MacKey, KeyMaterial) {
        let m = KeyMaterial::generate().unwrap();
        (MacKey::new(&m), m)
    }

    fn record(i: i64) -> AuditRecord {
        AuditRecord {
            time: i,
            user: "kim".into(),
            event_name: "GetSecretValue".into(),
            resource: format!("acs:kms:local:1:secret/s{i}"),
            result: if i % 2 == 0 { "Success" } else { "Failure" }.into(),
            access_key: "LTAIkim".into(),
            event: format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(500)),
        }
    }

    /// A journal file in a directory of its own, removed when the test ends.
    struct TempJournal(PathBuf);

    impl TempJournal {
        fn new(tag: &str) -> TempJournal {
            let dir = std::env::temp_dir().join(format!("sesame-journal-{tag}-{}", sesame_crypto::random::id_suffix(8).unwrap()));
            std::fs::create_dir_all(&dir).unwrap();
            TempJournal(dir.join("t-audit.journal"))
        }
    }

    impl Drop for TempJournal {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    /// A new journal of `capacity` at `epoch` in a file of its own, and its MAC key's material.
    fn fresh(tag: &str, capacity: u64, epoch: u64) -> (TempJournal, KeyMaterial, Journal, mpsc::UnboundedReceiver<Journaled>) {
        let file = TempJournal::new(tag);
        let (k, m) = key();
        let (j, rx) = Journal::create(Some(&file.0), capacity, k, epoch).unwrap();
        (file, m, j, rx)
    }

    /// Writes `n` records numbered from `from`; returns what the trail was handed.
    async fn write_all(j: &Journal, rx: &mut mpsc::UnboundedReceiver<Journaled>, from: i64, n: i64) -> Vec<Journaled> {
        for i in from..from + n {
            j.write(record(i)).await.unwrap();
        }
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    #[tokio::test]
    async fn what_was_written_and_not_taken_by_the_trail_is_recovered_in_order() {
        let (file, m, j, mut rx) = fresh("order", MIN_CAPACITY * 4, 7);
        let path = file.0.clone();
        let handed = write_all(&j, &mut rx, 0, 10).await;
        assert_eq!(handed.iter().map(|h| h.seq).collect::<Vec<_>>(), (1..=10).collect::<Vec<_>>(), "handed on in order");
        // The trail took the first four, with their mark; the process then died.
        let taken = j.mark(handed[3].seq, handed[3].end);
        drop(j);
        let (found, next) = recover(Some(&path), &MacKey::new(&m), Some(&taken)).unwrap();
        assert_eq!(found, (4..10).map(record).collect::<Vec<_>>());
        assert_eq!(next, 8, "the next epoch");
        // From the epoch's start, everything; with another key, nothing.
        assert_eq!(recover(Some(&path), &MacKey::new(&m), Some(&mark(7, 0, 0))).unwrap().0.len(), 10);
        assert!(recover(Some(&path), &key().0, Some(&mark(7, 0, 0))).unwrap().0.is_empty(), "entries are MACed");
    }

    #[tokio::test]
    async fn the_ring_wraps_and_recovery_follows_it() {
        let (file, m, j, mut rx) = fresh("wrap", MIN_CAPACITY, 1);
        let path = file.0.clone();
        // About 90 entries fit; drain as the trail would, across several laps.
        let mut last = (0, 0);
        for lap in 0..5 {
            let handed = write_all(&j, &mut rx, lap * 60, 60).await;
            let h = handed.last().unwrap();
            last = (h.seq, h.end);
            j.drained(h.seq, h.end);
        }
        assert!(last.1 > 2 * MIN_CAPACITY, "the positions went round the ring more than twice");
        // Then entries the trail does not take, across the end of the ring.
        let mut n = 0;
        loop {
            let end = write_all(&j, &mut rx, 300 + n, 1).await[0].end;
            n += 1;
            if end / MIN_CAPACITY > last.1 / MIN_CAPACITY {
                break;
            }
        }
        drop(j);
        let (found, _) = recover(Some(&path), &MacKey::new(&m), Some(&mark(1, last.0, last.1))).unwrap();
        assert_eq!(found, (300..300 + n).map(record).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn recovery_stops_at_a_cut_or_altered_entry() {
        let (file, m, j, mut rx) = fresh("cut", MIN_CAPACITY * 4, 3);
        let path = file.0.clone();
        let handed = write_all(&j, &mut rx, 0, 5).await;
        drop(j);
        let mut bytes = std::fs::read(&path).unwrap();
        // A byte inside the third entry's payload.
        bytes[(DATA + handed[1].end + ENTRY_HEADER + 20) as usize] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let (found, _) = recover(Some(&path), &MacKey::new(&m), Some(&mark(3, 0, 0))).unwrap();
        assert_eq!(found, (0..2).map(record).collect::<Vec<_>>());
        // A file cut short, or not a journal at all, holds nothing and is not an error.
        std::fs::write(&path, &bytes[..(DATA + handed[2].end) as usize - 10]).unwrap();
        assert_eq!(recover(Some(&path), &MacKey::new(&m), Some(&mark(3, 0, 0))).unwrap().0.len(), 2);
        std::fs::write(&path, b"not a journal").unwrap();
        assert_eq!(recover(Some(&path), &MacKey::new(&m), Some(&mark(3, 0, 0))).unwrap(), (Vec::new(), 4));
    }

    #[tokio::test]
    async fn a_journal_of_another_epoch_than_the_trails_mark_is_not_read() {
        let (file, m, j, mut rx) = fresh("epoch", MIN_CAPACITY, 5);
        let path = file.0.clone();
        write_all(&j, &mut rx, 0, 3).await;
        drop(j);
        let k = MacKey::new(&m);
        // The trail moved on to epoch 6 before the journal's header did (a crash between the two).
        assert_eq!(recover(Some(&path), &k, Some(&mark(6, 0, 0))).unwrap(), (Vec::new(), 7));
        assert_eq!(recover(Some(&path), &k, Some(&mark(2, 0, 0))).unwrap(), (Vec::new(), 6));
        assert_eq!(recover(Some(&path), &k, None).unwrap(), (Vec::new(), 6));
        assert_eq!(recover(None, &k, Some(&mark(9, 0, 0))).unwrap(), (Vec::new(), 10), "no file: a fresh epoch");
    }

    #[tokio::test]
    async fn a_full_journal_makes_writers_wait_for_room_and_then_fail() {
        let (j, mut rx) = Journal::create(None, MIN_CAPACITY, key().0, 1).unwrap();
        let mut n = 0;
        while j.append(&mut Some(record(n)), &mut entry(&record(n))).is_ok() {
            n += 1;
        }
        assert!(n > 50, "{n} entries fit");
        let handed: Vec<Journaled> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        // Room comes while a writer waits: it goes on.
        let j = std::sync::Arc::new(j);
        let waiting = tokio::spawn({
            let j = j.clone();
            async move { j.write(record(1000)).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        let first = &handed[9];
        j.drained(first.seq, first.end);
        assert!(waiting.await.unwrap().is_ok(), "a writer waiting for room writes once the trail takes events");
        assert_eq!(rx.try_recv().unwrap().record, record(1000));
        while j.append(&mut Some(record(2000)), &mut entry(&record(2000))).is_ok() {}
        while rx.try_recv().is_ok() {}
        // No room comes: the writer fails after FULL_WAIT, and nothing was handed on.
        tokio::time::pause();
        let started = tokio::time::Instant::now();
        assert!(matches!(j.write(record(1001)).await, Err(JournalError::Full)));
        assert!(started.elapsed() >= FULL_WAIT);
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn caught_up_waits_for_the_trail_to_take_what_was_written() {
        let (j, mut rx) = Journal::create(None, MIN_CAPACITY, key().0, 1).unwrap();
        assert!(j.caught_up(Duration::from_millis(1)).await, "nothing written: caught up");
        let handed = write_all(&j, &mut rx, 0, 3).await;
        assert!(!j.caught_up(Duration::from_millis(20)).await);
        j.drained(handed[1].seq, handed[1].end);
        assert!(!j.caught_up(Duration::from_millis(20)).await, "one event is still only in the journal");
        j.drained(handed[2].seq, handed[2].end);
        assert!(j.caught_up(Duration::from_millis(20)).await);
    }

    #[test]
    fn an_event_larger_than_the_ring_is_refused() {
        let (j, _rx) = Journal::create(None, MIN_CAPACITY, key().0, 1).unwrap();
        let mut big = record(1);
        big.event = "x".repeat(MIN_CAPACITY as usize);
        let mut too_large = entry(&big);
        assert!(matches!(j.append(&mut Some(big), &mut too_large), Err(JournalError::TooLarge(_))));
    }

    proptest! {
        #[test]
        fn reading_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600), seq in 0_u64..4, end in 0_u64..5000) {
            let _ = decode(&bytes);
            let mut file = header(1);
            file.resize(DATA as usize, 0);
            file.extend_from_slice(&bytes);
            let ring_len = (file.len() as u64).saturating_sub(DATA);
            let _ = read_after(&|at, n| file.get(at as usize..at as usize + n).map(<[u8]>::to_vec), ring_len, &key().0, 1, seq, end);
        }

        #[test]
        fn records_round_trip(time in any::<i64>(), texts in proptest::collection::vec(".{0,40}", 6)) {
            let r = AuditRecord {
                time,
                user: texts[0].clone(),
                event_name: texts[1].clone(),
                resource: texts[2].clone(),
                result: texts[3].clone(),
                access_key: texts[4].clone(),
                event: texts[5].clone(),
            };
            let mut bytes = entry(&r).split_off(ENTRY_HEADER as usize);
            prop_assert_eq!(decode(&bytes), Some(r));
            bytes.push(0);
            prop_assert_eq!(decode(&bytes), None, "trailing bytes are refused");
        }
    }
}
