//! A signed-in session for an application's own tests, shared by the
//! framework adapters' `testing` modules.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::config::WebConfig;
use super::handle::HandleError;
use crate::RevocationStore;

/// A signed-in session for tests: the headers a browser on the app's own
/// page sends with it (its cookie, its CSRF token, `Sec-Fetch-Site:
/// same-origin`). Its `Debug` shows neither the cookie nor the token.
pub struct TestSession {
    cookie: String,
    csrf_token: String,
    csrf_header: String,
}

impl std::fmt::Debug for TestSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestSession").finish_non_exhaustive()
    }
}

impl TestSession {
    /// Signs `user_id` in with `data`, as a login through `config` would: a
    /// new session ID and the user's current epoch, read from the store.
    ///
    /// # Errors
    /// [`HandleError::Login`] or [`HandleError::Seal`], as a login.
    pub async fn sign_in<S, T>(config: &WebConfig<S>, user_id: &str, data: T) -> Result<Self, HandleError>
    where
        S: RevocationStore,
        T: Serialize + DeserializeOwned,
    {
        let session = config.verifier().login(user_id, data).await?;
        let (verified, set_cookie) = config.verifier().issue_cookie(&session, config.cookie())?;
        let cookie = set_cookie.split(';').next().unwrap_or_default().to_owned();
        let csrf_token = config.verifier().sealer().csrf_token(verified.session());
        Ok(Self { cookie, csrf_token, csrf_header: config.csrf_header().to_owned() })
    }

    /// The `Cookie` header value: `name=token`.
    #[must_use]
    pub fn cookie(&self) -> &str {
        &self.cookie
    }

    /// The session's CSRF token.
    #[must_use]
    pub fn csrf_token(&self) -> &str {
        &self.csrf_token
    }

    /// The headers to add to a request, as (name, value): the cookie, the
    /// CSRF token in the configured header, and `Sec-Fetch-Site:
    /// same-origin`.
    #[must_use]
    pub fn headers(&self) -> [(&str, &str); 3] {
        [("cookie", &self.cookie), (&self.csrf_header, &self.csrf_token), ("sec-fetch-site", "same-origin")]
    }
}
