//! `sesame`: runs the server (`sesame serve`) and is a client of its API for everything else.

mod config;
mod output;

use anyhow::{Context, Result};
use base64::Engine;
use clap::{Args, Parser, Subcommand};
use output::Output;
use secrecy::SecretString;
use serde_json::Value;
use sesame_client::{Client, ClientConfig, ClientError, SignatureVersion};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  unexpected failure (bad settings, I/O)
  2  usage error
  3  the resource does not exist (HTTP 404)
  4  the request was rejected (other HTTP 4xx: invalid input, signature, state, permission)
  5  the server failed (HTTP 5xx)
  6  the server could not be reached (connection, TLS, time-out)";

#[derive(Parser)]
#[command(name = "sesame", version, about = "Sesame: a self-hosted, Alibaba Cloud KMS-compatible secrets manager for database credentials")]
#[command(after_help = format!("Examples:
  sesame serve                                  # start with embedded defaults (~/.sesame)
  sesame key create --description app           # create a customer master key
  sesame key encrypt alias/app --text hello     # encrypt with a key or alias
  sesame key list --output table
  sesame api DescribeKey KeyId=key-...          # call any action with raw parameters

Settings come from flags, then SESAME_* environment variables, then ~/.sesame/config.toml
and ~/.sesame/credentials (written by the first `sesame serve`).

{EXIT_CODES}"))]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Global {
    /// API endpoint, e.g. https://127.0.0.1:8443
    #[arg(long, global = true, env = "SESAME_ENDPOINT")]
    endpoint: Option<String>,
    /// Output format
    #[arg(long, short, global = true, env = "SESAME_OUTPUT", value_enum)]
    output: Option<Output>,
    /// PEM certificate to trust for HTTPS (the server's generated certificate)
    #[arg(long, global = true, env = "SESAME_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Do not verify the server's certificate (testing only)
    #[arg(long, global = true)]
    insecure: bool,
    /// Directory of config.toml and credentials
    #[arg(long, global = true, env = "SESAME_CONFIG_DIR")]
    config_dir: Option<PathBuf>,
    /// Request signature: v3 (ACS3-HMAC-SHA256) or v1 (HMAC-SHA1)
    #[arg(long, global = true, default_value = "v3", value_parser = ["v3", "v1"])]
    signature: String,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server
    #[command(after_help = "Examples:
  sesame serve                                   # HTTPS on 127.0.0.1:8443, data in ~/.sesame/data
  sesame serve --plain-http --listen 127.0.0.1:8080
  sesame serve --tls-cert cert.pem --tls-key key.pem --listen 0.0.0.0:8443")]
    Serve(ServeArgs),
    /// Customer master keys and cryptographic operations
    #[command(subcommand)]
    Key(KeyCmd),
    /// Key aliases
    #[command(subcommand)]
    Alias(AliasCmd),
    /// KMS instances
    #[command(subcommand)]
    Instance(InstanceCmd),
    /// Call any API action with raw Name=Value parameters
    #[command(after_help = "Example:\n  sesame api ListKeys PageSize=50")]
    Api {
        action: String,
        #[arg(value_name = "NAME=VALUE")]
        params: Vec<String>,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Data directory (root key, store, TLS certificate)
    #[arg(long, env = "SESAME_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on
    #[arg(long, env = "SESAME_LISTEN", default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Serve plain HTTP instead of HTTPS
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    plain_http: bool,
    /// PEM certificate chain to serve instead of the generated one
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Region used in ARNs
    #[arg(long, env = "SESAME_REGION", default_value = "local")]
    region: String,
    /// Store URL (default sqlite://<data dir>/sesame.db)
    #[arg(long, env = "SESAME_STORE_URL")]
    store: Option<String>,
}

#[derive(Subcommand)]
enum KeyCmd {
    /// Create a symmetric key (Aliyun_AES_256)
    #[command(after_help = "Example:\n  sesame key create --description orders --rotation-interval 90d")]
    Create {
        #[arg(long)]
        description: Option<String>,
        /// Enable automatic rotation with this period (7d to 365d)
        #[arg(long)]
        rotation_interval: Option<String>,
        /// KMS instance (default: the server's default instance)
        #[arg(long)]
        instance: Option<String>,
    },
    /// List keys
    List(PageArgs),
    /// Show a key's metadata
    Describe {
        key: String,
    },
    Enable {
        key: String,
    },
    Disable {
        key: String,
    },
    /// Schedule deletion after a waiting period of 7 to 366 days
    ScheduleDeletion {
        key: String,
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
    CancelDeletion {
        key: String,
    },
    /// Create a new key version and make it primary
    Rotate {
        key: String,
    },
    /// List a key's versions
    Versions {
        key: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Turn automatic rotation on (--interval) or off (--off)
    SetRotation {
        key: String,
        #[arg(long, required_unless_present = "off")]
        interval: Option<String>,
        #[arg(long)]
        off: bool,
    },
    /// Encrypt text, a file or standard input (-)
    #[command(
        after_help = "Examples:\n  sesame key encrypt alias/app --text hello\n  sesame key encrypt key-... --file secret.bin --context '{\"app\":\"orders\"}'"
    )]
    Encrypt {
        key: String,
        #[arg(long, conflicts_with = "file")]
        text: Option<String>,
        #[arg(long)]
        file: Option<PathBuf>,
        #[arg(long)]
        context: Option<String>,
    },
    /// Decrypt a ciphertext blob; prints the plaintext as text, or Base64 if it is not UTF-8
    Decrypt {
        blob: String,
        #[arg(long)]
        context: Option<String>,
    },
    /// Generate a data key for envelope encryption
    DataKey {
        key: String,
        #[arg(long, default_value_t = 32)]
        bytes: u32,
        #[arg(long)]
        context: Option<String>,
        /// Return only the encrypted data key
        #[arg(long)]
        without_plaintext: bool,
    },
    /// Decrypt a blob and encrypt it again under another key
    ReEncrypt {
        blob: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        source_context: Option<String>,
        #[arg(long)]
        context: Option<String>,
    },
}

#[derive(Subcommand)]
enum AliasCmd {
    /// Create alias/NAME for a key
    Create {
        alias: String,
        key: String,
    },
    /// Point an alias at another key
    Update {
        alias: String,
        key: String,
    },
    Delete {
        alias: String,
    },
    List {
        /// Only the aliases of this key
        #[arg(long)]
        key: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
}

#[derive(Subcommand)]
enum InstanceCmd {
    List(PageArgs),
}

#[derive(Args)]
struct PageArgs {
    #[arg(long, default_value_t = 1)]
    page: u32,
    #[arg(long, default_value_t = 10)]
    page_size: u32,
}

impl PageArgs {
    fn params(&self) -> Vec<(String, String)> {
        vec![("PageNumber".into(), self.page.to_string()), ("PageSize".into(), self.page_size.to_string())]
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

fn exit_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<ClientError>() {
        Some(ClientError::Api { status: 404, .. }) => 3,
        Some(ClientError::Api { status, .. }) if *status < 500 => 4,
        Some(ClientError::Api { .. }) => 5,
        Some(ClientError::Transport { .. }) => 6,
        _ => 1,
    }
}

async fn run(cli: Cli) -> Result<()> {
    let dir = config::config_dir(cli.global.config_dir.as_deref());
    match cli.command {
        Command::Serve(args) => serve(args, &dir).await,
        cmd => {
            let file = config::load_file_config(&dir)?;
            let output = cli.global.output.or(match file.output.as_deref() {
                Some("table") => Some(Output::Table),
                Some("json") => Some(Output::Json),
                _ => None,
            });
            let client = client(&cli.global, &dir, file)?;
            let (action, params) = request_for(cmd)?;
            let refs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let value = client.call(&action, &refs).await?;
            present(&action, output, &value)
        }
    }
}

fn client(g: &Global, dir: &std::path::Path, file: config::FileConfig) -> Result<Client> {
    let endpoint = config::require(g.endpoint.clone().or(file.endpoint), "endpoint", "SESAME_ENDPOINT")?;
    let (id, secret) = match (std::env::var("SESAME_ACCESS_KEY_ID"), std::env::var("SESAME_ACCESS_KEY_SECRET")) {
        (Ok(id), Ok(secret)) => (id, SecretString::from(secret)),
        _ => config::require(config::load_credentials(dir)?, "access key", "SESAME_ACCESS_KEY_ID and SESAME_ACCESS_KEY_SECRET")?,
    };
    Ok(Client::new(ClientConfig {
        endpoint,
        access_key_id: id,
        access_key_secret: secret,
        ca_file: g.ca_file.clone().or(file.ca_file),
        insecure: g.insecure || file.insecure.unwrap_or(false),
        signature: if g.signature == "v1" { SignatureVersion::V1 } else { SignatureVersion::V3 },
        timeout: Duration::from_secs(30),
    })?)
}

fn opt(params: &mut Vec<(String, String)>, name: &str, v: Option<String>) {
    if let Some(v) = v {
        params.push((name.into(), v));
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Turns a command into its action and parameters.
fn request_for(cmd: Command) -> Result<(String, Vec<(String, String)>)> {
    let mut p: Vec<(String, String)> = Vec::new();
    let key = |k: String| vec![("KeyId".to_string(), k)];
    let action = match cmd {
        Command::Serve(_) => unreachable_serve()?,
        Command::Api { action, params } => {
            for kv in params {
                let (k, v) = kv.split_once('=').with_context(|| format!("parameter {kv:?} must be NAME=VALUE"))?;
                p.push((k.into(), v.into()));
            }
            action
        }
        Command::Key(k) => match k {
            KeyCmd::Create { description, rotation_interval, instance } => {
                opt(&mut p, "Description", description);
                opt(&mut p, "DKMSInstanceId", instance);
                if let Some(i) = rotation_interval {
                    p.push(("EnableAutomaticRotation".into(), "true".into()));
                    p.push(("RotationInterval".into(), i));
                }
                "CreateKey".into()
            }
            KeyCmd::List(page) => {
                p = page.params();
                "ListKeys".into()
            }
            KeyCmd::Describe { key: k } => {
                p = key(k);
                "DescribeKey".into()
            }
            KeyCmd::Enable { key: k } => {
                p = key(k);
                "EnableKey".into()
            }
            KeyCmd::Disable { key: k } => {
                p = key(k);
                "DisableKey".into()
            }
            KeyCmd::ScheduleDeletion { key: k, days } => {
                p = key(k);
                p.push(("PendingWindowInDays".into(), days.to_string()));
                "ScheduleKeyDeletion".into()
            }
            KeyCmd::CancelDeletion { key: k } => {
                p = key(k);
                "CancelKeyDeletion".into()
            }
            KeyCmd::Rotate { key: k } => {
                p = key(k);
                "CreateKeyVersion".into()
            }
            KeyCmd::Versions { key: k, page } => {
                p = key(k);
                p.extend(page.params());
                "ListKeyVersions".into()
            }
            KeyCmd::SetRotation { key: k, interval, off } => {
                p = key(k);
                p.push(("EnableAutomaticRotation".into(), (!off).to_string()));
                if !off {
                    opt(&mut p, "RotationInterval", interval);
                }
                "UpdateRotationPolicy".into()
            }
            KeyCmd::Encrypt { key: k, text, file, context } => {
                let data = match (text, file) {
                    (Some(t), _) => t.into_bytes(),
                    (None, Some(f)) if f.as_os_str() == "-" => {
                        let mut buf = Vec::new();
                        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).context("reading standard input")?;
                        buf
                    }
                    (None, Some(f)) => std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?,
                    (None, None) => anyhow::bail!("give the plaintext with --text or --file (use --file - for standard input)"),
                };
                p = key(k);
                p.push(("Plaintext".into(), b64(&data)));
                opt(&mut p, "EncryptionContext", context);
                "Encrypt".into()
            }
            KeyCmd::Decrypt { blob, context } => {
                p.push(("CiphertextBlob".into(), blob));
                opt(&mut p, "EncryptionContext", context);
                "Decrypt".into()
            }
            KeyCmd::DataKey { key: k, bytes, context, without_plaintext } => {
                p = key(k);
                p.push(("NumberOfBytes".into(), bytes.to_string()));
                opt(&mut p, "EncryptionContext", context);
                if without_plaintext { "GenerateDataKeyWithoutPlaintext".into() } else { "GenerateDataKey".into() }
            }
            KeyCmd::ReEncrypt { blob, to, source_context, context } => {
                p.push(("CiphertextBlob".into(), blob));
                p.push(("DestinationKeyId".into(), to));
                opt(&mut p, "SourceEncryptionContext", source_context);
                opt(&mut p, "DestinationEncryptionContext", context);
                "ReEncrypt".into()
            }
        },
        Command::Alias(a) => match a {
            AliasCmd::Create { alias, key: k } => {
                p = vec![("AliasName".into(), alias), ("KeyId".into(), k)];
                "CreateAlias".into()
            }
            AliasCmd::Update { alias, key: k } => {
                p = vec![("AliasName".into(), alias), ("KeyId".into(), k)];
                "UpdateAlias".into()
            }
            AliasCmd::Delete { alias } => {
                p = vec![("AliasName".into(), alias)];
                "DeleteAlias".into()
            }
            AliasCmd::List { key: k, page } => {
                p = page.params();
                match k {
                    Some(k) => {
                        p.push(("KeyId".into(), k));
                        "ListAliasesByKeyId".into()
                    }
                    None => "ListAliases".into(),
                }
            }
        },
        Command::Instance(InstanceCmd::List(page)) => {
            p = page.params();
            "ListKmsInstances".into()
        }
    };
    Ok((action, p))
}

fn unreachable_serve() -> Result<String> {
    anyhow::bail!("internal: serve is not an API call")
}

/// Prints a response. Decrypt prints the plaintext itself (for scripts) unless JSON was asked.
fn present(action: &str, output: Option<Output>, value: &Value) -> Result<()> {
    if action == "Decrypt" && output.is_none() {
        let plain = value.get("Plaintext").and_then(Value::as_str).unwrap_or_default();
        let bytes =
            base64::engine::general_purpose::STANDARD.decode(plain).context("the server returned a plaintext that is not Base64")?;
        match String::from_utf8(bytes) {
            Ok(text) => println!("{text}"),
            Err(_) => println!("{plain}"),
        }
        return Ok(());
    }
    output::print(output.unwrap_or(Output::Json), value);
    Ok(())
}

async fn serve(args: ServeArgs, config_dir: &std::path::Path) -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(match std::env::var("SESAME_LOG").as_deref() {
            Ok("debug") => tracing::Level::DEBUG,
            Ok("warn") => tracing::Level::WARN,
            Ok("error") => tracing::Level::ERROR,
            _ => tracing::Level::INFO,
        })
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let data_dir = args.data_dir.unwrap_or_else(|| config_dir.join("data"));
    let tls = match (args.plain_http, args.tls_cert, args.tls_key) {
        (true, _, _) => sesame_server::TlsMode::Plain,
        (false, Some(cert), Some(key)) => sesame_server::TlsMode::Files { cert, key },
        _ => sesame_server::TlsMode::SelfSigned,
    };
    // Signal handlers exist before the server announces itself, so a signal that arrives right
    // after the "listening" line still shuts down gracefully instead of killing the process.
    let mut stop = StopSignals::install()?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let cfg = sesame_server::ServerConfig {
        data_dir: data_dir.clone(),
        listen: args.listen,
        tls,
        region: args.region,
        store_url: args.store,
        scheduler_every: Duration::from_secs(30),
    };
    let running = sesame_server::start(cfg, shutdown.clone()).await.context("starting the server")?;
    let scheme = if running.https { "https" } else { "http" };
    let endpoint = format!("{scheme}://{}", running.addr);
    if running.root_key_generated {
        eprintln!(
            "Generated a root key at {} (mode 0600). Back it up: without it nothing stored can be decrypted.",
            data_dir.join("root.key").display()
        );
    }
    if let Some(admin) = &running.bootstrap.admin_key {
        config::save_after_first_start(config_dir, &endpoint, running.cert_path.as_deref(), &admin.id, admin.secret.expose_secret())?;
        println!("Created the first admin access key (shown only this once; saved to {}):", config_dir.join("credentials").display());
        println!("  AccessKeyId:     {}", admin.id);
        println!("  AccessKeySecret: {}", admin.secret.expose_secret());
    }
    println!("Sesame is listening on {endpoint} (default KMS instance {})", running.bootstrap.default_instance);
    if let Some(cert) = &running.cert_path {
        println!("TLS certificate: {}", cert.display());
    }
    stop.recv().await;
    eprintln!("Shutting down: finishing requests in flight…");
    shutdown.cancel();
    running.join.await.context("waiting for the server to stop")?;
    Ok(())
}

/// SIGINT (Ctrl-C) and SIGTERM, registered when created.
struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> Result<StopSignals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(StopSignals {
                interrupt: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
                terminate: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignals {})
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
