//! Second factor endpoints: TOTP enrollment, confirmation and disabling,
//! new recovery codes, and the second step of a login (README "Second
//! factor"). Every answer that carries a secret is `Cache-Control: no-store`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::auth::guard::AuthenticatedUser;
use crate::auth::recovery_codes::RecoveryCode;
use crate::error::AppResult;
use crate::http::client_ip::client_info;
use crate::http::error::ErrorBody;
use crate::http::json_body::JsonBody;
use crate::routes::auth::{token_response, TokenResponse};
use crate::routes::no_store_json;
use crate::routes::openapi::{JsonBodyErrors, Unavailable};
use crate::services::mfa;
use crate::state::AppState;

/// `{password}`: the body of an enrollment.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct EnrollmentRequest {
    /// The account's password, checked again.
    pub password: String,
}

/// `201` body of an enrollment.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EnrollmentResponse {
    /// The TOTP secret: upper-case base32, no padding, 160 bits.
    pub secret: String,
    /// `otpauth://totp/<issuer>:<username>?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`.
    pub otpauth_uri: String,
}

/// `{code}`: the body of a confirmation.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ConfirmRequest {
    /// The current 6-digit code from the authenticator app.
    pub code: String,
}

/// `{password, code}`: the body of disabling TOTP and of new recovery codes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PasswordAndCode {
    /// The account's password.
    pub password: String,
    /// A 6-digit TOTP code or an unused recovery code.
    pub code: String,
}

/// A set of recovery codes, shown only in this answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RecoveryCodes {
    /// 10 single-use codes, `xxxx-xxxx-xxxx-xxxx` (dashes, spaces and case
    /// are ignored when one is typed in).
    pub recovery_codes: Vec<String>,
}

/// `{mfa_token, code}`: the body of the second login step.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SecondStep {
    /// The `mfa_token` of the `mfa_required` answer.
    pub mfa_token: String,
    /// A 6-digit TOTP code or an unused recovery code.
    pub code: String,
}

/// `POST /api/me/mfa/totp`: start (or restart) a TOTP enrollment.
#[utoipa::path(
    post, path = "/api/me/mfa/totp", tag = "mfa", security(("bearer" = [])),
    request_body = EnrollmentRequest,
    responses(
        (status = 201, description = "Pending enrollment: add the secret to an authenticator app, \
            then confirm (Cache-Control: no-store)", body = EnrollmentResponse),
        JsonBodyErrors,
        (status = 401, description = "invalid_credentials (wrong password), or missing_token / invalid_token", body = ErrorBody),
        (status = 404, description = "Account deleted", body = ErrorBody),
        (status = 409, description = "conflict: TOTP is already enabled", body = ErrorBody),
        Unavailable,
    )
)]
pub async fn enroll(
    state: web::Data<AppState>,
    user: AuthenticatedUser,
    body: JsonBody<EnrollmentRequest>,
) -> AppResult<HttpResponse> {
    let enrollment =
        mfa::begin_enrollment(&state, user.claims().sub, body.into_inner().password).await?;
    Ok(no_store_json(
        StatusCode::CREATED,
        &EnrollmentResponse {
            secret: enrollment.secret,
            otpauth_uri: enrollment.otpauth_uri,
        },
    ))
}

/// `POST /api/me/mfa/totp/confirm`: turn TOTP on with a first code.
#[utoipa::path(
    post, path = "/api/me/mfa/totp/confirm", tag = "mfa", security(("bearer" = [])),
    request_body = ConfirmRequest,
    responses(
        (status = 200, description = "TOTP enabled; the recovery codes, shown only here \
            (Cache-Control: no-store)", body = RecoveryCodes),
        JsonBodyErrors,
        (status = 401, description = "invalid_otp (wrong, reused or malformed code), or missing_token / invalid_token", body = ErrorBody),
        (status = 409, description = "conflict: no pending enrollment", body = ErrorBody),
        (status = 429, description = "rate_limited: 5 wrong codes for this account in 5 minutes (Retry-After)", body = ErrorBody),
        Unavailable,
    )
)]
pub async fn confirm(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: AuthenticatedUser,
    body: JsonBody<ConfirmRequest>,
) -> AppResult<HttpResponse> {
    let client = client_info(&req, state.settings.trust_forwarded_for);
    let codes =
        mfa::confirm_enrollment(&state, user.claims().sub, body.into_inner().code, client).await?;
    Ok(recovery_codes_response(codes))
}

/// `DELETE /api/me/mfa/totp`: turn TOTP off.
#[utoipa::path(
    delete, path = "/api/me/mfa/totp", tag = "mfa", security(("bearer" = [])),
    request_body = PasswordAndCode,
    responses(
        (status = 204, description = "TOTP disabled; recovery codes deleted"),
        JsonBodyErrors,
        (status = 401, description = "invalid_credentials (wrong password), invalid_otp (wrong code), or missing_token / invalid_token", body = ErrorBody),
        (status = 404, description = "Account deleted", body = ErrorBody),
        (status = 409, description = "conflict: TOTP is not enabled", body = ErrorBody),
        (status = 429, description = "rate_limited: 5 wrong codes for this account in 5 minutes (Retry-After)", body = ErrorBody),
        Unavailable,
    )
)]
pub async fn disable(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: AuthenticatedUser,
    body: JsonBody<PasswordAndCode>,
) -> AppResult<HttpResponse> {
    let client = client_info(&req, state.settings.trust_forwarded_for);
    let PasswordAndCode { password, code } = body.into_inner();
    mfa::disable(&state, user.claims().sub, password, code, client).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/me/mfa/recovery-codes`: a new set; the old one dies.
#[utoipa::path(
    post, path = "/api/me/mfa/recovery-codes", tag = "mfa", security(("bearer" = [])),
    request_body = PasswordAndCode,
    responses(
        (status = 200, description = "A new set of recovery codes, shown only here \
            (Cache-Control: no-store)", body = RecoveryCodes),
        JsonBodyErrors,
        (status = 401, description = "invalid_credentials (wrong password), invalid_otp (wrong code), or missing_token / invalid_token", body = ErrorBody),
        (status = 404, description = "Account deleted", body = ErrorBody),
        (status = 409, description = "conflict: TOTP is not enabled", body = ErrorBody),
        (status = 429, description = "rate_limited: 5 wrong codes for this account in 5 minutes (Retry-After)", body = ErrorBody),
        Unavailable,
    )
)]
pub async fn regenerate_recovery_codes(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: AuthenticatedUser,
    body: JsonBody<PasswordAndCode>,
) -> AppResult<HttpResponse> {
    let client = client_info(&req, state.settings.trust_forwarded_for);
    let PasswordAndCode { password, code } = body.into_inner();
    let codes =
        mfa::regenerate_recovery_codes(&state, user.claims().sub, password, code, client).await?;
    Ok(recovery_codes_response(codes))
}

/// `POST /auth/mfa`: the second step of a login.
#[utoipa::path(
    post, path = "/auth/mfa", tag = "auth",
    request_body = SecondStep,
    responses(
        (status = 200, description = "Logged in; a new session with amr [\"pwd\",\"otp\",\"mfa\"]",
            body = TokenResponse),
        JsonBodyErrors,
        (status = 401, description = "invalid_otp: wrong, reused or malformed code, or an unknown, \
            expired, used or dead mfa_token", body = ErrorBody),
        (status = 429, description = "rate_limited: per client IP (shared with /auth/token and \
            /auth/register), or 5 wrong codes for this account in 5 minutes (Retry-After)", body = ErrorBody),
        Unavailable,
    )
)]
pub async fn complete_mfa(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody<SecondStep>,
) -> AppResult<HttpResponse> {
    let client = client_info(&req, state.settings.trust_forwarded_for);
    let SecondStep { mfa_token, code } = body.into_inner();
    let tokens = mfa::complete_login(&state.into_inner(), &mfa_token, code, client).await?;
    Ok(token_response(tokens))
}

/// Recovery codes in a `no-store` answer.
fn recovery_codes_response(codes: Vec<RecoveryCode>) -> HttpResponse {
    no_store_json(
        StatusCode::OK,
        &RecoveryCodes {
            recovery_codes: codes.iter().map(|c| c.expose().to_owned()).collect(),
        },
    )
}
