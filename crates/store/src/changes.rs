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
    /// The change an announcement `<schema>.<table>` stands for, or `None` when it is
    /// another schema's (another deployment sharing the database).
    pub fn from_payload(payload: &str, schema: &str) -> Option<Change> {
        match payload.split_once('.') {
            Some((s, table)) if s == schema => Some(Change::from_table(table)),
            Some(_) => None,
            None => Some(Change::Resync),
        }
    }

    /// The change a table's announcement stands for.
    pub fn from_table(table: &str) -> Change {
        match table {
            "program" | "membership_plans" => Change::Program,
            "fx_rates" => Change::FxRates,
            "partners" => Change::Partners,
            "locations" => Change::Locations,
            "api_keys" => Change::ApiKeys,
            "earning_rules" | "event_types" | "challenges" => Change::Rules,
            _ => Change::Resync,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Change;

    #[test]
    fn a_server_acts_on_its_own_schema_only() {
        assert_eq!(Change::from_payload("public.api_keys", "public"), Some(Change::ApiKeys));
        assert_eq!(Change::from_payload("t_1.earning_rules", "t_1"), Some(Change::Rules));
        assert_eq!(Change::from_payload("t_2.api_keys", "t_1"), None);
        assert_eq!(Change::from_payload("public.unknown", "public"), Some(Change::Resync));
    }
}
