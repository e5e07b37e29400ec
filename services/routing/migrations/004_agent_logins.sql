-- CMD-02: how an agent signs in from an XMPP client: a chat user name (unique in the
-- portal, kept in lower case) and a password (a salted scrypt hash, never returned).
CREATE TABLE agent_logins (
    tenant        text        NOT NULL,
    agent_id      uuid        NOT NULL,
    user_name     text,
    password_hash text        NOT NULL DEFAULT '',
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, agent_id),
    CONSTRAINT agent_logins_user_name UNIQUE (tenant, user_name),
    FOREIGN KEY (tenant, agent_id) REFERENCES agents (tenant, id)
);
