//! OAuth 2.0 endpoints: token (RFC 6749), introspection (RFC 7662), revocation
//! (RFC 7009), JWK Set and authorization-server metadata (RFC 8414).

use super::params::{self, Basic, Params};
use super::{App, Peer, St, json_response, no_store};
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyward::Error;
use keyward::service::grants::{Client, GrantError, Proven, Revoked, Revoker, parse_scope_param};
use secrecy::SecretString;
use serde_json::{Value, json};

/// An RFC 6749 §5.2 error response.
pub(crate) fn oauth_error(e: &GrantError, basic_used: bool) -> Response {
    // A failure of the service (not of the request): 503, which tells the client to
    // try again (RFC 6749 §5.2 defines no code for it at the token endpoint).
    let unavailable = match e {
        GrantError::Core(
            c @ (Error::Environment(_) | Error::MasterKey(_) | Error::Database(_)),
        ) => {
            tracing::error!(error = %c, "token request failed");
            true
        }
        GrantError::Core(c @ Error::Conflict(_)) => {
            tracing::warn!(error = %c, "token request collided with another write");
            true
        }
        _ => false,
    };
    let status = match e {
        _ if unavailable => StatusCode::SERVICE_UNAVAILABLE,
        GrantError::InvalidClient(_) => StatusCode::UNAUTHORIZED,
        _ => StatusCode::BAD_REQUEST,
    };
    let (code, desc) = match e {
        _ if unavailable => ("temporarily_unavailable", e.description()),
        GrantError::Core(
            c @ (Error::Invalid { .. }
            | Error::NotFound { .. }
            | Error::Refused(_)
            | Error::Blocked { .. }),
        ) => ("invalid_request", c.without_step()),
        GrantError::Core(c @ (Error::PermissionDenied(_) | Error::NotOperator { .. })) => {
            ("unauthorized_client", c.to_string())
        }
        _ => (e.code(), e.description()),
    };
    let mut r = json_response(status, json!({"error": code, "error_description": desc}));
    if unavailable {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(if basic_used {
                "Basic realm=\"keyward\", charset=\"UTF-8\""
            } else {
                "Basic realm=\"keyward\""
            }),
        );
    }
    no_store(r)
}

/// `429` with `Retry-After` (whole seconds, at least 1) and `body(seconds)`.
pub(crate) fn too_many_with(wait: std::time::Duration, body: impl Fn(u64) -> Value) -> Response {
    let secs = retry_secs(wait);
    retry_after(
        json_response(StatusCode::TOO_MANY_REQUESTS, body(secs)),
        secs,
    )
}

/// A wait in whole seconds, rounded up, at least 1 (`Retry-After`).
pub(crate) fn retry_secs(wait: std::time::Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// Adds `Retry-After: secs`.
pub(crate) fn retry_after(mut r: Response, secs: u64) -> Response {
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

fn too_many(wait: std::time::Duration) -> Response {
    too_many_with(
        wait,
        |secs| json!({"error": "rate_limited", "error_description": format!("too many requests; retry in {secs} s")}),
    )
}

/// Client credentials from HTTP Basic or the body; at most one method.
pub(crate) enum Creds {
    None,
    Given {
        id: String,
        secret: Option<String>,
        basic: bool,
    },
}

pub(crate) fn creds(headers: &HeaderMap, p: &Params) -> Result<Creds, GrantError> {
    let body_id = p.get("client_id");
    let body_secret = p.get("client_secret");
    match params::basic(headers) {
        Basic::Bad => Err(GrantError::InvalidClient(
            "malformed HTTP Basic credentials".into(),
        )),
        Basic::Creds(id, secret) => {
            if body_secret.is_some() {
                return Err(GrantError::InvalidRequest(
                    "use one client authentication method: HTTP Basic or client_secret in the body"
                        .into(),
                ));
            }
            if body_id.is_some_and(|b| b != id) {
                return Err(GrantError::InvalidRequest(
                    "client_id in the body differs from the HTTP Basic credentials".into(),
                ));
            }
            Ok(Creds::Given {
                id,
                secret: Some(secret),
                basic: true,
            })
        }
        Basic::None => match body_id {
            Some(id) => Ok(Creds::Given {
                id: id.to_string(),
                secret: body_secret.map(str::to_string),
                basic: false,
            }),
            None if body_secret.is_some() => Err(GrantError::InvalidRequest(
                "client_secret without client_id".into(),
            )),
            None => Ok(Creds::None),
        },
    }
}

/// Applies the rate limits; exempt keys skip them. Past a limit: an OAuth `429`.
pub(crate) async fn rate_limit(
    app: &App,
    headers: &HeaderMap,
    peer: std::net::SocketAddr,
    client: Option<(&str, &str)>,
) -> Result<Option<Proven>, Response> {
    limited(app, headers, peer, client).await.map_err(too_many)
}

/// The rate limits' verdict: how long to wait when past one. Every request counts
/// against its source address; `client` (id and secret, when given) counts against
/// that client only if the secret is right, and skips both limits if that client is
/// an exempt key. A wrong secret spends the sender's budget, never the client's.
/// Within the limits, the client authenticated on the way (if any) is returned, for
/// the request to use rather than check the secret again; with both limits off,
/// nothing is authenticated here.
pub(crate) async fn limited(
    app: &App,
    headers: &HeaderMap,
    peer: std::net::SocketAddr,
    client: Option<(&str, &str)>,
) -> Result<Option<Proven>, std::time::Duration> {
    let limits = app.limits.read().expect("lock").clone();
    if limits.off() {
        return Ok(None);
    }
    let proven = match client {
        Some((id, secret)) => app.svc.prove(id, secret).await.ok(),
        None => None,
    };
    if let Some(p) = &proven
        && let Client::Key(k) = p.client()
        && k.key.rate_exempt
    {
        return Ok(proven);
    }
    limits.check(
        proven.as_ref().map(|p| p.client().client_id()),
        app.address(headers, peer),
    )?;
    Ok(proven)
}

/// [`limited`] for a request made with a signed-in user's token (self-service):
/// charged to the source address and, as its client, to the user.
pub(crate) fn limited_user(
    app: &App,
    headers: &HeaderMap,
    peer: std::net::SocketAddr,
    user_id: &str,
) -> Result<(), std::time::Duration> {
    let limits = app.limits.read().expect("lock").clone();
    limits.check(Some(&format!("user {user_id}")), app.address(headers, peer))
}

/// `POST /auth/token` (and aliases).
pub(crate) async fn token(
    axum::extract::State(app): St,
    axum::extract::ConnectInfo(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match params::parse_body(&headers, &body) {
        Ok(p) => p,
        Err(e) => return oauth_error(&GrantError::InvalidRequest(e.message()), false),
    };
    let c = match creds(&headers, &p) {
        Ok(c) => c,
        Err(e) => {
            let basic = matches!(params::basic(&headers), Basic::Bad);
            if let Err(r) = rate_limit(&app, &headers, peer, None).await {
                return r;
            }
            return oauth_error(&e, basic);
        }
    };
    let (client, basic) = match &c {
        Creds::Given {
            id,
            secret: Some(secret),
            basic,
        } => (Some((id.as_str(), secret.as_str())), *basic),
        Creds::Given { basic, .. } => (None, *basic),
        Creds::None => (None, false),
    };
    let proven = match rate_limit(&app, &headers, peer, client).await {
        Ok(proven) => proven,
        Err(r) => return r,
    };
    match grant(&app, &headers, &p, &c, proven).await {
        Ok(m) => no_store((StatusCode::OK, axum::Json(m)).into_response()),
        Err(e) => {
            app.grant_failed(&e).await;
            oauth_error(&e, basic)
        }
    }
}

async fn grant(
    app: &App,
    headers: &HeaderMap,
    p: &Params,
    c: &Creds,
    proven: Option<Proven>,
) -> Result<keyward::service::tokens::Minted, GrantError> {
    let scopes = parse_scope_param(p.get("scope"))?;
    let gt = p
        .require("grant_type")
        .map_err(GrantError::InvalidRequest)?;
    match gt {
        "client_credentials" => {
            let Creds::Given {
                id,
                secret: Some(secret),
                ..
            } = c
            else {
                return Err(GrantError::InvalidClient(
                    "client_credentials needs client_id and client_secret (HTTP Basic or body)"
                        .into(),
                ));
            };
            app.svc
                .client_credentials(id, secret, proven, scopes.as_deref())
                .await
        }
        "authorization_code" => {
            let Creds::Given {
                id,
                secret: Some(secret),
                ..
            } = c
            else {
                return Err(GrantError::InvalidClient(
                    "authorization_code needs client_id and client_secret (HTTP Basic or body)"
                        .into(),
                ));
            };
            let code = p.require("code").map_err(GrantError::InvalidRequest)?;
            // The other grants are boxed so that the future of every token request
            // stays the size of `client_credentials`' (moved per request).
            Box::pin(app.svc.authorization_code(
                id,
                secret,
                proven,
                code,
                p.get("redirect_uri"),
                p.get("code_verifier"),
            ))
            .await
        }
        "refresh_token" => {
            let rt = p
                .require("refresh_token")
                .map_err(GrantError::InvalidRequest)?;
            Box::pin(async {
                let client = authenticate_optional(app, c, proven).await?;
                app.svc
                    .refresh(rt, client.as_ref(), scopes.as_deref())
                    .await
            })
            .await
        }
        "password" => {
            if !app.svc.settings().password_grant {
                return Err(GrantError::UnsupportedGrantType(
                    "the password grant is disabled (setting password_grant)".into(),
                ));
            }
            Box::pin(authenticate_optional(app, c, proven)).await?;
            let u = p.require("username").map_err(GrantError::InvalidRequest)?;
            let pw = p.require("password").map_err(GrantError::InvalidRequest)?;
            let Some((_, domain_id)) = app.domain(headers) else {
                return Err(GrantError::InvalidRequest(
                    "the request does not name a known domain (Host header)".into(),
                ));
            };
            Box::pin(app.svc.password_login(
                &domain_id,
                u,
                SecretString::from(pw.to_string()),
                scopes.as_deref(),
            ))
            .await
        }
        other => Err(GrantError::UnsupportedGrantType(format!(
            "grant_type {:?} is not supported; use client_credentials, authorization_code, refresh_token{}",
            other.chars().take(64).collect::<String>(),
            if app.svc.settings().password_grant {
                " or password"
            } else {
                ""
            }
        ))),
    }
}

/// Authenticates the client when a secret was given; a bare client_id of the
/// sign-in client (or none) is a public client. `proven`: the client the rate limiter
/// authenticated, if it did.
async fn authenticate_optional(
    app: &App,
    c: &Creds,
    proven: Option<Proven>,
) -> Result<Option<Client>, GrantError> {
    match c {
        Creds::Given { id, .. } if id == keyward::service::tokens::LOGIN_CLIENT => Ok(None),
        Creds::Given {
            id,
            secret: Some(s),
            ..
        } => Ok(Some(app.svc.authenticate_unless(proven, id, s).await?)),
        Creds::Given {
            id, secret: None, ..
        } if id != keyward::service::tokens::LOGIN_CLIENT => Err(GrantError::InvalidClient(
            "client authentication failed".into(),
        )),
        _ => Ok(None),
    }
}

/// The body's parameters and the credentials they and the headers carry
/// (introspection and revocation).
fn parsed(headers: &HeaderMap, body: &[u8]) -> Result<(Params, Creds), Response> {
    let p = params::parse_body(headers, body)
        .map_err(|e| oauth_error(&GrantError::InvalidRequest(e.message()), false))?;
    let basic_bad = matches!(params::basic(headers), Basic::Bad);
    let c = creds(headers, &p).map_err(|e| oauth_error(&e, basic_bad))?;
    Ok((p, c))
}

/// Parses the body and authenticates the client (introspection).
async fn client_request(
    app: &App,
    peer: std::net::SocketAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Client, Params), Response> {
    let (p, c) = parsed(headers, body)?;
    Ok((authenticated(app, peer, headers, c).await?, p))
}

/// The client of a request's credentials, within the rate limits.
async fn authenticated(
    app: &App,
    peer: std::net::SocketAddr,
    headers: &HeaderMap,
    c: Creds,
) -> Result<Client, Response> {
    let Creds::Given {
        id,
        secret: Some(secret),
        basic,
    } = c
    else {
        return Err(oauth_error(
            &GrantError::InvalidClient("client authentication is required".into()),
            false,
        ));
    };
    let proven = rate_limit(app, headers, peer, Some((&id, &secret))).await?;
    app.svc
        .authenticate_unless(proven, &id, &secret)
        .await
        .map_err(|e| oauth_error(&e, basic))
}

/// `POST /oauth/introspect` (RFC 7662).
pub(crate) async fn introspect(
    axum::extract::State(app): St,
    axum::extract::ConnectInfo(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (client, p) = match client_request(&app, peer, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let tok = match p.require("token") {
        Ok(t) => t,
        Err(m) => return oauth_error(&GrantError::InvalidRequest(m), false),
    };
    match app.svc.introspect(&client, tok).await {
        Ok(i) if i.active => {
            let mut v = json!({
                "active": true,
                "scope": i.scope,
                "client_id": i.client_id,
                "sub": i.sub,
                "exp": i.exp,
                "iat": i.iat,
                "jti": i.jti,
                "iss": i.iss,
                "aud": i.aud,
                "token_type": if i.refresh { "refresh_token" } else { "Bearer" },
            });
            // RFC 7662 §2.2: members are optional; one with no value is left out,
            // not sent as null (a refresh token has no jti).
            if let Some(m) = v.as_object_mut() {
                m.retain(|_, x| !x.is_null());
            }
            no_store(json_response(StatusCode::OK, v))
        }
        Ok(_) => no_store(json_response(StatusCode::OK, json!({"active": false}))),
        Err(e) => oauth_error(&GrantError::Core(e), false),
    }
}

/// `POST /oauth/revoke` (RFC 7009): 200 whether or not the token was known; 400
/// `unauthorized_client` for a token issued to another client.
pub(crate) async fn revoke(
    axum::extract::State(app): St,
    axum::extract::ConnectInfo(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (p, c) = match parsed(&headers, &body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    // The sign-in's public client revokes its own tokens with its client id alone (a
    // user signing out); every other client authenticates.
    let public = matches!(&c, Creds::Given { id, secret: None, .. }
        if id == keyward::service::tokens::LOGIN_CLIENT);
    let client = if public {
        if let Err(r) = rate_limit(&app, &headers, peer, None).await {
            return r;
        }
        None
    } else {
        match authenticated(&app, peer, &headers, c).await {
            Ok(c) => Some(c),
            Err(r) => return r,
        }
    };
    let domain = app.domain(&headers);
    let by = match (&client, &domain) {
        (Some(c), _) => Revoker::Client(c),
        (None, Some((_, domain_id))) => Revoker::Login { domain_id },
        (None, None) => {
            return oauth_error(
                &GrantError::InvalidRequest(
                    "the request does not name a known domain (Host header)".into(),
                ),
                false,
            );
        }
    };
    let tok = match p.require("token") {
        Ok(t) => t,
        Err(m) => return oauth_error(&GrantError::InvalidRequest(m), false),
    };
    let origin = app.address(&headers, peer).to_string();
    match app.svc.revoke(by, tok, &origin).await {
        Ok(Revoked::Done) => {
            app.revocations_changed().await;
            no_store(StatusCode::OK.into_response())
        }
        // A confidential client's token, presented without its credentials.
        Ok(Revoked::OtherClient(owner)) if public => oauth_error(
            &GrantError::InvalidClient(format!(
                "the token was issued to {owner}, which must authenticate (HTTP Basic or \
                 client_id and client_secret)"
            )),
            false,
        ),
        // RFC 7009 §2.1: a token issued to another client is refused, not ignored.
        Ok(Revoked::OtherClient(_)) => oauth_error(
            &GrantError::UnauthorizedClient("the token was issued to another client".into()),
            false,
        ),
        Err(e) => oauth_error(&GrantError::Core(e), false),
    }
}

/// `GET /.well-known/jwks.json`.
pub(crate) async fn jwks(axum::extract::State(app): St) -> Response {
    match app.kw().jwks().await {
        Ok(v) => {
            let mut r = json_response(StatusCode::OK, v);
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=60"),
            );
            r
        }
        Err(e) => super::core_error(e),
    }
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414).
pub(crate) async fn metadata(axum::extract::State(app): St) -> Response {
    let s = app.svc.settings();
    let iss = s.issuer.trim_end_matches('/');
    let mut grants = vec!["client_credentials", "authorization_code", "refresh_token"];
    if s.password_grant {
        grants.push("password");
    }
    // RFC 8414 §2 RECOMMENDED: the scopes a client may ask for (shared by every domain).
    let actor = keyward::Actor::system("keyward-serve", "metadata");
    let scopes: Vec<String> = match app.kw().scope_list(&actor).await {
        Ok(v) => v.into_iter().map(|s| s.name).collect(),
        Err(e) => return super::core_error(e),
    };
    json_response(
        StatusCode::OK,
        json!({
            "issuer": iss,
            "authorization_endpoint": format!("{iss}/api/auth/authorize"),
            "token_endpoint": format!("{iss}/auth/token"),
            "jwks_uri": format!("{iss}/.well-known/jwks.json"),
            "introspection_endpoint": format!("{iss}/oauth/introspect"),
            "revocation_endpoint": format!("{iss}/oauth/revoke"),
            "grant_types_supported": grants,
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": scopes,
            // `none`: the public sign-in client keyward-login (password and refresh
            // grants of signed-in users, and revoking them to sign out) sends no secret.
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            // RFC 9207: authorization responses name their issuer (mix-up defence).
            "authorization_response_iss_parameter_supported": true,
        }),
    )
}

#[cfg(test)]
mod tests {
    use keyward::service::grants::TokenService;

    fn future_size<A, B, C, D, F: std::future::Future>(_: impl FnOnce(A, B, C, D) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    fn future_size5<A, B, C, D, E, F: std::future::Future>(
        _: impl FnOnce(A, B, C, D, E) -> F,
    ) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every token request's future is moved (and copied) when axum boxes it; the slow
    /// paths (database reads on a cache miss, the other grants) are boxed so that they
    /// do not set its size. It was 18 KB before; keep it small.
    #[test]
    fn the_token_request_future_stays_small() {
        let token = future_size(super::token);
        let cc = future_size5(TokenService::client_credentials);
        assert!(token < 6 * 1024, "token handler future: {token} bytes");
        assert!(cc < 4 * 1024, "client_credentials future: {cc} bytes");
    }
}
