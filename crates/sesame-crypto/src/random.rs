//! Randomness from the operating system (ring's `SystemRandom`).

use crate::CryptoError;
use ring::rand::{SecureRandom, SystemRandom};

pub fn fill(buf: &mut [u8]) -> Result<(), CryptoError> {
    SystemRandom::new().fill(buf).map_err(|_| CryptoError::Rng)
}

/// Uniform choice from `alphabet` without modulo bias (rejection sampling).
pub fn string_from(alphabet: &[u8], len: usize) -> Result<String, CryptoError> {
    debug_assert!(!alphabet.is_empty() && alphabet.len() <= 256);
    let limit = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        fill(&mut buf)?;
        for &b in &buf {
            if usize::from(b) < limit {
                out.push(alphabet[usize::from(b) % alphabet.len()] as char);
                if out.len() == len {
                    break;
                }
            }
        }
    }
    Ok(out)
}

const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Lower-case letters and digits, for resource ids (`key-…`, `kst-…`).
pub fn id_suffix(len: usize) -> Result<String, CryptoError> {
    string_from(LOWER_ALNUM, len)
}

/// Letters and digits, for access key ids and secrets.
pub fn alnum(len: usize) -> Result<String, CryptoError> {
    string_from(ALNUM, len)
}

/// Bytes for identifiers (request and event ids), which are unique but not secret: drawn from the
/// operating system 1 KiB at a time per thread, because a system call per request id cost more
/// than the rest of its formatting. Keys, nonces and passwords use [`fill`] directly.
fn fill_id_bytes(out: &mut [u8; 16]) -> Result<(), CryptoError> {
    const POOL: usize = 1024;
    thread_local! {
        static IDS: std::cell::RefCell<([u8; POOL], usize)> = const { std::cell::RefCell::new(([0; POOL], POOL)) };
    }
    IDS.with(|cell| {
        let mut guard = cell.borrow_mut();
        let (pool, used) = &mut *guard;
        if *used + out.len() > POOL {
            fill(pool)?;
            *used = 0;
        }
        out.copy_from_slice(&pool[*used..*used + 16]);
        // Never hand out the same bytes twice.
        pool[*used..*used + 16].fill(0);
        *used += 16;
        Ok(())
    })
}

/// A random version-4 UUID, upper-case as Alibaba's RequestIds are.
pub fn uuid() -> Result<String, CryptoError> {
    let mut b = [0u8; 16];
    fill_id_bytes(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    // 8-4-4-4-12 digits: each group's bytes and where its digits start.
    let mut text = [b'-'; 36];
    for (bytes, at) in [(0..4, 0), (4..6, 9), (6..8, 14), (8..10, 19), (10..16, 24)] {
        crate::write_hex(&mut text[at..], &b[bytes], crate::HEX_UPPER);
    }
    Ok(crate::ascii(&text).to_owned())
}

/// 32 hex digits, as the SDKs' signature nonces.
pub fn nonce() -> Result<String, CryptoError> {
    let mut b = [0u8; 16];
    fill(&mut b)?;
    Ok(crate::hex(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_well_formed_and_distinct() {
        let a = uuid().unwrap();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_ne!(a, uuid().unwrap());
        let groups: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert!(a.bytes().all(|c| c == b'-' || c.is_ascii_digit() || c.is_ascii_uppercase()));
        assert!(matches!(&a[19..20], "8" | "9" | "A" | "B"));
        // Past the per-thread pool's refill, still distinct.
        let many: std::collections::HashSet<String> = (0..200).map(|_| uuid().unwrap()).collect();
        assert_eq!(many.len(), 200);
    }

    #[test]
    fn strings_use_only_the_alphabet() {
        let s = string_from(b"ab", 200).unwrap();
        assert_eq!(s.len(), 200);
        assert!(s.bytes().all(|c| c == b'a' || c == b'b'));
        assert!(s.contains('a') && s.contains('b'));
    }
}

pub const LOWERCASE: &str = "abcdefghijklmnopqrstuvwxyz";
pub const UPPERCASE: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
pub const DIGITS: &str = "0123456789";
pub const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// A password of `len` characters drawn uniformly from `classes` (minus `exclude`); with
/// `require_each`, every non-empty class appears at least once. `None` when nothing is left to
/// draw from or `len` is too short to hold one of each class.
pub fn password(len: usize, classes: &[&str], exclude: &str, require_each: bool) -> Result<Option<String>, CryptoError> {
    let classes: Vec<Vec<u8>> = classes
        .iter()
        .map(|c| c.bytes().filter(|b| !exclude.as_bytes().contains(b)).collect::<Vec<u8>>())
        .filter(|c| !c.is_empty())
        .collect();
    let alphabet: Vec<u8> = classes.concat();
    if alphabet.is_empty() || (require_each && len < classes.len()) {
        return Ok(None);
    }
    // Rejection: draw whole passwords until one has every class. With the shortest allowed
    // length (8) and four classes this takes a few draws; the bound only guards a pathology.
    for _ in 0..10_000 {
        let candidate = string_from(&alphabet, len)?;
        if !require_each || classes.iter().all(|c| candidate.bytes().any(|b| c.contains(&b))) {
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod password_tests {
    use super::*;

    #[test]
    fn passwords_respect_classes_exclusions_and_requirements() {
        for _ in 0..50 {
            let p = password(8, &[LOWERCASE, UPPERCASE, DIGITS, PUNCTUATION], "", true).unwrap().unwrap();
            assert_eq!(p.len(), 8);
            assert!(p.bytes().any(|b| b.is_ascii_lowercase()) && p.bytes().any(|b| b.is_ascii_uppercase()));
            assert!(p.bytes().any(|b| b.is_ascii_digit()) && p.bytes().any(|b| PUNCTUATION.as_bytes().contains(&b)));
        }
        let p = password(64, &[DIGITS], "0123", false).unwrap().unwrap();
        assert!(p.bytes().all(|b| (b'4'..=b'9').contains(&b)));
        assert_eq!(password(8, &[DIGITS], DIGITS, false).unwrap(), None);
        assert_eq!(password(2, &[LOWERCASE, UPPERCASE, DIGITS], "", true).unwrap(), None);
    }
}
