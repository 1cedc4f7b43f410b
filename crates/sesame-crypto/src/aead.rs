//! AES-256-GCM with a random 96-bit nonce per message: `nonce || ciphertext || tag`.

use crate::{CryptoError, KeyMaterial, random};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

pub const TAG_LEN: usize = 16;
pub const OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// A key prepared for AES-256-GCM: its schedule is computed once. Keys used again and again
/// (a CMK version's material, kept in a cache) are kept in this form; preparing one costs about
/// as much as opening a short message with it.
pub struct Cipher(LessSafeKey);

impl Cipher {
    pub fn new(key: &KeyMaterial) -> Result<Cipher, CryptoError> {
        let unbound = UnboundKey::new(&AES_256_GCM, key.expose_secret()).map_err(|_| CryptoError::KeyLength)?;
        Ok(Cipher(LessSafeKey::new(unbound)))
    }

    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        random::fill(&mut nonce)?;
        let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = self
            .0
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut out[NONCE_LEN..])
            .map_err(|_| CryptoError::Decrypt)?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < OVERHEAD {
            return Err(CryptoError::Decrypt);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Decrypt)?;
        let mut buf = body.to_vec();
        let plain_len = self.0.open_in_place(nonce, Aad::from(aad), &mut buf).map_err(|_| CryptoError::Decrypt)?.len();
        buf.truncate(plain_len);
        Ok(buf)
    }
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher([redacted])")
    }
}

pub fn seal(key: &KeyMaterial, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    Cipher::new(key)?.seal(aad, plaintext)
}

pub fn open(key: &KeyMaterial, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    Cipher::new(key)?.open(aad, sealed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn open_of_seal_is_identity(data in proptest::collection::vec(any::<u8>(), 0..512), aad in proptest::collection::vec(any::<u8>(), 0..64)) {
            let k = KeyMaterial::generate().unwrap();
            let sealed = seal(&k, &aad, &data).unwrap();
            prop_assert_eq!(open(&k, &aad, &sealed).unwrap(), data);
        }

        #[test]
        fn any_flipped_bit_fails_to_open(data in proptest::collection::vec(any::<u8>(), 0..128), pos in any::<usize>(), bit in 0u8..8) {
            let k = KeyMaterial::generate().unwrap();
            let mut sealed = seal(&k, b"aad", &data).unwrap();
            let i = pos % sealed.len();
            sealed[i] ^= 1 << bit;
            prop_assert_eq!(open(&k, b"aad", &sealed), Err(CryptoError::Decrypt));
        }

        #[test]
        fn truncated_input_fails_without_panic(data in proptest::collection::vec(any::<u8>(), 0..64), cut in any::<usize>()) {
            let k = KeyMaterial::generate().unwrap();
            let sealed = seal(&k, b"", &data).unwrap();
            let cut = cut % sealed.len();
            prop_assert!(open(&k, b"", &sealed[..cut]).is_err());
        }
    }

    #[test]
    fn a_prepared_key_opens_what_the_material_sealed_and_back() {
        let k = KeyMaterial::generate().unwrap();
        let cipher = Cipher::new(&k).unwrap();
        assert_eq!(cipher.open(b"a", &seal(&k, b"a", b"x").unwrap()).unwrap(), b"x");
        assert_eq!(open(&k, b"a", &cipher.seal(b"a", b"y").unwrap()).unwrap(), b"y");
        assert_eq!(format!("{cipher:?}"), "Cipher([redacted])");
    }

    #[test]
    fn wrong_aad_fails() {
        let k = KeyMaterial::generate().unwrap();
        let sealed = seal(&k, b"a", b"x").unwrap();
        assert!(open(&k, b"b", &sealed).is_err());
    }
}
