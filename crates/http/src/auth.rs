//! Authentication: the API bearer token, HTTP Basic for the dashboard (password = the
//! token), Twilio's request signatures, and the webhook key.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::{ApiError, AppState};

/// Compares two secrets in time that does not depend on where they differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token of an `Authorization: Bearer TOKEN` header.
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let v = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = v.split_at(v.iter().position(|b| *b == b' ')?);
    scheme
        .eq_ignore_ascii_case(b"bearer")
        .then(|| rest.trim_ascii())
}

/// Middleware for `/v1/` (webhooks aside): with a token configured, the request needs
/// `Authorization: Bearer TOKEN`, else `401`.
pub(crate) async fn require_bearer(
    State(st): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(token) = &st.cfg.token {
        let ok = bearer(req.headers()).is_some_and(|t| ct_eq(t, token.as_bytes()));
        if !ok {
            let mut resp = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "this route needs the header Authorization: Bearer TOKEN",
            )
            .into_response();
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"smsreport\""),
            );
            return resp;
        }
    }
    next.run(req).await
}

/// The password of an `Authorization: Basic base64(user:password)` header.
fn basic_password(headers: &HeaderMap) -> Option<Vec<u8>> {
    let v = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = v.split_at(v.iter().position(|b| *b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim_ascii())
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    Some(decoded[colon + 1..].to_vec())
}

/// Middleware for the dashboard's routes: with a token configured, the request needs
/// HTTP Basic authentication whose password is the token (any user name), else `401`
/// with a `WWW-Authenticate: Basic` challenge so a browser asks for it.
///
/// Use it with `axum::middleware::from_fn_with_state(token, require_basic_auth)`.
pub async fn require_basic_auth(
    State(token): State<Option<String>>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(token) = &token {
        let ok = basic_password(req.headers()).is_some_and(|p| ct_eq(&p, token.as_bytes()));
        if !ok {
            let mut resp = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "the dashboard needs the API token as the password (HTTP Basic)",
            )
            .into_response();
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"smsreport\", charset=\"UTF-8\""),
            );
            return resp;
        }
    }
    next.run(req).await
}

/// Twilio's signature of a request: HMAC-SHA1, keyed with the auth token, over the full
/// URL followed by each form parameter's name and value, sorted by name (then value),
/// in base64.
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()) else {
        // HMAC takes a key of any length; this does not happen.
        return String::new();
    };
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `given` (the `X-Twilio-Signature` header) is Twilio's signature of the
/// request.
pub fn twilio_signature_ok(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    given: &[u8],
) -> bool {
    ct_eq(
        twilio_signature(auth_token, url, params).as_bytes(),
        given.trim_ascii(),
    )
}

/// The URL with its port and without it, as Twilio's own libraries check both (Twilio
/// signs one or the other): `https://h/p` and `https://h:443/p`.
fn with_and_without_port(url: &str) -> [String; 2] {
    let Some((scheme, rest)) = url.split_once("://") else {
        return [url.to_owned(), url.to_owned()];
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => authority.split_at(i + 1),
        None => ("", authority),
    };
    // A port follows the last `:` unless it is inside an IPv6 address's brackets.
    let (host, port) = match hostport.rfind(':') {
        Some(i) if !hostport[i..].contains(']') => (&hostport[..i], Some(&hostport[i + 1..])),
        _ => (hostport, None),
    };
    let default = if scheme.eq_ignore_ascii_case("https") {
        "443"
    } else {
        "80"
    };
    [
        format!("{scheme}://{userinfo}{host}{tail}"),
        format!(
            "{scheme}://{userinfo}{host}:{}{tail}",
            port.unwrap_or(default)
        ),
    ]
}

/// The value of `name` in a URL's query, as it is written.
fn query_value<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    let q = url.split_once('?')?.1;
    let q = q.split('#').next().unwrap_or(q);
    q.split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether `given` (the `X-Twilio-Signature` header) signs a Twilio request the way
/// Twilio's own libraries check it: over the URL with or without its port, followed by
/// the form parameters; for a JSON body (the URL then carries `bodySHA256`), over the
/// URL alone, and the body's SHA-256 (hex) must be that `bodySHA256`.
pub fn twilio_request_ok(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    json_body: Option<&[u8]>,
    given: &[u8],
) -> bool {
    let params: &[(String, String)] = match json_body {
        Some(body) => {
            let hash: String = Sha256::digest(body)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let ok = query_value(url, "bodySHA256")
                .is_some_and(|h| ct_eq(h.to_ascii_lowercase().as_bytes(), hash.as_bytes()));
            if !ok {
                return false;
            }
            &[]
        }
        None => params,
    };
    with_and_without_port(url)
        .iter()
        .any(|u| twilio_signature_ok(auth_token, u, params, given))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_published_example() {
        // Twilio's docs, "Validating Requests are coming from Twilio".
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            twilio_signature("12345", url, &params),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
        let mut shuffled = params.clone();
        shuffled.reverse();
        assert!(twilio_signature_ok(
            "12345",
            url,
            &shuffled,
            b"0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
        assert!(!twilio_signature_ok(
            "12346",
            url,
            &params,
            b"0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
        assert!(!twilio_signature_ok("12345", url, &params, b""));
    }

    #[test]
    fn secrets_compare() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  s3cret "),
        );
        assert_eq!(bearer(&h), Some(&b"s3cret"[..]));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dXNlcjpzM2M6cmV0"),
        );
        assert_eq!(basic_password(&h), Some(b"s3c:ret".to_vec()));
    }

    #[test]
    fn twilio_signs_with_or_without_the_port() {
        let params = vec![("MessageSid".to_string(), "SM1".to_string())];
        let sig = twilio_signature("tok", "https://h.example/v1/webhooks/twilio?a=1", &params);
        for url in [
            "https://h.example/v1/webhooks/twilio?a=1",
            "https://h.example:443/v1/webhooks/twilio?a=1",
        ] {
            assert!(
                twilio_request_ok("tok", url, &params, None, sig.as_bytes()),
                "{url}"
            );
        }
        // Signed without the port that our public URL names.
        let sig = twilio_signature("tok", "http://127.0.0.1/t", &params);
        assert!(twilio_request_ok(
            "tok",
            "http://127.0.0.1:7878/t",
            &params,
            None,
            sig.as_bytes()
        ));
        // Another port, path or token is no match.
        let sig = twilio_signature("tok", "http://127.0.0.1:7878/t", &params);
        for (token, url) in [
            ("tok", "http://127.0.0.1:7879/t"),
            ("tok", "http://127.0.0.1:7878/u"),
            ("other", "http://127.0.0.1:7878/t"),
        ] {
            assert!(
                !twilio_request_ok(token, url, &params, None, sig.as_bytes()),
                "{url}"
            );
        }
        assert_eq!(
            with_and_without_port("http://[::1]:8080/x"),
            [
                "http://[::1]/x".to_string(),
                "http://[::1]:8080/x".to_string()
            ]
        );
        assert_eq!(
            with_and_without_port("https://[::1]/x"),
            [
                "https://[::1]/x".to_string(),
                "https://[::1]:443/x".to_string()
            ]
        );
    }

    #[test]
    fn twilio_json_body_is_signed_by_its_sha256() {
        // Twilio's docs, "Validating Requests are coming from Twilio": a JSON body's
        // SHA-256 is the URL's bodySHA256; the signature covers the URL alone.
        let body = br#"{"property": "value", "boolean": true}"#;
        let hash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
        let url = format!("https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256={hash}");
        let sig = twilio_signature("12345", &url, &[]);
        assert_eq!(sig, "a9nBmqA0ju/hNViExpshrM61xv4=");
        assert!(twilio_request_ok(
            "12345",
            &url,
            &[],
            Some(body),
            sig.as_bytes()
        ));
        assert!(!twilio_request_ok(
            "12345",
            &url,
            &[],
            Some(b"{}"),
            sig.as_bytes()
        ));
        let no_hash = "https://mycompany.com/myapp.php?foo=1";
        let sig = twilio_signature("12345", no_hash, &[]);
        assert!(!twilio_request_ok(
            "12345",
            no_hash,
            &[],
            Some(body),
            sig.as_bytes()
        ));
    }
}
