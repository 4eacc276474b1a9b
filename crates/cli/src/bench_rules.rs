//! The rule set and baskets the benchmarks use: a mix like a busy coalition's (category
//! multipliers, per-SKU bonuses, capped spend bonuses, best-of offers, a tier bonus that
//! reads the member, an exclusion), and `tally bench-rules`, which times evaluation alone.

use serde_json::{Value, json};
use std::time::Instant;
use tally_domain::ids::{Id, RuleId};
use tally_domain::money::Currency;
use tally_domain::rules::{
    AppliesTo, Base, BasketFacts, Facts, LineFacts, MemberFacts, PartnerFacts, RuleSet, RuleSpec, Scope, compile,
};

/// `n` rule specs; `partner_id` scopes them (none: programme-wide). One rule has a
/// campaign budget, or, with `budgets`, every capped one.
pub fn rule_specs(n: usize, partner_id: Option<&str>, budgets: bool) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let mut r = match i % 6 {
                0 => json!({"name": format!("Double points on cat{} except Sundays", i % 10),
                            "condition": "local.weekday != \"sunday\"",
                            "lines": format!("line.category == \"cat{}\"", i % 10),
                            "effect": {"kind": "multiplier", "factor": "2"}}),
                1 => json!({"name": format!("5 points per SKU-{}", i % 20), "lines": format!("line.sku == \"SKU-{}\"", i % 20),
                            "effect": {"kind": "per_unit", "points": 5, "max_units": 3}}),
                2 => json!({"name": format!("Big basket bonus {i}"), "condition": "basket.total > 500.0 && local.hour >= 6",
                            "effect": {"kind": "fixed", "points": 10}, "caps": [{"period": "day", "points": 100}]}),
                3 => json!({"name": format!("Half a point per CZK 25 on beauty {i}"),
                            "lines": "line.category in [\"cat1\", \"cat2\", \"cat3\"]",
                            "effect": {"kind": "per_amount", "points": "0.5"}, "stacking": "best_of"}),
                4 => json!({"name": format!("Gold bonus {i}"), "condition": "member.tier == \"gold\" || \"vip\" in member.segments",
                            "effect": {"kind": "fixed", "points": 20}}),
                _ => json!({"name": format!("Morning quantity bonus {i}"),
                            "condition": "lines.exists(l, l.quantity >= 3) && local.hour < 12",
                            "effect": {"kind": "fixed", "points": 15}, "priority": 5}),
            };
            if i == 0 {
                r = json!({"name": "No points on deposits", "lines": "line.category == \"deposit\"", "effect": {"kind": "exclude"}});
            }
            // One campaign with a budget, shared by every sale (`--budgets` gives each
            // capped rule one).
            if i == 2 || (budgets && i % 6 == 2) {
                r["budget"] = json!(1_000_000_000i64);
            }
            if let Some(p) = partner_id {
                r["partner_id"] = json!(p);
            }
            r
        })
        .collect()
}

/// A basket of `lines` lines (CZK), as the API takes them.
pub fn basket_lines(lines: usize, seed: u64) -> Vec<Value> {
    (0..lines)
        .map(|j| {
            let k = (seed as usize + j) % 40;
            json!({"sku": format!("SKU-{k}"), "category": format!("cat{}", k % 10), "quantity": 1 + (k % 3),
                   "unit_price": {"amount": 5_000 + (k as i64) * 1_000, "currency": "CZK"}})
        })
        .collect()
}

#[derive(clap::Args)]
pub struct BenchRulesArgs {
    /// Active rules.
    #[arg(long, default_value_t = 50)]
    pub rules: usize,
    /// Lines per basket.
    #[arg(long, default_value_t = 20)]
    pub lines: usize,
    /// Evaluations to time.
    #[arg(long, default_value_t = 20_000)]
    pub iterations: u64,
}

/// Times rule evaluation alone: `rules` rules against baskets of `lines` lines.
pub fn run(args: BenchRulesArgs) -> anyhow::Result<()> {
    let compiled = rule_specs(args.rules, Some("prt_bench"), false)
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let spec: RuleSpec = serde_json::from_value(v)?;
            Ok(compile(&RuleId::from_stored(format!("rul_{i:03}")), 1, spec)?)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let set = RuleSet::new(compiled);
    let czk = Currency::parse("CZK")?;
    let lines: Vec<LineFacts> = basket_lines(args.lines, 7)
        .iter()
        .map(|l| LineFacts {
            sku: l["sku"].as_str().unwrap_or_default().into(),
            category: l["category"].as_str().unwrap_or_default().into(),
            quantity: l["quantity"].as_i64().unwrap_or(1),
            unit_price_minor: l["unit_price"]["amount"].as_i64().unwrap_or(0),
        })
        .collect();
    let total = lines.iter().map(LineFacts::amount_minor).sum();
    let basket = BasketFacts {
        currency: czk,
        total_minor: total,
        lines,
    };
    let partner = PartnerFacts {
        id: "prt_bench".into(),
        name: "Bench Drugstore".into(),
        industry: "drugstore".into(),
        country: "CZ".into(),
        currency: "CZK".into(),
        timezone: "Europe/Prague".into(),
    };
    let member = MemberFacts {
        id: "mem_bench".into(),
        tier: Some("gold".into()),
        segments: vec!["vip".into()],
        joined_at: "2025-01-01T00:00:00Z".parse()?,
        ..Default::default()
    };
    let at: jiff::Timestamp = "2026-11-20T09:30:00Z".parse()?;
    let scope = Scope {
        partner_id: Some("prt_bench"),
        location_id: None,
        applies_to: AppliesTo::Purchase,
        event_type: None,
        at,
    };
    let facts = Facts {
        partner: Some(&partner),
        location: None,
        at,
        basket: Some(&basket),
        member: Some(&member),
        event: None,
    };
    let rate = rust_decimal::Decimal::new(252, 1);
    let evaluate = || {
        set.evaluate(&scope, &facts, rate, |excluded| {
            Ok(Base {
                earning_amount: rust_decimal::Decimal::from(total - excluded) / rust_decimal::Decimal::from(2520),
                earn_rate: rust_decimal::Decimal::ONE,
            })
        })
    };
    let sample = evaluate()?;
    for _ in 0..args.iterations / 10 {
        evaluate()?;
    }
    let started = Instant::now();
    for _ in 0..args.iterations {
        std::hint::black_box(evaluate()?);
    }
    let per_eval = started.elapsed().as_secs_f64() / args.iterations as f64;
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "rules": args.rules,
            "lines": args.lines,
            "iterations": args.iterations,
            "awards_per_basket": sample.awards.len(),
            "failures": sample.failures.len(),
            "microseconds_per_basket": (per_eval * 1e7).round() / 10.0,
            "microseconds_per_rule": (per_eval * 1e7 / args.rules.max(1) as f64).round() / 10.0,
        }))?
    );
    Ok(())
}
