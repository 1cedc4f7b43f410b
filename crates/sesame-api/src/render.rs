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

/// Renders a successful response, adding `RequestId`. Takes the body as the services give it
/// (a JSON object, or `null` for an empty answer) so that nothing is copied on the way out.
pub fn success(format: Format, request_id: &str, body: Value) -> Result<Rendered, Error> {
    let mut obj = match body {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        _ => return Err(Error::internal("response body is not an object")),
    };
    obj.insert("RequestId".into(), Value::String(request_id.into()));
    Ok(Rendered { status: 200, content_type: format.content_type(), body: encode(format, "KMS", &Value::Object(obj)) })
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
        Format::Json => {
            // Sized for a typical answer, so that the body is not regrown while it is written.
            let mut body = Vec::with_capacity(512);
            let _ = serde_json::to_writer(&mut body, value);
            body
        }
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
        let r = success(Format::Json, "rid-1", json!({"KeyId": "key-1"})).unwrap();
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["RequestId"], "rid-1");
        assert_eq!(v["KeyId"], "key-1");
    }

    #[test]
    fn xml_wraps_lists_by_repeating_the_element() {
        let r = success(Format::Xml, "r", json!({"VersionStages": {"VersionStage": ["ACSCurrent", "a<b"]}})).unwrap();
        let s = String::from_utf8(r.body).unwrap();
        assert!(s.contains("<KMS><RequestId>r</RequestId><VersionStages><VersionStage>ACSCurrent</VersionStage><VersionStage>a&lt;b</VersionStage></VersionStages></KMS>"), "{s}");
        assert_eq!(r.content_type, "text/xml;charset=utf-8");
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
