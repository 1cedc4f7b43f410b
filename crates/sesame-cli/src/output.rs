//! `--output json` prints the response as JSON; `--output table` prints lists as rows and
//! objects as field/value pairs.

use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Json,
    Table,
}

pub fn print(output: Output, value: &Value) {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(value).unwrap_or_default()),
        Output::Table => print!("{}", table(value)),
    }
}

/// Finds the list in an Alibaba response (`{"Keys":{"Key":[…]}}`) if there is one.
fn find_rows(v: &Value) -> Option<&Vec<Value>> {
    let obj = v.as_object()?;
    for (k, inner) in obj {
        if k == "RequestId" {
            continue;
        }
        if let Some(rows) = inner.as_object().and_then(|m| (m.len() == 1).then(|| m.values().next()).flatten()).and_then(Value::as_array) {
            return Some(rows);
        }
    }
    None
}

/// A cell: scalars as text, Alibaba's one-key list wrappers (`{"VersionStage":[…]}`) as a
/// comma-separated list, tags as `key=value`.
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Object(m) if m.len() == 1 => match m.values().next() {
            Some(Value::Array(items)) => items.iter().map(scalar).collect::<Vec<_>>().join(", "),
            _ => Value::Object(m.clone()).to_string(),
        },
        Value::Object(m) if m.contains_key("TagKey") => {
            format!("{}={}", scalar(&m["TagKey"]), m.get("TagValue").map(scalar).unwrap_or_default())
        }
        other => other.to_string(),
    }
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, inner) in m {
                let name = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&name, inner, out);
            }
        }
        Value::Array(items) => out.push((prefix.to_string(), items.iter().map(scalar).collect::<Vec<_>>().join(", "))),
        other => out.push((prefix.to_string(), scalar(other))),
    }
}

pub fn table(v: &Value) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    if let Some(items) = find_rows(v) {
        let mut columns: Vec<String> = Vec::new();
        for item in items {
            for k in item.as_object().map(Map::keys).into_iter().flatten() {
                if !columns.contains(k) {
                    columns.push(k.clone());
                }
            }
        }
        if columns.is_empty() {
            return items.iter().map(|i| format!("{}\n", scalar(i))).collect();
        }
        rows.push(columns.iter().map(|c| c.to_uppercase()).collect());
        for item in items {
            rows.push(columns.iter().map(|c| item.get(c).map(scalar).unwrap_or_default()).collect());
        }
    } else {
        let mut pairs = Vec::new();
        flatten("", v, &mut pairs);
        pairs.retain(|(k, _)| k != "RequestId");
        rows = pairs.into_iter().map(|(k, v)| vec![k, v]).collect();
    }
    let widths: Vec<usize> =
        (0..rows.first().map_or(0, Vec::len)).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut s = String::new();
    for r in rows {
        let line: Vec<String> = r.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths[i])).collect();
        s.push_str(line.join("  ").trim_end());
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_become_rows_with_headers() {
        let t = table(
            &json!({"Keys": {"Key": [{"KeyId": "key-1", "KeyArn": "arn1"}, {"KeyId": "key-22", "KeyArn": "arn2"}]}, "TotalCount": 2, "RequestId": "r"}),
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["KEYARN", "KEYID"]);
        assert!(lines[2].contains("key-22"));
    }

    #[test]
    fn wrapped_lists_and_tags_read_naturally_in_cells() {
        let t = table(
            &json!({"VersionIds": {"VersionId": [{"VersionId": "v1", "VersionStages": {"VersionStage": ["ACSCurrent", "x"]}, "Tags": {"Tag": [{"TagKey": "env", "TagValue": "prod"}]}}]}}),
        );
        assert!(t.contains("ACSCurrent, x") && t.contains("env=prod"), "{t}");
    }

    #[test]
    fn objects_become_field_value_pairs() {
        let t = table(&json!({"KeyMetadata": {"KeyId": "k", "KeyState": "Enabled"}, "RequestId": "r"}));
        assert!(t.contains("KeyMetadata.KeyId") && t.contains("Enabled") && !t.contains("RequestId"));
    }
}
