-- Public widget keys: a chat widget trades one for a short-lived visitor token.
-- The key is public (it sits in the site's HTML), so it is stored as it is.
CREATE TABLE widget_keys (
    tenant      text        NOT NULL,
    key         text        NOT NULL,
    label       text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    PRIMARY KEY (tenant, key)
);

CREATE TABLE visitors (
    tenant            text        NOT NULL,
    id                uuid        NOT NULL,
    name              text        NOT NULL DEFAULT '',
    email             text        NOT NULL DEFAULT '',
    visit_count       integer     NOT NULL DEFAULT 0,
    page_view_count   integer     NOT NULL DEFAULT 0,
    first_seen_at     timestamptz,
    last_seen_at      timestamptz,
    current_visit_id  uuid,
    PRIMARY KEY (tenant, id)
);

-- A visit: page views with no more than the inactivity limit (30 minutes) between them.
CREATE TABLE visits (
    tenant           text        NOT NULL,
    id               uuid        NOT NULL,
    visitor_id       uuid        NOT NULL,
    started_at       timestamptz NOT NULL,
    last_seen_at     timestamptz NOT NULL,
    page_view_count  integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, id),
    FOREIGN KEY (tenant, visitor_id) REFERENCES visitors (tenant, id) ON DELETE CASCADE
);
CREATE INDEX visits_visitor ON visits (tenant, visitor_id, started_at DESC);

-- Raw values as received; derived data (browser, OS, location, search terms: VIS-02) comes later.
CREATE TABLE page_views (
    tenant      text        NOT NULL,
    id          uuid        NOT NULL,
    visitor_id  uuid        NOT NULL,
    visit_id    uuid        NOT NULL,
    url         text        NOT NULL,
    title       text        NOT NULL DEFAULT '',
    referrer    text        NOT NULL DEFAULT '',
    user_agent  text        NOT NULL DEFAULT '',
    ip          inet,
    landing     boolean     NOT NULL,
    viewed_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant, id),
    FOREIGN KEY (tenant, visit_id) REFERENCES visits (tenant, id) ON DELETE CASCADE
);
CREATE INDEX page_views_visitor ON page_views (tenant, visitor_id, viewed_at DESC);
