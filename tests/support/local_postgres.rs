//! Finding the PostgreSQL server the tests run against, shared by the test
//! binaries (`#[path]`-included: each binary is its own crate).

use diesel::prelude::*;

/// The `postgres` database of the first server that answers among
/// `TEST_DATABASE_URL`, `DATABASE_URL` and tessera's default URL; `None`
/// when none does.
pub fn reachable_server() -> Option<url::Url> {
    let candidates = ["TEST_DATABASE_URL", "DATABASE_URL"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .filter(|url| !url.trim().is_empty())
        .chain(std::iter::once(
            tessera::config::DEFAULT_DATABASE_URL.to_owned(),
        ));
    for candidate in candidates {
        let Ok(mut url) = url::Url::parse(&candidate) else {
            continue;
        };
        url.set_path("/postgres");
        if PgConnection::establish(url.as_str()).is_ok() {
            return Some(url);
        }
    }
    None
}
