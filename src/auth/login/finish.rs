//! Finishing a login (the OAuth callback, the path of `SF_REDIRECT_URI`): checks state against
//! the login cookie, once ([`super::ReplayGuard`]), exchanges the code with its PKCE verifier,
//! verifies the response, checks instance and org, and seals the session.
//!
//! A repeated callback (reload, Back) from a browser that already holds a live session is not
//! an error: [`Finished::AlreadyLoggedIn`] (the route sends it to the welcome page).

use super::error::printable;
use super::{Login, LoginError};
use crate::auth::session::{LoginState, Session};
use crate::domain::ReturnTo;
use crate::salesforce::TokenSet;
use axum::http::{HeaderMap, HeaderValue};
use std::collections::HashMap;
use subtle::ConstantTimeEq;

/// How a callback ended well.
pub enum Finished {
    /// A new session.
    LoggedIn {
        /// Where the login started, when it named a place to return to.
        return_to: Option<ReturnTo>,
        /// What Salesforce issued (a JSON caller without `return_to` gets them); boxed, as
        /// it is large beside the other variant.
        tokens: Box<TokenSet>,
        /// The sealed session cookie (`Set-Cookie` value).
        session_cookie: HeaderValue,
    },
    /// A callback that cannot start a login (no login cookie any more, or its state already
    /// used), from a browser that is logged in: the reload of a completed callback, or Back
    /// to it.
    AlreadyLoggedIn,
}

impl Login {
    /// The callback with its query `params`. `json_caller`: the client asked for JSON (an
    /// API client, never sent to the welcome page). A refusal Salesforce gave for the
    /// redirect URI is explained ([`LoginError::RedirectUriMismatch`]).
    pub async fn finish(
        &self,
        headers: &HeaderMap,
        params: &HashMap<String, String>,
        json_caller: bool,
    ) -> Result<Finished, LoginError> {
        self.finish_login(headers, params, json_caller)
            .await
            .map_err(|e| e.explain_redirect_uri(self.settings().redirect_uri.as_str()))
    }

    async fn finish_login(
        &self,
        headers: &HeaderMap,
        params: &HashMap<String, String>,
        json_caller: bool,
    ) -> Result<Finished, LoginError> {
        let code = callback_code(params)?;
        let login: LoginState = match self.auth().cookies().open_login(headers) {
            Ok(Some(login)) => login,
            Ok(None) => {
                return self.already_logged_in(headers, json_caller).ok_or_else(|| {
                    LoginError::MissingLoginCookie {
                        origin: self.settings().public_origin.clone(),
                    }
                })
            }
            Err(e) => return Err(LoginError::BadLoginCookie(e)),
        };
        let returned_state = params.get("state").ok_or(LoginError::MissingState)?;
        if !bool::from(returned_state.as_bytes().ct_eq(login.state.as_bytes())) {
            return Err(LoginError::StateMismatch);
        }
        let code = code.ok_or(LoginError::MissingCode)?;
        // Single use, on this replica and (with REDIS_URL) on all of them.
        if !self.0.guard.claim(&login.state).await {
            return self
                .already_logged_in(headers, json_caller)
                .ok_or(LoginError::StateReplayed);
        }
        let tokens = self
            .auth()
            .oauth()
            .exchange_code(code, Some(&login.pkce_verifier))
            .await;
        let tokens = tokens?;
        let identity = self.confirm_identity(&tokens).await?;
        let session_cookie = self
            .auth()
            .cookies()
            .seal_session(&Session::new(&tokens, &identity))
            .map_err(|_| LoginError::BadRequest("the session cookie could not be created".into()))?
            .cookie;
        super::confirm::login_completed(&identity);
        Ok(Finished::LoggedIn {
            return_to: login.return_to,
            tokens: Box::new(tokens),
            session_cookie,
        })
    }

    /// A browser (not a JSON caller) with a live session.
    fn already_logged_in(&self, headers: &HeaderMap, json_caller: bool) -> Option<Finished> {
        let live = matches!(self.auth().session(headers), Ok(Some(_)));
        (live && !json_caller).then_some(Finished::AlreadyLoggedIn)
    }
}

/// The code Salesforce sent, or the refusal it sent instead (never both).
fn callback_code(params: &HashMap<String, String>) -> Result<Option<&String>, LoginError> {
    let code = params.get("code").filter(|c| !c.is_empty());
    let Some(error) = params.get("error") else {
        return Ok(code);
    };
    if code.is_some() {
        return Err(LoginError::CodeAndError);
    }
    Err(LoginError::Denied {
        error: printable(error, 64),
        description: params
            .get("error_description")
            .map(|d| printable(d, 300))
            .unwrap_or_else(|| "no description given".into()),
    })
}
