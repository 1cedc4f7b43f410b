//! Key material. Bytes are private, zeroed on drop, never printed; leaving secrecy is the
//! named call `expose_secret`.

use crate::{CryptoError, aead, random};
use std::fmt;
use std::io::Write;
use std::path::Path;
use zeroize::{Zeroize, ZeroizeOnDrop};

pub const KEY_LEN: usize = 32;

/// 256-bit symmetric key material (a CMK version, a data key, the root key).
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct KeyMaterial([u8; KEY_LEN]);

impl KeyMaterial {
    pub fn generate() -> Result<KeyMaterial, CryptoError> {
        let mut k = [0u8; KEY_LEN];
        random::fill(&mut k)?;
        Ok(KeyMaterial(k))
    }

    pub fn from_slice(b: &[u8]) -> Result<KeyMaterial, CryptoError> {
        let arr: [u8; KEY_LEN] = b.try_into().map_err(|_| CryptoError::KeyLength)?;
        Ok(KeyMaterial(arr))
    }

    pub fn expose_secret(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyMaterial([redacted])")
    }
}

/// The root key: wraps every CMK version and every access key secret. Loaded from a key file
/// written with mode 0600.
pub struct RootKey(KeyMaterial);

const ROOT_FILE_HEADER: &str = "sesame-root-key-v1";

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RootKey([redacted])")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RootKeyError {
    #[error("cannot read or write the root key file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("the root key file {0} is not a Sesame root key (expected '{ROOT_FILE_HEADER}' and 64 hex digits)")]
    Format(String),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl RootKey {
    pub fn from_material(k: KeyMaterial) -> RootKey {
        RootKey(k)
    }

    /// Loads the root key file, or generates one (mode 0600) when it does not exist.
    /// Returns the key and whether it was generated.
    pub fn load_or_generate(path: &Path) -> Result<(RootKey, bool), RootKeyError> {
        let io = |source| RootKeyError::Io { path: path.display().to_string(), source };
        match std::fs::read_to_string(path) {
            Ok(text) => Ok((Self::parse(&text).ok_or_else(|| RootKeyError::Format(path.display().to_string()))?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = KeyMaterial::generate()?;
                let mut text = format!("{ROOT_FILE_HEADER}\n{}\n", crate::hex(key.expose_secret()));
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                let mut f = opts.open(path).map_err(io)?;
                let written = f.write_all(text.as_bytes()).and_then(|_| f.sync_all());
                text.zeroize();
                written.map_err(io)?;
                Ok((RootKey(key), true))
            }
            Err(e) => Err(io(e)),
        }
    }

    fn parse(text: &str) -> Option<RootKey> {
        let mut lines = text.lines();
        if lines.next()?.trim() != ROOT_FILE_HEADER {
            return None;
        }
        let mut bytes = crate::unhex(lines.next()?.trim())?;
        let key = KeyMaterial::from_slice(&bytes).ok();
        bytes.zeroize();
        key.map(RootKey)
    }

    /// Seals `plaintext` under the root key, bound to `context` (e.g. "cmk:key-…:version").
    pub fn wrap(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        aead::seal(&self.0, context, plaintext)
    }

    pub fn unwrap_key(&self, context: &[u8], sealed: &[u8]) -> Result<KeyMaterial, CryptoError> {
        let mut plain = aead::open(&self.0, context, sealed)?;
        let key = KeyMaterial::from_slice(&plain);
        plain.zeroize();
        key
    }

    pub fn unwrap_bytes(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        aead::open(&self.0, context, sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_key_bytes() {
        let k = KeyMaterial::from_slice(&[0xAB; 32]).unwrap();
        let d = format!("{k:?} {:?}", RootKey::from_material(KeyMaterial::from_slice(&[0xAB; 32]).unwrap()));
        assert!(!d.to_lowercase().contains("ab"), "{d}");
    }

    #[test]
    fn root_key_file_is_generated_once_with_mode_0600() {
        let dir = std::env::temp_dir().join(format!("sesame-rootkey-{}", crate::random::id_suffix(12).unwrap()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("root.key");
        let (k1, generated) = RootKey::load_or_generate(&path).unwrap();
        assert!(generated);
        let (k2, generated) = RootKey::load_or_generate(&path).unwrap();
        assert!(!generated);
        let sealed = k1.wrap(b"ctx", b"hello").unwrap();
        assert_eq!(k2.unwrap_bytes(b"ctx", &sealed).unwrap(), b"hello");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(&path, "garbage").unwrap();
        assert!(matches!(RootKey::load_or_generate(&path), Err(RootKeyError::Format(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn wrapped_keys_are_bound_to_their_context() {
        let root = RootKey::from_material(KeyMaterial::generate().unwrap());
        let k = KeyMaterial::generate().unwrap();
        let sealed = root.wrap(b"cmk:a:1", k.expose_secret()).unwrap();
        assert_eq!(root.unwrap_key(b"cmk:a:1", &sealed).unwrap().expose_secret(), k.expose_secret());
        assert!(root.unwrap_key(b"cmk:b:1", &sealed).is_err());
    }
}
