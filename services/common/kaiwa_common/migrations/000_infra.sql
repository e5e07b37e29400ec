-- Shared infrastructure, applied into every service's schema.

-- Transactional outbox: written in the same transaction as the state change,
-- published to JetStream by the relay (Nats-Msg-Id = id), then deleted.
CREATE TABLE outbox (
    seq         bigserial PRIMARY KEY,
    id          uuid        NOT NULL UNIQUE,
    tenant      text        NOT NULL,
    subject     text        NOT NULL,
    envelope    bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Idempotent consumers: one row per (consumer, event) in the same transaction as the effect.
CREATE TABLE processed_events (
    consumer     text        NOT NULL,
    event_id     text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- Poison messages, parked instead of redelivered forever.
CREATE TABLE dead_letters (
    id          bigserial PRIMARY KEY,
    consumer    text        NOT NULL,
    event_id    text,
    subject     text        NOT NULL,
    envelope    bytea       NOT NULL,
    error       text        NOT NULL,
    deliveries  integer     NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Timers live in the database: claimed with FOR UPDATE SKIP LOCKED, they fire once,
-- on any replica, after a restart too.
CREATE TABLE timers (
    id          bigserial PRIMARY KEY,
    tenant      text        NOT NULL,
    kind        text        NOT NULL,
    key         text        NOT NULL,
    due_at      timestamptz NOT NULL,
    payload     jsonb       NOT NULL DEFAULT '{}',
    attempts    integer     NOT NULL DEFAULT 0,
    UNIQUE (kind, key)
);
CREATE INDEX timers_due ON timers (due_at);
