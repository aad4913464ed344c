//! `JsonBody<T>`: `web::Json<T>` that accepts only `application/json`.
//!
//! actix's JSON extractor also takes `text/json` and any `+json` type; the
//! contract says a body that is not `application/json` is 415.

use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// Longest time a request body (at most 16 KiB) may take to arrive. actix
/// bounds only the request head (`client_request_timeout`); without this, a
/// client that stops in the middle of its body holds the connection and
/// the request forever. 16 KiB in 10 s is about 13 kbit/s.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// A JSON request body of type `T`, from an `application/json` request.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T> JsonBody<T> {
    /// The deserialized body.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for JsonBody<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// Whether a `Content-Type` value is `application/json`, with any
/// parameters (such as `charset`) and optional whitespace (RFC 9110 §5.6.6).
pub fn is_application_json(value: &str) -> bool {
    value
        .split(';')
        .next()
        .map(str::trim)
        .is_some_and(|media_type| media_type.eq_ignore_ascii_case("application/json"))
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let refusal = match req.headers().get(CONTENT_TYPE) {
            Some(value) if value.to_str().is_ok_and(is_application_json) => None,
            Some(_) => Some(AppError::UnsupportedMediaType),
            // No content type: no body at all is a missing body; a body of
            // unknown type is not JSON.
            None if has_no_body(req) => Some(AppError::InvalidRequest(
                "The request needs a JSON body.".into(),
            )),
            None => Some(AppError::UnsupportedMediaType),
        };
        if let Some(err) = refusal {
            return Box::pin(async { Err(err.into()) });
        }
        // The media type is settled above; the app's JsonConfig has
        // `content_type_required(false)` so actix does not re-judge it.
        let body = web::Json::<T>::from_request(req, payload);
        Box::pin(async move {
            match actix_web::rt::time::timeout(BODY_TIMEOUT, body).await {
                Ok(json) => json.map(|json| JsonBody(json.into_inner())),
                Err(_) => Err(AppError::RequestTimeout.into()),
            }
        })
    }
}

/// True when a request carries no body (no length, or length 0, and not
/// chunked).
fn has_no_body(req: &HttpRequest) -> bool {
    use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
    let headers = req.headers();
    !headers.contains_key(TRANSFER_ENCODING)
        && headers
            .get(CONTENT_LENGTH)
            .is_none_or(|len| len.as_bytes() == b"0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_application_json_is_json() {
        assert!(is_application_json("application/json"));
        assert!(is_application_json("application/json; charset=utf-8"));
        assert!(is_application_json("Application/JSON"));
        assert!(is_application_json("application/json ; charset=UTF-8"));
        assert!(is_application_json(" application/json"));
        for other in [
            "text/json",
            "application/vnd.api+json",
            "text/plain",
            "",
            "json",
        ] {
            assert!(!is_application_json(other), "{other}");
        }
    }
}
