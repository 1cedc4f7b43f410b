//! `sesame user|access-key|policy|audit …`: identities, policies and the audit trail.

use crate::opt;
use crate::output::Output;
use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::{Value, json};
use sesame_api::ram::{ACTIONTRAIL_API_VERSION, MAX_LOOKUP_RESULTS};
use sesame_client::Client;
use std::io::Write;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum UserCmd {
    /// Create a user (then give it an access key and policies)
    #[command(
        after_help = "Example:\n  sesame user create alice --display-name 'Alice Ng'\n  sesame access-key create --user alice\n  sesame policy attach AliyunKMSReadOnlyAccess --user alice --system"
    )]
    Create {
        name: String,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        comments: Option<String>,
    },
    List,
    Describe {
        name: String,
    },
    /// Delete a user that has no access keys and no policies left
    Delete {
        name: String,
    },
    /// The policies attached to a user
    Policies {
        name: String,
    },
}

#[derive(Subcommand)]
pub enum AccessKeyCmd {
    /// Create an access key; its secret is shown this once
    Create {
        /// Default: yourself
        #[arg(long)]
        user: Option<String>,
    },
    List {
        #[arg(long)]
        user: Option<String>,
    },
    Disable {
        id: String,
        #[arg(long)]
        user: Option<String>,
    },
    Enable {
        id: String,
        #[arg(long)]
        user: Option<String>,
    },
    Delete {
        id: String,
        #[arg(long)]
        user: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum PolicyCmd {
    /// Create a policy from a RAM policy document (JSON)
    #[command(after_help = r#"Example:
  cat > read-app.json <<'EOF'
  {"Version":"1","Statement":[{"Effect":"Allow","Action":["kms:GetSecretValue"],
    "Resource":"acs:kms:*:*:secret/app/*","Condition":{"IpAddress":{"acs:SourceIp":"10.0.0.0/8"}}}]}
  EOF
  sesame policy create read-app --document read-app.json
  sesame policy attach read-app --user alice"#)]
    Create {
        name: String,
        /// File with the document (- for standard input)
        #[arg(long)]
        document: PathBuf,
        #[arg(long)]
        description: Option<String>,
    },
    List {
        /// system or custom
        #[arg(long, value_parser = ["system", "custom"])]
        r#type: Option<String>,
    },
    Get {
        name: String,
    },
    Delete {
        name: String,
    },
    Attach {
        name: String,
        #[arg(long)]
        user: String,
        /// A built-in policy (AdministratorAccess, AliyunKMSFullAccess, …)
        #[arg(long)]
        system: bool,
    },
    Detach {
        name: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        system: bool,
    },
}

/// `--since` and `--until`, as the audit actions' StartTime and EndTime.
#[derive(clap::Args, Clone)]
pub struct TimeRange {
    /// From this time (2026-01-02T03:04:05Z)
    #[arg(long)]
    since: Option<String>,
    #[arg(long)]
    until: Option<String>,
}

impl TimeRange {
    pub fn params(&self, p: &mut Vec<(String, String)>) {
        opt(p, "StartTime", self.since.clone());
        opt(p, "EndTime", self.until.clone());
    }
}

#[derive(clap::Args, Clone)]
pub struct EventFilter {
    #[command(flatten)]
    range: TimeRange,
    /// Who made the requests
    #[arg(long)]
    user: Option<String>,
    /// The action, e.g. GetSecretValue
    #[arg(long)]
    action: Option<String>,
    /// The resource's ARN, e.g. acs:kms:local:123:secret/app/db
    #[arg(long)]
    resource: Option<String>,
    #[arg(long)]
    access_key: Option<String>,
    /// Only failed (denied, refused, unauthenticated) requests
    #[arg(long, conflicts_with = "succeeded")]
    failed: bool,
    #[arg(long)]
    succeeded: bool,
}

impl EventFilter {
    fn params(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        self.range.params(&mut p);
        let result = if self.failed {
            Some("Failure".to_string())
        } else if self.succeeded {
            Some("Success".into())
        } else {
            None
        };
        let attrs = [
            ("EventName", self.action.clone()),
            ("UserName", self.user.clone()),
            ("ResourceName", self.resource.clone()),
            ("EventAccessKeyId", self.access_key.clone()),
            ("Result", result),
        ];
        for (n, (k, v)) in attrs.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).enumerate() {
            p.push((format!("LookupAttribute.{}.Key", n + 1), k.to_string()));
            p.push((format!("LookupAttribute.{}.Value", n + 1), v));
        }
        p
    }
}

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Recent requests, newest first
    #[command(
        after_help = "Examples:\n  sesame audit list --failed -o table\n  sesame audit list --user alice --action GetSecretValue --since 2026-11-01T00:00:00Z"
    )]
    List {
        #[command(flatten)]
        filter: EventFilter,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Write every matching event as JSON lines, oldest first
    #[command(after_help = "Example:\n  sesame audit export --file trail.jsonl --since 2026-11-01T00:00:00Z")]
    Export {
        #[command(flatten)]
        filter: EventFilter,
        /// Default: standard output
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Check that the trail is whole: exit 0 if it is, 7 with the positions of what was changed
    Verify,
}

/// The trail failed verification; the problems were printed.
#[derive(Debug, thiserror::Error)]
#[error("the audit trail failed verification")]
pub struct TrailBroken;

pub fn user_request(cmd: UserCmd, p: &mut Vec<(String, String)>) -> Result<String> {
    let action = match cmd {
        UserCmd::Create { name, display_name, comments } => {
            p.push(("UserName".into(), name));
            opt(p, "DisplayName", display_name);
            opt(p, "Comments", comments);
            "CreateUser"
        }
        UserCmd::List => "ListUsers",
        UserCmd::Describe { name } => {
            p.push(("UserName".into(), name));
            "GetUser"
        }
        UserCmd::Delete { name } => {
            p.push(("UserName".into(), name));
            "DeleteUser"
        }
        UserCmd::Policies { name } => {
            p.push(("UserName".into(), name));
            "ListPoliciesForUser"
        }
    };
    Ok(action.into())
}

pub fn access_key_request(cmd: AccessKeyCmd, p: &mut Vec<(String, String)>) -> Result<String> {
    let action = match cmd {
        AccessKeyCmd::Create { user } => {
            opt(p, "UserName", user);
            "CreateAccessKey"
        }
        AccessKeyCmd::List { user } => {
            opt(p, "UserName", user);
            "ListAccessKeys"
        }
        AccessKeyCmd::Disable { id, user } => {
            opt(p, "UserName", user);
            p.push(("UserAccessKeyId".into(), id));
            p.push(("Status".into(), "Inactive".into()));
            "UpdateAccessKey"
        }
        AccessKeyCmd::Enable { id, user } => {
            opt(p, "UserName", user);
            p.push(("UserAccessKeyId".into(), id));
            p.push(("Status".into(), "Active".into()));
            "UpdateAccessKey"
        }
        AccessKeyCmd::Delete { id, user } => {
            opt(p, "UserName", user);
            p.push(("UserAccessKeyId".into(), id));
            "DeleteAccessKey"
        }
    };
    Ok(action.into())
}

pub fn policy_request(cmd: PolicyCmd, p: &mut Vec<(String, String)>) -> Result<String> {
    let attach = matches!(cmd, PolicyCmd::Attach { .. });
    let action = match cmd {
        PolicyCmd::Create { name, document, description } => {
            let text = if document.as_os_str() == "-" {
                let mut buf = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut buf).context("reading the document from standard input")?;
                buf
            } else {
                std::fs::read_to_string(&document).with_context(|| format!("reading {}", document.display()))?
            };
            p.push(("PolicyName".into(), name));
            p.push(("PolicyDocument".into(), text));
            opt(p, "Description", description);
            "CreatePolicy"
        }
        PolicyCmd::List { r#type } => {
            opt(p, "PolicyType", r#type.map(|t| if t == "system" { "System".into() } else { "Custom".into() }));
            "ListPolicies"
        }
        PolicyCmd::Get { name } => {
            p.push(("PolicyName".into(), name));
            "GetPolicy"
        }
        PolicyCmd::Delete { name } => {
            p.push(("PolicyName".into(), name));
            "DeletePolicy"
        }
        PolicyCmd::Attach { name, user, system } | PolicyCmd::Detach { name, user, system } => {
            let action = if attach { "AttachPolicyToUser" } else { "DetachPolicyFromUser" };
            p.push(("PolicyName".into(), name));
            p.push(("UserName".into(), user));
            p.push(("PolicyType".into(), if system { "System" } else { "Custom" }.into()));
            action
        }
    };
    Ok(action.into())
}

async fn lookup(client: &Client, params: &[(String, String)]) -> Result<Value> {
    let refs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Ok(client.call_version(ACTIONTRAIL_API_VERSION, "LookupEvents", &refs).await?)
}

/// One line per event for `--output table`.
fn summary(e: &Value) -> Value {
    let s = |p: &str| e.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
    json!({
        "Time": s("/eventTime"),
        "User": s("/userIdentity/userName"),
        "Action": s("/eventName"),
        "Result": s("/result"),
        "Error": s("/errorCode"),
        "Resource": s("/resourceName"),
        "SourceIp": s("/sourceIpAddress"),
    })
}

pub async fn audit(client: &Client, output: Option<Output>, cmd: AuditCmd) -> Result<()> {
    match cmd {
        AuditCmd::List { filter, limit } => {
            let mut p = filter.params();
            p.push(("MaxResults".into(), limit.clamp(1, MAX_LOOKUP_RESULTS).to_string()));
            let v = lookup(client, &p).await?;
            match output {
                Some(Output::Table) => {
                    let rows: Vec<Value> = v["Events"].as_array().map(|e| e.iter().map(summary).collect()).unwrap_or_default();
                    crate::output::print(Output::Table, &json!({"Events": {"Event": rows}}));
                }
                _ => crate::output::print(Output::Json, &v),
            }
            Ok(())
        }
        AuditCmd::Export { filter, file } => {
            let mut events = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let mut p = filter.params();
                p.push(("MaxResults".into(), MAX_LOOKUP_RESULTS.to_string()));
                if let Some(t) = &token {
                    p.push(("NextToken".into(), t.clone()));
                }
                let v = lookup(client, &p).await?;
                events.extend(v["Events"].as_array().cloned().unwrap_or_default());
                eprint!("\rread {} events", events.len());
                token = v.get("NextToken").and_then(Value::as_str).map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
            eprintln!();
            let mut out: Box<dyn Write> = match &file {
                Some(f) => Box::new(std::fs::File::create(f).with_context(|| format!("creating {}", f.display()))?),
                None => Box::new(std::io::stdout().lock()),
            };
            for e in events.iter().rev() {
                writeln!(out, "{e}").context("writing the export")?;
            }
            eprintln!("exported {} events{}", events.len(), file.map(|f| format!(" to {}", f.display())).unwrap_or_default());
            Ok(())
        }
        AuditCmd::Verify => {
            let v = client.call_version(ACTIONTRAIL_API_VERSION, "VerifyEvents", &[]).await?;
            if output == Some(Output::Json) {
                crate::output::print(Output::Json, &v);
            }
            let count = v["EventCount"].as_i64().unwrap_or_default();
            if v["Valid"] == true {
                eprintln!("The audit trail is whole: {count} events, every link and the sealed head check out.");
                return Ok(());
            }
            for p in v["Problems"].as_array().into_iter().flatten() {
                eprintln!("position {}: {}", p["Position"], p["Problem"].as_str().unwrap_or_default());
            }
            Err(TrailBroken.into())
        }
    }
}
