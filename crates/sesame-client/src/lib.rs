//! A client for Sesame's KMS API that signs like Alibaba's SDKs: ACS3-HMAC-SHA256 by default,
//! HMAC-SHA1 (V1) on request. The CLI, DMS and the tests use it; it never depends on the
//! server.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::HeaderValue;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sesame_api::{KMS_API_VERSION, Timestamp};
use sesame_crypto::sign::{self, headers};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignatureVersion {
    #[default]
    V3,
    V1,
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `https://host:port` or `http://host:port`.
    pub endpoint: String,
    pub access_key_id: String,
    pub access_key_secret: SecretString,
    /// A PEM certificate to trust (Sesame's generated one), for HTTPS.
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification. For testing only.
    pub insecure: bool,
    pub signature: SignatureVersion,
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{code} (HTTP {status}): {message} [RequestId {request_id}]")]
    Api { status: u16, code: String, message: String, request_id: String },
    #[error("cannot reach {endpoint}: {detail}")]
    Transport { endpoint: String, detail: String },
    #[error("unexpected response: {0}")]
    Protocol(String),
    #[error("client configuration: {0}")]
    Config(String),
}

impl ClientError {
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// What a [`Transport`] brings back: the answer's status and body, or why there is none.
pub type Delivery<'a> = Pin<Box<dyn Future<Output = Result<(u16, Bytes), String>> + Send + 'a>>;

/// Carries a signed request to the API by some other way than a socket: a server hands its own
/// gateway to the client it gives DMS, so that DMS's calls skip the loopback connection and are
/// still signed, authenticated, authorized and audited like any other.
pub trait Transport: Send + Sync {
    fn deliver(&self, request: Request<Full<Bytes>>) -> Delivery<'_>;
}

enum Carrier {
    Http(HttpClient<Https, Full<Bytes>>),
    Local(Arc<dyn Transport>),
}

pub struct Client {
    cfg: ClientConfig,
    /// The secret's HMAC keys, set up once rather than per request.
    keys: sign::HmacKeys,
    authority: String,
    carrier: Carrier,
}

/// A request before it is sent, so tests can change a signed request and watch it fail.
pub struct Prepared {
    pub request: Request<Full<Bytes>>,
}

impl Client {
    pub fn new(cfg: ClientConfig) -> Result<Client, ClientError> {
        let authority = authority(&cfg.endpoint)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Config(e.to_string()))?;
        let tls = if cfg.insecure {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerification(provider))).with_no_client_auth()
        } else {
            let mut roots = rustls::RootCertStore::empty();
            if let Some(path) = &cfg.ca_file {
                let file = std::fs::File::open(path).map_err(|e| ClientError::Config(format!("CA file {}: {e}", path.display())))?;
                for cert in rustls_pemfile::certs(&mut std::io::BufReader::new(file)) {
                    let cert = cert.map_err(|e| ClientError::Config(format!("CA file {}: {e}", path.display())))?;
                    roots.add(cert).map_err(|e| ClientError::Config(format!("CA file {}: {e}", path.display())))?;
                }
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        // Without TCP_NODELAY a request written in two pieces (head, then form body) waits for the
        // server's delayed ACK before its second piece goes out: milliseconds per call.
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        tcp.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().wrap_connector(tcp);
        let http = HttpClient::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(https);
        let keys = sign::HmacKeys::new(cfg.access_key_secret.expose_secret().as_bytes());
        Ok(Client { cfg, keys, authority, carrier: Carrier::Http(http) })
    }

    /// A client whose requests `transport` carries. They are signed for `cfg.endpoint` as over
    /// HTTP; `ca_file` and `insecure` do not apply.
    pub fn with_transport(cfg: ClientConfig, transport: Arc<dyn Transport>) -> Result<Client, ClientError> {
        let authority = authority(&cfg.endpoint)?;
        let keys = sign::HmacKeys::new(cfg.access_key_secret.expose_secret().as_bytes());
        Ok(Client { cfg, keys, authority, carrier: Carrier::Local(transport) })
    }

    pub fn endpoint(&self) -> &str {
        &self.cfg.endpoint
    }

    /// Calls a KMS action and returns the response body, or the API's error.
    pub async fn call(&self, action: &str, params: &[(&str, &str)]) -> Result<Value, ClientError> {
        self.call_version(KMS_API_VERSION, action, params).await
    }

    /// Calls an action of another product version (the database registry speaks RDS's
    /// 2014-08-15).
    pub async fn call_version(&self, version: &str, action: &str, params: &[(&str, &str)]) -> Result<Value, ClientError> {
        let nonce = sesame_crypto::random::nonce().map_err(|e| ClientError::Config(e.to_string()))?;
        let prepared = self.prepare_version(version, action, params, Timestamp(now_secs()), &nonce)?;
        self.send(prepared).await
    }

    /// Builds and signs a request. Parameters travel in the form body, which both signature
    /// versions cover.
    pub fn prepare(&self, action: &str, params: &[(&str, &str)], at: Timestamp, nonce: &str) -> Result<Prepared, ClientError> {
        self.prepare_version(KMS_API_VERSION, action, params, at, nonce)
    }

    pub fn prepare_version(
        &self,
        version: &str,
        action: &str,
        params: &[(&str, &str)],
        at: Timestamp,
        nonce: &str,
    ) -> Result<Prepared, ClientError> {
        let date = at.to_string();
        let (query, body) = match self.cfg.signature {
            SignatureVersion::V3 => (String::new(), sign::form_encode(params.iter().copied())),
            SignatureVersion::V1 => {
                let mut all: Vec<(&str, &str)> = Vec::with_capacity(params.len() + 8);
                all.extend_from_slice(params);
                all.extend([
                    ("Action", action),
                    ("Version", version),
                    ("Format", "JSON"),
                    ("AccessKeyId", self.cfg.access_key_id.as_str()),
                    ("SignatureMethod", "HMAC-SHA1"),
                    ("SignatureVersion", "1.0"),
                    ("SignatureNonce", nonce),
                    ("Timestamp", date.as_str()),
                ]);
                let signature = self.keys.v1_signature(&sign::v1_string_to_sign("POST", &all));
                let query = sign::form_encode([("Signature", signature.as_str())]);
                (query, sign::form_encode(all.iter().copied()))
            }
        };
        let uri = if query.is_empty() {
            format!("{}/", self.cfg.endpoint.trim_end_matches('/'))
        } else {
            format!("{}/?{query}", self.cfg.endpoint.trim_end_matches('/'))
        };
        let mut builder = Request::post(uri)
            .header("host", self.authority.as_str())
            .header("accept", "application/json")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("user-agent", concat!("sesame-client/", env!("CARGO_PKG_VERSION")))
            .header(headers::X_ACS_ACTION, action)
            .header(headers::X_ACS_VERSION, version);
        if self.cfg.signature == SignatureVersion::V3 {
            let payload = sesame_crypto::sha256_hex(body.as_bytes());
            let signed = [
                ("accept", "application/json"),
                ("content-type", "application/x-www-form-urlencoded"),
                ("host", self.authority.as_str()),
                (headers::X_ACS_ACTION, action),
                (headers::X_ACS_CONTENT_SHA256, payload.as_str()),
                (headers::X_ACS_DATE, date.as_str()),
                (headers::X_ACS_SIGNATURE_NONCE, nonce),
                (headers::X_ACS_VERSION, version),
            ];
            let names: Vec<&str> = signed.iter().map(|(n, _)| *n).collect();
            let sts = sign::v3_string_to_sign(
                "POST",
                "/",
                &[] as &[(&str, &str)],
                &names,
                |h| signed.iter().find(|(n, _)| *n == h).map(|(_, v)| *v),
                &payload,
                sign::KeyEncoding::Raw,
            );
            let auth = format!(
                "{} Credential={},SignedHeaders={},Signature={}",
                sign::V3_ALGORITHM,
                self.cfg.access_key_id,
                names.join(";"),
                self.keys.v3_signature(&sts)
            );
            builder = builder
                .header(headers::X_ACS_CONTENT_SHA256, payload)
                .header(headers::X_ACS_DATE, date)
                .header(headers::X_ACS_SIGNATURE_NONCE, nonce)
                .header("authorization", auth);
        }
        let request = builder.body(Full::new(Bytes::from(body))).map_err(|e| ClientError::Config(e.to_string()))?;
        Ok(Prepared { request })
    }

    /// Sends a prepared request; parses the body as JSON and maps error statuses.
    pub async fn send(&self, prepared: Prepared) -> Result<Value, ClientError> {
        let (status, body) = self.send_raw(prepared.request).await?;
        let value: Value =
            serde_json::from_slice(&body).map_err(|_| ClientError::Protocol(format!("HTTP {status} with a body that is not JSON")))?;
        if status >= 400 {
            let s = |k: &str| value.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            return Err(ClientError::Api { status, code: s("Code"), message: s("Message"), request_id: s("RequestId") });
        }
        Ok(value)
    }

    /// Sends any request and returns the status and body bytes.
    pub async fn send_raw(&self, mut request: Request<Full<Bytes>>) -> Result<(u16, Bytes), ClientError> {
        if let Ok(v) = HeaderValue::from_str(&self.authority) {
            request.headers_mut().entry("host").or_insert(v);
        }
        let transport = |detail: String| ClientError::Transport { endpoint: self.cfg.endpoint.clone(), detail };
        let exchange = async {
            match &self.carrier {
                Carrier::Http(http) => {
                    let resp = http.request(request).await.map_err(|e| error_chain(&e))?;
                    let status = resp.status().as_u16();
                    let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
                    Ok((status, body))
                }
                Carrier::Local(local) => local.deliver(request).await,
            }
        };
        tokio::time::timeout(self.cfg.timeout, exchange)
            .await
            .map_err(|_| transport(format!("no answer within {:?}", self.cfg.timeout)))?
            .map_err(transport)
    }
}

/// `host:port` of an `https://` or `http://` endpoint.
fn authority(endpoint: &str) -> Result<String, ClientError> {
    Ok(endpoint
        .strip_prefix("https://")
        .or_else(|| endpoint.strip_prefix("http://"))
        .ok_or_else(|| ClientError::Config(format!("endpoint {endpoint:?} must start with https:// or http://")))?
        .trim_end_matches('/')
        .to_string())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
}

/// Accepts any server certificate (`--insecure`). Signatures are still checked with the
/// provider, so the handshake itself is sound; only the identity is not.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Keeps what it is given and answers with a fixed status and body.
    struct Recorder {
        seen: Mutex<Vec<Request<Full<Bytes>>>>,
        answer: (u16, &'static str),
    }

    impl Transport for Recorder {
        fn deliver(&self, request: Request<Full<Bytes>>) -> Delivery<'_> {
            self.seen.lock().expect("not poisoned").push(request);
            Box::pin(async move { Ok((self.answer.0, Bytes::from_static(self.answer.1.as_bytes()))) })
        }
    }

    fn config() -> ClientConfig {
        ClientConfig {
            endpoint: "http://127.0.0.1:8443".into(),
            access_key_id: "LTAIexample".into(),
            access_key_secret: SecretString::from("example-secret".to_string()),
            ca_file: None,
            insecure: false,
            signature: SignatureVersion::V3,
            timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn a_transport_carries_the_signed_request_and_its_answer_is_read_as_over_http() {
        let recorder = Arc::new(Recorder { seen: Mutex::new(Vec::new()), answer: (200, r#"{"RequestId":"r","SecretName":"s"}"#) });
        let client = Client::with_transport(config(), recorder.clone()).unwrap();
        let v = client.call("GetSecretValue", &[("SecretName", "s")]).await.unwrap();
        assert_eq!(v["SecretName"], "s");
        let seen = recorder.seen.lock().unwrap();
        let headers = seen[0].headers();
        assert_eq!(headers["host"], "127.0.0.1:8443", "signed for the endpoint's authority");
        assert!(headers["authorization"].to_str().unwrap().starts_with("ACS3-HMAC-SHA256 Credential=LTAIexample,"));
        assert_eq!(headers["x-acs-action"], "GetSecretValue");
    }

    #[tokio::test]
    async fn an_error_carried_by_a_transport_is_the_apis_error() {
        let body = r#"{"RequestId":"r","Code":"Forbidden.NoPermission","Message":"denied"}"#;
        let recorder = Arc::new(Recorder { seen: Mutex::new(Vec::new()), answer: (403, body) });
        let client = Client::with_transport(config(), recorder).unwrap();
        let e = client.call("GetSecretValue", &[("SecretName", "s")]).await.unwrap_err();
        assert_eq!((e.status(), e.code()), (Some(403), Some("Forbidden.NoPermission")));
    }
}
