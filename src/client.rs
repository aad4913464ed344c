//! Who is calling: client IP (optionally from `X-Forwarded-For`) and
//! User-Agent.

use std::net::IpAddr;

use actix_web::dev::ServiceRequest;
use actix_web::http::header::{HeaderMap, USER_AGENT};
use actix_web::HttpRequest;

use crate::auth::refresh::ClientInfo;

/// Longest User-Agent kept on a session.
const MAX_USER_AGENT_CHARS: usize = 512;

/// The client IP. With `trust_forwarded_for`, the LAST address of
/// `X-Forwarded-For` is used: the one your proxy appended, which a client
/// cannot forge.
pub fn client_ip(
    headers: &HeaderMap,
    peer: Option<std::net::SocketAddr>,
    trust_forwarded_for: bool,
) -> Option<IpAddr> {
    if trust_forwarded_for {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|item| item.trim().parse::<IpAddr>().ok())
            .last();
        if forwarded.is_some() {
            return forwarded;
        }
    }
    peer.map(|addr| addr.ip())
}

/// Client IP of a request inside a middleware.
pub fn service_request_ip(req: &ServiceRequest, trust_forwarded_for: bool) -> Option<IpAddr> {
    client_ip(req.headers(), req.peer_addr(), trust_forwarded_for)
}

/// User-Agent and IP to remember on a new session.
pub fn client_info(req: &HttpRequest, trust_forwarded_for: bool) -> ClientInfo {
    let user_agent = req
        .headers()
        .get(USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.chars().take(MAX_USER_AGENT_CHARS).collect());
    ClientInfo {
        user_agent,
        ip: client_ip(req.headers(), req.peer_addr(), trust_forwarded_for).map(|ip| ip.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    #[test]
    fn forwarded_for_is_used_only_when_trusted() {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("x-forwarded-for"),
            HeaderValue::from_static("203.0.113.9, 198.51.100.7"),
        );
        let peer = Some("10.0.0.1:5000".parse().unwrap());
        assert_eq!(
            client_ip(&headers, peer, false).unwrap().to_string(),
            "10.0.0.1"
        );
        assert_eq!(
            client_ip(&headers, peer, true).unwrap().to_string(),
            "198.51.100.7"
        );
    }
}
