//! The audit trail's events: segment files that are appended to and never rewritten.
//!
//! A request writes its event here before it is answered, with one positioned write under a lock
//! that keeps the entries in order. Each entry is `len | seq | MAC | payload`, and its MAC is the
//! event's chain link: it covers the previous entry's MAC, the position and the payload (every
//! field of the event), so the file is the trail and nothing copies it anywhere. Earlier versions
//! wrote each event to a ring file and then copied it into SQLite, one row an event: the copy (a
//! second MAC, the row, the WAL's pages and their checkpoints) was most of what the audit cost a
//! request (docs/benchmarks-log.md, findings 34 and 37).
//!
//! The entries are numbered into blocks, runs of consecutive entries in one segment of up to
//! [`BLOCK_MAX`] bytes; a background task indexes the blocks in SQLite with the sealed head
//! (`AuditBlock`), and lookups and verification find the events through the index. A write that
//! returns has put the event in the operating system's page cache: it survives the process, not a
//! power cut, as a commit in WAL mode with `synchronous=NORMAL` does. At start-up the entries
//! after the last indexed block are read back, each checked against its link, and indexed before
//! anything is served; a torn last entry (a crash in the middle of its write) is cut off.

use crate::model::{AuditBlock, AuditRecord};
use sesame_crypto::mac::MacKey;
use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// `len` (u32), seq (i64), MAC (32 bytes).
pub const HEADER: usize = 4 + 8 + 32;
/// A segment file is closed, and the next one begun, before an entry would take it past this.
pub const SEGMENT_MAX: u64 = 128 << 20;
/// A block is closed once it holds this many bytes: a lookup reads whole blocks.
pub const BLOCK_MAX: u64 = 64 << 10;
/// The smallest payload: a time and six empty texts.
const MIN_PAYLOAD: usize = 8 + 6 * 4;
/// What each link's MAC starts with.
const DOMAIN: &[u8] = b"sesame-trail";

#[derive(Debug)]
pub enum LogError {
    /// The event alone is larger than a segment.
    TooLarge(usize),
    Io(std::io::Error),
}

impl std::fmt::Display for LogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogError::TooLarge(n) => write!(f, "the audit event ({n} bytes) is larger than a segment of the trail"),
            LogError::Io(e) => write!(f, "the audit trail could not be written: {e}"),
        }
    }
}

/// Where the log goes on from: the last indexed block's end, or the start of the first segment
/// after the trail's first format (its last position and link).
#[derive(Debug, Clone)]
pub struct Resume {
    pub seq: i64,
    pub prev: Vec<u8>,
    pub segment: i64,
    pub offset: u64,
}

impl Resume {
    pub fn after(block: &AuditBlock) -> Resume {
        Resume { seq: block.last_seq, prev: block.last_mac.clone(), segment: block.segment, offset: block.end.max(0) as u64 }
    }
}

struct State {
    seq: i64,
    prev: Vec<u8>,
    segment: i64,
    offset: u64,
    /// The segment being written (file logs).
    file: Option<File>,
    /// Every segment, for a log without a directory (a store in memory).
    memory: Vec<Vec<u8>>,
    open: Option<AuditBlock>,
    closed: Vec<AuditBlock>,
}

impl State {
    /// Counts an entry just written at `self.offset` into the blocks, and moves on past it. A
    /// block ends with its segment or at [`BLOCK_MAX`].
    fn note(&mut self, seq: i64, time: i64, mac: Vec<u8>, len: u64) {
        let (segment, start) = (self.segment, self.offset as i64);
        match &mut self.open {
            Some(b) if b.segment == segment && ((b.end - b.start) as u64) < BLOCK_MAX => {
                b.last_seq = seq;
                b.min_time = b.min_time.min(time);
                b.max_time = b.max_time.max(time);
                b.end = start + len as i64;
            }
            _ => {
                self.close_block();
                self.open = Some(AuditBlock {
                    first_seq: seq,
                    last_seq: seq,
                    min_time: time,
                    max_time: time,
                    segment,
                    start,
                    end: start + len as i64,
                    last_mac: Vec::new(),
                });
            }
        }
        self.seq = seq;
        self.prev = mac;
        self.offset += len;
    }

    /// Closes the block being filled: its last link is the last one written.
    fn close_block(&mut self) {
        if let Some(mut b) = self.open.take() {
            b.last_mac.clone_from(&self.prev);
            self.closed.push(b);
        }
    }
}

pub struct Log {
    /// `None`: the segments are kept in memory.
    dir: Option<PathBuf>,
    key: MacKey,
    state: Mutex<State>,
    /// The last position the index holds.
    indexed: watch::Sender<i64>,
    /// Wakes the indexer before its time (a lookup waiting for it).
    wake: Notify,
    segment_max: u64,
    /// The segment file a block was last read from, for the next block (lookups and `verify`
    /// read block after block of one segment).
    reading: Mutex<Option<(i64, Arc<File>)>>,
}

pub fn segment_path(dir: &Path, segment: i64) -> PathBuf {
    dir.join(format!("{segment:08}.seg"))
}

/// Opens a segment for writing, made or extended to `size` bytes: sparse, the disk holds what has
/// been written, and a write within the size does not change it. (Against appends that extend
/// the file, GetSecretValue at 32 connections: p99 1.84–2.04x the bare server's against
/// 1.98–2.10x, rate 0.59–0.62 against 0.54–0.60, three runs each.)
fn open_segment(dir: &Path, segment: i64, size: u64) -> std::io::Result<File> {
    let file =
        std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(segment_path(dir, segment))?;
    if file.metadata()?.len() < size {
        file.set_len(size)?;
    }
    Ok(file)
}

impl Log {
    /// Opens the log in `dir` (made if missing) where `resume` says, and reads back the entries
    /// written after it: each one that is whole, next in order and matches its link is counted
    /// into the blocks that [`Log::take_blocks`] returns; the first that is not ends the log there
    /// (its segment is cut, and any later segment is set aside as `.torn`).
    pub fn open(dir: Option<&Path>, key: MacKey, resume: Resume) -> std::io::Result<Log> {
        let mut state = State {
            seq: resume.seq,
            prev: resume.prev.clone(),
            segment: resume.segment.max(1),
            offset: resume.offset,
            file: None,
            memory: Vec::new(),
            open: None,
            closed: Vec::new(),
        };
        if let Some(dir) = dir {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
            read_tail(dir, &key, &mut state)?;
            state.file = Some(open_segment(dir, state.segment, SEGMENT_MAX)?);
        } else {
            state.memory = vec![Vec::new(); state.segment as usize];
        }
        Ok(Log {
            dir: dir.map(Path::to_path_buf),
            key,
            state: Mutex::new(state),
            indexed: watch::Sender::new(resume.seq),
            wake: Notify::new(),
            segment_max: SEGMENT_MAX,
            reading: Mutex::new(None),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes one entry as the next; on failure nothing moves (the next write goes where this
    /// one was to go).
    pub fn append(&self, entry: Unwritten) -> Result<(), LogError> {
        let Unwritten { bytes: mut entry, time } = entry;
        let len = entry.len() as u64;
        if len > self.segment_max || len - HEADER as u64 > u32::MAX as u64 {
            return Err(LogError::TooLarge(entry.len() - HEADER));
        }
        let mut st = self.lock();
        let mut closed = None;
        if st.offset > 0 && st.offset + len > self.segment_max {
            closed = self.roll(&mut st).map_err(LogError::Io)?;
        }
        let seq = st.seq + 1;
        let mac = self.link(&st.prev, seq, &entry[HEADER..]);
        entry[..4].copy_from_slice(&((len as usize - HEADER) as u32).to_be_bytes());
        entry[4..12].copy_from_slice(&seq.to_be_bytes());
        entry[12..HEADER].copy_from_slice(&mac);
        let offset = st.offset;
        match &st.file {
            Some(file) => file.write_all_at(&entry, offset).map_err(LogError::Io)?,
            None => {
                let segment = st.segment as usize;
                if let Some(bytes) = st.memory.get_mut(segment - 1) {
                    bytes.truncate(offset as usize);
                    bytes.extend_from_slice(&entry);
                }
            }
        }
        st.note(seq, time, mac, len);
        drop(st);
        drop(closed);
        Ok(())
    }

    /// Begins the next segment; returns the one it replaces, to be closed once the lock is
    /// released.
    ///
    /// The new file is made, never truncated: ext4 flushes a file truncated to nothing when it is
    /// closed (its guard for programs that rewrite a file in place), and the close of a 128 MiB
    /// segment made that way held every request for 60–95 ms.
    fn roll(&self, st: &mut State) -> std::io::Result<Option<File>> {
        let next = st.segment + 1;
        let old = match &self.dir {
            Some(dir) => {
                // Not the trail's: a cut sets aside the segments after it.
                let path = segment_path(dir, next);
                if path.exists() {
                    std::fs::rename(&path, path.with_extension("stale"))?;
                }
                st.file.replace(open_segment(dir, next, self.segment_max)?)
            }
            None => {
                st.memory.push(Vec::new());
                None
            }
        };
        (st.segment, st.offset) = (next, 0);
        Ok(old)
    }

    /// An entry's chain link.
    pub fn link(&self, prev: &[u8], seq: i64, payload: &[u8]) -> Vec<u8> {
        self.key.sign(&link_parts(prev, &seq.to_be_bytes(), payload))
    }

    /// The blocks written since the last call, the one being filled included (the next entry
    /// starts a new one), oldest first.
    pub fn take_blocks(&self) -> Vec<AuditBlock> {
        let mut st = self.lock();
        st.close_block();
        std::mem::take(&mut st.closed)
    }

    /// The index now holds every position up to `seq`.
    pub fn indexed(&self, seq: i64) {
        self.indexed.send_replace(seq);
    }

    /// Waits until the index holds every event written before this call.
    pub async fn caught_up(&self, within: Duration) -> bool {
        let target = self.lock().seq;
        let mut indexed = self.indexed.subscribe();
        self.wake.notify_one();
        matches!(tokio::time::timeout(within, indexed.wait_for(|&s| s >= target)).await, Ok(Ok(_)))
    }

    /// Waits for a lookup to ask for the index, or for `period`.
    pub async fn wait_for_work(&self, period: Duration) {
        let _ = tokio::time::timeout(period, self.wake.notified()).await;
    }

    /// The file of `segment`, opened once for the blocks read one after another.
    fn segment_file(&self, dir: &Path, segment: i64) -> std::io::Result<Arc<File>> {
        let mut reading = self.reading.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match &*reading {
            Some((s, file)) if *s == segment => Ok(file.clone()),
            _ => {
                let file = Arc::new(File::open(segment_path(dir, segment))?);
                *reading = Some((segment, file.clone()));
                Ok(file)
            }
        }
    }

    /// The bytes of an indexed block.
    pub fn read(&self, block: &AuditBlock) -> std::io::Result<Vec<u8>> {
        let invalid = || std::io::Error::new(std::io::ErrorKind::InvalidData, "the index row's range is not valid");
        let (start, end) = (u64::try_from(block.start).map_err(|_| invalid())?, u64::try_from(block.end).map_err(|_| invalid())?);
        if end < start || end - start > SEGMENT_MAX {
            return Err(invalid());
        }
        match &self.dir {
            Some(dir) => {
                // What the file holds of the range: a file cut short gives fewer entries, which
                // verification reports.
                let file = self.segment_file(dir, block.segment)?;
                let mut buf = vec![0; (end - start) as usize];
                let mut filled = 0;
                while filled < buf.len() {
                    match file.read_at(&mut buf[filled..], start + filled as u64) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                buf.truncate(filled);
                Ok(buf)
            }
            None => {
                let st = self.lock();
                let segment = usize::try_from(block.segment - 1).ok().and_then(|i| st.memory.get(i));
                let segment = segment.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such segment"))?;
                Ok(segment.get(start as usize..(end as usize).min(segment.len())).map(<[u8]>::to_vec).unwrap_or_default())
            }
        }
    }
}

/// Reads the entries after `st`'s position, counting the good ones in; cuts a torn tail.
fn read_tail(dir: &Path, key: &MacKey, st: &mut State) -> std::io::Result<()> {
    loop {
        let path = segment_path(dir, st.segment);
        let Ok(file) = File::open(&path) else { return Ok(()) };
        let size = file.metadata()?.len();
        // Nothing is allocated for a length the file does not hold (a damaged header can say 4 GiB).
        let read = |at: u64, n: usize| -> Option<Vec<u8>> {
            if at.saturating_add(n as u64) > size {
                return None;
            }
            let mut buf = vec![0; n];
            file.read_exact_at(&mut buf, at).ok().map(|()| buf)
        };
        // Entry by entry: the segment's unwritten room (zeros) ends it.
        let torn = loop {
            let Some(header) = read(st.offset, HEADER) else { break false };
            if header.iter().all(|&b| b == 0) {
                break false;
            }
            let Some((len, seq, mac)) = parse_header(&header) else { break true };
            let Some(payload) = read(st.offset + HEADER as u64, len) else { break true };
            if seq != st.seq + 1 || !key.verify(&link_parts(&st.prev, &seq.to_be_bytes(), &payload), mac) {
                break true;
            }
            st.note(seq, payload_time(&payload).unwrap_or_default(), mac.to_vec(), (HEADER + len) as u64);
        };
        if torn {
            tracing::warn!(segment = %path.display(), at = st.offset, "the audit trail's last entry is incomplete or does not match its link; the trail is cut there");
            std::fs::OpenOptions::new().write(true).open(&path)?.set_len(st.offset)?;
            return set_aside_after(dir, st.segment);
        }
        if !segment_path(dir, st.segment + 1).exists() {
            return Ok(());
        }
        (st.segment, st.offset) = (st.segment + 1, 0);
    }
}

/// Renames the segment files after `segment` to `.torn`: they follow a cut and are not the trail.
fn set_aside_after(dir: &Path, segment: i64) -> std::io::Result<()> {
    let mut next = segment + 1;
    while segment_path(dir, next).exists() {
        let path = segment_path(dir, next);
        tracing::warn!(segment = %path.display(), "an audit segment after a cut is set aside");
        std::fs::rename(&path, path.with_extension("torn"))?;
        next += 1;
    }
    Ok(())
}

/// One entry of a block as read back.
pub struct Entry<'a> {
    pub seq: i64,
    pub mac: &'a [u8],
    pub payload: &'a [u8],
}

/// The entries at the start of `bytes`, up to the first that is not whole.
pub fn entries(bytes: &[u8]) -> impl Iterator<Item = Entry<'_>> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        let (len, seq, mac) = parse_header(rest.get(..HEADER)?)?;
        let payload = rest.get(HEADER..HEADER + len)?;
        let entry = Entry { seq, mac, payload };
        rest = &rest[HEADER + len..];
        Some(entry)
    })
}

/// An entry header's payload length, position and MAC; `None` for a length no entry has
/// (unwritten room reads as zeros).
fn parse_header(header: &[u8]) -> Option<(usize, i64, &[u8])> {
    let len = u32::from_be_bytes(array(header.get(..4)?)) as usize;
    let seq = i64::from_be_bytes(array(header.get(4..12)?));
    (len >= MIN_PAYLOAD).then_some((len, seq, header.get(12..HEADER)?))
}

/// What a link's MAC covers: the previous link, the position and the payload.
fn link_parts<'a>(prev: &'a [u8], seq: &'a [u8; 8], payload: &'a [u8]) -> [&'a [u8]; 4] {
    [DOMAIN, prev, seq, payload]
}

pub(super) fn array<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0; N];
    a.copy_from_slice(&b[..N]);
    a
}

fn payload_time(payload: &[u8]) -> Option<i64> {
    payload.get(..8).map(|b| i64::from_be_bytes(array(b)))
}

/// An entry ready to be written: room for its header, then its payload.
pub struct Unwritten {
    bytes: Vec<u8>,
    time: i64,
}

/// An entry's first allocation: most entries (an event of 600-700 bytes and the fields before it)
/// fit, and it is under the 1,024 bytes past which glibc stops serving from its per-thread cache.
const ENTRY_ROOM: usize = 1000;

/// An entry whose payload is `time`, then each text field as a length and its bytes: the five of
/// `texts`, then the event, which `event` writes straight into the entry (no string in between).
pub fn encode_with(time: i64, texts: [&str; 5], event: impl FnOnce(&mut Vec<u8>)) -> Unwritten {
    let fields = HEADER + 8 + texts.iter().map(|t| 4 + t.len()).sum::<usize>() + 4;
    // Long fields (a long resource name) still leave room for the event's first 256 bytes.
    let mut out = Vec::with_capacity(ENTRY_ROOM.max(fields + 256));
    out.resize(HEADER, 0);
    out.extend_from_slice(&time.to_be_bytes());
    for t in texts {
        out.extend_from_slice(&(t.len() as u32).to_be_bytes());
        out.extend_from_slice(t.as_bytes());
    }
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    event(&mut out);
    // Past 4 GiB the whole entry is refused as too large by `append`.
    let len = u32::try_from(out.len() - at - 4).unwrap_or(u32::MAX);
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Unwritten { bytes: out, time }
}

#[cfg(test)]
impl Unwritten {
    pub(super) fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// The entry of a record (one read back, or one of an earlier version's journal).
pub fn encode(r: &AuditRecord) -> Unwritten {
    encode_with(r.time, [&r.user, &r.event_name, &r.resource, &r.result, &r.access_key], |out| out.extend_from_slice(r.event.as_bytes()))
}

/// The payload `encode` wrote, or `None` for anything else (it is read from the disk).
pub fn decode(b: &[u8]) -> Option<AuditRecord> {
    let mut rest = b.get(8..)?;
    let time = payload_time(b)?;
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
pub(super) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use sesame_crypto::KeyMaterial;

    /// An event of about 700 bytes, numbered `i`.
    pub(in crate::audit) fn record(i: i64) -> AuditRecord {
        AuditRecord {
            time: 1_000 + i,
            user: "kim".into(),
            event_name: "GetSecretValue".into(),
            resource: format!("acs:kms:local:1:secret/s{i}"),
            result: "Success".into(),
            access_key: "LTAIkim".into(),
            event: format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(600)),
        }
    }

    /// A directory of its own, removed when the test ends.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            TempDir(std::env::temp_dir().join(format!("sesame-log-{tag}-{}", sesame_crypto::random::id_suffix(8).unwrap())))
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn start() -> Resume {
        Resume { seq: 0, prev: Vec::new(), segment: 1, offset: 0 }
    }

    /// A log's directory and key, for opening it and opening it again.
    struct Fixture {
        dir: TempDir,
        key: KeyMaterial,
    }

    impl Fixture {
        fn new(tag: &str) -> Fixture {
            Fixture { dir: TempDir::new(tag), key: KeyMaterial::generate().unwrap() }
        }

        fn open(&self, resume: Resume) -> Log {
            Log::open(Some(&self.dir.0), MacKey::new(&self.key), resume).unwrap()
        }

        fn segment(&self, n: i64) -> PathBuf {
            segment_path(&self.dir.0, n)
        }

        /// A log of 16 KiB segments holding records 1 to `n`, and its blocks.
        fn filled(&self, n: i64) -> (Log, Vec<AuditBlock>) {
            let mut log = self.open(start());
            log.segment_max = 16 * 1024;
            for i in 1..=n {
                log.append(encode(&record(i))).unwrap();
            }
            let blocks = log.take_blocks();
            (log, blocks)
        }
    }

    /// Every event the blocks hold, checked against its link from `prev`, in order.
    fn read_all(log: &Log, blocks: &[AuditBlock], mut prev: Vec<u8>) -> Vec<(i64, AuditRecord)> {
        let mut out = Vec::new();
        for b in blocks {
            let bytes = log.read(b).unwrap();
            for e in entries(&bytes) {
                assert_eq!(log.link(&prev, e.seq, e.payload), e.mac, "event {} matches its link", e.seq);
                prev = e.mac.to_vec();
                out.push((e.seq, decode(e.payload).unwrap()));
            }
            assert_eq!(out.last().unwrap().0, b.last_seq, "a block ends at its last event");
            assert_eq!(prev, b.last_mac);
        }
        out
    }

    #[test]
    fn events_are_chained_in_blocks_that_never_span_segments() {
        let f = Fixture::new("blocks");
        let (log, blocks) = f.filled(200);
        assert!(blocks.iter().any(|b| b.segment > 3), "several segments: {:?}", blocks.last());
        assert!(blocks.iter().all(|b| b.end - b.start <= BLOCK_MAX as i64 + 1024 && b.end <= 16 * 1024));
        assert!(blocks.windows(2).all(|w| w[1].first_seq == w[0].last_seq + 1), "blocks follow each other");
        assert_eq!(read_all(&log, &blocks, Vec::new()), (1..=200).map(|i| (i, record(i))).collect::<Vec<_>>());
        assert!(log.take_blocks().is_empty(), "each block is handed out once");
        assert_eq!((blocks[0].min_time, blocks[0].max_time), (1_001, 1_000 + blocks[0].last_seq));
    }

    #[test]
    fn a_restart_reads_back_what_the_index_lacks_and_cuts_a_torn_tail() {
        let f = Fixture::new("tail");
        let (log, blocks) = f.filled(60);
        drop(log);
        // The index held the first block only; the last entry was torn by a crash.
        let last = blocks.last().unwrap().clone();
        let path = f.segment(last.segment);
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(last.end as u64 - 10).unwrap();
        std::fs::write(f.segment(last.segment + 1), b"written after the tear").unwrap();
        let log = f.open(Resume::after(&blocks[0]));
        let found = log.take_blocks();
        assert_eq!(found.first().unwrap().first_seq, blocks[0].last_seq + 1);
        assert_eq!(found.last().unwrap().last_seq, 59, "read back up to the torn entry");
        assert_eq!(read_all(&log, &found, blocks[0].last_mac.clone()).len() as i64, 59 - blocks[0].last_seq);
        assert!(!f.segment(last.segment + 1).exists(), "a segment after the cut is set aside");
        // The log goes on where the torn entry was.
        log.append(encode(&record(60))).unwrap();
        let next = log.take_blocks();
        assert_eq!((next[0].first_seq, next[0].start), (60, found.last().unwrap().end));
        assert_eq!(read_all(&log, &next, found.last().unwrap().last_mac.clone())[0].1, record(60));
    }

    #[test]
    fn an_altered_entry_ends_what_a_restart_reads_back() {
        let f = Fixture::new("altered");
        let log = f.open(start());
        for i in 1..=5 {
            log.append(encode(&record(i))).unwrap();
        }
        drop(log);
        let path = f.segment(1);
        let mut bytes = std::fs::read(&path).unwrap();
        let third = entries(&bytes).take(2).map(|e| HEADER + e.payload.len()).sum::<usize>();
        bytes[third + HEADER + 30] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let log = f.open(start());
        assert_eq!(log.take_blocks().last().unwrap().last_seq, 2);
        assert!(std::fs::read(&path).unwrap()[third..].iter().all(|&b| b == 0), "cut, then room again");
        let other_key = Log::open(Some(&f.dir.0), MacKey::new(&KeyMaterial::generate().unwrap()), start()).unwrap();
        assert!(other_key.take_blocks().is_empty(), "entries are MACed with the trail's key");
    }

    #[test]
    fn a_damaged_header_after_the_last_entry_is_cut_off() {
        let f = Fixture::new("header");
        let log = f.open(start());
        log.append(encode(&record(1))).unwrap();
        let end = log.take_blocks()[0].end as u64;
        drop(log);
        let file = std::fs::OpenOptions::new().write(true).open(f.segment(1)).unwrap();
        file.write_all_at(&[0xff; HEADER], end).unwrap();
        let log = f.open(start());
        assert_eq!(log.take_blocks().last().map(|b| (b.last_seq, b.end as u64)), Some((1, end)));
        assert!(std::fs::read(f.segment(1)).unwrap()[end as usize..].iter().all(|&b| b == 0), "cut, then room again");
    }

    #[test]
    fn a_write_that_fails_moves_nothing() {
        let f = Fixture::new("fail");
        let log = f.open(start());
        log.append(encode(&record(1))).unwrap();
        let writable = log.lock().file.replace(File::open(f.segment(1)).unwrap());
        assert!(matches!(log.append(encode(&record(2))), Err(LogError::Io(_))));
        log.lock().file = writable;
        log.append(encode(&record(3))).unwrap();
        let blocks = log.take_blocks();
        assert_eq!(read_all(&log, &blocks, Vec::new()), vec![(1, record(1)), (2, record(3))]);
    }

    #[tokio::test]
    async fn a_log_in_memory_keeps_its_events_and_waits_for_its_index() {
        let log = Log::open(None, MacKey::new(&KeyMaterial::generate().unwrap()), start()).unwrap();
        assert!(log.caught_up(Duration::from_millis(1)).await, "nothing written: caught up");
        log.append(encode(&record(1))).unwrap();
        log.append(encode(&record(2))).unwrap();
        assert!(!log.caught_up(Duration::from_millis(20)).await);
        let blocks = log.take_blocks();
        assert_eq!(read_all(&log, &blocks, Vec::new()).len(), 2);
        log.indexed(2);
        assert!(log.caught_up(Duration::from_millis(20)).await);
        let mut big = record(3);
        big.event = "x".repeat(SEGMENT_MAX as usize);
        assert!(matches!(log.append(encode(&big)), Err(LogError::TooLarge(_))));
    }

    proptest! {
        #[test]
        fn reading_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            for e in entries(&bytes) {
                let _ = decode(e.payload);
            }
            let _ = decode(&bytes);
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
            let mut bytes = encode(&r).into_bytes().split_off(HEADER);
            prop_assert_eq!(decode(&bytes), Some(r));
            bytes.push(0);
            prop_assert_eq!(decode(&bytes), None, "trailing bytes are refused");
        }
    }
}
