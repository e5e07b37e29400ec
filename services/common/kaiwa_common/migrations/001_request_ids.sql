-- Idempotent creation: a client's request id remembered with what it created, so a
-- retry returns the first result instead of creating again (see idempotency.py).
CREATE TABLE request_ids (
    tenant       text        NOT NULL,
    scope        text        NOT NULL,
    request_id   text        NOT NULL,
    fingerprint  text        NOT NULL,
    result_id    text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, scope, request_id)
);
CREATE INDEX request_ids_created ON request_ids (created_at);
