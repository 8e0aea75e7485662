//! Bearer tokens carried by the HTTP request that opens a session.

use axum::http::header;

use crate::endpoint::HandshakeRequest;

/// Query parameter that may carry a bearer token (RFC 6750 §2.3).
pub const TOKEN_QUERY_PARAM: &str = "access_token";

/// Cookie that may carry a bearer token.
pub const TOKEN_COOKIE: &str = "stompede_token";

/// A bearer token from a handshake, looked for in this order: an `Authorization: Bearer x`
/// header, an `access_token=x` query parameter, a `stompede_token=x` cookie. Browsers cannot
/// set headers on a WebSocket (nor on SockJS's requests), hence the other two; a query token
/// ends up in access logs, so prefer the cookie where the page can set one. Empty values count
/// as absent.
pub fn handshake_token(request: &HandshakeRequest<'_>) -> Option<String> {
    bearer_header(request)
        .or_else(|| query_token(request))
        .or_else(|| {
            request
                .cookie(TOKEN_COOKIE)
                .map(str::trim)
                .map(str::to_owned)
        })
        .filter(|token| !token.is_empty())
}

fn bearer_header(request: &HandshakeRequest<'_>) -> Option<String> {
    request
        .headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            // The scheme is case-insensitive (RFC 7235 §2.1).
            let token = token.trim();
            (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
        })
}

fn query_token(request: &HandshakeRequest<'_>) -> Option<String> {
    form_urlencoded::parse(request.uri.query()?.as_bytes())
        .find(|(name, value)| name == TOKEN_QUERY_PARAM && !value.is_empty())
        .map(|(_, value)| value.into_owned())
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, Method, Uri};

    use super::*;

    fn token(uri: &str, headers: &[(header::HeaderName, &str)]) -> Option<String> {
        let uri: Uri = uri.parse().expect("test uri");
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(name, HeaderValue::from_str(value).expect("test header"));
        }
        handshake_token(&HandshakeRequest {
            method: &Method::GET,
            uri: &uri,
            headers: &map,
            peer: None,
            transport: "websocket",
        })
    }

    #[test]
    fn from_the_authorization_header() {
        assert_eq!(
            token("/ws", &[(header::AUTHORIZATION, "Bearer abc.def.ghi")]),
            Some("abc.def.ghi".to_owned())
        );
        assert_eq!(
            token("/ws", &[(header::AUTHORIZATION, "bearer  xyz ")]),
            Some("xyz".to_owned())
        );
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_ignored() {
        assert_eq!(
            token("/ws", &[(header::AUTHORIZATION, "Basic YWxpY2U6cHc=")]),
            None
        );
        assert_eq!(token("/ws", &[(header::AUTHORIZATION, "Bearer ")]), None);
        assert_eq!(token("/ws", &[(header::AUTHORIZATION, "Bearer")]), None);
        assert_eq!(token("/ws?access_token=", &[]), None);
        assert_eq!(token("/ws", &[(header::COOKIE, "stompede_token=")]), None);
        assert_eq!(token("/ws?other=1", &[(header::COOKIE, "a=b")]), None);
    }

    #[test]
    fn from_the_query() {
        assert_eq!(
            token("/ws/123/abc/websocket?x=1&access_token=t%2Eo+k", &[]),
            Some("t.o k".to_owned())
        );
    }

    #[test]
    fn from_the_cookie() {
        assert_eq!(
            token(
                "/ws",
                &[(header::COOKIE, "a=1; stompede_token=cookie.tok; b=2")]
            ),
            Some("cookie.tok".to_owned())
        );
    }

    #[test]
    fn header_wins_over_query_over_cookie() {
        let cookie = (header::COOKIE, "stompede_token=from-cookie");
        let auth = (header::AUTHORIZATION, "Bearer from-header");
        assert_eq!(
            token("/ws?access_token=from-query", &[auth, cookie.clone()]),
            Some("from-header".to_owned())
        );
        assert_eq!(
            token("/ws?access_token=from-query", std::slice::from_ref(&cookie)),
            Some("from-query".to_owned())
        );
        assert_eq!(
            token("/ws", &[(header::AUTHORIZATION, "Basic x"), cookie]),
            Some("from-cookie".to_owned())
        );
    }
}
