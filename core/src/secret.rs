//! Secrets at rest (chat bot tokens): ChaCha20-Poly1305 with a key from LINEUP_SECRET_KEY.
//! The stored form is nonce ‖ ciphertext; the workspace id is bound as associated data so a
//! token cannot be copied onto another installation's row.

use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload, rand_core::RngCore};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("LINEUP_SECRET_KEY must be 32 bytes written as 64 hex characters")]
    BadKey,
    #[error("a stored secret could not be decrypted (wrong LINEUP_SECRET_KEY or tampered row)")]
    Undecryptable,
}

const NONCE_LEN: usize = 12;
/// Marks a sealed value in a text column; the version leaves room for another scheme.
const SEALED_TEXT_PREFIX: &str = "sealed:v1:";

impl SecretBox {
    pub fn from_hex(key: &str) -> Result<Self, SecretError> {
        let bytes = hex::decode(key.trim()).map_err(|_| SecretError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SecretError::BadKey)?;
        Ok(Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        })
    }

    pub fn generate_hex_key() -> String {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        hex::encode(key)
    }

    pub fn seal(&self, plaintext: &str, context: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: context.as_bytes(),
        };
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .expect("encryption with a valid key cannot fail");
        [nonce.as_slice(), &sealed].concat()
    }

    pub fn open(&self, stored: &[u8], context: &str) -> Result<String, SecretError> {
        if stored.len() < NONCE_LEN {
            return Err(SecretError::Undecryptable);
        }
        let (nonce, sealed) = stored.split_at(NONCE_LEN);
        let payload = Payload {
            msg: sealed,
            aad: context.as_bytes(),
        };
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| SecretError::Undecryptable)?;
        String::from_utf8(plain).map_err(|_| SecretError::Undecryptable)
    }

    /// Sealed for a text column: `sealed:v1:` + base64(nonce ‖ ciphertext).
    pub fn seal_text(&self, plaintext: &str, context: &str) -> String {
        use base64::Engine;
        let sealed = self.seal(plaintext, context);
        format!(
            "{SEALED_TEXT_PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(sealed)
        )
    }

    pub fn open_text(&self, stored: &str, context: &str) -> Result<String, SecretError> {
        use base64::Engine;
        let sealed = stored
            .strip_prefix(SEALED_TEXT_PREFIX)
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .ok_or(SecretError::Undecryptable)?;
        self.open(&sealed, context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_tampering() {
        let secrets = SecretBox::from_hex(&SecretBox::generate_hex_key()).unwrap();
        let sealed = secrets.seal("xoxb-123", "slack:T1");
        assert_eq!(secrets.open(&sealed, "slack:T1").unwrap(), "xoxb-123");
        assert_eq!(
            secrets.open(&sealed, "slack:T2"),
            Err(SecretError::Undecryptable)
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(
            secrets.open(&tampered, "slack:T1"),
            Err(SecretError::Undecryptable)
        );
        assert!(!String::from_utf8_lossy(&sealed).contains("xoxb"));
        assert_eq!(SecretBox::from_hex("abcd").err(), Some(SecretError::BadKey));
        let text = secrets.seal_text("cs-1", "provider:T1");
        assert!(text.starts_with("sealed:v1:") && !text.contains("cs-1"));
        assert_eq!(secrets.open_text(&text, "provider:T1").unwrap(), "cs-1");
        assert!(secrets.open_text(&text, "provider:T2").is_err());
        assert!(secrets.open_text("cs-1", "provider:T1").is_err());
    }
}
