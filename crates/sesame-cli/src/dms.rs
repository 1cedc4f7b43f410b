//! `sesame dms …`: database instances in DMS, the SQL console and its audit.

use crate::output::Output;
use crate::{PageArgs, opt, read_secret};
use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::Value;
use sesame_client::Client;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum DmsCmd {
    /// Register a database instance; DMS logs on once with its credential to check it
    #[command(after_help = "Examples:
  sesame dms register shop-pg --engine postgresql --host 10.0.0.5 --database shop --secret rds/shop
  sesame dms register orders --engine mariadb --host 127.0.0.1 --db-instance orders-db
  SESAME_DMS_DB_PASSWORD=... sesame dms register legacy --engine mysql --host 10.0.0.9 --user report")]
    Register {
        /// Name to refer to it by (letters, digits, - _ .)
        alias: String,
        /// PostgreSQL, MySQL, MariaDB or SQLServer
        #[arg(long)]
        engine: String,
        #[arg(long)]
        host: String,
        /// Default: the engine's
        #[arg(long)]
        port: Option<u16>,
        /// Database to log on to
        #[arg(long)]
        database: Option<String>,
        /// product, dev, pre, test, sit, uat, pet or stag
        #[arg(long, default_value = "dev")]
        env: String,
        /// Seconds a script may run
        #[arg(long)]
        query_timeout: Option<u64>,
        /// disable, prefer, require or verify-full
        #[arg(long)]
        tls: Option<String>,
        /// Log on with this KMS secret's ACSCurrent, fetched at every logon
        #[arg(long, conflicts_with_all = ["db_instance", "user"])]
        secret: Option<String>,
        /// Log on with the Rds secret of this registered database instance (found by ListSecrets)
        #[arg(long, conflicts_with = "user")]
        db_instance: Option<String>,
        /// Log on with this account; DMS keeps its password sealed by KMS. The password comes
        /// from --password-file or SESAME_DMS_DB_PASSWORD, never the command line
        #[arg(long)]
        user: Option<String>,
        #[arg(long, requires = "user")]
        password_file: Option<PathBuf>,
    },
    /// List registered instances
    List(PageArgs),
    /// Show an instance (never a password)
    Describe { instance: String },
    /// Forget an instance
    Remove { instance: String },
    /// Run SQL; without a statement, read statements (ending in ;) from standard input
    #[command(after_help = "Examples:
  sesame dms sql shop-pg \"select id, name from customers limit 5\"
  sesame dms sql shop-pg --output json \"select count(*) from orders\"
  sesame dms sql shop-pg < migration.sql
  sesame dms sql shop-pg                    # interactive: end statements with ;, quit with \\q")]
    Sql {
        instance: String,
        statement: Option<String>,
        /// Rows returned per statement (at most 10000)
        #[arg(long, default_value_t = 1000)]
        max_rows: u32,
        /// Seconds the script may run (default: the instance's query timeout)
        #[arg(long)]
        timeout: Option<u64>,
    },
    /// Statements run through DMS: who, where, with which secret version, and the outcome
    #[command(after_help = "Example:\n  sesame dms audit --instance shop-pg --failed --output table")]
    Audit {
        #[command(flatten)]
        range: crate::iam::TimeRange,
        /// Who ran them
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        instance: Option<String>,
        /// Only failed statements
        #[arg(long)]
        failed: bool,
        #[command(flatten)]
        page: PageArgs,
    },
}

fn instance_param(instance: String) -> (String, String) {
    if !instance.is_empty() && instance.bytes().all(|b| b.is_ascii_digit()) {
        ("DbId".into(), instance)
    } else {
        ("InstanceAlias".into(), instance)
    }
}

/// The action and parameters of every subcommand but `sql`.
pub fn request(cmd: DmsCmd, p: &mut Vec<(String, String)>) -> Result<String> {
    let action = match cmd {
        DmsCmd::Register { alias, engine, host, port, database, env, query_timeout, tls, secret, db_instance, user, password_file } => {
            let port = match port {
                Some(p) => p,
                None => default_port(&engine)?,
            };
            p.extend([
                ("InstanceAlias".into(), alias),
                ("InstanceType".into(), engine),
                ("Host".into(), host),
                ("Port".into(), port.to_string()),
                ("EnvType".into(), env),
            ]);
            opt(p, "DatabaseName", database);
            opt(p, "QueryTimeout", query_timeout.map(|t| t.to_string()));
            opt(p, "TlsMode", tls);
            opt(p, "SecretName", secret);
            opt(p, "DBInstanceId", db_instance);
            if let Some(u) = user {
                let password = read_secret(password_file, "SESAME_DMS_DB_PASSWORD")?
                    .context("give the password with --password-file or SESAME_DMS_DB_PASSWORD")?;
                p.extend([("LoginMode".into(), "Password".into()), ("DatabaseUser".into(), u), ("DatabasePassword".into(), password)]);
            }
            "RegisterInstance"
        }
        DmsCmd::List(page) => {
            p.extend(page.params());
            "ListInstances"
        }
        DmsCmd::Describe { instance } => {
            p.push(instance_param(instance));
            "GetInstance"
        }
        DmsCmd::Remove { instance } => {
            p.push(instance_param(instance));
            "DeleteInstance"
        }
        DmsCmd::Audit { range, user, instance, failed, page } => {
            p.extend(page.params());
            range.params(p);
            opt(p, "OpUserName", user);
            opt(p, "SearchName", instance);
            if failed {
                p.push(("ExecState".into(), "FAIL".into()));
            }
            "ListSQLExecAuditLog"
        }
        DmsCmd::Sql { .. } => anyhow::bail!("internal: sql is not a single request"),
    };
    Ok(action.to_string())
}

fn default_port(engine: &str) -> Result<u16> {
    Ok(match engine.to_ascii_lowercase().as_str() {
        "postgresql" | "postgres" => 5432,
        "mysql" | "mariadb" => 3306,
        "sqlserver" | "mssql" => 1433,
        other => anyhow::bail!("unknown engine {other}: use PostgreSQL, MySQL, MariaDB or SQLServer"),
    })
}

/// A statement failed; the error itself was printed.
#[derive(Debug, thiserror::Error)]
#[error("a statement failed")]
pub struct StatementFailed;

/// `sesame dms sql`: one script from the argument or piped input, or an interactive console.
pub async fn sql(client: &Client, output: Option<Output>, cmd: DmsCmd) -> Result<()> {
    let DmsCmd::Sql { instance, statement, max_rows, timeout } = cmd else { anyhow::bail!("internal: not a sql command") };
    let run = |script: String| {
        let mut p = vec![instance_param(instance.clone()), ("Script".into(), script), ("MaxRows".into(), max_rows.to_string())];
        opt(&mut p, "QueryTimeout", timeout.map(|t| t.to_string()));
        async move {
            let refs: Vec<(&str, &str)> = p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            client.call_version(sesame_api::dms::DMS_API_VERSION, "ExecuteScript", &refs).await
        }
    };
    if let Some(s) = statement {
        return show(output, &run(s).await?);
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut script = String::new();
        std::io::Read::read_to_string(&mut stdin.lock(), &mut script).context("reading standard input")?;
        return show(output, &run(script).await?);
    }
    // Interactive: statements end with ';'. Errors are shown and the console goes on.
    eprintln!("Connected to {instance} through DMS. End statements with ;  quit with \\q");
    let mut buffer = String::new();
    loop {
        eprint!("{}", if buffer.is_empty() { format!("{instance}=> ") } else { format!("{instance}-> ") });
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        if stdin.lock().read_line(&mut line).context("reading standard input")? == 0 || line.trim() == "\\q" {
            return Ok(());
        }
        buffer.push_str(&line);
        if !buffer.trim_end().ends_with(';') {
            continue;
        }
        let script = std::mem::take(&mut buffer);
        match run(script).await {
            Ok(v) => {
                let _ = show(output, &v);
            }
            Err(e) => eprintln!("error: {e}"),
        }
    }
}

/// Prints ExecuteScript's results: JSON as is, or each result set as a table.
fn show(output: Option<Output>, v: &Value) -> Result<()> {
    let results = v.get("Results").and_then(Value::as_array).cloned().unwrap_or_default();
    if output == Some(Output::Json) {
        crate::output::print(Output::Json, v);
    } else {
        for r in &results {
            print!("{}", result_table(r));
        }
    }
    for r in &results {
        if r.get("Success") == Some(&Value::Bool(false)) {
            eprintln!("ERROR {}", r.get("Message").and_then(Value::as_str).unwrap_or_default());
            return Err(StatementFailed.into());
        }
    }
    Ok(())
}

fn result_table(r: &Value) -> String {
    if r.get("Success") == Some(&Value::Bool(false)) {
        return String::new();
    }
    let count = r.get("RowCount").and_then(Value::as_u64).unwrap_or_default();
    let columns: Vec<&str> =
        r.get("ColumnNames").and_then(Value::as_array).map(|c| c.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    if columns.is_empty() {
        return format!("OK, {count} row{}\n", if count == 1 { "" } else { "s" });
    }
    let cell = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "NULL".into(),
        Some(other) => other.to_string(),
    };
    let rows: Vec<Vec<String>> = r
        .get("Rows")
        .and_then(Value::as_array)
        .map(|rows| rows.iter().map(|row| columns.iter().map(|c| cell(row.get(*c))).collect()).collect())
        .unwrap_or_default();
    let mut all = vec![columns.iter().map(|c| c.to_string()).collect::<Vec<_>>()];
    all.extend(rows);
    let widths: Vec<usize> = (0..columns.len()).map(|i| all.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for (n, row) in all.iter().enumerate() {
        let line: Vec<String> = row.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths[i])).collect();
        out.push_str(line.join(" | ").trim_end());
        out.push('\n');
        if n == 0 {
            out.push_str(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("-+-"));
            out.push('\n');
        }
    }
    let truncated = if r.get("Truncated") == Some(&Value::Bool(true)) { ", more rows left out (--max-rows)" } else { "" };
    out.push_str(&format!("({count} row{}{truncated})\n", if count == 1 { "" } else { "s" }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn result_sets_print_as_tables_and_commands_as_counts() {
        let t = result_table(
            &json!({"ColumnNames": ["id", "name"], "Rows": [{"id": "1", "name": "ann"}, {"id": "22", "name": null}], "RowCount": 2, "Success": true}),
        );
        assert_eq!(t, "id | name\n---+-----\n1  | ann\n22 | NULL\n(2 rows)\n");
        assert_eq!(result_table(&json!({"ColumnNames": [], "Rows": [], "RowCount": 1, "Success": true})), "OK, 1 row\n");
    }

    #[test]
    fn numeric_instances_are_ids() {
        assert_eq!(instance_param("12".into()).0, "DbId");
        assert_eq!(instance_param("shop-pg".into()).0, "InstanceAlias");
    }
}
