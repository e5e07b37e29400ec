-- Tables of the test-only backbone service. `applied` and `timer_fired` deliberately have
-- no unique constraint: a doubled delivery or a doubled timer would show up as two rows.

CREATE TABLE notes (
    id        bigserial PRIMARY KEY,
    tenant    text NOT NULL,
    note      text NOT NULL,
    event_id  uuid NOT NULL
);

CREATE TABLE applied (
    id          bigserial PRIMARY KEY,
    tenant      text NOT NULL,
    consumer    text NOT NULL,
    event_id    text NOT NULL,
    note        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE timer_fired (
    id        bigserial PRIMARY KEY,
    tenant    text NOT NULL,
    key       text NOT NULL,
    runner    text NOT NULL,
    fired_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE slow_calls (
    id          bigserial PRIMARY KEY,
    tenant      text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now()
);
