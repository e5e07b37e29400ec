-- VIS-01..07: enriched visits, profiles with CRM facts and lead scores, blocks,
-- proactive triggers, per-tenant tracking settings. Every key starts with the tenant.

CREATE TABLE tracking_settings (
    tenant                 text        NOT NULL,
    visit_timeout_seconds  integer     NOT NULL DEFAULT 1800 CHECK (visit_timeout_seconds BETWEEN 60 AND 86400),
    time_zone              text        NOT NULL DEFAULT 'UTC',
    top_lead_score         integer     NOT NULL DEFAULT 50 CHECK (top_lead_score BETWEEN 1 AND 100),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant)
);

ALTER TABLE visitors
    ADD COLUMN phone               text        NOT NULL DEFAULT '',
    ADD COLUMN chat_count          integer     NOT NULL DEFAULT 0,
    ADD COLUMN time_spent_seconds  bigint      NOT NULL DEFAULT 0,
    ADD COLUMN lead_score          integer     NOT NULL DEFAULT 0,
    ADD COLUMN visitor_type        text        NOT NULL DEFAULT 'unknown',
    ADD COLUMN identified_at       timestamptz,
    ADD COLUMN identity_source     text        NOT NULL DEFAULT '',
    -- CRM facts from crm_bridge (FindRecord); crm_checked_at NULL: to be fetched.
    ADD COLUMN crm_record_id       text        NOT NULL DEFAULT '',
    ADD COLUMN crm_record_type     text        NOT NULL DEFAULT '',
    ADD COLUMN crm_owner           text        NOT NULL DEFAULT '',
    ADD COLUMN crm_facts           jsonb,
    ADD COLUMN crm_checked_at      timestamptz,
    -- ROUT-04: the order of the first priority rule matched, under the rules of `priority_rules`.
    ADD COLUMN priority            integer,
    ADD COLUMN priority_rules      text        NOT NULL DEFAULT '',
    ADD COLUMN last_ip             inet,
    -- Merged into another visitor (VIS-03): this id then stands for that one.
    ADD COLUMN merged_into         uuid;
CREATE UNIQUE INDEX visitors_email ON visitors (tenant, email) WHERE email <> '' AND merged_into IS NULL;
CREATE INDEX visitors_crm_stale ON visitors (crm_checked_at) WHERE email <> '' AND merged_into IS NULL;

-- A visit's enrichment (VIS-02: client, location, source, campaign, language, screen)
-- is taken from its first event and kept as one document.
ALTER TABLE visits
    ADD COLUMN landing_url           text        NOT NULL DEFAULT '',
    ADD COLUMN landing_title         text        NOT NULL DEFAULT '',
    ADD COLUMN current_url           text        NOT NULL DEFAULT '',
    ADD COLUMN current_title         text        NOT NULL DEFAULT '',
    ADD COLUMN current_page_view_id  uuid,
    ADD COLUMN ip                    inet,
    ADD COLUMN context               jsonb       NOT NULL DEFAULT '{}',
    ADD COLUMN chatted               boolean     NOT NULL DEFAULT false,
    ADD COLUMN left_at               timestamptz;
CREATE INDEX visits_started ON visits (tenant, started_at DESC);
CREATE INDEX visits_last_seen ON visits (tenant, last_seen_at DESC);

ALTER TABLE page_views ADD COLUMN left_at timestamptz;
CREATE INDEX page_views_visit ON page_views (tenant, visit_id, viewed_at);

-- The chat action of a visit (VIS-01), learned from conversation's chat_started.
CREATE TABLE visit_chats (
    tenant      text        NOT NULL,
    chat_id     text        NOT NULL,
    visitor_id  uuid        NOT NULL,
    visit_id    uuid,
    url         text        NOT NULL DEFAULT '',
    title       text        NOT NULL DEFAULT '',
    started_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant, chat_id)
);
CREATE INDEX visit_chats_visit ON visit_chats (tenant, visit_id);

-- VIS-05: one active block per range or thread.
CREATE TABLE blocks (
    tenant        text        NOT NULL,
    id            uuid        NOT NULL,
    kind          text        NOT NULL CHECK (kind IN ('ip', 'thread')),
    network       cidr,
    channel       text        NOT NULL DEFAULT '',
    thread_id     text        NOT NULL DEFAULT '',
    visitor_id    uuid,
    reason        text        NOT NULL,
    blocked_by    text        NOT NULL,
    chat_id       text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    unblocked_at  timestamptz,
    unblocked_by  text        NOT NULL DEFAULT '',
    PRIMARY KEY (tenant, id),
    CHECK ((kind = 'ip') = (network IS NOT NULL))
);
CREATE UNIQUE INDEX blocks_active_network ON blocks (tenant, network) WHERE unblocked_at IS NULL AND kind = 'ip';
CREATE UNIQUE INDEX blocks_active_thread ON blocks (tenant, channel, thread_id) WHERE unblocked_at IS NULL AND kind = 'thread';
CREATE INDEX blocks_listed ON blocks (tenant, created_at DESC, id);

-- VIS-06: proactive triggers; a firing row per (visit, trigger) makes "once per visit".
CREATE TABLE triggers (
    tenant         text        NOT NULL,
    id             uuid        NOT NULL,
    name           text        NOT NULL,
    enabled        boolean     NOT NULL,
    page_pattern   text        NOT NULL,
    landing_only   boolean     NOT NULL,
    conditions     jsonb       NOT NULL DEFAULT '[]',
    delay_seconds  integer     NOT NULL,
    action         text        NOT NULL,
    message        text        NOT NULL DEFAULT '',
    agent_id       text        NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id)
);

CREATE TABLE trigger_firings (
    tenant        text        NOT NULL,
    visit_id      uuid        NOT NULL,
    trigger_id    uuid        NOT NULL,
    visitor_id    uuid        NOT NULL,
    page_view_id  uuid        NOT NULL,
    url           text        NOT NULL,
    fired_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, visit_id, trigger_id)
);
CREATE INDEX trigger_firings_visitor ON trigger_firings (tenant, visitor_id, fired_at DESC);
