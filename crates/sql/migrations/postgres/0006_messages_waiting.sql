-- Statuses waiting for a message that never came (docs/rules.md, "Data quality"): the
-- rows of messages without a campaign, so that counting them reads only them. Its
-- columns never change on a status update (message_id never, campaign_id once, when the
-- message arrives), so status updates stay heap-only.
CREATE INDEX messages_waiting ON messages (message_id) WHERE campaign_id IS NULL;
