-- The search index (see index.go), in a file of its own beside the store's.
-- Everything here can be rebuilt from the store: the indexer does so when
-- index_state holds no row.

-- A scope is a chat as the index knows it: its entries are the rowids
-- id << 32 | (0xffffffff - message number) (see indexRowid), so a search
-- seeks to its chat's range and never reads another chat's matches.
-- AUTOINCREMENT: a chat created after another's erasure never reuses its
-- range.
CREATE TABLE search_scopes (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	app_token   TEXT    NOT NULL,
	chat_number INTEGER NOT NULL,
	UNIQUE (app_token, chat_number)
);

-- The bodies' Go lower case, trigrams, case-sensitive (see indexText);
-- contentless: the bodies stay in the store.
CREATE VIRTUAL TABLE message_index USING fts5 (
	body,
	content = '',
	contentless_delete = 1,
	tokenize = 'trigram case_sensitive 1'
);

-- Merging: see the store's migrations 0002 and 0004.
INSERT INTO message_index (message_index, rank) VALUES ('automerge', 16);
INSERT INTO message_index (message_index, rank) VALUES ('crisismerge', 64);
-- At FTS5's default, 10, a segment with 10% of its rows deleted is merged
-- by the next writes: erasing a million-message chat row by row merged the
-- segment it was emptying again and again (~230 rows/s, docs/BENCHMARKS.md).
-- At 0 a delete records a tombstone (~20-50k rows/s), and the erasure
-- merges the segments once, after (see eraseStep).
INSERT INTO message_index (message_index, rank) VALUES ('deletemerge', 0);

-- How far the index is: the highest index_queue.seq and index_erasures.id
-- of the store it has applied, what is left of the running erasure's
-- merging budget, in pages (NULL until its entries are deleted), and the
-- store_identity of the store it indexes.
CREATE TABLE index_state (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	queue_seq   INTEGER NOT NULL,
	erasure     INTEGER NOT NULL,
	merge_pages INTEGER,
	store_id    TEXT    NOT NULL
);
