-- CRM-08: the widget's pre-chat form fields a chat was started with (StartChatRequest.fields),
-- {name: value}; carried on chat_started for the CRM bridge. On the chats row, so under
-- its (tenant, id) key like the rest of the chat.
ALTER TABLE chats ADD COLUMN form_fields jsonb NOT NULL DEFAULT '{}';
