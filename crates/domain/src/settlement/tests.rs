use super::*;
use crate::ids::{Id, PartnerId};
use rust_decimal::Decimal;
use std::str::FromStr;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn day(s: &str) -> jiff::civil::Date {
    s.parse().unwrap()
}

fn row(account: &str, code: &str, on: &str, entries: u64, sum: i64) -> BookRow {
    BookRow {
        account: account.into(),
        code: code.into(),
        day: day(on),
        entries,
        sum,
    }
}

fn prices(issue: &str, reimburse: &str) -> Prices {
    Prices {
        issue_price: d(issue),
        reimbursement_rate: d(reimburse),
        monthly_fee: Decimal::ZERO,
        redemption_fee_percent: Decimal::ZERO,
    }
}

fn version(partner: Option<&str>, from: &str, p: Prices) -> PriceVersion {
    PriceVersion {
        partner_id: partner.map(|p| PartnerId::from_stored(p.into())),
        effective_from: day(from),
        prices: p,
        created_at: jiff::Timestamp::UNIX_EPOCH,
    }
}

fn eur() -> crate::money::Currency {
    crate::money::Currency::parse("EUR").unwrap()
}

fn statement(partner: &str, currency: &str, rate: &str, book: &PriceBook, rows: &[BookRow]) -> Statement {
    let partner = PartnerId::from_stored(partner.into());
    Statement::build(
        StatementInput {
            period: Period::parse("2026-11").unwrap(),
            partner_id: &partner,
            status: StatementStatus::Open,
            closed_at: None,
            currency: crate::money::Currency::parse(currency).unwrap(),
            program_currency: eur(),
            fx_rate: d(rate),
            prices: book,
            after_a_close: true,
        },
        rows,
    )
    .unwrap()
}

/// The worked example of docs/SETTLEMENT.md: 10,000 points funded at EUR 0.008, 4,000
/// redeemed at EUR 0.0095, 1,000 funded by the operator; net EUR 42.00 owed by the store.
#[test]
fn the_berlin_example() {
    let book = PriceBook::new(
        vec![version(None, "2026-01-01", prices("0.008", "0.0095"))],
        prices("0.01", "0.01"),
    );
    let rows = [
        // 10,000 points over three days, in amounts that are not whole cents each.
        row("partner:par_berlin:issued", "earn", "2026-11-03", 40, -3_333),
        row("partner:par_berlin:issued", "earn", "2026-11-04", 41, -3_333),
        row("partner:par_berlin:issued", "earn", "2026-11-20", 42, -3_334),
        row("partner:par_berlin:issued", "return_reversal", "2026-11-21", 1, 100),
        row("partner:par_berlin:issued", "earn", "2026-11-21", 1, -100),
        row("partner:par_berlin:redeemed", "redeem", "2026-11-10", 8, 3_000),
        row("partner:par_berlin:redeemed", "reward_redeem", "2026-11-12", 2, 1_000),
        row("program:funded:par_berlin", "earn", "2026-11-20", 5, -1_000),
        // Another partner's rows and the programme's are not on this statement.
        row("partner:par_prague:issued", "earn", "2026-11-03", 1, -777),
        row("program:expired", "expire", "2026-11-30", 3, 55),
    ];
    let s = statement("par_berlin", "EUR", "1", &book, &rows);
    assert_eq!((s.issued.points, s.issued.amount), (10_000, 8_000));
    assert_eq!((s.redeemed.points, s.redeemed.amount), (4_000, 3_800));
    assert_eq!((s.operator_funded.points, s.operator_funded.amount), (1_000, 0));
    assert_eq!(s.net, SignedMoney::new(4_200, eur()));
    assert_eq!(s.payer, Payer::Partner);
    assert_eq!(s.program.net, 4_200);
    assert_eq!(s.lines.len(), 8);
    // A return's line counts negative on the side it takes back from.
    let reversal = s.lines.iter().find(|l| l.code == "return_reversal").unwrap();
    assert_eq!((reversal.points, reversal.amount), (-100, Some(d("-0.8"))));
    let first = &s.lines[0];
    assert_eq!(
        (first.points, first.price, first.amount),
        (3_333, Some(d("0.008")), Some(d("26.664")))
    );
    let csv = s.to_csv();
    assert!(csv.contains(",total,net,,0,0,,42.00,\n"), "{csv}");
    assert_eq!(csv.lines().count(), 1 + 8 + 6);
}

#[test]
fn a_statement_in_another_currency_converts_once_at_the_period_rate() {
    let book = PriceBook::new(
        vec![version(None, "2026-01-01", prices("0.008", "0.0095"))],
        prices("0.01", "0.01"),
    );
    let rows = [
        row("partner:par_prague:issued", "earn", "2026-11-02", 3, -5_001),
        row("partner:par_prague:redeemed", "redeem", "2026-11-09", 1, 333),
    ];
    let s = statement("par_prague", "CZK", "25.2", &book, &rows);
    // 5,001 × 0.008 × 25.2 = 1008.2016 CZK; 333 × 0.0095 × 25.2 = 79.7202 CZK.
    assert_eq!(s.issued.amount, 100_820);
    assert_eq!(s.redeemed.amount, 7_972);
    assert_eq!(s.net.amount, 100_820 - 7_972);
    assert_eq!(s.net.currency.code(), "CZK");
    // In programme currency: 40.008 → 40.01 and 3.1635 → 3.16.
    assert_eq!((s.program.issued, s.program.redeemed), (4_001, 316));
}

#[test]
fn prices_change_on_their_day_and_a_partners_own_prices_stand() {
    let book = PriceBook::new(
        vec![
            version(None, "2026-01-01", prices("0.008", "0.0095")),
            version(Some("par_b"), "2026-11-15", prices("0.007", "0.009")),
            version(None, "2026-11-20", prices("0.009", "0.0099")),
        ],
        prices("0.01", "0.01"),
    );
    let a = PartnerId::from_stored("par_a".into());
    let b = PartnerId::from_stored("par_b".into());
    assert_eq!(book.on(&b, day("2026-11-14")).issue_price, d("0.008"));
    assert_eq!(book.on(&b, day("2026-11-15")).issue_price, d("0.007"));
    assert_eq!(book.on(&b, day("2026-11-25")).issue_price, d("0.007"));
    assert_eq!(book.on(&a, day("2026-11-25")).issue_price, d("0.009"));
    assert_eq!(book.programme_on(day("2026-11-25")).reimbursement_rate, d("0.0099"));
    assert_eq!(book.on(&a, day("2025-12-31")).issue_price, d("0.01"));
    let rows = [
        row("partner:par_b:issued", "earn", "2026-11-14", 1, -1_000),
        row("partner:par_b:issued", "earn", "2026-11-15", 1, -1_000),
    ];
    assert_eq!(statement("par_b", "EUR", "1", &book, &rows).issued.amount, 800 + 700);
}

#[test]
fn fees_and_late_items() {
    let mut p = prices("0.01", "0.01");
    p.monthly_fee = d("25");
    p.redemption_fee_percent = d("2.5");
    let book = PriceBook::new(vec![version(None, "2026-01-01", p)], prices("0.01", "0.01"));
    let rows = [
        row("partner:par_a:issued", "earn", "2026-10-31", 2, -500),
        row("partner:par_a:redeemed", "redeem", "2026-11-02", 1, 10_000),
    ];
    let s = statement("par_a", "EUR", "1", &book, &rows);
    assert_eq!(s.late_entries, 2);
    assert!(s.lines[0].late && !s.lines[1].late);
    assert_eq!(s.monthly_fee.amount, 2_500);
    assert_eq!(s.redemption_fee.amount, 250);
    // 5.00 + 25.00 + 2.50 − 100.00: the operator pays 67.50.
    assert_eq!(s.net.amount, -6_750);
    assert_eq!(s.payer, Payer::Operator);
}

#[test]
fn prices_are_bounded() {
    assert!(prices("0.008", "0.0095").check().is_ok());
    assert!(prices("-0.001", "0.01").check().is_err());
    assert!(prices("1000.000001", "0.01").check().is_err());
    assert!(prices("0.0000001", "0.01").check().is_err());
    let mut p = prices("0.01", "0.01");
    p.redemption_fee_percent = d("100.5");
    assert!(p.check().is_err());
}

#[test]
fn periods() {
    let p = Period::parse("2026-11").unwrap();
    assert_eq!(p.to_string(), "2026-11");
    assert_eq!(p.next().to_string(), "2026-12");
    assert_eq!(p.next().next().to_string(), "2027-01");
    assert_eq!(p.prev().to_string(), "2026-10");
    assert_eq!(p.start().to_string(), "2026-11-01T00:00:00Z");
    assert_eq!(p.end().to_string(), "2026-12-01T00:00:00Z");
    assert_eq!(Period::of("2026-11-30T23:59:59Z".parse().unwrap()), p);
    for bad in [
        "2026-13",
        "2026-00",
        "26-11",
        "2026-1",
        "2026/11",
        "1999-12",
        "2026-11-01",
        "+026-11",
        "2026-1x",
    ] {
        assert!(Period::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn flows_reconcile_a_set_of_whole_transfers() {
    // A sale (900 partner, 100 operator), a spend at another partner, an expiry, a
    // return the member had spent, a transfer in flight and its landing.
    let rows = [
        row("partner:par_a:issued", "earn", "2026-11-01", 1, -900),
        row("program:funded:par_a", "earn", "2026-11-01", 1, -100),
        row("partner:par_b:redeemed", "redeem", "2026-11-02", 1, 300),
        row("program:expired", "expire", "2026-11-03", 1, 50),
        row("program:unrecovered", "return_unrecovered", "2026-11-04", 1, -20),
        row("partner:par_a:issued", "return_unrecovered", "2026-11-04", 1, 20),
        row("program:transfers", "transfer_out", "2026-11-05", 1, 70),
        row("program:transfers", "transfer_in", "2026-11-05", 1, -70),
        row("member:m1:available", "earn", "2026-11-01", 1, 1_000),
    ];
    let flows = Flows::of(&rows).unwrap();
    assert_eq!(flows.issued_by_partners, 880);
    assert_eq!(flows.issued_by_operator, 100);
    assert_eq!(flows.unrecovered, 20);
    assert_eq!((flows.redeemed, flows.expired, flows.in_transit), (300, 50, 0));
    // 1,000 held before; 1,000 + 880 + 100 + 20 − 300 − 50 = 1,650 after.
    assert_eq!(Reconciliation::new(1_000, flows.clone(), 1_650).difference, 0);
    assert_eq!(Reconciliation::new(1_000, flows, 1_649).difference, 1);
}

#[test]
fn liability_splits_the_outstanding_points_among_funders_exactly() {
    let book = PriceBook::new(vec![], prices("0.008", "0.0095"));
    let a = PartnerId::from_stored("par_a".into());
    let b = PartnerId::from_stored("par_b".into());
    let l = Liability::new(
        day("2026-11-30"),
        1_001,
        vec![(Some(a), 1), (Some(b), 1), (None, 1)],
        &book,
        eur(),
    );
    let shares: Vec<i64> = l.by_funder.iter().map(|f| f.outstanding).collect();
    assert_eq!(shares.iter().sum::<i64>(), 1_001);
    assert_eq!(shares, vec![334, 334, 333]);
    // A negative outstanding splits the same way, each share negative.
    let a = PartnerId::from_stored("par_a".into());
    let neg = Liability::new(day("2026-11-30"), -5, vec![(Some(a), 3), (None, 1)], &book, eur());
    assert_eq!(
        neg.by_funder.iter().map(|f| f.outstanding).collect::<Vec<_>>(),
        vec![-4, -1]
    );
    // 1,001 × 0.0095 = 9.5095 → 9.51.
    assert_eq!(l.value.amount, 951);
    assert_eq!(l.by_funder[2].funder, "operator");
}

#[test]
fn accounts_are_read_for_settlement() {
    let p = |s: &str| PartnerId::from_stored(s.into());
    assert_eq!(
        Book::of("partner:par_a:issued"),
        Book::Partner(p("par_a"), Side::Issued)
    );
    assert_eq!(
        Book::of("partner:par_a:redeemed"),
        Book::Partner(p("par_a"), Side::Redeemed)
    );
    assert_eq!(
        Book::of("program:funded:par_a"),
        Book::Partner(p("par_a"), Side::OperatorFunded)
    );
    assert_eq!(Book::of("exchange:xp_1:pending"), Book::ExchangeOut);
    assert_eq!(Book::of("exchange:xp_1:in"), Book::ExchangeIn);
    assert_eq!(Book::of("wallet:wal_1:available"), Book::Holder);
    assert_eq!(Book::of("partner:par_a:odd"), Book::Other);
}

#[test]
fn the_calendar_sets_each_entry_in_one_period() {
    let oct = Period::parse("2026-10").unwrap();
    let nov = oct.next();
    let dec = nov.next();
    let none = Calendar::default();
    // Nothing closed: a period holds what is dated in it.
    let s = none.period_set(nov).unwrap();
    assert_eq!(s.plus.before, dec.start());
    assert_eq!(s.minus.unwrap().before, nov.start());
    assert!(s.recorded_from < nov.start());
    let cal = Calendar::new(vec![ClosedPeriod {
        period: oct,
        last_entry_id: 500,
    }]);
    // November: dated before December, less October's (dated before November, id ≤ 500).
    let s = cal.period_set(nov).unwrap();
    assert_eq!(
        s.minus,
        Some(Settled {
            before: nov.start(),
            until_id: 500
        })
    );
    assert_eq!(s.plus.until_id, i64::MAX);
    // October, the first closed: everything dated before November up to its last entry.
    let s = cal.period_set(oct).unwrap();
    assert_eq!(
        (s.minus, s.plus.until_id, s.recorded_from),
        (None, 500, jiff::Timestamp::MIN)
    );
    // Before the first closed period: nothing, and a clear refusal.
    assert!(cal.period_set(oct.prev()).is_err());
    assert_eq!(cal.status(oct.prev()), StatementStatus::Closed);
    assert_eq!(cal.status(nov), StatementStatus::Open);
    // Closing: in order, once, after the month ended.
    let code = |r: Result<(), crate::DomainError>| match r {
        Err(crate::DomainError::Refused { code, .. }) => code,
        _ => "ok",
    };
    let late = dec.end();
    assert_eq!(code(cal.may_close(oct, late)), "period_closed");
    assert_eq!(code(cal.may_close(dec, late)), "previous_period_open");
    assert_eq!(code(cal.may_close(nov, dec.start())), "ok");
    assert_eq!(
        code(cal.may_close(nov, nov.end().checked_sub(jiff::SignedDuration::from_secs(1)).unwrap())),
        "period_not_ended"
    );
    assert_eq!(code(none.may_close(oct.prev(), late)), "ok");
}
