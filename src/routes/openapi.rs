//! `GET /openapi.json`: the OpenAPI 3 document, generated from the handlers'
//! `#[utoipa::path]` annotations.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{admin, api, auth, meta};

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
        auth::refresh,
        auth::logout,
        meta::jwks,
        meta::healthz,
        meta::readyz,
        meta::metrics,
        openapi_json,
        api::me,
        api::delete_account,
        api::change_password,
        api::list_sessions,
        api::revoke_all_sessions,
        api::revoke_session,
        admin::list_users,
    ),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&BearerSecurity),
    tags(
        (name = "auth", description = "Register, log in, refresh, log out"),
        (name = "api", description = "Private API (bearer access token)"),
        (name = "admin", description = "Admin-only API"),
        (name = "meta", description = "Keys, health, metrics, this document"),
    )
)]
pub struct ApiDoc;

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
        ApiDoc::openapi()
            .to_json()
            .unwrap_or_else(|_| "{}".to_owned())
    })
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
