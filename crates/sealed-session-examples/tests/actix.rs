//! The actix-web example, driven in process: a login with the pre-session's
//! CSRF token, a change by `POST` only, and a logout that ends the session
//! (its old cookie no longer opens) and needs the token too.
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

#[allow(dead_code)]
#[path = "../examples/actix.rs"]
mod example;

use actix_web::dev::ServiceResponse;
use actix_web::test::{self, TestRequest};
use actix_web::App;
use sealed_session::web::WebConfig;
use sealed_session::{Keyring, MemoryStore, Sealer};
use sealed_session_actix::SessionMiddleware;

/// A browser's cookie jar, as `name=value` pairs.
#[derive(Default)]
struct Jar(Vec<(String, String)>);

impl Jar {
    fn header(&self) -> String {
        self.0.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join("; ")
    }

    /// Keeps what `response` sets, and forgets what it removes.
    fn absorb<B>(&mut self, response: &ServiceResponse<B>) {
        for set in response.headers().get_all("set-cookie") {
            let set = set.to_str().unwrap();
            let (name, value) = set.split(';').next().unwrap().split_once('=').unwrap();
            self.0.retain(|(kept, _)| kept != name);
            if !set.contains("Max-Age=0") {
                self.0.push((name.to_owned(), value.to_owned()));
            }
        }
    }
}

/// A same-origin `POST` to `path` with `token` in `X-CSRF-Token`.
fn post(path: &str, token: &str) -> TestRequest {
    TestRequest::post()
        .uri(path)
        .insert_header(("Sec-Fetch-Site", "same-origin"))
        .insert_header(("X-CSRF-Token", token.to_owned()))
}

#[actix_web::test]
async fn the_example_signs_in_changes_by_post_only_and_logs_out_for_good() {
    let config = WebConfig::builder(Sealer::builder(Keyring::generate().unwrap()), MemoryStore::new())
        .build()
        .unwrap();
    let app =
        test::init_service(App::new().configure(example::routes).wrap(SessionMiddleware::new(config))).await;
    let send = async |jar: &mut Jar, request: TestRequest| {
        let response =
            test::call_service(&app, request.insert_header(("Cookie", jar.header())).to_request()).await;
        jar.absorb(&response);
        let status = response.status().as_u16();
        (status, String::from_utf8(test::read_body(response).await.to_vec()).unwrap())
    };
    let mut jar = Jar::default();

    let (status, token) = send(&mut jar, TestRequest::get().uri("/csrf")).await;
    assert_eq!(status, 200);
    assert_eq!(send(&mut jar, post("/login", "forged")).await.0, 403, "the login form needs the token");
    assert_eq!(send(&mut jar, post("/login", &token)).await, (200, "signed in\n".to_owned()));
    let signed_in = jar.header();

    let (_, token) = send(&mut jar, TestRequest::get().uri("/csrf")).await;
    assert_eq!(send(&mut jar, post("/visits", &token)).await, (200, "visit 1\n".to_owned()));
    let (status, body) = send(&mut jar, TestRequest::get().uri("/visits")).await;
    assert_eq!((status, body.as_str()), (200, "1 visits\n"), "a GET reads, and changes nothing");
    assert_eq!(send(&mut jar, TestRequest::get().uri("/visits")).await.1, "1 visits\n");

    assert_eq!(send(&mut jar, post("/logout", "forged")).await.0, 403, "logout needs the token");
    assert_eq!(send(&mut jar, post("/logout", &token)).await, (200, "signed out\n".to_owned()));
    assert_eq!(send(&mut jar, TestRequest::get().uri("/visits")).await.0, 401);
    // A copy of the cookie from before the logout no longer opens.
    let mut copy = Jar(vec![]);
    for pair in signed_in.split("; ") {
        let (name, value) = pair.split_once('=').unwrap();
        copy.0.push((name.to_owned(), value.to_owned()));
    }
    assert_eq!(send(&mut copy, TestRequest::get().uri("/visits")).await.0, 401, "the logout ended it");
}
