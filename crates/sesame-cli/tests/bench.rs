//! The benchmarks still run and print their figures (nothing here checks a figure: tests never
//! time things).
#![allow(clippy::unwrap_used)]

/// Runs `sesame bench <args>` with no configuration of its own and returns what it printed,
/// failing the test if it failed. (The database benchmarks find the machine's MariaDB as root,
/// with no password: scripts/ensure-services.)
fn bench(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sesame"))
        .arg("bench")
        .args(args)
        .env("SESAME_CONFIG_DIR", std::env::temp_dir().join("sesame-bench-test-unused"))
        .env_remove("SESAME_DB_ADMIN_PASSWORD")
        .env_remove("SESAME_OUTPUT")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[test]
fn the_api_benchmark_runs_against_its_own_server_and_the_ceiling() {
    let stdout = bench(&["api", "--workload", "mix", "--connections", "2", "--duration", "1", "--ceiling"]);
    for needle in ["sesame ", "  of which writes", "bare axum (ceiling)", "req/s", "p99", "ratio: rate"] {
        assert!(stdout.contains(needle), "missing {needle:?} in {stdout}");
    }
    assert!(stdout.contains("errors 0"), "{stdout}");
}

#[test]
fn the_scale_benchmark_seeds_measures_both_sizes_and_prints_ratios() {
    let stdout = bench(&["scale", "--secrets", "1100", "--duration", "1", "--connections", "2"]);
    for size in ["1000", "1100"] {
        for what in ["GetSecretValue", "ListSecrets", "ListSecrets by name", "ListSecrets by instance", "PutSecretValue", "server RSS"] {
            assert!(stdout.contains(&format!("{what} @ {size}")), "missing {what} @ {size} in {stdout}");
        }
    }
    assert!(stdout.contains("ratios 1100 vs 1000") && stdout.contains("ListSecrets by name"), "{stdout}");
    // Rotations of an Rds secret need a database, and none was given.
    assert!(!stdout.contains("RotateSecret"), "{stdout}");
    let anon = stdout
        .lines()
        .find(|l| l.starts_with("server RSS @ 1100"))
        .and_then(|l| l.split('(').nth(1))
        .and_then(|part| part.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok());
    assert!(anon.is_some_and(|mib| mib > 0), "the server's anonymous memory is read: {stdout}");
    assert!(stdout.contains("errors 0"), "{stdout}");
}

/// Against the machine's MariaDB (scripts/ensure-services): fails, not skips, without it.
#[test]
fn the_dms_logon_benchmark_times_dms_the_direct_logon_and_one_call_and_prints_the_floor() {
    let stdout = bench(&["dms-logon", "--engine", "mariadb", "--admin-user", "root", "--database", "test", "--rounds", "3"]);
    assert!(stdout.contains("3 rounds on MariaDB"), "{stdout}");
    assert!(stdout.contains("5 ms between rounds"), "{stdout}");
    let mean = |label: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(label))
            .and_then(|l| l.split("mean").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<f64>().ok())
    };
    for label in ["logon + SELECT 1 through DMS", "direct logon + SELECT 1", "one signed DMS call, no database"] {
        assert!(mean(label).is_some_and(|ms| ms > 0.0), "no mean for {label:?} in {stdout}");
    }
    assert!(stdout.contains("ratio (mean)") && stdout.contains("floor: (direct + one call) / direct"), "{stdout}");
    let busy =
        bench_json(&["dms-logon", "--engine", "mariadb", "--admin-user", "root", "--database", "test", "--rounds", "3", "--pause-ms", "0"]);
    assert_eq!(busy["benchmark"]["pause_ms"], 0, "{busy}");
    assert!(busy["floor"].as_f64().is_some_and(|x| x > 1.0), "{busy}");
}

/// `bench … --output json`: one document on stdout, the figures under stable names.
fn bench_json(args: &[&str]) -> serde_json::Value {
    let stdout = bench(&[args, &["--output", "json"]].concat());
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not one JSON document ({e}): {stdout}"))
}

#[test]
fn the_api_benchmark_prints_one_json_document_when_asked() {
    let v = bench_json(&["api", "--workload", "get-secret", "--connections", "2", "--duration", "1", "--ceiling", "--rounds", "1"]);
    assert_eq!(v["benchmark"]["workload"], "get-secret", "{v}");
    for side in ["sesame", "ceiling"] {
        assert!(v[side]["requests"].as_u64().is_some_and(|n| n > 0), "{side}: {v}");
        assert_eq!(v[side]["errors"], 0, "{side}: {v}");
        let (p50, p99) = (v[side]["p50_ms"].as_f64().unwrap(), v[side]["p99_ms"].as_f64().unwrap());
        assert!(p50 <= p99 && p99 <= v[side]["max_ms"].as_f64().unwrap(), "{side}: percentiles in order: {v}");
    }
    // The ratio is the two rates' quotient, as the text prints it.
    let quotient = v["sesame"]["rps"].as_f64().unwrap() / v["ceiling"]["rps"].as_f64().unwrap();
    assert!((v["ratio"]["rate"].as_f64().unwrap() - quotient).abs() < 0.01, "{v}");
    assert_eq!(v["ratio"]["budget"]["rate_at_least"], 0.5, "{v}");
}

/// Against the machine's MariaDB (scripts/ensure-services): fails, not skips, without it.
#[test]
fn the_rotation_benchmark_files_both_modes_beside_the_raw_sql_in_json() {
    let v = bench_json(&["rotation", "--engine", "mariadb", "--admin-user", "root", "--database", "test", "--rounds", "2"]);
    assert_eq!((v["benchmark"]["engine"].as_str(), v["benchmark"]["rounds"].as_u64()), (Some("MariaDB"), Some(2)), "{v}");
    for mode in ["DoubleUsers", "SingleUser"] {
        for side in ["sesame", "raw_sql"] {
            assert!(v[mode][side]["mean_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{mode} {side}: {v}");
        }
        assert!(v[mode]["ratio"].as_f64().is_some_and(|r| r > 0.0), "{mode}: {v}");
    }
}

/// With a database (the machine's MariaDB: fails, not skips, without it), Rds rotations too.
#[test]
fn the_scale_benchmark_files_both_sizes_and_their_ratios_in_json() {
    let db = ["--engine", "mariadb", "--admin-user", "root", "--database", "test", "--rounds", "2"];
    let v = bench_json(&[&["scale", "--secrets", "1050", "--duration", "1", "--connections", "2"][..], &db].concat());
    assert_eq!((v["small"]["secrets"].as_u64(), v["large"]["secrets"].as_u64()), (Some(1000), Some(1050)), "{v}");
    for size in ["small", "large"] {
        let at = &v[size];
        assert!(at["get_secret_value"]["requests"].as_u64().is_some_and(|n| n > 0), "{size}: {v}");
        assert_eq!(at["list_secrets_pages"]["calls"], 31, "{size}: {v}");
        for figure in [
            "list_secrets_by_name_ms",
            "list_secrets_by_short_name_ms",
            "list_secrets_by_instance_ms",
            "put_secret_value_ms",
            "rotate_secret_ms",
        ] {
            assert!(at[figure].as_f64().is_some_and(|ms| ms > 0.0), "{size} {figure}: {v}");
        }
        assert!(at["rss_mib"]["anonymous"].as_u64().is_some_and(|mib| mib > 0), "{size}: {v}");
    }
    let quotient = v["large"]["put_secret_value_ms"].as_f64().unwrap() / v["small"]["put_secret_value_ms"].as_f64().unwrap();
    assert!((v["ratios"]["put_secret_value"].as_f64().unwrap() - quotient).abs() < 0.05, "{v}");
    let quotient = v["large"]["rotate_secret_ms"].as_f64().unwrap() / v["small"]["rotate_secret_ms"].as_f64().unwrap();
    assert!((v["ratios"]["rotate_secret"].as_f64().unwrap() - quotient).abs() < 0.05, "{v}");
}
