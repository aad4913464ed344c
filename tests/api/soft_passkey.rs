//! A software passkey for the tests: an ES256 (P-256) key pair that answers
//! `navigator.credentials.create/get` options the way a platform
//! authenticator does ("none" attestation, COSE key, ECDSA assertion), with
//! knobs to get each part wrong on purpose.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_cbor_2::Value as Cbor;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// User present.
const UP: u8 = 0x01;
/// User verified.
const UV: u8 = 0x04;
/// Attested credential data included.
const AT: u8 = 0x40;

/// One credential on a software authenticator.
pub struct SoftPasskey {
    key: EcdsaKeyPair,
    /// The credential id (random, 32 bytes).
    pub credential_id: Vec<u8>,
    /// The user handle from the creation options (the account id's bytes).
    pub user_handle: Vec<u8>,
    /// The signature counter; moved by `counter_step` before each assertion.
    pub counter: u32,
    /// 0: a synced passkey that does not count; else counts up by this.
    pub counter_step: u32,
    /// The origin the "browser" writes into clientDataJSON.
    pub origin: String,
    /// The RP id hashed into authenticatorData; `None` takes the options'.
    pub rp_id: Option<String>,
    /// Whether the UV flag is set (a passkey always verifies the user).
    pub user_verified: bool,
    /// Flip a bit of the next signatures.
    pub corrupt_signature: bool,
}

impl SoftPasskey {
    /// A fresh credential that counts signatures, for origin
    /// `http://localhost:8080` (the default `WEBAUTHN_ORIGINS`).
    pub fn new() -> Self {
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).expect("P-256 key");
        let mut credential_id = [0u8; 32];
        aws_lc_rs::rand::fill(&mut credential_id).expect("random");
        Self {
            key,
            credential_id: credential_id.to_vec(),
            user_handle: Vec::new(),
            counter: 0,
            counter_step: 1,
            origin: "http://localhost:8080".to_owned(),
            rp_id: None,
            user_verified: true,
            corrupt_signature: false,
        }
    }

    /// The credential id as the API shows it (base64url).
    pub fn id(&self) -> String {
        b64(&self.credential_id)
    }

    /// Answers creation options (`{"publicKey": …}`) with a registration
    /// credential, remembering the user handle.
    pub fn create(&mut self, options: &Value) -> Value {
        let public_key = &options["publicKey"];
        self.user_handle = unb64(public_key["user"]["id"].as_str().expect("user.id"));
        let rp_id = self.rp_id_for(public_key["rp"]["id"].as_str().expect("rp.id"));
        let client_data = self.client_data("webauthn.create", public_key);

        let point = self.key.public_key().as_ref().to_vec(); // 0x04 || x || y
        let cose_key = Cbor::Map(BTreeMap::from([
            (Cbor::Integer(1), Cbor::Integer(2)),  // kty: EC2
            (Cbor::Integer(3), Cbor::Integer(-7)), // alg: ES256
            (Cbor::Integer(-1), Cbor::Integer(1)), // crv: P-256
            (Cbor::Integer(-2), Cbor::Bytes(point[1..33].to_vec())),
            (Cbor::Integer(-3), Cbor::Bytes(point[33..65].to_vec())),
        ]));
        let mut auth_data = self.auth_data_head(&rp_id, AT);
        auth_data.extend_from_slice(&[0u8; 16]); // AAGUID: none
        auth_data.extend_from_slice(&(self.credential_id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&self.credential_id);
        auth_data.extend_from_slice(&serde_cbor_2::to_vec(&cose_key).expect("COSE key"));
        let attestation = Cbor::Map(BTreeMap::from([
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(BTreeMap::new())),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
        ]));
        json!({
            "id": self.id(),
            "rawId": self.id(),
            "type": "public-key",
            "response": {
                "attestationObject": b64(&serde_cbor_2::to_vec(&attestation).expect("CBOR")),
                "clientDataJSON": b64(&client_data),
                "transports": ["internal", "hybrid"],
            },
            "clientExtensionResults": {},
        })
    }

    /// Answers request options with an assertion, as a discoverable
    /// credential does (with the user handle).
    pub fn get(&mut self, options: &Value) -> Value {
        let public_key = &options["publicKey"];
        let rp_id = self.rp_id_for(public_key["rpId"].as_str().expect("rpId"));
        let client_data = self.client_data("webauthn.get", public_key);
        self.counter += self.counter_step;
        let auth_data = self.auth_data_head(&rp_id, 0);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let mut signature = self
            .key
            .sign(&SystemRandom::new(), &signed)
            .expect("sign")
            .as_ref()
            .to_vec();
        if self.corrupt_signature {
            let last = signature.len() - 1;
            signature[last] ^= 0x01;
        }
        json!({
            "id": self.id(),
            "rawId": self.id(),
            "type": "public-key",
            "response": {
                "authenticatorData": b64(&auth_data),
                "clientDataJSON": b64(&client_data),
                "signature": b64(&signature),
                "userHandle": b64(&self.user_handle),
            },
            "clientExtensionResults": {},
        })
    }

    fn rp_id_for(&self, from_options: &str) -> String {
        self.rp_id
            .clone()
            .unwrap_or_else(|| from_options.to_owned())
    }

    fn client_data(&self, kind: &str, public_key: &Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": kind,
            "challenge": public_key["challenge"],
            "origin": self.origin,
            "crossOrigin": false,
        }))
        .expect("client data")
    }

    /// rpIdHash, flags, signCount.
    fn auth_data_head(&self, rp_id: &str, extra_flags: u8) -> Vec<u8> {
        let mut flags = UP | extra_flags;
        if self.user_verified {
            flags |= UV;
        }
        let mut data = Sha256::digest(rp_id.as_bytes()).to_vec();
        data.push(flags);
        data.extend_from_slice(&self.counter.to_be_bytes());
        data
    }
}

/// base64url without padding, as WebAuthn JSON writes binary.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url (with or without padding).
pub fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .expect("base64url")
}
