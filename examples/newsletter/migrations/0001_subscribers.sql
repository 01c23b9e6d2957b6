-- Subscribers of the newsletter bot and its broadcasts. The SQL runs on
-- SQLite and PostgreSQL alike; flags are 0/1 integers for that reason.
CREATE TABLE subscribers (
  chat_id BIGINT PRIMARY KEY,
  first_name TEXT NOT NULL DEFAULT '',
  username TEXT,
  subscribed SMALLINT NOT NULL DEFAULT 0,
  active SMALLINT NOT NULL DEFAULT 1,
  joined_at BIGINT NOT NULL
);

-- The broadcast reads recipients in chat_id order with this filter.
CREATE INDEX subscribers_recipients ON subscribers (chat_id) WHERE subscribed = 1 AND active = 1;

CREATE TABLE broadcasts (
  id TEXT PRIMARY KEY,
  admin_chat_id BIGINT NOT NULL,
  status_message_id BIGINT NOT NULL,
  text TEXT NOT NULL,
  started_at BIGINT NOT NULL,
  finished_at BIGINT,
  delivered BIGINT,
  blocked BIGINT,
  failed BIGINT
);

-- Per-recipient checkpoints of sluice::broadcast::SqlCheckpointStore.
CREATE TABLE broadcast_recipients (
  broadcast_id TEXT NOT NULL,
  chat_id BIGINT NOT NULL,
  outcome SMALLINT NOT NULL,
  migrated_to BIGINT,
  PRIMARY KEY (broadcast_id, chat_id)
);
