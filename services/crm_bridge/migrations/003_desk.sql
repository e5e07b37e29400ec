-- DESK-01: the built-in help desk: tickets (numbered per tenant), the chats associated with
-- them, and which departments' chats may be converted.

CREATE TABLE desk_departments (
    tenant              text    NOT NULL,
    department_id       text    NOT NULL,                 -- '' : chats without a department
    conversion_enabled  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant, department_id)
);

CREATE TABLE ticket_numbers (
    tenant  text   PRIMARY KEY,
    last    bigint NOT NULL
);

CREATE TABLE tickets (
    tenant       text        NOT NULL,
    id           uuid        NOT NULL,
    number       bigint      NOT NULL,
    subject      text        NOT NULL,
    description  text        NOT NULL DEFAULT '',
    email        text        NOT NULL DEFAULT '',
    name         text        NOT NULL DEFAULT '',
    priority     smallint    NOT NULL CHECK (priority BETWEEN 0 AND 3),
    status       smallint    NOT NULL CHECK (status BETWEEN 0 AND 3),
    category     smallint    NOT NULL CHECK (category BETWEEN 0 AND 4),
    chat_id      text        NOT NULL DEFAULT '',
    message_seq  bigint      NOT NULL DEFAULT 0,
    created_by   text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX tickets_number ON tickets (tenant, number);
-- One ticket per chat (or per message of a chat): converting again finds it.
CREATE UNIQUE INDEX tickets_source ON tickets (tenant, chat_id, message_seq) WHERE chat_id <> '';
CREATE INDEX tickets_email ON tickets (tenant, lower(email), created_at DESC);

CREATE TABLE ticket_chats (
    tenant      text        NOT NULL,
    ticket_id   uuid        NOT NULL,
    chat_id     text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, ticket_id, chat_id),
    FOREIGN KEY (tenant, ticket_id) REFERENCES tickets (tenant, id) ON DELETE CASCADE
);
CREATE INDEX ticket_chats_chat ON ticket_chats (tenant, chat_id);
