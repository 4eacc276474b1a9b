//! A native evaluator for the common shape of rule conditions and line filters: fields
//! of the context compared with literals, `in` a literal list or `member.segments`,
//! text tests, `&&`, `||`, `!`, and `lines.exists(l, …)` / `lines.all(l, …)` over such a
//! test of a line. Such expressions run without building CEL values (tens of
//! nanoseconds per line instead of microseconds); anything else runs in the `cel`
//! interpreter. A differential test checks both give the same answers.

use super::context::{LineFacts, Prepared};
use cel::common::ast::{ComprehensionExpr, Expr, IdedExpr, LiteralValue};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lit {
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Bool,
    Int,
    Double,
    Str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    BasketTotal,
    BasketTotalProgram,
    BasketCurrency,
    BasketQuantity,
    BasketLineCount,
    LineSku,
    LineCategory,
    LineQuantity,
    LineUnitPrice,
    LineAmount,
    MemberId,
    MemberTier,
    MemberPlan,
    MemberCountry,
    MemberJoinedOn,
    MemberDaysSinceJoined,
    MemberVisits,
    MemberFirstVisit,
    MemberReferredBy,
    MemberReferralAgeDays,
    PartnerId,
    PartnerName,
    PartnerIndustry,
    PartnerCountry,
    PartnerCurrency,
    LocationId,
    LocationName,
    LocationCity,
    LocationCountry,
    LocalDate,
    LocalTime,
    LocalYear,
    LocalMonth,
    LocalDay,
    LocalWeekday,
    LocalHour,
    LocalMinute,
    EventType,
    Kind,
}

fn field(root: &str, name: &str) -> Option<(Field, Ty)> {
    use Field::*;
    use Ty::{Bool as B, Double as D, Int as I, Str as S};
    Some(match (root, name) {
        ("basket", "total") => (BasketTotal, D),
        ("basket", "total_program") => (BasketTotalProgram, D),
        ("basket", "currency") => (BasketCurrency, S),
        ("basket", "quantity") => (BasketQuantity, I),
        ("basket", "line_count") => (BasketLineCount, I),
        ("line", "sku") => (LineSku, S),
        ("line", "category") => (LineCategory, S),
        ("line", "quantity") => (LineQuantity, I),
        ("line", "unit_price") => (LineUnitPrice, D),
        ("line", "amount") => (LineAmount, D),
        ("member", "id") => (MemberId, S),
        ("member", "tier") => (MemberTier, S),
        ("member", "plan") => (MemberPlan, S),
        ("member", "country") => (MemberCountry, S),
        ("member", "joined_on") => (MemberJoinedOn, S),
        ("member", "days_since_joined") => (MemberDaysSinceJoined, I),
        ("member", "visits") => (MemberVisits, I),
        ("member", "first_visit") => (MemberFirstVisit, B),
        ("member", "referred_by") => (MemberReferredBy, S),
        ("member", "referral_age_days") => (MemberReferralAgeDays, I),
        ("partner", "id") => (PartnerId, S),
        ("partner", "name") => (PartnerName, S),
        ("partner", "industry") => (PartnerIndustry, S),
        ("partner", "country") => (PartnerCountry, S),
        ("partner", "currency") => (PartnerCurrency, S),
        ("location", "id") => (LocationId, S),
        ("location", "name") => (LocationName, S),
        ("location", "city") => (LocationCity, S),
        ("location", "country") => (LocationCountry, S),
        ("local", "date") => (LocalDate, S),
        ("local", "time") => (LocalTime, S),
        ("local", "year") => (LocalYear, I),
        ("local", "month") => (LocalMonth, I),
        ("local", "day") => (LocalDay, I),
        ("local", "weekday") => (LocalWeekday, S),
        ("local", "hour") => (LocalHour, I),
        ("local", "minute") => (LocalMinute, I),
        ("event", "type") => (EventType, S),
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextOp {
    Contains,
    StartsWith,
    EndsWith,
}

/// A compiled fast expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Fast {
    Lit(Lit),
    Field(Field),
    Not(Box<Fast>),
    And(Box<Fast>, Box<Fast>),
    Or(Box<Fast>, Box<Fast>),
    Cmp(Cmp, Box<Fast>, Box<Fast>),
    In(Box<Fast>, Vec<Lit>),
    InSegments(Box<Fast>),
    SegmentCount,
    LineCount,
    Text(TextOp, Box<Fast>, Box<Fast>),
    /// `lines.exists(l, …)`: the test holds for some line of the basket.
    AnyLine(Box<Fast>),
    /// `lines.all(l, …)`: the test holds for every line (and for no lines).
    EveryLine(Box<Fast>),
}

/// The names an expression reads a line by: `line` in a line filter, or the variable
/// of the `lines.exists` / `lines.all` it is inside.
#[derive(Clone, Copy)]
struct Names<'a> {
    line: &'a str,
    /// Inside a comprehension (no second one nests in it).
    nested: bool,
}

const TOP: Names<'static> = Names {
    line: "line",
    nested: false,
};

/// The context's own variables: a comprehension's variable may not hide one.
const ROOTS: [&str; 8] = [
    "basket", "lines", "member", "partner", "location", "local", "event", "kind",
];

/// Compiles `e` if it has the fast shape; `None` sends it to the CEL interpreter.
pub(crate) fn compile(e: &IdedExpr) -> Option<Fast> {
    let (f, kind) = node(e, TOP)?;
    (kind == Ty::Bool).then_some(f)
}

fn lit(e: &IdedExpr) -> Option<(Lit, Ty)> {
    match &e.expr {
        Expr::Literal(LiteralValue::Boolean(b)) => Some((Lit::Bool(*b.inner()), Ty::Bool)),
        Expr::Literal(LiteralValue::Int(i)) => Some((Lit::Int(*i.inner()), Ty::Int)),
        Expr::Literal(LiteralValue::Double(d)) => Some((Lit::Double(*d.inner()), Ty::Double)),
        Expr::Literal(LiteralValue::String(s)) => Some((Lit::Str(s.inner().to_string()), Ty::Str)),
        _ => None,
    }
}

fn is_path(e: &IdedExpr, root: &str, name: &str) -> bool {
    matches!(&e.expr, Expr::Select(s) if !s.test && s.field == name && matches!(&s.operand.expr, Expr::Ident(r) if r == root))
}

/// `lines.exists(v, test)` or `lines.all(v, test)` as the parser expands them: a
/// comprehension over `lines` whose step ORs (or ANDs) the test into an accumulator
/// that starts false (or true) and is the result.
fn over_lines(c: &ComprehensionExpr, names: Names<'_>) -> Option<(Fast, Ty)> {
    let is_accu = |e: &IdedExpr| matches!(&e.expr, Expr::Ident(n) if *n == c.accu_var);
    if names.nested
        || c.iter_var2.is_some()
        || !matches!(&c.iter_range.expr, Expr::Ident(n) if n == "lines")
        || ROOTS.contains(&c.iter_var.as_str())
        || c.iter_var == c.accu_var
        || !is_accu(&c.result)
    {
        return None;
    }
    let exists = match &c.accu_init.expr {
        Expr::Literal(LiteralValue::Boolean(b)) => !*b.inner(),
        _ => return None,
    };
    let Expr::Call(step) = &c.loop_step.expr else {
        return None;
    };
    let join = if exists { "_||_" } else { "_&&_" };
    let [accu, test] = step.args.as_slice() else {
        return None;
    };
    if step.func_name != join || step.target.is_some() || !is_accu(accu) {
        return None;
    }
    let inner = Names {
        line: &c.iter_var,
        nested: true,
    };
    let (test, k) = node(test, inner)?;
    (k == Ty::Bool).then(|| {
        let test = Box::new(test);
        (
            if exists {
                Fast::AnyLine(test)
            } else {
                Fast::EveryLine(test)
            },
            Ty::Bool,
        )
    })
}

fn node(e: &IdedExpr, names: Names<'_>) -> Option<(Fast, Ty)> {
    if let Some((l, k)) = lit(e) {
        return Some((Fast::Lit(l), k));
    }
    match &e.expr {
        Expr::Select(s) if !s.test => {
            let Expr::Ident(root) = &s.operand.expr else {
                return None;
            };
            // A line is read by the name in scope; `line` itself, hidden by a
            // comprehension's variable, is left to the interpreter.
            let root = match root.as_str() {
                r if r == names.line => "line",
                "line" => return None,
                r => r,
            };
            let (f, k) = field(root, &s.field)?;
            Some((Fast::Field(f), k))
        }
        Expr::Ident(name) if name == "kind" => Some((Fast::Field(Field::Kind), Ty::Str)),
        Expr::Comprehension(c) => over_lines(c, names),
        Expr::Call(call) => {
            let args = &call.args;
            match (call.func_name.as_str(), call.target.as_deref(), args.as_slice()) {
                ("_&&_" | "_||_", None, [a, b]) => {
                    let (a, ka) = node(a, names)?;
                    let (b, kb) = node(b, names)?;
                    if ka != Ty::Bool || kb != Ty::Bool {
                        return None;
                    }
                    let (a, b) = (Box::new(a), Box::new(b));
                    Some((
                        if call.func_name == "_&&_" {
                            Fast::And(a, b)
                        } else {
                            Fast::Or(a, b)
                        },
                        Ty::Bool,
                    ))
                }
                ("!_", None, [a]) => {
                    let (a, k) = node(a, names)?;
                    (k == Ty::Bool).then(|| (Fast::Not(Box::new(a)), Ty::Bool))
                }
                (op @ ("_==_" | "_!=_" | "_<_" | "_<=_" | "_>_" | "_>=_"), None, [a, b]) => {
                    let (a, ka) = node(a, names)?;
                    let (b, kb) = node(b, names)?;
                    // Only same-kind comparisons; mixed numbers go to the interpreter.
                    if ka != kb || (ka == Ty::Bool && !matches!(op, "_==_" | "_!=_")) {
                        return None;
                    }
                    let cmp = match op {
                        "_==_" => Cmp::Eq,
                        "_!=_" => Cmp::Ne,
                        "_<_" => Cmp::Lt,
                        "_<=_" => Cmp::Le,
                        "_>_" => Cmp::Gt,
                        _ => Cmp::Ge,
                    };
                    Some((Fast::Cmp(cmp, Box::new(a), Box::new(b)), Ty::Bool))
                }
                ("@in", None, [item, coll]) => {
                    let (item, k) = node(item, names)?;
                    if is_path(coll, "member", "segments") {
                        return (k == Ty::Str).then(|| (Fast::InSegments(Box::new(item)), Ty::Bool));
                    }
                    let Expr::List(list) = &coll.expr else { return None };
                    let mut lits = Vec::with_capacity(list.elements.len());
                    for el in &list.elements {
                        let (l, kl) = lit(el)?;
                        if kl != k {
                            return None;
                        }
                        lits.push(l);
                    }
                    Some((Fast::In(Box::new(item), lits), Ty::Bool))
                }
                ("size", None, [a]) | ("size", Some(a), []) => {
                    if is_path(a, "member", "segments") {
                        Some((Fast::SegmentCount, Ty::Int))
                    } else if matches!(&a.expr, Expr::Ident(n) if n == "lines") {
                        Some((Fast::LineCount, Ty::Int))
                    } else {
                        None
                    }
                }
                (op @ ("contains" | "startsWith" | "endsWith"), Some(t), [a]) => {
                    let (t, kt) = node(t, names)?;
                    let (a, ka) = node(a, names)?;
                    if kt != Ty::Str || ka != Ty::Str {
                        return None;
                    }
                    let op = match op {
                        "contains" => TextOp::Contains,
                        "startsWith" => TextOp::StartsWith,
                        _ => TextOp::EndsWith,
                    };
                    Some((Fast::Text(op, Box::new(t), Box::new(a)), Ty::Bool))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum V<'a> {
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(&'a str),
}

fn lit_value(l: &Lit) -> V<'_> {
    match l {
        Lit::Bool(b) => V::Bool(*b),
        Lit::Int(i) => V::Int(*i),
        Lit::Double(d) => V::Double(*d),
        Lit::Str(s) => V::Str(s),
    }
}

impl Fast {
    /// Evaluates the expression (its result is always true or false).
    pub(crate) fn test(&self, p: &Prepared<'_>, line: Option<&LineFacts>) -> bool {
        matches!(self.eval(p, line), V::Bool(true))
    }

    fn eval<'s>(&'s self, p: &'s Prepared<'_>, line: Option<&'s LineFacts>) -> V<'s> {
        match self {
            Fast::Lit(l) => lit_value(l),
            Fast::Field(f) => field_value(*f, p, line),
            Fast::Not(a) => V::Bool(!a.test(p, line)),
            Fast::And(a, b) => V::Bool(a.test(p, line) && b.test(p, line)),
            Fast::Or(a, b) => V::Bool(a.test(p, line) || b.test(p, line)),
            Fast::Cmp(op, a, b) => {
                let ord = match (a.eval(p, line), b.eval(p, line)) {
                    (V::Int(x), V::Int(y)) => x.partial_cmp(&y),
                    (V::Double(x), V::Double(y)) => x.partial_cmp(&y),
                    (V::Str(x), V::Str(y)) => x.partial_cmp(y),
                    (V::Bool(x), V::Bool(y)) => x.partial_cmp(&y),
                    _ => None,
                };
                V::Bool(match (op, ord) {
                    (Cmp::Ne, None) => true,
                    (_, None) => false,
                    (Cmp::Eq, Some(o)) => o.is_eq(),
                    (Cmp::Ne, Some(o)) => o.is_ne(),
                    (Cmp::Lt, Some(o)) => o.is_lt(),
                    (Cmp::Le, Some(o)) => o.is_le(),
                    (Cmp::Gt, Some(o)) => o.is_gt(),
                    (Cmp::Ge, Some(o)) => o.is_ge(),
                })
            }
            Fast::In(item, lits) => {
                let v = item.eval(p, line);
                V::Bool(lits.iter().any(|l| lit_value(l) == v))
            }
            Fast::InSegments(item) => {
                let v = item.eval(p, line);
                let segments = p.facts.member.map(|m| m.segments.as_slice()).unwrap_or_default();
                V::Bool(matches!(v, V::Str(s) if segments.iter().any(|x| x == s)))
            }
            Fast::SegmentCount => V::Int(p.facts.member.map_or(0, |m| m.segments.len() as i64)),
            Fast::LineCount => V::Int(p.lines.len() as i64),
            Fast::AnyLine(test) => V::Bool(p.lines.iter().any(|l| test.test(p, Some(l)))),
            Fast::EveryLine(test) => V::Bool(p.lines.iter().all(|l| test.test(p, Some(l)))),
            Fast::Text(op, t, a) => match (t.eval(p, line), a.eval(p, line)) {
                (V::Str(t), V::Str(a)) => V::Bool(match op {
                    TextOp::Contains => t.contains(a),
                    TextOp::StartsWith => t.starts_with(a),
                    TextOp::EndsWith => t.ends_with(a),
                }),
                _ => V::Bool(false),
            },
        }
    }
}

fn field_value<'s>(f: Field, p: &'s Prepared<'_>, line: Option<&'s LineFacts>) -> V<'s> {
    use Field::*;
    let (facts, d) = (p.facts, p.derived);
    let major = |minor: i64| V::Double(minor as f64 / 10f64.powi(d.exponent));
    let member = facts.member;
    let opt = |s: Option<&'s String>| V::Str(s.map(String::as_str).unwrap_or(""));
    match f {
        BasketTotal => V::Double(d.total),
        BasketTotalProgram => V::Double(d.total_program),
        BasketCurrency => V::Str(facts.basket.map(|b| b.currency.code()).unwrap_or("")),
        BasketQuantity => V::Int(p.quantity),
        BasketLineCount => V::Int(p.lines.len() as i64),
        LineSku => V::Str(line.map_or("", |l| l.sku.as_str())),
        LineCategory => V::Str(line.map_or("", |l| l.category.as_str())),
        LineQuantity => V::Int(line.map_or(0, |l| l.quantity)),
        LineUnitPrice => major(line.map_or(0, |l| l.unit_price_minor)),
        LineAmount => major(line.map_or(0, |l| l.amount_minor())),
        MemberId => V::Str(member.map_or("", |m| m.id.as_str())),
        MemberTier => opt(member.and_then(|m| m.tier.as_ref())),
        MemberPlan => opt(member.and_then(|m| m.plan.as_ref())),
        MemberCountry => opt(member.and_then(|m| m.country.as_ref())),
        MemberJoinedOn => V::Str(&d.joined_on),
        MemberDaysSinceJoined => V::Int(d.days),
        MemberVisits => V::Int(member.map_or(0, |m| m.visits)),
        MemberFirstVisit => V::Bool(member.is_some_and(|m| !m.id.is_empty() && m.visits == 0)),
        MemberReferredBy => opt(member.and_then(|m| m.referred_by.as_ref())),
        MemberReferralAgeDays => V::Int(d.referral_days),
        PartnerId => V::Str(facts.partner.map_or("", |x| x.id.as_str())),
        PartnerName => V::Str(facts.partner.map_or("", |x| x.name.as_str())),
        PartnerIndustry => V::Str(facts.partner.map_or("", |x| x.industry.as_str())),
        PartnerCountry => V::Str(facts.partner.map_or("", |x| x.country.as_str())),
        PartnerCurrency => V::Str(facts.partner.map_or("", |x| x.currency.as_str())),
        LocationId => V::Str(facts.location.map_or("", |x| x.id.as_str())),
        LocationName => V::Str(facts.location.map_or("", |x| x.name.as_str())),
        LocationCity => V::Str(facts.location.map_or("", |x| x.city.as_str())),
        LocationCountry => V::Str(facts.location.map_or("", |x| x.country.as_str())),
        LocalDate => V::Str(&d.date),
        LocalTime => V::Str(&d.time),
        LocalYear => V::Int(d.ymd.0),
        LocalMonth => V::Int(d.ymd.1),
        LocalDay => V::Int(d.ymd.2),
        LocalWeekday => V::Str(d.weekday),
        LocalHour => V::Int(d.hm.0),
        LocalMinute => V::Int(d.hm.1),
        EventType => V::Str(facts.event.map_or("purchase", |e| e.event_type.as_str())),
        Kind => V::Str(if facts.event.is_some() { "event" } else { "purchase" }),
    }
}
