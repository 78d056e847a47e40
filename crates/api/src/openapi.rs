//! The OpenAPI document: the base (info, security schemes, the error schema) that the
//! routers' collected paths are merged into, and the `/openapi.json` route.

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ErrorBody, ErrorDetail};
use crate::state::ApiState;

/// The base document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Magpie server API",
        description = "JSON over HTTP for an app's backend (`/v1/...`, app credentials) and \
                       the super-admin (`/v1/admin/...`, the admin key). Every error answers \
                       `{\"error\": {\"code\", \"message\"}}`; every write accepts an \
                       `Idempotency-Key` header."
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "users", description = "Accounts, profiles and tokens"),
        (name = "messages", description = "Sending as a user or as the system"),
        (name = "groups", description = "Groups, acting as their owner"),
        (name = "rooms", description = "Live rooms, acting as their owner"),
        (name = "conversations", description = "A user's conversations, history and read position"),
        (name = "admin", description = "Apps, secrets and settings (admin key)"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

/// Adds the two security schemes: `app` (HTTP basic, `APP_ID:SECRET`) and `admin` (HTTP
/// bearer, the admin key).
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "app",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "The app id and one of its secrets (`curl -u APP_ID:SECRET`); \
                         `Authorization: Bearer APP_ID:SECRET` works too.",
                    ))
                    .build(),
            ),
        );
        c.add_security_scheme(
            "admin",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The server's admin key (`admin.key`)."))
                    .build(),
            ),
        );
    }
}

/// The unauthenticated routes.
pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// This document.
#[utoipa::path(
    get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json"))
)]
async fn openapi_json() -> Response {
    static DOC: OnceLock<String> = OnceLock::new();
    let body = DOC.get_or_init(|| {
        crate::openapi().to_json().unwrap_or_else(|e| {
            format!("{{\"error\":{{\"code\":\"INTERNAL\",\"message\":\"{e}\"}}}}")
        })
    });
    let mut res = body.clone().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}
