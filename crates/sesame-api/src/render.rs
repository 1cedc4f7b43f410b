//! One renderer for success and error bodies, in JSON (the default) or XML (when the client
//! asks with `Format=XML` or an `Accept` header naming XML, as the Java secrets client does).

use crate::error::Error;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    /// `Format` parameter first (V1 requests carry it), then the `Accept` header.
    pub fn negotiate(format_param: Option<&str>, accept: Option<&str>) -> Format {
        match format_param {
            Some(f) if f.eq_ignore_ascii_case("xml") => return Format::Xml,
            Some(f) if f.eq_ignore_ascii_case("json") => return Format::Json,
            _ => {}
        }
        match accept {
            Some(a) if a.contains("xml") && !a.contains("json") => Format::Xml,
            _ => Format::Json,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json;charset=utf-8",
            // The tea SDK parses an XML error body only under exactly this content type.
            Format::Xml => "text/xml;charset=utf-8",
        }
    }
}

/// A rendered response: status, content type and body bytes.
pub struct Rendered {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// A service's answer: a JSON value (an object, or `null` for an empty answer), or an object
/// already written as JSON text. The second is the hot path's: GetSecretValue writes its answer
/// straight to text instead of building a tree of values to write out again. Not `Debug`: an
/// answer may hold a secret's value.
pub enum Reply {
    Value(Value),
    Json(Vec<u8>),
}

impl From<Value> for Reply {
    fn from(v: Value) -> Reply {
        Reply::Value(v)
    }
}

impl Reply {
    /// Writes a response struct (which serialises as an object) as JSON text.
    pub fn json<T: serde::Serialize>(answer: &T) -> Result<Reply, Error> {
        let text = json_text(answer).map_err(Error::internal)?;
        if text.first() != Some(&b'{') {
            return Err(Error::internal("response body is not an object"));
        }
        Ok(Reply::Json(text))
    }

    /// The answer as a value tree (what XML rendering and in-process callers read).
    pub fn into_value(self) -> Result<Value, Error> {
        match self {
            Reply::Value(v) => Ok(v),
            Reply::Json(text) => serde_json::from_slice(&text).map_err(Error::internal),
        }
    }
}

/// Renders a successful response, adding `RequestId`. Takes the body as the services give it
/// so that nothing is copied on the way out.
pub fn success(format: Format, request_id: &str, body: Reply) -> Result<Rendered, Error> {
    let body = match (format, body) {
        (Format::Json, Reply::Json(text)) => {
            return Ok(Rendered { status: 200, content_type: format.content_type(), body: with_request_id(request_id, text) });
        }
        (_, reply) => reply.into_value()?,
    };
    let mut obj = match body {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        _ => return Err(Error::internal("response body is not an object")),
    };
    obj.insert("RequestId".into(), Value::String(request_id.into()));
    Ok(Rendered { status: 200, content_type: format.content_type(), body: encode(format, "KMS", &Value::Object(obj)) })
}

/// `object` (JSON text of an object) with `RequestId` added as its last member, in place: the
/// closing brace gives way to the member and comes back after it.
fn with_request_id(request_id: &str, mut object: Vec<u8>) -> Vec<u8> {
    if object.last() != Some(&b'}') {
        // `Reply::json` only makes objects; anything else is answered as it is.
        return object;
    }
    object.pop();
    if object.len() > 1 {
        object.push(b',');
    }
    object.extend_from_slice(b"\"RequestId\":");
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut object, request_id);
    object.push(b'}');
    object
}

/// JSON text, written into room for a typical answer so that it is not regrown while written.
fn json_text<T: serde::Serialize + ?Sized>(v: &T) -> serde_json::Result<Vec<u8>> {
    let mut text = Vec::with_capacity(512);
    serde_json::to_writer(&mut text, v)?;
    Ok(text)
}

/// Renders an error in Alibaba's gateway shape.
pub fn error(format: Format, request_id: &str, host_id: &str, err: &Error) -> Rendered {
    let mut m = Map::new();
    m.insert("RequestId".into(), Value::String(request_id.into()));
    m.insert("HostId".into(), Value::String(host_id.into()));
    m.insert("Code".into(), Value::String(err.code().into()));
    m.insert("Message".into(), Value::String(err.message()));
    m.insert("HttpStatus".into(), Value::from(err.status()));
    let value = Value::Object(m);
    Rendered { status: err.status(), content_type: format.content_type(), body: encode(format, "Error", &value) }
}

fn encode(format: Format, root: &str, value: &Value) -> Vec<u8> {
    match format {
        // Serialising a Value cannot fail.
        Format::Json => json_text(value).unwrap_or_default(),
        Format::Xml => {
            let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
            xml_element(&mut out, root, value);
            out.into_bytes()
        }
    }
}

/// Objects become child elements; an array under a name becomes that element repeated, which
/// gives Alibaba's `<VersionStages><VersionStage>…</VersionStage>…</VersionStages>`.
fn xml_element(out: &mut String, name: &str, value: &Value) {
    match value {
        Value::Array(items) => {
            for item in items {
                xml_element(out, name, item);
            }
        }
        Value::Object(m) => {
            out.push('<');
            out.push_str(name);
            out.push('>');
            for (k, v) in m {
                xml_element(out, k, v);
            }
            out.push_str("</");
            out.push_str(name);
            out.push('>');
        }
        Value::Null => {
            out.push('<');
            out.push_str(name);
            out.push_str("/>");
        }
        scalar => {
            out.push('<');
            out.push_str(name);
            out.push('>');
            let text = match scalar {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            xml_escape(out, &text);
            out.push_str("</");
            out.push_str(name);
            out.push('>');
        }
    }
}

fn xml_escape(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_success_carries_request_id() {
        let r = success(Format::Json, "rid-1", json!({"KeyId": "key-1"}).into()).unwrap();
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["RequestId"], "rid-1");
        assert_eq!(v["KeyId"], "key-1");
    }

    #[test]
    fn xml_wraps_lists_by_repeating_the_element() {
        let r = success(Format::Xml, "r", json!({"VersionStages": {"VersionStage": ["ACSCurrent", "a<b"]}}).into()).unwrap();
        let s = String::from_utf8(r.body).unwrap();
        assert!(s.contains("<KMS><RequestId>r</RequestId><VersionStages><VersionStage>ACSCurrent</VersionStage><VersionStage>a&lt;b</VersionStage></VersionStages></KMS>"), "{s}");
        assert_eq!(r.content_type, "text/xml;charset=utf-8");
    }

    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        secret_name: &'static str,
        version_stages: Vec<&'static str>,
    }

    #[test]
    fn an_answer_written_as_text_renders_as_its_value_does() {
        let answer = Answer { secret_name: "a\"b<c", version_stages: vec!["ACSCurrent"] };
        let tree = serde_json::to_value(&answer).unwrap();
        for format in [Format::Json, Format::Xml] {
            let text = success(format, "rid-\"1", Reply::json(&answer).unwrap()).unwrap();
            let value = success(format, "rid-\"1", tree.clone().into()).unwrap();
            match format {
                Format::Json => {
                    assert_eq!(serde_json::from_slice::<Value>(&text.body).unwrap(), serde_json::from_slice::<Value>(&value.body).unwrap())
                }
                Format::Xml => assert_eq!(text.body, value.body),
            }
            assert_eq!(text.content_type, value.content_type);
        }
        let empty = success(Format::Json, "r", Reply::json(&json!({})).unwrap()).unwrap();
        assert_eq!(empty.body, br#"{"RequestId":"r"}"#);
        assert!(Reply::json(&"not an object").is_err());
    }

    #[test]
    fn errors_have_the_gateway_shape() {
        let r = error(Format::Json, "r", "sesame", &Error::ResourceNotFound("secret x".into()));
        assert_eq!(r.status, 404);
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["Code"], "Forbidden.ResourceNotFound");
        assert_eq!(v["HostId"], "sesame");
        assert_eq!(v["HttpStatus"], 404);
    }

    #[test]
    fn format_negotiation_prefers_the_parameter() {
        assert_eq!(Format::negotiate(Some("XML"), Some("application/json")), Format::Xml);
        assert_eq!(Format::negotiate(Some("json"), Some("text/xml")), Format::Json);
        assert_eq!(Format::negotiate(None, Some("application/xml")), Format::Xml);
        assert_eq!(Format::negotiate(None, Some("*/*")), Format::Json);
    }
}
