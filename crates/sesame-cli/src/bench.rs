//! `sesame bench …`: load and latency benchmarks, run by hand, that print their figures.
//!
//! Each benchmark starts its own server (`sesame serve --plain-http` in a fresh temporary data
//! directory, log level warn), so runs are reproducible; only `bench api` measures a running
//! server instead when its own `--endpoint` names one. The load
//! generator keeps N HTTP/1.1 keep-alive connections busy for T seconds, signing every request
//! afresh (a nonce is used once), and records each latency.

use crate::output::Output;
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Full};
use secrecy::SecretString;
use serde_json::{Map, Value, json};
use sesame_api::Timestamp;
use sesame_client::{Client, ClientConfig, SignatureVersion};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Subcommand)]
pub enum BenchCmd {
    /// Requests per second and latency of API calls, beside a bare HTTP server as the ceiling
    #[command(after_help = "Examples:
  sesame bench api --workload get-secret --connections 32 --duration 10 --ceiling
  sesame bench api --workload get-secret --signature v1
  sesame bench api --workload mix --duration 20
  sesame bench api --workload encrypt --target http://10.0.0.7:8080/   # the same signed requests elsewhere")]
    Api(ApiArgs),
    /// A bare axum server answering every request with a fixed JSON body (the ceiling)
    ServeFixed {
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: std::net::SocketAddr,
    },
    /// A rotation through Sesame beside the raw SQL it needs (password change and a logon)
    #[command(
        after_help = "Example:\n  SESAME_DB_ADMIN_PASSWORD=... sesame bench rotation --engine postgresql --admin-user sesame_admin --admin-database sesame_test --database sesame_test"
    )]
    Rotation(DbArgs),
    /// A logon and first statement through DMS (KMS secret) beside a direct logon
    #[command(after_help = "Examples:
  sesame bench dms-logon --engine mariadb --admin-user root --database sesame_test --rounds 50
  sesame bench dms-logon --engine mariadb --admin-user root --database sesame_test --pause-ms 0   # a busy machine")]
    DmsLogon(DmsLogonArgs),
    /// GetSecretValue, ListSecrets pages, rotations and memory with 1,000 and then 100,000 secrets
    #[command(after_help = "Examples:
  sesame bench scale --secrets 100000 --duration 5
  sesame bench scale --secrets 100000 --engine mariadb --admin-user root --database sesame_test")]
    Scale(ScaleArgs),
}

#[derive(Args)]
pub struct Target {
    /// A running server (default: start one)
    #[arg(long)]
    endpoint: Option<String>,
}

#[derive(Args)]
pub struct ApiArgs {
    /// get-secret, encrypt, decrypt, data-key or mix (90% GetSecretValue, 10% PutSecretValue)
    #[arg(long, default_value = "get-secret", value_parser = ["get-secret", "encrypt", "decrypt", "data-key", "mix"])]
    workload: String,
    #[arg(long, default_value = "v3", value_parser = ["v3", "v1"])]
    signature: String,
    #[arg(long, short = 'c', default_value_t = 32)]
    connections: usize,
    /// Seconds of measurement (after one second of warm-up)
    #[arg(long, short = 'd', default_value_t = 10)]
    duration: u64,
    /// Send the requests to this URL instead (they are signed for the server all the same)
    #[arg(long)]
    target: Option<String>,
    /// Also measure a bare axum server (a process of its own) with the same generator and requests, and print ratios
    #[arg(long)]
    ceiling: bool,
    /// With --ceiling: take turns, this many of each, Sesame then the bare server, each for
    /// duration / rounds seconds, so that both see the machine in the same states
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=60))]
    rounds: u32,
    #[command(flatten)]
    server: Target,
}

#[derive(Args)]
pub struct DbArgs {
    /// postgresql, mysql or mariadb
    #[arg(long, default_value = "postgresql")]
    pub engine: String,
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long)]
    pub port: Option<u16>,
    #[arg(long)]
    pub admin_user: String,
    /// Or SESAME_DB_ADMIN_PASSWORD
    #[arg(long)]
    pub admin_password_file: Option<PathBuf>,
    #[arg(long)]
    pub admin_database: Option<String>,
    /// Database the accounts log on to
    #[arg(long)]
    pub database: String,
    #[arg(long, default_value_t = 20)]
    pub rounds: usize,
}

#[derive(Args)]
pub struct DmsLogonArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Milliseconds between rounds, as between a person's logons: the first request after a
    /// pause also wakes the idle machine. 0 measures a machine kept busy.
    #[arg(long, default_value_t = 5)]
    pub pause_ms: u64,
}

#[derive(Args)]
pub struct ScaleArgs {
    #[arg(long, default_value_t = 100_000)]
    secrets: usize,
    /// Seconds of GetSecretValue load at each size
    #[arg(long, default_value_t = 5)]
    duration: u64,
    #[arg(long, default_value_t = 16)]
    connections: usize,
    #[command(flatten)]
    db: ScaleDb,
}

/// The database on which `bench scale` rotates an Rds secret at each size, if it is given one:
/// the options of `bench rotation`, all optional until `--engine` names an engine.
#[derive(Args)]
pub struct ScaleDb {
    /// Also time dual rotations of an Rds secret on this database at each size (median of
    /// --rounds): postgresql, mysql or mariadb
    #[arg(long, requires_all = ["admin_user", "database"])]
    engine: Option<String>,
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long)]
    port: Option<u16>,
    #[arg(long, requires = "engine")]
    admin_user: Option<String>,
    /// Or SESAME_DB_ADMIN_PASSWORD
    #[arg(long, requires = "engine")]
    admin_password_file: Option<PathBuf>,
    #[arg(long, requires = "engine")]
    admin_database: Option<String>,
    /// Database the rotated accounts log on to
    #[arg(long, requires = "engine")]
    database: Option<String>,
    #[arg(long, default_value_t = 20)]
    rounds: usize,
}

impl ScaleDb {
    fn args(&self) -> Option<DbArgs> {
        Some(DbArgs {
            engine: self.engine.clone()?,
            host: self.host.clone(),
            port: self.port,
            admin_user: self.admin_user.clone()?,
            admin_password_file: self.admin_password_file.clone(),
            admin_database: self.admin_database.clone(),
            database: self.database.clone()?,
            rounds: self.rounds,
        })
    }
}

/// A server this process started: stopped on drop, then its directory removed.
pub struct Spawned {
    pub endpoint: String,
    pub id: String,
    pub secret: SecretString,
    // Fields drop in this order: the process first, then the directory it writes to.
    child: ChildGuard,
    _dir: RemovedOnDrop,
}

impl Spawned {
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }
}

/// A child process, killed and reaped on drop (also when starting it fails half-way).
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct RemovedOnDrop(PathBuf);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts `cmd` with one of its outputs piped and reads that pipe up to the line that starts
/// with `marker`; returns the process and the first word after the marker (where it listens).
fn spawn_until(cmd: &mut Command, marker: &str) -> Result<(ChildGuard, String)> {
    let mut child = ChildGuard(cmd.spawn().context("starting a server for the benchmark")?);
    let pipe: Box<dyn std::io::Read + Send> = match (child.0.stdout.take(), child.0.stderr.take()) {
        (Some(out), _) => Box::new(out),
        (None, Some(err)) => Box::new(err),
        (None, None) => bail!("the server's output is not piped"),
    };
    let mut lines = BufReader::new(pipe).lines();
    let found = loop {
        let line = lines.next().context("the server exited before it listened")??;
        if let Some(rest) = line.strip_prefix(marker) {
            break rest.split_whitespace().next().unwrap_or_default().to_string();
        }
    };
    // Kept drained, so that the server never blocks writing to a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Ok((child, found))
}

/// Starts `sesame serve --plain-http` in a fresh directory and reads its admin credentials.
pub fn spawn_server() -> Result<Spawned> {
    let dir = RemovedOnDrop(std::env::temp_dir().join(format!("sesame-bench-{}", sesame_crypto::random::id_suffix(8)?)));
    let (child, endpoint) = spawn_until(
        Command::new(std::env::current_exe()?)
            .args(["serve", "--plain-http", "--listen", "127.0.0.1:0"])
            .env("SESAME_CONFIG_DIR", &dir.0)
            .env("SESAME_LOG", "warn")
            .env_remove("SESAME_DATA_DIR")
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
        "Sesame is listening on ",
    )?;
    let (id, secret) = crate::config::load_credentials(&dir.0)?.context("the server wrote no credentials")?;
    Ok(Spawned { endpoint, id, secret, child, _dir: dir })
}

/// Starts `sesame bench serve-fixed` as a process of its own, as the server it is compared with
/// is: inside the generator's process it would share the generator's runtime threads and skip
/// the wake-ups between processes that every real server pays.
fn spawn_fixed() -> Result<(ChildGuard, String)> {
    let (child, url) = spawn_until(
        Command::new(std::env::current_exe()?)
            .args(["bench", "serve-fixed", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
        "bare axum server on ",
    )?;
    Ok((child, authority_of(&url)?))
}

fn client(endpoint: &str, id: &str, secret: &SecretString, signature: SignatureVersion) -> Result<Client> {
    Ok(Client::new(ClientConfig {
        endpoint: endpoint.to_string(),
        access_key_id: id.to_string(),
        access_key_secret: secret.clone(),
        ca_file: None,
        insecure: true,
        signature,
        timeout: Duration::from_secs(30),
    })?)
}

/// Latencies in microseconds and the wall time they were taken in.
#[derive(Default)]
pub struct Run {
    latencies: Vec<u32>,
    /// The latencies of the requests that write (the mix's PutSecretValue), in `latencies` too.
    writes: Vec<u32>,
    errors: usize,
    elapsed: Duration,
}

/// How many sorted latencies there are and their quantiles, as the JSON output files them.
fn quantiles_json(sorted: &[u32]) -> Value {
    json!({
        "requests": sorted.len(),
        "p50_ms": percentile(sorted, 0.5),
        "p90_ms": percentile(sorted, 0.9),
        "p99_ms": percentile(sorted, 0.99),
        "max_ms": percentile(sorted, 1.0),
    })
}

/// The `p`-th quantile of sorted latencies (µs), in milliseconds.
/// 0 when there are none (the index then saturates to 0 and finds nothing).
fn percentile(sorted: &[u32], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).map_or(0.0, |us| f64::from(*us) / 1000.0)
}

impl Run {
    /// Adds the requests of another run of the same load, taken in another stretch of time.
    fn merge(&mut self, other: Run) {
        self.latencies.extend(other.latencies);
        self.latencies.sort_unstable();
        self.writes.extend(other.writes);
        self.writes.sort_unstable();
        self.errors += other.errors;
        self.elapsed += other.elapsed;
    }
    fn rps(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
    fn pct(&self, p: f64) -> f64 {
        percentile(&self.latencies, p)
    }
    /// The figures, with the writes' apart when there were any.
    fn json(&self) -> Value {
        let mut v = quantiles_json(&self.latencies);
        v["rps"] = json!(self.rps().round());
        v["errors"] = json!(self.errors);
        if !self.writes.is_empty() {
            v["writes"] = quantiles_json(&self.writes);
        }
        v
    }
    /// One line of figures, and a second for the writes when there were any.
    fn line(&self, name: &str) -> String {
        let figures = |rps: f64, l: &[u32]| {
            format!(
                "{rps:>9.0} req/s   p50 {:>7.2} ms   p90 {:>7.2} ms   p99 {:>7.2} ms   max {:>8.2} ms",
                percentile(l, 0.5),
                percentile(l, 0.9),
                percentile(l, 0.99),
                percentile(l, 1.0)
            )
        };
        let mut line = format!("{name:<28} {}   errors {}", figures(self.rps(), &self.latencies), self.errors);
        if !self.writes.is_empty() {
            let rps = self.writes.len() as f64 / self.elapsed.as_secs_f64();
            line.push_str(&format!("\n{:<28} {}", "  of which writes", figures(rps, &self.writes)));
        }
        line
    }
}

/// What a benchmark prints: each figure as a line of text as soon as it is measured (the
/// default, and `--output table`), or with `--output json` one JSON document once the benchmark
/// is done, the same figures under names a script can read. Progress goes to stderr either way.
pub struct Report {
    json: Option<Map<String, Value>>,
}

impl Report {
    pub fn new(output: Option<Output>) -> Report {
        Report { json: (output == Some(Output::Json)).then(Map::new) }
    }

    /// Prints `text`, or files `value` at `path` in the JSON document.
    pub fn put(&mut self, path: &[&str], value: Value, text: impl FnOnce() -> String) {
        match &mut self.json {
            Some(doc) => insert(doc, path, value),
            None => println!("{}", text()),
        }
    }

    /// Files `value` at `path` in the JSON document; the text has it in a line already.
    pub fn set(&mut self, path: &[&str], value: Value) {
        if let Some(doc) = &mut self.json {
            insert(doc, path, value);
        }
    }

    /// Prints the JSON document, if that is the output.
    pub fn finish(self) {
        if let Some(doc) = self.json {
            crate::output::print(Output::Json, &Value::Object(doc));
        }
    }
}

fn insert(doc: &mut Map<String, Value>, path: &[&str], value: Value) {
    match path {
        [] => {}
        [last] => {
            doc.insert((*last).to_string(), value);
        }
        [first, rest @ ..] => {
            // The paths are the benchmarks' own: one that reaches through a figure is a bug there.
            if let Value::Object(m) = doc.entry((*first).to_string()).or_insert_with(|| Value::Object(Map::new())) {
                insert(m, rest, value);
            }
        }
    }
}

/// Mean and median, in milliseconds, as a report files them.
pub fn ms_json((mean, p50): (f64, f64)) -> Value {
    json!({"mean_ms": round2(mean), "p50_ms": round2(p50)})
}

/// Two decimals, as the text shows them.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A request for the generator to send, and whether it writes (the mix's writes are reported
/// apart as well).
pub struct Made {
    request: hyper::Request<Full<Bytes>>,
    writes: bool,
}

impl From<hyper::Request<Full<Bytes>>> for Made {
    fn from(request: hyper::Request<Full<Bytes>>) -> Self {
        Made { request, writes: false }
    }
}

type MakeRequest = Arc<dyn Fn(usize) -> Result<Made> + Send + Sync>;

/// Keeps `connections` keep-alive connections to `authority` busy for `duration`.
pub async fn load(authority: &str, connections: usize, duration: Duration, make: MakeRequest) -> Result<Run> {
    let warmup = Duration::from_secs(1);
    let start = Instant::now();
    let (measure_from, until) = (start + warmup, start + warmup + duration);
    let mut tasks = Vec::with_capacity(connections);
    for n in 0..connections {
        let (make, authority) = (make.clone(), authority.to_string());
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(&authority).await?;
            stream.set_nodelay(true)?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let (mut latencies, mut writes, mut errors, mut i) = (Vec::with_capacity(100_000), Vec::new(), 0usize, n);
            loop {
                let now = Instant::now();
                if now >= until {
                    break;
                }
                let made = make(i)?;
                i += connections;
                let sent = Instant::now();
                let resp = sender.send_request(made.request).await?;
                let ok = resp.status().is_success();
                let _ = resp.into_body().collect().await?;
                if sent >= measure_from {
                    let micros = sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                    latencies.push(micros);
                    if made.writes {
                        writes.push(micros);
                    }
                    if !ok {
                        errors += 1;
                    }
                }
            }
            anyhow::Ok((latencies, writes, errors))
        }));
    }
    let mut run = Run { elapsed: duration, ..Run::default() };
    for t in tasks {
        let (l, w, e) = t.await??;
        run.latencies.extend(l);
        run.writes.extend(w);
        run.errors += e;
    }
    run.latencies.sort_unstable();
    run.writes.sort_unstable();
    Ok(run)
}

fn authority_of(url: &str) -> Result<String> {
    let rest = url.strip_prefix("http://").context("the benchmark speaks plain HTTP: give an http:// URL")?;
    Ok(rest.split('/').next().unwrap_or_default().to_string())
}

/// A bare axum server answering every request with the same JSON.
pub async fn serve_fixed(listen: std::net::SocketAddr) -> Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    let body = json!({"RequestId": "00000000-0000-4000-8000-000000000000", "SecretName": "bench/secret", "SecretData": "x"}).to_string();
    let app = axum::Router::new().fallback(move || {
        let body = body.clone();
        async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], body) }
    });
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let join = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, join))
}

/// A `/proc/<pid>/status` field in KiB: `VmRSS`, or its parts `RssAnon` (the heap: caches and
/// the rest) and `RssFile` (files mapped, such as the store's file read through its map).
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

pub async fn run(cmd: BenchCmd, output: Option<Output>) -> Result<()> {
    let report = Report::new(output);
    match cmd {
        BenchCmd::ServeFixed { listen } => {
            let (addr, join) = serve_fixed(listen).await?;
            eprintln!("bare axum server on http://{addr}/ (Ctrl-C to stop)");
            join.await?;
            Ok(())
        }
        BenchCmd::Api(a) => api(a, report).await,
        BenchCmd::Rotation(a) => crate::bench_db::rotation(a, report).await,
        BenchCmd::DmsLogon(a) => crate::bench_db::dms_logon(a, report).await,
        BenchCmd::Scale(a) => scale(a, report).await,
    }
}

/// The server to measure: the one named, or a fresh one. Credentials come from the CLI's
/// settings when a server is named.
fn server(t: &Target) -> Result<(Option<Spawned>, String, String, SecretString)> {
    match &t.endpoint {
        Some(e) => {
            let (id, secret) = match (std::env::var("SESAME_ACCESS_KEY_ID"), std::env::var("SESAME_ACCESS_KEY_SECRET")) {
                (Ok(id), Ok(s)) => (id, SecretString::from(s)),
                _ => {
                    let dir = crate::config::config_dir(std::env::var_os("SESAME_CONFIG_DIR").map(PathBuf::from).as_deref());
                    crate::config::load_credentials(&dir)?.context("no credentials for --endpoint")?
                }
            };
            Ok((None, e.clone(), id, secret))
        }
        None => {
            let s = spawn_server()?;
            let (e, id, secret) = (s.endpoint.clone(), s.id.clone(), s.secret.clone());
            Ok((Some(s), e, id, secret))
        }
    }
}

async fn api(a: ApiArgs, mut report: Report) -> Result<()> {
    let (_spawned, endpoint, id, secret) = server(&a.server)?;
    let signature = if a.signature == "v1" { SignatureVersion::V1 } else { SignatureVersion::V3 };
    let setup = client(&endpoint, &id, &secret, SignatureVersion::V3)?;
    let signer = Arc::new(client(&endpoint, &id, &secret, signature)?);
    let run_id = sesame_crypto::random::id_suffix(6)?;
    let secret_name = format!("bench/{run_id}");
    setup.call("CreateSecret", &[("SecretName", &secret_name), ("VersionId", "v1"), ("SecretData", "bench value 0123456789")]).await?;
    // Each connection of the mix writes a secret of its own, as different applications would:
    // writers of one secret contend, and one that loses too often is told to retry.
    if a.workload == "mix" {
        for w in 0..a.connections {
            setup
                .call("CreateSecret", &[("SecretName", &format!("{secret_name}-w{w}")), ("VersionId", "v1"), ("SecretData", "bench")])
                .await?;
        }
    }
    let key = setup.call("CreateKey", &[]).await?["KeyMetadata"]["KeyId"].as_str().unwrap_or_default().to_string();
    let blob = setup.call("Encrypt", &[("KeyId", &key), ("Plaintext", "aGVsbG8gd29ybGQ=")]).await?["CiphertextBlob"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (workload, connections) = (a.workload.clone(), a.connections);
    // The generator numbers a connection's requests n, n + connections, n + 2 × connections, …;
    // each connection writes every tenth of its own (staggered by n), so that the mix holds one
    // write in ten whatever the number of connections.
    let writes_now = move |i: usize| (i / connections + i % connections).is_multiple_of(10);
    let make: MakeRequest = Arc::new(move |i: usize| {
        let nonce = sesame_crypto::random::nonce()?;
        let now = Timestamp(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64);
        let (version, writes) = (format!("w{i}"), format!("{secret_name}-w{}", i % connections));
        let (action, params): (&str, Vec<(&str, &str)>) = match workload.as_str() {
            "encrypt" => ("Encrypt", vec![("KeyId", key.as_str()), ("Plaintext", "aGVsbG8gd29ybGQ=")]),
            "decrypt" => ("Decrypt", vec![("CiphertextBlob", blob.as_str())]),
            "data-key" => ("GenerateDataKey", vec![("KeyId", key.as_str())]),
            "mix" if writes_now(i) => {
                ("PutSecretValue", vec![("SecretName", writes.as_str()), ("VersionId", version.as_str()), ("SecretData", "bench value")])
            }
            _ => ("GetSecretValue", vec![("SecretName", secret_name.as_str())]),
        };
        Ok(Made { request: signer.prepare(action, &params, now, &nonce)?.request, writes: action == "PutSecretValue" })
    });
    let target = a.target.clone().unwrap_or_else(|| endpoint.clone());
    let duration = Duration::from_secs(a.duration);
    let setup = json!({
        "workload": a.workload,
        "signature": a.signature,
        "version": env!("CARGO_PKG_VERSION"),
        "connections": a.connections,
        "duration_s": a.duration,
        "rounds": a.ceiling.then_some(a.rounds),
        "target": target,
    });
    report.put(&["benchmark"], setup, || {
        format!(
            "{} {} ({}), {} connections, {} s{}, target {target}",
            a.workload,
            a.signature,
            env!("CARGO_PKG_VERSION"),
            a.connections,
            a.duration,
            if a.ceiling { format!(" in {} turns with the ceiling", a.rounds) } else { String::new() }
        )
    });
    let sesame_at = authority_of(&target)?;
    if !a.ceiling {
        let sesame = load(&sesame_at, a.connections, duration, make).await?;
        report.put(&["sesame"], sesame.json(), || sesame.line("sesame"));
        report.finish();
        if sesame.errors > 0 {
            bail!("{} requests failed", sesame.errors);
        }
        return Ok(());
    }
    // The machine's speed drifts over seconds; in turns, both halves see the same drift.
    let (_bare_server, bare_at) = spawn_fixed()?;
    let slice = duration / a.rounds;
    let (mut sesame, mut bare) = (Run::default(), Run::default());
    for round in 1..=a.rounds {
        // Each turn numbers its requests apart from the others' (the mix's writes use the number
        // in their version ids).
        let (inner, base) = (make.clone(), (round as usize) << 32);
        let numbered: MakeRequest = Arc::new(move |i| inner(base + i));
        eprint!("\rround {round}/{}: sesame   ", a.rounds);
        sesame.merge(load(&sesame_at, a.connections, slice, numbered.clone()).await?);
        eprint!("\rround {round}/{}: bare axum", a.rounds);
        bare.merge(load(&bare_at, a.connections, slice, numbered).await?);
    }
    eprintln!();
    // The bare server answers a write as it answers a read: its writes are not figures apart.
    bare.writes.clear();
    report.put(&["sesame"], sesame.json(), || sesame.line("sesame"));
    report.put(&["ceiling"], bare.json(), || bare.line("bare axum (ceiling)"));
    let (rate, p99) = (sesame.rps() / bare.rps().max(0.001), sesame.pct(0.99) / bare.pct(0.99).max(0.001));
    let ratio = json!({"rate": round2(rate), "p99": round2(p99), "budget": {"rate_at_least": 0.5, "p99_at_most": 2.0}});
    report.put(&["ratio"], ratio, || {
        format!("ratio: rate {rate:.2} of the ceiling (budget >= 0.50), p99 {p99:.2}x the ceiling's (budget <= 2.00)")
    });
    report.finish();
    if sesame.errors > 0 {
        bail!("{} requests failed", sesame.errors);
    }
    Ok(())
}

fn progress(done: usize, total: usize, started: Instant) {
    let width = 40;
    let filled = done * width / total.max(1);
    let rate = done as f64 / started.elapsed().as_secs_f64().max(0.001);
    eprint!("\r[{}{}] {done}/{total} {rate:.0}/s   ", "#".repeat(filled), " ".repeat(width - filled));
}

/// Calls per ListSecrets page measured at each size: enough that the median times the store
/// rather than the first calls after the GetSecretValue load (docs/benchmarks-log.md, finding 35).
const PAGE_CALLS: usize = 31;
/// Manual rotations measured at each size.
const ROTATIONS: usize = 51;

/// The name of the n-th seeded secret. One, the same at both sizes, ends in `-db`: the one name a
/// search by a short text (a console's search box) has to find among them all.
fn seeded_name(n: usize) -> String {
    if n == SHORT_NAMED { format!("scale/{n:06}-db") } else { format!("scale/{n:06}") }
}

/// The seeded secret whose name ends in `-db`.
const SHORT_NAMED: usize = 7;

/// Every hundredth seeded secret names a database instance of its own in its ExtendedConfig, as
/// an Rds secret does, so that ListSecrets by DBInstanceId has one secret to find.
fn instance_config(n: usize) -> Option<String> {
    n.is_multiple_of(100).then(|| json!({"DBInstanceId": format!("rm-scale{n:06}")}).to_string())
}

async fn seed(c: &Arc<Client>, from: usize, to: usize) -> Result<()> {
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(from));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (c, next) = (c.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= to {
                    return anyhow::Ok(());
                }
                let name = seeded_name(n);
                let mut params = vec![("SecretName", name.as_str()), ("VersionId", "v1"), ("SecretData", "seeded value")];
                let config = instance_config(n);
                if let Some(config) = &config {
                    params.push(("ExtendedConfig", config));
                }
                c.call("CreateSecret", &params).await?;
                if n.is_multiple_of(500) {
                    progress(n + 1 - from, to - from, started);
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    progress(to - from, to - from, started);
    eprintln!();
    Ok(())
}

/// Measures at `size` secrets; the report files the figures under `key`.
async fn measure_at(
    c: &Arc<Client>,
    server: &Spawned,
    a: &ScaleArgs,
    size: usize,
    rotations: Option<&mut crate::bench_db::ScaleRotations>,
    report: &mut Report,
    key: &str,
) -> Result<AtSize> {
    report.set(&[key, "secrets"], json!(size));
    let signer = c.clone();
    let make: MakeRequest = Arc::new(move |i: usize| {
        let nonce = sesame_crypto::random::nonce()?;
        let now = Timestamp(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64);
        let name = seeded_name((i * 7919) % size);
        Ok(signer.prepare("GetSecretValue", &[("SecretName", &name)], now, &nonce)?.request.into())
    });
    let get = load(&authority_of(&server.endpoint)?, a.connections, Duration::from_secs(a.duration), make).await?;
    report.put(&[key, "get_secret_value"], get.json(), || get.line(&format!("GetSecretValue @ {size}")));
    // Each figure is the median of several calls (`summarize`'s p50), so one cold read does not
    // decide it.
    let mut pages = Vec::new();
    for place in [Place::First, Place::Middle, Place::Last] {
        let calls = TIMED_LISTINGS
            .map(|k| {
                let last = size.div_ceil(page_size(k)).max(1);
                let page = match place {
                    Place::First => 1,
                    Place::Middle => (last / 2).max(1),
                    Place::Last => last,
                };
                vec![("PageSize", page_size(k).to_string()), ("PageNumber", page.to_string())]
            })
            .collect::<Vec<_>>();
        pages.push(median_ms(c, "ListSecrets", &calls).await?);
    }
    let listed = json!({"first_ms": round2(pages[0]), "middle_ms": round2(pages[1]), "last_ms": round2(pages[2]), "calls": PAGE_CALLS});
    report.put(&[key, "list_secrets_pages"], listed, || {
        format!(
            "{:<28} first, middle, last page of {}-99: {:.2} / {:.2} / {:.2} ms",
            format!("ListSecrets @ {size}"),
            page_size(PAGE_CALLS),
            pages[0],
            pages[1],
            pages[2]
        )
    });
    // The listing DMS makes at every logon: one secret by name (the filter matches substrings).
    let by_name = median_ms(c, "ListSecrets", &timed_listings_by("SecretName", &seeded_name(size / 2))).await?;
    report.put(&[key, "list_secrets_by_name_ms"], json!(round2(by_name)), || {
        format!("{:<28} {by_name:.2} ms (median of {PAGE_CALLS})", format!("ListSecrets by name @ {size}"))
    });
    // A search by two characters, too short for a trigram, that one name holds (once seeded).
    expect_listed(c, "SecretName", "db", i64::from(size > SHORT_NAMED)).await?;
    let by_short_name = median_ms(c, "ListSecrets", &timed_listings_by("SecretName", "db")).await?;
    report.put(&[key, "list_secrets_by_short_name_ms"], json!(round2(by_short_name)), || {
        format!("{:<28} {by_short_name:.2} ms (median of {PAGE_CALLS})", format!("ListSecrets by `db` @ {size}"))
    });
    // The listing DMS makes instead for an instance registered by its RDS instance.
    let instance = format!("rm-scale{:06}", size / 2 / 100 * 100);
    expect_listed(c, "DBInstanceId", &instance, 1).await?;
    let by_instance = median_ms(c, "ListSecrets", &timed_listings_by("DBInstanceId", &instance)).await?;
    report.put(&[key, "list_secrets_by_instance_ms"], json!(round2(by_instance)), || {
        format!("{:<28} {by_instance:.2} ms (median of {PAGE_CALLS})", format!("ListSecrets by instance @ {size}"))
    });
    // A manual rotation of a generic secret: a new version becomes ACSCurrent and the old one
    // ACSPrevious (what a rotation writes to the store, without a database server's share).
    let puts = (0..ROTATIONS)
        .map(|n| {
            let version = format!("r{n}-{}", sesame_crypto::random::id_suffix(6)?);
            let name = seeded_name((n * 7919) % size);
            Ok(vec![("SecretName", name), ("VersionId", version), ("SecretData", "rotated value".to_string())])
        })
        .collect::<Result<Vec<_>>>()?;
    let rotation = median_ms(c, "PutSecretValue", &puts).await?;
    report.put(&[key, "put_secret_value_ms"], json!(round2(rotation)), || {
        format!("{:<28} {rotation:.2} ms (median of {ROTATIONS})", format!("PutSecretValue @ {size}"))
    });
    let rotate = match rotations {
        Some(r) => {
            let ms = r.median_ms(c, key).await?;
            report.put(&[key, "rotate_secret_ms"], json!(round2(ms)), || {
                format!("{:<28} {ms:.2} ms (median; {})", format!("RotateSecret @ {size}"), r.describe())
            });
            Some(ms)
        }
        None => None,
    };
    let [rss, anon, file] = ["VmRSS", "RssAnon", "RssFile"].map(|f| status_kib(server.pid(), f).unwrap_or_default() / 1024);
    report.put(&[key, "rss_mib"], json!({"total": rss, "anonymous": anon, "mapped_files": file}), || {
        format!("{:<28} {rss} MiB ({anon} MiB anonymous, {file} MiB of mapped files)", format!("server RSS @ {size}"))
    });
    Ok(AtSize { rps: get.rps(), p99: get.pct(0.99), last_page: pages[2], by_name, by_short_name, by_instance, put: rotation, rotate })
}

/// The figures at one size that the scale benchmark compares across sizes (milliseconds but
/// `rps`).
struct AtSize {
    rps: f64,
    p99: f64,
    last_page: f64,
    by_name: f64,
    by_short_name: f64,
    by_instance: f64,
    put: f64,
    /// RotateSecret of an Rds secret, when the benchmark was given a database.
    rotate: Option<f64>,
}

/// Where a timed ListSecrets page is in the listing.
enum Place {
    First,
    Middle,
    Last,
}

/// The timed listings, numbered: the k-th asks pages of [`page_size`]`(k)`.
const TIMED_LISTINGS: std::ops::RangeInclusive<usize> = 1..=PAGE_CALLS;

/// 100 - k: each timed listing asks a page size of its own, and none the size 100 that other
/// calls use, so that none is answered from the server's cache of listings (kept until the next
/// write): these figures time the store.
fn page_size(k: usize) -> usize {
    100 - k
}

/// A ListSecrets page with one filter of one value.
fn listing_by(key: &str, value: &str, page_size: usize) -> Vec<(&'static str, String)> {
    vec![("Filters", json!([{"Key": key, "Values": [value]}]).to_string()), ("PageSize", page_size.to_string())]
}

/// Checks that a listing by one filter finds the `seeded` secrets the benchmark made for it, so
/// that its timings time the search they are named after.
async fn expect_listed(c: &Client, key: &str, value: &str, seeded: i64) -> Result<()> {
    let found = c.call("ListSecrets", &borrowed(&listing_by(key, value, 100))).await?;
    if found["TotalCount"].as_i64() != Some(seeded) {
        bail!("ListSecrets by {key} {value:?} found {} secrets, not the {seeded} seeded", found["TotalCount"]);
    }
    Ok(())
}

/// The timed listings with one filter of one value.
fn timed_listings_by(key: &str, value: &str) -> Vec<Vec<(&'static str, String)>> {
    TIMED_LISTINGS.map(|k| listing_by(key, value, page_size(k))).collect()
}

/// Parameters as `Client::call` takes them.
fn borrowed<'a>(call: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    call.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The median time, in milliseconds, of one call of `action` with each set of parameters, made
/// one after another.
async fn median_ms(c: &Client, action: &str, calls: &[Vec<(&str, String)>]) -> Result<f64> {
    let mut times = Vec::with_capacity(calls.len());
    for call in calls {
        let params = borrowed(call);
        let t = Instant::now();
        c.call(action, &params).await?;
        times.push(t.elapsed());
    }
    Ok(summarize(times).1)
}

async fn scale(a: ScaleArgs, mut report: Report) -> Result<()> {
    let s = spawn_server()?;
    let c = Arc::new(client(&s.endpoint, &s.id, &s.secret, SignatureVersion::V3)?);
    let mut rotations = match a.db.args() {
        Some(db) => Some(crate::bench_db::ScaleRotations::prepare(&c, db).await?),
        None => None,
    };
    let small = 1_000.min(a.secrets);
    eprintln!("seeding {small} secrets");
    seed(&c, 0, small).await?;
    let at_small = measure_at(&c, &s, &a, small, rotations.as_mut(), &mut report, "small").await?;
    eprintln!("seeding up to {} secrets", a.secrets);
    seed(&c, small, a.secrets).await?;
    let at_large = measure_at(&c, &s, &a, a.secrets, rotations.as_mut(), &mut report, "large").await?;
    // How many times slower at the large size (for the rate, its inverse: a time per request).
    let per = |x: f64, y: f64| x / y.max(0.001);
    let (at_l, at_s) = (&at_large, &at_small);
    let ratios = [
        per(at_s.rps, at_l.rps),
        per(at_l.p99, at_s.p99),
        per(at_l.last_page, at_s.last_page),
        per(at_l.by_name, at_s.by_name),
        per(at_l.by_short_name, at_s.by_short_name),
        per(at_l.by_instance, at_s.by_instance),
        per(at_l.put, at_s.put),
    ];
    let [get, get_p99, page, by_name, by_short_name, by_instance, put] = ratios.map(round2);
    let rotate = at_l.rotate.zip(at_s.rotate).map(|(l, s)| round2(per(l, s)));
    let mut filed = json!({
        "get_secret_value_time": get,
        "get_secret_value_p99": get_p99,
        "last_list_secrets_page": page,
        "list_secrets_by_name": by_name,
        "list_secrets_by_short_name": by_short_name,
        "list_secrets_by_instance": by_instance,
        "put_secret_value": put,
        "budget_at_most": 1.5,
    });
    if let Some(x) = rotate {
        filed["rotate_secret"] = json!(x);
    }
    report.put(&["ratios"], filed, || {
        let rotate = rotate.map(|x| format!("; RotateSecret {x:.2}x")).unwrap_or_default();
        format!(
            "ratios {} vs {small}: GetSecretValue rate {get:.2}x, p99 {get_p99:.2}x; last ListSecrets page {page:.2}x; \
             ListSecrets by name {by_name:.2}x, by `db` {by_short_name:.2}x, by instance {by_instance:.2}x; PutSecretValue {put:.2}x{rotate} \
             (budget: within 1.5x)",
            a.secrets
        )
    });
    report.finish();
    if let Some(r) = rotations {
        r.finish().await;
    }
    Ok(())
}

/// A fresh server and an admin client of it.
pub fn start_server() -> Result<(Spawned, Client)> {
    let s = spawn_server()?;
    let c = client(&s.endpoint, &s.id, &s.secret, SignatureVersion::V3)?;
    Ok((s, c))
}

/// Mean and median of durations, in milliseconds.
pub fn summarize(mut d: Vec<Duration>) -> (f64, f64) {
    d.sort_unstable();
    let ms = |x: &Duration| x.as_secs_f64() * 1000.0;
    let mean = d.iter().map(ms).sum::<f64>() / d.len().max(1) as f64;
    (mean, d.get(d.len() / 2).map(ms).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_sorted_latencies() {
        let run = Run { latencies: (1..=100).map(|n| n * 1000).collect(), elapsed: Duration::from_secs(2), ..Run::default() };
        assert_eq!((run.pct(0.5), run.pct(0.99), run.pct(1.0)), (51.0, 99.0, 100.0));
        assert_eq!(run.rps(), 50.0);
        assert_eq!(Run { elapsed: Duration::from_secs(1), ..Run::default() }.pct(0.5), 0.0);
        assert_eq!(summarize(vec![Duration::from_millis(1), Duration::from_millis(3)]), (2.0, 3.0));
        assert_eq!(authority_of("http://127.0.0.1:8080/x").unwrap(), "127.0.0.1:8080");
        assert!(authority_of("https://h").is_err());
    }

    #[test]
    fn the_writes_are_reported_apart_and_merged_in_order() {
        let mut run = Run { latencies: vec![1000, 2000, 9000], writes: vec![9000], elapsed: Duration::from_secs(1), ..Run::default() };
        run.merge(Run { latencies: vec![500, 3000], writes: vec![3000], elapsed: Duration::from_secs(1), ..Run::default() });
        assert_eq!(run.writes, [3000, 9000]);
        let v = run.json();
        assert_eq!((v["requests"].as_u64(), v["writes"]["requests"].as_u64()), (Some(5), Some(2)));
        assert_eq!((v["writes"]["p50_ms"].as_f64(), v["writes"]["max_ms"].as_f64()), (Some(9.0), Some(9.0)));
        let line = run.line("sesame");
        assert!(line.lines().nth(1).is_some_and(|l| l.starts_with("  of which writes") && l.contains(" 1 req/s")), "{line}");
        let reads_only = Run { latencies: vec![1000], elapsed: Duration::from_secs(1), ..Run::default() };
        assert!(reads_only.json().get("writes").is_none() && reads_only.line("sesame").lines().count() == 1);
    }
}
