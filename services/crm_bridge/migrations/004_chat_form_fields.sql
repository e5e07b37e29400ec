-- CRM-08: the widget's pre-chat form fields of each chat (conversation's chat_started), so
-- that those named like a CRM custom field are copied to a record created from the chat
-- (auto-add on chat_ended, or the agent's manual add). Keyed by tenant first (PLAT-02).
CREATE TABLE chat_form_fields (
    tenant      text        NOT NULL,
    chat_id     text        NOT NULL,
    fields      jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, chat_id)
);
