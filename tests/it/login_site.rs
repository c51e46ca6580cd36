//! A site with a login: a form that sets a session cookie, a member page that shows who is
//! signed in (and whether the browser still holds what the page put in `localStorage`),
//! and a trail cookie each visit extends, to tell which saved state a job started from.
//! Its secrets are new for every site, so a test can look for them anywhere.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

pub const USER: &str = "alice";
pub const PASSWORD: &str = "wonderland";

/// The running site and its secrets.
pub struct LoginSite {
    pub addr: SocketAddr,
    /// The session cookie's value a login sets.
    pub session: String,
    /// What the member page keeps in `localStorage`.
    pub stored: String,
}

#[derive(Clone)]
struct Secrets {
    session: String,
    stored: String,
}

const LOGIN_FORM: &str = r#"<form id="login" method="post" action="/login">
<input id="user" name="user"><input id="pass" name="pass" type="password">
<button id="go" type="submit">Sign in</button></form>"#;

fn page(body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><title>Members</title></head><body>{body}</body></html>"
    ))
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

async fn login_form() -> Html<String> {
    page(&format!("<h1 id=\"who\">Please sign in</h1>{LOGIN_FORM}"))
}

async fn login(
    State(secrets): State<Secrets>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let signed_in = form.get("user").map(String::as_str) == Some(USER)
        && form.get("pass").map(String::as_str) == Some(PASSWORD);
    if !signed_in {
        return (StatusCode::UNAUTHORIZED, login_form().await).into_response();
    }
    let session = format!(
        "session={}; Path=/; HttpOnly; Max-Age=3600",
        secrets.session
    );
    (
        StatusCode::SEE_OTHER,
        [(SET_COOKIE, session), (LOCATION, "/members".to_owned())],
    )
        .into_response()
}

/// The member page: `#who` names the member; `#pref` says whether `localStorage` held what
/// this page puts there before it ran (it shows a verdict, never the value).
async fn members(State(secrets): State<Secrets>, headers: HeaderMap) -> Html<String> {
    if cookie(&headers, "session").as_deref() != Some(secrets.session.as_str()) {
        return login_form().await;
    }
    let stored = &secrets.stored;
    page(&format!(
        "<h1 id=\"who\">Welcome back, {USER}</h1><p id=\"pref\"></p>
         <script>
           document.getElementById('pref').textContent =
             localStorage.getItem('pref') === '{stored}' ? 'remembered' : 'none';
           localStorage.setItem('pref', '{stored}');
         </script>"
    ))
}

/// Extends the `trail` cookie with `add` (when given) and shows it.
async fn trail(headers: HeaderMap, Query(query): Query<HashMap<String, String>>) -> Response {
    let was = cookie(&headers, "trail").unwrap_or_default();
    let now = match query.get("add") {
        Some(add) => format!("{was}.{add}"),
        None => was,
    };
    let set = format!("trail={now}; Path=/; Max-Age=3600");
    (
        [(SET_COOKIE, set)],
        page(&format!("<p id=\"trail\">{now}</p>")),
    )
        .into_response()
}

impl LoginSite {
    pub async fn start() -> LoginSite {
        let secrets = Secrets {
            session: format!("s3ss{}", uuid::Uuid::new_v4().simple()),
            stored: format!("st0r{}", uuid::Uuid::new_v4().simple()),
        };
        let app = Router::new()
            .route("/login", get(login_form).post(login))
            .route("/members", get(members))
            .route("/trail", get(trail))
            .with_state(secrets.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        LoginSite {
            addr,
            session: secrets.session,
            stored: secrets.stored,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.addr.port())
    }

    /// The steps of a `script` job that signs in.
    pub fn login_steps(&self) -> serde_json::Value {
        serde_json::json!([
            {"type": {"selector": "#user", "text": USER}},
            {"type": {"selector": "#pass", "text": PASSWORD}},
            {"click": "#go"},
            {"wait_for": "#pref"},
            {"extract": {"who": "#who", "pref": "#pref"}},
        ])
    }
}
