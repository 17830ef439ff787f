-- Search is scoped to one chat, but 0001 indexed every message under
-- messages.id: a common term's matches in all chats were read, joined and
-- ranked before the chat filter dropped most of them. Here a chat's entries
-- form one contiguous rowid range, scope id << 32 | (0xffffffff - message
-- number), and FTS5 seeks to that range from the rowid constraints of the
-- query, so a search reads only its chat. Numbers count down so that reading
-- the range forwards, which FTS5 does from a seek, yields the newest message
-- first (see indexRowid in store.go).

DROP TRIGGER messages_fts_update;
DROP TRIGGER messages_fts_delete;
DROP TABLE messages_fts;

-- A scope is a chat as the index knows it. It is not chats.id because a
-- message may be stored before its chat row (see instachat.Store.ApplyCreates);
-- ApplyCreates adds the scope with the chat's first message.
CREATE TABLE search_scopes (
	id          INTEGER PRIMARY KEY,
	app_token   TEXT    NOT NULL,
	chat_number INTEGER NOT NULL,
	UNIQUE (app_token, chat_number)
);

-- Contentless, because no column of messages holds the rowid, and the
-- bodies stay in messages. contentless_delete lets an edit replace its
-- entry and a purge remove it. Positions stay in (the default detail=full):
-- a term longer than a trigram is a phrase of trigrams, matched on them.
CREATE VIRTUAL TABLE message_index USING fts5 (
	body,
	content = '',
	contentless_delete = 1,
	tokenize = 'trigram case_sensitive 0'
);

-- Every commit writes a segment, and FTS5 merges a level once it holds
-- automerge segments. At the default 4, merging took 44% of ApplyCreates'
-- CPU; at 16 it takes 31%, a batch of 64 to 1000 messages costs 20–30% less
-- and a search, which seeks each segment, stays as fast (measured on a
-- million messages); at 32, long terms searched up to twice as slowly.
INSERT INTO message_index (message_index, rank) VALUES ('automerge', 16);

INSERT INTO search_scopes (app_token, chat_number)
SELECT DISTINCT app_token, chat_number FROM messages ORDER BY app_token, chat_number;

-- In rowid order: FTS5 flushes its pending entries to a new segment whenever
-- a rowid is not above the last, so any other order would leave segments to
-- merge. ApplyCreates refuses numbers that do not fit the low 32 bits; none
-- were ever issued, and one here would land in the next chat's range.
INSERT INTO message_index (rowid, body)
SELECT s.id << 32 | (0xffffffff - m.number), m.body
FROM search_scopes s JOIN messages m ON m.app_token = s.app_token AND m.chat_number = s.chat_number
WHERE m.number BETWEEN 1 AND 0xffffffff
ORDER BY s.id, m.number DESC;

-- The backfill wrote a segment per megabyte of entries, which automerge
-- leaves at up to 15 per level. Merged into one, a search of a million
-- messages runs 3–8x faster; merging them takes a third as long again as the
-- backfill, once.
INSERT INTO message_index (message_index) VALUES ('optimize');

-- The store never deletes, but a manual purge of messages should not leave
-- entries that take a place in a page of results and then join to nothing.
CREATE TRIGGER message_index_delete AFTER DELETE ON messages BEGIN
	DELETE FROM message_index WHERE rowid =
		(SELECT id FROM search_scopes WHERE app_token = old.app_token AND chat_number = old.chat_number) << 32 | (0xffffffff - old.number);
END;
