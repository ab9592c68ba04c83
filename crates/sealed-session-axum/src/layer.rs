//! The layer, the settings every request shares, and the types the core's
//! [`adapter_types!`](sealed_session::adapter_types) defines beside it.

use std::sync::Arc;

use tower_layer::Layer;

use crate::service::SessionService;

sealed_session::adapter_types! {
    /// A [`tower_layer::Layer`] that runs the core's web driver around
    /// every request. [`WebConfig::begin`](sealed_session::web::WebConfig::begin)
    /// opens the session (cookie or, when enabled, bearer token) and runs
    /// the CSRF checks, reading a URL-encoded form body first when the
    /// token may be in it; its documentation has the rules. Then the inner
    /// service runs with the request's
    /// [`SessionHandle`](sealed_session::web::SessionHandle) in its
    /// extensions, and [`SessionHandle::finish`](sealed_session::web::SessionHandle::finish)
    /// puts the cookies and `Cache-Control` on its response. Refusals are
    /// the driver's too: `403` for CSRF, `413` for a form over the limit,
    /// `503` when the revocation store cannot answer. Added twice around a
    /// route, it runs once; inside a layer for another cookie it runs its
    /// own session; inside another configuration's layer for the same
    /// cookie it answers `500` ([`WebConfig::nested_in`](sealed_session::web::WebConfig::nested_in)).
    ///
    /// The layer does not know the session's data type: each extractor
    /// ([`Session<T>`], [`Sessions<T>`]) decodes the session as its own `T`.
    pub struct SessionLayer;
}

impl<I, S> Layer<I> for SessionLayer<S> {
    type Service = SessionService<I, S>;

    fn layer(&self, inner: I) -> Self::Service {
        SessionService::new(inner, Arc::clone(&self.config))
    }
}
