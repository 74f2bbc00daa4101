//! How a layer refuses a request: the response — the app's
//! [`MakeRejection`], or the problem+json document of the [`Problem`] —
//! and the events that report it.
//!
//! Either way the response carries the `Problem` in its extensions, and the
//! headers the protocol requires (`WWW-Authenticate`, `Retry-After`, …) are
//! the problem's, whatever the app's builder set.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use http::Response;
use http::request::Parts;

use crate::body::ResponseBody;
use crate::error::{MakeRejection, Problem};
use crate::events::{self, Event, EventKind, EventSink, RequestContext};

/// A layer's refusal settings: how it answers, and whom it tells.
#[derive(Clone, Default)]
pub(crate) struct Refusal {
    rejection: Option<Arc<dyn MakeRejection>>,
    events: Option<Arc<dyn EventSink>>,
}

impl Refusal {
    /// Answers refusals with `rejection` (default: problem+json).
    pub(crate) fn set_rejection(&mut self, rejection: impl MakeRejection) {
        self.rejection = Some(Arc::new(rejection));
    }

    /// Reports refusals to `sink` (default: to no one).
    pub(crate) fn set_events(&mut self, sink: Arc<dyn EventSink>) {
        self.events = Some(sink);
    }

    /// The response refusing the request with these `parts` for `problem`.
    pub(crate) fn respond<B>(&self, problem: Problem, parts: &Parts) -> Response<ResponseBody<B>> {
        let mut res = match &self.rejection {
            None => problem.clone().into_response(),
            Some(make) => {
                let mut res = make.make_rejection(&problem, parts);
                problem.set_protocol_headers(res.headers_mut());
                res
            }
        };
        res.extensions_mut().insert(problem);
        res.map(ResponseBody::from_full)
    }

    /// What reports events about the request with `parts`, when there is a
    /// sink to report to.
    pub(crate) fn reporter(&self, parts: &Parts) -> Option<Reporter<'_>> {
        self.events.as_deref().map(|sink| Reporter {
            sink,
            context: RequestContext::from_parts(parts),
        })
    }
}

impl fmt::Debug for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refusal")
            .field(
                "rejection",
                &match self.rejection {
                    None => "ProblemJson",
                    Some(_) => "MakeRejection",
                },
            )
            .field("events", &self.events)
            .finish()
    }
}

/// Emits events about one request to a sink.
pub(crate) struct Reporter<'a> {
    sink: &'a dyn EventSink,
    context: RequestContext,
}

impl Reporter<'_> {
    /// Emits an event of `kind` at `at` with the request's context, and what
    /// `fill` adds.
    pub(crate) fn emit(&self, kind: EventKind, at: SystemTime, fill: impl FnOnce(&mut Event)) {
        let mut event = self.context.event(kind, at);
        fill(&mut event);
        events::emit(self.sink, &event);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use bytes::Bytes;
    use http::StatusCode;
    use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
    use http_body::Body as _;
    use http_body_util::{BodyExt, Full};

    use super::*;
    use crate::events::MemorySink;

    fn parts() -> Parts {
        http::Request::new(()).into_parts().0
    }

    #[tokio::test]
    async fn the_default_refusal_is_a_problem_document() {
        let res: Response<ResponseBody<Full<Bytes>>> =
            Refusal::default().respond(Problem::store_unavailable(), &parts());
        assert_eq!(res.status(), 503);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let body = res.into_body();
        assert!(body.size_hint().exact().is_some_and(|n| n > 0));
        let doc: serde_json::Value =
            serde_json::from_slice(&body.collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(doc["code"], "store_unavailable");
    }

    #[tokio::test]
    async fn a_custom_refusal_keeps_the_protocol_headers_and_the_problem() {
        let mut refusal = Refusal::default();
        refusal.set_rejection(|problem: &Problem, parts: &Parts| {
            let mut res = Response::new(Full::new(Bytes::from(format!(
                "{} at {}",
                problem.code(),
                parts.uri.path()
            ))));
            *res.status_mut() = problem.status();
            let h = res.headers_mut();
            h.insert(CONTENT_TYPE, "text/plain".parse().unwrap());
            // Dropped: the layer's challenge and wait are the problem's.
            h.insert(WWW_AUTHENTICATE, "Basic".parse().unwrap());
            h.insert(RETRY_AFTER, "0".parse().unwrap());
            res
        });
        let problem = Problem::invalid_token().with_retry_after(std::time::Duration::from_secs(3));
        let res: Response<ResponseBody<Full<Bytes>>> = refusal.respond(problem, &parts());
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(res.headers()[CONTENT_TYPE], "text/plain");
        let challenges: Vec<_> = res.headers().get_all(WWW_AUTHENTICATE).iter().collect();
        assert_eq!(challenges, ["Bearer error=\"invalid_token\""]);
        assert_eq!(res.headers()[RETRY_AFTER], "3");
        assert_eq!(
            res.extensions().get::<Problem>().map(Problem::code),
            Some("invalid_token")
        );
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "invalid_token at /");
    }

    #[test]
    fn the_default_refusal_is_the_problem_document_with_the_problem_attached() {
        let res: Response<ResponseBody<Full<Bytes>>> =
            Refusal::default().respond(Problem::invalid_token(), &parts());
        let challenges: Vec<_> = res.headers().get_all(WWW_AUTHENTICATE).iter().collect();
        assert_eq!(challenges, ["Bearer error=\"invalid_token\""]);
        assert_eq!(res.headers()[CONTENT_TYPE], "application/problem+json");
        assert!(res.extensions().get::<Problem>().is_some());
    }

    #[test]
    fn events_go_to_the_sink_with_the_request_context() {
        let (parts, ()) = http::Request::builder()
            .header("x-request-id", "r-7")
            .body(())
            .unwrap()
            .into_parts();
        assert!(Refusal::default().reporter(&parts).is_none());
        let sink = MemorySink::new();
        let mut refusal = Refusal::default();
        refusal.set_events(std::sync::Arc::new(sink.clone()));
        let reporter = refusal.reporter(&parts).unwrap();
        reporter.emit(EventKind::ApiKeyRejected, SystemTime::UNIX_EPOCH, |e| {
            e.reason = Some("missing");
        });
        let events = sink.events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].request_id.as_deref(), Some("r-7"));
        assert_eq!(events[0].reason, Some("missing"));
    }
}
