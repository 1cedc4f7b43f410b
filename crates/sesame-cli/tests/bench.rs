//! The benchmarks still run and print their figures (nothing here checks a figure: tests never
//! time things).
#![allow(clippy::unwrap_used)]

#[test]
fn the_api_benchmark_runs_against_its_own_server_and_the_ceiling() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sesame"))
        .args(["bench", "api", "--workload", "mix", "--connections", "2", "--duration", "1", "--ceiling"])
        .env("SESAME_CONFIG_DIR", std::env::temp_dir().join("sesame-bench-test-unused"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for needle in ["sesame ", "bare axum (ceiling)", "req/s", "p99", "ratio: rate"] {
        assert!(stdout.contains(needle), "missing {needle:?} in {stdout}");
    }
    assert!(stdout.contains("errors 0"), "{stdout}");
}

#[test]
fn the_scale_benchmark_seeds_measures_both_sizes_and_prints_ratios() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sesame"))
        .args(["bench", "scale", "--secrets", "1100", "--duration", "1", "--connections", "2"])
        .env("SESAME_CONFIG_DIR", std::env::temp_dir().join("sesame-bench-test-unused"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for size in ["1000", "1100"] {
        for what in ["GetSecretValue", "ListSecrets", "ListSecrets by name", "ListSecrets by instance", "PutSecretValue", "server RSS"] {
            assert!(stdout.contains(&format!("{what} @ {size}")), "missing {what} @ {size} in {stdout}");
        }
    }
    assert!(stdout.contains("ratios 1100 vs 1000") && stdout.contains("ListSecrets by name"), "{stdout}");
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
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sesame"))
        .args(["bench", "dms-logon", "--engine", "mariadb", "--admin-user", "root", "--database", "test", "--rounds", "3"])
        .env("SESAME_CONFIG_DIR", std::env::temp_dir().join("sesame-bench-test-unused"))
        .env_remove("SESAME_DB_ADMIN_PASSWORD")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("3 rounds on MariaDB"), "{stdout}");
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
}
