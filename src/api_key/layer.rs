//! [`ApiKeyLayer`]: configuration of the API-key check.

use std::fmt;
use std::sync::Arc;

use http::header::{HeaderName, HeaderValue};

use super::manage::{ApiKeys, valid_scope};
use crate::error::ConfigError;
use crate::refusal::Refusal;
use crate::store::ApiKeyStore;

/// The `X-API-Key` header.
pub const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// Where the layer reads the key from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySource {
    /// Only this header (e.g. [`X_API_KEY`]).
    Header(HeaderName),
    /// Only `Authorization: Bearer <key>`.
    Bearer,
    /// This header when present, else `Authorization: Bearer` (the default,
    /// with [`X_API_KEY`]).
    HeaderOrBearer(HeaderName),
}

impl Default for KeySource {
    fn default() -> Self {
        Self::HeaderOrBearer(X_API_KEY)
    }
}

impl KeySource {
    /// The header the key may come in.
    pub(super) fn header(&self) -> Option<&HeaderName> {
        match self {
            Self::Header(h) | Self::HeaderOrBearer(h) => Some(h),
            Self::Bearer => None,
        }
    }

    /// Whether the key may come as `Authorization: Bearer`.
    pub(super) fn bearer(&self) -> bool {
        matches!(self, Self::Bearer | Self::HeaderOrBearer(_))
    }
}

/// Refuses requests without a valid API key and puts the
/// [`ApiKeyIdentity`](super::ApiKeyIdentity) of valid ones into request
/// extensions.
///
/// * no key, a malformed, unknown, expired or revoked key → `401
///   invalid_api_key` (problem+json, with `WWW-Authenticate`);
/// * a valid key without every [required scope](ApiKeyLayerBuilder::require_scope)
///   → `403 insufficient_scope`;
/// * the store fails → `503 store_unavailable` (fail closed).
///
/// Each refusal emits an `api_key.rejected` event (a store failure:
/// `store.unavailable`) to the configured
/// [`EventSink`](crate::events::EventSink), and carries its
/// [`Problem`](crate::error::Problem) in the response extensions;
/// [`ApiKeyLayerBuilder::rejection`] shapes it.
///
/// `WWW-Authenticate` carries `Bearer` challenges (RFC 6750) when the key
/// may come as a Bearer token, and an informal `ApiKey header="…"`
/// challenge when it may come in a header.
#[must_use]
pub struct ApiKeyLayer<St> {
    pub(super) shared: Arc<Shared<St>>,
}

impl<St> Clone for ApiKeyLayer<St> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<St: fmt::Debug> fmt::Debug for ApiKeyLayer<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shared.fmt(f)
    }
}

impl<St: ApiKeyStore> ApiKeyLayer<St> {
    /// A layer with the defaults: key from `X-API-Key` or
    /// `Authorization: Bearer`, no required scopes, no event sink.
    pub fn new(keys: ApiKeys<St>) -> Self {
        Self::builder(keys).config()
    }

    /// Starts configuring a layer.
    pub fn builder(keys: ApiKeys<St>) -> ApiKeyLayerBuilder<St> {
        ApiKeyLayerBuilder {
            keys,
            source: KeySource::default(),
            required: Vec::new(),
            refusal: Refusal::default(),
            exempt: None,
        }
    }
}

/// Builder for [`ApiKeyLayer`].
#[must_use]
pub struct ApiKeyLayerBuilder<St> {
    keys: ApiKeys<St>,
    source: KeySource,
    required: Vec<String>,
    refusal: Refusal,
    exempt: Option<Exempt>,
}

/// Which requests pass an [`ApiKeyLayer`] without a key (see
/// [`ApiKeyLayerBuilder::exempt`]).
pub type Exempt = Arc<dyn Fn(&http::Method, &http::Uri, &http::HeaderMap) -> bool + Send + Sync>;

impl<St: fmt::Debug> fmt::Debug for ApiKeyLayerBuilder<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyLayerBuilder")
            .field("keys", &self.keys)
            .field("source", &self.source)
            .field("required", &self.required)
            .field("refusal", &self.refusal)
            .field("exempt", &self.exempt.is_some())
            .finish()
    }
}

impl<St: ApiKeyStore> ApiKeyLayerBuilder<St> {
    /// Where the key is read from (default: `X-API-Key`, else Bearer).
    pub fn source(mut self, source: KeySource) -> Self {
        self.source = source;
        self
    }

    /// Lets the requests `f` answers `true` for through *without* a key
    /// check and without an identity (a CORS preflight, which carries no
    /// credentials; a health check). Everything else still needs a key.
    ///
    /// ```
    /// use tower_otp::api_key::{ApiKeyLayer, ApiKeys};
    /// use tower_otp::store::MemoryStore;
    ///
    /// let keys = ApiKeys::builder(MemoryStore::new()).build()?;
    /// let layer = ApiKeyLayer::builder(keys)
    ///     .exempt(|_, uri, _| uri.path().starts_with("/health/"))
    ///     .build()?;
    /// # let _ = layer;
    /// # Ok::<(), tower_otp::error::ConfigError>(())
    /// ```
    pub fn exempt(
        mut self,
        f: impl Fn(&http::Method, &http::Uri, &http::HeaderMap) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.exempt = Some(Arc::new(f));
        self
    }

    /// Requires `scope` on every key (repeat for several; all are required).
    pub fn require_scope(mut self, scope: impl Into<String>) -> Self {
        self.required.push(scope.into());
        self
    }

    refusal_settings! {
        events: "every refusal, as an `api_key.rejected` event (a store \
                 failure: `store.unavailable`) with the request's id, client \
                 address and user agent, the key id (`api_key:<id>`) when \
                 known and the reason",
        refusals: "`401 invalid_api_key` and `403 insufficient_scope`, with \
                   their `WWW-Authenticate` challenges; `503 store_unavailable`",
    }

    /// Checks the settings and builds.
    pub fn build(self) -> Result<ApiKeyLayer<St>, ConfigError> {
        if let Some(bad) = self.required.iter().find(|s| !valid_scope(s)) {
            return Err(ConfigError::new(
                "api key required scope",
                format!(
                    "{bad:?}: scopes are 1-64 printable ASCII characters without space, '\"' or '\\'"
                ),
            ));
        }
        Ok(self.config())
    }

    /// The layer of these (checked) settings.
    fn config(self) -> ApiKeyLayer<St> {
        let source = self.source;
        let header = source
            .header()
            .and_then(|h| HeaderValue::try_from(format!("ApiKey header=\"{h}\"")).ok());
        let with = |bearer: Option<HeaderValue>| -> Vec<HeaderValue> {
            bearer.into_iter().chain(header.clone()).collect()
        };
        let bearer = source.bearer();
        let missing = with(bearer.then_some(HeaderValue::from_static("Bearer")));
        let invalid =
            with(bearer.then_some(HeaderValue::from_static("Bearer error=\"invalid_token\"")));
        let forbidden = bearer
            .then(|| {
                HeaderValue::try_from(format!(
                    "Bearer error=\"insufficient_scope\", scope=\"{}\"",
                    self.required.join(" ")
                ))
                .ok()
            })
            .flatten()
            .into_iter()
            .collect();
        ApiKeyLayer {
            shared: Arc::new(Shared {
                keys: self.keys,
                source,
                required: self.required,
                refusal: self.refusal,
                exempt: self.exempt,
                missing,
                invalid,
                forbidden,
            }),
        }
    }
}

/// What the layer and every service it builds share.
pub(crate) struct Shared<St> {
    pub(crate) keys: ApiKeys<St>,
    pub(super) source: KeySource,
    pub(super) required: Vec<String>,
    pub(super) refusal: Refusal,
    pub(super) exempt: Option<Exempt>,
    /// `WWW-Authenticate` values: no key presented / invalid key / missing scope.
    pub(super) missing: Vec<HeaderValue>,
    pub(super) invalid: Vec<HeaderValue>,
    pub(super) forbidden: Vec<HeaderValue>,
}

impl<St: fmt::Debug> fmt::Debug for Shared<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyLayer")
            .field("keys", &self.keys)
            .field("source", &self.source)
            .field("required", &self.required)
            .field("refusal", &self.refusal)
            .finish_non_exhaustive()
    }
}
