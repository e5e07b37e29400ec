-- Conversation schema: chats, their immutable messages, durable stream events, notes,
-- canned responses and per-tenant settings. Every row carries its tenant.

CREATE TABLE settings (
    tenant              text PRIMARY KEY,
    inactivity_seconds  integer     NOT NULL CHECK (inactivity_seconds > 0),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chats (
    tenant                  text        NOT NULL,
    id                      uuid        PRIMARY KEY,
    channel                 text        NOT NULL,
    state                   text        NOT NULL CHECK (state IN ('queued', 'bot', 'open', 'ended', 'completed')),
    department_id           text        NOT NULL DEFAULT '',
    visitor_id              text        NOT NULL,
    visitor_name            text        NOT NULL DEFAULT '',
    visitor_email           text        NOT NULL DEFAULT '',
    question                text        NOT NULL DEFAULT '',
    bot_id                  text        NOT NULL DEFAULT '',
    agent_id                text        NOT NULL DEFAULT '',
    started_at              timestamptz NOT NULL DEFAULT now(),
    ended_at                timestamptz,
    completed_at            timestamptz,
    end_reason              text        NOT NULL DEFAULT '',
    last_seq                bigint      NOT NULL DEFAULT 0,
    last_activity_at        timestamptz NOT NULL DEFAULT now(),
    last_inbound_at         timestamptz,            -- the visitor's last message (session window)
    countdown_ends_at       timestamptz,
    queue_position          integer     NOT NULL DEFAULT 0,
    estimated_wait_seconds  bigint      NOT NULL DEFAULT 0
);
CREATE INDEX chats_visitor ON chats (tenant, visitor_id, started_at DESC, id DESC);

CREATE TABLE participants (
    tenant      text        NOT NULL,
    chat_id     uuid        NOT NULL REFERENCES chats (id),
    agent_id    text        NOT NULL,
    name        text        NOT NULL DEFAULT '',
    role        text        NOT NULL CHECK (role IN ('owner', 'invited', 'former')),
    joined_at   timestamptz NOT NULL DEFAULT now(),
    left_at     timestamptz,
    PRIMARY KEY (chat_id, agent_id)
);
CREATE INDEX participants_agent ON participants (tenant, agent_id);

-- Messages are append-only: the trigger below refuses UPDATE, DELETE and TRUNCATE, so
-- not even a bug (or a person with psql and the service's role) can edit history.
CREATE TABLE messages (
    tenant              text        NOT NULL,
    chat_id             uuid        NOT NULL REFERENCES chats (id),
    seq                 bigint      NOT NULL,
    id                  uuid        NOT NULL UNIQUE,
    sender_kind         text        NOT NULL CHECK (sender_kind IN ('visitor', 'agent', 'bot', 'system')),
    sender_id           text        NOT NULL DEFAULT '',
    kind                text        NOT NULL CHECK (kind IN ('text', 'file', 'link', 'rich', 'note', 'system')),
    channel             text        NOT NULL,
    text                text        NOT NULL DEFAULT '',
    body                jsonb       NOT NULL DEFAULT '{}',
    outgoing            boolean     NOT NULL,       -- to the visitor: has a delivery status
    reply_to_seq        bigint,
    part                integer     NOT NULL DEFAULT 0,
    parts               integer     NOT NULL DEFAULT 0,
    resent_from_seq     bigint,
    client_message_id   text,
    emoji_only          boolean     NOT NULL DEFAULT false,
    sent_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chat_id, seq)
);
CREATE UNIQUE INDEX messages_client_id ON messages (chat_id, sender_id, client_message_id, part)
    WHERE client_message_id IS NOT NULL;

CREATE FUNCTION refuse_message_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'messages are immutable: % on messages is refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;
CREATE TRIGGER messages_append_only BEFORE UPDATE OR DELETE ON messages
    FOR EACH ROW EXECUTE FUNCTION refuse_message_change();
CREATE TRIGGER messages_no_truncate BEFORE TRUNCATE ON messages
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_message_change();

-- Current delivery status of outgoing messages (absent = sent). Mutable, unlike messages.
CREATE TABLE message_status (
    tenant          text        NOT NULL,
    chat_id         uuid        NOT NULL,
    seq             bigint      NOT NULL,
    status          text        NOT NULL CHECK (status IN ('sent', 'delivered', 'read', 'failed')),
    failure_reason  text        NOT NULL DEFAULT '',
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chat_id, seq),
    FOREIGN KEY (chat_id, seq) REFERENCES messages (chat_id, seq)
);

-- Durable stream events other than messages (state snapshots, status changes, queue
-- updates). They share the chat's sequence with messages, so a client resumes from one number.
CREATE TABLE chat_events (
    tenant      text        NOT NULL,
    chat_id     uuid        NOT NULL REFERENCES chats (id),
    seq         bigint      NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('chat', 'status', 'queue')),
    data        jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chat_id, seq)
);

CREATE TABLE notes (
    tenant      text        NOT NULL,
    id          uuid        PRIMARY KEY,
    chat_id     uuid        REFERENCES chats (id),
    visitor_id  text,
    author_id   text        NOT NULL,
    text        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((chat_id IS NULL) <> (visitor_id IS NULL))
);
CREATE INDEX notes_chat ON notes (tenant, chat_id, created_at, id) WHERE chat_id IS NOT NULL;
CREATE INDEX notes_visitor ON notes (tenant, visitor_id, created_at, id) WHERE visitor_id IS NOT NULL;

CREATE TABLE canned_responses (
    tenant      text        NOT NULL,
    shortcut    text        NOT NULL,
    text        text        NOT NULL,
    updated_by  text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, shortcut)
);
