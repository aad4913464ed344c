//! Passkeys (WebAuthn) over webauthn-rs: the one `Webauthn` built from the
//! settings, the ceremony options sent to clients, and the checks of what
//! authenticators send back (README "Passkeys"). No database here: the
//! ceremony states go in and out as JSON for the services to store.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use url::Url;
use uuid::Uuid;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Webauthn, WebauthnBuilder,
};

/// How long a challenge may be answered; also the `timeout` the options
/// give the client.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(300);

/// Why an authenticator's answer was refused. The reason goes to the debug
/// log only; clients see `invalid_otp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

impl Refusal {
    /// A refusal with a reason for the log.
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

/// A credential that passed registration, ready to store.
#[derive(Debug, Clone)]
pub struct RegisteredCredential {
    /// The authenticator's credential id.
    pub credential_id: Vec<u8>,
    /// webauthn-rs' `Passkey`, serialised.
    pub passkey: Value,
    /// The signature counter at registration (0 for authenticators that
    /// do not count, such as synced passkeys).
    pub sign_count: i64,
    /// The credential may be synced.
    pub backup_eligible: bool,
    /// The credential is synced.
    pub backup_state: bool,
}

/// What a verified sign-in changes on the stored passkey.
#[derive(Debug, Clone)]
pub struct VerifiedUse {
    /// The updated `Passkey`, serialised.
    pub passkey: Value,
    /// The new signature counter.
    pub sign_count: i64,
    /// Backup eligibility as the authenticator reports it now.
    pub backup_eligible: bool,
    /// Backup state as the authenticator reports it now.
    pub backup_state: bool,
}

/// The relying party: one `Webauthn` built at startup, cheap to clone into
/// blocking jobs.
#[derive(Clone)]
pub struct PasskeyVerifier {
    webauthn: Arc<Webauthn>,
}

impl PasskeyVerifier {
    /// Builds the relying party for `rp_id` accepting `origins` (validated
    /// by the settings: web origins lie within `rp_id`, at least one is a
    /// web origin). The error names what is wrong.
    pub fn new(rp_id: &str, origins: &[Url]) -> Result<Self, String> {
        let anchor = origins
            .iter()
            .find(|o| o.domain().is_some())
            .ok_or_else(|| "WEBAUTHN_ORIGINS: no web origin".to_owned())?;
        let mut builder = WebauthnBuilder::new(rp_id, anchor)
            .map_err(|err| {
                format!("WEBAUTHN_ORIGINS: {anchor} does not fit WEBAUTHN_RP_ID {rp_id}: {err}")
            })?
            .timeout(CHALLENGE_TTL);
        for origin in origins.iter().filter(|o| *o != anchor) {
            builder = builder.append_allowed_origin(origin);
        }
        let webauthn = builder
            .build()
            .map_err(|err| format!("WEBAUTHN_ORIGINS: {err}"))?;
        Ok(Self {
            webauthn: Arc::new(webauthn),
        })
    }

    /// Creation options for a discoverable credential with user
    /// verification, excluding the user's existing credentials, and the
    /// ceremony state to keep. The user handle is the account id's bytes.
    pub fn start_registration(
        &self,
        user_id: Uuid,
        username: &str,
        existing: Vec<Vec<u8>>,
    ) -> Result<(Value, Value), String> {
        let exclude = existing.into_iter().map(Into::into).collect::<Vec<_>>();
        let (options, state) = self
            .webauthn
            .start_passkey_registration(user_id, username, username, Some(exclude))
            .map_err(|err| format!("start_passkey_registration: {err}"))?;
        let mut options = to_json(&options)?;
        // webauthn-rs leaves a discoverable credential to the authenticator
        // (it only asks for credProps); a passkey that signs in without a
        // username must be discoverable, so require it.
        let selection = options
            .pointer_mut("/publicKey/authenticatorSelection")
            .and_then(Value::as_object_mut)
            .ok_or("creation options without authenticatorSelection")?;
        selection.insert("residentKey".into(), "required".into());
        selection.insert("requireResidentKey".into(), true.into());
        Ok((options, to_json(&state)?))
    }

    /// Checks a registration response against its stored ceremony state.
    pub fn finish_registration(
        &self,
        credential: &RegisterPublicKeyCredential,
        state: &Value,
    ) -> Result<RegisteredCredential, Refusal> {
        let state: PasskeyRegistration = serde_json::from_value(state.clone())
            .map_err(|err| Refusal::new(format!("stored registration state unreadable: {err}")))?;
        let passkey = self
            .webauthn
            .finish_passkey_registration(credential, &state)
            .map_err(|err| Refusal::new(format!("registration refused: {err}")))?;
        let credential_id = passkey.cred_id().to_vec();
        let passkey = serde_json::to_value(&passkey)
            .map_err(|err| Refusal::new(format!("passkey not serialisable: {err}")))?;
        let (sign_count, backup_eligible, backup_state) = stored_facts(&passkey);
        Ok(RegisteredCredential {
            credential_id,
            passkey,
            sign_count,
            backup_eligible,
            backup_state,
        })
    }

    /// Request options with an empty `allowCredentials` (the authenticator
    /// offers the passkeys it holds for this RP) and the state to keep.
    pub fn start_authentication(&self) -> Result<(Value, Value), String> {
        let (mut options, state) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(|err| format!("start_discoverable_authentication: {err}"))?;
        // webauthn-rs marks these for conditional (autofill) UI; apps show
        // a modal sheet, and a browser may still ask for "conditional"
        // itself. The options are exactly `{"publicKey": …}`.
        options.mediation = None;
        Ok((to_json(&options)?, to_json(&state)?))
    }

    /// The account (user handle) and credential id an assertion claims,
    /// before anything is verified.
    pub fn identify(&self, credential: &PublicKeyCredential) -> Result<(Uuid, Vec<u8>), Refusal> {
        self.webauthn
            .identify_discoverable_authentication(credential)
            .map(|(user, credential_id)| (user, credential_id.to_vec()))
            .map_err(|err| Refusal::new(format!("no usable user handle: {err}")))
    }

    /// Verifies an assertion against its ceremony state and the stored
    /// passkey it names: signature, origin, RP id hash, user verification,
    /// and a counter that must move forward when the authenticator counts.
    pub fn finish_authentication(
        &self,
        credential: &PublicKeyCredential,
        state: &Value,
        stored: &Value,
    ) -> Result<VerifiedUse, Refusal> {
        let state: DiscoverableAuthentication =
            serde_json::from_value(state.clone()).map_err(|err| {
                Refusal::new(format!("stored authentication state unreadable: {err}"))
            })?;
        let mut passkey: Passkey = serde_json::from_value(stored.clone())
            .map_err(|err| Refusal::new(format!("stored passkey unreadable: {err}")))?;
        let key = DiscoverableKey::from(&passkey);
        let result = self
            .webauthn
            .finish_discoverable_authentication(credential, state, &[key])
            .map_err(|err| Refusal::new(format!("assertion refused: {err}")))?;
        passkey.update_credential(&result);
        let passkey = serde_json::to_value(&passkey)
            .map_err(|err| Refusal::new(format!("passkey not serialisable: {err}")))?;
        Ok(VerifiedUse {
            passkey,
            sign_count: i64::from(result.counter()),
            backup_eligible: result.backup_eligible(),
            backup_state: result.backup_state(),
        })
    }
}

/// Parses the `credential` of a registration finish; malformed JSON is the
/// client's mistake (400), not a failed verification.
pub fn parse_registration(credential: Value) -> Result<RegisterPublicKeyCredential, String> {
    serde_json::from_value(credential).map_err(|err| describe(&err))
}

/// Parses the `credential` of a sign-in finish.
pub fn parse_assertion(credential: Value) -> Result<PublicKeyCredential, String> {
    serde_json::from_value(credential).map_err(|err| describe(&err))
}

/// One sentence about a malformed credential, without echoing its bytes.
fn describe(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let head: String = text
        .split(" at line ")
        .next()
        .unwrap_or("malformed")
        .chars()
        .take(120)
        .collect();
    format!("The credential is not a PublicKeyCredential: {head}.")
}

/// Counter and backup flags as the serialised `Passkey` holds them.
fn stored_facts(passkey: &Value) -> (i64, bool, bool) {
    let cred = &passkey["cred"];
    (
        cred["counter"]
            .as_u64()
            .and_then(|n| i64::try_from(n).ok())
            .unwrap_or(0),
        cred["backup_eligible"].as_bool().unwrap_or(false),
        cred["backup_state"].as_bool().unwrap_or(false),
    )
}

/// Serialises options or state (webauthn-rs writes binary as base64url).
fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, String> {
    serde_json::to_value(value).map_err(|err| format!("cannot serialise: {err}"))
}
