//! The demo's staff accounts: one login per role of the web faces, printed at the end
//! of the demo so a newcomer can sign in to each face at once.

use anyhow::Context;
use tally_domain::ids::{Id, PartnerId};
use tally_store::web::NewUser;
use tally_store::{Store, keys};

/// The demo's password for every staff account: long enough for the rule of twelve
/// characters, and printed, so it is for the demo only.
pub const PASSWORD: &str = "tally-demo-2026";

pub struct Login {
    pub email: String,
    pub role: &'static str,
    pub face: &'static str,
}

/// Creates the operator's two accounts and a manager and a cashier per partner.
pub async fn create(store: &Store, partners: &[(&'static str, String)]) -> anyhow::Result<Vec<Login>> {
    let hash = tally_http::web::login::hash_password(PASSWORD).map_err(anyhow::Error::msg)?;
    let mut people: Vec<(String, String, &'static str, Option<PartnerId>)> = vec![
        ("admin@demo.tally".into(), "Olga Admin".into(), "operator_admin", None),
        (
            "analyst@demo.tally".into(),
            "Anton Analyst".into(),
            "operator_analyst",
            None,
        ),
    ];
    for (kind, id) in partners {
        let id = PartnerId::parse(id).context("a demo partner's id")?;
        people.push((
            format!("manager@{kind}.demo"),
            format!("Manager, {kind}"),
            "partner_manager",
            Some(id.clone()),
        ));
        people.push((
            format!("cashier@{kind}.demo"),
            format!("Cashier, {kind}"),
            "partner_cashier",
            Some(id.clone()),
        ));
    }
    let now = jiff::Timestamp::now();
    let mut logins = Vec::new();
    for (email, name, role, partner_id) in people {
        store
            .create_user(NewUser {
                id: keys::new_id("usr"),
                email: email.clone(),
                name,
                role: role.into(),
                partner_id: partner_id.clone(),
                password_hash: hash.clone(),
                now,
            })
            .await
            .with_context(|| format!("creating the demo user {email}"))?;
        let face = match role {
            "operator_admin" | "operator_analyst" => "/console",
            "partner_manager" => "/partner",
            _ => "/till",
        };
        logins.push(Login { email, role, face });
    }
    Ok(logins)
}

/// The lines the demo prints: where each face is and who signs in there.
pub fn summary(logins: &[Login]) -> String {
    let mut out = String::from(
        "Web faces on the same address: /console (operator), /partner (a partner's managers), /till (cashiers), /me (members)\n",
    );
    out.push_str(&format!("  staff logins (password {PASSWORD} for all):\n"));
    for l in logins {
        out.push_str(&format!("    {:<28} {:<17} {}\n", l.email, l.role, l.face));
    }
    out.push_str("  members sign in at /me/login with their phone or email: the one-time code is written to this log (target tally::codes)");
    out
}
