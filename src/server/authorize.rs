//! `GET/POST /api/auth/authorize`: the authorization endpoint (RFC 6749 §4.1, PKCE
//! S256 required). Server-rendered HTML without JavaScript: sign-in, the app and the
//! requested scopes in plain words, a station select when the user has several, and
//! Allow/Deny. Every form carries a CSRF token bound to the request (a MAC keyed by a
//! key derived from the master key); a POST without a valid one is refused.

use super::params::{self, Params};
use super::{App, Peer, St};
use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyward::service::authorize::{Allowed, AuthzError, AuthzRequest, StationHint};
use secrecy::{ExposeSecret, SecretString};

/// The request parameters carried through the form.
const CARRIED: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "euVatId",
    "rn",
    "countryCode",
];

/// Escapes text for HTML content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn pct(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title></head><body><main>\n<h1>{}</h1>\n{body}\n</main></body></html>\n",
        esc(title),
        esc(title)
    );
    let mut r = (status, page).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; form-action 'self'; frame-ancestors 'none'"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

fn error_page(status: StatusCode, msg: &str) -> Response {
    html(
        status,
        "Authorization failed",
        &format!("<p role=\"alert\">{}</p>", esc(msg)),
    )
}

/// 302 to the client's redirect URI with extra query parameters.
/// A 302 to the client's redirect URI with `pairs`, and `iss` (RFC 9207: the client
/// checks the answer comes from the server it asked, as the metadata names it).
fn redirect(app: &App, uri: &str, pairs: &[(&str, &str)]) -> Response {
    let iss = app.svc.settings().issuer.trim_end_matches('/').to_string();
    let mut u = uri.to_string();
    let mut sep = if u.contains('?') { '&' } else { '?' };
    for (k, v) in pairs.iter().chain([&("iss", iss.as_str())]) {
        u.push(sep);
        u.push_str(k);
        u.push('=');
        u.push_str(&pct(v));
        sep = '&';
    }
    let mut r = StatusCode::FOUND.into_response();
    match HeaderValue::from_str(&u) {
        Ok(v) => {
            r.headers_mut().insert(header::LOCATION, v);
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(_) => error_page(StatusCode::BAD_REQUEST, "invalid redirect URI"),
    }
}

fn state_pairs<'a>(p: &'a Params, mut v: Vec<(&'a str, &'a str)>) -> Vec<(&'a str, &'a str)> {
    if let Some(s) = p.get("state") {
        v.push(("state", s));
    }
    v
}

/// The string the CSRF token is bound to: the browser's session cookie and the request.
fn binding(req: &AuthzRequest, sid: &str) -> String {
    format!(
        "{sid}|{}|{}|{}",
        req.client.client_id, req.redirect_uri, req.code_challenge
    )
}

/// The session cookie that binds the form to one browser (double submit).
const COOKIE: &str = "kw_authz";

/// The session cookie's value, when present and well-formed.
fn session(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| {
            (20..=100).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn hint(p: &Params) -> StationHint {
    StationHint {
        eu_vat_id: p.get("euVatId").map(str::to_string),
        rn: p.get("rn").map(str::to_string),
        country_code: p.get("countryCode").map(str::to_string),
    }
}

/// Checks the request; an error response (page or redirect) otherwise.
async fn check(app: &App, headers: &HeaderMap, p: &Params) -> Result<AuthzRequest, Response> {
    match app
        .svc
        .authorize_check(
            p.get("response_type"),
            p.get("client_id"),
            p.get("redirect_uri"),
            p.get("scope"),
            p.get("code_challenge"),
            p.get("code_challenge_method"),
        )
        .await
    {
        Ok(r) => match app.domain(headers) {
            // SPEC §5: the request's domain; none known is a 400.
            None => Err(error_page(
                StatusCode::BAD_REQUEST,
                "the request does not name a known domain (Host header)",
            )),
            Some((_, d)) if d != r.client.domain_id => Err(error_page(
                StatusCode::BAD_REQUEST,
                "this client belongs to another domain",
            )),
            Some(_) => Ok(r),
        },
        Err(AuthzError::NoRedirect(m)) => Err(error_page(StatusCode::BAD_REQUEST, &m)),
        Err(AuthzError::Redirect(code, desc)) => {
            let ru = p.get("redirect_uri").unwrap_or_default();
            Err(redirect(
                app,
                ru,
                &state_pairs(p, vec![("error", code), ("error_description", &desc)]),
            ))
        }
        Err(AuthzError::Core(e)) => {
            tracing::error!(error = %e, "authorization request failed");
            Err(error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "the service is temporarily unavailable",
            ))
        }
    }
}

enum Step<'a> {
    SignIn {
        error: Option<&'a str>,
    },
    Station {
        user_id: &'a str,
        ticket: &'a str,
        stations: &'a [(String, String, bool)],
    },
}

async fn page(app: &App, p: &Params, req: &AuthzRequest, sid: &str, step: Step<'_>) -> Response {
    let csrf = match app.svc.csrf_token(&binding(req, sid)).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "csrf token failed");
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "the service is temporarily unavailable",
            );
        }
    };
    let mut b = String::new();
    b.push_str(&format!(
        "<p><strong>{}</strong> asks for access to your account with these permissions:</p>\n<ul>\n",
        esc(&req.client.name)
    ));
    for (s, d) in &req.scopes {
        let text = if d.is_empty() { s } else { d };
        b.push_str(&format!(
            "<li>{} (<code>{}</code>)</li>\n",
            esc(text),
            esc(s)
        ));
    }
    b.push_str("</ul>\n<form method=\"post\" action=\"/api/auth/authorize\">\n");
    for k in CARRIED {
        if let Some(v) = p.get(k) {
            b.push_str(&format!(
                "<input type=\"hidden\" name=\"{k}\" value=\"{}\">\n",
                esc(v)
            ));
        }
    }
    b.push_str(&format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">\n",
        esc(&csrf)
    ));
    let mut status = StatusCode::OK;
    match step {
        Step::SignIn { error } => {
            if let Some(e) = error {
                status = StatusCode::UNAUTHORIZED;
                b.push_str(&format!("<p role=\"alert\">{}</p>\n", esc(e)));
            }
            b.push_str(
                "<p><label for=\"email\">Email</label><br>\
                 <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\"></p>\n\
                 <p><label for=\"password\">Password</label><br>\
                 <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\"></p>\n",
            );
        }
        Step::Station {
            user_id,
            ticket,
            stations,
        } => {
            b.push_str(&format!(
                "<input type=\"hidden\" name=\"uid\" value=\"{}\">\n\
                 <input type=\"hidden\" name=\"ticket\" value=\"{}\">\n\
                 <p><label for=\"station\">Station</label><br><select id=\"station\" name=\"station\">\n",
                esc(user_id),
                esc(ticket)
            ));
            for (id, label, sel) in stations {
                b.push_str(&format!(
                    "<option value=\"{}\"{}>{}</option>\n",
                    esc(id),
                    if *sel { " selected" } else { "" },
                    esc(label)
                ));
            }
            b.push_str("</select></p>\n");
        }
    }
    b.push_str(
        "<p><button type=\"submit\" name=\"action\" value=\"allow\">Allow</button> \
         <button type=\"submit\" name=\"action\" value=\"deny\">Deny</button></p>\n</form>",
    );
    let mut r = html(status, &format!("Sign in to {}", req.client.name), &b);
    // The form's answer is a redirect to the client, which Chromium and Safari check
    // against `form-action` too: the (registered, validated) redirect URI's origin is
    // allowed beside this server's own.
    if let Some(origin) = url::Url::parse(&req.redirect_uri)
        .ok()
        .map(|u| u.origin())
        .filter(url::Origin::is_tuple)
        && let Ok(v) = HeaderValue::from_str(&format!(
            "default-src 'none'; form-action 'self' {}; frame-ancestors 'none'",
            origin.ascii_serialization()
        ))
    {
        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    let secure = if app.svc.settings().issuer.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{COOKIE}={sid}; Path=/api/auth/authorize; HttpOnly; SameSite=Lax; Max-Age=900{secure}"
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `GET /api/auth/authorize`.
pub(crate) async fn authorize_get(
    axum::extract::State(app): St,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let p = match params::parse_form(q.unwrap_or_default().as_bytes()) {
        Ok(p) => p,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e.message()),
    };
    let req = match check(&app, &headers, &p).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let sid = session(&headers).unwrap_or_else(|| {
        keyward::secret::generate_secret("")
            .expose_secret()
            .to_string()
    });
    page(&app, &p, &req, &sid, Step::SignIn { error: None }).await
}

fn ticket_binding(req: &AuthzRequest, sid: &str, user_id: &str) -> String {
    format!("signed-in|{user_id}|{}", binding(req, sid))
}

/// `POST /api/auth/authorize` (the form).
pub(crate) async fn authorize_post(
    axum::extract::State(app): St,
    axum::extract::ConnectInfo(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match params::parse_body(&headers, &body) {
        Ok(p) => p,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e.message()),
    };
    let req = match check(&app, &headers, &p).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let fail = |e: keyward::Error| {
        tracing::error!(error = %e, "authorization failed");
        error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "the service is temporarily unavailable",
        )
    };
    let Some(sid) = session(&headers) else {
        return error_page(
            StatusCode::FORBIDDEN,
            "the sign-in session is missing (cookies must be enabled); start again from the application",
        );
    };
    match app
        .svc
        .csrf_check(p.get("csrf").unwrap_or_default(), &binding(&req, &sid))
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return error_page(
                StatusCode::FORBIDDEN,
                "the form has expired or was not sent from this page; start again from the application",
            );
        }
        Err(e) => return fail(e),
    }
    if p.get("action") == Some("deny") {
        return redirect(
            &app,
            &req.redirect_uri,
            &state_pairs(&p, vec![("error", "access_denied")]),
        );
    }
    if p.get("action") != Some("allow") {
        return error_page(StatusCode::BAD_REQUEST, "choose Allow or Deny");
    }
    if let Err(wait) = super::oauth::limited(&app, &headers, peer, None).await {
        // A person at a browser: a page, with the same `Retry-After` as the API's.
        let secs = super::oauth::retry_secs(wait);
        let page = error_page(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "Too many sign-in attempts from your address. Wait {secs} s, then go back and try again."
            ),
        );
        return super::oauth::retry_after(page, secs);
    }
    // Who: a ticket from a previous step, or email and password.
    let user_id = match (p.get("uid"), p.get("ticket")) {
        (Some(uid), Some(t)) => match app
            .svc
            .csrf_check(t, &ticket_binding(&req, &sid, uid))
            .await
        {
            Ok(true) => uid.to_string(),
            Ok(false) => {
                return page(
                    &app,
                    &p,
                    &req,
                    &sid,
                    Step::SignIn {
                        error: Some("your sign-in has expired; sign in again"),
                    },
                )
                .await;
            }
            Err(e) => return fail(e),
        },
        _ => {
            // check() made sure the request's domain is the app's.
            let domain_id = req.client.domain_id.clone();
            let (Some(email), Some(pw)) = (p.get("email"), p.get("password")) else {
                return page(
                    &app,
                    &p,
                    &req,
                    &sid,
                    Step::SignIn {
                        error: Some("enter your email and password"),
                    },
                )
                .await;
            };
            match app
                .svc
                .check_password(&domain_id, email, SecretString::from(pw.to_string()))
                .await
            {
                Ok(Some(id)) => id,
                Ok(None) => {
                    return page(
                        &app,
                        &p,
                        &req,
                        &sid,
                        Step::SignIn {
                            error: Some("wrong email or password"),
                        },
                    )
                    .await;
                }
                Err(e) => return fail(e),
            }
        }
    };
    let h = hint(&p);
    let station = p.get("station");
    let stations = match app.svc.user_stations(&user_id).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    if let Some(chosen) = station
        && !stations.iter().any(|s| s.id == chosen)
    {
        return error_page(
            StatusCode::BAD_REQUEST,
            "the chosen station is not one of this account's stations; start again from the application",
        );
    }
    if station.is_none() && stations.len() > 1 {
        let pre = stations.iter().position(|s| h.matches(s));
        let opts: Vec<(String, String, bool)> = stations
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut label = s.name.clone();
                if let Some(v) = &s.eu_vat_id {
                    label.push_str(&format!(" ({v})"));
                }
                (s.id.clone(), label, Some(i) == pre)
            })
            .collect();
        let ticket = match app
            .svc
            .csrf_token(&ticket_binding(&req, &sid, &user_id))
            .await
        {
            Ok(t) => t,
            Err(e) => return fail(e),
        };
        return page(
            &app,
            &p,
            &req,
            &sid,
            Step::Station {
                user_id: &user_id,
                ticket: &ticket,
                stations: &opts,
            },
        )
        .await;
    }
    let origin = app.address(&headers, peer).to_string();
    match app
        .svc
        .authorize_allow(&req, &user_id, station, &h, &origin)
        .await
    {
        Ok(Allowed::Code(code)) => redirect(
            &app,
            &req.redirect_uri,
            &state_pairs(&p, vec![("code", code.expose_secret())]),
        ),
        // RFC 6749 §4.1.2.1: the client learns which scopes it may not have, and may
        // ask again for less.
        Ok(Allowed::Exceeds(missing)) => redirect(
            &app,
            &req.redirect_uri,
            &state_pairs(
                &p,
                vec![
                    ("error", "invalid_scope"),
                    (
                        "error_description",
                        &format!(
                            "the account's role does not grant scope(s) {}",
                            missing.join(", ")
                        ),
                    ),
                ],
            ),
        ),
        Ok(Allowed::NotThisAccount) => {
            page(
                &app,
                &p,
                &req,
                &sid,
                Step::SignIn {
                    error: Some("this account cannot authorize this application"),
                },
            )
            .await
        }
        Err(e) => fail(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(pct("a b&c=d"), "a%20b%26c%3Dd");
    }
}
