//! Keyed MACs over several parts (HMAC-SHA256), for the audit chain. Each part is length-
//! prefixed, so moving bytes between parts changes the MAC.

use crate::KeyMaterial;
use ring::hmac;

pub struct MacKey(hmac::Key);

impl MacKey {
    pub fn new(material: &KeyMaterial) -> MacKey {
        MacKey(hmac::Key::new(hmac::HMAC_SHA256, material.expose_secret()))
    }

    pub fn sign(&self, parts: &[&[u8]]) -> Vec<u8> {
        hmac::sign(&self.0, &frame(parts)).as_ref().to_vec()
    }

    /// Compares in constant time.
    pub fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        hmac::verify(&self.0, &frame(parts), tag).is_ok()
    }
}

fn frame(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 8).sum());
    for p in parts {
        out.extend_from_slice(&(p.len() as u64).to_be_bytes());
        out.extend_from_slice(p);
    }
    out
}

impl std::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MacKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_framed_and_keys_matter() {
        let k = MacKey::new(&KeyMaterial::generate().unwrap());
        let tag = k.sign(&[b"ab", b"c"]);
        assert!(k.verify(&[b"ab", b"c"], &tag));
        assert!(!k.verify(&[b"a", b"bc"], &tag), "moving a byte between parts changes the MAC");
        let other = MacKey::new(&KeyMaterial::generate().unwrap());
        assert!(!other.verify(&[b"ab", b"c"], &tag));
    }
}
