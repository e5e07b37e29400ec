-- PLAT-02: a returning visitor proves who it is with a secret, never with its id alone.
--
-- A session ("family") starts when a widget gets a new visitor; every refresh rotates
-- its secret. Revocation (logout, admin, reuse of a rotated secret) is one row here, so
-- a rotation racing with it cannot leave a live secret behind: both lock this row.
CREATE TABLE visitor_sessions (
    tenant          text        NOT NULL,
    id              uuid        NOT NULL,                 -- the family id
    visitor_id      uuid        NOT NULL,
    widget_key      text        NOT NULL,                 -- the key it was last refreshed through
    created_at      timestamptz NOT NULL DEFAULT now(),
    refreshed_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz,
    revoked_reason  text,                                 -- logout, admin, reuse
    PRIMARY KEY (tenant, id),
    FOREIGN KEY (tenant, visitor_id) REFERENCES visitors (tenant, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, widget_key) REFERENCES widget_keys (tenant, key)
);
CREATE INDEX visitor_sessions_visitor ON visitor_sessions (tenant, visitor_id);

-- The secrets of a session: only their SHA-256 is kept (a secret has 256 random bits, so
-- a fast hash is enough). used_at is set when a secret is traded for its successor; a
-- used secret presented again is a stolen copy.
CREATE TABLE visitor_secrets (
    tenant       text        NOT NULL,
    secret_hash  bytea       NOT NULL CHECK (length(secret_hash) = 32),
    session_id   uuid        NOT NULL,                  -- its family; the visitor is the session's
    created_at   timestamptz NOT NULL DEFAULT now(),
    used_at      timestamptz,
    PRIMARY KEY (tenant, secret_hash),
    FOREIGN KEY (tenant, session_id) REFERENCES visitor_sessions (tenant, id) ON DELETE CASCADE
);
CREATE INDEX visitor_secrets_session ON visitor_secrets (tenant, session_id);
