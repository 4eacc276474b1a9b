use super::*;
use crate::DomainError;
use crate::ids::{Id, MemberId, RuleId};
use crate::money::Currency;
use rust_decimal::Decimal;

fn spec(json: &str) -> RuleSpec {
    serde_json::from_str(json).unwrap()
}

fn rule(id: &str, json: &str) -> CompiledRule {
    compile(&RuleId::from_stored(id.to_string()), 1, spec(json)).unwrap()
}

fn prague() -> PartnerFacts {
    PartnerFacts {
        id: "prt_prague".into(),
        name: "Lékárna U Anděla".into(),
        industry: "pharmacy".into(),
        country: "CZ".into(),
        currency: "CZK".into(),
        timezone: "Europe/Prague".into(),
    }
}

fn line(sku: &str, category: &str, quantity: i64, unit_price_minor: i64) -> LineFacts {
    LineFacts {
        sku: sku.into(),
        category: category.into(),
        quantity,
        unit_price_minor,
    }
}

/// Evaluates `rules` on a CZK basket at the Prague drugstore (25.2 CZK per EUR, 1 point
/// per EUR) and returns (excluded minor units, base points, awards).
fn run_czk(
    rules: Vec<CompiledRule>,
    at: &str,
    lines: Vec<LineFacts>,
    member: Option<&MemberFacts>,
) -> (i64, i64, Vec<Award>) {
    let set = RuleSet::new(rules);
    let partner = prague();
    let total: i64 = lines.iter().map(LineFacts::amount_minor).sum();
    let basket = BasketFacts {
        currency: Currency::parse("CZK").unwrap(),
        total_minor: total,
        lines,
    };
    let at: jiff::Timestamp = at.parse().unwrap();
    let scope = Scope {
        partner_id: Some(&partner.id),
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
        member,
        event: None,
    };
    let rate = Decimal::new(252, 1);
    let mut base_points = 0;
    let eval = set
        .evaluate(&scope, &facts, rate, |excluded| {
            let earning = Decimal::from(total - excluded) / Decimal::from(100) / rate;
            base_points = earning.floor().try_into().unwrap();
            Ok(Base {
                earning_amount: earning,
                earn_rate: Decimal::ONE,
            })
        })
        .unwrap();
    assert!(eval.failures.is_empty(), "{:?}", eval.failures);
    (eval.excluded_minor, base_points, eval.awards)
}

const COSMETICS_SATURDAY: &str = r#"{"name": "Double points on cosmetics on Saturdays",
    "partner_id": "prt_prague", "condition": "local.weekday == \"saturday\"",
    "lines": "line.category == \"cosmetics\"", "effect": {"kind": "multiplier", "factor": "2"}}"#;

#[test]
fn double_points_on_cosmetics_on_saturdays_in_prague_local_time() {
    // CZK 2,520: cosmetics 2 × 630 and a 1,260 thermometer; 100 base points; the
    // cosmetics are half the basket, so doubling them adds 50.
    let basket = || {
        vec![
            line("SKU-1", "cosmetics", 2, 63_000),
            line("SKU-9", "devices", 1, 126_000),
        ]
    };
    let r = || vec![rule("rul_sat", COSMETICS_SATURDAY)];
    // Friday 23:30 UTC is Saturday 00:30 in Prague (CET, UTC+1).
    let (_, base, awards) = run_czk(r(), "2026-11-27T23:30:00Z", basket(), None);
    assert_eq!(base, 100);
    assert_eq!(awards.len(), 1);
    assert_eq!(awards[0].points, 50);
    // Saturday 23:30 UTC is already Sunday in Prague.
    assert!(run_czk(r(), "2026-11-28T23:30:00Z", basket(), None).2.is_empty());
    // Summer time (CEST, UTC+2): Friday 22:30 UTC is Saturday 00:30 ...
    assert_eq!(run_czk(r(), "2026-06-26T22:30:00Z", basket(), None).2[0].points, 50);
    // ... and Saturday 22:30 UTC is Sunday.
    assert!(run_czk(r(), "2026-06-27T22:30:00Z", basket(), None).2.is_empty());
    // No cosmetics, nothing.
    let other = vec![line("SKU-9", "devices", 2, 126_000)];
    assert!(run_czk(r(), "2026-11-28T10:00:00Z", other, None).2.is_empty());
}

#[test]
fn fifty_points_per_sku_at_most_three_per_basket() {
    let r = rule(
        "rul_sku",
        r#"{"name": "50 points per SKU-123", "lines": "line.sku == \"SKU-123\"",
            "effect": {"kind": "per_unit", "points": 50, "max_units": 3}}"#,
    );
    let lines = vec![
        line("SKU-123", "snacks", 2, 5_000),
        line("SKU-123", "snacks", 3, 5_000),
        line("X", "y", 1, 100),
    ];
    assert_eq!(
        run_czk(vec![r.clone()], "2026-11-20T10:00:00Z", lines, None).2[0].points,
        150
    );
    let two = vec![line("SKU-123", "snacks", 2, 5_000)];
    assert_eq!(run_czk(vec![r], "2026-11-20T10:00:00Z", two, None).2[0].points, 100);
}

#[test]
fn exclusions_apply_before_any_rule() {
    let exclude = rule(
        "rul_excl",
        r#"{"name": "No points on tobacco, gift cards and deposits",
            "lines": "line.category in [\"tobacco\", \"gift_card\", \"deposit\"]",
            "effect": {"kind": "exclude"}, "priority": -100}"#,
    );
    let every = rule(
        "rul_all",
        r#"{"name": "Double everything", "effect": {"kind": "multiplier", "factor": "2"}, "priority": 100}"#,
    );
    // CZK 5,040: 2,520 of cosmetics, 2,016 of cigarettes, 504 deposit → only 2,520 earns.
    let lines = vec![
        line("SKU-1", "cosmetics", 1, 252_000),
        line("CIG", "tobacco", 2, 100_800),
        line("BOTTLE", "deposit", 1, 50_400),
    ];
    let (excluded, base, awards) = run_czk(vec![exclude, every], "2026-11-20T10:00:00Z", lines, None);
    assert_eq!(excluded, 252_000);
    assert_eq!(base, 100);
    assert_eq!(awards[0].points, 100, "the multiplier sees only what earns");
}

#[test]
fn first_visit_bonus_and_member_fields() {
    let r = rule(
        "rul_first",
        r#"{"name": "500 bonus points on your first stay", "condition": "member.first_visit",
            "effect": {"kind": "fixed", "points": 500}}"#,
    );
    assert!(r.uses_member());
    let mut m = MemberFacts {
        id: "mem_1".into(),
        joined_at: "2026-01-01T00:00:00Z".parse().unwrap(),
        ..Default::default()
    };
    let lines = || vec![line("ROOM", "stay", 1, 252_000)];
    assert_eq!(
        run_czk(vec![r.clone()], "2026-11-20T10:00:00Z", lines(), Some(&m)).2[0].points,
        500
    );
    m.visits = 1;
    assert!(
        run_czk(vec![r.clone()], "2026-11-20T10:00:00Z", lines(), Some(&m))
            .2
            .is_empty()
    );
    // An unknown member is never on a first visit.
    assert!(run_czk(vec![r], "2026-11-20T10:00:00Z", lines(), None).2.is_empty());
}

#[test]
fn stacking_best_of_and_stop() {
    let mk = |id: &str, points: i64, priority: i32, stacking: &str| {
        rule(
            id,
            &format!(
                r#"{{"name": "{id}", "effect": {{"kind": "fixed", "points": {points}}}, "priority": {priority}, "stacking": "{stacking}"}}"#
            ),
        )
    };
    let lines = || vec![line("A", "a", 1, 252_000)];
    let at = "2026-11-20T10:00:00Z";
    let got = |rules| {
        let mut v: Vec<(String, i64)> = run_czk(rules, at, lines(), None)
            .2
            .into_iter()
            .map(|a| (a.rule_id.into_string(), a.points))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        got(vec![
            mk("a", 10, 5, "stack"),
            mk("b", 20, 4, "best_of"),
            mk("c", 30, 3, "best_of")
        ]),
        vec![("a".into(), 10), ("c".into(), 30)]
    );
    assert_eq!(
        got(vec![mk("a", 10, 5, "stop"), mk("b", 20, 4, "stack")]),
        vec![("a".into(), 10)]
    );
}

#[test]
fn the_caps_one_sale_counts_sit_together_in_key_order() {
    // Every member's day and month caps under three rules, sorted as the store keeps
    // them: one member's caps for one period form one run, whatever the rules.
    let date = jiff::civil::date(2026, 11, 28);
    let caps = [
        Cap {
            period: CapPeriod::Day,
            points: 100,
        },
        Cap {
            period: CapPeriod::Month,
            points: 1000,
        },
    ];
    let mut keys = Vec::new();
    for m in ["mem_01a", "mem_01b", "mem_01c"] {
        for r in ["rul_01x", "rul_01y", "rul_01z"] {
            for l in limits(&caps, Some(5000), date) {
                keys.push((
                    l.key(&RuleId::from_stored(r.into()), &MemberId::from_stored(m.into())),
                    m,
                    l.is_budget(),
                ));
            }
        }
    }
    keys.sort();
    let caps_of_b: Vec<usize> = keys
        .iter()
        .enumerate()
        .filter(|(_, (_, m, budget))| *m == "mem_01b" && !budget)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(caps_of_b.len(), 6);
    assert_eq!(
        caps_of_b[5] - caps_of_b[0],
        5,
        "one member's caps are contiguous: {keys:?}"
    );
    // Budgets are per rule, never mixed into a member's run.
    assert!(
        keys.iter()
            .filter(|k| k.2)
            .all(|k| k.0.starts_with("rul_") && k.0.ends_with(":budget"))
    );
}

#[test]
fn caps_and_budget_become_limits_in_local_periods() {
    let date = jiff::civil::date(2026, 11, 28);
    let l = limits(
        &[
            Cap {
                period: CapPeriod::Month,
                points: 2000,
            },
            Cap {
                period: CapPeriod::Week,
                points: 700,
            },
        ],
        Some(1_000_000),
        date,
    );
    assert_eq!(
        l[0].key(
            &RuleId::from_stored("rul_1".into()),
            &MemberId::from_stored("mem_1".into())
        ),
        "mem_1:month:2026-11:rul_1"
    );
    assert_eq!(
        l[1].key(
            &RuleId::from_stored("rul_1".into()),
            &MemberId::from_stored("mem_1".into())
        ),
        "mem_1:week:2026-W48:rul_1"
    );
    assert_eq!(
        l[2].key(
            &RuleId::from_stored("rul_1".into()),
            &MemberId::from_stored("mem_1".into())
        ),
        "rul_1:budget"
    );
}

fn refused(condition: &str) -> (String, String) {
    let json = serde_json::json!({"name": "x", "condition": condition, "effect": {"kind": "fixed", "points": 1}});
    match compile(
        &RuleId::from_stored("r".into()),
        1,
        serde_json::from_value(json).unwrap(),
    ) {
        Err(DomainError::InvalidRule { message, .. }) => ("invalid_rule".into(), message),
        Err(DomainError::RuleTooCostly { message, .. }) => ("rule_too_costly".into(), message),
        Err(other) => panic!("unexpected {other:?}"),
        Ok(_) => panic!("{condition} was accepted"),
    }
}

#[test]
fn rules_are_checked_when_saved() {
    let (code, msg) = refused("member.tierr == \"gold\"");
    assert_eq!(code, "invalid_rule");
    assert!(
        msg.contains("line 1, column 7") && msg.contains("no field `tierr`"),
        "{msg}"
    );
    let (_, msg) = refused("basket.total > \"100\"");
    assert!(msg.contains("cannot order a double against a string"), "{msg}");
    let (_, msg) = refused("basket.total + 1 > 10.0");
    assert!(msg.contains("mixes a whole number"), "{msg}");
    let (_, msg) = refused("basket.quantity");
    assert!(msg.contains("must be true or false"), "{msg}");
    let (_, msg) = refused("custmer.tier == \"gold\"");
    assert!(msg.contains("unknown name `custmer`"), "{msg}");
    let (_, msg) = refused("local.weekday == ");
    assert!(msg.starts_with("line 1, column"), "{msg}");
    let (_, msg) = refused("lines.exists(l, l.sku.matches(\"a+\"))");
    assert!(msg.contains("unknown function"), "{msg}");
    let (code, msg) = refused("lines.all(a, lines.all(b, a.sku != b.sku))");
    assert_eq!(code, "rule_too_costly", "{msg}");
    // Joined lists count as long as both: one pass is admitted, two are not.
    let skus: Vec<String> = (0..40).map(|i| format!("SKU-{i}")).collect();
    let one = format!("lines.exists(l, l.sku in {skus:?})");
    let json = serde_json::json!({"name": "x", "condition": one, "effect": {"kind": "fixed", "points": 1}});
    assert!(
        compile(
            &RuleId::from_stored("r".into()),
            1,
            serde_json::from_value(json).unwrap()
        )
        .is_ok()
    );
    let (code, msg) = refused(&format!("(lines + lines).exists(l, l.sku in {skus:?})"));
    assert_eq!(code, "rule_too_costly", "{msg}");
    // Valid ones, including every documented field.
    for ok in [
        "basket.total >= 100.0 && basket.currency == \"EUR\"",
        "member.tier == \"gold\" && \"students\" in member.segments && member.days_since_joined < 30",
        "partner.industry == \"apparel\" && location.city == \"Berlin\" && local.month == 11",
        "lines.exists(l, l.category == \"cosmetics\" && l.quantity >= 2)",
        "size(lines) > 3 && basket.quantity > 3 && basket.line_count > 1",
        "has(event.attributes.rating) && event.attributes.rating >= 4",
        "local.hour >= 17 && local.time < \"19:30\" && local.date == \"2026-11-28\"",
        "kind == \"purchase\" && basket.total_program > double(member.visits)",
    ] {
        let json = serde_json::json!({"name": "x", "condition": ok, "effect": {"kind": "fixed", "points": 1}});
        compile(
            &RuleId::from_stored("r".into()),
            1,
            serde_json::from_value(json).unwrap(),
        )
        .unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

#[test]
fn numbers_compare_across_int_and_double_at_run_time() {
    // The checker lets `basket.total > 50` through; the interpreter must agree.
    let r = rule(
        "r",
        r#"{"name": "Big basket", "condition": "basket.total > 50", "effect": {"kind": "fixed", "points": 7}}"#,
    );
    let (_, _, awards) = run_czk(vec![r], "2026-11-20T10:00:00Z", vec![line("A", "a", 1, 10_000)], None);
    assert_eq!(awards[0].points, 7);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn cel_soup() -> impl Strategy<Value = String> {
        let atoms = prop::sample::select(vec![
            "member",
            "basket",
            "lines",
            "line",
            "local",
            ".",
            "tier",
            "total",
            "(",
            ")",
            "[",
            "]",
            "{",
            "}",
            "==",
            "!=",
            "<",
            ">=",
            "&&",
            "||",
            "!",
            "-",
            "+",
            "*",
            "/",
            "%",
            "?",
            ":",
            ",",
            "1",
            "2.5",
            "\"x\"",
            "true",
            "null",
            "in",
            "exists",
            "all",
            "map",
            "filter",
            "has",
            "size",
            "l",
            "=>",
            "'",
            "\\",
            "0x",
            "9223372036854775807",
            "-9223372036854775808",
            "1e308",
            "\u{0}",
            "é",
            " ",
        ]);
        prop::collection::vec(atoms, 0..40).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Whatever text arrives as a rule, compiling it returns (never panics), and a
        /// rule that compiles evaluates without panicking.
        #[test]
        fn any_condition_text_is_answered(text in cel_soup(), raw in ".{0,80}") {
            for candidate in [text, raw] {
                let json = serde_json::json!({"name": "x", "condition": candidate, "effect": {"kind": "fixed", "points": 1}});
                let spec: RuleSpec = serde_json::from_value(json).unwrap();
                if let Ok(r) = compile(&RuleId::from_stored("r".into()), 1, spec) {
                    let _ = run_czk_lenient(r);
                }
            }
        }

        #[test]
        fn deep_nesting_is_refused_not_overflowed(depth in 50usize..3000) {
            let text = format!("{}true{}", "(".repeat(depth), ")".repeat(depth));
            let json = serde_json::json!({"name": "x", "condition": text, "effect": {"kind": "fixed", "points": 1}});
            let _ = compile(&RuleId::from_stored("r".into()), 1, serde_json::from_value(json).unwrap());
        }
    }

    fn run_czk_lenient(r: CompiledRule) -> usize {
        let set = RuleSet::new(vec![r]);
        let partner = prague();
        let basket = BasketFacts {
            currency: Currency::parse("CZK").unwrap(),
            total_minor: 100,
            lines: vec![line("A", "b", 1, 100)],
        };
        let at = "2026-11-20T10:00:00Z".parse().unwrap();
        let scope = Scope {
            partner_id: Some("prt_prague"),
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
            member: None,
            event: None,
        };
        set.evaluate(&scope, &facts, Decimal::ONE, |_| {
            Ok(Base {
                earning_amount: Decimal::ONE,
                earn_rate: Decimal::ONE,
            })
        })
        .map(|e| e.awards.len())
        .unwrap_or(0)
    }
}

mod fast_matches_cel {
    use super::*;
    use crate::rules::engine::{interpret, run_fast};
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "", "a", "ab", "gold", "cat1", "SKU-1", "saturday", "Praha", "CZ", "é",
        ])
        .prop_map(str::to_string)
    }

    /// Expressions of the fast shape (and some just outside it), as CEL text.
    fn expr() -> impl Strategy<Value = String> {
        let strings = prop::sample::select(vec![
            "line.sku",
            "line.category",
            "member.tier",
            "member.plan",
            "member.country",
            "member.id",
            "member.joined_on",
            "member.referred_by",
            "partner.industry",
            "partner.country",
            "partner.currency",
            "location.city",
            "local.weekday",
            "local.date",
            "local.time",
            "event.type",
            "kind",
            "basket.currency",
        ]);
        let ints = prop::sample::select(vec![
            "line.quantity",
            "basket.quantity",
            "basket.line_count",
            "member.visits",
            "member.days_since_joined",
            "member.referral_age_days",
            "local.hour",
            "local.minute",
            "local.month",
            "local.day",
            "local.year",
            "size(lines)",
            "size(member.segments)",
        ]);
        let doubles = prop::sample::select(vec![
            "line.amount",
            "line.unit_price",
            "basket.total",
            "basket.total_program",
        ]);
        let ops = prop::sample::select(vec!["==", "!=", "<", "<=", ">", ">="]);
        let leaf = prop_oneof![
            (strings.clone(), ops.clone(), text()).prop_map(|(f, o, t)| format!("{f} {o} {t:?}")),
            (ints, ops.clone(), -3i64..40).prop_map(|(f, o, n)| format!("{f} {o} {n}")),
            (doubles.clone(), ops.clone(), 0u32..400).prop_map(|(f, o, n)| format!("{f} {o} {}.5", n)),
            (doubles, ops, 0i64..400).prop_map(|(f, o, n)| format!("{f} {o} {n}")),
            (strings.clone(), prop::collection::vec(text(), 0..4)).prop_map(|(f, l)| format!("{f} in {l:?}")),
            (text(),).prop_map(|(t,)| format!("{t:?} in member.segments")),
            (
                strings,
                prop::sample::select(vec!["contains", "startsWith", "endsWith"]),
                text()
            )
                .prop_map(|(f, m, t)| format!("{f}.{m}({t:?})")),
            Just("member.first_visit".to_string()),
            Just("true".to_string()),
        ];
        leaf.prop_recursive(3, 16, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) && ({b})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) || ({b})")),
                inner.clone().prop_map(|a| format!("!({a})")),
                // The same tests of a line, over the lines: `line.` read through the
                // comprehension's variable.
                inner
                    .clone()
                    .prop_map(|a| format!("lines.exists(l, {})", a.replace("line.", "l."))),
                inner.prop_map(|a| format!("lines.all(l, {})", a.replace("line.", "l."))),
            ]
        })
    }

    fn member() -> impl Strategy<Value = Option<MemberFacts>> {
        prop::option::of(
            (
                text(),
                prop::collection::vec(text(), 0..3),
                text(),
                0i64..3,
                0i64..2_000_000_000,
                prop::option::of(text()),
            )
                .prop_map(|(tier, segments, country, visits, joined, referred_by)| MemberFacts {
                    id: "mem_1".into(),
                    tier: (!tier.is_empty()).then_some(tier),
                    segments,
                    plan: None,
                    country: Some(country),
                    joined_at: jiff::Timestamp::from_second(joined).unwrap(),
                    visits,
                    referred_by,
                }),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn the_fast_evaluator_agrees_with_the_cel_interpreter(
            source in expr(),
            member in member(),
            lines in prop::collection::vec((text(), text(), 1i64..4, 0i64..50_000), 1..4),
            at in 1_700_000_000i64..1_900_000_000,
            on_line in any::<bool>(),
        ) {
            let partner = prague();
            let lines: Vec<LineFacts> = lines.into_iter().map(|(s, c, q, p)| line(&s, &c, q, p)).collect();
            let refs: Vec<&LineFacts> = lines.iter().collect();
            let basket = BasketFacts {
                currency: Currency::parse("CZK").unwrap(),
                total_minor: lines.iter().map(LineFacts::amount_minor).sum(),
                lines: lines.clone(),
            };
            let at = jiff::Timestamp::from_second(at).unwrap();
            let facts = Facts { partner: Some(&partner), location: None, at, basket: Some(&basket), member: member.as_ref(), event: None };
            let line = on_line.then(|| &lines[0]);
            let uses_line = source.contains("line.");
            let line = if uses_line { Some(&lines[0]) } else { line };
            if let Some(fast) = run_fast(&source, &facts, &refs, 25.2, line) {
                let cel = interpret(&source, &facts, &refs, 25.2, line);
                prop_assert_eq!(Ok(fast), cel, "{}", source);
            }
        }
    }

    #[test]
    fn common_shapes_take_the_fast_path() {
        let partner = prague();
        let basket = BasketFacts {
            currency: Currency::parse("CZK").unwrap(),
            total_minor: 100,
            lines: vec![line("A", "b", 1, 100)],
        };
        let at = "2026-11-20T10:00:00Z".parse().unwrap();
        let facts = Facts {
            partner: Some(&partner),
            location: None,
            at,
            basket: Some(&basket),
            member: None,
            event: None,
        };
        let refs: Vec<&LineFacts> = basket.lines.iter().collect();
        for shape in [
            "local.weekday == \"saturday\"",
            "line.category in [\"tobacco\", \"gift_card\"]",
            "member.tier == \"gold\" && partner.industry == \"apparel\"",
            "basket.total > 500.0 && local.hour >= 6",
            "\"vip\" in member.segments || member.first_visit",
            "line.sku.startsWith(\"SKU-\")",
            "lines.exists(l, l.quantity > 2) && local.hour < 12",
            "lines.all(x, x.category != \"tobacco\")",
            "lines.exists(line, line.sku == \"A\")",
        ] {
            assert!(
                run_fast(shape, &facts, &refs, 1.0, Some(&basket.lines[0])).is_some(),
                "{shape}"
            );
        }
        for other in [
            "basket.total > 500",
            "lines.exists_one(l, l.quantity > 2)",
            "lines.exists(l, lines.exists(m, m.sku == l.sku))",
            "lines.exists(member, member.quantity > 2)",
            "lines.map(l, l.quantity).exists(q, q > 2)",
            "event.attributes.rating >= 4",
        ] {
            assert!(run_fast(other, &facts, &refs, 1.0, None).is_none(), "{other}");
        }
    }
}
