-- Tenant first in every key (PLAT-02), as a schema distributed by tenant (Citus) needs:
-- every routing table carries `tenant`, and every primary key, unique constraint, unique
-- index and foreign key starts with it. transfer_declines gets its tenant from its
-- transfer. The infrastructure tables (outbox, processed_events, dead_letters, timers,
-- request_ids, schema_migrations) are not tenant data and keep their keys.
--
-- Order: foreign keys go first (they depend on the referenced primary keys), then the
-- keys are rebuilt, then the foreign keys come back as (tenant, x) -> (tenant, id).

ALTER TABLE transfer_declines ADD COLUMN tenant text;
UPDATE transfer_declines d SET tenant = t.tenant FROM transfers t WHERE t.id = d.transfer_id;
ALTER TABLE transfer_declines ALTER COLUMN tenant SET NOT NULL;

ALTER TABLE department_agents DROP CONSTRAINT department_agents_department_id_fkey,
                              DROP CONSTRAINT department_agents_agent_id_fkey;
ALTER TABLE transfer_declines DROP CONSTRAINT transfer_declines_transfer_id_fkey;

ALTER TABLE departments DROP CONSTRAINT departments_pkey, ADD PRIMARY KEY (tenant, id);
ALTER TABLE agents DROP CONSTRAINT agents_pkey, ADD PRIMARY KEY (tenant, id);
ALTER TABLE department_agents DROP CONSTRAINT department_agents_pkey,
                              ADD PRIMARY KEY (tenant, department_id, agent_id);
ALTER TABLE chats DROP CONSTRAINT chats_pkey, ADD PRIMARY KEY (tenant, id);
ALTER TABLE offers DROP CONSTRAINT offers_pkey, ADD PRIMARY KEY (tenant, chat_id, agent_id);
ALTER TABLE offer_refusals DROP CONSTRAINT offer_refusals_pkey, ADD PRIMARY KEY (tenant, chat_id, agent_id);
ALTER TABLE assignments DROP CONSTRAINT assignments_pkey, ADD PRIMARY KEY (tenant, id);
ALTER TABLE transfers DROP CONSTRAINT transfers_pkey, ADD PRIMARY KEY (tenant, id);
ALTER TABLE transfer_declines DROP CONSTRAINT transfer_declines_pkey,
                              ADD PRIMARY KEY (tenant, transfer_id, agent_id);
ALTER TABLE chat_members DROP CONSTRAINT chat_members_pkey, ADD PRIMARY KEY (tenant, chat_id, agent_id);
ALTER TABLE rules DROP CONSTRAINT rules_pkey, ADD PRIMARY KEY (tenant, id);
ALTER TABLE team_messages DROP CONSTRAINT team_messages_pkey, ADD PRIMARY KEY (tenant, seq),
                          DROP CONSTRAINT team_messages_id_key, ADD UNIQUE (tenant, id);
ALTER TABLE queue_announcements DROP CONSTRAINT queue_announcements_pkey, ADD PRIMARY KEY (tenant, chat_id);

-- One open assignment and one pending transfer per chat, now per (tenant, chat).
DROP INDEX assignments_one_open;
CREATE UNIQUE INDEX assignments_one_open ON assignments (tenant, chat_id) WHERE released_at IS NULL;
DROP INDEX transfers_one_pending;
CREATE UNIQUE INDEX transfers_one_pending ON transfers (tenant, chat_id) WHERE state = 'pending';

-- Lookups by agent, tenant first like every other key.
DROP INDEX department_agents_agent;
CREATE INDEX department_agents_agent ON department_agents (tenant, agent_id);
DROP INDEX offers_agent;
CREATE INDEX offers_agent ON offers (tenant, agent_id);
DROP INDEX assignments_agent_open;
CREATE INDEX assignments_agent_open ON assignments (tenant, agent_id) WHERE released_at IS NULL;

ALTER TABLE department_agents
    ADD FOREIGN KEY (tenant, department_id) REFERENCES departments (tenant, id) ON DELETE CASCADE,
    ADD FOREIGN KEY (tenant, agent_id) REFERENCES agents (tenant, id) ON DELETE CASCADE;
ALTER TABLE transfer_declines
    ADD FOREIGN KEY (tenant, transfer_id) REFERENCES transfers (tenant, id) ON DELETE CASCADE;

-- accept_offer (002) with every statement scoped by the tenant. Same steps, same lock
-- order, same outcomes.
CREATE OR REPLACE FUNCTION accept_offer(p_tenant text, p_chat uuid, p_agent uuid, p_offer_timer text,
                                        p_timer_kinds text[], p_channel text)
RETURNS TABLE (outcome text, id uuid, department_id uuid, state text, agent_id uuid,
               queued_at timestamptz, assigned_at timestamptz, agent_name text, agent_email text,
               agent_availability text, agent_max integer, withdrawn integer,
               freed_departments text[])
LANGUAGE plpgsql AS $$
DECLARE
    c chats;
    a agents;
    load integer;
    cap integer;
    taken uuid[];
BEGIN
    SELECT * INTO c FROM chats ch WHERE ch.tenant = p_tenant AND ch.id = p_chat FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'no_chat';
        RETURN NEXT;
        RETURN;
    END IF;
    id := c.id; department_id := c.department_id; state := c.state; agent_id := c.agent_id;
    queued_at := c.queued_at; assigned_at := c.assigned_at; withdrawn := 0;
    SELECT * INTO a FROM agents ag WHERE ag.tenant = p_tenant AND ag.id = p_agent;
    IF NOT FOUND THEN
        outcome := 'no_agent';
        RETURN NEXT;
        RETURN;
    END IF;
    agent_name := a.name; agent_email := a.email; agent_availability := a.availability; agent_max := a.max_chats;
    IF c.state <> 'queued' THEN
        outcome := 'not_queued';
    ELSIF NOT EXISTS (SELECT 1 FROM offers o WHERE o.tenant = p_tenant AND o.chat_id = p_chat
                                                AND o.agent_id = p_agent) THEN
        outcome := 'not_offered';
    ELSE
        UPDATE agents ag SET active_chats = ag.active_chats + 1, last_assigned_at = now()
         WHERE ag.tenant = p_tenant AND ag.id = p_agent AND ag.availability = 'online'
           AND ag.active_chats < ag.max_chats
        RETURNING ag.active_chats, ag.max_chats INTO load, cap;
        IF NOT FOUND THEN
            outcome := 'agent_unable';
        END IF;
    END IF;
    IF outcome IS NOT NULL THEN
        RETURN NEXT;
        RETURN;
    END IF;

    -- Every open offer of the chat is withdrawn (and its timers go); their holders are woken.
    WITH gone AS (DELETE FROM offers o WHERE o.tenant = p_tenant AND o.chat_id = p_chat RETURNING o.agent_id)
    SELECT coalesce(array_agg(gone.agent_id), '{}') INTO taken FROM gone;
    DELETE FROM timers t WHERE t.tenant = p_tenant AND t.key = p_chat::text AND t.kind = ANY (p_timer_kinds);
    PERFORM pg_notify(p_channel, p_tenant || '/' || x::text) FROM unnest(taken) x;
    withdrawn := cardinality(array_remove(taken, p_agent));

    UPDATE chats ch SET state = 'assigned', agent_id = p_agent, assigned_at = now()
     WHERE ch.tenant = p_tenant AND ch.id = p_chat;
    -- clock_timestamp(): taken under the agent's row lock, so the history orders like the locks did.
    INSERT INTO assignments (tenant, chat_id, department_id, agent_id, how, previous_agent_id, queued_at, assigned_at)
    VALUES (p_tenant, p_chat, c.department_id, p_agent, 'accepted', NULL, c.queued_at, clock_timestamp());
    DELETE FROM chat_members m WHERE m.tenant = p_tenant AND m.chat_id = p_chat AND m.agent_id = p_agent;
    state := 'assigned'; agent_id := p_agent; assigned_at := now(); agent_max := cap; agent_availability := 'online';

    IF load >= cap THEN
        -- Full now: offers still open to this agent go to others.
        WITH gone AS (DELETE FROM offers o USING chats ch
                       WHERE o.tenant = p_tenant AND o.agent_id = p_agent
                         AND ch.tenant = p_tenant AND ch.id = o.chat_id
                      RETURNING o.chat_id, ch.department_id),
             timers_gone AS (DELETE FROM timers t WHERE t.tenant = p_tenant AND t.kind = p_offer_timer
                             AND t.key IN (SELECT gone.chat_id::text FROM gone))
        SELECT coalesce(array_agg(coalesce(gone.department_id::text, '')), '{}') INTO freed_departments FROM gone;
        PERFORM pg_notify(p_channel, p_tenant || '/' || p_agent::text);
    ELSE
        freed_departments := '{}';
    END IF;
    outcome := 'accepted';
    RETURN NEXT;
END
$$;
