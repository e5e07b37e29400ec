-- Tracking writes (VIS-01) update each visit and visitor of a batch in place. Without an
-- index on the columns they change, and with room left on each page, PostgreSQL makes
-- these heap-only (HOT) updates: no index entry is written. The visitors on the site now
-- are found among the visits started in the last day (visits_started) instead.
DROP INDEX visits_last_seen;
ALTER TABLE visits SET (fillfactor = 70);
ALTER TABLE visitors SET (fillfactor = 80);
