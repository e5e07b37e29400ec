-- VIS-05: conversation's copy of the visitor service's block list, fed by its
-- visitor_blocked / visitor_unblocked events; StartChat checks it, and chats it covers
-- are flagged so the visitor's further messages are refused without another look-up.
ALTER TABLE chats
    ADD COLUMN visitor_ip       text    NOT NULL DEFAULT '',   -- the address StartChat came from ('' unknown)
    ADD COLUMN visitor_blocked  boolean NOT NULL DEFAULT false;

CREATE TABLE blocks (
    tenant      text        NOT NULL,
    id          uuid        NOT NULL,                  -- the visitor service's block id
    kind        text        NOT NULL CHECK (kind IN ('ip', 'thread')),
    network     cidr,
    channel     text        NOT NULL DEFAULT '',
    thread_id   text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id)
);
CREATE INDEX blocks_thread ON blocks (tenant, channel, thread_id);
