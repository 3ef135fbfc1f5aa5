//! The JSON API: sign-in and renewal (the seeds' shapes), sign-up, the demo protected
//! resource, self-service personal tokens and the public affiliate lookup.

use super::oauth;
use super::params::{self, Params};
use super::{App, Peer, St, api_error, core_error, field_name, json_response, no_store};
use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use keyward::service::directory::{NewUser, StationIds, new_user_problems};
use keyward::service::grants::GrantError;
use keyward::service::tokens::{LOGIN_CLIENT, Minted};
use keyward::store::directory::{StationQuery, StationRow};
use keyward::token::AccessClaims;
use keyward::{Actor, Error};
use secrecy::SecretString;
use serde_json::json;
use std::collections::HashMap;

fn body(headers: &HeaderMap, b: &[u8]) -> Result<Params, Response> {
    params::parse_body(headers, b).map_err(|e| match e {
        params::ParamError::ContentType => {
            api_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, &e.message())
        }
        _ => api_error(StatusCode::BAD_REQUEST, &e.message()),
    })
}

/// The token endpoints' limits, answered in the API's error shape (`Retry-After` kept).
async fn rate_limit(
    app: &App,
    headers: &HeaderMap,
    peer: std::net::SocketAddr,
) -> Result<(), Response> {
    oauth::limited(app, headers, peer, None)
        .await
        .map(drop)
        .map_err(too_many)
}

fn too_many(wait: std::time::Duration) -> Response {
    oauth::too_many_with(
        wait,
        |secs| json!({"status": "error", "msg": format!("too many requests; retry in {secs} s")}),
    )
}

fn login_reply(m: Minted) -> Response {
    no_store(json_response(
        StatusCode::OK,
        json!({
            "token": m.access_token,
            "token_type": "Bearer",
            "expires_in": m.expires_in,
            "refresh_token": m.refresh_token,
            "scope": m.scope,
        }),
    ))
}

/// `POST /consumer/login`: `{"username","password"}` → `{"token","expires_in","refresh_token"}`.
/// Every answer, errors too, is `no-store`, as the token endpoint's are.
pub(crate) async fn login(st: St, peer: Peer, headers: HeaderMap, b: Bytes) -> Response {
    no_store(login_inner(st, peer, headers, b).await)
}

async fn login_inner(
    axum::extract::State(app): St,
    axum::extract::ConnectInfo(peer): Peer,
    headers: HeaderMap,
    b: Bytes,
) -> Response {
    if let Err(r) = rate_limit(&app, &headers, peer).await {
        return r;
    }
    let p = match body(&headers, &b) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some((_, domain_id)) = app.domain(&headers) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "the request does not name a known domain",
        );
    };
    let (u, pw) = match (p.require("username"), p.require("password")) {
        (Ok(u), Ok(pw)) => (u, pw),
        (Err(m), _) | (_, Err(m)) => return api_error(StatusCode::BAD_REQUEST, &m),
    };
    match app
        .svc
        .password_login(&domain_id, u, SecretString::from(pw.to_string()), None)
        .await
    {
        Ok(m) => login_reply(m),
        Err(GrantError::Core(e)) => core_error(e),
        Err(_) => api_error(StatusCode::UNAUTHORIZED, "Invalid username or password"),
    }
}

/// `POST /api/auth/renew`: `{"refresh_token"}` → a new pair (rotation); `no-store`.
pub(crate) async fn renew(st: St, peer: Peer, headers: HeaderMap, b: Bytes) -> Response {
    no_store(renew_inner(st, peer, headers, b).await)
}

async fn renew_inner(
    axum::extract::State(app): St,
    axum::extract::ConnectInfo(peer): Peer,
    headers: HeaderMap,
    b: Bytes,
) -> Response {
    if let Err(r) = rate_limit(&app, &headers, peer).await {
        return r;
    }
    let p = match body(&headers, &b) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let rt = match p.require("refresh_token") {
        Ok(rt) => rt,
        Err(m) => return api_error(StatusCode::BAD_REQUEST, &m),
    };
    match app.svc.refresh(rt, None, None).await {
        Ok(m) => login_reply(m),
        Err(GrantError::Core(e)) => core_error(e),
        Err(e) => {
            app.grant_failed(&e).await;
            api_error(StatusCode::UNAUTHORIZED, "Invalid refresh token")
        }
    }
}

/// The members of a sign-up's body that Keyward reads.
const SIGNUP_FIELDS: [&str; 7] = [
    "email",
    "password",
    "name",
    "station",
    "euVatId",
    "rn",
    "countryCode",
];

/// `POST /signup`: user + initial station in the request's domain, no token. The
/// answer is the same whether or not the email was already registered.
pub(crate) async fn signup(
    axum::extract::State(app): St,
    axum::extract::ConnectInfo(peer): Peer,
    headers: HeaderMap,
    b: Bytes,
) -> Response {
    if let Err(r) = rate_limit(&app, &headers, peer).await {
        return r;
    }
    let p = match body(&headers, &b) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some((domain, _)) = app.domain(&headers) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "the request does not name a known domain",
        );
    };
    let new = NewUser {
        email: p.get("email").unwrap_or_default().to_string(),
        domain,
        name: p.get("name").map(str::to_string),
        role: None,
        password: p.get("password").map(|s| SecretString::from(s.to_string())),
        station: p.get("station").map(str::to_string),
        station_ids: StationIds {
            eu_vat_id: p.get("euVatId").map(str::to_string),
            rn: p.get("rn").map(str::to_string),
            country: p.get("countryCode").map(str::to_string),
        },
    };
    // Every field's problem at once (a form shows them beside their fields).
    let mut errors = serde_json::Map::new();
    let mut msgs = Vec::new();
    for field in SIGNUP_FIELDS {
        if let Some(m) = p.not_a_string(field) {
            errors.insert(field.into(), json!("a string"));
            msgs.push(m);
        }
    }
    for (field, given) in [
        ("email", p.get("email").is_some()),
        ("password", new.password.is_some()),
    ] {
        if !given && !errors.contains_key(field) {
            errors.insert(field.into(), json!("required"));
            msgs.push(format!("{field} is required"));
        }
    }
    for e in new_user_problems(&new) {
        if let Error::Invalid {
            field, accepted, ..
        } = &e
            && !errors.contains_key(field_name(field))
        {
            errors.insert(field_name(field).into(), json!(accepted));
            msgs.push(e.to_string());
        }
    }
    if !errors.is_empty() {
        return json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"status": "error", "msg": msgs.join("; "), "errors": errors}),
        );
    }
    let origin = app.address(&headers, peer).to_string();
    let out = app.svc.signup(new, &origin).await;
    match out {
        Ok(()) | Err(Error::Conflict(_)) => json_response(
            StatusCode::CREATED,
            json!({"status": "ok", "msg": "Sign-up received. API access is enabled by support."}),
        ),
        Err(e) => core_error(e),
    }
}

/// Verifies the bearer token; 401 with the API's error shape otherwise.
async fn bearer(app: &App, headers: &HeaderMap) -> Result<AccessClaims, Response> {
    let unauthorized = |with_error: bool| {
        let mut r = api_error(StatusCode::UNAUTHORIZED, "Invalid token");
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(if with_error {
                "Bearer realm=\"keyward\", error=\"invalid_token\""
            } else {
                "Bearer realm=\"keyward\""
            }),
        );
        r
    };
    let tok = match params::bearer(headers) {
        params::Bearer::Token(t) => t,
        params::Bearer::Absent => return Err(unauthorized(false)),
        params::Bearer::Malformed => {
            return Err(malformed_bearer(
                "the Authorization header's Bearer token is not a single token",
            ));
        }
    };
    app.verify(tok).await.map_err(|_| unauthorized(true))
}

/// RFC 6750 §3.1 `invalid_request` for a protected resource: 400 with the challenge.
pub(crate) fn malformed_bearer(msg: &str) -> Response {
    let mut r = api_error(StatusCode::BAD_REQUEST, msg);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"keyward\", error=\"invalid_request\""),
    );
    r
}

fn insufficient(scope: &str) -> Response {
    let mut r = api_error(
        StatusCode::FORBIDDEN,
        &format!("Insufficient scope: {scope} is required"),
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_str(&format!(
            "Bearer realm=\"keyward\", error=\"insufficient_scope\", scope=\"{scope}\""
        ))
        .expect("ascii"),
    );
    r
}

fn station_json(s: &StationRow) -> serde_json::Value {
    json!({
        "id": s.id,
        "name": s.name,
        "euVatId": s.eu_vat_id,
        "rn": s.registration_number,
        "countryCode": s.country_code,
        "owner": s.user_id,
    })
}

fn actor(app: &App, headers: &HeaderMap, peer: std::net::SocketAddr, c: &AccessClaims) -> Actor {
    Actor::system(
        "keyward-serve",
        &format!("{} for {}", app.address(headers, peer), c.sub),
    )
}

/// `GET /api/v1/stations` (scope `read`): the caller's domain's stations.
pub(crate) async fn stations(
    axum::extract::State(app): St,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let c = match bearer(&app, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !c.has_scope("read") {
        return insufficient("read");
    }
    let Some(domain_id) = app.svc.domain_id(&c.aud) else {
        return api_error(StatusCode::UNAUTHORIZED, "Invalid token");
    };
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<i64>().ok())
        .unwrap_or(100)
        .clamp(1, 500);
    let sq = StationQuery {
        domains: Some(vec![domain_id]),
        limit,
        ..Default::default()
    };
    match app
        .kw()
        .station_list(&Actor::system("keyward-serve", "api"), sq)
        .await
    {
        Ok(rows) => json_response(
            StatusCode::OK,
            json!({"status": "ok", "stations": rows.iter().map(station_json).collect::<Vec<_>>()}),
        ),
        Err(e) => core_error(e),
    }
}

/// `POST /api/v1/stations` (scope `write`): a station for the token's user.
pub(crate) async fn station_create(
    axum::extract::State(app): St,
    axum::extract::ConnectInfo(peer): Peer,
    headers: HeaderMap,
    b: Bytes,
) -> Response {
    let c = match bearer(&app, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !c.has_scope("write") {
        return insufficient("write");
    }
    let p = match body(&headers, &b) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(name) = p.get("name") else {
        return json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"status": "error", "msg": "name is required", "errors": {"name": "required"}}),
        );
    };
    let a = actor(&app, &headers, peer, &c);
    match app
        .kw()
        .station_add(
            &a,
            name,
            &c.sub,
            None,
            p.get("euVatId"),
            p.get("rn"),
            p.get("countryCode"),
        )
        .await
    {
        Ok(s) => json_response(
            StatusCode::CREATED,
            json!({"status": "ok", "station": station_json(&s)}),
        ),
        Err(e) => core_error(e),
    }
}

/// Self-service needs a signed-in user's token (`keyward-login`).
async fn signed_in(app: &App, headers: &HeaderMap) -> Result<AccessClaims, Response> {
    let c = bearer(app, headers).await?;
    if c.client_id != LOGIN_CLIENT {
        return Err(api_error(
            StatusCode::FORBIDDEN,
            "a signed-in user's token is required (from /consumer/login)",
        ));
    }
    Ok(c)
}

/// `GET /api/v1/tokens`: the signed-in user's tokens.
pub(crate) async fn tokens(axum::extract::State(app): St, headers: HeaderMap) -> Response {
    let c = match signed_in(&app, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    match app.svc.my_tokens(&c.sub).await {
        Ok(rows) => no_store(json_response(
            StatusCode::OK,
            json!({"status": "ok", "tokens": rows}),
        )),
        Err(e) => core_error(e),
    }
}

/// `POST /api/v1/tokens` `{"scope"?, "ttl"?}`: a personal API token within the role.
pub(crate) async fn token_create(
    axum::extract::State(app): St,
    axum::extract::ConnectInfo(peer): Peer,
    headers: HeaderMap,
    b: Bytes,
) -> Response {
    let c = match signed_in(&app, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    // Minting is a token endpoint: limited per address and per user.
    if let Err(wait) = oauth::limited_user(&app, &headers, peer, &c.sub) {
        return too_many(wait);
    }
    let p = match body(&headers, &b) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let scopes = p.get("scope").or(p.get("scopes")).map(|s| {
        s.split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    });
    let origin = format!("{} for {}", app.address(&headers, peer), c.sub);
    match app
        .svc
        .create_my_token(&c.sub, scopes, p.get("ttl").map(str::to_string), &origin)
        .await
    {
        Ok(m) => no_store(json_response(StatusCode::CREATED, json!(m))),
        Err(e) => core_error(e),
    }
}

/// `DELETE /api/v1/tokens/{jti}`: revokes one of the user's own tokens.
pub(crate) async fn token_revoke(
    axum::extract::State(app): St,
    axum::extract::ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(jti): Path<String>,
) -> Response {
    let c = match signed_in(&app, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let origin = format!("{} for {}", app.address(&headers, peer), c.sub);
    match app.svc.revoke_my_token(&c.sub, &jti, &origin).await {
        Ok(n) => {
            app.revocations_changed().await;
            json_response(StatusCode::OK, json!({"status": "ok", "revoked": n}))
        }
        Err(e) => core_error(e),
    }
}

/// `GET /api/lookup?affiliateId=...`: read-only public lookup.
pub(crate) async fn lookup(
    axum::extract::State(app): St,
    axum::extract::ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = rate_limit(&app, &headers, peer).await {
        return r;
    }
    let Some(id) = q.get("affiliateId").filter(|v| !v.is_empty()) else {
        return api_error(StatusCode::BAD_REQUEST, "affiliateId is required");
    };
    let unknown = || api_error(StatusCode::NOT_FOUND, "Unknown affiliate id");
    match app.svc.affiliate_lookup(id).await {
        Ok(Some(v)) => {
            // An affiliate id is valid only on its own domain's host (when one is named).
            let host_domain = app.domain(&headers).map(|d| d.0);
            if host_domain.is_some_and(|d| v["domain"].as_str() != Some(d.as_str())) {
                return unknown();
            }
            let mut v = v;
            v["status"] = json!("ok");
            json_response(StatusCode::OK, v)
        }
        Ok(None) => unknown(),
        Err(e) => core_error(e),
    }
}
