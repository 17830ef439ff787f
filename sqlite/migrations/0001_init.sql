-- Internal ids are the rowids every table is clustered on; clients address
-- rows by token and numbers, which the unique indices serve. Rows refer to
-- each other by those denormalized keys, not by id, so no read needs a join.
-- Timestamps are unix microseconds, UTC.

CREATE TABLE applications (
	id          INTEGER PRIMARY KEY,
	token       TEXT    NOT NULL UNIQUE,
	name        TEXT    NOT NULL,
	chats_count INTEGER NOT NULL DEFAULT 0,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
);

CREATE TABLE chats (
	id             INTEGER PRIMARY KEY,
	app_token      TEXT    NOT NULL,
	number         INTEGER NOT NULL,
	name           TEXT    NOT NULL,
	messages_count INTEGER NOT NULL DEFAULT 0,
	created_at     INTEGER NOT NULL,
	updated_at     INTEGER NOT NULL,
	UNIQUE (app_token, number)
);

CREATE INDEX chats_app_token_created_at ON chats (app_token, created_at);

CREATE TABLE messages (
	id          INTEGER PRIMARY KEY,
	app_token   TEXT    NOT NULL,
	chat_number INTEGER NOT NULL,
	number      INTEGER NOT NULL,
	body        TEXT    NOT NULL,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	UNIQUE (app_token, chat_number, number)
);

CREATE INDEX messages_app_token_chat_number_created_at ON messages (app_token, chat_number, created_at);

-- External content: the index stores only trigrams, the text stays in
-- messages. Every change reaches the index in the transaction that makes it,
-- so the index never lags a commit: ApplyCreates indexes the messages it
-- inserts (see its comment for why that is not a trigger), the triggers
-- below reindex edits.
CREATE VIRTUAL TABLE messages_fts USING fts5 (
	body,
	content = 'messages',
	content_rowid = 'id',
	tokenize = 'trigram case_sensitive 0'
);

CREATE TRIGGER messages_fts_update AFTER UPDATE OF body ON messages BEGIN
	INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
	INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body);
END;

-- The store never deletes, but an external-content index silently corrupts
-- if a row goes without telling it, so a manual purge stays safe.
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
	INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
END;
