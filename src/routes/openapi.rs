//! `GET /openapi.json`: the OpenAPI 3 document, generated from the handlers'
//! `#[utoipa::path]` annotations.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::http::error::ErrorBody;
use crate::routes::{admin, auth, email, events, me, meta, mfa, passkeys, sessions};

/// The document's root.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "tessera",
        description = "JWT authentication service: RS256 access tokens, rotating refresh tokens, JWKS."
    ),
    paths(
        auth::register,
        auth::issue_token,
        mfa::complete_mfa,
        auth::refresh,
        auth::logout,
        email::verify_email,
        email::forgot_password,
        email::reset_password,
        meta::jwks,
        meta::healthz,
        meta::readyz,
        meta::metrics,
        openapi_json,
        me::me,
        me::delete_account,
        me::change_password,
        me::account,
        email::set_email,
        events::my_events,
        mfa::enroll,
        mfa::disable,
        mfa::confirm,
        mfa::regenerate_recovery_codes,
        sessions::list_sessions,
        sessions::revoke_all_sessions,
        sessions::revoke_session,
        admin::list_users,
        events::admin_events,
        passkeys::start_registration,
        passkeys::finish_registration,
        passkeys::list_passkeys,
        passkeys::remove_passkey,
        passkeys::start_sign_in,
        passkeys::finish_sign_in,
    ),
    components(schemas(crate::http::error::ErrorBody)),
    modifiers(&BearerSecurity),
    tags(
        (name = "auth", description = "Register, log in, refresh, log out, verify an email address, reset a password"),
        (name = "api", description = "Private API (bearer access token)"),
        (name = "mfa", description = "Second factor: TOTP and recovery codes (bearer access token)"),
        (name = "admin", description = "Admin-only API"),
        (name = "passkeys", description = "Passkeys (WebAuthn): register, list, remove, sign in"),
        (name = "meta", description = "Keys, health, metrics, this document"),
    )
)]
pub struct ApiDoc;

/// 400 / 408 / 413 / 415: what every route with a JSON body can answer
/// before its handler runs (`JsonBody`, its body timeout and the 16 KiB
/// payload limit).
#[derive(utoipa::IntoResponses)]
pub enum JsonBodyErrors {
    /// `invalid_request`.
    #[response(
        status = 400,
        description = "invalid_request: no body, malformed JSON, or a missing or mistyped field"
    )]
    InvalidRequest(ErrorBody),
    /// `request_timeout`.
    #[response(
        status = 408,
        description = "request_timeout: the body did not arrive within 10 s"
    )]
    RequestTimeout(ErrorBody),
    /// `payload_too_large`.
    #[response(status = 413, description = "payload_too_large: body over 16 KiB")]
    PayloadTooLarge(ErrorBody),
    /// `unsupported_media_type`.
    #[response(
        status = 415,
        description = "unsupported_media_type: the body is not application/json"
    )]
    UnsupportedMediaType(ErrorBody),
}

/// 503 `unavailable`: every route that needs the database or a worker pool.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 503,
    description = "unavailable: the database does not answer or the service is saturated (Retry-After)"
)]
pub struct Unavailable(pub ErrorBody);

/// 401 from the bearer guard, on every private route.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 401,
    description = "missing_token / invalid_token (WWW-Authenticate: Bearer)"
)]
pub struct BearerRejected(pub ErrorBody);

/// Declares the `bearer` security scheme the private routes reference.
struct BearerSecurity;

impl Modify for BearerSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The serialised document, built once.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        serde_json::to_value(ApiDoc::openapi())
            .map(|mut doc| {
                camel_case_link_keys(&mut doc);
                doc.to_string()
            })
            .unwrap_or_else(|_| "{}".to_owned())
    })
}

/// utoipa 5.5 writes Link Objects with snake_case keys (`operation_id`,
/// `request_body`, `operation_ref`); OpenAPI spells them in camelCase, and
/// clients (schemathesis among them) ignore links spelled otherwise.
fn camel_case_link_keys(doc: &mut serde_json::Value) {
    const RENAMES: [(&str, &str); 3] = [
        ("operation_id", "operationId"),
        ("operation_ref", "operationRef"),
        ("request_body", "requestBody"),
    ];
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    let links = paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|op| op.get_mut("responses").and_then(|r| r.as_object_mut()))
        .flat_map(|responses| responses.values_mut())
        .filter_map(|response| response.get_mut("links").and_then(|l| l.as_object_mut()))
        .flat_map(|links| links.values_mut())
        .filter_map(|link| link.as_object_mut());
    for link in links {
        for (from, to) in RENAMES {
            if let Some(value) = link.remove(from) {
                link.insert(to.to_owned(), value);
            }
        }
    }
}

#[utoipa::path(
    get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "This OpenAPI 3 document", content_type = "application/json"))
)]
/// `GET /openapi.json`.
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_use_openapi_key_names() {
        let doc: serde_json::Value = serde_json::from_str(document()).unwrap();
        let link = &doc["paths"]["/auth/token"]["post"]["responses"]["200"]["links"]["refresh"];
        assert_eq!(link["operationId"], "refresh");
        assert_eq!(
            link["requestBody"]["refresh_token"],
            "$response.body#/refresh_token"
        );
        assert!(link.get("operation_id").is_none() && link.get("request_body").is_none());
    }
}
