//! Earning rules: data that says when a sale or an engagement event earns extra points
//! (or none), written with CEL conditions over a documented context, checked when saved,
//! and evaluated in microseconds at the till. docs/RULES.md is the user's guide.

pub mod check;
pub mod context;
pub mod engine;
mod fast;
pub mod spec;

pub use context::{Attr, BasketFacts, EventFacts, Facts, LineFacts, LocationFacts, MemberFacts, PartnerFacts};
pub use engine::{
    Award, Base, CompiledRule, Evaluation, FactCondition, Limit, LimitScope, MemberCondition, RuleSet, Scope, compile,
    limits,
};
pub use spec::{AppliesTo, Cap, CapPeriod, Effect, Funding, MAX_EXPRESSION_LEN, RuleSpec, Stacking, Window};

#[cfg(test)]
mod tests;
