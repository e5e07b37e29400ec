-- processed_events are pruned by age (retention.py): the age needs an index.
CREATE INDEX processed_events_processed_at ON processed_events (processed_at);
