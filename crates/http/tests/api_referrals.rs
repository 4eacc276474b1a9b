//! Share links through the real HTTP server, on SQLite and PostgreSQL: a member's link
//! leads to the operator's sign-up page with her code, the sign-up records who referred
//! the new member, and a link without a sign-up address or a member is not found.
mod common;

use common::{ADMIN, apps};
use serde_json::{Value, json};

#[tokio::test]
async fn a_share_link_leads_to_sign_up_with_the_code() {
    for app in apps().await {
        // A client that shows the redirect instead of following it off the machine.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let anna = app.member("+420601000001").await;
        let code = app.ok("GET", &format!("/v1/members/{anna}"), ADMIN, Value::Null).await["referral_code"]
            .as_str()
            .unwrap()
            .to_string();
        let link = |c: &str| format!("{}/r/{c}", app.base);

        // No sign-up address yet: the link leads nowhere.
        let res = http.get(link(&code)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{}", app.backend);

        let p = app
            .ok(
                "PATCH",
                "/v1/program",
                ADMIN,
                json!({"referral_signup_url": "https://join.example/signup?lang=cs"}),
            )
            .await;
        assert_eq!(p["referral_signup_url"], "https://join.example/signup?lang=cs");
        for c in [code.clone(), code.to_lowercase()] {
            let res = http.get(link(&c)).send().await.unwrap();
            assert_eq!(res.status(), 302, "{}", app.backend);
            assert_eq!(
                res.headers()["location"],
                format!("https://join.example/signup?lang=cs&referral_code={code}").as_str()
            );
        }
        for unknown in ["ZZZZZZZZ", "not-a-code", "%00"] {
            let res = http.get(link(unknown)).send().await.unwrap();
            assert_eq!(res.status(), 404, "{unknown}");
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"]["code"], "not_found");
        }

        // The sign-up page posts the code with the new member: she records who brought her.
        let ben = app
            .ok(
                "POST",
                "/v1/members",
                ADMIN,
                json!({"phone": "+420601000002", "referral_code": code}),
            )
            .await;
        let ben = app
            .ok(
                "GET",
                &format!("/v1/members/{}", ben["id"].as_str().unwrap()),
                ADMIN,
                Value::Null,
            )
            .await;
        assert_eq!(ben["referred_by"], anna.as_str(), "{ben}");

        // Addresses that are not plain web pages are refused; null removes it.
        for bad in [
            "join.example/signup",
            "javascript:alert(1)",
            "https://join.example/#x",
            "https://",
        ] {
            let (status, v) = app
                .call(
                    "PATCH",
                    "/v1/program",
                    Some(ADMIN),
                    Some(json!({"referral_signup_url": bad})),
                )
                .await;
            assert_eq!(status, 422, "{bad}: {v}");
        }
        app.ok("PATCH", "/v1/program", ADMIN, json!({"name": "Tally"})).await;
        let p = app.ok("GET", "/v1/program", ADMIN, Value::Null).await;
        assert_eq!(
            p["referral_signup_url"], "https://join.example/signup?lang=cs",
            "absent keeps it"
        );
        app.ok("PATCH", "/v1/program", ADMIN, json!({"referral_signup_url": null}))
            .await;
        let res = http.get(link(&code)).send().await.unwrap();
        assert_eq!(res.status(), 404);
    }
}
