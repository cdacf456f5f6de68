-- smsreport's SQLite schema, format 1. TEXT compares bytewise (BINARY collation).

CREATE TABLE schema_info (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO schema_info (key, value) VALUES ('format', 1);

CREATE TABLE campaigns (
    campaign_id   TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    list_id       TEXT,
    link_tracking INTEGER NOT NULL,
    created_at    INTEGER,
    links         TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE lists (
    list_id TEXT PRIMARY KEY,
    name    TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE list_subscribers (
    list_id     TEXT PRIMARY KEY,
    subscribers INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE contacts (
    list_id   TEXT NOT NULL,
    recipient TEXT NOT NULL,
    name      TEXT,
    PRIMARY KEY (list_id, recipient)
) WITHOUT ROWID;

CREATE TABLE messages (
    message_id  TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    parts       INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    status      INTEGER,
    status_at   INTEGER,
    error_code  TEXT,
    row_rank    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX messages_by_row ON messages (campaign_id, row_rank, message_id);
CREATE INDEX messages_by_campaign ON messages (campaign_id, message_id);

CREATE TABLE pending_statuses (
    message_id TEXT PRIMARY KEY,
    status     INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    error_code TEXT
) WITHOUT ROWID;

CREATE TABLE status_events_seen (
    message_id TEXT NOT NULL,
    at         INTEGER NOT NULL,
    status     INTEGER NOT NULL,
    has_code   INTEGER NOT NULL,
    error_code TEXT NOT NULL,
    PRIMARY KEY (message_id, at, status, has_code, error_code)
) WITHOUT ROWID;

CREATE TABLE event_clicks (
    event_id    TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL,
    link_id     TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    at          INTEGER NOT NULL,
    user_agent  TEXT,
    bot         INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE clicks (
    campaign_id TEXT NOT NULL,
    link_id     TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    at          INTEGER NOT NULL,
    user_agent  TEXT,
    bot         INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, link_id, recipient, at)
) WITHOUT ROWID;

CREATE TABLE unique_pairs (
    campaign_id TEXT NOT NULL,
    link_id     TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    PRIMARY KEY (campaign_id, link_id, recipient)
) WITHOUT ROWID;

CREATE TABLE campaign_counters (
    campaign_id TEXT NOT NULL,
    name        TEXT NOT NULL,
    value       INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, name)
) WITHOUT ROWID;

CREATE TABLE recipient_clicks (
    campaign_id TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    clicks      INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, recipient)
) WITHOUT ROWID;

CREATE TABLE tracked_links (
    code        TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL,
    link_id     TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    UNIQUE (message_id, link_id)
) WITHOUT ROWID;
