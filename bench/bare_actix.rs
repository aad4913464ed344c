//! The ceiling of `bench/run.sh`: one actix-web JSON route and nothing else
//! (no middleware, no state), built from the same Cargo.lock as tessera, so
//! the same actix-web, actix-http and actix-server, with the same defaults
//! (one worker per core).
//!
//! `GET /healthz` answers what tessera's does, `{"status":"ok"}`; every
//! other path is actix's default 404. Usage:
//!
//! ```text
//! cargo build --release --example bare_actix
//! target/release/examples/bare_actix 127.0.0.1:8081
//! ```

use actix_web::{web, App, HttpResponse, HttpServer};
use serde::Serialize;

/// The same body as tessera's `GET /healthz`.
#[derive(Serialize)]
struct Status {
    status: &'static str,
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8081".to_owned());
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(|| App::new().route("/healthz", web::get().to(healthz)))
            .bind(&addr)?
            .run()
            .await
    })
}
