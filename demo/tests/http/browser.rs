//! A real browser: headless Chromium through WebDriver, two separate profiles signed in as
//! the same user. The first sees both sessions on its page and signs the other out; the
//! second's next page load shows it signed out, and the first stays signed in. Both demos.

use crate::servers::{start_with, Kind, Topology};
use crate::webdriver::{Browser, Driver};

async fn sign_in(browser: &mut Browser, base: &str, user: &str) {
    browser.goto(base).await;
    let input = browser.find(r#"input[name="user"]"#).await;
    browser.type_into(&input, user).await;
    let button = browser.find("#login").await;
    browser.click(&button).await;
    let shown = browser.find("#user").await;
    assert_eq!(browser.text(&shown).await, user);
}

async fn two_profiles_sign_each_other_out(kind: Kind) {
    let app = start_with(kind, Topology::Standalone, |_| {}).await;
    let base = format!("http://{}/", app.addr);
    let driver = Driver::start().await;
    let mut first = driver.browser().await;
    let mut second = driver.browser().await;
    sign_in(&mut first, &base, "ada").await;
    sign_in(&mut second, &base, "ada").await;

    first.goto(&base).await;
    let rows = first.find_all("#sessions tr.session").await;
    assert_eq!(rows.len(), 2, "{}", first.source().await);
    assert_eq!(
        first
            .find_all("#sessions tr.current .this-device")
            .await
            .len(),
        1
    );
    let sign_out = first
        .find_all("#sessions tr.session:not(.current) button.sign-out")
        .await;
    assert_eq!(sign_out.len(), 1, "{}", first.source().await);
    first.click(&sign_out[0]).await;
    // Back on the home page, one session left: this one.
    let current = first.find("#sessions tr.session.current").await;
    assert!(!current.is_empty());
    assert_eq!(
        first.find_all("#sessions tr.session").await.len(),
        1,
        "{}",
        first.source().await
    );

    second.goto(&base).await;
    second.find("#nobody").await;
    assert!(
        second.find_all("#user").await.is_empty(),
        "{}",
        second.source().await
    );

    first.goto(&base).await;
    let user = first.find("#user").await;
    assert_eq!(first.text(&user).await, "ada", "the first stays signed in");
    assert_eq!(first.find_all("#sessions tr.session").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_two_browsers_one_signs_the_other_out() {
    two_profiles_sign_each_other_out(Kind::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_two_browsers_one_signs_the_other_out() {
    two_profiles_sign_each_other_out(Kind::Actix).await;
}
