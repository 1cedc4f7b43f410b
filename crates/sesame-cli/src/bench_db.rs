//! The database benchmarks: a rotation through Sesame beside the raw SQL it needs, and a logon
//! through DMS beside a direct one, in the same run against the same server.

use crate::bench::{DbArgs, Report, ms_json, round2, start_server, summarize};
use anyhow::{Context, Result};
use secrecy::SecretString;
use serde_json::json;
use sesame_api::dms::DMS_API_VERSION;
use sesame_api::rds::RDS_API_VERSION;
use sesame_engines::{AccountSpec, DbTarget, Engine, EngineKind, Permission, TlsMode};
use std::time::{Duration, Instant};

struct Setup {
    target: DbTarget,
    password: String,
    port: u16,
    kind: EngineKind,
}

fn setup(a: &DbArgs) -> Result<Setup> {
    let kind = EngineKind::parse(&a.engine).context("--engine: postgresql, mysql or mariadb")?;
    let port = a.port.unwrap_or(kind.default_port());
    let password = crate::read_secret(a.admin_password_file.clone(), "SESAME_DB_ADMIN_PASSWORD")?.unwrap_or_default();
    let target = DbTarget {
        kind,
        host: a.host.clone(),
        port,
        admin_user: a.admin_user.clone(),
        admin_password: SecretString::from(password.clone()),
        admin_database: a.admin_database.clone(),
        tls: TlsMode::Disable,
        account_host: None,
    };
    Ok(Setup { target, password, port, kind })
}

async fn register(c: &sesame_client::Client, a: &DbArgs, s: &Setup, id: &str) -> Result<()> {
    let port = s.port.to_string();
    let mut p = vec![
        ("DBInstanceId", id),
        ("Engine", s.kind.as_str()),
        ("ConnectionString", a.host.as_str()),
        ("Port", port.as_str()),
        ("AccountName", a.admin_user.as_str()),
        ("AccountPassword", s.password.as_str()),
        ("TlsMode", "disable"),
    ];
    if let Some(db) = &a.admin_database {
        p.push(("AdminDatabase", db.as_str()));
    }
    c.call_version(RDS_API_VERSION, "RegisterDBInstance", &p).await?;
    Ok(())
}

/// Files a timing (mean and median, ms) at `path`, or prints it as a line named `name`.
fn timing(report: &mut Report, path: &[&str], name: &str, (mean, p50): (f64, f64)) {
    report.put(path, ms_json((mean, p50)), || format!("{name:<40} mean {mean:>8.2} ms   p50 {p50:>8.2} ms"));
}

/// Files a ratio at `path`, or prints it as a line named `name`, with its budget if it has one.
fn ratio(report: &mut Report, path: &[&str], name: &str, x: f64, budget: Option<f64>) {
    let line = || match budget {
        Some(b) => format!("{name:<40} {x:.2}x (budget <= {b:.2})"),
        None => format!("{name:<40} {x:.2}x"),
    };
    report.put(path, json!(round2(x)), line);
}

fn setup_line(report: &mut Report, a: &DbArgs, s: &Setup) {
    let v = json!({"rounds": a.rounds, "engine": s.kind.as_str(), "host": a.host, "port": s.port});
    report.put(&["benchmark"], v, || format!("{} rounds on {} {}:{}", a.rounds, s.kind.as_str(), a.host, s.port));
}

/// A secret rotates at most `MAX_ROTATIONS_PER_HOUR` times an hour (the server's default), and
/// `rds_secret` takes one of them.
fn check_rotation_rounds(a: &DbArgs) -> Result<()> {
    let most = sesame_core::rotation::MAX_ROTATIONS_PER_HOUR - 1;
    if a.rounds > most {
        anyhow::bail!("--rounds {}: at most {most}, since a secret may rotate {} times an hour", a.rounds, most + 1);
    }
    Ok(())
}

/// Creates `account` on the database and an Rds secret of `mode` (DoubleUsers or SingleUser)
/// that holds it on the instance `register` made, then rotates it once: a first dual rotation
/// creates the clone account, which is not what a benchmark measures. Returns the secret's name.
async fn rds_secret(c: &sesame_client::Client, engine: &dyn Engine, a: &DbArgs, account: &str, mode: &str) -> Result<String> {
    let pw = sesame_engines::generate_password()?;
    engine.create_account(account, &pw, &AccountSpec::Standard { database: a.database.clone(), permission: Permission::ReadWrite }).await?;
    let secret = format!("bench/{account}");
    let data = json!({"Accounts": [{"AccountName": account, "AccountPassword": secrecy::ExposeSecret::expose_secret(&pw)}]}).to_string();
    let cfg = json!({"SecretSubType": mode, "DBInstanceId": INSTANCE, "CustomData": {"DBName": a.database}}).to_string();
    c.call(
        "CreateSecret",
        &[("SecretName", &secret), ("SecretType", "Rds"), ("VersionId", "v0"), ("SecretData", &data), ("ExtendedConfig", &cfg)],
    )
    .await?;
    c.call("RotateSecret", &[("SecretName", &secret), ("VersionId", "warm")]).await?;
    Ok(secret)
}

/// One RotateSecret of `secret` to version `r{round}`, timed.
async fn timed_rotation(c: &sesame_client::Client, secret: &str, round: usize) -> Result<std::time::Duration> {
    let t = Instant::now();
    c.call("RotateSecret", &[("SecretName", secret), ("VersionId", &format!("r{round}"))]).await?;
    Ok(t.elapsed())
}

/// Drops an account `rds_secret` made and its clone, if it has one.
async fn drop_accounts(engine: &dyn Engine, account: &str) {
    for name in [account.to_string(), format!("{account}_clone")] {
        let _ = engine.drop_account(&name).await;
    }
}

/// The instance the benchmarks register their database as.
const INSTANCE: &str = "bench-db";

pub async fn rotation(a: DbArgs, mut report: Report) -> Result<()> {
    check_rotation_rounds(&a)?;
    let s = setup(&a)?;
    let (_server, c) = start_server()?;
    register(&c, &a, &s, INSTANCE).await?;
    let engine = sesame_engines::connect(s.target.clone())?;
    let run = sesame_crypto::random::id_suffix(5)?;
    setup_line(&mut report, &a, &s);
    for mode in ["DoubleUsers", "SingleUser"] {
        let account = format!("bench_{run}_{}", if mode == "DoubleUsers" { "dual" } else { "single" });
        let secret = rds_secret(&c, engine.as_ref(), &a, &account, mode).await?;
        let raw_account = format!("{account}_raw");
        let pw = sesame_engines::generate_password()?;
        engine
            .create_account(&raw_account, &pw, &AccountSpec::Standard { database: a.database.clone(), permission: Permission::ReadWrite })
            .await?;
        let (mut through, mut raw) = (Vec::with_capacity(a.rounds), Vec::with_capacity(a.rounds));
        // Interleaved, so that both see the same machine and server state. The raw SQL works on
        // an account of its own, so that it does not undo the rotations.
        for n in 0..a.rounds {
            through.push(timed_rotation(&c, &secret, n).await?);
            let pw = sesame_engines::generate_password()?;
            let t = Instant::now();
            engine.set_password(&raw_account, &pw).await?;
            engine.check_login(&raw_account, &pw, Some(&a.database)).await?;
            raw.push(t.elapsed());
        }
        let (through, raw) = (summarize(through), summarize(raw));
        timing(&mut report, &[mode, "sesame"], &format!("{mode} rotation through Sesame"), through);
        timing(&mut report, &[mode, "raw_sql"], "raw SQL: set password + logon", raw);
        ratio(&mut report, &[mode, "ratio"], "ratio (mean)", through.0 / raw.0.max(0.001), Some(2.0));
        drop_accounts(engine.as_ref(), &account).await;
        let _ = engine.drop_account(&raw_account).await;
    }
    report.finish();
    Ok(())
}

/// Dual-account rotations of Rds secrets on one registered database, timed through the API: the
/// scale benchmark's rotations, each size on a secret and an account of its own.
pub struct ScaleRotations {
    args: DbArgs,
    engine: Box<dyn Engine>,
    run: String,
    accounts: Vec<String>,
}

impl ScaleRotations {
    /// Registers the database with the server `c` calls.
    pub async fn prepare(c: &sesame_client::Client, args: DbArgs) -> Result<Self> {
        check_rotation_rounds(&args)?;
        let s = setup(&args)?;
        register(c, &args, &s, INSTANCE).await?;
        let engine = sesame_engines::connect(s.target)?;
        Ok(ScaleRotations { args, engine, run: sesame_crypto::random::id_suffix(5)?, accounts: Vec::new() })
    }

    /// A new secret's median time of `--rounds` dual rotations, in milliseconds.
    pub async fn median_ms(&mut self, c: &sesame_client::Client, label: &str) -> Result<f64> {
        let account = format!("bench_{}_{label}", self.run);
        self.accounts.push(account.clone());
        let secret = rds_secret(c, self.engine.as_ref(), &self.args, &account, "DoubleUsers").await?;
        let mut times = Vec::with_capacity(self.args.rounds);
        for n in 0..self.args.rounds {
            times.push(timed_rotation(c, &secret, n).await?);
        }
        Ok(summarize(times).1)
    }

    pub fn describe(&self) -> String {
        format!("dual rotations of an Rds secret on {} {}", self.args.engine, self.args.host)
    }

    /// Drops the accounts made.
    pub async fn finish(self) {
        for account in &self.accounts {
            drop_accounts(self.engine.as_ref(), account).await;
        }
    }
}

pub async fn dms_logon(args: crate::bench::DmsLogonArgs, mut report: Report) -> Result<()> {
    let (a, pause) = (args.db, Duration::from_millis(args.pause_ms));
    let s = setup(&a)?;
    let (_server, c) = start_server()?;
    let engine = sesame_engines::connect(s.target.clone())?;
    let account = format!("bench_{}_dms", sesame_crypto::random::id_suffix(5)?);
    let pw = sesame_engines::generate_password()?;
    engine.create_account(&account, &pw, &AccountSpec::Standard { database: a.database.clone(), permission: Permission::ReadOnly }).await?;
    let password = secrecy::ExposeSecret::expose_secret(&pw).to_string();
    let value = json!({"AccountName": account, "AccountPassword": password}).to_string();
    c.call("CreateSecret", &[("SecretName", "bench/dms"), ("VersionId", "v1"), ("SecretData", &value)]).await?;
    let port = s.port.to_string();
    c.call_version(
        DMS_API_VERSION,
        "RegisterInstance",
        &[
            ("InstanceAlias", "bench"),
            ("InstanceType", s.kind.as_str()),
            ("Host", a.host.as_str()),
            ("Port", port.as_str()),
            ("DatabaseName", a.database.as_str()),
            ("TlsMode", "disable"),
            ("SecretName", "bench/dms"),
        ],
    )
    .await?;
    let session = DbTarget { admin_user: String::new(), admin_password: SecretString::from(String::new()), ..s.target.clone() };
    let mut through = Vec::with_capacity(a.rounds);
    let mut direct = Vec::with_capacity(a.rounds);
    let mut call = Vec::with_capacity(a.rounds);
    let via_dms = || async {
        let t = Instant::now();
        c.call_version(DMS_API_VERSION, "ExecuteScript", &[("InstanceAlias", "bench"), ("Script", "SELECT 1")]).await?;
        anyhow::Ok(t.elapsed())
    };
    let plain = || async {
        let t = Instant::now();
        sesame_engines::session::run_script(&session, &account, &pw, Some(&a.database), "SELECT 1", 1).await?;
        anyhow::Ok(t.elapsed())
    };
    // The least any logon through DMS adds: one signed, audited request to the server that
    // touches no database (the instance is read from DMS's cache).
    let one_call = || async {
        let t = Instant::now();
        c.call_version(DMS_API_VERSION, "GetInstance", &[("InstanceAlias", "bench")]).await?;
        anyhow::Ok(t.elapsed())
    };
    // Interleaved, so that all three see the same server state, and each goes first in turn: the
    // first request after the pause also wakes the idle machine (and the database's threads),
    // which costs the ones after it nothing.
    for n in 0..a.rounds {
        for k in 0..3 {
            match (n + k) % 3 {
                0 => through.push(via_dms().await?),
                1 => direct.push(plain().await?),
                _ => call.push(one_call().await?),
            }
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    let (through, direct, call) = (summarize(through), summarize(direct), summarize(call));
    setup_line(&mut report, &a, &s);
    report.put(&["benchmark", "pause_ms"], json!(args.pause_ms), || format!("{} ms between rounds", args.pause_ms));
    timing(&mut report, &["dms"], "logon + SELECT 1 through DMS (KMS secret)", through);
    timing(&mut report, &["direct"], "direct logon + SELECT 1 (plaintext)", direct);
    timing(&mut report, &["one_call"], "one signed DMS call, no database", call);
    ratio(&mut report, &["ratio"], "ratio (mean)", through.0 / direct.0.max(0.001), Some(1.3));
    ratio(&mut report, &["floor"], "floor: (direct + one call) / direct", (direct.0 + call.0) / direct.0.max(0.001), None);
    let _ = engine.drop_account(&account).await;
    report.finish();
    Ok(())
}
