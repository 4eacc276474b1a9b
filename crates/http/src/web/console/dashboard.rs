//! The console's dashboard (`/console`): members and active members, points issued and
//! redeemed per month, the newest closed month's breakage and margin, and where points
//! earned at one partner are spent; and the liability page (`/console/liability`), kept
//! apart because the liability and breakage read the whole ledger.

use super::{api, failed, list, name_of, page, partner_names};
use crate::web::Web;
use crate::web::chart::{self, MonthBars};
use crate::web::layout::{self, int, points, text};
use crate::web::session::Staff;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};
use rust_decimal::Decimal;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tally_domain::settlement::Period;
use tally_store::web::PartnerMemberPoints;

pub fn routes() -> Router<Web> {
    Router::new()
        .route("/console", get(dashboard))
        .route("/console/liability", get(liability))
}

/// How long the dashboard's ledger figures are shown before they are read again. Reading
/// them scans a year of the ledger and every sale's entries (seconds at the demo's
/// size), so no page waits for it: it runs in a task of its own, and pages show the
/// newest figures read, with their time.
pub const FIGURES_TTL: Duration = Duration::from_secs(300);
/// How long the first view after a start waits for the first figures before it shows
/// the page without them.
const FIGURES_WAIT: Duration = Duration::from_secs(3);
/// A reading given up after this long; and no reading starts sooner than this after the
/// last one started, so slow or failing readings do not pile up.
const FIGURES_READ_LIMIT: Duration = Duration::from_secs(60);

/// The dashboard's figures read from the ledger, and when.
pub struct Figures {
    at: jiff::Timestamp,
    read: Instant,
    members: u64,
    active: u64,
    monthly: Vec<tally_store::web::MonthPoints>,
    flows: Vec<PartnerMemberPoints>,
}

/// The newest figures, shared by every page view of this server.
#[derive(Default)]
pub struct FiguresCache {
    latest: std::sync::RwLock<Option<Arc<Figures>>>,
    /// When the last reading started; one reading at a time.
    started: std::sync::Mutex<Option<Instant>>,
}

impl FiguresCache {
    fn latest(&self) -> Option<Arc<Figures>> {
        self.latest.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The newest figures, starting a reading in the background when they are older
    /// than [`FIGURES_TTL`] (or there are none). With none yet, waits up to
    /// [`FIGURES_WAIT`] for the first; `None` past that.
    async fn get(&self, web: &Web, active_since: jiff::Timestamp, from: jiff::Timestamp) -> Option<Arc<Figures>> {
        let latest = self.latest();
        if latest.as_ref().is_none_or(|f| f.read.elapsed() >= FIGURES_TTL) {
            self.start_reading(web, active_since, from);
        }
        if latest.is_some() {
            return latest;
        }
        let deadline = Instant::now() + FIGURES_WAIT;
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if let Some(f) = self.latest() {
                return Some(f);
            }
        }
        None
    }

    /// Starts a reading unless one started less than [`FIGURES_READ_LIMIT`] ago.
    fn start_reading(&self, web: &Web, active_since: jiff::Timestamp, from: jiff::Timestamp) {
        {
            let mut started = self.started.lock().unwrap_or_else(|e| e.into_inner());
            if started.is_some_and(|t| t.elapsed() < FIGURES_READ_LIMIT) {
                return;
            }
            *started = Some(Instant::now());
        }
        let web = web.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(FIGURES_READ_LIMIT, Figures::read(&web, active_since, from)).await {
                Ok(Ok(f)) => *web.figures.latest.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(f)),
                Ok(Err(e)) => tracing::warn!(error = %e, "the dashboard's figures could not be read"),
                Err(_) => tracing::warn!("reading the dashboard's figures took too long; given up"),
            }
            // The next reading may start once these are older than the TTL.
            *web.figures.started.lock().unwrap_or_else(|e| e.into_inner()) = None;
        });
    }
}

impl Figures {
    async fn read(
        web: &Web,
        active_since: jiff::Timestamp,
        from: jiff::Timestamp,
    ) -> Result<Figures, tally_store::StoreError> {
        let store = &web.app.store;
        let (counts, monthly, flows) = tokio::join!(
            store.member_counts(active_since),
            store.monthly_points(from),
            store.partner_member_points(),
        );
        let (members, active) = counts?;
        Ok(Figures {
            at: web.app.now(),
            read: Instant::now(),
            members,
            active,
            monthly: monthly?,
            flows: flows?,
        })
    }
}

/// Members count as active with activity in this many days.
const ACTIVE_DAYS: i64 = 30;
/// Months on the chart, the current one included.
const MONTHS: usize = 12;

async fn dashboard(State(web): State<Web>, staff: Staff) -> Result<Response, Response> {
    staff.operator()?;
    let now = web.app.now();
    let active_since = now
        .checked_sub(jiff::SignedDuration::from_hours(24 * ACTIVE_DAYS))
        .unwrap_or(now);
    let mut months: Vec<Period> = vec![Period::of(now)];
    while months.len() < MONTHS {
        let earlier = months[months.len() - 1].prev();
        months.push(earlier);
    }
    months.reverse();
    let api = api(&web, &staff);
    let (figures, periods, partners) = tokio::join!(
        web.figures.get(&web, active_since, months[0].start()),
        api.get("/v1/settlements"),
        api.get("/v1/partners"),
    );
    let periods = periods.map_err(|f| failed(&staff, "/console", &f))?;
    let names = partner_names(&partners);
    // The newest closed month's netting view: stored at its close, so it is read, not
    // computed (the liability of today would scan the ledger).
    let newest = list(&periods["closed"])
        .last()
        .map(|p| text(&p["period"]).to_string())
        .filter(|p| Period::parse(p).is_ok());
    let netting = match &newest {
        Some(p) => Some(api.get(&format!("/v1/settlements/{p}")).await),
        None => None,
    };

    let main = html! {
        @match &figures {
            Some(f) => (figures_view(f, &months, &names)),
            None => (layout::notice("ok", "The ledger's figures are being read for the first time since the server started; reload the page in a moment.")),
        }
        (netting_section(newest.as_deref(), netting.as_ref()))
    };
    Ok(layout::ok(page(&staff, "/console", "Dashboard", main)))
}

/// The figures read from the ledger: the counts, the months and the flows between
/// partners, with when they were read.
fn figures_view(f: &Figures, months: &[Period], names: &HashMap<String, String>) -> Markup {
    let by_month: HashMap<&str, (i64, i64)> = f
        .monthly
        .iter()
        .map(|m| (m.month.as_str(), (m.issued, m.redeemed)))
        .collect();
    let bars: Vec<MonthBars> = months
        .iter()
        .map(|p| {
            let month = p.to_string();
            let (issued, redeemed) = by_month.get(month.as_str()).copied().unwrap_or((0, 0));
            MonthBars {
                month,
                issued,
                redeemed,
            }
        })
        .collect();
    let issued = bars.iter().fold(0i64, |t, b| t.saturating_add(b.issued));
    let redeemed = bars.iter().fold(0i64, |t, b| t.saturating_add(b.redeemed));
    let age_minutes = f.read.elapsed().as_secs() / 60;
    html! {
        @if f.read.elapsed() >= 2 * FIGURES_TTL {
            (layout::notice("error", &format!("These figures are {age_minutes} minutes old: reading them again has failed (see the server's log).")))
        }
        p.hint { "Ledger figures as of " (f.at.strftime("%Y-%m-%d %H:%M")) " UTC; they are read again at most every "
            (FIGURES_TTL.as_secs() / 60) " minutes, as the ledger grows." }
        div.cards {
            div.card { span.figure { (points(f.members as i64)) } span.label { "Members" } }
            div.card {
                span.figure { (points(f.active as i64)) }
                span.label { "Active in the last " (ACTIVE_DAYS) " days" }
            }
            div.card { span.figure { (points(issued)) } span.label { "Points issued, last 12 months" } }
            div.card { span.figure { (points(redeemed)) } span.label { "Points redeemed, last 12 months" } }
        }
        (monthly_section(&bars))
        (flow_section(&f.flows, names))
    }
}

fn monthly_section(bars: &[MonthBars]) -> Markup {
    html! {
        section {
            h2 { "Points per month" }
            p.hint {
                "Points issued to members (sales, events, bonuses) and redeemed by them (at tills, "
                "for vouchers used, as donations), by the month they were recorded (UTC)."
            }
            (chart::monthly_points(bars, "Bar chart of points issued and redeemed in each of the last 12 months; the table below gives the figures."))
            div.scroll {
                table {
                    caption { "Points issued and redeemed per month" }
                    thead { tr {
                        th scope="col" { "Month" }
                        th.num scope="col" { "Issued" }
                        th.num scope="col" { "Redeemed" }
                    } }
                    tbody {
                        @for b in bars {
                            tr {
                                th scope="row" { (b.month) }
                                td.num { (points(b.issued)) }
                                td.num { (points(b.redeemed)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The newest closed month: breakage, the points members held at its end, and the
/// month's money.
fn netting_section(period: Option<&str>, netting: Option<&Result<Value, crate::web::api::Failure>>) -> Markup {
    html! {
        section {
            h2 { "Liability and breakage" }
            @match (period, netting) {
                (Some(p), Some(Ok(n))) => {
                    @let r = &n["reconciliation"];
                    table {
                        caption { "The newest closed month, " (p) }
                        tbody {
                            tr { th scope="row" { "Points members held at the month's end" }
                                 td.num { (points(int(&r["closing_outstanding"]))) } }
                            tr { th scope="row" { "Points issued in the month" }
                                 td.num { (points(int(&r["flows"]["issued_by_partners"]).saturating_add(int(&r["flows"]["issued_by_operator"])))) } }
                            tr { th scope="row" { "Points redeemed in the month" }
                                 td.num { (points(int(&r["flows"]["redeemed"]))) } }
                            tr { th scope="row" { "Points that expired (breakage)" }
                                 td.num { (points(int(&n["breakage_points"]))) } }
                            tr { th scope="row" { "Their value, never to be paid back" }
                                 td.num { (layout::money(&n["breakage_value"])) } }
                            tr { th scope="row" { "Billed to partners for points they funded" }
                                 td.num { (layout::money(&n["billed_issuance"])) } }
                            tr { th scope="row" { "Paid back to partners for redemptions" }
                                 td.num { (layout::money(&n["reimbursed"])) } }
                            tr { th scope="row" { "Fees" } td.num { (layout::money(&n["fees"])) } }
                            tr { th scope="row" { "The operator's margin" } td.num { strong { (layout::money(&n["margin"])) } } }
                        }
                    }
                    p { a href={ "/console/settlements/" (p) } { "The settlement of " (p) ", partner by partner" } }
                }
                (Some(p), Some(Err(f))) => {
                    (layout::notice("error", &format!("The settlement of {p} could not be read: {}", f.message)))
                }
                _ => {
                    p { "No month has been closed yet, so there is no settled breakage to show. "
                        a href="/console/settlements" { "Close a month" } " once it has ended." }
                }
            }
            p {
                a href="/console/liability" { "Today's liability, split by funder, and breakage by cohort" }
                " (it reads the whole ledger, so it takes a moment)."
            }
        }
    }
}

/// Points spent at each partner, attributed to the partners where they were earned.
fn flow_section(rows: &[PartnerMemberPoints], names: &HashMap<String, String>) -> Markup {
    let flows = attribute(rows);
    // Partners in the order of their names; the row of points earned at no partner last.
    let mut earned_at: Vec<Option<&str>> = flows.keys().map(|(a, _)| *a).collect();
    let mut spent_at: Vec<&str> = flows.keys().map(|(_, b)| *b).collect();
    let by_name = |a: &&str, b: &&str| name_of(names, a).cmp(name_of(names, b)).then(a.cmp(b));
    earned_at.sort_by(|a, b| match (a, b) {
        (Some(a), Some(b)) => by_name(a, b),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    earned_at.dedup();
    spent_at.sort_by(by_name);
    spent_at.dedup();
    let label = |a: &Option<&str>| match a {
        Some(id) => name_of(names, id).to_string(),
        None => "Earned at no partner".to_string(),
    };
    let cells: Vec<Vec<i64>> = earned_at
        .iter()
        .map(|a| {
            spent_at
                .iter()
                .map(|b| flows.get(&(*a, *b)).copied().unwrap_or(0))
                .collect()
        })
        .collect();
    let row_names: Vec<String> = earned_at.iter().map(label).collect();
    let column_names: Vec<String> = spent_at.iter().map(|b| name_of(names, b).to_string()).collect();
    html! {
        section {
            h2 { "Where points are earned and spent" }
            p {
                "For each member, the points she spent at a partner are attributed to the partners "
                "where she earned points, in proportion to what she earned at each. Points spent by a "
                "member who earned at no partner (only bonuses, transfers or exchanges) are shown as "
                "earned at no partner. The figures cover the programme's whole life."
            }
            @if spent_at.is_empty() {
                p { "No member has spent points at a partner yet." }
            } @else {
                (chart::flow_grid(&row_names, &column_names, &cells,
                    "Heat grid of points earned at one partner (rows) and spent at another (columns); the table below gives the figures."))
                div.scroll {
                    table {
                        caption { "Points spent at each partner (columns), by the partner where they were earned (rows)" }
                        thead { tr {
                            th scope="col" { "Earned at" }
                            @for n in &column_names { th.num scope="col" { "Spent at " (n) } }
                            th.num scope="col" { "Total" }
                        } }
                        tbody {
                            @for (r, name) in row_names.iter().enumerate() {
                                tr {
                                    th scope="row" { (name) }
                                    @for v in &cells[r] { td.num { (points(*v)) } }
                                    td.num { (points(cells[r].iter().fold(0i64, |t, v| t.saturating_add(*v)))) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Per member, what she spent at each partner split among the partners where she
/// earned, in proportion to what she earned at each (largest remainder, so the parts
/// add up to what she spent); spending of a member who earned at no partner is keyed
/// `None`. The key is (earned at, spent at).
pub fn attribute(rows: &[PartnerMemberPoints]) -> BTreeMap<(Option<&str>, &str), i64> {
    let mut by_member: HashMap<&str, Vec<&PartnerMemberPoints>> = HashMap::new();
    for r in rows {
        by_member.entry(r.member_id.as_str()).or_default().push(r);
    }
    let mut flows: BTreeMap<(Option<&str>, &str), i64> = BTreeMap::new();
    for lines in by_member.values() {
        let earned: Vec<(&str, i128)> = lines
            .iter()
            .filter(|l| l.earned > 0)
            .map(|l| (l.partner_id.as_str(), i128::from(l.earned)))
            .collect();
        let total: i128 = earned.iter().map(|(_, e)| e).sum();
        for spend in lines.iter().filter(|l| l.spent > 0) {
            let spent_at = spend.partner_id.as_str();
            if total == 0 {
                let cell = flows.entry((None, spent_at)).or_default();
                *cell = cell.saturating_add(spend.spent);
                continue;
            }
            let spent = i128::from(spend.spent);
            let mut parts: Vec<(usize, i128, i128)> = earned
                .iter()
                .enumerate()
                .map(|(i, (_, e))| (i, spent * e / total, spent * e % total))
                .collect();
            let mut left = spent - parts.iter().map(|p| p.1).sum::<i128>();
            parts.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
            for p in parts.iter_mut() {
                if left <= 0 {
                    break;
                }
                p.1 += 1;
                left -= 1;
            }
            for (i, part, _) in parts {
                if part > 0 {
                    let part = i64::try_from(part).unwrap_or(i64::MAX);
                    let cell = flows.entry((Some(earned[i].0), spent_at)).or_default();
                    *cell = cell.saturating_add(part);
                }
            }
        }
    }
    flows
}

/// Today's liability (or a day's), split by funder, and breakage by monthly cohort.
async fn liability(
    State(web): State<Web>,
    staff: Staff,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    staff.operator()?;
    let typed = q.get("at").map(|s| s.trim()).filter(|s| !s.is_empty());
    let day = typed.filter(|d| {
        d.len() == 10
            && d.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            })
    });
    let path = match day {
        Some(d) => format!("/v1/ledger/liability?at={d}"),
        None => "/v1/ledger/liability".to_string(),
    };
    let api = api(&web, &staff);
    let (liability, breakage, partners) =
        tokio::join!(api.get(&path), api.get("/v1/ledger/breakage"), api.get("/v1/partners"));
    let names = partner_names(&partners);
    let main = html! {
        form.inline method="get" action="/console/liability" {
            label for="at" { "Liability at the end of the day (UTC)" input #at type="date" name="at" value=[day]; }
            button type="submit" { "Show" }
        }
        @if typed.is_some() && day.is_none() {
            (layout::notice("error", "Write the day as 2026-11-30; today's liability is shown."))
        }
        section {
            h2 { "Liability" }
            @match &liability {
                Ok(l) => {
                    p {
                        "At the end of " (text(&l["at"])) ", members held " strong { (points(int(&l["outstanding_points"]))) }
                        " points, worth " strong { (layout::money(&l["value"])) } " at the reimbursement rate of "
                        (text(&l["reimbursement_rate"])) " a point. Each funder's share is in proportion to the points it funded."
                    }
                    @if !list(&l["by_funder"]).is_empty() {
                        div.scroll {
                            table {
                                caption { "Liability by funder" }
                                thead { tr {
                                    th scope="col" { "Funder" }
                                    th.num scope="col" { "Points funded" }
                                    th.num scope="col" { "Share of points held" }
                                    th.num scope="col" { "Value" }
                                } }
                                tbody {
                                    @for f in list(&l["by_funder"]) {
                                        @let funder = text(&f["funder"]);
                                        tr {
                                            th scope="row" { @if funder == "operator" { "The operator" } @else { (name_of(&names, funder)) } }
                                            td.num { (points(int(&f["funded"]))) }
                                            td.num { (points(int(&f["outstanding"]))) }
                                            td.num { (layout::money(&f["value"])) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                Err(f) => { (layout::notice("error", &format!("The liability could not be read: {}", f.message))) }
            }
        }
        section {
            h2 { "Breakage by cohort" }
            p.hint { "Of the points earned in each month, how many expired unspent." }
            @match &breakage {
                Ok(b) => {
                    @if !list(&b["cohorts"]).is_empty() {
                        div.scroll {
                            table {
                                caption { "Breakage of each month's points" }
                                thead { tr {
                                    th scope="col" { "Earned in" }
                                    th.num scope="col" { "Points issued" }
                                    th.num scope="col" { "Expired" }
                                    th.num scope="col" { "Breakage" }
                                } }
                                tbody {
                                    @for c in list(&b["cohorts"]) {
                                        tr {
                                            th scope="row" { (text(&c["month"])) }
                                            td.num { (points(int(&c["issued"]))) }
                                            td.num { (points(int(&c["expired"]))) }
                                            td.num { (percent(&c["breakage"])) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                Err(f) => { (layout::notice("error", &format!("Breakage could not be read: {}", f.message))) }
            }
        }
    };
    let status = match (&liability, &breakage) {
        (Err(f), _) | (_, Err(f)) => f.status,
        _ => axum::http::StatusCode::OK,
    };
    Ok(layout::respond(
        status,
        page(&staff, "/console/liability", "Liability and breakage", main),
    ))
}

/// A ratio as the API writes it ("0.0125") as "1.25 %"; a dash for none.
fn percent(v: &Value) -> String {
    match v.as_str().and_then(|s| s.parse::<Decimal>().ok()) {
        Some(d) => format!("{} %", (d * Decimal::ONE_HUNDRED).round_dp(2).normalize()),
        None => "—".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_domain::ids::{Id, MemberId, PartnerId};

    fn row(member: &str, partner: &str, earned: i64, spent: i64) -> PartnerMemberPoints {
        PartnerMemberPoints {
            member_id: MemberId::from_stored(member.into()),
            partner_id: PartnerId::from_stored(partner.into()),
            earned,
            spent,
        }
    }

    #[test]
    fn spending_follows_where_it_was_earned() {
        let rows = [
            row("mem_a", "ptn_1", 300, 0),
            row("mem_a", "ptn_2", 100, 0),
            row("mem_a", "ptn_3", 0, 40),
            row("mem_b", "ptn_3", 0, 7),
        ];
        let f = attribute(&rows);
        assert_eq!(f.get(&(Some("ptn_1"), "ptn_3")), Some(&30));
        assert_eq!(f.get(&(Some("ptn_2"), "ptn_3")), Some(&10));
        assert_eq!(f.get(&(None, "ptn_3")), Some(&7));
    }

    #[test]
    fn parts_add_up_to_what_was_spent() {
        let rows = [
            row("mem_a", "ptn_1", 1, 0),
            row("mem_a", "ptn_2", 1, 0),
            row("mem_a", "ptn_3", 1, 10),
        ];
        let f = attribute(&rows);
        let total: i64 = f.values().sum();
        assert_eq!(total, 10);
        assert!(f.get(&(Some("ptn_3"), "ptn_3")).copied().unwrap_or(0) > 0);
    }

    #[test]
    fn ratios_read_as_percent() {
        assert_eq!(percent(&Value::from("0.0125")), "1.25 %");
        assert_eq!(percent(&Value::Null), "—");
    }
}
