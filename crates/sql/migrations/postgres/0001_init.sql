-- smsreport's PostgreSQL schema, format 1. Identifiers sort bytewise (COLLATE "C").
-- Keys are shard-friendly: campaign-scoped tables lead with campaign_id, per-message
-- tables with message_id (see ARCHITECTURE.md, "Scale-out").

CREATE TABLE schema_info (
    key   TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO schema_info (key, value) VALUES ('format', 1);

-- A campaign's definition; links as a JSON object link_id -> url.
CREATE TABLE campaigns (
    campaign_id   TEXT COLLATE "C" PRIMARY KEY,
    name          TEXT NOT NULL,
    list_id       TEXT COLLATE "C",
    link_tracking BOOLEAN NOT NULL,
    created_at    BIGINT,
    links         TEXT NOT NULL
);

CREATE TABLE lists (
    list_id TEXT COLLATE "C" PRIMARY KEY,
    name    TEXT NOT NULL
);

CREATE TABLE list_subscribers (
    list_id     TEXT COLLATE "C" PRIMARY KEY,
    subscribers BIGINT NOT NULL
);

CREATE TABLE contacts (
    list_id   TEXT COLLATE "C" NOT NULL,
    recipient TEXT COLLATE "C" NOT NULL,
    name      TEXT,
    PRIMARY KEY (list_id, recipient)
);

-- Everything about one message_id, in one row (as in the sled store), so a status costs
-- one read and one write. campaign_id NULL: the message has not arrived yet, and
-- status/status_at/error_code hold the greatest status seen for it so far (pending);
-- otherwise they are the winning status event (NULL: none yet). row_rank: the rank of the
-- current status (0 = queued), for the drill-down. seen: the status events seen for the
-- id (for duplicates), at most 32, encoded by the store (see pg.rs).
CREATE TABLE messages (
    message_id  TEXT COLLATE "C" PRIMARY KEY,
    campaign_id TEXT COLLATE "C",
    recipient   TEXT COLLATE "C",
    parts       BIGINT,
    at          BIGINT,
    status      BIGINT,
    status_at   BIGINT,
    error_code  TEXT,
    row_rank    BIGINT NOT NULL,
    seen        BYTEA NOT NULL
);
CREATE INDEX messages_by_row ON messages (campaign_id, row_rank, message_id);
CREATE INDEX messages_by_campaign ON messages (campaign_id, message_id);

-- Clicks with an event_id (identity: the event_id, global).
CREATE TABLE event_clicks (
    event_id    TEXT COLLATE "C" PRIMARY KEY,
    campaign_id TEXT COLLATE "C" NOT NULL,
    link_id     TEXT COLLATE "C" NOT NULL,
    recipient   TEXT COLLATE "C" NOT NULL,
    at          BIGINT NOT NULL,
    user_agent  TEXT,
    bot         BOOLEAN NOT NULL
);

-- Clicks without one (identity: campaign, link, recipient, time).
CREATE TABLE clicks (
    campaign_id TEXT COLLATE "C" NOT NULL,
    link_id     TEXT COLLATE "C" NOT NULL,
    recipient   TEXT COLLATE "C" NOT NULL,
    at          BIGINT NOT NULL,
    user_agent  TEXT,
    bot         BOOLEAN NOT NULL,
    PRIMARY KEY (campaign_id, link_id, recipient, at)
);

-- First human click of a person on a link.
CREATE TABLE unique_pairs (
    campaign_id TEXT COLLATE "C" NOT NULL,
    link_id     TEXT COLLATE "C" NOT NULL,
    recipient   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (campaign_id, link_id, recipient)
);

-- The report's figures, named by CampaignCounter::name().
CREATE TABLE campaign_counters (
    campaign_id TEXT COLLATE "C" NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    value       BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, name)
);

-- Human clicks per (campaign, recipient): the drill-down's clicks column.
CREATE TABLE recipient_clicks (
    campaign_id TEXT COLLATE "C" NOT NULL,
    recipient   TEXT COLLATE "C" NOT NULL,
    clicks      BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, recipient)
);

-- Row locks that serialise concurrent ingests deciding on the same keys: a key's
-- bucket is a stable hash of it modulo 65536 (see the crate's docs).
CREATE TABLE ingest_locks (
    bucket INTEGER PRIMARY KEY
);
INSERT INTO ingest_locks (bucket) SELECT generate_series(0, 65535);

-- Tracked short links: one code per (message, link).
CREATE TABLE tracked_links (
    code        TEXT COLLATE "C" PRIMARY KEY,
    campaign_id TEXT COLLATE "C" NOT NULL,
    link_id     TEXT COLLATE "C" NOT NULL,
    message_id  TEXT COLLATE "C" NOT NULL,
    recipient   TEXT COLLATE "C" NOT NULL,
    UNIQUE (message_id, link_id)
);
