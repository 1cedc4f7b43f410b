//! The one HTTP endpoint. Handlers stay thin: gather the request, authenticate, parse the
//! action into a typed request, call one service, render.

use crate::auth::{self, SignedRequest};
use crate::names;
use crate::nonces::NonceCache;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Body;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use sesame_api::actions;
use sesame_api::dms::{DMS_API_VERSION, DmsRequest};
use sesame_api::kms::KeyRequest;
use sesame_api::ram::{ACTIONTRAIL_API_VERSION, RAM_API_VERSION, RamRequest};
use sesame_api::rds::{DbRequest, RDS_API_VERSION};
use sesame_api::render::{self, Format, Reply};
use sesame_api::secrets::SecretRequest;
use sesame_api::{Error, KMS_API_VERSION, Params};
use sesame_core::audit::RequestFacts;
use sesame_core::{Ctx, Services};
use sesame_crypto::sign::form_decode;
use sesame_dms::DmsService;
use std::net::Ipv4Addr;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

/// Largest request body accepted. SecretData is at most 30,720 bytes, which form-encodes to at
/// most three times that; 256 KiB leaves room for everything else.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
pub const HOST_ID: &str = "sesame";

/// This server's API for a client in its own process (DMS): each request goes through
/// [`handle`] as one from a loopback connection would, signature, nonce, authorization and audit
/// included, without the connection and its two hand-offs between threads each way.
pub struct LocalApi {
    app: OnceLock<Weak<AppState>>,
    /// The address an in-process request is audited from, as it was when it came over loopback.
    source_ip: Arc<str>,
}

impl Default for LocalApi {
    fn default() -> Self {
        LocalApi { app: OnceLock::new(), source_ip: Ipv4Addr::LOCALHOST.to_string().into() }
    }
}

impl LocalApi {
    /// Points the calls at `app` once it exists (it holds the client that holds this).
    pub fn bind(&self, app: &Arc<AppState>) {
        let _ = self.app.set(Arc::downgrade(app));
    }
}

impl sesame_client::Transport for LocalApi {
    fn deliver(&self, request: Request<Full<Bytes>>) -> sesame_client::Delivery<'_> {
        Box::pin(async move {
            let app = self.app.get().and_then(Weak::upgrade).ok_or_else(|| "the server is not running".to_string())?;
            let response = handle(app, self.source_ip.clone(), request).await;
            let status = response.status().as_u16();
            let body = match response.into_body().collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(never) => match never {},
            };
            Ok((status, body))
        })
    }
}

pub struct AppState {
    pub services: Services,
    /// DMS, when this process runs it (`sesame serve` does by default).
    pub dms: Option<DmsService>,
    pub nonces: NonceCache,
}

/// Answers one request on a connection from `source_ip` (the peer's address as text, made once
/// per connection). hyper calls this directly: there is one endpoint and nothing to route by path,
/// and a router would box every request's future (about 4 KiB, past the allocator's per-thread
/// cache).
pub async fn handle<B>(app: Arc<AppState>, source_ip: Arc<str>, request: Request<B>) -> Response<Full<Bytes>>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let (method, uri, headers) = (parts.method, parts.uri, parts.headers);
    let request_id = sesame_crypto::random::uuid().unwrap_or_else(|_| "00000000-0000-4000-8000-000000000000".into());
    let mut format = Format::negotiate(None, headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let mut action = String::new();
    let mut access_key: Option<Arc<str>> = None;
    // What the audit event records, filled in as the request is understood.
    let mut service = "";
    let mut user: Option<Arc<str>> = None;
    let mut audit_params = serde_json::Map::new();
    let mut resource = None;

    let mut result = async {
        if method != Method::POST && method != Method::GET {
            return Err(Error::UnsupportedHttpMethod(method.to_string()));
        }
        let body =
            Limited::new(body, MAX_BODY_BYTES).collect().await.map_err(|_| Error::RequestTooLarge { limit: MAX_BODY_BYTES })?.to_bytes();
        let query = form_decode(uri.query().unwrap_or(""))
            .ok_or_else(|| Error::invalid("query string", "is not valid URL encoding of UTF-8 text"))?;
        // Query plus form body, in arrival order; a copy only when there is a body.
        let mut all = std::borrow::Cow::Borrowed(query.as_slice());
        if is_form(&headers) || !body.is_empty() {
            let text = std::str::from_utf8(&body).map_err(|_| Error::invalid("body", "is not UTF-8 form data"))?;
            let form = form_decode(text).ok_or_else(|| Error::invalid("body", "is not valid application/x-www-form-urlencoded data"))?;
            all.to_mut().extend(form);
        }
        let params = Params::from_pairs(all.iter().map(|(k, v)| (&**k, &**v)));
        format = Format::negotiate(params.optional("Format"), headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
        action = header_or_param(&headers, &names::X_ACS_ACTION, &params, "Action").unwrap_or_default();
        audit_params = actions::audit_parameters(&params);
        let version = header_or_param(&headers, &names::X_ACS_VERSION, &params, "Version").unwrap_or_default();
        service = actions::service_of_version(&version).unwrap_or_default();
        let realm = &app.services.deps.realm;
        resource = actions::resource_name(service, &realm.region, &realm.account_id, &params);

        let signed = SignedRequest {
            method: method.as_str(),
            path: uri.path(),
            headers: &headers,
            query: &query,
            all_params: &all,
            body: &body,
            source_ip: &source_ip,
        };
        let caller = match auth::authenticate(&signed, &app.services.identity, &app.nonces, app.services.deps.clock.now()).await {
            Ok(caller) => caller,
            Err(e) => {
                // A failed authentication is audited under the key the request claims.
                access_key = Some(claimed_access_key(&headers, &params).into());
                return Err(e);
            }
        };
        access_key = Some(caller.access_key_id.clone());
        user = Some(caller.user.clone());

        if version.is_empty() {
            return Err(Error::missing("Version"));
        }
        if action.is_empty() {
            return Err(Error::missing("Action"));
        }
        let ctx = Ctx { request_id: request_id.clone(), caller };
        dispatch(&app, &ctx, &version, &action, &params).await
    }
    .await;

    // Every request is recorded before it is answered; one that cannot be recorded fails.
    let facts = RequestFacts {
        request_id: &request_id,
        time: app.services.deps.clock.now().seconds(),
        service,
        action: &action,
        access_key_id: access_key.as_deref().unwrap_or_default(),
        user: user.as_deref(),
        source_ip: &source_ip,
        user_agent: headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map_or("", |a| &a[..a.floor_char_boundary(256)]),
        parameters: audit_params,
        resource,
        error: result.as_ref().err().map(|e| (e.code(), e.message())),
    };
    if let Err(e) = app.services.audit.record(facts).await {
        result = Err(e);
    }

    let rendered = match result.and_then(|v| render::success(format, &request_id, v)) {
        Ok(r) => r,
        Err(e) => {
            if let Error::Internal(inner) = &e {
                tracing::error!(request_id = %request_id, action = %action, cause = inner.cause(), "request failed");
            }
            render::error(format, &request_id, HOST_ID, &e)
        }
    };
    tracing::info!(
        request_id = %request_id,
        action = %action,
        access_key = %access_key.as_deref().unwrap_or_default(),
        source_ip = %source_ip,
        status = rendered.status,
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    let mut resp = Response::new(Full::new(Bytes::from(rendered.body)));
    *resp.status_mut() = StatusCode::from_u16(rendered.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(rendered.content_type));
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(names::X_ACS_REQUEST_ID, v);
    }
    resp
}

/// Routes a typed request to its service, by product version then action.
async fn dispatch(app: &AppState, ctx: &Ctx, version: &str, action: &str, params: &Params<'_>) -> Result<Reply, Error> {
    let services = &app.services;
    match version {
        KMS_API_VERSION => {
            if let Some(req) = KeyRequest::parse(action, params)? {
                return services.keys.execute(ctx, req).await.map(Reply::from);
            }
            if let Some(req) = SecretRequest::parse(action, params)? {
                return services.secrets.execute(ctx, req).await;
            }
        }
        RDS_API_VERSION => {
            if let Some(req) = DbRequest::parse(action, params)? {
                // Boxed, as DMS below: their futures hold database sessions and are several
                // KiB, which every request's future would otherwise carry.
                return Box::pin(services.dbs.execute(ctx, req)).await.map(Reply::from);
            }
        }
        RAM_API_VERSION | ACTIONTRAIL_API_VERSION => {
            if let Some(req) = RamRequest::parse(action, params)? {
                return services.identity.execute(ctx, req).await.map(Reply::from);
            }
        }
        DMS_API_VERSION if app.dms.is_some() => {
            if let (Some(req), Some(dms)) = (DmsRequest::parse(action, params)?, &app.dms) {
                return Box::pin(dms.execute(ctx, req)).await.map(Reply::from);
            }
        }
        other => return Err(Error::InvalidVersion(other.to_string())),
    }
    Err(Error::InvalidAction(action.to_string()))
}

/// The access key a request names, signed or not, for the audit of failed authentications.
fn claimed_access_key(headers: &HeaderMap, params: &Params) -> String {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .map(|rest| rest.split([',', ' ']).next().unwrap_or_default().to_string());
    from_header.or_else(|| params.optional("AccessKeyId").map(str::to_string)).unwrap_or_default().chars().take(64).collect()
}

fn is_form(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

fn header_or_param(headers: &HeaderMap, h: &header::HeaderName, params: &Params, p: &str) -> Option<String> {
    headers.get(h).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty()).or_else(|| params.optional(p)).map(str::to_string)
}
