-- A timer is one per (tenant, kind, key): two tenants' timers for the same key (a chat id
-- used in both) never overwrite each other.
ALTER TABLE timers DROP CONSTRAINT timers_kind_key_key;
ALTER TABLE timers ADD CONSTRAINT timers_tenant_kind_key_key UNIQUE (tenant, kind, key);
