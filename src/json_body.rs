//! `JsonBody<T>`: `web::Json<T>` that accepts only `application/json`.
//!
//! actix's JSON extractor also takes `text/json` and any `+json` type; the
//! contract says a body that is not `application/json` is 415.

use actix_web::dev::Payload;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::error::AppError;

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

/// Whether a `Content-Type` value is exactly `application/json` (with any
/// parameters, such as `charset`).
pub fn is_application_json(value: &str) -> bool {
    value.parse::<actix_web::mime::Mime>().is_ok_and(|mime| {
        mime.type_() == actix_web::mime::APPLICATION
            && mime.subtype() == actix_web::mime::JSON
            && mime.suffix().is_none()
    })
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let wrong_type = req
            .headers()
            .get(CONTENT_TYPE)
            .is_some_and(|value| !value.to_str().is_ok_and(is_application_json));
        if wrong_type {
            return Box::pin(async { Err(AppError::UnsupportedMediaType.into()) });
        }
        let body = web::Json::<T>::from_request(req, payload);
        Box::pin(async move { body.await.map(|json| JsonBody(json.into_inner())) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_application_json_is_json() {
        assert!(is_application_json("application/json"));
        assert!(is_application_json("application/json; charset=utf-8"));
        assert!(is_application_json("Application/JSON"));
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
