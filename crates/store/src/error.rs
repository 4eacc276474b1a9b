//! Storage errors. The domain's refusals pass through as they are; a database failure
//! keeps the driver's error as its `source`, and is told apart by what it means for a
//! caller (try again, or a fault) from the driver's codes, never from message text.

use tally_domain::DomainError;

/// What a request named and the store did not find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Member,
    Partner,
    Transaction,
    Rule,
    Event,
    ApiKey,
    Membership,
    MembershipPlan,
    Wallet,
    Reward,
    Redemption,
    Voucher,
    /// The member a transfer is sent to.
    Recipient,
    Transfer,
    ExchangePartner,
    ExchangeOrder,
    ExchangeCredit,
}

impl Entity {
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::Member => "member",
            Entity::Partner => "partner",
            Entity::Transaction => "transaction",
            Entity::Rule => "rule",
            Entity::Event => "event",
            Entity::ApiKey => "api key",
            Entity::Membership => "membership",
            Entity::MembershipPlan => "membership_plan",
            Entity::Wallet => "wallet",
            Entity::Reward => "reward",
            Entity::Redemption => "redemption",
            Entity::Voucher => "voucher",
            Entity::Recipient => "recipient",
            Entity::Transfer => "transfer",
            Entity::ExchangePartner => "exchange partner",
            Entity::ExchangeOrder => "exchange order",
            Entity::ExchangeCredit => "exchange credit",
        }
    }
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The decision refused the command; nothing was written.
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("{0} not found")]
    NotFound(Entity),
    #[error("the identity is already taken by another member")]
    IdentityTaken,
    #[error("this email reaches the mailbox of the member whose referral code it names")]
    SelfReferral,
    #[error("no member has this referral code")]
    UnknownReferralCode,
    /// The command conflicts with what exists (`code` names how, for the answer).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The writer's queue is full: the caller should try again shortly. Nothing was
    /// queued.
    #[error("the store is overloaded; try again shortly")]
    Overloaded,
    /// The database failed; the detail is for the log, never for the client.
    #[error("database error: {0}")]
    Database(#[source] DatabaseError),
    /// A value could not be turned into JSON for storage, or stored JSON back into a
    /// value. Never a reason to roll back other requests.
    #[error("encoding error: {0}")]
    Encoding(#[from] serde_json::Error),
}

/// What a database failure means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The disk (or the database's space) is full: writes fail until space returns;
    /// reads go on.
    StorageFull,
    /// The database cannot be reached or is restarting: try again shortly. A pool that
    /// found no connection within its 10 s counts here too: whether the database is
    /// down or every connection was busy that long, the server cannot serve.
    Unavailable,
    /// The database is busy (locks, too many connections): try again shortly; not an
    /// outage.
    Busy,
    /// Anything else: a bug or a corrupt value, for the log.
    Other,
}

/// A failure of the database or of the store around it.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] sqlx::Error),
    /// A stored value that does not parse (a rate, a currency, a rule).
    #[error("a stored value does not parse: {0}")]
    Corrupt(String),
    /// The writer thread or task is gone (the store is shutting down).
    #[error("{0}")]
    Stopped(&'static str),
}

impl StoreError {
    pub fn corrupt(what: impl Into<String>) -> StoreError {
        StoreError::Database(DatabaseError::Corrupt(what.into()))
    }

    pub fn stopped(what: &'static str) -> StoreError {
        StoreError::Database(DatabaseError::Stopped(what))
    }

    /// A failure that trying the same work again may cure: a PostgreSQL deadlock
    /// (SQLSTATE 40P01) or serialization failure (40001), SQLite busy or locked.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Database(DatabaseError::Postgres(sqlx::Error::Database(e))) => {
                matches!(e.code().as_deref(), Some("40P01" | "40001"))
            }
            StoreError::Database(DatabaseError::Sqlite(rusqlite::Error::SqliteFailure(e, _))) => matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ),
            _ => false,
        }
    }

    /// What a database failure means for a caller: the disk is full, the database
    /// cannot be reached, it is busy, or a fault. `None` for anything but a database
    /// failure.
    pub fn fault(&self) -> Option<Fault> {
        let StoreError::Database(e) = self else {
            return None;
        };
        Some(match e {
            DatabaseError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => match f.code {
                rusqlite::ErrorCode::DiskFull => Fault::StorageFull,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked => Fault::Busy,
                rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::SystemIoFailure => Fault::Unavailable,
                _ => Fault::Other,
            },
            DatabaseError::Postgres(sqlx::Error::Database(d)) => match d.code().as_deref() {
                // disk_full
                Some("53100") => Fault::StorageFull,
                // connection exceptions (08…), the server shutting down or starting
                // (57P01–57P03), out of memory or other resources (53000, 53200)
                Some(c) if c.starts_with("08") => Fault::Unavailable,
                Some("57P01" | "57P02" | "57P03" | "53000" | "53200") => Fault::Unavailable,
                // too many connections (53300), a deadlock or serialization failure
                // that outlived its retries (40P01, 40001): busy, not down
                Some("53300" | "40P01" | "40001") => Fault::Busy,
                _ => Fault::Other,
            },
            DatabaseError::Postgres(
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed,
            ) => Fault::Unavailable,
            DatabaseError::Postgres(sqlx::Error::Protocol(_) | sqlx::Error::Tls(_)) => Fault::Unavailable,
            DatabaseError::Stopped(_) => Fault::Unavailable,
            _ => Fault::Other,
        })
    }

    /// A failure of the database itself (not a refusal of the request).
    pub fn is_database(&self) -> bool {
        matches!(self, StoreError::Database(_))
    }
}

impl From<DatabaseError> for StoreError {
    fn from(e: DatabaseError) -> Self {
        StoreError::Database(e)
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(DatabaseError::Sqlite(e))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(DatabaseError::Postgres(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(code: std::ffi::c_int) -> StoreError {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None).into()
    }

    #[test]
    fn faults_are_told_apart_by_code() {
        assert_eq!(sqlite(rusqlite::ffi::SQLITE_FULL).fault(), Some(Fault::StorageFull));
        assert_eq!(sqlite(rusqlite::ffi::SQLITE_BUSY).fault(), Some(Fault::Busy));
        assert_eq!(sqlite(rusqlite::ffi::SQLITE_CANTOPEN).fault(), Some(Fault::Unavailable));
        assert_eq!(sqlite(rusqlite::ffi::SQLITE_CONSTRAINT).fault(), Some(Fault::Other));
        let gone = StoreError::from(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        assert_eq!(gone.fault(), Some(Fault::Unavailable));
        assert_eq!(
            StoreError::from(sqlx::Error::PoolTimedOut).fault(),
            Some(Fault::Unavailable)
        );
        assert_eq!(StoreError::corrupt("x").fault(), Some(Fault::Other));
        assert_eq!(StoreError::IdentityTaken.fault(), None);
        assert_eq!(StoreError::Overloaded.fault(), None);
    }
}
