//! The audit journal of earlier versions, read once at start-up.
//!
//! Before the trail's events were kept in segment files (`log`), each request wrote its event to
//! this file, a ring, and a task copied the ring into the trail's SQLite rows; each copy stored
//! the journal's `epoch:seq:end` mark with it. A server stopped by a crash could leave events
//! after the mark that no copy took: [`recover`] reads them, and the start-up appends them to the
//! trail and removes the file.
//!
//! The file is a header, then entries one after another, each `len | epoch | seq | MAC |
//! payload` (the payload as `log::encode` writes it), MACed with the trail's key. An entry that
//! did not fit before the end of the ring left a wrap marker and went to the start.

use super::log::{array, decode};
use crate::model::AuditRecord;
use sesame_crypto::mac::MacKey;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

const MAGIC: &[u8; 8] = b"SESAMEAJ";
const VERSION: u32 = 1;
/// The header's room; entries start after it.
const DATA: u64 = 4096;
/// `len` (u32), epoch (u64), seq (u64), MAC (32 bytes).
const ENTRY_HEADER: u64 = 4 + 8 + 8 + 32;
/// The `len` of a wrap marker: the next entry is at the start of the ring.
const WRAP: u32 = u32::MAX;

#[cfg(test)]
fn mark(epoch: u64, seq: u64, end: u64) -> String {
    format!("{epoch}:{seq}:{end}")
}

fn parse_mark(mark: &str) -> Option<(u64, u64, u64)> {
    let mut parts = mark.split(':').map(|p| p.parse::<u64>().ok());
    let parsed = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(parsed)
}

#[cfg(test)]
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

/// The events the journal at `path` holds after the trail's `mark`, in order. A journal of
/// another epoch than the mark's holds nothing the trail lacks: either the trail took it all and
/// a crash came before the new epoch's header, or the file is not this trail's (then it is
/// reported and not read).
pub fn recover(path: &Path, key: &MacKey, mark: Option<&str>) -> std::io::Result<Vec<AuditRecord>> {
    let mark = mark.and_then(parse_mark);
    let mark_epoch = mark.map_or(0, |(epoch, _, _)| epoch);
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
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
            tracing::warn!("the audit journal of an earlier version has no valid header; it is not read");
            return Ok(Vec::new());
        }
    };
    match mark {
        Some((epoch, seq, end)) if epoch == file_epoch => Ok(read_after(&read, ring_len, key, epoch, seq, end)),
        Some((epoch, ..)) if epoch > file_epoch => Ok(Vec::new()),
        _ => {
            tracing::warn!(journal_epoch = file_epoch, trail_epoch = mark_epoch, "the audit journal is not this trail's; it is not read");
            Ok(Vec::new())
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::log::encode;
    use super::super::log::tests::record;
    use super::*;
    use proptest::prelude::*;
    use sesame_crypto::KeyMaterial;

    fn key() -> MacKey {
        MacKey::new(&KeyMaterial::generate().unwrap())
    }

    /// A ring as earlier versions wrote it: `entries` of `(position in the ring, seq, record)`,
    /// `None` for a wrap marker.
    fn ring(key: &MacKey, epoch: u64, ring_len: usize, entries: &[(usize, u64, Option<AuditRecord>)]) -> Vec<u8> {
        let mut file = header(epoch);
        file.resize(DATA as usize + ring_len, 0);
        for (pos, seq, record) in entries {
            let payload = record.as_ref().map(|r| encode(r).into_bytes().split_off(super::super::log::HEADER)).unwrap_or_default();
            let len = if record.is_some() { payload.len() as u32 } else { WRAP };
            let mac = key.sign(&entry_mac_parts(len, &epoch.to_be_bytes(), &seq.to_be_bytes(), &payload));
            let mut e = len.to_be_bytes().to_vec();
            e.extend_from_slice(&epoch.to_be_bytes());
            e.extend_from_slice(&seq.to_be_bytes());
            e.extend_from_slice(&mac);
            e.extend_from_slice(&payload);
            file[DATA as usize + pos..DATA as usize + pos + e.len()].copy_from_slice(&e);
        }
        file
    }

    /// Ten entries one after another from the ring's start, and where each ends.
    fn ten(key: &MacKey, epoch: u64) -> (Vec<u8>, Vec<u64>) {
        let (mut entries, mut ends, mut pos) = (Vec::new(), Vec::new(), 0);
        for i in 0..10 {
            entries.push((pos, i as u64 + 1, Some(record(i))));
            pos += ENTRY_HEADER as usize + encode(&record(i)).into_bytes().len() - super::super::log::HEADER;
            ends.push(pos as u64);
        }
        (ring(key, epoch, 64 * 1024, &entries), ends)
    }

    fn recover_bytes(bytes: &[u8], key: &MacKey, mark: &str) -> Vec<AuditRecord> {
        let dir = std::env::temp_dir().join(format!("sesame-journal-{}", sesame_crypto::random::id_suffix(8).unwrap()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t-audit.journal");
        std::fs::write(&path, bytes).unwrap();
        let found = recover(&path, key, Some(mark)).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        found
    }

    #[test]
    fn what_follows_the_trails_mark_is_recovered_in_order() {
        let k = key();
        let (bytes, ends) = ten(&k, 7);
        assert_eq!(recover_bytes(&bytes, &k, &mark(7, 4, ends[3])), (4..10).map(record).collect::<Vec<_>>());
        assert_eq!(recover_bytes(&bytes, &k, &mark(7, 0, 0)).len(), 10, "from the epoch's start, everything");
        assert!(recover_bytes(&bytes, &key(), &mark(7, 0, 0)).is_empty(), "entries are MACed");
        assert!(recover(Path::new("/nonexistent/t-audit.journal"), &k, Some(&mark(7, 0, 0))).unwrap().is_empty(), "no file, nothing");
    }

    /// A wrap marker has the position of the entry it sends to the ring's start.
    #[test]
    fn recovery_follows_a_wrap_marker_to_the_ring_start() {
        let k = key();
        let ring_len = 4096;
        let size = ENTRY_HEADER as usize + encode(&record(1)).into_bytes().len() - super::super::log::HEADER;
        let last = ring_len - size - 100;
        let bytes = ring(&k, 2, ring_len, &[(last, 5, Some(record(5))), (last + size, 6, None), (0, 6, Some(record(7)))]);
        assert_eq!(recover_bytes(&bytes, &k, &mark(2, 4, last as u64)), vec![record(5), record(7)]);
    }

    #[test]
    fn recovery_stops_at_a_cut_or_altered_entry_and_ignores_other_epochs() {
        let k = key();
        let (mut bytes, ends) = ten(&k, 3);
        bytes[(DATA + ends[1] + ENTRY_HEADER + 20) as usize] ^= 1;
        assert_eq!(recover_bytes(&bytes, &k, &mark(3, 0, 0)), (0..2).map(record).collect::<Vec<_>>());
        let cut = &bytes[..(DATA + ends[1]) as usize - 10];
        assert_eq!(recover_bytes(cut, &k, &mark(3, 0, 0)), vec![record(0)], "a file cut short: the whole entries before the cut");
        assert!(recover_bytes(b"not a journal", &k, &mark(3, 0, 0)).is_empty());
        let (bytes, _) = ten(&k, 5);
        assert!(recover_bytes(&bytes, &k, &mark(6, 0, 0)).is_empty(), "the trail moved on past this journal");
        assert!(recover_bytes(&bytes, &k, &mark(2, 0, 0)).is_empty(), "not this trail's journal");
    }

    proptest! {
        #[test]
        fn reading_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600), seq in 0_u64..4, end in 0_u64..5000) {
            let mut file = header(1);
            file.resize(DATA as usize, 0);
            file.extend_from_slice(&bytes);
            let ring_len = (file.len() as u64).saturating_sub(DATA);
            let _ = read_after(&|at, n| file.get(at as usize..at as usize + n).map(<[u8]>::to_vec), ring_len, &key(), 1, seq, end);
        }
    }
}
