-- AcceptChat in one round trip (it was seven statements, each a round trip and a span).
-- Same steps, same lock order as before (the chat's row, then the agent's row), same
-- guards: the chat must be waiting and offered to this agent; the agent must be online
-- below their maximum (conditional UPDATE; the capacity CHECK backs it); the open
-- assignment is unique per chat. The caller raises on any outcome but 'accepted', which
-- rolls back its transaction; nothing is written before every check has passed.
CREATE FUNCTION accept_offer(p_tenant text, p_chat uuid, p_agent uuid, p_offer_timer text,
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
    ELSIF NOT EXISTS (SELECT 1 FROM offers o WHERE o.chat_id = p_chat AND o.agent_id = p_agent) THEN
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
    WITH gone AS (DELETE FROM offers o WHERE o.chat_id = p_chat RETURNING o.agent_id)
    SELECT coalesce(array_agg(gone.agent_id), '{}') INTO taken FROM gone;
    DELETE FROM timers t WHERE t.key = p_chat::text AND t.kind = ANY (p_timer_kinds);
    PERFORM pg_notify(p_channel, p_tenant || '/' || x::text) FROM unnest(taken) x;
    withdrawn := cardinality(array_remove(taken, p_agent));

    UPDATE chats ch SET state = 'assigned', agent_id = p_agent, assigned_at = now() WHERE ch.id = p_chat;
    -- clock_timestamp(): taken under the agent's row lock, so the history orders like the locks did.
    INSERT INTO assignments (tenant, chat_id, department_id, agent_id, how, previous_agent_id, queued_at, assigned_at)
    VALUES (p_tenant, p_chat, c.department_id, p_agent, 'accepted', NULL, c.queued_at, clock_timestamp());
    DELETE FROM chat_members m WHERE m.chat_id = p_chat AND m.agent_id = p_agent;
    state := 'assigned'; agent_id := p_agent; assigned_at := now(); agent_max := cap; agent_availability := 'online';

    IF load >= cap THEN
        -- Full now: offers still open to this agent go to others.
        WITH gone AS (DELETE FROM offers o USING chats ch WHERE o.agent_id = p_agent AND ch.id = o.chat_id
                      RETURNING o.chat_id, ch.department_id),
             timers_gone AS (DELETE FROM timers t WHERE t.kind = p_offer_timer
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
