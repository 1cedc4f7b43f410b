//! Test support: runs the real `sesame` binary on a free port with a fresh data directory and
//! a fresh CLI config directory, and a Python venv with the official SDKs.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod db;

use secrecy::SecretString;
use sesame_client::{Client, ClientConfig, SignatureVersion};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct TestServer {
    pub child: Child,
    pub dir: PathBuf,
    pub endpoint: String,
    pub access_key_id: String,
    pub access_key_secret: String,
    pub https: bool,
}

pub fn unique_dir(tag: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{tag}-{}", sesame_crypto::random::id_suffix(10).unwrap()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl TestServer {
    /// Starts `sesame serve` on 127.0.0.1:0 and waits for its "listening" line.
    pub fn start(extra: &[&str]) -> TestServer {
        let dir = unique_dir("server");
        Self::start_in(dir, extra)
    }

    pub fn start_in(dir: PathBuf, extra: &[&str]) -> TestServer {
        Self::start_in_env(dir, extra, &[])
    }

    /// Starts in `dir` with extra environment (fault injection, limits). The log of each start
    /// is appended to `server.log`.
    pub fn start_in_env(dir: PathBuf, extra: &[&str], env: &[(&str, &str)]) -> TestServer {
        let stderr = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("server.log")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_sesame"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .envs(env.iter().copied())
            .env("SESAME_CONFIG_DIR", dir.join("config"))
            .env_remove("SESAME_DATA_DIR")
            .env_remove("SESAME_LISTEN")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn sesame serve");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut captured = String::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let endpoint = loop {
            assert!(Instant::now() < deadline, "server did not start: {captured}");
            let line = lines.next().expect("server exited before listening").unwrap();
            captured.push_str(&line);
            captured.push('\n');
            if let Some(rest) = line.strip_prefix("Sesame is listening on ") {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        std::fs::write(dir.join("server.stdout"), &captured).unwrap();
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let creds: toml::Value = toml::from_str(&std::fs::read_to_string(dir.join("config/credentials")).unwrap()).unwrap();
        TestServer {
            child,
            https: endpoint.starts_with("https://"),
            endpoint,
            access_key_id: creds["access_key_id"].as_str().unwrap().to_string(),
            access_key_secret: creds["access_key_secret"].as_str().unwrap().to_string(),
            dir,
        }
    }

    pub fn host_port(&self) -> &str {
        self.endpoint.split("://").nth(1).unwrap()
    }

    pub fn client_with(&self, id: &str, secret: &str, signature: SignatureVersion) -> Client {
        Client::new(ClientConfig {
            endpoint: self.endpoint.clone(),
            access_key_id: id.to_string(),
            access_key_secret: SecretString::from(secret.to_string()),
            ca_file: self.https.then(|| self.dir.join("config/data/tls/cert.pem")),
            insecure: false,
            signature,
            timeout: Duration::from_secs(30),
        })
        .unwrap()
    }

    pub fn client(&self) -> Client {
        self.client_with(&self.access_key_id, &self.access_key_secret, SignatureVersion::V3)
    }

    /// Every file of the server's data directory with its bytes read as text, for canary
    /// searches (the SQLite store, its WAL, the root key, the TLS files).
    pub fn data_files(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut pending = vec![self.dir.join("config/data")];
        while let Some(p) = pending.pop() {
            if p.is_dir() {
                pending.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            } else {
                out.push((p.display().to_string(), String::from_utf8_lossy(&std::fs::read(&p).unwrap()).to_string()));
            }
        }
        out
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Stops the server with SIGTERM and waits for it.
    /// Runs `sesame ARGS` as a client of this server: its config directory and its endpoint
    /// (which the config file may no longer name after a restart on another port).
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        self.cli_with(args, &[], "")
    }

    /// `cli` with extra environment and standard input.
    pub fn cli_with(&self, args: &[&str], env: &[(&str, &str)], stdin: &str) -> std::process::Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sesame"))
            .args(args)
            .env("SESAME_CONFIG_DIR", self.dir.join("config"))
            .env("SESAME_ENDPOINT", &self.endpoint)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        std::io::Write::write_all(&mut input, stdin.as_bytes()).unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    }

    /// The account id in this server's ARNs.
    pub async fn account_id(&self) -> String {
        let v = self.client().call("ListKmsInstances", &[]).await.unwrap();
        let arn = v.pointer("/KmsInstances/KmsInstance/0/KmsInstanceArn").and_then(|a| a.as_str()).unwrap();
        arn.split(':').nth(3).unwrap().to_string()
    }

    pub fn stop(&mut self) {
        #[cfg(unix)]
        {
            let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A venv under the target directory with the pinned SDKs from PyPI, built once and reused
/// while requirements.txt is unchanged. A lock file keeps parallel test processes from
/// building it twice.
pub fn python_venv() -> PathBuf {
    let reqs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/requirements.txt");
    let wanted = std::fs::read_to_string(&reqs).unwrap();
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("py-venv");
    let stamp = venv.join("sesame-requirements.txt");
    let lock = Path::new(env!("CARGO_TARGET_TMPDIR")).join("py-venv.lock");
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
            return venv;
        }
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&lock) {
            Ok(_) => break,
            Err(_) => {
                let stale = std::fs::metadata(&lock)
                    .and_then(|m| m.modified())
                    .map(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(900))
                    .unwrap_or(false);
                if stale {
                    let _ = std::fs::remove_file(&lock);
                }
                assert!(Instant::now() < deadline, "timed out waiting for another process to build the venv");
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
    // Removes the lock even when a step below panics.
    struct Unlock(PathBuf);
    impl Drop for Unlock {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _unlock = Unlock(lock);
    let _ = std::fs::remove_dir_all(&venv);
    let ok = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().map(|s| s.success()).unwrap_or(false);
    assert!(ok, "python3 -m venv failed: Python 3 with the venv module is required");
    let ok = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&reqs)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "pip install of the official SDKs from PyPI failed");
    std::fs::write(&stamp, &wanted).unwrap();
    venv
}

/// Runs a Python script from tests/python with the venv, passing the server's address and
/// credentials. Returns its stdout; panics with its output when it fails.
pub fn run_python(server: &TestServer, script: &str, env: &[(&str, &str)]) -> String {
    let venv = python_venv();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python").join(script);
    let out = Command::new(venv.join("bin/python"))
        .arg(&path)
        .env("SESAME_ENDPOINT", server.host_port())
        .env("SESAME_AK", &server.access_key_id)
        .env("SESAME_SK", &server.access_key_secret)
        .env("PYTHONWARNINGS", "ignore")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{script} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- server log\n{}", server.log());
    stdout
}

/// A TCP forwarder to a real database server that a test can cut and restore: for Sesame the
/// server goes down (connections refused, open ones reset) while it keeps running for others.
pub struct TcpProxy {
    pub port: u16,
    target: String,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl TcpProxy {
    pub async fn start(target: &str) -> TcpProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut proxy = TcpProxy { port: listener.local_addr().unwrap().port(), target: target.to_string(), tasks: Default::default() };
        proxy.serve(listener);
        proxy
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let (target, tasks) = (self.target.clone(), self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(conn);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Closes the listening port and resets every open connection.
    pub async fn cut(&mut self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    /// Listens on the same port again.
    pub async fn restore(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.serve(listener);
    }
}
