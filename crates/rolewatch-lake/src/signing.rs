//! Optional Ed25519 signatures on manifests.
//!
//! The writer signs each manifest's [`signed_bytes`](crate::Manifest::signed_bytes); since every
//! manifest carries the previous one's hash, each signature also vouches for the whole chain
//! before it. A key is 32 bytes (the Ed25519 seed), written as 64 hex characters in a file or an
//! environment variable; its id is the first 8 bytes of the SHA-256 of the public key, in hex.

use std::fmt;
use std::path::PathBuf;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::LakeError;

/// The only signature algorithm manifests use.
pub const SIGNATURE_ALGORITHM: &str = "ed25519";

/// A manifest's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestSignature {
    /// Always [`SIGNATURE_ALGORITHM`].
    pub algorithm: String,
    /// The id of the public key that verifies it (see [`key_id`]).
    pub key_id: String,
    /// The 64-byte signature, hex.
    pub value: String,
}

/// Where the signing key comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A file holding the key as 64 hex characters (whitespace around it is ignored).
    File(PathBuf),
    /// An environment variable, by name, holding the key as 64 hex characters.
    Env(String),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(formatter, "File({})", path.display()),
            Self::Env(name) => write!(formatter, "Env({name})"),
        }
    }
}

/// The id of a public key: hex of the first 8 bytes of its SHA-256.
pub fn key_id(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    hex::encode(digest.get(..8).unwrap_or_default())
}

fn decode_32(text: &str, what: &str) -> Result<[u8; 32], LakeError> {
    let bytes = hex::decode(text.trim())
        .map_err(|error| LakeError::Key { reason: format!("{what} is not hex: {error}") })?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| LakeError::Key { reason: format!("{what} must be 32 bytes (64 hex characters)") })
}

/// Reads a public key written as 64 hex characters.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, LakeError> {
    let bytes = decode_32(text, "public key")?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|error| LakeError::Key { reason: format!("bad public key: {error}") })
}

/// Signs manifests. Its `Debug` shows the key id only.
#[derive(Clone)]
pub struct ManifestSigner {
    key: SigningKey,
    key_id: String,
}

impl fmt::Debug for ManifestSigner {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("ManifestSigner").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

impl ManifestSigner {
    /// A signer from a 32-byte Ed25519 seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(seed);
        let key_id = key_id(&key.verifying_key());
        Self { key, key_id }
    }

    /// A signer from the key written as 64 hex characters.
    pub fn from_hex(text: &str) -> Result<Self, LakeError> {
        Ok(Self::from_seed(&decode_32(text, "signing key")?))
    }

    /// Loads the key from a file or an environment variable. Errors never contain the key.
    pub fn load(source: &KeySource) -> Result<Self, LakeError> {
        let text = match source {
            KeySource::File(path) => std::fs::read_to_string(path).map_err(|error| LakeError::Key {
                reason: format!("cannot read signing key file {}: {error}", path.display()),
            })?,
            KeySource::Env(name) => std::env::var(name).map_err(|_| LakeError::Key {
                reason: format!("environment variable {name} is not set (or not UTF-8)"),
            })?,
        };
        Self::from_hex(&text)
    }

    /// The public key that verifies this signer's signatures.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The public key in hex, as `rolewatch verify --trusted-key` takes it.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    /// The public key's id.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Signs `bytes`.
    pub(crate) fn sign(&self, bytes: &[u8]) -> ManifestSignature {
        ManifestSignature {
            algorithm: SIGNATURE_ALGORITHM.to_owned(),
            key_id: self.key_id.clone(),
            value: hex::encode(self.key.sign(bytes).to_bytes()),
        }
    }
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SignatureFault {
    /// No trusted key has this id.
    UnknownKey(String),
    /// The signature is malformed or does not match the content.
    Invalid(String),
}

/// Checks `signature` over `bytes` against the trusted keys.
pub(crate) fn check_signature(
    signature: &ManifestSignature,
    bytes: &[u8],
    trusted: &[VerifyingKey],
) -> Result<(), SignatureFault> {
    if signature.algorithm != SIGNATURE_ALGORITHM {
        return Err(SignatureFault::Invalid(format!("unknown algorithm {:?}", signature.algorithm)));
    }
    let Some(key) = trusted.iter().find(|key| key_id(key) == signature.key_id) else {
        return Err(SignatureFault::UnknownKey(signature.key_id.clone()));
    };
    let raw = hex::decode(&signature.value).map_err(|error| SignatureFault::Invalid(error.to_string()))?;
    // One spelling only: upper-case hex would decode to the same signature, so the manifest's
    // bytes (and hash) could change while its signature still verified.
    if hex::encode(&raw) != signature.value {
        return Err(SignatureFault::Invalid("signature is not lower-case hex".to_owned()));
    }
    let signature =
        Signature::from_slice(&raw).map_err(|error| SignatureFault::Invalid(error.to_string()))?;
    key.verify(bytes, &signature).map_err(|_| SignatureFault::Invalid("signature does not match".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_with_the_right_key_and_content() {
        let signer = ManifestSigner::from_hex(&"11".repeat(32)).unwrap();
        let other = ManifestSigner::from_seed(&[2; 32]);
        let signature = signer.sign(b"manifest");
        let trusted = [signer.verifying_key()];
        assert_eq!(check_signature(&signature, b"manifest", &trusted), Ok(()));
        assert!(matches!(
            check_signature(&signature, b"manifesT", &trusted),
            Err(SignatureFault::Invalid(_))
        ));
        assert!(matches!(
            check_signature(&signature, b"manifest", &[other.verifying_key()]),
            Err(SignatureFault::UnknownKey(_))
        ));
        let public = hex::encode(signer.verifying_key().as_bytes());
        assert_eq!(parse_public_key(&public).unwrap(), signer.verifying_key());
        assert!(ManifestSigner::from_hex("abc").is_err());
        assert!(!format!("{signer:?}").contains(&"11".repeat(4)), "Debug must not show the key");
    }

    /// A signed manifest as the lake stores it.
    fn signed_manifest(signer: &ManifestSigner) -> Vec<u8> {
        let mut manifest = crate::Manifest {
            format: crate::MANIFEST_FORMAT.into(),
            seq: 3,
            kind: crate::ManifestKind::Data,
            created_at: "2026-11-27T03:00:00Z".parse().unwrap(),
            previous: Some(crate::PreviousManifest { seq: 2, sha256: "ab".repeat(32) }),
            files: vec![crate::ManifestFile {
                key: "events/date=2026-11-27/hour=03/file-00-1-9.parquet".into(),
                kind: crate::FileKind::Events,
                sha256: "cd".repeat(32),
                bytes: 4096,
                rows: 9,
            }],
            positions: std::collections::BTreeMap::from([(
                crate::StreamId::for_kafka("audit", 0),
                crate::CoveredRange::Kafka {
                    topic: "audit".into(),
                    partition: 0,
                    first_offset: 1,
                    last_offset: 9,
                },
            )]),
            incidents: vec![],
            signature: None,
        };
        manifest.signature = Some(signer.sign(&manifest.signed_bytes().unwrap()));
        manifest.to_bytes().unwrap()
    }

    /// Tamper evidence, at every byte: flipping its lowest bit (a neighbouring character) or
    /// bit 5 (upper/lower case) leaves no manifest, or one that says the same thing
    /// (whitespace), or one that fails its signature. (This found that upper-case signature hex
    /// verified while changing the manifest's bytes.) Two bits, not eight: Ed25519 is slow in
    /// debug builds.
    #[test]
    fn every_flipped_bit_of_a_signed_manifest_is_caught() {
        let signer = ManifestSigner::from_seed(&[3; 32]);
        let original_bytes = signed_manifest(&signer);
        let original = crate::Manifest::from_bytes("k", &original_bytes).unwrap();
        let trusted = [signer.verifying_key()];
        let mut checked = 0;
        for index in 0..original_bytes.len() {
            for bit in [0, 5] {
                let mut tampered = original_bytes.clone();
                tampered[index] ^= 1 << bit;
                let Ok(manifest) = crate::Manifest::from_bytes("k", &tampered) else { continue };
                if manifest == original {
                    continue;
                }
                checked += 1;
                let signature = manifest.signature.as_ref().unwrap();
                let verdict = check_signature(signature, &manifest.signed_bytes().unwrap(), &trusted);
                assert!(verdict.is_err(), "flipping bit {bit} of byte {index} went unnoticed");
            }
        }
        assert!(checked > 100, "only {checked} flips still parsed: the test exercises nothing");
    }
}
