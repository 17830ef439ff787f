-- Deletes (see instachat.Store.DeleteMessage, DeleteChat, DeleteApplication).
-- A deleted row stays as a tombstone with deleted_at set: a message keeps
-- its number and revisions with its body erased, so the number is never
-- issued again and the chat feed can tell a resuming client; a chat keeps
-- its number and application revisions; an application keeps its token.
-- Every read skips tombstones, and everything under a deleted chat or
-- application (see liveChat, liveApp in sqlite.go).

ALTER TABLE applications ADD COLUMN deleted_at INTEGER;
ALTER TABLE chats ADD COLUMN deleted_at INTEGER;
ALTER TABLE messages ADD COLUMN deleted_at INTEGER;

-- What a deleted chat (chat_number > 0) or application (chat_number = 0)
-- left to erase: written in the transaction of the deletion, deleted by
-- Reclaim once its rows are gone, so a crash in the middle of a large
-- delete resumes at the next start.
CREATE TABLE reclaims (
	id          INTEGER PRIMARY KEY,
	app_token   TEXT    NOT NULL,
	chat_number INTEGER NOT NULL
);

-- A deletion erases the fingerprint of the receipt of what it deletes, and
-- Reclaim the receipts of a deleted chat: both find them by what they
-- created.
CREATE INDEX receipts_app_token_chat_number_number ON receipts (app_token, chat_number, number);
