//! Who is calling: client IP (optionally from `X-Forwarded-For`) and
//! User-Agent.

use std::net::IpAddr;

use actix_web::dev::ServiceRequest;
use actix_web::http::header::{HeaderMap, USER_AGENT};
use actix_web::HttpRequest;

use crate::services::sessions::ClientInfo;

/// Longest User-Agent kept on a session.
const MAX_USER_AGENT_CHARS: usize = 512;

/// The client IP. With `trust_forwarded_for`, the LAST entry of
/// `X-Forwarded-For` is used: the one your proxy appended, which a client
/// cannot forge. If that entry is not an IP address, the peer address is
/// used, never an earlier (client-written) entry.
pub fn client_ip(
    headers: &HeaderMap,
    peer: Option<std::net::SocketAddr>,
    trust_forwarded_for: bool,
) -> Option<IpAddr> {
    if trust_forwarded_for {
        let last_entry = headers
            .get_all("x-forwarded-for")
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .last();
        if let Some(ip) = last_entry.and_then(|item| item.parse::<IpAddr>().ok()) {
            return Some(ip);
        }
    }
    peer.map(|addr| addr.ip())
}

/// The rate-limit key of an address: IPv4 as is, IPv6 by its /64 prefix
/// (one subscriber usually holds a whole /64).
pub fn rate_limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
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

    #[test]
    fn an_unparsable_last_entry_falls_back_to_the_peer() {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("x-forwarded-for"),
            HeaderValue::from_static("203.0.113.9, unknown"),
        );
        let peer = Some("10.0.0.1:5000".parse().unwrap());
        assert_eq!(
            client_ip(&headers, peer, true).unwrap().to_string(),
            "10.0.0.1"
        );
    }

    #[test]
    fn ipv6_clients_are_limited_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(rate_limit_key(a), rate_limit_key(b));
        assert_eq!(rate_limit_key(a).to_string(), "2001:db8:1:2::");
        let v4: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(rate_limit_key(v4), v4);
        let mapped: IpAddr = "::ffff:198.51.100.7".parse().unwrap();
        assert_eq!(rate_limit_key(mapped), v4);
    }
}
