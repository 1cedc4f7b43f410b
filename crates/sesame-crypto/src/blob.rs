//! The ciphertext blob returned by Encrypt and GenerateDataKey (see
//! `docs/ciphertext-format.md`):
//!
//! ```text
//! "SKB" 0x01 | u8 len | key id | u8 len | key version id | 12-byte nonce | ciphertext | 16-byte tag
//! ```
//!
//! The header (everything before the nonce) and the canonical encryption context are the
//! associated data, so neither the key reference nor the context can be changed without the
//! blob failing to open.

use crate::CryptoError;
use crate::aead::{self, Cipher};

const MAGIC: &[u8; 3] = b"SKB";
const FORMAT_V1: u8 = 1;

/// What a blob says about itself before it is opened.
#[derive(Debug, PartialEq, Eq)]
pub struct BlobHeader<'a> {
    pub key_id: &'a str,
    pub key_version_id: &'a str,
    header_len: usize,
}

fn push_field(out: &mut Vec<u8>, field: &str) -> Result<(), CryptoError> {
    let len = u8::try_from(field.len()).map_err(|_| CryptoError::MalformedBlob("identifier longer than 255 bytes"))?;
    if len == 0 {
        return Err(CryptoError::MalformedBlob("empty identifier"));
    }
    out.push(len);
    out.extend_from_slice(field.as_bytes());
    Ok(())
}

fn read_field<'a>(blob: &'a [u8], pos: &mut usize) -> Result<&'a str, CryptoError> {
    let len = usize::from(*blob.get(*pos).ok_or(CryptoError::MalformedBlob("truncated header"))?);
    let start = *pos + 1;
    let bytes = blob.get(start..start + len).ok_or(CryptoError::MalformedBlob("truncated header"))?;
    if len == 0 || !bytes.is_ascii() {
        return Err(CryptoError::MalformedBlob("bad identifier"));
    }
    *pos = start + len;
    std::str::from_utf8(bytes).map_err(|_| CryptoError::MalformedBlob("bad identifier"))
}

/// Reads the header of a blob without opening it.
pub fn parse(blob: &[u8]) -> Result<BlobHeader<'_>, CryptoError> {
    if blob.get(..3) != Some(MAGIC.as_slice()) {
        return Err(CryptoError::MalformedBlob("not a Sesame ciphertext"));
    }
    if blob.get(3) != Some(&FORMAT_V1) {
        return Err(CryptoError::MalformedBlob("unknown format version"));
    }
    let mut pos = 4;
    let key_id = read_field(blob, &mut pos)?;
    let key_version_id = read_field(blob, &mut pos)?;
    if blob.len() < pos + aead::OVERHEAD {
        return Err(CryptoError::MalformedBlob("truncated body"));
    }
    Ok(BlobHeader { key_id, key_version_id, header_len: pos })
}

fn aad(header: &[u8], context: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(header.len() + context.len());
    a.extend_from_slice(header);
    a.extend_from_slice(context);
    a
}

pub fn seal(key: &Cipher, key_id: &str, key_version_id: &str, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut out = Vec::with_capacity(6 + key_id.len() + key_version_id.len() + aead::OVERHEAD + plaintext.len());
    out.extend_from_slice(MAGIC);
    out.push(FORMAT_V1);
    push_field(&mut out, key_id)?;
    push_field(&mut out, key_version_id)?;
    let sealed = key.seal(&aad(&out, context), plaintext)?;
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Opens a blob whose header was read with [`parse`], with the key version it names.
pub fn open(key: &Cipher, blob: &[u8], header: &BlobHeader<'_>, context: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let (head, body) = blob.split_at_checked(header.header_len).ok_or(CryptoError::Decrypt)?;
    key.open(&aad(head, context), body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn blobs_round_trip_and_name_their_key(data in proptest::collection::vec(any::<u8>(), 0..256), ctx in "[a-z]{0,16}") {
            let k = Cipher::new(&crate::KeyMaterial::generate().unwrap()).unwrap();
            let blob = seal(&k, "key-abc", "ver-1", ctx.as_bytes(), &data).unwrap();
            let h = parse(&blob).unwrap();
            prop_assert_eq!(h.key_id, "key-abc");
            prop_assert_eq!(h.key_version_id, "ver-1");
            prop_assert_eq!(open(&k, &blob, &h, ctx.as_bytes()).unwrap(), data);
        }

        #[test]
        fn any_flipped_byte_fails_without_panic(data in proptest::collection::vec(any::<u8>(), 0..64), pos in any::<usize>(), bit in 0u8..8) {
            let k = Cipher::new(&crate::KeyMaterial::generate().unwrap()).unwrap();
            let mut blob = seal(&k, "key-abc", "ver-1", b"", &data).unwrap();
            let i = pos % blob.len();
            blob[i] ^= 1 << bit;
            // Either the header no longer parses, or it names another key (which the caller
            // would not find), or opening fails.
            if let Ok(h) = parse(&blob).map_err(drop).and_then(|h| if h.key_id == "key-abc" && h.key_version_id == "ver-1" { Ok(h) } else { Err(()) }) {
                prop_assert!(open(&k, &blob, &h, b"").is_err());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(junk in proptest::collection::vec(any::<u8>(), 0..128)) {
            let k = Cipher::new(&crate::KeyMaterial::generate().unwrap()).unwrap();
            if let Ok(h) = parse(&junk) {
                let _ = open(&k, &junk, &h, b"");
            }
        }
    }

    #[test]
    fn context_mismatch_fails() {
        let k = Cipher::new(&crate::KeyMaterial::generate().unwrap()).unwrap();
        let blob = seal(&k, "k", "v", br#"{"a":"1"}"#, b"secret").unwrap();
        let h = parse(&blob).unwrap();
        assert_eq!(open(&k, &blob, &h, br#"{"a":"2"}"#), Err(CryptoError::Decrypt));
        assert_eq!(open(&k, &blob, &h, b""), Err(CryptoError::Decrypt));
    }

    #[test]
    fn header_fields_are_bounded() {
        let k = Cipher::new(&crate::KeyMaterial::generate().unwrap()).unwrap();
        assert!(seal(&k, &"k".repeat(256), "v", b"", b"").is_err());
        assert!(seal(&k, "", "v", b"", b"").is_err());
        assert!(parse(b"SKB\x02").is_err());
        assert!(parse(b"XYZ\x01").is_err());
    }
}
