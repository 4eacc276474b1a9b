-- The web faces (operator console, partner back office, member portal): staff accounts,
-- sign-in sessions, members' one-time sign-in codes, the audit log, and the servers'
-- signing keys. Times are microseconds since the Unix epoch (UTC).

-- A staff account: the operator's people, or a partner's (who belong to it). The email
-- is stored lowercased; the password as an argon2 PHC string.
CREATE TABLE staff_users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL
        CHECK (role IN ('operator_admin', 'operator_analyst', 'partner_manager', 'partner_cashier')),
    partner_id TEXT REFERENCES partners (id),
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    -- Set when the account was disabled: it cannot sign in, and its sessions are gone.
    disabled_at INTEGER,
    -- A partner's roles belong to a partner; the operator's to none.
    CHECK ((role IN ('partner_manager', 'partner_cashier')) = (partner_id IS NOT NULL))
);
CREATE INDEX staff_users_partner ON staff_users (partner_id) WHERE partner_id IS NOT NULL;

-- A signed-in browser, by the SHA-256 (hex) of its cookie's token: a staff user's or a
-- member's, never both.
CREATE TABLE web_sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT REFERENCES staff_users (id),
    member_id TEXT REFERENCES members (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    CHECK ((user_id IS NULL) <> (member_id IS NULL))
);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);

-- A one-time code sent to a member's email or phone (`destination`, normalised) to sign
-- in to the portal; kept as a hash, used once, refused after too many wrong tries.
CREATE TABLE login_codes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    member_id TEXT NOT NULL REFERENCES members (id),
    destination TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    used_at INTEGER
);
CREATE INDEX login_codes_destination ON login_codes (destination, created_at);

-- Who did what through the web faces: a staff user (with the partner they belong to,
-- none for the operator's) or a member; `action` such as `POST /v1/rewards`.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    user_id TEXT,
    member_id TEXT,
    partner_id TEXT,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    status INTEGER NOT NULL
);
CREATE INDEX audit_log_partner ON audit_log (partner_id, id) WHERE partner_id IS NOT NULL;

-- The audit log is only ever appended to.
CREATE TRIGGER audit_log_append_only_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_append_only_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- The servers' signing keys, by name: the first server to start writes one, and every
-- server of the database uses it.
CREATE TABLE web_keys (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- A partner's sales and returns by time, for its back office: the newest page, and the
-- customers of the last months, without reading all its history.
CREATE INDEX transactions_partner_time ON transactions (partner_id, occurred_at, id);
CREATE INDEX returns_partner_time ON returns (partner_id, recorded_at, id);
