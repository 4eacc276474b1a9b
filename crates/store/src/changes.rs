//! Changes to what servers cache, as the change feed reports them (PostgreSQL only: a
//! SQLite database belongs to one server).

/// What changed, by the cache it touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Program,
    FxRates,
    Partners,
    Locations,
    ApiKeys,
    Rules,
    /// Anything may have changed (the feed was interrupted): reload every cache.
    Resync,
}

impl Change {
    /// The change a table's announcement stands for.
    pub fn from_table(table: &str) -> Change {
        match table {
            "program" => Change::Program,
            "fx_rates" => Change::FxRates,
            "partners" => Change::Partners,
            "locations" => Change::Locations,
            "api_keys" => Change::ApiKeys,
            "earning_rules" | "event_types" => Change::Rules,
            _ => Change::Resync,
        }
    }
}
