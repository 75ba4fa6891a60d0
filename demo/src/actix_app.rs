//! The same page and JSON API on actix-web + actix-session 0.11, on our store.

use std::future::Future;

use actix_session::{Session, SessionGetError, SessionMiddleware};
use actix_web::cookie::{CookieJar, Key};
use actix_web::http::header;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use redis_sessions::{Backend, SessionId};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::devices::{self, Device};
use crate::fields;
use crate::site::{login_fields, Site};
use crate::{open_store, valid_user, Config, IncrementHook, Opened, COUNTER, USER};

/// The session cookie's name (actix-session's default, set explicitly because [`id_of`] reads
/// the cookie too).
const COOKIE: &str = "id";

/// Runs the actix-web demo on `listener` until `shutdown` completes. Call it inside an actix
/// system (`actix_web::rt::System::new().block_on(..)` or `#[actix_web::main]`).
///
/// # Errors
/// Redis cannot be reached at start, or the server fails.
pub async fn run_actix(
    listener: std::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + 'static,
) -> anyhow::Result<()> {
    match open_store(&config).await? {
        Opened::Redis(store, label) => {
            serve(listener, Site::new(store, label, &config), shutdown).await
        }
        Opened::Memory(store, label) => {
            serve(listener, Site::new(store, label, &config), shutdown).await
        }
    }
}

/// The app's state, and the key of the session cookie (to tell which listed session is this
/// request's).
struct Actix<B> {
    site: Site<B>,
    key: Key,
}

type Data<B> = web::Data<Actix<B>>;

async fn serve<B: Backend + Clone>(
    listener: std::net::TcpListener,
    site: Site<B>,
    shutdown: impl Future<Output = ()> + 'static,
) -> anyhow::Result<()> {
    // Signs and encrypts the cookie holding the session id; a new key per start is fine for a
    // demo (it logs everyone out on restart).
    let key = Key::generate();
    let store = site.store.clone();
    let data = web::Data::new(Actix {
        site,
        key: key.clone(),
    });
    tracing::info!("demo-actix: open http://{}/", listener.local_addr()?);
    crate::ops::init_metrics();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .configure(crate::ops::actix_routes(store.clone()))
            .wrap(
                SessionMiddleware::builder(crate::ops::save::Watched(store.clone()), key.clone())
                    .cookie_name(COOKIE.to_owned())
                    .cookie_secure(false)
                    .build(),
            )
            // Outside the session middleware: its empty 500s after a store failure become
            // JSON answers (503 when Redis failed).
            .wrap(actix_web::middleware::from_fn(
                crate::ops::save::answer_actix_store_failures,
            ))
            .route("/", web::get().to(home::<B>))
            .route("/login", web::post().to(login_form))
            .route("/increment", web::post().to(increment_form))
            .route("/logout", web::post().to(logout_form))
            .route(
                "/sessions/revoke-others",
                web::post().to(revoke_others_form::<B>),
            )
            .route("/sessions/{id}/revoke", web::post().to(revoke_form::<B>))
            .route("/api/login", web::post().to(login))
            .route("/api/increment", web::post().to(increment::<B>))
            .route("/api/me", web::get().to(me))
            .route("/api/logout", web::post().to(logout))
            .route("/api/sessions", web::get().to(sessions::<B>))
            .route(
                "/api/sessions/revoke-others",
                web::post().to(revoke_others::<B>),
            )
            .route("/api/sessions/{id}/revoke", web::post().to(revoke::<B>))
            .route("/api/fields", web::get().to(get_fields))
            .route("/api/fields/{name}", web::put().to(put_field::<B>))
    })
    .workers(2)
    .disable_signals()
    .listen(listener)?
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        shutdown.await;
        handle.stop(true).await;
    });
    server.await?;
    Ok(())
}

fn unavailable(e: impl std::fmt::Display) -> HttpResponse {
    Refused::unavailable(e).into()
}

fn not_logged_in() -> HttpResponse {
    Refused::NotLoggedIn.into()
}

/// Why a request is refused (small, so the helpers' `Result`s stay small), turned into its
/// response in one place.
enum Refused {
    NotLoggedIn,
    BadUser,
    /// The store failed (logged when it happened).
    Unavailable,
}

impl Refused {
    fn unavailable(e: impl std::fmt::Display) -> Refused {
        tracing::error!(error = %e, "session store unavailable");
        Refused::Unavailable
    }
}

impl From<Refused> for HttpResponse {
    fn from(refused: Refused) -> HttpResponse {
        match refused {
            Refused::NotLoggedIn => {
                HttpResponse::Unauthorized().json(json!({"error": "not logged in"}))
            }
            Refused::BadUser => {
                HttpResponse::BadRequest().json(json!({"error": "user must be 1 to 64 characters"}))
            }
            Refused::Unavailable => HttpResponse::ServiceUnavailable()
                .json(json!({"error": "session store unavailable, try again"})),
        }
    }
}

fn to_home() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/"))
        .finish()
}

fn current(session: &Session) -> Result<Option<(String, i64)>, SessionGetError> {
    let user: Option<String> = session.get(USER)?;
    let counter: Option<i64> = session.get(COUNTER)?;
    Ok(user.map(|u| (u, counter.unwrap_or(0))))
}

/// The request's user, or why not.
fn user_of(session: &Session) -> Result<String, Refused> {
    match current(session) {
        Ok(Some((user, _))) => Ok(user),
        Ok(None) => Err(Refused::NotLoggedIn),
        Err(e) => Err(Refused::unavailable(e)),
    }
}

/// The id of the request's session: actix-session keeps it to itself, so it is read from the
/// private cookie the middleware set, with the same key.
fn id_of<B>(req: &HttpRequest, data: &Actix<B>) -> Option<SessionId> {
    let cookie = req.cookie(COOKIE)?;
    let mut jar = CookieJar::new();
    jar.add_original(cookie);
    let id = jar.private(&data.key).get(COOKIE)?;
    SessionId::parse(id.value()).ok()
}

fn device(req: &HttpRequest) -> Device {
    let agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    Device::new(agent, req.peer_addr().map(|a| a.ip()))
}

#[derive(Deserialize)]
struct Login {
    user: String,
}

/// Logs `user` in: a new id (OWASP: rotate on privilege change), then the login's fields.
fn log_in(req: &HttpRequest, session: &Session, user: &str) -> Result<String, Refused> {
    let user = valid_user(user).ok_or(Refused::BadUser)?;
    session.renew();
    for (field, value) in login_fields(&user, device(req)) {
        session.insert(field, value).map_err(Refused::unavailable)?;
    }
    Ok(user)
}

fn bump(session: &Session) -> Result<Option<i64>, Refused> {
    match current(session) {
        Ok(Some((_, counter))) => {
            let next = counter.saturating_add(1);
            session
                .insert(COUNTER, next)
                .map_err(Refused::unavailable)?;
            Ok(Some(next))
        }
        Ok(None) => Ok(None),
        Err(e) => Err(Refused::unavailable(e)),
    }
}

async fn home<B: Backend>(req: HttpRequest, session: Session, data: Data<B>) -> HttpResponse {
    let who = match current(&session) {
        Ok(who) => who,
        Err(e) => return unavailable(e),
    };
    let who = who.as_ref().map(|(u, c)| (u.as_str(), *c));
    match data.site.home(who, id_of(&req, &data).as_ref()).await {
        Ok(html) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(html),
        Err(e) => unavailable(e),
    }
}

async fn login_form(req: HttpRequest, session: Session, form: web::Form<Login>) -> HttpResponse {
    log_in(&req, &session, &form.user).map_or_else(HttpResponse::from, |_| to_home())
}

async fn increment_form(session: Session) -> HttpResponse {
    bump(&session).map_or_else(HttpResponse::from, |_| to_home())
}

async fn logout_form(session: Session) -> HttpResponse {
    session.purge();
    to_home()
}

async fn revoke_form<B: Backend>(
    req: HttpRequest,
    session: Session,
    data: Data<B>,
    id: web::Path<String>,
) -> HttpResponse {
    match revoke(req, session, data, id).await {
        r if r.status().is_success() => to_home(),
        r => r,
    }
}

async fn revoke_others_form<B: Backend>(
    req: HttpRequest,
    session: Session,
    data: Data<B>,
) -> HttpResponse {
    match revoke_others(req, session, data).await {
        r if r.status().is_success() => to_home(),
        r => r,
    }
}

async fn login(req: HttpRequest, session: Session, body: web::Json<Login>) -> HttpResponse {
    match log_in(&req, &session, &body.user) {
        Ok(user) => HttpResponse::Ok().json(json!({"user": user, "counter": 0})),
        Err(refused) => refused.into(),
    }
}

async fn increment<B: Backend>(session: Session, data: Data<B>) -> HttpResponse {
    match bump(&session) {
        Ok(Some(next)) => {
            IncrementHook::run(data.site.hook.as_ref()).await;
            HttpResponse::Ok().json(json!({"counter": next}))
        }
        Ok(None) => not_logged_in(),
        Err(refused) => refused.into(),
    }
}

async fn me(session: Session) -> HttpResponse {
    match current(&session) {
        Ok(Some((user, counter))) => {
            HttpResponse::Ok().json(json!({"user": user, "counter": counter}))
        }
        Ok(None) => not_logged_in(),
        Err(e) => unavailable(e),
    }
}

async fn logout(session: Session) -> HttpResponse {
    session.purge();
    HttpResponse::Ok().json(json!({"ok": true}))
}

async fn sessions<B: Backend>(req: HttpRequest, session: Session, data: Data<B>) -> HttpResponse {
    let user = match user_of(&session) {
        Ok(user) => user,
        Err(refused) => return refused.into(),
    };
    match data
        .site
        .sessions_json(&user, id_of(&req, &data).as_ref())
        .await
    {
        Ok(body) => HttpResponse::Ok().json(body),
        Err(e) => unavailable(e),
    }
}

async fn revoke_others<B: Backend>(
    req: HttpRequest,
    session: Session,
    data: Data<B>,
) -> HttpResponse {
    let user = match user_of(&session) {
        Ok(user) => user,
        Err(refused) => return refused.into(),
    };
    let current = id_of(&req, &data);
    match devices::revoke_others(&data.site.store, &user, current.as_ref()).await {
        Ok(n) => HttpResponse::Ok().json(json!({"revoked": n})),
        Err(e) => unavailable(e),
    }
}

async fn revoke<B: Backend>(
    _req: HttpRequest,
    session: Session,
    data: Data<B>,
    id: web::Path<String>,
) -> HttpResponse {
    let user = match user_of(&session) {
        Ok(user) => user,
        Err(refused) => return refused.into(),
    };
    match devices::revoke(&data.site.store, &user, &id).await {
        Ok(true) => HttpResponse::Ok().json(json!({"ok": true})),
        Ok(false) => HttpResponse::NotFound().json(json!({"error": "no such session of yours"})),
        Err(e) => unavailable(e),
    }
}

async fn put_field<B: Backend>(
    session: Session,
    data: Data<B>,
    name: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    if let Err(refused) = user_of(&session) {
        return refused.into();
    }
    let value = match fields::parse(&name, &body) {
        Ok(value) => value,
        Err(refusal) => {
            let (status, message) = refusal.answer();
            let status = actix_web::http::StatusCode::from_u16(status)
                .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST);
            return HttpResponse::build(status).json(json!({"error": message}));
        }
    };
    match session.insert(name.as_str(), &value) {
        Ok(()) => {
            IncrementHook::run(data.site.field_hook.as_ref()).await;
            HttpResponse::Ok().json(json!({"field": name.as_str(), "value": value}))
        }
        Err(e) => unavailable(e),
    }
}

async fn get_fields(session: Session) -> HttpResponse {
    if let Err(refused) = user_of(&session) {
        return refused.into();
    }
    let mut fields = Map::new();
    for (name, text) in session.entries().iter() {
        match serde_json::from_str::<Value>(text) {
            Ok(value) => {
                fields.insert(name.clone(), value);
            }
            Err(e) => return unavailable(e),
        }
    }
    HttpResponse::Ok().json(Value::Object(fields))
}
