//! [`JwtLayer`]: the configuration of bearer-token authentication.

use std::fmt;
use std::sync::Arc;

use super::claims::Claims;
use super::keys::JwtKeys;
#[cfg(feature = "jwks")]
use super::remote::Jwks;
use super::revocation::{NoRevocation, Revocation, StoreRevocation};
use super::token::Validation;
use crate::clock::{Clock, CoarseClock};
use crate::error::MakeRejection;
use crate::refusal::Refusal;
use crate::slot_cache::SlotCache;
use crate::store::SessionStore;

/// Slots in the verified-token cache unless set with
/// [`JwtLayer::with_cache`]: enough for the tokens of a thousand active
/// clients, a few hundred kilobytes at most.
pub const DEFAULT_CACHE_CAPACITY: usize = 1024;

/// Where the verification keys come from.
#[derive(Clone, Debug)]
pub(super) enum KeySource {
    /// A key set of our own (the router's, or shared with it).
    Local(JwtKeys),
    /// The keys of a remote JWK Set, fetched and refreshed.
    #[cfg(feature = "jwks")]
    Remote(Jwks),
}

/// A verified token's claims and the generation of the key set that
/// verified it (always 0 for a local set; see `remote::Current`).
pub(super) type Cached<C> = (Claims<C>, u64);

pub(super) struct Config<C, R> {
    pub(super) keys: KeySource,
    pub(super) validation: Validation,
    pub(super) cookie: Option<String>,
    pub(super) revocation: R,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) cache: Option<Arc<SlotCache<Cached<C>>>>,
    pub(super) refusal: Refusal,
}

impl<C, R: Clone> Clone for Config<C, R> {
    fn clone(&self) -> Self {
        Self {
            keys: self.keys.clone(),
            validation: self.validation.clone(),
            cookie: self.cookie.clone(),
            revocation: self.revocation.clone(),
            clock: Arc::clone(&self.clock),
            cache: self.cache.clone(),
            refusal: self.refusal.clone(),
        }
    }
}

/// Requires a valid bearer token (HS256, EdDSA or ES256, as its key says)
/// and puts [`Claims<C>`] into request extensions; refuses with
/// `401 invalid_token` and an RFC 6750 `WWW-Authenticate` header.
///
/// The keys are a [`JwtKeys`] set ([`new`](Self::new)), or — under the
/// `jwks` feature, for a service that must not hold the signing key — the
/// keys of a remote JWK Set ([`from_jwks`](Self::from_jwks)).
///
/// ```
/// use http::{Request, Response, StatusCode};
/// use http_body_util::Full;
/// use bytes::Bytes;
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
/// use tower_otp::jwt::{JwtKeys, JwtLayer, Validation};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let keys = JwtKeys::new("k1", rand::random::<[u8; 32]>())?;
/// let svc = ServiceBuilder::new()
///     .layer(JwtLayer::<serde_json::Value>::new(keys, Validation::default()))
///     .service(service_fn(|_req: Request<Full<Bytes>>| async {
///         Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from("secret"))))
///     }));
/// let res = svc.oneshot(Request::new(Full::default())).await?;
/// assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
///
/// A refusal carries its [`Problem`](crate::error::Problem) in the response
/// extensions; [`with_rejection`](Self::with_rejection) shapes it.
///
/// # Security
///
/// Each key verifies only its own algorithm, whatever the token's header
/// says; an unknown `kid` is refused without any lookup (from a remote JWK
/// Set: after at most one fetch per minimum interval, see [`Jwks`](super::Jwks)). Without a revocation check
/// ([`with_store`](Self::with_store)) a token stays valid until `exp` even
/// after logout — keep access tokens short-lived, or add the check.
///
/// # Verified-token cache
///
/// Tokens that verified are remembered (see [`with_cache`](Self::with_cache)),
/// so a client's next request with the same token skips the base64, HMAC and
/// JSON work. A cached token is compared byte for byte in constant time, its
/// `exp`/`nbf`/`iat` are checked again on every request, and the revocation
/// check is never cached. A token cached before the remote key set changed
/// is verified afresh.
#[must_use]
pub struct JwtLayer<C, R = NoRevocation> {
    pub(super) config: Arc<Config<C, R>>,
}

impl<C, R> Clone for JwtLayer<C, R> {
    fn clone(&self) -> Self {
        Self {
            config: Arc::clone(&self.config),
        }
    }
}

impl<C, R> fmt::Debug for JwtLayer<C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtLayer")
            .field("keys", &self.config.keys)
            .field("validation", &self.config.validation)
            .field("cookie", &self.config.cookie)
            .field(
                "cache_capacity",
                &self.config.cache.as_ref().map(|c| c.capacity()),
            )
            .field("rejection", &self.config.refusal)
            .finish_non_exhaustive()
    }
}

impl<C> JwtLayer<C> {
    /// Validates tokens signed with `keys` against `validation`.
    pub fn new(keys: JwtKeys, validation: Validation) -> Self {
        Self::with_source(KeySource::Local(keys), validation)
    }

    /// Validates tokens signed with the keys of the remote JWK Set `jwks`
    /// against `validation`: EdDSA and ES256 tokens of a service whose
    /// signing keys live elsewhere (e.g. an [`OtpRouter`](crate::otp::OtpRouter)
    /// publishing `/.well-known/jwks.json`). See [`Jwks`] for when it is
    /// fetched.
    ///
    /// ```no_run
    /// use tower_otp::jwt::{Jwks, JwtLayer, Validation};
    ///
    /// let jwks = Jwks::builder("https://auth.example/auth/.well-known/jwks.json").build()?;
    /// let layer = JwtLayer::<serde_json::Value>::from_jwks(jwks, Validation::default());
    /// # let _ = layer;
    /// # Ok::<(), tower_otp::error::ConfigError>(())
    /// ```
    #[cfg(feature = "jwks")]
    pub fn from_jwks(jwks: Jwks, validation: Validation) -> Self {
        Self::with_source(KeySource::Remote(jwks), validation)
    }

    fn with_source(keys: KeySource, validation: Validation) -> Self {
        Self {
            config: Arc::new(Config {
                keys,
                validation,
                cookie: None,
                revocation: NoRevocation,
                clock: Arc::new(CoarseClock),
                cache: Some(Arc::new(SlotCache::new(DEFAULT_CACHE_CAPACITY))),
                refusal: Refusal::default(),
            }),
        }
    }
}

impl<C, R: Revocation> JwtLayer<C, R> {
    fn map_config<R2>(self, f: impl FnOnce(Config<C, R>) -> Config<C, R2>) -> JwtLayer<C, R2> {
        let config = Arc::unwrap_or_clone(self.config);
        JwtLayer {
            config: Arc::new(f(config)),
        }
    }

    /// Also refuses tokens whose session (`sid`) or `jti` is revoked in `store`.
    pub fn with_store<S: SessionStore>(self, store: S) -> JwtLayer<C, StoreRevocation<S>> {
        self.map_config(|c| Config {
            keys: c.keys,
            validation: c.validation,
            cookie: c.cookie,
            revocation: StoreRevocation(store),
            clock: c.clock,
            cache: c.cache,
            refusal: c.refusal,
        })
    }

    /// Sets the number of slots in the verified-token cache (rounded up to a
    /// power of two; default [`DEFAULT_CACHE_CAPACITY`]). Each slot holds one
    /// token and its claims; a token landing on a taken slot replaces the one
    /// there.
    pub fn with_cache(self, capacity: usize) -> Self {
        self.map_config(|mut c| {
            c.cache = Some(Arc::new(SlotCache::new(capacity)));
            c
        })
    }

    /// Verifies every token afresh, caching nothing.
    pub fn without_cache(self) -> Self {
        self.map_config(|mut c| {
            c.cache = None;
            c
        })
    }

    /// Also reads the token from the cookie `name` when there is no
    /// `Authorization` header.
    pub fn with_cookie(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.map_config(|mut c| {
            c.cookie = Some(name);
            c
        })
    }

    /// The time source (default [`CoarseClock`]: expiry is checked in whole
    /// seconds, so a reading a tick late changes nothing; tests use
    /// `ManualClock`).
    pub fn with_clock(self, clock: impl Clock) -> Self {
        self.map_config(|mut c| {
            c.clock = Arc::new(clock);
            c
        })
    }

    /// Builds refusals (`401 invalid_token`, `503 store_unavailable`) with
    /// `rejection` instead of the problem+json default. The
    /// `WWW-Authenticate` challenge and the [`Problem`](crate::error::Problem)
    /// in the extensions are added whatever it returns (see
    /// [Refusals of the layers](crate::error#refusals-of-the-layers)).
    pub fn with_rejection(self, rejection: impl MakeRejection) -> Self {
        self.map_config(|mut c| {
            c.refusal.set_rejection(rejection);
            c
        })
    }
}
