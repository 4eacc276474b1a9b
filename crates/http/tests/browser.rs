//! The web faces in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`) driven over WebDriver with fantoccini, against a real server on
//! SQLite and PostgreSQL. Each journey is what a person does: staff of every role sign
//! in; a sale on the till page shows in the member portal and the console with the same
//! points; a member redeems a reward and the till redeems her voucher; a partner's staff
//! cannot reach another partner's data; bad input is refused with a message and writes
//! nothing; a form without its CSRF token is refused. Every page visited is checked with
//! axe-core (no serious or critical findings).
//!
//! Needs `chromedriver` (or `TALLY_CHROMEDRIVER`) and axe-core (`TALLY_AXE_JS`, default
//! `target/axe/node_modules/axe-core/axe.min.js`, installed by `scripts/test`). Without
//! them the test says so and passes, unless `TALLY_REQUIRE_BROWSER=1` (CI), where that
//! is a failure. With `TALLY_SCREENSHOTS=<dir>` it saves a PNG of each page there (the
//! README's screenshots come from `docs/screens`).
mod common;

use common::{ADMIN, App, spawn_app_with_codes};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tally_store::testing::TestDb;

/// Sign-in codes as the member would receive them: the test's own delivery channel.
#[derive(Default)]
struct Inbox(Mutex<Vec<(String, String)>>);

impl tally_http::web::codes::CodeSender for Inbox {
    fn send(&self, destination: &str, code: &str) -> Result<(), String> {
        tally_http::web::codes::LogSender.send(destination, code)?;
        self.0.lock().unwrap().push((destination.to_string(), code.to_string()));
        Ok(())
    }
}

impl Inbox {
    /// The newest code sent to `destination` (it is sent after the page answers: waits
    /// for it a little).
    async fn last_for(&self, destination: &str) -> String {
        for _ in 0..100 {
            let found = self
                .0
                .lock()
                .unwrap()
                .iter()
                .rev()
                .find(|(d, _)| d == destination)
                .map(|(_, c)| c.clone());
            if let Some(code) = found {
                return code;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no code was sent to {destination}: {:?}", self.0.lock().unwrap());
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

struct Driver {
    process: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn required() -> bool {
    std::env::var("TALLY_REQUIRE_BROWSER").as_deref() == Ok("1")
}

fn missing(what: &str) -> Option<Driver> {
    assert!(!required(), "TALLY_REQUIRE_BROWSER=1 but {what}");
    eprintln!("browser tests NOT run: {what} (install chromium and chromium-driver, run scripts/test)");
    None
}

fn axe_path() -> String {
    std::env::var("TALLY_AXE_JS").unwrap_or_else(|_| {
        format!(
            "{}/../../target/axe/node_modules/axe-core/axe.min.js",
            env!("CARGO_MANIFEST_DIR")
        )
    })
}

async fn driver() -> Option<Driver> {
    let bin = std::env::var("TALLY_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
    if !std::path::Path::new(&axe_path()).exists() {
        return missing(&format!("axe-core is not at {}", axe_path()));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let process = match Command::new(&bin)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(p) => p,
        Err(e) => return missing(&format!("{bin} could not start: {e}")),
    };
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Some(Driver { process, url });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{bin} did not listen on {port}");
}

/// A fresh browser (its own profile: no cookies of another).
async fn browser(driver: &Driver, width: u32, height: u32) -> Client {
    let mut args = vec![
        "--headless=new".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        format!("--window-size={width},{height}"),
    ];
    if std::env::var("TALLY_BROWSER_LANG").is_err() {
        args.push("--lang=en-US".into());
    }
    let mut options = json!({ "args": args });
    if std::path::Path::new("/usr/bin/chromium").exists() {
        options["binary"] = json!("/usr/bin/chromium");
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), options);
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session")
}

/// What each journey shares: the server, its data, and the checks run on every page.
struct World {
    app: App,
    inbox: Arc<Inbox>,
    berlin: String,
    prague: String,
    berlin_till: String,
    prague_till: String,
    berlin_store: String,
    member: String,
    reward: String,
    screens: Option<String>,
    axe: String,
}

const PASSWORD: &str = "correct horse battery staple";
const MEMBER_PHONE: &str = "+420777123456";

async fn world(db: TestDb) -> World {
    let inbox = Arc::new(Inbox::default());
    let app = spawn_app_with_codes(db, inbox.clone()).await;
    app.ok("PUT", "/v1/fx-rates", ADMIN, json!({"rates": {"CZK": "25.2"}}))
        .await;
    let (berlin, berlin_till) = app.partner("Berlin Apparel", "EUR", 0).await;
    let (prague, prague_till) = app.partner("Prague Drugstore", "CZK", 0).await;
    let berlin_store = app
        .ok(
            "POST",
            &format!("/v1/partners/{berlin}/locations"),
            ADMIN,
            json!({"name": "Mitte store", "city": "Berlin", "country": "DE", "timezone": "Europe/Berlin"}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let member = app
        .ok(
            "POST",
            "/v1/members",
            ADMIN,
            json!({"phone": MEMBER_PHONE, "email": "jana@example.com", "country": "CZ"}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let reward = app
        .ok(
            "POST",
            "/v1/rewards",
            ADMIN,
            json!({"kind": "voucher", "name": {"en": "EUR 5 off", "de": "5 EUR Rabatt", "cs": "Sleva 5 EUR"},
                   "description": {"en": "Five euros off at Berlin Apparel."}, "cost": 50, "partner_id": berlin}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let store = &app.db.store;
    let now = jiff::Timestamp::now();
    for (email, role, partner) in [
        ("admin@tally.test", "operator_admin", None),
        ("analyst@tally.test", "operator_analyst", None),
        ("manager@berlin.test", "partner_manager", Some(&berlin)),
        ("cashier@berlin.test", "partner_cashier", Some(&berlin)),
        ("manager@prague.test", "partner_manager", Some(&prague)),
    ] {
        store
            .create_user(tally_store::web::NewUser {
                id: tally_store::keys::new_id("usr"),
                email: email.into(),
                name: email.split('@').next().unwrap().into(),
                role: role.into(),
                partner_id: partner.map(|p| tally_domain::ids::Id::parse(p).unwrap()),
                password_hash: tally_http::web::login::hash_password(PASSWORD).unwrap(),
                now,
            })
            .await
            .unwrap();
    }
    World {
        app,
        inbox,
        berlin,
        prague,
        berlin_till,
        prague_till,
        berlin_store,
        member,
        reward,
        screens: std::env::var("TALLY_SCREENSHOTS").ok(),
        axe: std::fs::read_to_string(axe_path()).unwrap(),
    }
}

impl World {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.app.base)
    }

    /// The ledger's entry count (checked balanced): unchanged means nothing was written.
    async fn entries(&self) -> i64 {
        self.app.entries().await
    }

    /// axe-core on the page shown: no serious or critical finding; then a screenshot.
    async fn check_page(&self, c: &Client, name: &str) {
        c.execute(&format!("{}\nreturn true;", self.axe), vec![]).await.unwrap();
        let found = c
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {resultTypes: ['violations']})
                   .then(r => done(r.violations
                      .filter(v => v.impact === 'serious' || v.impact === 'critical')
                      .map(v => v.id + ': ' + v.help + ' at ' + v.nodes.map(n => n.target.join(' ')).join(', '))))
                   .catch(e => done(['axe failed: ' + e]));",
                vec![],
            )
            .await
            .unwrap();
        let findings: Vec<String> = serde_json::from_value(found).unwrap();
        assert!(
            findings.is_empty(),
            "{}: {name}: accessibility findings: {findings:#?}",
            self.app.backend
        );
        if let Some(dir) = &self.screens
            && self.app.backend == "sqlite"
        {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(format!("{dir}/{name}.png"), c.screenshot().await.unwrap()).unwrap();
        }
    }
}

async fn text(c: &Client, css: &str) -> String {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
        .text()
        .await
        .unwrap()
}

async fn h1(c: &Client) -> String {
    text(c, "h1").await
}

async fn fill(c: &Client, css: &str, value: &str) {
    let e = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"));
    e.clear().await.unwrap();
    e.send_keys(value).await.unwrap();
}

/// Clicks and waits for the page it leads to (the old `<html>` goes stale).
async fn submit(c: &Client, css: &str) {
    let old = c.find(Locator::Css("html")).await.unwrap();
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap();
    for _ in 0..100 {
        if old.tag_name().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("clicking {css} led nowhere");
}

/// Types an item's code and price into basket line `line` of the till's sale form.
async fn basket_line(c: &Client, line: usize, sku: &str, price: &str) {
    for (name, value) in [("sku", sku), ("price", price)] {
        let field = &c.find_all(Locator::Css(&format!("input[name={name}]"))).await.unwrap()[line];
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }
}

async fn source(c: &Client) -> String {
    c.source().await.unwrap()
}

/// Signs in from the keyboard alone: the email, Tab to the password, Enter.
async fn staff_sign_in(w: &World, c: &Client, email: &str) {
    const TAB: &str = "\u{E004}";
    const ENTER: &str = "\u{E007}";
    c.goto(&w.url("/login")).await.unwrap();
    let old = c.find(Locator::Css("html")).await.unwrap();
    let field = c.find(Locator::Css("#email")).await.unwrap();
    field
        .send_keys(&format!("{email}{TAB}{PASSWORD}{ENTER}"))
        .await
        .unwrap();
    for _ in 0..100 {
        if old.tag_name().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{}: Enter in the sign-in form led nowhere", w.app.backend);
}

async fn sign_in_as_each_role(w: &World, d: &Driver) {
    let c = browser(d, 1280, 1000).await;
    c.goto(&w.url("/login")).await.unwrap();
    w.check_page(&c, "login").await;
    // A wrong password: a message, no session.
    fill(&c, "#email", "admin@tally.test").await;
    fill(&c, "#password", "not the password at all").await;
    submit(&c, "form.stack button[type=submit]").await;
    assert!(text(&c, "[role=alert]").await.contains("do not match"));
    c.goto(&w.url("/console")).await.unwrap();
    assert_eq!(
        h1(&c).await,
        "Staff sign-in",
        "{}: the console needs a session",
        w.app.backend
    );
    for (email, home, title) in [
        ("admin@tally.test", "/console", "Dashboard"),
        ("analyst@tally.test", "/console", "Dashboard"),
        ("manager@berlin.test", "/partner", "Sales and returns"),
        ("cashier@berlin.test", "/till", "New sale"),
    ] {
        staff_sign_in(w, &c, email).await;
        let url = c.current_url().await.unwrap();
        assert_eq!(url.path(), home, "{}: {email} lands on {home}", w.app.backend);
        assert_eq!(h1(&c).await, title, "{}: {email}", w.app.backend);
        submit(&c, "form.signout button").await;
        assert_eq!(h1(&c).await, "Staff sign-in");
    }
    c.close().await.unwrap();
}

/// A sale on the till, with a live quote; answers the points earned and the
/// transaction id.
async fn sale_on_the_till(w: &World, d: &Driver) -> (i64, String) {
    let c = browser(d, 1280, 1000).await;
    staff_sign_in(w, &c, "cashier@berlin.test").await;
    w.check_page(&c, "till").await;
    let location = c.find(Locator::Css("#location")).await.unwrap();
    location.select_by_value(&w.berlin_store).await.unwrap();
    fill(&c, "#member", MEMBER_PHONE).await;
    basket_line(&c, 0, "JEANS-32", "79.90").await;
    basket_line(&c, 1, "SOCKS", "4.10").await;
    // The live quote (the till's script) fills in without a page load.
    let quote = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#quote .quote"))
        .await
        .expect("the live quote appears");
    let quoted = quote.text().await.unwrap();
    assert!(quoted.contains("Earns 84 points"), "{}: {quoted}", w.app.backend);
    w.check_page(&c, "till-quote").await;
    let before = w.entries().await;
    submit(&c, "#sale button[type=submit]:not([formaction])").await;
    assert_eq!(h1(&c).await, "Receipt");
    let receipt = text(&c, ".receipt").await;
    assert!(receipt.contains("EUR 84.00"), "{}: {receipt}", w.app.backend);
    let txn = text(&c, "#transaction-id").await;
    assert!(w.entries().await > before, "the sale was written");
    w.check_page(&c, "till-receipt").await;
    // The API agrees: the same points, at this partner.
    let t = w
        .app
        .ok("GET", &format!("/v1/transactions/{txn}"), &w.berlin_till, Value::Null)
        .await;
    let earned = t["points_earned"].as_i64().unwrap();
    assert_eq!(earned, 84, "{}: {t}", w.app.backend);
    // Bad input: refused with a message, nothing written.
    c.goto(&w.url("/till")).await.unwrap();
    fill(&c, "#member", MEMBER_PHONE).await;
    basket_line(&c, 0, "HAT", "twelve").await;
    let before = w.entries().await;
    submit(&c, "#sale button[type=submit]:not([formaction])").await;
    assert!(text(&c, "[role=alert]").await.contains("price"), "{}", w.app.backend);
    fill(&c, "#member", "+420 000").await;
    basket_line(&c, 0, "HAT", "12.00").await;
    submit(&c, "#sale button[type=submit]:not([formaction])").await;
    assert!(!text(&c, "[role=alert]").await.is_empty());
    assert_eq!(
        w.entries().await,
        before,
        "{}: refused sales write nothing",
        w.app.backend
    );
    c.close().await.unwrap();
    (earned, txn)
}

async fn member_sign_in(w: &World, c: &Client) {
    // An address that is no member's gets the very page a member's gets, and no code.
    let sent = w.inbox.count();
    c.goto(&w.url("/me/login")).await.unwrap();
    fill(c, "input[type=text]", "+420777000999").await;
    submit(c, "main form button[type=submit]").await;
    let nobody = text(c, "[role=status]").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.inbox.count(), sent, "{}: no code for a stranger", w.app.backend);
    c.goto(&w.url("/me/login")).await.unwrap();
    w.check_page(c, "me-login").await;
    fill(
        c,
        "input[name=destination], #destination, input[type=text], input[type=email]",
        MEMBER_PHONE,
    )
    .await;
    submit(c, "main form button[type=submit]").await;
    assert_eq!(
        text(c, "[role=status]").await.replace(MEMBER_PHONE, "+420777000999"),
        nobody,
        "{}: a member's address reads as a stranger's",
        w.app.backend
    );
    let code = w.inbox.last_for(MEMBER_PHONE).await;
    // A wrong code first: refused.
    fill(c, "input[name=code]", "000000").await;
    submit(c, "main form button[type=submit]").await;
    assert!(
        !text(c, "[role=alert]").await.is_empty(),
        "{}: a wrong code",
        w.app.backend
    );
    fill(c, "input[name=code]", &code).await;
    submit(c, "main form button[type=submit]").await;
    let url = c.current_url().await.unwrap();
    assert_eq!(url.path(), "/me", "{}: signed in", w.app.backend);
}

/// The member sees the sale's points in her portal; redeems a reward; answers the
/// voucher code and her card's QR token (as text: what a scanner would read).
async fn member_portal(w: &World, d: &Driver, earned: i64, txn: &str) -> (String, String) {
    let c = browser(d, 390, 844).await;
    member_sign_in(w, &c).await;
    w.check_page(&c, "me").await;
    let page = source(&c).await;
    assert!(
        page.contains(&earned.to_string()),
        "{}: the portal shows the sale's {earned} points",
        w.app.backend
    );
    let (available, _) = w.app.balance(&w.member).await;
    assert!(page.contains(&available.to_string()));
    let _ = txn;
    for (path, name) in [
        ("/me/rewards", "me-rewards"),
        ("/me/household", "me-household"),
        ("/me/invite", "me-invite"),
        ("/me/challenges", "me-challenges"),
        ("/me/card", "me-card"),
    ] {
        c.goto(&w.url(path)).await.unwrap();
        w.check_page(&c, name).await;
    }
    let token = text(&c, ".token").await.trim().to_string();
    assert!(c.find(Locator::Css("svg.qr")).await.is_ok(), "the card has a QR code");
    // German, from the switch.
    c.goto(&w.url("/me?lang=de")).await.unwrap();
    let html_lang = c.find(Locator::Css("html")).await.unwrap().attr("lang").await.unwrap();
    assert_eq!(html_lang.as_deref(), Some("de"));
    w.check_page(&c, "me-de").await;
    c.goto(&w.url("/me?lang=en")).await.unwrap();
    // Redeem the reward: the voucher shows as a code and a QR code.
    c.goto(&w.url("/me/rewards")).await.unwrap();
    let before = w.app.balance(&w.member).await.0;
    submit(&c, &format!("form[action='/me/rewards/{}/redeem'] button", w.reward)).await;
    let code = text(&c, ".code").await;
    assert!(
        c.find(Locator::Css("svg.qr")).await.is_ok(),
        "the voucher has a QR code"
    );
    w.check_page(&c, "me-voucher").await;
    assert_eq!(w.app.balance(&w.member).await.0, before - 50, "{}", w.app.backend);
    c.close().await.unwrap();
    (code.trim().to_string(), token)
}

/// The cashier names the member by her QR token instead of her phone: the sale is hers.
async fn sale_by_qr_token(w: &World, d: &Driver, token: &str) {
    let c = browser(d, 1280, 1000).await;
    staff_sign_in(w, &c, "cashier@berlin.test").await;
    // A scarf for the member named by `token`, from a fresh sale form.
    let sell = |token: String| {
        let c = &c;
        async move {
            c.goto(&w.url("/till")).await.unwrap();
            c.find(Locator::Css("#member_kind"))
                .await
                .unwrap()
                .select_by_value("token")
                .await
                .unwrap();
            fill(c, "#member", &token).await;
            basket_line(c, 0, "SCARF", "20.00").await;
            submit(c, "#sale button[type=submit]:not([formaction])").await;
        }
    };
    sell(token.to_string()).await;
    assert_eq!(h1(&c).await, "Receipt", "{}: {}", w.app.backend, source(&c).await);
    let txn = text(&c, "#transaction-id").await;
    let t = w
        .app
        .ok("GET", &format!("/v1/transactions/{txn}"), &w.berlin_till, Value::Null)
        .await;
    assert_eq!(
        t["member_id"].as_str(),
        Some(w.member.as_str()),
        "{}: {t}",
        w.app.backend
    );
    // A forged token (its expiry changed): refused with a message, nothing written.
    let before = w.entries().await;
    sell(token.replace(".1", ".2")).await;
    assert!(text(&c, "[role=alert]").await.contains("QR token"), "{}", w.app.backend);
    assert_eq!(w.entries().await, before, "{}", w.app.backend);
    c.close().await.unwrap();
}

async fn voucher_on_the_till(w: &World, d: &Driver, code: &str) {
    let c = browser(d, 1280, 1000).await;
    staff_sign_in(w, &c, "cashier@berlin.test").await;
    c.goto(&w.url("/till/vouchers")).await.unwrap();
    fill(&c, "#code", code).await;
    submit(&c, "main form.stack button").await;
    w.check_page(&c, "till-voucher").await;
    submit(&c, "form[action='/till/vouchers/redeem'] button").await;
    assert!(
        text(&c, "[role=status]").await.contains("Voucher redeemed"),
        "{}",
        w.app.backend
    );
    // Twice: refused.
    fill(&c, "#code", code).await;
    submit(&c, "main form.stack button").await;
    assert!(source(&c).await.contains("cannot be redeemed"));
    c.close().await.unwrap();
}

async fn console_shows_the_sale(w: &World, d: &Driver, earned: i64, txn: &str) {
    let c = browser(d, 1280, 1000).await;
    staff_sign_in(w, &c, "admin@tally.test").await;
    w.check_page(&c, "console").await;
    c.goto(&w.url("/console/members")).await.unwrap();
    fill(
        &c,
        "main form input[type=search], main form input[name=q]",
        MEMBER_PHONE,
    )
    .await;
    submit(&c, "main form button").await;
    let page = source(&c).await;
    assert!(page.contains(&w.member), "{}: the member page", w.app.backend);
    assert!(
        page.contains(&format!(">{earned}<"))
            || page.contains(&format!("+{earned}"))
            || page.contains(&format!(" {earned} ")),
        "{}: the console shows the sale's {earned} points",
        w.app.backend
    );
    let _ = txn;
    w.check_page(&c, "console-member").await;
    for (path, name) in [
        ("/console/partners", "console-partners"),
        ("/console/rules", "console-rules"),
        ("/console/rewards", "console-rewards"),
        ("/console/tiers", "console-tiers"),
        ("/console/settlements", "console-settlements"),
        ("/console/settings", "console-settings"),
        ("/console/audit", "console-audit"),
    ] {
        c.goto(&w.url(path)).await.unwrap();
        w.check_page(&c, name).await;
    }
    assert!(
        source(&c).await.contains("POST /v1/transactions"),
        "the audit log has the till's sale"
    );
    c.close().await.unwrap();
}

/// Berlin's manager: its own back office; not Prague's data, not the console.
async fn partners_stay_apart(w: &World, d: &Driver, prague_txn: &str, berlin_txn: &str) {
    let c = browser(d, 1280, 1000).await;
    staff_sign_in(w, &c, "manager@berlin.test").await;
    c.goto(&w.url("/partner")).await.unwrap();
    assert!(
        source(&c).await.contains(berlin_txn),
        "{}: the back office shows Berlin's own sale",
        w.app.backend
    );
    for (path, name) in [
        ("/partner", "partner"),
        ("/partner/customers", "partner-customers"),
        ("/partner/offers", "partner-offers"),
        ("/partner/vouchers", "partner-vouchers"),
        ("/partner/statements", "partner-statements"),
    ] {
        c.goto(&w.url(path)).await.unwrap();
        w.check_page(&c, name).await;
        let page = source(&c).await;
        assert!(
            !page.contains(prague_txn),
            "{}: {path} shows Prague's sale",
            w.app.backend
        );
        assert!(
            !page.contains("Prague Drugstore"),
            "{}: {path} names Prague",
            w.app.backend
        );
    }
    for path in [
        "/console".to_string(),
        format!("/console/partners/{}", w.prague),
        "/console/audit".to_string(),
    ] {
        c.goto(&w.url(&path)).await.unwrap();
        assert_eq!(h1(&c).await, "Not yours to see", "{}: {path}", w.app.backend);
    }
    // Returning Prague's sale from Berlin's till: no such transaction of this partner.
    c.goto(&w.url("/till/returns")).await.unwrap();
    fill(&c, "#transaction", prague_txn).await;
    fill(&c, "#amount", "1.00").await;
    let before = w.entries().await;
    submit(&c, "main form.stack button").await;
    assert!(!text(&c, "[role=alert]").await.is_empty());
    assert_eq!(w.entries().await, before);
    c.close().await.unwrap();
}

/// A form posted without its CSRF token, with a forged one, or with the token of
/// another cookie (the pre-sign-in one), with a valid session: refused, nothing
/// written; the same form with its own token goes through.
async fn csrf_is_required(w: &World, d: &Driver) {
    let c = browser(d, 1280, 1000).await;
    c.goto(&w.url("/login")).await.unwrap();
    let pre_token = c
        .find(Locator::Css("input[name=csrf]"))
        .await
        .unwrap()
        .attr("value")
        .await
        .unwrap()
        .unwrap();
    staff_sign_in(w, &c, "cashier@berlin.test").await;
    c.goto(&w.url("/till")).await.unwrap();
    let own_token = c
        .find(Locator::Css("#sale input[name=csrf]"))
        .await
        .unwrap()
        .attr("value")
        .await
        .unwrap()
        .unwrap();
    let session = c.get_named_cookie("__Host-tally_staff").await.unwrap();
    let pre = c.get_named_cookie("__Host-tally_pre").await.unwrap();
    c.close().await.unwrap();
    let cookies = format!(
        "__Host-tally_staff={}; __Host-tally_pre={}",
        session.value(),
        pre.value()
    );
    let post = |token: Option<&str>, receipt: &str| {
        let mut form = vec![
            ("member", MEMBER_PHONE.to_string()),
            ("sku", "X".into()),
            ("price", "10.00".into()),
            ("external_id", receipt.to_string()),
        ];
        if let Some(t) = token {
            form.push(("csrf", t.to_string()));
        }
        w.app
            .http
            .post(w.url("/till/sale"))
            .header("cookie", cookies.clone())
            .form(&form)
            .send()
    };
    let before = w.entries().await;
    assert_eq!(post(None, "csrf-1").await.unwrap().status().as_u16(), 403);
    assert_eq!(post(Some("forged"), "csrf-2").await.unwrap().status().as_u16(), 403);
    assert_eq!(
        post(Some(&pre_token), "csrf-3").await.unwrap().status().as_u16(),
        403,
        "{}: the pre-sign-in cookie's token is for the sign-in forms only",
        w.app.backend
    );
    assert_eq!(w.entries().await, before, "{}: nothing written", w.app.backend);
    assert_eq!(
        post(Some(&own_token), "csrf-4").await.unwrap().status().as_u16(),
        201,
        "{}: with its own token the form goes through",
        w.app.backend
    );
    assert!(w.entries().await > before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_faces_in_a_real_browser() {
    let Some(d) = driver().await else { return };
    for db in TestDb::all().await {
        let w = world(db).await;
        let prague_txn = w
            .app
            .ok(
                "POST",
                "/v1/transactions",
                &w.prague_till,
                json!({"external_id": "prague-1", "member": {"id": w.member}, "total": {"amount": 25000, "currency": "CZK"}}),
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_string();
        sign_in_as_each_role(&w, &d).await;
        let (earned, txn) = sale_on_the_till(&w, &d).await;
        console_shows_the_sale(&w, &d, earned, &txn).await;
        let (code, token) = member_portal(&w, &d, earned, &txn).await;
        voucher_on_the_till(&w, &d, &code).await;
        sale_by_qr_token(&w, &d, &token).await;
        partners_stay_apart(&w, &d, &prague_txn, &txn).await;
        csrf_is_required(&w, &d).await;
        let _ = (&w.berlin, &w.prague);
    }
}
