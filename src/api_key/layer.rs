//! [`ApiKeyLayer`]: configuration of the API-key check.

use std::fmt;
use std::sync::Arc;

use http::header::{HeaderMap, HeaderName, HeaderValue, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{Request, Response, StatusCode};
use tower::Layer;

use super::error::{Rejection, invalid_api_key};
use super::format::FormatError;
use super::identity::ApiKeyIdentity;
use super::manage::{ApiKeys, valid_scope};
use super::service::ApiKeyAuth;
use crate::body::{ResponseBody, problem_response};
use crate::credentials;
use crate::error::{ConfigError, Problem};
use crate::events::RequestContext;
use crate::events::{self, EventKind, EventSink};
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
    fn header(&self) -> Option<&HeaderName> {
        match self {
            Self::Header(h) | Self::HeaderOrBearer(h) => Some(h),
            Self::Bearer => None,
        }
    }

    fn bearer(&self) -> bool {
        matches!(self, Self::Bearer | Self::HeaderOrBearer(_))
    }

    /// The presented key, `None` when none is presented; malformed when a
    /// header is repeated or not text, or a Bearer credential is not a token.
    fn presented<'h>(&self, headers: &'h HeaderMap) -> Result<Option<&'h str>, FormatError> {
        credentials::presented_key(headers, self.header(), self.bearer())
            .map_err(|_| FormatError::Shape)
    }
}

/// Refuses requests without a valid API key and puts the
/// [`ApiKeyIdentity`] of valid ones into request extensions.
///
/// * no key, a malformed, unknown, expired or revoked key → `401
///   invalid_api_key` (problem+json, with `WWW-Authenticate`);
/// * a valid key without every [required scope](ApiKeyLayerBuilder::require_scope)
///   → `403 insufficient_scope`;
/// * the store fails → `503 store_unavailable` (fail closed).
///
/// Each refusal emits an `api_key.rejected` event (a store failure:
/// `store.unavailable`) to the configured [`EventSink`].
///
/// `WWW-Authenticate` carries `Bearer` challenges (RFC 6750) when the key
/// may come as a Bearer token, and an informal `ApiKey header="…"`
/// challenge when it may come in a header.
#[must_use]
pub struct ApiKeyLayer<S> {
    shared: Arc<Shared<S>>,
}

impl<S> Clone for ApiKeyLayer<S> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for ApiKeyLayer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shared.fmt(f)
    }
}

impl<S: ApiKeyStore> ApiKeyLayer<S> {
    /// A layer with the defaults: key from `X-API-Key` or
    /// `Authorization: Bearer`, no required scopes, no event sink.
    pub fn new(keys: ApiKeys<S>) -> Self {
        Self {
            shared: Arc::new(Shared::new(keys, KeySource::default(), Vec::new(), None)),
        }
    }

    /// Starts configuring a layer.
    pub fn builder(keys: ApiKeys<S>) -> ApiKeyLayerBuilder<S> {
        ApiKeyLayerBuilder {
            keys,
            source: KeySource::default(),
            required: Vec::new(),
            events: None,
        }
    }
}

impl<S: ApiKeyStore, I> Layer<I> for ApiKeyLayer<S> {
    type Service = ApiKeyAuth<S, I>;

    fn layer(&self, inner: I) -> Self::Service {
        ApiKeyAuth::from_shared(inner, Arc::clone(&self.shared))
    }
}

/// Builder for [`ApiKeyLayer`].
#[must_use]
pub struct ApiKeyLayerBuilder<S> {
    keys: ApiKeys<S>,
    source: KeySource,
    required: Vec<String>,
    events: Option<Arc<dyn EventSink>>,
}

impl<S: fmt::Debug> fmt::Debug for ApiKeyLayerBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyLayerBuilder")
            .field("keys", &self.keys)
            .field("source", &self.source)
            .field("required", &self.required)
            .field("events", &self.events)
            .finish()
    }
}

impl<S: ApiKeyStore> ApiKeyLayerBuilder<S> {
    /// Where the key is read from (default: `X-API-Key`, else Bearer).
    pub fn source(mut self, source: KeySource) -> Self {
        self.source = source;
        self
    }

    /// Requires `scope` on every key (repeat for several; all are required).
    pub fn require_scope(mut self, scope: impl Into<String>) -> Self {
        self.required.push(scope.into());
        self
    }

    /// Sends refusal events to `sink`.
    pub fn events(mut self, sink: impl EventSink) -> Self {
        self.events = Some(Arc::new(sink));
        self
    }

    /// Sends refusal events to a shared `sink`.
    pub fn events_arc(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.events = Some(sink);
        self
    }

    /// Checks the settings and builds.
    pub fn build(self) -> Result<ApiKeyLayer<S>, ConfigError> {
        if let Some(bad) = self.required.iter().find(|s| !valid_scope(s)) {
            return Err(ConfigError::new(
                "api key required scope",
                format!(
                    "{bad:?}: scopes are 1-64 printable ASCII characters without space, '\"' or '\\'"
                ),
            ));
        }
        Ok(ApiKeyLayer {
            shared: Arc::new(Shared::new(
                self.keys,
                self.source,
                self.required,
                self.events,
            )),
        })
    }
}

/// What the layer and every service it builds share.
pub(crate) struct Shared<S> {
    pub(crate) keys: ApiKeys<S>,
    source: KeySource,
    required: Vec<String>,
    events: Option<Arc<dyn EventSink>>,
    /// `WWW-Authenticate` values: no key presented / invalid key / missing scope.
    missing: Vec<HeaderValue>,
    invalid: Vec<HeaderValue>,
    forbidden: Vec<HeaderValue>,
}

impl<S: fmt::Debug> fmt::Debug for Shared<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyLayer")
            .field("keys", &self.keys)
            .field("source", &self.source)
            .field("required", &self.required)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

impl<S: ApiKeyStore> Shared<S> {
    fn new(
        keys: ApiKeys<S>,
        source: KeySource,
        required: Vec<String>,
        events: Option<Arc<dyn EventSink>>,
    ) -> Self {
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
                    required.join(" ")
                ))
                .ok()
            })
            .flatten()
            .into_iter()
            .collect();
        Self {
            keys,
            source,
            required,
            events,
            missing,
            invalid,
            forbidden,
        }
    }

    /// The check before any I/O: the presented key, format, checksum, cache.
    pub(crate) fn precheck(&self, headers: &HeaderMap) -> super::verify::Precheck {
        use super::verify::Precheck;
        match self.source.presented(headers) {
            Ok(Some(key)) => self.keys.precheck(key),
            Ok(None) => Precheck::Refused(Rejection::Missing),
            Err(e) => Precheck::Refused(Rejection::Malformed(e)),
        }
    }

    /// Lets a verified request through (`Ok`, identity inserted) or refuses
    /// it for a missing scope.
    #[allow(clippy::result_large_err)] // both variants are large; moved once
    pub(crate) fn admit<B, RB>(
        &self,
        mut req: Request<B>,
        identity: ApiKeyIdentity,
    ) -> Result<Request<B>, Response<ResponseBody<RB>>> {
        if identity.has_scopes(self.required.iter().map(String::as_str)) {
            req.extensions_mut().insert(identity);
            return Ok(req);
        }
        let (parts, _) = req.into_parts();
        self.emit(
            &parts,
            EventKind::ApiKeyRejected,
            "insufficient_scope",
            Some(identity.key_id()),
        );
        let mut problem = Problem::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "The API key lacks a scope this endpoint requires.",
        );
        for v in &self.forbidden {
            problem = problem.with_header(WWW_AUTHENTICATE, v.clone());
        }
        Err(problem_response(problem))
    }

    /// The response to a refused request.
    pub(crate) fn refuse<B, RB>(
        &self,
        req: Request<B>,
        rejection: &Rejection,
        key_id: Option<&str>,
    ) -> Response<ResponseBody<RB>> {
        let (parts, _) = req.into_parts();
        if let Rejection::Store(err) = rejection {
            tracing::error!(target: "tower_otp", error = %err, "API key check failed in the store; refusing request");
            self.emit(&parts, EventKind::StoreUnavailable, "api_key", key_id);
            return problem_response(Problem::store_unavailable());
        }
        tracing::debug!(target: "tower_otp", reason = rejection.reason(), key_id, "API key refused");
        self.emit(
            &parts,
            EventKind::ApiKeyRejected,
            rejection.reason(),
            key_id,
        );
        let challenges = if matches!(rejection, Rejection::Missing) {
            &self.missing
        } else {
            &self.invalid
        };
        let mut problem = invalid_api_key();
        for v in challenges {
            problem = problem.with_header(WWW_AUTHENTICATE, v.clone());
        }
        problem_response(problem)
    }

    fn emit(&self, parts: &Parts, kind: EventKind, reason: &'static str, key_id: Option<&str>) {
        let Some(sink) = &self.events else {
            return;
        };
        let mut event = RequestContext::from_parts(parts).event(kind, self.keys.now());
        event.subject = key_id.map(|id| format!("api_key:{id}"));
        event.reason = Some(reason);
        events::emit(sink.as_ref(), &event);
    }
}
