-- The search index leaves this file for one of its own (index.go): the
-- transaction a client waits for stores rows, and an indexer, on its own
-- connection and lock, indexes them after the commit, in larger batches.
-- The indexer rebuilds the index from the messages when its file holds none,
-- so the old index and its scopes go.
DROP TRIGGER message_index_delete;
DROP TABLE message_index;
DROP TABLE search_scopes;

-- What the index has still to learn: a message stored (edit 0), its body
-- changed (edit 1: an edit or a deletion, whose entry must be replaced) or
-- its row deleted outside the store's deletes (edit 2). Written by the
-- triggers below in the transaction of the change, so a crash loses none;
-- the indexer deletes what it applied. AUTOINCREMENT: seq only grows, so
-- the index's watermark (index_state.queue_seq) never skips a row. The
-- message's key travels with it, for a search to find its chat's queued
-- messages, and for the indexer to find the entry of a row that is gone.
CREATE TABLE index_queue (
	seq         INTEGER PRIMARY KEY AUTOINCREMENT,
	message_id  INTEGER NOT NULL,
	edit        INTEGER NOT NULL,
	app_token   TEXT    NOT NULL,
	chat_number INTEGER NOT NULL,
	number      INTEGER NOT NULL
);

CREATE INDEX index_queue_chat ON index_queue (app_token, chat_number);

CREATE TRIGGER index_queue_insert AFTER INSERT ON messages BEGIN
	INSERT INTO index_queue (message_id, edit, app_token, chat_number, number) VALUES (new.id, 0, new.app_token, new.chat_number, new.number);
END;

CREATE TRIGGER index_queue_update AFTER UPDATE OF body ON messages BEGIN
	INSERT INTO index_queue (message_id, edit, app_token, chat_number, number) VALUES (new.id, 1, new.app_token, new.chat_number, new.number);
END;

-- A row deleted while its chat and application live (an operator's purge):
-- Reclaim's deletes, of a deleted chat's rows, are its erasure's to undo.
CREATE TRIGGER index_queue_delete AFTER DELETE ON messages
WHEN NOT EXISTS (SELECT 1 FROM chats WHERE app_token = old.app_token AND number = old.chat_number AND deleted_at IS NOT NULL)
	AND NOT EXISTS (SELECT 1 FROM applications WHERE token = old.app_token AND deleted_at IS NOT NULL)
BEGIN
	INSERT INTO index_queue (message_id, edit, app_token, chat_number, number) VALUES (old.id, 2, old.app_token, old.chat_number, old.number);
END;

-- The chats and applications whose entries the index must erase: written
-- with the deletion, deleted by the indexer once it erased them.
CREATE TABLE index_erasures (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	app_token   TEXT    NOT NULL,
	chat_number INTEGER NOT NULL
);

-- Which store an index file was built from: an index file of another
-- data dir, or restored apart from its store, is rebuilt (see index.go).
CREATE TABLE store_identity (id TEXT NOT NULL);
INSERT INTO store_identity (id) VALUES (lower(hex(randomblob(16))));
