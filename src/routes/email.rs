//! Email on the account and password reset: set the address, verify it,
//! ask for a reset mail, reset the password (README "Email").

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::auth::guard::AuthenticatedUser;
use crate::auth::one_time_token::OneTimeToken;
use crate::domain::EmailAddress;
use crate::error::{AppError, AppResult};
use crate::http::client_ip::client_info;
use crate::http::error::ErrorBody;
use crate::http::json_body::JsonBody;
use crate::routes::openapi::{JsonBodyErrors, Unavailable};
use crate::services::email;
use crate::state::AppState;

/// `PUT /api/me/email` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct EmailChange {
    /// The new address: exactly one `@`, at most 254 bytes.
    #[schema(max_length = 254)]
    pub email: String,
    /// The account's password, as confirmation.
    pub password: String,
}

/// `202` body of `PUT /api/me/email`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EmailPending {
    /// The address now on the account.
    pub email: String,
    /// Always false here: a verification mail is on its way.
    pub email_verified: bool,
}

/// `PUT /api/me/email`: set the address (unverified) and mail a
/// verification token, valid 24 hours.
#[utoipa::path(
    put, path = "/api/me/email", tag = "api", security(("bearer" = [])),
    request_body = EmailChange,
    responses(
        (status = 202, description = "Address set, unverified; a verification mail is queued", body = EmailPending),
        JsonBodyErrors,
        (status = 401, description = "invalid_credentials (wrong password), or missing_token / invalid_token", body = ErrorBody),
        (status = 404, description = "Account deleted", body = ErrorBody),
        (status = 409, description = "conflict: another account has this address", body = ErrorBody),
        (status = 422, description = "Invalid address (fields.email)", body = ErrorBody),
        Unavailable,
    )
)]
pub async fn set_email(
    state: web::Data<AppState>,
    user: AuthenticatedUser,
    body: JsonBody<EmailChange>,
) -> AppResult<HttpResponse> {
    let EmailChange { email, password } = body.into_inner();
    let email = EmailAddress::parse(&email).map_err(|reason| AppError::field("email", reason))?;
    let shown = email.as_str().to_owned();
    email::set_address(&state, user.claims().sub, password, email).await?;
    Ok(HttpResponse::Accepted().json(EmailPending {
        email: shown,
        email_verified: false,
    }))
}

/// `POST /auth/email/verify` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct EmailVerification {
    /// The token from the verification mail.
    pub token: String,
}

/// `POST /auth/email/verify`: mark the address the token was mailed to as
/// verified.
#[utoipa::path(
    post, path = "/auth/email/verify", tag = "auth",
    request_body = EmailVerification,
    responses(
        (status = 204, description = "The address is verified"),
        JsonBodyErrors,
        (status = 401, description = "invalid_otp: wrong, used or expired token", body = ErrorBody),
        Unavailable,
    )
)]
pub async fn verify_email(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody<EmailVerification>,
) -> AppResult<HttpResponse> {
    let client = client_info(&req, state.settings.trust_forwarded_for);
    email::verify(&state, OneTimeToken::presented(&body.token), client).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /auth/password/forgot` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ForgotPassword {
    /// A username or an email address.
    pub login: String,
}

/// `202` body of `POST /auth/password/forgot`, the same in every case.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResetRequested {
    /// One human sentence.
    pub message: &'static str,
}

/// The one answer to every forgot-password request.
const RESET_REQUESTED: ResetRequested = ResetRequested {
    message: "If this names an account with a verified email address, a reset mail is on its way.",
};

/// `POST /auth/password/forgot`: mail a reset token (valid 30 minutes) to
/// the verified address of the account named, at most once a minute. The
/// answer is the same whether or not such an account exists.
#[utoipa::path(
    post, path = "/auth/password/forgot", tag = "auth",
    request_body = ForgotPassword,
    responses(
        (status = 202, description = "Accepted (whether or not a mail goes out)", body = ResetRequested),
        JsonBodyErrors,
        (status = 429, description = "Rate limited (Retry-After)", body = ErrorBody),
        Unavailable,
    )
)]
pub async fn forgot_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody<ForgotPassword>,
) -> AppResult<HttpResponse> {
    let client = client_info(&req, state.settings.trust_forwarded_for);
    email::request_reset(&state, body.into_inner().login, client).await?;
    Ok(HttpResponse::Accepted().json(RESET_REQUESTED))
}

/// `POST /auth/password/reset` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PasswordReset {
    /// The token from the reset mail.
    pub token: String,
    /// The new password (same rules as registration).
    pub new_password: String,
}

/// `POST /auth/password/reset`: set a new password with a mailed token;
/// every session of the account is revoked.
#[utoipa::path(
    post, path = "/auth/password/reset", tag = "auth",
    request_body = PasswordReset,
    responses(
        (status = 204, description = "Password set; every session revoked"),
        JsonBodyErrors,
        (status = 401, description = "invalid_otp: wrong, used or expired token", body = ErrorBody),
        (status = 422, description = "Invalid new password (fields.new_password)", body = ErrorBody),
        Unavailable,
    )
)]
pub async fn reset_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody<PasswordReset>,
) -> AppResult<HttpResponse> {
    let client = client_info(&req, state.settings.trust_forwarded_for);
    let PasswordReset {
        token,
        new_password,
    } = body.into_inner();
    email::reset_password(
        &state,
        OneTimeToken::presented(&token),
        &new_password,
        client,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
