//! Compiled rules and their evaluation: which rules match a sale or an event, and how
//! many points each gives before caps and budgets.

use super::check::{self, CheckError};
use super::context::{self, Derived, Facts, LineFacts, Prepared};
use super::fast::{self, Fast};
use super::spec::{AppliesTo, Cap, CapPeriod, Effect, RuleSpec, Stacking, Window};
use crate::DomainError;
use crate::ids::{MemberId, RuleId};
use cel::{Context, Env, Program, Value};
use jiff::Timestamp;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use std::sync::{Arc, LazyLock};

/// The CEL environment every rule is compiled and run in: the standard library,
/// without optional syntax.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib().with_optional_support(false)));

/// One version of a rule, compiled and ready to run.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    pub id: RuleId,
    pub version: i64,
    pub spec: RuleSpec,
    pub window: Window,
    condition: Option<Arc<Program>>,
    lines: Option<Arc<Program>>,
    /// The same expressions compiled natively, when they have the fast shape.
    fast_condition: Option<Arc<Fast>>,
    fast_lines: Option<Arc<Fast>>,
    /// The context variables its CEL-interpreted expressions read.
    cel_vars: u16,
    /// The context variables it reads ([`check::vars`]).
    pub vars: u16,
}

fn position(source: &str, program: &Program, e: &CheckError) -> (usize, usize) {
    let offset = program
        .source_info()
        .offset_for(e.expr_id)
        .map(|(s, _)| s as usize)
        .unwrap_or(0);
    let before: String = source.chars().take(offset).collect();
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, column)
}

fn compile_expr(field: &'static str, source: &str, with_line: bool) -> Result<(Program, u16, u64), DomainError> {
    let program = ENV.compile(source).map_err(|errors| {
        let first = errors.errors.first();
        let (line, column) = first.map(|e| (e.pos.0.max(1), e.pos.1.max(0) + 1)).unwrap_or((1, 1));
        let msg = first.map(|e| e.msg.clone()).unwrap_or_else(|| "cannot be read".into());
        DomainError::InvalidRule {
            field,
            message: format!("line {line}, column {column}: {msg}"),
        }
    })?;
    let (checked, used) = check::check(program.expression(), with_line).map_err(|e| {
        let (line, column) = position(source, &program, &e);
        let message = format!("line {line}, column {column}: {}", e.message);
        if e.message.starts_with("too costly") {
            DomainError::RuleTooCostly { field, message }
        } else {
            DomainError::InvalidRule { field, message }
        }
    })?;
    if !checked.ty.is_bool_like() {
        return Err(DomainError::InvalidRule {
            field,
            message: "must be true or false (a condition), for example local.weekday == \"saturday\"".into(),
        });
    }
    Ok((program, used, checked.cost))
}

impl check::Ty {
    fn is_bool_like(&self) -> bool {
        matches!(self, check::Ty::Bool | check::Ty::Dyn)
    }
}

/// Validates and compiles a rule; what is wrong comes back in plain words with the line
/// and column of the CEL text.
pub fn compile(id: &RuleId, version: i64, spec: RuleSpec) -> Result<CompiledRule, DomainError> {
    let window = spec.validate()?;
    let text = |t: &Option<String>| {
        t.as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    };
    let mut vars = 0u16;
    let mut cel_vars = 0u16;
    let mut fast_condition = None;
    let condition = match text(&spec.condition) {
        Some(src) => {
            let (p, used, _) = compile_expr("condition", &src, false)?;
            vars |= used;
            fast_condition = fast::compile(p.expression()).map(Arc::new);
            if fast_condition.is_none() {
                cel_vars |= used;
            }
            Some(Arc::new(p))
        }
        None => None,
    };
    let mut fast_lines = None;
    let lines = match text(&spec.lines) {
        Some(src) => {
            // The filter runs once per line: it is checked alone (for its messages), then
            // run as one pass over the lines, `lines.map(line, <filter>)`.
            let (alone, used, c) = compile_expr("lines", &src, true)?;
            fast_lines = fast::compile(alone.expression()).map(Arc::new);
            if fast_lines.is_none() {
                cel_vars |= used | check::vars::LINES;
            }
            let per_basket = c.saturating_mul(check::MAX_LIST);
            if per_basket > check::MAX_COST {
                return Err(DomainError::RuleTooCostly {
                    field: "lines",
                    message: format!(
                        "too costly: the line filter runs once per line and could take {per_basket} steps on a basket of {} lines (at most {}); avoid loops in a line filter",
                        check::MAX_LIST,
                        check::MAX_COST
                    ),
                });
            }
            let wrapped = ENV
                .compile(&format!("lines.map(line, ({src}))"))
                .map_err(|_| DomainError::InvalidRule {
                    field: "lines",
                    message: "cannot be used as a line filter".into(),
                })?;
            vars |= used | check::vars::LINES;
            Some(Arc::new(wrapped))
        }
        None => None,
    };
    Ok(CompiledRule {
        id: id.clone(),
        version,
        spec,
        window,
        condition,
        lines,
        fast_condition,
        fast_lines,
        cel_vars,
        vars,
    })
}

/// A condition over a member alone (who may redeem a reward, who sees it early): CEL
/// over `member` and `local`, checked when saved as a rule's condition is, and run with
/// the same values a rule sees, so `member.tier == "gold"` means the same in both.
#[derive(Debug, Clone)]
pub struct MemberCondition {
    program: Arc<Program>,
    fast: Option<Arc<Fast>>,
    vars: u16,
}

impl MemberCondition {
    pub fn compile(field: &'static str, source: &str) -> Result<MemberCondition, DomainError> {
        let (program, vars, _) = compile_expr(field, source, false)?;
        if vars & !(check::vars::MEMBER | check::vars::LOCAL) != 0 {
            return Err(DomainError::InvalidRule {
                field,
                message:
                    "may read only member (not member.visits) and local: there is no basket, partner or event here"
                        .into(),
            });
        }
        let fast = fast::compile(program.expression()).map(Arc::new);
        Ok(MemberCondition {
            program: Arc::new(program),
            fast,
            vars,
        })
    }

    /// Whether the condition holds for `member` at `at` (UTC for `local`). A condition
    /// that fails to run (a type error the checker let through) does not hold, and nor
    /// does one whose evaluation panics: it runs inside a store's write (on SQLite the
    /// single writer thread), which a bug in an evaluator must not bring down.
    pub fn holds(&self, member: &context::MemberFacts, at: Timestamp) -> bool {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.evaluate(member, at))).unwrap_or(false)
    }

    fn evaluate(&self, member: &context::MemberFacts, at: Timestamp) -> bool {
        let facts = Facts {
            partner: None,
            location: None,
            at,
            basket: None,
            member: Some(member),
            event: None,
        };
        let derived = Derived::new(&facts, 0.0);
        let prepared = Prepared::new(&facts, &derived, &[]);
        match &self.fast {
            Some(f) => f.test(&prepared, None),
            None => run(&self.program, &Ctx::new(&prepared, self.vars).root).unwrap_or(false),
        }
    }
}

/// A condition over a whole sale or event (what counts toward a challenge): CEL over
/// the context a rule's condition reads, checked when saved as a rule's is, and run
/// with the same values, so `partner.industry == "drugstore"` means the same in both.
/// The member's visit count is refused: it changes with every sale.
#[derive(Debug, Clone)]
pub struct FactCondition {
    program: Arc<Program>,
    fast: Option<Arc<Fast>>,
    vars: u16,
}

impl FactCondition {
    pub fn compile(field: &'static str, source: &str) -> Result<FactCondition, DomainError> {
        let (program, vars, _) = compile_expr(field, source, false)?;
        if vars & check::vars::VISITS != 0 {
            return Err(DomainError::InvalidRule {
                field,
                message: "may not read member.visits or member.first_visit: they change with every sale".into(),
            });
        }
        let fast = fast::compile(program.expression()).map(Arc::new);
        Ok(FactCondition {
            program: Arc::new(program),
            fast,
            vars,
        })
    }

    /// Whether it reads `member` (then the member's facts must be loaded).
    pub fn reads_member(&self) -> bool {
        self.vars & check::vars::MEMBER != 0
    }

    /// Whether the condition holds for `facts` (`rate`: units of the basket currency
    /// per programme unit). One that fails to run, or panics, does not hold.
    pub fn holds(&self, facts: &Facts<'_>, rate: f64) -> bool {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.evaluate(facts, rate))).unwrap_or(false)
    }

    fn evaluate(&self, facts: &Facts<'_>, rate: f64) -> bool {
        let derived = Derived::new(facts, rate);
        let lines: Vec<&LineFacts> = facts.basket.map(|b| b.lines.iter().collect()).unwrap_or_default();
        let prepared = Prepared::new(facts, &derived, &lines);
        match &self.fast {
            Some(f) => f.test(&prepared, None),
            None => run(&self.program, &Ctx::new(&prepared, self.vars).root).unwrap_or(false),
        }
    }
}

/// What a limit counts: one member's points in one period, or the whole campaign's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitScope {
    /// A per-member cap; `period` is `<period>:<period key>`, e.g. `month:2026-11`.
    Cap {
        period: String,
    },
    Budget,
}

/// A rule's limit: a per-member cap for one period, or the campaign budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    pub scope: LimitScope,
    pub limit: i64,
    /// For the explanation: "per month", "campaign budget".
    pub label: String,
}

impl Limit {
    /// The counter key in the store: per rule for a budget; per member, period and rule
    /// for a cap. A cap's key starts with the member, then the period, so the caps one
    /// sale counts sit side by side in the store's key order (one page, not one per
    /// rule); a budget's key starts with its rule, as rule ids and member ids never
    /// share a prefix.
    pub fn key(&self, rule_id: &RuleId, member_id: &MemberId) -> String {
        match &self.scope {
            LimitScope::Budget => format!("{rule_id}:budget"),
            LimitScope::Cap { period } => format!("{member_id}:{period}:{rule_id}"),
        }
    }

    pub fn is_budget(&self) -> bool {
        self.scope == LimitScope::Budget
    }
}

fn period_key(period: CapPeriod, date: jiff::civil::Date) -> String {
    match period {
        CapPeriod::Day => date.to_string(),
        CapPeriod::Week => {
            let w = date.iso_week_date();
            format!("{}-W{:02}", w.year(), w.week())
        }
        CapPeriod::Month => format!("{:04}-{:02}", date.year(), date.month()),
        CapPeriod::Campaign => "all".into(),
    }
}

/// The limits of a rule for a sale on the local `date`.
pub fn limits(caps: &[Cap], budget: Option<i64>, date: jiff::civil::Date) -> Vec<Limit> {
    let mut out: Vec<Limit> = caps
        .iter()
        .map(|c| Limit {
            scope: LimitScope::Cap {
                period: format!("{}:{}", c.period.as_str(), period_key(c.period, date)),
            },
            limit: c.points,
            label: match c.period {
                CapPeriod::Campaign => "per member".into(),
                p => format!("per member per {}", p.as_str()),
            },
        })
        .collect();
    if let Some(b) = budget {
        out.push(Limit {
            scope: LimitScope::Budget,
            limit: b,
            label: "campaign budget".into(),
        });
    }
    out
}

/// Points a rule would give, before its caps and budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Award {
    pub rule_id: RuleId,
    pub version: i64,
    pub name: String,
    pub points: i64,
    pub limits: Vec<Limit>,
    /// The operator's share of the points in percent ([`super::RuleSpec::operator_percent`]).
    pub operator_percent: u8,
}

impl Award {
    /// The explanation of `points` given by this award: "Double points on cosmetics on
    /// Saturdays: +50".
    pub fn sentence(&self, points: i64) -> String {
        format!("{}: +{points}", self.name)
    }
}

/// What the rules make of a sale or an event before caps and budgets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Evaluation {
    /// Lines excluded from earning (indexes into the basket).
    pub excluded_lines: Vec<usize>,
    /// Their amount, in minor units of the basket currency.
    pub excluded_minor: i64,
    pub awards: Vec<Award>,
    /// Rules that failed at run time (a missing event attribute, a division by zero):
    /// they gave nothing. Rule id and why.
    pub failures: Vec<(String, String)>,
}

/// The active rules of the programme, in the order they run (priority, then id).
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<CompiledRule>,
}

/// Where the evaluation happens: who, what kind, where.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub partner_id: Option<&'a str>,
    pub location_id: Option<&'a str>,
    pub applies_to: AppliesTo,
    pub event_type: Option<&'a str>,
    pub at: Timestamp,
}

/// Base earning figures the effects scale from.
#[derive(Debug, Clone, Copy)]
pub struct Base {
    /// The amount that earns, in programme currency: total minus exclusions minus the
    /// value paid with points.
    pub earning_amount: Decimal,
    pub earn_rate: Decimal,
}

impl RuleSet {
    pub fn new(mut rules: Vec<CompiledRule>) -> Self {
        rules.retain(|r| r.spec.active);
        rules.sort_by(|a, b| b.spec.priority.cmp(&a.spec.priority).then_with(|| a.id.cmp(&b.id)));
        RuleSet { rules }
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    /// The rules that could apply here, in order.
    pub fn candidates<'a>(&'a self, scope: &'a Scope<'a>) -> impl Iterator<Item = &'a CompiledRule> + 'a {
        self.rules.iter().filter(move |r| r.in_scope(scope))
    }

    /// Whether any rule that could apply here reads the member.
    pub fn needs_member(&self, scope: &Scope<'_>) -> bool {
        self.candidates(scope).any(CompiledRule::uses_member)
    }

    /// Whether any rule that could apply here reads the member's visits at the partner
    /// (`visits`, `first_visit`): then the write checks they did not change meanwhile.
    pub fn needs_visits(&self, scope: &Scope<'_>) -> bool {
        self.candidates(scope).any(|r| r.vars & check::vars::VISITS != 0)
    }

    /// Runs the rules that apply: exclusions first, then the rest in priority order with
    /// their stacking. `rate` is units of the basket currency per unit of programme
    /// currency; `base` gives the effects the figures they scale from once the
    /// exclusions are known (it is given the excluded amount).
    pub fn evaluate(
        &self,
        scope: &Scope<'_>,
        facts: &Facts<'_>,
        rate: Decimal,
        base: impl FnOnce(i64) -> Result<Base, DomainError>,
    ) -> Result<Evaluation, DomainError> {
        let candidates: Vec<&CompiledRule> = self.candidates(scope).collect();
        let mut eval = Evaluation::default();
        let all_lines: Vec<&LineFacts> = facts.basket.map(|b| b.lines.iter().collect()).unwrap_or_default();
        let derived = Derived::new(facts, rate.to_f64().unwrap_or(1.0));
        let vars = candidates.iter().fold(0, |acc, r| acc | r.cel_vars);
        let needs_cel = candidates.iter().any(|r| r.needs_cel());
        let prepared_all = Prepared::new(facts, &derived, &all_lines);
        let mut ctx = needs_cel.then(|| Ctx::new(&prepared_all, vars));
        // Exclusions apply before any rule.
        for rule in candidates.iter().filter(|r| matches!(r.spec.effect, Effect::Exclude)) {
            match rule.matching_lines(ctx.as_ref(), &prepared_all, &all_lines) {
                Ok(Some(idx)) => eval.excluded_lines.extend(idx),
                Ok(None) => {}
                Err(e) => eval.failures.push((rule.id.to_string(), e)),
            }
        }
        eval.excluded_lines.sort_unstable();
        eval.excluded_lines.dedup();
        eval.excluded_minor = eval.excluded_lines.iter().map(|&i| all_lines[i].amount_minor()).sum();
        let base = base(eval.excluded_minor)?;
        let kept: Vec<&LineFacts> = all_lines
            .iter()
            .enumerate()
            .filter(|(i, _)| eval.excluded_lines.binary_search(i).is_err())
            .map(|(_, l)| *l)
            .collect();
        let prepared = Prepared::new(facts, &derived, &kept);
        if !eval.excluded_lines.is_empty() && needs_cel {
            ctx = Some(Ctx::new(&prepared, vars));
        }
        let kept_amount: i64 = kept.iter().map(|l| l.amount_minor()).sum();
        let date = derived.local_date;
        let mut best: Option<Award> = None;
        for rule in candidates.iter().filter(|r| !matches!(r.spec.effect, Effect::Exclude)) {
            let points = match rule.points(ctx.as_ref(), &prepared, &kept, kept_amount, &base) {
                Ok(p) => p,
                Err(e) => {
                    eval.failures.push((rule.id.to_string(), e));
                    continue;
                }
            };
            if points <= 0 {
                continue;
            }
            let award = Award {
                rule_id: rule.id.clone(),
                version: rule.version,
                name: rule.spec.name.clone(),
                points,
                limits: limits(&rule.spec.caps, rule.spec.budget, date),
                operator_percent: rule.spec.operator_percent(),
            };
            match rule.spec.stacking {
                Stacking::Stack => eval.awards.push(award),
                Stacking::Stop => {
                    eval.awards.push(award);
                    break;
                }
                Stacking::BestOf => {
                    if best.as_ref().is_none_or(|b| award.points > b.points) {
                        best = Some(award);
                    }
                }
            }
        }
        if let Some(b) = best {
            eval.awards.push(b);
        }
        Ok(eval)
    }
}

/// The CEL context of one evaluation, built once and shared by all rules.
struct Ctx {
    root: Context<'static, 'static>,
}

impl Ctx {
    /// Builds the variables in `vars` (the ones the rules about to run read).
    fn new(p: &Prepared<'_>, vars: u16) -> Self {
        use check::vars::*;
        let facts = p.facts;
        let mut root = Context::with_env(ENV.clone());
        if vars & (BASKET | LINES) != 0 {
            let (basket, list) = context::basket_values(p);
            root.add_variable_from_value("basket", basket);
            root.add_variable_from_value("lines", list);
        }
        if vars & MEMBER != 0 {
            root.add_variable_from_value("member", context::member_value(facts.member, p.derived));
        }
        if vars & PARTNER != 0 {
            root.add_variable_from_value("partner", context::partner_value(facts.partner));
        }
        if vars & LOCATION != 0 {
            root.add_variable_from_value("location", context::location_value(facts.location));
        }
        if vars & LOCAL != 0 {
            root.add_variable_from_value("local", context::local_value(p.derived));
        }
        if vars & EVENT != 0 {
            root.add_variable_from_value("event", context::event_value(facts.event));
        }
        if vars & KIND != 0 {
            let kind = if facts.event.is_some() { "event" } else { "purchase" };
            root.add_variable_from_value("kind", context::s(kind));
        }
        Ctx { root }
    }
}

fn run(program: &Program, ctx: &Context<'_, '_>) -> Result<bool, String> {
    match program.execute(ctx) {
        Ok(Value::Bool(b)) => Ok(b),
        Ok(other) => Err(format!("gave {other:?} instead of true or false")),
        Err(e) => Err(e.to_string()),
    }
}

impl CompiledRule {
    /// Whether the rule reads `member` (then the member's facts must be loaded).
    pub fn uses_member(&self) -> bool {
        self.vars & check::vars::MEMBER != 0
    }

    fn in_scope(&self, scope: &Scope<'_>) -> bool {
        let spec = &self.spec;
        spec.applies_to == scope.applies_to
            && (spec.applies_to == AppliesTo::Purchase || spec.event_type.as_deref() == scope.event_type)
            && spec.partner_id.as_deref().is_none_or(|p| Some(p) == scope.partner_id)
            && (spec.location_ids.is_empty()
                || scope
                    .location_id
                    .is_some_and(|l| spec.location_ids.iter().any(|x| x == l)))
            && self.window.contains(scope.at)
    }

    fn needs_cel(&self) -> bool {
        (self.condition.is_some() && self.fast_condition.is_none())
            || (self.lines.is_some() && self.fast_lines.is_none())
    }

    /// The lines the rule counts when its condition holds (all of them without a line
    /// filter); `None` when the condition does not hold.
    fn matching_lines(
        &self,
        ctx: Option<&Ctx>,
        prepared: &Prepared<'_>,
        lines: &[&LineFacts],
    ) -> Result<Option<Vec<usize>>, String> {
        let cel = || ctx.map(|c| &c.root).ok_or_else(|| "no CEL context".to_string());
        if let Some(cond) = &self.condition {
            let holds = match &self.fast_condition {
                Some(f) => f.test(prepared, None),
                None => run(cond, cel()?)?,
            };
            if !holds {
                return Ok(None);
            }
        }
        let Some(filter) = &self.lines else {
            return Ok(Some((0..lines.len()).collect()));
        };
        if let Some(f) = &self.fast_lines {
            return Ok(Some(
                lines
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| f.test(prepared, Some(l)))
                    .map(|(i, _)| i)
                    .collect(),
            ));
        }
        match filter.execute(cel()?) {
            Ok(Value::List(flags)) if flags.len() == lines.len() => Ok(Some(
                flags
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| matches!(f, Value::Bool(true)))
                    .map(|(i, _)| i)
                    .collect(),
            )),
            Ok(other) => Err(format!(
                "the line filter gave {other:?} instead of true or false per line"
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    fn points(
        &self,
        ctx: Option<&Ctx>,
        prepared: &Prepared<'_>,
        lines: &[&LineFacts],
        kept_amount: i64,
        base: &Base,
    ) -> Result<i64, String> {
        let Some(picked) = self.matching_lines(ctx, prepared, lines)? else {
            return Ok(0);
        };
        if self.lines.is_some() && picked.is_empty() {
            return Ok(0);
        }
        let share = if self.lines.is_none() || kept_amount <= 0 {
            Decimal::ONE
        } else {
            let amount: i64 = picked.iter().map(|&i| lines[i].amount_minor()).sum();
            Decimal::from(amount) / Decimal::from(kept_amount)
        };
        let floor = |d: Decimal| -> i64 {
            d.round_dp_with_strategy(0, RoundingStrategy::ToZero)
                .to_i64()
                .unwrap_or(0)
                .clamp(0, 1_000_000_000_000)
        };
        Ok(match &self.spec.effect {
            Effect::PerAmount { points } => floor(base.earning_amount * share * points),
            Effect::Multiplier { factor } => {
                floor(base.earning_amount * base.earn_rate * share * (factor - Decimal::ONE))
            }
            Effect::Fixed { points } => *points,
            Effect::PerUnit { points, max_units } => {
                let units: i64 = picked.iter().map(|&i| lines[i].quantity).sum();
                let units = max_units.map_or(units, |m| units.min(m));
                units.saturating_mul(*points).clamp(0, 1_000_000_000_000)
            }
            Effect::Exclude => 0,
        })
    }
}

/// Runs `source` in the CEL interpreter over the full context (the reference the fast
/// evaluator is tested against).
#[cfg(test)]
pub(crate) fn interpret(
    source: &str,
    facts: &Facts<'_>,
    lines: &[&LineFacts],
    rate: f64,
    line: Option<&LineFacts>,
) -> Result<bool, String> {
    let program = ENV.compile(source).map_err(|e| e.to_string())?;
    let derived = Derived::new(facts, rate);
    let ctx = Ctx::new(&Prepared::new(facts, &derived, lines), u16::MAX);
    match (line, facts.basket) {
        (Some(l), Some(b)) => {
            let mut scope = ctx.root.new_inner_scope();
            scope.add_variable_from_value("line", context::line_value(l, b.currency));
            run(&program, &scope)
        }
        _ => run(&program, &ctx.root),
    }
}

/// Runs `source` in the fast evaluator, if it has the fast shape.
#[cfg(test)]
pub(crate) fn run_fast(
    source: &str,
    facts: &Facts<'_>,
    lines: &[&LineFacts],
    rate: f64,
    line: Option<&LineFacts>,
) -> Option<bool> {
    let program = ENV.compile(source).ok()?;
    let f = fast::compile(program.expression())?;
    let derived = Derived::new(facts, rate);
    Some(f.test(&Prepared::new(facts, &derived, lines), line))
}
