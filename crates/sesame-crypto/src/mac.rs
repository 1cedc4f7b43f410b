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
        self.tag(parts).as_ref().to_vec()
    }

    /// Compares in constant time.
    pub fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        let expected = self.tag(parts);
        // Every byte is compared, whichever differs first.
        expected.as_ref().len() == tag.len() && expected.as_ref().iter().zip(tag).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
    }

    /// The parts are fed to the MAC as they are, each after its length: an audit event is MACed
    /// twice on its way in (journal and chain), and copying it into a frame first cost a copy
    /// and an allocation each time.
    fn tag(&self, parts: &[&[u8]]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.0);
        for p in parts {
            ctx.update(&(p.len() as u64).to_be_bytes());
            ctx.update(p);
        }
        ctx.sign()
    }
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
        assert!(!k.verify(&[b"ab", b"c"], &tag[..31]), "a cut tag does not verify");
    }

    #[test]
    fn the_tag_is_hmac_sha256_of_the_length_prefixed_parts() {
        // Stored trails and journals were sealed over the framed bytes: the tag must not change.
        let material = KeyMaterial::generate().unwrap();
        let k = MacKey::new(&material);
        let parts: [&[u8]; 3] = [b"journal", b"", b"event body"];
        let mut framed = Vec::new();
        for p in parts {
            framed.extend_from_slice(&(p.len() as u64).to_be_bytes());
            framed.extend_from_slice(p);
        }
        let expected = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, material.expose_secret()), &framed);
        assert_eq!(k.sign(&parts), expected.as_ref());
    }
}
