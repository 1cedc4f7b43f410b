//! The database benchmarks: a rotation through Sesame beside the raw SQL it needs, and a logon
//! through DMS beside a direct one, in the same run against the same server.

use crate::bench::{DbArgs, Report, ms_json, round2, start_server, summarize};
use anyhow::{Context, Result};
use secrecy::SecretString;
use serde_json::json;
use sesame_api::dms::DMS_API_VERSION;
use sesame_api::rds::RDS_API_VERSION;
use sesame_engines::{AccountSpec, DbTarget, EngineKind, Permission, TlsMode};
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

pub async fn rotation(a: DbArgs, mut report: Report) -> Result<()> {
    let s = setup(&a)?;
    let (_server, c) = start_server()?;
    register(&c, &a, &s, "bench-db").await?;
    let engine = sesame_engines::connect(s.target.clone())?;
    let run = sesame_crypto::random::id_suffix(5)?;
    setup_line(&mut report, &a, &s);
    for mode in ["DoubleUsers", "SingleUser"] {
        let account = format!("bench_{run}_{}", if mode == "DoubleUsers" { "dual" } else { "single" });
        let pw = sesame_engines::generate_password()?;
        engine
            .create_account(&account, &pw, &AccountSpec::Standard { database: a.database.clone(), permission: Permission::ReadWrite })
            .await?;
        let raw_account = format!("{account}_raw");
        engine
            .create_account(&raw_account, &pw, &AccountSpec::Standard { database: a.database.clone(), permission: Permission::ReadWrite })
            .await?;
        let secret = format!("bench/{account}");
        let data =
            json!({"Accounts": [{"AccountName": account, "AccountPassword": secrecy::ExposeSecret::expose_secret(&pw)}]}).to_string();
        let cfg = json!({"SecretSubType": mode, "DBInstanceId": "bench-db", "CustomData": {"DBName": a.database}}).to_string();
        c.call(
            "CreateSecret",
            &[("SecretName", &secret), ("SecretType", "Rds"), ("VersionId", "v0"), ("SecretData", &data), ("ExtendedConfig", &cfg)],
        )
        .await?;
        // The first dual rotation creates the clone account; it is not what is measured.
        c.call("RotateSecret", &[("SecretName", &secret), ("VersionId", "warm")]).await?;
        let (mut through, mut raw) = (Vec::with_capacity(a.rounds), Vec::with_capacity(a.rounds));
        // Interleaved, so that both see the same machine and server state. The raw SQL works on
        // an account of its own, so that it does not undo the rotations.
        for n in 0..a.rounds {
            let t = Instant::now();
            c.call("RotateSecret", &[("SecretName", &secret), ("VersionId", &format!("r{n}"))]).await?;
            through.push(t.elapsed());
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
        for name in [account.clone(), format!("{account}_clone"), raw_account] {
            let _ = engine.drop_account(&name).await;
        }
    }
    report.finish();
    Ok(())
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
