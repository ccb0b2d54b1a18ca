//! Reading parameters from a query string, a form or a JSON body: the Node.js app's clients
//! send all three, and a wrong content type or bad body gets a clear 400, not axum's plain text.

use crate::auth::login::{printable, LoginError};
use axum::body::Bytes;
use axum::http::{header, HeaderMap};
use std::collections::HashMap;

/// Query-string pairs. A parameter given twice is refused, because which copy an attacker
/// wants read is exactly the question.
pub(super) fn query_params(raw: Option<&str>) -> Result<HashMap<String, String>, LoginError> {
    pairs(raw.unwrap_or("").as_bytes())
}

fn pairs(raw: &[u8]) -> Result<HashMap<String, String>, LoginError> {
    let mut map = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw) {
        if map.insert(k.to_string(), v.to_string()).is_some() {
            return Err(LoginError::BadRequest(format!(
                "the parameter `{}` appears more than once",
                printable(&k, 64)
            )));
        }
    }
    Ok(map)
}

/// Parameters from the body (form or JSON, by `Content-Type`) merged over the query string.
pub(super) fn body_params(
    headers: &HeaderMap,
    query: Option<&str>,
    body: &Bytes,
) -> Result<HashMap<String, String>, LoginError> {
    let mut params = query_params(query)?;
    if body.is_empty() {
        return Ok(params);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let from_body = if content_type.starts_with("application/json") {
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| LoginError::BadRequest(format!("the JSON body is invalid: {e}")))?;
        let object = value
            .as_object()
            .ok_or_else(|| LoginError::BadRequest("the JSON body must be an object".into()))?;
        object
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
            .collect()
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        pairs(body)?
    } else {
        return Err(LoginError::BadRequest(
            "send parameters as application/x-www-form-urlencoded or application/json".into(),
        ));
    };
    params.extend(from_body);
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_text_loses_control_characters_and_length() {
        assert_eq!(printable("a\r\nb\tc\u{1b}[31md", 64), "abc[31md");
        assert_eq!(printable("abcdef", 3), "abc");
        let err = query_params(Some("x%0Ay=1&x%0Ay=2")).expect_err("repeated");
        assert!(!err.to_string().contains('\n'), "{err}");
    }
}
