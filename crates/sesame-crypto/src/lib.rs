//! Sesame's cryptography, synchronous and free of I/O except for the root key file.
//!
//! It owns: key material newtypes that zeroize and never print ([`KeyMaterial`]); the
//! AES-256-GCM envelope used for every sealed value ([`aead`]); the ciphertext blob format that
//! names its key and key version ([`blob`], documented in `docs/ciphertext-format.md`); the
//! ACS3-HMAC-SHA256 and HMAC-SHA1 request signatures ([`sign`]); and randomness for ids,
//! nonces and passwords ([`random`]). All primitives come from `ring`; nothing here is
//! hand-written cryptography.

pub mod aead;
pub mod blob;
pub mod keys;
pub mod mac;
pub mod random;
pub mod sign;

pub use keys::{KeyMaterial, RootKey};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// Authentication failed or the input is malformed. Deliberately says nothing more.
    #[error("decryption failed")]
    Decrypt,
    #[error("malformed ciphertext blob: {0}")]
    MalformedBlob(&'static str),
    #[error("the operating system's random number generator failed")]
    Rng,
    #[error("invalid key length")]
    KeyLength,
}

pub(crate) const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";
pub(crate) const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = vec![0; bytes.len() * 2];
    write_hex(&mut out, bytes, HEX_LOWER);
    String::from_utf8(out).unwrap_or_default()
}

/// Writes `bytes` into `out` as two hex digits each from `digits` (lower- or upper-case), as far
/// as `out` has room. Into bytes, then one string: a `String::push` per digit cost ten times as
/// many instructions.
pub(crate) fn write_hex(out: &mut [u8], bytes: &[u8], digits: &[u8; 16]) {
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = digits[usize::from(b >> 4)];
        pair[1] = digits[usize::from(b & 0x0f)];
    }
}

/// Text this crate wrote as ASCII bytes (hex digits, dashes), which is always UTF-8.
pub(crate) fn ascii(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes hex (either case); `None` on odd length or a non-hex digit.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks_exact(2).map(|p| Some(hex_digit(p[0])? << 4 | hex_digit(p[1])?)).collect()
}

/// Decodes hex (either case) into `out`, without allocating; `false` unless `s` is exactly
/// `out`'s bytes in hex.
pub fn unhex_into(s: &str, out: &mut [u8]) -> bool {
    if s.len() != 2 * out.len() {
        return false;
    }
    for (o, p) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        match (hex_digit(p[0]), hex_digit(p[1])) {
            (Some(h), Some(l)) => *o = h << 4 | l,
            _ => return false,
        }
    }
    true
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

/// Whether `hex` (either case) is the SHA-256 of `data`, without writing the digest out.
pub fn is_sha256_hex_of(hex: &str, data: &[u8]) -> bool {
    let mut claimed = [0u8; 32];
    unhex_into(hex, &mut claimed) && ring::digest::digest(&ring::digest::SHA256, data).as_ref() == claimed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        assert_eq!(hex(&[0, 0xab, 0xff]), "00abff");
        assert_eq!(unhex("00ABff"), Some(vec![0, 0xab, 0xff]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
        let mut two = [0u8; 2];
        assert!(unhex_into("0aFF", &mut two) && two == [0x0a, 0xff]);
        assert!(!unhex_into("0aF", &mut two) && !unhex_into("0aFF00", &mut two) && !unhex_into("0azz", &mut two));
    }

    #[test]
    fn sha256_of_empty_matches_the_sdk_constant() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert!(is_sha256_hex_of("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", b""));
        assert!(!is_sha256_hex_of("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", b"x"));
        assert!(!is_sha256_hex_of("e3b0", b""));
    }
}
