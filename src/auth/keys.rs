//! RSA signing keys: loading PEM files, the RFC 7638 `kid`, the JWKS, the
//! development key and `tessera keygen`.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKey, PublicKeyComponents};
use aws_lc_rs::signature::KeyPair as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// A key file that cannot be used, naming the path and the reason.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {path}: {reason}")]
pub struct KeyError {
    /// The variable (or command) the path came from.
    pub variable: &'static str,
    /// The offending file.
    pub path: String,
    /// What is wrong with it (never its contents).
    pub reason: String,
}

impl KeyError {
    fn new(variable: &'static str, path: &Path, reason: impl Into<String>) -> Self {
        Self {
            variable,
            path: path.display().to_string(),
            reason: reason.into(),
        }
    }
}

/// One public key as published in the JWKS (RFC 7517 / RFC 7518 §6.3).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Jwk {
    /// Always `RSA`.
    pub kty: &'static str,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: &'static str,
    /// Always `RS256`.
    pub alg: &'static str,
    /// RFC 7638 SHA-256 thumbprint.
    pub kid: String,
    /// Modulus, base64url.
    pub n: String,
    /// Public exponent, base64url.
    pub e: String,
}

/// The JWKS document served at `/.well-known/jwks.json`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Jwks {
    /// Current key first, then previous ones.
    pub keys: Vec<Jwk>,
}

/// The signing key and every key tokens may be verified with.
pub struct KeySet {
    /// HKDF pseudo-random key extracted from the private key's DER bytes:
    /// the source of keys derived from the signing key.
    derivation: aws_lc_rs::hkdf::Prk,
    /// The private key, parsed (and checked by aws-lc) once at startup:
    /// signing with it costs one RSA operation and no DER parse.
    signing_key: KeyPair,
    encoding_key: EncodingKey,
    current_kid: String,
    decoding_keys: HashMap<String, DecodingKey>,
    jwks: Jwks,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("KeySet")
            .field("current_kid", &self.current_kid)
            .field("kids", &self.decoding_keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl KeySet {
    /// Loads the private key (or the dev key) and the previous public keys.
    pub fn load(
        private_key_path: Option<&Path>,
        previous_public_key_paths: &[PathBuf],
    ) -> Result<Self, KeyError> {
        let (path, variable) = match private_key_path {
            Some(path) => (path.to_path_buf(), "JWT_PRIVATE_KEY_PATH"),
            None => (ensure_dev_key()?, "JWT_PRIVATE_KEY_PATH (dev key)"),
        };
        let pem_bytes = fs::read(&path)
            .map_err(|err| KeyError::new(variable, &path, format!("cannot read: {err}")))?;
        let mut set = Self::from_private_pem(&pem_bytes)
            .map_err(|reason| KeyError::new(variable, &path, reason))?;
        for previous in previous_public_key_paths {
            let bytes = fs::read(previous).map_err(|err| {
                KeyError::new(
                    "JWT_PREVIOUS_PUBLIC_KEY_PATHS",
                    previous,
                    format!("cannot read: {err}"),
                )
            })?;
            let public = parse_public_pem(&bytes).map_err(|reason| {
                KeyError::new("JWT_PREVIOUS_PUBLIC_KEY_PATHS", previous, reason)
            })?;
            set.add_verification_key(&public);
        }
        Ok(set)
    }

    /// Builds a key set from PEM private key bytes (PKCS#1 or PKCS#8).
    pub fn from_private_pem(pem_bytes: &[u8]) -> Result<Self, String> {
        let key_pair = parse_private_pem(pem_bytes)?;
        let der = pem::parse(pem_bytes).map_err(|_| "not a PEM file".to_owned())?;
        let derivation = aws_lc_rs::hkdf::Salt::new(
            aws_lc_rs::hkdf::HKDF_SHA256,
            b"tessera/signing-key-derivation/v1",
        )
        .extract(der.contents());
        let encoding_key = EncodingKey::from_rsa_pem(pem_bytes)
            .map_err(|err| format!("not a usable RSA private key: {err}"))?;
        let public = PublicKeyComponents::<Vec<u8>>::from(key_pair.public_key());
        let jwk = jwk_for(&public);
        let mut set = Self {
            derivation,
            signing_key: key_pair,
            encoding_key,
            current_kid: jwk.kid.clone(),
            decoding_keys: HashMap::new(),
            jwks: Jwks { keys: Vec::new() },
        };
        set.add_verification_key(&public);
        Ok(set)
    }

    fn add_verification_key(&mut self, public: &PublicKeyComponents<Vec<u8>>) {
        let jwk = jwk_for(public);
        if self.decoding_keys.contains_key(&jwk.kid) {
            return;
        }
        self.decoding_keys.insert(
            jwk.kid.clone(),
            DecodingKey::from_rsa_raw_components(&public.n, &public.e),
        );
        self.jwks.keys.push(jwk);
    }

    /// The key new tokens are signed with, parsed once; see
    /// [`crate::auth::tokens::TokenService::issue`].
    pub fn signing_key(&self) -> &KeyPair {
        &self.signing_key
    }

    /// The same key in jsonwebtoken's form, which re-parses its DER on
    /// every `encode`; kept for tests that compare the two signers.
    pub fn encoding_key(&self) -> &EncodingKey {
        &self.encoding_key
    }

    /// The `kid` of the signing key.
    pub fn current_kid(&self) -> &str {
        &self.current_kid
    }

    /// The verification key for a `kid`, if it is one of ours.
    pub fn decoding_key(&self, kid: &str) -> Option<&DecodingKey> {
        self.decoding_keys.get(kid)
    }

    /// The public JWKS document.
    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }

    /// A 256-bit key derived from the private key with HKDF-SHA-256 under
    /// `purpose`: a fallback for deployments that configure no key of their
    /// own for that purpose (it changes when the signing key does).
    pub fn derive_key(&self, purpose: &[u8]) -> Option<[u8; 32]> {
        let info = [purpose];
        let okm = self
            .derivation
            .expand(&info, aws_lc_rs::hkdf::HKDF_SHA256)
            .ok()?;
        let mut key = [0u8; 32];
        okm.fill(&mut key).ok()?;
        Some(key)
    }
}

/// Parses a PEM RSA private key and enforces the minimum size.
fn parse_private_pem(pem_bytes: &[u8]) -> Result<KeyPair, String> {
    let block = pem::parse(pem_bytes).map_err(|_| "not a PEM file".to_owned())?;
    let key_pair = match block.tag() {
        "RSA PRIVATE KEY" => KeyPair::from_der(block.contents()).map_err(describe_rejection)?,
        "PRIVATE KEY" => KeyPair::from_pkcs8(block.contents()).map_err(describe_rejection)?,
        other => return Err(format!("PEM block is {other:?}, not an RSA private key")),
    };
    let bits = key_pair.public_modulus_len() * 8;
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "RSA key has {bits} bits; at least {MIN_RSA_BITS} are required"
        ));
    }
    Ok(key_pair)
}

/// Turns aws-lc's key rejection into a reason a person can act on.
fn describe_rejection(err: aws_lc_rs::error::KeyRejected) -> String {
    match err.description_() {
        "TooSmall" => format!("RSA key is smaller than {MIN_RSA_BITS} bits"),
        "WrongAlgorithm" => "not an RSA key".to_owned(),
        other => format!("not a valid RSA private key ({other})"),
    }
}

/// Parses a PEM RSA public key (SPKI `PUBLIC KEY` or PKCS#1 `RSA PUBLIC KEY`).
fn parse_public_pem(pem_bytes: &[u8]) -> Result<PublicKeyComponents<Vec<u8>>, String> {
    let block = pem::parse(pem_bytes).map_err(|_| "not a PEM file".to_owned())?;
    match block.tag() {
        "PUBLIC KEY" | "RSA PUBLIC KEY" => {}
        other => return Err(format!("PEM block is {other:?}, not an RSA public key")),
    }
    let public = PublicKey::from_der(block.contents()).map_err(|err| match err.description_() {
        "TooSmall" => format!("RSA key is smaller than {MIN_RSA_BITS} bits"),
        other => format!("not a valid RSA public key ({other})"),
    })?;
    let components = PublicKeyComponents::<Vec<u8>>::from(&public);
    let bits = components.n.len() * 8;
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "RSA key has {bits} bits; at least {MIN_RSA_BITS} are required"
        ));
    }
    Ok(components)
}

/// Builds the JWK and its RFC 7638 thumbprint `kid`.
fn jwk_for(public: &PublicKeyComponents<Vec<u8>>) -> Jwk {
    let n = URL_SAFE_NO_PAD.encode(&public.n);
    let e = URL_SAFE_NO_PAD.encode(&public.e);
    // RFC 7638 §3.2: required members only, lexicographic order, no spaces.
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
    Jwk {
        kty: "RSA",
        use_: "sig",
        alg: "RS256",
        kid,
        n,
        e,
    }
}

/// Returns the dev key path, generating the key the first time.
fn ensure_dev_key() -> Result<PathBuf, KeyError> {
    let path = PathBuf::from(crate::config::DEV_KEY_PATH);
    if path.exists() {
        log::warn!(
            "JWT_PRIVATE_KEY_PATH is unset: signing with the development key at {}; for development only, set JWT_PRIVATE_KEY_PATH in production",
            path.display()
        );
        return Ok(path);
    }
    if let Some(dir) = path.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|err| {
                KeyError::new(
                    "JWT_PRIVATE_KEY_PATH (dev key)",
                    dir,
                    format!("cannot create directory: {err}"),
                )
            })?;
    }
    write_new_private_key(&path, 2048)
        .map_err(|reason| KeyError::new("JWT_PRIVATE_KEY_PATH (dev key)", &path, reason))?;
    log::warn!(
        "JWT_PRIVATE_KEY_PATH is unset: generated a development signing key at {}; for development only, set JWT_PRIVATE_KEY_PATH in production",
        path.display()
    );
    Ok(path)
}

/// The key sizes `tessera keygen` offers.
pub const KEYGEN_BITS: [u32; 3] = [2048, 3072, 4096];

/// Writes a new PKCS#8 PEM RSA private key with mode 0600; never overwrites.
pub fn write_new_private_key(path: &Path, bits: u32) -> Result<(), String> {
    let size = match bits {
        2048 => KeySize::Rsa2048,
        3072 => KeySize::Rsa3072,
        4096 => KeySize::Rsa4096,
        other => {
            return Err(format!(
                "unsupported key size {other}; use 2048, 3072 or 4096"
            ))
        }
    };
    let key_pair = KeyPair::generate(size).map_err(|_| "RSA key generation failed".to_owned())?;
    let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key_pair)
        .map_err(|_| "cannot encode the key as PKCS#8".to_owned())?;
    let pem_text = pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec()));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|err| match err.kind() {
            std::io::ErrorKind::AlreadyExists => "file exists; refusing to overwrite".to_owned(),
            _ => format!("cannot create: {err}"),
        })?;
    file.write_all(pem_text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|err| format!("cannot write: {err}"))
}

/// Writes the SPKI PEM public key of a private key file (for rotation).
pub fn public_pem_of(private_pem: &[u8]) -> Result<String, String> {
    let key_pair = parse_private_pem(private_pem)?;
    let der = AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(key_pair.public_key())
        .map_err(|_| "cannot encode the public key".to_owned())?;
    Ok(pem::encode(&pem::Pem::new(
        "PUBLIC KEY",
        der.as_ref().to_vec(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygen_writes_a_0600_key_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        write_new_private_key(&path, 2048).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.mode() & 0o777, 0o600);
        assert!(write_new_private_key(&path, 2048)
            .unwrap_err()
            .contains("refusing to overwrite"));
        let set = KeySet::load(Some(&path), &[]).unwrap();
        assert_eq!(set.jwks().keys.len(), 1);
        assert_eq!(set.jwks().keys[0].kid, set.current_kid());
    }

    #[test]
    fn previous_keys_are_published_and_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.pem");
        let new = dir.path().join("new.pem");
        write_new_private_key(&old, 2048).unwrap();
        write_new_private_key(&new, 2048).unwrap();
        let old_public = dir.path().join("old.pub.pem");
        fs::write(
            &old_public,
            public_pem_of(&fs::read(&old).unwrap()).unwrap(),
        )
        .unwrap();
        let old_kid = KeySet::load(Some(&old), &[])
            .unwrap()
            .current_kid()
            .to_owned();
        let set = KeySet::load(Some(&new), &[old_public]).unwrap();
        assert_eq!(set.jwks().keys.len(), 2);
        assert!(set.decoding_key(&old_kid).is_some());
        assert_ne!(set.current_kid(), old_kid);
    }

    #[test]
    fn garbage_is_rejected_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.pem");
        fs::write(&path, "hello").unwrap();
        let err = KeySet::load(Some(&path), &[]).unwrap_err().to_string();
        assert!(err.contains("JWT_PRIVATE_KEY_PATH"));
        assert!(err.contains("junk.pem"));
        assert!(err.contains("not a PEM file"));
        let missing = dir.path().join("missing.pem");
        let err = KeySet::load(Some(&missing), &[]).unwrap_err().to_string();
        assert!(err.contains("cannot read"));
    }

    const RSA2048_PKCS1: &[u8] = include_bytes!("../../tests/fixtures/rsa2048-pkcs1.pem");

    #[test]
    fn pkcs1_and_pkcs8_private_keys_both_load() {
        let pkcs1 = KeySet::from_private_pem(RSA2048_PKCS1).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k8.pem");
        write_new_private_key(&path, 2048).unwrap();
        let pkcs8 = KeySet::from_private_pem(&fs::read(&path).unwrap()).unwrap();
        assert_ne!(pkcs1.current_kid(), pkcs8.current_kid());
    }

    #[test]
    fn small_and_non_rsa_keys_are_refused_with_a_reason() {
        let small =
            KeySet::from_private_pem(include_bytes!("../../tests/fixtures/rsa1024-pkcs8.pem"))
                .unwrap_err();
        assert!(small.contains("smaller than 2048 bits"), "{small}");
        let ec = KeySet::from_private_pem(include_bytes!("../../tests/fixtures/ec-p256-pkcs8.pem"))
            .unwrap_err();
        assert_eq!(ec, "not an RSA key");
        let public_only =
            KeySet::from_private_pem(include_bytes!("../../tests/fixtures/rsa2048-spki.pub.pem"))
                .unwrap_err();
        assert!(
            public_only.contains("not an RSA private key"),
            "{public_only}"
        );
    }

    #[test]
    fn spki_and_pkcs1_public_keys_give_the_same_kid_as_the_private_key() {
        let private_kid = KeySet::from_private_pem(RSA2048_PKCS1)
            .unwrap()
            .current_kid()
            .to_owned();
        for public in [
            &include_bytes!("../../tests/fixtures/rsa2048-spki.pub.pem")[..],
            &include_bytes!("../../tests/fixtures/rsa2048-pkcs1.pub.pem")[..],
        ] {
            let components = parse_public_pem(public).unwrap();
            assert_eq!(jwk_for(&components).kid, private_kid);
        }
        assert!(parse_public_pem(RSA2048_PKCS1).is_err());
    }

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        // RFC 7638 §3.1 example key.
        let n = URL_SAFE_NO_PAD.decode("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw").unwrap();
        let e = URL_SAFE_NO_PAD.decode("AQAB").unwrap();
        let jwk = jwk_for(&PublicKeyComponents { n, e });
        assert_eq!(jwk.kid, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }
}
