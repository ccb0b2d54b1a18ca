//! Starting a login (`GET /oauth2/authorize`, `GET /oauth2/start`): a fresh `state` and PKCE
//! verifier go into a sealed 10-minute cookie (so any replica can finish the flow) and the
//! browser goes to Salesforce. A browser on another loopback name of this listener is first
//! sent to the redirect URI's (see [`super::login_host`]), where the callback will look for
//! that cookie.

use super::{Login, LoginError};
use crate::auth::session::LoginState;
use crate::domain::ReturnTo;
use axum::http::{HeaderMap, HeaderValue, Uri};

const PROMPTS: &[&str] = &["login", "consent", "select_account"];

/// A started login: where the browser goes, and the login cookie it takes along.
pub struct Started {
    /// Salesforce's authorization URL.
    pub location: HeaderValue,
    /// The sealed login cookie (`Set-Cookie` value).
    pub login_cookie: HeaderValue,
}

impl Login {
    /// Where to send a browser that started a login on another loopback name of this
    /// listener, or `None` to start here.
    pub fn callback_host(&self, headers: &HeaderMap, uri: &Uri) -> Option<String> {
        super::login_host::redirect_to_callback_host(&self.settings().redirect_uri, headers, uri)
    }

    /// Starts a login that returns to `return_to`, with Salesforce's `prompt` and
    /// `login_hint` when the caller gave them (checked first).
    pub fn start(
        &self,
        prompt: Option<&str>,
        login_hint: Option<&str>,
        return_to: Option<ReturnTo>,
    ) -> Result<Started, LoginError> {
        let prompt = prompt.map(validate_prompt).transpose()?;
        let login_hint = login_hint.map(validate_login_hint).transpose()?;
        let redirect = self.auth().oauth().authorize_redirect(prompt, login_hint);
        let login = LoginState {
            state: redirect.state,
            pkce_verifier: redirect.pkce_verifier,
            return_to,
        };
        let login_cookie =
            self.auth().cookies().seal_login(&login).map_err(|_| {
                LoginError::BadRequest("the login cookie could not be created".into())
            })?;
        let location = HeaderValue::from_str(redirect.url.as_str())
            .map_err(|_| LoginError::BadRequest("the login URL could not be built".into()))?;
        metrics::counter!("sfgate_logins_total", "result" => "started").increment(1);
        Ok(Started {
            location,
            login_cookie,
        })
    }
}

fn validate_prompt(raw: &str) -> Result<&str, LoginError> {
    if !raw.is_empty() && raw.split(' ').all(|p| PROMPTS.contains(&p)) {
        Ok(raw)
    } else {
        Err(LoginError::BadRequest(format!(
            "prompt must be one or more of {} separated by spaces",
            PROMPTS.join(", ")
        )))
    }
}

fn validate_login_hint(raw: &str) -> Result<&str, LoginError> {
    if !raw.is_empty() && raw.len() <= 256 && !raw.chars().any(char::is_control) {
        Ok(raw)
    } else {
        Err(LoginError::BadRequest(
            "login_hint must be a user name of at most 256 characters".into(),
        ))
    }
}
