//! Tally's domain: the types and rules of a coalition points programme, free of I/O.
//!
//! The storage crate loads a member's state, asks this crate for a [`plan::Plan`] (the
//! ledger transfers, lot changes and activity a POS transaction causes), and writes it
//! in one database transaction. Every rule about points lives here, so both backends
//! behave the same and the property tests can exercise the rules without a database.

pub mod breakdown;
pub mod challenges;
pub mod decide;
pub mod earning;
pub mod error;
pub mod exchange;
pub mod identity;
pub mod ids;
pub mod ledger;
pub mod lots;
pub mod memberships;
pub mod money;
pub mod plan;
pub mod receipt;
pub mod referrals;
pub mod rewards;
pub mod rules;
pub mod settlement;
pub mod tiers;
pub mod time;
pub mod transfers;
pub mod vouchers;
pub mod wallets;

pub use error::DomainError;
