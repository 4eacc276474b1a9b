//! A type checker for rule conditions: every name, field and function a CEL expression
//! uses must exist in the documented context with the right types, and its cost must be
//! bounded, before a rule is saved. The `cel` crate parses and evaluates; it does not
//! check types, so a rule with a typo would otherwise fail silently at every sale.

use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue};

/// Largest list a comprehension can walk: the most lines a basket may have.
pub const MAX_LIST: u64 = 500;
/// The most work (expression nodes visited) a rule may need on the largest basket.
pub const MAX_COST: u64 = 25_000;

/// The objects of the rule context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Obj {
    Basket,
    Line,
    Member,
    Partner,
    Location,
    Local,
    Event,
}

/// A CEL type as far as rule conditions need one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ty {
    Bool,
    Int,
    Double,
    String,
    Null,
    List(Box<Ty>),
    /// Map with string keys.
    Map(Box<Ty>),
    Obj(Obj),
    /// Not known until run time (event attributes).
    Dyn,
}

impl Ty {
    fn name(&self) -> String {
        match self {
            Ty::Bool => "bool".into(),
            Ty::Int => "int".into(),
            Ty::Double => "double".into(),
            Ty::String => "string".into(),
            Ty::Null => "null".into(),
            Ty::List(t) => format!("list of {}", t.name()),
            Ty::Map(t) => format!("map of string to {}", t.name()),
            Ty::Obj(o) => obj_name(*o).into(),
            Ty::Dyn => "dyn".into(),
        }
    }

    /// The name with its article: "an int", "a string".
    fn an(&self) -> String {
        let name = self.name();
        let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        format!("{article} {name}")
    }

    fn is_numeric(&self) -> bool {
        matches!(self, Ty::Int | Ty::Double | Ty::Dyn)
    }

    fn is(&self, want: &Ty) -> bool {
        self == want || *self == Ty::Dyn
    }
}

fn obj_name(o: Obj) -> &'static str {
    match o {
        Obj::Basket => "basket",
        Obj::Line => "line",
        Obj::Member => "member",
        Obj::Partner => "partner",
        Obj::Location => "location",
        Obj::Local => "local",
        Obj::Event => "event",
    }
}

/// The fields of each context object (the same list docs/RULES.md documents).
pub fn fields(o: Obj) -> &'static [(&'static str, &'static str)] {
    match o {
        Obj::Basket => &[
            ("total", "double"),
            ("total_program", "double"),
            ("currency", "string"),
            ("quantity", "int"),
            ("line_count", "int"),
        ],
        Obj::Line => &[
            ("sku", "string"),
            ("category", "string"),
            ("quantity", "int"),
            ("unit_price", "double"),
            ("amount", "double"),
        ],
        Obj::Member => &[
            ("id", "string"),
            ("tier", "string"),
            ("segments", "list of string"),
            ("plan", "string"),
            ("country", "string"),
            ("joined_on", "string"),
            ("days_since_joined", "int"),
            ("visits", "int"),
            ("first_visit", "bool"),
            ("referred_by", "string"),
            ("referral_age_days", "int"),
        ],
        Obj::Partner => &[
            ("id", "string"),
            ("name", "string"),
            ("industry", "string"),
            ("country", "string"),
            ("currency", "string"),
        ],
        Obj::Location => &[
            ("id", "string"),
            ("name", "string"),
            ("city", "string"),
            ("country", "string"),
        ],
        Obj::Local => &[
            ("date", "string"),
            ("time", "string"),
            ("year", "int"),
            ("month", "int"),
            ("day", "int"),
            ("weekday", "string"),
            ("hour", "int"),
            ("minute", "int"),
        ],
        Obj::Event => &[("type", "string"), ("attributes", "map of string to dyn")],
    }
}

fn field_type(o: Obj, field: &str) -> Option<Ty> {
    let (_, t) = fields(o).iter().find(|(f, _)| *f == field)?;
    Some(match *t {
        "double" => Ty::Double,
        "string" => Ty::String,
        "int" => Ty::Int,
        "bool" => Ty::Bool,
        "list of line" => Ty::List(Box::new(Ty::Obj(Obj::Line))),
        "list of string" => Ty::List(Box::new(Ty::String)),
        _ => Ty::Map(Box::new(Ty::Dyn)),
    })
}

/// The variables a condition sees; a line filter also sees `line`.
pub fn root_variables(with_line: bool) -> Vec<(String, Ty)> {
    let mut vars = vec![
        ("basket".to_string(), Ty::Obj(Obj::Basket)),
        ("lines".to_string(), Ty::List(Box::new(Ty::Obj(Obj::Line)))),
        ("member".to_string(), Ty::Obj(Obj::Member)),
        ("partner".to_string(), Ty::Obj(Obj::Partner)),
        ("location".to_string(), Ty::Obj(Obj::Location)),
        ("local".to_string(), Ty::Obj(Obj::Local)),
        ("event".to_string(), Ty::Obj(Obj::Event)),
        ("kind".to_string(), Ty::String),
    ];
    if with_line {
        vars.push(("line".to_string(), Ty::Obj(Obj::Line)));
    }
    vars
}

/// A refusal: which node, and why in plain words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckError {
    pub expr_id: u64,
    pub message: String,
}

fn err<T>(e: &IdedExpr, message: impl Into<String>) -> Result<T, CheckError> {
    Err(CheckError {
        expr_id: e.id,
        message: message.into(),
    })
}

/// What checking found: the type, the worst-case cost, and whether `member` is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub ty: Ty,
    pub cost: u64,
}

struct Checker {
    scope: Vec<(String, Ty)>,
    roots: usize,
    used: u16,
}

/// The context variables an expression reads, one bit each in the order of
/// [`root_variables`]: an evaluation builds only those.
pub mod vars {
    pub const BASKET: u16 = 1 << 0;
    pub const LINES: u16 = 1 << 1;
    pub const MEMBER: u16 = 1 << 2;
    pub const PARTNER: u16 = 1 << 3;
    pub const LOCATION: u16 = 1 << 4;
    pub const LOCAL: u16 = 1 << 5;
    pub const EVENT: u16 = 1 << 6;
    pub const KIND: u16 = 1 << 7;
    /// Not a variable: the expression reads `member.visits` or `member.first_visit`,
    /// facts that change with every sale of the member at the partner.
    pub const VISITS: u16 = 1 << 15;
}

/// Checks `expr` against the context; `with_line` for line filters. Returns what it
/// found and the context variables it reads (see [`vars`]).
pub fn check(expr: &IdedExpr, with_line: bool) -> Result<(Checked, u16), CheckError> {
    let scope = root_variables(with_line);
    let mut c = Checker {
        roots: scope.len(),
        scope,
        used: 0,
    };
    let checked = c.expr(expr)?;
    Ok((checked, c.used))
}

const FUNCTIONS: &str =
    "size, contains, startsWith, endsWith, int, double, string, has, in, exists, all, exists_one, map, filter";

impl Checker {
    fn lookup(&mut self, name: &str) -> Option<Ty> {
        let i = self.scope.iter().rposition(|(n, _)| n == name)?;
        if i < self.roots && i < 16 {
            self.used |= 1 << i;
        }
        Some(self.scope[i].1.clone())
    }

    fn expr(&mut self, e: &IdedExpr) -> Result<Checked, CheckError> {
        let leaf = |ty| Ok(Checked { ty, cost: 1 });
        match &e.expr {
            Expr::Literal(l) => leaf(match l {
                LiteralValue::Boolean(_) => Ty::Bool,
                LiteralValue::Int(_) | LiteralValue::UInt(_) => Ty::Int,
                LiteralValue::Double(_) => Ty::Double,
                LiteralValue::String(_) => Ty::String,
                LiteralValue::Null => Ty::Null,
                LiteralValue::Bytes(_) => return err(e, "bytes are not used in rules"),
            }),
            Expr::Ident(name) => match self.lookup(name) {
                Some(ty) => leaf(ty),
                None => {
                    let known: Vec<String> = self
                        .scope
                        .iter()
                        .filter(|(n, _)| !n.starts_with('@'))
                        .map(|(n, _)| n.clone())
                        .collect();
                    err(e, format!("unknown name `{name}`; a rule can use {}", known.join(", ")))
                }
            },
            Expr::Select(s) => {
                if matches!(&s.operand.expr, Expr::Ident(r) if r == "member")
                    && matches!(s.field.as_str(), "visits" | "first_visit")
                {
                    self.used |= vars::VISITS;
                }
                let operand = self.expr(&s.operand)?;
                let ty = match &operand.ty {
                    Ty::Obj(o) => match field_type(*o, &s.field) {
                        Some(t) => t,
                        None => {
                            let names: Vec<&str> = fields(*o).iter().map(|(f, _)| *f).collect();
                            return err(
                                e,
                                format!(
                                    "`{}` has no field `{}`; its fields are {}",
                                    obj_name(*o),
                                    s.field,
                                    names.join(", ")
                                ),
                            );
                        }
                    },
                    Ty::Map(v) => (**v).clone(),
                    Ty::Dyn => Ty::Dyn,
                    other => return err(e, format!("cannot read field `{}` of {}", s.field, other.an())),
                };
                Ok(Checked {
                    ty: if s.test { Ty::Bool } else { ty },
                    cost: operand.cost + 1,
                })
            }
            Expr::List(list) => {
                let mut cost = 1;
                let mut elem: Option<Ty> = None;
                for item in &list.elements {
                    let c = self.expr(item)?;
                    cost += c.cost;
                    elem = Some(match elem {
                        None => c.ty,
                        Some(t) if t == c.ty => t,
                        Some(_) => Ty::Dyn,
                    });
                }
                Ok(Checked {
                    ty: Ty::List(Box::new(elem.unwrap_or(Ty::Dyn))),
                    cost,
                })
            }
            Expr::Map(map) => {
                let mut cost = 1;
                for entry in &map.entries {
                    match &entry.expr {
                        EntryExpr::MapEntry(m) => {
                            let k = self.expr(&m.key)?;
                            if !k.ty.is(&Ty::String) {
                                return err(&m.key, "map keys in rules are strings");
                            }
                            cost += k.cost + self.expr(&m.value)?.cost;
                        }
                        EntryExpr::StructField(_) => return err(e, "messages are not used in rules"),
                    }
                }
                Ok(Checked {
                    ty: Ty::Map(Box::new(Ty::Dyn)),
                    cost,
                })
            }
            Expr::Struct(_) => err(e, "messages are not used in rules"),
            Expr::Unspecified => err(e, "incomplete expression"),
            Expr::Comprehension(c) => {
                let range = self.expr(&c.iter_range)?;
                let (bound, vars) = match &range.ty {
                    Ty::List(t) => (list_bound(&c.iter_range), vec![(Ty::Int, (**t).clone())]),
                    Ty::Map(v) => (MAX_LIST, vec![(Ty::String, (**v).clone())]),
                    Ty::Dyn => (MAX_LIST, vec![(Ty::Dyn, Ty::Dyn)]),
                    other => return err(&c.iter_range, format!("cannot loop over {}", other.an())),
                };
                let (first, second) = vars[0].clone();
                let init = self.expr(&c.accu_init)?;
                let depth = self.scope.len();
                match &c.iter_var2 {
                    Some(v2) => {
                        self.scope.push((c.iter_var.clone(), first));
                        self.scope.push((v2.clone(), second));
                    }
                    None => {
                        let one = if matches!(range.ty, Ty::Map(_)) { first } else { second };
                        self.scope.push((c.iter_var.clone(), one));
                    }
                }
                self.scope.push((c.accu_var.clone(), init.ty.clone()));
                let cond = self.expr(&c.loop_cond)?;
                let step = self.expr(&c.loop_step)?;
                self.scope.truncate(depth);
                self.scope.push((c.accu_var.clone(), step.ty.clone()));
                let result = self.expr(&c.result)?;
                self.scope.truncate(depth);
                let cost = range
                    .cost
                    .saturating_add(init.cost)
                    .saturating_add(bound.saturating_mul(cond.cost.saturating_add(step.cost)))
                    .saturating_add(result.cost);
                if cost > MAX_COST {
                    return err(
                        e,
                        format!(
                            "too costly: this loop could take {cost} steps on a basket of {MAX_LIST} lines (at most {MAX_COST}); avoid loops inside loops"
                        ),
                    );
                }
                Ok(Checked { ty: result.ty, cost })
            }
            Expr::Call(call) => self.call(e, &call.func_name, call.target.as_deref(), &call.args),
        }
    }

    fn call(
        &mut self,
        e: &IdedExpr,
        name: &str,
        target: Option<&IdedExpr>,
        args: &[IdedExpr],
    ) -> Result<Checked, CheckError> {
        let mut cost = 1u64;
        let target_ty = match target {
            Some(t) => {
                let c = self.expr(t)?;
                cost += c.cost;
                Some(c.ty)
            }
            None => None,
        };
        let mut tys = Vec::with_capacity(args.len());
        for a in args {
            let c = self.expr(a)?;
            cost = cost.saturating_add(c.cost);
            tys.push(c.ty);
        }
        if cost > MAX_COST {
            return err(e, format!("too costly: could take {cost} steps (at most {MAX_COST})"));
        }
        let ty = match (name, target_ty.as_ref(), tys.as_slice()) {
            ("_&&_" | "_||_", None, [a, b]) => {
                for (t, arg) in [(a, &args[0]), (b, &args[1])] {
                    if !t.is(&Ty::Bool) {
                        return err(
                            arg,
                            format!("`&&` and `||` need true/false on both sides, not {}", t.an()),
                        );
                    }
                }
                Ty::Bool
            }
            ("!_", None, [a]) => {
                if !a.is(&Ty::Bool) {
                    return err(e, format!("`!` needs true/false, not {}", a.an()));
                }
                Ty::Bool
            }
            ("@not_strictly_false", None, [_]) => Ty::Bool,
            ("-_", None, [a]) if a.is_numeric() => a.clone(),
            ("_==_" | "_!=_", None, [a, b]) => {
                if !comparable(a, b) {
                    return err(e, format!("cannot compare {} with {}", a.an(), b.an()));
                }
                Ty::Bool
            }
            ("_<_" | "_<=_" | "_>_" | "_>=_", None, [a, b]) => {
                let ok = (a.is_numeric() && b.is_numeric())
                    || (a.is(&Ty::String) && b.is(&Ty::String))
                    || *a == Ty::Dyn
                    || *b == Ty::Dyn;
                if !ok {
                    return err(e, format!("cannot order {} against {}", a.an(), b.an()));
                }
                Ty::Bool
            }
            ("_+_", None, [a, b]) => match (a, b) {
                (Ty::String, Ty::String) => Ty::String,
                (Ty::List(x), Ty::List(y)) => Ty::List(Box::new(if x == y { (**x).clone() } else { Ty::Dyn })),
                _ => arithmetic(e, "+", a, b)?,
            },
            ("_-_" | "_*_" | "_/_", None, [a, b]) => arithmetic(e, &name[1..2], a, b)?,
            ("_%_", None, [a, b]) => {
                if !(a.is(&Ty::Int) && b.is(&Ty::Int)) {
                    return err(e, "`%` works on whole numbers (int)");
                }
                Ty::Int
            }
            ("_?_:_", None, [c, a, b]) => {
                if !c.is(&Ty::Bool) {
                    return err(
                        &args[0],
                        format!("the condition of `? :` must be true/false, not {}", c.an()),
                    );
                }
                if a == b { a.clone() } else { Ty::Dyn }
            }
            ("_[_]", None, [coll, key]) => match coll {
                Ty::List(t) if key.is(&Ty::Int) => (**t).clone(),
                Ty::Map(v) if key.is(&Ty::String) => (**v).clone(),
                Ty::Dyn => Ty::Dyn,
                _ => return err(e, format!("cannot index {} with {}", coll.an(), key.an())),
            },
            ("@in", None, [item, coll]) => match coll {
                Ty::List(t) if comparable(item, t) => Ty::Bool,
                Ty::Map(_) if item.is(&Ty::String) => Ty::Bool,
                Ty::Dyn => Ty::Bool,
                _ => return err(e, format!("cannot look for {} in {}", item.an(), coll.an())),
            },
            ("size", None, [a]) | ("size", Some(a), []) => match a {
                Ty::String | Ty::List(_) | Ty::Map(_) | Ty::Dyn => Ty::Int,
                _ => return err(e, format!("size() works on text, lists and maps, not {}", a.an())),
            },
            ("contains" | "startsWith" | "endsWith", Some(t), [a]) => {
                if !(t.is(&Ty::String) && a.is(&Ty::String)) {
                    return err(e, format!("{name}() works on text: \"abc\".{name}(\"b\")"));
                }
                Ty::Bool
            }
            ("int", None, [Ty::Int | Ty::Double | Ty::String | Ty::Dyn]) => Ty::Int,
            ("double", None, [Ty::Int | Ty::Double | Ty::String | Ty::Dyn]) => Ty::Double,
            ("string", None, [a]) if !matches!(a, Ty::Obj(_)) => Ty::String,
            _ => {
                let shown = name.trim_matches('_').replace('_', " ");
                return err(
                    e,
                    format!(
                        "unknown function or wrong arguments: `{shown}` with {} argument(s); rules can use {FUNCTIONS} and the usual operators",
                        args.len() + usize::from(target.is_some())
                    ),
                );
            }
        };
        Ok(Checked { ty, cost })
    }
}

fn comparable(a: &Ty, b: &Ty) -> bool {
    a == b || *a == Ty::Dyn || *b == Ty::Dyn || *a == Ty::Null || *b == Ty::Null || (a.is_numeric() && b.is_numeric())
}

fn arithmetic(e: &IdedExpr, op: &str, a: &Ty, b: &Ty) -> Result<Ty, CheckError> {
    match (a, b) {
        (Ty::Int, Ty::Int) => Ok(Ty::Int),
        (Ty::Double, Ty::Double) => Ok(Ty::Double),
        (Ty::Dyn, t) | (t, Ty::Dyn) if t.is_numeric() => Ok(Ty::Dyn),
        (Ty::Int, Ty::Double) | (Ty::Double, Ty::Int) => err(
            e,
            format!("`{op}` mixes a whole number (int) and a decimal (double); write double(x) or 2.0 instead of 2"),
        ),
        _ => err(e, format!("cannot use `{op}` on {} and {}", a.an(), b.an())),
    }
}

/// How many items a comprehension may walk: a list literal's length, the sum for joined
/// lists, otherwise the largest basket.
fn list_bound(range: &IdedExpr) -> u64 {
    match &range.expr {
        Expr::List(l) => l.elements.len() as u64,
        // Joined lists: as long as both together.
        Expr::Call(c) if c.func_name == "_+_" && c.args.len() == 2 => {
            list_bound(&c.args[0]).saturating_add(list_bound(&c.args[1]))
        }
        // `map` and `filter` give at most as many items as they walk.
        Expr::Comprehension(c) => list_bound(&c.iter_range),
        _ => MAX_LIST,
    }
}
