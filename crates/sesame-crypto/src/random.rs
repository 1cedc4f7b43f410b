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

/// A random version-4 UUID, upper-case as Alibaba's RequestIds are.
pub fn uuid() -> Result<String, CryptoError> {
    let mut b = [0u8; 16];
    fill(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = crate::hex(&b).to_uppercase();
    Ok(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
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
    }

    #[test]
    fn strings_use_only_the_alphabet() {
        let s = string_from(b"ab", 200).unwrap();
        assert_eq!(s.len(), 200);
        assert!(s.bytes().all(|c| c == b'a' || c == b'b'));
        assert!(s.contains('a') && s.contains('b'));
    }
}
