//! The types every framework adapter exports, defined once: the orphan rule
//! makes each adapter wrap the core's types to implement its framework's
//! extractor traits, and [`adapter_types!`](crate::adapter_types) writes the
//! wrappers, so that the adapters differ only in those impls.

/// Defines, in a framework adapter, the types its users name: the layer or
/// middleware (`$layer`, holding a [`WebConfig`](crate::web::WebConfig)),
/// the `Sessions<T>` handle, the `Session<T>` and `SignedIn<T>` snapshots,
/// `Flashes`, and `SessionError`. Each is a thin wrapper that dereferences
/// to the core type it wraps; the adapter then implements its framework's
/// extractor traits for them (getting the request's
/// [`SessionHandle`](crate::web::SessionHandle) from where its middleware
/// put it) and its response trait for `SessionError` (with
/// [`HandleError::status`](crate::web::HandleError::status) and
/// [`HandleError::body`](crate::web::HandleError::body)).
///
/// `sealed-session-axum` and `sealed-session-actix` are built this way.
#[macro_export]
macro_rules! adapter_types {
    // A wrapper of `$inner` that clones, prints and dereferences as it.
    (@wrapper $name:ident => $inner:ty) => {
        impl<T> ::std::clone::Clone for $name<T> {
            fn clone(&self) -> Self {
                Self(self.0.clone())
            }
        }

        impl<T> ::std::fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl<T> ::std::ops::Deref for $name<T> {
            type Target = $inner;

            fn deref(&self) -> &$inner {
                &self.0
            }
        }
    };
    ($(#[$layer_doc:meta])* pub struct $layer:ident;) => {
        $(#[$layer_doc])*
        pub struct $layer<S> {
            config: ::std::sync::Arc<$crate::web::WebConfig<S>>,
        }

        impl<S> ::std::clone::Clone for $layer<S> {
            fn clone(&self) -> Self {
                Self { config: ::std::sync::Arc::clone(&self.config) }
            }
        }

        impl<S> ::std::fmt::Debug for $layer<S> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($layer)).field("config", &self.config).finish()
            }
        }

        impl<S> $layer<S> {
            /// It, for `config` (see
            /// [`WebConfig::builder`](sealed_session::web::WebConfig::builder)):
            /// build it once and share clones.
            #[must_use]
            pub fn new(config: $crate::web::WebConfig<S>) -> Self {
                Self { config: ::std::sync::Arc::new(config) }
            }

            /// The settings, shared by every request.
            #[must_use]
            pub fn config(&self) -> &$crate::web::WebConfig<S> {
                &self.config
            }
        }

        impl<S> ::std::convert::From<$crate::web::WebConfig<S>> for $layer<S> {
            fn from(config: $crate::web::WebConfig<S>) -> Self {
                Self::new(config)
            }
        }

        /// The session handle of one request, for session data of type `T`:
        /// log in, change, renew and log out. It dereferences to the core's
        /// [`Sessions`](sealed_session::web::Sessions), whose calls every
        /// integration shares.
        ///
        /// Each call that changes the session seals it at once, so an error
        /// (a session too large for a cookie, a store that cannot be
        /// reached) reaches the handler, not the client; the cookies the
        /// calls decide on go out with the response.
        pub struct Sessions<T>($crate::web::Sessions<T>);

        $crate::adapter_types!(@wrapper Sessions => $crate::web::Sessions<T>);

        /// A request's session, decoded as `T`: handlers that take it run
        /// only for requests with a valid session of that type; the others
        /// get `401` ("no session"), whatever was wrong with their cookie,
        /// but for a session sealed under a key this server lacks yet (a
        /// keyring rollout it lags behind in): `503`, and the cookie is
        /// kept. Take `Option<Session<T>>` to run either way (none then),
        /// and [`SignedIn<T>`] where an anonymous session is not enough.
        ///
        /// It is a snapshot of the session when extracted, and dereferences
        /// to the core's [`Current`](sealed_session::web::Current) and
        /// through it to [`Session`](sealed_session::Session): its ID, user,
        /// epoch, times and data. Change it through [`Sessions`].
        pub struct Session<T>($crate::web::Current<T>);

        $crate::adapter_types!(@wrapper Session => $crate::web::Current<T>);

        impl<T> Session<T> {
            /// The core's snapshot.
            #[must_use]
            pub fn into_inner(self) -> $crate::web::Current<T> {
                self.0
            }
        }

        /// A request's signed-in session: like [`Session<T>`], but an
        /// anonymous session (one with no user) is refused too, with `401`.
        pub struct SignedIn<T>(Session<T>);

        impl<T> SignedIn<T> {
            /// The signed-in user.
            #[must_use]
            pub fn user_id(&self) -> &str {
                // Only a session with a user is ever wrapped.
                self.0.user_id().unwrap_or_default()
            }

            /// The session.
            #[must_use]
            pub fn into_session(self) -> Session<T> {
                self.0
            }
        }

        $crate::adapter_types!(@wrapper SignedIn => Session<T>);

        /// What the extractors of a request's session find in it: the
        /// handle (or [`HandleError::NoLayer`](sealed_session::web::HandleError::NoLayer)),
        /// and as `T` the session, the signed-in session, or the handle.
        #[allow(dead_code)]
        pub(crate) fn sessions<T: $crate::web::SessionValue>(
            handle: ::std::option::Option<&$crate::web::SessionHandle>,
        ) -> ::std::result::Result<Sessions<T>, SessionError> {
            let handle = handle.ok_or_else(|| SessionError($crate::web::HandleError::no_layer()))?;
            Ok(Sessions(handle.typed()))
        }

        #[allow(dead_code)]
        pub(crate) fn session<T: $crate::web::SessionValue>(
            handle: ::std::option::Option<&$crate::web::SessionHandle>,
        ) -> ::std::result::Result<::std::option::Option<Session<T>>, SessionError> {
            let handle = handle.ok_or_else(|| SessionError($crate::web::HandleError::no_layer()))?;
            Ok(handle.current().map(Session))
        }

        /// The session a route requires: `NoSession`, or `UnreadableSession`
        /// (`503`) for one sealed under a key this server lacks, which lives.
        #[allow(dead_code)]
        pub(crate) fn required<T: $crate::web::SessionValue>(
            handle: ::std::option::Option<&$crate::web::SessionHandle>,
        ) -> ::std::result::Result<Session<T>, SessionError> {
            let handle = handle.ok_or_else(|| SessionError($crate::web::HandleError::no_layer()))?;
            match handle.current() {
                ::std::option::Option::Some(session) => Ok(Session(session)),
                ::std::option::Option::None if handle.session_unreadable() => {
                    Err(SessionError($crate::web::HandleError::UnreadableSession))
                }
                ::std::option::Option::None => Err(SessionError($crate::web::HandleError::NoSession)),
            }
        }

        #[allow(dead_code)]
        pub(crate) fn signed_in<T: $crate::web::SessionValue>(
            handle: ::std::option::Option<&$crate::web::SessionHandle>,
        ) -> ::std::result::Result<SignedIn<T>, SessionError> {
            let session = required::<T>(handle)?;
            if session.user_id().is_none() {
                return Err(SessionError($crate::web::HandleError::NoSession));
            }
            Ok(SignedIn(session))
        }

        #[allow(dead_code)]
        pub(crate) fn flashes(
            handle: ::std::option::Option<&$crate::web::SessionHandle>,
        ) -> ::std::result::Result<Flashes, SessionError> {
            let handle = handle.ok_or_else(|| SessionError($crate::web::HandleError::no_layer()))?;
            Ok(Flashes(handle.take_flashes()))
        }

        /// The flash messages the request brought: taking them marks them
        /// read, so that the response removes them and the next page does
        /// not show them again (not on a `HEAD` request, which a link
        /// checker or a prefetch may send). Messages the handler adds with
        /// [`flash`](sealed_session::web::SessionHandle::flash) go out with
        /// the response. Empty when there were none, or when their cookie did
        /// not open (tampered, expired after
        /// [`FLASH_TIMEOUT`](sealed_session::web::FLASH_TIMEOUT), or sealed
        /// under another purpose).
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct Flashes(pub ::std::vec::Vec<$crate::web::Flash>);

        impl ::std::iter::IntoIterator for Flashes {
            type Item = $crate::web::Flash;
            type IntoIter = ::std::vec::IntoIter<$crate::web::Flash>;

            fn into_iter(self) -> Self::IntoIter {
                self.0.into_iter()
            }
        }

        /// A session call from a handler failed: the core's
        /// [`HandleError`](sealed_session::web::HandleError), which it
        /// dereferences to, as a response. Its status and body are the
        /// core's: `401` without a session, `503` when the revocation store
        /// could not be reached or the session cookie is sealed under a key
        /// this server does not have, `500` otherwise; the body never says
        /// more, and the cause is logged with `tracing`. `?` turns a
        /// `HandleError` into one.
        #[derive(Debug)]
        pub struct SessionError(pub $crate::web::HandleError);

        impl ::std::fmt::Display for SessionError {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Display::fmt(&self.0, f)
            }
        }

        impl ::std::error::Error for SessionError {
            fn source(&self) -> ::std::option::Option<&(dyn ::std::error::Error + 'static)> {
                ::std::error::Error::source(&self.0)
            }
        }

        impl ::std::convert::From<$crate::web::HandleError> for SessionError {
            fn from(err: $crate::web::HandleError) -> Self {
                Self(err)
            }
        }

        impl ::std::ops::Deref for SessionError {
            type Target = $crate::web::HandleError;

            fn deref(&self) -> &$crate::web::HandleError {
                &self.0
            }
        }
    };
}
