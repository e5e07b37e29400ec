-- CRM-01..10: the connection and settings of each tenant, the built-in CRM's users,
-- accounts, custom fields, notes, tasks, chat activities and visits, and the queue of
-- writes to an external CRM. Every key starts with the tenant (PLAT-02).

CREATE TABLE connections (
    tenant                 text        PRIMARY KEY,
    kind                   text        NOT NULL CHECK (kind IN ('builtin', 'zoho')),
    enabled                boolean     NOT NULL DEFAULT true,
    admin_email            text        NOT NULL DEFAULT '',
    key_cipher             text        NOT NULL DEFAULT '',   -- Fernet, never returned
    client_id              text        NOT NULL DEFAULT '',
    client_secret_cipher   text        NOT NULL DEFAULT '',
    data_center            text        NOT NULL DEFAULT 'com',
    connected_by           text        NOT NULL DEFAULT '',
    connected_at           timestamptz NOT NULL DEFAULT now(),
    access_token_cipher    text        NOT NULL DEFAULT '',
    access_token_expires   timestamptz,
    api_url                text        NOT NULL DEFAULT '',
    status                 text        NOT NULL DEFAULT 'ok',
    paused_until           timestamptz                        -- 429: no call before this
);

CREATE TABLE settings (
    tenant      text        PRIMARY KEY,
    data        jsonb       NOT NULL DEFAULT '{}',
    pool_turn   bigint      NOT NULL DEFAULT 0,                 -- CRM-04 distribution pool
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE crm_users (
    tenant      text        NOT NULL,
    id          uuid        NOT NULL,
    email       text        NOT NULL,
    name        text        NOT NULL DEFAULT '',
    admin       boolean     NOT NULL DEFAULT false,
    agent_id    text        NOT NULL DEFAULT '',
    key_hash    text        NOT NULL DEFAULT '',                -- built-in CRM admins' integration key
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX crm_users_email ON crm_users (tenant, lower(email));
CREATE UNIQUE INDEX crm_users_agent ON crm_users (tenant, agent_id) WHERE agent_id <> '';

CREATE TABLE custom_fields (
    tenant       text NOT NULL,
    record_type  text NOT NULL CHECK (record_type IN ('lead', 'contact')),
    name         text NOT NULL,
    label        text NOT NULL DEFAULT '',
    PRIMARY KEY (tenant, record_type, name)
);

CREATE TABLE accounts (
    tenant      text        NOT NULL,
    id          uuid        NOT NULL,
    name        text        NOT NULL,
    fields      jsonb       NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX accounts_name ON accounts (tenant, lower(name));

ALTER TABLE records ADD COLUMN label text NOT NULL DEFAULT '';
ALTER TABLE records ADD COLUMN account_id uuid;
ALTER TABLE records ADD FOREIGN KEY (tenant, account_id) REFERENCES accounts (tenant, id);
ALTER TABLE deals ADD COLUMN key text NOT NULL DEFAULT '';
CREATE UNIQUE INDEX deals_key ON deals (tenant, key) WHERE key <> '';

CREATE TABLE notes (
    tenant      text        NOT NULL,
    id          uuid        NOT NULL,
    record_id   uuid        NOT NULL,
    key         text        NOT NULL,                           -- natural key: one note per key
    kind        text        NOT NULL,
    title       text        NOT NULL DEFAULT '',
    body        text        NOT NULL,
    author      text        NOT NULL DEFAULT '',
    notify      text        NOT NULL DEFAULT '',
    chat_id     text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id),
    FOREIGN KEY (tenant, record_id) REFERENCES records (tenant, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX notes_key ON notes (tenant, key);
CREATE INDEX notes_record ON notes (tenant, record_id, created_at);

CREATE TABLE tasks (
    tenant      text        NOT NULL,
    id          uuid        NOT NULL,
    record_id   uuid        NOT NULL,
    key         text        NOT NULL,
    subject     text        NOT NULL,
    due_date    date        NOT NULL,
    owner       text        NOT NULL DEFAULT '',
    status      text        NOT NULL DEFAULT 'open',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id),
    FOREIGN KEY (tenant, record_id) REFERENCES records (tenant, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX tasks_key ON tasks (tenant, key);
CREATE INDEX tasks_record ON tasks (tenant, record_id, due_date);

-- CRM-07: a chat in the feed of a record, and of each of its open deals.
CREATE TABLE activities (
    tenant      text        NOT NULL,
    id          uuid        NOT NULL,
    record_id   uuid        NOT NULL,
    deal_id     uuid,
    chat_id     text        NOT NULL,
    subject     text        NOT NULL DEFAULT '',
    agent       text        NOT NULL DEFAULT '',
    visitor     text        NOT NULL DEFAULT '',
    link        text        NOT NULL DEFAULT '',
    started_at  timestamptz,
    ended_at    timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id),
    FOREIGN KEY (tenant, record_id) REFERENCES records (tenant, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, deal_id) REFERENCES deals (tenant, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX activities_record_chat ON activities (tenant, record_id, chat_id) WHERE deal_id IS NULL;
CREATE UNIQUE INDEX activities_deal_chat ON activities (tenant, deal_id, chat_id) WHERE deal_id IS NOT NULL;

-- CRM-08: visits (one row per visit; pages appended once each by page view id).
CREATE TABLE visits (
    tenant           text        NOT NULL,
    id               uuid        NOT NULL,
    record_id        uuid        NOT NULL,
    visit_id         text        NOT NULL,
    ip               text        NOT NULL DEFAULT '',
    referrer         text        NOT NULL DEFAULT '',
    user_agent       text        NOT NULL DEFAULT '',
    attended_by      text        NOT NULL DEFAULT '',
    visitor_type     text        NOT NULL DEFAULT '',
    search_engine    text        NOT NULL DEFAULT '',
    search_keywords  text        NOT NULL DEFAULT '',
    pages            jsonb       NOT NULL DEFAULT '[]',          -- [{id, url, title, at}]
    first_at         timestamptz NOT NULL,
    last_at          timestamptz NOT NULL,
    PRIMARY KEY (tenant, id),
    FOREIGN KEY (tenant, record_id) REFERENCES records (tenant, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX visits_visit ON visits (tenant, record_id, visit_id);

-- Visitors known by e-mail from their chats (page views carry only the visitor id).
CREATE TABLE known_visitors (
    tenant      text        NOT NULL,
    visitor_id  text        NOT NULL,
    email       text        NOT NULL,
    name        text        NOT NULL DEFAULT '',
    last_agent  text        NOT NULL DEFAULT '',
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, visitor_id)
);

-- CRM-10: writes to an external CRM, done now or kept until the CRM is back.
CREATE TABLE writes (
    tenant           text        NOT NULL,
    id               uuid        NOT NULL,
    key              text        NOT NULL,                      -- natural key: one write per key
    kind             text        NOT NULL,
    params           jsonb       NOT NULL,
    content          bytea       NOT NULL DEFAULT '',
    state            text        NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'done', 'dead')),
    attempts         integer     NOT NULL DEFAULT 0,
    error            text        NOT NULL DEFAULT '',
    progress         jsonb       NOT NULL DEFAULT '{}',          -- steps done, with what they made
    result           jsonb,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_until      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX writes_key ON writes (tenant, key);
CREATE INDEX writes_due ON writes (next_attempt_at) WHERE state = 'queued';

-- Records read from an external CRM, answered while fresh (and while the CRM is away).
CREATE TABLE record_cache (
    tenant      text        NOT NULL,
    email_key   text        NOT NULL,
    record      jsonb,                                          -- null: no record for the e-mail
    fetched_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, email_key)
);
