-- The built-in CRM: leads and contacts, their deals and attachments.

CREATE TABLE records (
    tenant      text        NOT NULL,
    id          uuid        NOT NULL,
    type        text        NOT NULL CHECK (type IN ('lead', 'contact')),
    email       text        NOT NULL,
    name        text        NOT NULL DEFAULT '',
    fields      jsonb       NOT NULL DEFAULT '{}',
    owner       text        NOT NULL DEFAULT '',
    source      text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id)
);
-- One record per e-mail and tenant, whatever the letter case.
CREATE UNIQUE INDEX records_email ON records (tenant, lower(email));

CREATE TABLE deals (
    tenant        text        NOT NULL,
    id            uuid        NOT NULL,
    record_id     uuid        NOT NULL,
    name          text        NOT NULL,
    stage         text        NOT NULL DEFAULT '',
    amount        numeric     NOT NULL DEFAULT 0,
    closing_date  date,
    open          boolean     NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id),
    FOREIGN KEY (tenant, record_id) REFERENCES records (tenant, id) ON DELETE CASCADE
);
CREATE INDEX deals_record ON deals (tenant, record_id);

CREATE TABLE attachments (
    tenant      text        NOT NULL,
    id          uuid        NOT NULL,
    record_id   uuid        NOT NULL,
    name        text        NOT NULL,
    mime_type   text        NOT NULL,
    content     bytea       NOT NULL,
    chat_id     text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id),
    FOREIGN KEY (tenant, record_id) REFERENCES records (tenant, id) ON DELETE CASCADE
);
CREATE INDEX attachments_record ON attachments (tenant, record_id);
-- A chat's transcript is attached to a record once; a later transcript replaces it.
CREATE UNIQUE INDEX attachments_chat ON attachments (tenant, record_id, chat_id) WHERE chat_id <> '';
