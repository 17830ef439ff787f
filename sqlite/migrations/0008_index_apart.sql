-- The search index leaves this file for one of its own (index.go): the
-- transaction a client waits for stores rows, and an indexer, on its own
-- connection and lock, indexes them after the commit, in larger batches.
-- The indexer rebuilds the index from the messages when its file holds none,
-- so the old index and its scopes go.
DROP TRIGGER message_index_delete;
DROP TABLE message_index;
DROP TABLE search_scopes;

-- What the index has still to learn: a message stored, or its body changed
-- (edit = 1: an edit or a deletion, whose entry must be replaced). Written
-- by the triggers below in the transaction of the change, so a crash loses
-- none; the indexer deletes what it indexed. AUTOINCREMENT: seq only grows,
-- so the index's watermark (index_state.queue_seq) never skips a row.
CREATE TABLE index_queue (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	message_id INTEGER NOT NULL,
	edit       INTEGER NOT NULL
);

CREATE TRIGGER index_queue_insert AFTER INSERT ON messages BEGIN
	INSERT INTO index_queue (message_id, edit) VALUES (new.id, 0);
END;

CREATE TRIGGER index_queue_update AFTER UPDATE OF body ON messages BEGIN
	INSERT INTO index_queue (message_id, edit) VALUES (new.id, 1);
END;

-- The chats and applications whose entries the index must erase: written
-- with the deletion, deleted by the indexer once it erased them.
CREATE TABLE index_erasures (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	app_token   TEXT    NOT NULL,
	chat_number INTEGER NOT NULL
);
