-- Routing: departments, agents, the chats it routes, offers, assignments, transfers,
-- members, rules, team messages. Capacity and "one owner per chat" are enforced here,
-- by constraints, not only by the code that changes them.

CREATE TABLE departments (
    id                     uuid PRIMARY KEY,
    tenant                 text NOT NULL,
    name                   text NOT NULL,
    strategy               text NOT NULL,
    accept_timeout_seconds double precision NOT NULL,
    max_wait_seconds       double precision NOT NULL,
    created_at             timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant, name)
);

CREATE TABLE agents (
    id               uuid PRIMARY KEY,
    tenant           text NOT NULL,
    email            text NOT NULL,
    name             text NOT NULL,
    availability     text NOT NULL DEFAULT 'offline',
    max_chats        integer NOT NULL CHECK (max_chats BETWEEN 1 AND 100),
    active_chats     integer NOT NULL DEFAULT 0,
    last_assigned_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant, email),
    -- No agent is ever over their maximum.
    CONSTRAINT agents_capacity CHECK (active_chats >= 0 AND active_chats <= max_chats)
);

CREATE TABLE department_agents (
    tenant          text NOT NULL,
    department_id   uuid NOT NULL REFERENCES departments (id) ON DELETE CASCADE,
    agent_id        uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    -- Round robin: the eligible agent offered longest ago goes next.
    last_offered_at timestamptz,
    PRIMARY KEY (department_id, agent_id)
);
CREATE INDEX department_agents_agent ON department_agents (agent_id);

-- The chats routing knows about (from the conversation service's events).
CREATE TABLE chats (
    id             uuid PRIMARY KEY,
    tenant         text NOT NULL,
    department_id  uuid,
    state          text NOT NULL,   -- bot, queued, assigned, missed, ended
    agent_id       uuid,
    visitor_id     text NOT NULL DEFAULT '',
    visitor_name   text NOT NULL DEFAULT '',
    visitor_email  text NOT NULL DEFAULT '',
    question       text NOT NULL DEFAULT '',
    crm            jsonb,           -- facts from the CRM record, for rules and the owner
    priority       integer NOT NULL DEFAULT 0,        -- order of the priority rule; 0 = none
    priority_rank  integer NOT NULL DEFAULT 2147483647, -- queue order: priority rule first
    queued_at      timestamptz,
    assigned_at    timestamptz,
    ended_at       timestamptz,
    missed_reason  text,
    waited_seconds bigint,
    CONSTRAINT chats_assigned_has_agent CHECK ((state = 'assigned') = (agent_id IS NOT NULL))
);
CREATE INDEX chats_queue ON chats (tenant, department_id, priority_rank, queued_at) WHERE state = 'queued';
CREATE INDEX chats_missed ON chats (tenant, ended_at) WHERE state = 'missed';

-- An open offer of a chat to an agent; ring-all has several per chat, the others one.
CREATE TABLE offers (
    tenant      text NOT NULL,
    chat_id     uuid NOT NULL,
    agent_id    uuid NOT NULL,
    offered_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chat_id, agent_id)
);
CREATE INDEX offers_agent ON offers (agent_id);

-- Agents who declined a chat or let its offer time out are not asked again first.
CREATE TABLE offer_refusals (
    tenant     text NOT NULL,
    chat_id    uuid NOT NULL,
    agent_id   uuid NOT NULL,
    reason     text NOT NULL,       -- declined (with the agent's words) or timeout
    declined   boolean NOT NULL,
    at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chat_id, agent_id)
);

-- Assignment history: one open row per chat at most (no chat ever has two owners).
CREATE TABLE assignments (
    id                bigserial PRIMARY KEY,
    tenant            text NOT NULL,
    chat_id           uuid NOT NULL,
    department_id     uuid,
    agent_id          uuid NOT NULL,
    how               text NOT NULL,
    previous_agent_id uuid,
    queued_at         timestamptz,
    assigned_at       timestamptz NOT NULL DEFAULT now(),
    released_at       timestamptz
);
CREATE UNIQUE INDEX assignments_one_open ON assignments (chat_id) WHERE released_at IS NULL;
CREATE INDEX assignments_recent ON assignments (tenant, department_id, released_at DESC)
    WHERE released_at IS NOT NULL;
CREATE INDEX assignments_agent_open ON assignments (agent_id) WHERE released_at IS NULL;

CREATE TABLE transfers (
    id               uuid PRIMARY KEY,
    tenant           text NOT NULL,
    chat_id          uuid NOT NULL,
    from_agent_id    uuid NOT NULL,
    to_agent_id      uuid,
    to_department_id uuid,
    note             text NOT NULL DEFAULT '',
    state            text NOT NULL DEFAULT 'pending',   -- pending, accepted, declined
    decline_reason   text NOT NULL DEFAULT '',
    answered_by      uuid,
    created_at       timestamptz NOT NULL DEFAULT now(),
    answered_at      timestamptz
);
CREATE UNIQUE INDEX transfers_one_pending ON transfers (chat_id) WHERE state = 'pending';

-- Department transfers: agents of the department who said no.
CREATE TABLE transfer_declines (
    transfer_id uuid NOT NULL REFERENCES transfers (id) ON DELETE CASCADE,
    agent_id    uuid NOT NULL,
    reason      text NOT NULL DEFAULT '',
    PRIMARY KEY (transfer_id, agent_id)
);

-- Invited agents (participants); the owner is chats.agent_id.
CREATE TABLE chat_members (
    tenant     text NOT NULL,
    chat_id    uuid NOT NULL,
    agent_id   uuid NOT NULL,
    invited_by uuid,
    note       text NOT NULL DEFAULT '',
    joined_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chat_id, agent_id)
);

CREATE TABLE rules (
    id            uuid PRIMARY KEY,
    tenant        text NOT NULL,
    kind          text NOT NULL,      -- assignment, priority
    name          text NOT NULL,
    ord           integer NOT NULL,
    department_id uuid,
    conditions    jsonb NOT NULL,
    agent_ids     uuid[] NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rules_tenant ON rules (tenant, kind, ord);

CREATE TABLE team_messages (
    seq           bigserial PRIMARY KEY,
    id            uuid NOT NULL UNIQUE,
    tenant        text NOT NULL,
    from_agent_id uuid NOT NULL,
    to_agent_id   uuid,               -- NULL: the team board
    text          text NOT NULL,
    sent_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX team_messages_tenant ON team_messages (tenant, seq);

-- The queue position last announced to each waiting visitor (see Announcer).
CREATE TABLE queue_announcements (
    chat_id   uuid PRIMARY KEY,
    tenant    text NOT NULL,
    position  integer NOT NULL,
    at        timestamptz NOT NULL DEFAULT now()
);
