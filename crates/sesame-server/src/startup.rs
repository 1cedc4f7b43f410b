//! Start-up with embedded defaults: data directory, root key file, SQLite store, TLS
//! certificate, services, the accept loop and the scheduler.

use crate::gateway::{self, AppState, LocalApi};
use crate::tls;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use sesame_core::{Bootstrap, Clock, Services, SystemClock};
use sesame_crypto::RootKey;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub enum TlsMode {
    /// A certificate generated on first start and kept under `<data dir>/tls/`.
    SelfSigned,
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
    /// Plain HTTP, for a loopback address or behind a TLS-terminating proxy.
    Plain,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub tls: TlsMode,
    pub region: String,
    /// Defaults to `sqlite://<data dir>/sesame.db`.
    pub store_url: Option<String>,
    pub scheduler_every: Duration,
    pub limits: sesame_core::Limits,
    /// Run DMS in this process; `None` leaves it out.
    pub dms: Option<DmsConfig>,
}

#[derive(Debug, Clone, Default)]
pub struct DmsConfig {
    pub settings: sesame_dms::DmsSettings,
    /// Another server's KMS API for DMS to use; this server's own when `None`.
    pub remote_kms: Option<RemoteKms>,
}

/// A KMS that DMS reaches over the network, with an access key made on that server (for a
/// user holding `SesameDmsAccess`).
#[derive(Debug, Clone)]
pub struct RemoteKms {
    pub endpoint: String,
    pub access_key_id: String,
    pub access_key_secret: secrecy::SecretString,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    // The I/O error is part of the message, not a `source`: a chain printed with `{:#}` would
    // repeat it.
    #[error("data directory {path}: {error}")]
    DataDir { path: String, error: std::io::Error },
    #[error(transparent)]
    RootKey(#[from] sesame_crypto::keys::RootKeyError),
    #[error(transparent)]
    Store(#[from] sesame_core::StoreError),
    #[error("initialising services: {0}")]
    Services(String),
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("cannot listen on {addr}: {error}")]
    Listen { addr: SocketAddr, error: std::io::Error },
}

pub struct Running {
    pub addr: SocketAddr,
    pub https: bool,
    /// The certificate clients should trust, when TLS is on.
    pub cert_path: Option<PathBuf>,
    pub root_key_generated: bool,
    pub bootstrap: Bootstrap,
    /// Ends after shutdown is requested and connections have drained.
    pub join: JoinHandle<()>,
}

fn private_dir(path: &std::path::Path) -> Result<(), StartupError> {
    let err = |error| StartupError::DataDir { path: path.display().to_string(), error };
    std::fs::create_dir_all(path).map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    Ok(())
}

pub async fn start(cfg: ServerConfig, shutdown: CancellationToken) -> Result<Running, StartupError> {
    private_dir(&cfg.data_dir)?;
    let (root, root_key_generated) = RootKey::load_or_generate(&cfg.data_dir.join("root.key"))?;
    let store_url = cfg.store_url.clone().unwrap_or_else(|| format!("sqlite://{}", cfg.data_dir.join("sesame.db").display()));
    let store = sesame_store::open(&store_url)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (services, bootstrap) =
        Services::start(store, Arc::new(root), clock, cfg.region.clone(), Arc::new(sesame_engines::Engines), cfg.limits.clone())
            .await
            .map_err(|e| match e {
                sesame_api::Error::Internal(i) => StartupError::Services(i.cause().to_string()),
                other => StartupError::Services(other.to_string()),
            })?;

    let (acceptor, cert_path) = match &cfg.tls {
        TlsMode::Plain => (None, None),
        TlsMode::SelfSigned => {
            let dir = cfg.data_dir.join("tls");
            private_dir(&dir)?;
            let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
            tls::ensure_self_signed(&cert, &key)?;
            (Some(tokio_rustls::TlsAcceptor::from(tls::server_config(&cert, &key)?)), Some(cert))
        }
        TlsMode::Files { cert, key } => (Some(tokio_rustls::TlsAcceptor::from(tls::server_config(cert, key)?)), Some(cert.clone())),
    };

    let listener = TcpListener::bind(cfg.listen).await.map_err(|error| StartupError::Listen { addr: cfg.listen, error })?;
    let addr = listener.local_addr().map_err(|error| StartupError::Listen { addr: cfg.listen, error })?;
    let local = Arc::new(LocalApi::default());
    let dms = match &cfg.dms {
        None => None,
        Some(d) => Some(start_dms(&cfg.data_dir, d, &services, addr, local.clone()).await?),
    };
    let app = Arc::new(AppState { services, dms, nonces: Default::default() });
    local.bind(&app);
    let scheduler = tokio::spawn(crate::scheduler::run(app.clone(), cfg.scheduler_every, shutdown.clone()));
    let https = acceptor.is_some();
    let audit = app.services.audit.clone();
    let join = tokio::spawn(async move {
        accept_loop(listener, acceptor, app, shutdown, scheduler).await;
        // The events of the last requests are in the journal; the next start would copy them,
        // but a stopped server's trail should be whole without it.
        if let Err(e) = audit.flush().await {
            tracing::warn!(error = %e, "the audit journal still holds events; the next start copies them");
        }
    });
    Ok(Running { addr, https, cert_path, root_key_generated, bootstrap, join })
}

/// DMS in this process: a client of this server's API with its own access key (made once, kept
/// sealed like any other), and its own store file, `dms.db`. Its calls to this server go through
/// `local`; to a KMS elsewhere, over HTTP.
async fn start_dms(
    data_dir: &std::path::Path,
    cfg: &DmsConfig,
    services: &Services,
    addr: SocketAddr,
    local: Arc<LocalApi>,
) -> Result<sesame_dms::DmsService, StartupError> {
    let services_err = |e: sesame_api::Error| match e {
        sesame_api::Error::Internal(i) => StartupError::Services(format!("DMS: {}", i.cause())),
        other => StartupError::Services(format!("DMS: {other}")),
    };
    let client = match &cfg.remote_kms {
        Some(r) => sesame_client::Client::new(sesame_client::ClientConfig {
            endpoint: r.endpoint.clone(),
            access_key_id: r.access_key_id.clone(),
            access_key_secret: r.access_key_secret.clone(),
            ca_file: r.ca_file.clone(),
            insecure: false,
            signature: sesame_client::SignatureVersion::V3,
            timeout: Duration::from_secs(30),
        }),
        None => {
            let key = services.identity.service_key(sesame_core::SERVICE_USER_DMS, "SesameDmsAccess").await.map_err(services_err)?;
            let loopback = if addr.ip().is_unspecified() { SocketAddr::from(([127, 0, 0, 1], addr.port())) } else { addr };
            let config = sesame_client::ClientConfig {
                endpoint: format!("http://{loopback}"),
                access_key_id: key.id.to_string(),
                access_key_secret: secrecy::SecretString::from(key.secret.expose_secret().to_string()),
                ca_file: None,
                insecure: false,
                signature: sesame_client::SignatureVersion::V3,
                timeout: Duration::from_secs(30),
            };
            sesame_client::Client::with_transport(config, local)
        }
    }
    .map_err(|e| StartupError::Services(format!("DMS client: {e}")))?;
    let store = sesame_dms::store::DmsStore::open(&data_dir.join("dms.db")).map_err(services_err)?;
    Ok(sesame_dms::DmsService::new(client, store, Arc::new(services.authz.clone()), cfg.settings.clone()))
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    app: Arc<AppState>,
    shutdown: CancellationToken,
    scheduler: JoinHandle<()>,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Answers are small: one buffer and one write(2) per answer instead of a writev(2) of the
    // head and the body (GetSecretValue +1 to +4% in three interleaved pairs).
    builder.writev(false);
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let source_ip: Arc<str> = peer.ip().to_string().into();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let (app, source_ip) = (app.clone(), source_ip.clone());
            async move { Ok::<_, std::convert::Infallible>(gateway::handle(app, source_ip, req).await) }
        });
        match &acceptor {
            None => {
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                let watched = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = watched.await;
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let builder = builder.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                        Ok(Ok(s)) => s,
                        _ => return,
                    };
                    let conn = builder.serve_connection(TokioIo::new(tls), service);
                    let _ = watcher.watch(conn).await;
                });
            }
        }
    }
    drop(listener);
    let _ = scheduler.await;
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after 10 s; closing them");
    }
}
