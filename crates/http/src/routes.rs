//! The router's routes, each added through [`Routes::add`], which also notes its method
//! and path: [`crate::routes`] is that list, and a test checks that the OpenAPI document
//! (`crate::openapi`) has every one of them.

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{on, MethodFilter};
use axum::Router;

use crate::AppState;

/// A router being built, and the (method, path template) of every route added to it.
#[derive(Debug)]
pub(crate) struct Routes {
    pub router: Router<AppState>,
    pub list: Vec<(Method, &'static str)>,
}

impl Routes {
    pub fn new() -> Routes {
        Routes {
            router: Router::new(),
            list: Vec::new(),
        }
    }

    /// Adds `handler` for `methods` at `path`. (axum answers `HEAD` with a `GET`
    /// handler where no `HEAD` route is given; only the methods named here are listed.)
    pub fn add<H, T>(mut self, path: &'static str, methods: &[Method], handler: H) -> Routes
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let mut filter: Option<MethodFilter> = None;
        for m in methods {
            let f = MethodFilter::try_from(m.clone())
                .unwrap_or_else(|_| panic!("{m} cannot be routed"));
            filter = Some(filter.map_or(f, |g| g.or(f)));
            self.list.push((m.clone(), path));
        }
        let filter = filter.unwrap_or_else(|| panic!("{path}: no method"));
        self.router = self.router.route(path, on(filter, handler));
        self
    }

    /// Applies `f` to the router (a `route_layer`), keeping the list.
    pub fn map(mut self, f: impl FnOnce(Router<AppState>) -> Router<AppState>) -> Routes {
        self.router = f(self.router);
        self
    }

    /// Both routers' routes.
    pub fn merge(mut self, other: Routes) -> Routes {
        self.router = self.router.merge(other.router);
        self.list.extend(other.list);
        self
    }
}
