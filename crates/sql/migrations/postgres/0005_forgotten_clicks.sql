-- Forgotten people's clicks without an event_id (docs/rules.md, "Forgetting a person"):
-- a click with a phone number and no event_id at the same campaign, link and time is a
-- duplicate of one of these.
CREATE TABLE forgotten_clicks (
    campaign_id TEXT COLLATE "C" NOT NULL,
    link_id     TEXT COLLATE "C" NOT NULL,
    at          BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, link_id, at)
);
