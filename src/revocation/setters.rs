//! The builder methods of a store's options, written once for every store.

/// Writes, for a store's options struct `$options`, builder methods that
/// each set one field to the argument (converted with [`Into`]) and return
/// the options, documented as setting that field: the plain setters the
/// PostgreSQL and Redis stores share. A setter that checks or caps its
/// argument is written by hand.
///
/// ```
/// use std::time::Duration;
///
/// /// The options of a store.
/// #[derive(Default)]
/// pub struct StoreOptions {
///     /// The key prefix.
///     pub prefix: String,
///     /// How long a call may take.
///     pub timeout: Duration,
/// }
///
/// sealed_session::option_setters! {
///     StoreOptions {
///         with_prefix(prefix: impl Into<String>),
///         with_timeout(timeout: Duration),
///     }
/// }
///
/// let options = StoreOptions::default().with_prefix("app").with_timeout(Duration::from_secs(1));
/// assert_eq!((options.prefix.as_str(), options.timeout), ("app", Duration::from_secs(1)));
/// ```
#[macro_export]
macro_rules! option_setters {
    ($options:ident { $($setter:ident($field:ident: $arg:ty)),* $(,)? }) => {
        impl $options {
            $(
                #[doc = concat!("Sets [`", stringify!($options), "::", stringify!($field), "`].")]
                #[must_use]
                pub fn $setter(mut self, $field: $arg) -> Self {
                    self.$field = ::std::convert::Into::into($field);
                    self
                }
            )*
        }
    };
}
