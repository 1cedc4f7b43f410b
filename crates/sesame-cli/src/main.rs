//! `sesame`: runs the server (`sesame serve`) and is a client of its API for everything else.

mod bench;
mod bench_db;
mod config;
mod dms;
mod iam;
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
  6  the server could not be reached (connection, TLS, time-out)
  7  sesame audit verify found the audit trail altered";

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
    /// Secrets: versions, stages, tags, policies, deletion windows
    #[command(subcommand)]
    Secret(SecretCmd),
    /// Database servers Sesame manages accounts on
    #[command(subcommand)]
    Db(DbCmd),
    /// Data Management: log on to databases with KMS secrets, run SQL, read the statement audit
    #[command(subcommand)]
    Dms(dms::DmsCmd),
    /// Users (RAM)
    #[command(subcommand)]
    User(iam::UserCmd),
    /// Access keys of users; a secret is shown once, at creation
    #[command(subcommand, name = "access-key")]
    AccessKey(iam::AccessKeyCmd),
    /// RAM policies: create, attach to users
    #[command(subcommand)]
    Policy(iam::PolicyCmd),
    /// The audit trail of every request: list, export, verify
    #[command(subcommand)]
    Audit(iam::AuditCmd),
    /// Benchmarks: request rates and latencies, rotations, DMS logons, scale (run by hand)
    #[command(subcommand)]
    Bench(bench::BenchCmd),
    /// KMS instances
    #[command(subcommand)]
    Instance(InstanceCmd),
    /// Call any API action with raw Name=Value parameters
    #[command(after_help = "Example:\n  sesame api ListKeys PageSize=50")]
    Api {
        action: String,
        #[arg(value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// API version (default: the version of the action's product)
        #[arg(long)]
        api_version: Option<String>,
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
    /// Rotations of one secret per hour (Alibaba's limit is 50)
    #[arg(long, env = "SESAME_MAX_ROTATIONS_PER_HOUR", default_value_t = 50)]
    max_rotations_per_hour: usize,
    /// Seconds a worker holds a secret's rotation before another may take it over
    #[arg(long, env = "SESAME_ROTATION_LEASE_SECS", default_value_t = 60)]
    rotation_lease_secs: i64,
    /// Seconds before the first retry of a failed rotation (doubling per failure, at most an hour)
    #[arg(long, env = "SESAME_ROTATION_RETRY_SECS", default_value_t = 30)]
    rotation_retry_secs: i64,
    /// Do not run DMS in this process
    #[arg(long, env = "SESAME_NO_DMS")]
    no_dms: bool,
    /// Keep the text of each statement run through DMS in its audit (kind, outcome and row
    /// count are always kept)
    #[arg(long, env = "SESAME_DMS_AUDIT_STATEMENTS", default_value_t = true, action = clap::ArgAction::Set)]
    dms_audit_statements: bool,
    /// Another server's KMS API for DMS (default: this server's). DMS signs its calls there
    /// with SESAME_DMS_ACCESS_KEY_ID and SESAME_DMS_ACCESS_KEY_SECRET, a key made on that
    /// server for a user holding SesameDmsAccess
    #[arg(long, env = "SESAME_DMS_KMS_ENDPOINT")]
    dms_kms_endpoint: Option<String>,
    /// Certificate to trust for --dms-kms-endpoint over HTTPS
    #[arg(long, env = "SESAME_DMS_KMS_CA_FILE")]
    dms_kms_ca_file: Option<PathBuf>,
    /// Seconds between runs of the scheduler (rotations due, deletion windows)
    #[arg(long, env = "SESAME_SCHEDULER_SECS", default_value_t = 30)]
    scheduler_secs: u64,
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

#[derive(Args)]
struct ValueArgs {
    /// The value. Other users of this machine can read command lines (ps): prefer --file,
    /// or --file - with the value on standard input
    #[arg(long, conflicts_with = "file")]
    value: Option<String>,
    /// Read the value from a file (- for standard input)
    #[arg(long)]
    file: Option<PathBuf>,
    /// Store the value as binary (the file's bytes, sent Base64-encoded)
    #[arg(long)]
    binary: bool,
}

impl ValueArgs {
    fn params(self) -> Result<Vec<(String, String)>> {
        let bytes = match (self.value, self.file) {
            (Some(v), _) => v.into_bytes(),
            (None, Some(f)) if f.as_os_str() == "-" => {
                let mut buf = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).context("reading standard input")?;
                buf
            }
            (None, Some(f)) => std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?,
            (None, None) => anyhow::bail!("give the value with --value or --file (use --file - for standard input)"),
        };
        Ok(if self.binary {
            vec![("SecretData".into(), b64(&bytes)), ("SecretDataType".into(), "binary".into())]
        } else {
            vec![("SecretData".into(), String::from_utf8(bytes).context("the value is not UTF-8 text; use --binary")?)]
        })
    }
}

fn key_values(items: &[String], what: &str) -> Result<Vec<(String, String)>> {
    items
        .iter()
        .map(|kv| {
            kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).with_context(|| format!("{what} {kv:?} must be KEY=VALUE"))
        })
        .collect()
}

fn tags_json(items: &[String]) -> Result<String> {
    let tags: Vec<Value> = key_values(items, "tag")?.into_iter().map(|(k, v)| serde_json::json!({"TagKey": k, "TagValue": v})).collect();
    Ok(Value::Array(tags).to_string())
}

#[derive(Subcommand)]
enum SecretCmd {
    /// Create a generic secret with its first version (ACSCurrent)
    #[command(
        after_help = "Examples:\n  sesame secret create app/db --value 's3cret' --tag env=prod\n  sesame secret create app/cert --file cert.der --binary --key alias/certs"
    )]
    Create {
        name: String,
        #[command(flatten)]
        value: ValueArgs,
        /// Id of the first version
        #[arg(long, default_value = "v1")]
        version_id: String,
        /// Key that seals the value (default: the instance's secrets key)
        #[arg(long)]
        key: Option<String>,
        #[arg(long)]
        instance: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// KEY=VALUE, repeatable
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Secret policy (JSON)
        #[arg(long)]
        policy: Option<String>,
        /// Generic, or Rds for database accounts that Sesame rotates
        #[arg(long = "type", default_value = "Generic")]
        secret_type: String,
        /// Extended configuration (JSON); for Rds: {"SecretSubType":"SingleUser|DoubleUsers","DBInstanceId":"…"}
        #[arg(long)]
        extended_config: Option<String>,
        /// Rotate automatically with this period (Rds; 6h to 365d)
        #[arg(long)]
        rotation_interval: Option<String>,
    },
    /// Plan an Rds secret whose accounts Sesame creates; nothing is created until `confirm`
    #[command(
        after_help = "Examples:\n  sesame secret create-rds app/db --db-instance pg-1 --mode dual --prefix app --database shop --privilege ReadWrite\n  sesame secret create-rds ops/db --db-instance pg-1 --mode single --prefix ops --privileged --rotation-interval 30d\n  sesame secret confirm app/db"
    )]
    CreateRds {
        name: String,
        /// Registered database instance (sesame db list)
        #[arg(long)]
        db_instance: String,
        /// single: one account, brief unavailability at rotation; dual: two alternating accounts
        #[arg(long, value_parser = ["single", "dual"], default_value = "dual")]
        mode: String,
        /// Account names are PREFIX_xxxxxx (and PREFIX_xxxxxx_clone in dual mode)
        #[arg(long)]
        prefix: String,
        /// Database the accounts may use (standard accounts)
        #[arg(long, required_unless_present = "privileged")]
        database: Option<String>,
        #[arg(long, value_parser = ["ReadWrite", "ReadOnly", "DDLOnly", "DMLOnly"], default_value = "ReadWrite")]
        privilege: String,
        /// One privileged account instead (single mode only)
        #[arg(long, conflicts_with = "database")]
        privileged: bool,
        /// Rotate automatically with this period (6h to 365d), counted from the confirmation
        #[arg(long)]
        rotation_interval: Option<String>,
        #[arg(long)]
        key: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Create the accounts of a secret planned with create-rds
    Confirm { name: String },
    /// Delete a secret planned with create-rds before it is confirmed (nothing was created)
    Discard { name: String },
    /// Abandon a rotation that has not reached the database yet (see describe's RotationHealth)
    CancelRotation { name: String },
    /// Rotate an Rds secret now (or finish the rotation in progress)
    #[command(after_help = "Example:\n  sesame secret rotate app/db-account")]
    Rotate {
        name: String,
        /// Id of the new version; repeating it makes the call idempotent (default: a new UUID)
        #[arg(long)]
        version_id: Option<String>,
    },
    /// Turn automatic rotation of an Rds secret on (--interval) or off (--off)
    SetRotation {
        name: String,
        #[arg(long, required_unless_present = "off")]
        interval: Option<String>,
        #[arg(long)]
        off: bool,
    },
    /// Print a secret's value (ACSCurrent unless --stage or --version), for scripts
    #[command(after_help = "Example:\n  PGPASSWORD=$(sesame secret get app/db)")]
    Get {
        name: String,
        #[arg(long)]
        stage: Option<String>,
        #[arg(long = "version")]
        version_id: Option<String>,
    },
    /// Store a new version; it becomes ACSCurrent unless --stage is given
    Put {
        name: String,
        #[command(flatten)]
        value: ValueArgs,
        /// Version id (default: a new UUID)
        #[arg(long)]
        version_id: Option<String>,
        /// Stages for the new version, repeatable (default ACSCurrent)
        #[arg(long = "stage")]
        stages: Vec<String>,
    },
    /// Show a secret's metadata
    Describe {
        name: String,
        #[arg(long)]
        tags: bool,
    },
    /// List secrets
    List {
        /// Names containing this text
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        tag_key: Option<String>,
        /// Show each secret's tags
        #[arg(long)]
        tags: bool,
        #[command(flatten)]
        page: PageArgs,
    },
    /// List a secret's versions (with --all, also versions without a stage)
    Versions {
        name: String,
        #[arg(long)]
        all: bool,
    },
    /// Move a stage to a version, or remove a custom stage from one
    #[command(after_help = "Examples:\n  sesame secret stage app/db ACSCurrent --to v2\n  sesame secret stage app/db pending --from v3")]
    Stage {
        name: String,
        stage: String,
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        from: Option<String>,
    },
    /// Change the description or the extended configuration's CustomData
    Update {
        name: String,
        #[arg(long)]
        description: Option<String>,
        /// KEY=VALUE, repeatable
        #[arg(long = "custom-data")]
        custom_data: Vec<String>,
    },
    /// Schedule deletion after a recovery window (7-30 days), or delete at once with --force
    Delete {
        name: String,
        #[arg(long, default_value_t = 30, conflicts_with = "force")]
        days: u32,
        #[arg(long)]
        force: bool,
    },
    /// Cancel a scheduled deletion
    Restore { name: String },
    /// Add tags (KEY=VALUE)
    Tag {
        name: String,
        #[arg(required = true)]
        tags: Vec<String>,
    },
    /// Remove tags by key
    Untag {
        name: String,
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Show the secret policy
    GetPolicy { name: String },
    /// Replace the secret policy
    SetPolicy {
        name: String,
        #[arg(long)]
        policy: String,
    },
    /// Print a random password
    RandomPassword {
        #[arg(long, default_value_t = 32)]
        length: u32,
        #[arg(long)]
        exclude_characters: Option<String>,
        #[arg(long)]
        no_punctuation: bool,
        #[arg(long)]
        no_numbers: bool,
        #[arg(long)]
        no_uppercase: bool,
        #[arg(long)]
        no_lowercase: bool,
        /// At least one character of every included class
        #[arg(long)]
        require_each_type: bool,
    },
}

#[derive(Args)]
struct DbFields {
    /// Host name or IP address of the server
    #[arg(long)]
    host: Option<String>,
    #[arg(long)]
    port: Option<u16>,
    /// Administrator account Sesame logs on with
    #[arg(long)]
    admin_user: Option<String>,
    /// Read the administrator's password from this file (- for standard input); or set
    /// SESAME_DB_ADMIN_PASSWORD. Never given on the command line, where ps would show it.
    #[arg(long)]
    admin_password_file: Option<PathBuf>,
    /// Database the administrator connects to (PostgreSQL: postgres)
    #[arg(long)]
    admin_database: Option<String>,
    /// disable, prefer, require or verify-full
    #[arg(long)]
    tls: Option<String>,
    /// Host part of MySQL/MariaDB accounts (default %)
    #[arg(long)]
    account_host: Option<String>,
    #[arg(long)]
    description: Option<String>,
}

impl DbFields {
    fn params(self, p: &mut Vec<(String, String)>) -> Result<()> {
        opt(p, "ConnectionString", self.host);
        opt(p, "Port", self.port.map(|n| n.to_string()));
        opt(p, "AccountName", self.admin_user);
        opt(p, "AdminDatabase", self.admin_database);
        opt(p, "TlsMode", self.tls);
        opt(p, "AccountHost", self.account_host);
        opt(p, "DBInstanceDescription", self.description);
        opt(p, "AccountPassword", read_secret(self.admin_password_file, "SESAME_DB_ADMIN_PASSWORD")?);
        Ok(())
    }
}

/// A password from a file (- for standard input) or else an environment variable; never argv.
pub(crate) fn read_secret(file: Option<PathBuf>, env: &str) -> Result<Option<String>> {
    Ok(match file {
        Some(f) if f.as_os_str() == "-" => {
            let mut buf = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut buf).context("reading the password from standard input")?;
            Some(buf.trim_end_matches(['\r', '\n']).to_string())
        }
        Some(f) => Some(
            std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?.trim_end_matches(['\r', '\n']).to_string(),
        ),
        None => std::env::var(env).ok(),
    })
}

#[derive(Subcommand)]
enum DbCmd {
    /// Register a server: Sesame logs on as its administrator first, then keeps the password sealed
    #[command(
        after_help = "Examples:\n  SESAME_DB_ADMIN_PASSWORD=... sesame db register --engine postgresql --host 10.0.0.5 --admin-user sesame_admin\n  sesame db register --id orders-db --engine mariadb --host 127.0.0.1 --admin-user root --admin-password-file pw.txt"
    )]
    Register {
        /// PostgreSQL, MySQL, MariaDB or SQLServer
        #[arg(long)]
        engine: String,
        /// Id to refer to it by (default: rm-…)
        #[arg(long)]
        id: Option<String>,
        /// Key that seals the admin password (default: the instance's secrets key)
        #[arg(long)]
        key: Option<String>,
        #[command(flatten)]
        fields: DbFields,
    },
    /// List registered servers
    List {
        #[arg(long)]
        engine: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show a registered server (never its password)
    Describe { id: String },
    /// Change a registered server's settings; Sesame logs on again before it saves them
    Update {
        id: String,
        #[command(flatten)]
        fields: DbFields,
    },
    /// Forget a registered server (its accounts stay as they are)
    Remove { id: String },
    /// List the accounts on a registered server
    Accounts { id: String },
}

#[derive(Subcommand)]
enum InstanceCmd {
    List(PageArgs),
}

#[derive(Args)]
pub(crate) struct PageArgs {
    #[arg(long, default_value_t = 1)]
    page: u32,
    #[arg(long, default_value_t = 10)]
    page_size: u32,
}

impl PageArgs {
    pub(crate) fn params(&self) -> Vec<(String, String)> {
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
    if e.downcast_ref::<dms::StatementFailed>().is_some() {
        return 4;
    }
    if e.downcast_ref::<iam::TrailBroken>().is_some() {
        return 7;
    }
    match e.downcast_ref::<ClientError>() {
        Some(ClientError::Api { status: 404, .. }) => 3,
        Some(ClientError::Api { status, .. }) if *status < 500 => 4,
        Some(ClientError::Api { .. }) => 5,
        Some(ClientError::Transport { .. }) => 6,
        _ => 1,
    }
}

/// `--output` (or `SESAME_OUTPUT`), else the config file's `output`.
fn output(global: &Global, file: &config::FileConfig) -> Option<Output> {
    global.output.or(match file.output.as_deref() {
        Some("table") => Some(Output::Table),
        Some("json") => Some(Output::Json),
        _ => None,
    })
}

async fn run(cli: Cli) -> Result<()> {
    let dir = config::config_dir(cli.global.config_dir.as_deref());
    match cli.command {
        Command::Serve(args) => serve(args, &dir).await,
        Command::Bench(b) => bench::run(b, output(&cli.global, &config::load_file_config(&dir)?)).await,
        cmd => {
            let file = config::load_file_config(&dir)?;
            let output = output(&cli.global, &file);
            let client = client(&cli.global, &dir, file)?;
            let version_override = match &cmd {
                Command::Api { api_version, .. } => api_version.clone(),
                _ => None,
            };
            let discard = match &cmd {
                Command::Secret(SecretCmd::Discard { name }) => Some(name.clone()),
                _ => None,
            };
            if let Some(name) = discard {
                ensure_unconfirmed(&client, &name).await?;
            }
            let cmd = match cmd {
                Command::Dms(sql @ dms::DmsCmd::Sql { .. }) => return dms::sql(&client, output, sql).await,
                Command::Audit(a) => return iam::audit(&client, output, a).await,
                other => other,
            };
            let (action, params) = request_for(cmd)?;
            let refs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let version = version_override.unwrap_or_else(|| product_version(&action).to_string());
            let value = client.call_version(&version, &action, &refs).await?;
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
        Command::Api { action, params, api_version: _ } => {
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
        Command::Secret(c) => secret_request(c, &mut p)?,
        Command::Db(c) => db_request(c, &mut p)?,
        Command::Dms(c) => dms::request(c, &mut p)?,
        Command::User(c) => iam::user_request(c, &mut p)?,
        Command::AccessKey(c) => iam::access_key_request(c, &mut p)?,
        Command::Policy(c) => iam::policy_request(c, &mut p)?,
        Command::Audit(_) => anyhow::bail!("internal: audit commands are not single requests"),
        Command::Bench(_) => anyhow::bail!("internal: bench is not an API call"),
        Command::Instance(InstanceCmd::List(page)) => {
            p = page.params();
            "ListKmsInstances".into()
        }
    };
    Ok((action, p))
}

fn secret_request(cmd: SecretCmd, p: &mut Vec<(String, String)>) -> Result<String> {
    let name = |n: String| ("SecretName".to_string(), n);
    Ok(match cmd {
        SecretCmd::Create {
            name: n,
            value,
            version_id,
            key,
            instance,
            description,
            tags,
            policy,
            secret_type,
            extended_config,
            rotation_interval,
        } => {
            p.push(name(n));
            p.push(("VersionId".into(), version_id));
            p.extend(value.params()?);
            p.push(("SecretType".into(), secret_type));
            opt(p, "ExtendedConfig", extended_config);
            if let Some(i) = rotation_interval {
                p.push(("EnableAutomaticRotation".into(), "true".into()));
                p.push(("RotationInterval".into(), i));
            }
            opt(p, "EncryptionKeyId", key);
            opt(p, "DKMSInstanceId", instance);
            opt(p, "Description", description);
            opt(p, "Policy", policy);
            if !tags.is_empty() {
                p.push(("Tags".into(), tags_json(&tags)?));
            }
            "CreateSecret".into()
        }
        SecretCmd::CreateRds {
            name: n,
            db_instance,
            mode,
            prefix,
            database,
            privilege,
            privileged,
            rotation_interval,
            key,
            description,
        } => {
            let mut cfg = serde_json::json!({
                "SecretSubType": if mode == "single" { "SingleUser" } else { "DoubleUsers" },
                "DBInstanceId": db_instance,
                "AccountNamePrefix": prefix,
                "AccountType": if privileged { "Privileged" } else { "Standard" },
            });
            if let (Some(db), Some(obj)) = (database, cfg.as_object_mut()) {
                obj.insert("DBName".into(), db.into());
                obj.insert("AccountPrivilege".into(), privilege.into());
            }
            p.push(name(n));
            p.push(("VersionId".into(), "v1".into()));
            p.push(("SecretType".into(), "Rds".into()));
            p.push(("ExtendedConfig".into(), cfg.to_string()));
            if let Some(i) = rotation_interval {
                p.push(("EnableAutomaticRotation".into(), "true".into()));
                p.push(("RotationInterval".into(), i));
            }
            opt(p, "EncryptionKeyId", key);
            opt(p, "Description", description);
            "CreateSecret".into()
        }
        SecretCmd::Confirm { name: n } => {
            p.push(name(n));
            "ConfirmSecretAccounts".into()
        }
        SecretCmd::Discard { name: n } => {
            p.push(name(n));
            p.push(("ForceDeleteWithoutRecovery".into(), "true".into()));
            "DeleteSecret".into()
        }
        SecretCmd::CancelRotation { name: n } => {
            p.push(name(n));
            "CancelSecretRotation".into()
        }
        SecretCmd::Rotate { name: n, version_id } => {
            p.push(name(n));
            let id = match version_id {
                Some(v) => v,
                None => sesame_crypto::random::uuid().context("generating a version id")?.to_lowercase(),
            };
            p.push(("VersionId".into(), id));
            "RotateSecret".into()
        }
        SecretCmd::SetRotation { name: n, interval, off } => {
            p.push(name(n));
            p.push(("EnableAutomaticRotation".into(), (!off).to_string()));
            if !off {
                opt(p, "RotationInterval", interval);
            }
            "UpdateSecretRotationPolicy".into()
        }
        SecretCmd::Get { name: n, stage, version_id } => {
            p.push(name(n));
            opt(p, "VersionStage", stage);
            opt(p, "VersionId", version_id);
            "GetSecretValue".into()
        }
        SecretCmd::Put { name: n, value, version_id, stages } => {
            p.push(name(n));
            let id = match version_id {
                Some(v) => v,
                None => sesame_crypto::random::uuid().context("generating a version id")?.to_lowercase(),
            };
            p.push(("VersionId".into(), id));
            p.extend(value.params()?);
            if !stages.is_empty() {
                p.push(("VersionStages".into(), serde_json::to_string(&stages)?));
            }
            "PutSecretValue".into()
        }
        SecretCmd::Describe { name: n, tags } => {
            p.push(name(n));
            p.push(("FetchTags".into(), tags.to_string()));
            "DescribeSecret".into()
        }
        SecretCmd::List { name: n, tag_key, tags, page } => {
            p.extend(page.params());
            p.push(("FetchTags".into(), tags.to_string()));
            let mut filters = Vec::new();
            if let Some(n) = n {
                filters.push(serde_json::json!({"Key": "SecretName", "Values": [n]}));
            }
            if let Some(k) = tag_key {
                filters.push(serde_json::json!({"Key": "TagKey", "Values": [k]}));
            }
            if !filters.is_empty() {
                p.push(("Filters".into(), Value::Array(filters).to_string()));
            }
            "ListSecrets".into()
        }
        SecretCmd::Versions { name: n, all } => {
            p.push(name(n));
            p.push(("IncludeDeprecated".into(), all.to_string()));
            p.push(("PageSize".into(), "100".into()));
            "ListSecretVersionIds".into()
        }
        SecretCmd::Stage { name: n, stage, to, from } => {
            p.push(name(n));
            p.push(("VersionStage".into(), stage));
            opt(p, "MoveToVersion", to);
            opt(p, "RemoveFromVersion", from);
            "UpdateSecretVersionStage".into()
        }
        SecretCmd::Update { name: n, description, custom_data } => {
            p.push(name(n));
            opt(p, "Description", description);
            for (k, v) in key_values(&custom_data, "custom data")? {
                p.push((format!("ExtendedConfig.CustomData.{k}"), v));
            }
            "UpdateSecret".into()
        }
        SecretCmd::Delete { name: n, days, force } => {
            p.push(name(n));
            if force {
                p.push(("ForceDeleteWithoutRecovery".into(), "true".into()));
            } else {
                p.push(("RecoveryWindowInDays".into(), days.to_string()));
            }
            "DeleteSecret".into()
        }
        SecretCmd::Restore { name: n } => {
            p.push(name(n));
            "RestoreSecret".into()
        }
        SecretCmd::Tag { name: n, tags } => {
            p.push(name(n));
            p.push(("Tags".into(), tags_json(&tags)?));
            "TagResource".into()
        }
        SecretCmd::Untag { name: n, keys } => {
            p.push(name(n));
            p.push(("TagKeys".into(), serde_json::to_string(&keys)?));
            "UntagResource".into()
        }
        SecretCmd::GetPolicy { name: n } => {
            p.push(name(n));
            "GetSecretPolicy".into()
        }
        SecretCmd::SetPolicy { name: n, policy } => {
            p.push(name(n));
            p.push(("Policy".into(), policy));
            "SetSecretPolicy".into()
        }
        SecretCmd::RandomPassword {
            length,
            exclude_characters,
            no_punctuation,
            no_numbers,
            no_uppercase,
            no_lowercase,
            require_each_type,
        } => {
            p.push(("PasswordLength".into(), length.to_string()));
            opt(p, "ExcludeCharacters", exclude_characters);
            for (flag, name) in [
                (no_punctuation, "ExcludePunctuation"),
                (no_numbers, "ExcludeNumbers"),
                (no_uppercase, "ExcludeUppercase"),
                (no_lowercase, "ExcludeLowercase"),
                (require_each_type, "RequireEachIncludedType"),
            ] {
                p.push((name.into(), flag.to_string()));
            }
            "GetRandomPassword".into()
        }
    })
}

fn db_request(cmd: DbCmd, p: &mut Vec<(String, String)>) -> Result<String> {
    let id = |v: String| ("DBInstanceId".to_string(), v);
    Ok(match cmd {
        DbCmd::Register { engine, id: i, key, fields } => {
            p.push(("Engine".into(), engine));
            opt(p, "DBInstanceId", i);
            opt(p, "EncryptionKeyId", key);
            fields.params(p)?;
            "RegisterDBInstance".into()
        }
        DbCmd::List { engine, page } => {
            p.extend(page.params());
            opt(p, "Engine", engine);
            "DescribeDBInstances".into()
        }
        DbCmd::Describe { id: i } => {
            p.push(id(i));
            "DescribeDBInstanceAttribute".into()
        }
        DbCmd::Update { id: i, fields } => {
            p.push(id(i));
            fields.params(p)?;
            "ModifyDBInstance".into()
        }
        DbCmd::Remove { id: i } => {
            p.push(id(i));
            "DeregisterDBInstance".into()
        }
        DbCmd::Accounts { id: i } => {
            p.push(id(i));
            "DescribeAccounts".into()
        }
    })
}

/// The product version an action belongs to.
fn product_version(action: &str) -> &'static str {
    match action {
        "RegisterDBInstance"
        | "ModifyDBInstance"
        | "DescribeDBInstances"
        | "DescribeDBInstanceAttribute"
        | "DeregisterDBInstance"
        | "DescribeAccounts" => sesame_api::rds::RDS_API_VERSION,
        "RegisterInstance" | "ListInstances" | "GetInstance" | "DeleteInstance" | "ExecuteScript" | "ListSQLExecAuditLog" => {
            sesame_api::dms::DMS_API_VERSION
        }
        a if sesame_api::actions::RAM_ACTIONS.contains(&a) => sesame_api::ram::RAM_API_VERSION,
        a if sesame_api::actions::ACTIONTRAIL_ACTIONS.contains(&a) => sesame_api::ram::ACTIONTRAIL_API_VERSION,
        _ => sesame_api::KMS_API_VERSION,
    }
}

fn unreachable_serve() -> Result<String> {
    anyhow::bail!("internal: serve is not an API call")
}

/// Prints a response. Decrypt, GetSecretValue and GetRandomPassword print the value itself
/// (for scripts) unless an output format was asked for.
/// `secret discard` deletes at once, so only a secret whose accounts were never created.
async fn ensure_unconfirmed(client: &Client, name: &str) -> Result<()> {
    let d = client.call("DescribeSecret", &[("SecretName", name)]).await?;
    let status = extended_config(&d).and_then(|c| c.get("AccountCreation").and_then(Value::as_str).map(str::to_string));
    if status.as_deref() != Some("AwaitingConfirmation") {
        anyhow::bail!("{name} is not awaiting confirmation; to delete it use: sesame secret delete {name}");
    }
    Ok(())
}

fn extended_config(response: &Value) -> Option<Value> {
    response.get("ExtendedConfig").and_then(Value::as_str).and_then(|c| serde_json::from_str(c).ok())
}

/// After create-rds: what will be created, and how to go on. On standard error, so that the
/// JSON on standard output stays parseable.
fn print_plan(value: &Value) {
    let Some(cfg) = extended_config(value) else { return };
    let Some(planned) = cfg.get("PlannedAccounts").and_then(Value::as_array) else { return };
    let names: Vec<&str> = planned.iter().filter_map(Value::as_str).collect();
    let field = |k: &str| cfg.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let grant = match cfg.get("DBName").and_then(Value::as_str) {
        Some(db) => format!("standard, {} on database {db}", field("AccountPrivilege")),
        None => "privileged".to_string(),
    };
    let secret = value.get("SecretName").and_then(Value::as_str).unwrap_or_default();
    eprintln!(
        "Planned on {}: {} ({grant}). Nothing is created yet.\nTo create: sesame secret confirm {secret}\nTo drop the plan: sesame secret discard {secret}",
        field("DBInstanceId"),
        names.join(", ")
    );
}

fn present(action: &str, output: Option<Output>, value: &Value) -> Result<()> {
    if action == "CreateSecret" {
        print_plan(value);
    }
    let raw = match action {
        "GetSecretValue" => value.get("SecretData"),
        "GetRandomPassword" => value.get("RandomPassword"),
        _ => None,
    };
    if let (Some(raw), None) = (raw.and_then(Value::as_str), output) {
        println!("{raw}");
        return Ok(());
    }
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

/// The KMS that DMS uses when it is not this server's.
fn remote_kms(endpoint: Option<String>, ca_file: Option<PathBuf>) -> Result<Option<sesame_server::RemoteKms>> {
    let Some(endpoint) = endpoint else { return Ok(None) };
    let (Ok(id), Ok(secret)) = (std::env::var("SESAME_DMS_ACCESS_KEY_ID"), std::env::var("SESAME_DMS_ACCESS_KEY_SECRET")) else {
        anyhow::bail!(
            "--dms-kms-endpoint needs SESAME_DMS_ACCESS_KEY_ID and SESAME_DMS_ACCESS_KEY_SECRET: an access key made on that server for a user holding SesameDmsAccess"
        );
    };
    Ok(Some(sesame_server::RemoteKms { endpoint, access_key_id: id, access_key_secret: SecretString::from(secret), ca_file }))
}

async fn serve(args: ServeArgs, config_dir: &std::path::Path) -> Result<()> {
    init_logging();
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
        scheduler_every: Duration::from_secs(args.scheduler_secs.max(1)),
        limits: sesame_core::Limits {
            max_rotations_per_hour: args.max_rotations_per_hour,
            rotation_lease_secs: args.rotation_lease_secs.max(1),
            first_retry_secs: args.rotation_retry_secs.max(1),
        },
        dms: match args.no_dms {
            true => None,
            false => Some(sesame_server::DmsConfig {
                settings: sesame_dms::DmsSettings { audit_statements: args.dms_audit_statements, ..Default::default() },
                remote_kms: remote_kms(args.dms_kms_endpoint, args.dms_kms_ca_file)?,
            }),
        },
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

/// Logs Sesame's own events only. Database drivers log server error messages, which can quote
/// the statement they refer to (a password with it), so their events never reach the log.
fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let level = match std::env::var("SESAME_LOG").as_deref() {
        Ok("debug") => tracing::Level::DEBUG,
        Ok("warn") => tracing::Level::WARN,
        Ok("error") => tracing::Level::ERROR,
        _ => tracing::Level::INFO,
    };
    let ours = tracing_subscriber::filter::Targets::new().with_targets(
        ["sesame_server", "sesame_core", "sesame_store", "sesame_engines", "sesame_client", "sesame_cli", "sesame"].map(|t| (t, level)),
    );
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())))
        .with(ours)
        .init();
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
