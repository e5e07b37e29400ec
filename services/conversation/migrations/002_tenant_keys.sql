-- PLAT-02: every key starts with the tenant. Primary keys, unique constraints and
-- indexes, and foreign keys of the conversation tables lead with `tenant`, so a row can
-- only ever be found, joined or referenced within its own tenant (and every lookup by
-- tenant is an index prefix). Every table already has `tenant text NOT NULL`.
--
-- Only constraints and indexes change: no row is written, so the append-only triggers on
-- messages (which refuse UPDATE, DELETE and TRUNCATE) stay as they are and keep working.

-- Foreign keys first: they depend on the keys they reference.
ALTER TABLE participants   DROP CONSTRAINT participants_chat_id_fkey;
ALTER TABLE messages       DROP CONSTRAINT messages_chat_id_fkey;
ALTER TABLE message_status DROP CONSTRAINT message_status_chat_id_seq_fkey;
ALTER TABLE chat_events    DROP CONSTRAINT chat_events_chat_id_fkey;
ALTER TABLE notes          DROP CONSTRAINT notes_chat_id_fkey;

ALTER TABLE chats DROP CONSTRAINT chats_pkey;
ALTER TABLE chats ADD PRIMARY KEY (tenant, id);

ALTER TABLE participants DROP CONSTRAINT participants_pkey;
ALTER TABLE participants ADD PRIMARY KEY (tenant, chat_id, agent_id);
ALTER TABLE participants ADD FOREIGN KEY (tenant, chat_id) REFERENCES chats (tenant, id);

ALTER TABLE messages DROP CONSTRAINT messages_pkey;
ALTER TABLE messages DROP CONSTRAINT messages_id_key;
ALTER TABLE messages ADD PRIMARY KEY (tenant, chat_id, seq);
ALTER TABLE messages ADD UNIQUE (tenant, id);
ALTER TABLE messages ADD FOREIGN KEY (tenant, chat_id) REFERENCES chats (tenant, id);
DROP INDEX messages_client_id;
CREATE UNIQUE INDEX messages_client_id ON messages (tenant, chat_id, sender_id, client_message_id, part)
    WHERE client_message_id IS NOT NULL;

ALTER TABLE message_status DROP CONSTRAINT message_status_pkey;
ALTER TABLE message_status ADD PRIMARY KEY (tenant, chat_id, seq);
ALTER TABLE message_status ADD FOREIGN KEY (tenant, chat_id, seq) REFERENCES messages (tenant, chat_id, seq);

ALTER TABLE chat_events DROP CONSTRAINT chat_events_pkey;
ALTER TABLE chat_events ADD PRIMARY KEY (tenant, chat_id, seq);
ALTER TABLE chat_events ADD FOREIGN KEY (tenant, chat_id) REFERENCES chats (tenant, id);

-- A note on a visitor has no chat (chat_id NULL): the composite key is then not checked.
ALTER TABLE notes DROP CONSTRAINT notes_pkey;
ALTER TABLE notes ADD PRIMARY KEY (tenant, id);
ALTER TABLE notes ADD FOREIGN KEY (tenant, chat_id) REFERENCES chats (tenant, id);
